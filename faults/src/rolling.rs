//! The rolling restart (issue 12): every node restarted in turn (SIGTERM, then started again
//! and waited for on `/readyz`) while scripted clients keep sending through nginx, as an
//! operator upgrades a deployment. Passes when the history checker finds nothing lost,
//! duplicated or reordered, and no client reconnected more often than nodes were restarted
//! (a client is moved at most once by each restart: when its own node goes).

use crate::checker::{self, Canonical, ClientObs, Findings, Volume};
use crate::client::{Client, ClientSpec, LiveNodes};
use crate::procs::{free_port, Node, Persistence, Redis};
use crate::rest::Rest;
use protocol::RoomId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// What to run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub nodes: usize,
    pub clients: usize,
    /// Times every node is restarted.
    pub rounds: usize,
    /// Steady traffic between two restarts.
    pub between_ms: u64,
    /// Mean time between messages of one client.
    pub send_every_ms: u64,
}

/// What happened.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub options: Options,
    pub ok: bool,
    pub restarts: usize,
    /// Seconds each restart took, SIGTERM to `/readyz` 200.
    pub restart_secs: Vec<f64>,
    /// Per client: sockets opened after the first.
    pub reconnects: Vec<u32>,
    /// Close codes received, with counts.
    pub closes: BTreeMap<u16, u32>,
    pub volume: Volume,
    pub findings: Findings,
    pub error: Option<String>,
    pub secs: f64,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "rolling restart: {} nodes × {} rounds = {} restarts (each {:.1}–{:.1} s) under {} clients via nginx: \
             sent={} delivered={} lost={} dup={} reord={} reconnects per client max={} (limit {}) closes={:?} {}",
            self.options.nodes,
            self.options.rounds,
            self.restarts,
            self.restart_secs.iter().copied().fold(f64::INFINITY, f64::min),
            self.restart_secs.iter().copied().fold(0.0, f64::max),
            self.options.clients,
            self.volume.sent,
            self.volume.delivered,
            self.findings.lost.len(),
            self.findings.duplicated.len(),
            self.findings.reordered.len() + self.findings.gapped.len(),
            self.reconnects.iter().max().copied().unwrap_or(0),
            self.restarts,
            self.closes,
            if self.ok { "ok" } else { "FAIL" },
        )
    }
}

/// nginx in front of the nodes, as in the operations guide: WebSocket upgrade passed through,
/// a refused connection (a node that is restarting) retried on another node.
struct Nginx {
    addr: SocketAddr,
    child: Child,
}

impl Nginx {
    async fn start(dir: &Path, upstreams: &[SocketAddr]) -> Result<Nginx, String> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let root = dir.join("nginx");
        for sub in ["", "tmp", "logs"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| format!("nginx dir: {e}"))?;
        }
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let conf = NGINX_CONF
            .replace("{root}", &root.display().to_string())
            .replace("{listen}", &addr.to_string())
            .replace("{servers}", &servers);
        let path = root.join("nginx.conf");
        std::fs::write(&path, conf).map_err(|e| format!("nginx.conf: {e}"))?;
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start nginx: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                return Err("nginx did not listen within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Nginx { addr, child })
    }
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// The proxy configuration (placeholders filled in by [`Nginx::start`]).
const NGINX_CONF: &str = r#"daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {root}/tmp/body;
  proxy_temp_path {root}/tmp/proxy;
  fastcgi_temp_path {root}/tmp/fastcgi;
  uwsgi_temp_path {root}/tmp/uwsgi;
  scgi_temp_path {root}/tmp/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream chat {
{servers}  }
  server {
    listen {listen};
    location / {
      proxy_pass http://chat;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Request-Id $request_id;
      proxy_read_timeout 120s;
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
    }
  }
}
"#;

/// Runs the rolling restart in `dir` with node processes from `exe` (`faults node`).
pub async fn run(options: Options, exe: &Path, dir: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report {
        options: options.clone(),
        ok: false,
        restarts: 0,
        restart_secs: Vec::new(),
        reconnects: Vec::new(),
        closes: BTreeMap::new(),
        volume: Volume::default(),
        findings: Findings::default(),
        error: None,
        secs: 0.0,
    };
    if let Err(e) = execute(&options, exe, dir, &mut report).await {
        report.error = Some(e);
    }
    let reconnects_ok = report
        .reconnects
        .iter()
        .all(|n| *n as usize <= report.restarts);
    report.ok = report.error.is_none() && report.findings.is_clean() && reconnects_ok;
    report.secs = started.elapsed().as_secs_f64();
    report
}

