//! The names of the store's partitioned keys (see the key table in `redis.rs`), built in one
//! place: a room's, a user's, the uploads' and presence.
//!
//! A room's keys carry its partition's hash tag (`docs/CLUSTER.md`): `room:{<tag>}:<id>` and
//! that with `:m`, `:log`, `:edits`, `:bans`, `:upl`, and the dedupe keys
//! `dd:{<tag>}:<room>:<user>:<client id>`, so that in a cluster they share one slot with each
//! other and with the partition's bus channel. (Before partitions they were `room:<id>…` and
//! `dd:<room>:…`; `redis/migrate.rs` renames a data set of that layout once.)
//!
//! Scripts that act on one room get the names as declared `KEYS`, in [`RoomKeys`] order, and
//! read them with the Lua `declared_room` (`lua_keys!`); scripts that learn a room id inside
//! Redis (a new room, a member's rooms) build them with the Lua `room_keys` of [`lua`], which
//! says the same as [`RoomKeys::of`].

use super::partition::Partitions;
use super::PARTITIONS;
use protocol::{RoomId, UserId};

/// A room id as the key builders take it (a number or a [`RoomId`], by value or reference).
pub trait RoomRef {
    fn room_id(&self) -> u64;
}

impl RoomRef for u64 {
    fn room_id(&self) -> u64 {
        *self
    }
}

impl RoomRef for RoomId {
    fn room_id(&self) -> u64 {
        self.0
    }
}

impl<T: RoomRef> RoomRef for &T {
    fn room_id(&self) -> u64 {
        (*self).room_id()
    }
}

/// A user id as the key builders take it (a number or a [`UserId`], by value or reference).
pub trait UserRef {
    fn user_id(&self) -> u64;
}

impl UserRef for u64 {
    fn user_id(&self) -> u64 {
        *self
    }
}

impl UserRef for UserId {
    fn user_id(&self) -> u64 {
        self.0
    }
}

impl<T: UserRef> UserRef for &T {
    fn user_id(&self) -> u64 {
        (*self).user_id()
    }
}

/// Every key of one room, in the order scripts declare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomKeys {
    /// The room's hash.
    pub room: String,
    /// Members.
    pub members: String,
    /// Events by seq.
    pub log: String,
    /// A message's edit events.
    pub edits: String,
    /// Banned users.
    pub bans: String,
    /// Uploads attached to messages.
    pub uploads: String,
}

impl RoomKeys {
    pub fn of(id: impl RoomRef) -> Self {
        let room = room(id);
        Self {
            members: format!("{room}:m"),
            log: format!("{room}:log"),
            edits: format!("{room}:edits"),
            bans: format!("{room}:bans"),
            uploads: format!("{room}:upl"),
            room,
        }
    }

    /// Declares the keys (`KEYS[1]` to `KEYS[6]`) on a script call.
    pub fn declare(&self, invocation: &mut redis::ScriptInvocation<'_>) {
        invocation
            .key(&self.room)
            .key(&self.members)
            .key(&self.log)
            .key(&self.edits)
            .key(&self.bans)
            .key(&self.uploads);
    }
}

/// `{<tag>}` of a room's partition.
fn tag(parts: &Partitions, id: u64) -> String {
    format!("{{{}}}", parts.tag(parts.of_room(id)))
}

/// A room's hash.
pub fn room(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("room:{}:{id}", tag(&PARTITIONS, id))
}

/// A room's members.
pub fn members(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("{}:m", room(id))
}

/// A room's events by seq.
pub fn log(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("{}:log", room(id))
}

/// A message's edit events.
pub(super) fn edits(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("{}:edits", room(id))
}

/// Users banned from a room.
pub(super) fn bans(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("{}:bans", room(id))
}

/// Uploads attached to a room's messages.
pub(super) fn uploads(id: impl RoomRef) -> String {
    let id = id.room_id();
    format!("{}:upl", room(id))
}

/// The dedupe key of a sent message.
pub(super) fn dedupe(room: impl RoomRef, sender: u64, client_id: &str) -> String {
    let room = room.room_id();
    format!("dd:{}:{room}:{sender}:{client_id}", tag(&PARTITIONS, room))
}

