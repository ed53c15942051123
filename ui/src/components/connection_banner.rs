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

/// How long until [`wait_at`] says something else (ms), `None` when it never will: the banner
/// wakes only then (a timer every half second woke the web view for nothing between attempts).
fn next_change_in(reconnect_at_ms: Option<i64>, now: i64) -> Option<i64> {
    let left = reconnect_at_ms? - now;
    if left <= 0 {
        return None;
    }
    let seconds = (left + 999) / 1000;
    // To the start of the countdown, else to the next whole second; a little after, so the
    // new value is there when the timer fires.
    let next = if seconds > COUNTDOWN_S {
        left - COUNTDOWN_S * 1000
    } else {
        left - (seconds - 1) * 1000
    };
    Some(next + 5)
}

#[function_component]
pub fn ConnectionBanner(props: &ConnectionBannerProps) -> Html {
    // Re-rendered only when what it says changes: each second of the last ten, not before;
    // and woken only then.
    let wait = use_state_eq(|| wait_at(props.reconnect_at_ms, now_ms()));
    {
        let wait = wait.clone();
        use_effect_with((props.reconnect_at_ms, *wait), move |(at, _)| {
            let at = *at;
            wait.set(wait_at(at, now_ms()));
            let timer = next_change_in(at, now_ms()).map(|ms| {
                let ms = u32::try_from(ms.clamp(1, 1 << 30)).unwrap_or(1);
                gloo::timers::callback::Timeout::new(ms, move || wait.set(wait_at(at, now_ms())))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The banner wakes when the countdown starts and then once a second, each time to a new
    /// text, and not at all when there is nothing to count.
    #[test]
    fn the_banner_wakes_only_when_its_text_changes() {
        let at = 100_000;
        assert_eq!(next_change_in(None, 0), None);
        assert_eq!(next_change_in(Some(at), at), None);
        // A minute away: "at 12:34:56" until ten seconds are left.
        let now = at - 60_000;
        let wake = now + next_change_in(Some(at), now).unwrap_or(0);
        assert_eq!(wait_at(Some(at), wake - 10), Wait::Later);
        assert_eq!(wait_at(Some(at), wake), Wait::Seconds(10));
        // Then every second, each time one less.
        let mut now = wake;
        for left in (1..=10).rev() {
            assert_eq!(wait_at(Some(at), now), Wait::Seconds(left));
            now += next_change_in(Some(at), now).unwrap_or(0);
            assert!(now - wake <= 10_000 + 100, "{now}");
        }
        assert_eq!(wait_at(Some(at), now), Wait::None);
        assert_eq!(next_change_in(Some(at), now), None);
    }
}
