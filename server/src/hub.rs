//! The hub: this node's routing table from rooms and users to live connections.
//!
//! The bus (every event of every node, in publish order) is routed here on the store's own task
//! (see [`BusSink`]): each frame goes to the bounded queue of every local connection it
//! concerns, with no task hop in between. Frames arrive serialized; the hub
//! shares the same bytes with every recipient. A connection whose queue is full is closed as a
//! slow consumer (it resumes on reconnect) instead of growing memory. The hub never awaits while
//! holding its lock.
//!
//! A connection's queue is a plain deque behind a mutex rather than a channel: an idle
//! connection's queue holds no allocation at all (a bounded tokio channel allocates a block of
//! slots up front, ~2 KB per socket), and the connection takes everything queued in one swap,
//! so a burst costs one lock and one wake-up instead of one per frame.
//!
//! The connection's task waits on one signal from the hub ([`ConnHandle::signal`]): something
//! was queued, or the connection is to close (slow consumer, revoked session, store reset,
//! shutdown). Both are atomic flags behind one `AtomicWaker`, lock-free. The task is woken for
//! every delivery and polls everything it waits on each time: a `Notify` per wait took a mutex
//! per poll, and a cancellation token for the kill cost ~350 instructions per delivery, the
//! largest single costs above the floor (bench/analysis.md). Shutdown reaches every connection
//! through [`Hub::close_all`], and a connection registered after the shutdown began is born
//! closing.

use crate::store::bus::{self, MemberRoute, Route};
use crate::store::Store;
use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use protocol::{close, RoomId, UserId};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::task::Poll;
use tokio_util::sync::CancellationToken;

/// A map keyed by server-assigned ids (rooms, users, connections), hashed with one multiply
/// instead of SipHash. The keys are handed out by the server, not chosen by a client, so
/// hash flooding does not apply; the per-socket cursor map is looked up on every delivery.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: FxHash's multiply for integer keys (the high bits, which the
/// table's probe tags use, depend on every bit of the id).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// FxHash's constant (rustc-hash): odd, with well-spread bits.
const ID_HASH_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer ids; any other key still hashes all of its bytes.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.wrapping_add(n).wrapping_mul(ID_HASH_K);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weak; the table indexes by them, so rotate the
        // strong high bits down (as rustc-hash does).
        self.0.rotate_left(26)
    }
}

/// What the hub hands a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A room event; the connection delivers it if it is the next seq it expects.
    Event {
        room: RoomId,
        seq: u64,
        member: Option<MemberRoute>,
        frame: Utf8Bytes,
        /// When the store accepted it (ms), for the delivery latency metric; 0 when metrics
        /// are off (read once here, not once per recipient).
        ts: i64,
    },
    /// Any other frame, sent as is.
    Frame(Utf8Bytes),
    /// The bus may have dropped events: the room's newest seq is `last_seq`; fill any gap.
    Probe { room: RoomId, last_seq: u64 },
}

