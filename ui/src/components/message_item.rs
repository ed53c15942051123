//! One message: sender and time (first of a group), the text (Markdown, as DOM nodes), edited/deleted
//! markers, the delivery state (pending with a clock; failed in red with the reason, Retry and
//! Discard), and for the user's own messages Edit and Delete. Replies show their quote above
//! the text; reactions show under it. On hover: quick reactions, the emoji picker and Reply.
//! Mentions of the reader make the whole message stand out.

use super::attachment_list::AttachmentList;
use super::avatar::Avatar;
use super::emoji_picker::EmojiPicker;
use super::icon::{Icon, IconView};
use super::message_text::MessageText;
use super::reactions::{Reactions, QUICK};
use super::reply_quote::ReplyQuote;
use crate::format::{full_time, time_of_day};
use protocol::ipc::{MessageStatus, MessageView};
use protocol::UserId;
use std::collections::HashMap;
use std::rc::Rc;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MessageItemProps {
    pub message: MessageView,
    /// First of a group: show avatar, name and time.
    pub header: bool,
    pub mine: bool,
    /// Briefly highlighted (reached from a search result).
    #[prop_or_default]
    pub highlight: bool,
    pub now: i64,
    pub on_retry: Callback<MessageView>,
    pub on_discard: Callback<MessageView>,
    /// `(seq, new text)`.
    pub on_edit: Callback<(u64, String)>,
    pub on_delete: Callback<u64>,
    /// The reader.
    #[prop_or_default]
    pub me: Option<UserId>,
    #[prop_or_default]
    pub my_name: Option<AttrValue>,
    /// Names of users (reaction tooltips, mentions).
    #[prop_or_default]
    pub names: Rc<HashMap<UserId, String>>,
    /// Answer this message.
    #[prop_or_default]
    pub on_reply: Callback<MessageView>,
    /// `(seq, emoji, remove)`.
    #[prop_or_default]
    pub on_react: Callback<(u64, String, bool)>,
    /// Go to the message with this seq (a reply's original).
    #[prop_or_default]
    pub on_jump: Callback<u64>,
    /// The sender's display name, shown before the username when they set one.
    #[prop_or_default]
    pub display_name: Option<AttrValue>,
    /// The sender's name or avatar was clicked: show their card.
    #[prop_or_default]
    pub on_sender: Callback<UserId>,
}

