//! App state: one [`AppState`] behind a Yew reducer, changed only through [`Action`]s.
//!
//! Backend events and command results become actions; components read the state from the
//! [`AppContext`] and dispatch actions. The reducer is pure (the time comes in with the action),
//! so its rules are unit-tested on the host.

use protocol::ipc::{ConnectionState, MemberView, MessagePage, MessageView, RoomView, Snapshot};
use protocol::limits::Limits;
use protocol::rest::{RoomKind, User, UserRef};
use protocol::{RoomId, UserId};
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;

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

/// How many sent messages the timeline of a room not being read keeps: more than a newest
/// page, so the room shows at once when opened again.
pub const KEEP_AWAY: usize = 100;

/// How many sent messages the room being read keeps while its list follows the newest ones
/// (more than the list draws, [`crate::rows::WINDOW`]): scrolled back through thousands and
/// returned to the bottom, the rest go; they come back from the cache when scrolled to.
pub const KEEP_READING: usize = 200;

/// The list asks for [`Action::Trim`] past this many messages.
pub const TRIM_AT: usize = 2 * KEEP_READING;

// The rows the list draws must stay loaded when it trims.
const _: () = assert!(KEEP_READING > crate::rows::WINDOW);

/// The loaded part of a room's history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    /// Sent messages ascending by seq, then unsent ones (pending/failed) in send order.
    pub messages: Vec<MessageView>,
    /// Older messages exist before the first one here.
    pub has_more: bool,
    /// A page of older messages is on its way.
    pub loading_older: bool,
    /// The newest page has arrived at least once.
    pub loaded: bool,
    /// Loading the newest page failed (the list offers to try again).
    pub load_error: bool,
}

impl Timeline {
    /// Oldest seq here: the `before` for the next older page.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.messages.iter().filter_map(|m| m.seq).min()
    }

    /// Newest seq here: what `mark_read` reports.
    pub fn newest_seq(&self) -> Option<u64> {
        self.messages.iter().filter_map(|m| m.seq).max()
    }

    /// Keeps only the newest `keep` sent messages (and every unsent one): what a room not being
    /// read needs to show at once when opened again. Older pages come back from the local cache
    /// on the way up, like any older page.
    pub fn trim_to_newest(&mut self, keep: usize) {
        let sent = self.messages.iter().filter(|m| m.seq.is_some()).count();
        if sent <= keep {
            return;
        }
        // Sent messages come first, ascending: the first `sent - keep` are the oldest.
        self.messages.drain(..sent - keep);
        self.has_more = true;
        self.loading_older = false;
    }

    /// Inserts a message or replaces the one with the same client id (same sender) or seq.
    pub fn upsert(&mut self, message: MessageView) {
        if let Some(i) = self.messages.iter().position(|x| {
            (x.client_id == message.client_id && x.sender == message.sender)
                || (message.seq.is_some() && x.seq == message.seq)
        }) {
            // A sent message never goes back to pending: the `sent` event can arrive before
            // the `send` call returns the pending view of the same message.
            if self.messages[i].seq.is_some() && message.seq.is_none() {
                return;
            }
            self.messages.remove(i);
        }
        let at = match message.seq {
            Some(seq) => self
                .messages
                .iter()
                .position(|x| x.seq.is_none_or(|s| s > seq))
                .unwrap_or(self.messages.len()),
            None => self.messages.len(),
        };
        self.messages.insert(at, message);
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
        }
    }
}

