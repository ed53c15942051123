//! Replies, reactions and mentions in the window (issue 13).

use super::*;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};

/// What these steps read from the page, in one round trip.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Everyday {
    /// "Replying to …" above the composer.
    replying: Option<String>,
    /// `@name` suggestions shown under the composer.
    people: Vec<String>,
    /// Those of them marked "not in this room".
    people_outside: Vec<String>,
    messages: Vec<EverydayMessage>,
    /// The emoji picker is open, with these emoji shown.
    picker: Option<Vec<String>>,
    /// `(room name, mention badge, unread badge)` of each room in the list.
    badges: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EverydayMessage {
    seq: Option<String>,
    body: String,
    /// `(author, text)` of the reply's quote.
    quote: Option<(String, String)>,
    /// `(emoji, count, mine, tooltip)`.
    reactions: Vec<(String, String, bool, String)>,
    /// `(text, mine)` of each highlighted mention.
    mentions: Vec<(String, bool)>,
    /// The whole message stands out: it mentions the reader.
    mentions_me: bool,
    highlight: bool,
}

const EVERYDAY_SCRIPT: &str = r#"
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const text = (sel, root) => {
  const el = (root || document).querySelector(sel);
  return el ? el.textContent.trim() : null;
};
const picker = document.querySelector('.emoji-picker');
return {
  replying: text('.replying'),
  people: all('.mention-suggestion .mention-name').map(e => e.textContent.trim()),
  people_outside: all('.mention-suggestion').filter(e => e.querySelector('.shortcode'))
    .map(e => text('.mention-name', e)),
  picker: picker ? all('.picker-emoji', picker).map(e => e.textContent.trim()) : null,
  badges: all('.room-item').map(b => [text('.room-name', b) || '', text('.mention-badge', b),
    text('.badge:not(.mention-badge)', b)]),
  messages: all('.messages li.message').map(li => {
    const q = li.querySelector('.reply-quote');
    return {
      seq: li.getAttribute('data-seq'),
      body: text('.body', li) || '',
      quote: q ? [text('.quote-author', q) || '', text('.quote-text', q) || ''] : null,
      reactions: all('.reaction:not(.add-reaction)', li).map(r => [text('.reaction-emoji', r),
        text('.reaction-count', r), r.classList.contains('mine'), r.title]),
      mentions: all('.body .mention', li).map(m => [m.textContent, m.classList.contains('mine')]),
      mentions_me: li.classList.contains('mentions-me'),
      highlight: li.classList.contains('highlight'),
    };
  }),
};
"#;

async fn read(window: &Window) -> Everyday {
    window.read_page(EVERYDAY_SCRIPT).await
}

/// Waits until `pick` finds what it wants in the page (see `Window::wait_page`).
async fn wait_for<T>(window: &Window, what: &str, pick: impl FnMut(&Everyday) -> Option<T>) -> T {
    window.wait_page(EVERYDAY_SCRIPT, what, UI_WAIT, pick).await
}

/// Moves the mouse over a message (its hover bar appears), as a user does before clicking it.
async fn hover(window: &Window, seq: u64) {
    let li = window
        .client
        .find(Locator::Css(&format!("li.message[data-seq='{seq}']")))
        .await
        .unwrap_or_else(|e| panic!("no message {seq}: {e}"));
    let actions = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: li,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    window
        .client
        .perform_actions(actions)
        .await
        .unwrap_or_else(|e| panic!("cannot move the mouse over message {seq}: {e}"));
}

