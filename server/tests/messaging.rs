//! Messaging: live delivery, ordering, idempotent sends, edits and deletes, history paging,
//! read markers and unread counts, typing, presence.

mod common;

use common::*;
use protocol::event::EventBody;
use protocol::{ClientFrame, ErrorCode, RoomEvent, ServerFrame};

common::backend_tests!(
    cluster;
    live_delivery_to_every_connection,
    rooms_joined_while_connected_are_live,
    fifty_messages_keep_their_order,
    idempotent_send,
    concurrent_sends_of_one_id_make_one_message,
    edit_and_delete,
    history_paging,
    history_over_the_socket,
    read_markers_sync_and_unread_counts,
    typing_reaches_others_only,
    presence_online_and_offline,
);

fn assert_message(ev: &RoomEvent, seq: u64, from: &TestUser, text: &str) {
    assert_eq!(ev.seq, seq, "{ev:?}");
    match &ev.event {
        EventBody::Message {
            sender,
            sender_name,
            body,
            edited_ts,
            deleted,
            ..
        } => {
            assert_eq!(*sender, from.id, "{ev:?}");
            assert_eq!(sender_name, &from.name, "{ev:?}");
            assert_eq!(body, text, "{ev:?}");
            assert_eq!(*edited_ts, None);
            assert!(!deleted);
        }
        other => panic!("expected a message at seq {seq}, got {other:?}"),
    }
    assert!(
        ev.ts > 1_600_000_000_000,
        "ts is milliseconds since the epoch: {ev:?}"
    );
}

async fn live_delivery_to_every_connection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await; // seq 1 created, seq 2 bob joined

    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let mut b2 = server.ws(&bob).await;
    let welcome_room = b1
        .welcome()
        .rooms
        .iter()
        .find(|r| r.id == room.id)
        .expect("room in welcome")
        .clone();
    assert_eq!(welcome_room.last_seq, 2);

    // Over the socket.
    let ack = a1.say(room.id, "hello everyone").await;
    assert_eq!((ack.room, ack.seq, ack.duplicate), (room.id, 3, false));
    for ws in [&mut a1, &mut b1, &mut b2] {
        let ev = ws.expect_event().await;
        assert_eq!(ev.room, room.id);
        assert_eq!(ev.ts, ack.ts);
        assert_message(&ev, 3, &alice, "hello everyone");
        assert_eq!(message_of(&ev).0, ack.id);
    }

    // Over HTTP.
    let ack = bob
        .api
        .send(room.id, &unique_id(), "hi from http")
        .await
        .expect("http send");
    assert_eq!((ack.seq, ack.duplicate), (4, false));
    for ws in [&mut a1, &mut b1, &mut b2] {
        let ev = ws.expect_event().await;
        assert_message(&ev, 4, &bob, "hi from http");
    }

    // Exactly once.
    for ws in [&mut a1, &mut b1, &mut b2] {
        ws.assert_no_more_events().await;
    }
}

async fn rooms_joined_while_connected_are_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut b1 = server.ws(&bob).await;
    let mut a1 = server.ws(&alice).await;

    let room = alice
        .api
        .create_room("fresh", protocol::rest::Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.expect("join");
    let ack = a1.say(room.id, "welcome bob").await;
    let ev = b1
        .take(
            "the message in the newly joined room",
            |f| matches!(f, ServerFrame::Event(e) if e.room == room.id && e.seq == ack.seq),
        )
        .await;
    let ServerFrame::Event(ev) = ev else {
        unreachable!()
    };
    assert_message(&ev, ack.seq, &alice, "welcome bob");

    // After leaving, the socket stops receiving the room's messages.
    bob.api.leave(room.id).await.expect("leave");
    let after = a1.say(room.id, "bob is gone").await;
    a1.take(
        "own message event",
        |f| matches!(f, ServerFrame::Event(e) if e.seq == after.seq),
    )
    .await;
    let leaked: Vec<_> = b1
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Event(e) if e.room == room.id && e.seq >= after.seq))
        .collect();
    assert!(
        leaked.is_empty(),
        "a member who left still receives messages: {leaked:?}"
    );
}

