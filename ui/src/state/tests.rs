use super::*;
use protocol::ipc::{MessagePage, MessageStatus, Snapshot};
use protocol::rest::{Room, Visibility};

fn msg(room: u64, seq: Option<u64>, cid: &str, sender: u64, body: &str) -> MessageView {
    MessageView {
        room: RoomId(room),
        seq,
        client_id: cid.into(),
        sender: UserId(sender),
        sender_name: format!("user{sender}"),
        body: body.into(),
        ts: 0,
        edited: false,
        deleted: false,
        status: if seq.is_some() {
            MessageStatus::Sent
        } else {
            MessageStatus::Pending
        },
        reply_to: None,
        quote: None,
        reactions: Vec::new(),
        mentions: Vec::new(),
        mention_room: false,
        attachments: Vec::new(),
        uploads: Vec::new(),
    }
}

fn room(id: u64, kind: RoomKind) -> RoomView {
    RoomView {
        room: Room {
            id: RoomId(id),
            name: format!("room{id}"),
            kind,
            visibility: Visibility::Public,
            member_count: 2,
            last_seq: 0,
            role: None,
            read_seq: 4,
            unread: 3,
            mentions: 0,
            peer: (kind == RoomKind::Direct).then_some(UserId(9)),
            peer_display_name: None,
            topic: String::new(),
            notify: Default::default(),
        },
        last_message: None,
        peer_online: (kind == RoomKind::Direct).then_some(false),
        no_messages: false,
    }
}

fn seqs(t: &Timeline) -> Vec<(Option<u64>, String)> {
    t.messages
        .iter()
        .map(|m| (m.seq, m.client_id.clone()))
        .collect()
}

#[test]
fn pending_message_becomes_sent_in_place_of_order() {
    let mut t = Timeline::default();
    t.upsert(msg(1, Some(1), "a", 2, "x"));
    t.upsert(msg(1, None, "p", 1, "mine"));
    t.upsert(msg(1, Some(2), "b", 2, "y"));
    assert_eq!(
        seqs(&t),
        vec![
            (Some(1), "a".into()),
            (Some(2), "b".into()),
            (None, "p".into())
        ]
    );
    t.upsert(msg(1, Some(3), "p", 1, "mine"));
    assert_eq!(
        seqs(&t),
        vec![
            (Some(1), "a".into()),
            (Some(2), "b".into()),
            (Some(3), "p".into())
        ]
    );
    // An edit replaces by seq; older pages slot in front.
    let mut edited = msg(1, Some(2), "b", 2, "y2");
    edited.edited = true;
    t.upsert(edited);
    t.upsert(msg(1, Some(0), "z", 2, "old"));
    assert_eq!(t.messages.len(), 4);
    assert_eq!(t.messages[0].client_id, "z");
    assert_eq!(t.messages[2].body, "y2");
    assert_eq!(t.oldest_seq(), Some(0));
    assert_eq!(t.newest_seq(), Some(3));
}

#[test]
fn sent_message_never_goes_back_to_pending() {
    // The `sent` event can beat the `send` call's pending copy (found by the e2e test).
    let mut t = Timeline::default();
    t.upsert(msg(1, Some(7), "p", 1, "mine"));
    t.upsert(msg(1, None, "p", 1, "mine"));
    assert_eq!(seqs(&t), vec![(Some(7), "p".into())]);
}

fn started_with_last_room(last_room: Option<u64>) -> AppState {
    let mut s = AppState::default();
    s.apply(Action::Snapshot(Snapshot {
        server_url: Some("http://x".into()),
        username: Some("ann".into()),
        user: None,
        connection: ConnectionState::Connecting,
        limits: Limits::default(),
        last_room: last_room.map(RoomId),
    }));
    s
}