/// The hub's handle on one connection.
pub struct ConnHandle {
    pub id: u64,
    pub user: UserId,
    pub session: String,
    /// Frames waiting for the connection's task, at most `capacity`.
    queue: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    /// Set when `queue` gains an item, cleared by the task when it wakes for it (a permit kept
    /// while the task is busy).
    queued: AtomicBool,
    /// The connection's task, woken when `queued` or `killed` is set.
    waker: AtomicWaker,
    /// Set by [`ConnHandle::kill`], after `reason`.
    killed: AtomicBool,
    reason: OnceLock<(u16, &'static str)>,
}

/// What woke a connection's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Something was queued since the last wake-up (the queue may be empty by now).
    Queued,
    /// Close with this code and reason.
    Killed(u16, &'static str),
}

impl ConnHandle {
    fn offer(&self, item: Outbound) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= self.capacity {
            drop(queue);
            self.kill(
                close::SLOW_CONSUMER,
                "outbound queue full; reconnect and resume",
            );
            return;
        }
        queue.push_back(item);
        drop(queue);
        self.queued.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once the connection was asked to close (this wins) or something was queued
    /// since the last wake-up.
    pub async fn signal(&self) -> Signal {
        std::future::poll_fn(|cx| {
            if let Some(signal) = self.pending() {
                return Poll::Ready(signal);
            }
            self.waker.register(cx.waker());
            // Set between the check and the registration: `offer` or `kill` may have woken
            // the previous waker.
            match self.pending() {
                Some(signal) => Poll::Ready(signal),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn pending(&self) -> Option<Signal> {
        if self.killed.load(Ordering::Acquire) {
            let (code, reason) = self
                .reason
                .get()
                .copied()
                .unwrap_or((close::GOING_AWAY, "server shutting down; reconnect"));
            return Some(Signal::Killed(code, reason));
        }
        self.queued
            .swap(false, Ordering::AcqRel)
            .then_some(Signal::Queued)
    }

    /// Moves everything queued into `into` (which should be empty), in order. Swapping the
    /// two deques keeps both allocations, so a busy connection does not allocate per batch.
    pub fn take(&self, into: &mut VecDeque<Outbound>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *queue, into);
    }

    /// Asks the connection to close with `code`; the first reason given wins.
    pub fn kill(&self, code: u16, reason: &'static str) {
        let _ = self.reason.set((code, reason));
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the connection was asked to close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct Routes {
    rooms: IdMap<RoomId, Vec<Arc<ConnHandle>>>,
    users: IdMap<UserId, Vec<Arc<ConnHandle>>>,
    /// Per connection id: the rooms it is routed in, so unregistering finds them all.
    joined: IdMap<u64, Vec<RoomId>>,
}

impl Routes {
    fn add(&mut self, room: RoomId, conn: &Arc<ConnHandle>) {
        let list = self.rooms.entry(room).or_default();
        if !list.iter().any(|c| c.id == conn.id) {
            list.push(conn.clone());
            self.joined.entry(conn.id).or_default().push(room);
        }
    }

    fn remove(&mut self, room: RoomId, conn: u64) {
        if let Some(list) = self.rooms.get_mut(&room) {
            remove_conn(list, conn);
            if list.is_empty() {
                self.rooms.remove(&room);
            }
        }
        if let Some(rooms) = self.joined.get_mut(&conn) {
            rooms.retain(|r| *r != room);
        }
    }
}

/// This node's connections.
#[derive(Default)]
pub struct Hub {
    routes: RwLock<Routes>,
    next_id: AtomicU64,
    /// The server's shutdown token: a connection registered once it is cancelled is born
    /// closing (the ones before are closed by [`Hub::close_all`], which shutdown calls after
    /// cancelling it; both hold the routes lock, so none is missed).
    shutdown: CancellationToken,
}

fn remove_conn(list: &mut Vec<Arc<ConnHandle>>, id: u64) {
    list.retain(|c| c.id != id);
}

impl Hub {
    /// A hub that refuses new connections once `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Hub {
        Hub {
            shutdown,
            ..Hub::default()
        }
    }

    /// Adds a connection whose queue holds at most `queue` frames; returns its handle and
    /// whether it is the user's first on this node (presence goes online). `None` when the user
    /// already has `max_per_user` connections here.
    pub fn register(
        &self,
        user: UserId,
        session: String,
        queue: usize,
        max_per_user: usize,
    ) -> Option<(Arc<ConnHandle>, bool)> {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let conns = routes.users.entry(user).or_default();
        if conns.len() >= max_per_user {
            return None;
        }
        let handle = Arc::new(ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            session,
            queue: Mutex::new(VecDeque::new()),
            capacity: queue,
            queued: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            killed: AtomicBool::new(false),
            reason: OnceLock::new(),
        });
        if self.shutdown.is_cancelled() {
            handle.kill(close::GOING_AWAY, "server shutting down; reconnect");
        }
        conns.push(handle.clone());
        let first = conns.len() == 1;
        Some((handle, first))
    }

    /// Removes a connection from every route; true if it was the user's last on this node.
    pub fn unregister(&self, conn: &ConnHandle) -> bool {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for room in routes.joined.remove(&conn.id).unwrap_or_default() {
            if let Some(list) = routes.rooms.get_mut(&room) {
                remove_conn(list, conn.id);
                if list.is_empty() {
                    routes.rooms.remove(&room);
                }
            }
        }
        let Some(list) = routes.users.get_mut(&conn.user) else {
            return false;
        };
        remove_conn(list, conn.id);
        let last = list.is_empty();
        if last {
            routes.users.remove(&conn.user);
        }
        last
    }

    /// Routes a room's events to this connection.
    pub fn join(&self, conn: &Arc<ConnHandle>, rooms: &[RoomId]) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for room in rooms {
            routes.add(*room, conn);
        }
    }

    /// Stops routing rooms' events to this connection.
    pub fn leave(&self, conn: &ConnHandle, rooms: &[RoomId]) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for room in rooms {
            routes.remove(*room, conn.id);
        }
    }

    /// Users with at least one connection on this node.
    pub fn users(&self) -> Vec<UserId> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.users.keys().copied().collect()
    }

