//! One WebSocket connection: authentication, resume, then frames both ways until it closes.
//!
//! The connection keeps, per room, the last seq it delivered (its cursor). Every room event —
//! replayed or live, from the hub or fetched from history — goes through [`Connection::deliver`]:
//! at or below the cursor it is dropped (never twice), one above it is sent, further above it
//! the missing events are fetched from the store first (never a gap). So a connection sees each
//! room's stream exactly once and in order, whatever the bus did.

use crate::auth::{self, now_ms};
use crate::chat;
use crate::error::{ApiError, ApiResult};
use crate::hub::{ConnHandle, IdMap, Outbound, Signal};
use crate::limits::FrameBucket;
use crate::store::bus::MemberRoute;
use crate::store::Range;
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use protocol::ws::{ClientFrame, Cursor, GapReason, SendFrame, ServerFrame};
use protocol::{close, ErrorCode, RoomEvent, RoomId, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod alarm;
mod frames;
mod resume;

/// Consecutive rate-limited frames after which the socket is closed.
const MAX_STRIKES: u32 = 100;
/// Events fetched per store read when filling a gap.
const FILL_CHUNK: usize = 200;
/// The server pings this often; a client silent for three intervals is disconnected.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Read buffer per socket. Client frames are small; a larger one grows the buffer while it is
/// read. Every idle socket holds this much, so it is kept small.
const READ_BUFFER: usize = 1024;
/// Outgoing frames queued in a burst are written together once this many bytes are buffered
/// or the burst ends, so a busy socket costs one write per burst instead of one per frame.
const WRITE_BUFFER: usize = 8 * 1024;
/// How long a closing socket waits for the peer's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// `GET /ws`: checks the Origin, then upgrades with small buffers (see [`READ_BUFFER`] and
/// [`WRITE_BUFFER`]; the defaults cost ~130 KB per idle socket).
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return ApiError::new(
                ErrorCode::BadRequest,
                "this endpoint takes a WebSocket upgrade",
            )
            .into_response()
        }
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return ApiError::new(
                ErrorCode::OriginNotAllowed,
                "this Origin may not open a socket",
            )
            .into_response();
        }
    }
    let max_frame = state.config.limits.max_frame_bytes;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + max_frame * 4)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| run(state, Box::new(socket)))
}

/// Why a connection ended, for the close frame.
struct Closing(u16, &'static str);

/// A server frame as a text message, in one allocation of its exact length: serialized into a
/// per-thread buffer and copied out. (`Utf8Bytes` takes a `String` whose length is its capacity
/// as it is; serde_json's own buffer would cost a second allocation for the bytes' header.)
fn text(frame: &ServerFrame) -> Message {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        let json = match serde_json::to_writer(&mut *buf, frame) {
            Ok(()) => std::str::from_utf8(buf)
                .map(str::to_owned)
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        // A welcome can be megabytes; do not keep that much per thread.
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::new();
        }
        Message::Text(Utf8Bytes::from(json))
    })
}

fn error_frame(
    e: &ApiError,
    reference: Option<String>,
    room: Option<RoomId>,
    id: Option<String>,
) -> ServerFrame {
    ServerFrame::Error {
        code: e.code,
        message: e.message.to_string(),
        reference,
        room,
        id,
        retry_after_ms: e.retry_after_ms,
    }
}

/// Parses a client frame, telling unknown types apart from malformed JSON.
fn parse(text: &str) -> Result<ClientFrame, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        if e.is_data() && e.to_string().starts_with("unknown variant") {
            ApiError::new(ErrorCode::UnknownFrame, "unknown frame type")
        } else {
            ApiError::new(ErrorCode::MalformedFrame, format!("malformed frame: {e}"))
        }
    })
}

/// The close for a failed read: 1009 when the peer sent a frame over the size limit.
fn read_failure(e: axum::Error) -> Closing {
    let too_big = e
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        Closing(close::TOO_BIG, "frame larger than limits.max_frame_bytes")
    } else {
        Closing(close::GOING_AWAY, "read failed")
    }
}

