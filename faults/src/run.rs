//! One fault run: a plan drawn from a seed, the processes, the clients, the faults at their
//! moments, healing, waiting until every client has caught up, and the check.

use crate::checker::{
    self, Canonical, ClientObs, DesktopObs, Fetched, FileObs, Findings, Volume, WipeObs,
};
use crate::client::{Client, ClientSpec, LiveNodes};
use crate::desktop::{Desktop, Write};
use crate::files;
use crate::procs::{Node, Persistence, Redis, S3};
use crate::proxy::{Link, Proxy};
use crate::rest::{Rest, PASSWORD};
use protocol::{RoomId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The kinds of fault a run injects.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` of a node; its clients reconnect to another one. Restarted later.
    NodeKill,
    /// SIGTERM: graceful shutdown (close 1001), restarted later.
    NodeRestart,
    /// `kill -9` of Redis with AOF everysec, restarted on the same data.
    RedisKill,
    /// Graceful Redis restart (SHUTDOWN) with AOF.
    RedisRestart,
    /// Redis without persistence restarted: everything is gone; clients must be told.
    RedisWipe,
    /// The node↔Redis link drops every connection and refuses new ones for a while.
    LinkReset,
    /// The node↔Redis link goes silent (packets held) for a while.
    LinkBlackhole,
    /// A scripted client drops its socket and stays away, composing into its outbox.
    ClientOffline,
    /// A scripted client stops reading while another bursts into its room (server: 4008).
    SlowClient,
    /// The desktop app loses the network for a while and composes into its outbox.
    DesktopOffline,
    /// The desktop app is closed with pending outbox messages and opened again.
    DesktopReopen,
    /// Redis with AOF loses the tail of its log (what a machine crash with `appendfsync
    /// everysec` can do): `kill -9` and the last few KB of the AOF cut off. The loss is
    /// allowed; every client must be told (4010) and no seq may be handed out twice.
    RedisRollback,
    /// `kill -9` of a node while a large upload to it is half-way (its half-written file seen
    /// on the storage); the client then uploads the file again to a live node and sends it.
    UploadKill,
}

impl FaultKind {
    pub const ALL: [FaultKind; 13] = [
        FaultKind::NodeKill,
        FaultKind::NodeRestart,
        FaultKind::RedisKill,
        FaultKind::RedisRestart,
        FaultKind::RedisWipe,
        FaultKind::RedisRollback,
        FaultKind::LinkReset,
        FaultKind::LinkBlackhole,
        FaultKind::ClientOffline,
        FaultKind::SlowClient,
        FaultKind::DesktopOffline,
        FaultKind::DesktopReopen,
        FaultKind::UploadKill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NodeKill => "node_kill",
            FaultKind::NodeRestart => "node_restart",
            FaultKind::RedisKill => "redis_kill",
            FaultKind::RedisRestart => "redis_restart",
            FaultKind::RedisWipe => "redis_wipe",
            FaultKind::LinkReset => "link_reset",
            FaultKind::LinkBlackhole => "link_blackhole",
            FaultKind::ClientOffline => "client_offline",
            FaultKind::SlowClient => "slow_client",
            FaultKind::DesktopOffline => "desktop_offline",
            FaultKind::DesktopReopen => "desktop_reopen",
            FaultKind::RedisRollback => "redis_rollback",
            FaultKind::UploadKill => "upload_kill",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One planned fault.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Milliseconds after traffic starts.
    pub at_ms: u64,
    pub for_ms: u64,
    /// Node or client index, where it applies.
    pub target: usize,
}

/// Where the nodes keep attachments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// A directory every node uses (`attachments.dir`).
    #[default]
    Dir,
    /// One bucket of a private `s3s-fs` (`attachments.s3`).
    S3,
}

/// Everything a seed decides.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub seed: u64,
    pub nodes: usize,
    pub clients_per_node: usize,
    pub persistence: Persistence,
    #[serde(default)]
    pub storage: Storage,
    pub desktop: bool,
    pub traffic_ms: u64,
    pub send_every_ms: u64,
    pub faults: Vec<Fault>,
}

