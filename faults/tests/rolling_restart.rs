//! The CI variant of the rolling restart (issue 12): two nodes behind Debian's nginx running the
//! shipped `deploy/nginx/chat.conf`, each restarted once (SIGTERM, start, `/readyz`) under
//! steady traffic from six scripted clients. Fails on anything lost, duplicated or reordered
//! (the history checker), on a node that does not drain and exit by itself on SIGTERM, on any
//! close other than 1001 or a reconnect without one, on a client that reconnected more often
//! than nodes were restarted, and on a client that was not back within 5 s. The full run:
//! `scripts/rolling-restart.sh` (numbers in docs/RELIABILITY.md).

use faults::procs::Stopped;
use faults::rolling::Report;
use std::path::Path;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_nginx_loses_nothing() {
    let exe = Path::new(env!("CARGO_BIN_EXE_faults"));
    let run = tokio::process::Command::new(exe)
        .args(["rolling", "--nodes", "2", "--rounds", "1", "--clients", "6"])
        .args(["--between-ms", "1500", "--send-every-ms", "100"])
        .args(["--reconnect-bound-ms", "5000", "--json"])
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
    // Nothing lost, duplicated or reordered.
    assert!(report.findings.is_clean(), "{:#?}", report.findings.lines());
    // Each node drained: it exited by itself, successfully, within its 2 s grace (and some
    // slack for a busy machine), not killed.
    assert_eq!(report.drains.len(), 2);
    for d in &report.drains {
        assert!(
            matches!(d, Stopped::Exited { success: true, secs } if *secs < 8.0),
            "a node did not drain and exit on SIGTERM: {:?}",
            report.drains
        );
    }
    // Every client was moved by the restarts (its node went away at least once)...
    assert!(
        report.reconnects.iter().all(|n| *n >= 1),
        "{:?}",
        report.reconnects
    );
    // ...at most once per restart...
    assert!(
        report
            .reconnects
            .iter()
            .all(|n| *n as usize <= report.restarts),
        "a client reconnected more than once per restart: {:?}",
        report.reconnects
    );
    // ...each time told so with 1001 and nothing else...
    let reconnects: u32 = report.reconnects.iter().sum();
    assert_eq!(
        report.closes,
        [(protocol::close::GOING_AWAY, reconnects)].into(),
        "closes by code vs {reconnects} reconnects"
    );
    // ...and back within the bound.
    assert!(
        report.outage_ms_max <= 5000,
        "a client was without a socket for {} ms",
        report.outage_ms_max
    );
    assert!(report.ok);
}
