//! The comparison: every scenario on both targets, each configuration `runs` times with fresh
//! processes, targets interleaved so that machine noise hits both alike; medians, ratios,
//! tables, `BENCHMARKS.md`, `BENCHMARKS.json` and the SVG plots.

use crate::files::FilesParams;
use crate::files_report::{self, FilesReport};
use crate::plot;
use crate::procs::{Stack, StackOptions};
use crate::scenario::{
    self, FanoutParams, FanoutResult, HistoryParams, HistoryResult, IdleParams, IdleResult,
    StepResult, TwoNodeParams, TwoNodeResult,
};
use crate::{Result, Target};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How big the report's configurations are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// A few minutes on a shared 2-core machine.
    Small,
    /// The sizes the issue asks for (10k-50k idle sockets, 100k history, ...).
    Full,
}

pub struct ReportOptions {
    pub scale: Scale,
    pub runs: usize,
    pub out: PathBuf,
    pub stack: StackOptions,
    pub fd_limit: u64,
}

/// The parameters of every scenario at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// One server node holding every socket: the memory-vs-connections curve of one process.
    pub idle: IdleParams,
    /// More sockets than one process may hold here, on several server nodes of one Redis.
    #[serde(default)]
    pub idle_scaled: Vec<IdleParams>,
    pub fanout: FanoutParams,
    pub two_node: TwoNodeParams,
    pub history: HistoryParams,
    /// Attachments (`files`): concurrent uploads and downloads at several file sizes.
    #[serde(default = "FilesParams::preset")]
    pub files: FilesParams,
}

impl Plan {
    pub fn at(scale: Scale) -> Plan {
        match scale {
            Scale::Full => Plan {
                idle: IdleParams {
                    connections: 15_000,
                    points: 3,
                    nodes: 1,
                    ..IdleParams::preset()
                },
                // The issue's 50k, and more: 100k on six nodes.
                idle_scaled: vec![IdleParams::preset(), IdleParams::sized(100_000)],
                fanout: FanoutParams::preset(),
                two_node: TwoNodeParams {
                    deliveries_per_sec: 100_000.0,
                    ..TwoNodeParams::preset()
                },
                history: HistoryParams::preset(),
                // The issue's 50 MiB between a tenth and four times of it: peak memory must not
                // follow the file size.
                files: FilesParams {
                    sizes: vec![5 << 20, 50 << 20, 200 << 20],
                    ..FilesParams::preset()
                },
            },
            Scale::Small => Plan {
                idle: IdleParams {
                    connections: 15_000,
                    rooms: 50,
                    users_per_room: 1,
                    points: 4,
                    settle_secs: 1.5,
                    nodes: 1,
                    per_worker: 0,
                },
                idle_scaled: Vec::new(),
                fanout: FanoutParams {
                    rooms: 50,
                    members: 10,
                    users_per_room: 1,
                    rates: vec![500.0, 1000.0, 2000.0, 3000.0, 4500.0, 6000.0],
                    step_secs: 3.0,
                    drain_secs: 3.0,
                    warmup_secs: 1.0,
                    ..FanoutParams::preset()
                },
                two_node: TwoNodeParams {
                    rooms: 20,
                    members: vec![10, 40],
                    users_per_room: 1,
                    deliveries_per_sec: 10_000.0,
                    step_secs: 3.0,
                    drain_secs: 3.0,
                    warmup_secs: 1.0,
                    body_bytes: 100,
                },
                history: HistoryParams {
                    messages: 20_000,
                    pagers: 2,
                    ..HistoryParams::preset()
                },
                files: FilesParams::preset(),
            },
        }
    }
}

/// What the report is made from (also written as `BENCHMARKS.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportData {
    pub generated_unix: u64,
    pub duration_s: f64,
    pub scale: Scale,
    pub runs: usize,
    pub plan: Plan,
    pub machine: Vec<(String, String)>,
    pub versions: Vec<(String, String)>,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub idle: Vec<IdleResult>,
    /// Runs of `plan.idle_scaled` (several server nodes).
    #[serde(default)]
    pub idle_scaled: Vec<IdleResult>,
    pub fanout: Vec<FanoutResult>,
    pub two_node: Vec<TwoNodeResult>,
    pub history: Vec<HistoryResult>,
    /// Scenario runs that failed, with the error.
    pub failures: Vec<String>,
    /// The attachments section (absent from reports older than it).
    #[serde(default)]
    pub files: Option<FilesReport>,
}

const TARGETS: [Target; 2] = [Target::Ours, Target::Socketio];

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("CPU".into(), model),
        ("cores".into(), cores.to_string()),
        ("memory".into(), mem),
        ("kernel".into(), command_line("uname", &["-sr"])),
        (
            "OS".into(),
            std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                        .map(|v| v.trim_matches('"').to_owned())
                })
                .unwrap_or_default(),
        ),
    ]
}

