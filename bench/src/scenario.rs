//! The named scenarios, each a preset of parameters and a function that runs it against a
//! [`Deployment`] and returns plain, serializable numbers.
//!
//! * `idle`: ramp to N authenticated idle connections; server RSS per connection.
//! * `fanout`: R rooms × M members, open-loop senders at increasing rates; latency, throughput,
//!   CPU per delivery; the highest rate whose p99 stays under a limit.
//! * `two-node`: the same across two server nodes on one Redis, senders on node 0 and receivers
//!   on node 1, at two room sizes, to show Redis commands per message against recipients.
//! * `history`: fill one room with many messages, then page back through all of it.

use crate::load::{Fleet, Layout, StepOutcome};
use crate::procs::{self, CpuSnapshot};
use crate::setup::{provision, provision_via, Provisioned};
use crate::wire::{Client, Incoming};
use crate::{Deployment, Error, Result, Target};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::time::Instant;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            samples: hist.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: hist.max() as f64 / 1000.0,
        }
    }
}

/// CPU used during a measurement, in seconds, and the machine's other load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cpu {
    pub wall_s: f64,
    pub servers_s: f64,
    pub redis_s: f64,
    /// The load generator itself.
    pub bench_s: f64,
    /// Cores kept busy by everything else on the machine (other builds, the kernel).
    pub other_cores: f64,
}

impl Cpu {
    fn between(a: &CpuSnapshot, b: &CpuSnapshot, wall: Duration) -> Cpu {
        let d = a.delta(b);
        let wall_s = wall.as_secs_f64().max(1e-9);
        Cpu {
            wall_s,
            servers_s: d.servers,
            redis_s: d.redis,
            bench_s: d.bench,
            other_cores: ((d.machine_busy - d.servers - d.redis - d.bench) / wall_s).max(0.0),
        }
    }
}

/// Redis work counters, read with `INFO`.
#[derive(Debug, Clone, Copy, Default)]
struct RedisCounters {
    /// Commands as counted by `INFO commandstats` (includes those run inside scripts).
    commands: u64,
    publishes: u64,
}

async fn redis_counters(dep: &Deployment) -> Option<RedisCounters> {
    let redis = dep.redis.as_ref()?;
    let calls = procs::redis_command_calls(redis.addr).await.ok()?;
    let mut c = RedisCounters::default();
    for (name, n) in calls {
        if name == "info" {
            continue;
        }
        c.commands += n;
        if name == "publish" || name == "spublish" {
            c.publishes += n;
        }
    }
    Some(c)
}

/// One measured load step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepResult {
    pub offered_msgs_per_sec: f64,
    pub offered_deliveries_per_sec: f64,
    pub delivered_per_sec: f64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub fail_codes: Vec<String>,
    pub delivered: u64,
    pub expected: u64,
    pub drops: u64,
    pub dups: u64,
    pub stale: u64,
    pub disconnects: u64,
    pub complete: bool,
    pub latency: Latency,
    pub cpu: Cpu,
    /// Server CPU seconds per million deliveries (server processes only).
    pub server_cpu_s_per_million: f64,
    /// The same including Redis.
    pub total_cpu_s_per_million: f64,
    /// Deliveries per CPU second of the servers and Redis together.
    pub deliveries_per_cpu_s: f64,
    /// Redis commands (including those inside scripts) per acknowledged message.
    pub redis_commands_per_msg: Option<f64>,
    pub redis_publishes_per_msg: Option<f64>,
}

impl StepResult {
    /// Whether the step met `p99_limit_ms` with nothing lost.
    pub fn ok(&self, p99_limit_ms: f64) -> bool {
        self.complete
            && self.drops == 0
            && self.dups == 0
            && self.failed == 0
            && self.disconnects == 0
            && self.latency.p99_ms <= p99_limit_ms
    }
}

/// Environment variable: a program run as `<hook> start <server pids…>` right before each
/// measured step and `<hook> end <server pids…>` right after it (with `CHAT_BENCH_DELIVERED`
/// and `CHAT_BENCH_ACKED` set), e.g. to zero and dump callgrind counters or to attach strace
/// for exactly the measured load (`bench/profile.sh`).
pub const STEP_HOOK_ENV: &str = "CHAT_BENCH_STEP_HOOK";