/// Replies, reactions and mentions (issue 13): alice answers bob's question from its hover bar
/// (the composer says what she answers), mentions him with `@` autocomplete; the reply shows
/// its quote and the mention, and bob receives `reply_to` and his id in `mentions`. Reactions:
/// a quick reaction, bob's live, one from the picker (searched), one toggled off; bob sees each
/// once. Bob deletes the original: the quote says "deleted message", live; clicking it goes to
/// the original. Bob mentions alice in another room: a mention badge apart from unread, then
/// the highlighted message.
pub(crate) async fn replies_reactions_mentions(
    window: &Window,
    bob: &mut Bob,
    room: RoomId,
    alice: &str,
    tag: &str,
) {
    let question = "Who brings the snacks?";
    bob.send(room, question).await;
    let asked = bob.seq_of(room, question).await;
    let bob_id = bob.member_id(room, &bob.username.clone()).await;
    let alice_id = bob.member_id(room, alice).await;
    wait_for(window, "bob's question", |p| {
        p.messages
            .iter()
            .any(|m| m.seq.as_deref() == Some(&asked.to_string()))
            .then_some(())
    })
    .await;

    // Reply from the hover bar; `@bo` suggests bob (a member), Enter takes him.
    hover(window, asked).await;
    window
        .click(&format!(
            "li.message[data-seq='{asked}'] button[aria-label='Reply']"
        ))
        .await;
    wait_for(window, "the composer replying to bob", |p| {
        p.replying
            .as_deref()
            .is_some_and(|r| r.contains(&bob.username) && r.contains(question))
            .then_some(())
    })
    .await;
    window.type_into("#composer", "I will, @bo").await;
    let people = wait_for(window, "the @ suggestions", |p| {
        (!p.people.is_empty()).then(|| p.people.clone())
    })
    .await;
    assert_eq!(people.first(), Some(&format!("@{}", bob.username)));
    wait_for(window, "bob suggested as a member of the room", |p| {
        p.people_outside.is_empty().then_some(())
    })
    .await;
    window.shot("05a-reply-mention-suggest").await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window.type_into("#composer", "chips and fruit").await;
    let reply_text = format!("I will, @{} chips and fruit", bob.username);
    window.type_into("#composer", &Key::Enter.to_string()).await;
    let (reply_to, mentions) = bob
        .wait_frame("alice's reply", UI_WAIT, |f| match f {
            ServerFrame::Event(e) if e.room == room => match &e.event {
                EventBody::Message {
                    body,
                    reply_to,
                    mentions,
                    ..
                } if *body == reply_text => Some((*reply_to, mentions.clone())),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(reply_to, Some(asked), "the reply's reply_to");
    assert_eq!(mentions, [bob_id], "the reply mentions bob by id");
    let reply_seq = bob.seq_of(room, &reply_text).await;
    wait_for(window, "the sent reply with its quote and mention", |p| {
        p.messages
            .iter()
            .find(|m| m.seq.as_deref() == Some(&reply_seq.to_string()))
            .filter(|m| {
                m.quote == Some((bob.username.clone(), question.to_owned()))
                    && m.mentions == [(format!("@{}", bob.username), false)]
            })
            .map(|_| ())
    })
    .await;
    assert!(
        read(window).await.replying.is_none(),
        "the composer stopped replying"
    );

    // Reactions: a quick one; bob's arrives live; one from the picker, found by searching.
    hover(window, asked).await;
    window
        .click(&format!(
            "li.message[data-seq='{asked}'] .message-actions button[data-emoji='👍']"
        ))
        .await;
    bob.wait_frame("alice's 👍", UI_WAIT, |f| match f {
        ServerFrame::Event(e) => matches!(&e.event,
            EventBody::ReactionAdded { target, user, emoji }
                if *target == asked && *user == alice_id && emoji == "👍")
        .then_some(()),
        _ => None,
    })
    .await;
    bob.send_frame(ClientFrame::React {
        room,
        seq: asked,
        emoji: "🎉".into(),
        remove: false,
        reference: Some("bob-tada".into()),
    });
    let reactions_of = |p: &Everyday| {
        p.messages
            .iter()
            .find(|m| m.seq.as_deref() == Some(&asked.to_string()))
            .map(|m| m.reactions.clone())
            .unwrap_or_default()
    };
    let shown = wait_for(window, "👍 (alice) and 🎉 (bob)", |p| {
        let r = reactions_of(p);
        (r.len() == 2).then_some(r)
    })
    .await;
    assert_eq!(
        (shown[0].0.as_str(), shown[0].1.as_str(), shown[0].2),
        ("👍", "1", true)
    );
    assert_eq!(
        (shown[1].0.as_str(), shown[1].1.as_str(), shown[1].2),
        ("🎉", "1", false)
    );
    assert_eq!(shown[1].3, format!("{} reacted with 🎉", bob.username));
    hover(window, asked).await;
    window
        .click(&format!(
            "li.message[data-seq='{asked}'] .message-actions button[aria-label='Add reaction']"
        ))
        .await;
    wait_for(window, "the emoji picker", |p| {
        p.picker.as_ref().map(|_| ())
    })
    .await;
    window.shot("05b-reactions-picker-open").await;
    window.type_into(".picker-search", "tada").await;
    wait_for(window, "🎉 found by searching", |p| {
        p.picker
            .as_ref()
            .is_some_and(|e| e.first().map(String::as_str) == Some("🎉"))
            .then_some(())
    })
    .await;
    window.shot("05b-reactions-picker-search").await;
    window
        .click(".emoji-picker .picker-emoji[data-emoji='🎉']")
        .await;
    wait_for(window, "🎉 2, alice's too, the picker closed", |p| {
        let r = reactions_of(p);
        (p.picker.is_none()
            && r.iter()
                .any(|(e, n, mine, _)| e == "🎉" && n == "2" && *mine))
        .then_some(())
    })
    .await;
    // A click on her own 👍 takes it back.
    window
        .click(&format!(
            "li.message[data-seq='{asked}'] .reaction[data-emoji='👍']"
        ))
        .await;
    wait_for(window, "👍 gone", |p| {
        let r = reactions_of(p);
        (r.len() == 1 && r[0].0 == "🎉").then_some(())
    })
    .await;
    bob.wait_frame("alice's 👍 taken back", UI_WAIT, |f| match f {
        ServerFrame::Event(e) => matches!(&e.event,
            EventBody::ReactionRemoved { target, emoji, .. } if *target == asked && emoji == "👍")
        .then_some(()),
        _ => None,
    })
    .await;
    let history = bob.history(room).await;
    let added = |emoji: &str| {
        history
            .events
            .iter()
            .filter(|e| {
                matches!(&e.event, EventBody::ReactionAdded { target, user, emoji: x }
                    if *target == asked && *user == alice_id && x == emoji)
            })
            .count()
    };
    assert_eq!((added("👍"), added("🎉")), (1, 1), "each reaction once");
    window.shot("05c-reply-reactions").await;

    // Bob deletes his question: the reply's quote says so at once; clicking it goes there.
    bob.send_frame(ClientFrame::Delete {
        room,
        seq: asked,
        reference: None,
    });
    wait_for(window, "the quote of a deleted message", |p| {
        p.messages
            .iter()
            .find(|m| m.seq.as_deref() == Some(&reply_seq.to_string()))
            .and_then(|m| m.quote.clone())
            .filter(|(_, text)| text == "deleted message")
    })
    .await;
    window
        .click(&format!("li.message[data-seq='{reply_seq}'] .reply-quote"))
        .await;
    wait_for(window, "the original, highlighted", |p| {
        p.messages
            .iter()
            .any(|m| m.seq.as_deref() == Some(&asked.to_string()) && m.highlight)
            .then_some(())
    })
    .await;

    // A mention in a room alice is not looking at: a mention badge beside the unread one.
    let other_name = format!("snacks-{tag}");
    let other: Room = rest(bob.api.create_room(&other_name, Visibility::Private)).await;
    rest(bob.api.invite(other.id, alice_id)).await;
    let mention = format!("@{alice} can you bring cups?");
    bob.post(other.id, format!("m-{tag}-cups"), mention, vec![alice_id])
        .await;
    wait_for(window, "the mention badge apart from unread", |p| {
        p.badges
            .iter()
            .find(|(name, _, _)| *name == other_name)
            .filter(|(_, mention, unread)| {
                mention.as_deref() == Some("@1") && unread.as_deref() == Some("1")
            })
            .map(|_| ())
    })
    .await;
    window.shot("05d-mention-badge").await;
    window
        .click_xpath(&format!(
            "//button[contains(@class,'room-item')][.//span[@class='room-name'][normalize-space()='{other_name}']]"
        ))
        .await;
    wait_for(window, "the mention, highlighted as mine", |p| {
        p.messages
            .iter()
            .find(|m| m.body.contains("can you bring cups?"))
            .filter(|m| m.mentions_me && m.mentions == [(format!("@{alice}"), true)])
            .map(|_| ())
    })
    .await;
    wait_for(window, "the badge gone once read", |p| {
        p.badges
            .iter()
            .find(|(name, _, _)| *name == other_name)
            .filter(|(_, mention, _)| mention.is_none())
            .map(|_| ())
    })
    .await;
    window.shot("05e-mention-highlight").await;
    // Back to the weekend room for the rest of the scenario.
    window
        .click_xpath("//button[contains(@class,'room-item')][.//span[@class='room-name'][starts-with(normalize-space(),'weekend-plans-')]]")
        .await;
}
