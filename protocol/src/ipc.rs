//! The desktop app's IPC: Tauri commands the Yew UI invokes and events the Rust backend emits.
//!
//! The backend owns the socket, the SQLite cache, the outbox and the token (which never reaches
//! the web view); the UI only sees these views. Every call goes through the one Tauri command
//! [`INVOKE`], whose `command` argument is a [`Command`] (tagged by `cmd`, snake_case names and
//! fields); every command fails with an [`AppError`].

use crate::attachment::Attachment;
use crate::error::ErrorCode;
use crate::event::Reaction;
use crate::ids::{RoomId, UserId};
use crate::limits::Limits;
use crate::rest::{NotifyLevel, Room, User, Visibility};
use serde::{Deserialize, Serialize};

/// The one event name the backend emits; its payload is an [`AppEvent`].
pub const EVENT: &str = "chat";

/// The one Tauri command; its argument `command` is a [`Command`]:
/// `invoke("execute", {command: {cmd: "messages", room: 3, before: null, limit: 50}})`.
pub const INVOKE: &str = "execute";

/// Every command, with its arguments and result: the whole IPC surface, written once. The UI
/// sends these values; the backend dispatches them in one `match`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// → [`Snapshot`]. Where the app stands: server, account, connection.
    Snapshot,
    /// `{url}` → `()`. Checks the URL and that a chat server answers there, then remembers it.
    /// An https server whose certificate is not trusted fails with
    /// [`AppErrorCode::UntrustedCertificate`] and the certificate in [`AppError::certificate`].
    SetServer { url: String },
    /// `{url, sha256}` → `()`. Like `SetServer`, trusting the certificate with this SHA-256
    /// fingerprint for this server (the user accepted it); the pin is kept with the server.
    /// Fails with [`AppErrorCode::CertificateChanged`] if the server presents another one.
    TrustCertificate { url: String, sha256: String },
    /// `{username, password}` → [`User`]. Registers, stores the token in the keychain, connects.
    Register { username: String, password: String },
    /// `{username, password}` → [`User`]. Logs in, stores the token in the keychain, connects.
    Login { username: String, password: String },
    /// → `()`. Revokes the token on the server, deletes it from the keychain, clears the cache
    /// (including unsent messages: ask [`Command::Unsent`] first and warn the user).
    Logout,
    /// → `u32`: messages in the outbox (pending or failed), which logging out would drop.
    Unsent,
    /// → `()`. Skips the wait before the next reconnect attempt.
    ReconnectNow,
    /// → `Vec<`[`RoomView`]`>` from the cache (instant), sorted by latest activity.
    Rooms,
    /// `{room, before, limit}` → [`MessagePage`]: cached first, then older pages from the server.
    Messages {
        room: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    },
    /// `{room, body, replyTo?, mentions?, mentionRoom?}` → [`MessageView`] (pending). Stored in
    /// the outbox first, sent when online. `reply_to`: the seq of the message it answers;
    /// `mentions`: the ids of the `@username`s in the text (protocol §1.7, §1.9).
    Send {
        room: RoomId,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<UserId>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        mention_room: bool,
    },
    /// `{room, seq, emoji}` → `()`. Adds the user's reaction: shown at once, sent through the
    /// outbox (delivered once, also when made offline).
    React {
        room: RoomId,
        seq: u64,
        emoji: String,
    },
    /// `{room, seq, emoji}` → `()`. Takes the user's reaction back, like [`Command::React`].
    Unreact {
        room: RoomId,
        seq: u64,
        emoji: String,
    },
    /// `{clientId}` → `()`. Sends a failed outbox message again.
    Retry { client_id: String },
    /// `{clientId}` → `()`. Drops a failed or pending outbox message.
    Discard { client_id: String },
    /// `{room, seq, body}` → `()`.
    Edit {
        room: RoomId,
        seq: u64,
        body: String,
    },
    /// `{room, seq}` → `()`.
    Delete { room: RoomId, seq: u64 },
    /// `{room, seq}` → `()`. Moves the read marker (never back).
    MarkRead { room: RoomId, seq: u64 },
    /// `{room}` → `()`. Tells others the user is typing (throttled by the backend).
    Typing { room: RoomId },
    /// `{name, visibility}` → [`Room`].
    CreateRoom {
        name: String,
        visibility: Visibility,
    },
    /// → `Vec<`[`Room`]`>`.
    PublicRooms,
    /// `{room}` → [`Room`].
    JoinRoom { room: RoomId },
    /// `{room}` → `()`.
    LeaveRoom { room: RoomId },
    /// `{room}` → `Vec<`[`MemberView`]`>`.
    Members { room: RoomId },
    /// `{query}` → `Vec<`[`UserView`]`>`.
    SearchUsers { query: String },
    /// `{user}` → [`Room`]: the direct room with that user.
    OpenDm { user: UserId },
    /// `{query}` → `Vec<`[`SearchHit`]`>`: full-text search over cached messages.
    Search { query: String },
    /// `{room}` → `String`: the unsent draft of a room ("" when none).
    GetDraft { room: RoomId },
    /// `{room, text}` → `()`.
    SetDraft { room: RoomId, text: String },
    /// `{room}` → `()`: which room the user is looking at (`null` for none); no notifications
    /// for it while the window has focus.
    SetFocus { room: Option<RoomId> },
    /// → [`Settings`].
    GetSettings,
    /// `{settings}` → `()`.
    SetSettings { settings: Settings },
    /// → `Vec<`[`SessionInfo`](crate::rest::SessionInfo)`>`: the account's live sessions (device, last used, `current`
    /// for this device's), oldest first.
    Sessions,
    /// `{id}` → `()`. Ends one of the account's sessions (that device is signed out at once);
    /// this device's own session is a [`Command::Logout`].
    EndSession { id: String },
    /// `{current, new}` → `()`. Changes the password; every other session is signed out.
    /// Fails with `wrong_password` or `invalid_password` (server codes).
    ChangePassword { current: String, new: String },
    /// → `()`. Signs every session of the account out, this one included, then logs out here.
    LogoutEverywhere,
    /// `{room, user}` → `()`. Bans `user` from a group room the caller owns (or moderates as
    /// a server admin): they are removed and cannot rejoin or be invited until unbanned.
    Ban { room: RoomId, user: UserId },
    /// `{room, user}` → `()`. Lifts a ban (the user is not re-added).
    Unban { room: RoomId, user: UserId },
    /// `{room}` → `Vec<`[`UserRef`](crate::rest::UserRef)`>`: who is banned from the room (owner only).
    Bans { room: RoomId },
    /// `{user}` → `()`. Blocks `user`: no DMs or invites from them, and they cannot write in
    /// the DM they have with the caller. They are not told.
    Block { user: UserId },
    /// `{user}` → `()`.
    Unblock { user: UserId },
    /// → `Vec<`[`UserRef`](crate::rest::UserRef)`>`: the users this account blocked.
    Blocks,
    /// `{room, name, topic}` → [`Room`]. The owner renames the room and/or sets its topic
    /// (`null` keeps a field, `""` clears the topic).
    UpdateRoom {
        room: RoomId,
        name: Option<String>,
        topic: Option<String>,
    },
    /// `{room}` → `()`. The owner deletes the room: its history is gone for every member.
    DeleteRoom { room: RoomId },
    /// `{room, level}` → `()`. When to notify about the room, synced to the user's devices.
    SetNotify { room: RoomId, level: NotifyLevel },
    /// `{display_name}` → [`User`]. Sets the user's display name (`""` removes it).
    SetDisplayName { display_name: String },
    /// `{user}` → [`UserView`]: a user's card (username, display name, presence as the server
    /// shows it to this user).
    UserCard { user: UserId },
    /// `{room, paths, body?, replyTo?}` → [`MessageView`] (pending, with `uploads`). Attaches
    /// files (1 to [`crate::attachment::MAX_ATTACHMENTS_PER_MESSAGE`]) by path: each is copied
    /// into the app's staging folder at once (the original may go), then uploaded through the
    /// outbox ([`AppEvent::UploadProgress`] reports it) and the message sent once every file is
    /// up. `body` may be empty. The file picker and drag and drop both end here.
    SendFiles {
        room: RoomId,
        paths: Vec<String>,
        #[serde(default)]
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// `{room, name, bytes}` → [`MessageView`]: like [`Command::SendFiles`] for bytes the UI
    /// holds (a pasted screenshot), staged under `name`.
    SendBytes {
        room: RoomId,
        name: String,
        bytes: Vec<u8>,
    },
    /// `{clientId}` → `()`. Stops the upload of a pending message with files and drops the
    /// message (nothing is sent). Fails with `invalid` when it is no longer in the outbox.
    CancelUpload { client_id: String },
    /// `{id, path}` → `u64` (bytes written): saves an attachment's file at `path` (the user
    /// chose it in a save dialog), from the local file cache or downloaded.
    SaveAttachment { id: String, path: String },
    /// → [`BlobCacheView`]: the local file cache (downloaded images and files).
    BlobCache,
    /// `{bytes}` → [`BlobCacheView`]: sets the file cache's size (least recently used files
    /// leave first).
    SetBlobCacheLimit { bytes: u64 },
    /// → [`UpdateStatus`]: this app's version and the update ready to install, if any.
    UpdateStatus,
    /// → `()`, but on success the app restarts as the new version instead of answering:
    /// installs the update [`Command::UpdateStatus`] announced. Fails with `update_failed`
    /// (nothing changed) when there is none or it cannot be installed.
    InstallUpdate,
}