async fn fifty_messages_keep_their_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let first = room.last_seq + 2; // creation + bob's join

    let ids: Vec<String> = (0..50).map(|_| unique_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        a1.send_frame(&ClientFrame::Send {
            room: room.id,
            id: id.clone(),
            body: format!("message {i}"),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
    }
    for (i, id) in ids.iter().enumerate() {
        let ack = a1
            .await_ack(room.id, id)
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e:?}"));
        assert_eq!(ack.seq, first + i as u64, "acks follow send order");
        assert!(!ack.duplicate);
    }
    for ws in [&mut b1, &mut a1] {
        let events = ws.expect_events(50).await;
        assert_consecutive(&events, first);
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(
                message_of(ev),
                (ids[i].as_str(), format!("message {i}").as_str())
            );
        }
        ws.assert_no_more_events().await;
    }

    // History agrees.
    let page = bob
        .api
        .history(room.id, None, Some(first - 1), Some(50))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 50);
    assert_consecutive(&page.events, first);
    assert_eq!(message_of(&page.events[49]).1, "message 49");
}

async fn idempotent_send(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;

    let id = unique_id();
    let original = a1.send_with_id(room.id, &id, "only once").await;
    assert!(!original.duplicate);

    let retry = a1.send_with_id(room.id, &id, "only once").await;
    assert!(
        retry.duplicate,
        "a retry is flagged as duplicate: {retry:?}"
    );
    assert_eq!(
        (retry.seq, retry.ts, retry.id.as_str()),
        (original.seq, original.ts, id.as_str())
    );

    let over_http = alice
        .api
        .send(room.id, &id, "only once")
        .await
        .expect("http retry");
    assert!(over_http.duplicate);
    assert_eq!((over_http.seq, over_http.ts), (original.seq, original.ts));

    let ev = b1.expect_event().await;
    assert_message(&ev, original.seq, &alice, "only once");
    let ev = a1.expect_event().await;
    assert_eq!(ev.seq, original.seq);
    b1.assert_no_more_events().await;
    a1.assert_no_more_events().await;

    // The next message simply follows.
    let next = alice.api.say(room.id, "next").await;
    assert_eq!(next.seq, original.seq + 1);

    let events = alice.api.all_events(room.id).await.unwrap();
    let copies = events
        .iter()
        .filter(|e| matches!(&e.event, EventBody::Message { id: i, .. } if *i == id))
        .count();
    assert_eq!(copies, 1, "{events:?}");
}

async fn concurrent_sends_of_one_id_make_one_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut a1 = server.ws(&alice).await;
    let mut a2 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;

    let mut sent = Vec::new();
    for round in 0..5 {
        // Two HTTP requests at once.
        let id = unique_id();
        let (x, y) = tokio::join!(
            alice.api.send(room.id, &id, "http race"),
            alice.api.send(room.id, &id, "http race")
        );
        let (x, y) = (x.expect("first"), y.expect("second"));
        assert_eq!(x.seq, y.seq, "round {round}: {x:?} {y:?}");
        assert_eq!(
            [x.duplicate, y.duplicate].iter().filter(|d| !**d).count(),
            1,
            "exactly one original: {x:?} {y:?}"
        );
        sent.push((id, x.seq));

        // Two sockets of the same user at once.
        let id = unique_id();
        let frame = ClientFrame::Send {
            room: room.id,
            id: id.clone(),
            body: "ws race".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        };
        tokio::join!(a1.send_frame(&frame), a2.send_frame(&frame));
        let (x, y) = tokio::join!(a1.await_ack(room.id, &id), a2.await_ack(room.id, &id));
        let (x, y) = (x.expect("first"), y.expect("second"));
        assert_eq!(x.seq, y.seq, "round {round}: {x:?} {y:?}");
        assert_eq!(
            [x.duplicate, y.duplicate].iter().filter(|d| !**d).count(),
            1,
            "exactly one original: {x:?} {y:?}"
        );
        sent.push((id, x.seq));
    }

    let events = b1.expect_events(sent.len()).await;
    assert_consecutive(&events, sent[0].1);
    for (ev, (id, seq)) in events.iter().zip(&sent) {
        assert_eq!((message_of(ev).0, ev.seq), (id.as_str(), *seq));
    }
    b1.assert_no_more_events().await;
}

