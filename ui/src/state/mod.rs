//! App state: one [`AppState`] behind a Yew reducer, changed only through [`Action`]s.
//!
//! Backend events and command results become actions; components read the state from the
//! [`AppContext`] and dispatch actions. The reducer is pure (the time comes in with the action),
//! so its rules are unit-tested on the host.

use protocol::ipc::{ConnectionState, MemberView, MessageView, RoomView};
use protocol::limits::Limits;
use protocol::rest::{RoomKind, User, UserRef};
use protocol::{RoomId, UserId};
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;

mod action;
mod apply;
#[cfg(test)]
mod tests;
mod timeline;

pub use action::Action;
pub use timeline::{Timeline, KEEP_AWAY, KEEP_READING, TRIM_AT};

/// The app-wide state handle components get from context.
pub type AppContext = UseReducerHandle<AppState>;

/// Which top-level screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Waiting for the first snapshot.
    #[default]
    Loading,
    /// Choose the server URL.
    Server,
    /// Log in or register.
    Auth,
    /// Rooms and chat.
    Main,
}

/// A modal dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    CreateRoom,
    BrowseRooms,
    NewDm,
    Settings,
    /// Sessions, password, sign out everywhere.
    Account,
    LeaveRoom(RoomId),
    /// Confirms blocking a user (what blocking does, then block).
    Block(UserId),
    /// Confirms banning a member from a room the user owns.
    Ban(RoomId, UserId),
    /// Name, topic, notification level, delete (issue 13).
    RoomSettings(RoomId),
    /// Someone's card: names, presence, "Message".
    UserCard(UserId),
}

/// Why the room that was open went away: someone removed or banned the user (shown in its
/// place until they pick another room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub room: RoomId,
    pub room_name: String,
    pub by_name: Option<String>,
    pub banned: bool,
}

impl Removal {
    /// One line for a toast (when the room was not open).
    pub fn summary(&self) -> String {
        let what = if self.banned { "banned" } else { "removed" };
        let room = crate::format::isolate(&self.room_name);
        match &self.by_name {
            Some(by) => format!("{} {what} you from #{room}", crate::format::isolate(by)),
            None => format!("You were {what} from #{room}"),
        }
    }
}

/// Someone typing in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typist {
    pub user: UserId,
    pub username: String,
    /// When the indicator expires (ms since epoch) unless refreshed.
    pub until_ms: i64,
}

/// Presence learned from events, newer than what the room list or members said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    pub last_seen: Option<i64>,
}

/// What a presence dot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Online,
    Offline,
    /// We are not connected, so we cannot know (a grey, hollow dot).
    Unknown,
}

impl Status {
    pub fn is_online(self) -> bool {
        self == Status::Online
    }
}

/// A short message at the bottom of the window (errors of background actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub id: u32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    pub screen: Screen,
    pub server_url: Option<String>,
    /// Prefill for the login form.
    pub username_hint: Option<String>,
    pub user: Option<User>,
    pub connection: ConnectionState,
    /// The server's limits (message size for the composer).
    pub limits: Limits,
    /// While reconnecting: when the next attempt happens (ms since epoch), for the countdown.
    pub reconnect_at_ms: Option<i64>,
    /// Why the user was sent back to the login screen.
    pub notice: Option<String>,
    pub rooms: Vec<RoomView>,
    pub rooms_loaded: bool,
    pub current: Option<RoomId>,
    /// The room open when the app was last used, opened again once the room list shows it.
    pub reopen: Option<RoomId>,
    /// The current room's read marker when it was opened: the "new messages" line sits after
    /// it and stays put while the room is open, even though reading moves the real marker.
    pub divider_after: Option<u64>,
    /// A message to scroll to in the current room (from a search result).
    pub jump_to: Option<u64>,
    pub timelines: HashMap<RoomId, Rc<Timeline>>,
    pub typing: HashMap<RoomId, Vec<Typist>>,
    pub presence: HashMap<UserId, Presence>,
    pub members: HashMap<RoomId, Rc<Vec<MemberView>>>,
    pub show_members: bool,
    /// Narrow windows: the room list slides over the chat.
    pub sidebar_open: bool,
    pub dialog: Option<Dialog>,
    pub toasts: Vec<Toast>,
    next_toast: u32,
    pub window_focused: bool,
    /// Bumped when the server's store lost data and the backend dropped its cache: effects
    /// keyed on it load the open room's newest page and members again.
    pub history_generation: u32,
    /// The users this account blocked (`None` until loaded).
    pub blocked: Option<Rc<Vec<UserRef>>>,
    /// The open room was taken away from the user (removed or banned).
    pub removal: Option<Removal>,
    /// Uploads in progress: client id of the pending message → (bytes sent, total).
    pub uploads: HashMap<String, (u64, u64)>,
    /// A newer app version, downloaded and verified: "Restart to update".
    pub update: Option<protocol::ipc::UpdateView>,
    /// While the app starts: the local cache is being upgraded, this percent of it done.
    pub cache_upgrade: Option<u8>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            screen: Screen::Loading,
            server_url: None,
            username_hint: None,
            user: None,
            connection: ConnectionState::Offline,
            limits: Limits::default(),
            reconnect_at_ms: None,
            notice: None,
            rooms: Vec::new(),
            rooms_loaded: false,
            current: None,
            reopen: None,
            divider_after: None,
            jump_to: None,
            timelines: HashMap::new(),
            typing: HashMap::new(),
            presence: HashMap::new(),
            members: HashMap::new(),
            show_members: false,
            sidebar_open: false,
            dialog: None,
            toasts: Vec::new(),
            next_toast: 1,
            window_focused: true,
            history_generation: 0,
            blocked: None,
            removal: None,
            uploads: HashMap::new(),
            update: None,
            cache_upgrade: None,
        }
    }
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        // Cheap no-ops keep the same Rc so Yew skips the re-render.
        if action == Action::Escape && (!self.sidebar_open || self.dialog.is_some()) {
            return self;
        }
        if let Action::Tick { now_ms } = &action {
            let expired = self
                .typing
                .values()
                .flatten()
                .any(|t| t.until_ms <= *now_ms);
            if !expired {
                return self;
            }
        }
        let mut s = (*self).clone();
        s.apply(action);
        Rc::new(s)
    }
}

