//! The moves to the partitioned key layout (`server/src/store/redis/migrate.rs`): a data set in
//! the layout before partitions (`room:<id>…`, `dd:<room>:…`, no `store:layout`), or in layout
//! 2 (rooms tagged; `user:<id>…`, `upl:<id>`, `upl:pending`, `pres:node:<node>`, …), is moved
//! once when a node of this version starts, and then served as before: the same sessions,
//! history, rooms, read markers, uploads and presence, seqs that go on, resends still
//! recognized as duplicates.

mod common;

use chat_server::store::redis::keys;
use common::*;
use protocol::rest::Visibility;
use std::collections::HashMap;
use std::sync::Arc;

async fn connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// The key without its partition tag: `user:{1.2}:5:rooms` → `user:5:rooms`.
fn untagged(key: &str) -> String {
    match key.split_once(":{") {
        Some((prefix, tagged)) => match tagged.split_once('}') {
            Some((_, "")) => prefix.to_owned(),
            Some((_, rest)) => format!("{prefix}{rest}"),
            None => key.to_owned(),
        },
        None => key.to_owned(),
    }
}

/// The data set as the version with layout 2 leaves it (room keys tagged, the rest not): user
/// keys and upload records untagged, the partitions' upload sets and presence merged into the
/// global keys of that version, a user's upload bytes one counter, no `upl:legacy`. Returns
/// how many keys were moved.
async fn to_layout_2(redis: &RedisServer) -> usize {
    let mut con = connection(redis).await;
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .expect("KEYS");
    let mut moved = 0;
    for key in all {
        let old = untagged(&key);
        let mut pipe = redis::pipe();
        if key.starts_with("user:{") && key.ends_with(":upl_bytes") {
            let sizes: Vec<u64> = redis::cmd("HVALS")
                .arg(&key)
                .query_async(&mut con)
                .await
                .expect("HVALS");
            pipe.set(&old, sizes.iter().sum::<u64>()).del(&key);
        } else if key.starts_with("user:{") || key.starts_with("upl:{") {
            pipe.rename(&key, &old);
        } else if key.starts_with("upl:pending:{") {
            let members: Vec<(String, i64)> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut con)
                .await
                .expect("ZRANGE");
            for (id, score) in members {
                pipe.zadd("upl:pending", id, score);
            }
            pipe.del(&key);
        } else if key.starts_with("upl:dead:{") || key.starts_with("upl:rooms:{") {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut con)
                .await
                .expect("SMEMBERS");
            for m in members {
                pipe.sadd(&old, m);
            }
            pipe.del(&key);
        } else if key == "upl:legacy" {
            pipe.del(&key);
        } else if key.starts_with("pres:seen:{") {
            let seen: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .expect("HGETALL");
            for (user, at) in seen {
                pipe.hset("pres:seen", user, at);
            }
            pipe.del(&key);
        } else if key.starts_with("pres:{") {
            let online: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .expect("HGETALL");
            for (user, nodes) in online {
                for node in nodes.split(' ') {
                    pipe.sadd(format!("pres:node:{node}"), &user);
                }
            }
            pipe.del(&key);
        } else {
            continue;
        }
        let () = pipe.query_async(&mut con).await.expect("move back");
        moved += 1;
    }
    let () = redis::cmd("SET")
        .arg("store:layout")
        .arg("2")
        .query_async(&mut con)
        .await
        .expect("SET");
    moved
}

