//! Backups and moving data: export, import into an empty store, export again gives the same
//! bytes; the imported server shows the same history (edits and deletes included), read
//! markers and accounts; a client resumes against it with its cursors and gets no gap and no
//! duplicate, and a resent message is still recognized as one; bans, blocks, reactions,
//! display names, topics and notification levels
//! move too, and a message edited before the move and deleted after it leaves no trace of its
//! edits. Embedded → Redis (keeping a trial server's data) and Redis → Redis (with the real
//! `chat-server admin` binary); on Redis, every key family of the source exists in the target.

mod common;

use common::*;
use protocol::rest::Visibility;
use protocol::ws::Cursor;
use protocol::{RoomId, ServerFrame};
use std::process::Stdio;
use std::sync::Arc;

common::backend_tests!(cluster; round_trip_is_byte_identical_and_clients_resume);

/// A small but complete data set, and bob's view of it at a point in time.
struct World {
    alice: TestUser,
    bob: TestUser,
    rooms: Vec<RoomId>,
    /// The public room, where bob has not seen the last events.
    public: RoomId,
    /// Bob's cursors: everything but the public room's last two events.
    cursors: Vec<Cursor>,
    epoch: String,
    /// A client id bob sent before the move, with the seq it got.
    bob_sent: (String, u64),
    carol: protocol::UserId,
    /// The DM carol opened with alice before blocking her.
    carol_dm: RoomId,
    /// The public message edited before the move (its text and its edit's text).
    edited: u64,
}

