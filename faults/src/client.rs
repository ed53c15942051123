//! A scripted protocol client: speaks `docs/protocol.md` over tokio-tungstenite exactly as the
//! recommended client algorithm says (§6.5) — `hello` with resume cursors, an outbox of
//! unacknowledged sends resent with their original ids after `ready`, edits and deletes of its
//! own messages, pings — and records everything it observes for the checker.
//!
//! The connection task reconnects to any live node. Faults reach it through flags: `offline`
//! (drop the socket and stay away while still composing into the outbox), `slow` (stop reading
//! the socket so the server's queue for it fills), and `burst` (compose many messages at once).
//! Violations the client can see on its own (a seq twice, a seq skipped without a `gap`) are
//! recorded the moment they happen.

use futures_util::{SinkExt, StreamExt};
use protocol::ws::{ClientFrame, Cursor, GapReason};
use protocol::{ErrorCode, EventBody, RoomEvent, RoomId, ServerFrame, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What identifies an event's content, to compare a client's copy with the server's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Ident {
    Message(UserId, String),
    Edit(u64),
    Delete(u64),
    Other(String),
}

impl Ident {
    pub fn of(body: &EventBody) -> Ident {
        match body {
            EventBody::Message { id, sender, .. } => Ident::Message(*sender, id.clone()),
            EventBody::Edit { target, .. } => Ident::Edit(*target),
            EventBody::Delete { target, .. } => Ident::Delete(*target),
            EventBody::MemberJoined { user, .. } => Ident::Other(format!("joined {user}")),
            EventBody::MemberLeft { user, .. } => Ident::Other(format!("left {user}")),
            EventBody::OwnerChanged { user } => Ident::Other(format!("owner {user}")),
            EventBody::ReactionAdded {
                target,
                user,
                emoji,
            } => Ident::Other(format!("+{emoji} {user} on {target}")),
            EventBody::ReactionRemoved {
                target,
                user,
                emoji,
            } => Ident::Other(format!("-{emoji} {user} on {target}")),
            EventBody::RoomUpdated { by, name, topic } => {
                Ident::Other(format!("updated by {by}: {name:?} {topic:?}"))
            }
            EventBody::RoomDeleted { by } => Ident::Other(format!("deleted by {by}")),
            EventBody::Unknown => Ident::Other("unknown".into()),
        }
    }
}

/// A message the client composed.
#[derive(Debug, Clone)]
pub struct Composed {
    pub room: RoomId,
    pub id: String,
    /// Composed while the client had no authenticated socket.
    pub offline: bool,
    /// A large body (bursts that fill a slow reader's buffers).
    pub big: bool,
    /// The seq of the first ack.
    pub seq: Option<u64>,
    /// Acks with `duplicate: false` (must be at most one).
    pub fresh_acks: u32,
    /// Refused with a permanent error.
    pub refused: Option<ErrorCode>,
}

/// A gap frame as received.
#[derive(Debug, Clone)]
pub struct GapSeen {
    pub room: RoomId,
    pub after: u64,
    pub until: u64,
    pub reason: GapReason,
}

