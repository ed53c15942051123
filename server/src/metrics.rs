//! Prometheus metrics: handles registered once, the text exposition on its own listener
//! (`metrics_listen`; off when unset), and the gauges read from the node's state at scrape time.
//!
//! The registry is per process, as Prometheus scrapes a process: [`install`] builds it once and
//! [`get`] hands out the handles. Until it is installed (metrics off, or a test that does not
//! ask for them) every handle is a no-op and the hot paths skip their clock reads. Counters are
//! the exporter's (an `Arc` around an atomic), except `chat_deliveries_total`; the histograms on
//! hot paths (delivery latency, bus lag, store calls) are our own fixed-bucket ones
//! ([`histogram`]: a bucket search and two relaxed atomic adds), because the exporter's cost
//! about 200 instructions per sample. Both are rendered after the exporter's text. Per
//! delivery that leaves one clock read per batch a socket writes and, per batch, one counter
//! add and one histogram add per run of events with the same latency ([`LiveTally`]); the
//! event's time is read once per event where the hub takes it off the bus. No lookup and no
//! allocation per call. The cost is measured in docs/OPERATIONS.md, "What metrics cost".
//!
//! Labels are drawn from small fixed sets (kinds, close codes, store operations, matched HTTP
//! routes): never a room, a user or a raw path.

use crate::AppState;
use axum::extract::{MatchedPath, State};
use axum::http::{header, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod histogram;

use histogram::Histogram;

/// How often the exporter's histogram samples (HTTP requests, password-hash waits) are folded
/// into their buckets when nothing scrapes (a scrape folds them too). Each fold allocates per
/// histogram; every 5 s it showed in the fanout profile, and a minute of samples is small.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(60);

/// Bucket bounds (microseconds) for latencies that should be milliseconds: deliveries, bus,
/// store calls. 0.5 ms to 10 s.
const FAST_BUCKETS_US: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Buckets (seconds) for the exporter's histograms, HTTP requests and the password-hash queue
/// (argon2 takes ~50–500 ms).
const SLOW_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const DELIVERY_LATENCY: &str = "chat_delivery_latency_seconds";
const DELIVERY_LATENCY_HELP: &str =
    "Live room events: from the store accepting the event to the frame written to the socket";
const BUS_LAG: &str = "chat_bus_lag_seconds";
const BUS_LAG_HELP: &str =
    "Room events: from the store accepting the event to this node's hub routing it";
const STORE_CALL: &str = "chat_store_call_duration_seconds";
const STORE_CALL_HELP: &str =
    "Store calls (Redis round trips or embedded-store operations), by operation";
const DELIVERIES: &str = "chat_deliveries_total";
const DELIVERIES_HELP: &str = "Frames written to sockets, by kind";
/// The `kind` label of each [`DeliveryKind`], in its order.
const DELIVERY_KINDS: [&str; 3] = ["event", "replay", "ephemeral"];

/// Close codes counted by name; anything else is counted as `other`.
const CLOSE_CODES: &[u16] = &[
    1000,
    protocol::close::GOING_AWAY,
    protocol::close::TOO_BIG,
    1011,
    protocol::close::UNAUTHORIZED,
    protocol::close::AUTH_TIMEOUT,
    protocol::close::SLOW_CONSUMER,
    protocol::close::STORE_RESET,
    protocol::close::TOO_MANY_CONNECTIONS,
    protocol::close::RATE_LIMITED,
];

/// Kinds of room event accepted by the store through this node.
#[derive(Debug, Clone, Copy)]
pub enum MessageKind {
    Message,
    Edit,
    Delete,
}

/// Kinds of frame written to sockets.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryKind {
    /// A live room event from the bus.
    Event,
    /// A room event read from the store (resume, gap fill).
    Replay,
    /// Presence, typing, read markers and other frames outside room logs.
    Ephemeral,
}

/// Requests refused by a rate limit.
#[derive(Debug, Clone, Copy)]
pub enum LimitKind {
    Message,
    Login,
    Frame,
}

/// Every metric of the server (each described in docs/OPERATIONS.md, "Monitoring").
pub struct Metrics {
    pub connections_opened: Counter,
    closes: Vec<Counter>,
    closes_other: Counter,
    messages: [Counter; 3],
    /// Our own counters, not the exporter's: one is added to per batch a socket writes, where
    /// the exporter's handle (a dynamic call, two atomic adds) showed in the profile.
    deliveries: [AtomicU64; 3],
    delivery_latency: Histogram,
    bus_lag: Histogram,
    pub bus_resyncs: Counter,
    pub store_epoch_changes: Counter,
    rate_limited: [Counter; 3],
    pub hash_wait: metrics::Histogram,
    connections: Gauge,
    users_online: Gauge,
    store_up: Gauge,
    bus_subscribed: Gauge,
    draining: Gauge,
    recorder: Option<PrometheusRecorder>,
}

