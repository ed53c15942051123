//! The SQLite cache fed by a real server: retention per room, paging older history back in,
//! full-text search (kept in sync through edits and deletes), and drafts/settings on disk.

mod common;

use common::*;
use protocol::ipc::Settings;
use protocol::rest::Visibility;

/// With room for 5 messages, the cache keeps the newest 5; older pages still come from the
/// server when the user scrolls up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_messages() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let mut home = Home::new();
    home.keep_per_room = 5;
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "busy").await;
    for i in 1..=12 {
        bob.send(room.id, &format!("m{i}")).await;
    }
    ui.wait_message("m12", |m| m.body == "m12").await;
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_else(|e| panic!("count: {e}"));
    assert_eq!(cached, 5);

    let newest = within("messages", backend.messages(room.id, None, Some(5)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(bodies(&newest.messages), ["m8", "m9", "m10", "m11", "m12"]);
    assert!(newest.has_more);

    let before = newest.messages.first().and_then(|m| m.seq);
    let older = within("older messages", backend.messages(room.id, before, Some(5)))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(bodies(&older.messages), ["m3", "m4", "m5", "m6", "m7"]);
    assert!(older.has_more);
    let before = older.messages.first().and_then(|m| m.seq);
    let oldest = within(
        "oldest messages",
        backend.messages(room.id, before, Some(5)),
    )
    .await
    .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(bodies(&oldest.messages), ["m1", "m2"]);
    assert!(!oldest.has_more);
    // Paging back did not grow the cache beyond its limit.
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_else(|e| panic!("count: {e}"));
    assert_eq!(cached, 5);
    backend.shutdown().await;
}

/// Search finds cached messages by word prefix, follows edits and deletes, and treats query
/// syntax as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_cached_messages() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let room = within("create", backend.create_room("notes", Visibility::Private))
        .await
        .unwrap_or_else(|e| panic!("create_room: {e}"));
    for body in [
        "The quick brown fox",
        "lazy dogs sleep",
        "Über café",
        "a \"quoted\" OR thing",
    ] {
        let pending = within("send", backend.send(room.id, body))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        ui.wait_message("sent", |m| m.client_id == pending.client_id && is_sent(m))
            .await;
    }

    let hits = within("search", backend.search("qui"))
        .await
        .unwrap_or_default();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body, "The quick brown fox");
    assert_eq!(hits[0].room, room.id);
    assert_eq!(hits[0].room_name, "notes");

    let hits = within("search", backend.search("uber cafe"))
        .await
        .unwrap_or_default();
    assert_eq!(hits.len(), 1, "diacritics are folded");
    let hits = within("search", backend.search("\"quoted\" OR"))
        .await
        .unwrap_or_default();
    assert_eq!(hits.len(), 1, "query syntax is plain text");
    let hits = within("search", backend.search("fox dogs"))
        .await
        .unwrap_or_default();
    assert!(hits.is_empty(), "all words must match");

    // Edit: the old words are gone from the index, the new ones are in it.
    let fox = within("search", backend.search("fox"))
        .await
        .unwrap_or_default();
    let seq = fox[0].seq;
    within("edit", backend.edit(room.id, seq, "The slow green turtle"))
        .await
        .unwrap_or_else(|e| panic!("edit: {e}"));
    ui.wait_message("the edit", |m| m.seq == Some(seq) && m.edited)
        .await;
    assert!(within("search", backend.search("fox"))
        .await
        .unwrap_or_default()
        .is_empty());
    assert_eq!(
        within("search", backend.search("turtle"))
            .await
            .unwrap_or_default()
            .len(),
        1
    );

    // Delete: gone from search.
    let dogs = within("search", backend.search("dogs"))
        .await
        .unwrap_or_default();
    let seq = dogs[0].seq;
    within("delete", backend.delete(room.id, seq))
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    ui.wait_message("the delete", |m| m.seq == Some(seq) && m.deleted)
        .await;
    assert!(within("search", backend.search("dogs"))
        .await
        .unwrap_or_default()
        .is_empty());
    backend.shutdown().await;
}

/// Drafts, settings, the room last opened and the login survive a restart of the core (same
/// SQLite file and token store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_settings_and_session_survive_restart() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, _ui, me) = signed_up(&home, &server, "ann").await;
    let room = within("create", backend.create_room("drafts", Visibility::Private))
        .await
        .unwrap_or_else(|e| panic!("create_room: {e}"));
    within("draft", backend.set_draft(room.id, "half a thought"))
        .await
        .unwrap_or_else(|e| panic!("set_draft: {e}"));
    let settings = Settings {
        start_minimized: true,
        notifications: false,
        hide_notification_text: true,
    };
    within("settings", backend.set_settings(settings.clone()))
        .await
        .unwrap_or_else(|e| panic!("set_settings: {e}"));
    assert_eq!(backend.snapshot().last_room, None, "no room opened yet");
    within("focus", backend.set_focus(Some(room.id)))
        .await
        .unwrap_or_else(|e| panic!("set_focus: {e}"));
    // Closing the room (no room in view) does not forget which one it was.
    within("unfocus", backend.set_focus(None))
        .await
        .unwrap_or_else(|e| panic!("set_focus: {e}"));
    backend.shutdown().await;

    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    let snapshot = backend.snapshot();
    assert_eq!(snapshot.user.as_ref().map(|u| u.id), Some(me.id));
    assert_eq!(snapshot.server_url, Some(server.url()));
    assert_eq!(snapshot.last_room, Some(room.id), "the app opens it again");
    assert_eq!(backend.get_settings(), settings);
    let draft = within("draft", backend.get_draft(room.id))
        .await
        .unwrap_or_else(|e| panic!("get_draft: {e}"));
    assert_eq!(draft, "half a thought");
    let rooms = within("rooms", backend.rooms()).await.unwrap_or_default();
    assert!(rooms.iter().any(|r| r.room.id == room.id));

    // Logout empties the cache and forgets the token.
    within("logout", backend.logout())
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    assert_eq!(backend.snapshot().user, None);
    assert_eq!(backend.snapshot().last_room, None);
    assert!(within("rooms", backend.rooms())
        .await
        .unwrap_or_default()
        .is_empty());
    let account = chat_desktop::credentials::account_key(&server.url(), &me.username);
    assert_eq!(home.tokens.load(&account).ok().flatten(), None);
    backend.shutdown().await;
}

