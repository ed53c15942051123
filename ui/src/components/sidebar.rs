//! The left column: message search, the rooms and direct messages, buttons to create, browse
//! and start conversations, and the signed-in user with settings.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::room_item::RoomItem;
use super::search_results::SearchResults;
use crate::format::now_ms;
use crate::ipc;
use crate::state::{Action, AppContext, Dialog};
use protocol::ipc::{ConnectionState, SearchHit};
use protocol::rest::RoomKind;
use protocol::RoomId;
use std::rc::Rc;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

/// Wait this long after the last keystroke before searching.
const SEARCH_DEBOUNCE_MS: u32 = 250;

/// Search results: for which query, and what came back.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Idle,
    Searching,
    Hits(Rc<Vec<SearchHit>>),
    Failed(String),
}

#[function_component]
pub fn Sidebar() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let query = use_state(String::new);
    let found = use_state(|| Found::Idle);
    let timer = use_mut_ref(|| None::<gloo::timers::callback::Timeout>);
    // Results of an older query must not overwrite a newer one.
    let generation = use_mut_ref(|| 0u64);

    let oninput = {
        let (query, found, timer, generation) = (
            query.clone(),
            found.clone(),
            timer.clone(),
            generation.clone(),
        );
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            query.set(value.clone());
            *generation.borrow_mut() += 1;
            let mine = *generation.borrow();
            let term = value.trim().to_string();
            if term.is_empty() {
                timer.borrow_mut().take();
                found.set(Found::Idle);
                return;
            }
            found.set(Found::Searching);
            let (found, generation) = (found.clone(), generation.clone());
            *timer.borrow_mut() = Some(gloo::timers::callback::Timeout::new(
                SEARCH_DEBOUNCE_MS,
                move || {
                    spawn_local(async move {
                        let result = ipc::search(term).await;
                        if *generation.borrow() != mine {
                            return;
                        }
                        found.set(match result {
                            Ok(hits) => Found::Hits(Rc::new(hits)),
                            Err(e) => Found::Failed(e.user_message()),
                        });
                    });
                },
            ));
        })
    };
    let clear = {
        let (query, found, timer, generation) = (
            query.clone(),
            found.clone(),
            timer.clone(),
            generation.clone(),
        );
        move || {
            *generation.borrow_mut() += 1;
            timer.borrow_mut().take();
            query.set(String::new());
            found.set(Found::Idle);
        }
    };
    let onkeydown = {
        let clear = clear.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                clear();
            }
        })
    };
    let on_select = {
        let d = state.dispatcher();
        Callback::from(move |room: RoomId| d.dispatch(Action::Select(Some(room))))
    };
    let on_hit = {
        let d = state.dispatcher();
        Callback::from(move |(room, seq): (RoomId, u64)| {
            clear();
            d.dispatch(Action::JumpTo { room, seq });
        })
    };
    let open = |dialog: Dialog| {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(dialog)))
    };

    let me = state.my_id();
    let now = now_ms();
    let render_rooms = |kind: RoomKind| -> Html {
        state
            .rooms
            .iter()
            .filter(|r| r.room.kind == kind)
            .map(|view| {
                html! {
                    <RoomItem key={view.room.id.0} view={view.clone()}
                        active={state.current == Some(view.room.id)}
                        peer_online={state.peer_online(view)} me={me} now={now}
                        onselect={on_select.clone()} />
                }
            })
            .collect()
    };
    let groups = render_rooms(RoomKind::Group);
    let directs = render_rooms(RoomKind::Direct);
    let no_groups = !state.rooms.iter().any(|r| r.room.kind == RoomKind::Group);
    let no_directs = !state.rooms.iter().any(|r| r.room.kind == RoomKind::Direct);

    let body = match &*found {
        Found::Idle => html! {
            <nav class="room-list" aria-label="Conversations">
                <section class="room-section">
                    <header class="section-header">
                        <h2>{ "Rooms" }</h2>
                        <span class="section-actions">
                            <button class="icon-button small" type="button" title="Browse public rooms"
                                aria-label="Browse public rooms" onclick={open(Dialog::BrowseRooms)}>
                                <IconView icon={Icon::Compass} />
                            </button>
                            <button class="icon-button small" type="button" title="Create a room"
                                aria-label="Create a room" onclick={open(Dialog::CreateRoom)}>
                                <IconView icon={Icon::Plus} />
                            </button>
                        </span>
                    </header>
                    if !state.rooms_loaded {
                        <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading rooms…" }</div>
                    }
                    <ul role="list">{ groups }</ul>
                    if no_groups && state.rooms_loaded {
                        <div class="empty-hint">
                            <p>{ "You're not in any rooms yet." }</p>
                            <button class="link-button" type="button" onclick={open(Dialog::BrowseRooms)}>
                                { "Browse public rooms" }
                            </button>
                            { " or " }
                            <button class="link-button" type="button" onclick={open(Dialog::CreateRoom)}>
                                { "create one" }
                            </button>
                        </div>
                    }
                </section>
                <section class="room-section">
                    <header class="section-header">
                        <h2>{ "Direct messages" }</h2>
                        <span class="section-actions">
                            <button class="icon-button small" type="button" title="New direct message"
                                aria-label="New direct message" onclick={open(Dialog::NewDm)}>
                                <IconView icon={Icon::Plus} />
                            </button>
                        </span>
                    </header>
                    <ul role="list">{ directs }</ul>
                    if no_directs && state.rooms_loaded {
                        <div class="empty-hint">
                            <button class="link-button" type="button" onclick={open(Dialog::NewDm)}>
                                { "Start a conversation" }
                            </button>
                        </div>
                    }
                </section>
            </nav>
        },
        Found::Searching => html! {
            <div class="search-status" role="status"><span class="spinner small"></span>{ "Searching…" }</div>
        },
        Found::Failed(text) => {
            html! { <div class="search-status error-text" role="alert">{ text.clone() }</div> }
        }
        Found::Hits(hits) => html! {
            <SearchResults hits={hits.clone()} query={(*query).clone()} now={now} onopen={on_hit} />
        },
    };

    let (status_class, status_text) = match &state.connection {
        ConnectionState::Online => ("online", "Online"),
        ConnectionState::Connecting => ("connecting", "Connecting…"),
        ConnectionState::Reconnecting { .. } => ("connecting", "Reconnecting…"),
        ConnectionState::Offline => ("offline", "Offline"),
    };
    let username = state
        .user
        .as_ref()
        .map(|u| u.username.clone())
        .unwrap_or_default();

    html! {
        <aside class="sidebar" aria-label="Rooms and search">
            <div class="sidebar-top">
                <div class="search-box">
                    <IconView icon={Icon::Search} />
                    <input id="room-search" type="search" placeholder="Search messages"
                        aria-label="Search messages" autocomplete="off" spellcheck="false"
                        value={(*query).clone()} oninput={oninput} onkeydown={onkeydown} />
                    <kbd class="shortcut" aria-hidden="true">{ "Ctrl K" }</kbd>
                </div>
            </div>
            { body }
            <footer class="sidebar-footer">
                <Avatar name={username.clone()} />
                <div class="me">
                    <span class="me-name">{ username }</span>
                    <span class={classes!("me-status", status_class)}>{ status_text }</span>
                </div>
                <button class="icon-button" type="button" title="Settings" aria-label="Settings"
                    onclick={open(Dialog::Settings)}>
                    <IconView icon={Icon::Sliders} />
                </button>
            </footer>
        </aside>
    }
}
