//! The test Redis Cluster (`testkit::cluster`) and the facts the cluster design rests on
//! (`docs/CLUSTER.md`): our slot arithmetic is Redis's, the partitions' tags spread evenly
//! over 3 masters, a script that declares a partition's key `SPUBLISH`es on the partition's
//! channel to an `SSUBSCRIBE`r of a RESP3 connection, and may not publish to another slot.

mod common;

use chat_server::store::redis::partition::{key_slot, Partitions, DEFAULT_PARTITIONS};
use common::*;
use protocol::rest::Visibility;
use testkit::cluster::RedisCluster;

/// A RESP3 connection to `url` whose pushes come through the returned channel, subscribed to
/// `channels` with plain `SSUBSCRIBE` commands (one channel per command: its confirmation is
/// its reply), as the server's subscriber does.
async fn ssubscriber(
    url: &str,
    channels: &[String],
) -> (
    redis::aio::MultiplexedConnection,
    tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) {
    let client = redis::Client::open(format!("{url}?protocol=resp3")).expect("client");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = tokio::time::timeout(
        TIMEOUT,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    for channel in channels {
        let _: redis::Value = redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .query_async(&mut con)
            .await
            .expect("ssubscribe");
    }
    (con, rx)
}

/// The next sharded message: its channel and payload.
async fn next_smessage(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) -> (String, String) {
    loop {
        let push = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .expect("message in time")
            .expect("push channel open");
        if push.kind == redis::PushKind::SMessage {
            let mut parts = push
                .data
                .iter()
                .map(|v| redis::from_redis_value::<String>(v.clone()).expect("string"));
            let channel = parts.next().expect("channel");
            let payload = parts.next().expect("payload");
            return (channel, payload);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_three_masters() {
    let cluster = RedisCluster::start(3, 0).await;
    for i in 0..3 {
        let info = cluster.cmd(i, &["CLUSTER", "INFO"]).await;
        assert!(info.contains("cluster_state:ok"), "node {i}: {info}");
        assert!(info.contains("cluster_size:3"), "node {i}: {info}");
    }
    let parts = Partitions::default();
    let mut per_master = [0usize; 3];
    for channel in parts.channels() {
        let slot = cluster.cmd(0, &["CLUSTER", "KEYSLOT", &channel]).await;
        assert_eq!(
            slot,
            format!(":{}", key_slot(channel.as_bytes())),
            "{channel}"
        );
        per_master[cluster.owner_of(&channel).await] += 1;
    }
    // 64 partitions over 3 masters: 21 or 22 each.
    assert_eq!(
        per_master.iter().sum::<usize>(),
        usize::from(DEFAULT_PARTITIONS)
    );
    assert!(
        per_master.iter().all(|&n| (21..=22).contains(&n)),
        "{per_master:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_script_publishes_on_its_shard() {
    let cluster = RedisCluster::start(3, 0).await;
    let parts = Partitions::default();
    let room = 5;
    let p = parts.of_room(room);
    let key = chat_server::store::redis::keys::room(room);
    assert!(key.contains(parts.tag(p)), "{key}");
    let channel = parts.channel(p);
    let owner = cluster.owner_of(&key).await;
    assert_eq!(
        owner,
        cluster.owner_of(&channel).await,
        "key and channel share a slot"
    );

    let (_sub, mut rx) =
        ssubscriber(&cluster.nodes[owner].url, std::slice::from_ref(&channel)).await;
    let mut con = redis::Client::open(cluster.nodes[owner].url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let script = redis::Script::new(
        r#"
redis.call('HSET', KEYS[1], 'seq', 1)
redis.call('SPUBLISH', ARGV[1], ARGV[2])
return 1
"#,
    );
    let done: i64 = script
        .key(&key)
        .arg(&channel)
        .arg("R 5 1\n{}")
        .invoke_async(&mut con)
        .await
        .expect("script on the owning node");
    assert_eq!(done, 1);
    assert_eq!(
        next_smessage(&mut rx).await,
        (channel.clone(), "R 5 1\n{}".to_owned())
    );

    // A channel of a partition on another master: the script may not publish there.
    let mut foreign = None;
    for q in 0..parts.count() {
        let c = parts.channel(q);
        if cluster.owner_of(&c).await != owner {
            foreign = Some(c);
            break;
        }
    }
    let foreign = foreign.expect("a partition on another master");
    let refused: redis::RedisResult<i64> = script
        .key(&key)
        .arg(&foreign)
        .arg("x")
        .invoke_async(&mut con)
        .await;
    assert!(refused.is_err(), "SPUBLISH to {foreign} from {key}'s slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_replicas_forms() {
    let cluster = RedisCluster::start(3, 1).await;
    assert_eq!(cluster.nodes.len(), 6);
    let info = cluster.cmd(5, &["CLUSTER", "INFO"]).await;
    assert!(info.contains("cluster_size:3"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    let mut replicas = 0;
    for i in 0..6 {
        let replication = cluster.cmd(i, &["INFO", "replication"]).await;
        if replication.contains("role:slave") {
            replicas += 1;
        }
    }
    assert_eq!(replicas, 3, "one replica per master");
}

/// On a standalone Redis the server publishes a room's events on the room's partition channel
/// and a user's read marker on the user's (the Lua scripts and Rust agree on the mapping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_out_on_their_partitions_channel() {
    let server = TestServer::start(Backend::Redis).await;
    let redis = server.redis.clone().expect("redis");
    let alice = server.user("alice").await;
    let api = &alice.api;
    // A second room, so that the room's partition is not the user's.
    api.create_room(&unique_name("first"), Visibility::Private)
        .await
        .expect("room");
    let room = api
        .create_room(&unique_name("second"), Visibility::Private)
        .await
        .expect("room")
        .id;
    let parts = Partitions::default();
    let room_channel = parts.room_channel(room.0);
    let user_channel = parts.user_channel(alice.id.0);
    assert_ne!(room_channel, user_channel);
    let (_sub, mut rx) =
        ssubscriber(&redis.url, &[room_channel.clone(), user_channel.clone()]).await;

    let ack = api.say(room, "hello").await;
    let (channel, payload) = next_smessage(&mut rx).await;
    assert_eq!(channel, room_channel);
    assert!(
        payload.starts_with(&format!("R {room} {}\n", ack.seq)),
        "{payload}"
    );
    assert!(payload.contains("hello"), "{payload}");

    api.mark_read(room, ack.seq).await.expect("mark read");
    let (channel, payload) = next_smessage(&mut rx).await;
    assert_eq!(channel, user_channel);
    assert!(
        payload.starts_with(&format!("U {}\n", alice.id)),
        "{payload}"
    );
}

/// A room's slot moves to another master while its members talk: the old master drops the
/// server's subscription to the room's channel (`sunsubscribe`), the server subscribes again and
/// resyncs, and a member who stayed connected receives every message once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_moving_to_another_master_loses_nothing() {
    let server = TestServer::start(Backend::Cluster).await;
    let cluster = server.cluster.clone().expect("cluster");
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut listener = server.ws(&bob).await;
    let mut sender = server.ws(&alice).await;
    let first = last_seq(&alice.api, room).await + 1;
    for i in 0..5 {
        sender
            .send_retrying(room, &unique_id(), &format!("before {i}"))
            .await;
    }
    let key = chat_server::store::redis::keys::room(room.0);
    let from = cluster.owner_of(&key).await;
    let to = (from + 1) % 3;
    let talk = tokio::spawn(async move {
        for i in 0..20 {
            sender
                .send_retrying(room, &unique_id(), &format!("during {i}"))
                .await;
        }
        sender
    });
    cluster.move_slot(key_slot(key.as_bytes()), from, to).await;
    let mut sender = talk.await.expect("sender task");
    assert_eq!(cluster.owner_of(&key).await, to, "the room's slot moved");
    for i in 0..5 {
        sender
            .send_retrying(room, &unique_id(), &format!("after {i}"))
            .await;
    }
    let last = last_seq(&alice.api, room).await;
    assert_eq!(last, first + 29, "30 messages, each stored once");
    let events = listener.events_until(room, last).await;
    assert_consecutive(&events, first);
    let bodies: Vec<&str> = events.iter().map(|e| message_of(e).1).collect();
    assert_eq!(bodies.first(), Some(&"before 0"));
    assert_eq!(bodies.last(), Some(&"after 4"));
}

/// Every subscriber connection of the cluster is killed (`CLIENT KILL TYPE pubsub` on each
/// master): the server notices, subscribes again and resyncs; messages sent meanwhile reach
/// the member who stayed connected, once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_subscription_is_made_again_and_nothing_is_lost() {
    let server = TestServer::start(Backend::Cluster).await;
    let cluster = server.cluster.clone().expect("cluster");
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut listener = server.ws(&bob).await;
    let mut sender = server.ws(&alice).await;
    let first = last_seq(&alice.api, room).await + 1;
    sender.send_retrying(room, &unique_id(), "before").await;
    for i in 0..3 {
        let killed = cluster.cmd(i, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
        assert!(killed.starts_with(':'), "CLIENT KILL on node {i}: {killed}");
    }
    for i in 0..10 {
        sender
            .send_retrying(room, &unique_id(), &format!("after {i}"))
            .await;
    }
    let last = last_seq(&alice.api, room).await;
    assert_eq!(last, first + 10);
    let events = listener.events_until(room, last).await;
    assert_consecutive(&events, first);
}

/// The master holding a room loses its last writes (as after a failover to a replica that
/// lagged) and the node's subscriptions drop: the open socket is told (4010), and the seqs the
/// client holds for the lost events are never handed out again. (Lost-write detection is still
/// for the whole data set: one `store:epoch`, so every socket is told; per shard is next.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_losing_writes_is_told_and_never_reuses_seqs() {
    let server = TestServer::start(Backend::Cluster).await;
    let cluster = server.cluster.clone().expect("cluster");
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room(&unique_name("lossy"), Visibility::Private)
        .await
        .expect("room")
        .id;
    let mut ws = server.ws(&alice).await;
    for body in ["two", "three", "four"] {
        ws.say(room, body).await;
    }
    let events = ws.events_until(room, 4).await;
    assert_eq!(events.last().map(|e| e.seq), Some(4));

    let key = chat_server::store::redis::keys::room(room);
    let log = chat_server::store::redis::keys::log(room);
    let owner = cluster.owner_of(&key).await;
    assert_eq!(cluster.cmd(owner, &["HSET", &key, "seq", "2"]).await, ":0");
    assert_eq!(
        cluster
            .cmd(owner, &["ZREMRANGEBYSCORE", &log, "3", "+inf"])
            .await,
        ":2"
    );
    for i in 0..3 {
        cluster.cmd(i, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    }
    ws.expect_close_code(protocol::close::STORE_RESET).await;

    let mut again = server.ws(&alice).await;
    let ack = again.send_retrying(room, &unique_id(), "five").await;
    assert_eq!(ack.seq, 5, "a seq the client holds was handed out again");
}

/// The master holding a room dies and its replica (which had every write) takes over, while
/// the room's members talk: sends are retried while the store is unavailable, and the member
/// who stayed connected receives every message once and in order, with no 4010.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failing_over_to_its_replica_loses_nothing() {
    let cluster = std::sync::Arc::new(RedisCluster::start(3, 1).await);
    let server = TestServer::start_on_cluster(&cluster, |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut listener = server.ws(&bob).await;
    let mut sender = server.ws(&alice).await;
    let first = last_seq(&alice.api, room).await + 1;
    for i in 0..5 {
        sender
            .send_retrying(room, &unique_id(), &format!("before {i}"))
            .await;
    }
    let key = chat_server::store::redis::keys::room(room.0);
    let owner = cluster.owner_of(&key).await;
    cluster.wait_replicated(owner).await;
    cluster.kill(owner);
    for i in 0..10 {
        sender
            .send_retrying(room, &unique_id(), &format!("after {i}"))
            .await;
    }
    let alive = (owner + 1) % 3;
    assert_ne!(
        cluster.owner_of_via(alive, &key).await,
        owner,
        "a replica took over"
    );
    let last = last_seq(&alice.api, room).await;
    assert_eq!(last, first + 14, "15 messages, each stored once");
    let events = listener.events_until(room, last).await;
    assert_consecutive(&events, first);
}

/// A data set of the layout before partitions cannot be moved on a cluster (the renames cross
/// slots): the server refuses to start there and says where to run the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_of_an_older_layout_is_refused_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let owner = cluster.owner_of("room:7").await;
    assert_eq!(
        cluster
            .cmd(owner, &["HSET", "room:7", "name", "old", "seq", "1"])
            .await,
        ":2"
    );
    let mut config = test_config();
    config.redis_cluster = cluster.urls();
    let refused = tokio::time::timeout(HTTP_TIMEOUT, chat_server::start(config))
        .await
        .expect("start answers in time")
        .err()
        .expect("the server refuses to start");
    let message = refused.to_string();
    assert!(message.contains("standalone Redis"), "{message}");
}
