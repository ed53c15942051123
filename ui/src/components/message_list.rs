//! The scrolling list of a room's messages: day separators, the "new messages" line, sender
//! groups; older pages load when scrolled to the top (keeping the view where it was), and the
//! view follows new messages while it is at the bottom. Only a window of rows is drawn
//! (`rows::WINDOW`): it moves by steps as the view nears its edges, the view staying on the
//! row it showed, so the DOM is bounded however far back the user scrolls.

use super::icon::{Icon, IconView};
use super::message_item::MessageItem;
use crate::format::{day_key, day_label, now_ms};
use crate::rows::{centred_on, rows, shift_down, shift_up, window, Down, Row};
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
    /// Following the newest messages with far more loaded than drawn: drop the oldest.
    pub on_trim: Callback<()>,
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
    /// The row at the top of the view and how far below the view's top it starts (px): after
    /// a render that added or dropped rows above it (an older page, the window moving), the
    /// view is put back on it.
    anchor: Option<(String, i32)>,
    /// The first position (divider or bottom) was set.
    placed: bool,
    /// The newest message last time, to notice the user's own new message.
    last: Option<String>,
    /// The last `before` asked for to fill a short view (asked once, so a failing load does
    /// not loop).
    filled_before: Option<u64>,
}

/// The drawn rows (`li` children of the list) with their row keys: `data-row` on separators,
/// `s<seq>` for sent messages.
fn drawn_rows(list: &Element) -> Vec<(String, web_sys::HtmlElement)> {
    let Ok(Some(ol)) = list.query_selector("ol.messages") else {
        return Vec::new();
    };
    std::iter::successors(ol.first_element_child(), |li| li.next_element_sibling())
        .filter_map(|li| {
            let key = li
                .get_attribute("data-row")
                .or_else(|| li.get_attribute("data-seq").map(|seq| format!("s{seq}")))?;
            Some((key, li.dyn_into::<web_sys::HtmlElement>().ok()?))
        })
        .collect()
}

/// The first drawn message whose bottom is below the view's top, and its offset from that
/// top. Only messages: a day separator or the "new" line moves when older messages come
/// before it (it always heads the first message of its day).
fn first_visible(list: &Element) -> Option<(String, i32)> {
    let top = list.scroll_top();
    drawn_rows(list)
        .into_iter()
        .filter(|(key, _)| key.starts_with('s'))
        .find(|(_, li)| li.offset_top() + li.offset_height() > top)
        .map(|(key, li)| (key, li.offset_top() - top))
}

