//! Regression tests for the hole the fault runs found (issue 5): when Redis comes back empty
//! (restarted without persistence, or flushed), sessions, rooms and per-room seqs start again.
//! Sockets that stayed open kept their old cursors and their user ids: new messages reusing old
//! seqs were silently skipped, and a new account with a reused user id was routed to the old
//! account's sockets. Now every node notices the missing `store:epoch` and closes every socket
//! with 4010 (`store lost its data`), and the old token is refused on the next hello.
//!
//! The same for a store that came back with its last writes missing (AOF `everysec` after a
//! machine crash): its seq counters went back and the next messages reused seqs that clients
//! already held for other messages — silently. Now the node that saw those seqs published
//! raises the counters past them when its bus reconnects and tells every socket with 4010.

mod common;

use common::*;
use protocol::close;
use protocol::rest::Visibility;
use std::sync::Arc;

/// The store loses a room's events after `keep` (as a machine crash can with appendfsync
/// everysec) and, as when Redis restarts, the nodes' bus connections drop.
async fn roll_back(redis: &RedisServer, room: protocol::RoomId, keep: u64) {
    lose_writes(redis, room, keep).await;
    redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
}

/// The store loses a room's events after `keep`; the nodes' connections stay up.
async fn lose_writes(redis: &RedisServer, room: protocol::RoomId, keep: u64) {
    let key = chat_server::store::redis::keys::room(room);
    redis.cmd(&["HSET", &key, "seq", &keep.to_string()]).await;
    let log = chat_server::store::redis::keys::log(room);
    redis
        .cmd(&["ZREMRANGEBYSCORE", &log, &(keep + 1).to_string(), "+inf"])
        .await;
}