fn npm_version(dir: &Path, package: &str) -> String {
    std::fs::read_to_string(dir.join("node_modules").join(package).join("package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "not installed".into())
}

fn versions(opts: &StackOptions) -> Vec<(String, String)> {
    let server = opts.server_bin.to_string_lossy().into_owned();
    vec![
        ("chat-server".into(), command_line(&server, &["--version"])),
        (
            "git commit".into(),
            command_line("git", &["rev-parse", "--short", "HEAD"]),
        ),
        ("rustc".into(), command_line("rustc", &["--version"])),
        (
            "redis-server".into(),
            command_line("redis-server", &["--version"]),
        ),
        ("node".into(), command_line("node", &["--version"])),
        ("socket.io".into(), npm_version(&opts.peer_dir, "socket.io")),
        (
            "@socket.io/redis-adapter".into(),
            npm_version(&opts.peer_dir, "@socket.io/redis-adapter"),
        ),
        (
            "redis (node client)".into(),
            npm_version(&opts.peer_dir, "redis"),
        ),
        ("ws".into(), npm_version(&opts.peer_dir, "ws")),
    ]
}

/// Runs everything and writes the report files into `opts.out`.
pub async fn run(opts: &ReportOptions) -> Result<()> {
    crate::procs::ensure_peer_installed(&opts.stack.peer_dir)?;
    let plan = Plan::at(opts.scale);
    let mut stack_opts = opts.stack.clone();
    stack_opts.history_keep = stack_opts.history_keep.max(plan.history.messages + 1000);
    let started = Instant::now();
    let mut data = ReportData {
        generated_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        duration_s: 0.0,
        scale: opts.scale,
        runs: opts.runs,
        plan: plan.clone(),
        machine: {
            let mut m = machine();
            m.push(("open-file limit".into(), opts.fd_limit.to_string()));
            m
        },
        versions: versions(&stack_opts),
        loadavg_before: loadavg(),
        loadavg_after: String::new(),
        idle: Vec::new(),
        idle_scaled: Vec::new(),
        fanout: Vec::new(),
        two_node: Vec::new(),
        history: Vec::new(),
        failures: Vec::new(),
        files: None,
    };
    if (plan.idle.connections as u64) * 2 + 1000 > opts.fd_limit && plan.idle.per_worker == 0 {
        eprintln!(
            "warning: open-file limit {} is low for {} connections",
            opts.fd_limit, plan.idle.connections
        );
    }
    for run in 1..=opts.runs {
        for target in TARGETS {
            let what = format!("run {run}/{}: {}", opts.runs, target.label());
            eprintln!("{what}: idle");
            match with_stack(target, plan.idle.nodes + 1, &stack_opts, |d| {
                let p = plan.idle.clone();
                async move { scenario::idle(&d, &p).await }
            })
            .await
            {
                Ok(r) => data.idle.push(r),
                Err(e) => data.failures.push(format!("{what} idle: {e}")),
            }
            for p in &plan.idle_scaled {
                eprintln!(
                    "{what}: idle, {} sockets on {} nodes",
                    p.connections, p.nodes
                );
                match with_stack(target, p.nodes + 1, &stack_opts, |d| {
                    let p = p.clone();
                    async move { scenario::idle(&d, &p).await }
                })
                .await
                {
                    Ok(r) => {
                        eprintln!("{}", idle_table(std::slice::from_ref(&r)));
                        data.idle_scaled.push(r)
                    }
                    Err(e) => data.failures.push(format!(
                        "{what} idle {} on {} nodes: {e}",
                        p.connections, p.nodes
                    )),
                }
            }
            eprintln!("{what}: fanout");
            match with_stack(target, 1, &stack_opts, |d| {
                let p = plan.fanout.clone();
                async move { scenario::fanout(&d, &p).await }
            })
            .await
            {
                Ok(r) => {
                    eprintln!("{}", steps_table(target, &r.steps));
                    data.fanout.push(r)
                }
                Err(e) => data.failures.push(format!("{what} fanout: {e}")),
            }
            if target == Target::Ours {
                // The floor right after ours, in the same run: ours / floor is what our own code
                // adds per delivery on this machine at this moment.
                let what = format!("run {run}/{}: {}", opts.runs, Target::Floor.label());
                eprintln!("{what}: fanout");
                match with_stack(Target::Floor, 1, &stack_opts, |d| {
                    let p = plan.fanout.clone();
                    async move { scenario::fanout(&d, &p).await }
                })
                .await
                {
                    Ok(r) => {
                        eprintln!("{}", steps_table(Target::Floor, &r.steps));
                        data.fanout.push(r)
                    }
                    Err(e) => data.failures.push(format!("{what} fanout: {e}")),
                }
            }
            eprintln!("{what}: two-node");
            match with_stack(target, 2, &stack_opts, |d| {
                let p = plan.two_node.clone();
                async move { scenario::two_node(&d, &p).await }
            })
            .await
            {
                Ok(r) => data.two_node.push(r),
                Err(e) => data.failures.push(format!("{what} two-node: {e}")),
            }
            eprintln!("{what}: history");
            match with_stack(target, 1, &stack_opts, |d| {
                let p = plan.history.clone();
                async move { scenario::history(&d, &p).await }
            })
            .await
            {
                Ok(r) => data.history.push(r),
                Err(e) => data.failures.push(format!("{what} history: {e}")),
            }
        }
    }
    data.files =
        Some(files_report::measure(&stack_opts, &plan.files, &TARGETS, opts.runs, false).await);
    data.duration_s = started.elapsed().as_secs_f64();
    data.loadavg_after = loadavg();
    for f in &data.failures {
        eprintln!("failed: {f}");
    }
    write_all(&data, &opts.out)
}

/// Hand-written analysis appended to the generated report, kept across regenerations.
pub const ANALYSIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/analysis.md");

/// Writes `BENCHMARKS.md`, `BENCHMARKS.json` and the plots for `data` into `out`.
pub fn write_all(data: &ReportData, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("BENCHMARKS.json"),
        serde_json::to_string_pretty(data)?,
    )?;
    let latency = latency_series(data);
    plot::latency_svg(&out.join("bench-latency.svg"), &latency).map_err(crate::Error::Process)?;
    let memory = memory_series(data);
    plot::memory_svg(&out.join("bench-memory.svg"), &memory).map_err(crate::Error::Process)?;
    let mut md = markdown(data);
    // The desktop client's section (`bench/client`, measured on its own), kept across
    // regenerations in the markers `chat-client-bench` splices it between.
    if let Ok(client) = std::fs::read_to_string(out.join("bench-client.md")) {
        md.push_str("\n<!-- client-bench:start -->\n");
        md.push_str(&client);
        md.push_str("<!-- client-bench:end -->\n");
    }
    if let Ok(analysis) = std::fs::read_to_string(ANALYSIS) {
        md.push('\n');
        md.push_str(&analysis);
    }
    std::fs::write(out.join("BENCHMARKS.md"), md)?;
    eprintln!("wrote {}/BENCHMARKS.md", out.display());
    Ok(())
}

async fn with_stack<T, F, Fut>(target: Target, nodes: usize, opts: &StackOptions, f: F) -> Result<T>
where
    F: FnOnce(crate::Deployment) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let stack = Stack::start(target, nodes, opts).await?;
    let result = f(stack.deployment()).await;
    drop(stack);
    result
}

// ---------------------------------------------------------------------------------------------
// Medians
// ---------------------------------------------------------------------------------------------

/// The median of some numbers (mean of the middle two for an even count); `None` if empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() {
        "-".into()
    } else {
        format!("{} – {}", num(min), num(max))
    }
}

/// A number with sensible precision for a table.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        // Thousands separators.
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// Median fanout step per offered rate, for one target; with the per-run values kept for noise.
#[derive(Debug, Clone)]
pub struct MedianStep {
    pub rate: f64,
    pub deliveries_offered: f64,
    pub runs: usize,
    pub passed_runs: usize,
    pub delivered_per_sec: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub server_cpu_per_m: f64,
    pub total_cpu_per_m: f64,
    pub deliveries_per_cpu_s: f64,
    pub drops: f64,
    pub errors: f64,
    pub p99_runs: Vec<f64>,
    pub eff_runs: Vec<f64>,
    pub other_cores: f64,
    pub bench_cpu_share: f64,
}

