//! The left column: message search, the rooms and direct messages, buttons to create, browse
//! and start conversations, and the signed-in user with settings.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::room_item::RoomItem;
use super::search_results::SearchResults;
use crate::format::now_ms;
use crate::ipc;
use crate::search::{use_search, Found};
use crate::state::{Action, AppContext, Dialog};
use protocol::ipc::ConnectionState;
use protocol::rest::RoomKind;
use protocol::RoomId;
use yew::prelude::*;

/// Wait this long after the last keystroke before searching.
const SEARCH_DEBOUNCE_MS: u32 = 250;

#[function_component]
pub fn Sidebar() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let search = use_search(SEARCH_DEBOUNCE_MS, ipc::search);
    let onkeydown = {
        let clear = search.clear.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                clear.emit(());
            }
        })
    };
    let on_select = {
        let d = state.dispatcher();
        Callback::from(move |room: RoomId| d.dispatch(Action::Select(Some(room))))
    };
    let on_hit = {
        let d = state.dispatcher();
        let clear = search.clear.clone();
        Callback::from(move |(room, seq): (RoomId, u64)| {
            clear.emit(());
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
                        peer_status={state.peer_status(view)} me={me} now={now}
                        onselect={on_select.clone()} />
                }
            })
            .collect()
    };
    let groups = render_rooms(RoomKind::Group);
    let directs = render_rooms(RoomKind::Direct);
    let no_groups = !state.rooms.iter().any(|r| r.room.kind == RoomKind::Group);
    let no_directs = !state.rooms.iter().any(|r| r.room.kind == RoomKind::Direct);

    let body = match &search.found {
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
        Found::Results(hits) => html! {
            <SearchResults hits={hits.clone()} query={search.query.clone()} now={now} onopen={on_hit} />
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
                        value={search.query.clone()} oninput={search.oninput.clone()} onkeydown={onkeydown} />
                    <kbd class="shortcut" aria-hidden="true">{ "Ctrl K" }</kbd>
                </div>
            </div>
            { body }
            <footer class="sidebar-footer">
                <Avatar name={username.clone()} />
                <div class="me">
                    <span class="me-name"><bdi>{ username }</bdi></span>
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