/// Search matches the words a reader sees: Markdown characters and link targets are not in
/// the index, a hit shows the text without markup, and an edit re-indexes the new text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_the_text_not_the_markup() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let room = within("create", backend.create_room("notes", Visibility::Private))
        .await
        .unwrap_or_else(|e| panic!("create_room: {e}"));
    for body in [
        "**bold** move, see [the docs](https://internal.example/secret)",
        "```rust\nlet answer = 42;\n```",
    ] {
        let pending = within("send", backend.send(room.id, body))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        ui.wait_message("sent", |m| m.client_id == pending.client_id && is_sent(m))
            .await;
    }
    let search = |q: &'static str| within("search", backend.search(q));

    let hits = search("docs").await.unwrap_or_default();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body, "bold move, see the docs");
    assert!(search("internal").await.unwrap_or_default().is_empty());
    assert!(search("secret").await.unwrap_or_default().is_empty());
    assert_eq!(search("answer").await.unwrap_or_default().len(), 1);
    assert!(search("rust").await.unwrap_or_default().is_empty());

    let seq = hits[0].seq;
    within(
        "edit",
        backend.edit(room.id, seq, "_renamed_ [page](https://other.example)"),
    )
    .await
    .unwrap_or_else(|e| panic!("edit: {e}"));
    ui.wait_message("the edit", |m| m.seq == Some(seq) && m.edited)
        .await;
    assert!(search("docs").await.unwrap_or_default().is_empty());
    assert!(search("other").await.unwrap_or_default().is_empty());
    let hits = search("renamed").await.unwrap_or_default();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body, "renamed page");
    // The message itself keeps its source text.
    let m = backend.cache().message(room.id, seq).await.ok().flatten();
    assert_eq!(
        m.map(|m| m.body).as_deref(),
        Some("_renamed_ [page](https://other.example)")
    );
    backend.shutdown().await;
}

/// The first start after the update that changed the cache's layout (`cache/upgrade.rs`) on a
/// cache the app really wrote: the app reports the upgrade's progress to the UI, then opens as
/// it was — signed in with the token it had, the cached history shown and searched, the
/// message written offline still waiting — and that message is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_after_the_update_upgrades_the_cache_and_keeps_everything() {
    use protocol::ipc::{AppEvent, ConnectionState, MessageStatus};
    use sqlx::Connection;

    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "upgrade").await;
    for i in 1..=30 {
        bob.send(room.id, &format!("release note {i}")).await;
    }
    ui.wait_message("release note 30", |m| m.body == "release note 30")
        .await;
    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let pending = within("send", backend.send(room.id, "written offline"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let before = within("messages", backend.messages(room.id, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    within("shutdown", backend.shutdown()).await;

    // As the build before the update left the file.
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(home.cache_path());
        let mut conn = within("connect", sqlx::SqliteConnection::connect_with(&options))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        within(
            "the old layout",
            sqlx::raw_sql(include_str!("data/to_layout_6.sql")).execute(&mut conn),
        )
        .await
        .unwrap_or_else(|e| panic!("the old layout: {e}"));
        within("close", conn.close())
            .await
            .unwrap_or_else(|e| panic!("close: {e}"));
    }

    let (backend, mut ui) = home.open().await;
    let percents: Vec<u8> = ui
        .drain()
        .into_iter()
        .filter_map(|seen| match seen {
            Seen::Event(AppEvent::CacheUpgrade { percent }) => Some(percent),
            _ => None,
        })
        .collect();
    assert_eq!(percents.first(), Some(&0), "{percents:?}");
    assert_eq!(percents.last(), Some(&100), "{percents:?}");
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");

    let snapshot = backend.snapshot();
    assert_eq!(snapshot.user.map(|u| u.id), Some(me.id), "still signed in");
    let after = within("messages", backend.messages(room.id, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(after, before, "the same history, the unsent message last");
    assert_eq!(
        after.messages.last().map(|m| &m.status),
        Some(&MessageStatus::Pending)
    );
    let hits = within("search", backend.search("releas not"))
        .await
        .unwrap_or_else(|e| panic!("search: {e}"));
    assert_eq!(hits.len(), 30);
    assert_eq!(
        hits.first().map(|h| h.body.as_str()),
        Some("release note 30")
    );

    server.up().await;
    ui.wait_message("the unsent message, sent", |m| {
        m.client_id == pending.client_id && is_sent(m)
    })
    .await;
    let on_server = bob.bodies(room.id).await;
    assert_eq!(
        on_server.iter().filter(|b| *b == "written offline").count(),
        1,
        "{on_server:?}"
    );
    within("shutdown", backend.shutdown()).await;
}
