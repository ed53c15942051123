//! Confirms banning a member from a room the user owns, then bans.

use super::modal::Modal;
use crate::effects;
use crate::format::isolate;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::{RoomId, UserId};
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct BanDialogProps {
    pub room: RoomId,
    pub user: UserId,
    pub onclose: Callback<()>,
}

#[function_component]
pub fn BanDialog(props: &BanDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let (room, user) = (props.room, props.user);
    let name = state
        .user_name(user)
        .unwrap_or_else(|| "this member".to_string());
    let room_name = state
        .rooms
        .iter()
        .find(|r| r.room.id == room)
        .map(|r| r.room.name.clone())
        .unwrap_or_default();
    let ban = {
        let (busy, error) = (busy.clone(), error.clone());
        let d = state.dispatcher();
        let name = name.clone();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, error, d, name) = (busy.clone(), error.clone(), d.clone(), name.clone());
            spawn_local(async move {
                match ipc::ban(room, user).await {
                    Ok(()) => {
                        d.dispatch(Action::CloseDialog);
                        d.dispatch(Action::Toast(format!("Banned {}", isolate(&name))));
                        effects::load_members(&d, room);
                    }
                    Err(e) => {
                        busy.set(false);
                        error.set(Some(e.user_message()));
                    }
                }
            });
        })
    };
    let cancel = {
        let onclose = props.onclose.clone();
        Callback::from(move |_: MouseEvent| onclose.emit(()))
    };
    html! {
        <Modal title={format!("Ban {} from #{}?", isolate(&name), isolate(&room_name))} onclose={props.onclose.clone()}>
            <p>{ format!(
                "{} is removed from the room now and cannot join again or be invited until you lift \
                 the ban (Members, then Banned).",
                isolate(&name)
            ) }</p>
            if let Some(text) = &*error { <p class="error-text" role="alert">{ text.clone() }</p> }
            <div class="dialog-actions">
                <button type="button" class="button" onclick={cancel} data-autofocus="true">{ "Cancel" }</button>
                <button type="button" class="button danger confirm-ban" disabled={*busy} onclick={ban}>
                    if *busy { <span class="spinner small"></span> }
                    { "Ban" }
                </button>
            </div>
        </Modal>
    }
}
