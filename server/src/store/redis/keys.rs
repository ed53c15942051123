//! The names of a room's keys (see the key table in `redis.rs`), built in one place.
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
use protocol::RoomId;

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

/// The Lua `room_keys(id)`: a room's key table (fields `id`, `room`, `m`, `log`, `edits`,
/// `bans`, `upl`). Needs `BUS_TAGS` ([`Partitions::lua`]) before it.
pub(super) fn lua() -> &'static str {
    r#"
local function room_keys(id)
  local r = 'room:{' .. BUS_TAGS[tonumber(id) % #BUS_TAGS + 1] .. '}:' .. id
  return {id = id, room = r, m = r .. ':m', log = r .. ':log', edits = r .. ':edits', bans = r .. ':bans', upl = r .. ':upl'}
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
    fn dedupe_keys_parse_in_both_layouts() {
        assert_eq!(parse_dedupe(&dedupe(7, 3, "a:b")), Some((7, 3, "a:b")));
        assert_eq!(parse_dedupe("dd:7:3:abc"), Some((7, 3, "abc")));
        assert_eq!(parse_dedupe("dd:x:3:abc"), None);
        assert_eq!(parse_dedupe("room:7"), None);
    }
}