impl Plan {
    /// The plan of `seed`. With `only`, every fault is of that kind (the CI subset).
    pub fn new(seed: u64, only: Option<FaultKind>) -> Plan {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = rng.random_range(2..=3);
        let clients_per_node = 2;
        let wipe = match only {
            Some(k) => k == FaultKind::RedisWipe,
            None => rng.random_range(0..10) == 0,
        };
        // A machine crash under AOF everysec: once, after the other faults, in one run of ten.
        let rollback = match only {
            Some(k) => k == FaultKind::RedisRollback,
            None => !wipe && rng.random_range(0..10) == 0,
        };
        let persistence = if wipe || (only.is_none() && !rollback && rng.random_range(0..4) == 0) {
            Persistence::None
        } else {
            Persistence::Aof
        };
        let desktop_kinds = [FaultKind::DesktopOffline, FaultKind::DesktopReopen];
        let desktop = match only {
            Some(k) => desktop_kinds.contains(&k) || rng.random_range(0..3) == 0,
            None => rng.random_range(0..2) == 0,
        };
        let traffic_ms = rng.random_range(3500..=5500);
        let mut kinds: Vec<FaultKind> = vec![
            FaultKind::NodeKill,
            FaultKind::NodeRestart,
            FaultKind::LinkReset,
            FaultKind::LinkBlackhole,
            FaultKind::ClientOffline,
            FaultKind::SlowClient,
            FaultKind::UploadKill,
        ];
        if persistence == Persistence::Aof {
            kinds.extend([FaultKind::RedisKill, FaultKind::RedisRestart]);
        }
        if desktop {
            kinds.extend(desktop_kinds);
        }
        let count = match only {
            Some(FaultKind::RedisWipe | FaultKind::RedisRollback) => 0,
            Some(_) => rng.random_range(1..=2),
            None => rng.random_range(2..=4),
        };
        let mut faults = Vec::new();
        let mut at = rng.random_range(300..900);
        for _ in 0..count {
            let kind = only.unwrap_or_else(|| kinds[rng.random_range(0..kinds.len())]);
            let for_ms = match kind {
                FaultKind::SlowClient => rng.random_range(2000..3500),
                FaultKind::DesktopReopen => rng.random_range(200..600),
                _ => rng.random_range(200..1500),
            };
            let target = match kind {
                FaultKind::ClientOffline | FaultKind::SlowClient => {
                    rng.random_range(0..nodes * clients_per_node)
                }
                _ => rng.random_range(0..nodes),
            };
            faults.push(Fault {
                kind,
                at_ms: at,
                for_ms,
                target,
            });
            at += for_ms + rng.random_range(100..700);
        }
        if rollback {
            // Well after setup, so at most the last second of traffic is lost.
            at = at.max(1500);
            faults.push(Fault {
                kind: FaultKind::RedisRollback,
                at_ms: at,
                for_ms: rng.random_range(200..1500),
                target: 0,
            });
            at += 1500;
        }
        if wipe {
            faults.push(Fault {
                kind: FaultKind::RedisWipe,
                at_ms: rng.random_range(800..traffic_ms - 500),
                for_ms: 0,
                target: 0,
            });
        }
        let traffic_ms = traffic_ms.max(at + 300);
        // Drawn last, so the rest of a seed's plan is what it was before files came in.
        let storage = match only {
            Some(FaultKind::UploadKill) if seed % 2 == 0 => Storage::S3,
            Some(_) => Storage::Dir,
            None if rng.random_range(0..4) == 0 => Storage::S3,
            None => Storage::Dir,
        };
        Plan {
            seed,
            nodes,
            clients_per_node,
            persistence,
            storage,
            desktop,
            traffic_ms,
            send_every_ms: rng.random_range(120..250),
            faults,
        }
    }
}

/// The result of one run (one JSON line in the campaign's output).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub seed: u64,
    pub ok: bool,
    pub plan: Plan,
    pub faults: BTreeMap<String, u32>,
    pub volume: Volume,
    /// Messages acked before a store wipe (gone, as documented; every client was told).
    pub wiped_acked: u64,
    /// Rollback runs (`redis_rollback`): acknowledged messages the store lost (allowed, the
    /// documented limit of AOF everysec; they do not fail the run).
    pub lost_detected: u64,
    /// Rollback runs: scripted clients that held something the store lost (an event they
    /// received, a message acknowledged to them), so had something to be told.
    #[serde(default)]
    pub rollback_affected: u32,
    /// Rollback runs: of those, the ones told neither by 4010 nor by a gap.
    pub rollback_untold: u32,
    /// Who they are and what they held.
    #[serde(default)]
    pub untold: Vec<String>,
    /// What each `redis_rollback` cut off the AOF: bytes, commands, room events.
    #[serde(default)]
    pub aof_cuts: Vec<crate::aof::Cut>,
    /// The store lost acknowledged writes (AOF tail cut, or Redis killed while an AOF write
    /// was postponed); judged by the rollback rules.
    pub store_lost_writes: bool,
    /// Slow-consumer closes (4008) the clients received.
    pub slow_closes: u32,
    /// Close codes the scripted clients received, by code.
    pub closes: BTreeMap<u16, u32>,
    /// `upload_kill` faults whose upload was seen half-written on the storage when the node
    /// was killed.
    #[serde(default)]
    pub cut_uploads: u32,
    /// Half-written upload files on the storage at the end (before the collector's pass
    /// that must remove them).
    #[serde(default)]
    pub partial_files: u32,
    pub findings: Findings,
    /// The run could not be carried out (setup failed, a process would not start).
    pub error: Option<String>,
    pub secs: f64,
}