/// Sends a close frame, then finishes the closing handshake: reads (and drops) what the peer
/// still sends until its own close arrives, for at most [`CLOSE_LINGER`]. Dropping the socket
/// with unread input would make the kernel answer with a reset, which discards our close frame
/// on the way: a client cut off for flooding (4029) or for an oversized frame (1009) would see a
/// bare "connection reset" instead of the code and reason.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    crate::metrics::get().closed(code);
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Answers a close frame the client sent (RFC 6455 §5.5.1). The WebSocket library queues the
/// answer itself (echoing the client's code and reason) but writes it only on the next flush; a
/// socket dropped before that ends with a bare TCP close and no answer.
async fn answer_close(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_LINGER, socket.flush()).await;
}

/// One socket's task. It lives as long as the socket, so its future is kept small: the socket
/// is boxed (an async fn keeps its own copy of every argument for its whole life), and the
/// steps that await the store (authentication, start, client frames, gap fills) are boxed and
/// take their memory only while they run, not for the whole life of an idle connection.
async fn run(state: AppState, mut socket: Box<WebSocket>) {
    let Some((session, resume)) = Box::pin(await_hello(&state, &mut socket)).await else {
        return;
    };
    let user = session.user;
    let registered = state.hub.register(
        user,
        session.id.clone(),
        state.config.outbound_queue,
        state.config.max_sockets_per_user,
    );
    let Some((handle, first)) = registered else {
        let e = ApiError::new(
            ErrorCode::TooManyConnections,
            format!(
                "this account already has {} connections to this server",
                state.config.max_sockets_per_user
            ),
        );
        let _ = socket.send(text(&error_frame(&e, None, None, None))).await;
        close_with(
            &mut socket,
            close::TOO_MANY_CONNECTIONS,
            "too many connections for this account",
        )
        .await;
        return;
    };
    crate::metrics::get().connections_opened.increment(1);
    if first {
        let _ = state.presence.send(crate::presence::Change::Up(user));
    }
    let mut conn = Connection {
        state: state.clone(),
        socket,
        handle: handle.clone(),
        user,
        username: String::new(),
        cursors: IdMap::default(),
        frames: state.limits.frame_bucket(),
        strikes: 0,
        last_typing: IdMap::default(),
    };
    let closing = match Box::pin(conn.start(&session.id, resume)).await {
        Ok(()) => conn.serve(&session.token_hash, session.created_ts).await,
        Err(StartError::Socket) => Closing(close::GOING_AWAY, "socket failed"),
        Err(StartError::Api(e)) => {
            let _ = conn
                .socket
                .send(text(&error_frame(&e, None, None, None)))
                .await;
            Closing(1011, "server error; reconnect and resume")
        }
    };
    close_with(&mut conn.socket, closing.0, closing.1).await;
    let last = state.hub.unregister(&handle);
    if last {
        let _ = state.presence.send(crate::presence::Change::Down(user));
    }
}