/// The handles of one store operation.
pub struct StoreOp {
    duration: Histogram,
    errors: Counter,
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();
static NOOP: LazyLock<Metrics> = LazyLock::new(|| Metrics::register(None));
/// Store operations called so far (with metrics on), in order of first call, for the scrape.
static STORE_OPS: Mutex<Vec<(&'static str, &'static StoreOp)>> = Mutex::new(Vec::new());

/// The process's metrics; no-op handles while metrics are off.
pub fn get() -> &'static Metrics {
    INSTALLED.get().unwrap_or_else(|| &NOOP)
}

/// Turns metrics on for this process (idempotent) and returns the handle that renders them.
pub fn install() -> PrometheusHandle {
    let metrics = INSTALLED.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SLOW_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        Metrics::register(Some(recorder))
    });
    match &metrics.recorder {
        Some(recorder) => recorder.handle(),
        // Unreachable: INSTALLED always holds a recorder.
        None => PrometheusBuilder::new().build_recorder().handle(),
    }
}

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Registers handles on `recorder`, or no-op handles without one.
struct Registrar<'a>(Option<&'a PrometheusRecorder>);

impl Registrar<'_> {
    fn counter(&self, name: &'static str, labels: Vec<Label>, help: &'static str) -> Counter {
        let Some(r) = self.0 else {
            return Counter::noop();
        };
        r.describe_counter(name.into(), None, help.into());
        r.register_counter(&Key::from_parts(name, labels), &META)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, help: &'static str) -> Gauge {
        let Some(r) = self.0 else {
            return Gauge::noop();
        };
        r.describe_gauge(name.into(), None, help.into());
        r.register_gauge(&Key::from_parts(name, labels), &META)
    }

    fn histogram(
        &self,
        name: &'static str,
        labels: Vec<Label>,
        help: &'static str,
    ) -> metrics::Histogram {
        let Some(r) = self.0 else {
            return metrics::Histogram::noop();
        };
        r.describe_histogram(name.into(), Some(Unit::Seconds), help.into());
        r.register_histogram(&Key::from_parts(name, labels), &META)
    }
}

fn kind(value: &'static str) -> Vec<Label> {
    vec![Label::from_static_parts("kind", value)]
}

impl Metrics {
    fn register(recorder: Option<PrometheusRecorder>) -> Self {
        let r = Registrar(recorder.as_ref());
        let closes_help = "WebSocket connections closed, by close code";
        let closes = CLOSE_CODES
            .iter()
            .map(|code| {
                r.counter(
                    "chat_ws_closes_total",
                    vec![Label::new("code", code.to_string())],
                    closes_help,
                )
            })
            .collect();
        let closes_other = r.counter(
            "chat_ws_closes_total",
            vec![Label::from_static_parts("code", "other")],
            closes_help,
        );
        let msg_help = "Room events accepted by the store through this node, by kind";
        let rl_help = "Requests refused by a rate limit, by kind";
        let build = r.gauge(
            "chat_build_info",
            vec![Label::from_static_parts(
                "version",
                env!("CARGO_PKG_VERSION"),
            )],
            "Always 1; the version label says which build runs",
        );
        build.set(1.0);
        if let Some(rec) = r.0 {
            // Registered per request (the route label is known then); described once here.
            rec.describe_histogram(
                "chat_http_request_duration_seconds".into(),
                Some(Unit::Seconds),
                "REST and WebSocket-upgrade requests, by matched route, method and status class"
                    .into(),
            );
        }
        let metrics = Metrics {
            connections_opened: r.counter(
                "chat_ws_connections_opened_total",
                vec![],
                "Authenticated WebSocket connections opened",
            ),
            closes,
            closes_other,
            messages: [
                r.counter("chat_messages_total", kind("message"), msg_help),
                r.counter("chat_messages_total", kind("edit"), msg_help),
                r.counter("chat_messages_total", kind("delete"), msg_help),
            ],
            deliveries: Default::default(),
            delivery_latency: Histogram::new(FAST_BUCKETS_US),
            bus_lag: Histogram::new(FAST_BUCKETS_US),
            bus_resyncs: r.counter(
                "chat_bus_resyncs_total",
                vec![],
                "Times the bus subscription came back and every room was re-checked",
            ),
            store_epoch_changes: r.counter(
                "chat_store_epoch_changes_total",
                vec![],
                "Times the store was found to have lost its data (every socket closed with 4010)",
            ),
            rate_limited: [
                r.counter("chat_rate_limited_total", kind("message"), rl_help),
                r.counter("chat_rate_limited_total", kind("login"), rl_help),
                r.counter("chat_rate_limited_total", kind("frame"), rl_help),
            ],
            hash_wait: r.histogram(
                "chat_password_hash_wait_seconds",
                vec![],
                "Time a login or registration waited for a password-hashing thread",
            ),
            connections: r.gauge(
                "chat_ws_connections",
                vec![],
                "Authenticated WebSocket connections open on this node",
            ),
            users_online: r.gauge(
                "chat_users_online",
                vec![],
                "Distinct users with at least one connection on this node",
            ),
            store_up: r.gauge(
                "chat_store_up",
                vec![],
                "1 while the store answers, 0 while it is known to be unreachable",
            ),
            bus_subscribed: r.gauge(
                "chat_bus_subscribed",
                vec![],
                "1 while the bus subscription is up and checked",
            ),
            draining: r.gauge("chat_draining", vec![], "1 once the node is shutting down"),
            recorder: None,
        };
        Metrics {
            recorder,
            ..metrics
        }
    }

