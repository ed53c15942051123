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

/// Every key of one room, in the order scripts declare them (`KEYS[1]` to `KEYS[6]`): the
/// room's hash `room:{<tag>}:<id>`, then that name with `:m` (members), `:log` (events by seq),
/// `:edits` (a message's edit events), `:bans` (banned users) and `:upl` (uploads attached to
/// messages).
///
/// Nothing is built until a name is asked for: a script call writes the six names straight
/// into its command ([`redis::ToRedisArgs`]), so the append path neither formats nor allocates
/// them (seven `format!`s per message were ~1,100 instructions and 2.5 allocations per delivery,
/// bench/analysis.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RoomKeys {
    id: u64,
    /// The partition's tag, without braces.
    tag: &'static str,
}

/// What follows a room's hash name in each of its keys, in [`RoomKeys`] order.
const ROOM_SUFFIXES: [&str; 6] = ["", ":m", ":log", ":edits", ":bans", ":upl"];

impl RoomKeys {
    pub fn of(id: impl RoomRef) -> Self {
        let id = id.room_id();
        Self {
            id,
            tag: PARTITIONS.tag(PARTITIONS.of_room(id)),
        }
    }

    /// The room's hash.
    pub fn room(&self) -> String {
        self.name("")
    }

    /// The key of the room's hash name followed by `suffix`.
    fn name(&self, suffix: &str) -> String {
        let mut name = String::with_capacity(32);
        self.write(suffix, &mut name);
        name
    }

    fn write(&self, suffix: &str, out: &mut impl Put) {
        out.put("room:{");
        out.put(self.tag);
        out.put("}:");
        out.put_id(self.id);
        out.put(suffix);
    }
}

/// The six names, each one argument (declared as keys: `invocation.key(RoomKeys::of(id))`).
/// The room's hash name is assembled once; each key is it and a suffix.
impl redis::ToRedisArgs for RoomKeys {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut name = Name::new();
        self.write("", &mut name);
        let room = name.len();
        for suffix in ROOM_SUFFIXES {
            name.truncate(room);
            name.put(suffix);
            out.write_arg(name.as_bytes());
        }
    }

    fn num_of_args(&self) -> usize {
        ROOM_SUFFIXES.len()
    }
}

/// The dedupe key of a sent message, `dd:{<tag>}:<room>:<sender>:<client id>`, written where it
/// is needed (see [`dedupe`] for it as a `String`).
#[derive(Debug, Clone, Copy)]
pub(super) struct DedupeKey<'a> {
    room: u64,
    sender: u64,
    client_id: &'a str,
}

impl<'a> DedupeKey<'a> {
    pub fn new(room: impl RoomRef, sender: u64, client_id: &'a str) -> Self {
        Self {
            room: room.room_id(),
            sender,
            client_id,
        }
    }

    fn write(&self, out: &mut impl Put) {
        out.put("dd:{");
        out.put(PARTITIONS.tag(PARTITIONS.of_room(self.room)));
        out.put("}:");
        out.put_id(self.room);
        out.put(":");
        out.put_id(self.sender);
        out.put(":");
        out.put(self.client_id);
    }
}

impl redis::ToRedisArgs for DedupeKey<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut name = Name::new();
        self.write(&mut name);
        out.write_arg(name.as_bytes());
    }
}

/// A partition's key: a fixed head, then the partition's tag in braces (`upl:pending:{<tag>}`).
#[derive(Debug, Clone, Copy)]
pub(super) struct PartitionKey {
    head: &'static str,
    tag: &'static str,
}

impl PartitionKey {
    fn new(head: &'static str, p: u16) -> Self {
        Self {
            head,
            tag: PARTITIONS.tag(p),
        }
    }

    fn name(&self) -> String {
        let mut name = String::with_capacity(self.head.len() + self.tag.len() + 2);
        self.write(&mut name);
        name
    }

    fn write(&self, out: &mut impl Put) {
        out.put(self.head);
        out.put("{");
        out.put(self.tag);
        out.put("}");
    }
}

impl redis::ToRedisArgs for PartitionKey {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut name = Name::new();
        self.write(&mut name);
        out.write_arg(name.as_bytes());
    }
}

/// Where a key name is written, piece by piece: a `String`, or a [`Name`] on the stack.
trait Put {
    fn put(&mut self, piece: &str);
    /// An id in decimal.
    fn put_id(&mut self, id: u64);
}

impl Put for String {
    fn put(&mut self, piece: &str) {
        self.push_str(piece);
    }

    fn put_id(&mut self, id: u64) {
        self.extend(Decimal::new(id).bytes().iter().copied().map(char::from));
    }
}

/// A key name assembled on the stack, then handed to a command whole (one copy per name;
/// writing the pieces into the command one by one cost ~130 instructions each). A name longer
/// than the buffer (a dedupe key with an unusually long client id) moves to the heap.
struct Name {
    buf: [u8; 128],
    len: usize,
    /// The whole name once it outgrew `buf`.
    spill: Vec<u8>,
}