async fn step_hook(dep: &Deployment, phase: &str, out: Option<&StepOutcome>) {
    let Some(hook) = std::env::var_os(STEP_HOOK_ENV) else {
        return;
    };
    let mut cmd = tokio::process::Command::new(hook);
    cmd.arg(phase)
        .args(dep.server_pids.iter().map(u32::to_string))
        .stdin(std::process::Stdio::null());
    if let Some(out) = out {
        cmd.env("CHAT_BENCH_DELIVERED", out.delivered.to_string())
            .env("CHAT_BENCH_ACKED", out.acked.to_string());
    }
    match tokio::time::timeout(Duration::from_secs(300), cmd.status()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => eprintln!("step hook {phase}: {status}"),
        Ok(Err(e)) => eprintln!("step hook {phase}: {e}"),
        Err(_) => eprintln!("step hook {phase}: timed out"),
    }
}

async fn measured_step(
    dep: &Deployment,
    fleet: &mut Fleet,
    rate: f64,
    members: usize,
    step_secs: f64,
    drain_secs: f64,
    body_bytes: usize,
) -> StepResult {
    step_hook(dep, "start", None).await;
    let redis0 = redis_counters(dep).await;
    let cpu0 = CpuSnapshot::take(dep);
    let t0 = Instant::now();
    let out: StepOutcome = fleet
        .step(
            rate,
            Duration::from_secs_f64(step_secs),
            Duration::from_secs_f64(drain_secs),
            body_bytes,
        )
        .await;
    let wall = t0.elapsed();
    let cpu1 = CpuSnapshot::take(dep);
    let redis1 = redis_counters(dep).await;
    step_hook(dep, "end", Some(&out)).await;
    let cpu = Cpu::between(&cpu0, &cpu1, wall);
    let per_million = |s: f64| {
        if out.delivered == 0 {
            0.0
        } else {
            s / out.delivered as f64 * 1e6
        }
    };
    let msgs = out.acked.max(1) as f64;
    let (redis_commands_per_msg, redis_publishes_per_msg) = match (redis0, redis1) {
        (Some(a), Some(b)) => (
            Some((b.commands - a.commands) as f64 / msgs),
            Some((b.publishes - a.publishes) as f64 / msgs),
        ),
        _ => (None, None),
    };
    StepResult {
        offered_msgs_per_sec: rate,
        offered_deliveries_per_sec: rate * members as f64,
        delivered_per_sec: out.delivered as f64 / out.elapsed.as_secs_f64(),
        sent: out.sent,
        acked: out.acked,
        failed: out.failed,
        fail_codes: out.fail_codes.clone(),
        delivered: out.delivered,
        expected: out.expected,
        drops: out.drops,
        dups: out.dups,
        stale: out.stale,
        disconnects: out.disconnects,
        complete: out.complete,
        latency: Latency::of(&out.hist),
        server_cpu_s_per_million: per_million(cpu.servers_s),
        total_cpu_s_per_million: per_million(cpu.servers_s + cpu.redis_s),
        deliveries_per_cpu_s: out.delivered as f64 / (cpu.servers_s + cpu.redis_s).max(1e-9),
        cpu,
        redis_commands_per_msg,
        redis_publishes_per_msg,
    }
}

