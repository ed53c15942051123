//! The root: owns the state, subscribes to backend events, runs the effects that follow the
//! state (load rooms after login, load a room when it opens, mark it read, tell the backend
//! which room is in view) and picks the screen.

use super::auth_screen::AuthScreen;
use super::cache_upgrade::CacheUpgrade;
use super::main_screen::MainScreen;
use super::server_screen::ServerScreen;
use super::toasts::Toasts;
use crate::effects::{self, Dispatcher};
use crate::format::now_ms;
use crate::ipc;
use crate::state::{Action, AppContext, AppState, Screen};
use protocol::ipc::{AppEvent, ConnectionState};
use wasm_bindgen::JsCast;
use yew::platform::spawn_local;
use yew::prelude::*;

fn on_event(d: &Dispatcher, event: AppEvent) {
    match event {
        AppEvent::Connection { state } => {
            let online = state == ConnectionState::Online;
            d.dispatch(Action::Connection {
                state,
                now_ms: now_ms(),
            });
            if online {
                effects::load_rooms(d);
            }
        }
        AppEvent::Message { message } => d.dispatch(Action::Message(message)),
        AppEvent::RoomsChanged => effects::load_rooms(d),
        AppEvent::Presence {
            user,
            online,
            last_seen,
        } => d.dispatch(Action::Presence {
            user,
            online,
            last_seen,
        }),
        AppEvent::Typing {
            room,
            user,
            username,
            ttl_ms,
        } => d.dispatch(Action::Typing {
            room,
            user,
            username,
            until_ms: now_ms() + i64::try_from(ttl_ms).unwrap_or(10_000),
        }),
        AppEvent::SessionEnded { reason } => d.dispatch(Action::LoggedOut {
            reason: Some(reason),
        }),
        AppEvent::Limits { limits } => d.dispatch(Action::Limits(limits)),
        AppEvent::UserUpdated { user, display_name } => {
            d.dispatch(Action::UserUpdated { user, display_name })
        }
        // The server's store lost data and the backend dropped its cache. The reducer forgets
        // what was loaded and bumps `history_generation`, which reloads the open room's newest
        // page and members (effects below). The room list is not asked for now: the backend's
        // is empty until the next `welcome`, which re-syncs it and reports `rooms_changed`.
        AppEvent::HistoryReset => d.dispatch(Action::HistoryReset),
        AppEvent::RemovedFromRoom {
            room,
            room_name,
            by_name,
            banned,
        } => {
            d.dispatch(Action::Removed(crate::state::Removal {
                room,
                room_name,
                by_name,
                banned,
            }));
            effects::load_rooms(d);
        }
        AppEvent::UploadProgress {
            client_id,
            sent,
            total,
            ..
        } => d.dispatch(Action::UploadProgress {
            client_id,
            sent,
            total,
        }),
        AppEvent::UpdateReady { update } => d.dispatch(Action::UpdateReady(update)),
        AppEvent::CacheUpgrade { percent } => d.dispatch(Action::CacheUpgrade(percent)),
    }
}

/// Focuses the room search box (Ctrl+K / Cmd+K).
fn focus_search(d: &Dispatcher) {
    d.dispatch(Action::SetSidebar(true));
    if let Some(input) = gloo::utils::document()
        .get_element_by_id("room-search")
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = input.focus();
    }
}

