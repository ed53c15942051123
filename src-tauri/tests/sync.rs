//! The connection manager against a real server: states, reconnect after a server restart,
//! resume without duplicates or holes, and gap filling from history.

mod common;

use common::*;
use protocol::ipc::{AppEvent, ConnectionState};
use protocol::rest::Visibility;

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

    let bob = Peer::register(&server, "bob").await;
    let room = bob.create_room("general", Visibility::Public).await;
    within("join", backend.join_room(room.id))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"));

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
    backend.set_focus(Some(room.id));
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
    let bob = Peer::register(&server, "bob").await;
    let room = bob.create_room("resume", Visibility::Public).await;
    within("join", backend.join_room(room.id))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"));
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
    let bob = Peer::register(&server, "bob").await;
    let room = bob.create_room("gappy", Visibility::Public).await;
    within("join", backend.join_room(room.id))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"));
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
