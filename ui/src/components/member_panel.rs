//! The members of the open room with presence and the owner marked; a click on someone
//! opens their card (names, presence, "Message"). Beside each: block, and ban for the room's
//! owner (with the banned users listed below the members).

use super::avatar::Avatar;
use super::banned_list::BannedList;
use super::icon::{Icon, IconView};
use super::member_actions::MemberActions;
use crate::format::{now_ms, presence_text};
use crate::state::{Action, AppContext, Dialog};
use yew::prelude::*;

#[function_component]
pub fn MemberPanel() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let Some(room) = state.current else {
        return Html::default();
    };
    let close = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::ToggleMembers))
    };
    let me = state.my_id();
    let now = now_ms();
    let i_own = state
        .current_room()
        .is_some_and(|r| r.room.role == Some(protocol::event::Role::Owner));
    // Bumped with every member list, so the banned list reloads after a ban.
    let generation = state
        .members
        .get(&room)
        .map_or(0, |m| std::rc::Rc::as_ptr(m) as usize);
    let list = match state.members.get(&room) {
        None => {
            html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading…" }</div> }
        }
        Some(members) => {
            let mut members: Vec<_> = members
                .iter()
                .map(|m| {
                    let presence = state.presence.get(&m.user.id);
                    let status = state.status(m.user.id, m.user.online);
                    let last_seen = presence.and_then(|p| p.last_seen).or(m.user.last_seen);
                    (m, status, last_seen)
                })
                .collect();
            members.sort_by(|a, b| {
                b.1.is_online().cmp(&a.1.is_online()).then_with(|| {
                    a.0.user
                        .username
                        .to_lowercase()
                        .cmp(&b.0.user.username.to_lowercase())
                })
            });
            let online_count = members.iter().filter(|m| m.1.is_online()).count();
            let title = if state.presence_known() {
                format!("{} online · {} total", online_count, members.len())
            } else {
                format!("{} members", members.len())
            };
            html! {<>
                <p class="section-title">{ title }</p>
                <ul class="member-list" role="list">
                { for members.into_iter().map(|(m, status, last_seen)| {
                    let user = m.user.id;
                    let is_me = Some(user) == me;
                    let owner = m.owner;
                    let onclick = {
                        let d = state.dispatcher();
                        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::UserCard(user))))
                    };
                    let name = m.user.username.clone();
                    // The display name, then the username (never the display name alone).
                    let shown = m.user.display_name.clone().unwrap_or_else(|| name.clone());
                    let label = if is_me { format!("{} (you)", crate::format::isolate(&name)) } else { format!("Profile of {}", crate::format::isolate(&name)) };
                    html! {
                        <li key={user.0} class="member-row">
                            <button type="button" class="member" disabled={is_me} onclick={onclick}
                                title={label.clone()} aria-label={label}>
                                <Avatar name={shown.clone()} status={Some(status)} class="small" />
                                <span class="member-text">
                                    // The name shrinks (ellipsis); "(you)" always shows.
                                    <span class="member-name">
                                        <span class="member-name-text"><bdi>{ shown.clone() }</bdi>
                                            if shown != name { <span class="muted member-username">{ " @" }<bdi>{ name }</bdi></span> }
                                        </span>
                                        if is_me { <span class="member-you">{ "(you)" }</span> }
                                    </span>
                                    <span class="member-status">
                                        <span class="member-presence">{ presence_text(status, last_seen, now) }</span>
                                        if owner { <span class="owner-badge">{ "Owner" }</span> }
                                    </span>
                                </span>
                            </button>
                            if !is_me {
                                <MemberActions {user} name={m.user.username.clone()}
                                    ban_from={(i_own && !owner).then_some(room)} />
                            }
                        </li>
                    }
                }) }
                </ul>
                if i_own { <BannedList {room} {generation} /> }
            </>}
        }
    };
    html! {
        <aside class="member-panel" aria-label="Members">
            <header class="panel-header">
                <h2>{ "Members" }</h2>
                <button type="button" class="icon-button" aria-label="Close members" title="Close" onclick={close}>
                    <IconView icon={Icon::Close} />
                </button>
            </header>
            <div class="panel-body">{ list }</div>
        </aside>
    }
}
