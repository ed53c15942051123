//! The app as installed from its package (`scripts/desktop-package-check.sh` installs the
//! `.deb` and runs the `installed` test against `/usr/bin/chat-desktop`): it starts in a real
//! window, a new user signs up, creates a room and sends a message that the other user receives.

use super::*;

pub(crate) async fn installed_scenario(app: &Path) {
    // Beside the main scenario's screenshots (run right after it in CI): replace only ours.
    let shots = Shots::keep();
    std::fs::create_dir_all(&shots.dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", shots.dir.display()));
    for old in [
        "20-installed-deb.png",
        "installed-app.log",
        "installed-driver.log",
    ] {
        let _ = std::fs::remove_file(shots.dir.join(old));
    }
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
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
    let driver = Driver::start(
        &display,
        home.path(),
        &shots.dir.join("installed-driver.log"),
    )
    .await;
    let launcher = app_launcher(app, home.path(), &shots.dir.join("installed-app.log"));
    let window = Window::open(&driver, &launcher, shots).await;

    let tag = short_tag();
    let alice = format!("alice_{tag}");
    let room_name = format!("installed-{tag}");
    let mut bob = Bob::register(&server, &format!("bob_{tag}")).await;

    let room = first_run_room(&window, &server, &alice, &room_name, &mut bob).await;
    let text = "Sent from the installed package.";
    window.type_into("#composer", text).await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, text, UI_WAIT).await;
    window
        .wait("the message, sent", UI_WAIT, |d| {
            d.messages
                .iter()
                .any(|m| m.body == text && m.seq.is_some() && !m.pending)
                .then_some(())
        })
        .await;
    window.shot("20-installed-deb").await;
    window.close().await;
    wait_app_gone(app).await;
    drop(driver);
    drop(xvfb);
    note("ok: the installed app signed up and sent a message");
}

/// A first run in `window` against `server`: `alice` signs up, creates the public room
/// `room_name` and sees it open; `bob` joins it and connects. Returns the room.
pub(crate) async fn first_run_room(
    window: &Window,
    server: &Server,
    alice: &str,
    room_name: &str,
    bob: &mut Bob,
) -> RoomId {
    window
        .wait("the first-run server screen", UI_WAIT, |d| {
            d.server_input.then_some(())
        })
        .await;
    window.type_into("#server-url", &server.url()).await;
    window.click("form button[type=submit]").await;
    window
        .wait("the login screen", UI_WAIT, |d| {
            d.username_input.then_some(())
        })
        .await;
    window
        .click_xpath("//button[@role='tab' and normalize-space()='Create account']")
        .await;
    window.type_into("#username", alice).await;
    window.type_into("#password", PASSWORD).await;
    window.click("form button[type=submit]").await;
    window
        .wait("the main screen, online", UI_WAIT, |d| {
            (d.me.as_deref() == Some(alice) && d.status.as_deref() == Some("Online")).then_some(())
        })
        .await;
    window.click("button[aria-label='Create a room']").await;
    window.type_into(".modal input[type=text]", room_name).await;
    window.click(".modal button[type=submit]").await;
    window
        .wait("the new room, open", UI_WAIT, |d| {
            (d.chat_title.as_deref() == Some(room_name) && d.composer).then_some(())
        })
        .await;
    let room = bob.find_public_room(room_name).await;
    bob.join(room).await;
    bob.connect(server).await;
    room
}
