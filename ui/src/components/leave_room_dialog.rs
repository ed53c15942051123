//! Confirms leaving a room, then leaves it.

use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::RoomId;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct LeaveRoomDialogProps {
    pub room: RoomId,
    pub onclose: Callback<()>,
}

#[function_component]
pub fn LeaveRoomDialog(props: &LeaveRoomDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let room = props.room;
    let view = state.rooms.iter().find(|r| r.room.id == room);
    let name = view.map(|r| r.room.name.clone()).unwrap_or_default();
    let private = view.is_some_and(|r| r.room.visibility == protocol::rest::Visibility::Private);
    let leave = {
        let (busy, error) = (busy.clone(), error.clone());
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, error, d) = (busy.clone(), error.clone(), d.clone());
            spawn_local(async move {
                match ipc::leave_room(room).await {
                    Ok(()) => {
                        d.dispatch(Action::Left(room));
                        effects::load_rooms(&d);
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
        <Modal title={format!("Leave #{}?", crate::format::isolate(&name))} onclose={props.onclose.clone()}>
            <p>{
                if private {
                    "You will need a new invitation to come back to this private room."
                } else {
                    "You can join again later from Browse rooms."
                }
            }</p>
            if let Some(text) = &*error { <p class="error-text" role="alert">{ text.clone() }</p> }
            <div class="dialog-actions">
                <button type="button" class="button" onclick={cancel} data-autofocus="true">{ "Cancel" }</button>
                <button type="button" class="button danger" disabled={*busy} onclick={leave}>
                    if *busy { <span class="spinner small"></span> }
                    { "Leave room" }
                </button>
            </div>
        </Modal>
    }
}
