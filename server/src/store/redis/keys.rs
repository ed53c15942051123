//! The names of a room's keys (see the key table in `redis.rs`), built in one place.
//!
//! Scripts that act on one room get these as declared `KEYS`, in [`RoomKeys`] order, and read
//! them with the Lua `declared_room` (see [`LUA`]); scripts that learn a room id inside Redis
//! (a new room, a member's rooms) build them with the Lua `room_keys`, which must say the same
//! as [`RoomKeys::of`]. The move to partition tags (`docs/CLUSTER.md`) changes the names here
//! and in `lua_keys!` only. (The export in `admin.rs` also parses dedupe key names.)

use std::fmt::Display;

/// Every key of one room, in the order scripts declare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomKeys {
    /// `room:{id}`: the room's hash.
    pub room: String,
    /// `room:{id}:m`: members.
    pub members: String,
    /// `room:{id}:log`: events by seq.
    pub log: String,
    /// `room:{id}:edits`: a message's edit events.
    pub edits: String,
    /// `room:{id}:bans`: banned users.
    pub bans: String,
    /// `room:{id}:upl`: uploads attached to messages.
    pub uploads: String,
}

impl RoomKeys {
    pub fn of(id: impl Display) -> Self {
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

/// A room's hash.
pub(super) fn room(id: impl Display) -> String {
    format!("room:{id}")
}

/// A room's members.
pub(super) fn members(id: impl Display) -> String {
    format!("room:{id}:m")
}

/// A room's events by seq.
pub(super) fn log(id: impl Display) -> String {
    format!("room:{id}:log")
}

/// A message's edit events.
pub(super) fn edits(id: impl Display) -> String {
    format!("room:{id}:edits")
}

/// Users banned from a room.
pub(super) fn bans(id: impl Display) -> String {
    format!("room:{id}:bans")
}

/// Uploads attached to a room's messages.
pub(super) fn uploads(id: impl Display) -> String {
    format!("room:{id}:upl")
}

/// The dedupe key of a sent message.
pub(super) fn dedupe(room: impl Display, sender: impl Display, client_id: &str) -> String {
    format!("dd:{room}:{sender}:{client_id}")
}

/// The Lua side: `room_keys(id)` builds a room's key table, `declared_room(id)` takes it from
/// `KEYS[1..6]` (fields `id`, `room`, `m`, `log`, `edits`, `bans`, `upl`).
macro_rules! lua_keys {
    () => {
        r#"
local function room_keys(id)
  local r = 'room:' .. id
  return {id = id, room = r, m = r .. ':m', log = r .. ':log', edits = r .. ':edits', bans = r .. ':bans', upl = r .. ':upl'}
end
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
    fn names_match_the_key_table() {
        let keys = RoomKeys::of(7);
        assert_eq!(keys.room, "room:7");
        assert_eq!(keys.members, "room:7:m");
        assert_eq!(keys.log, "room:7:log");
        assert_eq!(keys.uploads, "room:7:upl");
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
        assert_eq!(dedupe(7, 3, "abc"), "dd:7:3:abc");
    }
}
