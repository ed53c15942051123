//! The scrolling list of a room's messages: day separators, the "new messages" line, sender
//! groups; older pages load when scrolled to the top (keeping the view where it was), and the
//! view follows new messages while it is at the bottom.

use super::icon::{Icon, IconView};
use super::message_item::MessageItem;
use crate::format::{day_key, day_label, now_ms};
use crate::rows::{rows, Row};
use crate::state::Timeline;
use protocol::ipc::MessageView;
use protocol::UserId;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::Element;
use yew::prelude::*;

/// Within this many pixels of an edge counts as being at it.
const EDGE_PX: i32 = 120;

#[derive(Properties, PartialEq)]
pub struct MessageListProps {
    pub room_name: AttrValue,
    pub direct: bool,
    pub timeline: Rc<Timeline>,
    pub me: Option<UserId>,
    pub divider_after: Option<u64>,
    /// Scroll to this message (loading older pages until it is there), then call `on_jumped`.
    pub jump_to: Option<u64>,
    pub on_jumped: Callback<()>,
    /// Try loading the newest page again (after it failed).
    pub on_reload: Callback<()>,
    /// Load the page before this seq.
    pub on_load_older: Callback<u64>,
    pub on_retry: Callback<MessageView>,
    pub on_discard: Callback<MessageView>,
    pub on_edit: Callback<(u64, String)>,
    pub on_delete: Callback<u64>,
    #[prop_or_default]
    pub my_name: Option<AttrValue>,
    /// Names of users (reaction tooltips, mentions).
    #[prop_or_default]
    pub names: Rc<HashMap<UserId, String>>,
    #[prop_or_default]
    pub on_reply: Callback<MessageView>,
    /// `(seq, emoji, remove)`.
    #[prop_or_default]
    pub on_react: Callback<(u64, String, bool)>,
    /// Go to a reply's original.
    #[prop_or_default]
    pub on_jump: Callback<u64>,
    /// Display names of users who set one.
    #[prop_or_default]
    pub display_names: Rc<HashMap<UserId, String>>,
    /// A sender was clicked: show their card.
    #[prop_or_default]
    pub on_sender: Callback<UserId>,
}

/// Scroll bookkeeping that must not trigger renders.
#[derive(Default)]
struct Scroll {
    /// The view is at the bottom: keep it there when messages arrive.
    stick: bool,
    /// Before an older page was requested: (scrollHeight, scrollTop), to restore the view.
    anchor: Option<(i32, i32)>,
    /// The first position (divider or bottom) was set.
    placed: bool,
    /// The newest message last time, to notice the user's own new message.
    last: Option<String>,
    /// The last `before` asked for to fill a short view (asked once, so a failing load does
    /// not loop).
    filled_before: Option<u64>,
}