fn connect_check(fleet: &Fleet, want: usize) -> Result<()> {
    if fleet.len() < want {
        return Err(Error::Setup(format!(
            "only {} of {want} connections opened ({} failed; first error: {})",
            fleet.len(),
            fleet.connect_errors,
            fleet.first_connect_error.as_deref().unwrap_or("-")
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fanout
// ---------------------------------------------------------------------------------------------

/// `fanout`: R rooms × M members, fixed send rates in increasing steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutParams {
    pub rooms: usize,
    pub members: usize,
    pub senders_per_room: usize,
    pub users_per_room: usize,
    /// Offered message rates (messages per second over all senders), tried in order.
    pub rates: Vec<f64>,
    pub step_secs: f64,
    pub drain_secs: f64,
    pub warmup_secs: f64,
    pub body_bytes: usize,
    /// A step passes when p99 stays under this and nothing is lost.
    pub p99_limit_ms: f64,
    /// Stop at the first failing step.
    pub stop_on_fail: bool,
}

impl FanoutParams {
    /// The shape at a size one shared 2-core machine can drive.
    pub fn preset() -> FanoutParams {
        FanoutParams {
            rooms: 100,
            members: 10,
            senders_per_room: 1,
            users_per_room: 2,
            rates: vec![
                500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 12000.0,
            ],
            step_secs: 5.0,
            drain_secs: 5.0,
            warmup_secs: 2.0,
            body_bytes: 100,
            p99_limit_ms: 50.0,
            stop_on_fail: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutResult {
    pub target: Target,
    pub params: FanoutParams,
    pub connections: usize,
    pub steps: Vec<StepResult>,
    /// The highest offered message rate that passed.
    pub max_ok_msgs_per_sec: Option<f64>,
    pub max_ok_deliveries_per_sec: Option<f64>,
}

pub async fn fanout(dep: &Deployment, p: &FanoutParams) -> Result<FanoutResult> {
    let prov = provision(dep, p.rooms, p.users_per_room).await?;
    let layout = Layout {
        members: p.members,
        senders_per_room: p.senders_per_room,
        sender_node: 0,
        receiver_node: 0,
    };
    let mut fleet = Fleet::new(layout, &prov);
    let want = p.rooms * p.members;
    fleet.grow(dep, &prov, want).await?;
    connect_check(&fleet, want)?;
    if p.warmup_secs > 0.0 {
        if let Some(&first) = p.rates.first() {
            let _ = fleet
                .step(
                    first,
                    Duration::from_secs_f64(p.warmup_secs),
                    Duration::from_secs_f64(p.drain_secs),
                    p.body_bytes,
                )
                .await;
        }
    }
    let mut steps = Vec::new();
    for &rate in &p.rates {
        let step = measured_step(
            dep,
            &mut fleet,
            rate,
            p.members,
            p.step_secs,
            p.drain_secs,
            p.body_bytes,
        )
        .await;
        let ok = step.ok(p.p99_limit_ms);
        steps.push(step);
        if !ok && p.stop_on_fail {
            break;
        }
    }
    let connections = fleet.len();
    fleet.close().await;
    let max_ok = steps
        .iter()
        .filter(|s| s.ok(p.p99_limit_ms))
        .map(|s| s.offered_msgs_per_sec)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    Ok(FanoutResult {
        target: dep.target,
        params: p.clone(),
        connections,
        max_ok_msgs_per_sec: max_ok,
        max_ok_deliveries_per_sec: max_ok.map(|r| r * p.members as f64),
        steps,
    })
}

// ---------------------------------------------------------------------------------------------
// two-node
// ---------------------------------------------------------------------------------------------

/// `two-node`: senders on node 0, receivers on node 1, one Redis; the same deliveries per second
/// at each room size in `members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwoNodeParams {
    pub rooms: usize,
    /// Room sizes to compare (Redis commands per message must not grow with them).
    pub members: Vec<usize>,
    pub users_per_room: usize,
    /// Offered deliveries per second; the message rate is this divided by the room size.
    pub deliveries_per_sec: f64,
    pub step_secs: f64,
    pub drain_secs: f64,
    pub warmup_secs: f64,
    pub body_bytes: usize,
}

impl TwoNodeParams {
    pub fn preset() -> TwoNodeParams {
        TwoNodeParams {
            rooms: 50,
            members: vec![10, 40],
            users_per_room: 2,
            deliveries_per_sec: 20_000.0,
            step_secs: 5.0,
            drain_secs: 5.0,
            warmup_secs: 2.0,
            body_bytes: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwoNodeRun {
    pub members: usize,
    pub connections: usize,
    pub step: StepResult,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwoNodeResult {
    pub target: Target,
    pub params: TwoNodeParams,
    pub runs: Vec<TwoNodeRun>,
}

pub async fn two_node(dep: &Deployment, p: &TwoNodeParams) -> Result<TwoNodeResult> {
    if dep.nodes.len() < 2 {
        return Err(Error::Setup("two-node needs two server nodes".into()));
    }
    let prov = provision(dep, p.rooms, p.users_per_room).await?;
    let mut runs = Vec::new();
    for &members in &p.members {
        let layout = Layout {
            members,
            senders_per_room: 1,
            sender_node: 0,
            receiver_node: 1,
        };
        let mut fleet = Fleet::new(layout, &prov);
        let want = p.rooms * members;
        fleet.grow(dep, &prov, want).await?;
        connect_check(&fleet, want)?;
        let rate = p.deliveries_per_sec / members as f64;
        if p.warmup_secs > 0.0 {
            let _ = fleet
                .step(
                    rate,
                    Duration::from_secs_f64(p.warmup_secs),
                    Duration::from_secs_f64(p.drain_secs),
                    p.body_bytes,
                )
                .await;
        }
        let step = measured_step(
            dep,
            &mut fleet,
            rate,
            members,
            p.step_secs,
            p.drain_secs,
            p.body_bytes,
        )
        .await;
        runs.push(TwoNodeRun {
            members,
            connections: fleet.len(),
            step,
        });
        fleet.close().await;
    }
    Ok(TwoNodeResult {
        target: dep.target,
        params: p.clone(),
        runs,
    })
}

// ---------------------------------------------------------------------------------------------
// idle
// ---------------------------------------------------------------------------------------------

/// `idle`: ramp to `connections` authenticated idle sockets, measuring server RSS on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleParams {
    pub connections: usize,
    pub rooms: usize,
    pub users_per_room: usize,
    /// RSS is measured after each of this many equal ramp steps.
    pub points: usize,
    /// Pause before each RSS reading.
    pub settle_secs: f64,
    /// Server nodes that hold the sockets, evenly. One process here may hold at most ~19k
    /// sockets (open-file limit 20,000), so 50k need three.
    #[serde(default = "one")]
    pub nodes: usize,
    /// Client sockets per generator worker process (`chat-bench idle-worker`); 0 opens them all
    /// in this process.
    #[serde(default)]
    pub per_worker: usize,
}

fn one() -> usize {
    1
}

/// Server nodes one idle run needs so that none holds more than this many sockets.
pub const MAX_PER_NODE: usize = 17_000;

impl IdleParams {
    /// 50k idle sockets on three server nodes, opened by four generator workers.
    pub fn preset() -> IdleParams {
        IdleParams {
            connections: 50_000,
            rooms: 100,
            users_per_room: 2,
            points: 5,
            settle_secs: 2.0,
            nodes: 3,
            per_worker: crate::worker::MAX_PER_WORKER,
        }
    }

    /// `connections` sockets on as few nodes as the per-process limit allows.
    pub fn sized(connections: usize) -> IdleParams {
        IdleParams {
            connections,
            nodes: connections.div_ceil(MAX_PER_NODE).max(1),
            ..IdleParams::preset()
        }
    }

    /// Generator worker processes this run starts (0: none, sockets in this process).
    pub fn workers(&self) -> usize {
        if self.per_worker == 0 {
            0
        } else {
            self.connections.div_ceil(self.per_worker).max(1)
        }
    }
}

/// Connections and RSS of one socket-holding server node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeMemory {
    pub connections: usize,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// Over all socket-holding nodes.
    pub connections: usize,
    pub rss_bytes: u64,
    /// Each socket-holding node (empty in results from before nodes were recorded).
    #[serde(default)]
    pub nodes: Vec<NodeMemory>,
}

/// One socket-holding node at the end of the ramp.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeIdle {
    pub connections: usize,
    pub rss_zero_bytes: u64,
    pub rss_bytes: u64,
    /// (RSS at N − RSS at 0) / N of this node.
    pub bytes_per_connection: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    pub target: Target,
    pub params: IdleParams,
    /// Sum over the socket-holding nodes.
    pub rss_zero_bytes: u64,
    pub points: Vec<MemoryPoint>,
    /// RSS of the node that registered the users, before and after (two-node layout only).
    #[serde(default)]
    pub registrar_rss_before: Option<u64>,
    #[serde(default)]
    pub registrar_rss_after: Option<u64>,
    /// (RSS at N − RSS at 0) / N at the largest N, over all socket-holding nodes.
    pub bytes_per_connection: f64,
    /// Each socket-holding node.
    #[serde(default)]
    pub nodes: Vec<NodeIdle>,
    /// Generator worker processes that held the client sockets (0: the main process).
    #[serde(default)]
    pub generator_workers: usize,
    pub connect_errors: u64,
    pub first_connect_error: Option<String>,
    /// Handshakes completed per second during the ramp.
    pub connects_per_sec: f64,
    /// Connections still open at the end.
    pub open_at_end: usize,
}

/// Splits `total` into `parts` shares differing by at most one; share `i`.
fn share(total: usize, parts: usize, i: usize) -> usize {
    let parts = parts.max(1);
    total / parts + usize::from(i < total % parts)
}

/// Which worker opens how many connections to which node so that, after it, worker `w` holds
/// `worker_after[w]` and node `j` `node_after[j]` (both totals equal and no smaller than before).
fn assign(
    worker_before: &[usize],
    worker_after: &[usize],
    node_before: &[usize],
    node_after: &[usize],
) -> Vec<Vec<(usize, usize)>> {
    let mut need_w: Vec<usize> = worker_after
        .iter()
        .zip(worker_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let mut need_n: Vec<usize> = node_after
        .iter()
        .zip(node_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let mut out = vec![Vec::new(); need_w.len()];
    let (mut w, mut j) = (0, 0);
    while w < need_w.len() && j < need_n.len() {
        let k = need_w[w].min(need_n[j]);
        if k > 0 {
            out[w].push((j, k));
            need_w[w] -= k;
            need_n[j] -= k;
        }
        if need_w[w] == 0 {
            w += 1;
        }
        if j < need_n.len() && need_n[j] == 0 {
            j += 1;
        }
    }
    out
}

/// Reads the RSS of each socket-holding node.
fn node_rss(pids: &[u32], nodes: usize) -> Vec<u64> {
    (0..nodes)
        .map(|j| pids.get(j).map_or(0, |&p| procs::rss_bytes(p)))
        .collect()
}

/// The socket-holding nodes are the first `p.nodes` of the deployment. When it has one more,
/// the users are registered through that last one and it is not measured: password hashing
/// (argon2 needs 19 MiB per hash on our server) leaves allocator state behind that would blur a
/// per-connection figure. Otherwise node 0 registers them too.
///
/// With `p.per_worker > 0` the client sockets live in `chat-bench idle-worker` processes of
/// this executable (see [`crate::worker`]); [`idle_with`] names another executable.
pub async fn idle(dep: &Deployment, p: &IdleParams) -> Result<IdleResult> {
    let bin = std::env::current_exe()?;
    idle_with(dep, p, &bin).await
}

/// [`idle`] with generator workers started from `worker_bin` (a `chat-bench` executable).
pub async fn idle_with(
    dep: &Deployment,
    p: &IdleParams,
    worker_bin: &std::path::Path,
) -> Result<IdleResult> {
    let k = p.nodes.clamp(1, dep.nodes.len());
    let registrar_node = if dep.nodes.len() > k {
        dep.nodes.len() - 1
    } else {
        0
    };
    let registrar = (dep.nodes.len() > k)
        .then(|| dep.server_pids.get(registrar_node).copied())
        .flatten();
    let registrar_before = registrar.map(procs::rss_bytes);
    let prov = provision_via(dep, registrar_node, p.rooms, p.users_per_room).await?;
    let registrar_after = registrar.map(procs::rss_bytes);
    let pids: Vec<u32> = dep.server_pids.iter().take(k).copied().collect();
    let settle = Duration::from_secs_f64(p.settle_secs);
    tokio::time::sleep(settle).await;
    let rss_zero = node_rss(&pids, k);
    let n_points = p.points.max(1);
    let mut points = Vec::new();
    let mut connect_time = Duration::ZERO;
    let mut node_conns = vec![0usize; k];
    let (connect_errors, first_connect_error, open_at_end, opened_total);
    if p.per_worker == 0 {
        // Everything in this process, node j getting connections j, j + k, …
        let layout = Layout {
            members: p.connections.div_ceil(p.rooms.max(1)),
            senders_per_room: 0,
            sender_node: 0,
            receiver_node: 0,
        };
        let mut fleets: Vec<Fleet> = (0..k).map(|_| Fleet::new(layout.clone(), &prov)).collect();
        for i in 1..=n_points {
            let upto = p.connections * i / n_points;
            let t0 = Instant::now();
            for (j, fleet) in fleets.iter_mut().enumerate() {
                let node_dep = Deployment {
                    nodes: vec![dep.nodes[j]],
                    ..dep.clone()
                };
                fleet.grow(&node_dep, &prov, share(upto, k, j)).await?;
                node_conns[j] = fleet.len();
            }
            connect_time += t0.elapsed();
            tokio::time::sleep(settle).await;
            points.push(point(&node_conns, &node_rss(&pids, k)));
        }
        connect_errors = fleets.iter().map(|f| f.connect_errors).sum();
        first_connect_error = fleets.iter().find_map(|f| f.first_connect_error.clone());
        open_at_end = fleets.iter().map(Fleet::open).sum();
        opened_total = fleets.iter().map(Fleet::len).sum::<usize>();
        for fleet in fleets {
            fleet.close().await;
        }
    } else {
        let n_workers = p.workers();
        let tokens: Vec<String> = prov.users.iter().map(|u| u.token.clone()).collect();
        let mut pool =
            crate::worker::Pool::start(worker_bin, dep.target, n_workers, tokens).await?;
        let mut worker_conns = vec![0usize; n_workers];
        let mut asked_nodes = vec![0usize; k];
        let mut errors = 0u64;
        let mut first_error = None;
        for i in 1..=n_points {
            let upto = p.connections * i / n_points;
            let worker_after: Vec<usize> =
                (0..n_workers).map(|w| share(upto, n_workers, w)).collect();
            let node_after: Vec<usize> = (0..k).map(|j| share(upto, k, j)).collect();
            let plan = assign(&worker_conns, &worker_after, &asked_nodes, &node_after);
            let batches: Vec<Vec<crate::worker::Batch>> = plan
                .iter()
                .map(|b| {
                    b.iter()
                        .map(|&(j, count)| crate::worker::Batch {
                            addr: dep.nodes[j],
                            count,
                        })
                        .collect()
                })
                .collect();
            let t0 = Instant::now();
            let opened = pool.open(batches).await?;
            connect_time += t0.elapsed();
            errors += opened.errors;
            if first_error.is_none() {
                first_error = opened.first_error;
            }
            worker_conns = worker_after;
            asked_nodes = node_after;
            // Per-node counts are what was asked; failures (reported in total) are not
            // attributed to a node, so the per-node figures assume none.
            node_conns.clone_from(&asked_nodes);
            if opened.errors > 0 {
                let missing = opened_deficit(&node_conns, opened.open as usize);
                subtract_evenly(&mut node_conns, missing);
            }
            tokio::time::sleep(settle).await;
            points.push(point(&node_conns, &node_rss(&pids, k)));
        }
        connect_errors = errors;
        first_connect_error = first_error;
        open_at_end = pool.open_now().await? as usize;
        opened_total = node_conns.iter().sum();
        pool.close().await;
    }
    let last = points.last().cloned();
    let (n, rss) = last.as_ref().map_or((0, rss_zero.iter().sum()), |pt| {
        (pt.connections, pt.rss_bytes)
    });
    let rss_zero_total: u64 = rss_zero.iter().sum();
    let per = |rss: u64, zero: u64, n: usize| {
        if n == 0 {
            0.0
        } else {
            (rss as f64 - zero as f64) / n as f64
        }
    };
    let nodes = (0..k)
        .map(|j| {
            let (c, r) = last
                .as_ref()
                .and_then(|pt| pt.nodes.get(j))
                .map_or((0, rss_zero[j]), |m| (m.connections, m.rss_bytes));
            NodeIdle {
                connections: c,
                rss_zero_bytes: rss_zero[j],
                rss_bytes: r,
                bytes_per_connection: per(r, rss_zero[j], c),
            }
        })
        .collect();
    Ok(IdleResult {
        target: dep.target,
        params: p.clone(),
        rss_zero_bytes: rss_zero_total,
        registrar_rss_before: registrar_before,
        registrar_rss_after: registrar_after,
        bytes_per_connection: per(rss, rss_zero_total, n),
        nodes,
        generator_workers: p.workers(),
        points,
        connect_errors,
        first_connect_error,
        connects_per_sec: opened_total as f64 / connect_time.as_secs_f64().max(1e-9),
        open_at_end,
    })
}

fn point(node_conns: &[usize], node_rss: &[u64]) -> MemoryPoint {
    MemoryPoint {
        connections: node_conns.iter().sum(),
        rss_bytes: node_rss.iter().sum(),
        nodes: node_conns
            .iter()
            .zip(node_rss)
            .map(|(&connections, &rss_bytes)| NodeMemory {
                connections,
                rss_bytes,
            })
            .collect(),
    }
}

/// How many of the asked-for connections are not open.
fn opened_deficit(asked: &[usize], open: usize) -> usize {
    asked.iter().sum::<usize>().saturating_sub(open)
}

/// Takes `n` off the counts, spread evenly.
fn subtract_evenly(counts: &mut [usize], n: usize) {
    let k = counts.len();
    for (j, c) in counts.iter_mut().enumerate() {
        *c = c.saturating_sub(share(n, k, j));
    }
}

// ---------------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------------

/// `history`: fill one room with `messages`, then `pagers` clients each page back through all
/// of it, `page` events at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryParams {
    pub messages: u64,
    pub pagers: usize,
    pub page: usize,
    /// Sends in flight while filling.
    pub fill_window: u64,
    pub body_bytes: usize,
}

impl HistoryParams {
    pub fn preset() -> HistoryParams {
        HistoryParams {
            messages: 100_000,
            pagers: 4,
            page: 100,
            fill_window: 256,
            body_bytes: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResult {
    pub target: Target,
    pub params: HistoryParams,
    pub fill_msgs_per_sec: f64,
    pub pages: u64,
    /// Message events seen by each pager (all must have seen every message).
    pub messages_seen_min: u64,
    pub pages_per_sec: f64,
    pub page_latency: Latency,
    pub cpu: Cpu,
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// A history or fill step that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn next_within(client: &mut Client) -> Result<Incoming> {
    tokio::time::timeout(REQUEST_TIMEOUT, client.next())
        .await
        .map_err(|_| Error::Timeout {
            what: "server reply".into(),
        })?
}

/// Sends `n` messages to `room` with at most `window` unacknowledged; returns the time taken.
pub async fn fill(
    client: &mut Client,
    room: protocol::RoomId,
    n: u64,
    window: u64,
    body_bytes: usize,
) -> Result<Duration> {
    let t0 = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    let pad = "x".repeat(body_bytes.saturating_sub(16));
    while acked < n {
        if sent < n && sent - acked < window {
            while sent < n && sent - acked < window {
                client
                    .feed_message(room, &format!("f{sent}"), &format!("fill {sent} {pad}"))
                    .await?;
                sent += 1;
            }
            client.flush().await?;
        }
        match next_within(client).await? {
            Incoming::Ack { .. } => acked += 1,
            Incoming::Failed { code, .. } => {
                return Err(Error::Protocol(format!("fill send failed: {code}")))
            }
            _ => {}
        }
    }
    Ok(t0.elapsed())
}

/// Pages back from the newest event to the oldest; returns (pages, message events, latencies).
async fn page_all(
    client: &mut Client,
    room: protocol::RoomId,
    page: usize,
    hist: &mut Histogram<u64>,
) -> Result<(u64, u64)> {
    let (mut pages, mut messages) = (0u64, 0u64);
    let mut before = None;
    // Bounded: no history here has more than 10M events.
    for _ in 0..10_000_000 / page.max(1) {
        let t0 = Instant::now();
        client.request_history(room, before, page).await?;
        let (events, has_more) = loop {
            match next_within(client).await? {
                Incoming::History { events, has_more } => break (events, has_more),
                Incoming::Failed { code, .. } => {
                    return Err(Error::Protocol(format!("history failed: {code}")))
                }
                _ => {}
            }
        };
        hist.saturating_record(t0.elapsed().as_micros().max(1) as u64);
        pages += 1;
        messages += events
            .iter()
            .filter(|e| matches!(e.event, protocol::EventBody::Message { .. }))
            .count() as u64;
        match events.first() {
            Some(first) if has_more && first.seq > 1 => before = Some(first.seq),
            _ => break,
        }
    }
    Ok((pages, messages))
}

pub async fn history(dep: &Deployment, p: &HistoryParams) -> Result<HistoryResult> {
    let prov: Provisioned = provision(dep, 1, p.pagers.max(1)).await?;
    let room = prov.rooms[0];
    let addr = dep.nodes[0];
    let mut filler = Client::connect(dep.target, addr, LOCAL, &prov.users[0].token).await?;
    let fill_time = fill(&mut filler, room, p.messages, p.fill_window, p.body_bytes).await?;
    drop(filler);
    let mut pagers = Vec::new();
    for i in 0..p.pagers.max(1) {
        let token = &prov.users[i % prov.users.len()].token;
        pagers.push(Client::connect(dep.target, addr, LOCAL, token).await?);
    }
    let cpu0 = CpuSnapshot::take(dep);
    let t0 = Instant::now();
    let page = p.page;
    let tasks: Vec<_> = pagers
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                    .expect("constant histogram bounds are valid");
                let r = page_all(&mut client, room, page, &mut hist).await;
                r.map(|(pages, messages)| (pages, messages, hist))
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .expect("constant histogram bounds are valid");
    let (mut pages, mut seen_min) = (0u64, u64::MAX);
    for task in tasks {
        let (n, messages, h) = task
            .await
            .map_err(|e| Error::Protocol(format!("pager task: {e}")))??;
        pages += n;
        seen_min = seen_min.min(messages);
        let _ = hist.add(&h);
    }
    let wall = t0.elapsed();
    let cpu = Cpu::between(&cpu0, &CpuSnapshot::take(dep), wall);
    Ok(HistoryResult {
        target: dep.target,
        params: p.clone(),
        fill_msgs_per_sec: p.messages as f64 / fill_time.as_secs_f64().max(1e-9),
        pages,
        messages_seen_min: if seen_min == u64::MAX { 0 } else { seen_min },
        pages_per_sec: pages as f64 / wall.as_secs_f64().max(1e-9),
        page_latency: Latency::of(&hist),
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_differ_by_at_most_one_and_add_up() {
        let parts: Vec<usize> = (0..3).map(|j| share(50_000, 3, j)).collect();
        assert_eq!(parts, vec![16_667, 16_667, 16_666]);
        assert_eq!(share(5, 0, 0), 5);
    }

    #[test]
    fn assignment_fills_every_worker_and_node_exactly() {
        let (wb, wa) = (vec![0, 0, 0, 0], vec![12_500; 4]);
        let (nb, na) = (vec![0, 0, 0], vec![16_667, 16_667, 16_666]);
        let plan = assign(&wb, &wa, &nb, &na);
        for (w, batches) in plan.iter().enumerate() {
            assert_eq!(batches.iter().map(|b| b.1).sum::<usize>(), wa[w]);
        }
        for (j, &want) in na.iter().enumerate() {
            let got: usize = plan
                .iter()
                .flatten()
                .filter(|b| b.0 == j)
                .map(|b| b.1)
                .sum();
            assert_eq!(got, want);
        }
        // A later ramp step only adds the difference.
        let plan = assign(&wa, &[15_000; 4], &na, &[20_000; 3]);
        assert_eq!(plan.iter().flatten().map(|b| b.1).sum::<usize>(), 10_000);
    }

    #[test]
    fn presets_keep_every_process_under_the_open_file_limit() {
        let p = IdleParams::preset();
        assert!(p.connections.div_ceil(p.nodes) <= MAX_PER_NODE);
        assert!(p.connections.div_ceil(p.workers()) <= crate::worker::MAX_PER_WORKER);
        assert_eq!(IdleParams::sized(50_000).nodes, 3);
        assert_eq!(IdleParams::sized(15_000).nodes, 1);
    }
}