#[test]
fn the_room_last_read_opens_again_at_start() {
    let mut s = started_with_last_room(Some(2));
    s.apply(Action::Rooms(vec![]));
    assert_eq!(s.current, None, "nothing to open before the list has rooms");
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Group),
    ]));
    assert_eq!(s.current, Some(RoomId(2)));
    // Later lists (the server's) leave the user's choice alone.
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Group),
    ]));
    assert_eq!(s.current, Some(RoomId(1)));

    // A room the user left meanwhile is not opened, nor later when it comes back.
    let mut s = started_with_last_room(Some(3));
    s.apply(Action::Rooms(vec![room(1, RoomKind::Group)]));
    assert_eq!(s.current, None);
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(3, RoomKind::Group),
    ]));
    assert_eq!(s.current, None);

    // A room the user opened before the list came stays open.
    let mut s = started_with_last_room(Some(2));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Group),
    ]));
    assert_eq!(s.current, Some(RoomId(1)));
}

#[test]
fn snapshot_picks_the_screen() {
    let s = Rc::new(AppState::default());
    let s = s.reduce(Action::Snapshot(Snapshot {
        server_url: None,
        username: None,
        user: None,
        connection: ConnectionState::Offline,
        limits: Limits {
            max_message_bytes: 100,
            ..Limits::default()
        },
        last_room: None,
    }));
    assert_eq!(
        s.limits.max_message_bytes, 100,
        "the composer's limit is the server's"
    );
    assert_eq!(s.screen, Screen::Server);
    let s = s.reduce(Action::ServerChosen("http://x".into()));
    assert_eq!(s.screen, Screen::Auth);
    let s = s.reduce(Action::LoggedIn(User {
        id: UserId(1),
        username: "ann".into(),
        created_ts: 0,
        admin: false,
        display_name: None,
    }));
    assert_eq!(s.screen, Screen::Main);
    let s = s.reduce(Action::LoggedOut {
        reason: Some("revoked".into()),
    });
    assert_eq!(s.screen, Screen::Auth);
    assert_eq!(s.username_hint.as_deref(), Some("ann"));
    assert_eq!(s.server_url.as_deref(), Some("http://x"));
    assert_eq!(s.notice.as_deref(), Some("revoked"));
}

#[test]
fn typing_expires_and_stops_on_message() {
    let mut s = AppState::default();
    s.apply(Action::Typing {
        room: RoomId(1),
        user: UserId(2),
        username: "bo".into(),
        until_ms: 100,
    });
    s.apply(Action::Typing {
        room: RoomId(1),
        user: UserId(3),
        username: "cy".into(),
        until_ms: 200,
    });
    assert_eq!(s.typing_names(RoomId(1)), vec!["bo", "cy"]);
    let s = Rc::new(s);
    let same = s.clone().reduce(Action::Tick { now_ms: 50 });
    assert!(Rc::ptr_eq(&s, &same), "nothing expired: no re-render");
    assert_eq!(
        s.next_expiry_ms(),
        Some(100),
        "the UI wakes when bo's expires"
    );
    let s = s.reduce(Action::Tick { now_ms: 150 });
    assert_eq!(s.typing_names(RoomId(1)), vec!["cy"]);
    assert!(s.next_expiry_ms().is_some_and(|at| at > 150));
    let s = s.reduce(Action::Message(msg(1, Some(1), "m", 3, "hi")));
    assert!(s.typing_names(RoomId(1)).is_empty());
}

#[test]
fn messages_update_preview_order_and_divider() {
    let mut s = AppState::default();
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Direct),
    ]));
    s.apply(Action::Select(Some(RoomId(1))));
    assert_eq!(s.divider_after, Some(4));
    s.apply(Action::Message(msg(2, Some(7), "m", 9, "hey")));
    assert_eq!(s.rooms[0].room.id, RoomId(2));
    assert_eq!(
        s.rooms[0].last_message.as_ref().map(|m| m.body.as_str()),
        Some("hey")
    );
    s.apply(Action::MarkedRead {
        room: RoomId(2),
        seq: 7,
    });
    assert_eq!(s.rooms[0].room.unread, 0);
    s.apply(Action::Connection {
        state: ConnectionState::Online,
        now_ms: 0,
    });
    assert_eq!(s.peer_status(&s.rooms[0].clone()), Some(Status::Offline));
    s.apply(Action::Presence {
        user: UserId(9),
        online: true,
        last_seen: None,
    });
    assert_eq!(s.peer_status(&s.rooms[0].clone()), Some(Status::Online));
    s.apply(Action::Left(RoomId(1)));
    assert_eq!(s.current, None);
    assert_eq!(s.rooms.len(), 1);
}

