//! The server's store lost data (protocol §3.6 close 4010, §7.7) while the app was connected.
//!
//! Rolled back (the last writes lost, sessions kept): the app drops its cached history and
//! cursors, reconnects without resume and shows what the server has now — not the lost
//! messages, and not skipping new messages that reuse the lost seqs — while a message still in
//! its outbox is delivered exactly once and drafts stay. Wiped (sessions gone too): the cache
//! is dropped the same way and the session ends (4001 on the next hello).
//!
//! The trigger is the one the server documents: the `store:epoch` key changes (or goes away),
//! and every node closes every socket with 4010 within one presence heartbeat (1 s here).

mod common;

use common::*;
use protocol::ipc::{AppEvent, ConnectionState, MessageStatus};
use protocol::rest::Visibility;
use std::time::Duration;

fn saw_history_reset(s: &Seen) -> Option<()> {
    matches!(s, Seen::Event(AppEvent::HistoryReset)).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_rollback_drops_cached_history_and_keeps_the_outbox() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.presence_heartbeat_secs = 1).await;
    // After the 4010 the app waits 30–60 s before reconnecting unless told to reconnect now:
    // the test writes a message into the outbox in that window, then reconnects it.
    let home = Home::slow_to_reconnect(Duration::from_secs(60));
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "rolled back").await;
    let doomed = bob
        .create_room("created in the lost second", Visibility::Public)
        .await;
    within("join", backend.join_room(doomed.id))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"));
    let mut seqs = Vec::new();
    for body in ["one", "two", "three", "four"] {
        seqs.push(bob.send(room.id, body).await.seq);
    }
    ui.wait_message("four", |m| m.body == "four").await;
    within("draft", backend.set_draft(room.id, "half written"))
        .await
        .unwrap_or_else(|e| panic!("set_draft: {e}"));
    assert_eq!(
        within("search", backend.search("three"))
            .await
            .unwrap_or_default()
            .len(),
        1
    );

    // The store loses its last writes: "three", "four" and the second room (as Redis can
    // with appendfsync everysec after a machine crash), and tells the nodes by a new epoch.
    use chat_server::store::redis::keys;
    let key = keys::room(room.id);
    let kept = seqs[1].to_string();
    assert_eq!(redis.cmd(&["HSET", &key, "seq", &kept]).await, ":0");
    let lost_from = seqs[2].to_string();
    assert_eq!(
        redis
            .cmd(&["ZREMRANGEBYSCORE", &keys::log(room.id), &lost_from, "+inf"])
            .await,
        ":2"
    );
    let gone = doomed.id;
    redis
        .cmd(&[
            "DEL",
            &keys::room(gone),
            &keys::members(gone),
            &keys::log(gone),
        ])
        .await;
    let doomed_id = doomed.id.to_string();
    for set in [
        keys::user_rooms(me.id),
        keys::user_rooms(bob.id),
        "rooms:public".to_owned(),
    ] {
        redis.cmd(&["SREM", &set, &doomed_id]).await;
    }
    assert_eq!(
        redis.cmd(&["SET", "store:epoch", "rolled-back"]).await,
        "+OK"
    );

    // The app is told (4010), drops what it cached and says so, then waits to reconnect.
    ui.wait_for("HistoryReset", saw_history_reset).await;
    ui.wait_state("Reconnecting after the reset", |s| {
        matches!(s, ConnectionState::Reconnecting { attempt: 1, .. })
    })
    .await;
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_else(|e| panic!("count: {e}"));
    assert_eq!(cached, 0, "cached history dropped");
    assert!(
        within("search", backend.search("three"))
            .await
            .unwrap_or_default()
            .is_empty(),
        "the search index forgot the dropped messages"
    );
    // Written now: into the outbox, sent on the next welcome.
    let pending = within("send", backend.send(room.id, "written during the reset"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(pending.status, MessageStatus::Pending);
    assert!(matches!(
        backend.snapshot().connection,
        ConnectionState::Reconnecting { .. }
    ));

    backend.reconnect_now();
    let sent = ui
        .wait_message("the outbox message, sent", |m| {
            m.client_id == pending.client_id && is_sent(m)
        })
        .await;
    // `ready` may come before or after the ack.
    if backend.snapshot().connection != ConnectionState::Online {
        ui.wait_online().await;
    }
    // It took the first seq after what the store kept: the seq the app had held for "three".
    assert_eq!(sent.seq, Some(seqs[2]));
    // A new message at the seq the app had held for "four" arrives (a stale resume cursor
    // would have skipped it as already seen).
    let after = bob.send(room.id, "after the reset").await;
    assert_eq!(after.seq, seqs[3]);
    ui.wait_message("after the reset", |m| m.body == "after the reset")
        .await;

    // The cache shows exactly what the server has, each message once.
    let server_bodies = bob.bodies(room.id).await;
    assert_eq!(
        server_bodies,
        ["one", "two", "written during the reset", "after the reset"]
    );
    let page = within("messages", backend.messages(room.id, None, Some(50)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(bodies(&page.messages), server_bodies);
    assert!(page.messages.iter().all(is_sent));
    for lost in ["three", "four"] {
        assert!(
            within("search", backend.search(lost))
                .await
                .unwrap_or_default()
                .is_empty(),
            "{lost:?} is still cached"
        );
    }
    let outbox = backend
        .cache()
        .outbox_pending()
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"));
    assert!(outbox.is_empty());

    // The room list is the server's again: the lost room is gone, the other one current.
    let rooms = within("rooms", backend.rooms())
        .await
        .unwrap_or_else(|e| panic!("rooms: {e}"));
    let ids: Vec<_> = rooms.iter().map(|r| r.room.id).collect();
    assert_eq!(ids, vec![room.id]);
    assert_eq!(rooms[0].room.last_seq, after.seq);
    assert_eq!(
        rooms[0].last_message.as_ref().map(|m| m.body.as_str()),
        Some("after the reset")
    );
    // What only this device had is kept.
    assert_eq!(
        within("draft", backend.get_draft(room.id))
            .await
            .unwrap_or_default(),
        "half written"
    );
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_wipe_drops_cached_history_then_ends_the_session() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.presence_heartbeat_secs = 1).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "wiped").await;
    bob.send(room.id, "soon gone").await;
    ui.wait_message("soon gone", |m| m.body == "soon gone")
        .await;

    assert_eq!(redis.cmd(&["FLUSHALL"]).await, "+OK");

    ui.wait_for("HistoryReset", saw_history_reset).await;
    let reason = ui
        .wait_for("SessionEnded", |s| match s {
            Seen::Event(AppEvent::SessionEnded { reason }) => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(!reason.is_empty());
    assert_eq!(backend.snapshot().user, None);
    assert_eq!(backend.snapshot().connection, ConnectionState::Offline);
    let rooms = within("rooms", backend.rooms())
        .await
        .unwrap_or_else(|e| panic!("rooms: {e}"));
    assert!(rooms.is_empty(), "{rooms:?}");
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_else(|e| panic!("count: {e}"));
    assert_eq!(cached, 0);
    backend.shutdown().await;
}
