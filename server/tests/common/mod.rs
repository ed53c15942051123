//! Test harness shared by the integration tests: a throwaway `redis-server`, an in-process chat
//! server on a free port, a typed HTTP client and a WebSocket client whose every wait has a
//! timeout.
//!
//! Every test binary does `mod common;` and uses only part of this file.
#![allow(dead_code, unused_macros)]

use chat_server::Config;
use futures_util::{SinkExt, StreamExt};
use protocol::event::EventBody;
use protocol::limits::Limits;
use protocol::rest::{AuthResponse, Room, SendAck, User, Visibility};
use protocol::ws::Cursor;
use protocol::{ClientFrame, ErrorBody, ErrorCode, RoomEvent, RoomId, ServerFrame, UserId};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait (a frame, a close, an HTTP answer, Redis startup) may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP requests include password hashing, which is slow on a loaded 2-core machine.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Test generation for both backends
// ---------------------------------------------------------------------------------------------

/// Generates `mod memory { #[tokio::test] fn name() }` and `mod redis { ... }` for each listed
/// `async fn name(backend: Backend)` of the calling file; with `cluster;` first, also
/// `mod cluster { ... }` (each test on a Redis Cluster of its own, see [`Backend::Cluster`]).
macro_rules! backend_tests {
    (cluster; $($name:ident),+ $(,)?) => {
        $crate::common::backend_tests!($($name),+);
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Cluster).await
                }
            )+
        }
    };
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Redis).await
                }
            )+
        }
    };
}
#[allow(unused_imports)] // not every test file uses it
pub(crate) use backend_tests;

// ---------------------------------------------------------------------------------------------
// Unique names
// ---------------------------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn entropy() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 over time, pid and a counter: distinct across tests, binaries and runs.
    let mut z = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn base36(mut n: u64, digits: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(digits);
    for _ in 0..digits {
        out.push(ALPHABET[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).unwrap()
}

/// A valid, unique, lower-case username: `<prefix>_<counter><random>` (at most 32 characters).
pub fn unique_name(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    let prefix = if prefix.is_empty() {
        "u".to_string()
    } else {
        prefix.to_ascii_lowercase()
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{n}{}", base36(entropy(), 6))
}

/// A unique, valid client message id.
pub fn unique_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("m{n}-{}", base36(entropy(), 10))
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

pub use testkit::cluster::RedisCluster;
pub use testkit::RedisServer;

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// A Redis Cluster of 3 masters (no replicas) started for the test (`redis_cluster`).
    Cluster,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
            Backend::Cluster => "cluster",
        })
    }
}

/// The configuration tests start from: port 0, no Redis, and rate limits high enough that
/// tests sending hundreds of frames are not throttled (tests of rate limiting lower them).
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis_url: None,
        msgs_per_sec: 10_000,
        msgs_burst: 10_000,
        frames_per_sec: 10_000,
        frames_burst: 10_000,
        rooms_per_hour: 10_000,
        dms_per_hour: 10_000,
        invites_per_hour: 10_000,
        ..Default::default()
    }
}

