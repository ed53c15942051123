//! Where messages are written. Enter sends, Shift+Enter starts a new line. The draft is kept
//! per room by the backend (saved a moment after typing stops, and when leaving the room) and
//! restored when the room opens. While typing, others are told so at most every few seconds.
//!
//! Emoji shortcodes: typing `:thu` lists matching emoji (arrows to choose, Enter or Tab to
//! take one, Esc to close); typing the closing colon of a known shortcode replaces it at once,
//! and any left in the text are replaced on send (`crate::shortcodes`).
//!
//! Mentions: typing `@` lists people (members of the room first, `crate::mentions`), taken
//! like a shortcode; on send the text's `@username`s become the message's `mentions` (user
//! ids). Replying: the message being answered shows above the field (Esc or ✕ stops).
//!
//! Mounted with the room as its key, so each room gets a fresh composer.

use super::attachment_button::{use_paste_files, AttachButton};
use super::icon::{Icon, IconView};
use super::reply_quote::Replying;
use crate::effects::Outgoing;
use crate::format::now_ms;
use crate::ipc;
use crate::mentions::{self, Candidate, Suggestion};
use crate::replies::quote_of;
use crate::shortcodes;
use protocol::ipc::MessageView;
use protocol::validate;
use protocol::{RoomId, UserId};
use std::cell::RefCell;
use std::rc::Rc;
use web_sys::HtmlTextAreaElement;
use yew::platform::spawn_local;
use yew::prelude::*;

/// Save the draft this long after the last keystroke.
const DRAFT_DEBOUNCE_MS: u32 = 600;
/// Send `typing` at most this often while typing.
const TYPING_EVERY_MS: i64 = 3_000;
/// Show the byte counter from this share of the limit on.
const COUNTER_FROM: f64 = 0.8;

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    pub room: RoomId,
    pub placeholder: AttrValue,
    /// The server's largest message, in UTF-8 bytes (`limits.max_message_bytes`).
    pub max_bytes: usize,
    /// The message to send, and where to put its text back if the backend refuses it.
    pub onsend: Callback<(Outgoing, Callback<String>)>,
    /// The message being answered.
    #[prop_or_default]
    pub replying: Option<MessageView>,
    #[prop_or_default]
    pub oncancelreply: Callback<()>,
    /// Who `@` can name (members first).
    #[prop_or_default]
    pub candidates: Rc<Vec<Candidate>>,
    #[prop_or_default]
    pub me: Option<UserId>,
    /// The reader owns the room (may say `@room`).
    #[prop_or_default]
    pub owner: bool,
}

/// The mention being typed and who it could be.
#[derive(Clone, PartialEq)]
struct MentionSuggest {
    /// Byte offsets of its `@` and of the cursor.
    at: usize,
    cursor: usize,
    items: Vec<Suggestion>,
    selected: usize,
}

fn look_at_mention(
    value: &str,
    cursor: usize,
    candidates: &[Candidate],
    me: Option<UserId>,
    owner: bool,
) -> Option<MentionSuggest> {
    let (at, typed) = mentions::typing_at(value, cursor)?;
    let items = mentions::suggestions(typed, candidates, me, owner);
    (!items.is_empty()).then_some(MentionSuggest {
        at,
        cursor,
        items,
        selected: 0,
    })
}

/// What survives renders without causing them.
#[derive(Default)]
struct Draft {
    /// The text as typed (mirrors the textarea).
    text: String,
    /// Changed since the last save.
    dirty: bool,
    /// The user typed before the stored draft arrived: keep what they typed.
    touched: bool,
    timer: Option<gloo::timers::callback::Timeout>,
    last_typing_ms: i64,
}

/// Saves the draft if it changed. `cancel_timer` is false when called from the timer itself
/// (a fired timeout is left alone rather than dropped from inside its own callback).
fn save_draft(room: RoomId, draft: &Rc<RefCell<Draft>>, cancel_timer: bool) {
    let text = {
        let mut d = draft.borrow_mut();
        if cancel_timer {
            d.timer = None;
        }
        if !d.dirty {
            return;
        }
        d.dirty = false;
        d.text.clone()
    };
    spawn_local(async move {
        let _ = ipc::set_draft(room, text).await;
    });
}

/// The shortcode being typed and what it could be.
#[derive(Clone, PartialEq)]
struct Suggest {
    /// Byte offsets of its `:` and of the cursor.
    colon: usize,
    cursor: usize,
    /// `(shortcode, emoji)`, best first.
    items: Vec<(&'static str, &'static str)>,
    selected: usize,
}