impl Report {
    pub fn lost(&self) -> usize {
        self.findings.lost.len()
    }
    pub fn duplicated(&self) -> usize {
        self.findings.duplicated.len()
    }
    pub fn reordered(&self) -> usize {
        self.findings.reordered.len() + self.findings.gapped.len()
    }
    pub fn corrupted(&self) -> usize {
        self.findings.corrupted.len()
    }
}

struct World {
    redis: Redis,
    proxies: Vec<Proxy>,
    nodes: Vec<Node>,
    live: LiveNodes,
    clients: Vec<Client>,
    desktop: Option<Arc<Desktop>>,
    rest: Rest,
    /// A member token per room, for reading history.
    readers: BTreeMap<RoomId, String>,
    /// Seq of each room when the desktop app had joined.
    desktop_start: BTreeMap<RoomId, u64>,
    desktop_rooms: Vec<RoomId>,
    /// Where the AOF ended when setup was done (`None` without AOF): a cut never goes below.
    aof_after_setup: Option<crate::aof::Mark>,
    /// What each `redis_rollback` cut off the AOF.
    aof_cuts: Vec<crate::aof::Cut>,
    /// The S3 server, when the nodes keep files in a bucket.
    s3: Option<S3>,
    /// Where the stored files appear on disk (`blobs/{id}`, `thumbs/{id}`).
    files: PathBuf,
    cut_uploads: u32,
}

impl World {
    fn set_live(&self) {
        let live: Vec<(usize, std::net::SocketAddr)> = self
            .nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| (n.index, n.addr))
            .collect();
        if let Some(d) = &self.desktop {
            d.front.set_upstream(live.iter().map(|(_, a)| *a).collect());
        }
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = live;
    }
}

/// Runs the plan of `seed` in `dir` (a fresh temp dir) with node processes from `exe`.
pub async fn run(seed: u64, only: Option<FaultKind>, exe: &Path, dir: &Path) -> Report {
    let plan = Plan::new(seed, only);
    let started = Instant::now();
    let mut report = Report {
        seed,
        ok: false,
        plan: plan.clone(),
        faults: BTreeMap::new(),
        volume: Volume::default(),
        wiped_acked: 0,
        lost_detected: 0,
        rollback_affected: 0,
        rollback_untold: 0,
        untold: Vec::new(),
        aof_cuts: Vec::new(),
        store_lost_writes: false,
        slow_closes: 0,
        closes: BTreeMap::new(),
        cut_uploads: 0,
        partial_files: 0,
        findings: Findings::default(),
        error: None,
        secs: 0.0,
    };
    match tokio::time::timeout(
        Duration::from_secs(150),
        execute(&plan, exe, dir, &mut report),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.error = Some(e),
        Err(_) => report.error = Some("the run took longer than 150 s".into()),
    }
    // A client that held a write the store lost and was told nothing fails the run: "detected
    // and told" is the promise when acknowledged writes are lost.
    report.ok = report.error.is_none() && report.findings.is_clean() && report.untold.is_empty();
    report.secs = started.elapsed().as_secs_f64();
    report
}

