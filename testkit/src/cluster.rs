//! A private Redis Cluster: `masters` masters (and `replicas` replicas of each) of Debian's
//! `redis-server` on free loopback ports, joined by `redis-cli --cluster create`, ready once
//! every node reports `cluster_state:ok`. Killed, and its files removed, on drop.
//!
//! Each node gets two free ports ([`free_port`]: below the ephemeral range, never the same one
//! twice), its client port and its cluster bus port (`cluster-port`, Redis 7), so no port
//! `+ 10000` needs to be free; no persistence, its `nodes.conf` and its log (`node-<port>.log`)
//! in a private directory. A node that does not come up is named in the panic with the end of
//! its log.

use crate::ports::log_tail;
use crate::{free_port, LOG_TAIL_LINES};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long the cluster may take to form (`--cluster create` and every node `ok`).
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one command to a node may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How many pairs of ports [`RedisCluster::start`] tries for one node before it gives up.
const NODE_ATTEMPTS: usize = 5;

/// One `redis-server` of the cluster.
pub struct ClusterNode {
    child: Child,
    pub port: u16,
    /// Its cluster bus port.
    bus: u16,
    /// `redis://127.0.0.1:<port>/`
    pub url: String,
    /// Its stdout and stderr (Redis logs to stdout; a restart appends).
    log: PathBuf,
}

/// A running Redis Cluster; see the module doc.
pub struct RedisCluster {
    /// Masters first (in the order `--cluster create` assigns slots: the first gets the lowest
    /// slots), then replicas.
    pub nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

impl RedisCluster {
    pub const CLI: &'static str = "/usr/bin/redis-cli";

    /// Starts the nodes, creates the cluster and waits (at most a minute) until every node
    /// answers `cluster_state:ok` and knows every other node. Panics (after killing what it
    /// started) if that does not happen.
    pub async fn start(masters: usize, replicas: usize) -> RedisCluster {
        assert!(masters >= 3, "Redis Cluster needs at least 3 masters");
        let dir = crate::temp_path("redis-cluster");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir,
        };
        let total = masters * (1 + replicas);
        let deadline = Instant::now() + FORM_TIMEOUT;
        for _ in 0..total {
            let node = cluster.start_node(deadline).await;
            cluster.nodes.push(node);
        }
        cluster.create(replicas, deadline).await;
        for i in 0..total {
            cluster.wait_ok(i, total, deadline).await;
        }
        cluster
    }

