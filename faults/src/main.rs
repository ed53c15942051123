//! `faults`: randomized fault runs against real chat-server nodes on a real Redis.
//!
//! ```text
//! faults run --seed N [--only KIND] [--cluster] [--json] [--keep]
//!                                                       one run; replays exactly from its seed
//! faults campaign [--runs N] [--jobs J] [--seed S] [--only KIND] [--cluster] [--out FILE] [--doc FILE]
//! faults node                                           a chat-server node (used by the runs)
//! faults rolling [--nodes N] [--clients C] [--rounds R] [--between-ms MS] [--send-every-ms MS]
//!                [--reconnect-bound-ms MS] [--json] [--keep]
//!                                                       rolling restart behind nginx (issue 12)
//! ```
//!
//! `KIND` is one of the fault kinds (`node_kill`, `redis_wipe`, ... see `faults::run::FaultKind`).
//! `--cluster` runs on a Redis Cluster (3 masters, a replica each) instead of one Redis; the
//! cluster's own kinds (`shard_failover`, `slot_move`) imply it.

use faults::campaign::{self, Summary};
use faults::run::{self, Draw, FaultKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        let at = self.0.iter().position(|a| a == name)?;
        self.0.get(at + 1).map(String::as_str)
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn num(&self, name: &str) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|v| v.parse().map_err(|_| format!("{name} takes a number")))
            .transpose()
    }
    /// `--only KIND` and `--cluster`.
    fn draw(&self) -> Result<Draw, String> {
        let only = self
            .value("--only")
            .map(|v| FaultKind::parse(v).ok_or_else(|| format!("unknown fault kind {v}")))
            .transpose()?;
        Ok(Draw {
            only,
            cluster: self.flag("--cluster") || only.is_some_and(FaultKind::needs_cluster),
        })
    }
}

fn main() -> ExitCode {
    let args = Args(std::env::args().skip(1).collect());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faults: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.0.first().map(String::as_str) {
        Some("node") => rt.block_on(node()),
        Some("run") => rt.block_on(one(&args)),
        Some("campaign") => rt.block_on(many(&args)),
        Some("rolling") => rt.block_on(rolling(&args)),
        _ => Err(
            "usage: faults run --seed N | faults campaign [--runs N] [--jobs J] | faults rolling | faults node"
                .into(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faults: {e}");
            ExitCode::from(2)
        }
    }
}

/// A chat-server node: the same steps as `chat-server`'s main (configuration from `CHAT_*`,
/// serve until SIGTERM, graceful shutdown).
async fn node() -> Result<ExitCode, String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = chat_server::Config::load(None).map_err(|e| e.to_string())?;
    let server = chat_server::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))
}

