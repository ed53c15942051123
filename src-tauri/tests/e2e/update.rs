//! The update test (issue 16, item 4): the installed app (version N, from its `.deb`) updates
//! itself from the user's own chat server and restarts as N+1 with its cache, outbox and
//! keychain token intact. Run by `scripts/update-check.sh`, which builds N and N+1 (both
//! trusting a key made for the run), installs N's `.deb` and puts N+1's, signed, in the
//! directory named by `CHAT_E2E_UPDATES` (served as `updates_dir`); `CHAT_E2E_UPDATE_VERSION`
//! is N+1's version.
//!
//! The user signs up, sends a message (now in the cache), and sees "Restart to update" once
//! the app downloaded and verified N+1. The server goes away and the user writes a message
//! (pending in the outbox), then restarts to update. The package is installed (`dpkg -i`
//! through the plugin's `sudo` fallback: a stand-in that runs it, the test being root) and a
//! new process starts from the new program. When the server is back, that process sends the
//! pending message (bob receives it once): the outbox and the token survived. Then, with the
//! server away again, the app is opened anew: signed in, both messages shown from the cache,
//! Settings says N+1 (screenshot `31-updated.png`).

use super::*;

const UPDATES_ENV: &str = "CHAT_E2E_UPDATES";
const VERSION_ENV: &str = "CHAT_E2E_UPDATE_VERSION";
/// Downloading, verifying and installing a debug build's package (~40 MB) on a loaded machine.
const INSTALL_WAIT: Duration = Duration::from_secs(180);

/// Whether the page shows the update banner, and the app version in Settings.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdatePage {
    banner: Option<String>,
    version: Option<String>,
}

const UPDATE_PAGE: &str = "return {
    banner: document.querySelector('.update-banner .banner-text')?.textContent ?? null,
    version: document.querySelector('#app-version')?.textContent ?? null,
};";

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{name} is not set: run scripts/update-check.sh"))
}