impl AppState {
    pub fn current_room(&self) -> Option<&RoomView> {
        let id = self.current?;
        self.rooms.iter().find(|r| r.room.id == id)
    }

    pub fn timeline(&self, room: RoomId) -> Option<&Rc<Timeline>> {
        self.timelines.get(&room)
    }

    /// Whether presence can be known: only while connected (offline, nobody's dot is green).
    pub fn presence_known(&self) -> bool {
        self.connection == ConnectionState::Online
    }

    /// A user's presence: the latest presence event, else what the list said; unknown while
    /// we are not connected.
    pub fn status(&self, user: UserId, listed: bool) -> Status {
        if !self.presence_known() {
            return Status::Unknown;
        }
        if self.presence.get(&user).map_or(listed, |p| p.online) {
            Status::Online
        } else {
            Status::Offline
        }
    }

    /// For a direct room: the peer's presence (`None` for group rooms).
    pub fn peer_status(&self, view: &RoomView) -> Option<Status> {
        if view.room.kind != RoomKind::Direct {
            return None;
        }
        let listed = view.peer_online.unwrap_or(false);
        Some(match view.room.peer {
            Some(peer) => self.status(peer, listed),
            None if !self.presence_known() => Status::Unknown,
            None if listed => Status::Online,
            None => Status::Offline,
        })
    }

    /// When the first typing indicator expires (ms since epoch): the UI wakes then to drop it
    /// ([`Action::Tick`]), and not at all while nobody types.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.typing.values().flatten().map(|t| t.until_ms).min()
    }

    /// Names of the people typing in a room.
    pub fn typing_names(&self, room: RoomId) -> Vec<String> {
        self.typing
            .get(&room)
            .map(|list| list.iter().map(|t| t.username.clone()).collect())
            .unwrap_or_default()
    }

    pub fn my_id(&self) -> Option<UserId> {
        self.user.as_ref().map(|u| u.id)
    }

    /// Whether this account blocked `user` (false until the list is loaded).
    pub fn is_blocked(&self, user: UserId) -> bool {
        self.blocked
            .as_ref()
            .is_some_and(|list| list.iter().any(|u| u.id == user))
    }

    /// A user's name as the app knows it: from a loaded member list, a direct room with them,
    /// or the blocked list.
    pub fn user_name(&self, user: UserId) -> Option<String> {
        let member = self
            .members
            .values()
            .flat_map(|list| list.iter())
            .find(|m| m.user.id == user)
            .map(|m| m.user.username.clone());
        member
            .or_else(|| {
                self.rooms
                    .iter()
                    .find(|r| r.room.kind == RoomKind::Direct && r.room.peer == Some(user))
                    .map(|r| r.room.name.clone())
            })
            .or_else(|| {
                self.blocked
                    .as_ref()
                    .and_then(|list| list.iter().find(|u| u.id == user))
                    .map(|u| u.username.clone())
            })
    }
}