/// A running in-process server. Dropping it aborts the server (and then stops its Redis if
/// no other server uses it).
pub struct TestServer {
    running: Option<chat_server::Running>,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `ws://127.0.0.1:PORT/ws`
    pub ws_url: String,
    pub limits: Limits,
    pub backend: Backend,
    pub redis: Option<Arc<RedisServer>>,
    /// The cluster of a [`Backend::Cluster`] server.
    pub cluster: Option<Arc<RedisCluster>>,
    http: reqwest::Client,
    /// Client TLS settings when the server serves TLS (see [`TestServer::start_tls`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl TestServer {
    /// Starts a server on `backend` with [`test_config`].
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server on `backend` with [`test_config`] changed by `configure`. For
    /// [`Backend::Redis`] a fresh redis-server is started for it.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
        let redis = match backend {
            Backend::Memory | Backend::Cluster => None,
            Backend::Redis => Some(Arc::new(RedisServer::start().await)),
        };
        if backend == Backend::Cluster {
            let cluster = Arc::new(RedisCluster::start(3, 0).await);
            return Self::start_on_cluster(&cluster, configure).await;
        }
        Self::start_config(backend, redis, configure).await
    }

    /// Starts a server on an existing Redis Cluster (several nodes share it).
    pub async fn start_on_cluster(
        cluster: &Arc<RedisCluster>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut server = Self::start_config(Backend::Cluster, None, |c| {
            c.redis_cluster = cluster.urls();
            configure(c);
        })
        .await;
        server.cluster = Some(cluster.clone());
        server
    }

    /// Starts a server on an existing Redis (several nodes, or a restart).
    pub async fn start_on_redis(
        redis: &Arc<RedisServer>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_config(Backend::Redis, Some(redis.clone()), configure).await
    }

    /// Starts a server on `backend` that serves TLS with a certificate for 127.0.0.1 from
    /// `ca`, written to `dir`; its clients trust only `ca`.
    pub async fn start_tls(
        backend: Backend,
        ca: &testkit::tls::TestCa,
        dir: &std::path::Path,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir);
        Self::start_with(backend, |c| {
            c.tls_cert = Some(cert);
            c.tls_key = Some(key);
            configure(c);
        })
        .await
        .trusting(ca)
    }

    /// This server's clients trust `ca` only (and speak https/wss).
    pub fn trusting(mut self, ca: &testkit::tls::TestCa) -> TestServer {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.der()))
            .expect("test CA is a valid trust anchor");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA PEM"),
            )
            .https_only(true)
            .build()
            .expect("reqwest client");
        self.base = format!("https://{}", self.addr);
        self.ws_url = format!("wss://{}/ws", self.addr);
        self.tls = Some(Arc::new(config));
        self
    }

    async fn start_config(
        backend: Backend,
        redis: Option<Arc<RedisServer>>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = test_config();
        config.redis_url = redis.as_ref().map(|r| r.url.clone());
        configure(&mut config);
        let limits = config.limits.clone();
        let running = tokio::time::timeout(Duration::from_secs(15), chat_server::start(config))
            .await
            .unwrap_or_else(|_| panic!("[{backend}] chat_server::start did not finish within 15 s"))
            .unwrap_or_else(|e| panic!("[{backend}] chat_server::start failed: {e}"));
        let addr = running.addr();
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .no_proxy()
            .build()
            .expect("reqwest client");
        TestServer {
            running: Some(running),
            addr,
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/ws"),
            limits,
            backend,
            redis,
            cluster: None,
            http,
            tls: None,
        }
    }

    /// The running server (e.g. to reload its TLS certificate).
    pub fn running(&self) -> &chat_server::Running {
        self.running.as_ref().expect("server is running")
    }

    /// Graceful shutdown (sockets get close code 1001).
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// The server's shared state (its store, for tests that set up data directly; test hooks).
    pub fn state(&self) -> &chat_server::AppState {
        self.running.as_ref().expect("server running").state()
    }

    /// Crash-like stop.
    pub fn abort(mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }

    /// The metrics listener's address (when `metrics_listen` was set).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.metrics_addr())
    }

    /// An HTTP client without a token.
    pub fn api(&self) -> Api {
        let base = reqwest::Url::parse(&self.base).expect("server URL");
        Api::with_http(self.http.clone(), base)
            .expect("server URL is a base")
            .strict()
    }

    /// An HTTP client with `token`.
    pub fn api_with(&self, token: &str) -> Api {
        self.api().with_token(token)
    }

    /// Registers a new user with a unique name starting with `prefix` (device "test").
    pub async fn user(&self, prefix: &str) -> TestUser {
        self.user_on_device(prefix, "test").await
    }

    pub async fn user_on_device(&self, prefix: &str, device: &str) -> TestUser {
        let name = unique_name(prefix);
        let auth = self
            .api()
            .register(&name, PASSWORD, Some(device))
            .await
            .unwrap_or_else(|e| panic!("[{}] registering {name}: {e}", self.backend));
        assert_eq!(auth.user.username, name);
        self.test_user(auth)
    }

    /// Logs `user` in again: a second session ("device") of the same account.
    pub async fn login(&self, user: &TestUser, device: &str) -> TestUser {
        let auth = self
            .api()
            .login(&user.name, &user.password, Some(device))
            .await
            .unwrap_or_else(|e| panic!("[{}] logging in {}: {e}", self.backend, user.name));
        assert_eq!(auth.user.id, user.id);
        self.test_user(auth)
    }

    fn test_user(&self, auth: AuthResponse) -> TestUser {
        TestUser {
            id: auth.user.id,
            name: auth.user.username.clone(),
            password: PASSWORD.to_string(),
            api: self.api_with(&auth.token),
            token: auth.token,
            session_id: auth.session_id,
        }
    }

    /// Opens a socket (no hello yet).
    pub async fn ws_raw(&self) -> Ws {
        Ws::connect_tls(&self.ws_url, "ws", self.tls.clone()).await
    }

    /// Opens a socket and completes `hello` (no resume). The Welcome is in `ws.welcome`.
    pub async fn ws(&self, user: &TestUser) -> Ws {
        let mut ws = Ws::connect_tls(&self.ws_url, &user.name, self.tls.clone()).await;
        let replay = ws.hello(&user.token, vec![]).await;
        assert!(
            replay.is_empty(),
            "[{}] replay without resume cursors: {replay:?}",
            user.name
        );
        ws
    }

    /// Opens a socket and sends `hello` with `resume`; returns the socket and the frames
    /// between Welcome and Ready.
    pub async fn ws_resume(&self, user: &TestUser, resume: Vec<Cursor>) -> (Ws, Vec<ServerFrame>) {
        let mut ws = Ws::connect_tls(&self.ws_url, &user.name, self.tls.clone()).await;
        let replay = ws.hello(&user.token, resume).await;
        (ws, replay)
    }

    /// The underlying HTTP client (for hand-made requests).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Raw HTTP GET, for endpoints without a typed helper.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

