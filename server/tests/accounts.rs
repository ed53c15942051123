//! Accounts and sessions: register, login, logout, validation, tokens, devices.

mod common;

use common::*;
use protocol::ErrorCode;

common::backend_tests!(
    cluster;
    register_login_and_me,
    usernames_are_unique_case_insensitively,
    invalid_usernames_and_passwords,
    wrong_password_and_unknown_user,
    bad_or_missing_token,
    sessions_two_devices_and_revoke,
    logout_revokes_token_and_closes_socket,
    user_lookup,
);

async fn register_login_and_me(backend: Backend) {
    let server = TestServer::start(backend).await;
    let api = server.api();
    let name = unique_name("alice");

    let reg = api
        .register(&name, PASSWORD, Some("Laptop"))
        .await
        .expect("register");
    assert_eq!(reg.user.username, name);
    assert!(!reg.token.is_empty());
    assert!(!reg.session_id.is_empty());

    let me = api
        .with_token(&reg.token)
        .me()
        .await
        .expect("me with registration token");
    assert_eq!(me, reg.user);

    let login = api
        .login(&name, PASSWORD, Some("Phone"))
        .await
        .expect("login");
    assert_eq!(login.user, reg.user);
    assert_ne!(
        login.token, reg.token,
        "each login is a new session with its own token"
    );
    assert_ne!(login.session_id, reg.session_id);

    // Both sessions work.
    assert_eq!(
        api.with_token(&login.token)
            .me()
            .await
            .expect("me with login token"),
        reg.user
    );
    assert_eq!(
        api.with_token(&reg.token)
            .me()
            .await
            .expect("first token still valid"),
        reg.user
    );

    // The socket accepts the token too and reports the same user and session.
    let user = TestUser {
        id: reg.user.id,
        name: name.clone(),
        password: PASSWORD.into(),
        token: login.token.clone(),
        session_id: login.session_id.clone(),
        api: api.with_token(&login.token),
    };
    let ws = server.ws(&user).await;
    assert_eq!(ws.welcome().user, reg.user);
    assert_eq!(ws.welcome().session_id, login.session_id);
    assert!(ws.welcome().rooms.is_empty());
    assert_eq!(ws.welcome().limits, server.limits);
}

async fn usernames_are_unique_case_insensitively(backend: Backend) {
    let server = TestServer::start(backend).await;
    let api = server.api();
    let lower = unique_name("alice");
    let upper = lower.to_ascii_uppercase();

    let first = api
        .register(&upper, PASSWORD, None)
        .await
        .expect("register upper-case name");
    assert_eq!(first.user.username, upper, "the name is kept as registered");

    api.register(&lower, PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
    api.register(&upper, "another password", None)
        .await
        .expect_code(ErrorCode::UsernameTaken);

    // The original account is untouched.
    let login = api
        .login(&upper, PASSWORD, None)
        .await
        .expect("login original account");
    assert_eq!(login.user.id, first.user.id);
}

async fn invalid_usernames_and_passwords(backend: Backend) {
    let server = TestServer::start(backend).await;
    let api = server.api();

    // Register and login share a per-IP rate limit (burst 10 by default): keep this short.
    let too_long = "x".repeat(33);
    for bad in ["ab", "_bob", "bob smith", "bób", too_long.as_str()] {
        let err = api
            .register(bad, PASSWORD, None)
            .await
            .expect_code(ErrorCode::InvalidUsername);
        assert!(err.body().is_some_and(|b| !b.message.is_empty()), "{err}");
    }

    let name = unique_name("pw");
    let too_long_pw = "p".repeat(257);
    for bad in ["1234567", too_long_pw.as_str()] {
        api.register(&name, bad, None)
            .await
            .expect_code(ErrorCode::InvalidPassword);
    }

    // None of these created the account: the name is still free.
    let ok = api
        .register(&name, "12345678", None)
        .await
        .expect("8-character password is fine");
    assert_eq!(ok.user.username, name);
}

async fn wrong_password_and_unknown_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let api = server.api();

    api.login(&alice.name, "not the password", None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);
    // Unknown users get the same answer (no account probing).
    api.login(&unique_name("nobody"), PASSWORD, None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);

    // The right password still works afterwards.
    api.login(&alice.name, PASSWORD, None)
        .await
        .expect("login with the right password");
}

