//! Limits under attack, against the real `chat-server` binary in a process of its own (so its
//! resident memory, read from `/proc/PID/status`, is the server's alone): a flood of sockets, a
//! flood of frames, a login flood (argon2 is the costly part) and huge payloads. Each test
//! asserts what holds whatever the machine's speed: typed refusals, closes with the documented
//! codes, memory within a bound far below what the flood would take unbounded, and a normal
//! client's message still delivered during the attack.
//!
//! `cargo test -p chat-server --test attack -- --ignored --nocapture measure` prints the numbers
//! quoted in docs/RELIABILITY.md (timings there are measurements, never assertions).

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use protocol::rest::AuthResponse;
use protocol::{ClientFrame, ErrorBody, ErrorCode, RoomId, ServerFrame};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

common::backend_tests!(
    socket_flood_is_cheap_and_others_are_served,
    frame_flood_is_cut_off_and_others_are_served,
    login_flood_gets_typed_refusals_and_bounded_memory,
    huge_payloads_are_refused_without_buffering,
    one_account_cannot_hold_unbounded_sockets,
);

const MIB: u64 = 1024 * 1024;

/// The `chat-server` binary, started with `CHAT_*` settings; killed on drop.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    base: String,
    ws_url: String,
    http: reqwest::Client,
    _redis: Option<RedisServer>,
}

impl ServerProcess {
    async fn start(backend: Backend, settings: &[(&str, &str)]) -> ServerProcess {
        let redis = match backend {
            Backend::Memory => None,
            Backend::Redis => Some(RedisServer::start().await),
            Backend::Cluster => unreachable!("the attack runs on the embedded store or one Redis"),
        };
        for _attempt in 0..3 {
            // Below the ephemeral range, so no outgoing connection holds it (see testkit).
            let port = testkit::free_port();
            // CHAT_SERVER_BIN: measure another build (e.g. release) than this test's.
            let bin = std::env::var("CHAT_SERVER_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_chat-server").to_string());
            let mut cmd = Command::new(bin);
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env(
                    "RUST_LOG",
                    std::env::var("CHAT_ATTACK_RUST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env("CHAT_LISTEN", format!("127.0.0.1:{port}"))
                .envs(settings.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(match std::env::var_os("CHAT_ATTACK_LOG_DIR") {
                    // For debugging a failure: the server's log per port.
                    Some(dir) => std::fs::File::create(
                        std::path::Path::new(&dir).join(format!("server-{port}.log")),
                    )
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                    None => Stdio::null(),
                });
            if let Some(r) = &redis {
                cmd.env("CHAT_REDIS_URL", &r.url);
            }
            let child = cmd.spawn().expect("spawn chat-server");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut server = ServerProcess {
                child,
                addr,
                base: format!("http://{addr}"),
                ws_url: format!("ws://{addr}/ws"),
                http: reqwest::Client::builder()
                    .timeout(HTTP_TIMEOUT)
                    .no_proxy()
                    .build()
                    .unwrap(),
                _redis: None,
            };
            if server.wait_healthy().await {
                server._redis = redis;
                return server;
            }
        }
        panic!("[{backend}] chat-server did not become healthy");
    }

    async fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited (port taken?)
            }
            let url = format!("{}/readyz", self.base);
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_secs(1), self.http.get(&url).send()).await
            {
                if r.status().is_success() {
                    return true;
                }
            }
            // Polling while the process starts.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Resident memory of the server process.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS")
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn register(&self, prefix: &str) -> AuthResponse {
        let name = unique_name(prefix);
        let resp = self
            .http
            .post(format!("{}/api/v1/register", self.base))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status().as_u16(), 201);
        resp.json().await.expect("AuthResponse")
    }

    async fn post(&self, token: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(serde_json::Value::Null)
    }

    /// Alice and bob in one room, each with a socket: the "normal client" of every test.
    async fn pair(&self) -> Pair {
        let alice = self.register("alice").await;
        let bob = self.register("bob").await;
        let room = self
            .post(
                &alice.token,
                "/api/v1/rooms",
                json!({"name": "normal life", "visibility": "public"}),
            )
            .await;
        let room = RoomId(room["id"].as_u64().expect("room id"));
        self.post(&bob.token, &format!("/api/v1/rooms/{room}/join"), json!({}))
            .await;
        let mut a = Ws::connect(&self.ws_url, "alice").await;
        a.hello(&alice.token, vec![]).await;
        let mut b = Ws::connect(&self.ws_url, "bob").await;
        b.hello(&bob.token, vec![]).await;
        Pair { a, b, room }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Pair {
    a: Ws,
    b: Ws,
    room: RoomId,
}

impl Pair {
    /// Alice says something; bob receives it. Returns the time it took (for the report).
    async fn exchange(&mut self) -> Duration {
        let started = Instant::now();
        let body = format!("still here {}", unique_id());
        let ack = self.a.say(self.room, &body).await;
        let events = self.b.events_until(self.room, ack.seq).await;
        let last = events.last().expect("an event");
        assert_eq!(message_of(last).1, body, "bob got alice's message");
        started.elapsed()
    }
}

/// The soft limit on open files of this (client) process, to size socket floods.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(1024)
}

