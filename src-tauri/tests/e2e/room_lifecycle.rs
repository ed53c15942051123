//! A room's life in the window (issue 13): its notification level decides which messages make
//! a desktop notification; the owner renames a room and deletes it for everyone; a member
//! leaves a room. Each step is checked in the window and, where another member would notice,
//! against the server as bob sees it.

use super::*;

/// The notification level picked in the open room settings dialog (its radio's class).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Levels {
    checked: Option<String>,
    /// The name field can be edited (the dialog knows the reader owns the room).
    name_editable: bool,
}

const LEVELS_SCRIPT: &str = r#"
const checked = document.querySelector('.modal.room-settings .notify-levels input:checked');
const name = document.querySelector('.modal.room-settings #room-name');
return { checked: checked ? checked.className : null, name_editable: !!name && !name.disabled };
"#;

/// Opens the room settings dialog of the open room and waits for `level` to be the one picked.
async fn settings_showing(window: &Window, level: &str, what: &str) {
    window.click("#room-settings").await;
    window
        .wait_page(LEVELS_SCRIPT, what, UI_WAIT, |p: &Levels| {
            (p.checked.as_deref() == Some(level)).then_some(())
        })
        .await;
}

async fn close_dialog(window: &Window) {
    window.click(".modal button[aria-label='Close']").await;
    window
        .wait("the dialog closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
}

/// Picks `level` in the open room's settings; closed and opened again, the dialog shows what
/// the backend stored.
async fn set_level(window: &Window, level: &str) {
    settings_showing(window, "notify-all", "the room settings, level shown").await;
    window
        .click(&format!(
            ".modal.room-settings .notify-levels input.{level}"
        ))
        .await;
    window
        .wait_page(LEVELS_SCRIPT, "the level picked", UI_WAIT, |p: &Levels| {
            (p.checked.as_deref() == Some(level)).then_some(())
        })
        .await;
    close_dialog(window).await;
    settings_showing(window, level, "the level stored").await;
}

/// Opens the room named `name` from the room list.
async fn open_room(window: &Window, name: &str) {
    window.click_xpath(&room_item(name)).await;
    window
        .wait(&format!("{name} open"), UI_WAIT, |d| {
            (d.chat_title.as_deref() == Some(name)).then_some(())
        })
        .await;
}

/// Rooms as bob gets them from the server.
async fn bobs_rooms(bob: &Bob) -> Vec<Room> {
    rest(bob.api.my_rooms()).await
}

/// Bob sends `body` to `room` over REST, mentioning `mentions`.
async fn bob_writes(bob: &Bob, room: RoomId, id: &str, body: &str, mentions: &[UserId]) {
    bob.post(room, id.to_owned(), body.to_owned(), mentions.to_vec())
        .await;
}

/// The summaries and bodies of the notifications dunst showed, newest first (`dunstctl history`
/// after `close-all`).
fn shown_notifications() -> String {
    dunstctl(&["close-all"]);
    dunstctl(&["history"]).unwrap_or_default()
}

/// With `room` (alice's, bob a member) open, the notification daemon running and message text
/// hidden in notifications (as [`moderation_views`] leaves it): levels, rename, delete, leave.
/// Leaves `room` open with the level "all" and the message text shown in notifications.
pub(crate) async fn room_lifecycle(
    window: &Window,
    bob: &Bob,
    room: RoomId,
    room_name: &str,
    alice_id: UserId,
    tag: &str,
) {
    // a) "Mentions only": a plain message in the room does not notify, a mention does. The
    // text is shown again so the notification says which message it was.
    window.click("button[aria-label='Settings']").await;
    window
        .wait("the notification text switch, off", UI_WAIT, |d| {
            (d.notification_text == Some(false)).then_some(())
        })
        .await;
    window.click(".switch.notification-text").await;
    window
        .wait("the notification text switch, on", UI_WAIT, |d| {
            (d.notification_text == Some(true)).then_some(())
        })
        .await;
    close_dialog(window).await;
    set_level(window, "notify-mentions").await;
    window.shot("06c-notify-mentions-only").await;
    close_dialog(window).await;
    // Read from elsewhere: the DM with bob is open, so the room's messages would notify.
    open_room(window, &bob.username).await;
    shown_notifications();
    let plain = "Who has the map for Saturday?";
    let mention = format!("@alice_{tag} can you print the map?");
    bob_writes(bob, room, &format!("plain-{tag}"), plain, &[]).await;
    bob_writes(bob, room, &format!("mention-{tag}"), &mention, &[alice_id]).await;
    let deadline = Instant::now() + UI_WAIT;
    while dunstctl(&["count", "displayed"]).as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "no notification for the mention within {UI_WAIT:?} (displayed: {:?})",
            dunstctl(&["count", "displayed"])
        );
        tokio::time::sleep(POLL).await;
    }
    // Both arrived in this order on one socket: once the room's preview shows the mention, a
    // notification for the plain message would have been shown before it.
    window
        .wait("the mention as the room's preview", UI_WAIT, |d| {
            d.rooms
                .iter()
                .any(|r| r.name == room_name && r.preview.contains("can you print the map?"))
                .then_some(())
        })
        .await;
    let history = shown_notifications();
    assert!(
        history.contains("can you print the map?"),
        "the mention must notify: {history}"
    );
    assert!(
        !history.contains(plain),
        "with \"Mentions only\" a plain message must not notify: {history}"
    );
    open_room(window, room_name).await;
    settings_showing(window, "notify-mentions", "the room settings again").await;
    window
        .click(".modal.room-settings .notify-levels input.notify-all")
        .await;
    window
        .wait_page(
            LEVELS_SCRIPT,
            "the level back to all",
            UI_WAIT,
            |p: &Levels| (p.checked.as_deref() == Some("notify-all")).then_some(()),
        )
        .await;
    close_dialog(window).await;

    // b) The owner renames a room; bob, a member, gets the new name from the server.
    let scratch = format!("picnic-{tag}");
    window.click("button[aria-label='Create a room']").await;
    window
        .wait("the create-room dialog", UI_WAIT, |d| {
            (d.dialog.as_deref() == Some("Create a room")).then_some(())
        })
        .await;
    window.type_into(".modal input[type=text]", &scratch).await;
    window.click(".modal button[type=submit]").await;
    window
        .wait("the new room, open", UI_WAIT, |d| {
            (d.dialog.is_none() && d.chat_title.as_deref() == Some(scratch.as_str())).then_some(())
        })
        .await;
    let picnic = bob.find_public_room(&scratch).await;
    bob.join(picnic).await;
    let renamed = format!("picnic-sunday-{tag}");
    settings_showing(window, "notify-all", "the new room's settings").await;
    window
        .wait_page(LEVELS_SCRIPT, "the name editable", UI_WAIT, |p: &Levels| {
            p.name_editable.then_some(())
        })
        .await;
    // Erased and typed over key by key, as a user would (a WebDriver clear bypasses the
    // page's input events, and the form would keep the old name).
    let erase = Key::Backspace.to_string().repeat(scratch.chars().count());
    window
        .type_into("#room-name", &format!("{erase}{renamed}"))
        .await;
    window.click("#save-room").await;
    window
        .wait("the new name in the header and the list", UI_WAIT, |d| {
            (d.dialog.is_none()
                && d.chat_title.as_deref() == Some(renamed.as_str())
                && d.rooms.iter().any(|r| r.name == renamed)
                && !d.rooms.iter().any(|r| r.name == scratch))
            .then_some(())
        })
        .await;
    let seen = bobs_rooms(bob).await;
    assert_eq!(
        seen.iter()
            .find(|r| r.id == picnic)
            .map(|r| r.name.as_str()),
        Some(renamed.as_str()),
        "bob must get the new name from the server"
    );

    // c) ... and deletes it for everyone, after a confirmation.
    settings_showing(window, "notify-all", "the renamed room's settings").await;
    window.click("#delete-room").await;
    let warning = window
        .wait("the delete confirmation", UI_WAIT, |d| {
            d.alerts
                .iter()
                .find(|a| a.starts_with("Delete this room"))
                .cloned()
        })
        .await;
    assert!(warning.contains("cannot be undone"), "{warning}");
    window.shot("06d-delete-room-confirm").await;
    window.click("#confirm-delete-room").await;
    window
        .wait("the room gone from the list", UI_WAIT, |d| {
            (d.dialog.is_none() && !d.rooms.iter().any(|r| r.name == renamed)).then_some(())
        })
        .await;
    assert!(
        !bobs_rooms(bob).await.iter().any(|r| r.id == picnic),
        "the deleted room must be gone for bob too"
    );

    // d) A member leaves a room of bob's: it goes from her list, and from its member list.
    let porch_name = format!("porch-{tag}");
    let porch: Room = rest(bob.api.create_room(&porch_name, Visibility::Public)).await;
    rest(bob.api.invite(porch.id, alice_id)).await;
    window
        .wait("bob's room in alice's list", UI_WAIT, |d| {
            d.rooms.iter().any(|r| r.name == porch_name).then_some(())
        })
        .await;
    open_room(window, &porch_name).await;
    window.click("button[aria-label='Leave room']").await;
    window
        .wait("the leave confirmation", UI_WAIT, |d| {
            // The name is isolated for bidi (U+2068 … U+2069).
            let title = format!("Leave #\u{2068}{porch_name}\u{2069}?");
            (d.dialog.as_deref() == Some(title.as_str())).then_some(())
        })
        .await;
    window.shot("06e-leave-room").await;
    window.click(".modal .dialog-actions button.danger").await;
    window
        .wait("the room gone from her list", UI_WAIT, |d| {
            (d.dialog.is_none() && !d.rooms.iter().any(|r| r.name == porch_name)).then_some(())
        })
        .await;
    let members: Vec<Member> = rest(bob.api.members(porch.id)).await;
    assert!(
        !members.iter().any(|m| m.user.id == alice_id),
        "alice must be gone from the room's members: {members:?}"
    );

    open_room(window, room_name).await;
}
