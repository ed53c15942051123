//! The store's connections: to one standalone Redis or to a Redis Cluster, behind one type.
//!
//! [`Target`] is where the store connects (from `redis_url` or `redis_cluster`); [`Conn`] is
//! the command connection every store call clones, a redis-rs `ConnectionManager` or a
//! `cluster_async::ClusterConnection`. Both reconnect by themselves; the cluster connection
//! also routes each command by its key's slot and follows `MOVED`/`ASK`. `Conn` implements
//! redis-rs's `ConnectionLike`, so commands, scripts and pipelines run on it unchanged. On the
//! single-Redis path each call is one `match` and the manager's own future: no extra
//! allocation.
//!
//! What a cluster changes for callers:
//! - A pipeline whose commands are in several slots is sent as one sub-pipeline per slot, all
//!   at once, and the replies are put back in order (redis-rs sends a pipeline to one node).
//!   Order holds within a slot; across slots it never mattered (reads, or writes of one key
//!   each). A `MULTI` pipeline must stay in one slot (ours do: one room's or one key's).
//! - `SCAN` walks one node: [`Conn::scan_nodes`] lists every master to walk.
//! - Connecting has a deadline ([`CONNECT_DEADLINE`]): a connect can hang (redis-rs #1953).

use super::partition::key_slot;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long one connection attempt to one node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one reply may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a cluster command may take with its retries. A failover takes the cluster's
/// `cluster-node-timeout` and an election (seconds): a call it catches fails with
/// `store_unavailable` after this, and the client sends again (sends are idempotent), rather
/// than waiting without an answer.
const CLUSTER_REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// Retries of a cluster command (a `MOVED`, a node down), and the least and most wait between
/// two, in ms.
const CLUSTER_RETRIES: u32 = 40;
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (50, 500);
/// How long connecting the store may take as a whole (a cluster: every master).
pub(super) const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// Where the store connects: one Redis or the seed nodes of a cluster.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per store, made once
pub enum Target {
    Single(redis::Client),
    /// The seed nodes (any reachable one is enough; redis-rs learns the rest).
    Cluster(Arc<[redis::ConnectionInfo]>),
}

impl std::fmt::Debug for Target {
    /// Without the URLs: they may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Single(_) => f.write_str("Target::Single"),
            Target::Cluster(seeds) => write!(f, "Target::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl Target {
    /// A cluster from its seed URLs (`redis://…` or `rediss://…`).
    pub fn cluster<S: AsRef<str>>(urls: &[S]) -> RedisResult<Target> {
        if urls.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "redis_cluster lists no node",
            )));
        }
        let seeds = urls
            .iter()
            .map(|u| redis::IntoConnectionInfo::into_connection_info(u.as_ref()))
            .collect::<RedisResult<Vec<_>>>()?;
        Ok(Target::Cluster(seeds.into()))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    fn cluster_builder(seeds: &[redis::ConnectionInfo]) -> ClusterClientBuilder {
        ClusterClientBuilder::new(seeds.iter().cloned())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(CLUSTER_REQUEST_TIMEOUT))
            // redis-rs waits at least 1.28 s between retries by default: a command caught by a
            // failover would answer seconds after the replica took over. Retry soon and often
            // instead, within the request timeout.
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
            .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
    }

    /// The command connection.
    pub(super) async fn connect(&self) -> RedisResult<Conn> {
        let attempt = async {
            match self {
                Target::Single(client) => {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT))
                        // Reconnect attempts at most this far apart: calls wait for the
                        // manager's current attempt once the store is back (see `health` for
                        // calls while it is down).
                        .set_max_delay(Duration::from_millis(500));
                    Ok(Conn::Single(
                        ConnectionManager::new_with_config(client.clone(), config).await?,
                    ))
                }
                Target::Cluster(seeds) => Ok(Conn::Cluster(
                    Self::cluster_builder(seeds)
                        .build()?
                        .get_async_connection()
                        .await?,
                )),
            }
        };
        within(CONNECT_DEADLINE, attempt).await
    }

    /// A cluster connection of its own for the bus: RESP3, every push (messages, and
    /// `Disconnection` when a node's link drops) handed to `on_push` on redis-rs's task.
    pub(super) async fn cluster_subscriber(
        seeds: &[redis::ConnectionInfo],
        on_push: impl redis::aio::AsyncPushSender,
    ) -> RedisResult<ClusterConnection> {
        let attempt = async {
            Self::cluster_builder(seeds)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(on_push)
                .build()?
                .get_async_connection()
                .await
        };
        within(CONNECT_DEADLINE, attempt).await
    }

    /// Whether the store answers a `PING` on a fresh connection within `timeout` (a cluster:
    /// the connection comes up, which needs every slot served, and one node answers).
    pub async fn probe(&self, timeout: Duration) -> bool {
        let attempt = async {
            match self {
                Target::Single(client) => {
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout));
                    let mut con = client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?;
                    redis::cmd("PING").query_async::<String>(&mut con).await
                }
                Target::Cluster(seeds) => {
                    let mut con = ClusterClientBuilder::new(seeds.iter().cloned())
                        .connection_timeout(timeout)
                        .response_timeout(timeout)
                        .retries(0)
                        .build()?
                        .get_async_connection()
                        .await?;
                    redis::cmd("PING").query_async::<String>(&mut con).await
                }
            }
        };
        matches!(tokio::time::timeout(timeout * 2, attempt).await, Ok(Ok(_)))
    }
}