/// Opens up to `n` sockets that never say hello.
async fn open_silent_sockets(url: &str, n: usize) -> Vec<Ws> {
    let mut out = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(50) {
        let batch = (n - chunk * 50).min(50);
        let opened = futures_util::future::join_all(
            (0..batch).map(|i| async move { Ws::connect(url, &format!("silent-{i}")).await }),
        )
        .await;
        out.extend(opened);
    }
    out
}

/// A thousand sockets from one client that never authenticate: a few KB each, all closed with
/// 4002 after `hello_timeout_secs`, and a normal pair keeps chatting meanwhile.
async fn socket_flood_is_cheap_and_others_are_served(backend: Backend) {
    let mut server = ServerProcess::start(
        backend,
        &[
            ("CHAT_HELLO_TIMEOUT_SECS", "3"),
            ("CHAT_LOGINS_PER_MIN", "600"),
        ],
    )
    .await;
    let mut pair = server.pair().await;
    pair.exchange().await;
    let before = server.rss();
    let n = 1000.min(open_files_limit().saturating_sub(200));
    let mut silent = open_silent_sockets(&server.ws_url, n).await;
    pair.exchange().await;
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown < n as u64 * 64 * 1024,
        "{n} idle sockets took {} KiB each",
        grown / 1024 / n as u64
    );
    for ws in &mut silent {
        ws.expect_close_code(protocol::close::AUTH_TIMEOUT).await;
    }
    pair.exchange().await;
    assert!(server.alive(), "the server process died");
}

fn plain_hello(token: &str) -> ClientFrame {
    ClientFrame::Hello {
        token: token.to_owned(),
        resume: vec![],
        epoch: None,
    }
}

/// One account opening socket after socket (a leaked token, a client stuck in a reconnect
/// loop): beyond `max_sockets_per_user` each is refused with `too_many_connections` and close
/// 4013, the sockets it has keep working, other users are not affected, and a closed socket
/// frees its place.
async fn one_account_cannot_hold_unbounded_sockets(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.max_sockets_per_user = 3).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice
        .api
        .create_room("capped", protocol::rest::Visibility::Public)
        .await
        .expect("create room");
    bob.api.join(room.id).await.expect("join");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(server.ws(&alice).await);
    }
    for _ in 0..5 {
        let mut extra = server.ws_raw().await;
        extra.send_frame(&plain_hello(&alice.token)).await;
        extra.expect_error_code(ErrorCode::TooManyConnections).await;
        extra
            .expect_close_code(protocol::close::TOO_MANY_CONNECTIONS)
            .await;
    }
    // Bob is not affected, and alice's sockets still get every message.
    let mut b = server.ws(&bob).await;
    bob.api.say(room.id, "still here?").await;
    for ws in &mut held {
        let events = ws.events_until(room.id, 3).await;
        assert_eq!(events.last().map(|e| e.seq), Some(3));
    }
    b.events_until(room.id, 3).await;
    // A closed socket frees its place (once the server has seen it go).
    drop(held.pop());
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut again = server.ws_raw().await;
        again.send_frame(&plain_hello(&alice.token)).await;
        match again.recv_frame().await {
            ServerFrame::Welcome { .. } => break,
            ServerFrame::Error {
                code: ErrorCode::TooManyConnections,
                ..
            } => {
                assert!(
                    Instant::now() < deadline,
                    "the closed socket's place was not freed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("expected welcome or too_many_connections, got {other:?}"),
        }
    }
}

