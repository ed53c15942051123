//! The account view's backend against a real server: the session list (device, last used,
//! this device), ending another device's session and this one's, changing the password (typed
//! errors; the other devices are signed out, this one stays), and signing out everywhere.

mod common;

use chat_desktop::Error;
use common::*;
use protocol::ipc::ConnectionState;
use protocol::ErrorCode;

const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn login_status(server: &Server, username: &str, password: &str) -> u16 {
    match within("login", server.api().login(username, password, None)).await {
        Ok(_) => 200,
        Err(e) => e.status().unwrap_or_else(|| panic!("login request: {e}")),
    }
}

/// The list shows both devices, this one marked; ending the other signs it out at once;
/// ending this one logs this device out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_can_be_ended() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, _ui, user) = signed_up(&home, &server, "ann").await;
    let phone = Peer::login(&server, &user.username).await;

    let sessions = within("sessions", backend.sessions())
        .await
        .unwrap_or_else(|e| panic!("sessions: {e}"));
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let this: Vec<_> = sessions.iter().filter(|s| s.current).collect();
    assert_eq!(this.len(), 1, "exactly one is this device: {sessions:?}");
    assert_eq!(
        this[0].device.as_deref(),
        Some(format!("Desktop ({})", std::env::consts::OS).as_str())
    );
    assert!(sessions.iter().all(|s| s.last_used_ts > 0));
    let other = sessions
        .iter()
        .find(|s| !s.current)
        .unwrap_or_else(|| panic!("the other device is listed"));

    within("end_session", backend.end_session(&other.id))
        .await
        .unwrap_or_else(|e| panic!("end_session: {e}"));
    assert_eq!(
        phone.me_status().await,
        401,
        "the other device is signed out"
    );
    let sessions = within("sessions", backend.sessions())
        .await
        .unwrap_or_else(|e| panic!("sessions: {e}"));
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    // Gone already: a typed error, nothing else ends.
    let again = within("end_session", backend.end_session(&other.id)).await;
    assert_eq!(
        again.err().and_then(|e| e.server_code()),
        Some(ErrorCode::SessionNotFound)
    );
    assert!(backend.snapshot().user.is_some());

    // Ending this device's own session logs out here.
    let own = sessions[0].id.clone();
    within("end own session", backend.end_session(&own))
        .await
        .unwrap_or_else(|e| panic!("end_session(own): {e}"));
    assert_eq!(backend.snapshot().user, None);
    assert_eq!(backend.snapshot().connection, ConnectionState::Offline);
    let after = within("sessions", backend.sessions()).await;
    assert!(matches!(after, Err(Error::NotLoggedIn(_))), "{after:?}");
    backend.shutdown().await;
    // Restarted, the app is still logged out (no token was kept).
    let (backend, _ui) = home.open().await;
    assert_eq!(backend.snapshot().user, None);
    backend.shutdown().await;
}

/// Wrong current password and a too short new one are refused with their codes (nothing
/// changes); the right one changes it: the other device is signed out, this one stays online
/// and keeps working, and only the new password logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_signs_out_the_other_devices() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, user) = signed_up(&home, &server, "ann").await;
    let phone = Peer::login(&server, &user.username).await;

    let wrong = within(
        "change_password",
        backend.change_password("not my password", NEW_PASSWORD),
    )
    .await;
    assert_eq!(
        wrong.err().and_then(|e| e.server_code()),
        Some(ErrorCode::WrongPassword)
    );
    let short = within(
        "change_password",
        backend.change_password(PASSWORD, "short"),
    )
    .await;
    assert_eq!(
        short.err().and_then(|e| e.server_code()),
        Some(ErrorCode::InvalidPassword)
    );
    assert_eq!(phone.me_status().await, 200, "nothing changed yet");

    within(
        "change_password",
        backend.change_password(PASSWORD, NEW_PASSWORD),
    )
    .await
    .unwrap_or_else(|e| panic!("change_password: {e}"));
    assert_eq!(
        phone.me_status().await,
        401,
        "the other device is signed out"
    );
    let sessions = within("sessions", backend.sessions())
        .await
        .unwrap_or_else(|e| panic!("this device still works: {e}"));
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    // The socket of this device stays up: a message goes out.
    let (bob, room) = in_peers_room(&backend, &server, "after").await;
    within("send", backend.send(room.id, "still here"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    ui.wait_message("sent", |m| m.body == "still here" && is_sent(m))
        .await;
    assert!(bob.bodies(room.id).await.contains(&"still here".to_owned()));
    assert_eq!(backend.snapshot().connection, ConnectionState::Online);

    assert_eq!(login_status(&server, &user.username, PASSWORD).await, 401);
    assert_eq!(
        login_status(&server, &user.username, NEW_PASSWORD).await,
        200
    );
    backend.shutdown().await;
}

/// Sign out everywhere: every device's session ends, this one's too (logged out here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, _ui, user) = signed_up(&home, &server, "ann").await;
    let phone = Peer::login(&server, &user.username).await;
    let laptop = Peer::login(&server, &user.username).await;

    within("logout_everywhere", backend.logout_everywhere())
        .await
        .unwrap_or_else(|e| panic!("logout_everywhere: {e}"));
    assert_eq!(phone.me_status().await, 401);
    assert_eq!(laptop.me_status().await, 401);
    assert_eq!(backend.snapshot().user, None);
    assert_eq!(backend.snapshot().connection, ConnectionState::Offline);
    // The account still logs in (only sessions ended).
    assert_eq!(login_status(&server, &user.username, PASSWORD).await, 200);
    backend.shutdown().await;
}