/// A registered user with one session.
#[derive(Clone)]
pub struct TestUser {
    pub id: UserId,
    pub name: String,
    pub password: String,
    pub token: String,
    pub session_id: String,
    /// HTTP client carrying this session's token.
    pub api: Api,
}

impl TestUser {
    /// This user's HTTP client against another node.
    pub fn api_on(&self, server: &TestServer) -> Api {
        server.api_with(&self.token)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// The typed REST client (crate `chat-client`); the test servers hand out strict ones, so a
/// success with another status than the documented one fails the call too.
pub use chat_client::Client as Api;

/// A failed call: `status()`, `code()` and `body()` say how the server refused.
pub type ApiError = chat_client::Error;

pub type ApiResult<T> = Result<T, ApiError>;

/// `result.expect_code(ErrorCode::X)`: asserts the call failed with code X and its HTTP status.
pub trait ExpectCode {
    fn expect_code(self, code: ErrorCode) -> ApiError;
}

impl<T: fmt::Debug> ExpectCode for ApiResult<T> {
    #[track_caller]
    fn expect_code(self, code: ErrorCode) -> ApiError {
        match self {
            Ok(v) => panic!(
                "expected error {code} ({}), but the call succeeded with {v:?}",
                code.http_status()
            ),
            Err(e) => {
                assert_eq!(e.code(), Some(code), "wrong error code: {e}");
                assert_eq!(
                    e.status(),
                    Some(code.http_status()),
                    "wrong HTTP status for {code}: {e}"
                );
                e
            }
        }
    }
}

/// What the tests add to the client: requests no well-behaved client sends, and shorthands
/// that panic on failure.
#[allow(async_fn_in_trait)] // used only here, on one runtime
pub trait ApiExt {
    /// Sends a request as it is; returns status and body text. Panics only on transport
    /// errors.
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<RawBody>,
    ) -> (u16, String);

    /// Sends `body` with a fresh client id.
    async fn say(&self, room: RoomId, body: &str) -> SendAck;

    /// The caller's entry for `room` in `GET /api/v1/rooms`.
    async fn my_room(&self, room: RoomId) -> Room;
}

impl ApiExt for Api {
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<RawBody>,
    ) -> (u16, String) {
        let mut req = self.request(method.clone(), path);
        match body {
            Some(RawBody::Json(v)) => req = req.json(&v),
            Some(RawBody::Text(t)) => req = req.header("content-type", "application/json").body(t),
            None => {}
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: transport error: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading body: {e}"));
        (status, text)
    }

    async fn say(&self, room: RoomId, body: &str) -> SendAck {
        self.send(room, &unique_id(), body)
            .await
            .unwrap_or_else(|e| panic!("sending {body:?}: {e}"))
    }

    async fn my_room(&self, room: RoomId) -> Room {
        let rooms = self
            .my_rooms()
            .await
            .unwrap_or_else(|e| panic!("listing rooms: {e}"));
        rooms
            .iter()
            .find(|r| r.id == room)
            .cloned()
            .unwrap_or_else(|| panic!("room {room} missing from my rooms: {rooms:?}"))
    }
}

/// Asserts a raw answer is the refusal `code`: its status and its error body.
#[track_caller]
pub fn assert_refused(status: u16, text: &str, code: ErrorCode) {
    let body: ErrorBody = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("HTTP {status}: not an error body ({e}): {text}"));
    assert_eq!(
        (status, body.code),
        (code.http_status(), code),
        "wrong refusal: {text}"
    );
}

