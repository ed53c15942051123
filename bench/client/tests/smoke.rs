//! The client benchmark at a tiny scale, without a window (CI): a filled cache is one the app
//! opens signed in, with the rooms in activity order and the newest message where the
//! benchmark expects it; the search measurement runs and finds messages.

use chat_client_bench::fill::{self, Account, Fill};
use chat_client_bench::search;
use chat_desktop::credentials::MemoryTokens;
use chat_desktop::{Backend, EventSink, Options};
use protocol::ipc::AppEvent;
use std::sync::Arc;

struct NoSink;

impl EventSink for NoSink {
    fn emit(&self, _event: AppEvent) {}
    fn notify(&self, _title: &str, _body: &str) {}
    fn unread_changed(&self, _total: u64) {}
}

#[tokio::test]
async fn a_filled_cache_opens_signed_in_with_the_newest_room_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cache.sqlite3");
    // Nothing listens on port 9 of loopback: the app stays offline, like in the benchmark.
    let account = Account::new("http://127.0.0.1:9");
    let f = Fill {
        rooms: 5,
        messages: 203,
        seed: 1,
    };
    let written = fill::create(&path, 5000, &f, Some(&account))
        .await
        .expect("cache filled");
    assert_eq!(written, 203);
    let tokens = MemoryTokens::default();
    fill::save_token(&tokens, &account).expect("token saved");

    let backend = Backend::open(Options::new(&path), Arc::new(tokens), Arc::new(NoSink))
        .await
        .expect("backend opens the filled cache");
    let me = backend.snapshot().user.map(|u| u.username);
    assert_eq!(me.as_deref(), Some("bench_user"), "the session is resumed");
    let rooms = backend.rooms().await.expect("rooms");
    assert_eq!(rooms.len(), 5);
    let (room, newest) = fill::newest(&f).expect("a newest message");
    assert_eq!(
        rooms[0].room.name,
        fill::room_name(room),
        "most recent first"
    );
    assert_eq!(
        backend.snapshot().last_room,
        Some(rooms[0].room.id),
        "the app opens the room active last again"
    );
    let (_, before) = fill::newest_two(&f);
    assert_eq!(
        before.map(|(r, _)| fill::room_name(r)),
        Some(rooms[1].room.name.clone()),
        "the benchmark clicks on the room active before it"
    );
    assert!(rooms.iter().all(|r| r.room.unread == 0), "all read");
    let page = backend
        .messages(rooms[0].room.id, None, Some(50))
        .await
        .expect("newest page from the cache");
    assert_eq!(
        page.messages.len(),
        41,
        "203 messages over 5 rooms: 41 in the newest room"
    );
    assert_eq!(
        page.messages.last().map(|m| m.body.as_str()),
        Some(newest.as_str())
    );
    assert!(!page.has_more, "the whole history is cached");
    backend.shutdown().await;
}

#[tokio::test]
async fn search_is_measured_at_a_tiny_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = search::run(dir.path(), 3, 600, 5, search::Options::default())
        .await
        .expect("search run");
    assert_eq!(r.messages, 600);
    assert_eq!(r.queries, 15);
    assert!(r.all.p50_ms > 0.0 && r.all.p50_ms <= r.all.p99_ms && r.all.p99_ms <= r.all.max_ms);
    assert!(r.mean_hits > 0.0, "the skewed queries find messages");
    assert_eq!(r.kinds.len(), 3);
}

#[tokio::test]
async fn every_command_of_a_room_click_answers_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let timed = chat_client_bench::ipc::run(dir.path(), 3, 300, 2)
        .await
        .expect("ipc run");
    assert_eq!(timed.len(), 6);
    for t in &timed {
        assert!(
            t.error.is_none(),
            "{} failed offline: {:?}",
            t.command,
            t.error
        );
        assert!(t.p50_ms <= t.max_ms);
    }
}
