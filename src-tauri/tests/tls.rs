//! Certificate trust against a real TLS endpoint: a TLS terminator (tokio-rustls) in front of
//! the plain chat server, with a CA generated here (rcgen) that no trust store knows.
//!
//! Untrusted → a typed error carrying the certificate's fingerprint, subject and issuer;
//! pinned → REST and the socket work; a changed certificate → refused as changed; `http://` to
//! a host that is not loopback → refused before anything is sent.

mod common;

use chat_desktop::Error;
use common::*;
use protocol::ipc::ConnectionState;

/// An untrusted server: `set_server` fails with the certificate's details; trusting that
/// certificate connects (REST and the socket), also after a restart; the same server with
/// another certificate is then refused as changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_then_pinned_then_changed() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let pki = Pki::new("Test Company CA");
    let tls = Terminator::start(&pki, server.addr).await;
    let home = Home::new();
    let (backend, mut ui) = home.open().await;

    let refused = within("set_server", backend.set_server(&tls.url())).await;
    let Err(Error::UntrustedCertificate(cert)) = refused else {
        panic!("expected an untrusted-certificate error, got {refused:?}");
    };
    assert_eq!(cert.sha256, pki.sha256());
    assert_eq!(cert.subject, "CN=chat.test");
    assert_eq!(cert.issuer, format!("CN={}", pki.ca_name));
    assert_eq!(backend.snapshot().server_url, None, "nothing remembered");
    // The IPC form carries the details for the prompt.
    let app = Error::UntrustedCertificate(cert.clone()).to_app_error();
    assert_eq!(app.certificate.as_ref(), Some(&cert));

    within("trust", backend.trust_certificate(&tls.url(), &cert.sha256))
        .await
        .unwrap_or_else(|e| panic!("trust_certificate: {e}"));
    assert_eq!(backend.snapshot().server_url, Some(tls.url()));
    let user = within("register", backend.register(&unique_name("ann"), PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register over the pinned TLS: {e}"));
    ui.wait_online().await;
    let (bob, room) = in_peers_room(&backend, &server, "tls").await;
    bob.send(room.id, "over wss").await;
    ui.wait_message("a message over wss", |m| m.body == "over wss")
        .await;
    backend.shutdown().await;

    // Restarted: the pin is kept with the server.
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    assert_eq!(backend.snapshot().user.map(|u| u.id), Some(user.id));
    backend.shutdown().await;

    // The server now presents another certificate (same name, another CA): refused as changed.
    drop(tls);
    let other = Pki::new("Someone Else CA");
    let swapped = Terminator::start(&other, server.addr).await;
    let home2 = Home::new();
    let (backend, _ui) = home2.open().await;
    within(
        "trust",
        backend.trust_certificate(&swapped.url(), &pki.sha256()),
    )
    .await
    .err()
    .map(|e| match e {
        Error::CertificateChanged(cert) => assert_eq!(cert.sha256, other.sha256()),
        e => panic!("expected certificate_changed, got {e:?}"),
    })
    .unwrap_or_else(|| panic!("a changed certificate was accepted"));
    assert_eq!(backend.snapshot().server_url, None);
    backend.shutdown().await;
}

/// The pinned server of a running app changes its certificate: the socket is refused with a
/// reason that says so, and it keeps retrying (nothing is sent to the impostor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_stops_the_socket() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let pki = Pki::new("Test Company CA");
    let tls = Terminator::start(&pki, server.addr).await;
    let home = Home::new();
    let (backend, mut ui) = home.open().await;
    within(
        "trust",
        backend.trust_certificate(&tls.url(), &pki.sha256()),
    )
    .await
    .unwrap_or_else(|e| panic!("trust_certificate: {e}"));
    within("register", backend.register(&unique_name("ann"), PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    ui.wait_online().await;
    backend.shutdown().await;
    let port = tls.addr.port();
    drop(tls);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let other = Pki::new("Impostor CA");
    let _impostor = Terminator::start_at(&other, server.addr, port).await;
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
    assert!(reason.contains(&other.sha256()), "{reason}");
    assert_ne!(backend.snapshot().connection, ConnectionState::Online);
    backend.shutdown().await;
}

/// `http://` is refused for a host that is not loopback, with why and what to do; loopback
/// stays allowed for local servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_for_loopback() {
    let home = Home::new();
    let (backend, _ui) = home.open().await;
    for url in ["http://chat.example.com", "http://192.168.1.20:8080"] {
        let refused = within("set_server", backend.set_server(url)).await;
        let Err(e @ Error::InsecureUrl(_)) = refused else {
            panic!("{url}: expected insecure_url, got {refused:?}");
        };
        let text = e.to_string();
        assert!(text.contains("https://"), "{text}");
        assert!(text.contains("TLS"), "{text}");
        assert_eq!(
            e.to_app_error().code,
            protocol::ipc::AppErrorCode::InsecureUrl
        );
    }
    // Loopback passes the URL check (nothing listens there: unreachable, not refused).
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        let result = within("set_server", backend.set_server(url)).await;
        assert!(
            matches!(result, Err(Error::Unreachable(_))),
            "{url}: {result:?}"
        );
    }
    backend.shutdown().await;
}