/// The version of the installed package `chat`.
fn installed_version() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "chat"])
        .output()
        .unwrap_or_else(|e| panic!("dpkg-query: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until `before` all exited and one new process of `app` runs; returns its pid.
async fn wait_restarted(app: &Path, before: &[u32]) -> u32 {
    let deadline = Instant::now() + INSTALL_WAIT;
    loop {
        let now = app_pids(app);
        let fresh: Vec<u32> = now
            .iter()
            .copied()
            .filter(|p| !before.contains(p))
            .collect();
        if before.iter().all(|p| !now.contains(p)) && fresh.len() == 1 {
            return fresh[0];
        }
        assert!(
            Instant::now() < deadline,
            "the app did not restart within {INSTALL_WAIT:?} (before: {before:?}, now: {now:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

pub(crate) async fn update_scenario(app: &Path) {
    let updates = env_path(UPDATES_ENV);
    let new_version =
        std::env::var(VERSION_ENV).unwrap_or_else(|_| panic!("{VERSION_ENV} is not set"));
    let old_version = installed_version();
    assert_ne!(old_version, new_version, "version N is installed");
    let shots = Shots::keep();
    std::fs::create_dir_all(&shots.dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", shots.dir.display()));
    for old in [
        "30-update-ready.png",
        "31-updated.png",
        "update-app.log",
        "update-driver.log",
    ] {
        let _ = std::fs::remove_file(shots.dir.join(old));
    }
    let redis = Redis::start().await;
    let mut server = Server::start_with(&redis, |c| c.updates_dir = Some(updates)).await;
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let xvfb = match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() => None,
        _ => Some(Xvfb::start().await),
    };
    let display = xvfb
        .as_ref()
        .map(|x| x.display.clone())
        .or_else(|| std::env::var("DISPLAY").ok())
        .unwrap_or_default();
    let driver = Driver::start(&display, home.path(), &shots.dir.join("update-driver.log")).await;
    let launcher = app_launcher(app, home.path(), &shots.dir.join("update-app.log"));
    // The plugin installs a .deb with pkexec, else zenity/kdialog + sudo, else sudo. The test
    // runs as root without any of them: a `sudo` on the app's PATH that runs the command.
    let sudo = home.path().join("fake-bin/sudo");
    std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -S ] && shift\nexec \"$@\"\n")
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755))
        })
        .unwrap_or_else(|e| panic!("cannot write the sudo stand-in: {e}"));
    let window = Window::open(&driver, &launcher, shots).await;

    let tag = short_tag();
    let alice = format!("alice_{tag}");
    let room_name = format!("update-{tag}");
    let mut bob = Bob::register(&server, &format!("bob_{tag}")).await;
    let room = first_run_room(&window, &server, &alice, &room_name, &mut bob).await;
    let before = "Sent before the update.";
    window.type_into("#composer", before).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, before, UI_WAIT).await;

    // The app found N+1 on its server when it came online, downloaded and verified it.
    let banner = window
        .wait_page::<UpdatePage, _>(UPDATE_PAGE, "the update banner", INSTALL_WAIT, |p| {
            p.banner.clone()
        })
        .await;
    assert!(
        banner.contains(&new_version),
        "the banner names {new_version}: {banner:?}"
    );
    window.shot("30-update-ready").await;
    note(&format!("update offered: {banner}"));

    // Offline, a message waits in the outbox; then "Restart to update".
    server.down().await;
    bob.wait_disconnected(UI_WAIT).await;
    let pending = "Sent after the update.";
    window
        .wait("the app offline", RECONNECT_WAIT, |d| {
            (d.status.as_deref() != Some("Online")).then_some(())
        })
        .await;
    window.type_into("#composer", pending).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window
        .wait("the message, pending", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == pending && m.pending)
                .then_some(())
        })
        .await;
    let old_pids = app_pids(app);
    assert_eq!(old_pids.len(), 1, "one app process before the update");
    // What the restarted process inherits (it starts outside WebDriver, from this process).
    let environ = std::fs::read(format!("/proc/{}/environ", old_pids[0])).unwrap_or_default();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let name = kv.split('=').next()?.to_owned();
            (!name.is_empty()).then_some(name)
        })
        .collect();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", old_pids[0])).unwrap_or_default();
    note(&format!(
        "app before the update: args {:?}, environment {names:?}",
        String::from_utf8_lossy(&cmdline).replace('\0', " ")
    ));
    window.click("#restart-to-update").await;
    let new_pid = wait_restarted(app, &old_pids).await;
    assert_eq!(
        installed_version(),
        new_version,
        "the package of N+1 is installed"
    );
    note(&format!(
        "restarted as pid {new_pid} from {} {new_version}",
        app.display()
    ));
    // The WebDriver session belonged to the old process.
    drop(window);

    // The new process has the token and the outbox: the pending message goes out once.
    server.up().await;
    bob.connect(&server).await;
    bob.wait_message(room, pending, RECONNECT_WAIT).await;
    let bodies = bob.bodies(room).await;
    assert_eq!(
        bodies.iter().filter(|b| b.as_str() == pending).count(),
        1,
        "the pending message was stored once: {bodies:?}"
    );
    assert_token_in_keychain(&server.url(), &alice).await;

    // Open N+1 anew with the server away: signed in, the messages from the cache.
    let _ = Command::new("kill")
        .args(["-TERM", &new_pid.to_string()])
        .status();
    wait_app_gone(app).await;
    server.down().await;
    let window = Window::open(&driver, &launcher, Shots::keep()).await;
    window
        .wait("signed in, offline", UI_WAIT, |d| {
            (d.me.as_deref() == Some(alice.as_str()) && d.status.as_deref() != Some("Online"))
                .then_some(())
        })
        .await;
    window
        .click(&format!(".room-item[aria-label='{room_name}']"))
        .await;
    window
        .wait("the room from the cache, offline", UI_WAIT, |d| {
            let shown = |t: &str| d.messages.iter().any(|m| m.body == t && !m.pending);
            (d.me.as_deref() == Some(alice.as_str()) && shown(before) && shown(pending))
                .then_some(())
        })
        .await;
    server.up().await;
    window
        .wait("online again", RECONNECT_WAIT, |d| {
            (d.status.as_deref() == Some("Online")).then_some(())
        })
        .await;
    window.click("button[aria-label='Settings']").await;
    let version = window
        .wait_page::<UpdatePage, _>(UPDATE_PAGE, "the version in Settings", UI_WAIT, |p| {
            p.version.clone().filter(|v| v.trim() != "Chat")
        })
        .await;
    assert_eq!(version, format!("Chat {new_version}"));
    window.shot("31-updated").await;
    window.close().await;
    wait_app_gone(app).await;
    drop(driver);
    drop(xvfb);
    note(&format!(
        "ok: {old_version} updated itself to {new_version} and kept its cache, outbox and token"
    ));
}
