//! Room settings (issue 13): the owner renames the room, sets its topic or deletes it (after a
//! second click); every member picks when the room notifies them. Direct rooms only have the
//! notification level.

use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::event::Role;
use protocol::rest::{NotifyLevel, RoomKind};
use protocol::RoomId;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct RoomSettingsDialogProps {
    pub room: RoomId,
    pub onclose: Callback<()>,
}

/// The levels offered, with what each means to the user.
const LEVELS: [(NotifyLevel, &str, &str); 3] = [
    (
        NotifyLevel::All,
        "All messages",
        "Every new message notifies you.",
    ),
    (
        NotifyLevel::Mentions,
        "Mentions only",
        "Only messages that mention you (or @room).",
    ),
    (
        NotifyLevel::None,
        "Nothing",
        "This room never notifies you.",
    ),
];

/// What changed in the form: `(name, topic)`, each `None` when unchanged.
pub fn changes(
    old_name: &str,
    old_topic: &str,
    name: &str,
    topic: &str,
) -> (Option<String>, Option<String>) {
    let name = name.trim();
    let topic = topic.trim();
    (
        (name != old_name).then(|| name.to_owned()),
        (topic != old_topic).then(|| topic.to_owned()),
    )
}

#[function_component]
pub fn RoomSettingsDialog(props: &RoomSettingsDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let room = props.room;
    let view = state.rooms.iter().find(|r| r.room.id == room).cloned();
    let (old_name, old_topic) = view
        .as_ref()
        .map(|v| (v.room.name.clone(), v.room.topic.clone()))
        .unwrap_or_default();
    let name = use_state(|| old_name.clone());
    let topic = use_state(|| old_topic.clone());
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let confirm_delete = use_state(|| false);
    let Some(view) = view else {
        return Html::default();
    };
    let owner = view.room.role == Some(Role::Owner);
    let group = view.room.kind == RoomKind::Group;
    let level = view.room.notify;

    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_topic = {
        let topic = topic.clone();
        Callback::from(move |e: InputEvent| {
            topic.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let (new_name, new_topic) = changes(&old_name, &old_topic, &name, &topic);
    let dirty = new_name.is_some() || new_topic.is_some();
    let save = {
        let (busy, error) = (busy.clone(), error.clone());
        let d = state.dispatcher();
        let onclose = props.onclose.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (new_name, new_topic) = (new_name.clone(), new_topic.clone());
            if new_name.is_none() && new_topic.is_none() {
                return;
            }
            busy.set(true);
            let (busy, error, d, onclose) =
                (busy.clone(), error.clone(), d.clone(), onclose.clone());
            spawn_local(async move {
                match ipc::update_room(room, new_name, new_topic).await {
                    Ok(_) => {
                        effects::load_rooms(&d);
                        onclose.emit(());
                    }
                    Err(e) => {
                        busy.set(false);
                        error.set(Some(e.user_message()));
                    }
                }
            });
        })
    };
    let pick_level = |wanted: NotifyLevel| {
        let d = state.dispatcher();
        let error = error.clone();
        Callback::from(move |_: Event| {
            let (d, error) = (d.clone(), error.clone());
            spawn_local(async move {
                match ipc::set_notify(room, wanted).await {
                    Ok(()) => effects::load_rooms(&d),
                    Err(e) => error.set(Some(e.user_message())),
                }
            });
        })
    };
    let ask_delete = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_: MouseEvent| confirm_delete.set(true))
    };
    let keep = {
        let confirm_delete = confirm_delete.clone();
        Callback::from(move |_: MouseEvent| confirm_delete.set(false))
    };
    let delete = {
        let (busy, error) = (busy.clone(), error.clone());
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, error, d) = (busy.clone(), error.clone(), d.clone());
            spawn_local(async move {
                match ipc::delete_room(room).await {
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
    let title = if group {
        format!("#{} settings", crate::format::isolate(&old_name))
    } else {
        format!("{} settings", crate::format::isolate(&old_name))
    };
    html! {
        <Modal {title} onclose={props.onclose.clone()} class="room-settings">
            if group {
                <form class="settings-section" onsubmit={save}>
                    <label class="field">
                        <span class="field-label">{ "Name" }</span>
                        <input id="room-name" type="text" maxlength="64" value={(*name).clone()}
                            disabled={!owner || *busy} oninput={on_name} />
                    </label>
                    <label class="field">
                        <span class="field-label">{ "Topic" }</span>
                        <input id="room-topic" type="text" maxlength="256" placeholder="What this room is about"
                            value={(*topic).clone()} disabled={!owner || *busy} oninput={on_topic} />
                    </label>
                    if owner {
                        <div class="dialog-actions">
                            <button id="save-room" type="submit" class="button primary" disabled={!dirty || *busy}>
                                if *busy { <span class="spinner small"></span> }
                                { "Save" }
                            </button>
                        </div>
                    } else {
                        <p class="muted">{ "Only the room's owner can change its name and topic." }</p>
                    }
                </form>
            }
            <fieldset class="settings-section notify-levels">
                <legend><strong>{ "Notify me about" }</strong></legend>
                { for LEVELS.iter().map(|(value, label, hint)| html! {
                    <label class="radio-row">
                        <input type="radio" name="notify" class={format!("notify-{}", label.split(' ').next().unwrap_or_default().to_lowercase())}
                            checked={level == *value} onchange={pick_level(*value)} />
                        <span><strong>{ *label }</strong><span class="muted">{ *hint }</span></span>
                    </label>
                }) }
            </fieldset>
            if let Some(text) = &*error { <p class="error-text" role="alert">{ text.clone() }</p> }
            if owner && group {
                <section class="settings-section danger-zone">
                    if *confirm_delete {
                        <p role="alert">{ "Delete this room and its whole history for every member? This cannot be undone." }</p>
                        <div class="dialog-actions">
                            <button type="button" class="button" onclick={keep}>{ "Keep the room" }</button>
                            <button id="confirm-delete-room" type="button" class="button danger" disabled={*busy} onclick={delete}>
                                <IconView icon={Icon::Trash} />{ "Delete for everyone" }
                            </button>
                        </div>
                    } else {
                        <button id="delete-room" type="button" class="button danger" onclick={ask_delete}>
                            <IconView icon={Icon::Trash} />{ "Delete room…" }
                        </button>
                    }
                </section>
            }
        </Modal>
    }
}

#[cfg(test)]
mod tests {
    use super::changes;

    #[test]
    fn only_what_changed_is_sent() {
        assert_eq!(changes("a", "t", "a", "t"), (None, None));
        assert_eq!(changes("a", "t", " b ", "t"), (Some("b".into()), None));
        assert_eq!(changes("a", "t", "a", ""), (None, Some(String::new())));
    }
}
