//! Request and response bodies of the REST API (`/api/v1/...`).

use crate::event::{Role, RoomEvent};
use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/register` and `POST /api/v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// A label for this session shown in the session list, e.g. "Laptop". At most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Register only: the invite code, required when the server's `registration` is `invite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// A new session: the token authenticates HTTP (`Authorization: Bearer <token>`) and the socket (`hello`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthResponse {
    /// Opaque secret. Keep it like a password; the server stores only its hash.
    pub token: String,
    pub session_id: String,
    pub user: User,
}

/// A user account as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub created_ts: i64,
    /// The account may use the admin routes (`/api/v1/admin/...`).
    #[serde(default)]
    pub admin: bool,
    /// The name shown next to the username (`PATCH /api/v1/me`); absent when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `PATCH /api/v1/me`: change the caller's profile; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateProfile {
    /// The new display name (see `validate::display_name`); `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Another user as everyone sees them: name and presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserPublic {
    pub id: UserId,
    pub username: String,
    /// The user's display name, when they set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub online: bool,
    /// When the user was last online (ms since epoch); absent if never, or online now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

/// `GET /api/v1/users?q=` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UserQuery {
    /// Exact username (case-insensitive) or a prefix of it.
    pub q: String,
}

/// `GET /api/v1/rooms/public` query: one page of public rooms, by ascending id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PublicRoomsQuery {
    /// Only rooms whose name contains this (case-insensitive), 1 to 64 characters.
    pub q: Option<String>,
    /// Only rooms with an id above this (the last id of the previous page).
    pub after: Option<u64>,
    /// Page size, 1 to 100 (default 50). A page shorter than `limit` is the last.
    pub limit: Option<usize>,
}

/// A user the caller blocked (`GET /api/v1/blocks`) or a user banned from a room
/// (`GET /api/v1/rooms/{room}/bans`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
}

/// One of the caller's sessions (`GET /api/v1/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub created_ts: i64,
    pub last_used_ts: i64,
    /// True for the session that made this request.
    pub current: bool,
}

/// `POST /api/v1/password`: change the caller's password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChangePassword {
    /// The password in use now.
    pub current: String,
    /// The new password (same rules as at registration).
    pub new: String,
}

/// An account as an admin sees it (`/api/v1/admin/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminUser {
    pub id: UserId,
    pub username: String,
    pub created_ts: i64,
    pub admin: bool,
    /// A disabled account cannot log in and has no sessions.
    pub disabled: bool,
}

/// `GET /api/v1/admin/users` query: accounts by ascending id, a page at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AdminUsersQuery {
    /// Accounts with an id above this one (default 0: from the first).
    pub after: Option<u64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

/// `POST /api/v1/admin/users`: create an account (whatever the registration mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

/// `PATCH /api/v1/admin/users/{user}`: change an account's flags; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateUser {
    /// Grant (true) or revoke (false) the admin role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// Disable (true: sessions revoked, sockets closed, login refused) or enable (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `PUT /api/v1/admin/users/{user}/password`: set a new password; all sessions are revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResetPassword {
    pub password: String,
}

/// `POST /api/v1/admin/invites`: a registration invite code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NewInviteCode {
    /// How many registrations the code allows, 1..=10000 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// Seconds until the code expires, 60..=31536000 (default 604800: 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
}

/// A new invite code. The code is shown once: the server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InviteCode {
    pub code: String,
    pub uses: u32,
    /// When it stops working (ms since epoch).
    pub expires_ts: i64,
}

/// Who can find and join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed in `GET /api/v1/rooms/public`; anyone may join.
    Public,
    /// Members only, by invitation.
    Private,
}

/// Group room or direct message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Group,
    Direct,
}

/// `POST /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateRoom {
    pub name: String,
    pub visibility: Visibility,
}

