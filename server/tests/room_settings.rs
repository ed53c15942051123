//! Room settings and profiles (issue 13): rename and topic as history events, per-room
//! notification levels synced across devices, deleting a room, display names and the user
//! card. Both stores, and across two nodes.

mod common;

use common::*;
use protocol::event::EventBody;
use protocol::rest::{NotifyLevel, Room, UpdateProfile, UpdateRoom, User, UserPublic};
use protocol::ws::Cursor;
use protocol::{ErrorCode, RoomEvent, RoomId, ServerFrame};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

common::backend_tests!(
    cluster;
    rename_and_topic_live_in_history_and_on_resume,
    room_settings_are_for_the_owner_and_validated,
    notify_level_syncs_across_devices,
    deleting_a_room_removes_it_for_every_member,
    display_names_in_profile_members_card_and_dms,
    old_clients_keep_working_through_settings,
);

async fn update_room(api: &Api, room: RoomId, body: serde_json::Value) -> ApiResult<Room> {
    let update: UpdateRoom = serde_json::from_value(body).expect("an UpdateRoom");
    api.update_room(room, &update).await
}

async fn delete_room(api: &Api, room: RoomId) -> ApiResult<()> {
    api.delete_room(room).await
}

async fn set_notify(api: &Api, room: RoomId, level: &str) -> ApiResult<()> {
    let level: NotifyLevel = serde_json::from_value(json!(level)).expect("a NotifyLevel");
    api.set_notify(room, level).await
}

async fn set_display_name(api: &Api, name: &str) -> ApiResult<User> {
    let update = UpdateProfile {
        display_name: Some(name.to_owned()),
    };
    api.update_profile(&update).await
}

/// The `room_updated` event's (name, topic).
#[track_caller]
fn update_of(ev: &RoomEvent) -> (Option<String>, Option<String>) {
    match &ev.event {
        EventBody::RoomUpdated { name, topic, .. } => (name.clone(), topic.clone()),
        other => panic!("expected room_updated at seq {}, got {other:?}", ev.seq),
    }
}

/// The next `notify_level` frame for `room`.
async fn notify_frame(ws: &mut Ws, room: RoomId) -> NotifyLevel {
    match ws
        .take(
            "a notify_level frame",
            |f| matches!(f, ServerFrame::NotifyLevel { room: r, .. } if *r == room),
        )
        .await
    {
        ServerFrame::NotifyLevel { level, .. } => level,
        _ => unreachable!(),
    }
}

fn room_in(rooms: &[Room], room: RoomId) -> Option<&Room> {
    rooms.iter().find(|r| r.id == room)
}