async fn edit_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;

    let msg = a1.say(room.id, "original").await;
    b1.expect_event().await;
    a1.expect_event().await;

    // Edit over the socket.
    a1.send_frame(&ClientFrame::Edit {
        room: room.id,
        seq: msg.seq,
        body: "edited once".into(),
        reference: Some("e1".into()),
    })
    .await;
    a1.take(
        "ok e1",
        |f| matches!(f, ServerFrame::Ok { reference } if reference == "e1"),
    )
    .await;
    for ws in [&mut b1, &mut a1] {
        let ev = ws.expect_event().await;
        assert_eq!(ev.seq, msg.seq + 1);
        assert_eq!(
            ev.event,
            EventBody::Edit {
                target: msg.seq,
                sender: alice.id,
                body: "edited once".into()
            }
        );
    }

    // Edit over HTTP.
    alice
        .api
        .edit(room.id, msg.seq, "edited twice")
        .await
        .expect("http edit");
    let ev = b1.expect_event().await;
    assert_eq!(
        ev.event,
        EventBody::Edit {
            target: msg.seq,
            sender: alice.id,
            body: "edited twice".into()
        }
    );

    // History shows the latest text.
    let page = bob
        .api
        .history(room.id, None, Some(msg.seq - 1), Some(1))
        .await
        .unwrap();
    match &page.events[0].event {
        EventBody::Message {
            body,
            edited_ts,
            deleted,
            ..
        } => {
            assert_eq!(body, "edited twice");
            assert!(edited_ts.is_some());
            assert!(!deleted);
        }
        other => panic!("{other:?}"),
    }

    // Only the author edits or deletes; only messages can be edited.
    bob.api
        .edit(room.id, msg.seq, "not mine")
        .await
        .expect_code(ErrorCode::NotAuthor);
    bob.api
        .delete_message(room.id, msg.seq)
        .await
        .expect_code(ErrorCode::NotAuthor);
    b1.send_frame(&ClientFrame::Edit {
        room: room.id,
        seq: msg.seq,
        body: "not mine".into(),
        reference: Some("b1".into()),
    })
    .await;
    let err = b1.expect_error_code(ErrorCode::NotAuthor).await;
    assert_eq!(err.reference.as_deref(), Some("b1"));
    alice
        .api
        .edit(room.id, 9_999, "nothing there")
        .await
        .expect_code(ErrorCode::MessageNotFound);
    alice
        .api
        .edit(room.id, 1, "a membership event")
        .await
        .expect_code(ErrorCode::MessageNotFound);
    alice
        .api
        .edit(room.id, msg.seq, "   ")
        .await
        .expect_code(ErrorCode::InvalidMessage);

    // Delete over the socket.
    a1.send_frame(&ClientFrame::Delete {
        room: room.id,
        seq: msg.seq,
        reference: Some("d1".into()),
    })
    .await;
    a1.take(
        "ok d1",
        |f| matches!(f, ServerFrame::Ok { reference } if reference == "d1"),
    )
    .await;
    let ev = b1.expect_event().await;
    assert_eq!(
        ev.event,
        EventBody::Delete {
            target: msg.seq,
            sender: alice.id
        }
    );

    let page = bob
        .api
        .history(room.id, None, Some(msg.seq - 1), Some(1))
        .await
        .unwrap();
    match &page.events[0].event {
        EventBody::Message { body, deleted, .. } => {
            assert!(deleted, "history marks the message deleted");
            assert_eq!(body, "", "a deleted message has no text");
        }
        other => panic!("{other:?}"),
    }
    alice
        .api
        .edit(room.id, msg.seq, "too late")
        .await
        .expect_code(ErrorCode::MessageDeleted);

    // A second message deleted over HTTP.
    let second = alice.api.say(room.id, "second").await;
    alice
        .api
        .delete_message(room.id, second.seq)
        .await
        .expect("http delete");
    let events = b1.expect_events(2).await;
    assert_eq!(
        events[1].event,
        EventBody::Delete {
            target: second.seq,
            sender: alice.id
        }
    );
    b1.assert_no_more_events().await;

    // The stream keeps every step.
    let kinds: Vec<&'static str> = alice
        .api
        .all_events(room.id)
        .await
        .unwrap()
        .iter()
        .map(|e| match e.event {
            EventBody::Message { .. } => "message",
            EventBody::Edit { .. } => "edit",
            EventBody::Delete { .. } => "delete",
            EventBody::MemberJoined { .. } => "joined",
            EventBody::MemberLeft { .. } => "left",
            EventBody::OwnerChanged { .. } => "owner",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["joined", "joined", "message", "edit", "edit", "delete", "message", "delete"]
    );
}

