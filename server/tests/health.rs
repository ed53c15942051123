//! Health checks as a load balancer and a client see them (issue 12): `/readyz` says "not
//! ready" while the node drains, while its bus is not subscribed and while the store is
//! unreachable — and says it within a second; REST calls and `hello` get `store_unavailable`
//! just as fast while the store is known to be down, instead of after the Redis client's
//! reconnect attempts (~9.5 s); `/healthz` stays up; every response carries a request id.

mod common;

use common::*;
use protocol::{ClientFrame, ErrorCode};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// What "fast" means for an answer while the store is known to be down.
const FAST: Duration = Duration::from_secs(1);

/// A redis-server this test can stop and start again on the same port.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    async fn start(port: u16) -> Redis {
        let child = Command::new(RedisServer::BINARY)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Redis {
            child: Some(child),
            port,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn get(server: &TestServer, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = server.get(path).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (status, body, started.elapsed())
}

/// Polls `path` until it answers `status` (at most `within`).
async fn wait_for(server: &TestServer, path: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (got, body, _) = get(server, path).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {got} ({body}) after {within:?}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_is_reported_fast_and_recovers() {
    let mut redis = Redis::start(testkit::free_port()).await;
    let url = redis.url();
    let server = TestServer::start_with(Backend::Memory, |c| c.redis_url = Some(url)).await;
    let alice = server.user("alice").await;
    let (status, body, _) = get(&server, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready"));

    redis.stop();
    // The node notices (its bus drops at once; or the first call fails): not ready.
    wait_for(&server, "/readyz", 503, Duration::from_secs(5)).await;

    // While it is known down, every probe and call answers within a second.
    for _ in 0..3 {
        let (status, body, took) = get(&server, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("store_unavailable"), "{body}");
        assert!(took < FAST, "/readyz took {took:?} with the store down");

        let started = Instant::now();
        let e = alice.api.me().await.expect_err("me with the store down");
        assert_eq!(e.code(), Some(ErrorCode::StoreUnavailable), "{e}");
        assert!(
            started.elapsed() < FAST,
            "GET /api/v1/me took {:?} with the store down",
            started.elapsed()
        );

        let mut ws = server.ws_raw().await;
        let started = Instant::now();
        ws.send_frame(&ClientFrame::Hello {
            token: alice.token.clone(),
            resume: vec![],
            epoch: None,
        })
        .await;
        let e = ws.expect_error().await;
        assert_eq!(e.code, ErrorCode::StoreUnavailable, "{e:?}");
        assert!(
            started.elapsed() < FAST,
            "hello took {:?} to fail with the store down",
            started.elapsed()
        );
    }
    // Liveness is not readiness: the process is fine.
    let (status, _, took) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    assert!(took < FAST);

    // Redis back (empty: it had no persistence): ready again, and new accounts work.
    let _redis = Redis::start(redis.port).await;
    wait_for(&server, "/readyz", 200, Duration::from_secs(10)).await;
    let bob = server.user("bob").await;
    bob.api.me().await.expect("me after the store came back");
}

/// `/readyz` answers 503 once the node drains (between SIGTERM and exit), so a balancer stops
/// sending it new clients; `/healthz` still answers.
async fn not_ready_while_draining(backend: Backend) {
    use tower::ServiceExt;
    let server = TestServer::start(backend).await;
    let (status, _, _) = get(&server, "/readyz").await;
    assert_eq!(status, 200);
    let state = server.state().clone();
    // What `Running::shutdown` does first; asked through the router itself because the
    // listener stops accepting at the same moment.
    state.shutdown.cancel();
    let ask = |path: &'static str| {
        let app = chat_server::app(state.clone());
        async move {
            let request = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request");
            app.oneshot(request).await.expect("router answers")
        }
    };
    let readyz = ask("/readyz").await;
    assert_eq!(readyz.status(), 503);
    let body = axum::body::to_bytes(readyz.into_body(), 4096)
        .await
        .expect("body");
    assert!(
        String::from_utf8_lossy(&body).contains("server_busy"),
        "{body:?}"
    );
    assert_eq!(ask("/healthz").await.status(), 200);
    server.shutdown().await;
}

/// Every response carries `x-request-id`: a proxy's id is kept, otherwise a new one is made.
async fn responses_carry_a_request_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server.get("/healthz").await;
    let id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on the response")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let response = server
        .http()
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "from-the-proxy-42")
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"from-the-proxy-42"[..])
    );
    server.shutdown().await;
}

backend_tests!(not_ready_while_draining, responses_carry_a_request_id);