fn online(s: &mut AppState) {
    s.apply(Action::Connection {
        state: ConnectionState::Online,
        now_ms: 0,
    });
}

#[test]
fn a_new_display_name_reaches_members_and_me() {
    let mut s = AppState::default();
    me(&mut s, 1);
    let member = |id: u64| MemberView {
        user: protocol::ipc::UserView {
            id: UserId(id),
            username: format!("u{id}"),
            display_name: None,
            online: true,
            last_seen: None,
        },
        owner: false,
    };
    s.apply(Action::Members {
        room: RoomId(3),
        members: vec![member(1), member(2)],
    });
    s.apply(Action::UserUpdated {
        user: UserId(2),
        display_name: Some("Bea".into()),
    });
    s.apply(Action::UserUpdated {
        user: UserId(1),
        display_name: Some("Me Myself".into()),
    });
    let names: Vec<_> = s.members[&RoomId(3)]
        .iter()
        .map(|m| m.user.display_name.clone())
        .collect();
    assert_eq!(names, [Some("Me Myself".into()), Some("Bea".into())]);
    assert_eq!(
        s.user.as_ref().and_then(|u| u.display_name.as_deref()),
        Some("Me Myself")
    );
}

fn me(s: &mut AppState, id: u64) {
    s.user = Some(User {
        id: UserId(id),
        username: "me".into(),
        created_ts: 0,
        admin: false,
        display_name: None,
    });
}

/// Where the "new" line is drawn in the open room.
fn divider_before(s: &AppState) -> Option<String> {
    let room = s.current?;
    let t = s.timeline(room)?;
    let rows = crate::rows::rows(&t.messages, s.divider_after, s.my_id(), |_| 0);
    let at = rows
        .iter()
        .position(|r| *r == crate::rows::Row::NewMessages)?;
    rows[at + 1..].iter().find_map(|r| match r {
        crate::rows::Row::Message { message, .. } => Some(message.body.clone()),
        _ => None,
    })
}

fn page(room: u64, messages: Vec<MessageView>) -> Action {
    Action::Page {
        room: RoomId(room),
        page: MessagePage {
            messages,
            has_more: false,
        },
        older: false,
    }
}

#[test]
fn no_new_line_above_a_message_read_as_it_arrived() {
    let mut s = AppState::default();
    me(&mut s, 1);
    let mut r = room(1, RoomKind::Group);
    r.room.read_seq = 2;
    r.room.unread = 0;
    s.apply(Action::Rooms(vec![r]));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(page(
        1,
        vec![
            msg(1, Some(1), "a", 2, "old"),
            msg(1, Some(2), "b", 2, "read"),
        ],
    ));
    assert_eq!(divider_before(&s), None);
    // Arrives while the room is open and the window focused: read, no line.
    s.apply(Action::Message(msg(1, Some(3), "c", 2, "live")));
    assert_eq!(divider_before(&s), None);
    // The window goes to the background: what arrives now is new.
    s.apply(Action::WindowFocus(false));
    s.apply(Action::Message(msg(1, Some(4), "d", 2, "while away")));
    assert_eq!(divider_before(&s).as_deref(), Some("while away"));
    // Back: the line stays where it was while more arrive.
    s.apply(Action::WindowFocus(true));
    s.apply(Action::Message(msg(1, Some(5), "e", 2, "after")));
    assert_eq!(divider_before(&s).as_deref(), Some("while away"));
}

#[test]
fn new_line_marks_what_was_unread_when_opened() {
    let mut s = AppState::default();
    me(&mut s, 1);
    let mut r = room(1, RoomKind::Group);
    r.room.read_seq = 1;
    s.apply(Action::Rooms(vec![r]));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(page(
        1,
        vec![
            msg(1, Some(1), "a", 2, "read"),
            msg(1, Some(2), "b", 2, "unread"),
        ],
    ));
    assert_eq!(divider_before(&s).as_deref(), Some("unread"));
    s.apply(Action::Message(msg(1, Some(3), "c", 2, "live")));
    assert_eq!(divider_before(&s).as_deref(), Some("unread"));
}