/// Frames as fast as a client can write them: answered `rate_limited` beyond the burst, the
/// socket closed with 4029 after 100 refused frames in a row, and a normal pair unaffected.
async fn frame_flood_is_cut_off_and_others_are_served(backend: Backend) {
    // The default burst (100) and a refill of one frame per second: the cut-off (100 refused
    // frames in a row) then cannot be reset by a refill however slowly a loaded machine runs.
    let mut server = ServerProcess::start(
        backend,
        &[
            ("CHAT_LOGINS_PER_MIN", "600"),
            ("CHAT_FRAMES_PER_SEC", "1"),
            ("CHAT_FRAMES_BURST", "100"),
        ],
    )
    .await;
    let mut pair = server.pair().await;
    let flooder = server.register("flood").await;
    let report = frame_flood(&server.ws_url, &flooder.token, 50_000).await;
    assert_eq!(
        report.close,
        Some(protocol::close::RATE_LIMITED),
        "the flooder is cut off: {report:?}"
    );
    assert!(report.limited > 100, "{report:?}");
    assert_eq!(
        report.other_errors, 0,
        "only rate_limited refusals: {report:?}"
    );
    pair.exchange().await;
    // The flooder may come back (rate limits are per connection) and behave.
    let mut again = Ws::connect(&server.ws_url, "flooder again").await;
    again.hello(&flooder.token, vec![]).await;
    again.sync().await;
    pair.exchange().await;
    assert!(server.alive(), "the server process died");
}

#[derive(Debug, Default)]
struct FloodReport {
    sent: usize,
    pongs: usize,
    limited: usize,
    other_errors: usize,
    close: Option<u16>,
    /// How the socket ended when it ended without a close frame.
    ended: Option<String>,
    elapsed: Duration,
}

/// Sends up to `max` pings as fast as possible while reading the answers, until the server
/// closes the socket.
async fn frame_flood(url: &str, token: &str, max: usize) -> FloodReport {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let hello = serde_json::to_string(&plain_hello(token)).unwrap();
    tx.send(Message::text(hello)).await.unwrap();
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let ping = serde_json::to_string(&ClientFrame::Ping { reference: None }).unwrap();
        while counter.load(Ordering::Relaxed) < max
            && tx.send(Message::text(ping.clone())).await.is_ok()
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut report = FloodReport::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let next = match tokio::time::timeout_at(deadline, rx.next()).await {
            Ok(n) => n,
            Err(_) => panic!("the flood was neither answered nor cut off in 60 s: {report:?}"),
        };
        match next {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(t.as_str()) {
                Ok(ServerFrame::Pong { .. }) => report.pongs += 1,
                Ok(ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    retry_after_ms: Some(_),
                    ..
                }) => report.limited += 1,
                Ok(ServerFrame::Error { .. }) => report.other_errors += 1,
                _ => {}
            },
            Some(Ok(Message::Close(frame))) => {
                report.close = frame.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                report.ended = Some(e.to_string());
                break;
            }
            None => break,
        }
    }
    report.elapsed = started.elapsed();
    writer.abort();
    report.sent = sent.load(Ordering::Relaxed);
    report
}

#[derive(Debug, Default)]
struct LoginReport {
    ok: usize,
    invalid: usize,
    limited: usize,
    busy: usize,
    other: Vec<String>,
    peak_rss: u64,
    elapsed: Duration,
}

