//! Login throttling: per client address (from `X-Forwarded-For` only behind a trusted proxy;
//! IPv6 per /64) and per account (docs/SECURITY.md, "Password guessing").

mod common;

use common::*;
use serde_json::{json, Value};

common::backend_tests!(
    spoofed_forwarded_for_from_an_untrusted_peer_is_ignored,
    trusted_proxy_forwarded_for_gives_each_client_its_bucket,
    ipv6_addresses_of_one_64_share_a_bucket,
    rotating_addresses_cannot_exceed_the_account_budget,
);

/// What a login answered: HTTP status and, for errors, the code and `retry_after_ms`.
#[derive(Debug)]
struct Outcome {
    status: u16,
    code: Option<String>,
    retry_after_ms: Option<u64>,
}

impl Outcome {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// `POST /api/v1/login` with `X-Forwarded-For: xff` (when given).
async fn login_from(server: &TestServer, xff: Option<&str>, name: &str, password: &str) -> Outcome {
    let mut req = server
        .http()
        .post(format!("{}/api/v1/login", server.base))
        .json(&json!({"username": name, "password": password}));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req.send().await.expect("login request");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Outcome {
        status,
        code: body["code"].as_str().map(str::to_owned),
        retry_after_ms: body["retry_after_ms"].as_u64(),
    }
}

/// 6 a minute: a burst of 2 per address bucket.
fn two_per_address(c: &mut chat_server::Config) {
    c.logins_per_min = 6;
}

async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    let server = TestServer::start_with(backend, two_per_address).await;
    let alice = server.user("alice").await; // registration takes one from 127.0.0.1
    let first = login_from(&server, Some("198.51.100.1"), &alice.name, PASSWORD).await;
    assert_eq!(first.status, 200, "{first:?}");
    // A new made-up address per request does not give a new bucket: the peer is not a proxy.
    let spoofed = login_from(&server, Some("198.51.100.2"), &alice.name, PASSWORD).await;
    assert!(spoofed.is("rate_limited"), "{spoofed:?}");
    assert_eq!(spoofed.status, 429);
}

async fn trusted_proxy_forwarded_for_gives_each_client_its_bucket(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        two_per_address(c);
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let alice = server.user("alice").await; // no header: the proxy's own bucket
    for _ in 0..2 {
        let ok = login_from(&server, Some("198.51.100.1"), &alice.name, PASSWORD).await;
        assert_eq!(ok.status, 200, "{ok:?}");
    }
    let third = login_from(&server, Some("198.51.100.1"), &alice.name, PASSWORD).await;
    assert!(third.is("rate_limited"), "{third:?}");
    // Another client behind the same proxy has its own bucket...
    let other = login_from(&server, Some("198.51.100.2"), &alice.name, PASSWORD).await;
    assert_eq!(other.status, 200, "{other:?}");
    // ...and what a client writes left of the proxy's entry is not believed.
    let forged = login_from(
        &server,
        Some("203.0.113.9, 198.51.100.1"),
        &alice.name,
        PASSWORD,
    )
    .await;
    assert!(forged.is("rate_limited"), "{forged:?}");
}

async fn ipv6_addresses_of_one_64_share_a_bucket(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        two_per_address(c);
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let alice = server.user("alice").await;
    let a = login_from(&server, Some("2001:db8:1:2::1"), &alice.name, PASSWORD).await;
    let b = login_from(&server, Some("2001:db8:1:2:ffff::9"), &alice.name, PASSWORD).await;
    assert_eq!((a.status, b.status), (200, 200), "{a:?} {b:?}");
    let c = login_from(&server, Some("2001:db8:1:2:abcd::7"), &alice.name, PASSWORD).await;
    assert!(c.is("rate_limited"), "same /64: {c:?}");
    let d = login_from(&server, Some("2001:db8:1:3::1"), &alice.name, PASSWORD).await;
    assert_eq!(d.status, 200, "next /64: {d:?}");
}

/// An attacker with a new address for every guess gets the account's budget and no more;
/// the owner still logs in from where they logged in before; elsewhere they are told when.
async fn rotating_addresses_cannot_exceed_the_account_budget(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.logins_per_min = 1000;
        c.login_failures_burst = 3;
        c.login_failures_per_hour = 2;
    })
    .await;
    let alice = server.user("alice").await;
    let home = "192.0.2.50";
    let ok = login_from(&server, Some(home), &alice.name, PASSWORD).await;
    assert_eq!(ok.status, 200, "{ok:?}");

    let mut guesses = Vec::new();
    for i in 1..=10 {
        let from = format!("203.0.113.{i}");
        guesses.push(login_from(&server, Some(&from), &alice.name, &format!("guess {i}")).await);
    }
    let checked = guesses
        .iter()
        .filter(|g| g.is("invalid_credentials"))
        .count();
    assert_eq!(
        checked, 3,
        "passwords checked for the attacker: {guesses:?}"
    );
    for refused in &guesses[3..] {
        assert!(refused.is("rate_limited"), "{refused:?}");
        // Bounded: at most one refill interval (30 min at 2 per hour).
        let wait = refused.retry_after_ms.expect("retry_after_ms");
        assert!(wait > 0 && wait <= 30 * 60 * 1000, "{wait}");
    }
    // Even the right password from yet another address waits: the budget is the account's.
    let elsewhere = login_from(&server, Some("198.51.100.77"), &alice.name, PASSWORD).await;
    assert!(elsewhere.is("rate_limited"), "{elsewhere:?}");
    // The owner at home is not locked out.
    let owner = login_from(&server, Some(home), &alice.name, PASSWORD).await;
    assert_eq!(owner.status, 200, "{owner:?}");
    // Another account is untouched.
    let bob = server.user("bob").await;
    let b = login_from(&server, Some("203.0.113.1"), &bob.name, PASSWORD).await;
    assert_eq!(b.status, 200, "{b:?}");
}
