//! A user's card (issue 13): display name and username, presence as the server shows it to
//! us, and a "Message" button that opens (or starts) the direct room with them.

use super::avatar::Avatar;
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::effects;
use crate::format::{now_ms, presence_text};
use crate::ipc;
use crate::state::AppContext;
use protocol::ipc::UserView;
use protocol::UserId;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct UserCardProps {
    pub user: UserId,
    pub onclose: Callback<()>,
}

#[function_component]
pub fn UserCard(props: &UserCardProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let card = use_state(|| None::<Result<UserView, String>>);
    {
        let card = card.clone();
        use_effect_with(props.user, move |user| {
            let user = *user;
            spawn_local(async move {
                card.set(Some(
                    ipc::user_card(user).await.map_err(|e| e.user_message()),
                ));
            });
        });
    }
    let user = props.user;
    let is_me = state.my_id() == Some(user);
    let message = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| effects::open_dm(&d, user))
    };
    let body = match &*card {
        None => {
            html! { <div class="list-status" role="status"><span class="spinner small"></span>{ "Loading…" }</div> }
        }
        Some(Err(text)) => html! { <p class="error-text" role="alert">{ text.clone() }</p> },
        Some(Ok(u)) => {
            // Live presence beats the card's snapshot once a presence frame came.
            let status = state.status(u.id, u.online);
            let last_seen = state
                .presence
                .get(&u.id)
                .and_then(|p| p.last_seen)
                .or(u.last_seen);
            let shown = u.display_name.clone().unwrap_or_else(|| u.username.clone());
            html! {<>
                <div class="user-card-head">
                    <Avatar name={shown.clone()} status={Some(status)} class="large" />
                    <div class="user-card-names">
                        <strong class="user-card-display"><bdi>{ shown }</bdi></strong>
                        <span class="muted user-card-username">{ "@" }<bdi>{ u.username.clone() }</bdi></span>
                        <span class="user-card-presence">{ presence_text(status, last_seen, now_ms()) }</span>
                    </div>
                </div>
                if !is_me {
                    <div class="dialog-actions">
                        <button id="user-card-message" type="button" class="button primary" onclick={message}>
                            <IconView icon={Icon::Chat} />{ "Message" }
                        </button>
                    </div>
                }
            </>}
        }
    };
    html! {
        <Modal title="Profile" onclose={props.onclose.clone()} class="user-card">
            { body }
        </Modal>
    }
}
