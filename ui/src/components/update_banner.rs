//! A quiet strip above the chat once a newer app version from the user's server is downloaded
//! and verified: "Chat 1.4.0 is ready — Restart to update". Never modal, shown only when there
//! is something to do; "Later" hides it until the next start (Settings still offers it).

use super::icon::{Icon, IconView};
use crate::effects::{self, Dispatcher};
use crate::ipc;
use crate::state::{Action, AppContext};
use yew::platform::spawn_local;
use yew::prelude::*;

/// Installs the ready update; the app then restarts as the new version. On failure (nothing
/// changed) a toast says why and `busy` is cleared so the user can try again.
pub fn install(busy: UseStateHandle<bool>, d: Dispatcher) {
    busy.set(true);
    spawn_local(async move {
        if let Err(e) = ipc::install_update().await {
            busy.set(false);
            effects::toast(&d, &e);
        }
    });
}

#[function_component]
pub fn UpdateBanner() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let busy = use_state(|| false);
    let later = use_state(|| false);
    {
        // The backend may have found the update before this view listened for its event.
        let d = state.dispatcher();
        use_effect_with((), move |_| {
            spawn_local(async move {
                if let Ok(status) = ipc::update_status().await {
                    if let Some(update) = status.ready {
                        d.dispatch(Action::UpdateReady(update));
                    }
                }
            });
        });
    }
    let Some(update) = state.update.clone() else {
        return Html::default();
    };
    if *later {
        return Html::default();
    }
    let restart = {
        let busy = busy.clone();
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| install(busy.clone(), d.clone()))
    };
    let hide = {
        let later = later.clone();
        Callback::from(move |_: MouseEvent| later.set(true))
    };
    let text = if *busy {
        format!("Installing Chat {}…", update.version)
    } else {
        format!("Update available: Chat {} is ready.", update.version)
    };
    html! {
        <div class="banner info update-banner" role="status" aria-live="polite"
            title={update.notes.clone().unwrap_or_default()}>
            if *busy { <span class="spinner small"></span> } else { <IconView icon={Icon::Download} /> }
            <span class="banner-text">{ text }</span>
            <button type="button" class="button small banner-action" id="restart-to-update"
                disabled={*busy} onclick={restart}>
                { "Restart to update" }
            </button>
            <button type="button" class="button small banner-action quiet" disabled={*busy} onclick={hide}>
                { "Later" }
            </button>
        </div>
    }
}
