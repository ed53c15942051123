//! Two server nodes sharing one Redis: everything a user sees must cross nodes.

mod common;

use common::*;
use protocol::event::EventBody;
use protocol::ws::Cursor;
use protocol::{ClientFrame, RoomEvent, ServerFrame};
use std::collections::HashSet;
use std::sync::Arc;

async fn cluster() -> (Arc<RedisServer>, TestServer, TestServer) {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    (redis, n1, n2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_edits_typing_reads_and_presence_cross_nodes() {
    let (_redis, n1, n2) = cluster().await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    // Accounts and sessions are shared.
    assert_eq!(
        bob.api_on(&n1)
            .me()
            .await
            .expect("bob's token on node 1")
            .id,
        bob.id
    );
    n1.api()
        .login(&bob.name, PASSWORD, None)
        .await
        .expect("login on the other node");

    let room = alice
        .api
        .create_room("cluster", protocol::rest::Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.expect("join via node 2");

    let mut a1 = n1.ws(&alice).await;
    let mut b2 = n2.ws(&bob).await;
    let bob_online = |f: &ServerFrame| matches!(f, ServerFrame::Presence { user, online: true, .. } if *user == bob.id);
    a1.take("bob online (from node 2)", bob_online).await;

    // Messages both ways.
    let m1 = a1.say(room.id, "from node 1").await;
    let ev = b2.expect_event().await;
    assert_eq!((ev.seq, message_of(&ev).1), (m1.seq, "from node 1"));
    let m2 = b2.say(room.id, "from node 2").await;
    assert_eq!(m2.seq, m1.seq + 1);
    let ev = a1
        .take(
            "bob's message",
            |f| matches!(f, ServerFrame::Event(e) if e.seq == m2.seq),
        )
        .await;
    let ServerFrame::Event(ev) = ev else {
        unreachable!()
    };
    assert_eq!(message_of(&ev).1, "from node 2");

    // Edits.
    alice
        .api
        .edit(room.id, m1.seq, "edited on node 1")
        .await
        .expect("edit");
    let ev = b2
        .take("edit", |f| {
            matches!(
                f,
                ServerFrame::Event(RoomEvent {
                    event: EventBody::Edit { .. },
                    ..
                })
            )
        })
        .await;
    let ServerFrame::Event(ev) = ev else {
        unreachable!()
    };
    assert_eq!(
        ev.event,
        EventBody::Edit {
            target: m1.seq,
            sender: alice.id,
            body: "edited on node 1".into()
        }
    );
    let page = bob
        .api
        .history(room.id, None, Some(m1.seq - 1), Some(1))
        .await
        .unwrap();
    assert_eq!(message_of(&page.events[0]).1, "edited on node 1");

    // Typing.
    b2.send_frame(&ClientFrame::Typing { room: room.id }).await;
    let t = a1
        .take("typing from node 2", |f| {
            matches!(f, ServerFrame::Typing { .. })
        })
        .await;
    assert!(
        matches!(t, ServerFrame::Typing { user, room: r, .. } if user == bob.id && r == room.id),
        "{t:?}"
    );

    // Read markers reach the user's socket on the other node.
    let mut b1 = n1.ws(&bob).await;
    b2.send_frame(&ClientFrame::Read {
        room: room.id,
        seq: m2.seq,
    })
    .await;
    let marker = b1
        .take("read marker from node 2", |f| {
            matches!(f, ServerFrame::ReadMarker { .. })
        })
        .await;
    assert_eq!(
        marker,
        ServerFrame::ReadMarker {
            room: room.id,
            seq: m2.seq
        }
    );
    assert_eq!(bob.api_on(&n1).my_room(room.id).await.read_seq, m2.seq);

    // Typing never echoed to bob's connection on node 1 either.
    let echoed: Vec<_> = b1
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Typing { user, .. } if *user == bob.id))
        .collect();
    assert!(echoed.is_empty(), "{echoed:?}");

    // Offline only when bob's last connection (on either node) is gone.
    b2.close().await;
    let early: Vec<_> = a1
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Presence { online: false, .. }))
        .collect();
    assert!(
        early.is_empty(),
        "bob still has a connection on node 1: {early:?}"
    );
    b1.close().await;
    a1.take(
        "bob offline",
        |f| matches!(f, ServerFrame::Presence { user, online: false, .. } if *user == bob.id),
    )
    .await;
    assert!(!alice.api_on(&n2).get_user(bob.id).await.unwrap().online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_from_both_sides_arrive_once_in_order() {
    let (_redis, n1, n2) = cluster().await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await; // seq 1, 2

    let mut a1 = n1.ws(&alice).await;
    let mut a2 = n2.ws(&alice).await;
    let mut b1 = n1.ws(&bob).await;
    let mut b2 = n2.ws(&bob).await;

    let alice_ids: Vec<String> = (0..100)
        .map(|i| format!("alice-{i}-{}", unique_id()))
        .collect();
    let bob_ids: Vec<String> = (0..100)
        .map(|i| format!("bob-{i}-{}", unique_id()))
        .collect();
    tokio::join!(
        send_all(&mut a1, room.id, &alice_ids),
        send_all(&mut b2, room.id, &bob_ids)
    );

    let mut seqs = HashSet::new();
    for id in &alice_ids {
        assert!(seqs.insert(a1.await_ack(room.id, id).await.expect("alice ack").seq));
    }
    for id in &bob_ids {
        assert!(seqs.insert(b2.await_ack(room.id, id).await.expect("bob ack").seq));
    }
    let last = 2 + 200;
    assert_eq!(
        seqs,
        (3..=last).collect::<HashSet<u64>>(),
        "acks cover seqs 3..={last} once each"
    );

    for ws in [&mut a1, &mut a2, &mut b1, &mut b2] {
        let events = ws.events_until(room.id, last).await;
        assert_consecutive(&events, 3);
        let ids: Vec<&str> = events.iter().map(|e| message_of(e).0).collect();
        let from_alice: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|i| i.starts_with("alice-"))
            .collect();
        let from_bob: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|i| i.starts_with("bob-"))
            .collect();
        assert_eq!(
            from_alice,
            alice_ids.iter().map(String::as_str).collect::<Vec<_>>(),
            "[{}] alice's order",
            ws.label
        );
        assert_eq!(
            from_bob,
            bob_ids.iter().map(String::as_str).collect::<Vec<_>>(),
            "[{}] bob's order",
            ws.label
        );
        ws.assert_no_more_events().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_client_id_through_both_nodes_is_one_message() {
    let (_redis, n1, n2) = cluster().await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let alice_n2 = alice.api_on(&n2);

    let mut a1 = n1.ws(&alice).await;
    let mut a2 = n2.ws(&alice).await;
    let mut b1 = n2.ws(&bob).await;

    let mut expected = Vec::new();
    for round in 0..5 {
        let id = unique_id();
        let frame = ClientFrame::Send {
            room: room.id,
            id: id.clone(),
            body: "race".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        };
        tokio::join!(a1.send_frame(&frame), a2.send_frame(&frame));
        let (x, y) = tokio::join!(a1.await_ack(room.id, &id), a2.await_ack(room.id, &id));
        let (x, y) = (x.expect("node 1 ack"), y.expect("node 2 ack"));
        assert_eq!((x.seq, x.ts), (y.seq, y.ts), "round {round}");
        assert_eq!(
            u8::from(!x.duplicate) + u8::from(!y.duplicate),
            1,
            "exactly one original: {x:?} {y:?}"
        );
        expected.push((id, x.seq));

        let id = unique_id();
        let (x, y) = tokio::join!(
            alice.api.send(room.id, &id, "http race"),
            alice_n2.send(room.id, &id, "http race")
        );
        let (x, y) = (x.expect("node 1"), y.expect("node 2"));
        assert_eq!(x.seq, y.seq, "round {round}");
        assert_eq!(
            u8::from(!x.duplicate) + u8::from(!y.duplicate),
            1,
            "exactly one original: {x:?} {y:?}"
        );
        expected.push((id, x.seq));
    }

    let events = b1.expect_events(expected.len()).await;
    assert_consecutive(&events, expected[0].1);
    for (ev, (id, seq)) in events.iter().zip(&expected) {
        assert_eq!((message_of(ev).0, ev.seq), (id.as_str(), *seq));
    }
    b1.assert_no_more_events().await;
    let stored = alice_n2.all_events(room.id).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|e| matches!(e.event, EventBody::Message { .. }))
            .count(),
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_crash_then_resume_on_the_other_node() {
    let (_redis, n1, n2) = cluster().await;
    let alice = n1.user("alice").await;
    let bob = n1.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;

    let mut b1 = n1.ws(&bob).await;
    let seen = a_few(&alice.api, room.id, "before crash", 3).await;
    let got = b1.expect_events(3).await;
    assert_eq!(got.last().unwrap().seq, seen);
    n1.abort();
    drop(b1);

    // Node 2 carries on with the same sessions.
    let alice2 = alice.api_on(&n2);
    let last = a_few(&alice2, room.id, "after crash", 4).await;
    assert_eq!(last, seen + 4);

    let (mut b2, replay) = n2
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: seen,
            }],
        )
        .await;
    let events: Vec<RoomEvent> = replay
        .into_iter()
        .map(|f| match f {
            ServerFrame::Event(e) => e,
            other => panic!("unexpected replay frame {other:?}"),
        })
        .collect();
    assert_consecutive(&events, seen + 1);
    assert_eq!(events.len(), 4);
    assert_eq!(message_of(&events[0]).1, "after crash 0");

    let live = alice2.say(room.id, "live on node 2").await;
    assert_eq!(b2.expect_event().await.seq, live.seq);
    b2.assert_no_more_events().await;
}

/// Sends one message per id over `ws` without waiting for acks.
async fn send_all(ws: &mut Ws, room: protocol::RoomId, ids: &[String]) {
    for id in ids {
        ws.send_frame(&ClientFrame::Send {
            room,
            id: id.clone(),
            body: format!("body of {id}"),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
    }
}

/// Sends `n` messages `"{prefix} {i}"`; returns the last seq.
async fn a_few(api: &Api, room: protocol::RoomId, prefix: &str, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        last = api.say(room, &format!("{prefix} {i}")).await.seq;
    }
    last
}
