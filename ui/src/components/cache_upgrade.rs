//! The start screen while the backend upgrades the local cache (the first start after an
//! update that changed its layout): what is happening, how far it is, and that nothing is lost.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct CacheUpgradeProps {
    /// Percent done, 0 to 100.
    pub percent: u8,
}

#[function_component]
pub fn CacheUpgrade(props: &CacheUpgradeProps) -> Html {
    let percent = props.percent.min(100);
    html! {
        <main class="center-screen" aria-busy="true">
            <div class="card cache-upgrade">
                <h1>{ "Updating local history…" }</h1>
                <div class="cache-upgrade-progress">
                    <progress
                        max="100"
                        value={percent.to_string()}
                        aria-label="Updating local history"
                    ></progress>
                    <span class="cache-upgrade-percent" role="status">
                        { format!("{percent}%") }
                    </span>
                </div>
                <p class="muted">
                    { "This version stores your message history differently, for faster search. \
                       It is reorganized once, on this start; your messages, drafts and unsent \
                       messages stay as they are. If the app is closed meanwhile, it goes on \
                       where it stopped at the next start." }
                </p>
            </div>
        </main>
    }
}
