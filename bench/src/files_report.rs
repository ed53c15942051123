//! The attachments section of `docs/BENCHMARKS.md`: runs [`files`](crate::files) on each target
//! and the disk reference, interleaved, with fresh processes and a fresh storage directory for
//! every file size; renders the section and its summary rows; and merges a new measurement into
//! an existing `BENCHMARKS.json` (`chat-bench files --merge docs`) so that the section can be
//! measured on its own without rerunning, or changing, the other scenarios' numbers.

use crate::files::{self, DiskRun, FilesParams, FilesResult, FilesRun, TempDir, Transfer};
use crate::procs::{AttachmentOptions, Stack, StackOptions};
use crate::report::{self, median, num, ReportData};
use crate::{Result, Target};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

const MIB: f64 = 1024.0 * 1024.0;

/// One measurement of the attachments section, with its own time, machine and command line
/// (it may be newer than the rest of the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesReport {
    /// `date -u` when the measurement started.
    pub date: String,
    pub command: String,
    pub git_commit: String,
    pub runs: usize,
    pub params: FilesParams,
    pub machine: Vec<(String, String)>,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub duration_s: f64,
    /// Measured on its own and merged into an older report (`chat-bench files --merge`), not
    /// by the `report` run that measured the rest.
    pub standalone: bool,
    /// One per target, every size and run in it.
    pub results: Vec<FilesResult>,
    pub reference: Vec<DiskRun>,
    pub failures: Vec<String>,
}

/// Measures `targets` at every size of `p`, `runs` times, with the disk reference before each
/// size's targets. `standalone`: not part of a whole `report` run.
pub async fn measure(
    opts: &StackOptions,
    p: &FilesParams,
    targets: &[Target],
    runs: usize,
    standalone: bool,
) -> FilesReport {
    let started = std::time::Instant::now();
    let mut out = FilesReport {
        date: report::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command: command(),
        git_commit: report::command_line("git", &["rev-parse", "--short", "HEAD"]),
        runs,
        params: p.clone(),
        machine: report::machine(),
        loadavg_before: report::loadavg(),
        loadavg_after: String::new(),
        duration_s: 0.0,
        standalone,
        results: targets
            .iter()
            .map(|&target| FilesResult {
                target,
                uploads: p.uploads,
                runs: Vec::new(),
            })
            .collect(),
        reference: Vec::new(),
        failures: Vec::new(),
    };
    for run in 1..=runs.max(1) {
        for &size in &p.sizes {
            let what = format!("files run {run}/{runs}, {} × {}", p.uploads, mib(size));
            eprintln!("{what}: disk reference");
            match files::disk_reference(None, p.uploads, size, p.chunk_bytes).await {
                Ok(r) => out.reference.push(r),
                Err(e) => out.failures.push(format!("{what}, disk reference: {e}")),
            }
            for (slot, &target) in targets.iter().enumerate() {
                eprintln!("{what}: {}", target.label());
                match one(opts, p, target, size).await {
                    Ok(r) => {
                        eprintln!("{}", table(target, std::slice::from_ref(&r)));
                        out.results[slot].runs.push(r);
                    }
                    Err(e) => out
                        .failures
                        .push(format!("{what}, {}: {e}", target.label())),
                }
            }
        }
    }
    out.duration_s = started.elapsed().as_secs_f64();
    out.loadavg_after = report::loadavg();
    for f in &out.failures {
        eprintln!("failed: {f}");
    }
    out
}

/// One size on one target: its own storage directory and processes.
async fn one(opts: &StackOptions, p: &FilesParams, target: Target, size: u64) -> Result<FilesRun> {
    let dir = TempDir::new(None, "chat-bench-files")?;
    let mut opts = opts.clone();
    opts.attachments = Some(AttachmentOptions {
        dir: dir.path().to_path_buf(),
        max_upload_bytes: p.max_size().max(50 * 1024 * 1024),
    });
    let stack = Stack::start(target, 1, &opts).await?;
    let result = files::files(&stack.deployment(), p, size).await;
    drop(stack);
    drop(dir);
    result
}

/// This process's command line, starting from `chat-bench`.
fn command() -> String {
    let mut args = std::env::args();
    let _ = args.next();
    std::iter::once("chat-bench".to_owned())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", num(bytes as f64 / MIB))
}

/// `/proc/meminfo`'s "24683772 kB" as "23.5 GiB" (as given if it is not that shape).
fn gib(kb: &str) -> String {
    kb.trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .map_or_else(|_| kb.to_owned(), |k| format!("{:.1} GiB", k / MIB))
}