/// A request body for [`ApiExt::raw`].
pub enum RawBody {
    Json(Value),
    /// Sent verbatim with `content-type: application/json` (for malformed bodies).
    Text(String),
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

type WsStream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The contents of a `welcome` frame.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub protocol: u32,
    pub user: User,
    pub session_id: String,
    pub rooms: Vec<Room>,
    pub limits: Limits,
    pub epoch: String,
}

/// An `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<String>,
    pub room: Option<RoomId>,
    pub id: Option<String>,
    pub retry_after_ms: Option<u64>,
}

impl WsError {
    pub fn from_frame(frame: &ServerFrame) -> Option<WsError> {
        match frame {
            ServerFrame::Error {
                code,
                message,
                reference,
                room,
                id,
                retry_after_ms,
            } => Some(WsError {
                code: *code,
                message: message.clone(),
                reference: reference.clone(),
                room: *room,
                id: id.clone(),
                retry_after_ms: *retry_after_ms,
            }),
            _ => None,
        }
    }
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// A close frame without a code.
    NoCode,
    /// The connection ended without a close frame (EOF or reset).
    Dropped(String),
}

/// A WebSocket client. Frames that arrive while a helper waits for a different one are kept
/// in `pending` (in arrival order) and are seen by later waits, so nothing is lost or skipped
/// silently.
pub struct Ws {
    stream: WsStream,
    pub label: String,
    pub pending: VecDeque<ServerFrame>,
    pub welcome: Option<Welcome>,
    closed: bool,
}

impl Ws {
    /// Connects (no hello). Panics if the upgrade fails.
    pub async fn connect(url: &str, label: &str) -> Ws {
        Self::connect_tls(url, label, None).await
    }

