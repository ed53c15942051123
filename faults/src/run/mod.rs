//! One fault run: a plan drawn from a seed, the processes, the clients, the faults at their
//! moments, healing, waiting until every client has caught up, and the check.

use crate::checker::{
    self, Canonical, ClientObs, DesktopObs, Fetched, FileObs, Findings, Volume, WipeObs,
};
use crate::client::{Client, ClientSpec, LiveNodes};
use crate::desktop::{Desktop, Write};
use crate::files;
use crate::procs::{Node, NodeStore, Persistence, Redis, S3};
use crate::proxy::{Link, Proxy};
use crate::rest::{Rest, PASSWORD};
use protocol::{RoomId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use testkit::cluster::RedisCluster;
use tokio::time::Instant;

mod inject;
mod observe;
mod plan;

use inject::{heal, inject};
use observe::{desktop_obs, finish_wipe, observe_files, settle};
pub use plan::{Deployment, Draw, Fault, FaultKind, Plan, Report, Storage};

struct World {
    /// The one Redis of a single-Redis run.
    redis: Option<Redis>,
    /// The Redis Cluster of a cluster run.
    cluster: Option<RedisCluster>,
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
    /// The one Redis (an error in a cluster run, whose plans have no single-Redis faults).
    fn redis(&mut self) -> Result<&mut Redis, String> {
        self.redis
            .as_mut()
            .ok_or_else(|| "a single-Redis fault in a cluster run".to_owned())
    }

    fn cluster(&self) -> Result<&RedisCluster, String> {
        self.cluster
            .as_ref()
            .ok_or_else(|| "a cluster fault in a single-Redis run".to_owned())
    }

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
pub async fn run(seed: u64, draw: Draw, exe: &Path, dir: &Path) -> Report {
    let plan = Plan::new(seed, draw);
    let started = Instant::now();
    let mut report = Report::empty(seed, plan.clone());
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
    let (redis, cluster) = match plan.deployment {
        Deployment::Single => (Some(Redis::start(dir, plan.persistence).await?), None),
        Deployment::Cluster => (None, Some(RedisCluster::start(3, 1).await)),
    };
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
        let log = dir.join(format!("node{i}.log"));
        let store = match (&redis, &cluster) {
            (Some(redis), _) => {
                let proxy = Proxy::start(vec![redis.addr])
                    .await
                    .map_err(|e| e.to_string())?;
                let url = format!("redis://{}/", proxy.addr);
                proxies.push(proxy);
                NodeStore::Redis(url)
            }
            (None, Some(cluster)) => NodeStore::Cluster(cluster.urls()),
            (None, None) => unreachable!("setup starts one or the other"),
        };
        nodes.push(Node::start_with(exe, i, store, log, env.clone()).await?);
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
    let mut world = World {
        redis,
        cluster,
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
        Persistence::Aof => Some(world.redis()?.aof_mark()?),
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
    // A master killed before its replica had its last writes loses them with the failover.
    let killed = plan
        .faults
        .iter()
        .any(|f| matches!(f.kind, FaultKind::RedisKill | FaultKind::ShardFailover));
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
    if let Some(redis) = &mut world.redis {
        redis.kill9().await;
    }
    // A cluster's processes are killed when it is dropped.
    world.cluster.take();
    if let Some(s3) = &mut world.s3 {
        s3.stop().await;
    }
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
