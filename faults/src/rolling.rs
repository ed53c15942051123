//! The rolling restart (issue 12): every node restarted in turn (SIGTERM, then started again
//! and waited for on `/readyz`) while scripted clients keep sending through Debian's nginx
//! running the shipped `deploy/nginx/chat.conf` (plain HTTP: `testkit::proxy`), as an operator
//! upgrades a deployment. It passes when what an operator and the users would observe is right:
//!
//! - the history checker finds nothing lost, duplicated or reordered;
//! - each node drains on SIGTERM: it exits by itself with status 0 (not killed), and every socket
//!   it closed was told 1001 "going away" (no other close code reached any client, and every
//!   reconnect followed such a close);
//! - no client reconnected more often than nodes were restarted (a client is moved at most once
//!   by each restart: when its own node goes), and each was back (`ready` again) within
//!   `reconnect_bound_ms` of losing its socket.

use crate::checker::{self, Canonical, ClientObs, Findings, Volume};
use crate::client::{Client, ClientSpec, LiveNodes};
use crate::procs::{Node, Persistence, Redis, Stopped};
use crate::rest::Rest;
use protocol::RoomId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
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
    /// Longest a client may be without an authenticated socket after losing one.
    pub reconnect_bound_ms: u64,
}

/// What happened.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub options: Options,
    pub ok: bool,
    pub restarts: usize,
    /// Seconds each restart took, SIGTERM to `/readyz` 200.
    pub restart_secs: Vec<f64>,
    /// How each node ended after its SIGTERM, in restart order.
    pub drains: Vec<Stopped>,
    /// Per client: sockets opened after the first.
    pub reconnects: Vec<u32>,
    /// The longest time any client was without a socket (lost → `ready` again), ms.
    pub outage_ms_max: u64,
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
            "rolling restart: {} nodes × {} rounds = {} restarts (each {:.1}–{:.1} s, drains {}) under {} clients via nginx: \
             sent={} delivered={} lost={} dup={} reord={} reconnects per client max={} (limit {}) \
             back within {} ms (limit {}) closes={:?} {}",
            self.options.nodes,
            self.options.rounds,
            self.restarts,
            self.restart_secs.iter().copied().fold(f64::INFINITY, f64::min),
            self.restart_secs.iter().copied().fold(0.0, f64::max),
            self.drains_line(),
            self.options.clients,
            self.volume.sent,
            self.volume.delivered,
            self.findings.lost.len(),
            self.findings.duplicated.len(),
            self.findings.reordered.len() + self.findings.gapped.len(),
            self.reconnects.iter().max().copied().unwrap_or(0),
            self.restarts,
            self.outage_ms_max,
            self.options.reconnect_bound_ms,
            self.closes,
            if self.ok { "ok" } else { "FAIL" },
        )
    }

    fn drains_line(&self) -> String {
        if self.drains_clean() {
            let secs = self.drains.iter().filter_map(|d| match d {
                Stopped::Exited { secs, .. } => Some(*secs),
                _ => None,
            });
            format!("clean, ≤{:.1} s", secs.fold(0.0, f64::max))
        } else {
            format!("NOT clean: {:?}", self.drains)
        }
    }

    /// Every node exited by itself with status 0 after its SIGTERM.
    pub fn drains_clean(&self) -> bool {
        self.drains.len() == self.restarts
            && self
                .drains
                .iter()
                .all(|d| matches!(d, Stopped::Exited { success: true, .. }))
    }

    /// Every close a client received was 1001 (going away), and every reconnect followed one.
    pub fn closes_clean(&self) -> bool {
        let going_away = self.closes.get(&protocol::close::GOING_AWAY).copied();
        let reconnects: u32 = self.reconnects.iter().sum();
        self.closes
            .keys()
            .all(|c| *c == protocol::close::GOING_AWAY)
            && going_away.unwrap_or(0) == reconnects
    }
}

/// Runs the rolling restart in `dir` with node processes from `exe` (`faults node`).
pub async fn run(options: Options, exe: &Path, dir: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report {
        options: options.clone(),
        ok: false,
        restarts: 0,
        restart_secs: Vec::new(),
        drains: Vec::new(),
        reconnects: Vec::new(),
        outage_ms_max: 0,
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
    report.ok = report.error.is_none()
        && report.findings.is_clean()
        && reconnects_ok
        && report.outage_ms_max <= options.reconnect_bound_ms
        && report.drains_clean()
        && report.closes_clean();
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
        let log = dir.join(format!("node{i}.log"));
        // Production settings where the fault runs shrink them: the default outbound queue
        // (the fault runs use 16 to provoke slow-consumer closes), a 5 s drain.
        let env = vec![
            ("CHAT_OUTBOUND_QUEUE".to_owned(), "1024".to_owned()),
            ("CHAT_SHUTDOWN_GRACE_SECS".to_owned(), "5".to_owned()),
        ];
        nodes.push(Node::start_with(exe, i, url.into(), log, env).await?);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let nginx_dir = dir.join("nginx");
    std::fs::create_dir_all(&nginx_dir).map_err(|e| format!("nginx dir: {e}"))?;
    let mut nginx = testkit::proxy::nginx(&nginx_dir, None, &addrs).await?;
    let rest = Rest::new(format!("http://{}", nginx.addr))?;

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
                    // The nodes here store no files.
                    files: false,
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
            report.drains.push(node.term().await);
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
    let files = checker::FileObs::default();
    let (findings, volume) = checker::check(&canonical, &obs, None, &files);
    report.findings = findings;
    report.volume = volume;
    report.reconnects = states
        .iter()
        .map(|s| s.connects.saturating_sub(1))
        .collect();
    report.outage_ms_max = states
        .iter()
        .flat_map(|s| s.outages_ms.iter().copied())
        .max()
        .unwrap_or(0);
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
    let log = nginx.log();
    nginx.stop();
    if log.contains("[emerg]") || log.contains("[crit]") {
        return Err(format!("nginx: {log}"));
    }
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
                st.outboxes_empty() && st.start.keys().all(|r| st.cursors.get(r) == last.get(r))
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
