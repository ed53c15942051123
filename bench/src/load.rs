//! A fleet of connections spread over rooms, with open-loop senders and exactly-once accounting.
//!
//! Each connection runs one task that reads frames and, if it is a sender, writes messages on a
//! fixed schedule computed from the step's start time: message `k` of a sender is *intended* at
//! `start + phase + k / rate`, whatever happened to earlier messages, and its body carries that
//! intended time. Receivers measure latency from it, so a slow server cannot hide latency by
//! slowing the sender down (no coordinated omission). A sender that falls behind sends the
//! overdue messages at once (burst catch-up), and their latency counts from when they were due.
//!
//! Every delivered message is checked off in a per-(receiver, sender) bitset: a second copy is a
//! duplicate, a missing one a drop. The expected deliveries are the acknowledged messages times
//! the size of the sender's room.

use crate::setup::Provisioned;
use crate::wire::{Client, Incoming};
use crate::{Deployment, Result};
use futures_util::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Connections opened from one 127.0.0.x source address before moving to the next (the
/// ephemeral port range holds about 28k).
pub const CONNS_PER_SOURCE: usize = 20_000;
/// Successive fleets start at different source addresses, so that the ports an earlier fleet
/// left in TIME_WAIT do not run out the next one's.
static NEXT_SOURCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Source address of connection `c` of a fleet: 127.0.0.2 ..= 127.0.0.251, a new one every
/// [`CONNS_PER_SOURCE`] connections, starting at the fleet's base.
fn source_addr(base: usize, c: usize) -> IpAddr {
    source_ip(base + c / CONNS_PER_SOURCE)
}

/// Source address number `n` (modulo 250): 127.0.0.2 ..= 127.0.0.251.
pub fn source_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 250) as u8))
}

/// Reserves `n` consecutive source address numbers for one fleet or generator worker. Each
/// process starts at an offset of its own, so that a run right after another does not reuse
/// the addresses whose ports the previous one left in TIME_WAIT.
pub fn take_sources(n: usize) -> usize {
    let offset = (std::process::id() as usize % 25) * 10;
    offset + NEXT_SOURCE.fetch_add(n, Ordering::Relaxed)
}

/// The next step number (process-wide; 0 is never used, it marks "no step" in fresh stats).
static NEXT_STEP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
/// Handshakes in flight while a fleet grows.
const CONNECT_CONCURRENCY: usize = 64;
/// Overdue messages a late sender writes before it reads again.
const MAX_BURST: u32 = 256;

/// How connections are laid out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    /// Connections per room.
    pub members: usize,
    /// The first this many connections of each room send.
    pub senders_per_room: usize,
    /// Node (index into `Deployment::nodes`) of the senders.
    pub sender_node: usize,
    /// Node of everyone else.
    pub receiver_node: usize,
}

/// What the fleet does now; changed by the controller, watched by every connection.
#[derive(Debug, Clone)]
enum Plan {
    Quiet,
    Send {
        step: u32,
        /// Microseconds since the fleet's epoch.
        start_us: u64,
        end_us: u64,
        /// Microseconds between two messages of one sender.
        interval_us: f64,
        n_senders: u32,
        body_bytes: usize,
        /// Open connections per room (index as in `Fleet::rooms`).
        room_sizes: Arc<Vec<u64>>,
    },
    Close,
}

/// Counters shared by all connections for the running step.
struct Shared {
    epoch: Instant,
    sent: AtomicU64,
    answered: AtomicU64,
    delivered: AtomicU64,
    expected: AtomicU64,
    last_delivery_us: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// One connection's tallies for the running step.
struct ConnStats {
    step: u32,
    hist: Histogram<u64>,
    /// Per sender: which of its messages arrived.
    seen: HashMap<u32, Vec<u64>>,
    dups: u64,
    stale: u64,
    sent: u64,
    acked: u64,
    failed: u64,
    fail_codes: Vec<String>,
    closed: Option<String>,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

impl ConnStats {
    fn new() -> ConnStats {
        ConnStats {
            step: 0,
            hist: new_hist(),
            seen: HashMap::new(),
            dups: 0,
            stale: 0,
            sent: 0,
            acked: 0,
            failed: 0,
            fail_codes: Vec::new(),
            closed: None,
        }
    }

