//! What the cache leaves on disk: the file is its owner's only, a deleted message's text is
//! gone from its bytes (pages, WAL, FTS index), logout empties it even when the keychain fails,
//! and notifications can leave the text out.

mod common;

use chat_desktop::credentials::{MemoryTokens, TokenStore};
use chat_desktop::Error;
use common::*;
use protocol::ipc::{AppEvent, Settings};
use std::sync::Arc;

/// The cache file and its WAL and shared-memory files are readable by their owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "modes").await;
    bob.send(room.id, "hello").await;
    ui.wait_message("hello", |m| m.body == "hello").await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", home.cache_path().display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path} has mode {:o}", mode & 0o777);
    }
    backend.shutdown().await;
}

/// Every byte of the cache on disk (the file and its WAL).
fn disk_bytes(home: &Home) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", home.cache_path().display());
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    bytes
}

fn holds(bytes: &[u8], text: &str) -> bool {
    let lower = bytes.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    lower.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A message deleted by its author leaves no trace of its text in the cache's bytes: not in
/// the file's pages, not in the WAL, not in the full-text index (whose tokens are lower case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_leaves_no_trace_in_the_cache_file() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "secrets").await;
    let secret = "Quokkapassphrase";
    within(
        "send",
        backend.send(room.id, &format!("my {secret} is here")),
    )
    .await
    .unwrap_or_else(|e| panic!("send: {e}"));
    let sent = ui
        .wait_message("the secret, sent", |m| {
            m.body.contains(secret) && is_sent(m)
        })
        .await;
    // Searchable, so it is in the FTS index, and on disk.
    let hits = within("search", backend.search("quokkapassphrase"))
        .await
        .unwrap_or_else(|e| panic!("search: {e}"));
    assert_eq!(hits.len(), 1);
    bob.send(room.id, "after the secret").await;
    ui.wait_message("after", |m| m.body == "after the secret")
        .await;
    assert!(
        holds(&disk_bytes(&home), secret),
        "the text is on disk first"
    );

    let seq = sent.seq.unwrap_or_else(|| panic!("no seq"));
    within("delete", backend.delete(room.id, seq))
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    ui.wait_message("the deletion", |m| m.seq == Some(seq) && m.deleted)
        .await;
    let hits = within("search", backend.search("quokkapassphrase"))
        .await
        .unwrap_or_else(|e| panic!("search: {e}"));
    assert!(hits.is_empty());
    assert!(
        !holds(&disk_bytes(&home), secret),
        "the deleted text is still in the cache file or its WAL"
    );
    backend.shutdown().await;
    assert!(!holds(&disk_bytes(&home), secret));
}

/// A keychain whose delete always fails (locked, or the service went away).
struct StuckKeychain(MemoryTokens);

impl TokenStore for StuckKeychain {
    fn load(&self, account: &str) -> chat_desktop::Result<Option<String>> {
        self.0.load(account)
    }
    fn save(&self, account: &str, token: &str) -> chat_desktop::Result<()> {
        self.0.save(account, token)
    }
    fn delete(&self, _account: &str) -> chat_desktop::Result<()> {
        Err(Error::Keychain("the keyring is locked".into()))
    }
}

/// Logout empties the cache even when the keychain cannot remove the token; the failure is
/// still reported, and the next start is logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_clears_the_cache_even_when_the_keychain_fails() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::with_tokens(Arc::new(StuckKeychain(MemoryTokens::default())));
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "private").await;
    bob.send(room.id, "Wombatconfidential").await;
    ui.wait_message("the message", |m| m.body == "Wombatconfidential")
        .await;
    let result = within("logout", backend.logout()).await;
    assert!(matches!(result, Err(Error::Keychain(_))), "{result:?}");
    assert_eq!(backend.snapshot().user, None);
    let rooms = within("rooms", backend.rooms())
        .await
        .unwrap_or_else(|e| panic!("rooms: {e}"));
    assert!(rooms.is_empty(), "{rooms:?}");
    let cached = backend
        .cache()
        .message_count(room.id)
        .await
        .unwrap_or_else(|e| panic!("count: {e}"));
    assert_eq!(cached, 0);
    backend.shutdown().await;
    assert!(!holds(&disk_bytes(&home), "Wombatconfidential"));
    let (backend, _ui) = home.open().await;
    assert_eq!(backend.snapshot().user, None, "logged out after a restart");
    backend.shutdown().await;
}

/// With "show message text" off, a notification names the sender and says nothing of the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_can_hide_the_text() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let settings = Settings {
        hide_notification_text: true,
        ..backend.get_settings()
    };
    within("settings", backend.set_settings(settings))
        .await
        .unwrap_or_else(|e| panic!("set_settings: {e}"));
    let (bob, room) = in_peers_room(&backend, &server, "shared screen").await;
    bob.send(room.id, "the surprise party is friday").await;
    let (title, body) = ui
        .wait_for("a notification", |s| match s {
            Seen::Notification { title, body } => Some((title.clone(), body.clone())),
            _ => None,
        })
        .await;
    assert_eq!(title, bob.username);
    assert_eq!(body, "New message");
    // The message itself reached the app as usual.
    let seen = ui.log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(seen.iter().any(|s| matches!(s,
        Seen::Event(AppEvent::Message { message }) if message.body == "the surprise party is friday")));
    backend.shutdown().await;
}
