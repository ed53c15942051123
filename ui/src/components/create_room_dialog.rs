//! Create a room: a name and who can join (public: listed for everyone; private: invited
//! members only). The new room opens.

use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::AppContext;
use protocol::rest::Visibility;
use protocol::validate;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct CreateRoomDialogProps {
    pub onclose: Callback<()>,
}

#[function_component]
pub fn CreateRoomDialog(props: &CreateRoomDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let name = use_state(String::new);
    let visibility = use_state(|| Visibility::Public);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);

    let oninput = {
        let (name, error) = (name.clone(), error.clone());
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value());
            error.set(None);
        })
    };
    let choose = |v: Visibility| {
        let visibility = visibility.clone();
        Callback::from(move |_: Event| visibility.set(v))
    };
    let onsubmit = {
        let (name, visibility, error, busy) = (
            name.clone(),
            visibility.clone(),
            error.clone(),
            busy.clone(),
        );
        let d = state.dispatcher();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            let value = name.trim().to_string();
            if let Err(rule) = validate::room_name(&value) {
                error.set(Some(if value.is_empty() {
                    "Give the room a name.".to_string()
                } else {
                    format!("{}.", rule.message)
                }));
                return;
            }
            busy.set(true);
            let (visibility, error, busy, d) =
                (*visibility, error.clone(), busy.clone(), d.clone());
            spawn_local(async move {
                match ipc::create_room(value, visibility).await {
                    Ok(room) => {
                        d.dispatch(crate::state::Action::CloseDialog);
                        effects::load_rooms_then_open(&d, room.id);
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
    let public = *visibility == Visibility::Public;
    html! {
        <Modal title="Create a room" onclose={props.onclose.clone()}>
            <form class="dialog-form" onsubmit={onsubmit} novalidate=true>
                <label class="field">
                    <span class="field-label">{ "Name" }</span>
                    <span class={classes!("input-with-icon", error.is_some().then_some("invalid"))}>
                        <IconView icon={Icon::Hash} />
                        <input type="text" maxlength="64" placeholder="e.g. design-team" value={(*name).clone()}
                            oninput={oninput} aria-invalid={error.is_some().to_string()}
                            aria-describedby="room-name-error" />
                    </span>
                    <span id="room-name-error" class="error-text" role="alert">{ (*error).clone().unwrap_or_default() }</span>
                </label>
                <fieldset class="choice-group">
                    <legend class="field-label">{ "Who can join" }</legend>
                    <label class={classes!("choice", public.then_some("selected"))}>
                        <input type="radio" name="visibility" checked={public} onchange={choose(Visibility::Public)} />
                        <IconView icon={Icon::Globe} />
                        <span>
                            <strong>{ "Public" }</strong>
                            <span class="muted">{ "Anyone on the server can find and join it." }</span>
                        </span>
                    </label>
                    <label class={classes!("choice", (!public).then_some("selected"))}>
                        <input type="radio" name="visibility" checked={!public} onchange={choose(Visibility::Private)} />
                        <IconView icon={Icon::Lock} />
                        <span>
                            <strong>{ "Private" }</strong>
                            <span class="muted">{ "Only people who are invited can see it." }</span>
                        </span>
                    </label>
                </fieldset>
                <div class="dialog-actions">
                    <button type="button" class="button" onclick={cancel}>{ "Cancel" }</button>
                    <button type="submit" class="button primary" disabled={*busy}>
                        if *busy { <span class="spinner small"></span> }
                        { "Create room" }
                    </button>
                </div>
            </form>
        </Modal>
    }
}