/// The app's version and its pending update ([`Command::UpdateStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The running app's version.
    pub current: String,
    /// A newer version, downloaded and its signature checked, waiting for a restart.
    pub ready: Option<UpdateView>,
}

/// A newer app version from the user's chat server, ready to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateView {
    pub version: String,
    /// Release notes from the server (plain text).
    pub notes: Option<String>,
}

/// The Tauri command that returns an attachment's bytes (raw, not JSON: images can be
/// megabytes): `invoke("attachment_bytes", {id, thumbnail})` → `ArrayBuffer`. The backend
/// downloads it (or takes it from the local file cache); the UI shows it through an object
/// URL, so the web view never loads a URL of the server.
pub const ATTACHMENT_BYTES: &str = "attachment_bytes";

/// Where the app stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub server_url: Option<String>,
    /// The last username used on this server (prefilled on the login form).
    pub username: Option<String>,
    /// The logged-in user, when a token is in the keychain.
    pub user: Option<User>,
    pub connection: ConnectionState,
    /// The server's limits (from its last `welcome`; the server defaults until one came).
    pub limits: Limits,
    /// The room that was open when the app was last used: opened again at start.
    #[serde(default)]
    pub last_room: Option<RoomId>,
}

/// The socket's state, shown as a banner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not logged in, or logged out.
    Offline,
    Connecting,
    Online,
    /// Lost the connection; trying again in `retry_in_ms` (attempt number `attempt`).
    Reconnecting {
        attempt: u32,
        retry_in_ms: u64,
        reason: String,
    },
}

