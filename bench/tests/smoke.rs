//! CI smoke of every scenario at tiny scale against our server, started in-process (embedded
//! store, or a private `redis-server` where two nodes share one). Benchmarks are not timed
//! tests: these assert only correctness — every sent message reached every member of its room
//! exactly once, every connection opened, every page arrived. The Socket.IO peer is not part of
//! the smoke (it needs Node packages); `chat-bench report` covers it. The floor target (a bare
//! broadcast server in this crate) runs the fanout smoke too. The attachments smoke (`files`)
//! uploads and downloads a few small files and checks every byte, and that its section merges
//! into a report without changing the other sections.

use chat_bench::files::{self, FilesParams, TempDir};
use chat_bench::files_report::{self, FilesReport};
use chat_bench::procs::RedisServer;
use chat_bench::scenario::{
    self, FanoutParams, HistoryParams, IdleParams, StepResult, TwoNodeParams,
};
use chat_bench::{Deployment, Target};
use chat_server::Config;
use std::net::SocketAddr;
use std::time::Duration;

/// No scenario here may take longer than this.
const LIMIT: Duration = Duration::from_secs(50);

fn config(redis_url: Option<String>) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        redis_url,
        msgs_per_sec: 1_000_000,
        msgs_burst: 1_000_000,
        frames_per_sec: 1_000_000,
        frames_burst: 1_000_000,
        logins_per_min: 1_000_000,
        ..Config::default()
    }
}

async fn start(redis: Option<&RedisServer>) -> chat_server::Running {
    chat_server::start(config(redis.map(|r| r.info.url())))
        .await
        .expect("server starts")
}

fn deployment(nodes: &[&chat_server::Running], redis: Option<&RedisServer>) -> Deployment {
    Deployment {
        target: Target::Ours,
        nodes: nodes.iter().map(|n| n.addr()).collect(),
        server_pids: vec![],
        redis: redis.map(|r| r.info.clone()),
    }
}