fn median_steps(steps: &[&StepResult], limit: f64) -> Option<MedianStep> {
    let first = steps.first()?;
    let m = |f: &dyn Fn(&StepResult) -> f64| {
        median(steps.iter().map(|s| f(s)).collect()).unwrap_or(0.0)
    };
    Some(MedianStep {
        rate: first.offered_msgs_per_sec,
        deliveries_offered: first.offered_deliveries_per_sec,
        runs: steps.len(),
        passed_runs: steps.iter().filter(|s| s.ok(limit)).count(),
        delivered_per_sec: m(&|s| s.delivered_per_sec),
        p50: m(&|s| s.latency.p50_ms),
        p90: m(&|s| s.latency.p90_ms),
        p99: m(&|s| s.latency.p99_ms),
        p999: m(&|s| s.latency.p999_ms),
        max: m(&|s| s.latency.max_ms),
        server_cpu_per_m: m(&|s| s.server_cpu_s_per_million),
        total_cpu_per_m: m(&|s| s.total_cpu_s_per_million),
        deliveries_per_cpu_s: m(&|s| s.deliveries_per_cpu_s),
        drops: m(&|s| s.drops as f64),
        errors: m(&|s| (s.failed + s.disconnects + s.dups) as f64),
        p99_runs: steps.iter().map(|s| s.latency.p99_ms).collect(),
        eff_runs: steps.iter().map(|s| s.deliveries_per_cpu_s).collect(),
        other_cores: m(&|s| s.cpu.other_cores),
        bench_cpu_share: m(&|s| s.cpu.bench_s / s.cpu.wall_s.max(1e-9)),
    })
}

/// Median step per rate (rates in the order of the plan) for one target.
pub fn fanout_medians(data: &ReportData, target: Target) -> Vec<MedianStep> {
    let results: Vec<&FanoutResult> = data.fanout.iter().filter(|r| r.target == target).collect();
    let limit = data.plan.fanout.p99_limit_ms;
    data.plan
        .fanout
        .rates
        .iter()
        .filter_map(|&rate| {
            let steps: Vec<&StepResult> = results
                .iter()
                .filter_map(|r| r.steps.iter().find(|s| s.offered_msgs_per_sec == rate))
                .collect();
            median_steps(&steps, limit)
        })
        .collect()
}

fn latency_series(data: &ReportData) -> Vec<plot::Series> {
    let mut series = Vec::new();
    for target in [Target::Ours, Target::Socketio, Target::Floor] {
        let medians = fanout_medians(data, target);
        if medians.is_empty() {
            continue;
        }
        series.push(plot::Series {
            label: format!("{} p99", target.label()),
            target,
            dashed: false,
            points: medians
                .iter()
                .map(|m| (m.deliveries_offered, m.p99))
                .collect(),
        });
        series.push(plot::Series {
            label: format!("{} p50", target.label()),
            target,
            dashed: true,
            points: medians
                .iter()
                .map(|m| (m.deliveries_offered, m.p50))
                .collect(),
        });
    }
    series
}

fn memory_series(data: &ReportData) -> Vec<plot::Series> {
    TARGETS
        .iter()
        .map(|&target| {
            let runs: Vec<&IdleResult> = data.idle.iter().filter(|r| r.target == target).collect();
            let n_points = runs.iter().map(|r| r.points.len()).max().unwrap_or(0);
            let mut points = Vec::new();
            if let Some(zero) = median(runs.iter().map(|r| r.rss_zero_bytes as f64).collect()) {
                points.push((0.0, zero / 1048576.0));
            }
            for i in 0..n_points {
                let conns = median(
                    runs.iter()
                        .filter_map(|r| r.points.get(i).map(|p| p.connections as f64))
                        .collect(),
                );
                let rss = median(
                    runs.iter()
                        .filter_map(|r| r.points.get(i).map(|p| p.rss_bytes as f64))
                        .collect(),
                );
                if let (Some(c), Some(r)) = (conns, rss) {
                    points.push((c, r / 1048576.0));
                }
            }
            plot::Series {
                label: target.label().into(),
                target,
                dashed: false,
                points,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// A plain-text table of load steps (printed by the single-scenario commands).
pub fn steps_table(target: Target, steps: &[StepResult]) -> String {
    let mut s = format!(
        "{}\n{:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>8}\n",
        target.label(),
        "msgs/s",
        "offered d/s",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "srvCPU/1M",
        "+redis/1M",
        "drops",
        "errs",
        "cmds/msg"
    );
    for st in steps {
        let _ = writeln!(
            s,
            "{:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>8}",
            num(st.offered_msgs_per_sec),
            num(st.offered_deliveries_per_sec),
            num(st.delivered_per_sec),
            num(st.latency.p50_ms),
            num(st.latency.p90_ms),
            num(st.latency.p99_ms),
            num(st.latency.p999_ms),
            num(st.latency.max_ms),
            num(st.server_cpu_s_per_million),
            num(st.total_cpu_s_per_million),
            st.drops,
            st.failed + st.disconnects + st.dups,
            st.redis_commands_per_msg.map_or("-".into(), num),
        );
    }
    s
}

/// Ours against the floor at every offered rate both ran, from fanout results of one
/// invocation (`chat-bench fanout --target all`); `None` without both.
pub fn floor_comparison_table(results: &[FanoutResult]) -> Option<String> {
    let ours = results.iter().find(|r| r.target == Target::Ours)?;
    let floor = results.iter().find(|r| r.target == Target::Floor)?;
    let mut s = format!(
        "ours / floor\n{:>11} {:>12} {:>13} {:>7} {:>9} {:>10} {:>7}\n",
        "offered d/s", "ours srv/1M", "floor srv/1M", "ratio", "ours p99", "floor p99", "ratio"
    );
    for o in &ours.steps {
        let Some(f) = floor
            .steps
            .iter()
            .find(|f| f.offered_msgs_per_sec == o.offered_msgs_per_sec)
        else {
            continue;
        };
        let _ = writeln!(
            s,
            "{:>11} {:>12} {:>13} {:>7} {:>9} {:>10} {:>7}",
            num(o.offered_deliveries_per_sec),
            num(o.server_cpu_s_per_million),
            num(f.server_cpu_s_per_million),
            ratio(
                Some(o.server_cpu_s_per_million),
                Some(f.server_cpu_s_per_million)
            ),
            num(o.latency.p99_ms),
            num(f.latency.p99_ms),
            ratio(Some(o.latency.p99_ms), Some(f.latency.p99_ms)),
        );
    }
    let _ = writeln!(
        s,
        "highest passing offered deliveries/s: ours {}, floor {} (ours / floor {})",
        ours.max_ok_deliveries_per_sec.map_or("-".into(), num),
        floor.max_ok_deliveries_per_sec.map_or("-".into(), num),
        ratio(
            ours.max_ok_deliveries_per_sec,
            floor.max_ok_deliveries_per_sec
        )
    );
    Some(s)
}

/// Idle results: one line per socket-holding node, then the total over the nodes.
pub fn idle_table(results: &[IdleResult]) -> String {
    let mut s = format!(
        "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10} {:>10} {:>7} {:>8}\n",
        "target", "node", "conns", "RSS at 0", "RSS at N", "bytes/conn", "conn/s", "errors", "open"
    );
    for r in results {
        if r.nodes.len() > 1 {
            for (j, n) in r.nodes.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10}",
                    r.target.label(),
                    j,
                    n.connections,
                    n.rss_zero_bytes,
                    n.rss_bytes,
                    num(n.bytes_per_connection),
                );
            }
        }
        let last = r.points.last().map_or(0, |p| p.rss_bytes);
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10} {:>10} {:>7} {:>8}",
            r.target.label(),
            if r.nodes.len() > 1 { "all" } else { "0" },
            r.points.last().map_or(0, |p| p.connections),
            r.rss_zero_bytes,
            last,
            num(r.bytes_per_connection),
            num(r.connects_per_sec),
            r.connect_errors,
            r.open_at_end,
        );
        if r.generator_workers > 0 {
            let _ = writeln!(
                s,
                "  ({} server node(s) holding sockets, client sockets in {} generator worker process(es))",
                r.params.nodes, r.generator_workers
            );
        }
    }
    s
}