    /// Every node's URL, masters first: what a cluster client takes as its seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    fn spawn_node(&self) -> ClusterNode {
        self.spawn_node_on(free_port(), free_port())
    }

    /// A node on `port` and bus port `bus`, with the `nodes.conf` of that port (so a node
    /// started again on its ports is the same cluster node).
    fn spawn_node_on(&self, port: u16, bus: u16) -> ClusterNode {
        let conf = self.dir.join(format!("nodes-{port}.conf"));
        let log = self.dir.join(format!("node-{port}.log"));
        let (stdout, stderr) = append_log(&log);
        let child = Command::new(crate::RedisServer::BINARY)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .args(["--cluster-config-file", &conf.to_string_lossy()])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--save", "", "--appendonly", "no"])
            // `notice`: a node's startup, links and failovers, a few dozen lines a test.
            .args(["--protected-mode", "no", "--loglevel", "notice"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", crate::RedisServer::BINARY));
        ClusterNode {
            child,
            port,
            bus,
            url: format!("redis://127.0.0.1:{port}/"),
            log,
        }
    }

    /// Starts a node and waits until it answers `PING`. A node that exits at once (its port or
    /// bus port was taken between picking and binding, by a process outside this one) is
    /// started again on other ports, [`NODE_ATTEMPTS`] times at most; the panic quotes the end
    /// of each attempt's log.
    async fn start_node(&self, deadline: Instant) -> ClusterNode {
        let mut errors = Vec::new();
        for _attempt in 0..NODE_ATTEMPTS {
            let mut node = self.spawn_node();
            match Self::wait_ping(&mut node, deadline).await {
                Ok(()) => return node,
                Err(e) => {
                    let _ = node.child.kill();
                    let _ = node.child.wait();
                    errors.push(e);
                }
            }
        }
        panic!(
            "no cluster node started in {NODE_ATTEMPTS} attempts:\n{}",
            errors.join("\n")
        );
    }

    /// Waits until `node` answers `PING`; an error (with the end of its log) if it exited
    /// first.
    async fn wait_ping(node: &mut ClusterNode, deadline: Instant) -> Result<(), String> {
        loop {
            let port = node.port;
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(format!(
                    "cluster node on port {port} (bus port {}) exited early with {status}; \
                     its log:\n{}",
                    node.bus,
                    log_tail(&node.log, LOG_TAIL_LINES)
                ));
            }
            let ping = tokio::time::timeout(Duration::from_millis(500), query(port, &["PING"]));
            if let Ok(Ok(reply)) = ping.await {
                if reply == "PONG" {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "cluster node on port {port} did not answer PING; its log:\n{}",
                log_tail(&node.log, LOG_TAIL_LINES)
            );
            // Polling interval while the process starts up (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn create(&self, replicas: usize, deadline: Instant) {
        let mut cli = tokio::process::Command::new(Self::CLI);
        cli.arg("--cluster").arg("create");
        for node in &self.nodes {
            cli.arg(format!("127.0.0.1:{}", node.port));
        }
        cli.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout_at(deadline, cli.output())
            .await
            .unwrap_or_else(|_| panic!("redis-cli --cluster create took over {FORM_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", Self::CLI));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed ({}):\n{stdout}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    async fn wait_ok(&self, i: usize, total: usize, deadline: Instant) {
        let want = format!("cluster_known_nodes:{total}");
        loop {
            let info = self.cmd(i, &["CLUSTER", "INFO"]).await;
            if info.contains("cluster_state:ok") && info.contains(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster node {i} not ready within {FORM_TIMEOUT:?}:\n{info}\n{}",
                self.logs()
            );
            // Polling interval while the nodes gossip (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends one command to node `i` and returns its reply: the text of a simple or bulk
    /// string, `:n` for an integer, `-ERR …`/`-MOVED …` for an error, an array's elements
    /// joined by `\n`.
    pub async fn cmd(&self, i: usize, args: &[&str]) -> String {
        tokio::time::timeout(COMMAND_TIMEOUT, query(self.nodes[i].port, args))
            .await
            .unwrap_or_else(|_| panic!("redis {args:?} took longer than {COMMAND_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// The index of the node that serves `key` (follows one `MOVED` from node 0).
    pub async fn owner_of(&self, key: &str) -> usize {
        self.owner_of_via(0, key).await
    }

    /// The index of the node that serves `key`, asking node `via` (one that is alive).
    pub async fn owner_of_via(&self, via: usize, key: &str) -> usize {
        let reply = self.cmd(via, &["EXISTS", key]).await;
        let Some(moved) = reply.strip_prefix("-MOVED ") else {
            return via;
        };
        let port: u16 = moved
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected MOVED reply {reply:?}"));
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("MOVED to an unknown node: {reply:?}"))
    }
}

impl RedisCluster {
    /// Moves `slot` (its keys, then its ownership) from master `from` to master `to` the way
    /// `redis-cli --cluster reshard` does: `IMPORTING`/`MIGRATING`, `MIGRATE` in batches,
    /// then `SETSLOT … NODE` on the target, the source and every other master. Clients meanwhile
    /// get `ASK`/`TRYAGAIN` and then `MOVED`; shard channel subscribers of the slot on `from`
    /// are dropped by the server (`sunsubscribe`). Panics on an unexpected reply.
    pub async fn move_slot(&self, slot: u16, from: usize, to: usize) {
        let slot = slot.to_string();
        let from_id = self.cmd(from, &["CLUSTER", "MYID"]).await;
        let to_id = self.cmd(to, &["CLUSTER", "MYID"]).await;
        let ok = |reply: String, what: &str| {
            assert_eq!(reply, "OK", "{what}");
        };
        ok(
            self.cmd(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id])
                .await,
            "SETSLOT IMPORTING",
        );
        ok(
            self.cmd(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id])
                .await,
            "SETSLOT MIGRATING",
        );
        let port = self.nodes[to].port.to_string();
        loop {
            let keys = self
                .cmd(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])
                .await;
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.split('\n'));
            let reply = self.cmd(from, &args).await;
            assert!(reply == "OK" || reply == "NOKEY", "MIGRATE: {reply}");
        }
        // The new owner, the old one, then every other master (replicas take it from their
        // masters; `SETSLOT` is refused on a replica).
        let mut order = vec![to, from];
        for i in 0..self.nodes.len() {
            if i != to && i != from && self.is_master(i).await {
                order.push(i);
            }
        }
        for i in order {
            let reply = self
                .cmd(i, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])
                .await;
            assert_eq!(reply, "OK", "SETSLOT NODE on node {i}");
        }
    }
}

impl RedisCluster {
    /// Kills node `i` at once (`SIGKILL`, as a machine that died); it stays dead.
    pub fn kill(&self, i: usize) {
        let pid = self.nodes[i].child.id().to_string();
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -KILL {pid}: {status}");
    }

    /// Waits (at most [`COMMAND_TIMEOUT`]) until every replica of master `i` has every write
    /// the master has (its `INFO replication` shows each replica's offset at the master's).
    pub async fn wait_replicated(&self, i: usize) {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let info = self.cmd(i, &["INFO", "replication"]).await;
            let field = |line: &str, name: &str| -> Option<String> {
                line.split(',')
                    .find_map(|kv| kv.strip_prefix(name).map(str::to_owned))
            };
            let master = info.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("master_repl_offset:")
                    .map(str::to_owned)
            });
            let replicas: Vec<Option<String>> = info
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                .map(|l| field(l.trim(), "offset="))
                .collect();
            if !replicas.is_empty() && replicas.iter().all(|o| o.is_some() && *o == master) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas of node {i} did not catch up:\n{info}"
            );
            // Polling interval while the replicas catch up (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl RedisCluster {
    /// Starts node `i` again after [`RedisCluster::kill`], on its ports and with its
    /// `nodes.conf`: without persistence it comes back empty and rejoins the cluster (as a
    /// replica when its master was failed over). Waits until it answers `PING` and reports
    /// `cluster_state:ok`.
    pub async fn restart(&mut self, i: usize) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        let _ = self.nodes[i].child.wait();
        let (port, bus) = (self.nodes[i].port, self.nodes[i].bus);
        let mut node = self.spawn_node_on(port, bus);
        if let Err(e) = Self::wait_ping(&mut node, deadline).await {
            panic!("{e}");
        }
        self.nodes[i] = node;
        let total = self.nodes.len();
        self.wait_ok(i, total, deadline).await;
    }

    /// The end of every node's log, for a panic message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- node on port {} (bus {}):\n{}",
                    n.port,
                    n.bus,
                    log_tail(&n.log, LOG_TAIL_LINES)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether node `i` is a master now (`ROLE`).
    pub async fn is_master(&self, i: usize) -> bool {
        self.cmd(i, &["ROLE"]).await.starts_with("master")
    }

    /// Waits (at most a minute) until node `i` (a live one) reports `cluster_state:ok`, e.g.
    /// once a failed master's replica has taken over.
    pub async fn wait_state_ok(&self, i: usize) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let info = self.cmd(i, &["CLUSTER", "INFO"]).await;
            if info.contains("cluster_state:ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster node {i} not ok within {FORM_TIMEOUT:?}:\n{info}"
            );
            // Polling interval while the cluster fails over (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Opens `path` to append a child's stdout and stderr.
