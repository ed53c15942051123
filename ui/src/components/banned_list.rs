//! The users banned from a room, for its owner, each with "Unban" (shown under the members).

use crate::effects;
use crate::format::isolate;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::rest::UserRef;
use protocol::RoomId;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct BannedListProps {
    pub room: RoomId,
    /// Changes whenever the member list does, so a ban made here shows up at once.
    pub generation: usize,
}

#[function_component]
pub fn BannedList(props: &BannedListProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let bans = use_state(|| None::<Vec<UserRef>>);
    let reload = use_state(|| 0u32);
    let room = props.room;
    {
        let bans = bans.clone();
        let d = state.dispatcher();
        use_effect_with((room, props.generation, *reload), move |_| {
            spawn_local(async move {
                match ipc::bans(room).await {
                    Ok(list) => bans.set(Some(list)),
                    Err(e) => effects::toast(&d, &e),
                }
            });
        });
    }
    let Some(list) = (*bans).clone() else {
        return Html::default();
    };
    if list.is_empty() {
        return Html::default();
    }
    html! {<>
        <p class="section-title">{ format!("Banned · {}", list.len()) }</p>
        <ul class="member-list banned-list" role="list">
        { for list.into_iter().map(|u| {
            let onclick = {
                let d = state.dispatcher();
                let reload = reload.clone();
                let name = u.username.clone();
                let user = u.id;
                Callback::from(move |_: MouseEvent| {
                    let (d, reload, name) = (d.clone(), reload.clone(), name.clone());
                    spawn_local(async move {
                        match ipc::unban(room, user).await {
                            Ok(()) => {
                                d.dispatch(Action::Toast(format!("{} may join again", isolate(&name))));
                                reload.set(*reload + 1);
                            }
                            Err(e) => effects::toast(&d, &e),
                        }
                    });
                })
            };
            let label = format!("Unban {}", isolate(&u.username));
            html! {
                <li key={u.id.0} class="banned-row">
                    <span class="member-name-text"><bdi>{ u.username.clone() }</bdi></span>
                    <button type="button" class="button small unban" title={label.clone()} aria-label={label} {onclick}>
                        { "Unban" }
                    </button>
                </li>
            }
        }) }
        </ul>
    </>}
}