pub fn history_table(results: &[HistoryResult]) -> String {
    let mut s = format!(
        "{:<22} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9}\n",
        "target", "messages", "fill msg/s", "pages", "pages/s", "p50 ms", "p99 ms"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<22} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9}",
            r.target.label(),
            r.params.messages,
            num(r.fill_msgs_per_sec),
            r.pages,
            num(r.pages_per_sec),
            num(r.page_latency.p50_ms),
            num(r.page_latency.p99_ms)
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md
// ---------------------------------------------------------------------------------------------

fn per_target<T>(items: &[T], target: Target, of: impl Fn(&T) -> Target) -> Vec<&T> {
    items.iter().filter(|i| of(i) == target).collect()
}

/// Runs of `data.idle_scaled` with these parameters.
fn scaled_runs<'a>(data: &'a ReportData, p: &IdleParams, target: Target) -> Vec<&'a IdleResult> {
    data.idle_scaled
        .iter()
        .filter(|r| {
            r.target == target && r.params.connections == p.connections && r.params.nodes == p.nodes
        })
        .collect()
}

/// Median bytes per idle connection over all nodes of the largest scaled idle configuration,
/// with its size.
fn scaled_headline(data: &ReportData, target: Target) -> Option<(usize, f64)> {
    let p = data.plan.idle_scaled.iter().max_by_key(|p| p.connections)?;
    let per = median(
        scaled_runs(data, p, target)
            .iter()
            .map(|r| r.bytes_per_connection)
            .collect(),
    )?;
    Some((p.connections, per))
}

/// "Idle connections beyond one process": several server nodes on one Redis, per node and in
/// total.
fn idle_scaled_section(w: &mut String, data: &ReportData) {
    if data.plan.idle_scaled.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "## Idle connections beyond one process: several nodes on one Redis\n\n\
         **Why several nodes:** this machine's hard open-file limit is 20,000 per process \
         (`ulimit -Hn`), and it cannot be raised here (`prlimit` needs CAP_SYS_RESOURCE), so one \
         server process cannot hold 50k sockets. The sockets are therefore spread evenly over \
         as many server nodes of the same target on one Redis as needed (at most {} per node), \
         the way an operator would add nodes; a further node registers the users and is not \
         measured. The load generator likewise spreads its client sockets over several \
         `chat-bench idle-worker` processes (at most {} each), each from its own 127.0.0.x \
         source addresses. Bytes per connection of a node = (its RSS with its N idle \
         authenticated sockets − its RSS with none) / N; the total is the same over the sum of \
         the nodes. The nodes share nothing in memory, so a per-node figure is what one \
         process pays per socket at ~N/nodes sockets each.\n",
        num(crate::scenario::MAX_PER_NODE as f64),
        num(crate::worker::MAX_PER_WORKER as f64),
    );
    let _ = writeln!(w, "| target | sockets | node | sockets on node | RSS at 0 (MiB) | RSS at N (MiB) | bytes / connection | spread | handshakes/s | connect errors | open at end |");
    let _ = writeln!(w, "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for p in &data.plan.idle_scaled {
        for target in TARGETS {
            let runs = scaled_runs(data, p, target);
            if runs.is_empty() {
                let _ = writeln!(
                    w,
                    "| {} | {} | - | - | - | - | - | - | - | - | - (no run finished) |",
                    target.label(),
                    num(p.connections as f64)
                );
                continue;
            }
            let mib = |b: u64| b as f64 / 1048576.0;
            for j in 0..p.nodes {
                let node = |f: &dyn Fn(&crate::scenario::NodeIdle) -> f64| {
                    median(runs.iter().filter_map(|r| r.nodes.get(j).map(f)).collect())
                        .map_or("-".into(), num)
                };
                let per: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.nodes.get(j).map(|n| n.bytes_per_connection))
                    .collect();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | | | |",
                    target.label(),
                    num(p.connections as f64),
                    j,
                    node(&|n| n.connections as f64),
                    node(&|n| mib(n.rss_zero_bytes)),
                    node(&|n| mib(n.rss_bytes)),
                    median(per.clone()).map_or("-".into(), num),
                    spread(&per),
                );
            }
            let m = |f: &dyn Fn(&IdleResult) -> f64| {
                median(runs.iter().map(|r| f(r)).collect()).map_or("-".into(), num)
            };
            let per: Vec<f64> = runs.iter().map(|r| r.bytes_per_connection).collect();
            let _ = writeln!(
                w,
                "| {} | {} | **all {}** | {} | {} | {} | **{}** | {} | {} | {} | {} |",
                target.label(),
                num(p.connections as f64),
                p.nodes,
                m(&|r| r.points.last().map_or(0.0, |pt| pt.connections as f64)),
                m(&|r| mib(r.rss_zero_bytes)),
                m(&|r| mib(r.points.last().map_or(0, |pt| pt.rss_bytes))),
                median(per.clone()).map_or("-".into(), num),
                spread(&per),
                m(&|r| r.connects_per_sec),
                m(&|r| r.connect_errors as f64),
                m(&|r| r.open_at_end as f64),
            );
        }
    }
    let _ = writeln!(w);
}

