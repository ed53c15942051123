//! Test support shared by the integration tests of the server and of the desktop backend: a
//! private `redis-server` that the test starts itself on a free port, so a test run needs no
//! Redis running beforehand and behaves the same in CI and on a developer's machine.
//!
//! [`RedisServer::start_tls`] starts one that speaks only TLS and has an ACL user, and
//! [`tls::TestCa`] makes the certificates. [`cluster::RedisCluster`] starts a Redis Cluster of
//! several masters (and replicas). [`proxy`] runs Debian's nginx and caddy with the
//! shipped `deploy/` configurations in front of nodes.
//!
//! The fault harness (`faults/`) and the benchmark (`bench/`) manage their own Redis
//! processes: they restart them at the same port, with persistence, and kill them mid-run.

pub mod cluster;
pub mod ports;
pub mod proxy;
pub mod tls;

pub use ports::free_port;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long one command to Redis may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How many ports [`RedisServer::start`] tries before it gives up.
const START_ATTEMPTS: usize = 5;
/// How many lines of a Redis log a panic message quotes.
pub(crate) const LOG_TAIL_LINES: usize = 20;

/// Distinguishes the temporary files of the processes one test binary starts.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// A path in the temporary directory unique to this process and call: `chat-<what>-<pid>-<n>`.
pub(crate) fn temp_path(what: &str) -> PathBuf {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("chat-{what}-{}-{n}", std::process::id()))
}

/// A private `redis-server` on a free port, without persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// `redis://127.0.0.1:<port>/`
    pub url: String,
    /// Its stdout and stderr (Redis logs to stdout), quoted when it does not start; removed on
    /// drop.
    log: PathBuf,
}

/// Opens `path` for a child's stdout and stderr.
fn log_file(path: &Path) -> (Stdio, Stdio) {
    let open =
        || std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let out = open();
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("clone {}: {e}", path.display()));
    (out.into(), err.into())
}

impl RedisServer {
    pub const BINARY: &'static str = "/usr/bin/redis-server";

    /// Starts redis and waits (at most 10 s) until it answers `PING`. Retries on another port
    /// if it exits first (its port got taken between picking and binding); the panic after the
    /// last attempt quotes the end of each attempt's log.
    pub async fn start() -> RedisServer {
        let mut errors = Vec::new();
        for _attempt in 0..START_ATTEMPTS {
            let port = free_port();
            let log = temp_path("redis-log");
            let (stdout, stderr) = log_file(&log);
            let child = Command::new(Self::BINARY)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--protected-mode", "no", "--loglevel", "warning"])
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", Self::BINARY));
            let mut server = RedisServer {
                child,
                port,
                url: format!("redis://127.0.0.1:{port}/"),
                log,
            };
            match server.wait_ready(Duration::from_secs(10)).await {
                Ok(()) => return server,
                Err(e) => {
                    let _ = server.child.kill();
                    let _ = server.child.wait();
                    errors.push(format!(
                        "{e}; its log:\n{}",
                        ports::log_tail(&server.log, LOG_TAIL_LINES)
                    ));
                } // dropped here: log removed
            }
        }
        panic!(
            "redis-server did not start in {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n")
        );
    }

    /// Starts a redis that speaks only TLS (`--port 0`, `--tls-port`), with a certificate from
    /// `ca` (files in `dir`) and the default user switched off: the one account is `user` with
    /// `password`. `url` is `rediss://user:password@127.0.0.1:<port>/`. Ready once its TLS port
    /// accepts connections (at most 10 s). [`RedisServer::cmd`] does not work on it.
    pub async fn start_tls(
        ca: &tls::TestCa,
        dir: &Path,
        user: &str,
        password: &str,
    ) -> RedisServer {
        let leaf = ca.issue(&["127.0.0.1", "localhost"]);
        let (cert, key) = leaf.write(dir);
        let ca_file = dir.join("redis-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write redis-ca.pem");
        let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
        let port = free_port();
        let log = temp_path("redis-tls-log");
        let (stdout, stderr) = log_file(&log);
        let child = Command::new(Self::BINARY)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &path(&cert),
                "--tls-key-file",
                &path(&key),
            ])
            .args([
                "--tls-ca-cert-file",
                &path(&ca_file),
                "--tls-auth-clients",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .args(["--user", "default", "off"])
            .args([
                "--user",
                user,
                "on",
                &format!(">{password}"),
                "~*",
                "&*",
                "+@all",
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", Self::BINARY));
        let mut server = RedisServer {
            child,
            port,
            url: format!("rediss://{user}:{password}@127.0.0.1:{port}/"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "TLS redis-server on port {port} exited early with {status}; its log:\n{}",
                    ports::log_tail(&server.log, LOG_TAIL_LINES)
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "TLS redis-server on port {port} did not listen within 10 s"
            );
            // Polling interval while the process starts up (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited early with {status}",
                    self.port
                ));
            }
            let ping = tokio::time::timeout(Duration::from_millis(500), self.exchange(b"PING\r\n"));
            if let Ok(Ok(reply)) = ping.await {
                if reply.starts_with("+PONG") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server on port {} did not answer PING within {within:?}",
                    self.port
                ));
            }
            // Polling interval while the process starts up (not a "settle" sleep).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one command (RESP) on a fresh connection and returns the first line of the reply,
    /// e.g. `+OK` or `:1`. For tests that change the store behind the server's back.
    pub async fn cmd(&self, args: &[&str]) -> String {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, self.exchange(req.as_bytes()))
            .await
            .unwrap_or_else(|_| panic!("redis {args:?} took longer than {COMMAND_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"));
        reply.lines().next().unwrap_or_default().to_owned()
    }

    async fn exchange(&self, request: &[u8]) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.write_all(request).await?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
