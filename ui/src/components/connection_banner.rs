//! A thin strip above the chat while the connection is not up: connecting, reconnecting with a
//! countdown to the next attempt and a "Reconnect now" button, or offline. It never covers the
//! messages.

use super::icon::{Icon, IconView};
use crate::format::now_ms;
use crate::ipc;
use protocol::ipc::ConnectionState;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ConnectionBannerProps {
    pub state: ConnectionState,
    /// When the next reconnect attempt happens (ms since epoch).
    pub reconnect_at_ms: Option<i64>,
}

#[function_component]
pub fn ConnectionBanner(props: &ConnectionBannerProps) -> Html {
    // Re-render every second while counting down.
    let now = use_state(now_ms);
    {
        let now = now.clone();
        let counting = props.reconnect_at_ms.is_some();
        use_effect_with(counting, move |counting| {
            let timer = counting.then(|| {
                now.set(now_ms());
                gloo::timers::callback::Interval::new(500, move || now.set(now_ms()))
            });
            move || drop(timer)
        });
    }
    let (class, text) = match &props.state {
        ConnectionState::Online => return Html::default(),
        ConnectionState::Connecting => ("info", "Connecting…".to_string()),
        ConnectionState::Offline => (
            "warn",
            "You're offline. Messages you write are kept and sent when you reconnect.".to_string(),
        ),
        ConnectionState::Reconnecting {
            attempt, reason, ..
        } => {
            let left = props
                .reconnect_at_ms
                .map(|at| ((at - *now).max(0) + 999) / 1000)
                .unwrap_or(0);
            let when = if left > 0 {
                format!("Reconnecting in {left} s")
            } else {
                "Reconnecting…".to_string()
            };
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            };
            let tries = if *attempt > 1 {
                format!(" · attempt {attempt}")
            } else {
                String::new()
            };
            ("warn", format!("Connection lost{why}. {when}{tries}"))
        }
    };
    // Only while waiting for the next attempt (not while one is under way).
    let waiting = matches!(props.state, ConnectionState::Reconnecting { .. })
        && props.reconnect_at_ms.is_some_and(|at| at > *now);
    // The spinner only while an attempt is under way: between attempts (seconds to minutes)
    // a spinning CSS animation kept the web view redrawing, about half a core for as long as
    // the server was away (`chat-client-bench`, idle CPU offline).
    let busy = !waiting && !matches!(props.state, ConnectionState::Offline);
    let icon = if waiting { Icon::Clock } else { Icon::Alert };
    let reconnect = Callback::from(|_: MouseEvent| {
        spawn_local(async {
            let _ = ipc::reconnect_now().await;
        });
    });
    html! {
        <div class={classes!("banner", class)} role="status" aria-live="polite">
            if busy { <span class="spinner small"></span> } else { <IconView {icon} /> }
            <span class="banner-text">{ text }</span>
            if waiting {
                <button type="button" class="button small banner-action" onclick={reconnect}>
                    { "Reconnect now" }
                </button>
            }
        </div>
    }
}
