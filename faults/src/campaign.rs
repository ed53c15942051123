//! Many runs: each run is its own `faults run --seed N --json` process (a run that hangs or
//! crashes cannot poison the others), at most `jobs` at a time. The summary adds up faults by
//! kind, messages and findings, and renders the results table for `docs/RELIABILITY.md`.

use crate::run::{Draw, FaultKind, Report};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Totals over a campaign.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub runs: u64,
    pub passed: u64,
    pub failed_seeds: Vec<u64>,
    /// Runs that could not be carried out (setup error, timeout): failures too.
    pub errored_seeds: Vec<u64>,
    pub faults: BTreeMap<String, u64>,
    pub sent: u64,
    pub offline_composed: u64,
    pub delivered: u64,
    pub edits_deletes: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    #[serde(default)]
    pub corrupted: u64,
    #[serde(default)]
    pub reactions: u64,
    #[serde(default)]
    pub replies: u64,
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub file_bytes: u64,
    #[serde(default)]
    pub upload_retries: u64,
    #[serde(default)]
    pub cut_uploads: u64,
    #[serde(default)]
    pub partial_files: u64,
    #[serde(default)]
    pub s3_runs: u64,
    pub wipe_runs: u64,
    pub wiped_acked: u64,
    pub rollback_runs: u64,
    /// Rollback runs: acknowledged messages the store lost (the documented AOF limit).
    pub lost_detected: u64,
    pub rollback_clients: u64,
    /// Scripted clients in those runs that held something the store lost (only they have
    /// something to be told).
    #[serde(default)]
    pub rollback_affected: u64,
    pub rollback_untold: u64,
    /// `redis_rollback` cuts of the AOF, the bytes and room events they removed, and the cuts
    /// moved back to the last event because the bytes asked for held none.
    #[serde(default)]
    pub aof_cuts: u64,
    #[serde(default)]
    pub aof_cut_bytes: u64,
    #[serde(default)]
    pub aof_cut_events: u64,
    #[serde(default)]
    pub aof_cuts_extended: u64,
    pub slow_closes: u64,
    pub desktop_runs: u64,
    pub secs: f64,
}

impl Summary {
    pub fn add(&mut self, r: &Report) {
        self.runs += 1;
        if r.ok {
            self.passed += 1;
        } else if r.error.is_some() {
            self.errored_seeds.push(r.seed);
        } else {
            self.failed_seeds.push(r.seed);
        }
        for (k, n) in &r.faults {
            *self.faults.entry(k.clone()).or_default() += u64::from(*n);
        }
        self.sent += r.volume.sent;
        self.offline_composed += r.volume.offline;
        self.delivered += r.volume.delivered;
        self.edits_deletes += r.volume.edits_deletes;
        self.lost += r.lost() as u64;
        self.duplicated += r.duplicated() as u64;
        self.reordered += r.reordered() as u64;
        self.corrupted += r.corrupted() as u64;
        self.reactions += r.volume.reactions;
        self.replies += r.volume.replies;
        self.files += r.volume.files;
        self.file_bytes += r.volume.file_bytes;
        self.upload_retries += r.volume.upload_retries;
        self.cut_uploads += u64::from(r.cut_uploads);
        self.partial_files += u64::from(r.partial_files);
        if r.plan.storage == crate::run::Storage::S3 {
            self.s3_runs += 1;
        }
        if r.faults.contains_key(FaultKind::RedisWipe.name()) {
            self.wipe_runs += 1;
        }
        self.wiped_acked += r.wiped_acked;
        if r.store_lost_writes {
            self.rollback_runs += 1;
            self.rollback_clients += (r.plan.nodes * r.plan.clients_per_node) as u64;
        }
        self.rollback_affected += u64::from(r.rollback_affected);
        self.rollback_untold += u64::from(r.rollback_untold);
        for cut in &r.aof_cuts {
            self.aof_cuts += 1;
            self.aof_cut_bytes += cut.bytes;
            self.aof_cut_events += cut.events.len() as u64;
            self.aof_cuts_extended += u64::from(cut.extended);
        }
        self.lost_detected += r.lost_detected;
        self.slow_closes += u64::from(r.slow_closes);
        if r.plan.desktop {
            self.desktop_runs += 1;
        }
    }

