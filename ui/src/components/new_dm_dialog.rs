//! Start a direct message: search people by name, pick one, and the conversation opens.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::format::{now_ms, presence_text};
use crate::ipc;
use crate::state::AppContext;
use protocol::ipc::UserView;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

const DEBOUNCE_MS: u32 = 250;

#[derive(Properties, PartialEq)]
pub struct NewDmDialogProps {
    pub onclose: Callback<()>,
}

#[derive(Debug, Clone, PartialEq)]
enum Found {
    Idle,
    Searching,
    Users(Vec<UserView>),
    Failed(String),
}

#[function_component]
pub fn NewDmDialog(props: &NewDmDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let query = use_state(String::new);
    let found = use_state(|| Found::Idle);
    let timer = use_mut_ref(|| None::<gloo::timers::callback::Timeout>);
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
                DEBOUNCE_MS,
                move || {
                    spawn_local(async move {
                        let result = ipc::search_users(term).await;
                        if *generation.borrow() == mine {
                            found.set(match result {
                                Ok(users) => Found::Users(users),
                                Err(e) => Found::Failed(e.user_message()),
                            });
                        }
                    });
                },
            ));
        })
    };
    let me = state.my_id();
    let now = now_ms();
    let body = match &*found {
        Found::Idle => html! { <p class="muted empty-list">{ "Type a name to find someone." }</p> },
        Found::Searching => {
            html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Searching…" }</div> }
        }
        Found::Failed(text) => html! { <p class="error-text" role="alert">{ text.clone() }</p> },
        Found::Users(users) => {
            let users: Vec<&UserView> = users.iter().filter(|u| Some(u.id) != me).collect();
            if users.is_empty() {
                html! { <p class="muted empty-list">{ format!("Nobody called “{}”.", query.trim()) }</p> }
            } else {
                html! {
                    <ul class="pick-list" role="list">
                    { for users.into_iter().map(|u| {
                        let id = u.id;
                        let online = state.online(id, u.online);
                        let onclick = {
                            let d = state.dispatcher();
                            Callback::from(move |_: MouseEvent| effects::open_dm(&d, id))
                        };
                        html! {
                            <li key={id.0}>
                                <button type="button" class="pick-row pick-button" onclick={onclick}>
                                    <Avatar name={u.username.clone()} online={Some(online)} class="small" />
                                    <span class="pick-text">
                                        <span class="pick-name">{ u.username.clone() }</span>
                                        <span class="muted">{ presence_text(online, u.last_seen, now) }</span>
                                    </span>
                                    <IconView icon={Icon::Chat} class="trailing" />
                                </button>
                            </li>
                        }
                    }) }
                    </ul>
                }
            }
        }
    };
    html! {
        <Modal title="New direct message" onclose={props.onclose.clone()}>
            <div class="search-box in-dialog">
                <IconView icon={Icon::Search} />
                <input type="search" placeholder="Search people by username" aria-label="Search people"
                    autocomplete="off" spellcheck="false" value={(*query).clone()} oninput={oninput} />
            </div>
            { body }
        </Modal>
    }
}
