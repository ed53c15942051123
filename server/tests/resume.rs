//! Reconnect and resume: replay of missed events, then Ready, then live events, each once.

mod common;

use common::*;
use protocol::ws::{Cursor, GapReason};
use protocol::{RoomEvent, ServerFrame};
use std::time::Duration;

common::backend_tests!(
    cluster;
    resume_replays_exactly_the_missed_events,
    resume_with_nothing_missed,
    resume_while_messages_keep_coming,
    gap_larger_than_max_replay,
);

fn replay_events(replay: &[ServerFrame]) -> Vec<RoomEvent> {
    replay
        .iter()
        .map(|f| match f {
            ServerFrame::Event(ev) => ev.clone(),
            other => panic!("unexpected frame in replay: {other:?}"),
        })
        .collect()
}

async fn resume_replays_exactly_the_missed_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let other = shared_room(&alice, &[&bob]).await;

    let mut b1 = server.ws(&bob).await;
    for i in 0..3 {
        alice.api.say(room.id, &format!("seen {i}")).await;
    }
    let seen = b1.expect_events(3).await;
    let cursor = seen.last().unwrap().seq;
    assert_eq!(cursor, 5);
    b1.close().await;

    // Missed while offline.
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(alice.api.say(room.id, &format!("missed {i}")).await);
    }
    alice.api.say(other.id, "not resumed").await;

    let (mut b2, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: cursor,
            }],
        )
        .await;
    let events = replay_events(&replay);
    assert_consecutive(&events, cursor + 1);
    assert_eq!(events.len(), 5, "exactly the missed events: {events:?}");
    for (i, (ev, ack)) in events.iter().zip(&missed).enumerate() {
        assert_eq!(ev.room, room.id);
        assert_eq!(
            message_of(ev),
            (ack.id.as_str(), format!("missed {i}").as_str())
        );
    }
    let w = b2
        .welcome()
        .rooms
        .iter()
        .find(|r| r.id == room.id)
        .unwrap()
        .clone();
    assert_eq!(w.last_seq, cursor + 5);

    // Live after Ready, in both rooms, without duplicates.
    let live1 = alice.api.say(room.id, "live 1").await;
    let live2 = alice.api.say(room.id, "live 2").await;
    let live3 = alice.api.say(other.id, "live in other room").await;
    let live = b2.expect_events(3).await;
    assert_eq!(
        live.iter().map(|e| (e.room, e.seq)).collect::<Vec<_>>(),
        vec![
            (room.id, live1.seq),
            (room.id, live2.seq),
            (other.id, live3.seq)
        ]
    );
    assert_eq!(live1.seq, cursor + 6);
    b2.assert_no_more_events().await;
}

async fn resume_with_nothing_missed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("quiet", protocol::rest::Visibility::Public)
        .await
        .unwrap();
    alice.api.say(room.id, "hello").await;

    let (mut ws, replay) = server
        .ws_resume(
            &alice,
            vec![Cursor {
                room: room.id,
                seq: 2,
            }],
        )
        .await;
    assert!(replay.is_empty(), "{replay:?}");
    let ack = ws.say(room.id, "next").await;
    assert_eq!(ack.seq, 3);
    assert_eq!(ws.expect_event().await.seq, 3);
    ws.assert_no_more_events().await;
}

async fn resume_while_messages_keep_coming(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    for i in 0..3 {
        alice.api.say(room.id, &format!("before {i}")).await;
    }
    let cursor = 5;

    // Alice keeps sending while bob reconnects: some events land in the replay, some arrive
    // live, and the boundary must neither lose nor repeat one.
    let api = alice.api.clone();
    let room_id = room.id;
    let sender = tokio::spawn(async move {
        let mut last = 0;
        for i in 0..50 {
            last = api.say(room_id, &format!("race {i}")).await.seq;
        }
        last
    });
    // Reconnect once the sender has started (a second socket sees its messages live).
    let mut probe = server.ws(&bob).await;
    probe
        .take(
            "a race message",
            |f| matches!(f, ServerFrame::Event(e) if e.room == room_id && e.seq > cursor),
        )
        .await;

    let (mut b2, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: cursor,
            }],
        )
        .await;
    let final_seq = tokio::time::timeout(Duration::from_secs(60), sender)
        .await
        .expect("sender finished in time")
        .expect("sender task");
    assert_eq!(final_seq, cursor + 50);

    let mut events = replay_events(&replay);
    assert!(
        !events.is_empty(),
        "at least the first race message was missed"
    );
    if events.last().unwrap().seq < final_seq {
        events.extend(b2.events_until(room.id, final_seq).await);
    }
    assert_consecutive(&events, cursor + 1);
    assert_eq!(events.last().unwrap().seq, final_seq);
    b2.assert_no_more_events().await;
}

async fn gap_larger_than_max_replay(backend: Backend) {
    let max_replay = 5;
    let server = TestServer::start_with(backend, |c| c.limits.max_replay = max_replay).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await; // seq 1, 2

    // Exactly max_replay missed: replayed.
    for i in 0..max_replay {
        alice.api.say(room.id, &format!("within {i}")).await;
    }
    let (ws, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: 2,
            }],
        )
        .await;
    assert_eq!(ws.welcome().limits.max_replay, max_replay);
    let events = replay_events(&replay);
    assert_eq!(events.len(), max_replay);
    assert_consecutive(&events, 3);
    ws.close().await;

    // More than max_replay missed: a gap.
    let cursor = 2 + max_replay as u64;
    for i in 0..8 {
        alice.api.say(room.id, &format!("beyond {i}")).await;
    }
    let last = cursor + 8;
    let (mut ws, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: cursor,
            }],
        )
        .await;
    let (gap_at, until) = match replay.first() {
        Some(ServerFrame::Gap {
            room: r,
            after,
            until,
            reason,
        }) => {
            assert_eq!(
                (*r, *after, *reason),
                (room.id, cursor, GapReason::TooLarge)
            );
            (0, *until)
        }
        other => {
            panic!("expected a gap frame first in the replay, got {other:?} (replay {replay:?})")
        }
    };
    assert!(
        until <= last && until + max_replay as u64 >= last,
        "gap until {until}, last {last}"
    );
    // Whatever follows the gap (if anything) continues right after it, up to the newest event.
    let rest = replay_events(&replay[gap_at + 1..]);
    assert!(rest.len() <= max_replay);
    assert_consecutive(&rest, until + 1);
    assert_eq!(rest.last().map(|e| e.seq).unwrap_or(until), last);

    // The gap can be filled from history, and live events continue.
    let page = bob
        .api
        .history(room.id, None, Some(cursor), Some(50))
        .await
        .unwrap();
    assert_consecutive(&page.events, cursor + 1);
    assert_eq!(page.events.len(), 8);
    let ack = alice.api.say(room.id, "live").await;
    assert_eq!(ack.seq, last + 1);
    assert_eq!(ws.expect_event().await.seq, last + 1);
    ws.assert_no_more_events().await;
}
