//! The processes under test: a private `redis-server`, `chat-server` nodes, Node.js peer nodes;
//! and what `/proc` says about them (CPU seconds, RSS, machine-wide busy time).
//!
//! Every spawned process is owned by a guard that kills it on drop, and every wait for one to
//! come up has a deadline.

use crate::{Deployment, Error, Result, Target};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    name: String,
}

impl Guard {
    fn spawn(name: &str, cmd: &mut Command) -> Result<Guard> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Error::Process(format!("cannot start {name}: {e}")))?;
        Ok(Guard {
            child,
            name: name.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Process(format!(
                "{} exited early with {status}",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to reach a Redis and which process it is.
#[derive(Debug, Clone)]
pub struct RedisInfo {
    pub addr: SocketAddr,
    /// `None` when the Redis was not started by us (CPU is then not measured).
    pub pid: Option<u32>,
}

impl RedisInfo {
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }
}

/// A private `redis-server` (no persistence) on a free port.
pub struct RedisServer {
    guard: Guard,
    pub info: RedisInfo,
}

impl RedisServer {
    pub const BINARY: &'static str = "/usr/bin/redis-server";

    /// Starts Redis and waits (at most 10 s) until it answers `PING`.
    pub async fn start() -> Result<RedisServer> {
        let port = free_port()?;
        let guard = Guard::spawn(
            "redis-server",
            Command::new(Self::BINARY)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .args(["--loglevel", "warning", "--maxclients", "100000"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let mut server = RedisServer {
            info: RedisInfo {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                pid: Some(guard.pid()),
            },
            guard,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            server.guard.check_alive()?;
            if let Ok(Ok(reply)) = tokio::time::timeout(
                Duration::from_millis(500),
                redis_command(server.info.addr, &["PING"]),
            )
            .await
            {
                if reply.contains("PONG") {
                    return Ok(server);
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "redis-server start".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends one command in RESP and returns the reply as text (bulk strings unwrapped).
/// Enough for `PING` and `INFO`; not a general client.
pub async fn redis_command(addr: SocketAddr, args: &[&str]) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| Error::Timeout {
                what: "redis reply".into(),
            })??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(text) = complete_reply(&buf) {
            return Ok(text);
        }
    }
    complete_reply(&buf).ok_or_else(|| Error::Protocol("truncated redis reply".into()))
}

fn complete_reply(buf: &[u8]) -> Option<String> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[..line_end]).ok()?;
    match head.as_bytes().first()? {
        b'$' => {
            let len: usize = head[1..].parse().ok()?;
            let body = buf.get(line_end + 2..line_end + 2 + len)?;
            Some(String::from_utf8_lossy(body).into_owned())
        }
        _ => Some(head.to_owned()),
    }
}

/// A field of `INFO <section>` as a number, e.g. `total_commands_processed`.
pub async fn redis_info_field(addr: SocketAddr, section: &str, field: &str) -> Result<f64> {
    let info = redis_command(addr, &["INFO", section]).await?;
    info.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .parse()
                .ok()
        })
        .ok_or_else(|| Error::Protocol(format!("INFO {section} has no {field}")))
}

/// Calls per command from `INFO commandstats` (e.g. `evalsha` → 1200).
pub async fn redis_command_calls(addr: SocketAddr) -> Result<Vec<(String, u64)>> {
    let info = redis_command(addr, &["INFO", "commandstats"]).await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect())
}

/// Settings for the servers under test.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The `chat-server` release binary.
    pub server_bin: PathBuf,
    /// The peer's folder (`server.js`, `node_modules/`).
    pub peer_dir: PathBuf,
    /// History kept per room (both targets).
    pub history_keep: u64,
    /// The `chat-bench` executable, which also runs the floor (`chat-bench floor-server`).
    pub bench_bin: PathBuf,
    /// Attachments on (the `files` scenario): where uploads go and the largest one allowed.
    pub attachments: Option<AttachmentOptions>,
}

/// File storage of the servers under test (`files` scenario): a directory on this machine.
#[derive(Debug, Clone)]
pub struct AttachmentOptions {
    pub dir: PathBuf,
    /// The largest upload either target accepts.
    pub max_upload_bytes: u64,
}

impl StackOptions {
    /// The `chat-server` next to this executable (`target/release/`), and the peer in this crate.
    pub fn defaults() -> StackOptions {
        let server_bin = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("chat-server")))
            .unwrap_or_else(|| PathBuf::from("chat-server"));
        StackOptions {
            bench_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("chat-bench")),
            server_bin,
            peer_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/socketio"),
            history_keep: 100_000,
            attachments: None,
        }
    }
}

