//! The floor: a bare broadcast server on our WebSocket stack (axum's WebSocket over
//! tokio-tungstenite, the same versions and buffer sizes as `chat-server`), speaking the part of
//! our protocol the fanout scenario uses, and nothing else.
//!
//! Per message it parses the `send` frame, takes the room's next seq, serializes the `event`
//! frame once, hands the same bytes to every member's connection and acknowledges the send.
//! No authentication beyond a token lookup, no store, no Redis, no history, no dedupe, no
//! rate limits, no cursors, no slow-consumer bound: what is left is the work any broadcast
//! server must do per delivery. `chat-bench fanout --target floor` measures it with the same
//! generator as the other targets, so ours / floor is what our own code adds.
//!
//! Provisioning uses the peer's REST shapes (`POST /api/register` → `{"token"}`,
//! `POST /api/rooms` → `{"id"}`, `POST /api/rooms/{id}/join`); the socket is `GET /ws` with
//! `hello` → `ready`, `send` → `ack` + `event`, and `ping` → `pong`.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::SinkExt;
use protocol::rest::SendAck;
use protocol::ws::{ClientFrame, ServerFrame};
use protocol::{EventBody, RoomEvent, RoomId, UserId};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The same socket buffer sizes as `chat-server` (`server/src/ws.rs`), so that the comparison
/// is about the work per delivery, not about buffer configuration.
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 8 * 1024;
const MAX_FRAME: usize = 64 * 1024;

#[derive(Default)]
struct Registry {
    tokens: HashMap<String, UserId>,
    names: HashMap<UserId, String>,
    user_rooms: HashMap<UserId, Vec<RoomId>>,
    rooms: HashMap<RoomId, Arc<Room>>,
    next_user: u64,
    next_room: u64,
}

/// One room: its seq and the outboxes of the connections in it. Sending takes this lock, so
/// a room's events reach every member in seq order.
#[derive(Default)]
struct Room {
    live: Mutex<RoomLive>,
}

#[derive(Default)]
struct RoomLive {
    seq: u64,
    conns: Vec<(u64, mpsc::UnboundedSender<Utf8Bytes>)>,
}

#[derive(Clone, Default)]
struct Floor {
    registry: Arc<Mutex<Registry>>,
    next_conn: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Deserialize)]
struct Register {
    username: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn register(State(floor): State<Floor>, Json(req): Json<Register>) -> Response {
    let mut reg = lock(&floor.registry);
    reg.next_user += 1;
    let user = UserId(reg.next_user);
    let token = format!("floor-token-{}", user.0);
    reg.tokens.insert(token.clone(), user);
    reg.names.insert(user, req.username);
    Json(serde_json::json!({ "token": token })).into_response()
}

async fn create_room(State(floor): State<Floor>, headers: HeaderMap) -> Response {
    let mut reg = lock(&floor.registry);
    let Some(&user) = bearer(&headers).and_then(|t| reg.tokens.get(t)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    reg.next_room += 1;
    let room = RoomId(reg.next_room);
    reg.rooms.insert(room, Arc::default());
    reg.user_rooms.entry(user).or_default().push(room);
    Json(serde_json::json!({ "id": room })).into_response()
}

async fn join(State(floor): State<Floor>, Path(room): Path<u64>, headers: HeaderMap) -> Response {
    let mut reg = lock(&floor.registry);
    let Some(&user) = bearer(&headers).and_then(|t| reg.tokens.get(t)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let room = RoomId(room);
    if !reg.rooms.contains_key(&room) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let rooms = reg.user_rooms.entry(user).or_default();
    if !rooms.contains(&room) {
        rooms.push(room);
    }
    Json(serde_json::json!({})).into_response()
}

async fn upgrade(State(floor): State<Floor>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + MAX_FRAME * 4)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| conn(floor, socket))
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(frame).unwrap_or_default(),
    ))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Who a connection is, once it said `hello`.
struct Member {
    user: UserId,
    name: String,
    rooms: HashMap<RoomId, Arc<Room>>,
}