/// Sends until the store takes it (`store_unavailable` is retried, as clients do).
async fn send_retrying(
    user: &TestUser,
    room: protocol::RoomId,
    body: &str,
) -> protocol::rest::SendAck {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match user.api.send(room, body, body).await {
            Ok(ack) => return ack,
            Err(e) if e.code() == Some(protocol::ErrorCode::StoreUnavailable) => {
                assert!(tokio::time::Instant::now() < deadline, "still refused: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("sending after the rollback: {e}"),
        }
    }
}

/// One node on its own Redis; alice's room holds four events (her join, then "two", "three",
/// "four"), all received on her open socket.
struct Four {
    redis: Arc<RedisServer>,
    node: TestServer,
    alice: TestUser,
    room: protocol::rest::Room,
    ws: Ws,
}

async fn four_events(room_name: &str) -> Four {
    let redis = Arc::new(RedisServer::start().await);
    let node = TestServer::start_on_redis(&redis, |c| c.presence_heartbeat_secs = 1).await;
    let alice = node.user("alice").await;
    let room = alice
        .api
        .create_room(room_name, Visibility::Public)
        .await
        .expect("create room");
    let mut ws = node.ws(&alice).await;
    for body in ["two", "three", "four"] {
        alice.api.say(room.id, body).await;
    }
    ws.events_until(room.id, 4).await;
    Four {
        redis,
        node,
        alice,
        room,
        ws,
    }
}

async fn flushall(redis: &RedisServer) {
    assert_eq!(redis.cmd(&["FLUSHALL"]).await, "+OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_wiped_under_open_sockets_closes_them_with_store_reset() {
    let redis = Arc::new(RedisServer::start().await);
    let fast_heartbeat = |c: &mut chat_server::Config| c.presence_heartbeat_secs = 1;
    let n1 = TestServer::start_on_redis(&redis, fast_heartbeat).await;
    let n2 = TestServer::start_on_redis(&redis, fast_heartbeat).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = alice
        .api
        .create_room("before the wipe", Visibility::Public)
        .await
        .expect("create room");
    bob.api.join(room.id).await.expect("join");
    let mut a = n1.ws(&alice).await;
    let mut b = n2.ws(&bob).await;
    alice.api.say(room.id, "one").await;
    alice.api.say(room.id, "two").await;
    b.events_until(room.id, 4).await;

    flushall(&redis).await;

    // Both nodes notice (heartbeat) and tell their sockets, with the documented close code.
    a.expect_close_code(close::STORE_RESET).await;
    b.expect_close_code(close::STORE_RESET).await;

    // The old token is gone with the data: the next hello is refused, not resumed.
    let mut again = n1.ws_raw().await;
    again
        .send_frame(&protocol::ClientFrame::Hello {
            token: alice.token.clone(),
            resume: vec![protocol::ws::Cursor {
                room: room.id,
                seq: 4,
            }],
            epoch: None,
        })
        .await;
    again.expect_close_code(close::UNAUTHORIZED).await;

    // A new account on the empty store works normally on both nodes, and its sockets are not
    // closed again (the nodes adopted the new data set).
    let carol = n2.user("carol").await;
    let mut c = n1.ws(&carol).await;
    let fresh = carol
        .api
        .create_room("after the wipe", Visibility::Public)
        .await
        .expect("create room after the wipe");
    carol.api.say(fresh.id, "hello again").await;
    let events = c.events_until(fresh.id, 2).await;
    assert_eq!(events.last().map(|e| e.seq), Some(2));
    c.assert_no_more_events().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rollback_never_reuses_seqs_and_closes_sockets_with_store_reset() {
    let Four {
        redis,
        node,
        alice,
        room,
        ws: mut a,
    } = four_events("rolled back").await;

    // The store loses its last two events.
    roll_back(&redis, room.id, 2).await;

    // Clients are told, with the documented close code...
    a.expect_close_code(close::STORE_RESET).await;
    // ...and seqs 3 and 4, which alice holds for "three" and "four", are never handed out again.
    // Appends are refused (store_unavailable, retried like any client would) until every node
    // has had time to check; then the next seq is 5.
    let ack = send_retrying(&alice, room.id, "five").await;
    assert_eq!(ack.seq, 5, "a seq clients already hold was reused: {ack:?}");

    // A client that had only seen up to seq 2 learns that 3 and 4 are gone (a gap), instead of
    // jumping over them.
    let (_b, replay) = node
        .ws_resume(
            &alice,
            vec![protocol::ws::Cursor {
                room: room.id,
                seq: 2,
            }],
        )
        .await;
    match replay.as_slice() {
        [protocol::ServerFrame::Gap {
            after: 2,
            until: 4,
            reason: protocol::ws::GapReason::Truncated,
            ..
        }, protocol::ServerFrame::Event(e)] => assert_eq!(e.seq, 5),
        other => panic!("expected a gap over seqs 3..=4, then seq 5; got {other:#?}"),
    }
}

/// Found by the fault runs (issue 5): a client that was offline while the store lost writes
/// missed the 4010 that the open sockets got, and resumed from cursors of the old data set —
/// silently. `welcome` now carries the store's epoch and `hello` sends it back with the
/// cursors; cursors from another epoch get 4010 instead of a resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rollback_while_offline_is_told_at_the_next_hello() {
    let Four {
        redis,
        node,
        alice,
        room,
        ws: a,
    } = four_events("rolled back while away").await;
    let before = a.welcome().epoch.clone();
    assert!(!before.is_empty(), "welcome carries the store epoch");
    // Alice goes offline holding seq 4.
    drop(a);

    roll_back(&redis, room.id, 2).await;

    // Wait until the node works in the new epoch (its bus check and heartbeat ran).
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let after = loop {
        let epoch = node.ws(&alice).await.welcome().epoch.clone();
        if epoch != before {
            break epoch;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never moved to a new store epoch after the rollback"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // Back online with the old cursors: told, not resumed.
    let cursors = vec![protocol::ws::Cursor {
        room: room.id,
        seq: 4,
    }];
    let mut stale = node.ws_raw().await;
    stale
        .send_frame(&protocol::ClientFrame::Hello {
            token: alice.token.clone(),
            resume: cursors.clone(),
            epoch: Some(before),
        })
        .await;
    stale.expect_close_code(close::STORE_RESET).await;

    // Cursors taken in the current epoch resume as usual.
    let mut fresh = node.ws_raw().await;
    fresh.hello_in(&alice.token, cursors, Some(after)).await;
    assert_eq!(fresh.welcome().rooms.len(), 1);
}

/// Found by the fault campaign on b61656f (seed 7000546, `redis_kill` + `redis_rollback`):
/// the node's command connection reached the restarted Redis before its bus subscription
/// noticed the restart, so the node appended at once — and handed out seq 293 a second time,
/// for another message than the one every client held. Now every append carries the highest
/// seq the node saw handed out for the room, and a store below it refuses the append and makes
/// the node check (raise, new epoch, 4010) whether or not the bus noticed anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rollback_unnoticed_by_the_bus_never_reuses_a_seq() {
    let Four {
        redis,
        node: _node,
        alice,
        room,
        ws: mut a,
    } = four_events("quietly rolled back").await;

    // Seqs 3 and 4 are lost; no connection drops, so only the append path can notice.
    lose_writes(&redis, room.id, 2).await;

    let ack = send_retrying(&alice, room.id, "five").await;
    assert_eq!(ack.seq, 5, "a seq clients already hold was reused: {ack:?}");
    a.expect_close_code(close::STORE_RESET).await;
}