/// One Redis and `nodes` server processes of one target, all killed on drop.
pub struct Stack {
    pub redis: RedisServer,
    nodes: Vec<Guard>,
    addrs: Vec<SocketAddr>,
    target: Target,
}

impl Stack {
    pub async fn start(target: Target, nodes: usize, opts: &StackOptions) -> Result<Stack> {
        let redis = RedisServer::start().await?;
        let mut stack = Stack {
            redis,
            nodes: Vec::new(),
            addrs: Vec::new(),
            target,
        };
        for i in 0..nodes {
            let port = free_port()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let guard = match target {
                Target::Ours => spawn_ours(opts, addr, &stack.redis.info, i)?,
                Target::Socketio => spawn_peer(opts, addr, &stack.redis.info, i)?,
                Target::Floor => spawn_floor(opts, addr, i)?,
            };
            stack.nodes.push(guard);
            stack.addrs.push(addr);
        }
        for (guard, addr) in stack.nodes.iter_mut().zip(&stack.addrs) {
            wait_healthy(guard, *addr).await?;
        }
        Ok(stack)
    }

    pub fn deployment(&self) -> Deployment {
        Deployment {
            target: self.target,
            nodes: self.addrs.clone(),
            server_pids: self.nodes.iter().map(Guard::pid).collect(),
            // The floor does not use Redis: none of its CPU or commands belong to the run.
            redis: (self.target != Target::Floor).then(|| self.redis.info.clone()),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The servers first, so none of them sees its Redis vanish.
        self.nodes.clear();
    }
}

/// Rate limits raised so that the load, not the limiter, is what is measured.
pub const OURS_ENV: &[(&str, &str)] = &[
    ("CHAT_MSGS_PER_SEC", "1000000"),
    ("CHAT_MSGS_BURST", "1000000"),
    ("CHAT_FRAMES_PER_SEC", "1000000"),
    ("CHAT_FRAMES_BURST", "1000000"),
    ("CHAT_LOGINS_PER_MIN", "1000000"),
    // Few users hold many sockets each (registering costs a password hash).
    ("CHAT_MAX_SOCKETS_PER_USER", "1000000"),
    ("RUST_LOG", "warn"),
];

/// Environment variable: a command line the measured server processes (ours and the floor) are
/// started under, e.g. `valgrind --tool=callgrind --instr-atstart=no` for instruction counts
/// (see `bench/profile.sh`). The wrapper must keep the server's pid (valgrind does).
pub const SERVER_WRAP_ENV: &str = "CHAT_BENCH_SERVER_WRAP";

/// `program` started under the wrapper of [`SERVER_WRAP_ENV`], if one is set.
fn wrapped(program: &Path) -> Command {
    let wrap = std::env::var(SERVER_WRAP_ENV).unwrap_or_default();
    let mut words = wrap.split_whitespace();
    match words.next() {
        None => Command::new(program),
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(program);
            cmd
        }
    }
}