async fn history_paging(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("paging", protocol::rest::Visibility::Private)
        .await
        .unwrap();
    for i in 2..=31 {
        let ack = alice.api.say(room.id, &format!("m{i}")).await;
        assert_eq!(ack.seq, i);
    }
    let seqs = |p: &protocol::rest::HistoryPage| p.events.iter().map(|e| e.seq).collect::<Vec<_>>();

    // Newest page.
    let page = alice
        .api
        .history(room.id, None, None, Some(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page), (22..=31).collect::<Vec<_>>());
    assert!(page.has_more);
    assert_eq!((page.room, page.first_seq, page.last_seq), (room.id, 1, 31));
    assert_eq!(message_of(&page.events[0]).1, "m22");

    // Backwards.
    let page = alice
        .api
        .history(room.id, Some(22), None, Some(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page), (12..=21).collect::<Vec<_>>());
    assert!(page.has_more);
    let page = alice
        .api
        .history(room.id, Some(12), None, Some(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page), (2..=11).collect::<Vec<_>>());
    assert!(page.has_more);
    let page = alice
        .api
        .history(room.id, Some(2), None, Some(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page), vec![1]);
    assert!(!page.has_more);

    // Forwards.
    let page = alice
        .api
        .history(room.id, None, Some(0), Some(5))
        .await
        .unwrap();
    assert_eq!(seqs(&page), (1..=5).collect::<Vec<_>>());
    assert!(page.has_more);
    let page = alice
        .api
        .history(room.id, None, Some(25), Some(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page), (26..=31).collect::<Vec<_>>());
    assert!(!page.has_more);
    let page = alice
        .api
        .history(room.id, None, Some(31), Some(10))
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert!(!page.has_more);

    // Default limit (50) covers all 31 events.
    let page = alice.api.history(room.id, None, None, None).await.unwrap();
    assert_eq!(seqs(&page), (1..=31).collect::<Vec<_>>());
    assert!(!page.has_more);
}

async fn history_over_the_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("ws history", protocol::rest::Visibility::Public)
        .await
        .unwrap();
    for i in 2..=6 {
        alice.api.say(room.id, &format!("m{i}")).await;
    }
    let mut a1 = server.ws(&alice).await;
    a1.send_frame(&ClientFrame::History {
        room: room.id,
        before: None,
        after: Some(1),
        limit: Some(3),
        reference: Some("h1".into()),
    })
    .await;
    let frame = a1
        .take(
            "history h1",
            |f| matches!(f, ServerFrame::History { reference: Some(r), .. } if r == "h1"),
        )
        .await;
    let ServerFrame::History {
        room: r,
        events,
        has_more,
        last_seq,
        ..
    } = frame
    else {
        unreachable!()
    };
    assert_eq!(r, room.id);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(has_more);
    assert_eq!(last_seq, 6);

    a1.send_frame(&ClientFrame::History {
        room: room.id,
        before: Some(3),
        after: None,
        limit: None,
        reference: Some("h2".into()),
    })
    .await;
    let frame = a1
        .take(
            "history h2",
            |f| matches!(f, ServerFrame::History { reference: Some(r), .. } if r == "h2"),
        )
        .await;
    let ServerFrame::History {
        events, has_more, ..
    } = frame
    else {
        unreachable!()
    };
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(!has_more);

    // Paging a room one is not in.
    let other = server.user("bob").await;
    let theirs = other
        .api
        .create_room("theirs", protocol::rest::Visibility::Private)
        .await
        .unwrap();
    a1.send_frame(&ClientFrame::History {
        room: theirs.id,
        before: None,
        after: None,
        limit: None,
        reference: Some("h3".into()),
    })
    .await;
    let err = a1.expect_error_code(ErrorCode::NotAMember).await;
    assert_eq!(err.reference.as_deref(), Some("h3"));
}

