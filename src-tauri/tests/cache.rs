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