async fn bad_or_missing_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let anon = server.api();

    anon.me().await.expect_code(ErrorCode::Unauthorized);
    anon.my_rooms().await.expect_code(ErrorCode::Unauthorized);
    anon.with_token("garbage")
        .me()
        .await
        .expect_code(ErrorCode::Unauthorized);
    anon.with_token("")
        .me()
        .await
        .expect_code(ErrorCode::Unauthorized);
    // A real token with one character changed.
    let mut tampered = alice.token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    anon.with_token(&tampered)
        .me()
        .await
        .expect_code(ErrorCode::Unauthorized);

    // A wrong scheme is not accepted either.
    let resp = server
        .http()
        .get(format!("{}/api/v1/me", server.base))
        .header("authorization", format!("Basic {}", alice.token))
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .expect("GET /me");
    let status = resp.status().as_u16();
    assert_eq!(status, 401);

    alice.api.me().await.expect("the real token works");
}

async fn sessions_two_devices_and_revoke(backend: Backend) {
    let server = TestServer::start(backend).await;
    let laptop = server.user_on_device("alice", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;
    let bob = server.user("bob").await;

    let sessions = laptop.api.sessions().await.expect("sessions");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let s_laptop = sessions
        .iter()
        .find(|s| s.id == laptop.session_id)
        .expect("laptop session listed");
    let s_phone = sessions
        .iter()
        .find(|s| s.id == phone.session_id)
        .expect("phone session listed");
    assert_eq!(s_laptop.device.as_deref(), Some("Laptop"));
    assert_eq!(s_phone.device.as_deref(), Some("Phone"));
    assert!(s_laptop.current, "the calling session is marked current");
    assert!(!s_phone.current);
    assert!(s_laptop.created_ts > 0 && s_laptop.last_used_ts >= s_laptop.created_ts);

    // From the phone, the phone is current.
    let from_phone = phone.api.sessions().await.expect("sessions from phone");
    assert_eq!(
        from_phone
            .iter()
            .filter(|s| s.current)
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        vec![phone.session_id.clone()]
    );

    // Another user's session or an unknown id cannot be revoked.
    laptop
        .api
        .delete_session(&bob.session_id)
        .await
        .expect_code(ErrorCode::SessionNotFound);
    laptop
        .api
        .delete_session("no-such-session")
        .await
        .expect_code(ErrorCode::SessionNotFound);
    bob.api.me().await.expect("bob unaffected");

    // Revoke the phone from the laptop.
    laptop
        .api
        .delete_session(&phone.session_id)
        .await
        .expect("revoke phone");
    phone.api.me().await.expect_code(ErrorCode::Unauthorized);
    let sessions = laptop.api.sessions().await.expect("sessions after revoke");
    assert_eq!(
        sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![laptop.session_id.clone()]
    );
    laptop.api.me().await.expect("laptop still signed in");

    // The revoked token cannot open a socket either.
    let mut ws = server.ws_raw().await;
    ws.send_frame(&protocol::ClientFrame::Hello {
        token: phone.token.clone(),
        resume: vec![],
        epoch: None,
    })
    .await;
    ws.expect_error_code(ErrorCode::Unauthorized).await;
    ws.expect_close_code(protocol::close::UNAUTHORIZED).await;
}

async fn logout_revokes_token_and_closes_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let laptop = server.user_on_device("alice", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;

    let mut ws_laptop = server.ws(&laptop).await;
    let mut ws_phone = server.ws(&phone).await;

    laptop.api.logout().await.expect("logout");

    ws_laptop
        .expect_close_code(protocol::close::UNAUTHORIZED)
        .await;
    laptop.api.me().await.expect_code(ErrorCode::Unauthorized);
    laptop
        .api
        .logout()
        .await
        .expect_code(ErrorCode::Unauthorized);

    // The other device keeps working, socket included.
    ws_phone.sync().await;
    phone.api.me().await.expect("phone still signed in");
    let sessions = phone.api.sessions().await.expect("sessions");
    assert_eq!(
        sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![phone.session_id.clone()]
    );

    // Logging in again works.
    server
        .login(&laptop, "Laptop")
        .await
        .api
        .me()
        .await
        .expect("new session");
}

async fn user_lookup(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("lookup").await;
    let bob = server.user("lookup").await;

    let by_id = alice.api.get_user(bob.id).await.expect("get user");
    assert_eq!(by_id.id, bob.id);
    assert_eq!(by_id.username, bob.name);

    // Prefix search (case-insensitive) finds both; exact name finds bob.
    let prefix = &bob.name[..bob.name.find('_').unwrap() + 1];
    let found = alice
        .api
        .search_users(&prefix.to_ascii_uppercase())
        .await
        .expect("search by prefix");
    let ids: Vec<_> = found.iter().map(|u| u.id).collect();
    assert!(
        ids.contains(&alice.id) && ids.contains(&bob.id),
        "{found:?}"
    );
    let exact = alice
        .api
        .search_users(&bob.name)
        .await
        .expect("search exact");
    assert!(exact.iter().any(|u| u.id == bob.id), "{exact:?}");
    assert!(!exact.iter().any(|u| u.id == alice.id), "{exact:?}");

    alice
        .api
        .get_user(protocol::UserId(9_999_999))
        .await
        .expect_code(ErrorCode::UserNotFound);
    server
        .api()
        .get_user(bob.id)
        .await
        .expect_code(ErrorCode::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi() {
    for backend in [Backend::Memory, Backend::Redis] {
        let server = TestServer::start(backend).await;
        for path in ["/healthz", "/readyz"] {
            let resp = server.get(path).await;
            assert_eq!(resp.status().as_u16(), 200, "[{backend}] {path}");
        }
        let resp = server.get("/openapi.json").await;
        assert_eq!(resp.status().as_u16(), 200);
        let doc: serde_json::Value = resp.json().await.expect("openapi.json is JSON");
        assert!(
            doc.get("openapi")
                .and_then(|v| v.as_str())
                .is_some_and(|v| v.starts_with('3')),
            "{doc}"
        );
        let paths = doc.get("paths").and_then(|p| p.as_object()).expect("paths");
        for p in ["/api/v1/register", "/api/v1/login", "/api/v1/rooms"] {
            assert!(
                paths.contains_key(p),
                "[{backend}] {p} missing from openapi paths: {:?}",
                paths.keys().collect::<Vec<_>>()
            );
        }
    }
}

/// Password guessing is slowed down: after a burst of attempts from one address the server
/// answers 429 rate_limited with a retry hint, before checking the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_rate_limited() {
    let server = TestServer::start(Backend::Memory).await;
    let alice = server.user("alice").await;
    let api = server.api();
    let mut limited = None;
    for _ in 0..30 {
        match api.login(&alice.name, "wrong password", None).await {
            Ok(auth) => panic!("wrong password accepted: {auth:?}"),
            Err(e) if e.code() == Some(ErrorCode::InvalidCredentials) => continue,
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let err = limited.expect("30 quick wrong logins are never rate limited");
    assert_eq!(
        (err.status(), err.code()),
        (Some(429), Some(ErrorCode::RateLimited)),
        "{err}"
    );
    let body = err.body().expect("an error body");
    assert!(body.retry_after_ms.is_some_and(|ms| ms > 0), "{body:?}");
    // Existing sessions are unaffected.
    alice.api.me().await.expect("signed-in user unaffected");
}