    /// Number of live connections on this node.
    pub fn connections(&self) -> usize {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.users.values().map(Vec::len).sum()
    }

    /// Asks every connection to close (shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        for conn in routes.users.values().flatten() {
            conn.kill(code, reason);
        }
    }

    /// Routes one bus message to local connections.
    pub fn dispatch(&self, msg: String) {
        let Some((route, frame)) = bus::parse(&msg) else {
            tracing::warn!(len = msg.len(), "malformed bus message dropped");
            return;
        };
        // The frame is the message's tail: shifted to the front of the message's own buffer
        // rather than copied into a new one (one allocation per message fewer).
        let start = msg.len() - frame.len();
        let frame = if msg.ends_with(frame) {
            let mut msg = msg;
            msg.drain(..start);
            Utf8Bytes::from(msg)
        } else {
            Utf8Bytes::from(frame.to_owned())
        };
        match route {
            Route::Room { room, seq, member } => {
                if let Some(MemberRoute::Joined(user)) = member {
                    let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
                    let joining: Vec<Arc<ConnHandle>> =
                        routes.users.get(&user).cloned().unwrap_or_default();
                    for conn in joining {
                        routes.add(room, &conn);
                    }
                }
                let item = Outbound::Event {
                    room,
                    seq,
                    member,
                    ts: crate::metrics::bus_routed(frame.as_str()),
                    frame,
                };
                {
                    let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                    for conn in routes.rooms.get(&room).into_iter().flatten() {
                        conn.offer(item.clone());
                    }
                }
                if let Some(MemberRoute::Left(user)) = member {
                    let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
                    let leaving: Vec<u64> = routes
                        .users
                        .get(&user)
                        .into_iter()
                        .flatten()
                        .map(|c| c.id)
                        .collect();
                    for conn in leaving {
                        routes.remove(room, conn);
                    }
                }
                if member == Some(MemberRoute::RoomDeleted) {
                    let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
                    let leaving: Vec<u64> = routes
                        .rooms
                        .get(&room)
                        .into_iter()
                        .flatten()
                        .map(|c| c.id)
                        .collect();
                    for conn in leaving {
                        routes.remove(room, conn);
                    }
                }
            }
            Route::Typing { room, user } => {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                for conn in routes
                    .rooms
                    .get(&room)
                    .into_iter()
                    .flatten()
                    .filter(|c| c.user != user)
                {
                    conn.offer(Outbound::Frame(frame.clone()));
                }
            }
            Route::User { user } => {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                for conn in routes.users.get(&user).into_iter().flatten() {
                    conn.offer(Outbound::Frame(frame.clone()));
                }
            }
            Route::Presence { user, rooms } => {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                let mut seen = std::collections::HashSet::new();
                for room in &rooms {
                    for conn in routes.rooms.get(room).into_iter().flatten() {
                        if conn.user != user && seen.insert(conn.id) {
                            conn.offer(Outbound::Frame(frame.clone()));
                        }
                    }
                }
            }
            Route::Revoke { user, session } => {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                for conn in routes
                    .users
                    .get(&user)
                    .into_iter()
                    .flatten()
                    .filter(|c| c.session == session)
                {
                    conn.kill(close::UNAUTHORIZED, "session revoked");
                }
            }
        }
    }

    /// Rooms with at least one local connection.
    fn active_rooms(&self) -> Vec<RoomId> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.rooms.keys().copied().collect()
    }

    /// After a lost bus subscription: tell every connection each room's newest seq so it
    /// fetches anything the bus dropped. Retried while the store refuses the read (a cluster
    /// right after a slot move or a failover): a room whose traffic stopped meanwhile gets no
    /// next event to catch up on.
    async fn resync(&self, store: &Store) {
        let mut delay = std::time::Duration::from_millis(100);
        for _attempt in 0..RESYNC_ATTEMPTS {
            match self.probe_rooms(store).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "resync: cannot read rooms; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(2));
        }
        tracing::error!("resync: gave up; connections catch up on their rooms' next events");
    }

    async fn probe_rooms(&self, store: &Store) -> crate::error::StoreResult<()> {
        let rooms = self.active_rooms();
        for chunk in rooms.chunks(256) {
            let metas = store.rooms(chunk).await?;
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            for meta in metas {
                for conn in routes.rooms.get(&meta.id).into_iter().flatten() {
                    conn.offer(Outbound::Probe {
                        room: meta.id,
                        last_seq: meta.last_seq,
                    });
                }
            }
        }
        Ok(())
    }
}

