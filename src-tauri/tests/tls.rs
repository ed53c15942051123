//! Certificate trust against a real chat server serving https/wss itself (`tls_cert`,
//! `tls_key`) with certificates from CAs made here (testkit's rcgen CA).
//!
//! A CA in the OS store → works like any public one; an unknown CA → a typed error carrying the
//! certificate's fingerprint, subject and issuer; pinned → REST and the socket work, also after
//! a restart; a changed certificate → refused as changed (at `set_server` and on the socket);
//! `http://` to a host that is not loopback → refused before anything is sent. Debian's nginx
//! with the shipped site config terminating TLS in front of two nodes → login and messages both
//! ways, across nodes.
//!
//! The "OS store" of this test process is `SSL_CERT_FILE` (read by rustls-native-certs on
//! Linux), set once, before any test of this binary makes a TLS client.

mod common;

use chat_desktop::Error;
use common::*;
use protocol::ipc::{AppErrorCode, ConnectionState};
use std::sync::OnceLock;

/// The CA installed in this process's OS store (`SSL_CERT_FILE`), installed on first use.
fn os_trusted_ca() -> &'static TestCa {
    static CA: OnceLock<(TestCa, tempfile::TempDir)> = OnceLock::new();
    &CA.get_or_init(|| {
        let ca = TestCa::new("Example Corp Internal CA");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let file = dir.path().join("ca-certificates.crt");
        std::fs::write(&file, ca.pem()).unwrap_or_else(|e| panic!("write CA: {e}"));
        // Every test of this binary calls this first, so no TLS client reads the
        // environment before it is set.
        std::env::set_var("SSL_CERT_FILE", &file);
        (ca, dir)
    })
    .0
}

