//! The open room: header (name, members, leave), the message list, who is typing, and the
//! composer. Without an open room it shows a short welcome.

use super::avatar::Avatar;
use super::composer::Composer;
use super::icon::{Icon, IconView};
use super::member_actions::MemberActions;
use super::message_list::MessageList;
use super::removed_notice::RemovedNotice;
use super::typing_indicator::TypingIndicator;
use crate::effects;
use crate::format::{now_ms, presence_text};
use crate::mentions::Candidate;
use crate::state::{Action, AppContext, Dialog, Status};
use protocol::ipc::MessageView;
use protocol::rest::{RoomKind, Visibility};
use protocol::{RoomId, UserId};
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;

#[function_component]
pub fn ChatView() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let d = state.dispatcher();
    // The message being answered, for the room it belongs to.
    let replying = use_state(|| None::<MessageView>);
    // Members for `@` suggestions and names: loaded when a room opens and when its member
    // count changes.
    {
        let d = d.clone();
        let key = state
            .current_room()
            .map(|view| (view.room.id, view.room.member_count));
        use_effect_with(key, move |key| {
            if let Some((room, _)) = *key {
                effects::load_members(&d, room);
            }
        });
    }
    let open_sidebar = {
        let d = d.clone();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::SetSidebar(true)))
    };
    let Some(view) = state.current_room().cloned() else {
        if let Some(removal) = state.removal.clone() {
            return html! { <RemovedNotice {removal} /> };
        }
        let open = |dialog: Dialog| {
            let d = d.clone();
            Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(dialog)))
        };
        return html! {
            <section class="chat empty-chat">
                <header class="chat-header">
                    <button class="icon-button menu-button" type="button" aria-label="Show rooms" onclick={open_sidebar}>
                        <IconView icon={Icon::Menu} />
                    </button>
                </header>
                <div class="welcome">
                    <span class="brand-mark large"><IconView icon={Icon::Chat} /></span>
                    <h1>{ "Pick a conversation" }</h1>
                    <p class="muted">{ "Choose a room on the left, or start something new." }</p>
                    <div class="welcome-actions">
                        <button class="button" type="button" onclick={open(Dialog::BrowseRooms)}>
                            <IconView icon={Icon::Compass} />{ "Browse rooms" }
                        </button>
                        <button class="button" type="button" onclick={open(Dialog::NewDm)}>
                            <IconView icon={Icon::Chat} />{ "New message" }
                        </button>
                    </div>
                </div>
            </section>
        };
    };
    let room = view.room.clone();
    let id = room.id;
    let direct = room.kind == RoomKind::Direct;
    let me = state.my_id();

    let subtitle = if direct {
        let status = state.peer_status(&view).unwrap_or(Status::Unknown);
        let last_seen = room
            .peer
            .and_then(|p| state.presence.get(&p))
            .and_then(|p| p.last_seen);
        presence_text(status, last_seen, now_ms())
    } else {
        let n = room.member_count;
        let kind = if room.visibility == Visibility::Private {
            "Private room"
        } else {
            "Public room"
        };
        format!("{kind} · {n} member{}", if n == 1 { "" } else { "s" })
    };
    let toggle_members = {
        let d = d.clone();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::ToggleMembers))
    };
    let leave = {
        let d = d.clone();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::LeaveRoom(id))))
    };
    let settings = {
        let d = d.clone();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::RoomSettings(id))))
    };
    // A direct room is named after the peer: their display name first, when they set one.
    let title = match (&room.peer_display_name, direct) {
        (Some(shown), true) => format!("{shown} ({})", room.name),
        _ => room.name.clone(),
    };

    let timeline = state.timeline(id).cloned().unwrap_or_default();
    let on_load_older = {
        let d = d.clone();
        Callback::from(move |before: u64| effects::load_older(&d, id, before))
    };
    let on_retry = {
        let d = d.clone();
        Callback::from(move |m: MessageView| effects::retry(&d, &m))
    };
    let on_discard = {
        let d = d.clone();
        Callback::from(move |m: MessageView| effects::discard(&d, &m))
    };
    let on_edit = {
        let d = d.clone();
        Callback::from(move |(seq, body): (u64, String)| effects::edit(&d, id, seq, body))
    };
    let on_delete = {
        let d = d.clone();
        Callback::from(move |seq: u64| effects::delete(&d, id, seq))
    };
    let on_reload = {
        let d = d.clone();
        Callback::from(move |()| effects::load_latest(&d, id))
    };
    let on_jumped = {
        let d = d.clone();
        Callback::from(move |()| d.dispatch(Action::Jumped))
    };
    let on_trim = {
        let d = d.clone();
        Callback::from(move |()| d.dispatch(Action::Trim(id)))
    };
    let on_send = {
        let (d, replying) = (d.clone(), replying.clone());
        Callback::from(
            move |(msg, give_back): (effects::Outgoing, Callback<String>)| {
                replying.set(None);
                effects::send(&d, id, msg, give_back)
            },
        )
    };
    let on_reply = {
        let replying = replying.clone();
        Callback::from(move |m: MessageView| replying.set(Some(m)))
    };
    let on_cancel_reply = {
        let replying = replying.clone();
        Callback::from(move |()| replying.set(None))
    };
    let on_react = {
        let d = d.clone();
        Callback::from(move |(seq, emoji, remove): (u64, String, bool)| {
            effects::react(&d, id, seq, emoji, remove)
        })
    };
    let on_jump = {
        let d = d.clone();
        Callback::from(move |seq: u64| d.dispatch(Action::JumpTo { room: id, seq }))
    };
    let members = state.members.get(&id).cloned().unwrap_or_default();
    let names = Rc::new(names_in(
        id,
        &members,
        &timeline.messages,
        state.user.as_ref(),
    ));
    let candidates = Rc::new(candidates_in(&members, &names));
    let display_names: Rc<HashMap<UserId, String>> = Rc::new(
        members
            .iter()
            .filter_map(|m| Some((m.user.id, m.user.display_name.clone()?)))
            .collect(),
    );
    let on_sender = {
        let d = d.clone();
        Callback::from(move |user: UserId| d.dispatch(Action::Open(Dialog::UserCard(user))))
    };
    let owner = room.role == Some(protocol::event::Role::Owner);
    let reply_to = (*replying)
        .clone()
        .filter(|m| m.room == id && m.seq.is_some());
    let my_name: Option<AttrValue> = state.user.as_ref().map(|u| u.username.clone().into());
    let avatar = if direct {
        html! { <Avatar name={room.name.clone()} status={state.peer_status(&view)} /> }
    } else {
        let icon = if room.visibility == Visibility::Private {
            Icon::Lock
        } else {
            Icon::Hash
        };
        html! { <span class="room-glyph large" aria-hidden="true"><IconView {icon} /></span> }
    };
    let placeholder = if direct {
        format!("Message {}", room.name)
    } else {
        format!("Message #{}", room.name)
    };

    html! {
        <section class="chat" aria-label={room.name.clone()}>
            <header class="chat-header">
                <button class="icon-button menu-button" type="button" aria-label="Show rooms" onclick={open_sidebar}>
                    <IconView icon={Icon::Menu} />
                </button>
                { avatar }
                <div class="chat-title">
                    <h1><bdi>{ title }</bdi></h1>
                    <span class="chat-subtitle">
                        { subtitle }
                        if !room.topic.is_empty() {
                            <span class="chat-topic" title={room.topic.clone()}>{ " · " }<bdi>{ room.topic.clone() }</bdi></span>
                        }
                    </span>
                </div>
                <div class="header-actions">
                    <button id="room-settings" type="button" class="icon-button" title="Room settings"
                        aria-label="Room settings" onclick={settings}>
                        <IconView icon={Icon::Sliders} />
                    </button>
                    if !direct {
                        <button type="button" class={classes!("icon-button", state.show_members.then_some("pressed"))}
                            aria-pressed={state.show_members.to_string()} title="Members" aria-label="Show members"
                            onclick={toggle_members}>
                            <IconView icon={Icon::Users} />
                        </button>
                        <button type="button" class="icon-button" title="Leave room" aria-label="Leave room"
                            onclick={leave}>
                            <IconView icon={Icon::LogOut} />
                        </button>
                    } else if let Some(peer) = room.peer {
                        <MemberActions user={peer} name={room.name.clone()} />
                    }
                </div>
            </header>
            <MessageList key={id.0} room_name={room.name.clone()} direct={direct} timeline={timeline}
                me={me} divider_after={state.divider_after} jump_to={state.jump_to} {on_jumped} {on_trim} {on_reload}
                {on_load_older} {on_retry} {on_discard} {on_edit} {on_delete}
                my_name={my_name} names={names} {on_reply} {on_react} {on_jump} {display_names} {on_sender} />
            <TypingIndicator names={state.typing_names(id)} />
            <Composer key={id.0} room={id} placeholder={placeholder} onsend={on_send}
                max_bytes={state.limits.max_message_bytes} replying={reply_to}
                oncancelreply={on_cancel_reply} candidates={candidates} me={me} owner={owner} />
        </section>
    }
}

/// Names of the users a room's messages may show: members, senders of loaded messages, me.
fn names_in(
    room: RoomId,
    members: &[protocol::ipc::MemberView],
    messages: &[MessageView],
    me: Option<&protocol::rest::User>,
) -> HashMap<UserId, String> {
    let mut names: HashMap<UserId, String> = messages
        .iter()
        .filter(|m| m.room == room)
        .map(|m| (m.sender, m.sender_name.clone()))
        .collect();
    for m in members {
        names.insert(m.user.id, m.user.username.clone());
    }
    if let Some(me) = me {
        names.insert(me.id, me.username.clone());
    }
    names
}

/// Who `@` can name: members first, then others seen in the room.
fn candidates_in(
    members: &[protocol::ipc::MemberView],
    names: &HashMap<UserId, String>,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = members
        .iter()
        .map(|m| Candidate {
            id: m.user.id,
            username: m.user.username.clone(),
            display_name: m.user.display_name.clone(),
            member: true,
        })
        .collect();
    for (id, username) in names {
        if !out.iter().any(|c| c.id == *id) {
            out.push(Candidate {
                id: *id,
                username: username.clone(),
                display_name: None,
                member: false,
            });
        }
    }
    out
}