/// A room in the side bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    pub room: Room,
    /// The newest message, for the preview line.
    pub last_message: Option<MessageView>,
    /// For direct rooms: whether the other user is online.
    pub peer_online: Option<bool>,
    /// The room's whole history is known here and holds no message (only joins and the
    /// like): the preview line says "No messages yet". False while that is not known.
    #[serde(default)]
    pub no_messages: bool,
}

/// Delivery state of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted by the server (has a seq).
    Sent,
    /// In the outbox, not yet acknowledged.
    Pending,
    /// The server refused it; `reason` says why. Retry or discard.
    Failed { code: ErrorCode, reason: String },
}

/// A message as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub room: RoomId,
    /// The server's seq; `None` while pending or failed.
    pub seq: Option<u64>,
    pub client_id: String,
    pub sender: UserId,
    pub sender_name: String,
    /// Plain text, to be rendered as text (never as HTML).
    pub body: String,
    pub ts: i64,
    pub edited: bool,
    pub deleted: bool,
    pub status: MessageStatus,
    /// The seq of the message (same room) this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// What the reply quotes, from the cache; `None` when the original is not known here
    /// (out of retention, or not fetched yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<Quote>,
    /// Reactions, in the order each emoji was first used, with who reacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// Users the message mentions (structural: ids, not text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// `@room`: the message mentions every member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mention_room: bool,
    /// Files of a sent message (download with [`ATTACHMENT_BYTES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Files of a pending or failed message, not sent yet (progress comes as
    /// [`AppEvent::UploadProgress`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<UploadView>,
}

/// A file waiting in the outbox to be uploaded with its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadView {
    pub name: String,
    pub size: u64,
}

/// The local cache of downloaded attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobCacheView {
    /// Bytes the cached files take.
    pub used: u64,
    /// The most it may take.
    pub limit: u64,
}

/// The original of a reply, as its quoted preview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub sender_name: String,
    /// The first non-blank line of the text, without markup (empty when deleted).
    pub text: String,
    /// The original was deleted: the preview says "deleted message".
    pub deleted: bool,
}

impl Quote {
    /// Longest quoted line, in characters (the rest is cut with "…").
    pub const MAX_CHARS: usize = 120;
}

/// A page of messages, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// More, older messages exist (in the cache or on the server).
    pub has_more: bool,
}

/// A user with presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    /// Shown next to the username when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub online: bool,
    pub last_seen: Option<i64>,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user: UserView,
    pub owner: bool,
}