/// `attempt`, or a timeout error (an I/O error: the store counts as unreachable) after `limit`.
pub(super) async fn within<T>(
    limit: Duration,
    attempt: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to Redis took too long",
            )
            .into())
        })
}

/// The command connection; cheap to clone (see the module doc).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// One node a `SCAN` walks: the single Redis, or a cluster master by address.
#[derive(Debug, Clone)]
pub(super) enum ScanNode {
    Single,
    Master { host: String, port: u16 },
}

impl Conn {
    /// The nodes that together hold every key: the one Redis, or every master of the cluster
    /// (from `CLUSTER SLOTS`, so the masters serving slots now).
    pub(super) async fn scan_nodes(&mut self) -> RedisResult<Vec<ScanNode>> {
        let Conn::Cluster(con) = self else {
            return Ok(vec![ScanNode::Single]);
        };
        let slots: Value = con
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let mut masters: Vec<(String, u16)> = Vec::new();
        let Value::Array(ranges) = slots else {
            return Err(unexpected("CLUSTER SLOTS"));
        };
        for range in ranges {
            // [start, end, [host, port, id, …], replicas…]
            let Value::Array(parts) = range else {
                return Err(unexpected("CLUSTER SLOTS range"));
            };
            let Some(Value::Array(master)) = parts.get(2) else {
                return Err(unexpected("CLUSTER SLOTS master"));
            };
            let host: String = match master.first() {
                Some(v) => redis::from_redis_value(v.clone())?,
                None => return Err(unexpected("CLUSTER SLOTS host")),
            };
            let port: u16 = match master.get(1) {
                Some(v) => redis::from_redis_value(v.clone())?,
                None => return Err(unexpected("CLUSTER SLOTS port")),
            };
            if !masters.contains(&(host.clone(), port)) {
                masters.push((host, port));
            }
        }
        Ok(masters
            .into_iter()
            .map(|(host, port)| ScanNode::Master { host, port })
            .collect())
    }

    /// One `SCAN … MATCH pattern COUNT count` step on `node`: the next cursor (0 at the end)
    /// and a batch of keys.
    pub(super) async fn scan(
        &mut self,
        node: &ScanNode,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> RedisResult<(u64, Vec<String>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        match (self, node) {
            (Conn::Cluster(con), ScanNode::Master { host, port }) => {
                let reply = con
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        }),
                    )
                    .await?;
                redis::from_redis_value(reply).map_err(Into::into)
            }
            (con, _) => cmd.query_async(con).await,
        }
    }

    /// Every key matching `pattern`, on every node.
    pub(super) async fn keys_matching(&mut self, pattern: &str) -> RedisResult<Vec<String>> {
        let mut all = Vec::new();
        for node in self.scan_nodes().await? {
            let mut cursor = 0u64;
            loop {
                let (next, batch) = self.scan(&node, cursor, pattern, 1000).await?;
                all.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(all)
    }
}

fn unexpected(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        what.to_owned(),
    ))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(con) => con.req_packed_command(cmd),
            Conn::Cluster(con) => con.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(con) => con.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(con) => {
                let groups = slot_groups(pipeline);
                if pipeline.is_transaction() || groups.len() <= 1 {
                    con.req_packed_commands(pipeline, offset, count)
                } else {
                    Box::pin(per_slot(con.clone(), pipeline, groups))
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(con) => con.get_db(),
            Conn::Cluster(con) => con.get_db(),
        }
    }
}