/// Puts the view back so that the anchor row is where it was; `false` if it is not drawn.
fn restore(list: &Element, (key, offset): &(String, i32)) -> bool {
    let Some((_, li)) = drawn_rows(list).into_iter().find(|(k, _)| k == key) else {
        return false;
    };
    let wanted = li.offset_top() - offset;
    if wanted != list.scroll_top() {
        list.set_scroll_top(wanted);
    }
    true
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
    // The key of the first drawn row; `None`: the newest rows are drawn (see `rows::window`).
    let top_key = use_state(|| None::<String>);

    let t = &props.timeline;
    let all_rows = rows(&t.messages, props.divider_after, props.me, day_key);
    let keys: Rc<Vec<Option<String>>> = Rc::new(all_rows.iter().map(|r| r.key(day_key)).collect());
    let top_index = (*top_key)
        .as_ref()
        .and_then(|k| keys.iter().position(|x| x.as_ref() == Some(k)));
    let drawn = window(all_rows.len(), top_index);
    // The window's top as a key (`None` when following the newest rows or when the row at
    // that index has no key yet).
    let key_at = {
        let keys = keys.clone();
        move |i: usize| keys.get(i).cloned().flatten()
    };

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
                scroll.borrow_mut().anchor = first_visible(el);
                on_load_older.emit(before);
            }
        }
    };
    // Moves the window up at the top edge (or loads an older page when it already starts at
    // the first row); `true` when something was asked for.
    let near_top = {
        let (top_key, scroll, drawn, key_at) = (
            top_key.clone(),
            scroll.clone(),
            drawn.clone(),
            key_at.clone(),
        );
        let request_older = request_older.clone();
        move |el: &Element| {
            if el.scroll_top() >= EDGE_PX {
                return;
            }
            match shift_up(&drawn) {
                Some(top) => {
                    scroll.borrow_mut().anchor = first_visible(el);
                    top_key.set(key_at(top));
                }
                None => request_older(el),
            }
        }
    };

    // After every render: keep the view on its anchor row (older page, window moved), place it
    // on first load, follow new messages at the bottom, jump to a message, and fill a short
    // view with older pages.
    {
        let (list_ref, scroll, timeline, me) = (
            list_ref.clone(),
            scroll.clone(),
            props.timeline.clone(),
            props.me,
        );
        let request_older = request_older.clone();
        let near_top = near_top.clone();
        let (jump_to, on_jumped, highlighted) =
            (props.jump_to, props.on_jumped.clone(), highlighted.clone());
        let on_trim = props.on_trim.clone();
        let (top_key, keys, drawn, key_at) =
            (top_key.clone(), keys.clone(), drawn.clone(), key_at.clone());
        use_effect(move || {
            let Some(el) = list_ref.cast::<Element>() else {
                return;
            };
            if let (Some(seq), true) = (jump_to, timeline.loaded && !timeline.loading_older) {
                let target = el
                    .query_selector(&format!("[data-seq=\"{seq}\"]"))
                    .ok()
                    .flatten();
                let wanted = format!("s{seq}");
                let index = keys.iter().position(|k| k.as_ref() == Some(&wanted));
                if let Some(target) = target {
                    let opts = web_sys::ScrollIntoViewOptions::new();
                    opts.set_block(web_sys::ScrollLogicalPosition::Center);
                    target.scroll_into_view_with_scroll_into_view_options(&opts);
                    let mut s = scroll.borrow_mut();
                    s.placed = true;
                    s.stick = false;
                    s.anchor = first_visible(&el);
                    drop(s);
                    highlighted.set(Some(seq));
                    on_jumped.emit(());
                } else if let Some(index) = index {
                    // Loaded but outside the window: move the window onto it.
                    let top = centred_on(index);
                    let key = key_at(top);
                    if key.is_some() && *top_key != key {
                        top_key.set(key);
                    } else {
                        on_jumped.emit(());
                    }
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
            if mine_new && top_key.is_some() {
                // The user's own new message: back to the newest rows, at the bottom.
                s.stick = true;
                drop(s);
                top_key.set(None);
                return;
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
                s.anchor = first_visible(&el);
            } else if s.stick || mine_new {
                el.set_scroll_top(el.scroll_height());
                s.stick = true;
                // The newest rows are drawn; what is far above them need not stay loaded.
                if top_key.is_none() && timeline.messages.len() > crate::state::TRIM_AT {
                    on_trim.emit(());
                }
            } else if let Some(anchor) = s.anchor.clone() {
                if !timeline.loading_older && !restore(&el, &anchor) {
                    s.anchor = first_visible(&el);
                }
            }
            let short = el.scroll_height() <= el.client_height() + EDGE_PX;
            let before = timeline.oldest_seq();
            let fill = timeline.loaded && short && drawn.start == 0 && s.filled_before != before;
            if fill {
                s.filled_before = before;
            }
            let stick = s.stick;
            drop(s);
            if fill {
                request_older(&el);
            } else if !stick && timeline.loaded && !timeline.loading_older && drawn.start > 0 {
                // Still at the top after the rows above came (an older page, a move): go on.
                near_top(&el);
            }
        });
    }

    let onscroll = {
        let (list_ref, scroll, at_bottom) = (list_ref.clone(), scroll.clone(), at_bottom.clone());
        let (top_key, drawn, len, key_at) = (
            top_key.clone(),
            drawn.clone(),
            all_rows.len(),
            key_at.clone(),
        );
        let near_top = near_top.clone();
        Callback::from(move |_: Event| {
            let Some(el) = list_ref.cast::<Element>() else {
                return;
            };
            let at_end = el.scroll_height() - el.scroll_top() - el.client_height() < EDGE_PX;
            let newest_drawn = drawn.end >= len;
            let bottom = at_end && newest_drawn;
            {
                let mut s = scroll.borrow_mut();
                s.stick = bottom;
                s.anchor = first_visible(&el);
            }
            if *at_bottom != bottom {
                at_bottom.set(bottom);
            }
            if bottom && top_key.is_some() {
                top_key.set(None);
            } else if at_end {
                match shift_down(&drawn, len) {
                    Down::Top(top) => top_key.set(key_at(top)),
                    Down::Newest => top_key.set(None),
                    Down::AtEnd => {}
                }
            } else {
                near_top(&el);
            }
        })
    };
    let jump = {
        let (list_ref, scroll, top_key) = (list_ref.clone(), scroll.clone(), top_key.clone());
        Callback::from(move |_: MouseEvent| {
            scroll.borrow_mut().stick = true;
            if top_key.is_some() {
                top_key.set(None);
            } else if let Some(el) = list_ref.cast::<Element>() {
                el.set_scroll_top(el.scroll_height());
            }
        })
    };

    let now = now_ms();
    let top = if drawn.start > 0 {
        Html::default()
    } else if t.loading_older {
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
    let items = all_rows[drawn.clone()]
        .iter()
        .map(|row| match row {
            Row::Day(ts) => html! {
                <li key={format!("day-{}", day_key(*ts))} data-row={format!("day-{}", day_key(*ts))}
                    class="day-separator" role="separator">
                    <span>{ day_label(*ts, now) }</span>
                </li>
            },
            Row::NewMessages => html! {
                <li key="new-divider" data-row="new-divider" class="new-divider" role="separator" aria-label="New messages">
                    <span>{ "New" }</span>
                </li>
            },
            Row::Message { message, header } => html! {
                <MessageItem key={message.client_id.clone()} message={(*message).clone()} header={*header}
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
            // `data-loaded`: how many messages the timeline holds (drawn or not), for tests.
            <div ref={list_ref} class="message-scroll" onscroll={onscroll} tabindex="0"
                aria-label="Messages" data-loaded={props.timeline.messages.len().to_string()}>
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
