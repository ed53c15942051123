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
//!
//! Layout: this file holds the scenario; each feature area's steps live in their own module
//! (`formatting.rs`, `replies.rs`, `moderation.rs`, …), called from [`scenario`]; the harness is `display.rs` (Xvfb,
//! tauri-driver), `window.rs` (the page over WebDriver), `x11.rs` (the window as a window
//! manager sees it), `bob.rs` (the scripted second user) and `shots.rs`.

mod attachments;
mod bob;
#[path = "../common/mod.rs"]
mod common;
mod display;
mod formatting;
mod installed;
mod long_history;
mod moderation;
mod replies;
mod room_lifecycle;
mod room_settings;
mod shots;
mod support;
mod update;
mod window;
mod x11;

use attachments::*;
use bob::*;
use display::*;
use formatting::*;
use installed::*;
use long_history::*;
use moderation::*;
use replies::*;
use room_lifecycle::*;
use room_settings::*;
use shots::*;
use support::*;
use update::*;
use window::*;
use x11::*;

use common::{Redis, Server, TestCa, PASSWORD};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::{SinkExt, StreamExt};
use protocol::rest::{AuthResponse, HistoryPage, Member, Room, RoomKind, SendMessage, Visibility};
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
    rerun_in_private_session("e2e");
}

/// The app installed from its `.deb` (CHAT_E2E_APP=/usr/bin/chat-desktop): signs up and sends
/// a message. Run by scripts/desktop-package-check.sh after `apt-get install`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the installed package and a window: run scripts/desktop-package-check.sh"]
async fn installed() {
    let app = app_binary();
    if std::env::var_os(INNER_ENV).is_some() {
        tokio::time::timeout(RUN_TIMEOUT, installed_scenario(&app))
            .await
            .unwrap_or_else(|_| {
                panic!("the installed-app scenario took longer than {RUN_TIMEOUT:?}")
            });
        return;
    }
    rerun_in_private_session("installed");
}

/// The installed app (CHAT_E2E_APP=/usr/bin/chat-desktop, version N) updates itself from its
/// server to N+1 and restarts with its cache, outbox and token. Run by scripts/update-check.sh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs version N installed and N+1 signed in CHAT_E2E_UPDATES: run scripts/update-check.sh"]
async fn update() {
    let app = app_binary();
    if std::env::var_os(INNER_ENV).is_some() {
        tokio::time::timeout(RUN_TIMEOUT, update_scenario(&app))
            .await
            .unwrap_or_else(|_| panic!("the update scenario took longer than {RUN_TIMEOUT:?}"));
        return;
    }
    rerun_in_private_session("update");
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

/// Re-runs the test `name` inside `dbus-run-session` with a throwaway unlocked gnome-keyring.
fn rerun_in_private_session(name: &str) {
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
                  && exec \"$0\" --exact \"$1\" --ignored --nocapture";
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(exe)
        .arg(name)
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
    // Attachments (issue 14) are stored in a folder of this run.
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let files_dir = files.path().to_owned();
    let mut server = Server::start_with(&redis, |c| c.attachments.dir = Some(files_dir)).await;
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
    replies_reactions_mentions(&window, &mut bob, room, &alice, &tag).await;
    attachments(&window, &bob, room, home.path()).await;

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
    room_settings_and_profiles(&window, &bob, room).await;
    let notifications =
        moderation_views(&window, &mut bob, &display, alice_id, &room_name, &tag).await;
    room_lifecycle(&window, &bob, room, &room_name, alice_id, &tag).await;

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
    long_history(&window, &bob, alice_id, &tag).await;

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
    drop(notifications);
    drop(driver);
    drop(xvfb);
    note(&format!(
        "ok: screenshots in {}",
        window_shots_dir().display()
    ));
}