#[function_component]
pub fn MessageItem(props: &MessageItemProps) -> Html {
    let editing = use_state(|| None::<String>);
    let confirm_delete = use_state(|| false);
    let picking = use_state(|| false);
    let editor_ref = use_node_ref();
    let m = &props.message;

    {
        let editor_ref = editor_ref.clone();
        use_effect_with(editing.is_some(), move |open| {
            if *open {
                if let Some(el) = editor_ref.cast::<HtmlTextAreaElement>() {
                    let _ = el.focus();
                    let end = el.value().len() as u32;
                    let _ = el.set_selection_range(end, end);
                }
            }
        });
    }

    let start_edit = {
        let (editing, body) = (editing.clone(), m.body.clone());
        Callback::from(move |_: MouseEvent| editing.set(Some(body.clone())))
    };
    let cancel_edit = {
        let editing = editing.clone();
        Callback::from(move |_: MouseEvent| editing.set(None))
    };
    let save = {
        let (editing, on_edit, seq, original) = (
            editing.clone(),
            props.on_edit.clone(),
            m.seq,
            m.body.clone(),
        );
        move || {
            if let (Some(text), Some(seq)) = ((*editing).clone(), seq) {
                let text = text.trim_end().to_string();
                if !text.trim().is_empty() && text != original {
                    on_edit.emit((seq, text));
                }
                editing.set(None);
            }
        }
    };
    let save_click = {
        let save = save.clone();
        Callback::from(move |_: MouseEvent| save())
    };
    let edit_input = {
        let editing = editing.clone();
        Callback::from(move |e: InputEvent| {
            editing.set(Some(
                e.target_unchecked_into::<HtmlTextAreaElement>().value(),
            ))
        })
    };
    let edit_keys = {
        let editing = editing.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                e.prevent_default();
                e.stop_propagation();
                editing.set(None);
            } else if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
                e.prevent_default();
                save();
            }
        })
    };
    let ask_delete = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_: MouseEvent| confirm_delete.set(true))
    };
    let cancel_delete = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_: MouseEvent| confirm_delete.set(false))
    };
    let do_delete = {
        let (confirm_delete, on_delete, seq) =
            (confirm_delete.clone(), props.on_delete.clone(), m.seq);
        Callback::from(move |_: MouseEvent| {
            confirm_delete.set(false);
            if let Some(seq) = seq {
                on_delete.emit(seq);
            }
        })
    };
    let retry = {
        let (on_retry, m) = (props.on_retry.clone(), m.clone());
        Callback::from(move |_: MouseEvent| on_retry.emit(m.clone()))
    };
    let discard = {
        let (on_discard, m) = (props.on_discard.clone(), m.clone());
        Callback::from(move |_: MouseEvent| on_discard.emit(m.clone()))
    };

    let react = {
        let (on_react, seq, reactions, me) =
            (props.on_react.clone(), m.seq, m.reactions.clone(), props.me);
        Callback::from(move |emoji: String| {
            let Some(seq) = seq else {
                return;
            };
            let mine = reactions
                .iter()
                .any(|r| r.emoji == emoji && me.is_some_and(|me| r.users.contains(&me)));
            on_react.emit((seq, emoji, mine));
        })
    };
    let toggle = {
        let (on_react, seq) = (props.on_react.clone(), m.seq);
        Callback::from(move |(emoji, remove): (String, bool)| {
            if let Some(seq) = seq {
                on_react.emit((seq, emoji, remove));
            }
        })
    };
    let open_picker = {
        let picking = picking.clone();
        Callback::from(move |()| picking.set(true))
    };
    let close_picker = {
        let picking = picking.clone();
        Callback::from(move |()| picking.set(false))
    };
    let pick = {
        let (react, picking) = (react.clone(), picking.clone());
        Callback::from(move |emoji: String| {
            picking.set(false);
            react.emit(emoji);
        })
    };
    let reply = {
        let (on_reply, m) = (props.on_reply.clone(), m.clone());
        Callback::from(move |_: MouseEvent| on_reply.emit(m.clone()))
    };
    let quote = m.reply_to.map(|original| {
        let on_jump = props.on_jump.clone();
        html! {
            <ReplyQuote quote={m.quote.clone()} onjump={Callback::from(move |()| on_jump.emit(original))} />
        }
    });
    let mention_names: Rc<Vec<String>> = Rc::new(
        m.mentions
            .iter()
            .filter_map(|u| props.names.get(u).cloned())
            .collect(),
    );
    let mentions_me = !props.mine
        && !m.deleted
        && (m.mention_room || props.me.is_some_and(|me| m.mentions.contains(&me)));

    let (state_class, status) = match &m.status {
        MessageStatus::Sent => (None, Html::default()),
        MessageStatus::Pending => (
            Some("pending"),
            html! {
                <span class="status pending-status" title="Sending…">
                    <IconView icon={Icon::Clock} /><span>{ "Sending…" }</span>
                </span>
            },
        ),
        MessageStatus::Failed { reason, .. } => (
            Some("failed"),
            html! {
                <div class="status failed-status" role="alert">
                    <IconView icon={Icon::Alert} />
                    <span>{ if reason.is_empty() { "Not sent.".to_string() } else { format!("Not sent: {reason}") } }</span>
                    <button type="button" class="chip" onclick={retry}><IconView icon={Icon::Retry} />{ "Retry" }</button>
                    <button type="button" class="chip" onclick={discard}><IconView icon={Icon::Trash} />{ "Discard" }</button>
                </div>
            },
        ),
    };
    let open_sender = {
        let (on_sender, sender) = (props.on_sender.clone(), m.sender);
        Callback::from(move |_: MouseEvent| on_sender.emit(sender))
    };
    let shown_name = props
        .display_name
        .clone()
        .unwrap_or_else(|| m.sender_name.clone().into());
    let can_act = m.seq.is_some() && !m.deleted && editing.is_none();
    let can_change = props.mine && can_act;
    let time_title = full_time(m.ts, props.now);
    let body = if let Some(text) = &*editing {
        html! {
            <div class="edit-box">
                <textarea ref={editor_ref} class="edit-input" aria-label="Edit message"
                    rows={text.lines().count().clamp(1, 10).to_string()}
                    value={text.clone()} oninput={edit_input} onkeydown={edit_keys} />
                <div class="edit-actions">
                    <span class="hint">{ "Enter to save · Esc to cancel" }</span>
                    <button type="button" class="button small" onclick={cancel_edit}>{ "Cancel" }</button>
                    <button type="button" class="button small primary" onclick={save_click}>{ "Save" }</button>
                </div>
            </div>
        }
    } else if m.deleted {
        html! { <p class="body deleted">{ "This message was deleted." }</p> }
    } else {
        html! {
            <MessageText text={m.body.clone()} mentions={mention_names} mention_room={m.mention_room}
                my_name={props.my_name.clone()}>
                if m.edited { <span class="edited" title="Edited">{ " (edited)" }</span> }
            </MessageText>
        }
    };

    html! {
        <li class={classes!(
            "message",
            props.header.then_some("group-start"),
            props.mine.then_some("mine"),
            state_class,
            (*confirm_delete).then_some("confirming"),
            props.highlight.then_some("highlight"),
            mentions_me.then_some("mentions-me"),
            (*picking).then_some("picking"),
        )} data-seq={m.seq.map(|s| s.to_string())}>
            <div class="gutter">
                if props.header {
                    <button type="button" class="avatar-button" tabindex="-1" aria-hidden="true"
                        onclick={open_sender.clone()}>
                        <Avatar name={shown_name.clone()} />
                    </button>
                } else {
                    <time class="hover-time" title={time_title.clone()}>{ time_of_day(m.ts) }</time>
                }
            </div>
            <div class="message-main">
                if props.header {
                    <div class="message-meta">
                        <button type="button" class="sender sender-button"
                            title={format!("@{}", m.sender_name)} onclick={open_sender}>
                            <bdi>{ shown_name }</bdi>
                        </button>
                        if props.display_name.is_some() {
                            <span class="sender-username">{ "@" }<bdi>{ m.sender_name.clone() }</bdi></span>
                        }
                        <time class="time" title={time_title}>{ time_of_day(m.ts) }</time>
                    </div>
                }
                { quote.unwrap_or_default() }
                { body }
                <AttachmentList message={m.clone()} />
                if !m.deleted {
                    <Reactions reactions={m.reactions.clone()} me={props.me} names={props.names.clone()}
                        ontoggle={toggle} onadd={open_picker.clone()} />
                }
                { status }
            </div>
            if *picking {
                <EmojiPicker onpick={pick} onclose={close_picker} />
            }
            if can_act {
                <div class="message-actions">
                    if *confirm_delete {
                        <span class="confirm-text">{ "Delete this message?" }</span>
                        <button type="button" class="button small danger" onclick={do_delete}>{ "Delete" }</button>
                        <button type="button" class="button small" onclick={cancel_delete}>{ "Cancel" }</button>
                    } else {
                        { for QUICK.iter().map(|emoji| {
                            let (react, emoji) = (react.clone(), (*emoji).to_owned());
                            let label = format!("React with {emoji}");
                            let shown = emoji.clone();
                            html! {
                                <button type="button" class="icon-button small quick-reaction" title={label.clone()}
                                    aria-label={label} data-emoji={emoji.clone()}
                                    onclick={Callback::from(move |_: MouseEvent| react.emit(emoji.clone()))}>
                                    { shown }
                                </button>
                            }
                        }) }
                        <button type="button" class="icon-button small" title="Add reaction" aria-label="Add reaction"
                            onclick={Callback::from(move |_: MouseEvent| open_picker.emit(()))}>
                            <IconView icon={Icon::Smile} />
                        </button>
                        <button type="button" class="icon-button small" title="Reply" aria-label="Reply"
                            onclick={reply}>
                            <IconView icon={Icon::Reply} />
                        </button>
                        if can_change {
                            <span class="actions-divider" aria-hidden="true"></span>
                            <button type="button" class="icon-button small" title="Edit" aria-label="Edit message"
                                onclick={start_edit}>
                                <IconView icon={Icon::Edit} />
                            </button>
                            <button type="button" class="icon-button small" title="Delete" aria-label="Delete message"
                                onclick={ask_delete}>
                                <IconView icon={Icon::Trash} />
                            </button>
                        }
                    }
                </div>
            }
        </li>
    }
}
