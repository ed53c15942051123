//! The test Redis Cluster (`testkit::cluster`) and the facts the cluster design rests on
//! (`docs/CLUSTER.md`): our slot arithmetic is Redis's, the partitions' tags spread evenly
//! over 3 masters, a script that declares a partition's key `SPUBLISH`es on the partition's
//! channel to an `SSUBSCRIBE`r of a RESP3 connection, and may not publish to another slot.

use chat_server::store::redis::partition::{key_slot, Partitions, DEFAULT_PARTITIONS};
use std::time::Duration;
use testkit::cluster::RedisCluster;

const TIMEOUT: Duration = Duration::from_secs(10);

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
    let key = format!("room:{{{}}}:{room}", parts.tag(p));
    let channel = parts.channel(p);
    let owner = cluster.owner_of(&key).await;
    assert_eq!(
        owner,
        cluster.owner_of(&channel).await,
        "key and channel share a slot"
    );

    // The subscriber: a RESP3 connection whose pushes come through a channel, subscribed with
    // a plain `SSUBSCRIBE` command (one channel per command: its confirmation is its reply).
    let url = format!("{}?protocol=resp3", cluster.nodes[owner].url);
    let client = redis::Client::open(url).expect("client");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut sub = tokio::time::timeout(
        TIMEOUT,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let _: redis::Value = redis::cmd("SSUBSCRIBE")
        .arg(&channel)
        .query_async(&mut sub)
        .await
        .expect("ssubscribe");

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
    let message = loop {
        let push = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .expect("message in time")
            .expect("push channel open");
        if push.kind == redis::PushKind::SMessage {
            break push;
        }
    };
    let payload: Vec<String> = message
        .data
        .iter()
        .map(|v| redis::from_redis_value(v.clone()).expect("string"))
        .collect();
    assert_eq!(payload, [channel.clone(), "R 5 1\n{}".to_owned()]);

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
