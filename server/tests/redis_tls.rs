//! Redis over TLS with ACL credentials: `rediss://user:pass@host:port` and `redis_ca`.

mod common;

use common::*;
use protocol::rest::Visibility;
use std::sync::Arc;
use testkit::tls::TestCa;

/// Accounts, rooms, history and the bus (a second node sees the first node's message live)
/// all work against a redis that speaks only TLS and refuses the default user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_acl_user_and_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("redis test CA");
    let redis = Arc::new(RedisServer::start_tls(&ca, dir.path(), "chat", "s3cret-pw").await);
    assert!(redis.url.starts_with("rediss://chat:s3cret-pw@"));
    let ca_file = dir.path().join("redis-ca.pem");
    let n1 = TestServer::start_on_redis(&redis, |c| c.redis_ca = Some(ca_file.clone())).await;
    let n2 = TestServer::start_on_redis(&redis, |c| c.redis_ca = Some(ca_file.clone())).await;

    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    n2.api().login(&alice.name, PASSWORD, None).await.unwrap();
    let room = alice
        .api
        .create_room("tls", Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.unwrap();
    let mut on_n2 = n2.ws(&bob).await;
    let sent = alice.api.say(room.id, "through rediss").await;
    let seen = on_n2.expect_events(1).await;
    assert_eq!(seen[0].seq, sent.seq);
    assert_eq!(message_of(&seen[0]).1, "through rediss");
    assert_eq!(n2.get("/readyz").await.status(), 200);
}

/// Wrong password, no CA, or plain `redis://` to the TLS port: the server does not start, and
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_failures_are_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("redis test CA");
    let redis = RedisServer::start_tls(&ca, dir.path(), "chat", "s3cret-pw").await;
    let ca_file = dir.path().join("redis-ca.pem");
    let start = |url: String, ca: Option<std::path::PathBuf>| async move {
        let mut config = test_config();
        config.redis_url = Some(url);
        config.redis_ca = ca;
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            chat_server::start(config),
        )
        .await
        .expect("start gives up within 20 s")
        .err()
        .map(|e| e.to_string())
    };
    // Each takes a few seconds of the client's connection retries: run them side by side.
    let (wrong_password, unknown_ca, plain) = tokio::join!(
        start(
            redis.url.replace("s3cret-pw", "guess"),
            Some(ca_file.clone())
        ),
        start(redis.url.clone(), None),
        start(redis.url.replace("rediss://", "redis://"), None),
    );
    let err = wrong_password.expect("wrong password refused");
    assert!(
        err.contains("cannot reach Redis") && err.to_lowercase().contains("pass"),
        "{err}"
    );
    let err = unknown_ca.expect("unknown CA refused");
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(plain.is_some(), "plain redis:// to a TLS port");
}
