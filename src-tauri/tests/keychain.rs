//! The token in the real OS keychain (Secret Service on Linux): it survives a restart of the
//! core, and logout removes it.
//!
//! Needs a Secret Service. Without a D-Bus session, the outer test re-runs the inner one inside
//! `dbus-run-session` with a throwaway gnome-keyring (packages `dbus`, `gnome-keyring`) whose
//! data lives in a temp dir; when those are missing it fails and says so. By hand:
//!
//! ```sh
//! dbus-run-session -- sh -c 'echo -n test | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
//!   cargo test -p chat-desktop --test keychain -- --include-ignored'
//! ```
//!
//! (gnome-keyring 42 creates the login keyring only for a non-empty password; with `echo -n ""`
//! there is no default collection and every write fails with "no result found".)

mod common;

use chat_desktop::credentials::{account_key, Keychain, TokenStore};
use common::*;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// A service name of its own, so tests never touch a real token of the app.
const TEST_SERVICE: &str = "org.selfchat.desktop.test";
const INNER: &str = "token_survives_restart_in_the_os_keychain";

/// Runs the real test, inside a private D-Bus session when there is none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keychain() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        inner().await;
        return;
    }
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "the keychain test needs a Secret Service: `{tool}` is missing \
             (apt-get install dbus gnome-keyring), or run it inside a session as described \
             in src-tauri/tests/keychain.rs"
        );
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary path: {e}"));
    // The keyring files go to a temp dir, never to the user's real keyrings.
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let script = "echo -n test | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                  && exec \"$0\" --exact \"$1\" --include-ignored --nocapture";
    let child = tokio::process::Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(exe)
        .arg(INNER)
        .env("XDG_DATA_HOME", data.path())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .unwrap_or_else(|_| panic!("the keychain test did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("cannot run dbus-run-session: {e}"));
    assert!(
        status.success(),
        "the keychain test failed inside dbus-run-session: {status}"
    );
}

/// The body of the test; needs a Secret Service (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `keychain` inside a D-Bus session"]
async fn token_survives_restart_in_the_os_keychain() {
    inner().await;
}

async fn inner() {
    let keychain = Keychain::new(TEST_SERVICE);
    let probe = unique_name("probe");
    // The daemon may still be creating its login keyring: poll. On a loaded machine that took
    // longer than 5 s (CI, two cores shared with builds); the whole test has 120 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match keychain
            .save(&probe, "x")
            .and_then(|()| keychain.delete(&probe))
        {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!(
                "no usable Secret Service in this session ({e}); start one: \
                 dbus-run-session -- sh -c 'echo -n test | gnome-keyring-daemon --unlock \
                 --components=secrets >/dev/null; cargo test -p chat-desktop --test keychain -- \
                 --include-ignored'"
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::with_tokens(Arc::new(Keychain::new(TEST_SERVICE)));
    let (backend, _ui, me) = signed_up(&home, &server, "kim").await;
    let account = account_key(&server.url(), &me.username);
    // The token is in the keychain, under the server and username.
    let stored = keychain.load(&account).ok().flatten();
    assert!(stored.is_some_and(|t| !t.is_empty()));
    backend.shutdown().await;

    // A new core with a fresh keychain handle: logged in from the keychain alone.
    let home2 = Home {
        dir: home.dir,
        tokens: Arc::new(Keychain::new(TEST_SERVICE)),
        keep_per_room: home.keep_per_room,
        timing: home.timing,
    };
    let (backend, mut ui) = home2.open().await;
    assert_eq!(backend.snapshot().user.map(|u| u.id), Some(me.id));
    ui.wait_online().await;

    within("logout", backend.logout())
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    assert_eq!(keychain.load(&account).ok().flatten(), None);
    backend.shutdown().await;

    // And the next start is logged out.
    let (backend, _ui) = home2.open().await;
    assert_eq!(backend.snapshot().user, None);
    backend.shutdown().await;
}
