//! Settings (start minimized, notifications), the account and server, and logging out.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::ipc::Settings;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SettingsDialogProps {
    pub onclose: Callback<()>,
}

#[function_component]
pub fn SettingsDialog(props: &SettingsDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let settings = use_state(|| None::<Settings>);
    let busy = use_state(|| false);
    {
        let settings = settings.clone();
        let d = state.dispatcher();
        use_effect_with((), move |_| {
            spawn_local(async move {
                match ipc::get_settings().await {
                    Ok(s) => settings.set(Some(s)),
                    Err(e) => effects::toast(&d, &e),
                }
            });
        });
    }
    let update = |change: fn(&mut Settings, bool)| {
        let settings = settings.clone();
        let d = state.dispatcher();
        Callback::from(move |e: Event| {
            let Some(mut next) = (*settings).clone() else {
                return;
            };
            change(
                &mut next,
                e.target_unchecked_into::<HtmlInputElement>().checked(),
            );
            settings.set(Some(next.clone()));
            let d = d.clone();
            spawn_local(async move {
                if let Err(e) = ipc::set_settings(next).await {
                    effects::toast(&d, &e);
                }
            });
        })
    };
    let logout = {
        let busy = busy.clone();
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, d) = (busy.clone(), d.clone());
            spawn_local(async move {
                match ipc::logout().await {
                    Ok(()) => d.dispatch(Action::LoggedOut { reason: None }),
                    Err(e) => {
                        busy.set(false);
                        effects::toast(&d, &e);
                    }
                }
            });
        })
    };
    let user = state
        .user
        .as_ref()
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let server = state.server_url.clone().unwrap_or_default();
    let s = (*settings).clone();
    let loaded = s.is_some();
    let s = s.unwrap_or_default();
    html! {
        <Modal title="Settings" onclose={props.onclose.clone()}>
            <section class="settings-section">
                <div class="account">
                    <Avatar name={user.clone()} />
                    <div class="account-text">
                        <strong>{ user }</strong>
                        <span class="muted server-line"><IconView icon={Icon::Server} /><span class="server-url">{ server }</span></span>
                    </div>
                </div>
            </section>
            <section class="settings-section">
                <label class="switch-row">
                    <span>
                        <strong>{ "Desktop notifications" }</strong>
                        <span class="muted">{ "For new messages in rooms you are not looking at." }</span>
                    </span>
                    <input type="checkbox" role="switch" class="switch" checked={s.notifications} disabled={!loaded}
                        onchange={update(|s, v| s.notifications = v)} />
                </label>
                <label class="switch-row">
                    <span>
                        <strong>{ "Start minimized" }</strong>
                        <span class="muted">{ "Open in the tray when the app starts." }</span>
                    </span>
                    <input type="checkbox" role="switch" class="switch" checked={s.start_minimized} disabled={!loaded}
                        onchange={update(|s, v| s.start_minimized = v)} />
                </label>
            </section>
            <div class="dialog-actions">
                <button type="button" class="button danger" disabled={*busy} onclick={logout}>
                    <IconView icon={Icon::LogOut} />{ "Log out" }
                </button>
            </div>
        </Modal>
    }
}
