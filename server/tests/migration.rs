//! The move to the partitioned key layout (`server/src/store/redis/migrate.rs`): a data set in
//! the layout before partitions (`room:<id>…`, `dd:<room>:…`, no `store:layout`) is renamed
//! once when a node of this version starts, and then served as before: the same history, the
//! same rooms, seqs that go on, resends still recognized as duplicates.

mod common;

use common::*;
use protocol::rest::Visibility;
use std::sync::Arc;

/// The data set as the version before partitions leaves it: every partitioned room and dedupe
/// key renamed back to its old name (`room:{<tag>}:<id>…` → `room:<id>…`), no layout marker.
/// Returns how many keys were renamed.
async fn to_layout_before_partitions(redis: &RedisServer) -> usize {
    let mut con = redis::Client::open(redis.url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
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
    let new_log = chat_server::store::redis::keys::log(room);
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