async fn conn(floor: Floor, mut socket: WebSocket) {
    let id = floor.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let mut me: Option<Member> = None;
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            got = rx.recv_many(&mut batch, 256) => {
                if got == 0 {
                    break;
                }
                let mut failed = false;
                for frame in batch.drain(..) {
                    if socket.feed(Message::Text(frame)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || socket.flush().await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(t) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                let reply = match serde_json::from_str::<ClientFrame>(t.as_str()) {
                    Ok(ClientFrame::Hello { token, .. }) => Some(hello(&floor, &token, id, &tx, &mut me)),
                    Ok(ClientFrame::Send { room, id: client_id, body, .. }) => {
                        Some(send(me.as_ref(), room, client_id, body))
                    }
                    Ok(ClientFrame::Ping { reference }) => Some(ServerFrame::Pong { reference }),
                    Ok(_) | Err(_) => None,
                };
                if let Some(reply) = reply {
                    if socket.send(text(&reply)).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if let Some(me) = me {
        for room in me.rooms.values() {
            lock(&room.live).conns.retain(|(c, _)| *c != id);
        }
    }
}

fn error(message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: protocol::ErrorCode::BadRequest,
        message: message.to_owned(),
        reference: None,
        room: None,
        id: None,
        retry_after_ms: None,
    }
}

fn hello(
    floor: &Floor,
    token: &str,
    id: u64,
    tx: &mpsc::UnboundedSender<Utf8Bytes>,
    me: &mut Option<Member>,
) -> ServerFrame {
    if me.is_some() {
        return error("already said hello");
    }
    let reg = lock(&floor.registry);
    let Some(&user) = reg.tokens.get(token) else {
        return error("unknown token");
    };
    let mut rooms = HashMap::new();
    for room in reg.user_rooms.get(&user).into_iter().flatten() {
        if let Some(r) = reg.rooms.get(room) {
            lock(&r.live).conns.push((id, tx.clone()));
            rooms.insert(*room, r.clone());
        }
    }
    *me = Some(Member {
        user,
        name: reg.names.get(&user).cloned().unwrap_or_default(),
        rooms,
    });
    ServerFrame::Ready
}

/// Next seq, one serialization, the same bytes to every member, then the ack.
fn send(me: Option<&Member>, room: RoomId, client_id: String, body: String) -> ServerFrame {
    let Some(me) = me else {
        return error("send hello first");
    };
    let Some(r) = me.rooms.get(&room) else {
        return error("not a member");
    };
    let ts = now_ms();
    let mut live = lock(&r.live);
    live.seq += 1;
    let seq = live.seq;
    let event = ServerFrame::Event(RoomEvent {
        room,
        seq,
        ts,
        event: EventBody::Message {
            id: client_id,
            sender: me.user,
            sender_name: me.name.clone(),
            body,
            edited_ts: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
        },
    });
    let frame = Utf8Bytes::from(serde_json::to_string(&event).unwrap_or_default());
    for (_, tx) in &live.conns {
        let _ = tx.send(frame.clone());
    }
    drop(live);
    let ServerFrame::Event(RoomEvent {
        event: EventBody::Message { id, .. },
        ..
    }) = event
    else {
        unreachable!("built above as a message event")
    };
    ServerFrame::Ack(SendAck {
        room,
        id,
        seq,
        ts,
        duplicate: false,
    })
}

fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/register", post(register))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{room}/join", post(join))
        .route("/ws", get(upgrade))
        .with_state(Floor::default())
}

/// No Nagle on accepted sockets, as `chat-server` does.
fn nodelay(listener: TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// A floor server running in this process (tests); stops on [`Running::shutdown`].
pub struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}

/// Starts a floor server on `addr` (port 0: any free port) in this process.
pub async fn start(addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(nodelay(listener), router().into_make_service())
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    Ok(Running { addr, stop, task })
}

/// `chat-bench floor-server`: serves until killed.
pub async fn serve(addr: SocketAddr) -> crate::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(nodelay(listener), router().into_make_service()).await?;
    Ok(())
}
