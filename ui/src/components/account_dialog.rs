//! Account and security: the account's sessions (device, last used, this device) with a
//! button to end each, the change-password form, the blocked users, and "sign out everywhere". Ending this
//! device's own session, or every session, logs this device out.

use super::blocked_users::BlockedUsers;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::format::{full_time, now_ms, short_time};
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::rest::SessionInfo;
use protocol::ErrorCode;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct AccountDialogProps {
    pub onclose: Callback<()>,
}

/// The sessions as loaded: `None` while loading.
type Sessions = Option<Result<Vec<SessionInfo>, String>>;

fn load_sessions(sessions: UseStateHandle<Sessions>) {
    spawn_local(async move {
        sessions.set(Some(ipc::sessions().await.map_err(|e| e.user_message())));
    });
}

/// What the password form shows under its fields.
#[derive(Clone, PartialEq)]
enum PasswordOutcome {
    /// Which field (current, new, confirm) and why.
    Error(&'static str, String),
    Changed,
}

#[function_component]
pub fn AccountDialog(props: &AccountDialogProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let sessions = use_state(|| None::<Result<Vec<SessionInfo>, String>>);
    let ending = use_state(|| None::<String>);
    {
        let sessions = sessions.clone();
        use_effect_with((), move |_| load_sessions(sessions));
    }

    let end = {
        let (sessions, ending) = (sessions.clone(), ending.clone());
        let d = state.dispatcher();
        Callback::from(move |(id, current): (String, bool)| {
            ending.set(Some(id.clone()));
            let (sessions, ending, d) = (sessions.clone(), ending.clone(), d.clone());
            spawn_local(async move {
                let result = ipc::end_session(id).await;
                ending.set(None);
                match result {
                    Ok(()) if current => d.dispatch(Action::LoggedOut { reason: None }),
                    Ok(()) => load_sessions(sessions),
                    Err(e) => {
                        effects::toast(&d, &e);
                        load_sessions(sessions);
                    }
                }
            });
        })
    };

    let now = now_ms();
    let list = match &*sessions {
        None => {
            html! { <p class="muted session-loading"><span class="spinner"></span>{ "Loading sessions…" }</p> }
        }
        Some(Err(e)) => html! { <p class="form-error" role="alert">{ e.clone() }</p> },
        Some(Ok(list)) => html! {
            <ul class="session-list" aria-label="Sessions">
                { for list.iter().map(|s| {
                    let device = s.device.clone().filter(|d| !d.trim().is_empty())
                        .unwrap_or_else(|| "Unnamed device".into());
                    let busy = ending.as_deref() == Some(s.id.as_str());
                    let onclick = {
                        let end = end.clone();
                        let arg = (s.id.clone(), s.current);
                        Callback::from(move |_: MouseEvent| end.emit(arg.clone()))
                    };
                    html! {
                        <li class={classes!("session-row", s.current.then_some("current"))} data-session={s.id.clone()}>
                            <span class="session-icon"><IconView icon={Icon::Server} /></span>
                            <span class="session-text">
                                <span class="session-device">
                                    <bdi>{ device }</bdi>
                                    if s.current { <span class="tag this-device">{ "This device" }</span> }
                                </span>
                                <span class="muted session-when" title={full_time(s.last_used_ts, now)}>
                                    { format!("Last used {} · signed in {}",
                                        short_time(s.last_used_ts, now), short_time(s.created_ts, now)) }
                                </span>
                            </span>
                            <button type="button" class="button small end-session" disabled={busy} {onclick}>
                                { if s.current { "Log out" } else { "End session" } }
                            </button>
                        </li>
                    }
                }) }
            </ul>
        },
    };
    let others = match &*sessions {
        Some(Ok(list)) => list.iter().filter(|s| !s.current).count(),
        _ => 0,
    };

    html! {
        <Modal title="Account and security" class={classes!("wide", "account-dialog")} onclose={props.onclose.clone()}>
            <section class="settings-section">
                <h3 class="account-heading">{ "Where you are signed in" }</h3>
                <p class="muted section-help">
                    { "Each device or app that logged in to your account. End a session you do not recognize: that device is signed out at once." }
                </p>
                { list }
            </section>
            <section class="settings-section">
                <h3 class="account-heading">{ "Change password" }</h3>
                <PasswordForm on_changed={{
                    let sessions = sessions.clone();
                    Callback::from(move |()| load_sessions(sessions.clone()))
                }} />
            </section>
            <BlockedUsers />
            <section class="settings-section last">
                <h3 class="account-heading">{ "Sign out everywhere" }</h3>
                <SignOutEverywhere {others} />
            </section>
        </Modal>
    }
}

#[derive(Properties, PartialEq)]
struct PasswordFormProps {
    on_changed: Callback<()>,
}

#[function_component]
fn PasswordForm(props: &PasswordFormProps) -> Html {
    let current = use_state(String::new);
    let new = use_state(String::new);
    let confirm = use_state(String::new);
    let busy = use_state(|| false);
    let outcome = use_state(|| None::<PasswordOutcome>);
    let input = |field: &UseStateHandle<String>| {
        let (field, outcome) = (field.clone(), outcome.clone());
        Callback::from(move |e: InputEvent| {
            field.set(e.target_unchecked_into::<HtmlInputElement>().value());
            if matches!(*outcome, Some(PasswordOutcome::Error(..))) {
                outcome.set(None);
            }
        })
    };
    let onsubmit = {
        let (current, new, confirm, busy, outcome) = (
            current.clone(),
            new.clone(),
            confirm.clone(),
            busy.clone(),
            outcome.clone(),
        );
        let on_changed = props.on_changed.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            if current.is_empty() {
                outcome.set(Some(PasswordOutcome::Error(
                    "current",
                    "Enter your current password.".into(),
                )));
                return;
            }
            if *new != *confirm {
                outcome.set(Some(PasswordOutcome::Error(
                    "confirm",
                    "The two new passwords do not match.".into(),
                )));
                return;
            }
            busy.set(true);
            let (current, new, confirm, busy, outcome) = (
                current.clone(),
                new.clone(),
                confirm.clone(),
                busy.clone(),
                outcome.clone(),
            );
            let on_changed = on_changed.clone();
            spawn_local(async move {
                let result = ipc::change_password((*current).clone(), (*new).clone()).await;
                busy.set(false);
                match result {
                    Ok(()) => {
                        current.set(String::new());
                        new.set(String::new());
                        confirm.set(String::new());
                        outcome.set(Some(PasswordOutcome::Changed));
                        on_changed.emit(());
                    }
                    Err(e) => {
                        let field = match e.server_code() {
                            Some(ErrorCode::WrongPassword) => "current",
                            Some(ErrorCode::InvalidPassword) => "new",
                            _ => "form",
                        };
                        outcome.set(Some(PasswordOutcome::Error(field, e.user_message())));
                    }
                }
            });
        })
    };
    let error_for = |field: &str| match &*outcome {
        Some(PasswordOutcome::Error(f, text)) if *f == field => Some(text.clone()),
        _ => None,
    };
    let field = |id: &'static str,
                 label: &'static str,
                 autocomplete: &'static str,
                 value: &UseStateHandle<String>,
                 error: Option<String>| {
        let error_id = format!("{id}-error");
        let invalid = error.is_some();
        let text = error.unwrap_or_default();
        html! {
            <label class="field">
                <span class="field-label">{ label }</span>
                <input id={id} type="password" autocomplete={autocomplete}
                    class={classes!(invalid.then_some("invalid"))}
                    value={(**value).clone()} oninput={input(value)}
                    aria-invalid={invalid.to_string()} aria-describedby={error_id.clone()} />
                <span id={error_id} class="error-text" role="alert">{ text }</span>
            </label>
        }
    };
    html! {
        <form class="dialog-form password-form" onsubmit={onsubmit} novalidate=true>
            { field("current-password", "Current password", "current-password", &current, error_for("current")) }
            { field("new-password", "New password", "new-password", &new, error_for("new")) }
            { field("confirm-password", "New password again", "new-password", &confirm, error_for("confirm")) }
            if let Some(text) = error_for("form") {
                <p class="form-error" role="alert"><IconView icon={Icon::Alert} />{ text }</p>
            }
            if *outcome == Some(PasswordOutcome::Changed) {
                <p class="success-text password-changed" role="status">
                    { "Password changed. Your other devices were signed out; this one stays signed in." }
                </p>
            }
            <p class="hint">{ "Changing it signs out every other device." }</p>
            <div class="dialog-actions">
                <button type="submit" class="button primary" disabled={*busy}>
                    if *busy { <span class="spinner"></span> }
                    { "Change password" }
                </button>
            </div>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct SignOutEverywhereProps {
    /// Other devices signed in now.
    others: usize,
}

#[function_component]
fn SignOutEverywhere(props: &SignOutEverywhereProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let asking = use_state(|| false);
    let busy = use_state(|| false);
    let ask = {
        let asking = asking.clone();
        Callback::from(move |_: MouseEvent| asking.set(true))
    };
    let keep = {
        let asking = asking.clone();
        Callback::from(move |_: MouseEvent| asking.set(false))
    };
    let go = {
        let busy = busy.clone();
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            let (busy, d) = (busy.clone(), d.clone());
            spawn_local(async move {
                match ipc::logout_everywhere().await {
                    Ok(()) => d.dispatch(Action::LoggedOut { reason: None }),
                    Err(e) => {
                        busy.set(false);
                        effects::toast(&d, &e);
                    }
                }
            });
        })
    };
    let devices = match props.others {
        0 => "this device".to_string(),
        1 => "this device and 1 other".to_string(),
        n => format!("this device and {n} others"),
    };
    html! {
        <>
            <p class="muted section-help">
                { "Ends every session of your account, this one included. Use it if a device was lost or your password leaked." }
            </p>
            if *asking {
                <div class="notice" role="alert">
                    <IconView icon={Icon::Alert} />
                    <span>{ format!("Sign out on {devices}? You will need your password to log in again.") }</span>
                </div>
                <div class="dialog-actions">
                    <button type="button" class="button" onclick={keep}>{ "Cancel" }</button>
                    <button id="confirm-sign-out-everywhere" type="button" class="button danger" disabled={*busy} onclick={go}>
                        <IconView icon={Icon::LogOut} />{ "Sign out everywhere" }
                    </button>
                </div>
            } else {
                <div class="dialog-actions">
                    <button id="sign-out-everywhere" type="button" class="button danger" onclick={ask}>
                        <IconView icon={Icon::LogOut} />{ "Sign out everywhere…" }
                    </button>
                </div>
            }
        </>
    }
}