    fn reset(&mut self, step: u32) {
        self.step = step;
        self.hist.reset();
        self.seen.clear();
        self.dups = 0;
        self.stale = 0;
        self.sent = 0;
        self.acked = 0;
        self.failed = 0;
        self.fail_codes.clear();
    }
}

fn lock(stats: &Mutex<ConnStats>) -> MutexGuard<'_, ConnStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

struct Conn {
    room_index: usize,
    sender: Option<u32>,
    stats: Arc<Mutex<ConnStats>>,
}

/// The outcome of one sending step.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub fail_codes: Vec<String>,
    /// Unique deliveries of acknowledged messages.
    pub delivered: u64,
    /// Acknowledged messages × the size of their room.
    pub expected: u64,
    pub drops: u64,
    pub dups: u64,
    /// Deliveries of messages from an earlier step.
    pub stale: u64,
    /// Connections that closed during the step.
    pub disconnects: u64,
    /// From the step's start to the last delivery (or the end of sending).
    pub elapsed: Duration,
    /// End-to-end latency in microseconds.
    pub hist: Histogram<u64>,
    /// Whether every expected delivery arrived before the drain deadline.
    pub complete: bool,
}

/// A set of live, authenticated connections.
pub struct Fleet {
    conns: Vec<Conn>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    plan: watch::Sender<Plan>,
    layout: Layout,
    rooms: Vec<RoomId>,
    /// Index of the next connection `grow` opens (failed ones keep their index).
    next_index: usize,
    /// First 127.0.0.x source address of this fleet (see [`source_addr`]).
    source_base: usize,
    pub connect_errors: u64,
    pub first_connect_error: Option<String>,
}

impl Fleet {
    pub fn new(layout: Layout, prov: &Provisioned) -> Fleet {
        let (plan, _) = watch::channel(Plan::Quiet);
        Fleet {
            conns: Vec::new(),
            tasks: Vec::new(),
            shared: Arc::new(Shared {
                epoch: Instant::now(),
                sent: AtomicU64::new(0),
                answered: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                expected: AtomicU64::new(0),
                last_delivery_us: AtomicU64::new(0),
            }),
            plan,
            layout,
            rooms: prov.rooms.clone(),
            next_index: 0,
            source_base: take_sources(4),
            connect_errors: 0,
            first_connect_error: None,
        }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Connections that were opened and are still open.
    pub fn open(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| lock(&c.stats).closed.is_none())
            .count()
    }

    /// Number of sending connections.
    pub fn senders(&self) -> usize {
        self.conns.iter().filter(|c| c.sender.is_some()).count()
    }

    /// Opens connections until the fleet has `total` (connection `c` goes to room
    /// `c % rooms`, as that room's member number `c / rooms`).
    pub async fn grow(&mut self, dep: &Deployment, prov: &Provisioned, total: usize) -> Result<()> {
        let rooms = prov.rooms.len();
        let from = self.next_index;
        self.next_index = self.next_index.max(total);
        let source_base = self.source_base;
        let layout = self.layout.clone();
        let target = dep.target;
        let mut opening = stream::iter(from..total)
            .map(|c| {
                let room = c % rooms;
                let member = c / rooms;
                let sender = member < layout.senders_per_room;
                let node = if sender {
                    layout.sender_node
                } else {
                    layout.receiver_node
                };
                let addr = dep.nodes[node.min(dep.nodes.len() - 1)];
                let source = source_addr(source_base, c);
                let token = prov.user_of_room(room, member).token.clone();
                async move { (c, Client::connect(target, addr, source, &token).await) }
            })
            .buffer_unordered(CONNECT_CONCURRENCY);
        // Each connection starts reading (and answering heartbeats) as soon as it is open.
        while let Some((c, opened)) = opening.next().await {
            let client = match opened {
                Ok(client) => client,
                Err(e) => {
                    self.connect_errors += 1;
                    if self.first_connect_error.is_none() {
                        self.first_connect_error = Some(e.to_string());
                    }
                    continue;
                }
            };
            let room_index = c % rooms;
            let member = c / rooms;
            let sender = (member < layout.senders_per_room).then(|| {
                // Sender numbers are dense: room-major over the first members.
                (member * rooms + room_index) as u32
            });
            let stats = Arc::new(Mutex::new(ConnStats::new()));
            let ctx = Ctx {
                room: self.rooms[room_index],
                room_index,
                room_size: 0,
                sender,
                stats: stats.clone(),
                shared: self.shared.clone(),
            };
            self.tasks
                .push(tokio::spawn(run_conn(client, ctx, self.plan.subscribe())));
            self.conns.push(Conn {
                room_index,
                sender,
                stats,
            });
        }
        Ok(())
    }

