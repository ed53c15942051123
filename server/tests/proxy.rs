//! Debian's nginx, running the shipped `deploy/nginx/chat.conf` (ports, paths and upstreams
//! replaced), in front of two nodes on one Redis: register, log in and chat through it over
//! https/wss with a CA made in the test, and the login limit keys on the real client address.

mod common;

use common::*;
use protocol::rest::Visibility;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use testkit::tls::TestCa;
use tokio::time::Instant;

const NGINX: &str = "/usr/sbin/nginx";

/// An nginx master process; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped site file with the test's port, certificate and upstream nodes.
fn site_config(port: u16, cert: &Path, key: &Path, nodes: &[std::net::SocketAddr]) -> String {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/chat.conf"),
    )
    .expect("deploy/nginx/chat.conf");
    let upstreams: String = nodes.iter().map(|n| format!("server {n};\n    ")).collect();
    let mut out = String::new();
    let mut skip_redirect = false;
    for line in shipped.lines() {
        let t = line.trim();
        // The port-80 redirect block is not needed here.
        if t == "listen 80;" {
            skip_redirect = true;
        }
        let replaced = match t {
            "listen 443 ssl http2;" => format!("    listen 127.0.0.1:{port} ssl http2;"),
            "listen [::]:443 ssl http2;" | "listen [::]:80;" => continue,
            "server 127.0.0.1:8080;" => format!("    {upstreams}"),
            _ if t.starts_with("ssl_certificate ") => {
                format!("    ssl_certificate {};", cert.display())
            }
            _ if t.starts_with("ssl_certificate_key ") => {
                format!("    ssl_certificate_key {};", key.display())
            }
            _ => line.to_owned(),
        };
        if !skip_redirect {
            out.push_str(&replaced);
            out.push('\n');
        }
    }
    // The redirect block started with `server {` on the line before `listen 80;`.
    let cut = out.rfind("server {").expect("redirect block");
    out.truncate(cut);
    out
}

/// Starts nginx on a free port with the shipped site in front of `nodes`, files in `dir`.
async fn start_nginx(dir: &Path, cert: &Path, key: &Path, nodes: &[std::net::SocketAddr]) -> Nginx {
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let port = testkit::free_port();
    std::fs::write(dir.join("chat.conf"), site_config(port, cert, key, nodes)).unwrap();
    let root = rustix::process::geteuid().is_root();
    let main = format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/chat.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
        d = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {NGINX} (scripts/setup.sh installs nginx): {e}"));
    let mut nginx = Nginx { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited with {status}:\n{log}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", nginx.port))
            .await
            .is_ok()
        {
            return nginx;
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An https client that trusts `ca` and connects from `from` (a loopback address).
fn client(ca: &TestCa, from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .no_proxy()
        .local_address(from)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("nginx test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path());
    let redis = Arc::new(RedisServer::start().await);
    let behind_nginx = |c: &mut chat_server::Config| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        // A burst of one login per client address and node.
        c.logins_per_min = 3;
    };
    let n1 = TestServer::start_on_redis(&redis, behind_nginx).await;
    let n2 = TestServer::start_on_redis(&redis, behind_nginx).await;
    let nginx = start_nginx(dir.path(), &cert, &key, &[n1.addr, n2.addr]).await;
    let base = format!("https://127.0.0.1:{}", nginx.port);

    // Each user registers from their own address (one login-bucket token each, per node).
    let from = |n: u8| IpAddr::from([127, 0, 0, n]);
    let mut users = Vec::new();
    for (n, name) in [(2, unique_name("alice")), (3, unique_name("bob"))] {
        let http = client(&ca, from(n));
        let (status, auth) = post(
            &http,
            &format!("{base}/api/v1/register"),
            json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await;
        assert_eq!(status, 201, "register through nginx: {auth}");
        users.push((name, auth["token"].as_str().unwrap().to_owned()));
    }
    let tls = {
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
    };
    // A room made on the nodes directly; then both users chat through nginx, whichever node
    // each socket lands on.
    let room = n1
        .api_with(&users[0].1)
        .create_room("proxied", Visibility::Public)
        .await
        .unwrap();
    n2.api_with(&users[1].1).join(room.id).await.unwrap();
    let ws_url = format!("wss://127.0.0.1:{}/ws", nginx.port);
    let mut alice_ws = Ws::connect_tls(&ws_url, "alice", Some(tls.clone())).await;
    alice_ws.hello(&users[0].1, vec![]).await;
    let mut bob_ws = Ws::connect_tls(&ws_url, "bob", Some(tls.clone())).await;
    bob_ws.hello(&users[1].1, vec![]).await;
    let ack = alice_ws.say(room.id, "through nginx").await;
    let seen = bob_ws.expect_events(1).await;
    assert_eq!(seen[0].seq, ack.seq);
    assert_eq!(message_of(&seen[0]).1, "through nginx");

    // Logins: 127.0.0.4 spends its one token on each node (nginx alternates the nodes)...
    let mallory = client(&ca, from(4));
    let login = |name: &str| json!({"username": name, "password": PASSWORD});
    let url = format!("{base}/api/v1/login");
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(post(&mallory, &url, login(&users[0].0), None).await.0);
    }
    assert_eq!(answers, [200, 200, 429, 429], "two nodes, one token each");
    // ...writing another address into X-Forwarded-For does not help (nginx appends the real one)...
    for _ in 0..2 {
        let (status, body) = post(&mallory, &url, login(&users[0].0), Some("198.51.100.9")).await;
        assert_eq!(status, 429, "spoofed X-Forwarded-For was believed: {body}");
    }
    // ...and another client behind the same nginx is not affected.
    let carol = client(&ca, from(5));
    let (status, body) = post(&carol, &url, login(&users[0].0), None).await;
    assert_eq!(status, 200, "{body}");

    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(!log.contains("[emerg]"), "{log}");
    drop(nginx);
}