/// Everything that changes the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The first answer of `snapshot`: picks the screen.
    Snapshot(Snapshot),
    /// `set_server` succeeded.
    ServerChosen(String),
    /// Back to the server screen.
    ChangeServer,
    LoggedIn(User),
    /// Logged out here, or the session ended elsewhere (`reason`).
    LoggedOut {
        reason: Option<String>,
    },
    Connection {
        state: ConnectionState,
        now_ms: i64,
    },
    /// The server announced its limits.
    Limits(Limits),
    Rooms(Vec<RoomView>),
    /// Open a room (or none).
    Select(Option<RoomId>),
    /// Open a room and scroll to one of its messages.
    JumpTo {
        room: RoomId,
        seq: u64,
    },
    /// The message list reached (or gave up on) `jump_to`.
    Jumped,
    /// The list follows the newest messages of `room` and holds many more than it draws: the
    /// oldest go (see [`KEEP_READING`]).
    Trim(RoomId),
    /// Esc outside dialogs: closes the sliding room list.
    Escape,
    Page {
        room: RoomId,
        page: MessagePage,
        older: bool,
    },
    LoadingOlder(RoomId),
    /// Loading failed; allow trying again.
    LoadFailed(RoomId),
    /// A message appeared or changed.
    Message(MessageView),
    /// A discarded outbox message.
    Discarded {
        room: RoomId,
        client_id: String,
    },
    Presence {
        user: UserId,
        online: bool,
        last_seen: Option<i64>,
    },
    Typing {
        room: RoomId,
        user: UserId,
        username: String,
        until_ms: i64,
    },
    /// Drops expired typing indicators.
    Tick {
        now_ms: i64,
    },
    Members {
        room: RoomId,
        members: Vec<MemberView>,
    },
    ToggleMembers,
    SetSidebar(bool),
    Open(Dialog),
    CloseDialog,
    Toast(String),
    DismissToast(u32),
    WindowFocus(bool),
    /// A newer app version is ready to install.
    UpdateReady(protocol::ipc::UpdateView),
    /// `mark_read` sent: clear the badge now instead of waiting for `rooms`.
    MarkedRead {
        room: RoomId,
        seq: u64,
    },
    /// The user left a room.
    Left(RoomId),
    /// A user's display name changed (the signed-in user's too).
    UserUpdated {
        user: UserId,
        display_name: Option<String>,
    },
    /// The server's store lost data and the backend dropped its cached history: forget every
    /// loaded timeline, member list and preview (they may show messages the server no longer
    /// has) and load them again.
    HistoryReset,
    /// The list of blocked users (after loading, blocking or unblocking).
    Blocked(Vec<UserRef>),
    /// Someone removed or banned the user from a room.
    Removed(Removal),
    /// The files of pending message `client_id` are uploading: `sent` of `total` bytes.
    UploadProgress {
        client_id: String,
        sent: u64,
        total: u64,
    },
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
    fn apply(&mut self, action: Action) {
        match action {
            Action::Snapshot(snap) => {
                self.server_url = snap.server_url;
                self.username_hint = snap.username;
                self.connection = snap.connection;
                self.limits = snap.limits;
                self.screen = if snap.user.is_some() {
                    Screen::Main
                } else if self.server_url.is_some() {
                    Screen::Auth
                } else {
                    Screen::Server
                };
                self.user = snap.user;
                self.reopen = snap.last_room;
            }
            Action::ServerChosen(url) => {
                self.server_url = Some(url);
                self.screen = Screen::Auth;
            }
            Action::ChangeServer => self.screen = Screen::Server,
            Action::LoggedIn(user) => {
                self.username_hint = Some(user.username.clone());
                self.user = Some(user);
                self.notice = None;
                self.screen = Screen::Main;
            }
            Action::LoggedOut { reason } => {
                let keep = AppState {
                    server_url: self.server_url.take(),
                    username_hint: self
                        .user
                        .take()
                        .map(|u| u.username)
                        .or(self.username_hint.take()),
                    notice: reason,
                    limits: self.limits.clone(),
                    screen: Screen::Auth,
                    window_focused: self.window_focused,
                    ..AppState::default()
                };
                *self = keep;
            }
            Action::Connection { state, now_ms } => {
                self.reconnect_at_ms = match &state {
                    ConnectionState::Reconnecting { retry_in_ms, .. } => {
                        Some(now_ms + i64::try_from(*retry_in_ms).unwrap_or(i64::MAX / 2))
                    }
                    _ => None,
                };
                if state == ConnectionState::Online && self.connection != ConnectionState::Online {
                    // Presence changes while we were away were never reported: forget what the
                    // events said and go by the lists, which are reloaded now.
                    self.presence.clear();
                }
                if state != ConnectionState::Online {
                    // Nobody's typing reaches us while the connection is down.
                    self.typing.clear();
                }
                self.connection = state;
            }
            Action::Limits(limits) => self.limits = limits,
            Action::UpdateReady(update) => self.update = Some(update),
            Action::Rooms(rooms) => {
                self.rooms = rooms;
                self.rooms_loaded = true;
                // The first list (the cache's, at start) opens the room last read, if the user
                // has not opened one yet and it is still theirs.
                if !self.rooms.is_empty() {
                    if let Some(room) = self.reopen.take() {
                        if self.current.is_none() && self.rooms.iter().any(|r| r.room.id == room) {
                            self.apply(Action::Select(Some(room)));
                        }
                    }
                }
                if let Some(current) = self.current {
                    if !self.rooms.iter().any(|r| r.room.id == current) {
                        self.current = None;
                        self.divider_after = None;
                    }
                }
            }
            Action::Select(room) => {
                if self.current != room {
                    // The room left behind keeps its newest page only: scrolled far back, it
                    // would hold every page read, for as long as the app runs.
                    if let Some(t) = self.current.and_then(|left| self.timelines.get_mut(&left)) {
                        if t.messages.len() > KEEP_AWAY {
                            Rc::make_mut(t).trim_to_newest(KEEP_AWAY);
                        }
                    }
                    self.divider_after = room.and_then(|id| {
                        self.rooms
                            .iter()
                            .find(|r| r.room.id == id)
                            .map(|r| r.room.read_seq)
                    });
                }
                self.current = room;
                self.jump_to = None;
                self.sidebar_open = false;
                if room.is_some() {
                    self.removal = None;
                }
            }
            Action::JumpTo { room, seq } => {
                self.apply(Action::Select(Some(room)));
                self.jump_to = Some(seq);
            }
            Action::Jumped => self.jump_to = None,
            Action::Trim(room) => {
                if let Some(t) = self.timelines.get_mut(&room) {
                    if t.messages.len() > KEEP_READING {
                        Rc::make_mut(t).trim_to_newest(KEEP_READING);
                    }
                }
            }
            Action::Escape => {
                if self.dialog.is_none() {
                    self.sidebar_open = false;
                }
            }
            Action::Page { room, page, older } => {
                let t = Rc::make_mut(self.timelines.entry(room).or_default());
                if older || !t.loaded {
                    t.has_more = page.has_more;
                }
                for m in page.messages {
                    t.upsert(m);
                }
                t.loaded = true;
                t.load_error = false;
                if older {
                    t.loading_older = false;
                }
            }
            Action::LoadingOlder(room) => {
                Rc::make_mut(self.timelines.entry(room).or_default()).loading_older = true;
            }
            Action::LoadFailed(room) => {
                let t = Rc::make_mut(self.timelines.entry(room).or_default());
                t.loading_older = false;
                t.load_error = !t.loaded;
            }
            Action::Message(m) => {
                if m.status != protocol::ipc::MessageStatus::Pending {
                    self.uploads.remove(&m.client_id);
                }
                if let Some(list) = self.typing.get_mut(&m.room) {
                    list.retain(|t| t.user != m.sender);
                }
                self.update_preview(&m);
                self.keep_divider_for_unread(&m);
                let away = self.current != Some(m.room);
                if let Some(t) = self.timelines.get_mut(&m.room) {
                    let t = Rc::make_mut(t);
                    crate::replies::refresh_quotes(&mut t.messages, &m);
                    t.upsert(m);
                    // A busy room in the background grows by pages, then sheds them at once.
                    if away && t.messages.len() > KEEP_AWAY + KEEP_AWAY / 2 {
                        t.trim_to_newest(KEEP_AWAY);
                    }
                }
            }
            Action::Discarded { room, client_id } => {
                if let Some(t) = self.timelines.get_mut(&room) {
                    Rc::make_mut(t)
                        .messages
                        .retain(|m| !(m.client_id == client_id && m.seq.is_none()));
                }
            }
            Action::Presence {
                user,
                online,
                last_seen,
            } => {
                self.presence.insert(user, Presence { online, last_seen });
            }
            Action::Typing {
                room,
                user,
                username,
                until_ms,
            } => {
                if self.user.as_ref().is_some_and(|me| me.id == user) {
                    return;
                }
                let list = self.typing.entry(room).or_default();
                match list.iter_mut().find(|t| t.user == user) {
                    Some(t) => t.until_ms = until_ms,
                    None => list.push(Typist {
                        user,
                        username,
                        until_ms,
                    }),
                }
            }
            Action::Tick { now_ms } => {
                for list in self.typing.values_mut() {
                    list.retain(|t| t.until_ms > now_ms);
                }
                self.typing.retain(|_, list| !list.is_empty());
            }
            Action::Members { room, members } => {
                self.members.insert(room, Rc::new(members));
            }
            Action::ToggleMembers => self.show_members = !self.show_members,
            Action::SetSidebar(open) => self.sidebar_open = open,
            Action::Open(dialog) => self.dialog = Some(dialog),
            Action::CloseDialog => self.dialog = None,
            Action::Toast(text) => {
                let id = self.next_toast;
                self.next_toast += 1;
                self.toasts.push(Toast { id, text });
                if self.toasts.len() > 3 {
                    self.toasts.remove(0);
                }
            }
            Action::DismissToast(id) => self.toasts.retain(|t| t.id != id),
            Action::WindowFocus(focused) => self.window_focused = focused,
            Action::MarkedRead { room, seq } => {
                if let Some(r) = self.rooms.iter_mut().find(|r| r.room.id == room) {
                    if seq > r.room.read_seq {
                        r.room.read_seq = seq;
                        r.room.unread = 0;
                        r.room.mentions = 0;
                    }
                }
            }
            Action::HistoryReset => {
                self.timelines.clear();
                self.members.clear();
                self.typing.clear();
                self.divider_after = None;
                self.jump_to = None;
                // The list itself stays (the open room stays open) until the backend's next
                // room list; its previews may be lost messages.
                for view in &mut self.rooms {
                    view.last_message = None;
                }
                self.history_generation = self.history_generation.wrapping_add(1);
                self.apply(Action::Toast(
                    "The server lost recent data; history was reloaded".into(),
                ));
            }
            Action::Blocked(users) => self.blocked = Some(Rc::new(users)),
            Action::UploadProgress {
                client_id,
                sent,
                total,
            } => {
                self.uploads.insert(client_id, (sent, total));
            }
            Action::Removed(removal) => {
                let room = removal.room;
                let was_open = self.current == Some(room);
                self.rooms.retain(|r| r.room.id != room);
                self.timelines.remove(&room);
                self.members.remove(&room);
                self.typing.remove(&room);
                if was_open {
                    self.current = None;
                    self.divider_after = None;
                    self.jump_to = None;
                    // A dialog about that room (leave, ban) has nothing left to act on.
                    self.dialog = None;
                    self.removal = Some(removal);
                } else {
                    self.apply(Action::Toast(removal.summary()));
                }
            }
            Action::Left(room) => {
                self.rooms.retain(|r| r.room.id != room);
                self.timelines.remove(&room);
                if self.current == Some(room) {
                    self.current = None;
                    self.divider_after = None;
                }
                self.dialog = None;
            }
            Action::UserUpdated { user, display_name } => {
                if let Some(me) = self.user.as_mut().filter(|u| u.id == user) {
                    me.display_name = display_name.clone();
                }
                for members in self.members.values_mut() {
                    if members.iter().any(|m| m.user.id == user) {
                        for m in Rc::make_mut(members)
                            .iter_mut()
                            .filter(|m| m.user.id == user)
                        {
                            m.user.display_name = display_name.clone();
                        }
                    }
                }
            }
        }
    }

    /// A message from someone else arrives in the room being read (open, window focused): it
    /// is read as it arrives, so the "new" line must not jump above it. The line moves past
    /// it unless it already marks older messages that were unread when the room was opened
    /// (or while the window was in the background).
    fn keep_divider_for_unread(&mut self, m: &MessageView) {
        let (Some(seq), Some(read)) = (m.seq, self.divider_after) else {
            return;
        };
        if self.current != Some(m.room) || !self.window_focused || Some(m.sender) == self.my_id() {
            return;
        }
        let Some(t) = self.timelines.get(&m.room).filter(|t| t.loaded) else {
            return;
        };
        let me = self.my_id();
        let marks_something = t
            .messages
            .iter()
            .any(|x| x.seq.is_some_and(|s| s > read && s != seq) && Some(x.sender) != me);
        if !marks_something && seq > read {
            self.divider_after = Some(seq);
        }
    }

    /// Keeps the side bar's preview line and order current without waiting for `rooms`.
    fn update_preview(&mut self, m: &MessageView) {
        let Some(i) = self.rooms.iter().position(|r| r.room.id == m.room) else {
            return;
        };
        let r = &mut self.rooms[i];
        let newer = match (&r.last_message, m.seq) {
            (None, _) => true,
            (Some(last), _) if last.client_id == m.client_id && last.sender == m.sender => true,
            (Some(last), Some(seq)) => last.seq.is_some_and(|s| seq > s),
            (Some(_), None) => true,
        };
        if !newer {
            return;
        }
        let moved_up = r
            .last_message
            .as_ref()
            .is_none_or(|last| last.client_id != m.client_id);
        r.last_message = Some(m.clone());
        if let Some(seq) = m.seq {
            r.room.last_seq = r.room.last_seq.max(seq);
        }
        if moved_up && i > 0 {
            let room = self.rooms.remove(i);
            self.rooms.insert(0, room);
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ipc::MessageStatus;
    use protocol::rest::{Room, Visibility};

    fn msg(room: u64, seq: Option<u64>, cid: &str, sender: u64, body: &str) -> MessageView {
        MessageView {
            room: RoomId(room),
            seq,
            client_id: cid.into(),
            sender: UserId(sender),
            sender_name: format!("user{sender}"),
            body: body.into(),
            ts: 0,
            edited: false,
            deleted: false,
            status: if seq.is_some() {
                MessageStatus::Sent
            } else {
                MessageStatus::Pending
            },
            reply_to: None,
            quote: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
            uploads: Vec::new(),
        }
    }

    fn room(id: u64, kind: RoomKind) -> RoomView {
        RoomView {
            room: Room {
                id: RoomId(id),
                name: format!("room{id}"),
                kind,
                visibility: Visibility::Public,
                member_count: 2,
                last_seq: 0,
                role: None,
                read_seq: 4,
                unread: 3,
                mentions: 0,
                peer: (kind == RoomKind::Direct).then_some(UserId(9)),
                peer_display_name: None,
                topic: String::new(),
                notify: Default::default(),
            },
            last_message: None,
            peer_online: (kind == RoomKind::Direct).then_some(false),
            no_messages: false,
        }
    }

    fn seqs(t: &Timeline) -> Vec<(Option<u64>, String)> {
        t.messages
            .iter()
            .map(|m| (m.seq, m.client_id.clone()))
            .collect()
    }

    #[test]
    fn pending_message_becomes_sent_in_place_of_order() {
        let mut t = Timeline::default();
        t.upsert(msg(1, Some(1), "a", 2, "x"));
        t.upsert(msg(1, None, "p", 1, "mine"));
        t.upsert(msg(1, Some(2), "b", 2, "y"));
        assert_eq!(
            seqs(&t),
            vec![
                (Some(1), "a".into()),
                (Some(2), "b".into()),
                (None, "p".into())
            ]
        );
        t.upsert(msg(1, Some(3), "p", 1, "mine"));
        assert_eq!(
            seqs(&t),
            vec![
                (Some(1), "a".into()),
                (Some(2), "b".into()),
                (Some(3), "p".into())
            ]
        );
        // An edit replaces by seq; older pages slot in front.
        let mut edited = msg(1, Some(2), "b", 2, "y2");
        edited.edited = true;
        t.upsert(edited);
        t.upsert(msg(1, Some(0), "z", 2, "old"));
        assert_eq!(t.messages.len(), 4);
        assert_eq!(t.messages[0].client_id, "z");
        assert_eq!(t.messages[2].body, "y2");
        assert_eq!(t.oldest_seq(), Some(0));
        assert_eq!(t.newest_seq(), Some(3));
    }

    #[test]
    fn sent_message_never_goes_back_to_pending() {
        // The `sent` event can beat the `send` call's pending copy (found by the e2e test).
        let mut t = Timeline::default();
        t.upsert(msg(1, Some(7), "p", 1, "mine"));
        t.upsert(msg(1, None, "p", 1, "mine"));
        assert_eq!(seqs(&t), vec![(Some(7), "p".into())]);
    }

    fn started_with_last_room(last_room: Option<u64>) -> AppState {
        let mut s = AppState::default();
        s.apply(Action::Snapshot(Snapshot {
            server_url: Some("http://x".into()),
            username: Some("ann".into()),
            user: None,
            connection: ConnectionState::Connecting,
            limits: Limits::default(),
            last_room: last_room.map(RoomId),
        }));
        s
    }

    #[test]
    fn the_room_last_read_opens_again_at_start() {
        let mut s = started_with_last_room(Some(2));
        s.apply(Action::Rooms(vec![]));
        assert_eq!(s.current, None, "nothing to open before the list has rooms");
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Group),
        ]));
        assert_eq!(s.current, Some(RoomId(2)));
        // Later lists (the server's) leave the user's choice alone.
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Group),
        ]));
        assert_eq!(s.current, Some(RoomId(1)));

        // A room the user left meanwhile is not opened, nor later when it comes back.
        let mut s = started_with_last_room(Some(3));
        s.apply(Action::Rooms(vec![room(1, RoomKind::Group)]));
        assert_eq!(s.current, None);
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(3, RoomKind::Group),
        ]));
        assert_eq!(s.current, None);

        // A room the user opened before the list came stays open.
        let mut s = started_with_last_room(Some(2));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Group),
        ]));
        assert_eq!(s.current, Some(RoomId(1)));
    }

    #[test]
    fn snapshot_picks_the_screen() {
        let s = Rc::new(AppState::default());
        let s = s.reduce(Action::Snapshot(Snapshot {
            server_url: None,
            username: None,
            user: None,
            connection: ConnectionState::Offline,
            limits: Limits {
                max_message_bytes: 100,
                ..Limits::default()
            },
            last_room: None,
        }));
        assert_eq!(
            s.limits.max_message_bytes, 100,
            "the composer's limit is the server's"
        );
        assert_eq!(s.screen, Screen::Server);
        let s = s.reduce(Action::ServerChosen("http://x".into()));
        assert_eq!(s.screen, Screen::Auth);
        let s = s.reduce(Action::LoggedIn(User {
            id: UserId(1),
            username: "ann".into(),
            created_ts: 0,
            admin: false,
            display_name: None,
        }));
        assert_eq!(s.screen, Screen::Main);
        let s = s.reduce(Action::LoggedOut {
            reason: Some("revoked".into()),
        });
        assert_eq!(s.screen, Screen::Auth);
        assert_eq!(s.username_hint.as_deref(), Some("ann"));
        assert_eq!(s.server_url.as_deref(), Some("http://x"));
        assert_eq!(s.notice.as_deref(), Some("revoked"));
    }

    #[test]
    fn typing_expires_and_stops_on_message() {
        let mut s = AppState::default();
        s.apply(Action::Typing {
            room: RoomId(1),
            user: UserId(2),
            username: "bo".into(),
            until_ms: 100,
        });
        s.apply(Action::Typing {
            room: RoomId(1),
            user: UserId(3),
            username: "cy".into(),
            until_ms: 200,
        });
        assert_eq!(s.typing_names(RoomId(1)), vec!["bo", "cy"]);
        let s = Rc::new(s);
        let same = s.clone().reduce(Action::Tick { now_ms: 50 });
        assert!(Rc::ptr_eq(&s, &same), "nothing expired: no re-render");
        let s = s.reduce(Action::Tick { now_ms: 150 });
        assert_eq!(s.typing_names(RoomId(1)), vec!["cy"]);
        let s = s.reduce(Action::Message(msg(1, Some(1), "m", 3, "hi")));
        assert!(s.typing_names(RoomId(1)).is_empty());
    }

    #[test]
    fn messages_update_preview_order_and_divider() {
        let mut s = AppState::default();
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Direct),
        ]));
        s.apply(Action::Select(Some(RoomId(1))));
        assert_eq!(s.divider_after, Some(4));
        s.apply(Action::Message(msg(2, Some(7), "m", 9, "hey")));
        assert_eq!(s.rooms[0].room.id, RoomId(2));
        assert_eq!(
            s.rooms[0].last_message.as_ref().map(|m| m.body.as_str()),
            Some("hey")
        );
        s.apply(Action::MarkedRead {
            room: RoomId(2),
            seq: 7,
        });
        assert_eq!(s.rooms[0].room.unread, 0);
        s.apply(Action::Connection {
            state: ConnectionState::Online,
            now_ms: 0,
        });
        assert_eq!(s.peer_status(&s.rooms[0].clone()), Some(Status::Offline));
        s.apply(Action::Presence {
            user: UserId(9),
            online: true,
            last_seen: None,
        });
        assert_eq!(s.peer_status(&s.rooms[0].clone()), Some(Status::Online));
        s.apply(Action::Left(RoomId(1)));
        assert_eq!(s.current, None);
        assert_eq!(s.rooms.len(), 1);
    }

    fn online(s: &mut AppState) {
        s.apply(Action::Connection {
            state: ConnectionState::Online,
            now_ms: 0,
        });
    }

    #[test]
    fn a_new_display_name_reaches_members_and_me() {
        let mut s = AppState::default();
        me(&mut s, 1);
        let member = |id: u64| MemberView {
            user: protocol::ipc::UserView {
                id: UserId(id),
                username: format!("u{id}"),
                display_name: None,
                online: true,
                last_seen: None,
            },
            owner: false,
        };
        s.apply(Action::Members {
            room: RoomId(3),
            members: vec![member(1), member(2)],
        });
        s.apply(Action::UserUpdated {
            user: UserId(2),
            display_name: Some("Bea".into()),
        });
        s.apply(Action::UserUpdated {
            user: UserId(1),
            display_name: Some("Me Myself".into()),
        });
        let names: Vec<_> = s.members[&RoomId(3)]
            .iter()
            .map(|m| m.user.display_name.clone())
            .collect();
        assert_eq!(names, [Some("Me Myself".into()), Some("Bea".into())]);
        assert_eq!(
            s.user.as_ref().and_then(|u| u.display_name.as_deref()),
            Some("Me Myself")
        );
    }

    fn me(s: &mut AppState, id: u64) {
        s.user = Some(User {
            id: UserId(id),
            username: "me".into(),
            created_ts: 0,
            admin: false,
            display_name: None,
        });
    }

    /// Where the "new" line is drawn in the open room.
    fn divider_before(s: &AppState) -> Option<String> {
        let room = s.current?;
        let t = s.timeline(room)?;
        let rows = crate::rows::rows(&t.messages, s.divider_after, s.my_id(), |_| 0);
        let at = rows
            .iter()
            .position(|r| *r == crate::rows::Row::NewMessages)?;
        rows[at + 1..].iter().find_map(|r| match r {
            crate::rows::Row::Message { message, .. } => Some(message.body.clone()),
            _ => None,
        })
    }

    fn page(room: u64, messages: Vec<MessageView>) -> Action {
        Action::Page {
            room: RoomId(room),
            page: MessagePage {
                messages,
                has_more: false,
            },
            older: false,
        }
    }

    #[test]
    fn no_new_line_above_a_message_read_as_it_arrived() {
        let mut s = AppState::default();
        me(&mut s, 1);
        let mut r = room(1, RoomKind::Group);
        r.room.read_seq = 2;
        r.room.unread = 0;
        s.apply(Action::Rooms(vec![r]));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(page(
            1,
            vec![
                msg(1, Some(1), "a", 2, "old"),
                msg(1, Some(2), "b", 2, "read"),
            ],
        ));
        assert_eq!(divider_before(&s), None);
        // Arrives while the room is open and the window focused: read, no line.
        s.apply(Action::Message(msg(1, Some(3), "c", 2, "live")));
        assert_eq!(divider_before(&s), None);
        // The window goes to the background: what arrives now is new.
        s.apply(Action::WindowFocus(false));
        s.apply(Action::Message(msg(1, Some(4), "d", 2, "while away")));
        assert_eq!(divider_before(&s).as_deref(), Some("while away"));
        // Back: the line stays where it was while more arrive.
        s.apply(Action::WindowFocus(true));
        s.apply(Action::Message(msg(1, Some(5), "e", 2, "after")));
        assert_eq!(divider_before(&s).as_deref(), Some("while away"));
    }

    #[test]
    fn new_line_marks_what_was_unread_when_opened() {
        let mut s = AppState::default();
        me(&mut s, 1);
        let mut r = room(1, RoomKind::Group);
        r.room.read_seq = 1;
        s.apply(Action::Rooms(vec![r]));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(page(
            1,
            vec![
                msg(1, Some(1), "a", 2, "read"),
                msg(1, Some(2), "b", 2, "unread"),
            ],
        ));
        assert_eq!(divider_before(&s).as_deref(), Some("unread"));
        s.apply(Action::Message(msg(1, Some(3), "c", 2, "live")));
        assert_eq!(divider_before(&s).as_deref(), Some("unread"));
    }

    #[test]
    fn typing_stops_showing_when_the_connection_drops() {
        let mut s = AppState::default();
        online(&mut s);
        s.apply(Action::Typing {
            room: RoomId(1),
            user: UserId(2),
            username: "bo".into(),
            until_ms: i64::MAX,
        });
        s.apply(Action::Connection {
            state: ConnectionState::Offline,
            now_ms: 0,
        });
        assert!(s.typing_names(RoomId(1)).is_empty());
    }

    #[test]
    fn presence_is_unknown_while_not_connected() {
        let mut s = AppState::default();
        s.apply(Action::Rooms(vec![room(2, RoomKind::Direct)]));
        online(&mut s);
        s.apply(Action::Presence {
            user: UserId(9),
            online: true,
            last_seen: None,
        });
        let dm = s.rooms[0].clone();
        assert_eq!(s.peer_status(&dm), Some(Status::Online));
        assert_eq!(s.status(UserId(9), false), Status::Online);
        s.apply(Action::Connection {
            state: ConnectionState::Reconnecting {
                attempt: 1,
                retry_in_ms: 1000,
                reason: "cut".into(),
            },
            now_ms: 0,
        });
        assert_eq!(s.peer_status(&dm), Some(Status::Unknown));
        assert_eq!(s.status(UserId(9), true), Status::Unknown);
        assert_eq!(
            crate::format::presence_text(Status::Unknown, Some(0), 0),
            "Status unknown"
        );
        // Back online: stale presence events are dropped; the reloaded lists decide.
        online(&mut s);
        assert_eq!(s.status(UserId(9), false), Status::Offline);
        assert_eq!(s.peer_status(&room(3, RoomKind::Group)), None);
    }

    #[test]
    fn history_reset_drops_what_was_loaded_and_says_so() {
        let mut s = AppState::default();
        me(&mut s, 1);
        online(&mut s);
        let mut r = room(1, RoomKind::Group);
        r.last_message = Some(msg(1, Some(6), "lost", 2, "lost"));
        s.apply(Action::Rooms(vec![r]));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(page(
            1,
            vec![
                msg(1, Some(5), "a", 2, "kept"),
                msg(1, Some(6), "lost", 2, "lost"),
                msg(1, None, "p", 1, "pending"),
            ],
        ));
        s.apply(Action::Members {
            room: RoomId(1),
            members: Vec::new(),
        });
        let before = s.history_generation;

        s.apply(Action::HistoryReset);

        // Nothing the server may no longer have is shown: no timeline, no preview, no members.
        assert!(s.timeline(RoomId(1)).is_none());
        assert!(s.members.is_empty());
        assert_eq!(s.rooms[0].last_message, None);
        // The open room stays open and is loaded again (the effect keyed on the generation).
        assert_eq!(s.current, Some(RoomId(1)));
        assert_ne!(s.history_generation, before);
        assert_eq!(
            s.toasts.last().map(|t| t.text.as_str()),
            Some("The server lost recent data; history was reloaded")
        );
        // The reloaded newest page (with the outbox message still pending) shows as it comes.
        s.apply(page(
            1,
            vec![
                msg(1, Some(5), "a", 2, "kept"),
                msg(1, None, "p", 1, "pending"),
            ],
        ));
        let t = s.timeline(RoomId(1)).map(|t| seqs(t)).unwrap_or_default();
        assert_eq!(t, vec![(Some(5), "a".into()), (None, "p".into())]);
    }

    #[test]
    fn a_ban_closes_the_open_room_and_says_why() {
        let mut s = AppState::default();
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Group),
            room(3, RoomKind::Group),
        ]));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(Action::Open(Dialog::LeaveRoom(RoomId(1))));
        let removal = Removal {
            room: RoomId(1),
            room_name: "room1".into(),
            by_name: Some("olga".into()),
            banned: true,
        };
        s.apply(Action::Removed(removal.clone()));
        assert_eq!(s.current, None);
        assert_eq!(s.dialog, None);
        assert!(s.rooms.iter().all(|r| r.room.id != RoomId(1)));
        assert_eq!(s.removal.as_ref(), Some(&removal));
        assert!(s.toasts.is_empty());
        // Picking another room puts the notice away.
        s.apply(Action::Select(Some(RoomId(2))));
        assert_eq!(s.removal, None);
        // A room that is not open: a toast says it, the open room stays.
        s.apply(Action::Removed(Removal {
            room: RoomId(3),
            room_name: "room3".into(),
            by_name: None,
            banned: false,
        }));
        assert_eq!(s.current, Some(RoomId(2)));
        assert_eq!(s.removal, None);
        assert!(s.rooms.iter().all(|r| r.room.id != RoomId(3)));
        assert_eq!(
            s.toasts.last().map(|t| t.text.as_str()),
            Some("You were removed from #\u{2068}room3\u{2069}")
        );
    }

    /// Scrolled far back in a room, then elsewhere: the room keeps its newest messages and
    /// what is unsent, and says older ones exist (they come back from the cache when scrolled
    /// to). A busy room in the background sheds pages the same way.
    #[test]
    fn rooms_not_being_read_keep_their_newest_messages_only() {
        let mut s = AppState::default();
        me(&mut s, 1);
        s.apply(Action::Rooms(vec![
            room(1, RoomKind::Group),
            room(2, RoomKind::Group),
        ]));
        s.apply(Action::Select(Some(RoomId(1))));
        let read_back: Vec<_> = (1..=300)
            .map(|seq| msg(1, Some(seq), &format!("c{seq}"), 2, "old"))
            .collect();
        s.apply(page(1, read_back));
        s.apply(Action::Message(msg(1, None, "unsent", 1, "typed offline")));
        assert_eq!(s.timeline(RoomId(1)).map(|t| t.messages.len()), Some(301));

        s.apply(Action::Select(Some(RoomId(2))));
        let t = s.timeline(RoomId(1)).expect("room 1 keeps a timeline");
        let seqs: Vec<_> = t.messages.iter().filter_map(|m| m.seq).collect();
        assert_eq!(seqs, (201..=300).collect::<Vec<_>>());
        assert_eq!(
            t.messages.last().map(|m| m.client_id.as_str()),
            Some("unsent")
        );
        assert!(t.has_more, "older messages must be offered again");
        assert_eq!(
            t.oldest_seq(),
            Some(201),
            "the next older page starts below 201"
        );

        // Room 1 in the background: it grows to a page and a half, then sheds.
        for seq in 301..=350 {
            s.apply(Action::Message(msg(
                1,
                Some(seq),
                &format!("c{seq}"),
                2,
                "live",
            )));
        }
        let t = s.timeline(RoomId(1)).expect("room 1 keeps a timeline");
        assert!(
            t.messages.len() <= KEEP_AWAY + KEEP_AWAY / 2 + 1,
            "{}",
            t.messages.len()
        );
        assert_eq!(t.newest_seq(), Some(350));
        // The room being read keeps everything it loaded.
        s.apply(page(
            2,
            (1..=200)
                .map(|seq| msg(2, Some(seq), &format!("d{seq}"), 2, "x"))
                .collect(),
        ));
        assert_eq!(s.timeline(RoomId(2)).map(|t| t.messages.len()), Some(200));
    }

    /// Back at the bottom after reading far back: the list asks to drop what is far above.
    #[test]
    fn trim_keeps_the_newest_of_the_room_being_read() {
        let mut s = AppState::default();
        me(&mut s, 1);
        s.apply(Action::Rooms(vec![room(1, RoomKind::Group)]));
        s.apply(Action::Select(Some(RoomId(1))));
        s.apply(page(
            1,
            (1..=1000)
                .map(|seq| msg(1, Some(seq), &format!("c{seq}"), 2, "x"))
                .collect(),
        ));
        s.apply(Action::Trim(RoomId(1)));
        let t = s.timeline(RoomId(1)).expect("a timeline");
        assert_eq!(t.messages.len(), KEEP_READING);
        assert_eq!((t.oldest_seq(), t.newest_seq()), (Some(801), Some(1000)));
        assert!(t.has_more);
    }
}
