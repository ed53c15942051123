//! One conversation in the side bar: avatar (with presence for direct messages), name, time
//! and preview of the last message, and the unread count with, apart, the unread mentions.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use crate::format::short_time;
use crate::state::Status;
use protocol::ipc::{MessageStatus, RoomView};
use protocol::rest::{RoomKind, Visibility};
use protocol::{RoomId, UserId};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct RoomItemProps {
    pub view: RoomView,
    pub active: bool,
    /// For direct rooms: the peer's presence.
    pub peer_status: Option<Status>,
    pub me: Option<UserId>,
    /// The time "now" for the relative time label.
    pub now: i64,
    pub onselect: Callback<RoomId>,
}

/// "99+" beyond 99, as the server counts up to 100.
pub fn unread_label(unread: u64) -> String {
    if unread > 99 {
        "99+".into()
    } else {
        unread.to_string()
    }
}

#[function_component]
pub fn RoomItem(props: &RoomItemProps) -> Html {
    let room = &props.view.room;
    let id = room.id;
    let onclick = {
        let onselect = props.onselect.clone();
        Callback::from(move |_: MouseEvent| onselect.emit(id))
    };
    let direct = room.kind == RoomKind::Direct;
    let preview = props.view.last_message.as_ref().map(|m| {
        // Names and text isolated (`<bdi>`): right-to-left text cannot reorder the line.
        let who = if Some(m.sender) == props.me {
            html! { "You: " }
        } else if direct {
            html! {}
        } else {
            html! { <><bdi>{ m.sender_name.clone() }</bdi>{ ": " }</> }
        };
        let text = if m.deleted {
            "Message deleted".to_string()
        } else if m.body.trim().is_empty() && !m.attachments.is_empty() {
            format!("📎 {}", m.attachments[0].name)
        } else {
            // The words without the Markdown, on one line.
            markup::plain_text(&m.body)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let failed = matches!(m.status, MessageStatus::Failed { .. });
        (html! { <>{ who }<bdi>{ text }</bdi></> }, failed)
    });
    let time = props
        .view
        .last_message
        .as_ref()
        .map(|m| short_time(m.ts, props.now));
    let unread = room.unread;
    let avatar = if direct {
        html! { <Avatar name={room.name.clone()} status={props.peer_status} class="small" /> }
    } else {
        let icon = if room.visibility == Visibility::Private {
            Icon::Lock
        } else {
            Icon::Hash
        };
        html! { <span class="room-glyph" aria-hidden="true"><IconView {icon} /></span> }
    };
    let mentions = room.mentions;
    let mut label = if unread > 0 {
        format!(
            "{}, {} unread",
            crate::format::isolate(&room.name),
            unread_label(unread)
        )
    } else {
        room.name.clone()
    };
    if mentions > 0 {
        label.push_str(&format!(
            ", {} mention{}",
            unread_label(mentions),
            if mentions == 1 { "" } else { "s" }
        ));
    }
    html! {
        <li>
            <button type="button"
                class={classes!("room-item", props.active.then_some("active"), (unread > 0).then_some("unread"))}
                aria-current={props.active.then_some("page")} aria-label={label} onclick={onclick}>
                { avatar }
                <span class="room-text">
                    <span class="room-line">
                        <span class="room-name"><bdi>{ room.name.clone() }</bdi></span>
                        if let Some(time) = time { <span class="room-time">{ time }</span> }
                    </span>
                    <span class="room-line">
                        <span class="room-preview">
                            if let Some((text, failed)) = preview {
                                if failed { <span class="preview-failed">{ "Not sent · " }</span> }
                                { text }
                            } else if room.last_seq == 0 || props.view.no_messages {
                                <span class="muted">{ "No messages yet" }</span>
                            }
                        </span>
                        if mentions > 0 {
                            <span class="badge mention-badge" aria-hidden="true"
                                title={format!("Mentions: {}", unread_label(mentions))}>
                                { format!("@{}", unread_label(mentions)) }
                            </span>
                        }
                        if unread > 0 { <span class="badge" aria-hidden="true">{ unread_label(unread) }</span> }
                    </span>
                </span>
            </button>
        </li>
    }
}
