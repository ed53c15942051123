//! The bus subscriber and the lost-write check (see `docs/CLUSTER.md`, "The bus").
//!
//! Each node holds one subscriber connection, `SSUBSCRIBE`d to every partition's channel. It
//! speaks RESP3 so that redis-rs hands each message to our push handler on the connection's
//! own task, which routes it to the hub right there. On one Redis that is one multiplexed
//! connection; on a cluster a cluster connection of its own, which sends each `SSUBSCRIBE` to
//! the master of the channel's slot.
//!
//! A subscription is lost when a connection drops (`Disconnection`: Redis or a cluster node
//! went away) or the server drops a channel (`sunsubscribe`: its slot moved to another
//! master). Either way the node does what it does after a Redis outage: appends wait, a
//! fresh subscription is made, the rooms this node saw are checked against the store
//! ([`check_rollback`]) and the hub resyncs every room, so nothing published meanwhile is
//! lost silently. (In a cluster only the lost shard's partitions would need it; this first
//! version resyncs all.)
//!
//! A subscription can also go quiet without either push (a `sunsubscribe` that raced the
//! connection's own slot refresh, a channel subscribed on a master that lost the slot a moment
//! later). So a subscription is only trusted once every channel has carried a **canary** back
//! to it: the node `SPUBLISH`es `K <token> <round>` on every channel and waits until the push
//! handler has seen each (the `token` is the subscription's own). That runs after every
//! (re)subscribe, before the resync, and every [`CANARY_EVERY`]; a channel that stays silent
//! counts as a lost subscription. Events published on a channel after its canary came back
//! reach this node; the ones before are what the resync fetches.

use super::conn::Target;
use super::{bus, keys, PARTITIONS};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the bus subscriber learns and the write path needs, to notice a store that lost data.
#[derive(Default)]
pub(super) struct Watch {
    /// The `store:epoch` this node works with. A Redis that comes back empty has none (or
    /// another node already set a new one): its sessions, rooms and seqs are gone.
    pub(super) epoch: Mutex<String>,
    /// Per room: the highest seq this node has seen published. A Redis that comes back with a
    /// lower seq lost writes (AOF `everysec` after a machine crash, failover to a lagging
    /// replica); its next appends would hand out seqs that clients already hold. Read and
    /// written three times per message, so hashed as the hub's maps are (room ids are the
    /// server's, not a client's choice).
    pub(super) seen: Mutex<crate::hub::IdMap<u64, u64>>,
    /// False from the moment the bus subscription is lost until it is back and the rooms were
    /// checked against `seen`: appends wait, so no seq is handed out twice.
    pub(super) checked: AtomicBool,
    /// An append found the store behind `seen` before the bus noticed anything (the command
    /// connection came back to a restarted Redis first): the subscriber starts over and checks.
    pub(super) recheck: tokio::sync::Notify,
}

impl Watch {
    fn saw(&self, payload: &str) {
        if let Some((room, seq)) = bus::room_seq(payload) {
            self.note(room, seq);
        }
    }

    /// `seq` of `room` was handed out (published, or acknowledged to this node).
    pub(super) fn note(&self, room: u64, seq: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let max = seen.entry(room).or_default();
        *max = (*max).max(seq);
    }

    /// The lowest seq the store may hold for `room`: appends below it are refused.
    pub(super) fn floor(&self, room: u64) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&room).copied().unwrap_or(0)
    }
}

/// ARGV: a fresh epoch. Returns the store's epoch, setting it to ARGV[1] when missing.
pub(super) static EPOCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"#,
    )
});

/// KEYS: `store:epoch`. ARGV: data set id (the epoch up to its `:`), a fresh generation. The
/// epoch becomes `<data set>:<generation>` (same data, lost writes: every node tells its
/// sockets). Returns 1, or -1 if the store holds another data set (wiped).
static NEW_GENERATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local e = redis.call('GET', KEYS[1])
if not e or string.sub(e, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then return -1 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
return 1
"#,
    )
});

