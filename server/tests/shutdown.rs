//! Graceful shutdown, and (Redis) data surviving a restart.

mod common;

use common::*;
use protocol::rest::Visibility;
use protocol::ws::Cursor;
use protocol::ServerFrame;
use std::sync::Arc;
use std::time::Duration;

common::backend_tests!(
    graceful_shutdown_closes_sockets_with_1001,
    graceful_shutdown_closes_sockets_still_waiting_for_hello,
);

async fn graceful_shutdown_closes_sockets_with_1001(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("bye", Visibility::Public)
        .await
        .unwrap();
    let mut w1 = server.ws(&alice).await;
    let mut w2 = server.ws(&alice).await;
    w1.say(room.id, "before shutdown").await;

    let base = server.base.clone();
    let http = server.http().clone();
    // The clients must keep reading while the server shuts down, or the close handshake
    // cannot complete.
    let (done, c1, c2) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), server.shutdown()),
        w1.expect_close(),
        w2.expect_close(),
    );
    done.expect("graceful shutdown finished within 15 s");
    for (name, closed) in [("w1", c1), ("w2", c2)] {
        assert_eq!(closed, Closed::Code(protocol::close::GOING_AWAY), "{name}");
    }

    // The listener is gone.
    let after = http
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        after.is_err(),
        "server still answers after shutdown: {after:?}"
    );
}

/// A client that connected but has not sent `hello` yet is told to go away too, instead of
/// being left until the hello timeout.
async fn graceful_shutdown_closes_sockets_still_waiting_for_hello(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut pre_hello = server.ws_raw().await;
    pre_hello.label = "pre-hello".into();
    // Make sure the server is serving this socket before shutting down.
    pre_hello
        .send_frame(&protocol::ClientFrame::Ping { reference: None })
        .await;
    pre_hello
        .expect_error_code(protocol::ErrorCode::AuthRequired)
        .await;

    let (done, closed) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), server.shutdown()),
        pre_hello.expect_close(),
    );
    done.expect("graceful shutdown finished within 15 s");
    assert_eq!(closed, Closed::Code(protocol::close::GOING_AWAY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_accounts_rooms_and_history() {
    let redis = Arc::new(RedisServer::start().await);
    let server = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut b1 = server.ws(&bob).await;
    let m = alice.api.say(room.id, "persisted").await;
    let seen = b1.expect_events(1).await[0].seq;
    assert_eq!(seen, m.seq);

    let (done, closed) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), server.shutdown()),
        b1.expect_close()
    );
    done.expect("graceful shutdown");
    assert_eq!(closed, Closed::Code(protocol::close::GOING_AWAY));

    let server = TestServer::start_on_redis(&redis, |_| {}).await;
    // Old sessions still work, and so does logging in.
    let alice = TestUser {
        api: alice.api_on(&server),
        ..alice
    };
    let bob = TestUser {
        api: bob.api_on(&server),
        ..bob
    };
    assert_eq!(
        alice.api.me().await.expect("old token after restart").id,
        alice.id
    );
    server.login(&bob, "after restart").await;

    let events = bob.api.all_events(room.id).await.unwrap();
    assert_eq!(message_of(events.last().unwrap()).1, "persisted");
    let r = bob.api.my_room(room.id).await;
    assert_eq!(r.last_seq, m.seq);

    // Seqs continue, and resume works across the restart.
    let next = alice.api.say(room.id, "after restart").await;
    assert_eq!(next.seq, m.seq + 1);
    let (mut b2, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: seen,
            }],
        )
        .await;
    assert_eq!(replay.len(), 1, "{replay:?}");
    assert!(matches!(&replay[0], ServerFrame::Event(e) if e.seq == next.seq));
    b2.assert_no_more_events().await;

    // Idempotency keys survive too.
    let dup = alice.api.send(room.id, &m.id, "persisted").await.unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.seq, m.seq);
}