#[function_component]
pub fn MessageList(props: &MessageListProps) -> Html {
    let list_ref = use_node_ref();
    let scroll = use_mut_ref(|| Scroll {
        stick: true,
        ..Scroll::default()
    });
    let at_bottom = use_state(|| true);
    let highlighted = use_state(|| None::<u64>);

    let request_older = {
        let (timeline, scroll, on_load_older) = (
            props.timeline.clone(),
            scroll.clone(),
            props.on_load_older.clone(),
        );
        move |el: &Element| {
            if !timeline.has_more || timeline.loading_older {
                return;
            }
            if let Some(before) = timeline.oldest_seq() {
                scroll.borrow_mut().anchor = Some((el.scroll_height(), el.scroll_top()));
                on_load_older.emit(before);
            }
        }
    };

    // After every render: restore the view after an older page, place it on first load,
    // follow new messages at the bottom, and fill a short view with older pages.
    {
        let (list_ref, scroll, timeline, me) = (
            list_ref.clone(),
            scroll.clone(),
            props.timeline.clone(),
            props.me,
        );
        let request_older = request_older.clone();
        let (jump_to, on_jumped, highlighted) =
            (props.jump_to, props.on_jumped.clone(), highlighted.clone());
        use_effect(move || {
            let Some(el) = list_ref.cast::<Element>() else {
                return;
            };
            if let (Some(seq), true) = (jump_to, timeline.loaded && !timeline.loading_older) {
                let target = el
                    .query_selector(&format!("[data-seq=\"{seq}\"]"))
                    .ok()
                    .flatten();
                if let Some(target) = target {
                    let opts = web_sys::ScrollIntoViewOptions::new();
                    opts.set_block(web_sys::ScrollLogicalPosition::Center);
                    target.scroll_into_view_with_scroll_into_view_options(&opts);
                    let mut s = scroll.borrow_mut();
                    s.placed = true;
                    s.stick = false;
                    s.anchor = None;
                    drop(s);
                    highlighted.set(Some(seq));
                    on_jumped.emit(());
                } else if timeline.has_more && timeline.oldest_seq().is_some_and(|o| o > seq) {
                    request_older(&el);
                } else {
                    on_jumped.emit(());
                }
                return;
            }
            let last = timeline.messages.last();
            let mine_new = {
                let s = scroll.borrow();
                last.is_some_and(|m| Some(m.sender) == me && s.last.as_ref() != Some(&m.client_id))
            };
            let mut s = scroll.borrow_mut();
            s.last = last.map(|m| m.client_id.clone());
            if !timeline.loading_older {
                if let Some((height, top)) = s.anchor.take() {
                    el.set_scroll_top(el.scroll_height() - height + top);
                    return;
                }
            }
            if !s.placed && timeline.loaded {
                s.placed = true;
                // Newest at the bottom, unless that would scroll the "new messages" line out
                // of view: then the line sits near the top.
                let bottom = el.scroll_height() - el.client_height();
                let divider = el
                    .query_selector(".new-divider")
                    .ok()
                    .flatten()
                    .and_then(|d| d.dyn_into::<web_sys::HtmlElement>().ok())
                    .map(|d| d.offset_top() - 48);
                let target = divider.map_or(bottom, |d| d.min(bottom));
                el.set_scroll_top(target);
                s.stick = target >= bottom;
            } else if s.stick || mine_new {
                el.set_scroll_top(el.scroll_height());
                s.stick = true;
            }
            let short = el.scroll_height() <= el.client_height() + EDGE_PX;
            let before = timeline.oldest_seq();
            let fill = timeline.loaded && short && s.filled_before != before;
            if fill {
                s.filled_before = before;
            }
            drop(s);
            if fill {
                request_older(&el);
            }
        });
    }

    let onscroll = {
        let (list_ref, scroll, at_bottom) = (list_ref.clone(), scroll.clone(), at_bottom.clone());
        Callback::from(move |_: Event| {
            let Some(el) = list_ref.cast::<Element>() else {
                return;
            };
            let bottom = el.scroll_height() - el.scroll_top() - el.client_height() < EDGE_PX;
            scroll.borrow_mut().stick = bottom;
            if *at_bottom != bottom {
                at_bottom.set(bottom);
            }
            if el.scroll_top() < EDGE_PX {
                request_older(&el);
            }
        })
    };
    let jump = {
        let (list_ref, scroll) = (list_ref.clone(), scroll.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(el) = list_ref.cast::<Element>() {
                scroll.borrow_mut().stick = true;
                el.set_scroll_top(el.scroll_height());
            }
        })
    };

    let t = &props.timeline;
    let now = now_ms();
    let top = if t.loading_older {
        html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading earlier messages…" }</div> }
    } else if t.loaded && !t.has_more {
        html! {
            <div class="room-intro">
                <h2>if !props.direct { { "Welcome to #" } }<bdi>{ props.room_name.to_string() }</bdi></h2>
                <p class="muted">
                    if props.direct {
                        { "This is the beginning of your conversation with " }<bdi>{ props.room_name.to_string() }</bdi>{ "." }
                    } else {
                        { "This is the beginning of the room." }
                    }
                </p>
            </div>
        }
    } else if t.load_error {
        let on_reload = props.on_reload.clone();
        html! {
            <div class="list-status" role="alert">
                <span class="error-text">{ "Couldn't load messages." }</span>
                <button type="button" class="button small" onclick={Callback::from(move |_: MouseEvent| on_reload.emit(()))}>
                    { "Try again" }
                </button>
            </div>
        }
    } else if !t.loaded {
        html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading messages…" }</div> }
    } else {
        Html::default()
    };
    let items = rows(&t.messages, props.divider_after, props.me, day_key)
        .into_iter()
        .map(|row| match row {
            Row::Day(ts) => html! {
                <li key={format!("day-{}", day_key(ts))} class="day-separator" role="separator">
                    <span>{ day_label(ts, now) }</span>
                </li>
            },
            Row::NewMessages => html! {
                <li key="new-divider" class="new-divider" role="separator" aria-label="New messages">
                    <span>{ "New" }</span>
                </li>
            },
            Row::Message { message, header } => html! {
                <MessageItem key={message.client_id.clone()} message={message.clone()} header={header}
                    mine={Some(message.sender) == props.me} now={now}
                    highlight={message.seq.is_some() && message.seq == *highlighted}
                    on_retry={props.on_retry.clone()} on_discard={props.on_discard.clone()}
                    on_edit={props.on_edit.clone()} on_delete={props.on_delete.clone()}
                    me={props.me} my_name={props.my_name.clone()} names={props.names.clone()}
                    on_reply={props.on_reply.clone()} on_react={props.on_react.clone()}
                    on_jump={props.on_jump.clone()} on_sender={props.on_sender.clone()}
                    display_name={props.display_names.get(&message.sender).map(|n| AttrValue::from(n.clone()))} />
            },
        })
        .collect::<Html>();

    html! {
        <div class="message-pane">
            <div ref={list_ref} class="message-scroll" onscroll={onscroll} tabindex="0"
                aria-label="Messages">
                { top }
                <ol class="messages" role="list" aria-live="polite" aria-relevant="additions">{ items }</ol>
            </div>
            if !*at_bottom {
                <button type="button" class="jump-latest" onclick={jump}>
                    <IconView icon={Icon::ArrowDown} />{ "Jump to latest" }
                </button>
            }
        </div>
    }
}
