//! Where messages are written. Enter sends, Shift+Enter starts a new line. The draft is kept
//! per room by the backend (saved a moment after typing stops, and when leaving the room) and
//! restored when the room opens. While typing, others are told so at most every few seconds.
//!
//! Mounted with the room as its key, so each room gets a fresh composer.

use super::icon::{Icon, IconView};
use crate::format::now_ms;
use crate::ipc;
use protocol::validate;
use protocol::RoomId;
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
    /// The text to send, and where to put it back if the backend refuses it.
    pub onsend: Callback<(String, Callback<String>)>,
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

#[function_component]
pub fn Composer(props: &ComposerProps) -> Html {
    let text = use_state(String::new);
    let error = use_state(|| None::<String>);
    let draft = use_mut_ref(Draft::default);
    let input_ref = use_node_ref();
    let room = props.room;
    let max_bytes = props.max_bytes;

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

    let oninput = {
        let (text, error, draft) = (text.clone(), error.clone(), draft.clone());
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlTextAreaElement>().value();
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
        let (text, error, draft, onsend) = (
            text.clone(),
            error.clone(),
            draft.clone(),
            props.onsend.clone(),
        );
        move || {
            let body = text.trim_end().to_string();
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
            onsend.emit((body, give_back));
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
    let onkeydown = {
        let send = send.clone();
        Callback::from(move |e: KeyboardEvent| {
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
    html! {
        <div class="composer-wrap">
            if let Some(err) = &*error {
                <p class="composer-error" role="alert">{ err.clone() }</p>
            }
            <div class={classes!("composer", over.then_some("over"))}>
                <textarea ref={input_ref} id="composer" rows={rows.to_string()}
                    placeholder={props.placeholder.clone()} aria-label={props.placeholder.clone()}
                    value={(*text).clone()} oninput={oninput} onkeydown={onkeydown} />
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
