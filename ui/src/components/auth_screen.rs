//! Log in or create an account on the chosen server. Registration checks the shared
//! username/password rules before asking the server; server refusals are shown next to the
//! field they concern.

use super::icon::{Icon, IconView};
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::validate;
use protocol::ErrorCode;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Register,
}

/// Errors by where they show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Errors {
    username: Option<String>,
    password: Option<String>,
    form: Option<String>,
}

fn sentence(rule: &str) -> String {
    let mut chars = rule.chars();
    match chars.next() {
        Some(c) => format!("{}{}.", c.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The card's heading: "Welcome back" only for someone who used the app before (a username is
/// remembered); a first run names the server to sign in to.
pub fn auth_title(register: bool, remembered: Option<&str>, server: &str) -> String {
    if register {
        return "Create your account".into();
    }
    match remembered {
        Some(name) if !name.is_empty() => format!("Welcome back, {name}"),
        _ => {
            let host = server
                .split_once("://")
                .map_or(server, |(_, rest)| rest)
                .trim_end_matches('/');
            if host.is_empty() {
                "Sign in".into()
            } else {
                format!("Sign in to {host}")
            }
        }
    }
}

#[function_component]
pub fn AuthScreen() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let mode = use_state(|| Mode::Login);
    let username = use_state(|| state.username_hint.clone().unwrap_or_default());
    let password = use_state(String::new);
    let show_password = use_state(|| false);
    let errors = use_state(Errors::default);
    let busy = use_state(|| false);
    let username_ref = use_node_ref();
    let password_ref = use_node_ref();

    // Focus the first empty field.
    {
        let (username_ref, password_ref) = (username_ref.clone(), password_ref.clone());
        let has_name = !username.is_empty();
        use_effect_with(*mode, move |_| {
            let target = if has_name { password_ref } else { username_ref };
            if let Some(input) = target.cast::<HtmlInputElement>() {
                let _ = input.focus();
            }
        });
    }

    let set_mode = |m: Mode| {
        let mode = mode.clone();
        let errors = errors.clone();
        Callback::from(move |_: MouseEvent| {
            mode.set(m);
            errors.set(Errors::default());
        })
    };
    let on_username = {
        let username = username.clone();
        let errors = errors.clone();
        Callback::from(move |e: InputEvent| {
            username.set(e.target_unchecked_into::<HtmlInputElement>().value());
            errors.set(Errors {
                username: None,
                form: None,
                ..(*errors).clone()
            });
        })
    };
    let on_password = {
        let password = password.clone();
        let errors = errors.clone();
        Callback::from(move |e: InputEvent| {
            password.set(e.target_unchecked_into::<HtmlInputElement>().value());
            errors.set(Errors {
                password: None,
                form: None,
                ..(*errors).clone()
            });
        })
    };
    let toggle_password = {
        let show_password = show_password.clone();
        Callback::from(move |_: MouseEvent| show_password.set(!*show_password))
    };
    let change_server = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::ChangeServer))
    };

    let onsubmit = {
        let (mode, username, password, errors, busy) = (
            mode.clone(),
            username.clone(),
            password.clone(),
            errors.clone(),
            busy.clone(),
        );
        let d = state.dispatcher();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            let name = username.trim().to_string();
            let pass = (*password).clone();
            let mut found = Errors::default();
            if name.is_empty() {
                found.username = Some("Enter your username.".into());
            }
            if pass.is_empty() {
                found.password = Some("Enter your password.".into());
            }
            if *mode == Mode::Register {
                if let (None, Err(rule)) = (&found.username, validate::username(&name)) {
                    found.username = Some(sentence(rule.message));
                }
                if let (None, Err(rule)) = (&found.password, validate::password(&pass)) {
                    found.password = Some(sentence(rule.message));
                }
            }
            if found != Errors::default() {
                errors.set(found);
                return;
            }
            busy.set(true);
            let (mode, errors, busy, d) = (*mode, errors.clone(), busy.clone(), d.clone());
            spawn_local(async move {
                let result = match mode {
                    Mode::Login => ipc::login(name, pass).await,
                    Mode::Register => ipc::register(name, pass).await,
                };
                busy.set(false);
                match result {
                    Ok(user) => d.dispatch(Action::LoggedIn(user)),
                    Err(e) => {
                        let text = e.user_message();
                        errors.set(match e.server_code() {
                            Some(ErrorCode::UsernameTaken | ErrorCode::InvalidUsername) => Errors {
                                username: Some(text),
                                ..Errors::default()
                            },
                            Some(ErrorCode::InvalidPassword) => Errors {
                                password: Some(text),
                                ..Errors::default()
                            },
                            _ => Errors {
                                form: Some(text),
                                ..Errors::default()
                            },
                        });
                    }
                }
            });
        })
    };

    let register = *mode == Mode::Register;
    let server = state.server_url.clone().unwrap_or_default();
    let title = auth_title(register, state.username_hint.as_deref(), &server);
    html! {
        <main class="center-screen">
            <form class="card auth-card" onsubmit={onsubmit} novalidate=true>
                <div class="brand">
                    <span class="brand-mark"><IconView icon={Icon::Chat} /></span>
                    <h1>{ title }</h1>
                    <p class="muted server-line">
                        <IconView icon={Icon::Server} />
                        <span class="server-url" title={server.clone()}>{ server.clone() }</span>
                        <button type="button" class="link-button" onclick={change_server}>{ "Change" }</button>
                    </p>
                </div>
                if let Some(notice) = &state.notice {
                    <div class="notice" role="alert">
                        <IconView icon={Icon::Alert} />
                        <span>{ format!("You were signed out: {notice}") }</span>
                    </div>
                }
                <div class="segmented" role="tablist" aria-label="Log in or register">
                    <button type="button" role="tab" aria-selected={(!register).to_string()}
                        class={classes!("segment", (!register).then_some("active"))}
                        onclick={set_mode(Mode::Login)}>{ "Log in" }</button>
                    <button type="button" role="tab" aria-selected={register.to_string()}
                        class={classes!("segment", register.then_some("active"))}
                        onclick={set_mode(Mode::Register)}>{ "Create account" }</button>
                </div>
                <label class="field">
                    <span class="field-label">{ "Username" }</span>
                    <input ref={username_ref} id="username" type="text" autocomplete="username"
                        autocapitalize="none" spellcheck="false"
                        class={classes!(errors.username.is_some().then_some("invalid"))}
                        aria-invalid={errors.username.is_some().to_string()}
                        aria-describedby="username-error"
                        value={(*username).clone()} oninput={on_username} />
                    <span id="username-error" class="error-text">{ errors.username.clone().unwrap_or_default() }</span>
                    if register && errors.username.is_none() {
                        <span class="hint">{ "3–32 characters: letters, digits, _ . -" }</span>
                    }
                </label>
                <label class="field">
                    <span class="field-label">{ "Password" }</span>
                    <span class="password-row">
                        <input ref={password_ref} id="password"
                            type={if *show_password { "text" } else { "password" }}
                            autocomplete={if register { "new-password" } else { "current-password" }}
                            class={classes!(errors.password.is_some().then_some("invalid"))}
                            aria-invalid={errors.password.is_some().to_string()}
                            aria-describedby="password-error"
                            value={(*password).clone()} oninput={on_password} />
                        <button type="button" class="link-button reveal" onclick={toggle_password}
                            aria-pressed={show_password.to_string()}>
                            { if *show_password { "Hide" } else { "Show" } }
                        </button>
                    </span>
                    <span id="password-error" class="error-text">{ errors.password.clone().unwrap_or_default() }</span>
                    if register && errors.password.is_none() {
                        <span class="hint">{ "At least 8 characters" }</span>
                    }
                </label>
                if let Some(text) = &errors.form {
                    <p class="form-error" role="alert"><IconView icon={Icon::Alert} />{ text.clone() }</p>
                }
                <button class="button primary wide" type="submit" disabled={*busy}>
                    if *busy {
                        <span class="spinner"></span>
                        { if register { "Creating account…" } else { "Logging in…" } }
                    } else {
                        { if register { "Create account" } else { "Log in" } }
                    }
                </button>
                if !register && state.username_hint.is_none() {
                    <p class="muted auth-switch">
                        { "New to this server? " }
                        <button type="button" class="link-button" onclick={set_mode(Mode::Register)}>
                            { "Create an account" }
                        </button>
                    </p>
                }
            </form>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::auth_title;

    #[test]
    fn welcome_back_only_when_someone_is_remembered() {
        assert_eq!(
            auth_title(false, None, "http://127.0.0.1:8085"),
            "Sign in to 127.0.0.1:8085"
        );
        assert_eq!(
            auth_title(false, Some("ann"), "https://chat.example.com/"),
            "Welcome back, ann"
        );
        assert_eq!(auth_title(true, Some("ann"), "x"), "Create your account");
        assert_eq!(auth_title(false, Some(""), ""), "Sign in");
    }
}
