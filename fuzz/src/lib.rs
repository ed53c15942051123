//! Fuzz targets as plain functions, so libFuzzer (`fuzz_targets/`, driven by `cargo fuzz`) and a
//! stable `cargo test` (`tests/replay.rs`) run exactly the same code.
//!
//! - [`decode`]: the protocol decoder. Any bytes through the `ClientFrame`/`ServerFrame` JSON
//!   decoders, the REST bodies and the validation rules: never a panic, and whatever decodes
//!   survives a serialize → decode round trip unchanged.
//! - [`frames`]: socket frames through a real server (embedded store, `127.0.0.1:0`, started once
//!   per process) over a real WebSocket: the server's own frame handling, authentication, resume
//!   and delivery code, not a copy of it.
//! - [`rest`]: HTTP requests through the server's real router (`chat_server::app`), in process.
//! - [`markdown`]: the desktop's Markdown renderer (`markup::parse`, what the UI draws): never a
//!   panic, and the tree holds only allowed elements, links only to allowed targets, bounded
//!   nesting (`markup::audit`).
//!
//! The oracles (a violation panics, which libFuzzer reports as a crash and saves the input):
//! no panic anywhere in the server (a panic hook flags panics in spawned tasks too); every frame
//! the server sends decodes as a `ServerFrame`; no `internal`/`store_unavailable` error and no
//! 5xx status; every HTTP error body is an `ErrorBody` whose code maps to the status sent; no
//! socket close with 1011; every input answered within [`ANSWER_WITHIN`]; and the fuzzing user
//! never sees anything of a private room she is not in (its name, its messages, its events).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request};
use futures_util::{SinkExt, StreamExt};
use protocol::rest::{
    Credentials, EditMessage, HistoryQuery, Invite, OpenDm, ReadMarker, SendMessage, Visibility,
};
use protocol::{validate, ClientFrame, ErrorBody, ErrorCode, RoomId, ServerFrame, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

/// How long the server may take to answer one fuzz input before it counts as hung (generous:
/// a login hashes a password, slow in a debug build on a loaded machine).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// Most frames taken from one input (inputs are split on `\n`).
const MAX_FRAMES: usize = 64;
/// Stands for the fuzzing user's token in an input, so a `hello` can authenticate.
pub const TOKEN_PLACEHOLDER: &str = "$TOKEN";

// ---------------------------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------------------------

/// Decodes `text` as `T`; whatever decodes must encode, and decode back to the same value.
fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> Option<T> {
    let value: T = serde_json::from_str(text).ok()?;
    let json = serde_json::to_value(&value).expect("a decoded value encodes");
    let back: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{json} does not decode again: {e}"));
    let again = serde_json::to_value(&back).expect("a decoded value encodes");
    assert_eq!(again, json, "a round trip changed the value");
    Some(value)
}

/// Message text through the Markdown renderer and its plain-text form.
pub fn markdown(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let nodes = markup::parse(text);
    if let Err(e) = markup::audit(&nodes) {
        panic!("rendered tree breaks the rules: {e}; input {text:?}");
    }
    let _ = markup::plain_text(text);
}

/// The protocol decoder: frames both ways, REST bodies, validation rules.
pub fn decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let max = protocol::limits::Limits::default().max_message_bytes;
    // The server's in-place reading of `send` frames takes nothing that `ClientFrame` would
    // refuse or read otherwise.
    if let Some(fast) = protocol::ws::SendFrame::parse(text) {
        assert_eq!(
            serde_json::from_str::<ClientFrame>(text).ok(),
            Some(fast.to_client_frame()),
            "SendFrame and ClientFrame read {text:?} differently"
        );
    }
    if let Some(frame) = round_trip::<ClientFrame>(text) {
        match &frame {
            ClientFrame::Send { id, body, .. } => {
                let _ = validate::client_id(id);
                let _ = validate::message_body(body, max);
            }
            ClientFrame::Edit { body, .. } => {
                let _ = validate::message_body(body, max);
            }
            _ => {}
        }
    }
    round_trip::<ServerFrame>(text);
    round_trip::<Credentials>(text);
    round_trip::<SendMessage>(text);
    round_trip::<EditMessage>(text);
    round_trip::<Invite>(text);
    round_trip::<OpenDm>(text);
    round_trip::<ReadMarker>(text);
    round_trip::<HistoryQuery>(text);
    round_trip::<protocol::rest::CreateRoom>(text);
    round_trip::<ErrorBody>(text);
    // The rules must hold up on any string, and agree with what they promise.
    if validate::username(text).is_ok() {
        assert!(
            (3..=32).contains(&text.len()) && text.is_ascii(),
            "{text:?}"
        );
    }
    if validate::client_id(text).is_ok() {
        assert!(
            (1..=64).contains(&text.len()) && text.is_ascii(),
            "{text:?}"
        );
    }
    if validate::room_name(text).is_ok() {
        assert!(
            !text.trim().is_empty() && text.chars().count() <= 64,
            "{text:?}"
        );
    }
    let _ = validate::password(text);
    if validate::message_body(text, max).is_ok() {
        assert!(text.len() <= max && !text.trim().is_empty(), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One server per process, set up once: `alice` fuzzes; `bob` owns a private room with a secret.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    /// Kept so the server keeps running for the life of the process.
    _running: chat_server::Running,
    state: chat_server::AppState,
    ws_url: String,
    alice: UserId,
    token: Mutex<String>,
    /// Bob's private room: alice must never see anything of it.
    private_room: RoomId,
    /// The private room's name and its message body, random per process, and whether alice
    /// herself ever sent each (then seeing it is no leak).
    secrets: [Secret; 2],
    /// Alice's long-lived authenticated socket for [`frames`] (reopened when closed).
    socket: tokio::sync::Mutex<Option<WsStream>>,
    syncs: AtomicU64,
}

/// A string alice must never see, searched for by its hash. libFuzzer watches the comparisons of
/// instrumented code and feeds their operands back into inputs: with a plain `contains` the
/// fuzzer learned the secret within minutes, sent it as a message id and then "found" it in its
/// own history (a false leak, `fuzz/regressions/frames/secret-learned-by-cmp-tracing`). Compared
/// as a rolling hash, the bytes only meet in a comparison when they really occur.
struct Secret {
    bytes: Vec<u8>,
    hash: u64,
    /// The highest power of the base in a window, for rolling the first byte out.
    top: u64,
    /// Alice sent it herself.
    taught: AtomicBool,
}

const BASE: u64 = 0x100_0000_01b3;

impl Secret {
    fn new(text: String) -> Secret {
        let bytes = text.into_bytes();
        let hash = bytes.iter().fold(0u64, |h, &b| {
            h.wrapping_mul(BASE).wrapping_add(u64::from(b))
        });
        let top = (1..bytes.len()).fold(1u64, |p, _| p.wrapping_mul(BASE));
        Secret {
            bytes,
            hash,
            top,
            taught: AtomicBool::new(false),
        }
    }

    fn found_in(&self, text: &[u8]) -> bool {
        let n = self.bytes.len();
        if n == 0 || text.len() < n {
            return false;
        }
        let mut h = text[..n].iter().fold(0u64, |h, &b| {
            h.wrapping_mul(BASE).wrapping_add(u64::from(b))
        });
        for i in 0..=text.len() - n {
            if i > 0 {
                h = h
                    .wrapping_sub(u64::from(text[i - 1]).wrapping_mul(self.top))
                    .wrapping_mul(BASE)
                    .wrapping_add(u64::from(text[i + n - 1]));
            }
            if h == self.hash && text[i..i + n] == self.bytes[..] {
                return true;
            }
        }
        false
    }
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static PANICKED: AtomicBool = AtomicBool::new(false);

fn random_word() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

/// The shared harness (started on first use).
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        // Panics in spawned server tasks are caught by tokio; flag them so they still count.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let h = rt.block_on(setup());
        Harness { rt, ..h }
    })
}

