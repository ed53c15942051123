//! Prometheus metrics: handles registered once, the text exposition on its own listener
//! (`metrics_listen`; off when unset), and the gauges read from the node's state at scrape time.
//!
//! The registry is per process, as Prometheus scrapes a process: [`install`] builds it once and
//! [`get`] hands out the handles. Until it is installed (metrics off, or a test that does not
//! ask for them) every handle is a no-op. A handle is an `Arc` around an atomic, so the hot
//! path (one delivery) costs an atomic add and, for the latency histogram, one push into the
//! exporter's lock-free sample buffer; no lookup and no allocation per call (the buffer grows
//! in blocks and is emptied into the buckets every [`UPKEEP_EVERY`]).
//!
//! Labels are drawn from small fixed sets (kinds, close codes, store operations, matched HTTP
//! routes): never a room, a user or a raw path.

use crate::AppState;
use axum::extract::{MatchedPath, State};
use axum::http::{header, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often recorded histogram samples are folded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets (seconds) for latencies that should be milliseconds: deliveries, bus, store calls.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (seconds) for HTTP requests and the password-hash queue (argon2 takes ~50–500 ms).
const SLOW_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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
    deliveries: [Counter; 3],
    pub delivery_latency: Histogram,
    pub bus_lag: Histogram,
    pub bus_resyncs: Counter,
    pub store_epoch_changes: Counter,
    rate_limited: [Counter; 3],
    pub hash_wait: Histogram,
    connections: Gauge,
    users_online: Gauge,
    store_up: Gauge,
    bus_subscribed: Gauge,
    draining: Gauge,
    recorder: Option<PrometheusRecorder>,
}

/// The handles of one store operation.
pub struct StoreOp {
    pub duration: Histogram,
    pub errors: Counter,
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();
static NOOP: LazyLock<Metrics> = LazyLock::new(|| Metrics::register(None));
static NOOP_OP: StoreOp = StoreOp {
    duration: Histogram::noop(),
    errors: Counter::noop(),
};

/// The process's metrics; no-op handles while metrics are off.
pub fn get() -> &'static Metrics {
    INSTALLED.get().unwrap_or(&NOOP)
}

/// Turns metrics on for this process (idempotent) and returns the handle that renders them.
pub fn install() -> PrometheusHandle {
    let metrics = INSTALLED.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(FAST_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "chat_http_request_duration_seconds".into(),
                    ),
                    SLOW_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "chat_password_hash_wait_seconds".into(),
                    ),
                    SLOW_BUCKETS,
                )
            })
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

    fn histogram(&self, name: &'static str, labels: Vec<Label>, help: &'static str) -> Histogram {
        let Some(r) = self.0 else {
            return Histogram::noop();
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
        let del_help = "Frames written to sockets, by kind";
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
            deliveries: [
                r.counter("chat_deliveries_total", kind("event"), del_help),
                r.counter("chat_deliveries_total", kind("replay"), del_help),
                r.counter("chat_deliveries_total", kind("ephemeral"), del_help),
            ],
            delivery_latency: r.histogram(
                "chat_delivery_latency_seconds",
                vec![],
                "Live room events: from the store accepting the event to the frame written to the socket",
            ),
            bus_lag: r.histogram(
                "chat_bus_lag_seconds",
                vec![],
                "Room events: from the store accepting the event to this node's hub routing it",
            ),
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
            draining: r.gauge(
                "chat_draining",
                vec![],
                "1 once the node is shutting down",
            ),
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
        if n > 0 {
            self.deliveries[kind as usize].increment(n);
        }
    }

    pub fn rate_limited(&self, kind: LimitKind) {
        self.rate_limited[kind as usize].increment(1);
    }

    /// The handles of store operation `op`, cached in `cell` once metrics are on.
    pub fn store_op(&self, cell: &'static OnceLock<StoreOp>, op: &'static str) -> &'static StoreOp {
        let Some(recorder) = &self.recorder else {
            return &NOOP_OP;
        };
        cell.get_or_init(|| {
            let r = Registrar(Some(recorder));
            let labels = || vec![Label::from_static_parts("op", op)];
            StoreOp {
                duration: r.histogram(
                    "chat_store_call_duration_seconds",
                    labels(),
                    "Store calls (Redis round trips or embedded-store operations), by operation",
                ),
                errors: r.counter(
                    "chat_store_errors_total",
                    labels(),
                    "Store calls that failed for the store's sake (unreachable, timeout, unreadable data), by operation",
                ),
            }
        })
    }

    /// Refreshes the gauges that are read from the node's state, folds histogram samples into
    /// buckets and renders the text exposition.
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
        handle.render()
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `ts` of an `event` frame (`{"type":"event","room":R,"seq":S,"ts":T,...}`, written by the
/// store), read without parsing the JSON: it sits in the first few dozen bytes.
pub fn event_ts(frame: &str) -> Option<i64> {
    let head = frame.get(..frame.len().min(96))?;
    let start = head.find("\"ts\":")? + 5;
    let digits = &head[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Seconds from `ts_ms` to `now_ms` (0 when the clocks disagree the other way).
pub fn since(ts_ms: i64, now_ms: i64) -> f64 {
    (now_ms - ts_ms).max(0) as f64 / 1000.0
}

/// The `ts` of a room event's frame when metrics are on (0 when off or absent): read once per
/// event where the hub takes it off the bus, not once per recipient.
pub fn event_ts_for_latency(frame: &str) -> i64 {
    if get().enabled() {
        event_ts(frame).unwrap_or(0)
    } else {
        0
    }
}

/// The clock for [`live_delivered`], read once per batch of frames a socket writes (`None`
/// when metrics are off).
pub fn delivery_clock() -> Option<i64> {
    get().enabled().then(now_ms)
}

/// One live room event handed to the socket: counted, and its latency since the store
/// accepted it (`ts`, see [`event_ts_for_latency`]) recorded against `now` (see
/// [`delivery_clock`]; the frame is flushed with its batch, within the same wake-up).
pub fn live_delivered(ts: i64, now: Option<i64>) {
    let m = get();
    m.deliveries[DeliveryKind::Event as usize].increment(1);
    if let (true, Some(now)) = (ts > 0, now) {
        m.delivery_latency.record(since(ts, now));
    }
}

/// Records one bus message's lag (room events only).
pub fn bus_received(payload: &str) {
    let m = get();
    if !m.enabled() || !payload.starts_with("R ") {
        return;
    }
    let frame = payload.split_once('\n').map_or("", |(_, f)| f);
    if let Some(ts) = event_ts(frame) {
        m.bus_lag.record(since(ts, now_ms()));
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
        let frame =
            r#"{"type":"event","room":12,"seq":345,"ts":1765000000123,"event":{"kind":"message"}}"#;
        assert_eq!(event_ts(frame), Some(1_765_000_000_123));
        assert_eq!(event_ts(r#"{"type":"presence","user":1}"#), None);
        assert_eq!(since(1000, 3500), 2.5);
        assert_eq!(since(5000, 3500), 0.0);
    }
}