/// The owner renames the room and sets its topic: members see one `room_updated` event live,
/// the room list and `welcome` show the new name and topic, history keeps the event, and a
/// device that was away gets it replayed in order on resume. A change to the same values
/// appends nothing; an empty topic clears it.
async fn rename_and_topic_live_in_history_and_on_resume(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut b1 = server.ws(&bob).await;
    let away_at = last_seq(&bob.api, room).await;

    let updated = update_room(
        &alice.api,
        room,
        json!({"name": "Planning", "topic": "Q3 roadmap — see wiki"}),
    )
    .await
    .unwrap();
    assert_eq!(updated.name, "Planning");
    assert_eq!(updated.topic, "Q3 roadmap — see wiki");
    let ev = b1.expect_event().await;
    assert_eq!((ev.room, ev.seq), (room, away_at + 1));
    assert_eq!(
        update_of(&ev),
        (
            Some("Planning".into()),
            Some("Q3 roadmap — see wiki".into())
        )
    );
    assert!(matches!(ev.event, EventBody::RoomUpdated { by, .. } if by == alice.id));

    // Only what changed goes in the event; the same values again append nothing.
    update_room(&alice.api, room, json!({"name": "Planning", "topic": ""}))
        .await
        .unwrap();
    let ev = b1.expect_event().await;
    assert_eq!(update_of(&ev), (None, Some(String::new())));
    let last = last_seq(&alice.api, room).await;
    update_room(&alice.api, room, json!({"name": "Planning"}))
        .await
        .unwrap();
    assert_eq!(
        last_seq(&alice.api, room).await,
        last,
        "no change, no event"
    );
    update_room(&alice.api, room, json!({"topic": "Ship it"}))
        .await
        .unwrap();
    let msg = bob.api.say(room, "after the topic").await.seq;
    let live = b1.events_until(room, msg).await;
    assert_eq!(live.len(), 2, "{live:?}");

    // Room list (REST and welcome) shows the current state.
    let listed = bob.api.my_room(room).await;
    assert_eq!(
        (listed.name.as_str(), listed.topic.as_str()),
        ("Planning", "Ship it")
    );
    let fresh = server.ws(&bob).await;
    let welcome = room_in(&fresh.welcome.as_ref().unwrap().rooms, room)
        .unwrap()
        .clone();
    assert_eq!(
        (welcome.name.as_str(), welcome.topic.as_str()),
        ("Planning", "Ship it")
    );

    // History and resume replay the three changes in seq order, exactly once.
    let history = bob.api.all_events(room).await.unwrap();
    let changes: Vec<_> = history
        .iter()
        .filter(|e| matches!(e.event, EventBody::RoomUpdated { .. }))
        .map(update_of)
        .collect();
    assert_eq!(
        changes,
        [
            (
                Some("Planning".into()),
                Some("Q3 roadmap — see wiki".into())
            ),
            (None, Some(String::new())),
            (None, Some("Ship it".into())),
        ]
    );
    let (_ws, replay) = server
        .ws_resume(&bob, vec![Cursor { room, seq: away_at }])
        .await;
    let seqs: Vec<u64> = replay
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some(e.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, ((away_at + 1)..=msg).collect::<Vec<_>>());
    let replayed_updates = replay
        .iter()
        .filter(|f| matches!(f, ServerFrame::Event(e) if matches!(e.event, EventBody::RoomUpdated { .. })))
        .count();
    assert_eq!(replayed_updates, 3);
}

/// Members who do not own the room, non-members and direct rooms are refused with typed
/// errors; bad names and topics too. Nothing is appended for a refused change.
async fn room_settings_are_for_the_owner_and_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let before = last_seq(&alice.api, room).await;

    update_room(&bob.api, room, json!({"name": "mine now"}))
        .await
        .expect_code(ErrorCode::NotOwner);
    delete_room(&bob.api, room)
        .await
        .expect_code(ErrorCode::NotOwner);
    update_room(&carol.api, room, json!({"topic": "hi"}))
        .await
        .expect_code(ErrorCode::NotAMember);
    delete_room(&carol.api, room)
        .await
        .expect_code(ErrorCode::NotAMember);
    set_notify(&carol.api, room, "none")
        .await
        .expect_code(ErrorCode::NotAMember);
    delete_room(&carol.api, RoomId(999_999))
        .await
        .expect_code(ErrorCode::NotAMember);
    for (body, code) in [
        (json!({"name": ""}), ErrorCode::InvalidRoomName),
        (json!({"name": " padded"}), ErrorCode::InvalidRoomName),
        (json!({"name": "a\u{202E}b"}), ErrorCode::InvalidRoomName),
        (json!({"topic": "two\nlines"}), ErrorCode::InvalidTopic),
        (json!({"topic": "x\u{200B}y"}), ErrorCode::InvalidTopic),
        (json!({"topic": "t".repeat(257)}), ErrorCode::InvalidTopic),
    ] {
        update_room(&alice.api, room, body).await.expect_code(code);
    }
    // Bodies no typed client sends.
    let (status, text) = alice
        .api
        .raw(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(RawBody::Json(json!({"name": 5}))),
        )
        .await;
    assert_refused(status, &text, ErrorCode::BadRequest);
    let (status, text) = alice
        .api
        .raw(
            Method::PUT,
            &format!("/api/v1/rooms/{room}/notify"),
            Some(RawBody::Json(json!({"level": "sometimes"}))),
        )
        .await;
    assert_refused(status, &text, ErrorCode::BadRequest);
    let dm = alice.api.open_dm(bob.id).await.unwrap().id;
    update_room(&alice.api, dm, json!({"topic": "us"}))
        .await
        .expect_code(ErrorCode::DirectRoom);
    delete_room(&alice.api, dm)
        .await
        .expect_code(ErrorCode::DirectRoom);
    assert_eq!(last_seq(&alice.api, room).await, before);
    // A member may still pick their own notification level, in a direct room too.
    set_notify(&bob.api, room, "mentions").await.unwrap();
    set_notify(&bob.api, dm, "none").await.unwrap();
}