/// KEYS: room hashes of one partition. ARGV: the seq each is to have at least, in order.
/// Raises each existing room's seq to it. Returns how many were raised.
static RAISE_SEQS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local raised = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local seq = tonumber(redis.call('HGET', KEYS[i], 'seq') or '0')
    if seq < tonumber(ARGV[i]) then
      redis.call('HSET', KEYS[i], 'seq', ARGV[i])
      raised = raised + 1
    end
  end
end
return raised
"#,
    )
});

/// A live bus subscription. Dropping it closes its connection (and redis-rs's task with it).
pub(super) struct Subscription {
    _con: SubscriberConnection,
    /// Cleared when the subscription is given up: anything its connection still reads is
    /// ignored, so only one subscription feeds the hub.
    live: Arc<AtomicBool>,
    /// Notified when the subscription is lost (a connection dropped, a channel dropped).
    lost: Arc<tokio::sync::Notify>,
    /// The canaries this subscription has carried back (see the module doc).
    canaries: Arc<Canaries>,
}

/// The bus message that proves a channel delivers: `K <token> <round>` (no other bus message
/// starts with `K`; every node drops every canary before the hub sees it).
const CANARY_PREFIX: &str = "K ";
/// How often a live subscription is proved again.
const CANARY_EVERY: Duration = Duration::from_secs(5);
/// How long every channel's canary may take to come back.
const CANARY_DEADLINE: Duration = Duration::from_secs(5);

/// Per subscription: which round of canaries each channel has carried back.
struct Canaries {
    /// Random per subscription, so that another node's canaries (or an older subscription's)
    /// never count.
    token: u64,
    /// The last round sent.
    round: AtomicU64,
    /// Channel → the highest round heard on it.
    heard: Mutex<HashMap<String, u64>>,
    /// Woken when a canary is heard.
    wake: tokio::sync::Notify,
}

impl Canaries {
    /// Notes a canary `payload` heard on `channel` (anyone's; only ours count).
    fn hear(&self, channel: &[u8], payload: &str) {
        let mut fields = payload[CANARY_PREFIX.len()..].split(' ');
        let (Some(token), Some(round)) = (fields.next(), fields.next()) else {
            return;
        };
        if token.parse() != Ok(self.token) {
            return;
        }
        let Ok(round) = round.parse::<u64>() else {
            return;
        };
        let channel = String::from_utf8_lossy(channel).into_owned();
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        let at = heard.entry(channel).or_default();
        *at = (*at).max(round);
        drop(heard);
        self.wake.notify_waiters();
    }

    /// How many channels have not carried `round` back yet.
    fn missing(&self, round: u64) -> usize {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        PARTITIONS
            .channels()
            .iter()
            .filter(|c| heard.get(*c).is_none_or(|r| *r < round))
            .count()
    }
}

/// Proves that `subscription` delivers on every channel (see the module doc): a canary on
/// each, all heard within [`CANARY_DEADLINE`]. An error names how many stayed silent.
/// `publisher` is the command connection kept for that (made when missing, dropped on error).
async fn prove(
    target: &Target,
    publisher: &mut Option<super::conn::Conn>,
    subscription: &Subscription,
) -> Result<(), String> {
    let canaries = &subscription.canaries;
    let round = canaries.round.fetch_add(1, Ordering::Relaxed) + 1;
    let payload = format!("{CANARY_PREFIX}{} {round}", canaries.token);
    let send = async {
        let con = match publisher {
            Some(con) => con,
            None => publisher.insert(target.connect().await?),
        };
        let mut pipe = redis::pipe();
        for channel in PARTITIONS.channels() {
            pipe.cmd("SPUBLISH").arg(channel).arg(&payload).ignore();
        }
        pipe.query_async::<()>(con).await
    };
    let sent = match tokio::time::timeout(CANARY_DEADLINE, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("canaries not sent: {e}")),
        Err(_) => Err("canaries not sent in time".to_owned()),
    };
    if sent.is_err() {
        *publisher = None;
    }
    sent?;
    let deadline = tokio::time::Instant::now() + CANARY_DEADLINE;
    loop {
        let woken = canaries.wake.notified();
        let missing = canaries.missing(round);
        if missing == 0 {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            return Err(format!("{missing} bus channels did not deliver a canary"));
        }
    }
}