impl Name {
    fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.spill.truncate(len);
    }

    fn as_bytes(&self) -> &[u8] {
        if self.spill.is_empty() {
            &self.buf[..self.len]
        } else {
            &self.spill
        }
    }

    fn push(&mut self, piece: &[u8]) {
        let end = self.len + piece.len();
        if self.spill.is_empty() && end <= self.buf.len() {
            self.buf[self.len..end].copy_from_slice(piece);
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.buf[..self.len]);
            }
            self.spill.extend_from_slice(piece);
        }
        self.len = end;
    }
}

impl Put for Name {
    fn put(&mut self, piece: &str) {
        self.push(piece.as_bytes());
    }

    fn put_id(&mut self, id: u64) {
        self.push(Decimal::new(id).bytes());
    }
}

/// An id in decimal, on the stack.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut n: u64) -> Self {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self { digits, start }
    }

    /// ASCII digits.
    fn bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// A room's hash.
pub fn room(id: impl RoomRef) -> String {
    RoomKeys::of(id).room()
}

/// A room's members.
pub fn members(id: impl RoomRef) -> String {
    RoomKeys::of(id).name(":m")
}

/// A room's events by seq.
pub fn log(id: impl RoomRef) -> String {
    RoomKeys::of(id).name(":log")
}

/// A message's edit events.
pub(super) fn edits(id: impl RoomRef) -> String {
    RoomKeys::of(id).name(":edits")
}

/// Users banned from a room.
pub(super) fn bans(id: impl RoomRef) -> String {
    RoomKeys::of(id).name(":bans")
}

/// Uploads attached to a room's messages.
pub(super) fn uploads(id: impl RoomRef) -> String {
    RoomKeys::of(id).name(":upl")
}

/// The dedupe key of a sent message.
pub(super) fn dedupe(room: impl RoomRef, sender: u64, client_id: &str) -> String {
    let mut name = String::with_capacity(32 + client_id.len());
    DedupeKey::new(room, sender, client_id).write(&mut name);
    name
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
    uploads_pending_key(p).name()
}

/// [`uploads_pending`], written where it is needed.
pub(super) fn uploads_pending_key(p: u16) -> PartitionKey {
    PartitionKey::new("upl:pending:", p)
}

/// A partition's uploads whose files the collector is to delete.
pub fn uploads_dead(p: u16) -> String {
    format!("upl:dead:{}", part_tag(p))
}

/// A partition's rooms with attached uploads.
pub fn uploads_rooms(p: u16) -> String {
    uploads_rooms_key(p).name()
}

/// [`uploads_rooms`], written where it is needed.
pub(super) fn uploads_rooms_key(p: u16) -> PartitionKey {
    PartitionKey::new("upl:rooms:", p)
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

    /// The names as a script call gets them, one argument each.
    fn args(value: impl redis::ToRedisArgs) -> Vec<String> {
        value
            .to_redis_args()
            .into_iter()
            .map(|arg| String::from_utf8(arg).expect("UTF-8"))
            .collect()
    }

    #[test]
    fn names_carry_the_partition_tag() {
        let keys = RoomKeys::of(7);
        let tag = PARTITIONS.tag(7);
        assert_eq!(keys.room(), format!("room:{{{tag}}}:7"));
        assert_eq!(members(7), format!("room:{{{tag}}}:7:m"));
        assert_eq!(uploads(7), format!("room:{{{tag}}}:7:upl"));
        assert_eq!(
            args(keys),
            [room(7), members(7), log(7), edits(7), bans(7), uploads(7)]
        );
        // Same slot as each other and as the partition's bus channel.
        let slot = super::super::partition::key_slot;
        assert_eq!(
            slot(log(7).as_bytes()),
            slot(PARTITIONS.room_channel(7).as_bytes())
        );
        assert_eq!(
            slot(dedupe(7, 3, "a:b").as_bytes()),
            slot(keys.room().as_bytes())
        );
    }

    /// The names written in pieces are byte for byte the layout's (`store:layout` 3, which
    /// `migrate.rs` and every node's scripts share), as `format!` wrote them before.
    #[test]
    fn written_names_are_the_layout() {
        for id in [0, 1, 7, 9, 10, 63, 64, 65, 1_000_003, u64::MAX] {
            let tag = PARTITIONS.tag(PARTITIONS.of_room(id));
            let room = format!("room:{{{tag}}}:{id}");
            assert_eq!(
                args(RoomKeys::of(id)),
                ["", ":m", ":log", ":edits", ":bans", ":upl"].map(|s| format!("{room}{s}"))
            );
            assert_eq!(super::room(RoomId(id)), room);
            // The last one is longer than a name's stack buffer.
            let long = "x".repeat(200);
            for (sender, client_id) in [(0, ""), (3, "a:b"), (u64::MAX, "é-1"), (9, &*long)] {
                let name = format!("dd:{{{tag}}}:{id}:{sender}:{client_id}");
                assert_eq!(dedupe(id, sender, client_id), name);
                assert_eq!(args(DedupeKey::new(id, sender, client_id)), [name]);
            }
        }
        for p in [0, 5, 63] {
            let tag = PARTITIONS.tag(p);
            assert_eq!(uploads_pending(p), format!("upl:pending:{{{tag}}}"));
            assert_eq!(uploads_rooms(p), format!("upl:rooms:{{{tag}}}"));
            assert_eq!(args(uploads_pending_key(p)), [uploads_pending(p)]);
            assert_eq!(args(uploads_rooms_key(p)), [uploads_rooms(p)]);
        }
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
