//! The settings section listing the users this account blocked, each with "Unblock".

use crate::effects;
use crate::state::AppContext;
use yew::prelude::*;

#[function_component]
pub fn BlockedUsers() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    {
        let d = state.dispatcher();
        use_effect_with((), move |_| effects::load_blocks(&d));
    }
    let list = match &state.blocked {
        None => html! { <p class="muted" role="status">{ "Loading…" }</p> },
        Some(list) if list.is_empty() => {
            html! { <p class="muted">{ "You have not blocked anyone." }</p> }
        }
        Some(list) => html! {
            <ul class="blocked-list" role="list">
            { for list.iter().map(|u| {
                let onclick = {
                    let d = state.dispatcher();
                    let (user, name) = (u.id, u.username.clone());
                    Callback::from(move |_: MouseEvent| effects::unblock(&d, user, name.clone()))
                };
                let label = format!("Unblock {}", crate::format::isolate(&u.username));
                html! {
                    <li key={u.id.0} class="blocked-row">
                        <span class="member-name-text"><bdi>{ u.username.clone() }</bdi></span>
                        <button type="button" class="button small unblock" title={label.clone()} aria-label={label} {onclick}>
                            { "Unblock" }
                        </button>
                    </li>
                }
            }) }
            </ul>
        },
    };
    html! {
        <section class="settings-section blocked-users" aria-label="Blocked users">
            <strong>{ "Blocked users" }</strong>
            <span class="muted">{ "They cannot message you or invite you to rooms." }</span>
            { list }
        </section>
    }
}
