//! What the user can do to someone else from the member panel or a direct room's header:
//! block or unblock them, and, in a group room the user owns, ban them.

use crate::effects;
use crate::state::{Action, AppContext, Dialog};
use protocol::{RoomId, UserId};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MemberActionsProps {
    pub user: UserId,
    pub name: AttrValue,
    /// The group room whose owner may ban `user` from it; `None` where banning does not apply
    /// (direct rooms, rooms the user does not own, the owner themselves).
    #[prop_or_default]
    pub ban_from: Option<RoomId>,
}

#[function_component]
pub fn MemberActions(props: &MemberActionsProps) -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let user = props.user;
    let name = props.name.to_string();
    let blocked = state.is_blocked(user);
    let toggle_block = {
        let d = state.dispatcher();
        let name = name.clone();
        Callback::from(move |_: MouseEvent| {
            if blocked {
                effects::unblock(&d, user, name.clone());
            } else {
                d.dispatch(Action::Open(Dialog::Block(user)));
            }
        })
    };
    let (block_text, block_label) = if blocked {
        (
            "Unblock",
            format!("Unblock {}", crate::format::isolate(&name)),
        )
    } else {
        ("Block", format!("Block {}", crate::format::isolate(&name)))
    };
    let ban = props.ban_from.map(|room| {
        let d = state.dispatcher();
        let label = format!("Ban {} from this room", crate::format::isolate(&name));
        let onclick = Callback::from(move |_: MouseEvent| d.dispatch(Action::Open(Dialog::Ban(room, user))));
        html! {
            <button type="button" class="button small member-ban" title={label.clone()} aria-label={label} {onclick}>
                { "Ban" }
            </button>
        }
    });
    html! {
        <span class="member-actions">
            <button type="button" class={classes!("button", "small", "member-block", blocked.then_some("pressed"))}
                title={block_label.clone()} aria-label={block_label} aria-pressed={blocked.to_string()}
                onclick={toggle_block}>
                { block_text }
            </button>
            { for ban }
        </span>
    }
}