    /// Whether metrics are on in this process.
    pub fn enabled(&self) -> bool {
        self.recorder.is_some()
    }

    pub fn closed(&self, code: u16) {
        match CLOSE_CODES.iter().position(|c| *c == code) {
            Some(i) => self.closes[i].increment(1),
            None => self.closes_other.increment(1),
        }
    }

    pub fn message(&self, kind: MessageKind) {
        self.messages[kind as usize].increment(1);
    }

    pub fn delivered(&self, kind: DeliveryKind, n: u64) {
        if self.enabled() {
            self.deliveries[kind as usize].fetch_add(n, Relaxed);
        }
    }

    pub fn rate_limited(&self, kind: LimitKind) {
        self.rate_limited[kind as usize].increment(1);
    }

    /// The handles of store operation `op`, made once in `cell` (metrics on) or `None` (off).
    fn store_op(
        &self,
        cell: &'static OnceLock<StoreOp>,
        op: &'static str,
    ) -> Option<&'static StoreOp> {
        let recorder = self.recorder.as_ref()?;
        if let Some(handles) = cell.get() {
            return Some(handles);
        }
        let mut made = false;
        let handles = cell.get_or_init(|| {
            made = true;
            StoreOp {
                duration: Histogram::new(FAST_BUCKETS_US),
                errors: Registrar(Some(recorder)).counter(
                    "chat_store_errors_total",
                    vec![Label::from_static_parts("op", op)],
                    "Store calls that failed for the store's sake (unreachable, timeout, unreadable data), by operation",
                ),
            }
        });
        if made {
            STORE_OPS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((op, handles));
        }
        Some(handles)
    }

    /// Refreshes the gauges that are read from the node's state, folds the exporter's
    /// histogram samples into buckets and renders the text exposition, ours after the
    /// exporter's.
    fn render(&self, state: &AppState) -> String {
        let Some(recorder) = &self.recorder else {
            return String::new();
        };
        self.connections.set(state.hub.connections() as f64);
        self.users_online.set(state.hub.users().len() as f64);
        self.store_up
            .set(if state.store.known_down() { 0.0 } else { 1.0 });
        self.bus_subscribed
            .set(if state.store.bus_ready() { 1.0 } else { 0.0 });
        self.draining.set(if state.shutdown.is_cancelled() {
            1.0
        } else {
            0.0
        });
        let handle = recorder.handle();
        handle.run_upkeep();
        let mut text = handle.render();
        let _ = writeln!(text, "# HELP {DELIVERIES} {DELIVERIES_HELP}");
        let _ = writeln!(text, "# TYPE {DELIVERIES} counter");
        for (kind, count) in DELIVERY_KINDS.iter().zip(&self.deliveries) {
            let _ = writeln!(
                text,
                "{DELIVERIES}{{kind=\"{kind}\"}} {}",
                count.load(Relaxed)
            );
        }
        histogram::header(&mut text, DELIVERY_LATENCY, DELIVERY_LATENCY_HELP);
        self.delivery_latency
            .render(&mut text, DELIVERY_LATENCY, "");
        histogram::header(&mut text, BUS_LAG, BUS_LAG_HELP);
        self.bus_lag.render(&mut text, BUS_LAG, "");
        let ops = STORE_OPS.lock().unwrap_or_else(|e| e.into_inner());
        if !ops.is_empty() {
            histogram::header(&mut text, STORE_CALL, STORE_CALL_HELP);
            for (op, handles) in ops.iter() {
                handles
                    .duration
                    .render(&mut text, STORE_CALL, &format!("op=\"{op}\""));
            }
        }
        text
    }
}