/// Everything one client knows and saw.
#[derive(Debug, Default)]
pub struct ClientState {
    pub cursors: BTreeMap<RoomId, u64>,
    /// The `epoch` of the last `welcome`: sent back with the cursors.
    pub epoch: Option<String>,
    /// The cursor of each room at the first `welcome`: the checker looks at what came after.
    pub start: BTreeMap<RoomId, u64>,
    /// Per room, the events in arrival order.
    pub seen: BTreeMap<RoomId, Vec<(u64, Ident)>>,
    pub gaps: Vec<GapSeen>,
    /// Every message composed, in order.
    pub composed: Vec<Composed>,
    /// Indexes into `composed` of messages not acked yet (the outbox), in order.
    pub outbox: Vec<usize>,
    /// Outbox entries already written on the current connection.
    written: HashSet<usize>,
    /// Entries refused for now (store unavailable, rate limited): written again at the next
    /// tick.
    retry: Vec<usize>,
    /// Own acked messages that may be edited or deleted.
    own: Vec<(RoomId, u64)>,
    /// Edits/deletes answered `ok`: (room, target, is_delete).
    pub changes_ok: Vec<(RoomId, u64, bool)>,
    pending_changes: HashMap<String, (RoomId, u64, bool)>,
    /// Violations seen live (duplicate seq, skipped seq, ...).
    pub violations: Vec<String>,
    pub closes: Vec<u16>,
    pub errors: Vec<ErrorCode>,
    pub connected: bool,
    pub connects: u32,
    /// When the last authenticated socket was lost (cleared by the next `ready`).
    lost_at: Option<Instant>,
    /// Per reconnect: milliseconds from losing the authenticated socket to the next `ready`.
    pub outages_ms: Vec<u64>,
    /// Faults: stay away / stop reading / compose this many at once.
    pub offline: bool,
    pub slow: bool,
    pub burst: Option<(RoomId, u32)>,
    pub stop_composing: bool,
    pub done: bool,
    /// Set by the harness before it wipes the store: a typed signal is then expected.
    pub expect_wipe: bool,
    /// The typed signal that told this client its store was lost (close or error code).
    pub wipe_signal: Option<String>,
    next_id: u64,
    next_ref: u64,
}

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub index: usize,
    pub user: UserId,
    pub token: String,
    pub rooms: Vec<RoomId>,
    /// Mean time between composed messages.
    pub every: Duration,
    pub prefer_node: usize,
    pub seed: u64,
}

/// A running scripted client.
#[derive(Clone)]
pub struct Client {
    pub spec: Arc<ClientSpec>,
    pub state: Arc<Mutex<ClientState>>,
    kick: Arc<tokio::sync::Notify>,
}

/// The node addresses clients may connect to (nodes that are down are left out).
pub type LiveNodes = Arc<Mutex<Vec<(usize, SocketAddr)>>>;

impl Client {
    pub fn start(spec: ClientSpec, nodes: LiveNodes) -> Client {
        let client = Client {
            spec: Arc::new(spec),
            state: Arc::new(Mutex::new(ClientState::default())),
            kick: Arc::new(tokio::sync::Notify::new()),
        };
        tokio::spawn(client.clone().connection_loop(nodes));
        tokio::spawn(client.clone().composer());
        client
    }

    pub fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the connection task (flags changed, new outbox entries).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Composes messages at the configured rate (and bursts on request), into the outbox.
    async fn composer(self) {
        let mut rng = StdRng::seed_from_u64(self.spec.seed ^ 0xc0ffee);
        loop {
            let jitter = rng.random_range(0.5..1.5);
            tokio::time::sleep(self.spec.every.mul_f64(jitter)).await;
            let mut st = self.lock();
            if st.done {
                return;
            }
            if st.stop_composing {
                drop(st);
                continue;
            }
            let burst = st.burst.take();
            let (room, n) = match burst {
                Some((room, n)) => (room, n),
                None => (
                    self.spec.rooms[rng.random_range(0..self.spec.rooms.len())],
                    1,
                ),
            };
            for _ in 0..n {
                st.next_id += 1;
                let id = format!("{}-m{}", self.spec.name, st.next_id);
                let offline = !st.connected;
                st.composed.push(Composed {
                    room,
                    id,
                    offline,
                    big: burst.is_some(),
                    seq: None,
                    fresh_acks: 0,
                    refused: None,
                });
                let index = st.composed.len() - 1;
                st.outbox.push(index);
            }
            drop(st);
            self.kick();
        }
    }

