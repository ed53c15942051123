//! End to end: the real app (UI embedded, `custom-protocol` build) in a real window,
//! driven over WebDriver (`tauri-driver` + `WebKitWebDriver`) like a user would, against a real
//! chat server and Redis, with a scripted second user ("bob") on the WebSocket.
//!
//! Ignored by default (it needs a window and the app built with the UI embedded). Run it with
//! `scripts/e2e.sh`, which builds the UI and the workspace with `chat-desktop/custom-protocol`,
//! copies the app aside and then runs
//! `CHAT_E2E_APP=$CARGO_TARGET_DIR/e2e-app/chat-desktop cargo test --workspace \
//!  --features chat-desktop/custom-protocol --test e2e -- --ignored --nocapture`.
//!
//! The test starts everything it needs and stops it when dropped: `redis-server` and the chat
//! server (in-process) on free loopback ports, `Xvfb` on a free display when `DISPLAY` is unset,
//! `tauri-driver` on free ports, and the app with a throwaway HOME / XDG dirs (so it starts at
//! the first-run screen). The app keeps its token in the Secret Service, so the test re-runs
//! itself inside `dbus-run-session` with a throwaway, unlocked gnome-keyring (its files in a
//! temp dir), never touching the user's own session or keyrings.
//!
//! The window checks (close to tray, second launch, start minimized, geometry after a restart,
//! unread count in the title) talk X11 to the display directly and assume no window manager, as
//! on the Xvfb the test starts itself; run it with `DISPLAY` unset (as `scripts/e2e.sh` in CI
//! does) rather than on a desktop session, where a window manager reparents the window.
//!
//! Screenshots of each main screen go to `$CHAT_E2E_SHOTS`, else `$CARGO_TARGET_DIR/e2e-shots`
//! (else `<target dir of this test binary>/e2e-shots`), with the app's log (`app.log`,
//! `RUST_LOG=chat_desktop=debug`) and tauri-driver's (`driver.log`).
//!
//! Environment: `CHAT_E2E_APP` (required: the app binary), `CHAT_E2E_SHOTS`,
//! `CHAT_E2E_TAURI_DRIVER` (default: `tauri-driver` on PATH, else
//! `${CHAT_TOOLS:-/var/cache/chat/tools}/bin/tauri-driver`).

mod common;

use common::{Redis, Server, TestCa, PASSWORD};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::{SinkExt, StreamExt};
use protocol::rest::{AuthResponse, HistoryPage, Member, Room, RoomKind};
use protocol::ws::Cursor;
use protocol::{ClientFrame, EventBody, RoomId, ServerFrame, UserId};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const APP_ENV: &str = "CHAT_E2E_APP";
/// Set on the re-run inside the private D-Bus session.
const INNER_ENV: &str = "CHAT_E2E_INNER";
/// The whole inner run, as a last resort against a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Starting the app through the driver (cold WebKit start on a loaded machine).
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// Anything the UI should show after a user action or a server event.
const UI_WAIT: Duration = Duration::from_secs(30);
/// The app reconnecting after the server comes back: its backoff doubles up to 30 s (+ jitter).
const RECONNECT_WAIT: Duration = Duration::from_secs(90);
/// Polling interval of the waits (not a settle delay: every wait checks a condition).
const POLL: Duration = Duration::from_millis(100);
/// The throwaway keyring's password (gnome-keyring creates no login keyring for an empty one).
const KEYRING_PASSWORD: &str = "e2e-keyring";

/// The app in a window, driven like a user would (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a window, WebDriver and a custom-protocol build of the app: run scripts/e2e.sh"]
async fn e2e() {
    let app = app_binary();
    if std::env::var_os(INNER_ENV).is_some() {
        tokio::time::timeout(RUN_TIMEOUT, scenario(&app))
            .await
            .unwrap_or_else(|_| panic!("the end-to-end scenario took longer than {RUN_TIMEOUT:?}"));
        return;
    }
    rerun_in_private_session();
}

/// The app binary from `CHAT_E2E_APP`, or a failure that says how to run the test.
fn app_binary() -> PathBuf {
    let how = "run the end-to-end test with scripts/e2e.sh (it builds the UI, then the workspace \
               with `--features chat-desktop/custom-protocol`, and sets CHAT_E2E_APP to a copy \
               of the app that build made)";
    let Some(path) = std::env::var_os(APP_ENV) else {
        panic!("{APP_ENV} is not set: {how}");
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{APP_ENV}={} is not a file: {how}",
        path.display()
    );
    std::fs::canonicalize(&path)
        .unwrap_or_else(|e| panic!("cannot resolve {APP_ENV}={}: {e}", path.display()))
}

fn on_path(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v \"$0\"", tool])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !found.is_empty()).then(|| PathBuf::from(found))
}

fn require(tool: &str, package: &str) {
    assert!(
        on_path(tool).is_some(),
        "the end-to-end test needs `{tool}` (Debian package {package}; scripts/setup.sh installs it)"
    );
}

fn tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("CHAT_E2E_TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    if let Some(path) = on_path("tauri-driver") {
        return path;
    }
    let tools = std::env::var("CHAT_TOOLS").unwrap_or_else(|_| "/var/cache/chat/tools".into());
    let path = Path::new(&tools).join("bin/tauri-driver");
    assert!(
        path.is_file(),
        "tauri-driver not found on PATH nor at {} (scripts/setup.sh installs it; or set \
         CHAT_E2E_TAURI_DRIVER)",
        path.display()
    );
    path
}

/// Re-runs this test inside `dbus-run-session` with a throwaway unlocked gnome-keyring.
fn rerun_in_private_session() {
    require("dbus-run-session", "dbus");
    require("gnome-keyring-daemon", "gnome-keyring");
    require("WebKitWebDriver", "webkit2gtk-driver");
    require("redis-server", "redis-server");
    if std::env::var_os("DISPLAY").is_none() {
        require("Xvfb", "xvfb");
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary path: {e}"));
    // The keyring files go to a temp dir, never to the user's real keyrings.
    let keyring = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let script = "printf %s \"$CHAT_E2E_KEYRING_PASSWORD\" \
                  | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                  && exec \"$0\" --exact e2e --ignored --nocapture";
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(exe)
        .env(INNER_ENV, "1")
        .env("CHAT_E2E_KEYRING_PASSWORD", KEYRING_PASSWORD)
        .env("XDG_DATA_HOME", keyring.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run dbus-run-session: {e}"));
    let deadline = std::time::Instant::now() + RUN_TIMEOUT + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the end-to-end test did not finish within {RUN_TIMEOUT:?}");
            }
            Err(e) => panic!("cannot wait for dbus-run-session: {e}"),
        }
    };
    assert!(
        status.success(),
        "the end-to-end test failed inside dbus-run-session ({status}); see its output above"
    );
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