/// Where the text and its cursor are after the shortcode under the cursor was looked at:
/// `Some((new text, new cursor))` when a closed shortcode was replaced, and the suggestions for
/// one being typed.
fn look_at_shortcode(value: &str, cursor: usize) -> (Option<(String, usize)>, Option<Suggest>) {
    if let Some(done) = shortcodes::complete_closed(value, cursor) {
        return (Some(done), None);
    }
    let suggest = shortcodes::typing_at(value, cursor).and_then(|(colon, typed)| {
        let items = shortcodes::suggestions(typed);
        (!items.is_empty()).then_some(Suggest {
            colon,
            cursor,
            items,
            selected: 0,
        })
    });
    (None, suggest)
}

#[function_component]
pub fn Composer(props: &ComposerProps) -> Html {
    let text = use_state(String::new);
    let error = use_state(|| None::<String>);
    let suggest = use_state(|| None::<Suggest>);
    let mention = use_state(|| None::<MentionSuggest>);
    let draft = use_mut_ref(Draft::default);
    let input_ref = use_node_ref();
    // A cursor position (UTF-16) to restore after the next render put a new value in.
    let caret = use_mut_ref(|| None::<u32>);
    let room = props.room;
    let max_bytes = props.max_bytes;
    let onpaste = use_paste_files(room);

    // On open: focus, restore the draft. On close: save a pending draft now.
    {
        let (text, draft, input_ref) = (text.clone(), draft.clone(), input_ref.clone());
        use_effect_with(room, move |room| {
            let room = *room;
            if let Some(el) = input_ref.cast::<HtmlTextAreaElement>() {
                let _ = el.focus();
            }
            {
                let (text, draft) = (text.clone(), draft.clone());
                spawn_local(async move {
                    if let Ok(saved) = ipc::get_draft(room).await {
                        let mut d = draft.borrow_mut();
                        if !d.touched && !saved.is_empty() {
                            d.text = saved.clone();
                            text.set(saved);
                        }
                    }
                });
            }
            move || save_draft(room, &draft, true)
        });
    }

    // Choosing a message to answer puts the cursor here.
    {
        let input_ref = input_ref.clone();
        let reply = props.replying.as_ref().and_then(|m| m.seq);
        use_effect_with(reply, move |reply| {
            if reply.is_some() {
                if let Some(el) = input_ref.cast::<HtmlTextAreaElement>() {
                    let _ = el.focus();
                }
            }
        });
    }

    {
        let (input_ref, caret) = (input_ref.clone(), caret.clone());
        use_effect(move || {
            if let Some(at) = caret.borrow_mut().take() {
                if let Some(el) = input_ref.cast::<HtmlTextAreaElement>() {
                    let _ = el.set_selection_range(at, at);
                }
            }
        });
    }

    let oninput = {
        let (text, error, draft, suggest, caret) = (
            text.clone(),
            error.clone(),
            draft.clone(),
            suggest.clone(),
            caret.clone(),
        );
        let (mention, candidates, me, owner) = (
            mention.clone(),
            props.candidates.clone(),
            props.me,
            props.owner,
        );
        Callback::from(move |e: InputEvent| {
            let el = e.target_unchecked_into::<HtmlTextAreaElement>();
            let mut value = el.value();
            let cursor = el
                .selection_start()
                .ok()
                .flatten()
                .map_or(value.len(), |at| shortcodes::byte_offset(&value, at));
            let (done, found) = look_at_shortcode(&value, cursor);
            let replaced = done.is_some();
            if let Some((new, at)) = done {
                *caret.borrow_mut() = Some(shortcodes::utf16_offset(&new, at));
                value = new;
            }
            mention.set(if found.is_none() && !replaced {
                look_at_mention(&value, cursor, &candidates, me, owner)
            } else {
                None
            });
            suggest.set(found);
            error.set(None);
            let now = now_ms();
            let tell_typing = {
                let mut d = draft.borrow_mut();
                d.text = value.clone();
                d.dirty = true;
                d.touched = true;
                let draft2 = draft.clone();
                d.timer = Some(gloo::timers::callback::Timeout::new(
                    DRAFT_DEBOUNCE_MS,
                    move || save_draft(room, &draft2, false),
                ));
                let due = !value.trim().is_empty() && now - d.last_typing_ms >= TYPING_EVERY_MS;
                if due {
                    d.last_typing_ms = now;
                }
                due
            };
            if tell_typing {
                spawn_local(async move {
                    let _ = ipc::typing(room).await;
                });
            }
            text.set(value);
        })
    };

    let send = {
        let (text, error, draft, onsend, suggest) = (
            text.clone(),
            error.clone(),
            draft.clone(),
            props.onsend.clone(),
            suggest.clone(),
        );
        let (mention, candidates, owner) = (mention.clone(), props.candidates.clone(), props.owner);
        let reply_to = props.replying.as_ref().and_then(|m| m.seq);
        move || {
            suggest.set(None);
            mention.set(None);
            let body = shortcodes::replace_all(text.trim_end());
            if body.trim().is_empty() {
                return;
            }
            if let Err(rule) = validate::message_body(&body, max_bytes) {
                error.set(Some(match rule.code {
                    protocol::ErrorCode::PayloadTooLarge => format!(
                        "This message is too long ({} of {} bytes).",
                        body.len(),
                        max_bytes
                    ),
                    _ => "This message contains characters that can't be sent.".into(),
                }));
                return;
            }
            let give_back = {
                let (text, draft) = (text.clone(), draft.clone());
                Callback::from(move |body: String| {
                    // Only into an empty composer: never over something typed since.
                    let mut d = draft.borrow_mut();
                    if d.text.is_empty() {
                        d.text = body.clone();
                        d.dirty = true;
                        text.set(body);
                    }
                })
            };
            let (ids, says_room) = mentions::resolve(&body, &candidates);
            let msg = Outgoing {
                body,
                reply_to,
                mentions: ids,
                mention_room: says_room && owner,
            };
            onsend.emit((msg, give_back));
            text.set(String::new());
            {
                let mut d = draft.borrow_mut();
                d.text.clear();
                d.dirty = true;
                d.last_typing_ms = 0;
            }
            save_draft(room, &draft, true);
        }
    };
    // Takes a suggestion: the typed shortcode becomes the emoji.
    let pick = {
        let (text, draft, suggest, caret) =
            (text.clone(), draft.clone(), suggest.clone(), caret.clone());
        Callback::from(move |emoji: &'static str| {
            let Some(s) = (*suggest).clone() else {
                return;
            };
            let current = draft.borrow().text.clone();
            if current.get(s.colon..s.cursor).is_none() {
                suggest.set(None);
                return;
            }
            let (new, at) = shortcodes::complete(&current, s.colon, s.cursor, emoji);
            *caret.borrow_mut() = Some(shortcodes::utf16_offset(&new, at));
            {
                let mut d = draft.borrow_mut();
                d.text = new.clone();
                d.dirty = true;
                d.touched = true;
            }
            suggest.set(None);
            text.set(new);
        })
    };
    // Takes a mention suggestion: the typed `@na` becomes `@name `.
    let pick_mention = {
        let (text, draft, mention, caret) =
            (text.clone(), draft.clone(), mention.clone(), caret.clone());
        Callback::from(move |username: String| {
            let Some(s) = (*mention).clone() else {
                return;
            };
            let current = draft.borrow().text.clone();
            if current.get(s.at..s.cursor).is_none() {
                mention.set(None);
                return;
            }
            let (new, at) = mentions::complete(&current, s.at, s.cursor, &username);
            *caret.borrow_mut() = Some(shortcodes::utf16_offset(&new, at));
            {
                let mut d = draft.borrow_mut();
                d.text = new.clone();
                d.dirty = true;
                d.touched = true;
            }
            mention.set(None);
            text.set(new);
        })
    };
    let onkeydown = {
        let (send, suggest, pick) = (send.clone(), suggest.clone(), pick.clone());
        let (mention, pick_mention, replying, oncancelreply) = (
            mention.clone(),
            pick_mention.clone(),
            props.replying.is_some(),
            props.oncancelreply.clone(),
        );
        Callback::from(move |e: KeyboardEvent| {
            if let Some(s) = (*mention).clone() {
                let n = s.items.len();
                let key = e.key();
                match key.as_str() {
                    "ArrowDown" | "ArrowUp" => {
                        e.prevent_default();
                        let selected = if key == "ArrowDown" {
                            (s.selected + 1) % n
                        } else {
                            (s.selected + n - 1) % n
                        };
                        mention.set(Some(MentionSuggest { selected, ..s }));
                        return;
                    }
                    "Enter" | "Tab" if !e.shift_key() && !e.is_composing() => {
                        e.prevent_default();
                        if let Some(c) = s.items.get(s.selected) {
                            pick_mention.emit(c.word().to_owned());
                        }
                        return;
                    }
                    "Escape" => {
                        e.prevent_default();
                        mention.set(None);
                        return;
                    }
                    _ => {}
                }
            }
            if e.key() == "Escape" && replying && suggest.is_none() {
                e.prevent_default();
                oncancelreply.emit(());
                return;
            }
            if let Some(s) = (*suggest).clone() {
                let n = s.items.len();
                let key = e.key();
                match key.as_str() {
                    "ArrowDown" | "ArrowUp" => {
                        e.prevent_default();
                        let selected = if key == "ArrowDown" {
                            (s.selected + 1) % n
                        } else {
                            (s.selected + n - 1) % n
                        };
                        suggest.set(Some(Suggest { selected, ..s }));
                        return;
                    }
                    "Enter" | "Tab" if !e.shift_key() && !e.is_composing() => {
                        e.prevent_default();
                        if let Some((_, emoji)) = s.items.get(s.selected) {
                            pick.emit(emoji);
                        }
                        return;
                    }
                    "Escape" => {
                        e.prevent_default();
                        suggest.set(None);
                        return;
                    }
                    _ => {}
                }
            }
            if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
                e.prevent_default();
                send();
            }
        })
    };
    let onclick = Callback::from(move |_: MouseEvent| send());

    let len = text.len();
    let rows = text.split('\n').count().clamp(1, 8);
    let show_counter = len as f64 >= max_bytes as f64 * COUNTER_FROM;
    let over = len > max_bytes;
    let empty = text.trim().is_empty();
    let suggestions = (*suggest).clone().map(|s| {
        html! {
            <ul class="emoji-suggestions" role="listbox" aria-label="Emoji">
                { for s.items.iter().enumerate().map(|(i, (code, emoji))| {
                    let onmousedown = {
                        let (pick, emoji) = (pick.clone(), *emoji);
                        Callback::from(move |e: MouseEvent| {
                            // Keep the focus (and the cursor) in the textarea.
                            e.prevent_default();
                            pick.emit(emoji);
                        })
                    };
                    html! {
                        <li role="option" aria-selected={(i == s.selected).to_string()}
                            class={classes!("emoji-suggestion", (i == s.selected).then_some("selected"))}
                            onmousedown={onmousedown}>
                            <span class="emoji">{ *emoji }</span>
                            <span class="shortcode">{ format!(":{code}:") }</span>
                        </li>
                    }
                }) }
            </ul>
        }
    });
    let people = (*mention).clone().map(|s| {
        html! {
            <ul class="emoji-suggestions mention-suggestions" role="listbox" aria-label="People">
                { for s.items.iter().enumerate().map(|(i, item)| {
                    let word = item.word().to_owned();
                    let onmousedown = {
                        let (pick_mention, word) = (pick_mention.clone(), word.clone());
                        Callback::from(move |e: MouseEvent| {
                            e.prevent_default();
                            pick_mention.emit(word.clone());
                        })
                    };
                    let (shown, note) = match item {
                        Suggestion::User(c) => (
                            c.display_name.clone(),
                            (!c.member).then_some("not in this room"),
                        ),
                        Suggestion::Room => (None, Some("notify everyone in this room")),
                    };
                    html! {
                        <li role="option" aria-selected={(i == s.selected).to_string()}
                            class={classes!("emoji-suggestion", "mention-suggestion", (i == s.selected).then_some("selected"))}
                            data-username={word.clone()} onmousedown={onmousedown}>
                            <span class="mention-name"><bdi>{ format!("@{word}") }</bdi></span>
                            if let Some(shown) = shown { <span class="mention-display"><bdi>{ shown }</bdi></span> }
                            if let Some(note) = note { <span class="shortcode">{ note }</span> }
                        </li>
                    }
                }) }
            </ul>
        }
    });
    let replying = props.replying.as_ref().map(|m| {
        html! { <Replying quote={quote_of(m)} oncancel={props.oncancelreply.clone()} /> }
    });
    html! {
        <div class="composer-wrap">
            if let Some(err) = &*error {
                <p class="composer-error" role="alert">{ err.clone() }</p>
            }
            { suggestions.unwrap_or_default() }
            { people.unwrap_or_default() }
            { replying.unwrap_or_default() }
            <div class={classes!("composer", over.then_some("over"))}>
                <AttachButton {room} />
                <textarea ref={input_ref} id="composer" rows={rows.to_string()}
                    placeholder={props.placeholder.clone()} aria-label={props.placeholder.clone()}
                    value={(*text).clone()} oninput={oninput} onkeydown={onkeydown} {onpaste} />
                if show_counter {
                    <span class={classes!("counter", over.then_some("over"))} aria-live="polite"
                        title={format!("{len} of {max_bytes} bytes")}>
                        { format!("{}", max_bytes as i64 - len as i64) }
                    </span>
                }
                <button type="button" class="send-button" aria-label="Send message" title="Send (Enter)"
                    disabled={empty || over} onclick={onclick}>
                    <IconView icon={Icon::Send} />
                </button>
            </div>
            <p class="composer-hint">
                <kbd>{ "Enter" }</kbd>{ " to send · " }<kbd>{ "Shift" }</kbd>{ " + " }<kbd>{ "Enter" }</kbd>{ " for a new line" }
            </p>
        </div>
    }
}