/// Waits for `hello`, answering anything else with `auth_required`. `None` when the socket
/// closed, timed out or the token was refused (the client has been told).
async fn await_hello(
    state: &AppState,
    socket: &mut WebSocket,
) -> Option<(crate::store::SessionRecord, Vec<Cursor>)> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.hello_timeout_secs);
    loop {
        let received = tokio::select! {
            _ = state.shutdown.cancelled() => {
                close_with(socket, close::GOING_AWAY, "server shutting down; reconnect").await;
                return None;
            }
            received = tokio::time::timeout_at(deadline, socket.recv()) => received,
        };
        let msg = match received {
            Err(_) => {
                close_with(socket, close::AUTH_TIMEOUT, "no hello in time").await;
                return None;
            }
            Ok(Some(Err(e))) => {
                let Closing(code, reason) = read_failure(e);
                close_with(socket, code, reason).await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Ok(Message::Close(_)))) => {
                answer_close(socket).await;
                return None;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let frame = match msg {
            Message::Text(t) => parse(t.as_str()),
            Message::Binary(_) => Err(ApiError::new(
                ErrorCode::BinaryNotSupported,
                "frames are JSON text",
            )),
            _ => continue,
        };
        match frame {
            Ok(ClientFrame::Hello {
                token,
                resume,
                epoch,
            }) => {
                let (ttl, max_age) = (
                    state.config.session_ttl_secs,
                    state.config.session_max_age_secs,
                );
                match auth::authenticate(&state.store, &token, ttl, max_age).await {
                    Ok(session) => {
                        // Cursors from another data set (the store lost data while this client
                        // was away): resuming from them would skip or misplace events.
                        if !resume.is_empty() && epoch.is_some_and(|e| e != state.store.epoch()) {
                            close_with(
                                socket,
                                close::STORE_RESET,
                                "store lost data; drop local state and resync",
                            )
                            .await;
                            return None;
                        }
                        return Some((session, resume));
                    }
                    Err(e) => {
                        let _ = socket.send(text(&error_frame(&e, None, None, None))).await;
                        let code = if e.code == ErrorCode::Unauthorized {
                            close::UNAUTHORIZED
                        } else {
                            1011
                        };
                        close_with(socket, code, "authentication failed").await;
                        return None;
                    }
                }
            }
            Ok(_) => {
                let e = ApiError::new(ErrorCode::AuthRequired, "send hello first");
                let _ = socket.send(text(&error_frame(&e, None, None, None))).await;
            }
            Err(e) => {
                let _ = socket.send(text(&error_frame(&e, None, None, None))).await;
            }
        }
    }
}

struct Connection {
    state: AppState,
    socket: Box<WebSocket>,
    handle: Arc<ConnHandle>,
    user: UserId,
    username: String,
    /// Per room: the last seq delivered to this client. Looked up on every delivery.
    cursors: IdMap<RoomId, u64>,
    frames: FrameBucket,
    strikes: u32,
    last_typing: IdMap<RoomId, Instant>,
}

/// The socket failed; the connection ends.
struct SocketGone;