async fn setup(plan: &Plan, exe: &Path, dir: &Path) -> Result<World, String> {
    let redis = Redis::start(dir, plan.persistence).await?;
    // Attachments: a shared directory or bucket; the collector runs every second (so files of
    // deleted messages go during the run) with an hour of grace (no upload expires in a run).
    let mut env: Vec<(String, String)> = [
        ("CHAT_ATTACHMENTS__COLLECT_EVERY_SECS", "1"),
        ("CHAT_ATTACHMENTS__ORPHAN_GRACE_SECS", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (s3, files) = match plan.storage {
        Storage::Dir => {
            let files = dir.join("files");
            env.push((
                "CHAT_ATTACHMENTS__DIR".into(),
                files.to_string_lossy().into_owned(),
            ));
            (None, files)
        }
        Storage::S3 => {
            let s3 = S3::start(dir.join("s3")).await?;
            env.extend(s3.env());
            let files = s3.files();
            (Some(s3), files)
        }
    };
    let mut proxies = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..plan.nodes {
        let proxy = Proxy::start(vec![redis.addr])
            .await
            .map_err(|e| e.to_string())?;
        let url = format!("redis://{}/", proxy.addr);
        let log = dir.join(format!("node{i}.log"));
        nodes.push(Node::start_with(exe, i, url, log, env.clone()).await?);
        proxies.push(proxy);
    }
    let rest = Rest::new(nodes[0].url())?;
    let n_clients = plan.nodes * plan.clients_per_node;
    let tag = format!("{:x}", plan.seed % 0xffff_ffff);
    let mut users: Vec<(String, UserId, String)> = Vec::new();
    for i in 0..n_clients {
        let name = format!("c{i}x{tag}");
        let auth = rest.register(&name).await?;
        users.push((name, auth.user.id, auth.token));
    }
    // Rooms: one public room for all, one private room, direct rooms between pairs.
    let all = rest.create_room(&users[0].2, "all", true).await?;
    let private = rest.create_room(&users[1].2, "private", false).await?;
    let mut member_of: Vec<Vec<RoomId>> = vec![vec![all.id]; n_clients];
    member_of[1].push(private.id);
    let mut readers = BTreeMap::new();
    readers.insert(all.id, users[0].2.clone());
    readers.insert(private.id, users[1].2.clone());
    for (i, u) in users.iter().enumerate().skip(1) {
        rest.join(&u.2, all.id).await?;
        if i % 2 == 0 {
            rest.invite(&users[1].2, private.id, u.1).await?;
            member_of[i].push(private.id);
        }
    }
    for pair in (0..n_clients).collect::<Vec<_>>().chunks(2) {
        if let [a, b] = pair {
            let dm = rest.dm(&users[*a].2, users[*b].1).await?;
            member_of[*a].push(dm.id);
            member_of[*b].push(dm.id);
            readers.insert(dm.id, users[*a].2.clone());
        }
    }
    let mut desktop = None;
    let mut desktop_start = BTreeMap::new();
    let mut desktop_rooms = Vec::new();
    if plan.desktop {
        let node_addrs = nodes.iter().map(|n| n.addr).collect();
        let name = format!("dx{tag}");
        let d = Desktop::start(dir.to_owned(), node_addrs, &name, PASSWORD).await?;
        d.join(all.id).await?;
        rest.invite(&users[1].2, private.id, d.user).await?;
        let dm = rest.dm(&users[0].2, d.user).await?;
        readers.insert(dm.id, users[0].2.clone());
        member_of[0].push(dm.id);
        desktop_rooms = vec![all.id, private.id, dm.id];
        desktop = Some(Arc::new(d));
    }
    let live: LiveNodes = Arc::new(std::sync::Mutex::new(
        nodes.iter().map(|n| (n.index, n.addr)).collect(),
    ));
    let mut clients = Vec::new();
    for (i, (name, user, token)) in users.into_iter().enumerate() {
        clients.push(Client::start(
            ClientSpec {
                name,
                index: i,
                user,
                token,
                rooms: member_of[i].clone(),
                every: Duration::from_millis(plan.send_every_ms),
                prefer_node: i % plan.nodes,
                seed: plan.seed.wrapping_mul(31).wrapping_add(i as u64),
                files: true,
            },
            live.clone(),
        ));
    }
    let world = World {
        redis,
        proxies,
        nodes,
        live,
        clients,
        desktop,
        rest,
        readers,
        desktop_start: BTreeMap::new(),
        desktop_rooms,
        aof_after_setup: None,
        aof_cuts: Vec::new(),
        s3,
        files,
        cut_uploads: 0,
    };
    // Everyone connected (and rooms' starting points known) before traffic counts.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all_in = world.clients.iter().all(|c| c.lock().connected)
            && world.desktop.as_ref().is_none_or(|d| d.online());
        if all_in {
            break;
        }
        if Instant::now() > deadline {
            return Err("clients did not connect within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if world.desktop.is_some() {
        for room in &world.desktop_rooms {
            let token = &world.readers[room];
            let r = world.rest.room(token, *room).await?;
            desktop_start.insert(*room, r.last_seq);
        }
    }
    let aof_after_setup = match plan.persistence {
        Persistence::Aof => Some(world.redis.aof_mark()?),
        Persistence::None => None,
    };
    Ok(World {
        desktop_start,
        aof_after_setup,
        ..world
    })
}

async fn execute(plan: &Plan, exe: &Path, dir: &Path, report: &mut Report) -> Result<(), String> {
    let mut world = setup(plan, exe, dir).await?;
    let stop_desktop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let desktop_task = world.desktop.clone().map(|d| {
        let rooms = world.desktop_rooms.clone();
        let stop = stop_desktop.clone();
        let every = Duration::from_millis(plan.send_every_ms * 2);
        let seed = plan.seed;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xde5c);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                n += 1;
                let room = rooms[rng.random_range(0..rooms.len())];
                // Like the scripted clients: mostly messages, some replies, reactions and
                // files, each through the app's outbox.
                let what = match rng.random_range(0..10) {
                    0 | 1 => Write::Reply(n),
                    2 | 3 => Write::React(crate::client::EMOJI[rng.random_range(0..3)]),
                    4 => Write::File(files::random(&mut rng, &format!("desktop-{n}"))),
                    _ => Write::Text(n),
                };
                if let Err(e) = d.write(room, what).await {
                    return Err(format!("desktop write: {e}"));
                }
            }
            Ok(())
        })
    });
    let t0 = Instant::now();
    let mut wiped = false;
    for fault in &plan.faults {
        tokio::time::sleep_until(t0 + Duration::from_millis(fault.at_ms)).await;
        *report.faults.entry(fault.kind.name().into()).or_default() += 1;
        inject(&mut world, fault).await?;
        if fault.kind == FaultKind::RedisWipe {
            wiped = true;
            break;
        }
    }
    if wiped {
        return finish_wipe(world, stop_desktop, desktop_task, report).await;
    }
    tokio::time::sleep_until(t0 + Duration::from_millis(plan.traffic_ms)).await;
    // Stop writing, heal everything, wait until every client has caught up.
    for c in &world.clients {
        c.lock().stop_composing = true;
    }
    stop_desktop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(task) = desktop_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("desktop task: {e}")),
        }
    }
    heal(&mut world).await?;
    let canonical = settle(&world).await?;
    let desktop_obs = match &world.desktop {
        Some(d) => Some(desktop_obs(d, &world.desktop_start).await?),
        None => None,
    };
    let (file_obs, partial_files) = observe_files(&world, &canonical).await;
    report.partial_files = partial_files;
    report.cut_uploads = world.cut_uploads;
    let states: Vec<_> = world.clients.iter().map(|c| c.lock()).collect();
    let obs: Vec<ClientObs<'_>> = world
        .clients
        .iter()
        .zip(&states)
        .map(|(c, st)| ClientObs {
            name: &c.spec.name,
            user: c.spec.user,
            state: st,
        })
        .collect();
    let (mut findings, volume) = checker::check(&canonical, &obs, desktop_obs.as_ref(), &file_obs);
    let cut = plan
        .faults
        .iter()
        .any(|f| f.kind == FaultKind::RedisRollback);
    // `kill -9` of Redis with AOF everysec can lose its last writes too: when an fsync is slow
    // Redis postpones writing the AOF (up to 2 s) but still answers clients.
    let killed = plan.faults.iter().any(|f| f.kind == FaultKind::RedisKill);
    let store_lost = !findings.lost.is_empty() || !findings.gapped.is_empty();
    if cut || (killed && store_lost) {
        report.store_lost_writes = true;
        let loss = checker::judge_store_loss(&canonical, &obs, &mut findings);
        report.lost_detected = loss.acked_lost;
        report.rollback_affected = loss.affected;
        report.rollback_untold = loss.untold.len() as u32;
        report.untold = loss.untold;
    }
    report.aof_cuts = std::mem::take(&mut world.aof_cuts);
    for code in states.iter().flat_map(|s| s.closes.iter()) {
        *report.closes.entry(*code).or_default() += 1;
    }
    report.slow_closes = report.closes.get(&4008).copied().unwrap_or(0);
    drop(obs);
    drop(states);
    report.findings = findings;
    report.volume = volume;
    shutdown(world).await;
    Ok(())
}

