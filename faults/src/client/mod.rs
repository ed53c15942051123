//! A scripted protocol client: speaks `docs/protocol.md` over tokio-tungstenite exactly as the
//! recommended client algorithm says (§6.5) — `hello` with resume cursors, an outbox of
//! unacknowledged sends resent with their original ids after `ready`, pings — and records
//! everything it observes for the checker. Besides plain messages it replies to earlier
//! messages (its own often, which it may delete later), attaches files (uploaded over REST
//! first, to any live node, again after a failure), edits and deletes its own messages, and
//! adds and takes back reactions (everyone toggles 👍 on the newest messages of the shared
//! room). Edits, deletes and reactions go through a second outbox, resent after every `ready`
//! until answered; at most one per message (and emoji) is pending, so a stale resend can never
//! overtake a newer change. It keeps every message it received up to date with the events
//! that followed (text, deleted, reactions): the checker compares that with history.
//!
//! The connection task reconnects to any live node. Faults reach it through flags: `offline`
//! (drop the socket and stay away while still composing into the outbox), `slow` (stop reading
//! the socket so the server's queue for it fills), and `burst` (compose many messages at once).
//! Violations the client can see on its own (a seq twice, a seq skipped without a `gap`) are
//! recorded the moment they happen.

use crate::files;
use futures_util::{SinkExt, StreamExt};
use protocol::event::Reaction;
use protocol::ws::{ClientFrame, Cursor, GapReason};
use protocol::{Attachment, ErrorCode, EventBody, RoomEvent, RoomId, ServerFrame, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

mod compose;
mod receive;

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
    /// The message it answers: its seq and what the client held at that seq.
    pub reply_to: Option<(u64, Ident)>,
    /// The file it carries (uploaded before the message enters the outbox).
    pub upload: Option<Upload>,
    /// The seq of the first ack.
    pub seq: Option<u64>,
    /// Acks with `duplicate: false` (must be at most one).
    pub fresh_acks: u32,
    /// Refused with a permanent error.
    pub refused: Option<ErrorCode>,
}

/// A file attached to a composed message.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Arc<Vec<u8>>,
    pub image: bool,
    /// What the server answered the upload that succeeded (`None` while uploading).
    pub stored: Option<Attachment>,
    /// Attempts that failed (node down, store unavailable) before one succeeded.
    pub failed_attempts: u32,
    /// The upload was refused for good (status and code).
    pub refused: Option<String>,
}

impl Upload {
    fn new(file: files::File) -> Upload {
        Upload {
            name: file.name,
            bytes: Arc::new(file.bytes),
            image: file.image,
            stored: None,
            failed_attempts: 0,
            refused: None,
        }
    }
}

/// An edit, delete or reaction the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Edit(String),
    Delete,
    React { emoji: String, add: bool },
}

/// One change request and what became of it.
#[derive(Debug, Clone)]
pub struct Change {
    pub room: RoomId,
    pub target: u64,
    pub op: Op,
    pub reference: String,
    /// Written twice in a row (a second device doing the same): must count once.
    pub twice: bool,
    /// Answered `ok` (a delete answered `message_deleted` counts: an earlier copy went through).
    pub confirmed: bool,
    pub refused: Option<ErrorCode>,
}

impl Change {
    /// Changes with the same key apply to the same thing: one message's text and deleted state,
    /// or one emoji of one message.
    pub fn key(&self) -> (RoomId, u64, Option<&str>) {
        match &self.op {
            Op::React { emoji, .. } => (self.room, self.target, Some(emoji)),
            Op::Edit(_) | Op::Delete => (self.room, self.target, None),
        }
    }
}

/// A message as this client knows it now: as received, with every later event applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub sender: UserId,
    pub id: String,
    pub body: String,
    pub deleted: bool,
    pub reply_to: Option<u64>,
    pub reactions: Vec<Reaction>,
    pub attachments: Vec<String>,
}

/// Emoji the clients react with (fully qualified already: the server keeps them as sent).
pub const EMOJI: [&str; 3] = ["👍", "🎉", "😂"];

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
    /// Every edit, delete and reaction asked for, in order.
    pub changes: Vec<Change>,
    /// Indexes into `changes` not answered yet, in order.
    pub change_outbox: Vec<usize>,
    change_written: HashSet<usize>,
    change_retry: Vec<usize>,
    /// Per room, the messages received (by seq), kept up to date with later events.
    pub views: BTreeMap<RoomId, BTreeMap<u64, View>>,
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

impl ClientState {
    /// Nothing left to send: no message waiting for an ack or its upload, no change waiting
    /// for an answer.
    pub fn outboxes_empty(&self) -> bool {
        self.outbox.is_empty() && self.change_outbox.is_empty() && self.uploading() == 0
    }

    /// Messages whose file is still being uploaded.
    pub fn uploading(&self) -> usize {
        self.composed
            .iter()
            .filter(|c| {
                c.upload
                    .as_ref()
                    .is_some_and(|u| u.stored.is_none() && u.refused.is_none())
            })
            .count()
    }