impl Connection {
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), SocketGone> {
        self.socket.send(text(frame)).await.map_err(|_| SocketGone)
    }

    /// Queues an event known to be the next one on the socket, and moves the cursor. The
    /// caller flushes (every path ends in [`Connection::send`] or the serve loop's flush).
    async fn emit(
        &mut self,
        room: RoomId,
        seq: u64,
        member: Option<MemberRoute>,
        frame: Utf8Bytes,
    ) -> Result<(), SocketGone> {
        self.socket
            .feed(Message::Text(frame))
            .await
            .map_err(|_| SocketGone)?;
        if member == Some(MemberRoute::Left(self.user)) || member == Some(MemberRoute::RoomDeleted)
        {
            self.cursors.remove(&room);
        } else if let Some(cursor) = self.cursors.get_mut(&room) {
            // The usual case, once per delivery: a lookup, not an insert that replaces.
            *cursor = seq;
        } else {
            self.cursors.insert(room, seq);
        }
        Ok(())
    }

    /// The one path for room events: dedupe, fill gaps, keep order. `ts` is the event's store
    /// time, counted and timed in the batch's `tally` (see `metrics::LiveTally`).
    async fn deliver(
        &mut self,
        room: RoomId,
        seq: u64,
        member: Option<MemberRoute>,
        frame: Utf8Bytes,
        ts: i64,
        tally: &mut crate::metrics::LiveTally,
    ) -> Result<(), FillError> {
        let cursor = match self.cursors.get(&room) {
            Some(&c) => c,
            // Not tracking this room: only our own joining starts it.
            None if member == Some(MemberRoute::Joined(self.user)) => {
                self.cursors.insert(room, seq - 1);
                seq - 1
            }
            None => return Ok(()),
        };
        if seq <= cursor {
            return Ok(());
        }
        // A deleted room's history is gone: nothing to fill, its deletion is all there is left.
        if seq > cursor + 1 && member != Some(MemberRoute::RoomDeleted) {
            Box::pin(self.fill(room, seq - 1)).await?;
            if self.cursors.get(&room).is_none_or(|&c| c >= seq) {
                return Ok(());
            }
        }
        tally.delivered(ts);
        self.emit(room, seq, member, frame)
            .await
            .map_err(|_| FillError::Socket)
    }

    /// Sends everything queued for this connection, in order, then flushes once.
    async fn drain(&mut self, batch: &mut VecDeque<Outbound>) -> Result<(), FillError> {
        self.handle.take(batch);
        let mut tally = crate::metrics::LiveTally::start();
        while let Some(item) = batch.pop_front() {
            match item {
                Outbound::Event {
                    room,
                    seq,
                    member,
                    frame,
                    ts,
                } => {
                    self.deliver(room, seq, member, frame, ts, &mut tally)
                        .await?
                }
                Outbound::Frame(frame) => {
                    crate::metrics::get().delivered(crate::metrics::DeliveryKind::Ephemeral, 1);
                    self.socket
                        .feed(Message::Text(frame))
                        .await
                        .map_err(|_| FillError::Socket)?
                }
                Outbound::Probe { room, last_seq } => Box::pin(self.fill(room, last_seq)).await?,
            }
        }
        // Counted before the flush: a client that has the frames finds them counted.
        drop(tally);
        self.socket.flush().await.map_err(|_| FillError::Socket)
    }

    /// The main loop: live events out, client frames in, until something ends it.
    async fn serve(&mut self, token_hash: &str, created_ts: i64) -> Closing {
        let handle = self.handle.clone();
        let mut batch = VecDeque::new();
        let refresh_every =
            Duration::from_secs((self.state.config.session_ttl_secs / 4).clamp(30, 3600));
        let mut last_heard = tokio::time::Instant::now();
        // The absolute session lifetime ends the socket too, not only the next request.
        let max_age_ms = (self.state.config.session_max_age_secs as i64).saturating_mul(1000);
        let too_old_at = created_ts.saturating_add(max_age_ms);
        let mut timers = Timers::new(refresh_every, until_ms(too_old_at));
        // One timer for the keepalive, the session refresh and the session's end. The loop
        // polls everything it waits on each time it wakes, which is once per delivery: an
        // `Alarm` costs an atomic load per poll until its deadline passes.
        let mut timer = alarm::Alarm::new(timers.next());
        loop {
            tokio::select! {
                biased;
                // The hub's signal first: closing wins over everything, then the queue. The
                // timer comes after it, so a wake-up for a delivery does not poll the timer.
                signal = handle.signal() => match signal {
                    Signal::Killed(code, reason) => return Closing(code, reason),
                    Signal::Queued => match self.drain(&mut batch).await {
                        Ok(()) => {}
                        Err(FillError::Socket) => return Closing(close::GOING_AWAY, "socket failed"),
                        Err(FillError::Store) => return Closing(1011, "store unavailable; reconnect and resume"),
                    },
                },
                _ = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if now >= timers.too_old {
                        if now_ms() >= too_old_at {
                            return Closing(close::UNAUTHORIZED, "session reached its maximum age; log in again");
                        }
                        timers.too_old = now + until_ms(too_old_at);
                    }
                    if now >= timers.ping {
                        timers.ping = now + PING_EVERY;
                        // Half-open TCP connections would otherwise look online forever.
                        if last_heard.elapsed() > PING_EVERY * 3 {
                            return Closing(close::GOING_AWAY, "no traffic; reconnect");
                        }
                        if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                            return Closing(close::GOING_AWAY, "socket failed");
                        }
                    }
                    if now >= timers.refresh {
                        timers.refresh = now + refresh_every;
                        let (ttl, max_age) = (self.state.config.session_ttl_secs, self.state.config.session_max_age_secs);
                        match Box::pin(self.state.store.touch_session(token_hash, now_ms(), ttl, max_age)).await {
                            Ok(Some(_)) => {}
                            Ok(None) => return Closing(close::UNAUTHORIZED, "session expired or revoked"),
                            Err(e) => tracing::warn!(error = %e, "session refresh failed"),
                        }
                    }
                    timer.reset(timers.next());
                }
                msg = self.socket.recv() => {
                    let msg = match msg {
                        None => return Closing(1000, "bye"),
                        Some(Ok(Message::Close(_))) => {
                            // Our answer echoes the client's frame; the close_with that
                            // follows finds the socket closed and sends nothing more.
                            answer_close(&mut self.socket).await;
                            return Closing(1000, "bye");
                        }
                        Some(Err(e)) => return read_failure(e),
                        Some(Ok(msg)) => msg,
                    };
                    last_heard = tokio::time::Instant::now();
                    let reply = match msg {
                        Message::Text(t) => Box::pin(self.on_text(t.as_str())).await,
                        Message::Binary(_) => match self.check_rate() {
                            Err(e) => Some(error_frame(&e, None, None, None)),
                            Ok(()) => Some(error_frame(
                                &ApiError::new(ErrorCode::BinaryNotSupported, "frames are JSON text"),
                                None,
                                None,
                                None,
                            )),
                        },
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        if self.send(&reply).await.is_err() {
                            return Closing(close::GOING_AWAY, "socket failed");
                        }
                    }
                    if self.strikes > MAX_STRIKES {
                        return Closing(close::RATE_LIMITED, "too many frames after being rate limited");
                    }
                }
            }
        }
    }
}