/// A company CA installed on the machine: the app trusts it without asking. Log in, then a
/// message each way over https and wss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_the_os_store_is_trusted() {
    let ca = os_trusted_ca();
    let redis = Redis::start().await;
    let server = Server::start_tls(&redis, ca).await;
    assert!(server.url().starts_with("https://"));
    let home = Home::new();
    let (backend, mut ui) = home.open().await;
    within("set_server", backend.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server with an OS-trusted CA: {e}"));
    let name = unique_name("ann");
    within("register", backend.register(&name, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register over https: {e}"));
    backend.logout().await.unwrap_or_else(|e| panic!("{e}"));
    within("login", backend.login(&name, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login over https: {e}"));
    ui.wait_online().await;
    let (bob, room) = in_peers_room(&backend, &server, "tls").await;
    bob.send(room.id, "to ann over wss").await;
    ui.wait_message("bob's message over wss", |m| m.body == "to ann over wss")
        .await;
    within("send", backend.send(room.id, "to bob over https"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    ui.wait_message("ann's message sent", |m| {
        m.body == "to bob over https" && is_sent(m)
    })
    .await;
    assert!(bob
        .bodies(room.id)
        .await
        .contains(&"to bob over https".to_owned()));
    backend.shutdown().await;
}

/// An unknown CA: `set_server` fails with the certificate's details and remembers nothing;
/// trusting that certificate connects (REST and the socket), also after a restart; the server
/// then presents another certificate: the running app's socket and a new `set_server` are
/// refused as changed, naming the new fingerprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_then_pinned_then_changed() {
    os_trusted_ca();
    let redis = Redis::start().await;
    let private = TestCa::new("Test Company CA");
    let server = Server::start_tls(&redis, &private).await;
    let url = server.url();
    let served = private.issue(&["127.0.0.1"]);
    server.present(&served);
    let home = Home::new();
    let (backend, mut ui) = home.open().await;

    let refused = within("set_server", backend.set_server(&url)).await;
    let Err(Error::UntrustedCertificate(cert)) = refused else {
        panic!("expected an untrusted-certificate error, got {refused:?}");
    };
    assert_eq!(cert.sha256, sha256_of(&served));
    assert_eq!(cert.subject, "CN=127.0.0.1");
    assert_eq!(cert.issuer, "CN=Test Company CA");
    assert_eq!(backend.snapshot().server_url, None, "nothing remembered");
    // The IPC form carries the details for the prompt.
    let app = Error::UntrustedCertificate(cert.clone()).to_app_error();
    assert_eq!(app.code, AppErrorCode::UntrustedCertificate);
    assert_eq!(app.certificate.as_ref(), Some(&cert));

    within("trust", backend.trust_certificate(&url, &cert.sha256))
        .await
        .unwrap_or_else(|e| panic!("trust_certificate: {e}"));
    assert_eq!(backend.snapshot().server_url, Some(url.clone()));
    let user = within("register", backend.register(&unique_name("ann"), PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register over the pinned TLS: {e}"));
    ui.wait_online().await;
    let (bob, room) = in_peers_room(&backend, &server, "pinned").await;
    bob.send(room.id, "over pinned wss").await;
    ui.wait_message("a message over wss", |m| m.body == "over pinned wss")
        .await;
    backend.shutdown().await;

    // Restarted: the pin is kept with the server.
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    assert_eq!(backend.snapshot().user.map(|u| u.id), Some(user.id));
    backend.shutdown().await;

    // The server now presents another certificate (same name, another CA): the socket of the
    // restarted app is refused, saying so, and never gets online.
    let impostor = TestCa::new("Impostor CA").issue(&["127.0.0.1"]);
    server.present(&impostor);
    let (backend, mut ui) = home.open().await;
    let state = ui
        .wait_state("refused as changed", |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await;
    let ConnectionState::Reconnecting { reason, .. } = state else {
        unreachable!()
    };
    assert!(reason.contains("certificate changed"), "{reason}");
    assert!(reason.contains(&sha256_of(&impostor)), "{reason}");
    assert_ne!(backend.snapshot().connection, ConnectionState::Online);
    backend.logout().await.unwrap_or_else(|e| panic!("{e}"));

    // Choosing the server again checks against the stored pin: refused as changed.
    let again = within("set_server", backend.set_server(&url)).await;
    let Err(Error::CertificateChanged(now)) = again else {
        panic!("expected certificate_changed, got {again:?}");
    };
    assert_eq!(now.sha256, sha256_of(&impostor));
    assert_eq!(
        Error::CertificateChanged(now).to_app_error().code,
        AppErrorCode::CertificateChanged
    );
    // Another server in between does not make the app forget the pin of this one.
    let plain = Server::start(&redis).await;
    within("set_server", backend.set_server(&plain.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server plain loopback: {e}"));
    let again = within("set_server", backend.set_server(&url)).await;
    assert!(
        matches!(again, Err(Error::CertificateChanged(_))),
        "{again:?}"
    );
    // The operator renewed it for real and the user checked the new fingerprint: trusted.
    within(
        "trust",
        backend.trust_certificate(&url, &sha256_of(&impostor)),
    )
    .await
    .unwrap_or_else(|e| panic!("trusting the new certificate: {e}"));
    backend.shutdown().await;
}

/// `http://` is refused for a host that is not loopback, with why and what to do; loopback
/// stays allowed for local servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_for_loopback() {
    os_trusted_ca();
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, _ui) = home.open().await;
    for url in [
        "http://chat.example.com",
        "http://192.168.1.20:8080",
        "http://[fe80::1]:8080",
    ] {
        let refused = within("set_server", backend.set_server(url)).await;
        let Err(e @ Error::InsecureUrl(_)) = refused else {
            panic!("{url}: expected insecure_url, got {refused:?}");
        };
        let text = e.to_string();
        assert!(text.contains("https://"), "{text}");
        assert!(text.contains("TLS"), "{text}");
        assert_eq!(e.to_app_error().code, AppErrorCode::InsecureUrl);
        assert_eq!(backend.snapshot().server_url, None);
    }
    // Loopback passes the URL check (nothing listens there: unreachable, not refused) …
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        let result = within("set_server", backend.set_server(url)).await;
        assert!(
            matches!(result, Err(Error::Unreachable(_))),
            "{url}: {result:?}"
        );
    }
    // … and a local server over plain http works.
    within("set_server", backend.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server http://127.0.0.1: {e}"));
    backend.shutdown().await;
}

/// Debian's nginx with the shipped `deploy/nginx/chat.conf` terminates TLS in front of two
/// nodes on one Redis; its certificate comes from a CA in the OS store. The app logs in over
/// https, its socket goes over wss through nginx to one of the nodes, and messages cross both
/// ways: from the app to users on each node, and from users on each node (so at least one on
/// the node the app is not connected to) to the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_in_front_of_two_nodes() {
    let ca = os_trusted_ca();
    let redis = Redis::start().await;
    let (n1, n2) = (Server::start(&redis).await, Server::start(&redis).await);
    let certs = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"]).write(certs.path());
    let site = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let tls = testkit::proxy::TlsFiles {
        cert: &cert,
        key: &key,
    };
    let nginx = testkit::proxy::nginx(site.path(), Some(tls), &[n1.addr, n2.addr])
        .await
        .unwrap_or_else(|e| panic!("nginx: {e}"));
    let url = format!("https://{}", nginx.addr);

    let home = Home::new();
    let (backend, mut ui) = home.open().await;
    within("set_server", backend.set_server(&url))
        .await
        .unwrap_or_else(|e| panic!("set_server through nginx: {e}"));
    let name = unique_name("ann");
    within("register", backend.register(&name, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register through nginx: {e}"));
    backend.logout().await.unwrap_or_else(|e| panic!("{e}"));
    within("login", backend.login(&name, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login through nginx: {e}"));
    ui.wait_online().await;

    // Bob is on node 1, carol on node 2, both in one room with the app's user.
    let (bob, room) = in_peers_room(&backend, &n1, "nginx").await;
    let carol = Peer::register(&n2, "carol").await;
    bob.invite(room.id, carol.id).await;
    bob.send(room.id, "from node 1").await;
    carol.send(room.id, "from node 2").await;
    for body in ["from node 1", "from node 2"] {
        ui.wait_message(body, |m| m.body == body && m.seq.is_some())
            .await;
    }
    within("send", backend.send(room.id, "from the app via nginx"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    ui.wait_message("the app's message sent", |m| {
        m.body == "from the app via nginx" && is_sent(m)
    })
    .await;
    for peer in [&bob, &carol] {
        let bodies = peer.bodies(room.id).await;
        assert!(
            bodies.iter().any(|b| b == "from the app via nginx"),
            "{} does not see the app's message: {bodies:?}",
            peer.username
        );
    }
    assert!(
        !nginx.log().contains("[error]"),
        "nginx logged errors:\n{}",
        nginx.log()
    );
    backend.shutdown().await;
}