async fn scenario(app: &Path) {
    let shots = Shots::new();
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    note(&format!(
        "redis at {}, chat server at {}",
        redis.url,
        server.url()
    ));
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let xvfb = match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() => {
            note(&format!("using DISPLAY={display}"));
            None
        }
        _ => Some(Xvfb::start().await),
    };
    let display = xvfb
        .as_ref()
        .map(|x| x.display.clone())
        .or_else(|| std::env::var("DISPLAY").ok())
        .unwrap_or_default();
    let driver = Driver::start(&display, home.path(), &shots.dir.join("driver.log")).await;
    let launcher = app_launcher(app, home.path(), &shots.dir.join("app.log"));
    let window = Window::open(&driver, &launcher, shots).await;

    let tag = short_tag();
    let alice = format!("alice_{tag}");
    let room_name = format!("weekend-plans-{tag}");
    let mut bob = Bob::register(&server, &format!("bob_{tag}")).await;

    // a) First run: server address, then a new account, then the (empty) main screen.
    window
        .wait("the first-run server screen", UI_WAIT, |d| {
            d.server_input.then_some(())
        })
        .await;
    // A server behind TLS with a certificate from a CA this computer does not know: the app
    // shows the certificate (fingerprint, subject, issuer) and asks; cancel and use the other.
    let private_ca = TestCa::new("Example Corp Internal CA");
    let tls = Server::start_tls(&redis, &private_ca).await;
    window.type_into("#server-url", &tls.url()).await;
    window.click("form button[type=submit]").await;
    let shown = window
        .wait("the untrusted-certificate prompt", UI_WAIT, |d| {
            d.cert_sha256.clone()
        })
        .await;
    assert_eq!(Some(shown), tls.cert_sha256.clone());
    window.shot("00-untrusted-certificate").await;
    window
        .click_xpath("//button[normalize-space()='Cancel']")
        .await;
    window
        .wait("the server screen again", UI_WAIT, |d| {
            d.server_input.then_some(())
        })
        .await;
    window.clear("#server-url").await;
    drop(tls);
    window.type_into("#server-url", &server.url()).await;
    window.shot("01-server-url").await;
    window.click("form button[type=submit]").await;
    // First run: nobody to welcome back; the card names the server.
    let host = server.addr.to_string();
    window
        .wait("the first-run login screen", UI_WAIT, |d| {
            (d.username_input && d.card_title.as_deref() == Some(&format!("Sign in to {host}")))
                .then_some(())
        })
        .await;
    window.shot("01b-sign-in").await;
    window
        .click_xpath("//button[@role='tab' and normalize-space()='Create account']")
        .await;
    window
        .wait("the register form", UI_WAIT, |d| {
            (d.card_title.as_deref() == Some("Create your account")).then_some(())
        })
        .await;
    window.type_into("#username", &alice).await;
    window.type_into("#password", PASSWORD).await;
    window.shot("02-register").await;
    window.click("form button[type=submit]").await;
    window
        .wait("the main screen, online, without rooms", UI_WAIT, |d| {
            (d.me.as_deref() == Some(alice.as_str())
                && d.status.as_deref() == Some("Online")
                && d.welcome.is_some()
                && d.rooms.is_empty()
                && d.no_rooms_hint)
                .then_some(())
        })
        .await;
    window.shot("03-main-empty").await;
    assert_token_in_keychain(&server.url(), &alice).await;

    // Account and security: alice is also signed in on her phone; the list shows both, this
    // device marked; she ends the phone's session; a wrong current password is refused.
    let phone = login_from(&server, &alice, "Phone (Android)").await;
    window.click("button[aria-label='Settings']").await;
    window.click("#open-account").await;
    window
        .wait("both sessions listed", UI_WAIT, |d| {
            (d.dialog.as_deref() == Some("Account and security")
                && d.sessions.len() == 2
                && d.sessions.iter().filter(|s| s.current).count() == 1)
                .then_some(())
        })
        .await;
    window.shot("03b-sessions").await;
    window
        .click(&format!(
            ".session-row[data-session='{phone}'] .end-session"
        ))
        .await;
    window
        .wait("only this device left", UI_WAIT, |d| {
            (d.sessions.len() == 1 && d.sessions[0].current).then_some(())
        })
        .await;
    window
        .type_into("#current-password", "not my password")
        .await;
    window
        .type_into("#new-password", "a brand new passphrase")
        .await;
    window
        .type_into("#confirm-password", "a brand new passphrase")
        .await;
    window.click(".password-form button[type=submit]").await;
    window
        .wait("the wrong-password error", UI_WAIT, |d| {
            (d.password_error.as_deref() == Some("Your current password is not right."))
                .then_some(())
        })
        .await;
    window.shot("03c-change-password").await;
    window.click(".modal button[aria-label='Close']").await;
    window
        .wait("the dialog closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;

    // b) A public room; bob joins it and talks; alice answers with Enter.
    window.click("button[aria-label='Create a room']").await;
    window
        .wait("the create-room dialog", UI_WAIT, |d| {
            (d.dialog.as_deref() == Some("Create a room")).then_some(())
        })
        .await;
    window
        .type_into(".modal input[type=text]", &room_name)
        .await;
    window.click(".modal button[type=submit]").await;
    window
        .wait("the new room, open", UI_WAIT, |d| {
            (d.dialog.is_none()
                && d.chat_title.as_deref() == Some(room_name.as_str())
                && d.composer)
                .then_some(())
        })
        .await;
    let room = bob.find_public_room(&room_name).await;
    bob.join(room).await;
    bob.connect(&server).await;
    window
        .wait("bob's join (2 members)", UI_WAIT, |d| {
            d.chat_subtitle
                .as_deref()
                .is_some_and(|s| s.contains("2 members"))
                .then_some(())
        })
        .await;
    let from_bob = "Hi Alice! Are we still on for the hike on Saturday?";
    bob.send(room, from_bob).await;
    let live = window
        .wait("bob's message, live", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == from_bob)
                .then_some((d.focused, d.new_divider))
        })
        .await;
    // Read as it arrived (the room open, the window focused): no "new" line above it.
    assert_eq!(
        live,
        (true, false),
        "(window focused, new-messages line) when bob's message arrived in the open room"
    );
    let from_alice = "Yes! Meet at the trailhead at 9.";
    window.type_into("#composer", from_alice).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, from_alice, UI_WAIT).await;
    window
        .wait("alice's message, sent", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == from_alice && m.seq.is_some() && !m.pending)
                .then_some(())
        })
        .await;
    window
        .wait("an empty composer after Enter", UI_WAIT, |d| {
            (d.composer_text.as_deref() == Some("")).then_some(())
        })
        .await;
    window.shot("04-room-chat").await;
    formatting_and_links(&window, &mut bob, room, &tag, home.path()).await;

    // c) Presence and typing: bob opens a DM with alice (online dot there), is listed online
    // in the members panel, and types in the room.
    let alice_id = bob.member_id(room, &alice).await;
    let dm = bob.open_dm(alice_id).await;
    window
        .wait("the DM with bob, with an online dot", UI_WAIT, |d| {
            d.rooms
                .iter()
                .any(|r| r.name == bob.username && r.online == Some(true))
                .then_some(())
        })
        .await;
    window.click("button[aria-label='Show members']").await;
    window
        .wait("bob online in the members panel", UI_WAIT, |d| {
            let bob_online = d
                .members
                .iter()
                .any(|m| m.name.starts_with(&bob.username) && m.online);
            // The own row: full name, "(you)" and the Owner badge all visible.
            let me_listed = d
                .members
                .iter()
                .any(|m| m.name == format!("{alice}(you)") && m.owner && !m.name_clipped);
            (bob_online && me_listed).then_some(())
        })
        .await;
    let typing = bob.keep_typing(room);
    let typing_text = format!("{} is typing…", bob.username);
    window
        .wait("bob's typing indicator", UI_WAIT, |d| {
            (d.typing.as_deref() == Some(typing_text.as_str())).then_some(())
        })
        .await;
    window.shot("05-typing-presence").await;
    drop(typing);

    // d) The server goes away (Redis stays): alice still reads, and what she sends waits.
    server.down().await;
    bob.wait_disconnected(UI_WAIT).await;
    window
        .wait("the connection banner", UI_WAIT, |d| {
            let banner = d.banner.as_deref().unwrap_or_default();
            (d.status.as_deref() != Some("Online")
                && (banner.contains("Connection lost")
                    || banner.contains("Reconnecting")
                    || banner.contains("offline")))
            .then_some(())
        })
        .await;
    let offline_text = "Sent while the server was down: I'll bring snacks.";
    window.type_into("#composer", offline_text).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window
        .wait("the message, pending", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == offline_text && m.pending && m.seq.is_none())
                .then_some(())
        })
        .await;
    // Reading still works offline: another conversation opens from the cache, and back.
    window
        .click(&format!(".room-item[aria-label='{}']", bob.username))
        .await;
    window
        .wait("the DM, opened while offline", UI_WAIT, |d| {
            (d.chat_title.as_deref() == Some(bob.username.as_str())).then_some(())
        })
        .await;
    window
        .click(&format!(".room-item[aria-label='{room_name}']"))
        .await;
    window
        .wait(
            "the room again, from the cache, still pending",
            UI_WAIT,
            |d| {
                let title = d.chat_title.as_deref() == Some(room_name.as_str());
                let read = d.messages.iter().any(|m| m.body == from_bob)
                    && d.messages.iter().any(|m| m.body == from_alice);
                let pending = d
                    .messages
                    .iter()
                    .any(|m| m.body == offline_text && m.pending);
                let banner = d.banner.is_some() && d.reconnect_button;
                // Offline, nobody's presence is known: no green dots.
                let dm_unknown = d
                    .rooms
                    .iter()
                    .any(|r| r.name == bob.username && r.presence == "unknown");
                let members_unknown =
                    !d.members.is_empty() && d.members.iter().all(|m| m.unknown && !m.online);
                (title && read && pending && banner && dm_unknown && members_unknown).then_some(())
            },
        )
        .await;
    window.shot("06-offline-pending").await;

    // The server comes back at the same address with the same Redis: the outbox delivers.
    // "Reconnect now" skips the rest of the wait (when the banner still offers it).
    server.up().await;
    bob.connect(&server).await;
    if window.dom().await.reconnect_button {
        window
            .try_click_xpath(
                "//div[contains(@class,'banner')]//button[normalize-space()='Reconnect now']",
            )
            .await;
    }
    let delivered = window
        .wait(
            "the message delivered (pending marker gone)",
            RECONNECT_WAIT,
            |d| {
                let copies: Vec<_> = d
                    .messages
                    .iter()
                    .filter(|m| m.body == offline_text)
                    .collect();
                match copies.as_slice() {
                    [m] if !m.pending && !m.failed && m.seq.is_some() => {
                        (d.status.as_deref() == Some("Online") && d.banner.is_none())
                            .then(|| m.seq.clone())
                    }
                    _ => None,
                }
            },
        )
        .await;
    bob.wait_message(room, offline_text, UI_WAIT).await;
    // Typing is never replayed: bob's indicator goes away by itself (ttl 6 s).
    window
        .wait("the typing indicator gone (expired)", UI_WAIT, |d| {
            d.typing.is_none().then_some(())
        })
        .await;
    window.shot("07-delivered").await;

    // Exactly once everywhere: bob's sockets (before and after the restart), the server's
    // history, and the app's list.
    assert_eq!(
        bob.received(room, from_alice),
        1,
        "bob must receive alice's live message exactly once"
    );
    assert_eq!(
        bob.received(room, offline_text),
        1,
        "bob must receive the message sent while the server was down exactly once"
    );
    let history = bob.bodies(room).await;
    for text in [from_bob, from_alice, offline_text] {
        assert_eq!(
            history.iter().filter(|b| *b == text).count(),
            1,
            "the room history must hold {text:?} exactly once; it has {history:?}"
        );
    }
    let seq = bob.seq_of(room, offline_text).await;
    assert_eq!(
        delivered.as_deref(),
        Some(seq.to_string().as_str()),
        "the app shows the delivered message with the server's seq"
    );
    let dom = window.dom().await;
    assert_eq!(
        dom.messages
            .iter()
            .filter(|m| m.body == offline_text)
            .count(),
        1,
        "the app shows the message once: {dom:#?}"
    );
    assert_eq!(bob.dm_count(dm), 0, "nobody wrote in the DM");

    // e) The window as a desktop app: unread count in the title, close to tray, one instance,
    // size and position kept across a restart.
    let x = X::connect(&display);
    let win = x.wait_app_window(true).await;
    assert_eq!(x.title(win), "Chat", "nothing unread: a plain title");
    bob.send(dm, "Are you there?").await;
    x.wait_title(win, "Chat (1)").await;
    // A size and place of the user's own (as a window manager would set them).
    let geometry = (40, 30, 900, 640);
    x.configure(win, geometry);
    window
        .wait("the page at the new window size", UI_WAIT, |d| {
            (d.inner == (900, 640)).then_some(())
        })
        .await;
    window.shot("08-unread-in-title").await;
    // Closing the window hides it to the tray; the app keeps running and receiving.
    x.close(win);
    x.wait_viewable(win, false).await;
    bob.send(dm, "Still there?").await;
    x.wait_title(win, "Chat (2)").await;
    window
        .wait("the hidden window's room list following", UI_WAIT, |d| {
            d.rooms
                .iter()
                .any(|r| r.name == bob.username && r.preview == "Still there?")
                .then_some(())
        })
        .await;
    // A second launch brings the first window back and exits.
    second_launch(app, &display, home.path()).await;
    x.wait_viewable(win, true).await;
    window.shot("09-shown-by-second-launch").await;
    // "Start minimized", then a restart (the session ends; the token stays in the keychain):
    // the app comes up in the tray, logged in; a launch shows it, as large and where it was.
    window.click("button[aria-label='Settings']").await;
    window
        .click_xpath(
            "//label[contains(@class,'switch-row')][.//strong[normalize-space()='Start minimized']]//input",
        )
        .await;
    window
        .wait("start minimized switched on", UI_WAIT, |d| {
            d.start_minimized.then_some(())
        })
        .await;
    window.click(".modal button[aria-label='Close']").await;
    // Opened again, the dialog shows what the backend stored (it keeps a setting in memory
    // only once it is written), so the restart below cannot outrun the write.
    window
        .wait("the settings dialog closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    window.click("button[aria-label='Settings']").await;
    window
        .wait("start minimized, stored", UI_WAIT, |d| {
            d.start_minimized.then_some(())
        })
        .await;
    window.click(".modal button[aria-label='Close']").await;
    window.close().await;
    wait_app_gone(app).await;
    let window = Window::open(&driver, &launcher, Shots::keep()).await;
    window
        .wait("the main screen after the restart", UI_WAIT, |d| {
            (d.me.as_deref() == Some(alice.as_str()) && d.status.as_deref() == Some("Online"))
                .then_some(())
        })
        .await;
    // The app shows its window (unless minimized) in its setup, before the page loads; the
    // page is up, so a window that is not shown now stays hidden.
    let shown: Vec<u32> = x
        .app_windows()
        .into_iter()
        .filter(|w| x.viewable(*w))
        .collect();
    assert!(
        shown.is_empty(),
        "started minimized, yet windows {shown:?} are shown"
    );
    note("started minimized: logged in, no window shown");
    second_launch(app, &display, home.path()).await;
    let win = x.wait_app_window(true).await;
    assert_eq!(
        x.geometry(win),
        geometry,
        "the window opens where and as large as it was left"
    );
    window.shot("10-restarted").await;

    // f) Logging out with an unsent message asks first; staying keeps it.
    server.down().await;
    window
        .wait("the connection banner again", UI_WAIT, |d| {
            (d.status.as_deref() != Some("Online")).then_some(())
        })
        .await;
    window
        .click(&format!(".room-item[aria-label='{room_name}']"))
        .await;
    let unsent_text = "Written offline, not sent before logout";
    window.type_into("#composer", unsent_text).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window
        .wait("the unsent message, pending", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == unsent_text && m.pending)
                .then_some(())
        })
        .await;
    window.click("button[aria-label='Settings']").await;
    window
        .click_xpath(
            "//div[contains(@class,'dialog-actions')]//button[normalize-space()='Log out']",
        )
        .await;
    window
        .wait("the unsent-messages warning", UI_WAIT, |d| {
            d.unsent_warning
                .as_deref()
                .is_some_and(|w| w.starts_with("1 message is not sent yet"))
                .then_some(())
        })
        .await;
    window.shot("11-logout-warning").await;
    window
        .click_xpath("//button[normalize-space()='Stay logged in']")
        .await;
    window
        .wait("still logged in, the message still pending", UI_WAIT, |d| {
            (d.unsent_warning.is_none()
                && d.me.as_deref() == Some(alice.as_str())
                && d.messages
                    .iter()
                    .any(|m| m.body == unsent_text && m.pending))
            .then_some(())
        })
        .await;

    window.close().await;
    drop(driver);
    drop(xvfb);
    note(&format!(
        "ok: screenshots in {}",
        window_shots_dir().display()
    ));
}

