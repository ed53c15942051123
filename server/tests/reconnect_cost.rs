//! What one reconnect costs for a user in many rooms (issue 11): a stranger can put a victim in
//! many rooms (up to `max_rooms_per_user`), and every reconnect reads each room's role, read
//! marker and unread events. They are read for all rooms at once, so the number of store calls
//! (round trips to Redis) does not grow with the number of rooms.
//!
//! `cargo test -p chat-server --test reconnect_cost` checks the bound with 300 rooms;
//! `cargo test -p chat-server --release --test reconnect_cost -- --ignored --nocapture` measures
//! 10,000 rooms on both stores (the figures in docs/BENCHMARKS.md, "Reconnect cost").

mod common;

use chat_server::store::{self, MemberChange, NewMessage, Retention};
use common::*;
use protocol::event::Role;
use protocol::rest::Visibility;
use std::time::{Duration, Instant};

/// Store calls one connect may make whatever the number of rooms (hello to ready: session,
/// account, rooms twice, room metadata, read markers, roles, unread events, peers' names),
/// plus a few for the presence and heartbeat tasks running meanwhile.
const MAX_CALLS: u64 = 16;

struct Measured {
    rooms: usize,
    calls: u64,
    elapsed: Duration,
}

/// A user in `rooms` rooms, each with one unread message from another user; then one
/// connect, measured from `hello` to `ready`.
async fn measure(backend: Backend, rooms: usize) -> Measured {
    let server = TestServer::start_with(backend, |c| {
        c.max_rooms_per_user = rooms as u64 + 10;
        // The welcome lists every room (~200 bytes each): 10,000 rooms make a ~2 MB frame,
        // over what the default write buffer (4 × max_frame_bytes) takes.
        if rooms > 1000 {
            c.limits.max_frame_bytes = 4 << 20;
        }
    })
    .await;
    let victim = server.user("victim").await;
    let spammer = server.user("spammer").await;
    let store = &server.state().store;
    let now = chat_server::auth::now_ms();
    let joined = store::member_joined_json(spammer.id, &spammer.name, Role::Owner, None);
    let victim_joined = store::member_joined_json(victim.id, &victim.name, Role::Member, None);
    let event = serde_json::to_string(&protocol::EventBody::Message {
        id: "spam".into(),
        sender: spammer.id,
        sender_name: spammer.name.clone(),
        body: "spam".into(),
        edited_ts: None,
        deleted: false,
        reply_to: None,
        reactions: Vec::new(),
        mentions: Vec::new(),
        mention_room: false,
        attachments: Vec::new(),
    })
    .unwrap();
    for i in 0..rooms {
        let room = store
            .create_room(
                spammer.id,
                &format!("spam {i}"),
                Visibility::Private,
                &joined,
                now,
            )
            .await
            .unwrap();
        let change = MemberChange {
            room,
            user: victim.id,
            role: Some(Role::Member),
            event_json: &victim_joined,
        };
        store.change_member(change, now).await.unwrap();
        let msg = NewMessage {
            room,
            sender: spammer.id,
            client_id: "spam",
            event_json: &event,
            reply_to: None,
            attachments: &[],
        };
        let retention = Retention {
            max_events: 0,
            max_age_ms: 0,
        };
        store
            .append_message(msg, now, 86_400, retention)
            .await
            .unwrap();
    }
    let mut ws = Ws::connect(&server.ws_url, "victim").await;
    let before = store::calls();
    let start = Instant::now();
    ws.hello(&victim.token, vec![]).await;
    let elapsed = start.elapsed();
    let calls = store::calls() - before;
    let welcome = ws.welcome();
    assert_eq!(welcome.rooms.len(), rooms);
    assert!(
        welcome.rooms.iter().all(|r| r.unread == 1),
        "every room has one unread message"
    );
    Measured {
        rooms,
        calls,
        elapsed,
    }
}

/// One test for both stores, in turn: the call counter is per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_store_calls_do_not_grow_with_rooms() {
    for backend in [Backend::Memory, Backend::Redis] {
        let m = measure(backend, 300).await;
        assert!(
            m.calls <= MAX_CALLS,
            "[{backend}] a connect in {} rooms made {} store calls (at most {MAX_CALLS})",
            m.rooms,
            m.calls
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --release --ignored --nocapture"]
async fn measure_reconnect_with_10k_rooms() {
    for backend in [Backend::Memory, Backend::Redis] {
        let m = measure(backend, 10_000).await;
        println!(
            "[{backend}] reconnect in {} rooms (one unread each): {} store calls, {:.1} ms hello→ready",
            m.rooms,
            m.calls,
            m.elapsed.as_secs_f64() * 1000.0
        );
        assert!(m.calls <= MAX_CALLS);
    }
}