    /// [`Ws::connect`], over TLS with `tls` for `wss://` URLs.
    pub async fn connect_tls(url: &str, label: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Ws {
        Self::try_connect_tls(url, label, None, tls)
            .await
            .unwrap_or_else(|e| panic!("[{label}] connecting to {url}: {e}"))
    }

    /// Connects with an optional `Origin` header; returns the handshake error (e.g. an HTTP 403).
    pub async fn try_connect(
        url: &str,
        label: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        Self::try_connect_tls(url, label, origin, None).await
    }

    /// [`Ws::try_connect`] with client TLS settings for `wss://`.
    pub async fn try_connect_tls(
        url: &str,
        label: &str,
        origin: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Ws, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert(
                "origin",
                HeaderValue::from_str(origin).expect("origin header value"),
            );
        }
        let (stream, _response) = tokio::time::timeout(
            TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(
                request,
                None,
                false,
                tls.map(tokio_tungstenite::Connector::Rustls),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("[{label}] websocket handshake with {url} timed out"))?;
        Ok(Ws {
            stream,
            label: label.to_string(),
            pending: VecDeque::new(),
            welcome: None,
            closed: false,
        })
    }

    // --- sending ---

    pub async fn send_message(&mut self, msg: Message) {
        let label = self.label.clone();
        tokio::time::timeout(TIMEOUT, self.stream.send(msg))
            .await
            .unwrap_or_else(|_| panic!("[{label}] sending a websocket message timed out"))
            .unwrap_or_else(|e| panic!("[{label}] sending a websocket message failed: {e}"));
    }

    /// Sends text; returns the error instead of panicking (for frames the server may refuse
    /// by closing the connection).
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        match tokio::time::timeout(TIMEOUT, self.stream.send(Message::text(text.to_string()))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    pub async fn send_frame(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).expect("serialize ClientFrame");
        self.send_message(Message::text(text)).await;
    }

    /// Sends arbitrary text (for malformed frames).
    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text.to_string())).await;
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) {
        self.send_message(Message::binary(data)).await;
    }

    // --- receiving ---

    async fn read_frame(&mut self, deadline: Instant, what: &str) -> ServerFrame {
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(next) => next,
                Err(_) => panic!(
                    "[{}] timed out after {TIMEOUT:?} waiting for {what}; frames received but not consumed: {:#?}",
                    self.label, self.pending
                ),
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str::<ServerFrame>(text.as_str()).unwrap_or_else(
                        |e| {
                            panic!(
                                "[{}] server sent a frame that is not a ServerFrame ({e}): {text}",
                                self.label
                            )
                        },
                    );
                }
                Some(Ok(Message::Binary(b))) => panic!(
                    "[{}] server sent a binary frame ({} bytes)",
                    self.label,
                    b.len()
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    panic!(
                        "[{}] server closed the socket ({:?}) while waiting for {what}; unconsumed frames: {:#?}",
                        self.label, frame, self.pending
                    )
                }
                Some(Err(e)) => panic!(
                    "[{}] socket error while waiting for {what}: {e}; unconsumed frames: {:#?}",
                    self.label, self.pending
                ),
                None => panic!(
                    "[{}] socket ended while waiting for {what}; unconsumed frames: {:#?}",
                    self.label, self.pending
                ),
            }
        }
    }

    /// The next frame in arrival order (pending ones first).
    pub async fn recv_frame(&mut self) -> ServerFrame {
        if let Some(f) = self.pending.pop_front() {
            return f;
        }
        self.read_frame(Instant::now() + TIMEOUT, "any frame").await
    }

    /// The first frame (in arrival order) matching `pred`; other frames stay pending.
    pub async fn take(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&ServerFrame) -> bool,
    ) -> ServerFrame {
        if let Some(i) = self.pending.iter().position(&mut pred) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let frame = self.read_frame(deadline, what).await;
            if pred(&frame) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Frames (in arrival order, pending first) until and including the first matching `pred`.
    pub async fn collect_until(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&ServerFrame) -> bool,
    ) -> Vec<ServerFrame> {
        let mut out = Vec::new();
        while let Some(f) = self.pending.pop_front() {
            let done = pred(&f);
            out.push(f);
            if done {
                return out;
            }
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let frame = self.read_frame(deadline, what).await;
            let done = pred(&frame);
            out.push(frame);
            if done {
                return out;
            }
        }
    }

    /// The next room event (other frames stay pending).
    pub async fn expect_event(&mut self) -> RoomEvent {
        match self
            .take("an event", |f| matches!(f, ServerFrame::Event(_)))
            .await
        {
            ServerFrame::Event(ev) => ev,
            _ => unreachable!(),
        }
    }

    /// The next `n` room events in arrival order.
    pub async fn expect_events(&mut self, n: usize) -> Vec<RoomEvent> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.expect_event().await);
        }
        out
    }

    /// Events of `room` in arrival order until one with `seq >= until` (inclusive).
    pub async fn events_until(&mut self, room: RoomId, until: u64) -> Vec<RoomEvent> {
        let mut out = Vec::new();
        loop {
            let what = format!("event of room {room} with seq >= {until}");
            let ev = match self
                .take(
                    &what,
                    |f| matches!(f, ServerFrame::Event(e) if e.room == room),
                )
                .await
            {
                ServerFrame::Event(ev) => ev,
                _ => unreachable!(),
            };
            let seq = ev.seq;
            out.push(ev);
            if seq >= until {
                return out;
            }
        }
    }

    /// The next event, asserted to be a message; returns (event, client id, body).
    pub async fn expect_message(&mut self) -> (RoomEvent, String, String) {
        let ev = self.expect_event().await;
        match &ev.event {
            EventBody::Message { id, body, .. } => {
                let (id, body) = (id.clone(), body.clone());
                (ev, id, body)
            }
            other => panic!("[{}] expected a message event, got {other:?}", self.label),
        }
    }

    /// The next `error` frame.
    pub async fn expect_error(&mut self) -> WsError {
        let frame = self
            .take("an error frame", |f| matches!(f, ServerFrame::Error { .. }))
            .await;
        WsError::from_frame(&frame).unwrap()
    }

    /// The next `error` frame, asserted to carry `code`.
    pub async fn expect_error_code(&mut self, code: ErrorCode) -> WsError {
        let err = self.expect_error().await;
        assert_eq!(err.code, code, "[{}] wrong error code: {err:?}", self.label);
        err
    }

    /// Sends a `ping` with a fresh ref and waits for its `pong`. Because frames are ordered per
    /// connection, everything the server queued for this socket before handling the ping has
    /// arrived by then. Returns (and clears) every unconsumed frame.
    pub async fn sync(&mut self) -> Vec<ServerFrame> {
        let reference = unique_id();
        self.send_frame(&ClientFrame::Ping {
            reference: Some(reference.clone()),
        })
        .await;
        self.take(
            "pong",
            |f| matches!(f, ServerFrame::Pong { reference: Some(r) } if *r == reference),
        )
        .await;
        self.pending.drain(..).collect()
    }

    /// [`Ws::sync`], then asserts no unconsumed room event is left.
    pub async fn assert_no_more_events(&mut self) {
        let label = self.label.clone();
        let events: Vec<_> = self
            .sync()
            .await
            .into_iter()
            .filter(|f| matches!(f, ServerFrame::Event(_)))
            .collect();
        assert!(
            events.is_empty(),
            "[{label}] unexpected extra events: {events:#?}"
        );
    }

    /// Authenticates. Asserts Welcome comes first and Ready follows; returns the frames in
    /// between that are events or gaps (the replay). Other frames in between stay pending.
    pub async fn hello(&mut self, token: &str, resume: Vec<Cursor>) -> Vec<ServerFrame> {
        self.hello_in(token, resume, None).await
    }

    /// [`Ws::hello`] with the `epoch` the cursors were taken under.
    pub async fn hello_in(
        &mut self,
        token: &str,
        resume: Vec<Cursor>,
        epoch: Option<String>,
    ) -> Vec<ServerFrame> {
        self.send_frame(&ClientFrame::Hello {
            token: token.to_string(),
            resume,
            epoch,
        })
        .await;
        let first = self.read_frame(Instant::now() + TIMEOUT, "welcome").await;
        let welcome = match first {
            ServerFrame::Welcome {
                protocol,
                user,
                session_id,
                rooms,
                limits,
                epoch,
            } => Welcome {
                protocol,
                user,
                session_id,
                rooms,
                limits,
                epoch,
            },
            other => panic!(
                "[{}] expected welcome as the first frame after hello, got {other:?}",
                self.label
            ),
        };
        assert_eq!(welcome.protocol, protocol::PROTOCOL_VERSION);
        self.welcome = Some(welcome);
        let mut replay = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.read_frame(deadline, "ready").await {
                ServerFrame::Ready => return replay,
                f @ (ServerFrame::Event(_) | ServerFrame::Gap { .. }) => replay.push(f),
                other => self.pending.push_back(other),
            }
        }
    }

    /// Sends a message with client id `id`; returns the ack (panics on an error frame for it).
    pub async fn send_with_id(&mut self, room: RoomId, id: &str, body: &str) -> SendAck {
        self.send_frame(&ClientFrame::Send {
            room,
            id: id.to_string(),
            body: body.to_string(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
        self.await_ack(room, id)
            .await
            .unwrap_or_else(|e| panic!("sending {id} to room {room}: {e:?}"))
    }

    /// Sends a message with a fresh client id; returns the ack.
    pub async fn say(&mut self, room: RoomId, body: &str) -> SendAck {
        self.send_with_id(room, &unique_id(), body).await
    }

    /// Waits for the ack (or error) answering the send of `id` to `room`.
    /// Sends a message and waits for its ack, sending it again with the same id while the
    /// store answers `store_unavailable` (as a client does across a store outage, a failover
    /// or a slot move), for at most [`HTTP_TIMEOUT`].
    pub async fn send_retrying(&mut self, room: RoomId, id: &str, body: &str) -> SendAck {
        let deadline = Instant::now() + HTTP_TIMEOUT;
        loop {
            self.send_frame(&ClientFrame::Send {
                room,
                id: id.to_string(),
                body: body.to_string(),
                reply_to: None,
                mentions: vec![],
                mention_room: false,
                attachments: Vec::new(),
            })
            .await;
            match self.await_ack(room, id).await {
                Ok(ack) => return ack,
                Err(e) if e.code == ErrorCode::StoreUnavailable && Instant::now() < deadline => {
                    // The client's retry interval, not a settle sleep.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("[{}] sending {id} to room {room}: {e:?}", self.label),
            }
        }
    }

    pub async fn await_ack(&mut self, room: RoomId, id: &str) -> Result<SendAck, WsError> {
        let what = format!("ack for {id}");
        let frame = self
            .take(&what, |f| match f {
                ServerFrame::Ack(a) => a.room == room && a.id == id,
                ServerFrame::Error { id: Some(eid), .. } => eid == id,
                _ => false,
            })
            .await;
        match frame {
            ServerFrame::Ack(ack) => Ok(ack),
            other => Err(WsError::from_frame(&other).unwrap()),
        }
    }

    /// Waits until the socket ends; text frames read meanwhile are kept in `pending`.
    pub async fn expect_close(&mut self) -> Closed {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(n) => n,
                Err(_) => panic!(
                    "[{}] timed out waiting for the socket to close; unconsumed frames: {:#?}",
                    self.label, self.pending
                ),
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(f) = serde_json::from_str::<ServerFrame>(text.as_str()) {
                        self.pending.push_back(f);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    return match frame {
                        Some(CloseFrame { code, .. }) => Closed::Code(u16::from(code)),
                        None => Closed::NoCode,
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.closed = true;
                    return Closed::Dropped(e.to_string());
                }
                None => {
                    self.closed = true;
                    return Closed::Dropped("end of stream".into());
                }
            }
        }
    }

    /// Asserts the socket is closed with `code`.
    pub async fn expect_close_code(&mut self, code: u16) {
        let closed = self.expect_close().await;
        assert_eq!(
            closed,
            Closed::Code(code),
            "[{}] wrong close; frames before it: {:#?}",
            self.label,
            self.pending
        );
    }

    /// Closes the socket from the client side and waits for the close handshake to finish.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(TIMEOUT, self.stream.close(None)).await;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!(
                    "[{}] the server did not finish the close handshake",
                    self.label
                ),
                Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub fn welcome(&self) -> &Welcome {
        self.welcome.as_ref().expect("hello not done")
    }
}

// ---------------------------------------------------------------------------------------------
// Small assertion helpers
// ---------------------------------------------------------------------------------------------

/// Asserts `events` are consecutive seqs starting at `first`.
#[track_caller]
pub fn assert_consecutive(events: &[RoomEvent], first: u64) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (first..first + events.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "events are not consecutive from seq {first}"
    );
}

/// The client id and body of a message event.
#[track_caller]
pub fn message_of(ev: &RoomEvent) -> (&str, &str) {
    match &ev.event {
        EventBody::Message { id, body, .. } => (id, body),
        other => panic!("expected a message event at seq {}, got {other:?}", ev.seq),
    }
}

/// Creates a public room owned by `owner` and has each of `others` join it.
pub async fn shared_room(owner: &TestUser, others: &[&TestUser]) -> Room {
    let room = owner
        .api
        .create_room(&format!("room {}", unique_id()), Visibility::Public)
        .await
        .unwrap_or_else(|e| panic!("create room: {e}"));
    for u in others {
        u.api
            .join(room.id)
            .await
            .unwrap_or_else(|e| panic!("{} joining room {}: {e}", u.name, room.id));
    }
    room
}

/// Seq of the newest event of `room` as `user` sees it.
pub async fn last_seq(api: &Api, room: RoomId) -> u64 {
    api.get_room(room)
        .await
        .unwrap_or_else(|e| panic!("get room {room}: {e}"))
        .last_seq
}