/// The fanout's highest passing offered deliveries/s of `target`, median over runs.
fn fanout_capacity(data: &ReportData, target: Target) -> Option<f64> {
    median(
        data.fanout
            .iter()
            .filter(|r| r.target == target)
            .map(|r| r.max_ok_deliveries_per_sec.unwrap_or(0.0))
            .collect(),
    )
}

/// Ours against the floor (issue 17's targets): capacity and server CPU per delivery, from the
/// same runs, then the ratio at every offered rate both ran.
fn floor_summary(w: &mut String, data: &ReportData, ours: &[MedianStep], floor: &[MedianStep]) {
    if floor.is_empty() || ours.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "### Against the floor (a bare broadcast server on the same WebSocket stack; same runs)\n"
    );
    let _ = writeln!(
        w,
        "| measure | chat-server | floor | ours / floor | target |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---|");
    let (co, cf) = (
        fanout_capacity(data, Target::Ours),
        fanout_capacity(data, Target::Floor),
    );
    let top = |m: &[MedianStep]| m.last().is_some_and(|m| m.passed_runs * 2 > m.runs);
    let _ = writeln!(
        w,
        "| highest offered deliveries/s with p99 < {} ms and nothing lost | {}{} | {}{} | **{}** | ≥ 0.70× |",
        num(data.plan.fanout.p99_limit_ms),
        co.map_or("-".into(), num),
        if top(ours) { " (top step tried)" } else { "" },
        cf.map_or("-".into(), num),
        if top(floor) { " (top step tried)" } else { "" },
        ratio(co, cf)
    );
    for o in ours {
        let Some(f) = floor.iter().find(|f| f.rate == o.rate) else {
            continue;
        };
        let _ = writeln!(
            w,
            "| server CPU-s per 1M deliveries at {} deliveries/s (Redis not included; ours + Redis: {}) | {} | {} | **{}** | ≤ 1.25× |",
            num(o.deliveries_offered),
            num(o.total_cpu_per_m),
            num(o.server_cpu_per_m),
            num(f.server_cpu_per_m),
            ratio(Some(o.server_cpu_per_m), Some(f.server_cpu_per_m))
        );
    }
    let _ = writeln!(w);
}