fn mib_f(bytes: f64) -> String {
    num(bytes / MIB)
}

/// A plain-text table of runs (printed while measuring).
pub fn table(target: Target, runs: &[FilesRun]) -> String {
    let mut s = format!(
        "{}\n{:>9} {:>10} {:>8} {:>8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
        target.label(),
        "file",
        "up MiB/s",
        "up p50",
        "up p99",
        "down MiB/s",
        "dn p50",
        "dn p99",
        "RSS base",
        "peak up",
        "peak dn",
        "verified"
    );
    for r in runs {
        let base = r.upload_memory.as_ref().map(|m| m.baseline_rss as f64);
        let up = r.upload_memory.as_ref().map(|m| m.peak_rss as f64);
        let down = r.download_memory.as_ref().map(|m| m.peak_rss as f64);
        let _ = writeln!(
            s,
            "{:>9} {:>10} {:>8} {:>8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
            mib(r.file_bytes),
            num(r.upload.mib_per_s),
            num(r.upload.p50_s),
            num(r.upload.p99_s),
            num(r.download.mib_per_s),
            num(r.download.p50_s),
            num(r.download.p99_s),
            base.map_or("-".into(), mib_f),
            up.map_or("-".into(), mib_f),
            down.map_or("-".into(), mib_f),
            r.verified,
        );
    }
    s
}

/// Writes `files` into the report in `out` (its `BENCHMARKS.json`), then renders the whole
/// report again from that JSON: the other sections keep their numbers.
pub fn merge(files: FilesReport, out: &Path) -> Result<()> {
    let json = out.join("BENCHMARKS.json");
    let mut data: ReportData = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    data.files = Some(files);
    report::write_all(&data, out)
}

// ---------------------------------------------------------------------------------------------
// Medians
// ---------------------------------------------------------------------------------------------

fn runs_of(r: &FilesReport, target: Target, size: u64) -> Vec<&FilesRun> {
    r.results
        .iter()
        .filter(|x| x.target == target)
        .flat_map(|x| x.runs.iter().filter(|run| run.file_bytes == size))
        .collect()
}

fn med<T>(xs: &[T], f: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    median(xs.iter().filter_map(f).collect())
}

fn cell(x: Option<f64>) -> String {
    x.map_or("-".into(), num)
}

