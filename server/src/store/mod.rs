//! The store: users, sessions, rooms, the room event log, read markers, presence, and the bus
//! that carries events to every server node.
//!
//! Two backends with the same semantics: [`redis::RedisStore`] (shared by many nodes) and
//! [`memory::MemoryStore`] (embedded, one node). Every operation that appends to a room's log
//! assigns the seq, stores the event and publishes it on the bus in one atomic step, so bus
//! order equals seq order on every node.

pub mod bus;
pub mod dump;
pub mod health;
pub mod memory;
pub mod redis;

use crate::error::{StoreError, StoreResult};
use protocol::event::Role;
use protocol::rest::{NotifyLevel, RoomKind, SendAck, Visibility};
use protocol::{RoomId, UserId};
use std::sync::Arc;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub created_ts: i64,
    /// May use the admin routes. The first account of a store is made admin.
    pub admin: bool,
    /// Cannot log in; its sessions were revoked when it was disabled.
    pub disabled: bool,
}

/// A registration invite code. Only the code's SHA-256 is stored, like tokens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteRecord {
    pub code_hash: String,
    /// Registrations still allowed.
    pub uses_left: u32,
    pub expires_ts: i64,
    pub created_by: Option<UserId>,
    pub created_ts: i64,
}

/// What lets a registration in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Anyone (`registration = "open"`).
    Open,
    /// One use of the invite whose code hashes to this; `invalid_invite` if it is unknown, used
    /// up or expired.
    Invite(&'a str),
    /// Only the store's first account (it becomes the admin); `registration_closed` after.
    FirstAccount,
}

/// The refusal of [`Admission::FirstAccount`] once the store has an account.
pub(crate) fn registration_closed() -> crate::error::StoreError {
    crate::error::ApiError::new(
        protocol::ErrorCode::RegistrationClosed,
        "registration is closed on this server; ask its admin for an account",
    )
    .into()
}

/// An account flag an admin can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFlag {
    Admin,
    /// Setting it also revokes every session of the account (and closes their sockets).
    Disabled,
}

/// A stored session. The token itself is never stored: only `token_hash` (SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub token_hash: String,
    pub user: UserId,
    pub device: Option<String>,
    pub created_ts: i64,
    pub last_used_ts: i64,
}

/// A room's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMeta {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub owner: Option<UserId>,
    pub last_seq: u64,
    pub member_count: u64,
    /// Direct rooms: the two members.
    pub pair: Option<(UserId, UserId)>,
    /// Group rooms: the topic the owner set (empty when none).
    pub topic: String,
}

/// How much history a room keeps. Zero means unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_events: u64,
    pub max_age_ms: i64,
}

/// Which part of a room's log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The newest `limit` events with seq < before (newest of the room when `None`).
    Before(Option<u64>),
    /// The oldest `limit` events with seq > after.
    After(u64),
}

/// A slice of a room's log: raw event JSON (the `event` frame, as published), ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub events: Vec<String>,
    pub has_more: bool,
    /// Oldest seq still kept (last_seq + 1 when the log is empty).
    pub first_seq: u64,
    pub last_seq: u64,
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub room: RoomId,
    pub sender: UserId,
    pub client_id: &'a str,
    /// The `event` object (`{"kind":"message",...}`) serialized by the caller.
    pub event_json: &'a str,
    /// The seq of the message this one replies to: it must be a message of the same room that
    /// is still kept and not deleted (`message_not_found`, `message_deleted`), checked in the
    /// same atomic step as the append.
    pub reply_to: Option<u64>,
    /// Ids of pending uploads of the sender for this room, attached in the same atomic step
    /// (`attachment_not_found` otherwise; see [`uploads`]).
    pub attachments: &'a [String],
}

/// Edit or delete of message `target` by `sender`.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub room: RoomId,
    pub target: u64,
    pub sender: UserId,
    /// New text; `None` deletes.
    pub body: Option<&'a str>,
    /// The `event` object of the edit/delete event.
    pub event_json: &'a str,
    /// The sender moderates the room (owner, or server admin): may delete others' messages.
    pub moderator: bool,
}