/// One store call, timed while metrics are on (see `store::delegate!`).
pub struct StoreCall(Option<(&'static StoreOp, u64)>);

impl StoreCall {
    /// Starts timing a call of operation `op`; `cell` caches its handles (one per call site).
    pub fn start(cell: &'static OnceLock<StoreOp>, op: &'static str) -> StoreCall {
        StoreCall(
            get()
                .store_op(cell, op)
                .map(|handles| (handles, clock::mono_us())),
        )
    }

    /// Records the call's duration, and an error when it `failed` for the store's sake.
    pub fn finish(self, failed: bool) {
        if let Some((handles, started)) = self.0 {
            let us = clock::mono_us().saturating_sub(started);
            handles.duration.record_n(us, 1);
            if failed {
                handles.errors.increment(1);
            }
        }
    }
}

/// The clocks of the hot paths. On Linux a reading is one `clock_gettime` (nix, through libc
/// and the vDSO) and integer arithmetic: std's `SystemTime::now().duration_since(UNIX_EPOCH)`
/// and `Instant::elapsed` cost about 95 instructions a reading under callgrind, most of them in
/// the `Duration` subtraction, and the wall clock is read once per batch a socket writes.
/// (rustix, already a dependency, parses the vDSO itself and crashes under valgrind.)
mod clock {
    #[cfg(target_os = "linux")]
    fn read(id: nix::time::ClockId) -> (i64, i64) {
        nix::time::clock_gettime(id).map_or((0, 0), |t| (t.tv_sec(), t.tv_nsec()))
    }

    /// Milliseconds since the Unix epoch.
    #[cfg(target_os = "linux")]
    pub fn wall_ms() -> i64 {
        let (s, ns) = read(nix::time::ClockId::CLOCK_REALTIME);
        s * 1000 + ns / 1_000_000
    }

    /// Microseconds on a monotonic clock (for differences only).
    #[cfg(target_os = "linux")]
    pub fn mono_us() -> u64 {
        let (s, ns) = read(nix::time::ClockId::CLOCK_MONOTONIC);
        (s * 1_000_000 + ns / 1000) as u64
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wall_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn mono_us() -> u64 {
        static BASE: std::sync::LazyLock<std::time::Instant> =
            std::sync::LazyLock::new(std::time::Instant::now);
        BASE.elapsed().as_micros() as u64
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    clock::wall_ms()
}

/// The `ts` of an `event` frame, read without parsing the JSON: the stores write the frame with
/// a fixed head, `{"type":"event","room":R,"seq":S,"ts":T,` (`store::bus::event_frame` and its
/// Lua twin in `store/redis.rs`), so this walks that head instead of searching for `"ts":`,
/// which cost several hundred instructions per event. `None` for any other frame.
pub fn event_ts(frame: &str) -> Option<i64> {
    /// The rest after at least one ASCII digit.
    fn skip_digits(b: &[u8]) -> Option<&[u8]> {
        let n = b.iter().position(|c| !c.is_ascii_digit())?;
        (n > 0).then(|| &b[n..])
    }
    let rest = frame
        .as_bytes()
        .strip_prefix(br#"{"type":"event","room":"#)?;
    let rest = skip_digits(rest)?.strip_prefix(br#","seq":"#)?;
    let rest = skip_digits(rest)?.strip_prefix(br#","ts":"#)?;
    let mut ts: i64 = 0;
    for (i, &c) in rest.iter().enumerate() {
        match c {
            b'0'..=b'9' if i < 18 => ts = ts * 10 + i64::from(c - b'0'),
            b',' | b'}' if i > 0 => return Some(ts),
            _ => return None,
        }
    }
    None
}

/// Microseconds from `ts_ms` to `now_ms` (0 when the clocks disagree the other way).
fn lag_us(ts_ms: i64, now_ms: i64) -> u64 {
    (now_ms - ts_ms).max(0) as u64 * 1000
}

/// Where the hub takes a room event off the bus: returns the event's `ts` for the delivery
/// latency (0 when metrics are off or the frame has none), read once per event, not once per
/// recipient, and records the bus lag.
pub fn bus_routed(frame: &str) -> i64 {
    let m = get();
    if !m.enabled() {
        return 0;
    }
    let Some(ts) = event_ts(frame) else {
        return 0;
    };
    m.bus_lag.record_n(lag_us(ts, now_ms()), 1);
    ts
}

/// The live room events one socket writes in one batch, counted and timed together: the
/// clock is read once when the batch starts (events are flushed with it, within the same
/// wake-up) and, when the tally is dropped, the delivery counter gets one add and the latency
/// histogram one add per run of events with the same `ts` (see [`bus_routed`]). Drop it
/// before flushing, so a client that has the frames finds them counted.
pub struct LiveTally {
    metrics: &'static Metrics,
    /// The batch's clock (ms since the epoch); `None` while metrics are off.
    now: Option<i64>,
    delivered: u64,
    run_ts: i64,
    run_len: u64,
}

impl LiveTally {
    /// A tally for a batch starting now.
    pub fn start() -> LiveTally {
        let metrics = get();
        LiveTally::at(metrics, metrics.enabled().then(now_ms))
    }

    fn at(metrics: &'static Metrics, now: Option<i64>) -> LiveTally {
        LiveTally {
            metrics,
            now,
            delivered: 0,
            run_ts: 0,
            run_len: 0,
        }
    }

    /// One live room event with store time `ts` handed to the socket.
    pub fn delivered(&mut self, ts: i64) {
        if self.now.is_none() {
            return;
        }
        self.delivered += 1;
        if ts != self.run_ts {
            self.end_run();
            self.run_ts = ts;
        }
        self.run_len += 1;
    }

    fn end_run(&mut self) {
        if let (Some(now), true) = (self.now, self.run_ts > 0 && self.run_len > 0) {
            self.metrics
                .delivery_latency
                .record_n(lag_us(self.run_ts, now), self.run_len);
        }
        self.run_len = 0;
    }
}

impl Drop for LiveTally {
    fn drop(&mut self) {
        if self.delivered > 0 {
            self.end_run();
            self.metrics.delivered(DeliveryKind::Event, self.delivered);
        }
    }
}

/// Middleware: request duration by matched route, method and status class.
pub async fn track_http(req: Request<axum::body::Body>, next: Next) -> Response {
    let m = get();
    let Some(recorder) = &m.recorder else {
        return next.run(req).await;
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let key = Key::from_parts(
        "chat_http_request_duration_seconds",
        vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::from_static_parts("status", status),
        ],
    );
    recorder
        .register_histogram(&key, &META)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The metrics listener's router: `GET /metrics`.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    let body = get().render(&state);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Folds histogram samples into buckets now and then, so an unscraped node does not pile them
/// up.
pub async fn upkeep(stop: tokio_util::sync::CancellationToken) {
    let Some(recorder) = &get().recorder else {
        return;
    };
    let handle = recorder.handle();
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ts_from_an_event_frame() {
        let frame = crate::store::bus::event_frame(
            protocol::RoomId(12),
            345,
            1_765_000_000_123,
            r#"{"kind":"x"}"#,
        );
        assert_eq!(event_ts(&frame), Some(1_765_000_000_123));
        let frame = r#"{"type":"event","room":1,"seq":2,"ts":3}"#;
        assert_eq!(event_ts(frame), Some(3));
        for other in [
            r#"{"type":"presence","user":1}"#,
            r#"{"type":"event","room":1,"seq":2,"ts":}"#,
            r#"{"type":"event","room":1,"seq":2,"ts":3x"#,
            r#"{"type":"event","room":1,"seq":2,"ts":99999999999999999999}"#,
            r#"{"type":"event","room":1,"seq":2"#,
            "",
        ] {
            assert_eq!(event_ts(other), None, "{other}");
        }
        assert_eq!(lag_us(1000, 3500), 2_500_000);
        assert_eq!(lag_us(5000, 3500), 0);
    }

    #[test]
    fn a_batch_is_counted_and_timed_per_event() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let m: &'static Metrics = Box::leak(Box::new(Metrics::register(Some(recorder))));
        {
            let mut tally = LiveTally::at(m, Some(10_000));
            for ts in [9_999, 9_999, 9_999, 9_000, 0, 9_999] {
                tally.delivered(ts);
            }
        }
        // Metrics off: nothing counted.
        LiveTally::at(m, None).delivered(9_999);
        let mut latency = String::new();
        m.delivery_latency.render(&mut latency, "l", "");
        // Four events 1 ms old, one 1 s old, one without a time (counted, not timed).
        assert!(latency.contains("l_bucket{le=\"0.001\"} 4\n"), "{latency}");
        assert!(latency.contains("l_bucket{le=\"1\"} 5\n"), "{latency}");
        assert!(latency.contains("l_count 5\n"), "{latency}");
        assert!(latency.contains("l_sum 1.004\n"), "{latency}");
        assert_eq!(m.deliveries[DeliveryKind::Event as usize].load(Relaxed), 6);
    }
}