/// Room, sender and client id of a dedupe key (either layout).
pub(super) fn parse_dedupe(key: &str) -> Option<(u64, u64, &str)> {
    let rest = key.strip_prefix("dd:")?;
    let rest = match rest.strip_prefix('{') {
        Some(tagged) => tagged.split_once("}:")?.1,
        None => rest,
    };
    let mut parts = rest.splitn(3, ':');
    let room = parts.next()?.parse().ok()?;
    let sender = parts.next()?.parse().ok()?;
    Some((room, sender, parts.next()?))
}

/// `{<tag>}` of partition `p`.
fn part_tag(p: u16) -> String {
    format!("{{{}}}", PARTITIONS.tag(p))
}

/// A user's hash (`name`, `pw`, `created`, `admin`, `off`, `dname`).
pub fn user(id: impl UserRef) -> String {
    let id = id.user_id();
    format!("user:{}:{id}", part_tag(PARTITIONS.of_user(id)))
}

/// A user's sessions: session id → token hash.
pub fn user_sessions(id: impl UserRef) -> String {
    format!("{}:sess", user(id))
}

/// The rooms a user is in (a hint: readers check the room's members, see `docs/CLUSTER.md`).
pub fn user_rooms(id: impl UserRef) -> String {
    format!("{}:rooms", user(id))
}

/// The users a user blocked.
pub fn user_blocks(id: impl UserRef) -> String {
    format!("{}:blocks", user(id))
}

/// A user's read markers: room → seq.
pub fn user_read(id: impl UserRef) -> String {
    format!("{}:read", user(id))
}

/// A user's notification levels: room → level.
pub fn user_notify(id: impl UserRef) -> String {
    format!("{}:notify", user(id))
}

/// Bytes a user's uploads take.
pub fn user_upload_bytes(id: impl UserRef) -> String {
    format!("{}:upl_bytes", user(id))
}

/// Presence of a partition's users: user → the nodes it is online on (space-separated).
pub fn presence(p: u16) -> String {
    format!("pres:{}", part_tag(p))
}

/// When a partition's users were last seen: user → ms.
pub fn last_seen(p: u16) -> String {
    format!("pres:seen:{}", part_tag(p))
}

/// The partition of an upload id, whose last four hex digits are its room's id mod 65536
/// (`attachments::new_id`; the partition count divides 65536). `None` for an id that is not
/// hex. Ids from before the partitioned uploads are found through `upl:legacy`.
pub fn upload_partition(id: &str) -> Option<u16> {
    let tail = id.get(id.len().checked_sub(4)?..)?;
    let low = u64::from_str_radix(tail, 16).ok()?;
    Some(PARTITIONS.of_room(low))
}

/// An upload's record, in its room's partition `p`.
pub fn upload(p: u16, id: &str) -> String {
    format!("upl:{}:{id}", part_tag(p))
}

/// A partition's uploads not attached yet, scored by creation (ms).
pub fn uploads_pending(p: u16) -> String {
    format!("upl:pending:{}", part_tag(p))
}

/// A partition's uploads whose files the collector is to delete.
pub fn uploads_dead(p: u16) -> String {
    format!("upl:dead:{}", part_tag(p))
}

/// A partition's rooms with attached uploads.
pub fn uploads_rooms(p: u16) -> String {
    format!("upl:rooms:{}", part_tag(p))
}

/// Upload ids from before partitioned uploads (not carrying their room's partition): id →
/// room. Written by the migration, read when an id is not found where it points.
pub const UPLOADS_LEGACY: &str = "upl:legacy";

/// The Lua `room_keys(id)`: a room's key table (fields `id`, `room`, `m`, `log`, `edits`,
/// `bans`, `upl`), `tag_of(id)` and `user_key(id)` (as [`user`]). Needs `BUS_TAGS` ([`Partitions::lua`]) before it.
pub(super) fn lua() -> &'static str {
    r#"