/// A reaction added or taken back by `user` on message `target` (issue 13).
#[derive(Debug, Clone)]
pub struct ReactionChange<'a> {
    pub room: RoomId,
    pub target: u64,
    pub user: UserId,
    /// Validated and in canonical form (`protocol::validate::emoji`).
    pub emoji: &'a str,
    /// Add (`true`) or take back.
    pub add: bool,
    /// The `event` object of the `reaction_added` / `reaction_removed` event.
    pub event_json: &'a str,
}

/// A membership change to append to a room's log.
#[derive(Debug, Clone)]
pub struct MemberChange<'a> {
    pub room: RoomId,
    pub user: UserId,
    /// `Some(role)` adds the user (no-op if already a member); `None` removes.
    pub role: Option<Role>,
    /// The `event` object of the membership event. When the owner is removed, the member with
    /// the lowest id becomes owner (an `owner_changed` event follows).
    pub event_json: &'a str,
}

/// Presence of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    pub last_seen: Option<i64>,
}

/// Either backend. Methods are documented once, on this type.
pub enum Store {
    Memory(Box<memory::MemoryStore>),
    Redis(redis::RedisStore),
}

/// Store calls made by this process (each is one round trip to Redis), for measuring what an
/// operation costs (see docs/BENCHMARKS.md, "Reconnect cost").
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many store calls this process has made so far.
pub fn calls() -> u64 {
    CALLS.load(std::sync::atomic::Ordering::Relaxed)
}

macro_rules! delegate {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    static OP: std::sync::OnceLock<crate::metrics::StoreOp> = std::sync::OnceLock::new();
                    let call = crate::metrics::StoreCall::start(&OP, stringify!($name));
                    let result = match self {
                        Store::Memory(s) => s.$name($($arg),*).await,
                        Store::Redis(s) => {
                            // Known down: answer at once instead of waiting out reconnects.
                            if s.health().is_down() {
                                return Err(StoreError::Unreachable("the store is unreachable".into()));
                            }
                            let result = s.$name($($arg),*).await;
                            if let Err(StoreError::Unreachable(_)) = &result {
                                s.health().mark_down();
                            }
                            result
                        }
                    };
                    call.finish(matches!(&result, Err(e) if !matches!(e, StoreError::Api(_))));
                    result
                }
            )*
        }
    };
}