/// The report as Markdown.
pub fn markdown(data: &ReportData) -> String {
    let plan = &data.plan;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "# Benchmarks: chat-server against Node.js Socket.IO on Redis\n"
    );
    let _ = writeln!(
        w,
        "Generated by `bench/run.sh` (`chat-bench report --scale {}` with {} runs per configuration) \
         in {:.0} s on one 2-core machine that also runs Redis and the load generator: every \
         number includes their competition for the same cores. Read the ratios (both targets \
         measured in the same run), not the absolute numbers; how busy the machine was is under \
         \"Noise\" below.\n",
        match data.scale {
            Scale::Small => "small",
            Scale::Full => "full",
        },
        data.runs,
        data.duration_s
    );

    // Headline.
    let ours = fanout_medians(data, Target::Ours);
    let peer = fanout_medians(data, Target::Socketio);
    let floor = fanout_medians(data, Target::Floor);
    let limit = plan.fanout.p99_limit_ms;
    let passed = |m: &MedianStep| m.passed_runs * 2 > m.runs;
    let common = ours.iter().rev().filter(|o| passed(o)).find_map(|o| {
        peer.iter()
            .find(|p| p.rate == o.rate && passed(p))
            .map(|p| (o, p))
    });
    let max_ok = |target: Target| {
        median(
            data.fanout
                .iter()
                .filter(|r| r.target == target)
                .map(|r| r.max_ok_deliveries_per_sec.unwrap_or(0.0))
                .collect(),
        )
    };
    let idle_per = |target: Target| {
        median(
            per_target(&data.idle, target, |r| r.target)
                .iter()
                .map(|r| r.bytes_per_connection)
                .collect(),
        )
    };
    let hist_pages = |target: Target| {
        median(
            per_target(&data.history, target, |r| r.target)
                .iter()
                .map(|r| r.pages_per_sec)
                .collect(),
        )
    };
    let _ = writeln!(
        w,
        "## Summary (medians; ratio = ours / peer unless noted)\n"
    );
    let _ = writeln!(
        w,
        "| measure | chat-server | Socket.IO peer | ratio | target |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---|");
    if let Some((o, p)) = common {
        let _ = writeln!(
            w,
            "| deliveries per CPU-second (servers + Redis), fanout at {} deliveries/s offered | {} | {} | **{}** | ≥ 5× |",
            num(o.deliveries_offered),
            num(o.deliveries_per_cpu_s),
            num(p.deliveries_per_cpu_s),
            ratio(Some(o.deliveries_per_cpu_s), Some(p.deliveries_per_cpu_s))
        );
        let _ = writeln!(
            w,
            "| server CPU-seconds per 1M deliveries (lower is better; ratio peer / ours) | {} | {} | {} | |",
            num(o.server_cpu_per_m),
            num(p.server_cpu_per_m),
            ratio(Some(p.server_cpu_per_m), Some(o.server_cpu_per_m))
        );
    } else {
        let _ = writeln!(
            w,
            "| deliveries per CPU-second | - | - | no rate passed on both | ≥ 5× |"
        );
    }
    let (mo, mp) = (max_ok(Target::Ours), max_ok(Target::Socketio));
    let _ = writeln!(
        w,
        "| highest offered deliveries/s with p99 < {} ms and nothing lost | {}{} | {} | {} | |",
        num(limit),
        mo.map_or("-".into(), num),
        if ours.last().is_some_and(passed) {
            " (the top step tried: not a limit)"
        } else {
            ""
        },
        mp.map_or("-".into(), num),
        ratio(mo, mp)
    );
    let (io, ip) = (idle_per(Target::Ours), idle_per(Target::Socketio));
    let _ = writeln!(
        w,
        "| server RSS per idle authenticated connection at {}, one process (ratio peer / ours) | {} B | {} B | {} | ≤ 8 KB at 50k |",
        num(plan.idle.connections as f64),
        io.map_or("-".into(), num),
        ip.map_or("-".into(), num),
        ratio(ip, io)
    );
    let (so, sp) = (
        scaled_headline(data, Target::Ours),
        scaled_headline(data, Target::Socketio),
    );
    if let Some(n) = so.or(sp).map(|(n, _)| n) {
        let nodes = plan
            .idle_scaled
            .iter()
            .find(|p| p.connections == n)
            .map_or(0, |p| p.nodes);
        let (o, p) = (so.map(|s| s.1), sp.map(|s| s.1));
        let _ = writeln!(
            w,
            "| server RSS per idle authenticated connection at {}, over {} nodes (one process holds at most 20,000 files here; ratio peer / ours) | {} B | {} B | {} | ≤ 8 KB at 50k |",
            num(n as f64),
            nodes,
            o.map_or("-".into(), num),
            p.map_or("-".into(), num),
            ratio(p, o)
        );
    }
    let (ho, hp) = (hist_pages(Target::Ours), hist_pages(Target::Socketio));
    let _ = writeln!(
        w,
        "| history pages/s ({} events per page, {} messages) | {} | {} | {} | |",
        plan.history.page,
        num(plan.history.messages as f64),
        ho.map_or("-".into(), num),
        hp.map_or("-".into(), num),
        ratio(ho, hp)
    );
    for (i, &members) in plan.two_node.members.iter().enumerate() {
        let p99 = |t: Target| {
            median(
                per_target(&data.two_node, t, |r| r.target)
                    .iter()
                    .filter_map(|r| r.runs.get(i).map(|x| x.step.latency.p99_ms))
                    .collect(),
            )
        };
        let cmds = |t: Target| {
            median(
                per_target(&data.two_node, t, |r| r.target)
                    .iter()
                    .filter_map(|r| r.runs.get(i).and_then(|x| x.step.redis_commands_per_msg))
                    .collect(),
            )
        };
        let _ = writeln!(
            w,
            "| two nodes, rooms of {members}: p99 ms at {} deliveries/s (ratio peer / ours) | {} | {} | {} | ≤ 25 ms at 100k/s |",
            num(plan.two_node.deliveries_per_sec),
            p99(Target::Ours).map_or("-".into(), num),
            p99(Target::Socketio).map_or("-".into(), num),
            ratio(p99(Target::Socketio), p99(Target::Ours))
        );
        let _ = writeln!(
            w,
            "| two nodes, rooms of {members}: Redis commands per message | {} | {} | | constant in room size |",
            cmds(Target::Ours).map_or("-".into(), num),
            cmds(Target::Socketio).map_or("-".into(), num),
        );
    }
    if let Some(files) = &data.files {
        files_report::summary_rows(w, files);
    }
    let _ = writeln!(w);
    floor_summary(w, data, &ours, &floor);
    if !data.failures.is_empty() {
        let _ = writeln!(w, "**Runs that failed** (left out of the medians):\n");
        for f in &data.failures {
            let _ = writeln!(w, "- {f}");
        }
        let _ = writeln!(w);
    }

    // Fanout.
    let _ = writeln!(
        w,
        "## Fanout: {} rooms × {} members, one node\n",
        plan.fanout.rooms, plan.fanout.members
    );
    let _ = writeln!(
        w,
        "{} connections ({} users, {} per room, several sockets per user); one sender per room; \
         {}-byte bodies; steps of {} s after a {} s warm-up, each drained for up to {} s. A step \
         passes when p99 < {} ms with no drop, duplicate, error or disconnect; the sweep stops \
         at the first failing step. Latency is end-to-end, from the *intended* send time.\n",
        plan.fanout.rooms * plan.fanout.members,
        plan.fanout.rooms * plan.fanout.users_per_room,
        plan.fanout.users_per_room,
        plan.fanout.body_bytes,
        num(plan.fanout.step_secs),
        num(plan.fanout.warmup_secs),
        num(plan.fanout.drain_secs),
        num(limit)
    );
    let _ = writeln!(w, "![latency vs offered load](bench-latency.svg)\n");
    for (target, medians) in [
        (Target::Ours, &ours),
        (Target::Socketio, &peer),
        (Target::Floor, &floor),
    ] {
        if medians.is_empty() {
            continue;
        }
        let _ = writeln!(w, "**{}**\n", target.label());
        let _ = writeln!(
            w,
            "| offered msgs/s | offered deliveries/s | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU-s / 1M | + Redis | deliveries / CPU-s | drops | errors | passed runs | p99 spread (ms) |"
        );
        let _ = writeln!(
            w,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for m in medians.iter() {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} |",
                num(m.rate),
                num(m.deliveries_offered),
                num(m.delivered_per_sec),
                num(m.p50),
                num(m.p90),
                num(m.p99),
                num(m.p999),
                num(m.max),
                num(m.server_cpu_per_m),
                num(m.total_cpu_per_m),
                num(m.deliveries_per_cpu_s),
                num(m.drops),
                num(m.errors),
                m.passed_runs,
                m.runs,
                spread(&m.p99_runs)
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(
        w,
        "Efficiency ratio at every offered rate both sustained:\n"
    );
    let _ = writeln!(w, "| offered deliveries/s | ours deliveries/CPU-s | peer deliveries/CPU-s | ratio | ours spread | peer spread |");
    let _ = writeln!(w, "|---:|---:|---:|---:|---|---|");
    for o in ours.iter().filter(|o| passed(o)) {
        if let Some(p) = peer.iter().find(|p| p.rate == o.rate && passed(p)) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                num(o.deliveries_offered),
                num(o.deliveries_per_cpu_s),
                num(p.deliveries_per_cpu_s),
                ratio(Some(o.deliveries_per_cpu_s), Some(p.deliveries_per_cpu_s)),
                spread(&o.eff_runs),
                spread(&p.eff_runs)
            );
        }
    }
    let _ = writeln!(w);

    // Two nodes.
    let _ = writeln!(
        w,
        "## Two nodes on one Redis\n\n{} rooms; senders connect to node 1, every other member to \
         node 2, so each delivery but the sender's own crosses Redis. The message rate is set so \
         that {} deliveries/s are offered at every room size. Redis commands are counted with \
         `INFO commandstats` (commands inside Lua scripts included) and divided by acknowledged \
         messages.\n",
        plan.two_node.rooms,
        num(plan.two_node.deliveries_per_sec)
    );
    let _ = writeln!(w, "| target | room size | msgs/s | delivered/s | p50 ms | p99 ms | max ms | CPU-s / 1M (servers + Redis) | Redis commands / msg | PUBLISH / msg | drops | errors |");
    let _ = writeln!(
        w,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for target in TARGETS {
        for (i, &members) in plan.two_node.members.iter().enumerate() {
            let steps: Vec<&StepResult> = per_target(&data.two_node, target, |r| r.target)
                .iter()
                .filter_map(|r| r.runs.get(i).map(|x| &x.step))
                .collect();
            let m = |f: &dyn Fn(&StepResult) -> f64| median(steps.iter().map(|s| f(s)).collect());
            let _ = writeln!(
                w,
                "| {} | {members} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                target.label(),
                m(&|s| s.offered_msgs_per_sec).map_or("-".into(), num),
                m(&|s| s.delivered_per_sec).map_or("-".into(), num),
                m(&|s| s.latency.p50_ms).map_or("-".into(), num),
                m(&|s| s.latency.p99_ms).map_or("-".into(), num),
                m(&|s| s.latency.max_ms).map_or("-".into(), num),
                m(&|s| s.total_cpu_s_per_million).map_or("-".into(), num),
                m(&|s| s.redis_commands_per_msg.unwrap_or(f64::NAN)).map_or("-".into(), num),
                m(&|s| s.redis_publishes_per_msg.unwrap_or(f64::NAN)).map_or("-".into(), num),
                m(&|s| s.drops as f64).map_or("-".into(), num),
                m(&|s| (s.failed + s.disconnects + s.dups) as f64).map_or("-".into(), num),
            );
        }
    }
    let _ = writeln!(w);

    // Idle.
    let _ = writeln!(
        w,
        "## Idle connections: memory\n\n{} authenticated idle sockets ({} users in {} rooms), \
         opened in {} steps with a {} s pause before each RSS reading. Bytes per connection = \
         (RSS with N sockets − RSS with none) / N of the server process holding the sockets. \
         Two nodes run on one Redis: the users are registered through the second, so password \
         hashing does not leave its allocations in the measured process. This is one server \
         process's curve; {}\n",
        num(plan.idle.connections as f64),
        plan.idle.rooms * plan.idle.users_per_room,
        plan.idle.rooms,
        plan.idle.points,
        num(plan.idle.settle_secs),
        if plan.idle_scaled.is_empty() {
            "the issue's 50k is measured at `--scale full` on several nodes (the next section there)."
        } else {
            "50k and more follow in the next section, on several nodes."
        }
    );
    let _ = writeln!(w, "![memory vs connections](bench-memory.svg)\n");
    let _ = writeln!(w, "| target | connections | RSS at 0 (MiB) | RSS at N (MiB) | bytes / connection | spread | handshakes/s | connect errors |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---|---:|---:|");
    for target in TARGETS {
        let runs = per_target(&data.idle, target, |r| r.target);
        let per: Vec<f64> = runs.iter().map(|r| r.bytes_per_connection).collect();
        let m = |f: &dyn Fn(&IdleResult) -> f64| median(runs.iter().map(|r| f(r)).collect());
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            target.label(),
            m(&|r| r.points.last().map_or(0.0, |p| p.connections as f64)).map_or("-".into(), num),
            m(&|r| r.rss_zero_bytes as f64 / 1048576.0).map_or("-".into(), num),
            m(&|r| r.points.last().map_or(0.0, |p| p.rss_bytes as f64) / 1048576.0)
                .map_or("-".into(), num),
            median(per.clone()).map_or("-".into(), num),
            spread(&per),
            m(&|r| r.connects_per_sec).map_or("-".into(), num),
            m(&|r| r.connect_errors as f64).map_or("-".into(), num),
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "RSS of the *registering* node before and after registering {} users (medians; it holds no sockets):\n", plan.idle.rooms * plan.idle.users_per_room);
    let _ = writeln!(w, "| target | RSS before (MiB) | RSS after (MiB) |");
    let _ = writeln!(w, "|---|---:|---:|");
    for target in TARGETS {
        let runs = per_target(&data.idle, target, |r| r.target);
        let m = |f: &dyn Fn(&IdleResult) -> Option<u64>| {
            median(
                runs.iter()
                    .filter_map(|r| f(r).map(|b| b as f64 / 1048576.0))
                    .collect(),
            )
            .map_or("-".into(), num)
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            target.label(),
            m(&|r| r.registrar_rss_before),
            m(&|r| r.registrar_rss_after)
        );
    }
    let _ = writeln!(w);

    idle_scaled_section(w, data);

    // History.
    let _ = writeln!(
        w,
        "## History paging\n\nOne room filled with {} messages ({} sends in flight), then {} \
         clients at once each page back from the newest event to the oldest, {} events per \
         page, over the socket. Our server keeps a room's log in a sorted set scored by seq \
         (`ZRANGE … BYSCORE REV LIMIT`); the peer keeps a list (`LPUSH`/`LTRIM`, paged with \
         `LRANGE` at an offset, which costs O(offset)).\n",
        num(plan.history.messages as f64),
        plan.history.fill_window,
        plan.history.pagers,
        plan.history.page
    );
    let _ = writeln!(w, "| target | fill msgs/s | pages/s | page p50 ms | page p99 ms | page max ms | messages seen per pager | CPU-s (servers + Redis) |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for target in TARGETS {
        let runs = per_target(&data.history, target, |r| r.target);
        let m = |f: &dyn Fn(&HistoryResult) -> f64| {
            median(runs.iter().map(|r| f(r)).collect()).map_or("-".into(), num)
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            target.label(),
            m(&|r| r.fill_msgs_per_sec),
            m(&|r| r.pages_per_sec),
            m(&|r| r.page_latency.p50_ms),
            m(&|r| r.page_latency.p99_ms),
            m(&|r| r.page_latency.max_ms),
            m(&|r| r.messages_seen_min as f64),
            m(&|r| r.cpu.servers_s + r.cpu.redis_s),
        );
    }
    let _ = writeln!(w);

    if let Some(files) = &data.files {
        files_report::section(w, files);
    }

    // Noise.
    let others: Vec<f64> = data
        .fanout
        .iter()
        .flat_map(|r| r.steps.iter().map(|s| s.cpu.other_cores))
        .collect();
    let bench: Vec<f64> = data
        .fanout
        .iter()
        .flat_map(|r| {
            r.steps
                .iter()
                .map(|s| s.cpu.bench_s / s.cpu.wall_s.max(1e-9))
        })
        .collect();
    let _ = writeln!(w, "## Noise\n");
    let _ = writeln!(
        w,
        "- Load average (1, 5, 15 min) before: {}; after: {}.",
        data.loadavg_before, data.loadavg_after
    );
    let _ = writeln!(
        w,
        "- Cores kept busy by other processes during fanout steps (machine busy time minus servers, \
         Redis and the generator): median {}, range {}.",
        median(others.clone()).map_or("-".into(), num),
        spread(&others)
    );
    let _ = writeln!(
        w,
        "- The load generator itself used a median of {} cores during fanout steps, on the same 2 \
         cores as the servers; it caps what either target can show and adds its own scheduling \
         delay to every latency.",
        median(bench).map_or("-".into(), num)
    );
    let _ = writeln!(
        w,
        "- Spread across runs is shown next to each median (min – max). Treat differences \
         smaller than that spread as noise.\n"
    );

    // Method.
    let _ = writeln!(w, "## Method\n");
    let _ = writeln!(w, "- **Same workload, same generator, same Redis.** `chat-bench` drives both servers with one tokio + tokio-tungstenite client stack; it speaks our protocol (`docs/protocol.md`, `hello`/`send`/`event`/`ack`) and Socket.IO v5 over Engine.IO v4 (WebSocket transport only; `40` connect with the token as auth payload, `42[\"send\",…]` with acknowledgements, `2`/`3` heartbeats). Every configuration gets a fresh `redis-server` (no persistence) and fresh server processes.");
    let _ = writeln!(w, "- **The floor** (`bench/src/floor.rs`, run as `chat-bench floor-server`) is the third fanout target: a bare broadcast server on the same WebSocket stack as ours (axum's WebSocket over tokio-tungstenite, the same buffer sizes, `TCP_NODELAY`), speaking `hello`/`send`/`event`/`ack`: parse, take the room's next seq, serialize the event once, hand the same bytes to every member's connection, acknowledge. No auth beyond a token lookup, no Redis, no history, no dedupe, no rate limits, no cursors, no bound on a slow consumer's queue. It runs in every run right after ours; ours / floor is what our own code adds per delivery.");
    let _ = writeln!(w, "- **Open loop.** Each sender's message *k* is due at `start + phase + k / rate` whatever happened before; late messages go out in a burst, and latency counts from when they were due, so a slow server cannot hide latency by slowing the sender (no coordinated omission). Each body carries its intended send time; receivers record `now − intended` in an HDR histogram (µs, 3 significant digits).");
    let _ = writeln!(w, "- **Exactly once.** Every receiver checks off each (sender, k) in a bitset: a second copy counts as a duplicate, a missing one as a drop. Expected deliveries = acknowledged messages × room size (the sender receives its own message on both targets).");
    let _ = writeln!(w, "- **CPU** is utime + stime from `/proc/<pid>/stat` of the server processes and of Redis, over the step including its drain. **Memory** is `VmRSS` of the server processes. Redis commands come from `INFO commandstats`.");
    let _ = writeln!(w, "- **Users.** Registering costs a password hash, so each run registers a modest number of users and opens several sockets per user (a token opens any number of sockets; each user is in one room). Rate limits of our server are raised for the benchmark (`CHAT_MSGS_PER_SEC`, `CHAT_FRAMES_PER_SEC`, `CHAT_LOGINS_PER_MIN`, and their bursts), and so is the cap on sockets per account (`CHAT_MAX_SOCKETS_PER_USER`); the peer has none. Connections use several 127.0.0.x source addresses beyond 20,000.");
    let _ = writeln!(w, "- **The peer** (`bench/peers/socketio/server.js`) follows Socket.IO's own recommendations: `@socket.io/redis-adapter` on a node-redis client and its duplicate, auth in an `io.use` middleware reading `socket.handshake.auth`, `socket.join` per room, `io.to(room).emit`, acknowledgement callbacks, the `bufferutil`/`utf-8-validate` add-ons and the initial HTTP request discarded after the handshake (the docs' \"Performance tuning\" page). A message is one Lua script (INCR seq, LPUSH, LTRIM to K) — one Redis round trip, like ours. It does less than our server per message: no idempotency key, no membership check in Redis, no presence. One Node process per node (Node runs JavaScript on one thread; our server uses both cores).");
    let _ = writeln!(w, "- **Medians.** Each configuration ran {} times, targets interleaved; every number above is the median over runs of that metric (percentiles are medians of per-run percentiles).\n", data.runs);

    let _ = writeln!(w, "## Machine and versions\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (k, v) in data.machine.iter().chain(&data.versions) {
        let _ = writeln!(w, "| {k} | {} |", v.replace('|', "/"));
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "## How to reproduce\n");
    let _ = writeln!(w, "```sh\nbench/run.sh                 # small scale, 3 runs: this report\nbench/run.sh --scale full    # the issue's sizes (50k idle sockets over 3 server nodes and 4 generator processes)\n```\n");
    let _ = writeln!(w, "`bench/run.sh` builds `chat-server` and `chat-bench` in release mode, installs the peer's Node packages from `bench/peers/socketio/package-lock.json` (`npm ci`) if needed, and runs `chat-bench report`, which starts its own `redis-server` (Debian's `/usr/bin/redis-server`), server nodes and Node processes on 127.0.0.1 and writes `docs/BENCHMARKS.md`, `docs/BENCHMARKS.json`, `docs/bench-latency.svg` and `docs/bench-memory.svg`. Needs: Rust, Node.js ≥ 18 with npm, redis-server. Single scenarios: `chat-bench idle|fanout|two-node|history|files --target ours|socketio|both [--json out.json]`; `chat-bench files --merge docs` measures the attachments section alone and merges it into the existing report; `chat-bench fanout --target floor|all` adds the floor (a bare broadcast server on our WebSocket stack, `bench/src/floor.rs`). Instruction, allocation, syscall and context-switch counts per delivery at a fixed offered rate, repeatable on a busy machine: `bench/profile/run.sh callgrind|strace ours|floor OUT` then `bench/profile/summarize.py OUT`.");
    md
}