local function room_keys(id)
  local r = 'room:{' .. BUS_TAGS[tonumber(id) % #BUS_TAGS + 1] .. '}:' .. id
  return {id = id, room = r, m = r .. ':m', log = r .. ':log', edits = r .. ':edits', bans = r .. ':bans', upl = r .. ':upl'}
end
-- `{<tag>}` of the partition of a room or user id.
local function tag_of(id)
  return '{' .. BUS_TAGS[tonumber(id) % #BUS_TAGS + 1] .. '}'
end
-- A user's hash; its other keys append `:sess`, `:rooms`, `:blocks`, `:read`, `:notify`, `:upl_bytes`.
local function user_key(id)
  return 'user:' .. tag_of(id) .. ':' .. id
end
"#
}

/// The Lua `declared_room(id)`: the key table of a script's declared room (`KEYS[1..6]`).
macro_rules! lua_keys {
    () => {
        r#"
local function declared_room(id)
  return {id = id, room = KEYS[1], m = KEYS[2], log = KEYS[3], edits = KEYS[4], bans = KEYS[5], upl = KEYS[6]}
end
"#
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_partition_tag() {
        let keys = RoomKeys::of(7);
        let tag = PARTITIONS.tag(7);
        assert_eq!(keys.room, format!("room:{{{tag}}}:7"));
        assert_eq!(keys.members, format!("room:{{{tag}}}:7:m"));
        assert_eq!(keys.uploads, format!("room:{{{tag}}}:7:upl"));
        assert_eq!(
            keys,
            RoomKeys {
                room: room(7),
                members: members(7),
                log: log(7),
                edits: edits(7),
                bans: bans(7),
                uploads: uploads(7)
            }
        );
        // Same slot as each other and as the partition's bus channel.
        let slot = super::super::partition::key_slot;
        assert_eq!(
            slot(keys.log.as_bytes()),
            slot(PARTITIONS.room_channel(7).as_bytes())
        );
        assert_eq!(
            slot(dedupe(7, 3, "a:b").as_bytes()),
            slot(keys.room.as_bytes())
        );
    }

    #[test]
    fn user_keys_share_the_user_partition() {
        let slot = super::super::partition::key_slot;
        let channel = slot(PARTITIONS.user_channel(70).as_bytes());
        for key in [
            user(70),
            user_sessions(70),
            user_rooms(70),
            user_blocks(70),
            user_read(70),
            user_notify(70),
            user_upload_bytes(70),
            presence(PARTITIONS.of_user(70)),
            last_seen(PARTITIONS.of_user(70)),
        ] {
            assert_eq!(slot(key.as_bytes()), channel, "{key}");
        }
        assert_eq!(user(70), format!("user:{{{}}}:70", PARTITIONS.tag(6)));
        assert_eq!(user_rooms(UserId(70)), format!("{}:rooms", user(70)));
    }

    #[test]
    fn an_upload_id_names_its_room_partition() {
        assert_eq!(65536 % u32::from(PARTITIONS.count()), 0);
        let id = format!("{:028x}{:04x}", 0xabcu32, 70_000u64 & 0xffff);
        let p = upload_partition(&id).expect("hex");
        assert_eq!(p, PARTITIONS.of_room(70_000));
        let slot = super::super::partition::key_slot;
        assert_eq!(
            slot(upload(p, &id).as_bytes()),
            slot(room(70_000).as_bytes())
        );
        assert_eq!(
            slot(uploads_pending(p).as_bytes()),
            slot(room(70_000).as_bytes())
        );
        assert_eq!(upload_partition("xyz"), None);
        assert_eq!(upload_partition("zzzz"), None);
    }

    #[test]
    fn dedupe_keys_parse_in_both_layouts() {
        assert_eq!(parse_dedupe(&dedupe(7, 3, "a:b")), Some((7, 3, "a:b")));
        assert_eq!(parse_dedupe("dd:7:3:abc"), Some((7, 3, "abc")));
        assert_eq!(parse_dedupe("dd:x:3:abc"), None);
        assert_eq!(parse_dedupe("room:7"), None);
    }
}