/// The server configuration under fuzz: embedded store, rate limits out of the way of frames and
/// messages (they are tested elsewhere) but logins still limited, so argon2 cost stays bounded.
/// Short replay and retention keep each input fast however many messages earlier inputs sent,
/// and put the `gap` paths (too large, truncated) within the fuzzer's reach.
pub fn config() -> chat_server::Config {
    let mut config = chat_server::Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        redis_url: None,
        msgs_per_sec: 1_000_000,
        msgs_burst: 1_000_000,
        frames_per_sec: 1_000_000,
        frames_burst: 1_000_000,
        retention_events: 200,
        ..Default::default()
    };
    config.limits.max_replay = 20;
    config
}

async fn setup() -> Harness {
    let running = chat_server::start(config())
        .await
        .expect("server starts on the embedded store");
    let state = running.state().clone();
    let password = "correct horse battery staple".to_string();
    let register = |name: &str| Credentials {
        username: name.into(),
        password: password.clone(),
        device: None,
        invite: None,
    };
    let alice = chat_server::chat::register(&state, register("alice"))
        .await
        .expect("register alice");
    let bob = chat_server::chat::register(&state, register("bob"))
        .await
        .expect("register bob");
    let names = [format!("secret-room-{}", random_word()), random_word()];
    let (a, b) = (alice.user.id, bob.user.id);
    // The store's first account is its admin; alice stays a plain user, so an admin route
    // (the export holds every secret) must refuse her like anyone else.
    state
        .store
        .set_user_flag(a, chat_server::store::UserFlag::Admin, false)
        .await
        .expect("alice is no admin");
    // Room 1: alice's public room, bob a member. Room 2: bob's private room with a secret.
    // Room 3: their direct room. Room 4: bob's public room alice is not in.
    let public = chat_server::chat::create_room(&state, a, "alice public", Visibility::Public)
        .await
        .expect("room");
    chat_server::chat::join(&state, b, public.id)
        .await
        .expect("join");
    let private = chat_server::chat::create_room(&state, b, &names[0], Visibility::Private)
        .await
        .expect("room");
    let dm = chat_server::chat::open_dm(&state, a, b).await.expect("dm");
    let other = chat_server::chat::create_room(&state, b, "bob public", Visibility::Public)
        .await
        .expect("room");
    assert_eq!(
        [public.id, private.id, dm.id, other.id],
        [RoomId(1), RoomId(2), RoomId(3), RoomId(4)],
        "the seeds name rooms 1 to 4"
    );
    for (room, user, body) in [
        (public.id, a, "hello from alice"),
        (public.id, b, "hello from bob"),
        (private.id, b, names[1].as_str()),
        (dm.id, b, "a direct message"),
        (other.id, b, "bob's public room"),
    ] {
        let id = random_word();
        let draft = chat_server::chat::Draft {
            id: &id,
            body,
            reply_to: None,
            mentions: &[],
            mention_room: false,
            attachments: &[],
        };
        chat_server::chat::send(&state, user, None, room, draft)
            .await
            .expect("send");
    }
    let ws_url = format!("ws://{}/ws", running.addr());
    Harness {
        // Replaced by the caller with the runtime that ran this.
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime"),
        _running: running,
        state,
        ws_url,
        alice: a,
        token: Mutex::new(alice.token),
        private_room: private.id,
        secrets: names.map(Secret::new),
        socket: tokio::sync::Mutex::new(None),
        syncs: AtomicU64::new(0),
    }
}