fn times(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// The size the summary quotes: 50 MiB (the issue's) if measured, else the largest.
fn headline_size(r: &FilesReport) -> Option<u64> {
    let sizes = &r.params.sizes;
    sizes
        .iter()
        .copied()
        .find(|&s| s == 50 * 1024 * 1024)
        .or_else(|| sizes.iter().copied().max())
}

struct Medians {
    up: Option<f64>,
    down: Option<f64>,
    peak_up: Option<f64>,
}

fn medians(r: &FilesReport, target: Target, size: u64) -> Medians {
    let runs = runs_of(r, target, size);
    Medians {
        up: med(&runs, |x| Some(x.upload.mib_per_s)),
        down: med(&runs, |x| Some(x.download.mib_per_s)),
        peak_up: med(&runs, |x| {
            x.upload_memory.as_ref().map(|m| m.peak_rss as f64)
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Rows for the report's summary table (ours, peer, ratio, target).
pub fn summary_rows(w: &mut String, r: &FilesReport) {
    let Some(size) = headline_size(r) else { return };
    let (o, p) = (
        medians(r, Target::Ours, size),
        medians(r, Target::Socketio, size),
    );
    let n = r.params.uploads;
    let _ = writeln!(
        w,
        "| attachments: upload MiB/s, {n} × {} at once (section \"Attachments\") | {} | {} | {} | |",
        mib(size),
        cell(o.up),
        cell(p.up),
        times(o.up, p.up)
    );
    let _ = writeln!(
        w,
        "| attachments: download MiB/s, {n} × {} at once | {} | {} | {} | |",
        mib(size),
        cell(o.down),
        cell(p.down),
        times(o.down, p.down)
    );
    let _ = writeln!(
        w,
        "| attachments: server peak RSS during those uploads, MiB (ratio peer / ours) | {} | {} | {} | bounded, not proportional to file size |",
        o.peak_up.map_or("-".into(), mib_f),
        p.peak_up.map_or("-".into(), mib_f),
        times(p.peak_up, o.peak_up)
    );
}

fn transfer_row(w: &mut String, label: &str, size: u64, t: &[&Transfer]) {
    let rates: Vec<f64> = t.iter().map(|x| x.mib_per_s).collect();
    let spread = if rates.len() > 1 {
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} – {}", num(lo), num(hi))
    } else {
        "-".into()
    };
    let _ = writeln!(
        w,
        "| {label} | {} | {} | {spread} | {} | {} | {} |",
        mib(size),
        cell(med(t, |x| Some(x.mib_per_s))),
        cell(med(t, |x| Some(x.p50_s))),
        cell(med(t, |x| Some(x.p99_s))),
        cell(med(t, |x| Some(x.max_s))),
    );
}

/// The "Attachments" section.
pub fn section(w: &mut String, r: &FilesReport) {
    let n = r.params.uploads;
    let targets: Vec<Target> = r.results.iter().map(|x| x.target).collect();
    let has_peer = targets.contains(&Target::Socketio);
    let _ = writeln!(w, "## Attachments: {n} uploads and downloads at once\n");
    let machine = ["CPU", "cores", "memory", "kernel"]
        .iter()
        .filter_map(|k| r.machine.iter().find(|(n, _)| n == k))
        .map(|(k, v)| format!("{k} {}", if k == "memory" { gib(v) } else { v.clone() }))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        w,
        "Measured {} at commit {} with `{}` ({} run{} of every size, medians; {:.0} s) on: {}.{}\n",
        r.date,
        r.git_commit,
        r.command,
        r.runs,
        if r.runs == 1 { "" } else { "s" },
        r.duration_s,
        machine,
        if r.standalone {
            " The rest of this report is older: this section was measured on its own and \
             merged in (`chat-bench files --merge docs` rewrites only this section's data in \
             `BENCHMARKS.json` and renders the report again from it)."
        } else {
            ""
        }
    );
    let _ = writeln!(
        w,
        "For each file size, fresh processes: a `redis-server`, one server node storing files in \
         a new directory of the local filesystem (ours: `attachments.dir`; the peer: `ATTACH_DIR`), \
         {n} users registered in one room. Each user uploads one file of that size, all {n} at \
         once (`POST /api/v1/rooms/{{room}}/attachments`, a `Content-Length` and a streamed body \
         written {} KiB at a time from a pseudo-random generator: neither the client nor the \
         server ever has a whole file), then sends a message naming it (`POST …/messages`), then \
         another member of the room downloads each file, all {n} at once, and the client compares \
         every byte with the stream it uploaded (any difference fails the run). Upload time is \
         request to `201`; download time is request to last byte checked. Server memory is the \
         server process's RSS and PSS (`/proc/<pid>/smaps_rollup`), sampled every {} ms; the \
         baseline is taken just before the phase.\n",
        r.params.chunk_bytes / 1024,
        r.params.sample_ms
    );
    if has_peer {
        let _ = writeln!(
            w,
            "**The peer's job.** Socket.IO does not carry files itself (a Socket.IO message is \
             buffered whole, 1 MB at most by default), so the peer gets the same routes over \
             the Node HTTP server it already runs for setup (`bench/peers/socketio/server.js`): \
             the body piped through a size check into an `fs` write stream with \
             `stream.pipeline` (back-pressure from disk to socket), renamed into place, recorded \
             in Redis; a message over REST naming the upload; downloads to members of the \
             message's room piped from an `fs` read stream. It does less than our server: no \
             type sniffing, no quota, no range requests, no checks beyond owner, room and \
             membership. That is what a Node developer would write with the standard library; \
             the comparison is fair for throughput and memory, and favours the peer on CPU.\n"
        );
    }
    let _ = writeln!(
        w,
        "**The disk reference** is this machine without a server, measured in the same run just \
         before the servers at each size: {n} threads at once write the same files from the same \
         generator (what an upload must at least cost), read them back and compare them (a \
         download), and copy them through a user-space buffer (a file copy). Nothing is synced \
         to disk, by the servers either: the files fit in the page cache (the machine has {}), \
         so all of it measures memory bandwidth and the kernel's write path, not the disk.\n",
        r.machine
            .iter()
            .find(|(k, _)| k == "memory")
            .map_or("?".into(), |(_, v)| gib(v))
    );

    let _ = writeln!(
        w,
        "| what | file | aggregate MiB/s | spread over runs | p50 s per file | p99 s per file | max s |"
    );
    let _ = writeln!(w, "|---|---:|---:|---|---:|---:|---:|");
    for &size in &r.params.sizes {
        for &target in &targets {
            let runs = runs_of(r, target, size);
            let up: Vec<&Transfer> = runs.iter().map(|x| &x.upload).collect();
            let down: Vec<&Transfer> = runs.iter().map(|x| &x.download).collect();
            transfer_row(w, &format!("{} upload", target.label()), size, &up);
            transfer_row(w, &format!("{} download", target.label()), size, &down);
        }
        let refs: Vec<&DiskRun> = r
            .reference
            .iter()
            .filter(|d| d.file_bytes == size)
            .collect();
        for (label, pick) in [
            (
                "disk: write",
                (|d: &DiskRun| d.write.clone()) as fn(&DiskRun) -> Transfer,
            ),
            ("disk: read and compare", |d: &DiskRun| d.read.clone()),
            ("disk: copy", |d: &DiskRun| d.copy.clone()),
        ] {
            let t: Vec<Transfer> = refs.iter().map(|d| pick(d)).collect();
            let t: Vec<&Transfer> = t.iter().collect();
            transfer_row(w, label, size, &t);
        }
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "Ratios (medians of the rows above):\n");
    let mut head = String::from("| file | ours upload / disk write | ours download / disk read |");
    let mut rule = String::from("|---:|---:|---:|");
    if has_peer {
        head.push_str(" ours / peer, upload | ours / peer, download | peer upload / disk write |");
        rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(w, "{head}\n{rule}");
    for &size in &r.params.sizes {
        let o = medians(r, Target::Ours, size);
        let p = medians(r, Target::Socketio, size);
        let refs: Vec<&DiskRun> = r
            .reference
            .iter()
            .filter(|d| d.file_bytes == size)
            .collect();
        let write = med(&refs, |d| Some(d.write.mib_per_s));
        let read = med(&refs, |d| Some(d.read.mib_per_s));
        let _ = write!(
            w,
            "| {} | {} | {} |",
            mib(size),
            times(o.up, write),
            times(o.down, read)
        );
        if has_peer {
            let _ = write!(
                w,
                " {} | {} | {} |",
                times(o.up, p.up),
                times(o.down, p.down),
                times(p.up, write)
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "Server memory (MiB; RSS, and PSS in parentheses) and CPU. If the server held files \
         whole, the peak would grow by {n} × the file size between rows.\n"
    );
    let _ = writeln!(
        w,
        "| target | file | baseline | peak during uploads | peak during downloads | peak − baseline | {n} × file | server CPU-s per GiB up | per GiB down | generator cores |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &target in &targets {
        for &size in &r.params.sizes {
            let runs = runs_of(r, target, size);
            let m = |f: &dyn Fn(&FilesRun) -> Option<f64>| med(&runs, |x| f(x));
            let base_rss = m(&|x| x.upload_memory.as_ref().map(|m| m.baseline_rss as f64));
            let base_pss = m(&|x| x.upload_memory.as_ref().map(|m| m.baseline_pss as f64));
            let up_rss = m(&|x| x.upload_memory.as_ref().map(|m| m.peak_rss as f64));
            let up_pss = m(&|x| x.upload_memory.as_ref().map(|m| m.peak_pss as f64));
            let dn_rss = m(&|x| x.download_memory.as_ref().map(|m| m.peak_rss as f64));
            let dn_pss = m(&|x| x.download_memory.as_ref().map(|m| m.peak_pss as f64));
            let growth = m(&|x| {
                let u = x.upload_memory.as_ref()?;
                let d = x.download_memory.as_ref()?;
                Some(u.peak_rss.max(d.peak_rss) as f64 - u.baseline_rss as f64)
            });
            let both = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{} ({})", mib_f(a), mib_f(b)),
                _ => "-".into(),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                target.label(),
                mib(size),
                both(base_rss, base_pss),
                both(up_rss, up_pss),
                both(dn_rss, dn_pss),
                growth.map_or("-".into(), mib_f),
                mib_f((size * n as u64) as f64),
                cell(m(&|x| Some(x.upload_cpu_s_per_gib))),
                cell(m(&|x| Some(x.download_cpu_s_per_gib))),
                cell(m(&|x| Some(x.bench_cores))),
            );
        }
    }
    let _ = writeln!(w);
    let verified: usize = r
        .results
        .iter()
        .flat_map(|x| x.runs.iter().map(|run| run.verified))
        .sum();
    let _ = writeln!(
        w,
        "Downloads compared byte for byte with their upload: {verified}, all identical (a \
         difference fails the run). Load average before: {}; after: {}.\n",
        r.loadavg_before, r.loadavg_after
    );
    if !r.failures.is_empty() {
        let _ = writeln!(w, "**Runs that failed** (left out of the medians):\n");
        for f in &r.failures {
            let _ = writeln!(w, "- {f}");
        }
        let _ = writeln!(w);
    }
}
