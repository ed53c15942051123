//! Privacy and moderation in the window (issue 11): a notification with the message text
//! hidden (a real notification daemon, `dunst`, on the test's display, and a screenshot of the
//! whole display), what a user sees when banned from the room they are reading, and the block
//! confirmation.

use super::*;

/// `dunst` on `display`, inside the test's D-Bus session (it owns
/// `org.freedesktop.Notifications` there), with notifications that stay until closed; stopped
/// on drop. Keep it until the app quits: with dunst installed, D-Bus would otherwise start one
/// for the app's next notification, without a display (it dies, and the app waits for it).
pub(crate) struct Dunst {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dunst {
    async fn start(display: &str) -> Dunst {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let conf = dir.path().join("dunstrc");
        std::fs::write(
            &conf,
            "[global]\n  font = DejaVu Sans 11\n  origin = top-right\n  offset = 16x16\n  \
             width = 360\n  frame_width = 2\n  frame_color = \"#5b6cff\"\n  padding = 12\n  \
             horizontal_padding = 12\n  format = \"<b>%s</b>\\n%b\"\n\
             [urgency_low]\n  timeout = 0\n[urgency_normal]\n  timeout = 0\n  \
             background = \"#ffffff\"\n  foreground = \"#1f2330\"\n[urgency_critical]\n  timeout = 0\n",
        )
        .unwrap_or_else(|e| panic!("cannot write dunstrc: {e}"));
        let child = Command::new("dunst")
            .arg("-conf")
            .arg(&conf)
            .env("DISPLAY", display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dunst (scripts/setup.sh installs it): {e}"));
        let dunst = Dunst { child, _dir: dir };
        // Ready once it owns the name (asked without activating: a `dunstctl` call now would
        // make D-Bus start another dunst, without a display).
        let deadline = Instant::now() + UI_WAIT;
        while !notifications_owned() {
            assert!(Instant::now() < deadline, "dunst did not come up on D-Bus");
            tokio::time::sleep(POLL).await;
        }
        dunst
    }
}

impl Drop for Dunst {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a process owns `org.freedesktop.Notifications` on the session bus.
fn notifications_owned() -> bool {
    Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply=literal",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.Notifications",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("true"))
}

/// `dunstctl <args>`'s output, or `None` when it fails (no daemon yet).
pub(crate) fn dunstctl(args: &[&str]) -> Option<String> {
    let out = Command::new("dunstctl")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A screenshot of the whole X display (the app's WebDriver shots show only the page).
fn display_shot(display: &str, name: &str) {
    let path = window_shots_dir().join(format!("{name}.png"));
    let status = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run import (imagemagick): {e}"));
    assert!(status.success(), "import -window root failed: {status}");
    note(&format!("screenshot {}", path.display()));
}

pub(crate) fn room_item(name: &str) -> String {
    format!(
        "//button[contains(@class,'room-item')][.//*[contains(@class,'room-name') and normalize-space()='{name}']]"
    )
}

/// With alice in `room` (hers) and the members panel open: bob invites her to a room of his
/// and writes there — with "show message text" off, the desktop notification names bob and
/// hides the text; then bob bans her while she reads his room; then she opens the block
/// confirmation for bob from the member list and cancels it. Ends with `room` open again and
/// returns the notification daemon, to be kept until the app quits.
pub(crate) async fn moderation_views(
    window: &Window,
    bob: &mut Bob,
    display: &str,
    alice_id: UserId,
    room_name: &str,
    tag: &str,
) -> Dunst {
    // Bob's room, with alice invited: it shows up in her list.
    let den_name = format!("bobs-den-{tag}");
    let den: Room = rest(bob.api.create_room(&den_name, Visibility::Public)).await;
    rest(bob.api.invite(den.id, alice_id)).await;
    window
        .wait("bob's room in alice's list", UI_WAIT, |d| {
            d.rooms.iter().any(|r| r.name == den_name).then_some(())
        })
        .await;

    // Notifications without the text.
    let dunst = Dunst::start(display).await;
    window.click("button[aria-label='Settings']").await;
    window
        .wait("the notification text switch, on", UI_WAIT, |d| {
            (d.notification_text == Some(true)).then_some(())
        })
        .await;
    window.click(".switch.notification-text").await;
    window.click(".modal button[aria-label='Close']").await;
    window
        .wait("the settings dialog closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    // Opened again, the dialog shows what the backend stored.
    window.click("button[aria-label='Settings']").await;
    window
        .wait("the notification text switch, stored off", UI_WAIT, |d| {
            (d.notification_text == Some(false)).then_some(())
        })
        .await;
    window.click(".modal button[aria-label='Close']").await;
    window
        .wait("the settings dialog closed again", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    let secret = "The surprise party is at Carol's, 7 pm. Don't tell Dave!";
    bob.send(den.id, secret).await;
    let deadline = Instant::now() + UI_WAIT;
    while dunstctl(&["count", "displayed"]).as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "no notification shown within {UI_WAIT:?} (dunstctl count displayed: {:?})",
            dunstctl(&["count", "displayed"])
        );
        tokio::time::sleep(POLL).await;
    }
    window.painted().await;
    display_shot(display, "12-notification-text-hidden");
    // What it said: closed notifications are in dunst's history.
    dunstctl(&["close-all"]);
    let history = dunstctl(&["history"]).unwrap_or_default();
    assert!(history.contains(&bob.username), "{history}");
    assert!(history.contains("New message"), "{history}");
    assert!(
        !history.contains("surprise party"),
        "the notification showed the text: {history}"
    );

    // Banned while reading bob's room: the room goes, a notice says why and by whom.
    window.click_xpath(&room_item(&den_name)).await;
    window
        .wait("bob's room open", UI_WAIT, |d| {
            (d.chat_title.as_deref() == Some(den_name.as_str())
                && d.messages.iter().any(|m| m.body == secret))
            .then_some(())
        })
        .await;
    rest(bob.api.set_ban(den.id, alice_id, true)).await;
    let notice = window
        .wait("the banned notice", UI_WAIT, |d| {
            d.welcome
                .as_deref()
                .filter(|t| t.starts_with("You were banned from"))
                .map(|t| (t.to_owned(), d.rooms.iter().any(|r| r.name == den_name)))
        })
        .await;
    assert!(notice.0.contains(&den_name), "{notice:?}");
    assert!(!notice.1, "the room is still listed: {notice:?}");
    let text = window
        .wait("who banned her, and what it means", UI_WAIT, |d| {
            d.removed_text.clone()
        })
        .await;
    assert!(
        text.contains(&bob.username) && text.contains("cannot join it again"),
        "{text}"
    );
    window.shot("12b-banned-from-room").await;

    // Block confirmation from the member list of her own room (cancelled).
    window.click_xpath(&room_item(room_name)).await;
    window
        .wait("her room open again, bob listed", UI_WAIT, |d| {
            (d.chat_title.as_deref() == Some(room_name)
                && d.members.iter().any(|m| m.name.starts_with(&bob.username)))
            .then_some(())
        })
        .await;
    // The row's actions show on hover or keyboard focus: focus bob's row, as Tab would.
    window
        .client
        .execute(
            "const row = Array.from(document.querySelectorAll('.member-row')).find(r => \
               r.querySelector('bdi') && r.querySelector('bdi').textContent === arguments[0]); \
             row.querySelector('button.member').focus();",
            vec![json!(bob.username)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot focus bob's row: {e}"));
    window
        .click_xpath(&format!(
            "//li[contains(@class,'member-row')][.//bdi[normalize-space()='{}']]//button[contains(@class,'member-block')]",
            bob.username
        ))
        .await;
    let explained = window
        .wait("the block confirmation", UI_WAIT, |d| {
            d.dialog
                .as_deref()
                .filter(|t| t.starts_with("Block"))
                .and(d.dialog_text.clone())
        })
        .await;
    assert!(
        explained.contains("can no longer send you direct messages")
            && explained.contains("is not told")
            && explained.contains("unblock them at any time in Settings"),
        "{explained}"
    );
    window.shot("12c-block-confirmation").await;
    window
        .click_xpath("//div[contains(@class,'dialog-actions')]//button[normalize-space()='Cancel']")
        .await;
    window
        .wait("the block dialog closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    dunst
}