/// A pipeline's commands grouped by the slot of their key, in order within each group: the
/// slot (`None`: a command without one key, sent on its own) and the commands' positions.
fn slot_groups(pipeline: &Pipeline) -> Vec<(Option<u16>, Vec<usize>)> {
    let mut groups: Vec<(Option<u16>, Vec<usize>)> = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        match single_key_slot(cmd) {
            Some(slot) => match groups.iter_mut().find(|(s, _)| *s == Some(slot)) {
                Some((_, positions)) => positions.push(i),
                None => groups.push((Some(slot), vec![i])),
            },
            None => groups.push((None, vec![i])),
        }
    }
    groups
}

/// Commands whose first argument is their only key. Any other command in a pipeline that
/// spans slots is sent on its own (redis-rs routes or splits it), so a command missing here
/// costs a round trip, never a wrong route.
const SINGLE_KEY: &[&str] = &[
    "GET",
    "SET",
    "GETDEL",
    "INCR",
    "INCRBY",
    "DECR",
    "STRLEN",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "EXPIRETIME",
    "PEXPIRETIME",
    "TTL",
    "PTTL",
    "PERSIST",
    "TYPE",
    "HGET",
    "HSET",
    "HSETNX",
    "HMGET",
    "HMSET",
    "HGETALL",
    "HDEL",
    "HEXISTS",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HINCRBY",
    "SADD",
    "SREM",
    "SMEMBERS",
    "SISMEMBER",
    "SMISMEMBER",
    "SCARD",
    "ZADD",
    "ZREM",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYSCORE",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZRANK",
    "ZINCRBY",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "LPUSH",
    "RPUSH",
    "LRANGE",
    "LLEN",
    "SPUBLISH",
];
/// Commands that take any number of keys: single-key when given one.
const ANY_KEYS: &[&str] = &["DEL", "UNLINK", "EXISTS", "TOUCH"];

/// The slot of a command whose only key is its first argument (`GET k`, `HGET k f`, …);
/// `None` for any other.
fn single_key_slot(cmd: &Cmd) -> Option<u16> {
    let mut args = cmd.args_iter();
    let redis::Arg::Simple(name) = args.next()? else {
        return None;
    };
    let redis::Arg::Simple(key) = args.next()? else {
        return None;
    };
    let is = |list: &[&str]| list.iter().any(|c| name.eq_ignore_ascii_case(c.as_bytes()));
    (is(SINGLE_KEY) || (is(ANY_KEYS) && cmd.args_iter().len() == 2)).then(|| key_slot(key))
}

/// Runs each group of a pipeline that spans slots as its own pipeline (a lone command as a
/// command), all at once, and returns the replies in the pipeline's order.
async fn per_slot(
    con: ClusterConnection,
    pipeline: &Pipeline,
    groups: Vec<(Option<u16>, Vec<usize>)>,
) -> RedisResult<Vec<Value>> {
    let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let calls = groups.iter().map(|(slot, positions)| {
        let mut con = con.clone();
        let mut sub = redis::pipe();
        for &i in positions {
            sub.add_command(cmds[i].clone());
        }
        let lone = slot.is_none().then(|| cmds[positions[0]].clone());
        async move {
            match lone {
                Some(cmd) => Ok(vec![con.req_packed_command(&cmd).await?]),
                None => con.req_packed_commands(&sub, 0, sub.len()).await,
            }
        }
    });
    let replies = futures_util::future::try_join_all(calls).await?;
    let mut out = vec![Value::Nil; cmds.len()];
    for ((_, positions), values) in groups.iter().zip(replies) {
        if values.len() != positions.len() {
            return Err(unexpected("pipeline reply count"));
        }
        for (&i, value) in positions.iter().zip(values) {
            out[i] = value;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_group_by_slot_in_order() {
        let mut pipe = redis::pipe();
        pipe.hget("room:{0.178}:1", "seq")
            .hget("room:{1.2}:2", "seq")
            .get("room:{0.178}:1:m")
            .cmd("PING")
            .hget("room:{1.2}:2", "name");
        let groups = slot_groups(&pipe);
        let a = key_slot(b"room:{0.178}:1");
        let b = key_slot(b"room:{1.2}:2");
        assert_eq!(
            groups,
            vec![
                (Some(a), vec![0, 2]),
                (Some(b), vec![1, 4]),
                (None, vec![3]),
            ]
        );
    }

    #[test]
    fn a_command_with_several_keys_goes_alone() {
        let mut pipe = redis::pipe();
        pipe.del(&["a", "b"]).get("a");
        let groups = slot_groups(&pipe);
        assert_eq!(groups[0], (None, vec![0]));
        assert_eq!(groups[1], (Some(key_slot(b"a")), vec![1]));
    }
}