    /// The results table (Markdown).
    pub fn table(&self, command: &str, when: &str) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "Campaign of {when}: `{command}` — {} runs in {:.0} min.\n\n",
            self.runs,
            self.secs / 60.0
        ));
        s.push_str("| | |\n|---|---|\n");
        s.push_str(&format!(
            "| runs (passed / failed / could not run) | {} ({} / {} / {}) |\n",
            self.runs,
            self.passed,
            self.failed_seeds.len(),
            self.errored_seeds.len()
        ));
        s.push_str(&format!(
            "| runs with the desktop backend | {} |\n",
            self.desktop_runs
        ));
        s.push_str(&format!(
            "| runs with files in S3 (`s3s-fs`) / in a shared directory | {} / {} |\n",
            self.s3_runs,
            self.runs - self.s3_runs
        ));
        for kind in FaultKind::ALL {
            s.push_str(&format!(
                "| faults: {} | {} |\n",
                kind.name().replace('_', " "),
                self.faults.get(kind.name()).copied().unwrap_or(0)
            ));
        }
        s.push_str(&format!(
            "| messages sent (of which composed offline) | {} ({}) |\n",
            self.sent, self.offline_composed
        ));
        s.push_str(&format!(
            "| edits and deletes confirmed | {} |\n",
            self.edits_deletes
        ));
        s.push_str(&format!(
            "| reaction changes confirmed (adds and removes) / replies acknowledged | {} / {} |\n",
            self.reactions, self.replies
        ));
        s.push_str(&format!(
            "| files attached to acknowledged messages (MB) / upload attempts failed and retried | {} ({:.0}) / {} |\n",
            self.files,
            self.file_bytes as f64 / 1e6,
            self.upload_retries
        ));
        s.push_str(&format!(
            "| kill -9 during an upload: half-written file seen / half-written files at the end, all removed by the collector | {} / {} |\n",
            self.cut_uploads, self.partial_files
        ));
        s.push_str(&format!(
            "| events delivered to clients | {} |\n",
            self.delivered
        ));
        s.push_str(&format!(
            "| slow-consumer closes (4008) | {} |\n",
            self.slow_closes
        ));
        s.push_str(&format!(
            "| **lost / duplicated / reordered / corrupted files** | **{} / {} / {} / {}** |\n",
            self.lost, self.duplicated, self.reordered, self.corrupted
        ));
        s.push_str(&format!(
            "| store wipes (Redis without persistence restarted): runs / acked messages gone, every client told | {} / {} |\n",
            self.wipe_runs, self.wiped_acked
        ));
        s.push_str(&format!(
            "| AOF tails cut (`redis_rollback`): cuts / KB / room events cut off (cuts moved back to the last event) | {} / {:.0} / {} ({}) |\n",
            self.aof_cuts,
            self.aof_cut_bytes as f64 / 1e3,
            self.aof_cut_events,
            self.aof_cuts_extended
        ));
        s.push_str(&format!(
            "| runs where Redis lost acked writes (AOF tail cut, or kill -9 with everysec): runs / acked messages lost / scripted clients that held lost writes: told (4010 or gap) of them (of all clients in those runs) | {} / {} / {} of {} ({}) |\n",
            self.rollback_runs,
            self.lost_detected,
            self.rollback_affected - self.rollback_untold.min(self.rollback_affected),
            self.rollback_affected,
            self.rollback_clients
        ));
        if !self.failed_seeds.is_empty() || !self.errored_seeds.is_empty() {
            s.push_str(&format!(
                "\nFailed seeds: {:?}; could not run: {:?}. Replay one with `faults run --seed N{}`.\n",
                self.failed_seeds,
                self.errored_seeds,
                if command.contains("--cluster") {
                    " --cluster"
                } else {
                    ""
                }
            ));
        }
        s
    }
}

/// Runs one seed as a child process and reads its report.
pub async fn run_child(exe: &Path, seed: u64, draw: Draw) -> Report {
    let mut cmd = Command::new(exe);
    cmd.args(["run", "--json", "--seed", &seed.to_string()]);
    cmd.args(draw.args());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(200), cmd.output()).await;
    let failed = |why: String| Report {
        error: Some(why),
        ..Report::empty(seed, crate::run::Plan::new(seed, draw))
    };
    match output {
        Err(_) => failed("the run process took longer than 200 s".into()),
        Ok(Err(e)) => failed(format!("cannot start the run process: {e}")),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stdout);
            match text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<Report>(l).ok())
            {
                Some(r) => r,
                None => failed(format!("the run process gave no report ({})", out.status)),
            }
        }
    }
}