fn reply_ok(result: ApiResult<u64>, reference: Option<String>) -> Option<ServerFrame> {
    match result {
        Ok(_) => reference.map(|reference| ServerFrame::Ok { reference }),
        Err(e) => Some(error_frame(&e, reference, None, None)),
    }
}

enum FillError {
    Socket,
    Store,
}

/// Why `start` failed.
enum StartError {
    Socket,
    Api(ApiError),
}

impl From<ApiError> for StartError {
    fn from(e: ApiError) -> Self {
        StartError::Api(e)
    }
}

impl From<crate::error::StoreError> for StartError {
    fn from(e: crate::error::StoreError) -> Self {
        StartError::Api(e.into())
    }
}

impl From<SocketGone> for StartError {
    fn from(_: SocketGone) -> Self {
        StartError::Socket
    }
}

impl From<FillError> for StartError {
    fn from(e: FillError) -> Self {
        match e {
            FillError::Socket => StartError::Socket,
            FillError::Store => StartError::Api(ApiError::new(
                ErrorCode::StoreUnavailable,
                "the message store is unreachable; reconnect and resume",
            )),
        }
    }
}

impl From<SocketGone> for FillError {
    fn from(_: SocketGone) -> Self {
        FillError::Socket
    }
}

/// The serve loop's deadlines, all behind one timer.
struct Timers {
    /// The next keepalive ping (and check that the client was heard from).
    ping: tokio::time::Instant,
    /// The next session refresh (sliding expiry, and noticing a revoked session).
    refresh: tokio::time::Instant,
    /// When to check the session's absolute lifetime (re-armed if it fires early).
    too_old: tokio::time::Instant,
}

impl Timers {
    fn new(refresh_every: Duration, too_old_in: Duration) -> Timers {
        let now = tokio::time::Instant::now();
        Timers {
            ping: now + PING_EVERY,
            refresh: now + refresh_every,
            too_old: now + too_old_in,
        }
    }

    /// The earliest deadline.
    fn next(&self) -> tokio::time::Instant {
        self.ping.min(self.refresh).min(self.too_old)
    }
}

/// Time from now until `at_ms` (ms since the epoch), at most a day (a far deadline is
/// re-armed when it fires).
fn until_ms(at_ms: i64) -> Duration {
    let left = at_ms.saturating_sub(now_ms()).clamp(0, 24 * 3600 * 1000);
    Duration::from_millis(left as u64)
}
