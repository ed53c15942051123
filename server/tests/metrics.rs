//! Prometheus metrics during real traffic (issue 12): the scrape is valid text exposition
//! (checked by `promtool check metrics`, Prometheus's own parser and linter), and the values
//! move as the traffic says — N messages sent, N counted; every delivery counted and timed;
//! connections up, then down, with their close codes.
//!
//! Metrics are per process, so both backends run in one test, one after the other, and the
//! test looks at differences between scrapes.

mod common;

use common::*;
use protocol::rest::Visibility;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

const N: usize = 25;

/// One scrape: `name{labels}` → value, as written (labels in the exporter's order).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn take(http: &reqwest::Client, addr: SocketAddr) -> Scrape {
        let response = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.expect("body");
        promtool_check(&text);
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Scrape(values)
    }

    /// The value of a series (0 when absent: a counter not yet incremented).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// Sum over every series of `name` whose labels contain `label` (e.g. `op="append_message"`).
    fn sum(&self, name: &str, label: &str) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                series.starts_with(name)
                    && series[name.len()..].starts_with('{')
                    && series.contains(label)
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Fails the test if Prometheus's own tool rejects the exposition (format or lint).
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn traffic_moves_the_counters(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.metrics_listen = Some(([127, 0, 0, 1], 0).into())
    })
    .await;
    let addr = server.metrics_addr().expect("metrics listener");
    let http = server.http().clone();
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice
        .api
        .create_room("metered", Visibility::Public)
        .await
        .expect("create room");
    bob.api.join(room.id).await.expect("join");

    let before = Scrape::take(&http, addr).await;
    let mut a = server.ws(&alice).await;
    let mut b = server.ws(&bob).await;
    for i in 0..N {
        a.say(room.id, &format!("message {i}")).await;
    }
    let last = room.last_seq + 1 + N as u64;
    a.events_until(room.id, last).await;
    b.events_until(room.id, last).await;
    let during = Scrape::take(&http, addr).await;

    let delta = |series: &str| during.get(series) - before.get(series);
    assert_eq!(
        delta(r#"chat_messages_total{kind="message"}"#),
        N as f64,
        "[{backend}] messages counted"
    );
    // Each message reached two sockets.
    assert_eq!(
        delta(r#"chat_deliveries_total{kind="event"}"#),
        2.0 * N as f64,
        "[{backend}] live deliveries"
    );
    assert_eq!(
        delta("chat_delivery_latency_seconds_count"),
        2.0 * N as f64,
        "[{backend}] every live delivery timed"
    );
    assert_eq!(delta("chat_ws_connections_opened_total"), 2.0);
    assert_eq!(during.get("chat_ws_connections"), 2.0, "[{backend}]");
    assert_eq!(during.get("chat_users_online"), 2.0, "[{backend}]");
    assert_eq!(during.get("chat_store_up"), 1.0);
    assert_eq!(during.get("chat_bus_subscribed"), 1.0);
    assert_eq!(during.get("chat_draining"), 0.0);
    assert_eq!(
        during.get(&format!(
            "chat_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let appends = during.sum(
        "chat_store_call_duration_seconds_count",
        r#"op="append_message""#,
    ) - before.sum(
        "chat_store_call_duration_seconds_count",
        r#"op="append_message""#,
    );
    assert_eq!(
        appends, N as f64,
        "[{backend}] one store append per message"
    );
    assert!(
        during.sum(
            "chat_http_request_duration_seconds_count",
            r#"route="/api/v1/rooms/{room}/join""#
        ) >= 1.0,
        "[{backend}] HTTP requests counted by their matched route"
    );
    assert!(
        !during
            .0
            .keys()
            .any(|k| k.contains("room=") || k.contains("user=") || k.contains("/rooms/1")),
        "no room or user in any label"
    );

    // Both sockets close normally: the gauge goes back to 0 and the closes are counted.
    a.close().await;
    b.close().await;
    let deadline = Instant::now() + TIMEOUT;
    let after = loop {
        let scrape = Scrape::take(&http, addr).await;
        if scrape.get("chat_ws_connections") == 0.0 {
            break scrape;
        }
        assert!(
            Instant::now() < deadline,
            "[{backend}] connections gauge stuck"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after.get("chat_users_online"), 0.0);
    assert_eq!(
        after.get(r#"chat_ws_closes_total{code="1000"}"#)
            - before.get(r#"chat_ws_closes_total{code="1000"}"#),
        2.0,
        "[{backend}] two normal closes"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_real_traffic() {
    traffic_moves_the_counters(Backend::Memory).await;
    traffic_moves_the_counters(Backend::Redis).await;
}

/// With `metrics_listen` unset no metrics listener is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_when_unset() {
    let server = TestServer::start(Backend::Memory).await;
    assert!(server.metrics_addr().is_none());
    server.shutdown().await;
}