#[function_component]
pub fn App() -> Html {
    let state = use_reducer(AppState::default);
    // Set when the backend cannot be reached at all (no Tauri, or `snapshot` failed).
    let fatal = use_state(|| None::<String>);
    let attempt = use_state(|| 0u32);

    // Once: first snapshot (again on "Try again"), event subscription, window listeners.
    {
        let d = state.dispatcher();
        let fatal = fatal.clone();
        use_effect_with(*attempt, move |_| {
            let d2 = d.clone();
            spawn_local(async move {
                match ipc::snapshot().await {
                    Ok(snap) => {
                        fatal.set(None);
                        d2.dispatch(Action::Snapshot(snap));
                    }
                    Err(e) => fatal.set(Some(e.user_message())),
                }
            });
            let events = {
                let d = d.clone();
                let d_err = d.clone();
                ipc::listen_events(
                    move |ev| on_event(&d, ev),
                    move |e| effects::toast(&d_err, &e),
                )
            };
            let window = gloo::utils::window();
            let focus = {
                let d = d.clone();
                gloo::events::EventListener::new(&window, "focus", move |_| {
                    d.dispatch(Action::WindowFocus(true))
                })
            };
            let blur = {
                let d = d.clone();
                gloo::events::EventListener::new(&window, "blur", move |_| {
                    d.dispatch(Action::WindowFocus(false))
                })
            };
            d.dispatch(Action::WindowFocus(
                gloo::utils::document().has_focus().unwrap_or(true),
            ));
            let keys = {
                let d = d.clone();
                gloo::events::EventListener::new_with_options(
                    &gloo::utils::document(),
                    "keydown",
                    gloo::events::EventListenerOptions::enable_prevent_default(),
                    move |e| {
                        let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() else {
                            return;
                        };
                        if (e.ctrl_key() || e.meta_key()) && e.key().eq_ignore_ascii_case("k") {
                            e.prevent_default();
                            focus_search(&d);
                        }
                    },
                )
            };
            move || drop((events, focus, blur, keys))
        });
    }

    // A typing indicator expires: one timer, for the first to expire, and none while nobody
    // types (a timer every second woke the web view for nothing; idle CPU, issue 16).
    {
        let d = state.dispatcher();
        let next = state.next_expiry_ms();
        use_effect_with(next, move |next| {
            let timer = next.map(|at| {
                let wait = u32::try_from((at - now_ms()).clamp(0, 1 << 30)).unwrap_or(0);
                gloo::timers::callback::Timeout::new(wait + 20, move || {
                    d.dispatch(Action::Tick { now_ms: now_ms() })
                })
            });
            move || drop(timer)
        });
    }

    // Logged in: load the rooms.
    {
        let d = state.dispatcher();
        let me = state.my_id().filter(|_| state.screen == Screen::Main);
        use_effect_with(me, move |me| {
            if me.is_some() {
                effects::load_rooms(&d);
            }
        });
    }

    // A room opens: tell the backend which room is in view.
    {
        let current = state.current.filter(|_| state.screen == Screen::Main);
        use_effect_with(current, move |current| {
            let current = *current;
            spawn_local(async move {
                let _ = ipc::set_focus(current).await;
            });
        });
    }

    // A room opens, the connection comes back, or the history was reset: load its newest page
    // (merged with what is loaded, so nothing flickers).
    {
        let d = state.dispatcher();
        let current = state.current.filter(|_| state.screen == Screen::Main);
        let online = state.connection == ConnectionState::Online;
        let generation = state.history_generation;
        use_effect_with((current, online, generation), move |(current, _, _)| {
            if let Some(room) = *current {
                effects::load_latest(&d, room);
            }
        });
    }

    // Members panel open: load the members of the room in view.
    {
        let d = state.dispatcher();
        // The member count is part of the key so joins and leaves reload the list; being
        // online too, so presence is fresh after a reconnect.
        let online = state.presence_known();
        let key = state
            .current_room()
            .filter(|view| view.room.kind == protocol::rest::RoomKind::Group)
            .filter(|_| state.show_members && state.screen == Screen::Main)
            .map(|view| {
                (
                    view.room.id,
                    view.room.member_count,
                    online,
                    state.history_generation,
                )
            });
        use_effect_with(key, move |key| {
            if let Some((room, _, _, _)) = *key {
                effects::load_members(&d, room);
            }
        });
    }

    // The room is in view and the window has focus: move the read marker to the newest message.
    {
        let d = state.dispatcher();
        let target = state.current_room().and_then(|view| {
            let newest = state.timeline(view.room.id)?.newest_seq()?;
            (state.window_focused && newest > view.room.read_seq).then_some((view.room.id, newest))
        });
        use_effect_with(target, move |target| {
            if let Some((room, seq)) = *target {
                d.dispatch(Action::MarkedRead { room, seq });
                let d = d.clone();
                spawn_local(async move {
                    if let Err(e) = ipc::mark_read(room, seq).await {
                        effects::toast(&d, &e);
                    }
                });
            }
        });
    }

    let screen = if let Some(message) = (*fatal).clone() {
        let retry = {
            let attempt = attempt.clone();
            Callback::from(move |_: MouseEvent| attempt.set(*attempt + 1))
        };
        html! {
            <main class="center-screen">
                <div class="card">
                    <h1>{ "Can't start" }</h1>
                    <p class="error-text" role="alert">{ message }</p>
                    <button class="button primary" onclick={retry}>{ "Try again" }</button>
                </div>
            </main>
        }
    } else {
        match state.screen {
            Screen::Loading => match state.cache_upgrade {
                Some(percent) => html! { <CacheUpgrade {percent} /> },
                None => html! {
                    <main class="center-screen" aria-busy="true">
                        <div class="spinner large" role="status" aria-label="Loading"></div>
                    </main>
                },
            },
            Screen::Server => html! { <ServerScreen /> },
            Screen::Auth => html! { <AuthScreen /> },
            Screen::Main => html! { <MainScreen /> },
        }
    };

    html! {
        <ContextProvider<AppContext> context={state}>
            { screen }
            <Toasts />
        </ContextProvider<AppContext>>
    }
}