/// A room as a member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Room {
    pub id: RoomId,
    /// For direct rooms: the other user's name.
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub member_count: u64,
    /// Seq of the newest event (0 when empty).
    pub last_seq: u64,
    /// The caller's role; absent when the caller is not a member (public room listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The caller's read marker: last seq they have read.
    #[serde(default)]
    pub read_seq: u64,
    /// Messages from others after `read_seq` and after the caller's own latest message or join
    /// (among the newest 500 events), counted up to 100 (show "99+" at 100).
    #[serde(default)]
    pub unread: u64,
    /// Of those unread messages, the ones that mention the caller (by id, or `@room`), counted
    /// the same way up to 100. The read marker clears it, on every device.
    #[serde(default)]
    pub mentions: u64,
    /// For direct rooms: the other member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<UserId>,
    /// For direct rooms: the other member's display name, when they set one (`name` stays
    /// their username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_display_name: Option<String>,
    /// The room's topic (group rooms; empty when none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    /// The caller's notification level for this room (synced across their devices).
    #[serde(default)]
    pub notify: NotifyLevel,
}

/// When a user's devices notify them of a room's messages (issue 13). The server only stores
/// and syncs it; clients decide what to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    /// Every message from others.
    #[default]
    All,
    /// Only messages that mention the user (by id or `@room`).
    Mentions,
    /// Nothing.
    None,
}

/// `PATCH /api/v1/rooms/{room}`: the owner renames the room or changes its topic; absent
/// fields stay. Each change is a `room_updated` event in the room's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateRoom {
    /// The new name (rules of `validate::room_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new topic (rules of `validate::topic`); `""` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// `PUT /api/v1/rooms/{room}/notify`: the caller's notification level for the room.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SetNotify {
    pub level: NotifyLevel,
}

/// A member of a room, with presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Member {
    pub user: UserPublic,
    pub role: Role,
}

/// `POST /api/v1/rooms/{room}/members`: invite a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Invite {
    pub user: UserId,
}

/// `POST /api/v1/dms`: open (or get) the direct room with a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OpenDm {
    pub user: UserId,
}

/// `POST /api/v1/rooms/{room}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SendMessage {
    /// Client message id: the idempotency key. Retrying with the same id never creates a second message.
    pub id: String,
    pub body: String,
    /// The seq of the message of the same room this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Users this message mentions; the server keeps only members of the room.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// `@room` (room owners and server admins only, rate limited).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mention_room: bool,
    /// Ids of uploads to attach (see `POST /api/v1/rooms/{room}/attachments`); `body` may
    /// then be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// The outcome of a send (HTTP response, or the `ack` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SendAck {
    pub room: RoomId,
    pub id: String,
    pub seq: u64,
    pub ts: i64,
    /// True when this id was already sent: `seq`/`ts` are the original message's.
    pub duplicate: bool,
}

/// `PATCH /api/v1/rooms/{room}/messages/{seq}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EditMessage {
    pub body: String,
}

/// `GET /api/v1/rooms/{room}/events` query. Give `before` to page backwards (newest first
/// page when neither is given), or `after` to page forwards (gap filling).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
// In the query: optional, but never `null` (a query string cannot say null).
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// Return events with seq < before, newest of them first in the window, sorted ascending.
    pub before: Option<u64>,
    /// Return events with seq > after, ascending.
    pub after: Option<u64>,
    /// Page size, 1..=max_history_page (default 50).
    pub limit: Option<usize>,
}

/// A page of history, always sorted by ascending seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HistoryPage {
    pub room: RoomId,
    pub events: Vec<RoomEvent>,
    /// True when more events exist in the paging direction.
    pub has_more: bool,
    /// Oldest seq the server still keeps for this room (older ones fell out of retention).
    pub first_seq: u64,
    /// Newest seq of the room.
    pub last_seq: u64,
}

/// `PUT /api/v1/rooms/{room}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ReadMarker {
    pub seq: u64,
}

/// `GET /api/v1/updates/{target}/{arch}/{bundle}/{current_version}` when a newer desktop app is
/// served: Tauri's updater manifest in its "dynamic" shape (one platform, chosen by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdateManifest {
    /// The version offered (semver, e.g. `1.4.0`).
    pub version: String,
    /// Release notes for the user (the version directory's `notes.md`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Where to download the package: `/api/v1/updates/files/{version}/{file}` on this server.
    pub url: String,
    /// The package's minisign signature as `tauri signer sign` writes it (the `.sig` file's
    /// contents). The app verifies it against the public key compiled into it, never one the
    /// server sends.
    pub signature: String,
}
