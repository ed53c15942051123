//! Room settings and profiles in the window (issue 13): the owner sets the room's topic in
//! the settings dialog (the header shows it, and so does the server to another member); a
//! display name set elsewhere shows next to the username on messages; clicking a sender opens
//! their card.

use super::*;

/// What these steps read from the page, in one round trip.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Page {
    /// The open dialog's title, if any.
    dialog: Option<String>,
    /// The topic field of the room settings dialog.
    topic_field: Option<String>,
    /// The notification level picked in the dialog (its radio's class).
    notify_checked: Option<String>,
    /// The topic in the chat header.
    header_topic: Option<String>,
    /// `(shown name, "@username" or null)` of each message header.
    senders: Vec<(String, Option<String>)>,
    /// The user card: `(display name, "@username", presence, has a Message button)`.
    card: Option<(String, String, String, bool)>,
}

const PAGE_SCRIPT: &str = r#"
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const text = (sel, root) => {
  const el = (root || document).querySelector(sel);
  return el ? el.textContent.trim() : null;
};
const field = document.querySelector('#room-topic');
const checked = document.querySelector('.notify-levels input:checked');
const card = document.querySelector('.modal.user-card');
return {
  dialog: text('#modal-title'),
  topic_field: field ? field.value : null,
  notify_checked: checked ? checked.className : null,
  header_topic: text('.chat-topic'),
  senders: all('.messages li.message .message-meta').map(m =>
    [text('.sender', m) || '', text('.sender-username', m)]),
  card: card && card.querySelector('.user-card-display')
    ? [text('.user-card-display', card), text('.user-card-username', card),
       text('.user-card-presence', card), !!card.querySelector('#user-card-message')]
    : null,
};
"#;

async fn wait_for<T>(window: &Window, what: &str, pick: impl FnMut(&Page) -> Option<T>) -> T {
    window.wait_page(PAGE_SCRIPT, what, UI_WAIT, pick).await
}

/// The room's topic as another member (bob) gets it from the server.
async fn topic_seen_by(bob: &Bob, room: RoomId) -> String {
    let rooms: Vec<protocol::rest::Room> = rest(bob.api.my_rooms()).await;
    rooms
        .into_iter()
        .find(|r| r.id == room)
        .map(|r| r.topic)
        .unwrap_or_else(|| panic!("bob is not in room {room}"))
}

/// Bob's display name, set (or removed with `""`) the way his own client would.
async fn set_display_name(bob: &Bob, name: &str) {
    let profile = protocol::rest::UpdateProfile {
        display_name: Some(name.to_owned()),
    };
    rest(bob.api.update_profile(&profile)).await;
}

/// The room is open in the window, alice owns it and bob (online) has written in it. Leaves
/// it as it found it: no dialog open, bob without a display name (later steps find him by
/// username), the notification level "all".
pub(crate) async fn room_settings_and_profiles(window: &Window, bob: &Bob, room: RoomId) {
    // a) The owner sets a topic in the settings dialog.
    window.click("#room-settings").await;
    wait_for(window, "the room settings dialog", |p| {
        (p.dialog.as_deref().is_some_and(|t| t.ends_with("settings"))
            && p.topic_field.is_some()
            && p.notify_checked.as_deref() == Some("notify-all"))
        .then_some(())
    })
    .await;
    let topic = "Saturday hike: trailhead at 9, bring water";
    window.type_into("#room-topic", topic).await;
    wait_for(window, "the typed topic", |p| {
        (p.topic_field.as_deref() == Some(topic)).then_some(())
    })
    .await;
    window.shot("06a-room-settings").await;
    window.click("#save-room").await;
    wait_for(window, "the topic in the header, dialog closed", |p| {
        (p.dialog.is_none() && p.header_topic.as_deref() == Some(&format!("· {topic}")[..]))
            .then_some(())
    })
    .await;
    assert_eq!(
        topic_seen_by(bob, room).await,
        topic,
        "another member must get the topic from the server"
    );

    // b) Bob names himself; his messages show the name, then his username.
    let shown = "Bob Builder";
    set_display_name(bob, shown).await;
    let at_name = format!("@{}", bob.username);
    wait_for(window, "bob's display name on his messages", |p| {
        p.senders
            .iter()
            .any(|(name, user)| name == shown && user.as_deref() == Some(at_name.as_str()))
            .then_some(())
    })
    .await;

    // c) Clicking his name opens his card: display name, username, online, "Message".
    // His newest message's name: in view, low on the list. (The first one may sit at the top
    // edge, where the hover bar of the message above can take the click.)
    let xpath = format!(
        "(//li[contains(@class,'message')]//button[contains(@class,'sender-button')][normalize-space()='{shown}'])[last()]"
    );
    window.click_xpath(&xpath).await;
    let card = wait_for(window, "bob's user card", |p| p.card.clone()).await;
    assert_eq!(
        card,
        (shown.to_owned(), at_name.clone(), "Online".to_owned(), true),
        "(display name, username, presence, Message button) on bob's card"
    );
    window.shot("06b-user-card").await;
    window
        .click(".modal.user-card button[aria-label='Close']")
        .await;
    wait_for(window, "the card closed", |p| {
        p.card.is_none().then_some(())
    })
    .await;

    // Back to what the rest of the scenario expects.
    set_display_name(bob, "").await;
    wait_for(window, "bob's messages under his username again", |p| {
        p.senders
            .iter()
            .any(|(name, user)| *name == bob.username && user.is_none())
            .then_some(())
    })
    .await;
}