    async fn connection_loop(self, nodes: LiveNodes) {
        let mut rng = StdRng::seed_from_u64(self.spec.seed);
        let mut attempt = 0u32;
        loop {
            let (done, offline) = {
                let st = self.lock();
                (st.done, st.offline)
            };
            if done {
                return;
            }
            if offline {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), self.kick.notified()).await;
                continue;
            }
            let target = {
                let live = nodes.lock().unwrap_or_else(|e| e.into_inner());
                live.iter()
                    .find(|(i, _)| *i == self.spec.prefer_node)
                    .or_else(|| {
                        if live.is_empty() {
                            None
                        } else {
                            live.get(rng.random_range(0..live.len()))
                        }
                    })
                    .map(|(_, a)| *a)
            };
            let outcome = match target {
                Some(addr) => self.session(addr, &mut rng).await,
                None => Err("no live node".to_owned()),
            };
            {
                let mut st = self.lock();
                if st.connected {
                    st.lost_at = Some(Instant::now());
                }
                st.connected = false;
                st.written.clear();
                st.retry.clear();
            }
            match outcome {
                Ok(()) => attempt = 0,
                Err(_) => attempt = (attempt + 1).min(5),
            }
            // Backoff with jitter, as the protocol recommends (short: this is a test).
            let ceiling = 50u64 << attempt;
            let delay = rng.random_range(ceiling / 2..=ceiling);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }

    /// One socket, from connect to close. `Ok` when it was authenticated at some point.
    async fn session(&self, addr: SocketAddr, rng: &mut StdRng) -> Result<(), String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        // A small receive buffer so a client that stops reading fills the server's queue soon.
        let _ = socket.set_recv_buffer_size(8192);
        let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(3),
            tokio_tungstenite::client_async(url, stream),
        )
        .await
        .map_err(|_| "upgrade timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        let (resume, epoch) = {
            let st = self.lock();
            let resume: Vec<Cursor> = st
                .cursors
                .iter()
                .map(|(room, seq)| Cursor {
                    room: *room,
                    seq: *seq,
                })
                .collect();
            (resume, st.epoch.clone())
        };
        let hello = ClientFrame::Hello {
            token: self.spec.token.clone(),
            resume,
            epoch,
        };
        send(&mut ws, &hello).await?;
        // welcome, replay, ready — within a deadline.
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .map_err(|_| "no ready in time".to_owned())?;
            let frame = match msg {
                None => return Err("closed before ready".into()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    self.on_close(frame.map(|f| u16::from(f.code)));
                    return Err("closed before ready".into());
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                    Ok(f) => f,
                    Err(_) => continue,
                },
                Some(Ok(_)) => continue,
            };
            match frame {
                ServerFrame::Welcome { rooms, epoch, .. } => {
                    let mut st = self.lock();
                    st.connects += 1;
                    st.epoch = Some(epoch);
                    for room in &rooms {
                        if let std::collections::btree_map::Entry::Vacant(e) =
                            st.cursors.entry(room.id)
                        {
                            e.insert(room.last_seq);
                            st.start.insert(room.id, room.last_seq);
                        }
                    }
                    let listed: HashSet<RoomId> = rooms.iter().map(|r| r.id).collect();
                    let missing: Vec<RoomId> = st
                        .cursors
                        .keys()
                        .filter(|r| !listed.contains(r))
                        .copied()
                        .collect();
                    if !missing.is_empty() && !st.expect_wipe {
                        st.violations
                            .push(format!("welcome lacks rooms {missing:?} it is a member of"));
                    }
                }
                ServerFrame::Ready => break,
                other => self.on_frame(other),
            }
        }
        {
            let mut st = self.lock();
            st.connected = true;
            if let Some(lost) = st.lost_at.take() {
                let ms = lost.elapsed().as_millis();
                st.outages_ms.push(u64::try_from(ms).unwrap_or(u64::MAX));
            }
        }
        let mut ping = tokio::time::interval(Duration::from_millis(1000));
        let mut last_heard = Instant::now();
        let mut change_tick = tokio::time::interval(Duration::from_millis(400));
        loop {
            // Write what the outbox holds that this socket has not carried yet.
            let (to_write, offline, slow, done) = {
                let mut st = self.lock();
                let pending: Vec<usize> = st
                    .outbox
                    .iter()
                    .copied()
                    .filter(|i| !st.written.contains(i))
                    .collect();
                let mut frames = Vec::new();
                for i in pending {
                    st.written.insert(i);
                    let c = &st.composed[i];
                    let body = if c.big {
                        format!("{} {}", c.id, "x".repeat(29_000))
                    } else {
                        format!("body of {}", c.id)
                    };
                    frames.push(ClientFrame::Send {
                        room: c.room,
                        id: c.id.clone(),
                        body,
                        reply_to: None,
                        mentions: vec![],
                        mention_room: false,
                        attachments: Vec::new(),
                    });
                }
                (frames, st.offline, st.slow, st.done)
            };
            if offline || done {
                // Gone without a goodbye (as a laptop losing its network).
                return Ok(());
            }
            for frame in &to_write {
                send(&mut ws, frame).await?;
            }
            let read = async {
                if slow {
                    std::future::pending::<()>().await;
                }
                ws.next().await
            };
            tokio::select! {
                msg = read => {
                    last_heard = Instant::now();
                    match msg {
                        None => return Ok(()),
                        Some(Err(_)) => return Ok(()),
                        Some(Ok(Message::Close(frame))) => {
                            self.on_close(frame.map(|f| u16::from(f.code)));
                            return Ok(());
                        }
                        Some(Ok(Message::Text(t))) => {
                            if let Ok(frame) = serde_json::from_str::<ServerFrame>(&t) {
                                self.on_frame(frame);
                            }
                        }
                        Some(Ok(_)) => {}
                    }
                }
                _ = self.kick.notified() => {}
                _ = ping.tick() => {
                    if !slow {
                        if last_heard.elapsed() > Duration::from_secs(4) {
                            return Ok(());
                        }
                        send(&mut ws, &ClientFrame::Ping { reference: None }).await?;
                    } else {
                        last_heard = Instant::now();
                    }
                }
                _ = change_tick.tick() => {
                    {
                        let mut st = self.lock();
                        let again: Vec<usize> = st.retry.drain(..).collect();
                        for i in again {
                            st.written.remove(&i);
                        }
                    }
                    if let Some(frame) = self.maybe_change(rng) {
                        send(&mut ws, &frame).await?;
                    }
                }
            }
        }
    }

    /// Now and then, edit or delete one of this client's own messages.
    fn maybe_change(&self, rng: &mut StdRng) -> Option<ClientFrame> {
        let mut st = self.lock();
        if st.stop_composing || st.own.is_empty() || rng.random_range(0..4) != 0 {
            return None;
        }
        let pick = rng.random_range(0..st.own.len());
        let (room, seq) = st.own[pick];
        let delete = rng.random_range(0..3) == 0;
        if delete {
            st.own.swap_remove(pick);
        }
        st.next_ref += 1;
        let reference = format!("r{}", st.next_ref);
        st.pending_changes
            .insert(reference.clone(), (room, seq, delete));
        Some(if delete {
            ClientFrame::Delete {
                room,
                seq,
                reference: Some(reference),
            }
        } else {
            ClientFrame::Edit {
                room,
                seq,
                body: format!("edited {reference}"),
                reference: Some(reference),
            }
        })
    }

    fn on_close(&self, code: Option<u16>) {
        let mut st = self.lock();
        let code = code.unwrap_or(1005);
        st.closes.push(code);
        if st.expect_wipe && (code == protocol::close::UNAUTHORIZED || code == 4010) {
            st.wipe_signal
                .get_or_insert_with(|| format!("close {code}"));
            st.done = true;
        } else if code == protocol::close::STORE_RESET {
            // The store lost data (§3.6): what this client holds may be gone from the server
            // and the seqs after it reissued. Drop the cursors and start again from the server.
            st.cursors.clear();
            st.epoch = None;
        } else if code == protocol::close::UNAUTHORIZED {
            st.violations
                .push("session ended (4001) during the run".into());
            st.done = true;
        }
    }

    fn on_frame(&self, frame: ServerFrame) {
        match frame {
            ServerFrame::Event(event) => self.on_event(event),
            ServerFrame::Gap {
                room,
                after,
                until,
                reason,
            } => {
                let mut st = self.lock();
                let cursor = st.cursors.get(&room).copied();
                if cursor != Some(after) {
                    st.violations.push(format!(
                        "room {room}: gap after {after} but cursor is {cursor:?}"
                    ));
                }
                st.cursors.insert(room, until);
                st.gaps.push(GapSeen {
                    room,
                    after,
                    until,
                    reason,
                });
            }
            ServerFrame::Ack(ack) => {
                let mut st = self.lock();
                let Some(index) = st.composed.iter().position(|c| c.id == ack.id) else {
                    st.violations.push(format!("ack for unknown id {}", ack.id));
                    return;
                };
                let c = &mut st.composed[index];
                if !ack.duplicate {
                    c.fresh_acks += 1;
                }
                match c.seq {
                    None => c.seq = Some(ack.seq),
                    Some(seq) if seq != ack.seq => {
                        let msg = format!(
                            "id {} acked with seq {seq} and later with seq {}",
                            ack.id, ack.seq
                        );
                        st.violations.push(msg);
                    }
                    Some(_) => {}
                }
                let first = st.outbox.contains(&index);
                st.outbox.retain(|i| *i != index);
                if first {
                    st.own.push((ack.room, ack.seq));
                }
            }
            ServerFrame::Ok { reference } => {
                let mut st = self.lock();
                if let Some(change) = st.pending_changes.remove(&reference) {
                    st.changes_ok.push(change);
                }
            }
            ServerFrame::Error {
                code,
                id,
                reference,
                ..
            } => {
                let mut st = self.lock();
                st.errors.push(code);
                if let Some(reference) = reference {
                    st.pending_changes.remove(&reference);
                }
                let Some(id) = id else { return };
                let Some(index) = st.composed.iter().position(|c| c.id == id) else {
                    return;
                };
                let transient = matches!(
                    code,
                    ErrorCode::StoreUnavailable | ErrorCode::Internal | ErrorCode::RateLimited
                );
                if transient {
                    // Resend on the next connection, or on this one after a pause (not at
                    // once: during a store outage that would be a busy loop).
                    st.retry.push(index);
                } else {
                    st.composed[index].refused = Some(code);
                    st.outbox.retain(|i| *i != index);
                    if !st.expect_wipe {
                        st.violations
                            .push(format!("send {id} refused with {code:?}"));
                    }
                }
            }
            _ => {}
        }
    }

    fn on_event(&self, event: RoomEvent) {
        let mut st = self.lock();
        let room = event.room;
        let Some(&cursor) = st.cursors.get(&room) else {
            st.violations
                .push(format!("event of room {room} this client does not follow"));
            return;
        };
        let ident = Ident::of(&event.event);
        if event.seq <= cursor {
            st.violations.push(format!(
                "room {room}: seq {} delivered again (cursor {cursor})",
                event.seq
            ));
            return;
        }
        if event.seq > cursor + 1 {
            st.violations.push(format!(
                "room {room}: seq {} arrived after {cursor} without a gap frame",
                event.seq
            ));
        }
        st.cursors.insert(room, event.seq);
        st.seen.entry(room).or_default().push((event.seq, ident));
    }
}

async fn send<S>(ws: &mut S, frame: &ClientFrame) -> Result<(), String>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(3), ws.send(Message::text(text)))
        .await
        .map_err(|_| "write timed out".to_owned())?
        .map_err(|_| "write failed".to_owned())
}