async fn one(args: &Args) -> Result<ExitCode, String> {
    let seed = args.num("--seed")?.ok_or("run needs --seed N")?;
    let draw = args.draw()?;
    let base = run::default_base();
    let dir = run::run_dir(&base, seed).map_err(|e| e.to_string())?;
    let report = run::run(seed, draw, &exe()?, dir.path()).await;
    if args.flag("--keep") || !report.ok {
        let kept = dir.keep();
        eprintln!("run directory (node logs): {}", kept.display());
    }
    if args.flag("--json") {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", line(&report));
        println!(
            "{}",
            serde_json::to_string_pretty(&report.plan).map_err(|e| e.to_string())?
        );
        println!("  closes received: {:?}", report.closes);
        for cut in &report.aof_cuts {
            println!("  {}", cut_line(cut));
        }
        if report.store_lost_writes {
            println!(
                "  store lost writes: {} acked messages lost; {} scripted clients held lost writes, {} untold",
                report.lost_detected, report.rollback_affected, report.rollback_untold
            );
        }
        for l in &report.untold {
            println!("  untold: {l}");
        }
        for l in report.findings.lines().iter().take(50) {
            println!("  {l}");
        }
        if let Some(e) = &report.error {
            println!("  error: {e}");
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The rolling restart: every node restarted in turn behind nginx under steady traffic.
async fn rolling(args: &Args) -> Result<ExitCode, String> {
    let num = |name: &str, default: u64| -> Result<u64, String> {
        Ok(args.num(name)?.unwrap_or(default))
    };
    let options = faults::rolling::Options {
        nodes: num("--nodes", 2)?.max(2) as usize,
        clients: num("--clients", 6)?.max(2) as usize,
        rounds: num("--rounds", 1)?.max(1) as usize,
        between_ms: num("--between-ms", 2000)?,
        send_every_ms: num("--send-every-ms", 100)?,
        reconnect_bound_ms: num("--reconnect-bound-ms", 5000)?,
    };
    let base = run::default_base();
    let dir = run::run_dir(&base, 0).map_err(|e| e.to_string())?;
    let report = faults::rolling::run(options, &exe()?, dir.path()).await;
    if args.flag("--keep") || !report.ok {
        let kept = dir.keep();
        eprintln!("run directory (node and nginx logs): {}", kept.display());
    }
    if args.flag("--json") {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", report.line());
        for l in report.findings.lines().iter().take(50) {
            println!("  {l}");
        }
        if let Some(e) = &report.error {
            println!("  error: {e}");
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn line(r: &run::Report) -> String {
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    format!(
        "seed {:>20} {} {:>5.1}s nodes={} {:?} {:?} {:?}{} faults=[{}] sent={} files={} reactions={} 4008={} lost={} dup={} reord={} corrupt={}{}{}",
        r.seed,
        if r.ok { "ok  " } else { "FAIL" },
        r.secs,
        r.plan.nodes,
        r.plan.deployment,
        r.plan.persistence,
        r.plan.storage,
        if r.plan.desktop { " +desktop" } else { "" },
        faults.join(" "),
        r.volume.sent,
        r.volume.files,
        r.volume.reactions,
        r.slow_closes,
        r.lost(),
        r.duplicated(),
        r.reordered(),
        r.corrupted(),
        if r.lost_detected > 0 {
            format!(" acked-lost-by-rollback={}", r.lost_detected)
        } else {
            String::new()
        },
        r.error
            .as_ref()
            .map(|e| format!(" error: {e}"))
            .unwrap_or_default()
    )
}

/// What one `redis_rollback` cut off the AOF.
fn cut_line(cut: &faults::aof::Cut) -> String {
    let events: Vec<String> = cut
        .events
        .iter()
        .take(20)
        .map(|(room, seq)| format!("{room}:{seq}"))
        .collect();
    format!(
        "AOF cut: {} bytes, {} commands, {} room events [{}{}] off {}{}",
        cut.bytes,
        cut.commands,
        cut.events.len(),
        events.join(" "),
        if cut.events.len() > 20 { " …" } else { "" },
        cut.file,
        if cut.extended {
            " (moved back to the last event)"
        } else {
            ""
        }
    )
}

async fn many(args: &Args) -> Result<ExitCode, String> {
    let runs = args.num("--runs")?.unwrap_or(1000);
    let jobs = args.num("--jobs")?.unwrap_or(3).max(1) as usize;
    let first = match args.num("--seed")? {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() * 1000)
            .unwrap_or(1),
    };
    let draw = args.draw()?;
    let exe = exe()?;
    let command = format!(
        "scripts/faults.sh {runs} --seed {first}{}",
        draw.args()
            .iter()
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    let when = args.value("--date").unwrap_or("this run").to_owned();
    println!("campaign: {runs} runs from seed {first}, {jobs} at a time");
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut reports = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0u64;
    while next < runs || !set.is_empty() {
        while next < runs && set.len() < jobs {
            let seed = first + next;
            let exe = exe.clone();
            set.spawn(async move { campaign::run_child(&exe, seed, draw).await });
            next += 1;
        }
        if let Some(Ok(report)) = set.join_next().await {
            println!("{}", line(&report));
            for l in report.findings.lines().iter().take(10) {
                println!("    {l}");
            }
            for cut in &report.aof_cuts {
                println!("    {}", cut_line(cut));
            }
            for l in report.untold.iter().take(10) {
                println!("    untold: {l}");
            }
            summary.add(&report);
            reports.push(report);
            // The results so far, every 10 runs: a campaign stopped early still has them.
            if summary.runs % 10 == 0 && (next < runs || !set.is_empty()) {
                summary.secs = started.elapsed().as_secs_f64();
                let partial = format!("the first {} of {runs} runs", summary.runs);
                let table = summary.table(&command, &format!("{when} ({partial})"));
                write_out(args, &command, first, &summary, &reports, &table)?;
            }
        }
    }
    summary.secs = started.elapsed().as_secs_f64();
    let table = summary.table(&command, &when);
    println!("\n{table}");
    write_out(args, &command, first, &summary, &reports, &table)?;
    if let Some(out) = args.value("--out") {
        println!("results: {out}");
    }
    if let Some(doc) = args.value("--doc") {
        println!("table written into {doc}");
    }
    Ok(if summary.passed == summary.runs {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes the results file (`--out`) and the table into the doc (`--doc`), as asked.
fn write_out(
    args: &Args,
    command: &str,
    first: u64,
    summary: &Summary,
    reports: &[run::Report],
    table: &str,
) -> Result<(), String> {
    if let Some(out) = args.value("--out") {
        let runs: Vec<serde_json::Value> = reports.iter().map(compact).collect();
        let doc = serde_json::json!({
            "command": command,
            "first_seed": first,
            "summary": summary,
            "runs": runs,
        });
        std::fs::write(
            out,
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{out}: {e}"))?;
    }
    if let Some(doc) = args.value("--doc") {
        let section = if args.draw()?.cluster {
            "faults:cluster-results"
        } else {
            "faults:results"
        };
        write_results(doc, section, table)?;
    }
    Ok(())
}

/// One run in the campaign's result file: what it did and what the checker found.
fn compact(r: &run::Report) -> serde_json::Value {
    let mut v = serde_json::json!({
        "seed": r.seed,
        "ok": r.ok,
        "secs": (r.secs * 10.0).round() / 10.0,
        "nodes": r.plan.nodes,
        "deployment": r.plan.deployment,
        "persistence": r.plan.persistence,
        "desktop": r.plan.desktop,
        "faults": r.faults,
        "sent": r.volume.sent,
        "offline": r.volume.offline,
        "delivered": r.volume.delivered,
        "closes": r.closes,
        "lost": r.lost(),
        "lost_detected": r.lost_detected,
        "rollback_affected": r.rollback_affected,
        "rollback_untold": r.rollback_untold,
        "aof_cuts": r.aof_cuts,
        "store_lost_writes": r.store_lost_writes,
        "duplicated": r.duplicated(),
        "reordered": r.reordered(),
        "corrupted": r.corrupted(),
        "storage": r.plan.storage,
        "reactions": r.volume.reactions,
        "replies": r.volume.replies,
        "files": r.volume.files,
        "cut_uploads": r.cut_uploads,
        "partial_files": r.partial_files,
    });
    if !r.untold.is_empty() {
        v["untold"] = serde_json::json!(r.untold);
    }
    if !r.ok {
        v["findings"] = serde_json::json!(r.findings.lines());
        v["error"] = serde_json::json!(r.error);
    }
    v
}

/// Replaces what lies between the results markers of the doc with `table`.
/// Puts `table` between the `<!-- {section}:begin -->` and `:end` markers of `path` (a
/// single-Redis campaign's results and a cluster campaign's have a section each).
fn write_results(path: &str, section: &str, table: &str) -> Result<(), String> {
    let begin = format!("<!-- {section}:begin -->");
    let end = format!("<!-- {section}:end -->");
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        return Err(format!("{path} has no {begin} … {end} markers"));
    };
    let new = format!("{}{begin}\n{table}{}", &text[..b], &text[e..]);
    std::fs::write(path, new).map_err(|e| format!("{path}: {e}"))
}