/// `n` wrong-password logins per source address, all at once, from `ips` loopback addresses.
async fn login_flood(server: &ServerProcess, victim: &str, ips: u8, n: usize) -> LoginReport {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ip in 0..ips {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 1, ip + 1));
        let http = reqwest::Client::builder()
            .local_address(local)
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap();
        for _ in 0..n {
            let (http, url, victim) = (
                http.clone(),
                format!("{}/api/v1/login", server.base),
                victim.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .json(&json!({"username": victim, "password": "wrong password!"}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let text = resp.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, text))
            }));
        }
    }
    let mut report = LoginReport::default();
    let mut pending = tasks;
    while !pending.is_empty() {
        report.peak_rss = report.peak_rss.max(server.rss());
        let (done, _, rest) = futures_util::future::select_all(pending).await;
        pending = rest;
        match done {
            Ok(Ok((200, _))) => report.ok += 1,
            Ok(Ok((status, text))) => match serde_json::from_str::<ErrorBody>(&text) {
                Ok(e) if e.code.http_status() != status => {
                    report.other.push(format!("{status} {text}"))
                }
                Ok(e) if e.code == ErrorCode::InvalidCredentials => report.invalid += 1,
                Ok(e) if e.code == ErrorCode::RateLimited && e.retry_after_ms.is_some() => {
                    report.limited += 1
                }
                Ok(e) if e.code == ErrorCode::ServerBusy => report.busy += 1,
                _ => report.other.push(format!("{status} {text}")),
            },
            Ok(Err(e)) => report.other.push(e),
            Err(e) => report.other.push(e.to_string()),
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// 20 addresses × 20 wrong-password logins at once on one account: the account's failed-login
/// budget (burst 10) is all that gets hashed, however many addresses guess, and the rest is
/// `rate_limited`; hashes beyond `max_concurrent_hashes` wait or get `server_busy`; memory
/// stays near 4 argon2 blocks instead of 400; the normal pair keeps chatting.
async fn login_flood_gets_typed_refusals_and_bounded_memory(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    let mut pair = server.pair().await;
    let victim = server.register("victim").await;
    let before = server.rss();
    let flood = login_flood(&server, &victim.user.username, 20, 20);
    let (report, _) = tokio::join!(flood, async {
        pair.exchange().await;
    });
    assert!(
        report.other.is_empty(),
        "untyped answers: {:?}",
        report.other
    );
    assert_eq!(report.ok, 0, "{report:?}");
    // Default: 30 per minute with a burst of 10 per address, and 10 failures per account.
    assert!(report.invalid + report.busy <= 10, "{report:?}");
    assert!(report.limited >= 20 * 20 - 10, "{report:?}");
    let grown = report.peak_rss.saturating_sub(before);
    assert!(
        grown < 200 * MIB,
        "a login flood took {} MiB (unbounded would be ~19 MiB per attempt)",
        grown / MIB
    );
    pair.exchange().await;
    assert!(server.alive(), "the server process died");
}

/// Writes `head`, then up to `body_bytes` of filler from another task while this one reads the
/// answer (the server may answer before the body is sent). Returns the response head and body.
async fn raw_http(addr: SocketAddr, head: &str, body_bytes: usize, chunked: bool) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await.expect("head");
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        let mut written = 0;
        while written < body_bytes {
            let result = if chunked {
                let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                c.extend_from_slice(&chunk);
                c.extend_from_slice(b"\r\n");
                wr.write_all(&c).await
            } else {
                wr.write_all(&chunk).await
            };
            if result.is_err() {
                return;
            }
            written += chunk.len();
        }
        // Keep the write half open: the body is "still coming".
        std::future::pending::<()>().await;
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + HTTP_TIMEOUT;
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + length {
                break;
            }
        }
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "no answer within {HTTP_TIMEOUT:?}: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    writer.abort();
    String::from_utf8_lossy(&out).into_owned()
}

/// A 256 MiB HTTP body (declared, and chunked without a length) and a 1 MiB socket frame:
/// refused with 413 `payload_too_large` and close 1009, without the server holding them.
async fn huge_payloads_are_refused_without_buffering(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[("CHAT_LOGINS_PER_MIN", "600")]).await;
    let mut pair = server.pair().await;
    // Registering hashes a password (19 MiB of argon2 memory): do it before measuring.
    let user = server.register("big").await;
    let before = server.rss();
    let declared = format!(
        "POST /api/v1/register HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        256 * MIB
    );
    let answer = raw_http(server.addr, &declared, 4 * MIB as usize, false).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    let chunked = "POST /api/v1/register HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let answer = raw_http(server.addr, chunked, 4 * MIB as usize, true).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    let mut big = Ws::connect(&server.ws_url, "big").await;
    big.hello(&user.token, vec![]).await;
    let _ = big.try_send_text(&"x".repeat(MIB as usize)).await;
    big.expect_close_code(protocol::close::TOO_BIG).await;

    let grown = server.rss().saturating_sub(before);
    assert!(grown < 16 * MIB, "huge payloads left {} MiB", grown / MIB);
    pair.exchange().await;
    assert!(server.alive(), "the server process died");
}