delegate! {
    /// Whether the store answers.
    fn ping(&self) -> StoreResult<()>;
    /// Creates an account; `username_taken` if the lowercase name or its
    /// [`name_skeleton`] (a confusable name) exists.
    fn create_user(&self, username: &str, password_hash: &str, now: i64) -> StoreResult<UserRecord>;
    /// Looks up an account by name, case-insensitively.
    fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Names of users by id; missing ids are left out.
    fn users(&self, ids: &[UserId]) -> StoreResult<Vec<(UserId, String)>>;
    /// Users whose lowercase name starts with `prefix` (lowercase), at most `limit`.
    fn search_users(&self, prefix: &str, limit: usize) -> StoreResult<Vec<(UserId, String)>>;
    /// Stores a session for `ttl_secs`.
    fn create_session(&self, session: &SessionRecord, ttl_secs: u64) -> StoreResult<()>;
    /// The session for a token hash, sliding its expiry to `ttl_secs` from now. `None` when
    /// unknown, expired, older than `max_age_secs`, or its account is disabled.
    fn touch_session(&self, token_hash: &str, now: i64, ttl_secs: u64, max_age_secs: u64) -> StoreResult<Option<SessionRecord>>;
    /// All live sessions of a user.
    fn sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Revokes a session of `user` by id and tells every node to close its sockets. False if
    /// the user has no such session.
    fn revoke_session(&self, user: UserId, session_id: &str) -> StoreResult<bool>;
    /// Creates a group room owned by `owner`, appending `event_json` (member_joined) as seq 1.
    fn create_room(&self, owner: UserId, name: &str, visibility: Visibility, event_json: &str, now: i64) -> StoreResult<RoomId>;
    /// The direct room of two users, created on first use with both as members.
    fn open_dm(&self, a: (UserId, &str), b: (UserId, &str), now: i64) -> StoreResult<RoomId>;
    /// A room's metadata.
    fn room(&self, room: RoomId) -> StoreResult<Option<RoomMeta>>;
    /// Metadata of several rooms, skipping missing ones.
    fn rooms(&self, rooms: &[RoomId]) -> StoreResult<Vec<RoomMeta>>;
    /// All public rooms.
    fn public_rooms(&self) -> StoreResult<Vec<RoomId>>;
    /// The rooms a user belongs to.
    fn user_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>>;
    /// A member's role, or `None` when not a member (or no such room).
    fn role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>>;
    /// Members and roles.
    fn members(&self, room: RoomId) -> StoreResult<Vec<(UserId, Role)>>;
    /// Adds or removes a member and appends the event; the new seq, or `None` if nothing changed.
    fn change_member(&self, change: MemberChange<'_>, now: i64) -> StoreResult<Option<u64>>;
    /// Appends a message unless its client id was seen in the dedupe window (then returns the
    /// original's seq with `duplicate`). `not_a_member` if the sender is not a member.
    fn append_message(&self, msg: NewMessage<'_>, now: i64, dedupe_ttl_secs: u64, retention: Retention) -> StoreResult<SendAck>;
    /// Edits or deletes a message and appends the change event; returns its seq.
    fn change_message(&self, change: Change<'_>, now: i64) -> StoreResult<u64>;
    /// Reads a slice of a room's log.
    fn history(&self, room: RoomId, range: Range, limit: usize) -> StoreResult<LogPage>;
    /// Moves a read marker forward (never back) and tells the user's connections; returns it.
    fn set_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64>;
    /// A user's read markers for the given rooms (0 when unset).
    fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<u64>>;
    /// Publishes a bus message to all nodes (typing and other ephemeral frames).
    fn publish(&self, msg: String) -> StoreResult<()>;
    /// This node's first connection of `user` opened; announces "online" if no other node has one.
    fn presence_up(&self, user: UserId, now: i64) -> StoreResult<()>;
    /// This node's last connection of `user` closed; announces "offline" if no other node has one.
    fn presence_down(&self, user: UserId, now: i64) -> StoreResult<()>;
    /// Presence of several users.
    fn presence(&self, users: &[UserId], now: i64) -> StoreResult<Vec<Presence>>;
    /// Heartbeat of this node, and clean-up after nodes whose heartbeat expired. True when
    /// this node was not registered (first beat, or other nodes reaped it during an outage).
    fn presence_heartbeat(&self, now: i64, ttl_ms: i64) -> StoreResult<bool>;
    /// Marks all of this node's users offline (graceful shutdown).
    fn presence_node_down(&self, now: i64) -> StoreResult<()>;

    // --- Accounts and administration (see `memory/admin.rs`, `redis/admin.rs`) ---

    /// An account by id.
    fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Accounts with id > `after`, ascending, at most `limit`.
    fn list_users(&self, after: u64, limit: usize) -> StoreResult<Vec<UserRecord>>;
    /// Creates an account as [`Store::create_user`] does, if `admission` lets it in, in one
    /// step (an invite's use is consumed only when the account is created).
    fn register_user(&self, username: &str, password_hash: &str, now: i64, admission: Admission<'_>) -> StoreResult<UserRecord>;
    /// Sets the password hash and, in the same step, revokes every session of the user except
    /// `keep` (their sockets are closed on every node). False if there is no such user.
    fn set_password(&self, user: UserId, password_hash: &str, keep: Option<&str>) -> StoreResult<bool>;
    /// Revokes every session of `user` except `keep` and closes their sockets on every node;
    /// returns how many were revoked.
    fn revoke_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64>;
    /// Sets or clears a flag (disabling also revokes all sessions). False if no such user.
    fn set_user_flag(&self, user: UserId, flag: UserFlag, on: bool) -> StoreResult<bool>;
    /// Stores an invite code (expires at `invite.expires_ts`).
    fn create_invite(&self, invite: &InviteRecord) -> StoreResult<()>;
    /// The whole data set, for `chat-server admin export` (see [`dump`]).
    fn dump(&self, now: i64) -> StoreResult<dump::DataSet>;
    /// Loads a data set into an empty store (`store_not_empty` otherwise).
    fn load(&self, data: &dump::DataSet) -> StoreResult<()>;

    /// Whether the store still holds the data this node started with. False (once) after it
    /// came back empty: Redis restarted without persistence, or was flushed.
    fn same_epoch(&self) -> StoreResult<bool>;
}

// Privacy and moderation (issue 11). Kept together, apart from the methods above.
delegate! {
    /// For each of `others`: whether they share at least one room with `user`.
    fn shares_room(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<bool>>;
    /// Bans (`true`) or unbans `user` from `room`; a banned user's join or invite fails with
    /// `banned` in [`Store::change_member`]. Returns whether anything changed.
    fn set_ban(&self, room: RoomId, user: UserId, banned: bool) -> StoreResult<bool>;
    /// The users banned from a room, ascending.
    fn bans(&self, room: RoomId) -> StoreResult<Vec<UserId>>;
    /// `user` blocks (`true`) or unblocks `other`.
    fn set_block(&self, user: UserId, other: UserId, blocked: bool) -> StoreResult<()>;
    /// Whether `by` blocked `whom`.
    fn blocked(&self, by: UserId, whom: UserId) -> StoreResult<bool>;
    /// The users `user` blocked, ascending.
    fn blocks(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// How many rooms `user` belongs to.
    fn room_count(&self, user: UserId) -> StoreResult<u64>;
    /// `user`'s role in each of `rooms` (`None` where not a member), in one store call.
    fn roles(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<Option<Role>>>;
    /// For each `(room, n)`: the newest `n` events of the room, ascending, in one store call
    /// (unread counts of many rooms at connect).
    fn newest_events(&self, rooms: &[(RoomId, usize)]) -> StoreResult<Vec<Vec<String>>>;
}

// Everyday chat (issue 13).
delegate! {
    /// Applies a reaction to message `target` and appends its event; the event's seq, or
    /// `None` when nothing changed (already there / not there). `not_a_member`,
    /// `message_not_found`, `message_deleted`, or `limit_reached` when the message has
    /// `MAX_REACTIONS_PER_MESSAGE` emoji or the user `MAX_REACTIONS_PER_USER` on it.
    fn react(&self, change: ReactionChange<'_>, now: i64) -> StoreResult<Option<u64>>;
    /// For each of `users`: whether they are a member of `room`, in one store call.
    fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<bool>>;
}

// Room settings and profiles (issue 13; see `memory/settings.rs`, `redis/settings.rs`).
delegate! {
    /// Renames the room and/or sets its topic, and appends the `room_updated` event, if the
    /// caller owns the group room (`not_a_member`, `not_owner`, `direct_room`); the event's
    /// seq, or `None` when nothing changed.
    fn update_room(&self, update: RoomUpdate<'_>, now: i64) -> StoreResult<Option<u64>>;
    /// Appends the `room_deleted` event (routed with [`bus::MemberRoute::RoomDeleted`]), then
    /// deletes the room: metadata, members, history, bans, and every member's read marker and
    /// notification level for it. Same refusals as [`Store::update_room`]. Returns the seq.
    fn delete_room(&self, room: RoomId, by: UserId, event_json: &str, now: i64) -> StoreResult<u64>;
    /// Sets `user`'s notification level for `room` (`not_a_member`) and tells all of the
    /// user's connections (`notify_level` frame).
    fn set_notify(&self, user: UserId, room: RoomId, level: NotifyLevel, frame: &str) -> StoreResult<()>;
    /// `user`'s notification level for each of `rooms` ([`NotifyLevel::All`] when unset), in
    /// one store call.
    fn notify_levels(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<NotifyLevel>>;
    /// Sets (`Some`) or removes `user`'s display name. False if there is no such user.
    fn set_display_name(&self, user: UserId, name: Option<&str>) -> StoreResult<bool>;
    /// The display names of `users`, in order (`None` where unset or unknown), in one call.
    fn display_names(&self, users: &[UserId]) -> StoreResult<Vec<Option<String>>>;
}

/// A rename and/or topic change of a room by `by`.
#[derive(Debug, Clone)]
pub struct RoomUpdate<'a> {
    pub room: RoomId,
    pub by: UserId,
    /// Validated (`protocol::validate::room_name`).
    pub name: Option<&'a str>,
    /// Validated (`protocol::validate::topic`); `""` clears the topic.
    pub topic: Option<&'a str>,
    /// The `room_updated` event object, with only what changes in it (the caller compares with
    /// the room's metadata first); the store appends nothing when neither field changes.
    pub event_json: &'a str,
}

/// The refusal of a room setting by a member who does not own the room (both stores).
pub(crate) fn not_owner_error() -> crate::error::ApiError {
    crate::error::ApiError::new(
        protocol::ErrorCode::NotOwner,
        "only the room's owner can change its settings or delete it",
    )
}

/// The refusal of a room setting for a direct room (both stores).
pub(crate) fn direct_room_error() -> crate::error::ApiError {
    crate::error::ApiError::new(
        protocol::ErrorCode::DirectRoom,
        "direct rooms have no name, topic or owner to change",
    )
}

// Attachments (issue 14).
mod uploads;
pub use uploads::UploadRecord;
pub(crate) use uploads::{not_attachable, quota_exceeded};

/// The refusal of a reaction beyond the caps of `protocol::limits` (both stores).
pub(crate) fn reactions_full(per_user: bool) -> crate::error::ApiError {
    crate::error::ApiError::new(
        protocol::ErrorCode::LimitReached,
        if per_user {
            "you have as many reactions on this message as allowed"
        } else {
            "this message has as many different reactions as allowed"
        },
    )
}

impl Store {
    /// Attaches this node's receiver of the bus (the hub); false if one already is. Messages
    /// are handed to it on the store's own task, in publish order.
    pub fn attach_bus(&self, sink: Arc<dyn bus::Sink>) -> bool {
        match self {
            Store::Memory(s) => s.attach_bus(sink),
            Store::Redis(s) => s.attach_bus(sink),
        }
    }

    /// The data set this node's seqs belong to, as this node last saw it (sent in `welcome`).
    /// Changes when the store loses data; see [`Store::same_epoch`].
    pub fn epoch(&self) -> String {
        match self {
            Store::Memory(s) => s.epoch(),
            Store::Redis(s) => s.epoch(),
        }
    }

    /// True while the store is known to be unreachable: store calls fail at once.
    pub fn known_down(&self) -> bool {
        match self {
            Store::Memory(_) => false,
            Store::Redis(s) => s.health().is_down(),
        }
    }

    /// Whether this node receives every event from the bus (subscribed, and checked after a
    /// reconnect).
    pub fn bus_ready(&self) -> bool {
        match self {
            Store::Memory(_) => true,
            Store::Redis(s) => s.bus_ready(),
        }
    }

    /// Which backend, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "embedded (in-process, single node)",
            Store::Redis(_) => "redis",
        }
    }
}

/// The `member_joined` event object.
pub fn member_joined_json(user: UserId, username: &str, role: Role, by: Option<UserId>) -> String {
    let event = protocol::EventBody::MemberJoined {
        user,
        username: username.to_owned(),
        role,
        by,
    };
    serde_json::to_string(&event).unwrap_or_default()
}

/// The `owner_changed` event object.
pub fn owner_changed_json(user: UserId) -> String {
    serde_json::to_string(&protocol::EventBody::OwnerChanged { user }).unwrap_or_default()
}

/// The key under which usernames that look alike collide: the UTS #39 skeleton (Unicode's
/// confusables data: `I`, `l` and `1` become `l`, `0` becomes `O`, `m` becomes `rn`, ...),
/// then lowercased, as names are unique case-insensitively. Both stores keep an index of it
/// and refuse a second account with the same skeleton as `username_taken`.
pub fn name_skeleton(username: &str) -> String {
    unicode_security::confusable_detection::skeleton(username)
        .collect::<String>()
        .to_lowercase()
}

/// The refusal of a blocked user's DM, invite or message in the DM (both stores).
pub(crate) fn blocked_error() -> crate::error::ApiError {
    crate::error::ApiError::new(
        protocol::ErrorCode::Blocked,
        "that user does not accept direct messages or invites from you",
    )
}

/// The refusal of a banned user's join or invite (both stores).
pub(crate) fn banned_error() -> crate::error::ApiError {
    crate::error::ApiError::new(
        protocol::ErrorCode::Banned,
        "that user is banned from this room",
    )
}

/// Unread counts stop at this many (clients show "99+").
pub const UNREAD_CAP: u64 = 100;
/// Unread counting looks at most at this many of a room's newest events.
pub const UNREAD_SCAN: usize = 500;
