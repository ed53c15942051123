//! The CI variant of the rolling restart (issue 12): two nodes behind nginx, each restarted
//! once (SIGTERM, start, `/readyz`) under steady traffic from six scripted clients. Fails on
//! anything lost, duplicated or reordered (the history checker) and on any client that
//! reconnected more often than nodes were restarted. The fuller run:
//! `scripts/rolling-restart.sh` (numbers in docs/RELIABILITY.md).

use faults::rolling::Report;
use std::path::Path;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_nginx_loses_nothing() {
    let exe = Path::new(env!("CARGO_BIN_EXE_faults"));
    let run = tokio::process::Command::new(exe)
        .args(["rolling", "--nodes", "2", "--rounds", "1", "--clients", "6"])
        .args(["--between-ms", "1500", "--send-every-ms", "100", "--json"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the rolling restart finished within 120 s")
        .expect("faults rolling ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("{}", report.line());
    assert_eq!(report.error, None);
    assert_eq!(report.restarts, 2);
    assert!(
        report.volume.sent > 50,
        "steady traffic: {:?}",
        report.volume
    );
    assert!(report.findings.is_clean(), "{:#?}", report.findings.lines());
    assert!(
        report
            .reconnects
            .iter()
            .all(|n| *n as usize <= report.restarts),
        "a client reconnected more than once per restart: {:?}",
        report.reconnects
    );
    // Every client was moved by the restarts (its node went away at least once)...
    assert!(
        report.reconnects.iter().all(|n| *n >= 1),
        "{:?}",
        report.reconnects
    );
    // ...and told so with 1001, never a failure code.
    assert!(
        report.closes.keys().all(|c| *c == 1001),
        "closes: {:?}",
        report.closes
    );
    assert!(report.ok);
}
