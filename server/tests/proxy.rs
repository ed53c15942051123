//! The shipped reverse-proxy configurations in front of two nodes on one Redis, run by Debian's
//! proxies (`testkit::proxy`): nginx with `deploy/nginx/chat.conf` (ports, paths and upstreams
//! replaced) over https/wss with a CA made in the test, and caddy with `deploy/Caddyfile`
//! unchanged (its placeholders set: plain http on a free port). Through each: register, log in
//! and chat over the WebSocket, the login limit keys on the real client address, a spoofed
//! X-Forwarded-For is ignored, and every request reaches the node with the proxy's request id.

mod common;

use common::*;
use protocol::rest::Visibility;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use testkit::proxy::TlsFiles;
use testkit::tls::TestCa;

/// An http(s) client that trusts only `ca` (if any) and connects from `from` (a loopback
/// address).
fn client(ca: Option<&TestCa>, from: IpAddr) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .no_proxy()
        .local_address(from)
        .tls_built_in_root_certs(false);
    if let Some(ca) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: Value, xff: Option<&str>) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Node settings behind a proxy on loopback.
fn behind_proxy(c: &mut chat_server::Config) {
    c.trusted_proxies = vec!["127.0.0.1".into()];
    // A burst of one login per client address and node.
    c.logins_per_min = 3;
}

/// What a user and an operator observe through a proxy at `base` (`http(s)://host:port`) in front
/// of `n1` and `n2`, balancing requests over both: accounts, chat over the WebSocket, the login
/// limit per real client address, spoofed X-Forwarded-For ignored, the proxy's request id.
/// `request_id` tells the proxy's id format from anything else.
async fn through_proxy(
    name: &str,
    base: &str,
    ca: Option<&TestCa>,
    nodes: [&TestServer; 2],
    request_id: impl Fn(&str) -> bool,
) {
    // Each user registers from their own address (one login-bucket token each, per node).
    let from = |n: u8| IpAddr::from([127, 0, 0, n]);
    let mut users = Vec::new();
    for (n, user) in [(2, unique_name("alice")), (3, unique_name("bob"))] {
        let http = client(ca, from(n));
        let (status, auth) = post(
            &http,
            &format!("{base}/api/v1/register"),
            json!({"username": user, "password": PASSWORD}),
            None,
        )
        .await;
        assert_eq!(status, 201, "register through {name}: {auth}");
        users.push((user, auth["token"].as_str().unwrap().to_owned()));
    }
    let tls = ca.map(|ca| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().into()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    });
    // A room made on the nodes directly; then both users chat through the proxy, whichever
    // node each socket lands on.
    let room = nodes[0]
        .api_with(&users[0].1)
        .create_room("proxied", Visibility::Public)
        .await
        .unwrap();
    nodes[1].api_with(&users[1].1).join(room.id).await.unwrap();
    let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
    let mut alice_ws = Ws::connect_tls(&ws_url, "alice", tls.clone()).await;
    alice_ws.hello(&users[0].1, vec![]).await;
    let mut bob_ws = Ws::connect_tls(&ws_url, "bob", tls.clone()).await;
    bob_ws.hello(&users[1].1, vec![]).await;
    let text = format!("through {name}");
    let ack = alice_ws.say(room.id, &text).await;
    let seen = bob_ws.expect_events(1).await;
    assert_eq!(seen[0].seq, ack.seq);
    assert_eq!(message_of(&seen[0]).1, text);

    // Logins: 127.0.0.4 spends its one token on each node (the proxy alternates the nodes)...
    let mallory = client(ca, from(4));
    let login = |user: &str| json!({"username": user, "password": PASSWORD});
    let url = format!("{base}/api/v1/login");
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(post(&mallory, &url, login(&users[0].0), None).await.0);
    }
    assert_eq!(answers, [200, 200, 429, 429], "two nodes, one token each");
    // ...writing another address into X-Forwarded-For does not help (the proxy appends or sets
    // the real one)...
    for _ in 0..2 {
        let (status, body) = post(&mallory, &url, login(&users[0].0), Some("198.51.100.9")).await;
        assert_eq!(status, 429, "spoofed X-Forwarded-For was believed: {body}");
    }
    // ...and another client behind the same proxy is not affected.
    let carol = client(ca, from(5));
    let (status, body) = post(&carol, &url, login(&users[0].0), None).await;
    assert_eq!(status, 200, "{body}");

    // Every request reaches the node with the proxy's own request id (the node logs it and
    // answers with it), not one the client made up.
    for _ in 0..2 {
        let resp = carol
            .get(format!("{base}/healthz"))
            .header("x-request-id", "made-up-by-the-client")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            request_id(id),
            "x-request-id {id:?} is not {name}'s request id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("nginx test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path());
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, behind_proxy).await;
    let n2 = TestServer::start_on_redis(&redis, behind_proxy).await;
    let tls = TlsFiles {
        cert: &cert,
        key: &key,
    };
    let nginx = testkit::proxy::nginx(dir.path(), Some(tls), &[n1.addr, n2.addr])
        .await
        .unwrap();
    let base = format!("https://{}", nginx.addr);
    // nginx's $request_id: 32 hex digits.
    let nginx_id = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    through_proxy("nginx", &base, Some(&ca), [&n1, &n2], nginx_id).await;
    let log = nginx.log();
    assert!(!log.contains("[emerg]"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_caddy() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, behind_proxy).await;
    let n2 = TestServer::start_on_redis(&redis, behind_proxy).await;
    let caddy = testkit::proxy::caddy(dir.path(), &[n1.addr, n2.addr])
        .await
        .unwrap();
    let base = format!("http://{}", caddy.addr);
    // Caddy's {http.request.uuid}: a UUID.
    let caddy_id = |id: &str| {
        id.len() == 36
            && id.split('-').map(str::len).eq([8, 4, 4, 4, 12])
            && id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
    };
    through_proxy("caddy", &base, None, [&n1, &n2], caddy_id).await;
    let log = caddy.log();
    assert!(!log.contains("\"level\":\"error\""), "{log}");
}