/// Bob mutes a room on his laptop: the laptop and the phone both get `notify_level`, and the
/// room list and the next `welcome` carry the level; back to `all` likewise.
async fn notify_level_syncs_across_devices(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let bob_phone = server.login(&bob, "phone").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let other = shared_room(&alice, &[&bob]).await.id;
    let mut laptop = server.ws(&bob).await;
    let mut phone = server.ws(&bob_phone).await;
    let mut a1 = server.ws(&alice).await;
    assert_eq!(bob.api.my_room(room).await.notify, NotifyLevel::All);

    set_notify(&bob.api, room, "mentions").await.unwrap();
    assert_eq!(notify_frame(&mut laptop, room).await, NotifyLevel::Mentions);
    assert_eq!(notify_frame(&mut phone, room).await, NotifyLevel::Mentions);
    set_notify(&bob_phone.api, room, "none").await.unwrap();
    assert_eq!(notify_frame(&mut laptop, room).await, NotifyLevel::None);
    assert_eq!(notify_frame(&mut phone, room).await, NotifyLevel::None);
    assert_eq!(bob.api.my_room(room).await.notify, NotifyLevel::None);
    assert_eq!(bob.api.my_room(other).await.notify, NotifyLevel::All);
    // It is Bob's alone.
    assert_eq!(alice.api.my_room(room).await.notify, NotifyLevel::All);
    let late = server.ws(&bob_phone).await;
    let rooms = &late.welcome.as_ref().unwrap().rooms;
    assert_eq!(room_in(rooms, room).unwrap().notify, NotifyLevel::None);
    assert_eq!(room_in(rooms, other).unwrap().notify, NotifyLevel::All);
    // Alice's sockets hear nothing of it.
    let seen = a1.sync().await;
    assert!(
        !seen
            .iter()
            .any(|f| matches!(f, ServerFrame::NotifyLevel { .. })),
        "{seen:?}"
    );

    set_notify(&bob.api, room, "all").await.unwrap();
    assert_eq!(notify_frame(&mut phone, room).await, NotifyLevel::All);
    assert_eq!(bob.api.my_room(room).await.notify, NotifyLevel::All);
}

/// The owner deletes a room: every member's socket gets `room_deleted` as the room's last
/// event and stops following it, the room leaves their lists (REST, `welcome`, public rooms),
/// its history is gone, and a resume cursor for it is ignored. The sockets keep working.
async fn deleting_a_room_removes_it_for_every_member(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let keep = shared_room(&alice, &[&bob]).await.id;
    alice.api.say(room, "soon gone").await;
    set_notify(&bob.api, room, "none").await.unwrap();
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let last = last_seq(&alice.api, room).await;

    delete_room(&alice.api, room).await.unwrap();
    for ws in [&mut a1, &mut b1] {
        let ev = ws.expect_event().await;
        assert_eq!((ev.room, ev.seq), (room, last + 1));
        assert!(matches!(ev.event, EventBody::RoomDeleted { by } if by == alice.id));
    }
    assert!(room_in(&bob.api.my_rooms().await.unwrap(), room).is_none());
    assert!(room_in(&alice.api.my_rooms().await.unwrap(), room).is_none());
    assert!(room_in(&bob.api.public_rooms().await.unwrap(), room).is_none());
    bob.api
        .history(room, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .get_room(room)
        .await
        .expect_code(ErrorCode::RoomNotFound);
    bob.api
        .send(room, &unique_id(), "anyone?")
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .join(room)
        .await
        .expect_code(ErrorCode::RoomNotFound);
    delete_room(&alice.api, room)
        .await
        .expect_code(ErrorCode::NotAMember);

    // The sockets carry on in the other room.
    let seq = b1.say(keep, "still here").await.seq;
    let ev = a1.expect_event().await;
    assert_eq!((ev.room, ev.seq), (keep, seq));
    // A device that was away resumes with a cursor for the deleted room: no error, no room.
    let (ws, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor { room, seq: 1 }, Cursor { room: keep, seq }],
        )
        .await;
    assert!(replay.is_empty(), "{replay:?}");
    assert!(room_in(&ws.welcome.as_ref().unwrap().rooms, room).is_none());
}

