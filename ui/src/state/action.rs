//! Everything that changes the state.

use super::{Dialog, Removal};
use protocol::ipc::{ConnectionState, MemberView, MessagePage, MessageView, RoomView, Snapshot};
use protocol::limits::Limits;
use protocol::rest::{User, UserRef};
use protocol::{RoomId, UserId};

/// Everything that changes the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The first answer of `snapshot`: picks the screen.
    Snapshot(Snapshot),
    /// The backend is upgrading the local cache (first start after an update): percent done.
    CacheUpgrade(u8),
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
