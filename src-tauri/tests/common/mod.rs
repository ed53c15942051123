//! Test harness for the desktop backend: a throwaway `redis-server`, a real chat server on a
//! fixed free port (so it can be restarted at the same address), backends on SQLite files in a
//! temp dir, an event sink that records what the UI would see, and a small REST client for
//! "the other user". Every wait has a timeout.
#![allow(dead_code)]

pub mod png;

use chat_desktop::backend::{EventSink, Options};
use chat_desktop::connection::{Backoff, Timing};
use chat_desktop::credentials::{MemoryTokens, TokenStore};
use chat_desktop::Backend;
use protocol::ipc::{AppEvent, ConnectionState, MessageStatus, MessageView};
use protocol::rest::{AuthResponse, HistoryPage, Room, SendAck, SendMessage, Visibility};
use protocol::{RoomId, UserId};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long any single wait may take (a loaded 2-core machine hashes passwords slowly).
pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const PASSWORD: &str = "correct horse battery staple";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique valid username.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{n}x{nanos:x}", std::process::id())
}

pub use testkit::free_port;

// ---------------------------------------------------------------------------------------------
// Redis and the chat server
// ---------------------------------------------------------------------------------------------

/// A private `redis-server`, killed on drop.
pub use testkit::RedisServer as Redis;

/// A chat server on a fixed address, so it can be stopped and started again there.
pub struct Server {
    pub addr: SocketAddr,
    redis_url: String,
    config: chat_server::Config,
    running: Option<chat_server::Running>,
    /// For built-in TLS: where `cert.pem` and `key.pem` are.
    tls_dir: Option<tempfile::TempDir>,
    /// For built-in TLS: the SHA-256 of the certificate served at start, as the app shows it.
    pub cert_sha256: Option<String>,
    /// The peers' REST client (trusting the test CA when the server speaks TLS).
    http: reqwest::Client,
}

impl Server {
    pub async fn start(redis: &Redis) -> Server {
        Server::start_with(redis, |_| {}).await
    }

    /// Starts with a tweaked config (e.g. a small `max_replay`).
    pub async fn start_with(redis: &Redis, tweak: impl FnOnce(&mut chat_server::Config)) -> Server {
        let mut config = chat_server::Config {
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            redis_url: Some(redis.url.clone()),
            shutdown_grace_secs: 2,
            logins_per_min: 1000,
            msgs_per_sec: 1000,
            msgs_burst: 1000,
            ..Default::default()
        };
        tweak(&mut config);
        let mut server = Server {
            addr: config.listen,
            redis_url: redis.url.clone(),
            config,
            running: None,
            tls_dir: None,
            cert_sha256: None,
            http: reqwest::Client::new(),
        };
        server.up().await;
        server
    }

