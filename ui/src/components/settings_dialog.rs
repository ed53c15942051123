//! Settings (start minimized, notifications), the account and server, and logging out. Logging
//! out deletes this device's copy of the account, unsent messages included, so with messages
//! still in the outbox it asks first.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::ipc;
use crate::state::{Action, AppContext, Dialog};
use protocol::ipc::{AppErrorCode, Settings};
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SettingsDialogProps {
    pub onclose: Callback<()>,
}

/// The question asked before logging out drops `unsent` messages.
pub fn unsent_warning(unsent: u32) -> String {
    let (what, them) = if unsent == 1 {
        ("1 message is".to_string(), "it")
    } else {
        (format!("{unsent} messages are"), "them")
    };
    format!("{what} not sent yet. Logging out deletes {them} from this device. Log out anyway?")
}

fn do_logout(busy: UseStateHandle<bool>, d: effects::Dispatcher) {
    busy.set(true);
    spawn_local(async move {
        match ipc::logout().await {
            Ok(()) => d.dispatch(Action::LoggedOut { reason: None }),
            // Logged out and the cache cleared; only the keychain entry could not be removed.
            Err(e) if e.code() == Some(AppErrorCode::Keychain) => {
                effects::toast(&d, &e);
                d.dispatch(Action::LoggedOut { reason: None });
            }
            Err(e) => {
                busy.set(false);
                effects::toast(&d, &e);
            }
        }
    });
}

#[function_component]
pub fn SettingsDialog(props: &SettingsDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let settings = use_state(|| None::<Settings>);
    let busy = use_state(|| false);
    // Unsent messages found when "Log out" was pressed: ask before dropping them.
    let confirm = use_state(|| None::<u32>);
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
        let (busy, confirm) = (busy.clone(), confirm.clone());
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, confirm, d) = (busy.clone(), confirm.clone(), d.clone());
            spawn_local(async move {
                match ipc::unsent().await {
                    Ok(0) => do_logout(busy, d),
                    Ok(n) => {
                        busy.set(false);
                        confirm.set(Some(n));
                    }
                    Err(e) => {
                        busy.set(false);
                        effects::toast(&d, &e);
                    }
                }
            });
        })
    };
    let logout_anyway = {
        let busy = busy.clone();
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| do_logout(busy.clone(), d.clone()))
    };
    let keep = {
        let confirm = confirm.clone();
        Callback::from(move |_: MouseEvent| confirm.set(None))
    };
    // This app's version and a ready update (issue 16).
    let version = use_state(|| None::<String>);
    let installing = use_state(|| false);
    {
        let version = version.clone();
        let d = state.dispatcher();
        use_effect_with((), move |_| {
            spawn_local(async move {
                if let Ok(status) = ipc::update_status().await {
                    version.set(Some(status.current));
                    if let Some(update) = status.ready {
                        d.dispatch(Action::UpdateReady(update));
                    }
                }
            });
        });
    }
    let restart = {
        let installing = installing.clone();
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            super::update_banner::install(installing.clone(), d.clone())
        })
    };
    let display_name = use_state(|| {
        state
            .user
            .as_ref()
            .and_then(|u| u.display_name.clone())
            .unwrap_or_default()
    });
    let name_busy = use_state(|| false);
    let on_display_name = {
        let display_name = display_name.clone();
        Callback::from(move |e: InputEvent| {
            display_name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let current_display = state
        .user
        .as_ref()
        .and_then(|u| u.display_name.clone())
        .unwrap_or_default();
    let name_changed = display_name.trim() != current_display;
    let save_display_name = {
        let (display_name, name_busy) = (display_name.clone(), name_busy.clone());
        let d = state.dispatcher();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let wanted = display_name.trim().to_owned();
            let (name_busy, d) = (name_busy.clone(), d.clone());
            name_busy.set(true);
            spawn_local(async move {
                match ipc::set_display_name(wanted).await {
                    Ok(user) => d.dispatch(Action::UserUpdated {
                        user: user.id,
                        display_name: user.display_name,
                    }),
                    Err(e) => effects::toast(&d, &e),
                }
                name_busy.set(false);
            });
        })
    };
    let open_account = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::Account)))
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
                <form class="display-name-form" onsubmit={save_display_name}>
                    <label class="field">
                        <span class="field-label">{ "Display name" }</span>
                        <input id="display-name" type="text" maxlength="64" placeholder="Shown next to your username"
                            value={(*display_name).clone()} oninput={on_display_name} disabled={*name_busy} />
                    </label>
                    <button id="save-display-name" type="submit" class="button" disabled={!name_changed || *name_busy}>
                        { "Save" }
                    </button>
                </form>
                <button id="open-account" type="button" class="button account-button" onclick={open_account}>
                    <IconView icon={Icon::Lock} />{ "Sessions and password…" }
                </button>
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
                        <strong>{ "Show message text in notifications" }</strong>
                        <span class="muted">{ "Off: notifications say who wrote, not what." }</span>
                    </span>
                    <input type="checkbox" role="switch" class="switch notification-text" checked={!s.hide_notification_text}
                        disabled={!loaded || !s.notifications}
                        onchange={update(|s, v| s.hide_notification_text = !v)} />
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
            if let Some(n) = *confirm {
                <div class="notice unsent-warning" role="alert">
                    <IconView icon={Icon::Alert} />
                    <span>{ unsent_warning(n) }</span>
                </div>
                <div class="dialog-actions">
                    <button type="button" class="button" onclick={keep}>{ "Stay logged in" }</button>
                    <button type="button" class="button danger" disabled={*busy} onclick={logout_anyway}>
                        <IconView icon={Icon::LogOut} />{ "Log out anyway" }
                    </button>
                </div>
            } else {
                <div class="dialog-actions">
                    <button type="button" class="button danger" disabled={*busy} onclick={logout}>
                        <IconView icon={Icon::LogOut} />{ "Log out" }
                    </button>
                </div>
            }
            <super::attachment_cache::AttachmentCacheSetting />
            <section class="settings-section app-version">
                <span>
                    <strong id="app-version">{ (*version).as_ref().map_or_else(|| "Chat".to_owned(), |v| format!("Chat {v}")) }</strong>
                    <span class="muted">{
                        match &state.update {
                            Some(u) if *installing => format!("Installing {}…", u.version),
                            Some(u) => format!("Version {} is ready to install.", u.version),
                            None => "Updates come from your server when it offers them.".to_owned(),
                        }
                    }</span>
                </span>
                if state.update.is_some() {
                    <button type="button" class="button" id="settings-restart-to-update"
                        disabled={*installing} onclick={restart}>
                        { "Restart to update" }
                    </button>
                }
            </section>
        </Modal>
    }
}

#[cfg(test)]
mod tests {
    use super::unsent_warning;

    #[test]
    fn the_warning_says_how_many_would_be_lost() {
        assert_eq!(
            unsent_warning(1),
            "1 message is not sent yet. Logging out deletes it from this device. Log out anyway?"
        );
        assert!(unsent_warning(3).starts_with("3 messages are not sent yet."));
    }
}
