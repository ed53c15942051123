//! Recovering an account: changing the password ends every other session (and its sockets, on
//! every node), "sign out everywhere" ends all of them, and a session has an absolute lifetime
//! that use does not extend.

mod common;

use common::*;
use protocol::rest::SessionInfo;
use protocol::{close, ErrorCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

common::backend_tests!(
    cluster;
    password_change_revokes_other_sessions_and_their_sockets,
    password_change_checks_the_current_password_and_the_rules,
    sign_out_everywhere_ends_every_session_and_socket,
    sessions_end_at_their_absolute_lifetime_even_while_used,
);

async fn change_password(api: &Api, current: &str, new: &str) -> ApiResult<()> {
    api.change_password(current, new).await
}

async fn logout_all(api: &Api) -> ApiResult<()> {
    api.logout_all().await
}

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn password_change_revokes_other_sessions_and_their_sockets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let laptop = server.user_on_device("alice", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;
    let tablet = server.login(&laptop, "Tablet").await;
    let mut ws_laptop = server.ws(&laptop).await;
    let mut ws_phone = server.ws(&phone).await;
    let mut ws_tablet = server.ws(&tablet).await;

    change_password(&laptop.api, PASSWORD, NEW_PASSWORD)
        .await
        .expect("change password");

    ws_phone.expect_close_code(close::UNAUTHORIZED).await;
    ws_tablet.expect_close_code(close::UNAUTHORIZED).await;
    phone.api.me().await.expect_code(ErrorCode::Unauthorized);
    tablet.api.me().await.expect_code(ErrorCode::Unauthorized);
    // The session that changed it keeps working, socket included.
    ws_laptop.sync().await;
    let sessions = laptop.api.sessions().await.expect("sessions");
    assert_eq!(
        sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![laptop.session_id.clone()]
    );
    // The old password is gone, the new one works.
    server
        .api()
        .login(&laptop.name, PASSWORD, None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);
    server
        .api()
        .login(&laptop.name, NEW_PASSWORD, Some("Phone"))
        .await
        .expect("login with the new password");
}

async fn password_change_checks_the_current_password_and_the_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let laptop = server.user_on_device("alice", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;
    let mut ws_phone = server.ws(&phone).await;

    change_password(&laptop.api, "not my password", NEW_PASSWORD)
        .await
        .expect_code(ErrorCode::WrongPassword);
    change_password(&laptop.api, PASSWORD, "short")
        .await
        .expect_code(ErrorCode::InvalidPassword);
    change_password(&server.api(), PASSWORD, NEW_PASSWORD)
        .await
        .expect_code(ErrorCode::Unauthorized);
    // Nothing changed: the other session and its socket live, the old password works.
    ws_phone.sync().await;
    phone.api.me().await.expect("phone still signed in");
    server
        .api()
        .login(&laptop.name, PASSWORD, None)
        .await
        .expect("old password still valid");
}

async fn sign_out_everywhere_ends_every_session_and_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let laptop = server.user_on_device("alice", "Laptop").await;
    let phone = server.login(&laptop, "Phone").await;
    let bob = server.user("bob").await;
    let mut ws_laptop = server.ws(&laptop).await;
    let mut ws_phone = server.ws(&phone).await;
    let mut ws_bob = server.ws(&bob).await;

    logout_all(&laptop.api).await.expect("sign out everywhere");

    ws_laptop.expect_close_code(close::UNAUTHORIZED).await;
    ws_phone.expect_close_code(close::UNAUTHORIZED).await;
    laptop.api.me().await.expect_code(ErrorCode::Unauthorized);
    phone.api.me().await.expect_code(ErrorCode::Unauthorized);
    // Someone else is not affected.
    ws_bob.sync().await;
    bob.api.me().await.expect("bob still signed in");
    // Signing in again works, with the same password.
    let again = server.login(&laptop, "Laptop").await;
    let sessions: Vec<SessionInfo> = again.api.sessions().await.expect("sessions");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

async fn sessions_end_at_their_absolute_lifetime_even_while_used(backend: Backend) {
    let max_age = Duration::from_secs(2);
    let server = TestServer::start_with(backend, |c| c.session_max_age_secs = 2).await;
    let alice = server.user("alice").await;
    let started = Instant::now();
    let mut ws = server.ws(&alice).await;
    alice.api.me().await.expect("a new session works");

    // Used all the time (every request slides the expiry), it is refused anyway once it is
    // older than the lifetime: first the socket is closed, then every request is refused.
    ws.expect_close_code(close::UNAUTHORIZED).await;
    assert!(
        started.elapsed() >= max_age - Duration::from_millis(500),
        "closed after {:?}, before the lifetime",
        started.elapsed()
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match alice.api.me().await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) => break,
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the session still works {:?} after it was created",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new login gets a new, working session.
    let again = server.login(&alice, "again").await;
    again.api.me().await.expect("fresh session");
    let mut ws = server.ws_raw().await;
    ws.send_frame(&protocol::ClientFrame::Hello {
        token: alice.token.clone(),
        resume: vec![],
        epoch: None,
    })
    .await;
    ws.expect_error_code(ErrorCode::Unauthorized).await;
    ws.expect_close_code(close::UNAUTHORIZED).await;
}

/// Two nodes on one Redis: the password is changed through one node; the sessions it revokes
/// lose their sockets on both nodes, and the session that changed it keeps its sockets on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_and_sign_out_everywhere_close_sockets_on_every_node() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let laptop = n1.user_on_device("alice", "Laptop").await;
    let phone = n2.login(&laptop, "Phone").await;
    let tablet = n1.login(&laptop, "Tablet").await;
    let mut laptop_1 = n1.ws(&laptop).await;
    let mut laptop_2 = n2.ws(&laptop).await;
    let mut phone_1 = n1.ws(&phone).await;
    let mut phone_2 = n2.ws(&phone).await;
    let mut tablet_2 = n2.ws(&tablet).await;

    change_password(&laptop.api_on(&n1), PASSWORD, NEW_PASSWORD)
        .await
        .expect("change password through node 1");

    phone_1.expect_close_code(close::UNAUTHORIZED).await;
    phone_2.expect_close_code(close::UNAUTHORIZED).await;
    tablet_2.expect_close_code(close::UNAUTHORIZED).await;
    for node in [&n1, &n2] {
        phone
            .api_on(node)
            .me()
            .await
            .expect_code(ErrorCode::Unauthorized);
        tablet
            .api_on(node)
            .me()
            .await
            .expect_code(ErrorCode::Unauthorized);
        laptop
            .api_on(node)
            .me()
            .await
            .expect("laptop keeps its session");
    }
    laptop_1.sync().await;
    laptop_2.sync().await;

    // Then sign out everywhere through node 2: the laptop's sockets on both nodes close.
    logout_all(&laptop.api_on(&n2))
        .await
        .expect("sign out everywhere through node 2");
    laptop_1.expect_close_code(close::UNAUTHORIZED).await;
    laptop_2.expect_close_code(close::UNAUTHORIZED).await;
    laptop
        .api_on(&n1)
        .me()
        .await
        .expect_code(ErrorCode::Unauthorized);
}