// ---------------------------------------------------------------------------------------------
// Measurements for the report (not run by default)
// ---------------------------------------------------------------------------------------------

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints measurements for docs/RELIABILITY.md; run with --ignored --nocapture"]
async fn measure() {
    let server = ServerProcess::start(
        Backend::Memory,
        &[
            ("CHAT_HELLO_TIMEOUT_SECS", "30"),
            ("CHAT_LOGINS_PER_MIN", "100000"),
        ],
    )
    .await;
    let mut pair = server.pair().await;
    let mut quiet = Vec::new();
    for _ in 0..20 {
        quiet.push(pair.exchange().await);
    }
    quiet.sort();
    println!("idle server RSS: {}", mib(server.rss()));
    println!(
        "normal exchange (alice -> bob), quiet: p50 {:?}, max {:?}",
        quiet[10], quiet[19]
    );

    // One account opening many sockets: up to max_sockets_per_user are kept.
    let user = server.register("many").await;
    let before = server.rss();
    let mut authed = Vec::new();
    let mut refused = 0;
    let m = 1000.min(open_files_limit().saturating_sub(300));
    let started = Instant::now();
    for i in 0..m {
        let mut ws = Ws::connect(&server.ws_url, &format!("authed-{i}")).await;
        ws.send_frame(&plain_hello(&user.token)).await;
        match ws.recv_frame().await {
            ServerFrame::Welcome { .. } => authed.push(ws),
            ServerFrame::Error {
                code: ErrorCode::TooManyConnections,
                ..
            } => refused += 1,
            other => panic!("expected welcome or too_many_connections, got {other:?}"),
        }
    }
    let took = started.elapsed();
    let after = server.rss();
    println!(
        "{m} sockets of one account in {took:?}: {} kept, {refused} refused (too_many_connections, 4013); RSS +{}; exchange meanwhile {:?}",
        authed.len(),
        mib(after.saturating_sub(before)),
        pair.exchange().await
    );
    drop(authed);

    // Sockets that never authenticate.
    let n = 2000.min(open_files_limit().saturating_sub(300));
    let before = server.rss();
    let started = Instant::now();
    let silent = open_silent_sockets(&server.ws_url, n).await;
    let took = started.elapsed();
    let during = pair.exchange().await;
    let after = server.rss();
    println!(
        "{n} silent sockets opened in {took:?}: RSS +{} ({:.1} KiB per socket); exchange meanwhile {during:?}",
        mib(after - before),
        (after - before) as f64 / 1024.0 / n as f64
    );
    drop(silent);

    // Frame flood.
    let flooder = server.register("flood").await;
    let flood = frame_flood(&server.ws_url, &flooder.token, 1_000_000);
    let (report, during) = tokio::join!(flood, pair.exchange());
    println!(
        "frame flood: {} frames written, {} answered pong, {} rate_limited, cut off with {:?} after {:?}; exchange meanwhile {during:?}",
        report.sent, report.pongs, report.limited, report.close, report.elapsed
    );

    // Login floods: one address, then 50 addresses, default limits.
    drop(server);
    let server = ServerProcess::start(Backend::Memory, &[]).await;
    let mut pair = server.pair().await;
    let victim = server.register("victim").await;
    for (ips, n) in [(1u8, 200usize), (50, 20)] {
        let before = server.rss();
        let flood = login_flood(&server, &victim.user.username, ips, n);
        let (report, during) = tokio::join!(flood, pair.exchange());
        println!(
            "login flood {ips} address(es) x {n}: {} invalid_credentials (hashed), {} rate_limited, {} server_busy, {} other, in {:?}; peak RSS +{}; exchange meanwhile {during:?}",
            report.invalid,
            report.limited,
            report.busy,
            report.other.len(),
            report.elapsed,
            mib(report.peak_rss.saturating_sub(before)),
        );
    }

    // Huge payloads.
    let before = server.rss();
    let started = Instant::now();
    let head = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        1024 * MIB
    );
    let answer = raw_http(server.addr, &head, 64 * MIB as usize, false).await;
    println!(
        "1 GiB declared HTTP body: answered {:?} in {:?}, RSS +{}",
        answer.lines().next().unwrap_or(""),
        started.elapsed(),
        mib(server.rss().saturating_sub(before))
    );
    let user = server.register("big").await;
    let mut big = Ws::connect(&server.ws_url, "big").await;
    big.hello(&user.token, vec![]).await;
    let started = Instant::now();
    let _ = big.try_send_text(&"x".repeat(64 * MIB as usize)).await;
    let closed = big.expect_close().await;
    println!(
        "64 MiB socket frame: {closed:?} in {:?}, RSS +{}; exchange after {:?}",
        started.elapsed(),
        mib(server.rss().saturating_sub(before)),
        pair.exchange().await
    );
}
