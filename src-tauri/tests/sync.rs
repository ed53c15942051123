//! The connection manager against a real server: states, reconnect after a server restart,
//! resume without duplicates or holes, and gap filling from history. Also what the app shows
//! right after it connects and the actions around the connection: every room's last message in
//! the room list, the server's own limits, "reconnect now", and the count of unsent messages the
//! UI warns about before logging out.

mod common;

use common::*;
use protocol::ipc::{AppErrorCode, AppEvent, ConnectionState, RoomView};
use protocol::rest::{Room, Visibility};
use protocol::ErrorCode;
use std::time::Duration;
use tokio::time::Instant;

/// Connects, reports Connecting → Online, survives a server restart (Reconnecting → Online)
/// and receives live messages afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart() {
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    assert!(ui
        .log
        .lock()
        .map(|l| l.contains(&Seen::Event(AppEvent::Connection {
            state: ConnectionState::Connecting
        })))
        .unwrap_or(false));

    let (bob, room) = in_peers_room(&backend, &server, "general").await;

    server.down().await;
    let state = ui
        .wait_state("Reconnecting", |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await;
    let ConnectionState::Reconnecting { attempt, .. } = state else {
        unreachable!()
    };
    assert_eq!(attempt, 1);
    assert!(matches!(
        backend.snapshot().connection,
        ConnectionState::Reconnecting { .. } | ConnectionState::Connecting
    ));

    server.up().await;
    ui.wait_online().await;
    assert_eq!(backend.snapshot().connection, ConnectionState::Online);

    bob.send(room.id, "after the restart").await;
    let m = ui
        .wait_message("bob's message", |m| m.body == "after the restart")
        .await;
    assert_eq!(m.sender, bob.id);
    assert!(is_sent(&m));
    // Not looking at the room: a notification.
    let (title, body) = ui
        .wait_for("a notification", |s| match s {
            Seen::Notification { title, body } => Some((title.clone(), body.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (title.as_str(), body.as_str()),
        (bob.username.as_str(), "after the restart")
    );
    // Looking at it (window focused): none.
    backend.set_focus(Some(room.id)).await.unwrap();
    bob.send(room.id, "seen live").await;
    ui.wait_message("seen live", |m| m.body == "seen live")
        .await;
    bob.send(room.id, "sync point").await;
    ui.wait_message("sync point", |m| m.body == "sync point")
        .await;
    ui.drain();
    let notified = ui
        .log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|s| matches!(s, Seen::Notification { .. }))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(notified, 1);
    backend.shutdown().await;
}

/// Messages sent while the app was closed arrive exactly once, in order, on the next start,
/// and the cache holds every message of the room without a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_delivers_exactly_the_missed_messages() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "resume").await;
    for i in 1..=3 {
        bob.send(room.id, &format!("live {i}")).await;
    }
    ui.wait_message("live 3", |m| m.body == "live 3").await;
    backend.shutdown().await;

    // Closed: bob keeps talking.
    for i in 1..=7 {
        bob.send(room.id, &format!("missed {i}")).await;
    }

    let (backend, mut ui) = home.open().await;
    // Replayed before `ready`, so before Online.
    let mut arrived = Vec::new();
    while arrived.len() < 7 {
        let m = ui
            .wait_message("a missed message", |m| m.body.starts_with("missed"))
            .await;
        arrived.push(m.body);
    }
    ui.wait_online().await;
    let expected: Vec<String> = (1..=7).map(|i| format!("missed {i}")).collect();
    assert_eq!(arrived, expected, "each missed message once, in order");
    // Nothing else arrives twice: a marker message after them is the next message event.
    bob.send(room.id, "marker").await;
    let next = ui.wait_message("the next message", |_| true).await;
    assert_eq!(next.body, "marker");
    // The unread count is the server's (3 live + 7 missed) plus the marker, not double.
    let rooms = within("rooms", backend.rooms()).await.unwrap_or_default();
    let unread = rooms
        .iter()
        .find(|r| r.room.id == room.id)
        .map(|r| r.room.unread);
    assert_eq!(unread, Some(11));

    let page = within("messages", backend.messages(room.id, None, Some(50)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    let mut want: Vec<String> = (1..=3).map(|i| format!("live {i}")).collect();
    want.extend(expected);
    want.push("marker".into());
    assert_eq!(bodies(&page.messages), want);
    assert_eq!(bodies(&page.messages), bob.bodies(room.id).await);
    let seqs: Vec<u64> = page.messages.iter().filter_map(|m| m.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ascending, no duplicates: {seqs:?}"
    );
    backend.shutdown().await;
}

/// More missed events than the server replays: it sends `gap`, the backend pages the missing
/// ones in over REST, and the cache still ends up complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_is_filled_from_history() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.limits.max_replay = 3).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "gappy").await;
    bob.send(room.id, "before").await;
    ui.wait_message("before", |m| m.body == "before").await;
    backend.shutdown().await;

    for i in 1..=12 {
        bob.send(room.id, &format!("gap {i}")).await;
    }
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    // The fill happens before `ready`, so by now the cache is complete.
    let page = within("messages", backend.messages(room.id, None, Some(50)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    let mut want = vec!["before".to_owned()];
    want.extend((1..=12).map(|i| format!("gap {i}")));
    assert_eq!(bodies(&page.messages), want);
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_default();
    assert_eq!(cached, 13);
    ui.drain();
    let delivered = ui
        .log
        .lock()
        .map(|log| {
            log.iter()
                .filter(|s| {
                    matches!(s, Seen::Event(AppEvent::Message { message }) if message.body.starts_with("gap"))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(delivered, 12, "each filled message reported once");
    backend.shutdown().await;
}

/// Ann (the app, through `proxy`) and Bob share room `name`; Ann sees "before", closes the
/// app, and Bob sends "gap 1" ..= "gap 12": more than the server replays (`max_replay` 3), so
/// the next start gets a `gap` to fill over REST.
async fn away_during_a_gap(
    home: &Home,
    server: &Server,
    proxy: &SlowHistory,
    name: &str,
) -> (Peer, Room) {
    let (backend, mut ui) = home.open().await;
    within("set_server", backend.set_server(&proxy.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server: {e}"));
    within("register", backend.register(&unique_name("ann"), PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    ui.wait_online().await;
    let (bob, room) = in_peers_room(&backend, server, name).await;
    bob.send(room.id, "before").await;
    ui.wait_message("before", |m| m.body == "before").await;
    backend.shutdown().await;
    for i in 1..=12 {
        bob.send(room.id, &format!("gap {i}")).await;
    }
    (bob, room)
}

/// A gap fill whose history request hangs (a slow server) does not stall the socket: while it
/// waits, a message written in the app still reaches the server and the socket stays up past
/// several ping deadlines; when the history comes, the filled messages reach the UI once, in
/// order, and the cache is complete. (Before the socket loop handed frames to their own task,
/// it awaited the fill: nothing was sent meanwhile, and the silent socket was dropped.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_gap_fill_keeps_the_socket_up_and_sending() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.limits.max_replay = 3).await;
    let slow = SlowHistory::start(server.addr).await;
    let mut home = Home::new();
    // A server silent for 1.5 pings (300 ms) counts as gone.
    home.timing.ping_every = Duration::from_millis(200);
    let (bob, room) = away_during_a_gap(&home, &server, &slow, "slow").await;

    let (backend, mut ui) = home.open().await;
    slow.wait_held().await;
    // The fill waits for its first page. The socket still sends:
    within("send", backend.send(room.id, "written during the fill"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let deadline = Instant::now() + TIMEOUT;
    while !bob
        .bodies(room.id)
        .await
        .contains(&"written during the fill".to_owned())
    {
        assert!(
            Instant::now() < deadline,
            "the message written during the fill did not reach the server within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and stays up across several ping deadlines.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slow.held(), 1, "the fill is still waiting");
    slow.release();
    ui.wait_online().await;
    let log = {
        ui.drain();
        ui.log.lock().map(|l| l.clone()).unwrap_or_default()
    };
    let lost: Vec<&Seen> = log
        .iter()
        .filter(|s| {
            matches!(
                s,
                Seen::Event(AppEvent::Connection {
                    state: ConnectionState::Reconnecting { .. }
                })
            )
        })
        .collect();
    assert!(lost.is_empty(), "the socket was dropped: {lost:?}");
    let filled: Vec<String> = log
        .iter()
        .filter_map(|s| match s {
            Seen::Event(AppEvent::Message { message }) if message.body.starts_with("gap") => {
                Some(message.body.clone())
            }
            _ => None,
        })
        .collect();
    let want: Vec<String> = (1..=12).map(|i| format!("gap {i}")).collect();
    assert_eq!(filled, want, "each filled message once, in order");
    let mut all = vec!["before".to_owned()];
    all.extend(want);
    all.push("written during the fill".to_owned());
    // The ack and the echo of the message written during the fill come after the fill.
    let deadline = Instant::now() + TIMEOUT;
    let page = loop {
        let page = within("messages", backend.messages(room.id, None, Some(50)))
            .await
            .unwrap_or_else(|e| panic!("messages: {e}"));
        if bodies(&page.messages) == all || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(bodies(&page.messages), all);
    assert_eq!(bodies(&page.messages), bob.bodies(room.id).await);
    backend.shutdown().await;
}

/// A gap fill whose history requests fail for a passing reason (the node restarting: 503
/// `store_unavailable`) asks again while the socket is up, and the cache ends up complete.
/// (It used to skip the gap at the first failure: the cache kept a hole that only scrolling
/// back filled, and offline the messages were missing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gap_fill_is_asked_again_and_the_cache_ends_complete() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.limits.max_replay = 3).await;
    let proxy = SlowHistory::start(server.addr).await;
    proxy.release();
    let home = Home::new();
    let (_bob, room) = away_during_a_gap(&home, &server, &proxy, "flaky").await;

    proxy.fail_next(2);
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    assert_eq!(proxy.failed(), 2, "the fill's first two pages were refused");
    // The fill happens before `ready`: the cache holds every message, without a hole.
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_default();
    assert_eq!(
        cached, 13,
        "the cache holds the 12 missed messages and the one before"
    );
    let complete_from = backend
        .cache()
        .room(room.id)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.complete_from);
    assert!(
        complete_from.is_some_and(|c| c <= 2),
        "the cache is complete back to the first message: {complete_from:?}"
    );
    let page = within("messages", backend.messages(room.id, None, Some(50)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    let mut want = vec!["before".to_owned()];
    want.extend((1..=12).map(|i| format!("gap {i}")));
    assert_eq!(bodies(&page.messages), want);
    backend.shutdown().await;
}

/// The session revoked from another device: the server closes with 4001, the backend reports
/// `session_ended`, forgets the token and stays offline (no reconnect loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_ends_and_forgets_the_token() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let account = chat_desktop::credentials::account_key(&server.url(), &me.username);
    assert!(home.tokens.load(&account).ok().flatten().is_some());

    let phone = Peer::login(&server, &me.username).await;
    phone.revoke_other_sessions().await;
    let reason = ui
        .wait_for("SessionEnded", |s| match s {
            Seen::Event(AppEvent::SessionEnded { reason }) => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(!reason.is_empty());
    assert_eq!(home.tokens.load(&account).ok().flatten(), None);
    let snapshot = backend.snapshot();
    assert_eq!(snapshot.user, None);
    assert_eq!(snapshot.connection, ConnectionState::Offline);
    assert_eq!(snapshot.username.as_deref(), Some(me.username.as_str()));
    // Logging in again works and reconnects.
    within("login", backend.login(&me.username, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login: {e}"));
    ui.wait_online().await;
    backend.shutdown().await;
}

/// A direct room shows the peer's presence, and presence changes reach the UI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_room_shows_peer_presence() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let ann_home = Home::new();
    let (ann, mut ann_ui, _) = signed_up(&ann_home, &server, "ann").await;
    let bob = Peer::register(&server, "bob").await;
    let dm = within("open_dm", ann.open_dm(bob.id))
        .await
        .unwrap_or_else(|e| panic!("open_dm: {e}"));
    let rooms = within("rooms", ann.rooms()).await.unwrap_or_default();
    let view = rooms.iter().find(|r| r.room.id == dm.id);
    assert_eq!(view.map(|v| v.peer_online), Some(Some(false)));

    // Bob comes online with the desktop app.
    let bob_home = Home::new();
    let (bob_app, _bob_ui) = bob_home.open().await;
    within("set_server", bob_app.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server: {e}"));
    within("login", bob_app.login(&bob.username, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login: {e}"));
    ann_ui
        .wait_for("bob online", |s| match s {
            Seen::Event(AppEvent::Presence {
                user, online: true, ..
            }) if *user == bob.id => Some(()),
            _ => None,
        })
        .await;
    let rooms = within("rooms", ann.rooms()).await.unwrap_or_default();
    let view = rooms.iter().find(|r| r.room.id == dm.id);
    assert_eq!(view.map(|v| v.peer_online), Some(Some(true)));
    bob_app.shutdown().await;
    ann.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// After connecting: previews, limits, reconnect now, unsent count
// ---------------------------------------------------------------------------------------------
/// Polls `rooms()` after each `rooms_changed` until `done` holds (or fails after TIMEOUT).
async fn wait_rooms(
    backend: &chat_desktop::Backend,
    ui: &mut Ui,
    what: &str,
    done: impl Fn(&[RoomView]) -> bool,
) -> Vec<RoomView> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rooms = within("rooms", backend.rooms())
            .await
            .unwrap_or_else(|e| panic!("rooms: {e}"));
        if done(&rooms) {
            return rooms;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {TIMEOUT:?}; the room list: {rooms:#?}"
        );
        // Wake on the next change, or re-check after a while.
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            ui.wait_for("rooms_changed", |s| {
                matches!(s, Seen::Event(AppEvent::RoomsChanged)).then_some(())
            }),
        )
        .await;
    }
}

fn preview(rooms: &[RoomView], name: &str) -> Option<(String, u64)> {
    rooms.iter().find(|r| r.room.name == name).and_then(|r| {
        r.last_message
            .as_ref()
            .map(|m| (m.body.clone(), r.room.unread))
    })
}

/// An account that already has rooms with history logs in on a new device: without opening any
/// room, the room list shows each room's last message and its unread count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_list_shows_every_rooms_last_message_after_login() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let ann = Peer::register(&server, "ann").await;
    let bob = Peer::register(&server, "bob").await;
    let mut names = Vec::new();
    for (name, count) in [("trips", 3), ("books", 1), ("quiet", 0)] {
        let room = bob.create_room(name, Visibility::Private).await;
        bob.invite(room.id, ann.id).await;
        for i in 1..=count {
            bob.send(room.id, &format!("{name} {i}")).await;
        }
        names.push(name);
    }

    let home = Home::new();
    let (backend, mut ui) = home.open().await;
    within("set_server", backend.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server: {e}"));
    within("login", backend.login(&ann.username, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login: {e}"));
    ui.wait_online().await;

    let rooms = wait_rooms(&backend, &mut ui, "previews of every room", |rooms| {
        preview(rooms, "trips").is_some()
            && preview(rooms, "books").is_some()
            && rooms
                .iter()
                .any(|r| r.room.name == "quiet" && r.no_messages)
    })
    .await;
    assert_eq!(preview(&rooms, "trips"), Some(("trips 3".into(), 3)));
    assert_eq!(preview(&rooms, "books"), Some(("books 1".into(), 1)));
    let quiet = rooms.iter().find(|r| r.room.name == "quiet");
    assert!(
        quiet.is_some_and(|r| r.last_message.is_none() && r.no_messages),
        "the room with only joins is listed as having no messages: {quiet:?}"
    );
    assert!(
        rooms
            .iter()
            .filter(|r| r.room.name != "quiet")
            .all(|r| !r.no_messages),
        "rooms with messages never say they have none: {rooms:#?}"
    );
    // The fetched page is the room's newest: opening the room needs no server round trip
    // for it, and it ends with the last message.
    let trips = rooms
        .iter()
        .find(|r| r.room.name == "trips")
        .map(|r| r.room.id);
    let trips = trips.unwrap_or_else(|| panic!("no trips room"));
    let page = within("messages", backend.messages(trips, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(
        bodies(&page.messages),
        vec!["trips 1", "trips 2", "trips 3"]
    );
    assert!(!page.has_more);
    backend.shutdown().await;

    // Next start, offline: the previews come from the cache at once.
    drop(server);
    let (backend, _ui) = home.open().await;
    let rooms = within("rooms", backend.rooms())
        .await
        .unwrap_or_else(|e| panic!("rooms: {e}"));
    assert_eq!(preview(&rooms, "trips"), Some(("trips 3".into(), 3)));
    assert_eq!(preview(&rooms, "books"), Some(("books 1".into(), 1)));
    backend.shutdown().await;
}

/// The composer's limit is the server's: the snapshot carries the limits from `welcome` (kept
/// across restarts), an event announces a change, and the backend refuses longer messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_come_from_the_server() {
    let redis = Redis::start().await;
    let server = Server::start_with(&redis, |c| c.limits.max_message_bytes = 200).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    // `welcome` (before Online) announced them.
    ui.drain();
    let announced = ui.log.lock().is_ok_and(|log| {
        log.iter().any(|s| {
            matches!(s, Seen::Event(AppEvent::Limits { limits }) if limits.max_message_bytes == 200)
        })
    });
    assert!(announced, "no limits event with the server's 200 bytes");
    assert_eq!(backend.snapshot().limits.max_message_bytes, 200);

    let (_bob, room) = in_peers_room(&backend, &server, "limits").await;
    let refused = within("send", backend.send(room.id, &"x".repeat(201))).await;
    let err = refused
        .err()
        .unwrap_or_else(|| panic!("201 bytes were accepted"));
    assert_eq!(
        err.to_app_error().code,
        AppErrorCode::Server(ErrorCode::PayloadTooLarge)
    );
    within("send", backend.send(room.id, &"x".repeat(200)))
        .await
        .unwrap_or_else(|e| panic!("200 bytes refused: {e}"));
    backend.shutdown().await;

    // Restarted without the server: the last known limits are still there.
    drop(server);
    let (backend, _ui) = home.open().await;
    assert_eq!(backend.snapshot().limits.max_message_bytes, 200);
    backend.shutdown().await;
}

/// "Reconnect now" in the banner: with a long backoff (minutes), the app reconnects at once
/// when asked instead of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_now_skips_the_wait() {
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::slow_to_reconnect(Duration::from_secs(600));
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    server.down().await;
    let state = ui
        .wait_state("Reconnecting", |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await;
    let ConnectionState::Reconnecting { retry_in_ms, .. } = state else {
        unreachable!()
    };
    assert!(retry_in_ms >= 300_000, "a long wait: {retry_in_ms} ms");
    server.up().await;
    let asked = Instant::now();
    within(
        "reconnect_now",
        backend.execute(protocol::ipc::Command::ReconnectNow),
    )
    .await
    .unwrap_or_else(|e| panic!("reconnect_now: {e}"));
    ui.wait_online().await;
    assert!(asked.elapsed() < TIMEOUT);
    backend.shutdown().await;
}

/// Messages still in the outbox are counted, so the UI can warn before logging out drops
/// them; after the user confirms, logout leaves nothing behind for the next account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsent_messages_are_counted_before_logout() {
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "unsent").await;
    assert_eq!(backend.unsent().await.ok(), Some(0));

    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    for text in ["one", "two"] {
        within("send", backend.send(room.id, text))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }
    let count = within("unsent", backend.execute(protocol::ipc::Command::Unsent))
        .await
        .unwrap_or_else(|e| panic!("unsent: {e}"));
    assert_eq!(count, serde_json::json!(2));

    within("logout", backend.logout())
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    assert_eq!(backend.unsent().await.ok(), Some(0));
    server.up().await;
    assert!(bob.bodies(room.id).await.is_empty(), "nothing was sent");
    backend.shutdown().await;
}