/// The data set as the version before partitions leaves it: every partitioned room and dedupe
/// key renamed back to its old name (`room:{<tag>}:<id>…` → `room:<id>…`), no layout marker.
/// Returns how many keys were renamed.
async fn to_layout_before_partitions(redis: &RedisServer) -> usize {
    to_layout_2(redis).await;
    let mut con = connection(redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .expect("KEYS");
    let mut renamed = 0;
    for key in keys {
        let old = ["room:", "dd:"].iter().find_map(|prefix| {
            let tagged = key.strip_prefix(prefix)?.strip_prefix('{')?;
            let (_, rest) = tagged.split_once("}:")?;
            Some(format!("{prefix}{rest}"))
        });
        if let Some(old) = old {
            let () = redis::cmd("RENAME")
                .arg(&key)
                .arg(&old)
                .query_async(&mut con)
                .await
                .expect("RENAME");
            renamed += 1;
        }
    }
    let _: i64 = redis::cmd("DEL")
        .arg("store:layout")
        .query_async(&mut con)
        .await
        .expect("DEL");
    renamed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_of_the_layout_before_is_served_after_the_move() {
    let redis = Arc::new(RedisServer::start().await);
    let node = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = node.user("alice").await;
    let bob = node.user("bob").await;
    let room = alice
        .api
        .create_room(&unique_name("before"), Visibility::Public)
        .await
        .expect("room")
        .id;
    bob.api.join(room).await.expect("join");
    let first = alice.api.send(room, "client-1", "one").await.expect("send");
    alice
        .api
        .edit(room, first.seq, "one, edited")
        .await
        .expect("edit");
    let second = bob.api.say(room, "two").await;
    bob.api.mark_read(room, second.seq).await.expect("read");
    let dm = alice.api.open_dm(bob.id).await.expect("dm").id;
    alice.api.say(dm, "psst").await;
    let history = alice.api.all_events(room).await.expect("history");
    let dm_history = bob.api.all_events(dm).await.expect("dm history");
    node.shutdown().await;

    let renamed = to_layout_before_partitions(&redis).await;
    assert!(renamed >= 8, "renamed {renamed} keys");
    let old_log = format!("room:{room}:log");
    assert_eq!(redis.cmd(&["EXISTS", &old_log]).await, ":1");

    let node = TestServer::start_on_redis(&redis, |_| {}).await;
    assert_eq!(redis.cmd(&["EXISTS", &old_log]).await, ":0");
    let new_log = keys::log(room);
    assert_eq!(redis.cmd(&["EXISTS", &new_log]).await, ":1");

    // The same sessions, rooms and history.
    let alice_api = alice.api_on(&node);
    let bob_api = bob.api_on(&node);
    assert_eq!(alice_api.all_events(room).await.expect("history"), history);
    assert_eq!(
        bob_api.all_events(dm).await.expect("dm history"),
        dm_history
    );
    let mine: Vec<_> = bob_api.my_rooms().await.expect("rooms");
    let read = mine.iter().find(|r| r.id == room).expect("room listed");
    assert_eq!(read.read_seq, second.seq);
    assert!(mine.iter().any(|r| r.id == dm), "the DM is listed");

    // A resend of a message from before is still the same message; new ones go on.
    let resent = alice_api
        .send(room, "client-1", "one")
        .await
        .expect("resend");
    assert!(resent.duplicate);
    assert_eq!(resent.seq, first.seq);
    let last = history.last().expect("events").seq;
    let next = alice_api.say(room, "three").await;
    assert_eq!(next.seq, last + 1);

    // Started again: nothing left to move, nothing changes.
    node.shutdown().await;
    let node = TestServer::start_on_redis(&redis, |_| {}).await;
    let again = alice.api_on(&node).all_events(room).await.expect("history");
    assert_eq!(again.len(), history.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_move_waits_for_every_old_node_to_stop() {
    let redis = Arc::new(RedisServer::start().await);
    redis
        .cmd(&["HSET", "room:1", "name", "old", "seq", "0"])
        .await;
    // A node of the version before, alive (its heartbeat expires in a minute).
    let expiry = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 60_000)
        .to_string();
    redis.cmd(&["ZADD", "pres:nodes", &expiry, "oldnode"]).await;
    let mut config = test_config();
    config.redis_url = Some(redis.url.clone());
    let started = tokio::time::timeout(HTTP_TIMEOUT, chat_server::start(config))
        .await
        .expect("start gives up in time");
    let error = started.err().expect("refused while an old node runs");
    assert!(
        error.to_string().contains("older version"),
        "unexpected error: {error}"
    );
    assert_eq!(
        redis.cmd(&["EXISTS", "room:1"]).await,
        ":1",
        "nothing moved"
    );
    assert_eq!(redis.cmd(&["EXISTS", "store:layout"]).await, ":0");
}

/// `POST /api/v1/rooms/{room}/attachments?name=…`: the upload's id.
async fn upload(
    node: &TestServer,
    user: &TestUser,
    room: protocol::RoomId,
    bytes: &[u8],
) -> String {
    let resp = node
        .http()
        .post(format!("{}/api/v1/rooms/{room}/attachments", node.base))
        .query(&[("name", "notes.txt")])
        .bearer_auth(&user.token)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload request");
    assert_eq!(resp.status().as_u16(), 201, "upload");
    let att: protocol::Attachment = resp.json().await.expect("upload answer");
    att.id
}

/// `GET /api/v1/attachments/{id}`: status and body.
async fn download(node: &TestServer, user: &TestUser, id: &str) -> (u16, Vec<u8>) {
    let resp = node
        .http()
        .get(format!("{}/api/v1/attachments/{id}", node.base))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("download request");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

async fn send_with(user: &TestUser, api: &Api, room: protocol::RoomId, ids: &[&str]) -> u64 {
    let _ = user;
    let ack: protocol::rest::SendAck = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(serde_json::json!({"id": unique_id(), "body": "files", "attachments": ids})),
            200,
        )
        .await
        .expect("send with attachments");
    ack.seq
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_of_layout_2_keeps_users_uploads_and_presence() {
    let redis = Arc::new(RedisServer::start().await);
    let files = tempfile::tempdir().expect("temp dir");
    let dir = files.path().to_path_buf();
    let configure = |c: &mut chat_server::Config| c.attachments.dir = Some(dir.clone());
    let node = TestServer::start_on_redis(&redis, configure).await;
    let alice = node.user("alice").await;
    let bob = node.user("bob").await;
    let room = alice
        .api
        .create_room(&unique_name("layout2"), Visibility::Private)
        .await
        .expect("room")
        .id;
    alice.api.invite(room, bob.id).await.expect("invite");
    let attached = upload(&node, &alice, room, b"attached before the move").await;
    let pending = upload(&node, &alice, room, b"pending across the move").await;
    let seq = send_with(&alice, &alice.api, room, &[&attached]).await;
    bob.api.mark_read(room, seq).await.expect("read");
    let dm = alice.api.open_dm(bob.id).await.expect("dm").id;
    // Alice is online when the node stops: it marks her offline, last seen then.
    let ws = node.ws(&alice).await;
    let history = bob.api.all_events(room).await.expect("history");
    node.shutdown().await;
    drop(ws);

    let moved = to_layout_2(&redis).await;
    assert!(moved >= 10, "moved {moved} keys back");
    let old_user = format!("user:{}", alice.id);
    assert_eq!(redis.cmd(&["EXISTS", &old_user]).await, ":1");
    // An upload id of that version does not name its room's partition: give the pending one
    // such an id (record, pending entry and file).
    let low = u16::from_str_radix(&pending[28..], 16).expect("hex");
    let legacy = format!("{}{:04x}", &pending[..28], low.wrapping_add(1));
    assert_ne!(
        keys::upload_partition(&legacy),
        keys::upload_partition(&pending)
    );
    redis
        .cmd(&[
            "RENAME",
            &format!("upl:{pending}"),
            &format!("upl:{legacy}"),
        ])
        .await;
    redis.cmd(&["ZREM", "upl:pending", &pending]).await;
    redis
        .cmd(&["ZADD", "upl:pending", &now_ms().to_string(), &legacy])
        .await;
    std::fs::rename(
        dir.join("blobs").join(&pending),
        dir.join("blobs").join(&legacy),
    )
    .expect("rename the file");
    // Bob was online on a node that died (its heartbeat expired a second ago).
    let died = now_ms() - 1000;
    redis
        .cmd(&["ZADD", "pres:nodes", &died.to_string(), "deadnode"])
        .await;
    redis
        .cmd(&["SADD", "pres:node:deadnode", &bob.id.to_string()])
        .await;
    let alice_seen: Option<i64> = redis::cmd("HGET")
        .arg("pres:seen")
        .arg(alice.id.0)
        .query_async(&mut connection(&redis).await)
        .await
        .expect("HGET");
    let alice_seen = alice_seen.expect("alice was seen when the node stopped");

    let node = TestServer::start_on_redis(&redis, configure).await;
    let layout: Option<String> = redis::cmd("GET")
        .arg("store:layout")
        .query_async(&mut connection(&redis).await)
        .await
        .expect("GET");
    assert_eq!(layout.as_deref(), Some("3"));
    assert_eq!(redis.cmd(&["EXISTS", &old_user]).await, ":0");
    assert_eq!(redis.cmd(&["EXISTS", &keys::user(alice.id)]).await, ":1");
    for gone in ["upl:pending", "upl:dead", "upl:rooms", "pres:seen"] {
        assert_eq!(redis.cmd(&["EXISTS", gone]).await, ":0", "{gone}");
    }

    // Signed in with the same tokens; the same rooms, read markers and history.
    let alice_api = alice.api_on(&node);
    let bob_api = bob.api_on(&node);
    assert_eq!(alice_api.me().await.expect("alice's session").id, alice.id);
    let rooms = bob_api.my_rooms().await.expect("bob's rooms");
    let listed = rooms.iter().find(|r| r.id == room).expect("room listed");
    assert_eq!(listed.read_seq, seq);
    assert!(rooms.iter().any(|r| r.id == dm), "the DM is listed");
    assert_eq!(bob_api.all_events(room).await.expect("history"), history);

    // Uploads: the attached one is served, the pending one (an id of the version before)
    // can be attached and is served; the owner's usage counts both.
    assert_eq!(
        download(&node, &bob, &attached).await,
        (200, b"attached before the move".to_vec())
    );
    assert_eq!(
        redis.cmd(&["HEXISTS", keys::UPLOADS_LEGACY, &legacy]).await,
        ":1"
    );
    send_with(&alice, &alice_api, room, &[&legacy]).await;
    assert_eq!(
        download(&node, &bob, &legacy).await,
        (200, b"pending across the move".to_vec())
    );
    let usage = node
        .state()
        .store
        .upload_usage(alice.id)
        .await
        .expect("usage");
    assert_eq!(
        usage,
        (b"attached before the move".len() + b"pending across the move".len()) as u64
    );

    // Presence: Alice's last seen kept; Bob, online on the dead node, is offline as of its
    // last heartbeat once this node's heartbeat has cleaned up after it.
    let seen = bob_api.get_user(alice.id).await.expect("alice");
    assert!(!seen.online);
    assert_eq!(seen.last_seen, Some(alice_seen));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let bob_now = alice_api.get_user(bob.id).await.expect("bob");
        assert!(!bob_now.online, "bob's only node is dead");
        if bob_now.last_seen == Some(died) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's last seen never became the dead node's: {bob_now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Online again on this node.
    let _ws = node.ws(&bob).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !alice_api.get_user(bob.id).await.expect("bob").online {
        assert!(tokio::time::Instant::now() < deadline, "bob never online");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