    /// Serves https/wss itself (`tls_cert`/`tls_key`) with a certificate for 127.0.0.1 and
    /// localhost from `ca`; the peers' REST client trusts `ca`.
    pub async fn start_tls(redis: &Redis, ca: &TestCa) -> Server {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let leaf = ca.issue(&["127.0.0.1", "localhost"]);
        let (cert, key) = leaf.write(dir.path());
        let mut server = Server::start_with(redis, |c| {
            c.tls_cert = Some(cert);
            c.tls_key = Some(key);
        })
        .await;
        server.tls_dir = Some(dir);
        server.cert_sha256 = Some(sha256_of(&leaf));
        server.http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca.pem().as_bytes())
                    .unwrap_or_else(|e| panic!("CA PEM: {e}")),
            )
            .build()
            .unwrap_or_else(|e| panic!("reqwest client: {e}"));
        server
    }

    /// The running TLS server presents `leaf` to new connections from now on (the files are
    /// replaced and reloaded, as on SIGHUP).
    pub fn present(&self, leaf: &Leaf) {
        let dir = self
            .tls_dir
            .as_ref()
            .unwrap_or_else(|| panic!("not a TLS server"));
        leaf.write(dir.path());
        self.running
            .as_ref()
            .unwrap_or_else(|| panic!("not running"))
            .reload_tls()
            .unwrap_or_else(|e| panic!("reload_tls: {e}"));
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_dir.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// A REST client for this server (trusts its CA).
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The typed REST client for this server, without a session (trusts its CA).
    pub fn api(&self) -> chat_client::Client {
        let base = reqwest::Url::parse(&self.url()).unwrap_or_else(|e| panic!("server URL: {e}"));
        chat_client::Client::with_http(self.http.clone(), base)
            .unwrap_or_else(|e| panic!("server URL: {e}"))
    }

    /// Starts (again) at the same address.
    pub async fn up(&mut self) {
        assert!(self.running.is_none(), "already running");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match chat_server::start(self.config.clone()).await {
                Ok(running) => {
                    self.running = Some(running);
                    return;
                }
                // The port may still be held briefly by the previous instance's sockets.
                Err(e) if Instant::now() < deadline => {
                    tracing_note(&format!("server start failed, retrying: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("chat server did not start at {}: {e}", self.addr),
            }
        }
    }

    /// Graceful stop (sockets get "going away").
    pub async fn down(&mut self) {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(TIMEOUT, running.shutdown())
                .await
                .unwrap_or_else(|_| panic!("server shutdown took longer than {TIMEOUT:?}"));
        }
    }
}

fn tracing_note(msg: &str) {
    eprintln!("[test] {msg}");
}

// ---------------------------------------------------------------------------------------------
// The other user, over REST
// ---------------------------------------------------------------------------------------------

/// Another user talking to the server directly.
pub struct Peer {
    /// The typed REST client, as this peer's session.
    pub api: chat_client::Client,
    pub token: String,
    pub id: UserId,
    pub username: String,
}

impl Peer {
    pub async fn register(server: &Server, prefix: &str) -> Peer {
        let username = unique_name(prefix);
        let anon = server.api();
        let auth = ok(anon.register(&username, PASSWORD, None)).await;
        Peer::of(&anon, auth)
    }

    /// Logs in to an existing account (another device of that user).
    pub async fn login(server: &Server, username: &str) -> Peer {
        let anon = server.api();
        let auth = ok(anon.login(username, PASSWORD, None)).await;
        Peer::of(&anon, auth)
    }

    fn of(anon: &chat_client::Client, auth: AuthResponse) -> Peer {
        Peer {
            api: anon.with_token(&auth.token),
            token: auth.token,
            id: auth.user.id,
            username: auth.user.username,
        }
    }

    /// The HTTP status of `GET /api/v1/me` with this peer's token: 200 while its session
    /// lives, 401 once it was revoked.
    pub async fn me_status(&self) -> u16 {
        match within("GET /me", self.api.me()).await {
            Ok(_) => 200,
            Err(e) => e.status().unwrap_or_else(|| panic!("GET /me failed: {e}")),
        }
    }

    /// Revokes every session of this user except the one of this peer.
    pub async fn revoke_other_sessions(&self) {
        let sessions = ok(self.api.sessions()).await;
        for session in sessions.into_iter().filter(|s| !s.current) {
            ok(self.api.delete_session(&session.id)).await;
        }
    }

    pub async fn create_room(&self, name: &str, visibility: Visibility) -> Room {
        ok(self.api.create_room(name, visibility)).await
    }

    /// Invites `user` to a room this peer owns.
    pub async fn invite(&self, room: RoomId, user: UserId) {
        ok(self.api.invite(room, user)).await
    }

    pub async fn send(&self, room: RoomId, body: &str) -> SendAck {
        ok(self.api.send(room, &unique_name("m"), body)).await
    }

    /// Sends a message with extra fields (`reply_to`, `mentions`, ...).
    pub async fn send_with(&self, room: RoomId, body: &str, extra: Value) -> SendAck {
        let mut request = json!({"id": unique_name("m"), "body": body});
        if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
            request.extend(extra);
        }
        let message: SendMessage =
            serde_json::from_value(request).unwrap_or_else(|e| panic!("not a message: {e}"));
        ok(self.api.send_message(room, &message)).await
    }

    /// Adds (`PUT`) or takes back (`DELETE`) this peer's reaction; asserts success.
    pub async fn react(&self, room: RoomId, seq: u64, emoji: &str, add: bool) {
        ok(self.api.react(room, seq, emoji, add)).await
    }

    /// Deletes one of this peer's messages; asserts success.
    pub async fn delete(&self, room: RoomId, seq: u64) {
        ok(self.api.delete_message(room, seq)).await
    }

    /// The whole history of a room (up to 100 events), as the server has it.
    pub async fn history(&self, room: RoomId) -> HistoryPage {
        ok(self.api.history(room, None, None, Some(100))).await
    }

    /// Message bodies of a room, in order.
    pub async fn bodies(&self, room: RoomId) -> Vec<String> {
        self.history(room)
            .await
            .events
            .into_iter()
            .filter_map(|e| match e.event {
                protocol::EventBody::Message { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }
}

/// The answer of a REST call that must succeed within [`TIMEOUT`].
pub async fn ok<T>(call: impl std::future::Future<Output = chat_client::Result<T>>) -> T {
    tokio::time::timeout(TIMEOUT, call)
        .await
        .unwrap_or_else(|_| panic!("HTTP request took longer than {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("HTTP request failed: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The backend and what it tells the UI
// ---------------------------------------------------------------------------------------------

/// One thing the backend reported.
#[derive(Debug, Clone, PartialEq)]
// Most of what is seen is events; boxing them would only make the tests wordier.
#[allow(clippy::large_enum_variant)]
pub enum Seen {
    Event(AppEvent),
    Notification { title: String, body: String },
    Unread(u64),
}

/// Records reports into a channel.
pub struct ChannelSink(mpsc::UnboundedSender<Seen>);

impl EventSink for ChannelSink {
    fn emit(&self, event: AppEvent) {
        let _ = self.0.send(Seen::Event(event));
    }
    fn notify(&self, title: &str, body: &str) {
        let _ = self.0.send(Seen::Notification {
            title: title.to_owned(),
            body: body.to_owned(),
        });
    }
    fn unread_changed(&self, total: u64) {
        let _ = self.0.send(Seen::Unread(total));
    }
}

/// The receiving end: what the UI saw, with waits that time out.
pub struct Ui {
    rx: mpsc::UnboundedReceiver<Seen>,
    /// Everything received so far (also what `wait_for` skipped over).
    pub log: Arc<Mutex<Vec<Seen>>>,
}

impl Ui {
    /// Waits until a report matches `pick`; returns what `pick` extracted.
    pub async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Seen) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let seen = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(seen)) => seen,
                Ok(None) => panic!("the backend went away while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} within {TIMEOUT:?}; seen: {:#?}",
                    self.log.lock().map(|l| l.clone()).unwrap_or_default()
                ),
            };
            if let Ok(mut log) = self.log.lock() {
                log.push(seen.clone());
            }
            if let Some(v) = pick(&seen) {
                return v;
            }
        }
    }

    pub async fn wait_state(
        &mut self,
        what: &str,
        want: impl Fn(&ConnectionState) -> bool,
    ) -> ConnectionState {
        self.wait_for(what, |s| match s {
            Seen::Event(AppEvent::Connection { state }) if want(state) => Some(state.clone()),
            _ => None,
        })
        .await
    }

    pub async fn wait_online(&mut self) {
        self.wait_state("Online", |s| *s == ConnectionState::Online)
            .await;
    }

    /// Waits for a message event matching `pick`.
    pub async fn wait_message(
        &mut self,
        what: &str,
        want: impl Fn(&MessageView) -> bool,
    ) -> MessageView {
        self.wait_for(what, |s| match s {
            Seen::Event(AppEvent::Message { message }) if want(message) => Some(message.clone()),
            _ => None,
        })
        .await
    }

    /// Takes everything already reported without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        while let Ok(seen) = self.rx.try_recv() {
            if let Ok(mut log) = self.log.lock() {
                log.push(seen.clone());
            }
            out.push(seen);
        }
        out
    }
}

