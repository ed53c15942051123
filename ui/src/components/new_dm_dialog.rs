//! Start a direct message: search people by name, pick one, and the conversation opens.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::format::{now_ms, presence_text};
use crate::ipc;
use crate::search::{use_search, Found};
use crate::state::AppContext;
use protocol::ipc::UserView;
use yew::prelude::*;

const DEBOUNCE_MS: u32 = 250;

#[derive(Properties, PartialEq)]
pub struct NewDmDialogProps {
    pub onclose: Callback<()>,
}

#[function_component]
pub fn NewDmDialog(props: &NewDmDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let search = use_search(DEBOUNCE_MS, ipc::search_users);
    let me = state.my_id();
    let now = now_ms();
    let body = match &search.found {
        Found::Idle => html! { <p class="muted empty-list">{ "Type a name to find someone." }</p> },
        Found::Searching => {
            html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Searching…" }</div> }
        }
        Found::Failed(text) => html! { <p class="error-text" role="alert">{ text.clone() }</p> },
        Found::Results(users) => {
            let users: Vec<&UserView> = users.iter().filter(|u| Some(u.id) != me).collect();
            if users.is_empty() {
                html! { <p class="muted empty-list">{ format!("Nobody called “{}”.", search.query.trim()) }</p> }
            } else {
                html! {
                    <ul class="pick-list" role="list">
                    { for users.into_iter().map(|u| {
                        let id = u.id;
                        let status = state.status(id, u.online);
                        let onclick = {
                            let d = state.dispatcher();
                            Callback::from(move |_: MouseEvent| effects::open_dm(&d, id))
                        };
                        html! {
                            <li key={id.0}>
                                <button type="button" class="pick-row pick-button" onclick={onclick}>
                                    <Avatar name={u.username.clone()} status={Some(status)} class="small" />
                                    <span class="pick-text">
                                        <span class="pick-name"><bdi>{ u.username.clone() }</bdi></span>
                                        <span class="muted">{ presence_text(status, u.last_seen, now) }</span>
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
                    autocomplete="off" spellcheck="false" value={search.query.clone()} oninput={search.oninput.clone()} />
            </div>
            { body }
        </Modal>
    }
}