/// Logs `username` in from another device named `device`; returns that session's id.
async fn login_from(server: &Server, username: &str, device: &str) -> String {
    let http = server.client();
    let auth: serde_json::Value = http
        .post(format!("{}/api/v1/login", server.url()))
        .json(&serde_json::json!({"username": username, "password": PASSWORD, "device": device}))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("login from {device}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("login answer: {e}"));
    let token = auth["token"].as_str().unwrap_or_default().to_owned();
    let sessions: Vec<protocol::rest::SessionInfo> = http
        .get(format!("{}/api/v1/sessions", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("sessions: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("sessions answer: {e}"));
    sessions
        .into_iter()
        .find(|s| s.current)
        .map(|s| s.id)
        .unwrap_or_else(|| panic!("no current session"))
}

/// The app keeps the session token in the Secret Service (the throwaway keyring of this run),
/// under the server and username.
/// Markdown (issue 13): alice sends a message with a list, a code block, links and raw HTML;
/// the window shows them as such (raw HTML as text), bob receives the source text. A link whose
/// text is not its target asks first and shows the target; one whose text is its target opens
/// at once in the browser (the stand-in xdg-open records it); the capability refuses any other
/// scheme even when asked directly.
async fn formatting_and_links(
    window: &Window,
    bob: &mut Bob,
    room: RoomId,
    tag: &str,
    home: &Path,
) {
    let trail = format!("https://maps.example/trail-{tag}");
    let bare = format!("https://example.org/weather-{tag}");
    let formatted = format!(
        "Packing list for **Saturday**:\n- boots\n- water\n\n```\nmeet --at 09:00 <trailhead>\n```\n\
         Map: [the trail]({trail}) and {bare}\n<b>not bold</b>"
    );
    // Multi-line text goes in as one input event (Enter would send each line).
    window
        .client
        .execute(
            "const el = document.querySelector('#composer'); el.value = arguments[0]; \
             el.dispatchEvent(new InputEvent('input', {bubbles: true}));",
            vec![json!(formatted)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot fill the composer: {e}"));
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, &formatted, UI_WAIT).await;
    window
        .wait("the formatted message", UI_WAIT, |d| {
            d.messages
                .iter()
                .find(|m| m.body.starts_with("Packing list") && m.seq.is_some())
                .filter(|m| {
                    m.items == ["boots", "water"]
                        && m.code == ["meet --at 09:00 <trailhead>"]
                        && m.links
                            == [
                                ("the trail".to_string(), trail.clone()),
                                (bare.clone(), bare.clone()),
                            ]
                        && m.body.contains("<b>not bold</b>")
                        && m.tags.iter().any(|t| t == "strong")
                        && m.tags
                            .iter()
                            .all(|t| markup::ALLOWED_TAGS.contains(&t.as_str()))
                })
                .map(|_| ())
        })
        .await;
    // Hostile text from someone else stays text: no image, no script link.
    let hostile = "<img src=x onerror=alert(1)> [click](javascript:alert(1))";
    bob.send(room, hostile).await;
    window
        .wait("bob's hostile message, as text", UI_WAIT, |d| {
            d.messages
                .iter()
                .find(|m| m.body == hostile)
                .filter(|m| m.links.is_empty() && m.tags.iter().all(|t| t == "p"))
                .map(|_| ())
        })
        .await;
    window.shot("04b-formatting").await;

    // A link whose text is not its target: a confirmation showing the target; Cancel opens
    // nothing.
    window
        .click_xpath("//li[contains(@class,'message')]//a[normalize-space()='the trail']")
        .await;
    window
        .wait("the link confirmation", UI_WAIT, |d| {
            (d.dialog.as_deref() == Some("Open this link?")
                && d.dialog_text.as_deref().is_some_and(|t| t.contains(&trail)))
            .then_some(())
        })
        .await;
    window.shot("04c-link-confirm").await;
    window
        .click_xpath("//div[@class='modal-body']//button[.='Cancel']")
        .await;
    window
        .wait("the confirmation closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    // A link that is its own text opens at once, in the browser.
    window
        .click_xpath(&format!("//li[contains(@class,'message')]//a[.='{bare}']"))
        .await;
    let deadline = Instant::now() + UI_WAIT;
    while read_opened(home).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        read_opened(home),
        std::slice::from_ref(&bare),
        "what the browser was asked to open"
    );
    // The capability refuses other schemes, even asked directly from the page.
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.org/x",
    ] {
        let answer = window
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 window.__TAURI__.core.invoke('plugin:opener|open_url', {url: arguments[0]}) \
                   .then(() => done('opened'), e => done('refused: ' + e));",
                vec![json!(url)],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot call the opener: {e}"));
        let answer = answer.as_str().unwrap_or_default().to_string();
        assert!(answer.starts_with("refused"), "{url}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_opened(home), [bare], "nothing else was opened");

    // Emoji shortcodes: `:thu` lists matches, Enter takes the first; a typed closing colon
    // completes a known one at once.
    window.type_into("#composer", ":thu").await;
    window
        .wait("the emoji suggestions", UI_WAIT, |d| {
            (d.emoji_suggestions.first().map(String::as_str) == Some(":thumbsup:")).then_some(())
        })
        .await;
    window.shot("04d-emoji-suggestions").await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window.type_into("#composer", " see you :tada:").await;
    window
        .wait("the shortcodes replaced", UI_WAIT, |d| {
            (d.composer_text.as_deref() == Some("👍 see you 🎉") && d.emoji_suggestions.is_empty())
                .then_some(())
        })
        .await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, "👍 see you 🎉", UI_WAIT).await;
}

async fn assert_token_in_keychain(server_url: &str, username: &str) {
    use chat_desktop::credentials::{account_key, Keychain, TokenStore};
    let base = chat_desktop::api::parse_server_url(server_url)
        .unwrap_or_else(|e| panic!("bad server URL {server_url}: {e}"));
    let account = account_key(&chat_desktop::api::display_url(&base), username);
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let key = account.clone();
        let found = tokio::task::spawn_blocking(move || Keychain::default().load(&key))
            .await
            .unwrap_or_else(|e| panic!("keychain lookup panicked: {e}"));
        match found {
            Ok(Some(token)) if !token.is_empty() => {
                note("the token is in the keychain");
                return;
            }
            other if Instant::now() >= deadline => {
                panic!("no token for {account} in the Secret Service: {other:?}")
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// A wrapper that starts the app with its log (stdout, where `tracing` writes) in a file:
/// WebKitWebDriver discards the browser's output.
fn app_launcher(app: &Path, dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    // Links open through the opener plugin, which runs `xdg-open URL`: a stand-in on the PATH
    // writes the URL to `opened_urls(dir)` instead of starting a browser.
    let bin = dir.join("fake-bin");
    let opener = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >>{}\n",
        quote(&opened_urls(dir))
    );
    std::fs::create_dir_all(&bin)
        .and_then(|()| std::fs::write(bin.join("xdg-open"), opener))
        .and_then(|()| {
            std::fs::set_permissions(bin.join("xdg-open"), std::fs::Permissions::from_mode(0o755))
        })
        .unwrap_or_else(|e| panic!("cannot write the stand-in xdg-open: {e}"));
    let script = format!(
        "#!/bin/sh\nPATH={}:\"$PATH\" exec {} \"$@\" >>{} 2>&1\n",
        quote(&bin),
        quote(app),
        quote(log)
    );
    let path = dir.join("chat-desktop-e2e");
    std::fs::write(&path, script)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Where the stand-in `xdg-open` (see [`app_launcher`]) writes each URL it was asked to open.
fn opened_urls(dir: &Path) -> PathBuf {
    dir.join("opened-urls.txt")
}

fn read_opened(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(opened_urls(dir))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn note(msg: &str) {
    eprintln!("[e2e] {msg}");
}

/// A short tag that makes names unique across runs (the store is fresh anyway).
fn short_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:06x}", (nanos ^ std::process::id()) & 0xff_ffff)
}

// ---------------------------------------------------------------------------------------------
// Screenshots
// ---------------------------------------------------------------------------------------------

fn window_shots_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHAT_E2E_SHOTS") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("e2e-shots");
    }
    // <target>/debug/deps/e2e-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("e2e-shots")
}

struct Shots {
    dir: PathBuf,
}

impl Shots {
    /// The same folder, keeping what is there (a second window in the same run).
    fn keep() -> Shots {
        Shots {
            dir: window_shots_dir(),
        }
    }

    fn new() -> Shots {
        let dir = window_shots_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Old screenshots would pass for new ones.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "png" || e == "log") {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Shots { dir }
    }
}

// ---------------------------------------------------------------------------------------------
// Xvfb and tauri-driver
// ---------------------------------------------------------------------------------------------

/// A private X server on a display number it picks itself (`-displayfd`), killed on drop.
struct Xvfb {
    child: Child,
    display: String,
    _dir: tempfile::TempDir,
}

impl Xvfb {
    async fn start() -> Xvfb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let fd_file = dir.path().join("display");
        let child = Command::new("sh")
            .args([
                "-c",
                "exec Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>\"$0\"",
            ])
            .arg(&fd_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Xvfb: {e}"));
        let mut xvfb = Xvfb {
            child,
            display: String::new(),
            _dir: dir,
        };
        // Xvfb writes the display number once it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&fd_file).unwrap_or_default();
            if text.ends_with('\n') && !text.trim().is_empty() {
                xvfb.display = format!(":{}", text.trim());
                note(&format!("Xvfb on {}", xvfb.display));
                return xvfb;
            }
            if let Ok(Some(status)) = xvfb.child.try_wait() {
                panic!("Xvfb exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "Xvfb did not start within 20 s");
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its socket and lock file; SIGKILL if it does not stop.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tauri-driver` (and below it `WebKitWebDriver` and the app) in a process group of its own,
/// so dropping it ends all of them.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start(display: &str, home: &Path, log: &Path) -> Driver {
        let port = common::free_port();
        let mut native = common::free_port();
        while native == port {
            native = common::free_port();
        }
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the log file handle: {e}"));
        let dirs = ["data", "config", "cache"].map(|d| {
            let path = home.join(d);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            path
        });
        let mut command = Command::new(tauri_driver());
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native.to_string()])
            .args(["--native-host", "127.0.0.1"])
            .env("DISPLAY", display)
            .env("HOME", home)
            .env("XDG_DATA_HOME", &dirs[0])
            .env("XDG_CONFIG_HOME", &dirs[1])
            .env("XDG_CACHE_HOME", &dirs[2])
            .env("RUST_LOG", "chat_desktop=debug,info")
            .env("NO_COLOR", "1")
            .env_remove("CHAT_SERVER_URL")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        if let Some(native_driver) = on_path("WebKitWebDriver") {
            command.arg("--native-driver").arg(native_driver);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tauri-driver: {e}"));
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Both listening: tauri-driver, and the WebKitWebDriver it starts (it forwards the
        // first session request there; before that one listens, the request is refused).
        loop {
            let listening = |p: u16| async move {
                tokio::net::TcpStream::connect(("127.0.0.1", p))
                    .await
                    .is_ok()
            };
            if listening(port).await && listening(native).await {
                note(&format!(
                    "tauri-driver on 127.0.0.1:{port}, WebKitWebDriver on 127.0.0.1:{native}"
                ));
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "tauri-driver exited at start ({status}); see {}",
                    log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tauri-driver ({port}) and WebKitWebDriver ({native}) did not both listen within 20 s; \
                 see {}",
                log.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // tauri-driver stops WebKitWebDriver on SIGTERM; the group signal also reaches the app
        // and its web processes.
        self.signal_group("-TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The window, over WebDriver
// ---------------------------------------------------------------------------------------------

/// What the test reads from the page, in one round trip (see [`DOM_SCRIPT`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Dom {
    server_input: bool,
    username_input: bool,
    card_title: Option<String>,
    me: Option<String>,
    status: Option<String>,
    welcome: Option<String>,
    /// "You're not in any rooms yet."
    no_rooms_hint: bool,
    dialog: Option<String>,
    dialog_text: Option<String>,
    /// The composer's emoji shortcode suggestions, as shown (`:thumbsup:`).
    emoji_suggestions: Vec<String>,
    chat_title: Option<String>,
    chat_subtitle: Option<String>,
    composer: bool,
    composer_text: Option<String>,
    banner: Option<String>,
    /// The banner offers "Reconnect now".
    reconnect_button: bool,
    /// The "new messages" line is drawn.
    new_divider: bool,
    /// `document.hasFocus()`: the window is the one being read.
    focused: bool,
    /// The page's size (the window's inner size).
    inner: (u32, u32),
    /// The settings dialog's warning about unsent messages.
    unsent_warning: Option<String>,
    /// The settings dialog's "Start minimized" switch is on.
    start_minimized: bool,
    /// The untrusted-certificate prompt's fingerprint.
    cert_sha256: Option<String>,
    /// The account dialog's session list.
    sessions: Vec<DomSession>,
    /// The change-password form's error under the current password.
    password_error: Option<String>,
    typing: Option<String>,
    messages: Vec<DomMessage>,
    rooms: Vec<DomRoom>,
    members: Vec<DomMember>,
    alerts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DomSession {
    current: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DomMessage {
    body: String,
    /// The text of each code block (`<pre>`).
    code: Vec<String>,
    /// The text of each list item.
    items: Vec<String>,
    /// `(text, title)` of each link: the title is the full target.
    links: Vec<(String, String)>,
    /// Every element inside the message text.
    tags: Vec<String>,
    seq: Option<String>,
    pending: bool,
    failed: bool,
    status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DomRoom {
    name: String,
    active: bool,
    /// The presence dot of a direct room: `Some(online)`; none for group rooms.
    online: Option<bool>,
    /// The dot's state: "online", "offline" or "unknown" (we are offline); "" without a dot.
    presence: String,
    preview: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DomMember {
    name: String,
    online: bool,
    /// The presence dot says we cannot know (we are offline).
    unknown: bool,
    status: String,
    owner: bool,
    /// The name is cut off (ellipsis) in the panel.
    name_clipped: bool,
}

const DOM_SCRIPT: &str = r#"
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const text = (sel, root) => {
  const el = (root || document).querySelector(sel);
  return el ? el.textContent.trim() : null;
};
const composer = document.querySelector('#composer');
return {
  server_input: !!document.querySelector('#server-url'),
  cert_sha256: text('#cert-sha256'),
  sessions: all('.session-row').map(r => ({ current: r.classList.contains('current') })),
  password_error: text('#current-password-error') || null,
  username_input: !!document.querySelector('#username'),
  card_title: text('.auth-card h1'),
  me: text('.me-name'),
  status: text('.me-status'),
  welcome: text('.welcome h1'),
  no_rooms_hint: all('.room-list .empty-hint').some(e => e.textContent.includes('not in any rooms')),
  dialog: text('.modal #modal-title'),
  dialog_text: text('.modal .modal-body'),
  emoji_suggestions: all('.emoji-suggestion .shortcode').map(e => e.textContent),
  chat_title: text('.chat-title h1'),
  chat_subtitle: text('.chat-subtitle'),
  composer: !!composer,
  composer_text: composer ? composer.value : null,
  banner: text('.banner .banner-text'),
  reconnect_button: all('.banner button').some(b => b.textContent.trim() === 'Reconnect now'),
  new_divider: !!document.querySelector('.new-divider'),
  focused: document.hasFocus(),
  inner: [window.innerWidth, window.innerHeight],
  unsent_warning: text('.unsent-warning'),
  start_minimized: all('.switch-row').some(r => r.textContent.includes('Start minimized')
    && r.querySelector('input') && r.querySelector('input').checked),
  typing: text('.typing') || null,
  messages: all('.messages li.message').map(li => ({
    body: text('.body', li) || '',
    code: all('.body pre', li).map(e => e.textContent),
    items: all('.body li', li).map(e => e.textContent.trim()),
    links: all('.body a', li).map(a => [a.textContent, a.title]),
    tags: all('.body *', li).map(e => e.tagName.toLowerCase()),
    seq: li.getAttribute('data-seq'),
    pending: li.classList.contains('pending'),
    failed: li.classList.contains('failed'),
    status: text('.status', li) || '',
  })),
  rooms: all('.room-item').map(b => {
    const dot = b.querySelector('.presence-dot');
    return {
      name: text('.room-name', b) || '',
      active: b.classList.contains('active'),
      online: dot ? dot.classList.contains('online') : null,
      presence: dot ? (dot.classList.contains('online') ? 'online'
        : dot.classList.contains('unknown') ? 'unknown' : 'offline') : '',
      preview: text('.room-preview', b) || '',
    };
  }),
  members: all('.member-list .member').map(b => {
    const name = b.querySelector('.member-name-text');
    return {
      name: text('.member-name', b) || '',
      online: !!b.querySelector('.presence-dot.online'),
      unknown: !!b.querySelector('.presence-dot.unknown'),
      status: text('.member-presence', b) || '',
      owner: !!b.querySelector('.owner-badge'),
      name_clipped: name ? name.scrollWidth > name.clientWidth : false,
    };
  }),
  alerts: all('[role=alert], .toast').map(e => e.textContent.trim()).filter(t => t),
};
"#;

struct Window {
    client: Client,
    shots: Shots,
}

impl Window {
    /// Starts the app through the driver (a new WebDriver session launches it).
    async fn open(driver: &Driver, app: &Path, shots: Shots) -> Window {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert("tauri:options".into(), json!({ "application": app }));
        let url = format!("http://127.0.0.1:{}", driver.port);
        let connect = async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        };
        let client = tokio::time::timeout(SESSION_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| {
                panic!("the app did not start through tauri-driver within {SESSION_TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("cannot start a WebDriver session with the app: {e}"));
        note("app started");
        Window { client, shots }
    }

    async fn dom(&self) -> Dom {
        let value = self
            .client
            .execute(DOM_SCRIPT, vec![])
            .await
            .unwrap_or_else(|e| panic!("cannot read the page: {e}"));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("unexpected page summary: {e}"))
    }

    /// Polls the page until `pick` finds what it wants; on timeout, saves a screenshot and
    /// fails with what the page showed last.
    async fn wait<T>(&self, what: &str, timeout: Duration, pick: impl Fn(&Dom) -> Option<T>) -> T {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let dom = match self.client.execute(DOM_SCRIPT, vec![]).await {
                Ok(value) => serde_json::from_value::<Dom>(value).ok(),
                Err(_) => None,
            };
            if let Some(found) = dom.as_ref().and_then(&pick) {
                note(&format!(
                    "saw {what} ({} ms)",
                    started.elapsed().as_millis()
                ));
                return found;
            }
            if Instant::now() >= deadline {
                let shot = self.failure_shot(what).await;
                panic!(
                    "no {what} within {timeout:?} (screenshot: {shot}); the page showed: {dom:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn failure_shot(&self, what: &str) -> String {
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self.shots.dir.join(format!("failed-{name}.png"));
        match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&path, png) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("not saved: {e}"),
            },
            Err(e) => format!("not taken: {e}"),
        }
    }

    /// Waits for an element; the UI renders asynchronously.
    async fn find(&self, locator: Locator<'_>, what: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            match self.client.find(locator).await {
                Ok(element) => return element,
                Err(e) if Instant::now() >= deadline => {
                    let shot = self.failure_shot(what).await;
                    panic!("no element {what} within {UI_WAIT:?}: {e} (screenshot: {shot})");
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn click(&self, css: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    async fn click_xpath(&self, xpath: &str) {
        let element = self.find(Locator::XPath(xpath), xpath).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {xpath}: {e}"));
    }

    /// Clicks if the element is there and still clickable (it may go away by itself).
    async fn try_click_xpath(&self, xpath: &str) {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => match element.click().await {
                Ok(_) => note(&format!("clicked {xpath}")),
                Err(e) => note(&format!("{xpath} went away before the click: {e}")),
            },
            Err(_) => note(&format!("no {xpath} to click")),
        }
    }

    async fn clear(&self, css: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Waits until the current DOM has been painted: a WebDriver screenshot shows the last
    /// painted frame, which can lag behind the DOM the waits just checked.
    async fn painted(&self) {
        let script = "const done = arguments[arguments.length - 1]; \
                      requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
        match tokio::time::timeout(UI_WAIT, self.client.execute_async(script, vec![])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("cannot wait for a paint: {e}"),
            Err(_) => panic!("the window painted no frame within {UI_WAIT:?}"),
        }
    }

    async fn shot(&self, name: &str) {
        self.painted().await;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("cannot take screenshot {name}: {e}"));
        let path = self.shots.dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        note(&format!("screenshot {}", path.display()));
    }

    /// Ends the WebDriver session (the app quits).
    async fn close(self) {
        if let Err(e) = tokio::time::timeout(UI_WAIT, self.client.close()).await {
            note(&format!("closing the session timed out: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bob: REST and the WebSocket, with protocol types
// ---------------------------------------------------------------------------------------------

/// The other user: a REST client and one WebSocket at a time, with everything received kept.
struct Bob {
    http: reqwest::Client,
    base: String,
    token: String,
    username: String,
    socket: Option<Socket>,
    /// Every frame received on any of bob's sockets, in order.
    log: Vec<ServerFrame>,
    /// The last seq seen per room (the resume cursors).
    cursors: HashMap<RoomId, u64>,
}

/// One open socket: frames out through `out`, frames in through `frames`.
struct Socket {
    out: mpsc::UnboundedSender<ClientFrame>,
    frames: mpsc::UnboundedReceiver<ServerFrame>,
    task: JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `typing` every 2 s until dropped.
struct Typing(JoinHandle<()>);

impl Drop for Typing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bob {
    async fn register(server: &Server, username: &str) -> Bob {
        let http = reqwest::Client::new();
        let base = server.url();
        let auth: AuthResponse = rest(
            http.post(format!("{base}/api/v1/register"))
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
        Bob {
            http,
            base,
            token: auth.token,
            username: auth.user.username,
            socket: None,
            log: Vec::new(),
            cursors: HashMap::new(),
        }
    }

    async fn find_public_room(&self, name: &str) -> RoomId {
        let rooms: Vec<Room> = rest(
            self.http
                .get(format!("{}/api/v1/rooms/public", self.base))
                .bearer_auth(&self.token),
        )
        .await;
        rooms
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .unwrap_or_else(|| panic!("no public room {name:?} on the server: {rooms:?}"))
    }

    async fn join(&self, room: RoomId) {
        let _: Room = rest(
            self.http
                .post(format!("{}/api/v1/rooms/{room}/join", self.base))
                .bearer_auth(&self.token),
        )
        .await;
    }

    async fn member_id(&self, room: RoomId, username: &str) -> UserId {
        let members: Vec<Member> = rest(
            self.http
                .get(format!("{}/api/v1/rooms/{room}/members", self.base))
                .bearer_auth(&self.token),
        )
        .await;
        members
            .iter()
            .find(|m| m.user.username == username)
            .map(|m| m.user.id)
            .unwrap_or_else(|| panic!("{username} is not a member of room {room}: {members:?}"))
    }

    async fn open_dm(&self, user: UserId) -> RoomId {
        let room: Room = rest(
            self.http
                .post(format!("{}/api/v1/dms", self.base))
                .bearer_auth(&self.token)
                .json(&json!({ "user": user })),
        )
        .await;
        assert_eq!(room.kind, RoomKind::Direct);
        room.id
    }

    async fn history(&self, room: RoomId) -> HistoryPage {
        rest(
            self.http
                .get(format!(
                    "{}/api/v1/rooms/{room}/events?limit=100",
                    self.base
                ))
                .bearer_auth(&self.token),
        )
        .await
    }

    /// Message bodies of a room's history, in order.
    async fn bodies(&self, room: RoomId) -> Vec<String> {
        self.history(room)
            .await
            .events
            .into_iter()
            .filter_map(|e| match e.event {
                EventBody::Message { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    async fn seq_of(&self, room: RoomId, text: &str) -> u64 {
        self.history(room)
            .await
            .events
            .iter()
            .find(|e| matches!(&e.event, EventBody::Message { body, .. } if body == text))
            .map(|e| e.seq)
            .unwrap_or_else(|| panic!("{text:?} is not in the history of room {room}"))
    }

    /// Opens the socket, says hello with the cursors held, and waits for `ready`.
    async fn connect(&mut self, server: &Server) {
        self.socket = None;
        let url = format!("ws://{}/ws", server.addr);
        let (ws, _) = tokio::time::timeout(UI_WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("bob's socket did not open within {UI_WAIT:?}"))
            .unwrap_or_else(|e| panic!("bob cannot open {url}: {e}"));
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<ClientFrame>();
        let (frames_tx, frames) = mpsc::unbounded_channel::<ServerFrame>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = out_rx.recv() => {
                        let Some(frame) = frame else { break };
                        let text = serde_json::to_string(&frame).unwrap_or_default();
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<ServerFrame>(text.as_str()) {
                                Ok(frame) => {
                                    if frames_tx.send(frame).is_err() {
                                        break;
                                    }
                                }
                                Err(e) => eprintln!("[e2e] bob: unexpected frame ({e}): {text}"),
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
        self.socket = Some(Socket { out, frames, task });
        let resume = self
            .cursors
            .iter()
            .map(|(room, seq)| Cursor {
                room: *room,
                seq: *seq,
            })
            .collect();
        self.send_frame(ClientFrame::Hello {
            token: self.token.clone(),
            resume,
            epoch: None,
        });
        self.wait_frame("welcome", UI_WAIT, |f| {
            matches!(f, ServerFrame::Welcome { .. }).then_some(())
        })
        .await;
        self.wait_frame("ready", UI_WAIT, |f| {
            matches!(f, ServerFrame::Ready).then_some(())
        })
        .await;
        note(&format!("bob connected (resume {:?})", self.cursors));
    }

    fn send_frame(&self, frame: ClientFrame) {
        let socket = self
            .socket
            .as_ref()
            .unwrap_or_else(|| panic!("bob has no socket"));
        socket
            .out
            .send(frame)
            .unwrap_or_else(|_| panic!("bob's socket is closed"));
    }

    /// Receives frames (keeping all of them) until `pick` matches one.
    async fn wait_frame<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let socket = self
                .socket
                .as_mut()
                .unwrap_or_else(|| panic!("bob has no socket while waiting for {what}"));
            let frame = match tokio::time::timeout_at(deadline, socket.frames.recv()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!("bob's socket closed while waiting for {what}"),
                Err(_) => panic!(
                    "bob got no {what} within {timeout:?}; received so far: {:#?}",
                    self.log
                ),
            };
            if let ServerFrame::Event(event) = &frame {
                self.cursors.insert(event.room, event.seq);
            }
            self.log.push(frame);
            if let Some(found) = self.log.last().and_then(&mut pick) {
                return found;
            }
        }
    }

    /// Sends a message and waits for its ack.
    async fn send(&mut self, room: RoomId, body: &str) {
        let id = uuid::Uuid::new_v4().to_string();
        self.send_frame(ClientFrame::Send {
            room,
            id: id.clone(),
            body: body.to_owned(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        });
        self.wait_frame("the ack of bob's message", UI_WAIT, |f| match f {
            ServerFrame::Ack(ack) if ack.id == id => Some(()),
            ServerFrame::Error {
                id: Some(failed),
                code,
                message,
                ..
            } if *failed == id => panic!("bob's send failed: {code:?} {message}"),
            _ => None,
        })
        .await;
    }

    async fn wait_message(&mut self, room: RoomId, text: &str, timeout: Duration) {
        let what = format!("the message {text:?}");
        self.wait_frame(&what, timeout, |f| match f {
            ServerFrame::Event(e) if e.room == room => match &e.event {
                EventBody::Message { body, .. } if body == text => Some(()),
                _ => None,
            },
            _ => None,
        })
        .await;
        note(&format!("bob received {text:?}"));
    }

    /// Waits until the server closes bob's socket.
    async fn wait_disconnected(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        loop {
            match tokio::time::timeout_at(deadline, socket.frames.recv()).await {
                Ok(Some(frame)) => {
                    if let ServerFrame::Event(event) = &frame {
                        self.cursors.insert(event.room, event.seq);
                    }
                    self.log.push(frame);
                }
                Ok(None) => break,
                Err(_) => panic!("bob's socket stayed open {timeout:?} after the server stopped"),
            }
        }
        self.socket = None;
        note("bob disconnected");
    }

    fn keep_typing(&self, room: RoomId) -> Typing {
        let out = self
            .socket
            .as_ref()
            .map(|s| s.out.clone())
            .unwrap_or_else(|| panic!("bob has no socket"));
        Typing(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(2));
            loop {
                every.tick().await;
                if out.send(ClientFrame::Typing { room }).is_err() {
                    break;
                }
            }
        }))
    }

    /// How many times a message with this text reached bob, over all his sockets.
    fn received(&self, room: RoomId, text: &str) -> usize {
        self.log
            .iter()
            .filter(|f| match f {
                ServerFrame::Event(e) if e.room == room => {
                    matches!(&e.event, EventBody::Message { body, .. } if body == text)
                }
                _ => false,
            })
            .count()
    }

    /// Messages bob received in a room.
    fn dm_count(&self, room: RoomId) -> usize {
        self.log
            .iter()
            .filter(|f| {
                matches!(f, ServerFrame::Event(e)
                    if e.room == room && matches!(e.event, EventBody::Message { .. }))
            })
            .count()
    }
}

async fn rest<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    let response = tokio::time::timeout(UI_WAIT, request.send())
        .await
        .unwrap_or_else(|_| panic!("HTTP request took longer than {UI_WAIT:?}"))
        .unwrap_or_else(|e| panic!("HTTP request failed: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------------
// The app's X11 window, seen and handled like a window manager would
// ---------------------------------------------------------------------------------------------

/// A connection to the test's X display: finds the app's top-level window (title "Chat…"),
/// reads its title, visibility and geometry, moves/resizes it and asks it to close
/// (`WM_DELETE_WINDOW`, what a window manager sends when the user clicks ×).
struct X {
    conn: x11rb::rust_connection::RustConnection,
    root: u32,
    net_wm_name: u32,
    utf8: u32,
    wm_protocols: u32,
    wm_delete: u32,
}

impl X {
    fn connect(display: &str) -> X {
        use x11rb::connection::Connection;
        let (conn, screen) = x11rb::rust_connection::RustConnection::connect(Some(display))
            .unwrap_or_else(|e| panic!("cannot connect to the X display {display}: {e}"));
        let root = conn.setup().roots[screen].root;
        let atom = |name: &str| -> u32 {
            use x11rb::protocol::xproto::ConnectionExt;
            conn.intern_atom(false, name.as_bytes())
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| r.atom)
                .unwrap_or_else(|| panic!("cannot intern the X atom {name}"))
        };
        let (net_wm_name, utf8, wm_protocols, wm_delete) = (
            atom("_NET_WM_NAME"),
            atom("UTF8_STRING"),
            atom("WM_PROTOCOLS"),
            atom("WM_DELETE_WINDOW"),
        );
        X {
            conn,
            root,
            net_wm_name,
            utf8,
            wm_protocols,
            wm_delete,
        }
    }

    fn title(&self, window: u32) -> String {
        use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
        let read = |property: u32, kind: u32| {
            self.conn
                .get_property(false, window, property, kind, 0, 1024)
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                .unwrap_or_default()
        };
        let title = read(self.net_wm_name, self.utf8);
        if title.is_empty() {
            read(AtomEnum::WM_NAME.into(), AtomEnum::STRING.into())
        } else {
            title
        }
    }

    fn viewable(&self, window: u32) -> bool {
        use x11rb::protocol::xproto::{ConnectionExt, MapState};
        self.conn
            .get_window_attributes(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE)
    }

    /// (x, y, width, height) of a top-level window.
    fn geometry(&self, window: u32) -> (i32, i32, u32, u32) {
        use x11rb::protocol::xproto::ConnectionExt;
        let g = self
            .conn
            .get_geometry(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .unwrap_or_else(|| panic!("no geometry for window {window}"));
        (
            i32::from(g.x),
            i32::from(g.y),
            u32::from(g.width),
            u32::from(g.height),
        )
    }

    fn configure(&self, window: u32, (x, y, width, height): (i32, i32, u32, u32)) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt};
        let aux = ConfigureWindowAux::new()
            .x(x)
            .y(y)
            .width(width)
            .height(height);
        self.conn
            .configure_window(window, &aux)
            .map(|_| ())
            .and_then(|()| self.conn.flush())
            .unwrap_or_else(|e| panic!("cannot move/resize window {window}: {e}"));
    }

    /// The close button: `WM_PROTOCOLS` / `WM_DELETE_WINDOW`, as window managers send it.
    fn close(&self, window: u32) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
        let event = ClientMessageEvent::new(
            32,
            window,
            self.wm_protocols,
            [self.wm_delete, x11rb::CURRENT_TIME, 0, 0, 0],
        );
        self.conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .map(|_| ())
            .and_then(|()| self.conn.flush())
            .unwrap_or_else(|e| panic!("cannot send WM_DELETE_WINDOW: {e}"));
        note("sent WM_DELETE_WINDOW (the close button)");
    }

    /// The app's top-level windows: children of the root titled "Chat…" (no window manager
    /// runs, so they are not reparented).
    fn app_windows(&self) -> Vec<u32> {
        use x11rb::protocol::xproto::ConnectionExt;
        let children = self
            .conn
            .query_tree(self.root)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|t| t.children)
            .unwrap_or_default();
        children
            .into_iter()
            .filter(|w| self.title(*w).starts_with("Chat"))
            .collect()
    }

    /// Waits for the app's window in the given visibility.
    async fn wait_app_window(&self, viewable: bool) -> u32 {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            if let Some(w) = self
                .app_windows()
                .into_iter()
                .find(|w| self.viewable(*w) == viewable)
            {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "no app window (viewable: {viewable}) within {UI_WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_viewable(&self, window: u32, viewable: bool) {
        let deadline = Instant::now() + UI_WAIT;
        while self.viewable(window) != viewable {
            assert!(
                Instant::now() < deadline,
                "the window did not become {} within {UI_WAIT:?}",
                if viewable { "visible" } else { "hidden" }
            );
            tokio::time::sleep(POLL).await;
        }
        note(&format!(
            "the window is {}",
            if viewable { "shown" } else { "hidden" }
        ));
    }

    async fn wait_title(&self, window: u32, want: &str) {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let title = self.title(window);
            if title == want {
                note(&format!("window title {title:?}"));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the window title stayed {title:?}, not {want:?}, for {UI_WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Starts the app a second time, as a user would from the launcher (same user, same session):
/// it must hand over to the running one and exit by itself, successfully.
async fn second_launch(app: &Path, display: &str, home: &Path) {
    let log = window_shots_dir().join("second-launch.log");
    let out = std::fs::File::create(&log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
    let mut child = Command::new(app)
        .env("DISPLAY", display)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("RUST_LOG", "chat_desktop=debug,info")
        .env("NO_COLOR", "1")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start a second instance: {e}"));
    let deadline = Instant::now() + UI_WAIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the second instance kept running for {UI_WAIT:?} (see {})",
                    log.display()
                );
            }
            Err(e) => panic!("cannot wait for the second instance: {e}"),
        }
    };
    assert!(
        status.success(),
        "the second instance failed: {status} (see {})",
        log.display()
    );
    note("a second launch exited and handed over to the first");
}

/// Processes running the app binary.
fn app_pids(app: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            (exe == app).then_some(pid)
        })
        .collect()
}

/// Waits until the app has exited (after its WebDriver session ended).
async fn wait_app_gone(app: &Path) {
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let pids = app_pids(app);
        if pids.is_empty() {
            note("the app exited");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app (pids {pids:?}) still runs {UI_WAIT:?} after its session ended"
        );
        tokio::time::sleep(POLL).await;
    }
}