fn spawn_ours(opts: &StackOptions, addr: SocketAddr, redis: &RedisInfo, i: usize) -> Result<Guard> {
    if !opts.server_bin.exists() {
        return Err(Error::Process(format!(
            "{} not found: build it with `cargo build --release -p chat-server` or pass --server-bin",
            opts.server_bin.display()
        )));
    }
    let mut cmd = wrapped(&opts.server_bin);
    cmd.env("CHAT_LISTEN", addr.to_string())
        .env("CHAT_REDIS_URL", redis.url())
        .env("CHAT_RETENTION_EVENTS", opts.history_keep.to_string())
        .envs(OURS_ENV.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(a) = &opts.attachments {
        cmd.env("CHAT_ATTACHMENTS__DIR", &a.dir).env(
            "CHAT_ATTACHMENTS__MAX_UPLOAD_BYTES",
            a.max_upload_bytes.to_string(),
        );
    }
    Guard::spawn(&format!("chat-server #{i}"), &mut cmd)
}

fn spawn_floor(opts: &StackOptions, addr: SocketAddr, i: usize) -> Result<Guard> {
    let mut cmd = wrapped(&opts.bench_bin);
    cmd.args(["floor-server", "--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Guard::spawn(&format!("floor #{i}"), &mut cmd)
}

fn spawn_peer(opts: &StackOptions, addr: SocketAddr, redis: &RedisInfo, i: usize) -> Result<Guard> {
    ensure_peer_installed(&opts.peer_dir)?;
    let mut cmd = Command::new("node");
    cmd.arg("server.js")
        .current_dir(&opts.peer_dir)
        .env("PORT", addr.port().to_string())
        .env("HOST", addr.ip().to_string())
        .env("REDIS_URL", redis.url())
        .env("HISTORY_KEEP", opts.history_keep.to_string())
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(a) = &opts.attachments {
        cmd.env("ATTACH_DIR", &a.dir)
            .env("ATTACH_MAX_BYTES", a.max_upload_bytes.to_string());
    }
    Guard::spawn(&format!("socketio peer #{i}"), &mut cmd)
}

/// Installs the peer's packages from its lockfile (`npm ci`) when `node_modules/` is missing.
pub fn ensure_peer_installed(dir: &Path) -> Result<()> {
    if dir.join("node_modules/socket.io").exists() {
        return Ok(());
    }
    eprintln!(
        "installing the Socket.IO peer's packages (npm ci) in {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .map_err(|e| Error::Process(format!("cannot run npm: {e}")))?;
    if !status.success() {
        return Err(Error::Process(format!("npm ci failed with {status}")));
    }
    Ok(())
}

async fn wait_healthy(guard: &mut Guard, addr: SocketAddr) -> Result<()> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/healthz");
    let wrapped = std::env::var_os(SERVER_WRAP_ENV).is_some();
    let deadline = Instant::now() + Duration::from_secs(if wrapped { 120 } else { 20 });
    loop {
        guard.check_alive()?;
        if let Ok(resp) = client
            .get(&url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{} at {addr} to answer /healthz", guard.name),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system, all threads) a process has used so far; 0 if it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which may contain spaces, in parentheses.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

/// Resident set size of a process in bytes (`VmRSS`); 0 if it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Proportional set size of a process in bytes (`Pss` of `/proc/<pid>/smaps_rollup`: shared
/// pages divided among their sharers); 0 if it is gone.
pub fn pss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Machine-wide CPU time from `/proc/stat`: (busy seconds, total seconds) over all cores.
pub fn machine_cpu() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    let hz = clock_ticks();
    ((total - idle) / hz, total / hz)
}

/// A snapshot of the CPU counters that one measurement compares.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    pub servers: f64,
    pub redis: f64,
    pub bench: f64,
    pub machine_busy: f64,
    pub machine_total: f64,
}

impl CpuSnapshot {
    pub fn take(dep: &Deployment) -> CpuSnapshot {
        let (machine_busy, machine_total) = machine_cpu();
        CpuSnapshot {
            servers: dep.server_pids.iter().map(|&p| cpu_seconds(p)).sum(),
            redis: dep
                .redis
                .as_ref()
                .and_then(|r| r.pid)
                .map_or(0.0, cpu_seconds),
            bench: cpu_seconds(std::process::id()),
            machine_busy,
            machine_total,
        }
    }

    /// What was used between `self` (earlier) and `later`.
    pub fn delta(&self, later: &CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            servers: later.servers - self.servers,
            redis: later.redis - self.redis,
            bench: later.bench - self.bench,
            machine_busy: later.machine_busy - self.machine_busy,
            machine_total: later.machine_total - self.machine_total,
        }
    }
}

/// Total RSS of the deployment's server processes.
pub fn servers_rss(dep: &Deployment) -> u64 {
    dep.server_pids.iter().map(|&p| rss_bytes(p)).sum()
}

/// Raises this process's open-file limit (inherited by the servers it starts) with `prlimit`,
/// as far as the system allows. Returns the limit in force afterwards.
pub fn raise_fd_limit(want: u64) -> u64 {
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={want}:{want}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    fd_limit()
}

/// The soft open-file limit of this process.
pub fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_rss_are_readable() {
        let pid = std::process::id();
        assert!(rss_bytes(pid) > 0);
        assert!(pss_bytes(pid) > 0);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds(pid) >= 0.0);
        let (busy, total) = machine_cpu();
        assert!(total > 0.0 && busy <= total);
    }

    #[test]
    fn resp_replies() {
        assert_eq!(complete_reply(b"+PONG\r\n").as_deref(), Some("+PONG"));
        assert_eq!(complete_reply(b"$5\r\nhello\r\n").as_deref(), Some("hello"));
        assert_eq!(complete_reply(b"$5\r\nhel"), None);
    }
}