/// A local search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub room: RoomId,
    pub room_name: String,
    pub seq: u64,
    pub sender_name: String,
    /// The message text (plain; the UI highlights matches itself).
    pub body: String,
    pub ts: i64,
}

/// App settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Start hidden in the tray.
    pub start_minimized: bool,
    /// Show desktop notifications for new messages in rooms not in view.
    pub notifications: bool,
    /// Notifications name the sender but not the message text (for shared screens).
    #[serde(default)]
    pub hide_notification_text: bool,
}

/// Events from the backend (event name [`EVENT`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// A message (with its reactions and quote) is most of the events; boxing it would only add an
// allocation to each of them.
#[allow(clippy::large_enum_variant)]
pub enum AppEvent {
    Connection {
        state: ConnectionState,
    },
    /// A message appeared or changed (sent, edited, deleted, pending → sent/failed).
    Message {
        message: MessageView,
    },
    /// The room list changed (joined, left, unread counts, new room): call `rooms` again.
    RoomsChanged,
    Presence {
        user: UserId,
        online: bool,
        last_seen: Option<i64>,
    },
    Typing {
        room: RoomId,
        user: UserId,
        username: String,
        ttl_ms: u64,
    },
    /// The session ended (logged out elsewhere, revoked): show the login screen.
    SessionEnded {
        reason: String,
    },
    /// The server announced its limits (on every `welcome`, when they differ from before).
    Limits {
        limits: Limits,
    },
    /// A user's display name changed (yours too): refresh shown names (members, cards).
    UserUpdated {
        user: UserId,
        display_name: Option<String>,
    },
    /// The server's store lost data (close `4010`, protocol §3.6/§7.7): the backend dropped
    /// its cached rooms, messages, members and read markers (the outbox, drafts and settings
    /// stay) and reconnects without resume cursors. Drop loaded timelines and members and load
    /// them again; `rooms` is empty until the next `welcome` re-syncs the room list (it is
    /// followed by `rooms_changed`).
    HistoryReset,
    /// Someone else took the user out of a room (removed or banned them, live): the room is
    /// gone from the list (`rooms_changed` follows). Show why, above all if it was open.
    RemovedFromRoom {
        room: RoomId,
        room_name: String,
        /// Who did it, when known from the cache.
        by_name: Option<String>,
        /// A ban: rejoining and invites are refused until the owner lifts it.
        banned: bool,
    },
    /// The files of the pending message `client_id` are being uploaded: `sent` of `total`
    /// bytes (all its files together). After the last one the message is sent (a `message`
    /// event follows).
    UploadProgress {
        room: RoomId,
        client_id: String,
        sent: u64,
        total: u64,
    },
    /// A newer app version is downloaded and its signature checked: offer "Restart to update"
    /// ([`Command::InstallUpdate`]).
    UpdateReady {
        update: UpdateView,
    },
    /// The first start after an update is upgrading the local cache (once; minutes at a
    /// million cached messages): `percent` of it is done. Every command waits until it is
    /// over; show "Updating local history… N%" meanwhile. Sent as it moves, the last with 100.
    CacheUpgrade {
        percent: u8,
    },
}

/// Why a command failed: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: AppErrorCode,
    pub message: String,
    /// The server's certificate, for `untrusted_certificate` and `certificate_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateView>,
}

/// A server certificate, as the user checks it against what the operator says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// SHA-256 of the certificate (DER), `AB:CD:…`.
    pub sha256: String,
    /// The subject's distinguished name, e.g. `CN=chat.example.com`.
    pub subject: String,
    /// Who signed it, e.g. `CN=Example Corp CA`.
    pub issuer: String,
}

/// App-level error codes; server refusals carry the server's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "server", rename_all = "snake_case")]
pub enum AppErrorCode {
    /// The server URL is not a valid http(s) URL.
    BadUrl,
    /// `http://` to a host that is not this machine: passwords and tokens would cross the
    /// network in clear text. The message says what to do (https, TLS on the server).
    InsecureUrl,
    /// The server's certificate is not trusted (no known CA): the user may trust it
    /// ([`Command::TrustCertificate`]); the certificate is in [`AppError::certificate`].
    UntrustedCertificate,
    /// The server presented another certificate than the one trusted for it: refused.
    CertificateChanged,
    /// No chat server answered at the URL.
    ServerUnreachable,
    /// No server chosen or not logged in.
    NotLoggedIn,
    /// The server refused the request with this code.
    Server(ErrorCode),
    /// The local cache failed.
    Storage,
    /// The OS keychain failed.
    Keychain,
    /// Bad arguments from the UI.
    Invalid,
    /// No update to install, or installing it failed (the app is unchanged).
    UpdateFailed,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