pub fn is_sent(m: &MessageView) -> bool {
    m.status == MessageStatus::Sent
}

/// Fast reconnects for tests.
pub fn fast_timing() -> Timing {
    Timing {
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(500),
        },
        ping_every: Duration::from_secs(25),
        connect_timeout: Duration::from_secs(5),
    }
}

/// A backend's home: its SQLite file and token store survive `open` after `open`.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub tokens: Arc<dyn TokenStore>,
    pub keep_per_room: u32,
    /// Reconnect pacing ([`fast_timing`] unless a test needs otherwise).
    pub timing: Timing,
}

impl Home {
    pub fn new() -> Home {
        Home::with_tokens(Arc::new(MemoryTokens::default()))
    }

    pub fn with_tokens(tokens: Arc<dyn TokenStore>) -> Home {
        Home {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}")),
            tokens,
            keep_per_room: 5000,
            timing: fast_timing(),
        }
    }

    /// A home whose app waits `wait` before every reconnect (unless told to reconnect now):
    /// for tests that act while the app is between connections.
    pub fn slow_to_reconnect(wait: Duration) -> Home {
        let mut home = Home::new();
        home.timing = Timing {
            backoff: Backoff {
                base: wait,
                cap: wait,
            },
            ..fast_timing()
        };
        home
    }

    pub fn cache_path(&self) -> PathBuf {
        self.dir.path().join("cache.sqlite3")
    }

    /// Opens a backend on this home (as the app does at start).
    pub async fn open(&self) -> (Backend, Ui) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut options = Options::new(self.cache_path());
        options.timing = self.timing;
        options.keep_per_room = self.keep_per_room;
        let backend = tokio::time::timeout(
            TIMEOUT,
            Backend::open(options, self.tokens.clone(), Arc::new(ChannelSink(tx))),
        )
        .await
        .unwrap_or_else(|_| panic!("Backend::open took longer than {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("Backend::open failed: {e}"));
        let ui = Ui {
            rx,
            log: Arc::new(Mutex::new(Vec::new())),
        };
        (backend, ui)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Opens a backend, points it at `server` and registers a new user; waits until online.
pub async fn signed_up(
    home: &Home,
    server: &Server,
    prefix: &str,
) -> (Backend, Ui, protocol::rest::User) {
    let (backend, mut ui) = home.open().await;
    within("set_server", backend.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server: {e}"));
    let user = within("register", backend.register(&unique_name(prefix), PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    ui.wait_online().await;
    (backend, ui, user)
}

/// "bob" registers and creates a public room `name`; the backend's user joins it.
pub async fn in_peers_room(backend: &Backend, server: &Server, name: &str) -> (Peer, Room) {
    let bob = Peer::register(server, "bob").await;
    let room = bob.create_room(name, Visibility::Public).await;
    within("join", backend.join_room(room.id))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"));
    (bob, room)
}

/// Awaits `f` with the standard timeout.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {TIMEOUT:?}"))
}

/// Message bodies of a page.
pub fn bodies(messages: &[MessageView]) -> Vec<String> {
    messages.iter().map(|m| m.body.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// A slow history route
// ---------------------------------------------------------------------------------------------

/// A TCP proxy in front of the server that holds history requests (`GET …/rooms/{r}/events`)
/// until [`SlowHistory::release`]: a server whose history route is slow. Everything else
/// passes through at once, the app's WebSocket included (after the upgrade its bytes are
/// masked frames, never a request line). It can also refuse the next history requests with a
/// 503 `store_unavailable` ([`SlowHistory::fail_next`]): a node that restarts under the app.
pub struct SlowHistory {
    pub addr: SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
    held: Arc<AtomicU64>,
    /// History requests still to refuse, and how many were refused.
    fail: Arc<(AtomicU64, AtomicU64)>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowHistory {
    /// Starts holding history requests to `upstream`.
    pub async fn start(upstream: SocketAddr) -> SlowHistory {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy addr: {e}"));
        let (open, _) = tokio::sync::watch::channel(false);
        let held = Arc::new(AtomicU64::new(0));
        let fail = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let task = {
            let open = open.clone();
            let held = held.clone();
            let fail = fail.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let hold = Hold {
                        open: open.subscribe(),
                        held: held.clone(),
                        fail: fail.clone(),
                    };
                    tokio::spawn(proxy_one(client, upstream, hold));
                }
            })
        };
        SlowHistory {
            addr,
            open,
            held,
            fail,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// History requests held so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits until a history request is being held.
    pub async fn wait_held(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.held() == 0 {
            assert!(
                Instant::now() < deadline,
                "no history request within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets held and later history requests through (also when none is held yet).
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Refuses the next `n` history requests with a 503 `store_unavailable`.
    pub fn fail_next(&self, n: u64) {
        self.fail.0.store(n, Ordering::SeqCst);
    }

    /// History requests refused so far.
    pub fn failed(&self) -> u64 {
        self.fail.1.load(Ordering::SeqCst)
    }
}

/// What one proxied connection does with history requests.
struct Hold {
    open: tokio::sync::watch::Receiver<bool>,
    held: Arc<AtomicU64>,
    fail: Arc<(AtomicU64, AtomicU64)>,
}

/// The answer to a refused history request: the protocol's error body.
const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    content-length: 65\r\nconnection: close\r\n\r\n\
    {\"code\":\"store_unavailable\",\"message\":\"the store is unavailable\"}";

impl Drop for SlowHistory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_one(mut client: tokio::net::TcpStream, upstream: SocketAddr, hold: Hold) {
    let Hold {
        mut open,
        held,
        fail,
    } = hold;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (refuse, refused) = tokio::sync::oneshot::channel::<()>();
    let mut refuse = Some(refuse);
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let line_end = chunk.iter().position(|b| *b == b'\n').unwrap_or(n);
            let line = &chunk[..line_end];
            let history =
                line.starts_with(b"GET /api/v1/rooms/") && line.windows(7).any(|w| w == b"/events");
            if history
                && fail
                    .0
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                fail.1.fetch_add(1, Ordering::SeqCst);
                if let Some(refuse) = refuse.take() {
                    let _ = refuse.send(());
                }
                break;
            }
            if history && !*open.borrow() {
                held.fetch_add(1, Ordering::SeqCst);
                while !*open.borrow_and_update() {
                    if open.changed().await.is_err() {
                        return;
                    }
                }
            }
            if to_server.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    };
    let down = async {
        tokio::select! {
            biased;
            // The request before has had its whole answer (no pipelining): answer this one.
            Ok(()) = refused => {
                let _ = to_client.write_all(UNAVAILABLE.as_bytes()).await;
            }
            _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}

// ---------------------------------------------------------------------------------------------
// Certificates for the server's built-in TLS
// ---------------------------------------------------------------------------------------------

pub use testkit::tls::{Leaf, TestCa};

/// The SHA-256 of a leaf as the app shows it (`AB:CD:…`).
pub fn sha256_of(leaf: &Leaf) -> String {
    chat_desktop::tls::format_fingerprint(&chat_desktop::tls::fingerprint(&leaf.der))
}