    fn room_sizes(&self) -> Vec<u64> {
        let mut sizes = vec![0u64; self.rooms.len()];
        for c in &self.conns {
            if lock(&c.stats).closed.is_none() {
                sizes[c.room_index] += 1;
            }
        }
        sizes
    }

    /// Runs one open-loop step: every sender sends `rate / senders` messages per second for
    /// `duration`, then the fleet waits up to `drain` for the deliveries still in flight.
    pub async fn step(
        &mut self,
        rate: f64,
        duration: Duration,
        drain: Duration,
        body_bytes: usize,
    ) -> StepOutcome {
        // Step numbers are unique in this process, so client message ids (`s<step>-…`) never
        // repeat: the server treats a repeated id as a retry and stores nothing new.
        let step = NEXT_STEP.fetch_add(1, Ordering::Relaxed);
        let sizes = self.room_sizes();
        for c in &self.conns {
            let mut s = lock(&c.stats);
            s.reset(step);
        }
        for a in [
            &self.shared.sent,
            &self.shared.answered,
            &self.shared.delivered,
            &self.shared.expected,
        ] {
            a.store(0, Ordering::SeqCst);
        }
        let n_senders = self.senders().max(1) as u32;
        // Start a little later so every task has seen the plan before its first message is due.
        let start_us = self.shared.now_us() + 50_000;
        let end_us = start_us + duration.as_micros() as u64;
        self.shared
            .last_delivery_us
            .store(start_us, Ordering::SeqCst);
        let per_sender = (rate / f64::from(n_senders)).max(1e-3);
        let _ = self.plan.send(Plan::Send {
            step,
            start_us,
            end_us,
            interval_us: 1e6 / per_sender,
            n_senders,
            body_bytes,
            room_sizes: Arc::new(sizes),
        });
        let send_end = self.shared.epoch + Duration::from_micros(end_us);
        tokio::time::sleep_until(send_end).await;
        let deadline = Instant::now() + drain;
        let complete = loop {
            let sent = self.shared.sent.load(Ordering::SeqCst);
            let answered = self.shared.answered.load(Ordering::SeqCst);
            let delivered = self.shared.delivered.load(Ordering::SeqCst);
            let expected = self.shared.expected.load(Ordering::SeqCst);
            if answered >= sent && delivered >= expected {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let _ = self.plan.send(Plan::Quiet);
        self.harvest(start_us, complete)
    }

    fn harvest(&self, start_us: u64, complete: bool) -> StepOutcome {
        let mut hist = new_hist();
        let mut out = StepOutcome {
            sent: 0,
            acked: 0,
            failed: 0,
            fail_codes: Vec::new(),
            delivered: 0,
            expected: 0,
            drops: 0,
            dups: 0,
            stale: 0,
            disconnects: 0,
            elapsed: Duration::ZERO,
            hist: new_hist(),
            complete,
        };
        // Acknowledged messages per sender, and the senders of each room.
        let mut acked_by: HashMap<u32, u64> = HashMap::new();
        let mut senders_of: Vec<Vec<u32>> = vec![Vec::new(); self.rooms.len()];
        for c in &self.conns {
            if let Some(s) = c.sender {
                let st = lock(&c.stats);
                acked_by.insert(s, st.acked);
                senders_of[c.room_index].push(s);
            }
        }
        for c in &self.conns {
            let st = lock(&c.stats);
            let _ = hist.add(&st.hist);
            out.sent += st.sent;
            out.acked += st.acked;
            out.failed += st.failed;
            for code in &st.fail_codes {
                if out.fail_codes.len() < 8 && !out.fail_codes.contains(code) {
                    out.fail_codes.push(code.clone());
                }
            }
            out.dups += st.dups;
            out.stale += st.stale;
            if st.closed.is_some() {
                out.disconnects += 1;
                continue;
            }
            for s in &senders_of[c.room_index] {
                let expected = acked_by.get(s).copied().unwrap_or(0);
                let got = st.seen.get(s).map_or(0, |bits| count_below(bits, expected));
                out.expected += expected;
                out.delivered += got;
                out.drops += expected - got;
            }
        }
        let last = self.shared.last_delivery_us.load(Ordering::SeqCst);
        out.elapsed = Duration::from_micros(last.saturating_sub(start_us).max(1));
        out.hist = hist;
        out
    }

    /// Closes every connection and waits (bounded) for the tasks to end.
    pub async fn close(self) {
        let _ = self.plan.send(Plan::Close);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Bits set among the first `n` of a bitset.
fn count_below(bits: &[u64], n: u64) -> u64 {
    let mut count = 0;
    for (i, word) in bits.iter().enumerate() {
        let base = i as u64 * 64;
        if base >= n {
            break;
        }
        let w = if n - base < 64 {
            word & ((1u64 << (n - base)) - 1)
        } else {
            *word
        };
        count += u64::from(w.count_ones());
    }
    count
}

struct Ctx {
    room: RoomId,
    room_index: usize,
    /// Open connections in this room for the running step (expected deliveries per ack).
    room_size: u64,
    sender: Option<u32>,
    stats: Arc<Mutex<ConnStats>>,
    shared: Arc<Shared>,
}

/// The sending state of one step.
struct Schedule {
    step: u32,
    sender: u32,
    k: u64,
    first_us: f64,
    interval_us: f64,
    end_us: u64,
    body_bytes: usize,
}

impl Schedule {
    fn due_us(&self) -> u64 {
        (self.first_us + self.k as f64 * self.interval_us) as u64
    }
}

/// Body of message `k`: `step sender k intended_us` and padding.
fn body(step: u32, sender: u32, k: u64, intended_us: u64, bytes: usize) -> String {
    let mut b = format!("{step} {sender} {k} {intended_us} ");
    while b.len() < bytes {
        b.push('x');
    }
    b
}

fn parse_body(body: &str) -> Option<(u32, u32, u64, u64)> {
    let mut it = body.split(' ');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// Client message id of message `k`: `s<step>-<sender>-<k>`.
fn parse_id(id: &str) -> Option<(u32, u32)> {
    let mut it = id.strip_prefix('s')?.split('-');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

enum Wake {
    Plan(bool),
    Frame(Result<Incoming>),
    Due,
}

async fn run_conn(mut client: Client, mut ctx: Ctx, mut plan: watch::Receiver<Plan>) {
    let mut schedule: Option<Schedule> = None;
    loop {
        let due = schedule
            .as_ref()
            .map(|s| ctx.shared.epoch + Duration::from_micros(s.due_us()));
        let wake = tokio::select! {
            changed = plan.changed() => Wake::Plan(changed.is_ok()),
            frame = client.next() => Wake::Frame(frame),
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => Wake::Due,
        };
        match wake {
            Wake::Plan(false) => return,
            Wake::Plan(true) => {
                let current = plan.borrow_and_update().clone();
                match current {
                    Plan::Close => return,
                    Plan::Quiet => schedule = None,
                    Plan::Send {
                        step,
                        start_us,
                        end_us,
                        interval_us,
                        n_senders,
                        body_bytes,
                        room_sizes,
                    } => {
                        ctx.room_size = room_sizes.get(ctx.room_index).copied().unwrap_or(0);
                        schedule = ctx.sender.map(|sender| Schedule {
                            step,
                            sender,
                            k: 0,
                            // Spread the senders evenly over one interval.
                            first_us: start_us as f64
                                + interval_us * f64::from(sender) / f64::from(n_senders),
                            interval_us,
                            end_us,
                            body_bytes,
                        });
                    }
                }
            }
            Wake::Frame(Ok(incoming)) => on_incoming(&ctx, incoming),
            Wake::Frame(Err(e)) => {
                lock(&ctx.stats).closed = Some(e.to_string());
                return;
            }
            Wake::Due => {
                let Some(s) = schedule.as_mut() else { continue };
                let now = ctx.shared.now_us();
                let mut burst = 0;
                let mut failed = false;
                while s.due_us() <= now && s.due_us() < s.end_us && burst < MAX_BURST {
                    let intended = s.due_us();
                    let id = format!("s{}-{}-{}", s.step, s.sender, s.k);
                    let text = body(s.step, s.sender, s.k, intended, s.body_bytes);
                    if client.feed_message(ctx.room, &id, &text).await.is_err() {
                        failed = true;
                        break;
                    }
                    s.k += 1;
                    burst += 1;
                }
                if !failed && client.flush().await.is_err() {
                    failed = true;
                }
                {
                    let mut st = lock(&ctx.stats);
                    st.sent += burst as u64;
                    if failed {
                        st.closed = Some("send failed".into());
                    }
                }
                ctx.shared.sent.fetch_add(burst as u64, Ordering::SeqCst);
                if failed {
                    return;
                }
                if s.due_us() >= s.end_us {
                    schedule = None;
                }
            }
        }
    }
}

fn on_incoming(ctx: &Ctx, incoming: Incoming) {
    match incoming {
        Incoming::Message { body, .. } => {
            let Some((step, sender, k, intended_us)) = parse_body(&body) else {
                return;
            };
            let now = ctx.shared.now_us();
            let mut st = lock(&ctx.stats);
            if step != st.step {
                st.stale += 1;
                return;
            }
            st.hist
                .saturating_record(now.saturating_sub(intended_us).max(1));
            let bits = st.seen.entry(sender).or_default();
            let (word, bit) = ((k / 64) as usize, k % 64);
            if bits.len() <= word {
                bits.resize(word + 1, 0);
            }
            if bits[word] & (1 << bit) != 0 {
                st.dups += 1;
                return;
            }
            bits[word] |= 1 << bit;
            drop(st);
            ctx.shared.delivered.fetch_add(1, Ordering::SeqCst);
            ctx.shared.last_delivery_us.fetch_max(now, Ordering::SeqCst);
        }
        Incoming::Ack {
            duplicate: true, ..
        } => {
            // A reused id: the server stored and published nothing. A harness bug if it happens.
            let mut st = lock(&ctx.stats);
            st.failed += 1;
            if !st.fail_codes.iter().any(|c| c == "duplicate_ack") {
                st.fail_codes.push("duplicate_ack".into());
            }
            drop(st);
            ctx.shared.answered.fetch_add(1, Ordering::SeqCst);
        }
        Incoming::Ack { id, .. } => {
            let mut st = lock(&ctx.stats);
            if parse_id(&id).is_some_and(|(step, _)| step == st.step) {
                st.acked += 1;
                drop(st);
                ctx.shared.answered.fetch_add(1, Ordering::SeqCst);
                ctx.shared
                    .expected
                    .fetch_add(ctx.room_size, Ordering::SeqCst);
            }
        }
        Incoming::Failed { id, code } => {
            let mut st = lock(&ctx.stats);
            let current = id
                .as_deref()
                .and_then(parse_id)
                .is_some_and(|(step, _)| step == st.step);
            st.failed += 1;
            if st.fail_codes.len() < 4 && !st.fail_codes.contains(&code) {
                st.fail_codes.push(code);
            }
            drop(st);
            if current {
                ctx.shared.answered.fetch_add(1, Ordering::SeqCst);
            }
        }
        Incoming::History { .. } | Incoming::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_ids_round_trip() {
        let b = body(3, 17, 42, 123_456, 64);
        assert_eq!(b.len(), 64);
        assert_eq!(parse_body(&b), Some((3, 17, 42, 123_456)));
        assert_eq!(parse_id("s3-17-42"), Some((3, 17)));
        assert_eq!(parse_id("x3-17-42"), None);
    }

    #[test]
    fn counts_bits_below_n() {
        let bits = vec![u64::MAX, 0b1011];
        assert_eq!(count_below(&bits, 0), 0);
        assert_eq!(count_below(&bits, 3), 3);
        assert_eq!(count_below(&bits, 64), 64);
        assert_eq!(count_below(&bits, 66), 66);
        assert_eq!(count_below(&bits, 200), 67);
    }
}
