//! First run: which chat server to use. `set_server` checks the address and that a chat
//! server answers there before the app moves on to logging in. A server whose certificate this
//! computer does not trust gets a prompt with the certificate's fingerprint, subject and
//! issuer; the user may trust it for this server (`trust_certificate`).

use super::icon::{Icon, IconView};
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::ipc::{AppErrorCode, CertificateView};
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[function_component]
pub fn ServerScreen() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let url = use_state(|| state.server_url.clone().unwrap_or_default());
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    // A server whose certificate is not trusted: its URL and certificate, for the prompt, and
    // whether it replaced one the user trusted before (changed).
    let untrusted = use_state(|| None::<(String, CertificateView, bool)>);

    let oninput = {
        let url = url.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            url.set(e.target_unchecked_into::<HtmlInputElement>().value());
            error.set(None);
        })
    };
    let onsubmit = {
        let url = url.clone();
        let error = error.clone();
        let busy = busy.clone();
        let untrusted = untrusted.clone();
        let d = state.dispatcher();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            let mut value = url.trim().to_string();
            // "chat.example.com" means https://chat.example.com.
            if !value.is_empty() && !value.contains("://") {
                value = format!("https://{value}");
            }
            if value.is_empty() {
                error.set(Some("Enter the address of your chat server.".into()));
                return;
            }
            busy.set(true);
            let (error, busy, d) = (error.clone(), busy.clone(), d.clone());
            let untrusted = untrusted.clone();
            spawn_local(async move {
                let result = ipc::set_server(value.clone()).await;
                busy.set(false);
                match result {
                    Ok(()) => d.dispatch(Action::ServerChosen(value)),
                    Err(e)
                        if matches!(
                            e.code(),
                            Some(
                                AppErrorCode::UntrustedCertificate
                                    | AppErrorCode::CertificateChanged
                            )
                        ) =>
                    {
                        let changed = e.code() == Some(AppErrorCode::CertificateChanged);
                        if let Some(cert) = e.certificate() {
                            untrusted.set(Some((value, cert.clone(), changed)));
                        } else {
                            error.set(Some(e.user_message()));
                        }
                    }
                    Err(e) => {
                        let text = match e.code() {
                            Some(AppErrorCode::BadUrl) => format!(
                                "“{value}” is not a valid server address. It should look like \
                                 https://chat.example.com or http://localhost:8080"
                            ),
                            Some(AppErrorCode::ServerUnreachable) => format!(
                                "No chat server answered at {value}. Check the address, and \
                                 that the server is running and reachable."
                            ),
                            _ => e.user_message(),
                        };
                        error.set(Some(text));
                    }
                }
            });
        })
    };

    if let Some((server, cert, changed)) = (*untrusted).clone() {
        let cancel = {
            let untrusted = untrusted.clone();
            Callback::from(move |_: MouseEvent| untrusted.set(None))
        };
        let trust = {
            let (untrusted, error, busy) = (untrusted.clone(), error.clone(), busy.clone());
            let d = state.dispatcher();
            let (server, sha256) = (server.clone(), cert.sha256.clone());
            Callback::from(move |_: MouseEvent| {
                busy.set(true);
                let (untrusted, error, busy, d) =
                    (untrusted.clone(), error.clone(), busy.clone(), d.clone());
                let (server, sha256) = (server.clone(), sha256.clone());
                spawn_local(async move {
                    let result = ipc::trust_certificate(server.clone(), sha256).await;
                    busy.set(false);
                    untrusted.set(None);
                    match result {
                        Ok(()) => d.dispatch(Action::ServerChosen(server)),
                        Err(e) => error.set(Some(e.user_message())),
                    }
                });
            })
        };
        return html! {
            <main class="center-screen">
                <div class="card auth-card cert-prompt" role="alertdialog" aria-labelledby="cert-title">
                    <div class="brand">
                        <span class="brand-mark warning"><IconView icon={Icon::Alert} /></span>
                        if changed {
                            <h1 id="cert-title">{ "Certificate changed" }</h1>
                            <p class="muted">
                                { format!("{server} now presents another certificate than the one \
                                           you trusted. Someone may be posing as the server: the app \
                                           does not connect. Trust the new one only if the server's \
                                           operator confirms they replaced it and the fingerprints match.") }
                            </p>
                        } else {
                            <h1 id="cert-title">{ "Untrusted certificate" }</h1>
                            <p class="muted">
                                { format!("This computer does not trust the certificate of {server}. \
                                           Ask the server's operator for its SHA-256 fingerprint and \
                                           trust it only if the two match.") }
                            </p>
                        }
                    </div>
                    <dl class="cert-details">
                        <dt>{ "SHA-256 fingerprint" }</dt>
                        <dd id="cert-sha256" class="fingerprint">{ cert.sha256.clone() }</dd>
                        <dt>{ "Issued to" }</dt>
                        <dd id="cert-subject">{ cert.subject.clone() }</dd>
                        <dt>{ "Issued by" }</dt>
                        <dd id="cert-issuer">{ cert.issuer.clone() }</dd>
                    </dl>
                    <div class="dialog-actions">
                        <button type="button" class="button" onclick={cancel}>{ "Cancel" }</button>
                        <button id="trust-cert" type="button" class="button danger" disabled={*busy} onclick={trust}>
                            { if changed { "Trust the new certificate" } else { "Trust this certificate" } }
                        </button>
                    </div>
                </div>
            </main>
        };
    }

    let invalid = error.is_some();
    html! {
        <main class="center-screen">
            <form class="card auth-card" onsubmit={onsubmit} novalidate=true>
                <div class="brand">
                    <span class="brand-mark"><IconView icon={Icon::Chat} /></span>
                    <h1>{ "Welcome to Chat" }</h1>
                    <p class="muted">{ "Connect to your team's chat server to get started." }</p>
                </div>
                <label class="field">
                    <span class="field-label">{ "Server address" }</span>
                    <span class={classes!("input-with-icon", invalid.then_some("invalid"))}>
                        <IconView icon={Icon::Server} />
                        <input id="server-url" type="url" inputmode="url" autocomplete="url"
                            spellcheck="false" placeholder="https://chat.example.com"
                            value={(*url).clone()} oninput={oninput} autofocus=true
                            aria-invalid={invalid.to_string()}
                            aria-describedby="server-error" />
                    </span>
                </label>
                <p id="server-error" class="error-text" role="alert">
                    { error.as_ref().cloned().unwrap_or_default() }
                </p>
                <button class="button primary wide" type="submit" disabled={*busy}>
                    if *busy { <span class="spinner"></span>{ "Connecting…" } } else { { "Continue" } }
                </button>
            </form>
        </main>
    }
}