/// The subscriber's connection, held only to keep it open.
enum SubscriberConnection {
    Single(#[allow(dead_code)] redis::aio::MultiplexedConnection),
    Cluster(#[allow(dead_code)] redis::cluster_async::ClusterConnection),
}

/// Subscribes to the bus (every partition's channel) on a new RESP3 connection. redis-rs calls
/// the push handler on the connection's task for every message, in the order each node sent
/// them; the handler notes what it saw for the lost-write check ([`Watch`]) and hands the
/// message to the hub through `feed`, so the message is routed where it was read.
pub(super) async fn subscribe(
    target: &Target,
    feed: &bus::Feed,
    watch: &Arc<Watch>,
) -> redis::RedisResult<Subscription> {
    let live = Arc::new(AtomicBool::new(true));
    let lost = Arc::new(tokio::sync::Notify::new());
    let canaries = Arc::new(Canaries {
        token: rand::random(),
        round: AtomicU64::new(0),
        heard: Mutex::default(),
        wake: tokio::sync::Notify::new(),
    });
    let on_push = {
        let (live, lost, feed, watch, canaries) = (
            live.clone(),
            lost.clone(),
            feed.clone(),
            watch.clone(),
            canaries.clone(),
        );
        move |push: redis::PushInfo| -> Result<(), std::convert::Infallible> {
            if !live.load(Ordering::Acquire) {
                return Ok(());
            }
            match push.kind {
                // `data` is the channel, then the payload.
                // The payload is handed on as it was read (its frame is sent from that buffer).
                redis::PushKind::Message | redis::PushKind::SMessage => {
                    let mut data = push.data.into_iter();
                    let channel = data.next();
                    match data.next() {
                        Some(redis::Value::BulkString(bytes)) => match String::from_utf8(bytes) {
                            Ok(payload) if payload.starts_with(CANARY_PREFIX) => {
                                if let Some(redis::Value::BulkString(channel)) = channel {
                                    canaries.hear(&channel, &payload);
                                }
                            }
                            Ok(payload) => {
                                watch.saw(&payload);
                                feed.message(payload);
                            }
                            Err(e) => {
                                tracing::warn!(len = e.as_bytes().len(), "bus message is not UTF-8")
                            }
                        },
                        _ => tracing::warn!("bus message without a payload"),
                    }
                }
                // A node's link dropped, or a node dropped a channel we never left (its slot
                // moved to another master): messages may be missed from here on.
                redis::PushKind::Disconnection | redis::PushKind::SUnsubscribe => lost.notify_one(),
                _ => {}
            }
            Ok(())
        }
    };
    let connect = async {
        Ok(match target {
            Target::Single(client) => {
                let info = client.get_connection_info().clone();
                let resp3 = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                let client = redis::Client::open(info.set_redis_settings(resp3))?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(3)))
                    .set_response_timeout(Some(Duration::from_secs(5)))
                    .set_push_sender(on_push);
                let mut con = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                // One channel per command: its confirmation push is the command's reply.
                for channel in PARTITIONS.channels() {
                    let _: redis::Value = redis::cmd("SSUBSCRIBE")
                        .arg(channel)
                        .query_async(&mut con)
                        .await?;
                }
                SubscriberConnection::Single(con)
            }
            Target::Cluster(seeds) => {
                let mut con = Target::cluster_subscriber(seeds, on_push).await?;
                // One channel per command: each goes to the master of its slot.
                for channel in PARTITIONS.channels() {
                    con.ssubscribe(channel).await?;
                }
                SubscriberConnection::Cluster(con)
            }
        })
    };
    let con = super::conn::within(super::conn::CONNECT_DEADLINE, connect).await?;
    Ok(Subscription {
        _con: con,
        live,
        lost,
        canaries,
    })
}

