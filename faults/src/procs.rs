//! The processes under test: one private `redis-server` (own port, own directory, with or
//! without AOF) and chat-server nodes, each a separate process so it can be killed with
//! SIGKILL or stopped with SIGTERM. Every process is killed on drop; every wait has a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

pub type Result<T, E = String> = std::result::Result<T, E>;

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range ([`testkit::free_port`]):
/// a process restarted at its port finds it free, where a port of that range may meanwhile be
/// the local port of some outgoing connection.
pub fn free_port() -> Result<u16> {
    Ok(testkit::free_port())
}

/// Sends SIGTERM (graceful stop) to a process.
fn sigterm(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// How Redis keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// `appendonly yes`, `appendfsync everysec`: what an operator who cares configures.
    Aof,
    /// Nothing on disk: a restart comes back empty.
    None,
}

/// The private Redis.
pub struct Redis {
    pub addr: SocketAddr,
    pub persistence: Persistence,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub async fn start(dir: &Path, persistence: Persistence) -> Result<Redis> {
        let port = free_port()?;
        let mut redis = Redis {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            persistence,
            dir: dir.to_owned(),
            child: None,
        };
        redis.up().await?;
        Ok(redis)
    }

    /// Starts (again) on the same port and directory.
    pub async fn up(&mut self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.addr.port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--protected-mode", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(&self.dir)
        .args(["--save", ""]);
        match self.persistence {
            Persistence::Aof => cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"]),
            Persistence::None => cmd.args(["--appendonly", "no"]),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let child = loop {
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            // The old process's port may linger for a moment; retry until it answers.
            let up = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                if let Ok(reply) = command(self.addr, &["PING"]).await {
                    if reply.contains("PONG") {
                        break true;
                    }
                }
                if Instant::now() >= deadline {
                    return Err("redis-server did not answer PING within 15 s".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            if up {
                break child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`: with AOF `everysec` the last second may not be on disk (in practice the
    /// page cache keeps it, since only the process dies).
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Graceful stop (`SHUTDOWN`: with AOF everything is flushed).
    pub async fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = command(self.addr, &["SHUTDOWN"]).await;
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Where the AOF ends now (its current incremental file and length).
    pub fn aof_mark(&self) -> Result<crate::aof::Mark> {
        crate::aof::mark(&self.dir)
    }

    /// Cuts about `bytes` (whole commands) off the end of the AOF, never below `floor` (Redis
    /// must be stopped): the writes a machine crash can lose with `appendfsync everysec`.
    /// Says what was cut; see [`crate::aof::cut_tail`].
    pub fn cut_aof_tail(&self, bytes: u64, floor: &crate::aof::Mark) -> Result<crate::aof::Cut> {
        crate::aof::cut_tail(&self.dir, bytes, floor)
    }
}

/// Sends one command in RESP and returns the reply as text (bulk strings unwrapped).
pub async fn command(addr: SocketAddr, args: &[&str]) -> Result<String> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(req.as_bytes()).await?;
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        Ok::<_, std::io::Error>(text)
    };
    match tokio::time::timeout(Duration::from_secs(2), work).await {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("redis command timed out".into()),
    }
}

/// The Redis a node is configured with.
#[derive(Debug, Clone)]
pub enum NodeStore {
    /// One Redis (`redis_url`).
    Redis(String),
    /// A Redis Cluster's nodes (`redis_cluster`).
    Cluster(Vec<String>),
}

impl From<String> for NodeStore {
    fn from(url: String) -> NodeStore {
        NodeStore::Redis(url)
    }
}

impl NodeStore {
    /// The `CHAT_*` variable that says it.
    fn env(&self) -> (&'static str, String) {
        match self {
            NodeStore::Redis(url) => ("CHAT_REDIS_URL", url.clone()),
            NodeStore::Cluster(urls) => (
                "CHAT_REDIS_CLUSTER",
                serde_json::to_string(urls).unwrap_or_default(),
            ),
        }
    }
}

/// One chat-server node: `faults node` (the same calls as `chat-server`'s main) as its own
/// process, on a fixed port so it restarts at the same address.
pub struct Node {
    pub index: usize,
    pub addr: SocketAddr,
    store: NodeStore,
    exe: PathBuf,
    log: PathBuf,
    /// Settings (`CHAT_*` variables) over the harness's defaults.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Node {
    pub async fn start(exe: &Path, index: usize, redis_url: String, log: PathBuf) -> Result<Node> {
        Node::start_with(exe, index, redis_url.into(), log, Vec::new()).await
    }

    /// As [`Node::start`], with `env` (`CHAT_*` settings) over the harness's defaults, on
    /// every start.
    pub async fn start_with(
        exe: &Path,
        index: usize,
        store: NodeStore,
        log: PathBuf,
        env: Vec<(String, String)>,
    ) -> Result<Node> {
        let port = free_port()?;
        let mut node = Node {
            index,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            store,
            exe: exe.to_owned(),
            log,
            env,
            child: None,
        };
        node.up().await?;
        Ok(node)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts (again) at the same address and waits until `/readyz` answers.
    pub async fn up(&mut self) -> Result<()> {
        let (store_var, store_value) = self.store.env();
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| format!("node log: {e}"))?;
            let mut child = Command::new(&self.exe)
                .arg("node")
                .env("CHAT_LISTEN", self.addr.to_string())
                .env(store_var, &store_value)
                .env("CHAT_SHUTDOWN_GRACE_SECS", "2")
                .env("CHAT_LOGINS_PER_MIN", "100000")
                .env("CHAT_MSGS_PER_SEC", "100000")
                .env("CHAT_MSGS_BURST", "100000")
                .env("CHAT_FRAMES_PER_SEC", "100000")
                .env("CHAT_FRAMES_BURST", "100000")
                .env("CHAT_OUTBOUND_QUEUE", "16")
                // Big bodies let a burst exceed the kernel's socket buffers (several MB on
                // loopback) so a client that stops reading is closed as a slow consumer.
                .env("CHAT_LIMITS__MAX_MESSAGE_BYTES", "30000")
                .env("CHAT_PRESENCE_HEARTBEAT_SECS", "1")
                .env("CHAT_MAX_CONCURRENT_HASHES", "2")
                .env("RUST_LOG", "warn")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start node: {e}"))?;
            let ready = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                if let Ok(r) = http.get(format!("{}/readyz", self.url())).send().await {
                    if r.status().is_success() {
                        break true;
                    }
                }
                if Instant::now() >= deadline {
                    let _ = child.kill().await;
                    return Err(format!("node {} not ready within 30 s", self.index));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            };
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            // It exited (port still held, Redis unreachable at start): try again.
            if Instant::now() >= deadline {
                return Err(format!("node {} kept exiting at start", self.index));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM and wait for the graceful shutdown (at most 10 s, then SIGKILL). Says how the
    /// process ended.
    pub async fn term(&mut self) -> Stopped {
        let Some(mut child) = self.child.take() else {
            return Stopped::NotRunning;
        };
        let t = Instant::now();
        if let Some(pid) = child.id() {
            sigterm(pid);
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) => Stopped::Exited {
                success: status.success(),
                secs: t.elapsed().as_secs_f64(),
            },
            Ok(Err(_)) | Err(_) => {
                let _ = child.kill().await;
                Stopped::Killed
            }
        }
    }
}

/// How a node ended after SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// It exited by itself, `secs` after the signal.
    Exited {
        success: bool,
        secs: f64,
    },
    /// It did not exit within 10 s and was killed.
    Killed,
    NotRunning,
}

/// A private S3-protocol server (`s3s-fs` from crates.io, installed by `scripts/setup.sh`) over
/// a directory of the run: the nodes share its bucket instead of a directory.
pub struct S3 {
    pub endpoint: String,
    /// The directory the server keeps its buckets in; objects are files under `root/BUCKET`.
    pub root: PathBuf,
    child: Option<Child>,
}

impl S3 {
    pub const BUCKET: &'static str = "chat-files";
    const KEY: &'static str = "fault-run-access-key";
    const SECRET: &'static str = "fault-run-secret-key-0123456789";

    /// Starts `s3s-fs` on a free port over `root` (created) and waits until it listens.
    pub async fn start(root: PathBuf) -> Result<S3> {
        use tokio::io::AsyncBufReadExt;
        std::fs::create_dir_all(root.join(S3::BUCKET)).map_err(|e| format!("s3 bucket: {e}"))?;
        let installed = Path::new("/var/cache/chat/tools/bin/s3s-fs");
        let bin: PathBuf = if installed.exists() {
            installed.to_owned()
        } else {
            "s3s-fs".into()
        };
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", S3::KEY, "--secret-key", S3::SECRET])
            .arg(&root)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} (scripts/setup.sh installs it): {e}",
                    bin.display()
                )
            })?;
        let stdout = child.stdout.take().ok_or("s3s-fs has no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("http://127.0.0.1:") {
                    return Some(
                        line[at..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
                            .collect::<String>(),
                    );
                }
            }
            None
        })
        .await
        .map_err(|_| "s3s-fs did not listen within 15 s".to_owned())?
        .ok_or("s3s-fs exited before listening")?;
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(S3 {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            root,
            child: Some(child),
        })
    }

    /// The nodes' settings for this bucket.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("CHAT_ATTACHMENTS__S3__BUCKET", S3::BUCKET),
            ("CHAT_ATTACHMENTS__S3__ENDPOINT", &self.endpoint),
            ("CHAT_ATTACHMENTS__S3__ACCESS_KEY_ID", S3::KEY),
            ("CHAT_ATTACHMENTS__S3__SECRET_ACCESS_KEY", S3::SECRET),
            ("CHAT_ATTACHMENTS__S3__ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Where the bucket's objects are files (`blobs/{id}`, `thumbs/{id}`).
    pub fn files(&self) -> PathBuf {
        self.root.join(S3::BUCKET)
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}
