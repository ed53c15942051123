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

mod history;
mod idle;

pub use history::{fill, history, HistoryParams, HistoryResult};
pub use idle::{
    idle, idle_with, IdleParams, IdleResult, MemoryPoint, NodeIdle, NodeMemory, MAX_PER_NODE,
};

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