#[test]
fn typing_stops_showing_when_the_connection_drops() {
    let mut s = AppState::default();
    online(&mut s);
    s.apply(Action::Typing {
        room: RoomId(1),
        user: UserId(2),
        username: "bo".into(),
        until_ms: i64::MAX,
    });
    s.apply(Action::Connection {
        state: ConnectionState::Offline,
        now_ms: 0,
    });
    assert!(s.typing_names(RoomId(1)).is_empty());
}

#[test]
fn presence_is_unknown_while_not_connected() {
    let mut s = AppState::default();
    s.apply(Action::Rooms(vec![room(2, RoomKind::Direct)]));
    online(&mut s);
    s.apply(Action::Presence {
        user: UserId(9),
        online: true,
        last_seen: None,
    });
    let dm = s.rooms[0].clone();
    assert_eq!(s.peer_status(&dm), Some(Status::Online));
    assert_eq!(s.status(UserId(9), false), Status::Online);
    s.apply(Action::Connection {
        state: ConnectionState::Reconnecting {
            attempt: 1,
            retry_in_ms: 1000,
            reason: "cut".into(),
        },
        now_ms: 0,
    });
    assert_eq!(s.peer_status(&dm), Some(Status::Unknown));
    assert_eq!(s.status(UserId(9), true), Status::Unknown);
    assert_eq!(
        crate::format::presence_text(Status::Unknown, Some(0), 0),
        "Status unknown"
    );
    // Back online: stale presence events are dropped; the reloaded lists decide.
    online(&mut s);
    assert_eq!(s.status(UserId(9), false), Status::Offline);
    assert_eq!(s.peer_status(&room(3, RoomKind::Group)), None);
}

#[test]
fn history_reset_drops_what_was_loaded_and_says_so() {
    let mut s = AppState::default();
    me(&mut s, 1);
    online(&mut s);
    let mut r = room(1, RoomKind::Group);
    r.last_message = Some(msg(1, Some(6), "lost", 2, "lost"));
    s.apply(Action::Rooms(vec![r]));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(page(
        1,
        vec![
            msg(1, Some(5), "a", 2, "kept"),
            msg(1, Some(6), "lost", 2, "lost"),
            msg(1, None, "p", 1, "pending"),
        ],
    ));
    s.apply(Action::Members {
        room: RoomId(1),
        members: Vec::new(),
    });
    let before = s.history_generation;

    s.apply(Action::HistoryReset);

    // Nothing the server may no longer have is shown: no timeline, no preview, no members.
    assert!(s.timeline(RoomId(1)).is_none());
    assert!(s.members.is_empty());
    assert_eq!(s.rooms[0].last_message, None);
    // The open room stays open and is loaded again (the effect keyed on the generation).
    assert_eq!(s.current, Some(RoomId(1)));
    assert_ne!(s.history_generation, before);
    assert_eq!(
        s.toasts.last().map(|t| t.text.as_str()),
        Some("The server lost recent data; history was reloaded")
    );
    // The reloaded newest page (with the outbox message still pending) shows as it comes.
    s.apply(page(
        1,
        vec![
            msg(1, Some(5), "a", 2, "kept"),
            msg(1, None, "p", 1, "pending"),
        ],
    ));
    let t = s.timeline(RoomId(1)).map(|t| seqs(t)).unwrap_or_default();
    assert_eq!(t, vec![(Some(5), "a".into()), (None, "p".into())]);
}