async fn read_markers_sync_and_unread_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let laptop = server.user_on_device("bob", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;
    let room = shared_room(&alice, &[&laptop]).await; // seq 1, 2
    let mut a1 = server.ws(&alice).await;

    for i in 0..3 {
        alice.api.say(room.id, &format!("unread {i}")).await; // seq 3, 4, 5
    }
    let r = laptop.api.my_room(room.id).await;
    assert_eq!(r.unread, 3, "{r:?}");
    assert!(r.read_seq < 3, "{r:?}");
    assert_eq!(
        alice.api.my_room(room.id).await.unread,
        0,
        "own messages are never unread"
    );

    let mut b_laptop = server.ws(&laptop).await;
    let mut b_phone = server.ws(&phone).await;
    let in_welcome = b_laptop
        .welcome()
        .rooms
        .iter()
        .find(|r| r.id == room.id)
        .expect("room in welcome")
        .clone();
    assert_eq!(in_welcome.unread, 3);

    // Read on the laptop's socket; the phone learns about it.
    b_laptop
        .send_frame(&ClientFrame::Read {
            room: room.id,
            seq: 4,
        })
        .await;
    let marker = b_phone
        .take("read marker 4", |f| {
            matches!(f, ServerFrame::ReadMarker { .. })
        })
        .await;
    assert_eq!(
        marker,
        ServerFrame::ReadMarker {
            room: room.id,
            seq: 4
        }
    );
    let r = phone.api.my_room(room.id).await;
    assert_eq!((r.read_seq, r.unread), (4, 1));

    // Read over HTTP; both sockets learn about it.
    phone.api.mark_read(room.id, 5).await.expect("mark read");
    for ws in [&mut b_laptop, &mut b_phone] {
        ws.take(
            "read marker 5",
            |f| matches!(f, ServerFrame::ReadMarker { room: r, seq: 5 } if *r == room.id),
        )
        .await;
    }
    let r = laptop.api.my_room(room.id).await;
    assert_eq!((r.read_seq, r.unread), (5, 0));

    // Never backwards.
    b_laptop
        .send_frame(&ClientFrame::Read {
            room: room.id,
            seq: 3,
        })
        .await;
    b_laptop.sync().await;
    assert_eq!(laptop.api.my_room(room.id).await.read_seq, 5);
    let moved_back: Vec<_> = b_phone
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::ReadMarker { seq, .. } if *seq < 5))
        .collect();
    assert!(moved_back.is_empty(), "{moved_back:?}");

    // Markers are private.
    let leaked: Vec<_> = a1
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::ReadMarker { .. }))
        .collect();
    assert!(
        leaked.is_empty(),
        "another user's read marker reached alice: {leaked:?}"
    );

    // New messages count again, and a new device starts from the stored marker.
    alice.api.say(room.id, "one more").await;
    assert_eq!(laptop.api.my_room(room.id).await.unread, 1);
    let b_new = server.ws(&laptop).await;
    let r = b_new
        .welcome()
        .rooms
        .iter()
        .find(|r| r.id == room.id)
        .unwrap()
        .clone();
    assert_eq!((r.read_seq, r.unread), (5, 1));
}

async fn typing_reaches_others_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let mut b2 = server.ws(&bob).await;

    b1.send_frame(&ClientFrame::Typing { room: room.id }).await;
    let typing = a1
        .take("typing", |f| matches!(f, ServerFrame::Typing { .. }))
        .await;
    assert_eq!(
        typing,
        ServerFrame::Typing {
            room: room.id,
            user: bob.id,
            username: bob.name.clone(),
            ttl_ms: server.limits.typing_ttl_ms
        }
    );

    for ws in [&mut b1, &mut b2] {
        let own: Vec<_> = ws
            .sync()
            .await
            .into_iter()
            .filter(|f| matches!(f, ServerFrame::Typing { .. }))
            .collect();
        assert!(
            own.is_empty(),
            "[{}] the typer's own connections got: {own:?}",
            ws.label
        );
    }

    // Typing is not a room event.
    a1.assert_no_more_events().await;
    assert_eq!(last_seq(&alice.api, room.id).await, 2);

    // And it goes the other way too.
    a1.send_frame(&ClientFrame::Typing { room: room.id }).await;
    for ws in [&mut b1, &mut b2] {
        let t = ws
            .take("typing from alice", |f| {
                matches!(f, ServerFrame::Typing { .. })
            })
            .await;
        assert!(
            matches!(t, ServerFrame::Typing { user, .. } if user == alice.id),
            "{t:?}"
        );
    }
}

async fn presence_online_and_offline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let _room = shared_room(&alice, &[&bob]).await;
    carol
        .api
        .create_room("carol's own", protocol::rest::Visibility::Public)
        .await
        .unwrap();

    let mut a1 = server.ws(&alice).await;
    let mut c1 = server.ws(&carol).await;
    let bob_id = bob.id;
    let is_bob = move |online: bool| move |f: &ServerFrame| matches!(f, ServerFrame::Presence { user, online: o, .. } if *user == bob_id && *o == online);

    let b1 = server.ws(&bob).await;
    a1.take("bob online", is_bob(true)).await;
    let seen = alice.api.get_user(bob.id).await.unwrap();
    assert!(seen.online, "{seen:?}");
    assert_eq!(seen.last_seen, None);

    // Two devices: closing one keeps bob online.
    let b2 = server.ws(&bob).await;
    b1.close().await;
    let early: Vec<_> = a1.sync().await.into_iter().filter(is_bob(false)).collect();
    assert!(early.is_empty(), "bob still has a connection: {early:?}");

    b2.close().await;
    a1.take("bob offline", is_bob(false)).await;
    let seen = alice.api.get_user(bob.id).await.unwrap();
    assert!(!seen.online, "{seen:?}");
    assert!(
        seen.last_seen.is_some(),
        "last_seen is set after being online: {seen:?}"
    );

    // Carol shares no room with bob.
    let about_bob: Vec<_> = c1
        .sync()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Presence { user, .. } if *user == bob.id))
        .collect();
    assert!(about_bob.is_empty(), "{about_bob:?}");
}
