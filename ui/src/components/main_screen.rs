//! The logged-in window: room list, the open room, the members panel, the connection banner
//! and whichever dialog is open.

use super::account_dialog::AccountDialog;
use super::ban_dialog::BanDialog;
use super::block_dialog::BlockDialog;
use super::browse_rooms_dialog::BrowseRoomsDialog;
use super::chat_view::ChatView;
use super::connection_banner::ConnectionBanner;
use super::create_room_dialog::CreateRoomDialog;
use super::leave_room_dialog::LeaveRoomDialog;
use super::member_panel::MemberPanel;
use super::new_dm_dialog::NewDmDialog;
use super::settings_dialog::SettingsDialog;
use super::sidebar::Sidebar;
use super::update_banner::UpdateBanner;
use crate::effects;
use crate::state::{Action, AppContext, Dialog};
use yew::prelude::*;

#[function_component]
pub fn MainScreen() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    {
        // Who is blocked: the member panel and direct rooms offer "Unblock" for them.
        let d = state.dispatcher();
        use_effect_with((), move |_| effects::load_blocks(&d));
    }
    let close_dialog = {
        let d = state.dispatcher();
        Callback::from(move |()| d.dispatch(Action::CloseDialog))
    };
    let close_sidebar = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(Action::SetSidebar(false)))
    };
    let dialog = match state.dialog {
        None => Html::default(),
        Some(Dialog::CreateRoom) => html! { <CreateRoomDialog onclose={close_dialog} /> },
        Some(Dialog::BrowseRooms) => html! { <BrowseRoomsDialog onclose={close_dialog} /> },
        Some(Dialog::NewDm) => html! { <NewDmDialog onclose={close_dialog} /> },
        Some(Dialog::Settings) => html! { <SettingsDialog onclose={close_dialog} /> },
        Some(Dialog::Account) => html! { <AccountDialog onclose={close_dialog} /> },
        Some(Dialog::LeaveRoom(room)) => {
            html! { <LeaveRoomDialog {room} onclose={close_dialog} /> }
        }
        Some(Dialog::Block(user)) => html! { <BlockDialog {user} onclose={close_dialog} /> },
        Some(Dialog::Ban(room, user)) => {
            html! { <BanDialog {room} {user} onclose={close_dialog} /> }
        }
        Some(Dialog::RoomSettings(room)) => {
            html! { <super::room_settings_dialog::RoomSettingsDialog {room} onclose={close_dialog} /> }
        }
        Some(Dialog::UserCard(user)) => {
            html! { <super::user_card::UserCard {user} onclose={close_dialog} /> }
        }
    };
    // Direct rooms have no member list (two people, both in the header).
    let members_open = state.show_members
        && state
            .current_room()
            .is_some_and(|r| r.room.kind == protocol::rest::RoomKind::Group);
    html! {
        <div class={classes!(
            "layout",
            state.sidebar_open.then_some("sidebar-open"),
            members_open.then_some("members-open"),
        )}>
            <Sidebar />
            <div class="scrim" onclick={close_sidebar} aria-hidden="true"></div>
            <main class="chat-column">
                <ConnectionBanner state={state.connection.clone()} reconnect_at_ms={state.reconnect_at_ms} />
                <UpdateBanner />
                <ChatView />
            </main>
            if members_open {
                <MemberPanel />
            }
            { dialog }
        </div>
    }
}