/// The data set's epoch: `<data set>:<generation>`.
pub(super) const EPOCH_KEY: &str = "store:epoch";

/// A new `store:epoch`: `<data set>:<generation>`, both random.
pub(super) fn fresh_epoch() -> String {
    format!(
        "{:016x}:{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// The data set part of an epoch (what a wipe changes; lost writes keep it).
pub(super) fn data_set(epoch: &str) -> &str {
    epoch.split(':').next().unwrap_or(epoch)
}

/// Longest wait between attempts to resubscribe: every node is back within this of Redis.
const RESUBSCRIBE_MAX: Duration = Duration::from_millis(500);
/// After the bus is back and checked, appends wait this much longer so that every node has
/// come back and raised what it saw (see [`check_rollback`]).
const SETTLE: Duration = Duration::from_secs(1);

/// After the bus came back: compares every room this node saw published with the store. Rooms
/// whose seq went backwards (the store lost writes) get their seq raised past what was
/// published, so no seq is handed out twice, and the store gets a new epoch, so every node
/// closes its sockets with 4010 and clients drop what the store no longer has.
async fn check_rollback(target: &Target, watch: &Watch) -> redis::RedisResult<()> {
    let data = data_set(&watch.epoch.lock().unwrap_or_else(|e| e.into_inner())).to_owned();
    let seen: Vec<(u64, u64)> = watch
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(r, s)| (*r, *s))
        .collect();
    if seen.is_empty() {
        return Ok(());
    }
    let mut con = target.connect().await?;
    let epoch: Option<String> = con.get(EPOCH_KEY).await?;
    if epoch.as_deref().map(data_set) != Some(data.as_str()) {
        // Another data set (wiped): the epoch check closes the sockets.
        return Ok(());
    }
    // Which rooms went back (a room that is gone has no seq and is skipped).
    let mut behind: Vec<(u64, u64)> = Vec::new();
    for chunk in seen.chunks(256) {
        let mut pipe = redis::pipe();
        for (room, _) in chunk {
            pipe.hget(keys::room(room), "seq");
        }
        let seqs: Vec<Option<u64>> = pipe.query_async(&mut con).await?;
        behind.extend(
            chunk
                .iter()
                .zip(seqs)
                .filter(|((_, seen), seq)| seq.is_some_and(|seq| seq < *seen))
                .map(|(pair, _)| *pair),
        );
    }
    if behind.is_empty() {
        return Ok(());
    }
    // Told first, raised after, each partition in its own slot: a crash between leaves clients
    // told (they drop what they hold) and the rooms checked again by the next check.
    let told: i64 = NEW_GENERATION
        .key(EPOCH_KEY)
        .arg(&data)
        .arg(format!("{:08x}", rand::random::<u32>()))
        .invoke_async(&mut con)
        .await?;
    if told < 0 {
        return Ok(());
    }
    let mut by_partition: HashMap<u16, Vec<(u64, u64)>> = HashMap::new();
    for (room, seq) in behind {
        by_partition
            .entry(PARTITIONS.of_room(room))
            .or_default()
            .push((room, seq));
    }
    let mut raised = 0;
    for rooms in by_partition.values() {
        for chunk in rooms.chunks(256) {
            let mut invocation = RAISE_SEQS.prepare_invoke();
            for (room, seq) in chunk {
                invocation.key(keys::room(room)).arg(seq);
            }
            let n: i64 = invocation.invoke_async(&mut con).await?;
            raised += n;
        }
    }
    tracing::error!(
        rooms = raised,
        "the store came back with fewer events than were published (writes lost); new store epoch: every node closes its sockets with 4010; seqs raised past them"
    );
    Ok(())
}

/// Keeps the bus subscribed: on a lost subscription (or a recheck after lost writes),
/// reconnects with backoff, checks the store against what this node saw, and has the hub
/// re-check every room for missed events (`resync`). The messages themselves never pass here:
/// the subscription's push handler routes them (see [`subscribe`]).
pub(super) async fn run_subscriber(
    target: Target,
    mut subscription: Subscription,
    feed: bus::Feed,
    shutdown: CancellationToken,
    watch: Arc<Watch>,
    health: Arc<crate::store::health::Health>,
) {
    let mut publisher = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = watch.recheck.notified() => {}
            _ = subscription.lost.notified() => {
                // Usually Redis stopped: if it cannot be reached, calls fail fast from
                // now on instead of each waiting for the reconnect.
                health.check_now(&target).await;
            }
            _ = tokio::time::sleep(CANARY_EVERY) => {
                match prove(&target, &mut publisher, &subscription).await {
                    Ok(()) => continue,
                    Err(e) => tracing::warn!(error = %e, "bus subscription went quiet"),
                }
            }
        }
        subscription.live.store(false, Ordering::Release);
        drop(subscription);
        watch.checked.store(false, Ordering::Release);
        tracing::warn!("bus subscription lost; reconnecting");
        let mut delay = Duration::from_millis(100);
        subscription = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let proved = match subscribe(&target, &feed, &watch).await {
                Ok(s) => match prove(&target, &mut publisher, &s).await {
                    Ok(()) => Ok(s),
                    Err(e) => {
                        s.live.store(false, Ordering::Release);
                        Err(e)
                    }
                },
                Err(e) => Err(e.to_string()),
            };
            match proved {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "bus resubscribe failed");
                    delay = (delay * 2).min(RESUBSCRIBE_MAX);
                }
            }
        };
        let mut delay = Duration::from_millis(100);
        while let Err(e) = check_rollback(&target, &watch).await {
            tracing::warn!(error = %e, "cannot compare the store with the events seen; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(RESUBSCRIBE_MAX);
        }
        // Other nodes may have seen events this one missed (published just before Redis went
        // down); give them time to come back and raise their rooms before appending here.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SETTLE) => {}
        }
        watch.checked.store(true, Ordering::Release);
        tracing::info!("bus subscription restored");
        feed.resync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::partition::key_slot;
    use testkit::cluster::RedisCluster;

    /// A channel whose slot moved stops delivering to the subscription made before; the
    /// canaries say so (the `sunsubscribe` push is ignored here, as if it had been missed), and
    /// a fresh subscription delivers on every channel again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn canaries_find_a_channel_that_went_quiet() {
        let cluster = RedisCluster::start(3, 0).await;
        let target = Target::cluster(&cluster.urls()).expect("urls");
        let (feed, watch) = (bus::Feed::default(), Arc::new(Watch::default()));
        let mut publisher = None;
        let old = subscribe(&target, &feed, &watch).await.expect("subscribe");
        prove(&target, &mut publisher, &old)
            .await
            .expect("a fresh subscription delivers on every channel");

        let channel = PARTITIONS.channels()[0].clone();
        let from = cluster.owner_of(&channel).await;
        let to = (from + 1) % 3;
        cluster
            .move_slot(key_slot(channel.as_bytes()), from, to)
            .await;
        let quiet = prove(&target, &mut publisher, &old)
            .await
            .expect_err("the moved channel no longer delivers to the old subscription");
        assert!(quiet.starts_with("1 bus channels"), "{quiet}");

        let new = subscribe(&target, &feed, &watch).await.expect("subscribe");
        prove(&target, &mut publisher, &new)
            .await
            .expect("the new subscription delivers on every channel, the moved one too");
    }
}