async fn execute(
    options: &Options,
    exe: &Path,
    dir: &Path,
    report: &mut Report,
) -> Result<(), String> {
    let mut redis = Redis::start(dir, Persistence::Aof).await?;
    let mut nodes = Vec::new();
    for i in 0..options.nodes {
        let url = format!("redis://{}/", redis.addr);
        nodes.push(Node::start(exe, i, url, dir.join(format!("node{i}.log"))).await?);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let mut nginx = Nginx::start(dir, &addrs).await?;
    let rest = Rest::new(format!("http://{}", nginx.addr));

    // Everyone in one public room; pairs in direct rooms.
    let mut users = Vec::new();
    for i in 0..options.clients {
        let name = format!("roll{i}x{:x}", std::process::id());
        let auth = rest.register(&name).await?;
        users.push((name, auth.user.id, auth.token));
    }
    let all = rest.create_room(&users[0].2, "all", true).await?;
    let mut member_of: Vec<Vec<RoomId>> = vec![vec![all.id]; users.len()];
    let mut readers = BTreeMap::from([(all.id, users[0].2.clone())]);
    for u in users.iter().skip(1) {
        rest.join(&u.2, all.id).await?;
    }
    for pair in (0..users.len()).collect::<Vec<_>>().chunks(2) {
        if let [a, b] = pair {
            let dm = rest.dm(&users[*a].2, users[*b].1).await?;
            member_of[*a].push(dm.id);
            member_of[*b].push(dm.id);
            readers.insert(dm.id, users[*a].2.clone());
        }
    }
    // Clients know only the proxy.
    let live: LiveNodes = Arc::new(std::sync::Mutex::new(vec![(0, nginx.addr)]));
    let clients: Vec<Client> = users
        .into_iter()
        .enumerate()
        .map(|(i, (name, user, token))| {
            Client::start(
                ClientSpec {
                    name,
                    index: i,
                    user,
                    token,
                    rooms: member_of[i].clone(),
                    every: Duration::from_millis(options.send_every_ms),
                    prefer_node: 0,
                    seed: 0x5eed ^ i as u64,
                },
                live.clone(),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !clients.iter().all(|c| c.lock().connected) {
        if Instant::now() > deadline {
            return Err("clients did not connect within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The roll: each node in turn, with steady traffic before, between and after.
    for _round in 0..options.rounds {
        for node in &mut nodes {
            tokio::time::sleep(Duration::from_millis(options.between_ms)).await;
            let t = Instant::now();
            node.term().await;
            node.up().await?;
            report.restart_secs.push(t.elapsed().as_secs_f64());
            report.restarts += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(options.between_ms)).await;
    for c in &clients {
        c.lock().stop_composing = true;
    }
    let canonical = settle(&rest, &readers, &clients).await?;
    let states: Vec<_> = clients.iter().map(|c| c.lock()).collect();
    let obs: Vec<ClientObs<'_>> = clients
        .iter()
        .zip(&states)
        .map(|(c, st)| ClientObs {
            name: &c.spec.name,
            user: c.spec.user,
            state: st,
        })
        .collect();
    let (findings, volume) = checker::check(&canonical, &obs, None);
    report.findings = findings;
    report.volume = volume;
    report.reconnects = states
        .iter()
        .map(|s| s.connects.saturating_sub(1))
        .collect();
    for code in states.iter().flat_map(|s| s.closes.iter()) {
        *report.closes.entry(*code).or_default() += 1;
    }
    drop(obs);
    drop(states);
    for c in &clients {
        c.lock().done = true;
        c.kick();
    }
    for n in &mut nodes {
        n.kill9().await;
    }
    let _ = nginx.child.kill().await;
    redis.kill9().await;
    Ok(())
}

/// Waits (at most 30 s) until every outbox is empty and every client holds every room's newest
/// seq; returns the canonical history.
async fn settle(
    rest: &Rest,
    readers: &BTreeMap<RoomId, String>,
    clients: &[Client],
) -> Result<Canonical, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = BTreeMap::new();
        for (room, token) in readers {
            if let Ok(r) = rest.room(token, *room).await {
                last.insert(*room, r.last_seq);
            }
        }
        let settled = last.len() == readers.len()
            && clients.iter().all(|c| {
                let st = c.lock();
                st.outbox.is_empty() && st.start.keys().all(|r| st.cursors.get(r) == last.get(r))
            });
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut canonical = Canonical::new();
    for (room, token) in readers {
        canonical.insert(*room, rest.history(token, *room).await?);
    }
    Ok(canonical)
}