    fn pending_on(&self, key: (RoomId, u64, Option<&str>)) -> bool {
        self.change_outbox
            .iter()
            .any(|i| self.changes[*i].key() == key)
    }
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
    /// Attach files to some messages (the nodes store them).
    pub files: bool,
}

/// A running scripted client.
#[derive(Clone)]
pub struct Client {
    pub spec: Arc<ClientSpec>,
    pub state: Arc<Mutex<ClientState>>,
    kick: Arc<tokio::sync::Notify>,
    nodes: LiveNodes,
    http: reqwest::Client,
}

/// The node addresses clients may connect to (nodes that are down are left out).
pub type LiveNodes = Arc<Mutex<Vec<(usize, SocketAddr)>>>;

impl Client {
    pub fn start(spec: ClientSpec, nodes: LiveNodes) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        let client = Client {
            spec: Arc::new(spec),
            state: Arc::new(Mutex::new(ClientState::default())),
            kick: Arc::new(tokio::sync::Notify::new()),
            nodes,
            http,
        };
        tokio::spawn(client.clone().connection_loop());
        tokio::spawn(client.clone().composer());
        client
    }

    /// A live node to talk to: the preferred one when it is up.
    fn pick_node(&self, rng: &mut StdRng) -> Option<SocketAddr> {
        let live = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
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
    }

    pub fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the connection task (flags changed, new outbox entries).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    async fn connection_loop(self) {
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
            let target = self.pick_node(&mut rng);
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
                st.change_written.clear();
                st.change_retry.clear();
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
                        reply_to: c.reply_to.as_ref().map(|r| r.0),
                        mentions: vec![],
                        mention_room: false,
                        attachments: c
                            .upload
                            .iter()
                            .filter_map(|u| u.stored.as_ref().map(|a| a.id.clone()))
                            .collect(),
                    });
                }
                let changes: Vec<usize> = st
                    .change_outbox
                    .iter()
                    .copied()
                    .filter(|i| !st.change_written.contains(i))
                    .collect();
                for i in changes {
                    st.change_written.insert(i);
                    let c = &st.changes[i];
                    frames.push(change_frame(c, c.reference.clone()));
                    if c.twice {
                        frames.push(change_frame(c, format!("{}b", c.reference)));
                    }
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
                    let mut st = self.lock();
                    let again: Vec<usize> = st.retry.drain(..).collect();
                    for i in again {
                        st.written.remove(&i);
                    }
                    let again: Vec<usize> = st.change_retry.drain(..).collect();
                    for i in again {
                        st.change_written.remove(&i);
                    }
                    self.maybe_change(&mut st, rng);
                    self.maybe_react(&mut st, rng);
                }
            }
        }
    }
}

impl ClientState {
    fn change_index(&self, reference: &str) -> Option<usize> {
        self.change_outbox
            .iter()
            .copied()
            .find(|i| self.changes[*i].reference == reference)
    }
}

/// Applies one event to the messages a client holds, as a client showing them must.
pub fn apply(views: &mut BTreeMap<u64, View>, seq: u64, body: EventBody) {
    match body {
        EventBody::Message {
            id,
            sender,
            body,
            deleted,
            reply_to,
            reactions,
            attachments,
            ..
        } => {
            views.insert(
                seq,
                View {
                    sender,
                    id,
                    body,
                    deleted,
                    reply_to,
                    reactions,
                    attachments: attachments.into_iter().map(|a| a.id).collect(),
                },
            );
        }
        EventBody::Edit { target, body, .. } => {
            if let Some(v) = views.get_mut(&target) {
                v.body = body;
            }
        }
        EventBody::Delete { target, .. } => {
            if let Some(v) = views.get_mut(&target) {
                v.deleted = true;
                v.body.clear();
                v.reactions.clear();
                v.attachments.clear();
            }
        }
        EventBody::ReactionAdded {
            target,
            user,
            emoji,
        } => {
            if let Some(v) = views.get_mut(&target) {
                protocol::event::apply_reaction(&mut v.reactions, user, &emoji, true);
            }
        }
        EventBody::ReactionRemoved {
            target,
            user,
            emoji,
        } => {
            if let Some(v) = views.get_mut(&target) {
                protocol::event::apply_reaction(&mut v.reactions, user, &emoji, false);
            }
        }
        _ => {}
    }
}

fn change_frame(c: &Change, reference: String) -> ClientFrame {
    let (room, seq, reference) = (c.room, c.target, Some(reference));
    match &c.op {
        Op::Edit(body) => ClientFrame::Edit {
            room,
            seq,
            body: body.clone(),
            reference,
        },
        Op::Delete => ClientFrame::Delete {
            room,
            seq,
            reference,
        },
        Op::React { emoji, add } => ClientFrame::React {
            room,
            seq,
            emoji: emoji.clone(),
            remove: !add,
            reference,
        },
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
