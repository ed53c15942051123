//! Shown in place of a room the user was just removed or banned from, while it was open: what
//! happened, by whom, and what it means for them.

use super::icon::{Icon, IconView};
use crate::format::isolate;
use crate::state::{Action, AppContext, Dialog, Removal};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct RemovedNoticeProps {
    pub removal: Removal,
}

/// The heading and the explanation.
pub fn removal_text(r: &Removal) -> (String, String) {
    let room = isolate(&r.room_name);
    let by = r
        .by_name
        .as_deref()
        .map(isolate)
        .unwrap_or_else(|| "The room's owner".to_string());
    if r.banned {
        (
            format!("You were banned from #{room}"),
            format!(
                "{by} banned you. You can no longer read or post in this room, and you cannot \
                 join it again or be invited back unless they lift the ban."
            ),
        )
    } else {
        (
            format!("You were removed from #{room}"),
            format!("{by} removed you from this room. You can no longer read or post in it."),
        )
    }
}

#[function_component]
pub fn RemovedNotice(props: &RemovedNoticeProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let (title, text) = removal_text(&props.removal);
    let open_sidebar = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::SetSidebar(true)))
    };
    let browse = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::BrowseRooms)))
    };
    html! {
        <section class="chat empty-chat removed-room" aria-live="polite">
            <header class="chat-header">
                <button class="icon-button menu-button" type="button" aria-label="Show rooms" onclick={open_sidebar}>
                    <IconView icon={Icon::Menu} />
                </button>
            </header>
            <div class="welcome">
                <span class="brand-mark large removed-mark"><IconView icon={Icon::Lock} /></span>
                <h1>{ title }</h1>
                <p class="muted removed-text">{ text }</p>
                <div class="welcome-actions">
                    <button class="button" type="button" onclick={browse}>
                        <IconView icon={Icon::Compass} />{ "Browse rooms" }
                    </button>
                </div>
            </div>
        </section>
    }
}