fn assert_exactly_once(step: &StepResult, members: usize) {
    assert!(step.sent > 0, "nothing was sent: {step:?}");
    assert_eq!(
        step.acked, step.sent,
        "every send is acknowledged: {step:?}"
    );
    assert_eq!(step.failed, 0, "no send fails: {:?}", step.fail_codes);
    assert_eq!(step.disconnects, 0, "no connection drops");
    assert_eq!(step.dups, 0, "no message arrives twice");
    assert_eq!(step.drops, 0, "no message is lost");
    assert!(
        step.complete,
        "all deliveries arrived before the drain deadline"
    );
    assert_eq!(
        step.delivered,
        step.acked * members as u64,
        "every member of the room got every message of its room"
    );
    assert_eq!(step.latency.samples, step.delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_to_every_member_once() {
    let server = start(None).await;
    let dep = deployment(&[&server], None);
    let p = FanoutParams {
        rooms: 3,
        members: 4,
        senders_per_room: 2,
        users_per_room: 2,
        rates: vec![40.0, 80.0],
        step_secs: 1.0,
        drain_secs: 10.0,
        warmup_secs: 0.0,
        body_bytes: 60,
        p99_limit_ms: 60_000.0,
        stop_on_fail: false,
    };
    let r = tokio::time::timeout(LIMIT, scenario::fanout(&dep, &p))
        .await
        .expect("fanout smoke finishes in time")
        .expect("fanout runs");
    assert_eq!(r.connections, 12);
    assert_eq!(r.steps.len(), 2);
    for step in &r.steps {
        assert_exactly_once(step, p.members);
    }
    server.shutdown().await;
}

/// The floor target (a bare broadcast server) under the same generator: every member gets
/// every message once, in the same accounting as ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_fanout_delivers_every_message_to_every_member_once() {
    let floor = chat_bench::floor::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("floor starts");
    let dep = Deployment {
        target: Target::Floor,
        nodes: vec![floor.addr()],
        server_pids: vec![],
        redis: None,
    };
    let p = FanoutParams {
        rooms: 3,
        members: 4,
        senders_per_room: 2,
        users_per_room: 2,
        rates: vec![40.0, 80.0],
        step_secs: 1.0,
        drain_secs: 10.0,
        warmup_secs: 0.0,
        body_bytes: 60,
        p99_limit_ms: 60_000.0,
        stop_on_fail: false,
    };
    let r = tokio::time::timeout(LIMIT, scenario::fanout(&dep, &p))
        .await
        .expect("floor fanout smoke finishes in time")
        .expect("floor fanout runs");
    assert_eq!(r.target, Target::Floor);
    assert_eq!(r.connections, 12);
    assert_eq!(r.steps.len(), 2);
    for step in &r.steps {
        assert_exactly_once(step, p.members);
    }
    floor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_across_redis_exactly_once() {
    let redis = RedisServer::start().await.expect("redis starts");
    let a = start(Some(&redis)).await;
    let b = start(Some(&redis)).await;
    let dep = deployment(&[&a, &b], Some(&redis));
    let p = TwoNodeParams {
        rooms: 2,
        members: vec![3, 5],
        users_per_room: 2,
        deliveries_per_sec: 150.0,
        step_secs: 1.0,
        drain_secs: 10.0,
        warmup_secs: 0.0,
        body_bytes: 60,
    };
    let r = tokio::time::timeout(LIMIT, scenario::two_node(&dep, &p))
        .await
        .expect("two-node smoke finishes in time")
        .expect("two-node runs");
    assert_eq!(r.runs.len(), 2);
    for run in &r.runs {
        assert_eq!(run.connections, p.rooms * run.members);
        assert_exactly_once(&run.step, run.members);
        let cmds = run.step.redis_commands_per_msg.expect("Redis was measured");
        assert!(cmds > 0.0);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_opens_every_connection() {
    let server = start(None).await;
    let dep = deployment(&[&server], None);
    let p = IdleParams {
        connections: 60,
        rooms: 3,
        users_per_room: 2,
        points: 3,
        settle_secs: 0.1,
        nodes: 1,
        per_worker: 0,
    };
    let r = tokio::time::timeout(LIMIT, scenario::idle(&dep, &p))
        .await
        .expect("idle smoke finishes in time")
        .expect("idle runs");
    assert_eq!(r.connect_errors, 0, "{:?}", r.first_connect_error);
    assert_eq!(r.points.len(), 3);
    assert_eq!(r.points[2].connections, 60);
    assert_eq!(r.open_at_end, 60);
    server.shutdown().await;
}

/// The way `idle` reaches 50k here: client sockets in `chat-bench idle-worker` processes,
/// server sockets spread over two nodes on one Redis, a third node registering the users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_spreads_sockets_over_worker_processes_and_nodes() {
    let redis = RedisServer::start().await.expect("redis starts");
    let a = start(Some(&redis)).await;
    let b = start(Some(&redis)).await;
    let registrar = start(Some(&redis)).await;
    let dep = deployment(&[&a, &b, &registrar], Some(&redis));
    let p = IdleParams {
        connections: 60,
        rooms: 3,
        users_per_room: 2,
        points: 2,
        settle_secs: 0.1,
        nodes: 2,
        per_worker: 25,
    };
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_chat-bench"));
    let r = tokio::time::timeout(LIMIT, scenario::idle_with(&dep, &p, bin))
        .await
        .expect("idle smoke finishes in time")
        .expect("idle runs");
    assert_eq!(r.connect_errors, 0, "{:?}", r.first_connect_error);
    assert_eq!(r.generator_workers, 3);
    assert_eq!(r.points.len(), 2);
    assert_eq!(r.points[1].connections, 60);
    assert_eq!(r.open_at_end, 60, "every worker still holds its sockets");
    let per_node: Vec<usize> = r.nodes.iter().map(|n| n.connections).collect();
    assert_eq!(per_node, vec![30, 30]);
    a.shutdown().await;
    b.shutdown().await;
    registrar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_through_every_message() {
    let server = start(None).await;
    let dep = deployment(&[&server], None);
    let p = HistoryParams {
        messages: 400,
        pagers: 2,
        page: 50,
        fill_window: 32,
        body_bytes: 40,
    };
    let r = tokio::time::timeout(LIMIT, scenario::history(&dep, &p))
        .await
        .expect("history smoke finishes in time")
        .expect("history runs");
    assert_eq!(r.messages_seen_min, 400, "each pager saw every message");
    assert!(r.pages >= 2 * 8, "pages: {}", r.pages);
    server.shutdown().await;
}

/// 4 users upload 1 MiB each at once, send it, and another member downloads each at once: every
/// download is byte-identical (`files` fails the run otherwise); the section renders and merges
/// into an existing report, leaving every line of the other sections as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_byte_identical_and_merge_into_the_report() {
    let store = TempDir::new(None, "chat-bench-smoke-files").expect("temp dir");
    let mut cfg = config(None);
    cfg.attachments.dir = Some(store.path().to_path_buf());
    let server = chat_server::start(cfg).await.expect("server starts");
    let dep = deployment(&[&server], None);
    let size = 1 << 20;
    let p = FilesParams {
        uploads: 4,
        sizes: vec![size],
        chunk_bytes: 16 * 1024,
        sample_ms: 20,
    };
    let run = tokio::time::timeout(LIMIT, files::files(&dep, &p, size))
        .await
        .expect("files smoke finishes in time")
        .expect("files runs: every upload stored, every download identical");
    assert_eq!(run.verified, 4, "every file came back byte for byte");
    assert_eq!(run.messages, 4);
    assert_eq!(run.upload.bytes, 4 * size);
    assert_eq!(run.download.files, 4);
    assert!(run.upload.mib_per_s > 0.0 && run.download.mib_per_s > 0.0);
    assert!(run.upload_memory.is_none(), "in-process: nothing to sample");
    server.shutdown().await;

    let disk = tokio::time::timeout(LIMIT, files::disk_reference(None, 4, size, 16 * 1024))
        .await
        .expect("disk reference finishes in time")
        .expect("disk reference runs");
    let section = FilesReport {
        date: "today".into(),
        command: "smoke".into(),
        git_commit: "-".into(),
        runs: 1,
        params: p,
        machine: vec![("memory".into(), "1 kB".into())],
        loadavg_before: String::new(),
        loadavg_after: String::new(),
        duration_s: 1.0,
        standalone: true,
        results: vec![files::FilesResult {
            target: Target::Ours,
            uploads: 4,
            runs: vec![run],
        }],
        reference: vec![disk],
        failures: vec![],
    };
    let mut md = String::new();
    files_report::section(&mut md, &section);
    assert!(
        md.contains("## Attachments: 4 uploads and downloads at once"),
        "{md}"
    );
    assert!(
        md.contains("| chat-server (Rust) upload | 1.00 MiB |"),
        "{md}"
    );
    assert!(md.contains("| disk: copy | 1.00 MiB |"), "{md}");

    // Merging into the committed report changes nothing else in it.
    let out = TempDir::new(None, "chat-bench-smoke-merge").expect("temp dir");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::copy(
        docs.join("BENCHMARKS.json"),
        out.path().join("BENCHMARKS.json"),
    )
    .expect("copy BENCHMARKS.json");
    let mut before: chat_bench::report::ReportData = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("BENCHMARKS.json")).expect("read"),
    )
    .expect("BENCHMARKS.json parses");
    before.files = None;
    let before = chat_bench::report::markdown(&before);
    files_report::merge(section, out.path()).expect("merge");
    let after = std::fs::read_to_string(out.path().join("BENCHMARKS.md")).expect("read");
    assert!(after.contains("## Attachments"));
    let mut rest = after.lines();
    for line in before.lines() {
        assert!(
            rest.any(|l| l == line),
            "the merged report lost or changed a line: {line}"
        );
    }
}
