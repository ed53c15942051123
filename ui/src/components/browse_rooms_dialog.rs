//! Browse the server's public rooms, filter them by name, and join (or open) one.

use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::rest::Room;
use protocol::RoomId;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct BrowseRoomsDialogProps {
    pub onclose: Callback<()>,
}

#[derive(Debug, Clone, PartialEq)]
enum Load {
    Loading,
    Done(Vec<Room>),
    Failed(String),
}

#[function_component]
pub fn BrowseRoomsDialog(props: &BrowseRoomsDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let rooms = use_state(|| Load::Loading);
    let filter = use_state(String::new);
    let joining = use_state(|| None::<RoomId>);

    {
        let rooms = rooms.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                rooms.set(match ipc::public_rooms().await {
                    Ok(list) => Load::Done(list),
                    Err(e) => Load::Failed(e.user_message()),
                });
            });
        });
    }
    let oninput = {
        let filter = filter.clone();
        Callback::from(move |e: InputEvent| {
            filter.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let member_of = |id: RoomId| state.rooms.iter().any(|r| r.room.id == id);

    let body = match &*rooms {
        Load::Loading => {
            html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading rooms…" }</div> }
        }
        Load::Failed(text) => html! { <p class="error-text" role="alert">{ text.clone() }</p> },
        Load::Done(list) => {
            let needle = filter.trim().to_lowercase();
            let shown: Vec<&Room> = list
                .iter()
                .filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle))
                .collect();
            if shown.is_empty() {
                html! { <p class="muted empty-list">{ if list.is_empty() { "No public rooms yet." } else { "No rooms match." } }</p> }
            } else {
                html! {
                    <ul class="pick-list" role="list">
                    { for shown.into_iter().map(|r| {
                        let id = r.id;
                        let joined = member_of(id);
                        let busy = *joining == Some(id);
                        let onclick = {
                            let d = state.dispatcher();
                            let joining = joining.clone();
                            Callback::from(move |_: MouseEvent| {
                                if joined {
                                    d.dispatch(Action::CloseDialog);
                                    d.dispatch(Action::Select(Some(id)));
                                    return;
                                }
                                joining.set(Some(id));
                                let (d, joining) = (d.clone(), joining.clone());
                                spawn_local(async move {
                                    match ipc::join_room(id).await {
                                        Ok(room) => {
                                            d.dispatch(Action::CloseDialog);
                                            effects::load_rooms_then_open(&d, room.id);
                                        }
                                        Err(e) => {
                                            joining.set(None);
                                            effects::toast(&d, &e);
                                        }
                                    }
                                });
                            })
                        };
                        html! {
                            <li key={id.0} class="pick-row">
                                <span class="room-glyph" aria-hidden="true"><IconView icon={Icon::Hash} /></span>
                                <span class="pick-text">
                                    <span class="pick-name"><bdi>{ r.name.clone() }</bdi></span>
                                    <span class="muted">{ format!("{} member{}", r.member_count, if r.member_count == 1 { "" } else { "s" }) }</span>
                                </span>
                                <button type="button" class={classes!("button", "small", (!joined).then_some("primary"))}
                                    disabled={busy} onclick={onclick} aria-label={format!("{} {}", if joined { "Open" } else { "Join" }, r.name)}>
                                    if busy { <span class="spinner small"></span> }
                                    { if joined { "Open" } else { "Join" } }
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
        <Modal title="Browse public rooms" onclose={props.onclose.clone()} class="wide">
            <div class="search-box in-dialog">
                <IconView icon={Icon::Search} />
                <input type="search" placeholder="Filter by name" aria-label="Filter rooms by name"
                    value={(*filter).clone()} oninput={oninput} />
            </div>
            { body }
        </Modal>
    }
}