#[test]
fn a_ban_closes_the_open_room_and_says_why() {
    let mut s = AppState::default();
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Group),
        room(3, RoomKind::Group),
    ]));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(Action::Open(Dialog::LeaveRoom(RoomId(1))));
    let removal = Removal {
        room: RoomId(1),
        room_name: "room1".into(),
        by_name: Some("olga".into()),
        banned: true,
    };
    s.apply(Action::Removed(removal.clone()));
    assert_eq!(s.current, None);
    assert_eq!(s.dialog, None);
    assert!(s.rooms.iter().all(|r| r.room.id != RoomId(1)));
    assert_eq!(s.removal.as_ref(), Some(&removal));
    assert!(s.toasts.is_empty());
    // Picking another room puts the notice away.
    s.apply(Action::Select(Some(RoomId(2))));
    assert_eq!(s.removal, None);
    // A room that is not open: a toast says it, the open room stays.
    s.apply(Action::Removed(Removal {
        room: RoomId(3),
        room_name: "room3".into(),
        by_name: None,
        banned: false,
    }));
    assert_eq!(s.current, Some(RoomId(2)));
    assert_eq!(s.removal, None);
    assert!(s.rooms.iter().all(|r| r.room.id != RoomId(3)));
    assert_eq!(
        s.toasts.last().map(|t| t.text.as_str()),
        Some("You were removed from #\u{2068}room3\u{2069}")
    );
}

/// Scrolled far back in a room, then elsewhere: the room keeps its newest messages and
/// what is unsent, and says older ones exist (they come back from the cache when scrolled
/// to). A busy room in the background sheds pages the same way.
#[test]
fn rooms_not_being_read_keep_their_newest_messages_only() {
    let mut s = AppState::default();
    me(&mut s, 1);
    s.apply(Action::Rooms(vec![
        room(1, RoomKind::Group),
        room(2, RoomKind::Group),
    ]));
    s.apply(Action::Select(Some(RoomId(1))));
    let read_back: Vec<_> = (1..=300)
        .map(|seq| msg(1, Some(seq), &format!("c{seq}"), 2, "old"))
        .collect();
    s.apply(page(1, read_back));
    s.apply(Action::Message(msg(1, None, "unsent", 1, "typed offline")));
    assert_eq!(s.timeline(RoomId(1)).map(|t| t.messages.len()), Some(301));

    s.apply(Action::Select(Some(RoomId(2))));
    let t = s.timeline(RoomId(1)).expect("room 1 keeps a timeline");
    let seqs: Vec<_> = t.messages.iter().filter_map(|m| m.seq).collect();
    assert_eq!(seqs, (201..=300).collect::<Vec<_>>());
    assert_eq!(
        t.messages.last().map(|m| m.client_id.as_str()),
        Some("unsent")
    );
    assert!(t.has_more, "older messages must be offered again");
    assert_eq!(
        t.oldest_seq(),
        Some(201),
        "the next older page starts below 201"
    );

    // Room 1 in the background: it grows to a page and a half, then sheds.
    for seq in 301..=350 {
        s.apply(Action::Message(msg(
            1,
            Some(seq),
            &format!("c{seq}"),
            2,
            "live",
        )));
    }
    let t = s.timeline(RoomId(1)).expect("room 1 keeps a timeline");
    assert!(
        t.messages.len() <= KEEP_AWAY + KEEP_AWAY / 2 + 1,
        "{}",
        t.messages.len()
    );
    assert_eq!(t.newest_seq(), Some(350));
    // The room being read keeps everything it loaded.
    s.apply(page(
        2,
        (1..=200)
            .map(|seq| msg(2, Some(seq), &format!("d{seq}"), 2, "x"))
            .collect(),
    ));
    assert_eq!(s.timeline(RoomId(2)).map(|t| t.messages.len()), Some(200));
}

/// Back at the bottom after reading far back: the list asks to drop what is far above.
#[test]
fn trim_keeps_the_newest_of_the_room_being_read() {
    let mut s = AppState::default();
    me(&mut s, 1);
    s.apply(Action::Rooms(vec![room(1, RoomKind::Group)]));
    s.apply(Action::Select(Some(RoomId(1))));
    s.apply(page(
        1,
        (1..=1000)
            .map(|seq| msg(1, Some(seq), &format!("c{seq}"), 2, "x"))
            .collect(),
    ));
    s.apply(Action::Trim(RoomId(1)));
    let t = s.timeline(RoomId(1)).expect("a timeline");
    assert_eq!(t.messages.len(), KEEP_READING);
    assert_eq!((t.oldest_seq(), t.newest_seq()), (Some(801), Some(1000)));
    assert!(t.has_more);
}
