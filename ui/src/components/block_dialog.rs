//! Confirms blocking a user, saying what blocking does (and does not do), then blocks.

use super::modal::Modal;
use crate::effects;
use crate::format::isolate;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::UserId;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct BlockDialogProps {
    pub user: UserId,
    pub onclose: Callback<()>,
}

/// What blocking `name` does, one point per line, in the words the dialog uses.
pub fn block_effects(name: &str) -> [String; 4] {
    let name = isolate(name);
    [
        format!("{name} can no longer send you direct messages or invite you to rooms."),
        format!("Your existing conversation stays; {name} can still read it but not write in it."),
        format!("{name} is not told. Rooms you are both in stay as they are."),
        "You can unblock them at any time in Settings.".to_string(),
    ]
}

#[function_component]
pub fn BlockDialog(props: &BlockDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let user = props.user;
    let name = state
        .user_name(user)
        .unwrap_or_else(|| "this user".to_string());
    let block = {
        let (busy, error) = (busy.clone(), error.clone());
        let d = state.dispatcher();
        let name = name.clone();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, error, d, name) = (busy.clone(), error.clone(), d.clone(), name.clone());
            spawn_local(async move {
                match ipc::block(user).await {
                    Ok(()) => {
                        d.dispatch(Action::CloseDialog);
                        d.dispatch(Action::Toast(format!("Blocked {}", isolate(&name))));
                        effects::load_blocks(&d);
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
        <Modal title={format!("Block {}?", isolate(&name))} onclose={props.onclose.clone()} class="block-dialog">
            <ul class="consequences">
                { for block_effects(&name).into_iter().map(|line| html! { <li>{ line }</li> }) }
            </ul>
            if let Some(text) = &*error { <p class="error-text" role="alert">{ text.clone() }</p> }
            <div class="dialog-actions">
                <button type="button" class="button" onclick={cancel} data-autofocus="true">{ "Cancel" }</button>
                <button type="button" class="button danger confirm-block" disabled={*busy} onclick={block}>
                    if *busy { <span class="spinner small"></span> }
                    { "Block" }
                </button>
            </div>
        </Modal>
    }
}