impl Harness {
    fn token(&self) -> String {
        self.token.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// A fuzz input may revoke alice's session (logout); give her a fresh one so later inputs
    /// still reach the authenticated code.
    async fn ensure_session(&self) {
        let token = self.token();
        let ttl = self.state.config.session_ttl_secs;
        let max_age = self.state.config.session_max_age_secs;
        if chat_server::auth::authenticate(&self.state.store, &token, ttl, max_age)
            .await
            .is_ok()
        {
            return;
        }
        let creds = Credentials {
            username: "alice".into(),
            password: "correct horse battery staple".into(),
            device: None,
            invite: None,
        };
        let auth = chat_server::chat::login(&self.state, creds)
            .await
            .expect("alice logs in again");
        if let Ok(mut t) = self.token.lock() {
            *t = auth.token;
        }
        *self.socket.lock().await = None;
    }

    /// Notes the secrets alice sends herself (an input may carry one, e.g. as a message id).
    fn note_input(&self, input: &[u8]) {
        for secret in &self.secrets {
            if secret.found_in(input) {
                secret.taught.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Panics if `text` (sent to alice) reveals the private room.
    fn check_no_leak(&self, text: &str) {
        for secret in &self.secrets {
            if !secret.taught.load(Ordering::SeqCst) && secret.found_in(text.as_bytes()) {
                panic!("the private room leaked to a non-member: {text}");
            }
        }
    }

    /// Checks one frame the server sent to alice.
    fn check_frame(&self, text: &str) {
        let frame: ServerFrame = serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("the server sent a frame that is not a ServerFrame ({e}): {text}")
        });
        self.check_no_leak(text);
        let private = self.private_room;
        match &frame {
            ServerFrame::Event(e) => {
                assert_ne!(e.room, private, "event of the private room: {text}")
            }
            ServerFrame::Typing { room, .. } | ServerFrame::History { room, .. } => {
                assert_ne!(*room, private, "private room data: {text}")
            }
            ServerFrame::Welcome { rooms, .. } => assert!(
                rooms.iter().all(|r| r.id != private),
                "welcome lists the private room: {text}"
            ),
            ServerFrame::Error { code, .. } => assert!(
                !matches!(code, ErrorCode::Internal | ErrorCode::StoreUnavailable),
                "the server failed on an input: {text}"
            ),
            _ => {}
        }
    }

    /// Checks a close code the server chose.
    fn check_close(&self, code: u16) {
        assert_ne!(code, 1011, "the server closed with 1011 (internal error)");
    }
}

fn panicked_check() {
    assert!(
        !PANICKED.load(Ordering::SeqCst),
        "the server panicked (see the message above)"
    );
}

fn to_message(frame: &[u8], token: &str) -> Message {
    match std::str::from_utf8(frame) {
        Ok(text) => Message::text(text.replace(TOKEN_PLACEHOLDER, token)),
        Err(_) => Message::binary(frame.to_vec()),
    }
}

// ---------------------------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------------------------

/// Socket frames through the real server. Byte 0 picks the mode: even, the frames go over
/// alice's long-lived authenticated socket; odd, over a fresh socket before any `hello`
/// (`$TOKEN` in a frame is replaced by alice's token). The rest is split into frames on `\n`.
pub fn frames(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let frames: Vec<&[u8]> = rest.split(|&b| b == b'\n').take(MAX_FRAMES).collect();
    h.note_input(data);
    h.rt.block_on(async {
        h.ensure_session().await;
        let run = async {
            if mode % 2 == 0 {
                h.on_authenticated_socket(&frames).await
            } else {
                h.on_fresh_socket(&frames).await
            }
        };
        if tokio::time::timeout(ANSWER_WITHIN, run).await.is_err() {
            panic!("the server did not answer within {ANSWER_WITHIN:?}");
        }
    });
    panicked_check();
}

impl Harness {
    async fn connect(&self) -> WsStream {
        // No Nagle: a frame and the sync ping right behind it must not wait for an ACK.
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(self.ws_url.as_str(), None, true)
                .await
                .expect("the server accepts a socket");
        ws
    }

    /// Reads until `done` says so or the socket ends; checks every frame.
    async fn read_until(&self, ws: &mut WsStream, mut done: impl FnMut(&str) -> bool) -> bool {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(text)) => {
                    self.check_frame(text.as_str());
                    if done(text.as_str()) {
                        return true;
                    }
                }
                Ok(Message::Binary(_)) => panic!("the server sent a binary frame"),
                Ok(Message::Close(frame)) => {
                    if let Some(frame) = frame {
                        self.check_close(u16::from(frame.code));
                    }
                    return false;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    async fn on_authenticated_socket(&self, frames: &[&[u8]]) {
        let mut guard = self.socket.lock().await;
        if guard.is_none() {
            let mut ws = self.connect().await;
            let hello = ClientFrame::Hello {
                token: self.token(),
                resume: vec![],
                epoch: None,
            };
            let hello = serde_json::to_string(&hello).expect("hello encodes");
            ws.send(Message::text(hello)).await.expect("hello sent");
            let ready = self
                .read_until(&mut ws, |t| t.contains(r#""type":"ready""#))
                .await;
            assert!(ready, "alice's hello was not answered with ready");
            *guard = Some(ws);
        }
        let Some(ws) = guard.as_mut() else { return };
        let token = self.token();
        for frame in frames {
            if ws.send(to_message(frame, &token)).await.is_err() {
                *guard = None;
                return;
            }
        }
        // Frames are handled in order: the pong to this ping comes after every reply.
        let reference = format!("sync-{}", self.syncs.fetch_add(1, Ordering::Relaxed));
        let ping = ClientFrame::Ping {
            reference: Some(reference.clone()),
        };
        let ping = serde_json::to_string(&ping).expect("ping encodes");
        let pong = format!(r#"{{"type":"pong","ref":"{reference}"}}"#);
        let answered = match ws.send(Message::text(ping)).await {
            Ok(()) => self.read_until(ws, |t| t == pong).await,
            Err(_) => false,
        };
        if !answered {
            *guard = None;
        }
    }

    async fn on_fresh_socket(&self, frames: &[&[u8]]) {
        let mut ws = self.connect().await;
        let token = self.token();
        for frame in frames {
            if ws.send(to_message(frame, &token)).await.is_err() {
                break;
            }
        }
        // The server handles frames in order, then our close; read until the socket ends.
        let _ = ws.close(None).await;
        self.read_until(&mut ws, |_| false).await;
    }
}

// ---------------------------------------------------------------------------------------------
// rest
// ---------------------------------------------------------------------------------------------

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One HTTP request through the server's router. Byte 0: bits 0–2 the method, bit 3 "send
/// alice's token", bit 4 "send `content-type: application/json`". Then the path and query up to
/// the first `\n`, then the body.
pub fn rest(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (path, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let method = METHODS[usize::from(flags & 7) % METHODS.len()];
    let h = harness();
    h.note_input(data);
    h.rt.block_on(async {
        h.ensure_session().await;
        let mut req = Request::builder().method(method).uri(path);
        if flags & 8 != 0 {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", h.token()));
        }
        if flags & 16 != 0 {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        // Requests hyper itself would refuse (bad URI or method) never reach the router.
        let Ok(mut req) = req.body(Body::from(body.to_vec())) else {
            return;
        };
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = chat_server::app(h.state.clone());
        let answer = async {
            let resp = app.oneshot(req).await.expect("the router is infallible");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
                .await
                .expect("response body");
            (status, bytes)
        };
        let Ok((status, bytes)) = tokio::time::timeout(ANSWER_WITHIN, answer).await else {
            panic!("{method} {path}: no answer within {ANSWER_WITHIN:?}");
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(status < 500, "{method} {path} -> {status}: {text}");
        h.check_no_leak(&text);
        // HEAD answers carry no body by definition.
        if status >= 400 && method != "HEAD" {
            let err: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{method} {path} -> {status} without an ErrorBody ({e}): {text}")
            });
            assert_eq!(
                err.code.http_status(),
                status,
                "{method} {path}: status does not match the code: {text}"
            );
        }
    });
    panicked_check();
}

/// Alice's user id (for tests that build inputs).
pub fn alice() -> UserId {
    harness().alice
}

/// The private room's name, for the harness's own tests.
pub fn private_room_name() -> String {
    String::from_utf8_lossy(&harness().secrets[0].bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn secret_is_found_wherever_it_is_and_only_there() {
        let s = Secret::new("secret-room-0123abcd".into());
        for text in [
            "secret-room-0123abcd",
            "xx secret-room-0123abcd",
            "secret-room-0123abcd yy",
            r#"{"name":"secret-room-0123abcd","x":1}"#,
        ] {
            assert!(s.found_in(text.as_bytes()), "{text}");
        }
        for text in [
            "",
            "secret-room-0123abc",
            "secret-room-0123abce",
            "ecret-room-0123abcd",
        ] {
            assert!(!s.found_in(text.as_bytes()), "{text}");
        }
    }
}