/// How often [`Hub::resync`] reads the rooms before it gives up (about a minute in all).
const RESYNC_ATTEMPTS: usize = 35;

/// The hub's end of the bus ([`bus::Sink`]): routes each message on the store's task that
/// received it (the Redis subscriber connection's reader, or the embedded store's append). A
/// channel and a hub task in between cost two task wake-ups per message before any recipient
/// was touched (bench/analysis.md, issue 17).
pub struct BusSink {
    hub: Arc<Hub>,
    /// Weak: the store holds this sink.
    store: Weak<Store>,
}

impl BusSink {
    pub fn new(hub: Arc<Hub>, store: &Arc<Store>) -> BusSink {
        BusSink {
            hub,
            store: Arc::downgrade(store),
        }
    }
}

impl bus::Sink for BusSink {
    fn message(&self, msg: String) {
        self.hub.dispatch(msg);
    }

    fn resync(&self) {
        crate::metrics::get().bus_resyncs.increment(1);
        // Reads the store, so not on the caller's task. Events routed meanwhile are fine in
        // any order: each connection's `deliver` fills gaps and drops what it already has.
        let Some(store) = self.store.upgrade() else {
            return;
        };
        let hub = self.hub.clone();
        tokio::spawn(async move { hub.resync(&store).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the connection's task would take from its queue now.
    fn drain(conn: &ConnHandle) -> Vec<Outbound> {
        let mut taken = VecDeque::new();
        conn.take(&mut taken);
        taken.into()
    }

    fn seqs(conn: &ConnHandle) -> Vec<u64> {
        drain(conn)
            .into_iter()
            .filter_map(|item| match item {
                Outbound::Event { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    }

    fn event(room: u64, seq: u64, member: Option<MemberRoute>) -> String {
        let frame = bus::event_frame(
            RoomId(room),
            seq,
            1,
            r#"{"kind":"delete","target":1,"sender":1}"#,
        );
        bus::room_msg(RoomId(room), seq, member, &frame)
    }

    /// The frame a connection gets is the bus message after its routing line, byte for byte,
    /// whichever reading (the fast one, the general one) routed it.
    #[test]
    fn the_frame_is_the_message_after_its_routing_line() {
        let hub = Hub::default();
        let (a, _) = hub.register(UserId(1), "s1".into(), 16, 32).expect("cap");
        hub.register(UserId(2), "s2".into(), 16, 32).expect("cap");
        hub.join(&a, &[RoomId(10)]);
        let frame = r#"{"type":"event","room":10,"body":"é \n x"}"#;
        hub.dispatch(bus::room_msg(RoomId(10), 1, None, frame));
        let joined = Some(MemberRoute::Joined(UserId(3)));
        hub.dispatch(bus::room_msg(RoomId(10), 2, joined, frame));
        hub.dispatch(bus::typing_msg(RoomId(10), UserId(2), frame));
        hub.dispatch(bus::user_msg(UserId(1), ""));
        let frames: Vec<String> = drain(&a)
            .into_iter()
            .map(|item| match item {
                Outbound::Event { frame, .. } | Outbound::Frame(frame) => frame.as_str().to_owned(),
                Outbound::Probe { .. } => String::new(),
            })
            .collect();
        assert_eq!(frames, [frame, frame, frame, ""]);
    }

    #[test]
    fn routes_room_events_and_membership() {
        let hub = Hub::default();
        let (a, first) = hub
            .register(UserId(1), "s1".into(), 16, 32)
            .expect("under the cap");
        assert!(first);
        let (b, _) = hub
            .register(UserId(2), "s2".into(), 16, 32)
            .expect("under the cap");
        hub.join(&a, &[RoomId(10)]);

        hub.dispatch(event(10, 1, None));
        assert_eq!(seqs(&a), [1]);
        assert!(seqs(&b).is_empty());

        // User 2 joins: the join event and later ones reach them; after leaving, nothing does.
        hub.dispatch(event(10, 2, Some(MemberRoute::Joined(UserId(2)))));
        assert_eq!(seqs(&b), [2]);
        hub.dispatch(event(10, 3, Some(MemberRoute::Left(UserId(2)))));
        assert_eq!(seqs(&b), [3]);
        hub.dispatch(event(10, 4, None));
        assert!(seqs(&b).is_empty());
        assert_eq!(seqs(&a), [2, 3, 4]);
    }

    #[tokio::test]
    async fn queued_frames_wake_the_connection_once_and_keep_order() {
        let hub = Hub::default();
        let (a, _) = hub
            .register(UserId(1), "s".into(), 16, 32)
            .expect("under the cap");
        hub.join(&a, &[RoomId(1)]);
        for seq in 1..=5 {
            hub.dispatch(event(1, seq, None));
        }
        let signal = tokio::time::timeout(std::time::Duration::from_secs(1), a.signal())
            .await
            .expect("queued frames wake the connection");
        assert_eq!(signal, Signal::Queued);
        assert_eq!(seqs(&a), [1, 2, 3, 4, 5]);
        // Taken in one batch: nothing is left, and later frames start a new batch.
        assert!(drain(&a).is_empty());
        hub.dispatch(event(1, 6, None));
        assert_eq!(seqs(&a), [6]);
    }

    #[tokio::test]
    async fn full_queue_kills_slow_consumer() {
        let hub = Hub::default();
        let (a, _) = hub
            .register(UserId(1), "s".into(), 2, 32)
            .expect("under the cap");
        hub.join(&a, &[RoomId(1)]);
        for seq in 1..=3 {
            hub.dispatch(event(1, seq, None));
        }
        let signal = tokio::time::timeout(std::time::Duration::from_secs(1), a.signal())
            .await
            .unwrap();
        assert!(matches!(signal, Signal::Killed(close::SLOW_CONSUMER, _)));
    }

    #[test]
    fn sockets_per_user_are_capped() {
        let hub = Hub::default();
        let (a, _) = hub.register(UserId(1), "s1".into(), 4, 2).expect("first");
        let _b = hub.register(UserId(1), "s2".into(), 4, 2).expect("second");
        assert!(hub.register(UserId(1), "s3".into(), 4, 2).is_none());
        // Other users are not affected, and a closed socket frees its place.
        assert!(hub.register(UserId(2), "s4".into(), 4, 2).is_some());
        hub.unregister(&a);
        assert!(hub.register(UserId(1), "s5".into(), 4, 2).is_some());
    }

    #[test]
    fn revoke_kills_only_that_session() {
        let hub = Hub::default();
        let (a, _) = hub
            .register(UserId(1), "s1".into(), 4, 32)
            .expect("under the cap");
        let (b, first) = hub
            .register(UserId(1), "s2".into(), 4, 32)
            .expect("under the cap");
        assert!(!first);
        hub.dispatch(bus::revoke_msg(UserId(1), "s2"));
        assert!(b.is_killed());
        assert!(!a.is_killed());
        assert!(!hub.unregister(&a));
        assert!(hub.unregister(&b));
    }

    #[test]
    fn the_store_feeds_the_hub_once_attached() {
        let store = Arc::new(Store::Memory(Box::default()));
        let hub = Arc::new(Hub::default());
        let (a, _) = hub
            .register(UserId(1), "s".into(), 16, 32)
            .expect("under the cap");
        hub.join(&a, &[RoomId(1)]);
        let feed = bus::Feed::default();
        // Nothing is attached yet: dropped (no connection can be registered before that).
        feed.message(event(1, 1, None));
        assert!(seqs(&a).is_empty());
        assert!(feed.attach(Arc::new(BusSink::new(hub.clone(), &store))));
        assert!(!feed.attach(Arc::new(BusSink::new(hub.clone(), &store))));
        feed.message(event(1, 2, None));
        feed.message(event(1, 3, None));
        assert_eq!(seqs(&a), [2, 3]);
    }

    #[tokio::test]
    async fn shutdown_closes_connections_before_and_after_it() {
        let shutdown = CancellationToken::new();
        let hub = Hub::new(shutdown.clone());
        let (a, _) = hub
            .register(UserId(1), "s1".into(), 4, 32)
            .expect("under the cap");
        hub.join(&a, &[RoomId(1)]);
        hub.dispatch(event(1, 1, None));
        shutdown.cancel();
        hub.close_all(close::GOING_AWAY, "bye");
        // Closing wins over what is queued.
        let signal = tokio::time::timeout(std::time::Duration::from_secs(1), a.signal())
            .await
            .unwrap();
        assert_eq!(signal, Signal::Killed(close::GOING_AWAY, "bye"));
        let (b, _) = hub
            .register(UserId(2), "s2".into(), 4, 32)
            .expect("under the cap");
        let signal = tokio::time::timeout(std::time::Duration::from_secs(1), b.signal())
            .await
            .unwrap();
        assert!(matches!(signal, Signal::Killed(close::GOING_AWAY, _)));
    }
}
