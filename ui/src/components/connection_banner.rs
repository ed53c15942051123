//! A thin strip above the chat while the connection is not up: connecting, reconnecting (when
//! the next attempt happens, and a "Reconnect now" button), or offline. It never covers the
//! messages.

use super::icon::{Icon, IconView};
use crate::format::{now_ms, time_of_day_seconds};
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

/// A wait up to this long is counted down second by second; a longer one says when the next
/// attempt happens. A countdown redraws the window every second, for as long as the server is
/// away (`chat-client-bench`, idle CPU offline: 3.4 % of a core with a 30 s countdown).
const COUNTDOWN_S: i64 = 10;

/// What the banner says of the wait: whole seconds left while counting down, else `Later`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    None,
    Seconds(i64),
    Later,
}

fn wait_at(reconnect_at_ms: Option<i64>, now: i64) -> Wait {
    match reconnect_at_ms.map(|at| ((at - now).max(0) + 999) / 1000) {
        None | Some(0) => Wait::None,
        Some(left) if left <= COUNTDOWN_S => Wait::Seconds(left),
        Some(_) => Wait::Later,
    }
}

#[function_component]
pub fn ConnectionBanner(props: &ConnectionBannerProps) -> Html {
    // Re-rendered only when what it says changes: each second of the last ten, not before.
    let wait = use_state_eq(|| wait_at(props.reconnect_at_ms, now_ms()));
    {
        let wait = wait.clone();
        use_effect_with(props.reconnect_at_ms, move |at| {
            let at = *at;
            wait.set(wait_at(at, now_ms()));
            let timer = at.map(|_| {
                gloo::timers::callback::Interval::new(500, move || wait.set(wait_at(at, now_ms())))
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
            let when = match (*wait, props.reconnect_at_ms) {
                (Wait::Seconds(left), _) => format!("Reconnecting in {left} s"),
                (Wait::Later, Some(at)) => format!("Reconnecting at {}", time_of_day_seconds(at)),
                _ => "Reconnecting…".to_string(),
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
    let waiting =
        matches!(props.state, ConnectionState::Reconnecting { .. }) && *wait != Wait::None;
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