async fn inject(world: &mut World, fault: &Fault) -> Result<(), String> {
    let pause = Duration::from_millis(fault.for_ms);
    match fault.kind {
        FaultKind::UploadKill => {
            let i = fault.target % world.nodes.len();
            let c = world
                .clients
                .iter()
                .find(|c| c.spec.prefer_node == i)
                .unwrap_or(&world.clients[0])
                .clone();
            let room = c.spec.rooms[0];
            let mut rng = StdRng::seed_from_u64(fault.at_ms.wrapping_mul(31) ^ fault.target as u64);
            let len = rng.random_range(6 << 20..10 << 20);
            let file = files::File {
                name: format!("big-{}.bin", fault.at_ms),
                bytes: files::bytes(len, &mut rng),
                image: false,
            };
            let before = partial_files(&world.files);
            let bytes = Arc::new(file.bytes.clone());
            // All but the last MiB: past the first part on S3 (5 MiB), many 1 MiB chunks
            // written on a directory.
            let part = len - (1 << 20);
            let addr = world.nodes[i].addr;
            let token = c.spec.token.clone();
            let name = file.name.clone();
            let upload =
                tokio::spawn(
                    async move { cut_upload(addr, &token, room, &name, &bytes, part).await },
                );
            // Until the node has written part of it (the storage's temporary file grows); on
            // S3 the first part (5 MiB) is on its way by then.
            let deadline = Instant::now() + Duration::from_secs(3);
            let seen = loop {
                let grown = partial_files(&world.files)
                    .into_iter()
                    .any(|(name, size)| size >= 1 << 20 && !before.iter().any(|(b, _)| *b == name));
                if grown || upload.is_finished() || Instant::now() > deadline {
                    break grown;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            if world.s3.is_some() && !upload.is_finished() {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if seen || (world.s3.is_some() && !upload.is_finished()) {
                world.cut_uploads += 1;
            }
            world.nodes[i].kill9().await;
            world.set_live();
            upload.abort();
            tokio::time::sleep(pause).await;
            world.nodes[i].up().await?;
            world.set_live();
            c.compose_with_file(room, file);
        }
        FaultKind::NodeKill | FaultKind::NodeRestart => {
            let i = fault.target % world.nodes.len();
            if fault.kind == FaultKind::NodeKill {
                world.nodes[i].kill9().await;
            } else {
                world.nodes[i].term().await;
            }
            world.set_live();
            tokio::time::sleep(pause).await;
            world.nodes[i].up().await?;
            world.set_live();
        }
        FaultKind::RedisKill => {
            world.redis.kill9().await;
            tokio::time::sleep(pause).await;
            world.redis.up().await?;
        }
        FaultKind::RedisRollback => {
            world.redis.kill9().await;
            // Only traffic is lost, never the accounts and rooms set up before it (the checker
            // reads history with those).
            let floor = world
                .aof_after_setup
                .clone()
                .ok_or("redis_rollback in a run without AOF")?;
            let cut = world.redis.cut_aof_tail(2048 + fault.for_ms * 6, &floor)?;
            world.aof_cuts.push(cut);
            tokio::time::sleep(pause).await;
            world.redis.up().await?;
        }
        FaultKind::RedisRestart => {
            world.redis.shutdown().await;
            tokio::time::sleep(pause).await;
            world.redis.up().await?;
        }
        FaultKind::RedisWipe => {
            for c in &world.clients {
                c.lock().expect_wipe = true;
            }
            world.redis.kill9().await;
            world.redis.up().await?;
        }
        FaultKind::LinkReset | FaultKind::LinkBlackhole => {
            let proxy = &world.proxies[fault.target % world.proxies.len()];
            proxy.cut(if fault.kind == FaultKind::LinkReset {
                Link::Reset
            } else {
                Link::Blackhole
            });
            tokio::time::sleep(pause).await;
            proxy.restore();
        }
        FaultKind::ClientOffline => {
            let c = &world.clients[fault.target % world.clients.len()];
            c.lock().offline = true;
            c.kick();
            tokio::time::sleep(pause).await;
            c.lock().offline = false;
            c.kick();
        }
        FaultKind::SlowClient => {
            let n = world.clients.len();
            let slow = &world.clients[fault.target % n];
            let other = &world.clients[(fault.target + 1) % n];
            // Both are in the room everyone shares (the first of each client's rooms).
            let room = slow.spec.rooms[0];
            slow.lock().slow = true;
            slow.kick();
            other.lock().burst = Some((room, 250));
            tokio::time::sleep(pause).await;
            slow.lock().slow = false;
            slow.kick();
        }
        FaultKind::DesktopOffline => {
            if let Some(d) = &world.desktop {
                d.front.cut(Link::Reset);
                tokio::time::sleep(pause).await;
                d.front.restore();
            }
        }
        FaultKind::DesktopReopen => {
            if let Some(d) = &world.desktop {
                // Offline first, so the outbox holds messages when the app closes.
                d.front.cut(Link::Reset);
                let room = world.desktop_rooms[0];
                for n in 0..3 {
                    d.compose(room, 1_000_000 + n).await?;
                }
                tokio::time::sleep(pause).await;
                d.reopen().await?;
                d.front.restore();
            }
        }
    }
    Ok(())
}

/// Every process up, every link restored, every client online and reading.
async fn heal(world: &mut World) -> Result<(), String> {
    if !world.redis.running() {
        world.redis.up().await?;
    }
    for p in &world.proxies {
        p.restore();
    }
    for n in &mut world.nodes {
        if !n.running() {
            n.up().await?;
        }
    }
    world.set_live();
    if let Some(d) = &world.desktop {
        d.front.restore();
    }
    for c in &world.clients {
        let mut st = c.lock();
        st.offline = false;
        st.slow = false;
        drop(st);
        c.kick();
    }
    Ok(())
}

/// Waits (at most 30 s) until every outbox is empty and every client holds the newest seq of
/// every room; returns the canonical history. If the deadline passes, the checker reports
/// whoever did not catch up.
async fn settle(world: &World) -> Result<Canonical, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = BTreeMap::new();
        for (room, token) in &world.readers {
            // The store may still be coming back; retry within the deadline.
            match world.rest.room(token, *room).await {
                Ok(r) => {
                    last.insert(*room, r.last_seq);
                }
                Err(_) => break,
            }
        }
        let mut settled = last.len() == world.readers.len();
        for c in &world.clients {
            let st = c.lock();
            settled &= st.outboxes_empty();
            settled &= st.start.keys().all(|r| st.cursors.get(r) == last.get(r));
        }
        if let Some(d) = &world.desktop {
            let rooms = world.desktop_rooms.clone();
            let caught_up = d
                .with_cache(async |cache| {
                    // Every message (uploading ones too) and every reaction delivered or
                    // refused for good.
                    let pending = outbox_waiting(cache).await.map_or(1, |(n, _)| n);
                    let reacting = cache.reactions_pending().await.map_or(1, |p| p.len());
                    let mut ok = pending == 0 && reacting == 0;
                    for room in &rooms {
                        let synced = cache
                            .room(*room)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|r| r.synced_seq);
                        ok &= synced.is_some() && synced == last.get(room).copied();
                    }
                    ok
                })
                .await
                .unwrap_or(false);
            settled &= caught_up;
        }
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut canonical = Canonical::new();
    for (room, token) in &world.readers {
        let mut tries = 0;
        let events = loop {
            match world.rest.history(token, *room).await {
                Ok(events) => break events,
                Err(e) if tries > 20 => return Err(format!("history of room {room}: {e}")),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        canonical.insert(*room, events);
    }
    Ok(canonical)
}

async fn desktop_obs(d: &Desktop, start: &BTreeMap<RoomId, u64>) -> Result<DesktopObs, String> {
    let rooms: Vec<RoomId> = start.keys().copied().collect();
    let cached = d
        .with_cache(async |cache| {
            let mut out = BTreeMap::new();
            for room in rooms {
                let meta = cache.room(room).await.map_err(|e| e.to_string())?;
                let messages = cache
                    .messages(room, 0, u64::MAX >> 2, 100_000)
                    .await
                    .map_err(|e| e.to_string())?;
                let (synced, complete) =
                    meta.map_or((None, None), |m| (m.synced_seq, m.complete_from));
                out.insert(room, (synced, complete, messages));
            }
            let (pending, failed) = outbox_waiting(cache).await.map_err(|e| e.to_string())?;
            let reacting = cache
                .reactions_pending()
                .await
                .map_err(|e| e.to_string())?
                .len();
            Ok::<_, String>((out, pending, failed, reacting))
        })
        .await
        .ok_or("the desktop app is closed")??;
    Ok(DesktopObs {
        name: d.username.clone(),
        user: d.user,
        composed: d.composed.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        start: start.clone(),
        rooms: cached.0,
        outbox_pending: cached.1,
        failed: cached.2,
        reactions: d
            .reactions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        reactions_pending: cached.3,
    })
}

/// The desktop outbox: how many messages still wait (pending or uploading), and the ones
/// refused for good (client id → error code).
async fn outbox_waiting(
    cache: &chat_desktop::cache::Cache,
) -> Result<(usize, BTreeMap<String, String>), chat_desktop::Error> {
    let mut waiting = 0;
    let mut failed = BTreeMap::new();
    for id in cache.outbox_ids().await? {
        match cache.outbox_entry(&id).await? {
            Some(e) if e.state == "failed" => {
                failed.insert(id, e.fail_code.unwrap_or_default());
            }
            Some(_) => waiting += 1,
            None => {}
        }
    }
    Ok((waiting, failed))
}

/// After a wipe: every client must get a typed signal within 20 s.
async fn finish_wipe(
    world: World,
    stop_desktop: Arc<std::sync::atomic::AtomicBool>,
    desktop_task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    report: &mut Report,
) -> Result<(), String> {
    stop_desktop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(task) = desktop_task {
        task.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let desktop_told = |d: &Desktop| !d.online() && d.signed_out();
    loop {
        let scripted = world.clients.iter().all(|c| c.lock().wipe_signal.is_some());
        let desktop = world.desktop.as_deref().is_none_or(desktop_told);
        if (scripted && desktop) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states: Vec<_> = world.clients.iter().map(|c| c.lock()).collect();
    let mut obs: Vec<WipeObs<'_>> = world
        .clients
        .iter()
        .zip(&states)
        .map(|(c, st)| WipeObs {
            name: &c.spec.name,
            signal: st.wipe_signal.clone(),
            state: Some(st),
        })
        .collect();
    if let Some(d) = &world.desktop {
        obs.push(WipeObs {
            name: &d.username,
            signal: desktop_told(d).then(|| "signed out (4001)".to_owned()),
            state: None,
        });
    }
    let (findings, volume) = checker::check_wipe(&obs);
    for code in states.iter().flat_map(|s| s.closes.iter()) {
        *report.closes.entry(*code).or_default() += 1;
    }
    report.wiped_acked = states
        .iter()
        .map(|s| s.composed.iter().filter(|m| m.seq.is_some()).count() as u64)
        .sum();
    drop(obs);
    drop(states);
    report.findings = findings;
    report.volume = volume;
    shutdown(world).await;
    Ok(())
}

async fn shutdown(mut world: World) {
    for c in &world.clients {
        c.lock().done = true;
        c.kick();
    }
    if let Some(d) = world.desktop.take() {
        d.close().await;
    }
    for n in &mut world.nodes {
        n.kill9().await;
    }
    world.redis.kill9().await;
    if let Some(s3) = &mut world.s3 {
        s3.stop().await;
    }
}

/// Half-written upload files (`{id}#N`) under the storage's `blobs/` and `thumbs/`, with their
/// sizes (on S3 none: `s3s-fs` keeps parts elsewhere).
fn partial_files(files: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for sub in ["blobs", "thumbs"] {
        let Ok(entries) = std::fs::read_dir(files.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let partial = name
                .split_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if partial {
                let size = e.metadata().map_or(0, |m| m.len());
                out.push((format!("{sub}/{name}"), size));
            }
        }
    }
    out
}

/// An upload to `addr` that sends the first `upto` bytes of `bytes` and then waits for an
/// answer that cannot come: the harness kills the node meanwhile. Returns what it got.
async fn cut_upload(
    addr: std::net::SocketAddr,
    token: &str,
    room: RoomId,
    name: &str,
    bytes: &[u8],
    upto: usize,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /api/v1/rooms/{room}/attachments?name={name} HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    for chunk in bytes[..upto.min(bytes.len())].chunks(256 << 10) {
        stream.write_all(chunk).await.map_err(|e| e.to_string())?;
    }
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The storage once the collector has had its passes, then every attachment downloaded from
/// every node. Before downloading, on directory storage with half-written files or files of
/// deleted messages about, every stored file is made two hours old and the run waits (at most
/// 5 s) for the collector to remove what it must: half-written files, files without a record,
/// files of deleted messages — never a file a message needs (the downloads then show that).
/// Also returns how many half-written files there were.
async fn observe_files(world: &World, canonical: &Canonical) -> (FileObs, u32) {
    let mut obs = FileObs::default();
    // What to download, with whose token: files of messages in history (a member of the
    // room), and every acknowledged upload (its uploader).
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for (room, events) in canonical {
        for e in events {
            if let protocol::EventBody::Message { attachments, .. } = &e.event {
                for a in attachments {
                    wanted.insert(a.id.clone(), world.readers[room].clone());
                }
            }
        }
    }
    let mut deleted: Vec<String> = Vec::new();
    for c in &world.clients {
        let st = c.lock();
        for m in &st.composed {
            let Some(stored) = m.upload.as_ref().and_then(|u| u.stored.as_ref()) else {
                continue;
            };
            let Some(seq) = m.seq else { continue };
            wanted
                .entry(stored.id.clone())
                .or_insert_with(|| c.spec.token.clone());
            let gone = checker::event_at(canonical, m.room, seq).is_some_and(|e| {
                matches!(e.event, protocol::EventBody::Message { deleted: true, .. })
            });
            if gone {
                deleted.push(stored.id.clone());
            }
        }
    }
    let partial = partial_files(&world.files);
    let kept = |files: &Path| -> Vec<String> {
        deleted
            .iter()
            .flat_map(|id| [format!("blobs/{id}"), format!("thumbs/{id}")])
            .filter(|p| files.join(p).exists())
            .collect()
    };
    if !partial.is_empty() || !kept(&world.files).is_empty() {
        if world.s3.is_none() {
            let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
            for sub in ["blobs", "thumbs"] {
                let Ok(entries) = std::fs::read_dir(world.files.join(sub)) else {
                    continue;
                };
                for e in entries.flatten() {
                    if let Ok(f) = std::fs::File::options().write(true).open(e.path()) {
                        let _ = f.set_modified(old);
                    }
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            obs.leftovers = partial_files(&world.files)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            obs.kept = kept(&world.files);
            if (obs.leftovers.is_empty() && obs.kept.is_empty()) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default();
    for (id, token) in wanted {
        let mut got = Vec::new();
        for node in world.nodes.iter().filter(|n| n.running()) {
            got.push((node.index, fetch(&http, node.addr, &token, &id).await));
        }
        obs.fetched.insert(id, got);
    }
    (obs, partial.len() as u32)
}

/// Downloads one attachment (retrying a failed connection or a 5xx a few times).
async fn fetch(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    token: &str,
    id: &str,
) -> Fetched {
    let api = reqwest::Url::parse(&format!("http://{addr}"))
        .map_err(|e| e.to_string())
        .and_then(|base| {
            chat_client::Client::with_http(http.clone(), base).map_err(|e| e.to_string())
        });
    let api = match api {
        Ok(api) => api.with_token(token),
        Err(e) => return Fetched::Failed(e),
    };
    let mut last = Fetched::Failed("not tried".into());
    for _ in 0..5 {
        last = match api.download(id, false, None).await {
            Ok(resp) => match resp.bytes().await {
                Ok(body) => {
                    return Fetched::Bytes {
                        len: body.len() as u64,
                        fingerprint: files::fingerprint(&body),
                    };
                }
                Err(e) => Fetched::Failed(e.to_string()),
            },
            Err(e) => match e.status() {
                Some(status) if status >= 500 => Fetched::Status(status),
                Some(status) => return Fetched::Status(status),
                None => Fetched::Failed(e.to_string()),
            },
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// A fresh directory for one run, under `base`.
pub fn run_dir(base: &Path, seed: u64) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(base)?;
    tempfile::Builder::new()
        .prefix(&format!("run-{seed}-"))
        .tempdir_in(base)
}

/// Where temp dirs go by default.
pub fn default_base() -> PathBuf {
    std::env::temp_dir().join("chat-faults")
}
