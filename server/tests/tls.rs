//! Built-in TLS: https and wss with a certificate from a CA made in the test, and renewed
//! certificates picked up without a restart (the reload function, SIGHUP to the binary, and the
//! file watch).

mod common;

use common::*;
use protocol::rest::Visibility;
use std::sync::Arc;
use std::time::Duration;
use testkit::tls::TestCa;
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

common::backend_tests!(
    https_and_wss_with_a_private_ca,
    renewed_certificate_is_served_after_reload,
    renewed_certificate_files_are_picked_up_without_a_signal,
);

/// The leaf certificate a new TLS connection to `addr` is shown (verified against `ca`).
async fn served_cert(addr: std::net::SocketAddr, ca: &TestCa) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake with a certificate the CA signed");
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("server certificate")[0]
        .to_vec()
}

/// Register, log in, socket, send — all over TLS; plain http gets no answer.
async fn https_and_wss_with_a_private_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("chat test CA");
    let server = TestServer::start_tls(backend, &ca, dir.path(), |_| {}).await;
    assert!(server.base.starts_with("https://"));
    let alice = server.user("alice").await;
    let alice = server.login(&alice, "laptop").await;
    let room = alice
        .api
        .create_room("tls", Visibility::Public)
        .await
        .unwrap();
    let mut ws = server.ws(&alice).await;
    assert!(ws.welcome.is_some());
    let ack = ws.say(room.id, "over wss").await;
    let events = ws.expect_events(1).await;
    assert_eq!(events[0].seq, ack.seq);
    assert_eq!(message_of(&events[0]).1, "over wss");

    // The same port does not speak plain HTTP.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain http answered: {plain:?}");

    // A client that does not trust the CA is refused.
    let stranger = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    assert!(
        stranger.is_err(),
        "untrusted client connected: {stranger:?}"
    );
}

/// Renewal: new connections get the new certificate, an open socket keeps working; a broken
/// file keeps the old certificate.
async fn renewed_certificate_is_served_after_reload(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("chat test CA");
    let server = TestServer::start_tls(backend, &ca, dir.path(), |_| {}).await;
    let first = served_cert(server.addr, &ca).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("renew", Visibility::Public)
        .await
        .unwrap();
    let mut open = server.ws(&alice).await;

    let renewed = ca.issue(&["127.0.0.1"]);
    assert_ne!(renewed.der, first);
    renewed.write(dir.path());
    server.running().reload_tls().expect("renewed pair loads");
    assert_eq!(served_cert(server.addr, &ca).await, renewed.der);

    // The socket opened before the renewal still works both ways.
    open.say(room.id, "after renewal").await;
    assert_eq!(
        message_of(&open.expect_events(1).await[0]).1,
        "after renewal"
    );
    let mut fresh = server.ws(&alice).await;
    fresh.say(room.id, "new socket").await;

    // A half-written renewal (key of another certificate) is refused; the served one stays.
    let other = ca.issue(&["127.0.0.1"]);
    std::fs::write(dir.path().join("key.pem"), &other.key_pem).unwrap();
    let err = server.running().reload_tls().expect_err("mismatched pair");
    assert!(
        err.to_string().contains("do not make a usable pair"),
        "{err}"
    );
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    let err = server.running().reload_tls().expect_err("garbage");
    assert!(
        err.to_string().contains("not a PEM certificate chain"),
        "{err}"
    );
    assert_eq!(served_cert(server.addr, &ca).await, renewed.der);
    server
        .api()
        .login(&alice.name, PASSWORD, None)
        .await
        .unwrap();
}

/// Waits (at most 20 s) until the server counts `refused` refused reloads.
async fn wait_refused(server: &TestServer, refused: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.running().tls_reloads().unwrap().refused < refused {
        assert!(
            Instant::now() < deadline,
            "the file watch did not look at the broken pair within 20 s: {:?}",
            server.running().tls_reloads()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces `name` in `dir` the way renewal tools do: a new file renamed over the old one.
fn replace(dir: &std::path::Path, name: &str, contents: &str) {
    let tmp = dir.join(format!("{name}.new"));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The file watch (`tls_watch_secs`): a renewal written over the files is served without
/// SIGHUP; a broken pair written first keeps the old certificate (and is counted as refused).
async fn renewed_certificate_files_are_picked_up_without_a_signal(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("chat test CA");
    let server = TestServer::start_tls(backend, &ca, dir.path(), |c| c.tls_watch_secs = 1).await;
    let first = served_cert(server.addr, &ca).await;
    assert_eq!(server.running().tls_reloads().unwrap().refused, 0);

    // A broken renewal: the key of another certificate. Once the watch has looked at it, the
    // old certificate is still served.
    let other = ca.issue(&["127.0.0.1"]);
    replace(dir.path(), "key.pem", &other.key_pem);
    wait_refused(&server, 1).await;
    assert_eq!(served_cert(server.addr, &ca).await, first);
    // Garbage in the certificate file: the same.
    replace(dir.path(), "cert.pem", "not a certificate");
    wait_refused(&server, 2).await;
    assert_eq!(served_cert(server.addr, &ca).await, first);

    // The real renewal, certificate then key, each replaced by rename: served once the watch
    // has seen both (a check between the two sees a mismatched pair and keeps the old one).
    let renewed = ca.issue(&["127.0.0.1"]);
    assert_ne!(renewed.der, first);
    replace(dir.path(), "cert.pem", &renewed.cert_pem);
    replace(dir.path(), "key.pem", &renewed.key_pem);
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_cert(server.addr, &ca).await != renewed.der {
        assert!(
            Instant::now() < deadline,
            "still the old certificate 20 s after the files were replaced: {:?}",
            server.running().tls_reloads()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.running().tls_reloads().unwrap().reloaded >= 1);
    // Serving goes on over the new certificate.
    let alice = server.user("alice").await;
    server
        .api()
        .login(&alice.name, PASSWORD, None)
        .await
        .unwrap();
}

/// The real signal: `chat-server` (the binary) re-reads its certificate on SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("chat test CA");
    let first = ca.issue(&["127.0.0.1"]);
    let (cert, key) = first.write(dir.path());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .env_clear()
        .env("CHAT_LISTEN", "127.0.0.1:0")
        .env("CHAT_TLS_CERT", &cert)
        .env("CHAT_TLS_KEY", &key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chat-server");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("chat-server listening on https://") {
                return addr.parse::<std::net::SocketAddr>().unwrap();
            }
        }
        panic!("chat-server exited without announcing its address");
    };
    let addr = tokio::time::timeout(Duration::from_secs(15), announced)
        .await
        .expect("chat-server announced its https address within 15 s");
    assert_eq!(served_cert(addr, &ca).await, first.der);

    let renewed = ca.issue(&["127.0.0.1"]);
    renewed.write(dir.path());
    let pid = child.id().expect("child pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    // The signal is handled asynchronously: poll, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_cert(addr, &ca).await != renewed.der {
        assert!(
            Instant::now() < deadline,
            "still the old certificate 10 s after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGHUP did not stop it.
    assert!(
        child.try_wait().unwrap().is_none(),
        "chat-server exited on SIGHUP"
    );
    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
