//! History retention (`retention_events`, `retention_secs`): old events leave history, and a
//! client resuming from before them is told with a `gap` instead of silently skipping them.

mod common;

use common::*;
use protocol::ws::{Cursor, GapReason};
use protocol::ServerFrame;
use std::time::Duration;

common::backend_tests!(
    cluster;
    history_keeps_the_newest_events_by_count,
    resume_from_before_retention_reports_a_gap,
    history_drops_events_older_than_the_age_limit,
);

async fn history_keeps_the_newest_events_by_count(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.retention_events = 5).await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    for i in 0..8 {
        alice.api.say(room.id, &format!("message {i}")).await;
    }
    let last = last_seq(&alice.api, room.id).await;

    let events = alice.api.all_events(room.id).await.unwrap();
    assert_eq!(events.len(), 5, "only the newest 5 are kept: {events:?}");
    assert_consecutive(&events, last - 4);
    assert_eq!(message_of(events.last().unwrap()).1, "message 7");
    let page = alice
        .api
        .history(room.id, None, None, Some(100))
        .await
        .unwrap();
    assert_eq!(page.first_seq, last - 4, "history says where it starts");
    assert_eq!(page.last_seq, last);
}

async fn resume_from_before_retention_reports_a_gap(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.retention_events = 3).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let cursor = last_seq(&bob.api, room.id).await;
    for i in 0..6 {
        alice.api.say(room.id, &format!("while away {i}")).await;
    }
    let last = last_seq(&alice.api, room.id).await;

    let (mut ws, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: cursor,
            }],
        )
        .await;
    let (gap, events) = replay.split_first().expect("a replay");
    assert_eq!(
        gap,
        &ServerFrame::Gap {
            room: room.id,
            after: cursor,
            until: last - 3,
            reason: GapReason::Truncated,
        },
        "the events that fell out of retention are reported, not skipped"
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|f| match f {
            ServerFrame::Event(ev) => ev.seq,
            other => panic!("unexpected frame in replay: {other:?}"),
        })
        .collect();
    assert_eq!(seqs, [last - 2, last - 1, last], "then the kept ones, once");
    ws.assert_no_more_events().await;
}

async fn history_drops_events_older_than_the_age_limit(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.retention_secs = 1).await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    alice.api.say(room.id, "old").await;
    // Not a race: after this pause "old" is older than the limit whatever the scheduling.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    alice.api.say(room.id, "new").await;

    let events = alice.api.all_events(room.id).await.unwrap();
    let bodies: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e.event, protocol::EventBody::Message { .. }))
        .map(|e| message_of(e).1)
        .collect();
    assert_eq!(bodies, ["new"], "the old message aged out: {events:?}");
}