fn append_log(path: &Path) -> (Stdio, Stdio) {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("clone {}: {e}", path.display()));
    (out.into(), err.into())
}

/// One command on a fresh connection; the reply decoded as [`RedisCluster::cmd`] says.
async fn query(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(reply) = decode(&buf) {
            return Ok(reply);
        }
    }
}

/// A complete reply in `buf`, or `None` while more bytes are needed.
fn decode(buf: &[u8]) -> Option<String> {
    decode_at(buf).map(|(reply, _)| reply)
}

/// The reply at the start of `buf` and its length in bytes. An array's elements are joined by
/// `\n` (each decoded the same way).
fn decode_at(buf: &[u8]) -> Option<(String, usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = end + 2;
    match line.as_bytes().first()? {
        b'+' => Some((line[1..].to_owned(), rest)),
        b'$' => {
            let len: i64 = line[1..].parse().ok()?;
            if len < 0 {
                return Some((String::new(), rest));
            }
            let len = len as usize;
            (buf.len() >= rest + len + 2).then(|| {
                (
                    String::from_utf8_lossy(&buf[rest..rest + len]).into_owned(),
                    rest + len + 2,
                )
            })
        }
        b'*' => {
            let n: i64 = line[1..].parse().ok()?;
            let mut at = rest;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                let (item, used) = decode_at(&buf[at..])?;
                items.push(item);
                at += used;
            }
            Some((items.join("\n"), at))
        }
        _ => Some((line, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_replies() {
        assert_eq!(decode(b"+PONG\r\n").as_deref(), Some("PONG"));
        assert_eq!(decode(b"$5\r\nab").as_deref(), None);
        assert_eq!(decode(b"$5\r\nab\r\nc\r\n").as_deref(), Some("ab\r\nc"));
        assert_eq!(decode(b":3\r\n").as_deref(), Some(":3"));
        assert_eq!(
            decode(b"-MOVED 1 127.0.0.1:7\r\n").as_deref(),
            Some("-MOVED 1 127.0.0.1:7")
        );
        assert_eq!(decode(b"$-1\r\n").as_deref(), Some(""));
        assert_eq!(
            decode(b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n").as_deref(),
            Some("a\nbc")
        );
        assert_eq!(decode(b"*2\r\n$1\r\na\r\n$2\r\nb").as_deref(), None);
        assert_eq!(decode(b"*0\r\n").as_deref(), Some(""));
    }
}
