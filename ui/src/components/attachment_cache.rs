//! The settings row of the downloaded-file cache: how much it holds, and how much it may
//! (least recently used files leave first when it is full; logging out empties it).

use super::attachment_list::human_size;
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::ipc::BlobCacheView;
use web_sys::HtmlSelectElement;
use yew::platform::spawn_local;
use yew::prelude::*;

/// The sizes offered, in bytes (the backend's default is the second).
const SIZES: [u64; 4] = [100_000_000, 250_000_000, 1_000_000_000, 4_000_000_000];

#[function_component]
pub fn AttachmentCacheSetting() -> Html {
    let state = use_context::<AppContext>();
    let view = use_state(|| None::<BlobCacheView>);
    {
        let view = view.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                if let Ok(v) = ipc::blob_cache().await {
                    view.set(Some(v));
                }
            });
        });
    }
    let onchange = {
        let view = view.clone();
        Callback::from(move |e: Event| {
            let Ok(bytes) = e
                .target_unchecked_into::<HtmlSelectElement>()
                .value()
                .parse::<u64>()
            else {
                return;
            };
            let (view, state) = (view.clone(), state.clone());
            spawn_local(async move {
                match ipc::set_blob_cache_limit(bytes).await {
                    Ok(v) => view.set(Some(v)),
                    Err(e) => {
                        if let Some(state) = state {
                            state.dispatch(Action::Toast(e.user_message()));
                        }
                    }
                }
            });
        })
    };
    let current = (*view).map(|v| v.limit);
    // A size set elsewhere (not one offered) is listed too.
    let other = current.filter(|c| !SIZES.contains(c));
    let used = (*view)
        .map(|v| {
            format!(
                "{} used now. Least recently viewed files go first.",
                human_size(v.used)
            )
        })
        .unwrap_or_default();
    // Below the account actions (which stay where they are on a short window).
    html! {
        <label class="switch-row blob-cache-row">
            <span>
                <strong>{ "Downloaded files kept" }</strong>
                <span class="muted blob-cache-used">{ used }</span>
            </span>
            <select class="blob-cache-limit" disabled={current.is_none()} {onchange}>
                { for SIZES.iter().chain(other.iter()).map(|size| html! {
                    <option value={size.to_string()} selected={current == Some(*size)}>
                        { format!("Up to {}", human_size(*size)) }
                    </option>
                }) }
            </select>
        </label>
    }
}
