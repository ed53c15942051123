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

mod markdown;
mod stats;
mod tables;
pub use markdown::markdown;
use stats::{latency_series, memory_series};
pub use stats::{median, num, MedianStep};
pub use tables::{floor_comparison_table, history_table, idle_table, steps_table};

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
                // The 50k, and more: 100k on six nodes.
                idle_scaled: vec![IdleParams::preset(), IdleParams::sized(100_000)],
                fanout: FanoutParams::preset(),
                two_node: TwoNodeParams {
                    deliveries_per_sec: 100_000.0,
                    ..TwoNodeParams::preset()
                },
                history: HistoryParams::preset(),
                // The 50 MiB between a tenth and four times of it: peak memory must not
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