async fn world(server: &TestServer) -> World {
    let alice = server.user("alice").await; // the first account: admin
    let bob = server.user_on_device("bob", "Bob's laptop").await;
    let carol = server.user("carol").await;
    let public = shared_room(&alice, &[&bob, &carol]).await.id;
    let private = alice
        .api
        .create_room("private \"quoted\" ünïcode", Visibility::Private)
        .await
        .unwrap()
        .id;
    alice.api.invite(private, bob.id).await.unwrap();
    let direct = alice.api.open_dm(bob.id).await.unwrap().id;
    let mut ws = server.ws(&bob).await;
    let first = alice
        .api
        .say(public, "first, with \"quotes\" and\nnewline")
        .await;
    alice.api.say(public, "to be edited").await;
    let edited = last_seq(&alice.api, public).await;
    alice.api.edit(public, edited, "edited ✓").await.unwrap();
    let doomed = alice.api.say(public, "to be deleted").await;
    alice.api.delete_message(public, doomed.seq).await.unwrap();
    let bob_id = unique_id();
    let bob_ack = ws.send_with_id(public, &bob_id, "bob was here").await;
    alice.api.say(private, "private words").await;
    bob.api.say(direct, "direct words").await;
    bob.api.mark_read(public, first.seq).await.unwrap();
    alice.api.mark_read(direct, 1).await.unwrap();
    bob.api.react(public, first.seq, "👍", true).await.unwrap();
    // Profiles and room settings: a display name, a topic, a notification level.
    alice
        .api
        .update_profile(&protocol::rest::UpdateProfile {
            display_name: Some("Alice Liddell".into()),
        })
        .await
        .unwrap();
    alice
        .api
        .update_room(
            public,
            &protocol::rest::UpdateRoom {
                topic: Some("hikes and \"quotes\"".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    bob.api
        .set_notify(public, protocol::rest::NotifyLevel::Mentions)
        .await
        .unwrap();
    let carol_dm = carol.api.open_dm(alice.id).await.unwrap().id;
    // carol blocks alice, leaves (a member_left event), is banned from it, and is disabled.
    carol.api.set_block(alice.id, true).await.unwrap();
    carol.api.leave(public).await.unwrap();
    alice.api.set_ban(public, carol.id, true).await.unwrap();
    alice
        .api
        .update_user(
            carol.id,
            &protocol::rest::UpdateUser {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    alice
        .api
        .create_invite(&protocol::rest::NewInviteCode {
            uses: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    // Bob saw everything up to now; two more public events come after his cursors.
    let mut cursors = Vec::new();
    for room in [public, private, direct] {
        let seq = last_seq(&alice.api, room).await;
        ws.events_until(room, seq).await;
        cursors.push(Cursor { room, seq });
    }
    alice.api.say(public, "after bob left").await;
    alice.api.say(public, "and another").await;
    let epoch = ws.welcome().epoch.clone();
    ws.close().await;
    World {
        alice,
        bob,
        rooms: vec![public, private, direct],
        public,
        cursors,
        epoch,
        bob_sent: (bob_id, bob_ack.seq),
        carol: carol.id,
        carol_dm,
        edited,
    }
}

/// What the moved store must still enforce and erase: carol's ban and block hold, and deleting
/// the message edited before the move erases its edit's text from history too.
async fn moderation_and_erasure_moved(server: &TestServer, w: &World) {
    let store = &server.state().store;
    assert_eq!(
        store.bans(w.public).await.unwrap(),
        vec![w.carol],
        "the ban moved"
    );
    assert!(
        store.blocked(w.carol, w.alice.id).await.unwrap(),
        "the block moved"
    );
    let refused = w
        .alice
        .api_on(server)
        .send(w.carol_dm, &unique_id(), "after the move")
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(protocol::ErrorCode::Blocked),
        "alice wrote in the DM of the user who blocked her: {refused:?}"
    );
    let api = w.alice.api_on(server);
    api.delete_message(w.public, w.edited).await.unwrap();
    let events = api.all_events(w.public).await.unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("to be edited") && !text.contains("edited ✓"),
        "a message edited before the move and deleted after it left text behind: {text}"
    );
}

/// Key families of a Redis (ids replaced by `#`), without presence (who is online now is not
/// data) — an export that forgets a kind of data leaves a family out of the target.
async fn key_families(server_redis: &RedisServer) -> std::collections::BTreeSet<String> {
    let client = ::redis::Client::open(server_redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    keys.iter()
        .filter(|k| !k.starts_with("pres:"))
        .map(|k| {
            k.split(':')
                .map(|part| {
                    if part.chars().all(|c| c.is_ascii_digit()) {
                        "#"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect()
}

/// Everything a user sees of the data: history of every room (both users' views), room
/// cards with read markers and unread counts.
async fn visible(server: &TestServer, w: &World) -> String {
    let mut out = String::new();
    for user in [&w.alice, &w.bob] {
        let api = user.api_on(server);
        for room in &w.rooms {
            let events = api.all_events(*room).await;
            out.push_str(&format!(
                "{:?}\n",
                events.map(|e| serde_json::to_string(&e).unwrap())
            ));
        }
        let mut rooms = api.my_rooms().await.unwrap();
        rooms.sort_by_key(|r| r.id);
        out.push_str(&serde_json::to_string(&rooms).unwrap());
        out.push_str(&serde_json::to_string(&api.me().await.unwrap()).unwrap());
    }
    out
}

/// Bob, moved to `server`, resumes from his cursors: exactly the two events he missed, no gap;
/// his resend is a duplicate; new messages continue the seqs.
async fn bob_resumes(server: &TestServer, w: &World) {
    let last = last_seq(&w.alice.api_on(server), w.public).await;
    let mut ws = Ws::connect(&server.ws_url, "bob").await;
    let replay = ws
        .hello_in(&w.bob.token, w.cursors.clone(), Some(w.epoch.clone()))
        .await;
    assert_eq!(
        ws.welcome().epoch,
        w.epoch,
        "the store epoch moved with the data"
    );
    let seqs: Vec<(RoomId, u64)> = replay
        .iter()
        .map(|f| match f {
            ServerFrame::Event(e) => (e.room, e.seq),
            other => panic!("replay holds something else than events: {other:?}"),
        })
        .collect();
    assert_eq!(seqs, vec![(w.public, last - 1), (w.public, last)]);
    let dup = ws
        .send_with_id(w.public, &w.bob_sent.0, "bob was here")
        .await;
    assert!(
        dup.duplicate,
        "a resend after the move is a duplicate: {dup:?}"
    );
    assert_eq!(dup.seq, w.bob_sent.1);
    let next = w
        .alice
        .api_on(server)
        .say(w.public, "on the new store")
        .await;
    assert_eq!(next.seq, last + 1);
    let ev = ws.expect_event().await;
    assert_eq!((ev.room, ev.seq), (w.public, last + 1));
    ws.assert_no_more_events().await;
}

/// `chat-server admin <args>` against `redis`.
async fn admin(redis: &RedisServer, args: &[&str]) -> String {
    admin_on(("CHAT_REDIS_URL", redis.url.clone()), args).await
}

/// The setting that points `chat-server admin` at `cluster`.
fn cluster_env(cluster: &RedisCluster) -> (&'static str, String) {
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    ("CHAT_REDIS_CLUSTER", format!("[{}]", urls.join(", ")))
}

/// `chat-server admin args…` with the store setting `store` (name, value).
async fn admin_on(store: (&str, String), args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env(store.0, store.1)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(HTTP_TIMEOUT, out)
        .await
        .unwrap_or_else(|_| panic!("chat-server admin {args:?} did not finish"))
        .unwrap();
    assert!(
        out.status.success(),
        "chat-server admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_file(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("chat-export-{}.jsonl", unique_id()));
    std::fs::write(&path, text).unwrap();
    path
}

async fn rest_export(server: &TestServer, admin: &TestUser) -> String {
    let (status, body) = admin
        .api_on(server)
        .raw(reqwest::Method::GET, "/api/v1/admin/export", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn round_trip_is_byte_identical_and_clients_resume(backend: Backend) {
    let source = TestServer::start(backend).await;
    let w = world(&source).await;
    let seen = visible(&source, &w).await;
    let (first, target) = match backend {
        Backend::Memory => {
            // The embedded store's way out is the admin route; in again, the store's load.
            let first = rest_export(&source, &w.alice).await;
            let target = TestServer::start(Backend::Memory).await;
            let data = chat_server::backup::decode(&first).unwrap();
            target.state().store.load(&data).await.unwrap();
            let again = target.state().store.dump(chat_server::auth::now_ms()).await;
            let again = chat_server::backup::encode(&again.unwrap());
            assert!(
                again == first,
                "export after import differs:\n{first}\n---\n{again}"
            );
            // A second import is refused: the store is not empty.
            let e = target.state().store.load(&data).await.unwrap_err();
            assert!(e.to_string().contains("already holds"), "{e}");
            (first, target)
        }
        Backend::Redis => {
            let first = admin(source.redis.as_ref().unwrap(), &["export"]).await;
            let file = temp_file(&first);
            let empty = Arc::new(RedisServer::start().await);
            admin(&empty, &["import", file.to_str().unwrap()]).await;
            let _ = std::fs::remove_file(&file);
            let target = TestServer::start_on_redis(&empty, |_| {}).await;
            let again = admin(&empty, &["export"]).await;
            assert!(
                again == first,
                "export after import differs:\n{first}\n---\n{again}"
            );
            let source_keys = key_families(source.redis.as_ref().unwrap()).await;
            let target_keys = key_families(&empty).await;
            let missing: Vec<_> = source_keys.difference(&target_keys).collect();
            assert!(
                missing.is_empty(),
                "key families the import did not recreate: {missing:?}"
            );
            (first, target)
        }
        Backend::Cluster => {
            // The same commands on a cluster: the export reads every master, the import
            // writes each key on the master of its slot.
            let source_cluster = source.cluster.as_ref().unwrap();
            let first = admin_on(cluster_env(source_cluster), &["export"]).await;
            let file = temp_file(&first);
            let empty = Arc::new(RedisCluster::start(3, 0).await);
            admin_on(cluster_env(&empty), &["import", file.to_str().unwrap()]).await;
            let _ = std::fs::remove_file(&file);
            let target = TestServer::start_on_cluster(&empty, |_| {}).await;
            let again = admin_on(cluster_env(&empty), &["export"]).await;
            assert!(
                again == first,
                "export after import differs:\n{first}\n---\n{again}"
            );
            (first, target)
        }
    };
    assert!(first.lines().count() > 20, "{first}");
    assert_eq!(
        visible(&target, &w).await,
        seen,
        "the imported server shows other data"
    );
    bob_resumes(&target, &w).await;
    moderation_and_erasure_moved(&target, &w).await;
}

/// A trial server on the embedded store moves to Redis: the admin downloads the export, the
/// operator imports it into an empty Redis with the binary, and a server on that Redis carries
/// on where the trial server stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_to_redis() {
    let trial = TestServer::start(Backend::Memory).await;
    let w = world(&trial).await;
    let seen = visible(&trial, &w).await;
    let first = rest_export(&trial, &w.alice).await;
    trial.shutdown().await;

    let redis = Arc::new(RedisServer::start().await);
    let file = temp_file(&first);
    let out = admin(&redis, &["import", file.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&file);
    assert!(out.starts_with("imported 3 users, 4 rooms"), "{out}");
    let again = admin(&redis, &["export"]).await;
    assert!(
        again == first,
        "Redis exports other bytes:\n{first}\n---\n{again}"
    );

    let server = TestServer::start_on_redis(&redis, |_| {}).await;
    assert_eq!(visible(&server, &w).await, seen);
    bob_resumes(&server, &w).await;
    moderation_and_erasure_moved(&server, &w).await;
}