/// A display name is validated like other names, returned by `/me`, shown in the members
/// list, the user card (`GET /users/{id}`, presence private to people sharing a room) and
/// the other side's room list for a DM, and announced live as `user_updated`.
async fn display_names_in_profile_members_card_and_dms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut b1 = server.ws(&bob).await;
    let mut a1 = server.ws(&alice).await;

    for bad in [
        "",
        " Alice",
        "Al\u{202E}ice",
        "A\u{200D}",
        "A\tB",
        &"x".repeat(65),
    ] {
        if bad.is_empty() {
            continue; // "" clears; see below
        }
        set_display_name(&alice.api, bad)
            .await
            .expect_code(ErrorCode::InvalidDisplayName);
    }
    let me = set_display_name(&alice.api, "Alice Liddell").await.unwrap();
    assert_eq!(me.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        alice.api.me().await.unwrap().display_name.as_deref(),
        Some("Alice Liddell")
    );
    for ws in [&mut b1, &mut a1] {
        let frame = ws
            .take("user_updated", |f| {
                matches!(f, ServerFrame::UserUpdated { .. })
            })
            .await;
        assert_eq!(
            frame,
            ServerFrame::UserUpdated {
                user: alice.id,
                display_name: Some("Alice Liddell".into())
            }
        );
    }
    let members = bob.api.members(room).await.unwrap();
    let shown = members.iter().find(|m| m.user.id == alice.id).unwrap();
    assert_eq!(shown.user.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(shown.user.username, alice.name);
    let card: UserPublic = bob.api.get_user(alice.id).await.unwrap();
    assert_eq!(card.display_name.as_deref(), Some("Alice Liddell"));
    assert!(
        card.online,
        "bob shares a room with alice: he sees her online"
    );
    // Carol shares no room with Alice: the card shows the name, not the presence.
    let card = carol.api.get_user(alice.id).await.unwrap();
    assert_eq!(card.display_name.as_deref(), Some("Alice Liddell"));
    assert!(!card.online && card.last_seen.is_none(), "{card:?}");
    let dm = carol.api.open_dm(alice.id).await.unwrap();
    assert_eq!(dm.name, alice.name);
    assert_eq!(dm.peer_display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        carol.api.my_room(dm.id).await.peer_display_name.as_deref(),
        Some("Alice Liddell")
    );

    // "" removes it.
    let me = set_display_name(&alice.api, "").await.unwrap();
    assert_eq!(me.display_name, None);
    let frame = b1
        .take("user_updated", |f| {
            matches!(
                f,
                ServerFrame::UserUpdated {
                    display_name: None,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(frame, ServerFrame::UserUpdated { user, .. } if user == alice.id));
    assert_eq!(bob.api.get_user(alice.id).await.unwrap().display_name, None);
    assert_eq!(carol.api.my_room(dm.id).await.peer_display_name, None);
}

/// A client that predates room settings: it reads the room list and the stream as raw JSON
/// with only the fields it knows. The rename event is one it skips; the messages around it
/// still arrive once and in order, and old-shape calls still work.
async fn old_clients_keep_working_through_settings(backend: Backend) {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct OldRoom {
        id: RoomId,
        name: String,
        last_seq: u64,
        unread: u64,
    }
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let old = server.user("old").await;
    let room = shared_room(&alice, &[&old]).await.id;
    set_display_name(&alice.api, "Alice").await.unwrap();
    update_room(&alice.api, room, json!({"name": "renamed", "topic": "new"}))
        .await
        .unwrap();
    set_notify(&old.api, room, "mentions").await.unwrap();
    let (status, body) = old.api.raw(Method::GET, "/api/v1/rooms", None).await;
    assert_eq!(status, 200, "{body}");
    let rooms: Vec<OldRoom> = serde_json::from_str(&body).unwrap();
    assert!(rooms.iter().any(|r| r.id == room && r.name == "renamed"));
    let (status, body) = old
        .api
        .raw(Method::GET, &format!("/api/v1/users/{}", alice.id), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let card: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(card["username"], alice.name.as_str());

    // The stream, as an old client reads it: event kinds it knows, others skipped by seq.
    let mut ws = server.ws(&old).await;
    let before = last_seq(&old.api, room).await;
    alice.api.say(room, "one").await;
    update_room(&alice.api, room, json!({"topic": "newer"}))
        .await
        .unwrap();
    let last = alice.api.say(room, "two").await.seq;
    let events = ws.events_until(room, last).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, ((before + 1)..=last).collect::<Vec<_>>());
    let known = ["message", "edit", "delete", "member_joined", "member_left"];
    let readable: Vec<&str> = events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.event).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .filter(|k| known.contains(&k.as_str()))
        .map(|_| "ok")
        .collect();
    assert_eq!(readable.len(), 2, "the two messages; the update is skipped");
    // Old-shape message send still works.
    let ack = old.api.send(room, "old-1", "hi").await.unwrap();
    assert_eq!(ack.seq, last + 1);
}

/// Across two nodes: a rename on one node reaches members on the other live; a notification
/// level set through one node reaches the user's socket on the other; a deletion on one node
/// is seen by members on the other, whose next welcome lacks the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_settings_cross_nodes() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut b2 = n2.ws(&bob).await;
    let mut b1 = n1.ws(&bob).await;

    update_room(&alice.api, room, json!({"name": "two nodes", "topic": "t"}))
        .await
        .unwrap();
    let ev = b2.expect_event().await;
    assert_eq!(update_of(&ev), (Some("two nodes".into()), Some("t".into())));
    b1.expect_event().await;

    // Bob's level, set through node 1, reaches his socket on node 2.
    set_notify(&bob.api_on(&n1), room, "mentions")
        .await
        .unwrap();
    assert_eq!(notify_frame(&mut b2, room).await, NotifyLevel::Mentions);
    assert_eq!(notify_frame(&mut b1, room).await, NotifyLevel::Mentions);
    assert_eq!(
        bob.api_on(&n2).my_room(room).await.notify,
        NotifyLevel::Mentions
    );

    // Alice's display name, set on node 1, reaches Bob on node 2.
    set_display_name(&alice.api, "Alice of node one")
        .await
        .unwrap();
    let frame = b2
        .take("user_updated", |f| {
            matches!(f, ServerFrame::UserUpdated { .. })
        })
        .await;
    assert!(matches!(frame, ServerFrame::UserUpdated { user, .. } if user == alice.id));

    let last = last_seq(&alice.api, room).await;
    delete_room(&alice.api, room).await.unwrap();
    let ev = b2.expect_event().await;
    assert_eq!((ev.room, ev.seq), (room, last + 1));
    assert!(matches!(ev.event, EventBody::RoomDeleted { .. }));
    let fresh = n2.ws(&bob).await;
    assert!(room_in(&fresh.welcome.as_ref().unwrap().rooms, room).is_none());
    bob.api_on(&n2)
        .history(room, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);
}
