//! The Redis store, shared by any number of server nodes.
//!
//! Every write that must be atomic is one Lua script: Redis runs one script at a time, so a
//! room's seq is taken, the event stored and published in one step, and the publish order of a
//! room equals its seq order. History is a sorted set per room scored by seq (see
//! `docs/protocol.md`, "Storage"): pages in both directions are one `ZRANGE ... BYSCORE`, count
//! retention is one `ZREMRANGEBYRANK`, and a message's entry can be rewritten in place when it is
//! edited or deleted. Keys (no prefix; give the server its own Redis database). A room's keys,
//! its dedupe keys and its uploads carry the hash tag of the room's partition, a user's keys
//! and presence the tag of the user's, `{t}` below (see `redis/keys.rs`,
//! `redis/partition.rs` and `docs/CLUSTER.md`); the rest are single global keys:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `ids:user`, `ids:room` | string | last id handed out |
//! | `user:{t}:{id}` | hash | `name`, `pw` (argon2 PHC string), `created`, `admin` and `off` (disabled): `1` when set, `dname` (display name) |
//! | `uname:{lowercase name}` | string | user id |
//! | `uskel:{skeleton}` | string | user id, by `store::name_skeleton` (confusable names) |
//! | `migr:uskel` | string | `1` once every account is in `uskel:` (set at start or by an import) |
//! | `unames` | zset | `{lowercase name}:{id}`, score 0, for prefix search |
//! | `sess:{sha256 of token}` | hash | `id`, `user`, `device`, `created`, `used`; expires |
//! | `user:{t}:{id}:sess` | hash | session id → token hash |
//! | `room:{t}:{id}` | hash | `name`, `kind`, `vis`, `owner`, `seq`, `ts`, `a`, `b`, `topic` |
//! | `room:{t}:{id}:m` | hash | member id → `owner` / `member` / `blocked` (a DM member the other blocked: may read, not send) |
//! | `room:{t}:{id}:log` | zset | event frames scored by seq |
//! | `room:{t}:{id}:edits` | hash | message seq → seqs of its edit events (space-separated), until deleted |
//! | `user:{t}:{id}:rooms` | set | room ids |
//! | `room:{t}:{id}:bans` | set | user ids banned from the room |
//! | `user:{t}:{id}:blocks` | set | user ids this user blocked |
//! | `rooms:public` | set | public room ids |
//! | `dm:{a}:{b}` | string | direct room of users a < b |
//! | `dd:{t}:{room}:{user}:{client id}` | string | `seq ts` of a sent message; expires (dedupe window) |
//! | `user:{t}:{id}:read` | hash | room id → read seq |
//! | `user:{t}:{id}:notify` | hash | room id → notification level (see `redis/settings.rs`) |
//! | `pres:nodes`, `pres:{t}`, `pres:seen:{t}` | | presence: see `redis/presence.rs` |
//! | `store:epoch` | string | random id of this data set; missing after a wipe |
//! | `store:layout` | string | `3`: every key of a room, user, upload or presence carries its partition's tag (`redis/migrate.rs` moves older data sets once) |
//! | `invite:{sha256 of code}` | hash | `left` (uses), `expires` (ms), `by`, `created`; expires |
//! | `invites` | set | invite code hashes (for export; expired ones are skipped) |
//! | `upl:{t}:*`, `room:{t}:{id}:upl`, `user:{t}:{id}:upl_bytes`, `upl:legacy` | | uploads: see `redis/attachments.rs` |
//!
//! The bus is one sharded pub/sub channel per partition, `bus{<tag>}` (see `redis/partition.rs`
//! and `docs/CLUSTER.md`): a room's events and typing go out on its partition's channel, a
//! user's messages on the user's. Scripts `SPUBLISH`, so a room's publish order is still its seq
//! order. Each node holds one subscriber connection, `SSUBSCRIBE`d to every channel (see
//! `redis/subscriber.rs`).
//!
//! The store runs on one Redis (`redis_url`) or a Redis Cluster (`redis_cluster`): every
//! call goes through `redis/conn.rs`'s [`conn::Conn`], which routes by slot in a cluster.

#[macro_use]
pub mod keys;
mod admin;
mod call;
pub mod conn;
mod migrate;
pub mod partition;
mod presence;
#[cfg(test)]
mod steps;
mod subscriber;
#[macro_use]
mod attachments;

use super::bus;
use super::{
    Change, LogPage, MemberChange, NewMessage, Range, Retention, RoomMeta, SessionRecord,
    UserRecord,
};
use crate::error::{ApiError, StoreError, StoreResult};
use protocol::event::Role;
use protocol::rest::{RoomKind, SendAck, Visibility};
use protocol::{ErrorCode, RoomId, UserId};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use subscriber::{data_set, fresh_epoch, Watch, EPOCH, EPOCH_KEY};
use tokio_util::sync::CancellationToken;

/// The partitions of the data set: which bus channel carries a room's or a user's messages.
/// Fixed for now (see `docs/CLUSTER.md`: the count becomes a property of the data set when
/// the key layout depends on it).
static PARTITIONS: LazyLock<partition::Partitions> = LazyLock::new(partition::Partitions::default);

/// A script with the store's Lua prelude: `room_channel(id)` and `user_channel(id)` (see
/// [`partition::Partitions::lua`]) and `room_keys(id)` (see [`keys::lua`]), so Lua and Rust map
/// ids to channels and key names from one table.
fn bus_script(src: &str) -> Script {
    Script::new(&format!("{}{}{src}", PARTITIONS.lua(), keys::lua()))
}

/// A call of a script that acts on one room, with the room's keys declared (`KEYS[1..6]`, see
/// `redis/keys.rs`); further keys and the arguments follow.
fn room_script(script: &Script, room: u64) -> redis::ScriptInvocation<'_> {
    let mut invocation = script.prepare_invoke();
    invocation.key(keys::RoomKeys::of(room));
    invocation
}

/// The channel a bus message goes out on: a room's partition channel for room events and
/// typing, the user's for the rest. `None` for a message without a valid routing line.
fn bus_channel(msg: &str) -> Option<String> {
    let (route, _) = bus::parse(msg)?;
    Some(match route {
        bus::Route::Room { room, .. } | bus::Route::Typing { room, .. } => {
            PARTITIONS.room_channel(room.0)
        }
        bus::Route::User { user }
        | bus::Route::Presence { user, .. }
        | bus::Route::Revoke { user, .. } => PARTITIONS.user_channel(user.0),
    })
}

pub struct RedisStore {
    con: conn::Conn,
    node: String,
    feed: bus::Feed,
    watch: Arc<Watch>,
    health: Arc<super::health::Health>,
    /// A test's failpoint: the step after which the store fails once (see [`Step`]).
    #[cfg(test)]
    fail_after: Mutex<Option<Step>>,
}

/// The points between the single-slot steps of an operation that spans slots (see
/// `docs/CLUSTER.md`, "Scripts, one slot each"). Tests make the store fail at one, as a crash
/// there would, and show that the retry leaves nothing a client can see wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `create_upload`: the record is written, its bytes not counted yet.
    UploadRecorded,
    /// `change_member`: the room changed, the user's `:rooms` not yet.
    MemberChanged,
    /// `create_room`: the room is made, the owner's `:rooms` and `rooms:public` not yet.
    RoomMade,
    /// `open_dm`: the pair's `dm:` key holds the id, the room is not made yet.
    DmClaimed,
    /// `open_dm`: the room is made, the users' `:rooms` not yet.
    DmMade,
    /// `set_block`: the block is set, the direct room's role not yet.
    BlockSet,
    /// `delete_room`: the room is gone, its members' keys not cleaned yet.
    RoomDeleted,
    /// `register_user`: the name and skeleton are reserved (and the invite taken).
    UserReserved,
    /// `register_user`: the user's hash is written, the name not pointing at it yet.
    UserWritten,
    /// `revoke_session`: the session is deleted, the index and sockets not yet.
    SessionDeleted,
    /// `forget_upload`: its bytes are uncounted, the record not removed yet.
    UploadUncounted,
}

macro_rules! lua_common {
    () => {
        concat!(
            lua_keys!(),
            r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The next seq of a room (`K`: its keys, see `redis/keys.rs`) and its timestamp (never before
-- the previous event's). Reads only: `store_event` takes them.
local function next_seq(K)
  local cur = redis.call('HMGET', K.room, 'seq', 'ts')
  local ts = now_ms()
  local last = tonumber(cur[2]) or 0
  if ts < last then ts = last end
  return (tonumber(cur[1]) or 0) + 1, ts
end
-- Stores the event under the seq from `next_seq` and publishes it.
local function store_event(K, seq, ts, event_json, route_suffix)
  redis.call('HSET', K.room, 'seq', seq, 'ts', ts)
  local frame = '{"type":"event","room":' .. K.id .. ',"seq":' .. seq .. ',"ts":' .. ts .. ',"event":' .. event_json .. '}'
  redis.call('ZADD', K.log, seq, frame)
  redis.call('SPUBLISH', room_channel(K.id), 'R ' .. K.id .. ' ' .. seq .. route_suffix .. '\n' .. frame)
end
-- True when the room's seq is below `floor`, the highest seq this node has seen handed out:
-- the store lost writes and the node has not noticed yet. Nothing may be appended then (the
-- seqs after the room's would be handed out a second time).
local function behind(K, floor)
  return tonumber(redis.call('HGET', K.room, 'seq') or '0') < tonumber(floor)
end
-- The one append path: next seq, store, publish. Returns seq, ts.
local function append(K, event_json, route_suffix)
  local seq, ts = next_seq(K)
  store_event(K, seq, ts, event_json, route_suffix)
  return seq, ts
end
"#
        )
    };
}

// After `lua_common!`, which it uses.
mod settings;

/// KEYS: an invite. ARGV: now. Takes one use of the invite: 1, 2 when that was its last (the
/// invite is gone: its entry in `invites` goes next), 0 if unknown, used up or expired.
static CLAIM_INVITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local inv = redis.call('HMGET', KEYS[1], 'left', 'expires')
local left, expires = tonumber(inv[1] or '0'), tonumber(inv[2] or '0')
if left < 1 or expires <= tonumber(ARGV[1]) then return 0 end
if left == 1 then
  redis.call('DEL', KEYS[1])
  return 2
end
redis.call('HSET', KEYS[1], 'left', left - 1)
return 1
"#,
    )
});

/// KEYS: the session. ARGV: now, ttl secs, max age ms. Returns the session hash fields, or nil
/// (also for a session older than the max age: then it is deleted). The expiry slides to
/// `ttl`, never past the max age. (Whether its account is disabled is read next, in the
/// user's slot: see [`RedisStore::touch_session`].)
static TOUCH_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key = KEYS[1]
local f = redis.call('HMGET', key, 'user', 'created')
if not f[1] then return false end
local now = tonumber(ARGV[1])
local deadline = (tonumber(f[2]) or 0) + tonumber(ARGV[3])
if deadline <= now then
  redis.call('DEL', key)
  return false
end
redis.call('HSET', key, 'used', ARGV[1])
local ttl = tonumber(ARGV[2]) * 1000
if deadline - now < ttl then ttl = deadline - now end
redis.call('PEXPIRE', key, ttl)
return redis.call('HGETALL', key)
"#,
    )
});

/// KEYS: the user's sessions. ARGV: user, session ids... Drops them from the index and closes
/// their sockets on every node (the sessions themselves were deleted just before).
static UNLIST_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    bus_script(
        r#"
for i = 2, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('SPUBLISH', user_channel(ARGV[1]), 'S ' .. ARGV[1] .. ' ' .. ARGV[i] .. '\n')
end
return 1
"#,
    )
});

/// KEYS: the new room's (`redis/keys.rs`). ARGV: room, owner, name, visibility, member_joined
/// event. Makes the room with its owner, unless it exists (then 0).
static CREATE_ROOM: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        r#"
local K = declared_room(ARGV[1])
if redis.call('EXISTS', K.room) == 1 then return 0 end
redis.call('HSET', K.room, 'name', ARGV[3], 'kind', 'group', 'vis', ARGV[4], 'owner', ARGV[2], 'seq', 0)
redis.call('HSET', K.m, ARGV[2], 'owner')
append(K, ARGV[5], ' J ' .. ARGV[2])
return 1
"#
    ))
});

/// KEYS: the direct room's (`redis/keys.rs`). ARGV: room, a, b (a < b), role of a, role of b
/// (`member`, or `blocked` when the other blocked them: see SET_BLOCK), joined event of a,
/// joined event of b. Makes the room with both members, unless it exists (then 0).
static OPEN_DM: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        r#"
local K = declared_room(ARGV[1])
if redis.call('EXISTS', K.room) == 1 then return 0 end
redis.call('HSET', K.room, 'name', '', 'kind', 'direct', 'vis', 'private', 'seq', 0, 'a', ARGV[2], 'b', ARGV[3])
for i = 1, 2 do
  redis.call('HSET', K.m, ARGV[i + 1], ARGV[i + 3])
  append(K, ARGV[i + 5], ' J ' .. ARGV[i + 1])
end
return 1
"#
    ))
});

/// KEYS: the room's (`redis/keys.rs`). ARGV: room, user, role ('' removes), event, floor (see
/// `behind`). Returns the seq, 0 if nothing changed, -1 if no room, -2 if the store is behind
/// this node, -3 if the user is banned from the room (joins and invites only). The user's
/// `:rooms` follows in the user's slot ([`RedisStore::change_member`]).
static CHANGE_MEMBER: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        r#"
local room, user, role = ARGV[1], ARGV[2], ARGV[3]
local K = declared_room(room)
local rkey = K.room
if redis.call('EXISTS', rkey) == 0 then return -1 end
if behind(K, ARGV[5]) then return -2 end
local current = redis.call('HGET', K.m, user)
if role ~= '' then
  if current then return 0 end
  if redis.call('SISMEMBER', K.bans, user) == 1 then return -3 end
  redis.call('HSET', K.m, user, role)
  if role == 'owner' then redis.call('HSET', rkey, 'owner', user) end
  local seq = append(K, ARGV[4], ' J ' .. user)
  -- A group room whose last member left has no owner: the next to join takes it over.
  if redis.call('HGET', rkey, 'kind') == 'group' and not redis.call('HGET', rkey, 'owner') then
    redis.call('HSET', K.m, user, 'owner')
    redis.call('HSET', rkey, 'owner', user)
    append(K, '{"kind":"owner_changed","user":' .. user .. '}', '')
  end
  return seq
end
if not current then return 0 end
redis.call('HDEL', K.m, user)
local seq = append(K, ARGV[4], ' L ' .. user)
if current == 'owner' then
  redis.call('HDEL', rkey, 'owner')
  local heir = nil
  for _, id in ipairs(redis.call('HKEYS', K.m)) do
    if heir == nil or tonumber(id) < tonumber(heir) then heir = id end
  end
  if heir then
    redis.call('HSET', K.m, heir, 'owner')
    redis.call('HSET', rkey, 'owner', heir)
    append(K, '{"kind":"owner_changed","user":' .. heir .. '}', '')
  end
end
return seq
"#
    ))
});

/// KEYS: the room's (`redis/keys.rs`), then the dedupe key, the partition's pending uploads and
/// rooms with uploads, and each attached upload's record (see `redis/attachments.rs`). ARGV: room, sender, client id, event, dedupe ttl, max events, max age ms, floor (see
/// `behind`), the seq the message replies to ('' for none), upload ids to attach (space-separated,
/// see `redis/attachments.rs`). Returns "ok seq ts", "dup seq ts",
/// "behind" or an error code ("not_a_member", "blocked", "message_not_found",
/// "message_deleted").
static APPEND_MESSAGE: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        lua_uploads!(),
        r#"
local room, sender = ARGV[1], ARGV[2]
local K = declared_room(room)
local ddkey = KEYS[7]
local role = redis.call('HGET', K.m, sender)
if not role then
  -- A resend of a message accepted before the sender left is still a duplicate.
  local prev = redis.call('GET', ddkey)
  if prev then return 'dup ' .. prev end
  return 'not_a_member'
end
-- In a direct room whose other member blocked the sender (see SET_BLOCK).
if role == 'blocked' then return 'blocked' end
-- A reply: the original must be a kept, not deleted message of this room. A resend of a reply
-- accepted before the original was deleted is still a duplicate.
if ARGV[9] ~= '' then
  local found = redis.call('ZRANGE', K.log, ARGV[9], ARGV[9], 'BYSCORE')
  local problem = 'message_not_found'
  local at = found[1] and string.find(found[1], ',"event":', 1, true)
  if at then
    local ev = cjson.decode(string.sub(found[1], at + 9, -2))
    if ev.kind == 'message' then
      problem = ev.deleted == true and 'message_deleted' or nil
    end
  end
  if problem then
    local prev = redis.call('GET', ddkey)
    if prev then return 'dup ' .. prev end
    return problem
  end
end
-- Claims the client id and learns of an earlier send in one command (the hot path makes
-- 7 calls plus trimming; each call costs Redis about as much as a plain command).
local seq, ts = next_seq(K)
if seq <= tonumber(ARGV[8]) then return 'behind' end
local prev = redis.call('SET', ddkey, seq .. ' ' .. ts, 'NX', 'GET', 'EX', ARGV[5])
if prev then return 'dup ' .. prev end
local unattachable = attach_uploads(K, sender, seq, ARGV[10])
if unattachable then redis.call('DEL', ddkey) return unattachable end
store_event(K, seq, ts, ARGV[4], '')
local log = K.log
local max_events, max_age = tonumber(ARGV[6]), tonumber(ARGV[7])
if max_events > 0 then
  -- Keeps the newest max_events (removes nothing while there are fewer).
  redis.call('ZREMRANGEBYRANK', log, 0, -max_events - 1)
end
if max_age > 0 then
  -- Amortized: drop at most 16 expired events per append, reading only the oldest each time
  -- (usually one read that finds it still fresh).
  for _ = 1, 16 do
    local oldest = redis.call('ZRANGE', log, 0, 0)[1]
    if not oldest then break end
    local ets = tonumber(string.match(oldest, '"ts":(%d+)'))
    if ets and ets < ts - max_age then redis.call('ZREMRANGEBYRANK', log, 0, 0) else break end
  end
end
return 'ok ' .. seq .. ' ' .. ts
"#
    ))
});

/// KEYS: the room's (`redis/keys.rs`), then the partition's dead uploads. ARGV: room, target
/// seq, sender, new body ('' with ARGV[5]=='delete' deletes), mode, event,
/// floor (see `behind`), '1' when the sender moderates the room (may delete others' messages).
/// Returns "ok seq", an error code or "behind".
///
/// Edits record their seq in `room:{id}:edits` (field: the message's seq); a delete empties
/// the body of each of those edit events too, so history keeps no trace of the text.
static CHANGE_MESSAGE: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        lua_uploads!(),
        r#"
local room, target, sender, body, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local K = declared_room(room)
local rkey = K.room
local role = redis.call('HGET', K.m, sender)
if not role then return 'not_a_member' end
-- A DM member the other blocked may delete their messages there, not edit them (see SET_BLOCK).
if role == 'blocked' and mode ~= 'delete' then return 'blocked' end
if behind(K, ARGV[7]) then return 'behind' end
local function read_event(seq)
  local found = redis.call('ZRANGE', K.log, seq, seq, 'BYSCORE')
  if #found == 0 then return nil end
  local at = string.find(found[1], ',"event":', 1, true)
  if not at then return nil end
  return found[1], at, cjson.decode(string.sub(found[1], at + 9, -2))
end
local function rewrite(seq, frame, at, ev)
  redis.call('ZREM', K.log, frame)
  redis.call('ZADD', K.log, seq, string.sub(frame, 1, at + 8) .. cjson.encode(ev) .. '}')
end
local frame, at, ev = read_event(target)
if not frame or ev.kind ~= 'message' then return 'message_not_found' end
if tostring(ev.sender) ~= sender and not (mode == 'delete' and ARGV[8] == '1') then return 'not_author' end
if ev.deleted == true then return 'message_deleted' end
local ts = now_ms()
if mode == 'delete' then
  ev.body = ''
  ev.deleted = true
  ev.edited_ts = nil
  ev.reactions = nil
  condemn_attachments(K, ev.attachments)
  ev.attachments = nil
else
  ev.body = body
  ev.edited_ts = ts
end
rewrite(target, frame, at, ev)
local edits = redis.call('HGET', K.edits, target)
if mode == 'delete' and edits then
  for eseq in string.gmatch(edits, '%d+') do
    local eframe, eat, eev = read_event(eseq)
    if eframe and eev.kind == 'edit' then
      eev.body = ''
      rewrite(eseq, eframe, eat, eev)
    end
  end
  redis.call('HDEL', K.edits, target)
end
local seq = append(K, ARGV[6], '')
if mode ~= 'delete' then
  redis.call('HSET', K.edits, target, (edits and (edits .. ' ') or '') .. seq)
end
return 'ok ' .. seq
"#
    ))
});

/// KEYS: the room's (`redis/keys.rs`). ARGV: room, target seq, user, emoji, 'add' | 'remove', event, floor (see `behind`), most
/// emoji per message, most emoji per user. Returns "ok seq", "same" (nothing to change),
/// "behind", "full_message", "full_user" or an error code.
///
/// The message's `reactions` list is rewritten in place (as an edit rewrites its text), so
/// history shows the current reactions. cjson would encode an empty list as `{}`: an emoji no
/// one uses any more is dropped, and so is an empty `reactions`.
static REACT: LazyLock<Script> = LazyLock::new(|| {
    bus_script(concat!(
        lua_common!(),
        r#"
local room, target, user, emoji, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local K = declared_room(room)
local rkey = K.room
local role = redis.call('HGET', K.m, ARGV[3])
if not role then return 'not_a_member' end
-- A DM member the other blocked may read, not react (see SET_BLOCK).
if role == 'blocked' then return 'blocked' end
if behind(K, ARGV[7]) then return 'behind' end
local frame = redis.call('ZRANGE', K.log, target, target, 'BYSCORE')[1]
local at = frame and string.find(frame, ',"event":', 1, true)
if not at then return 'message_not_found' end
local ev = cjson.decode(string.sub(frame, at + 9, -2))
if ev.kind ~= 'message' then return 'message_not_found' end
if ev.deleted == true then return 'message_deleted' end
local list = ev.reactions or {}
local found, mine = nil, 0
for i, r in ipairs(list) do
  local has = false
  for _, u in ipairs(r.users) do
    if u == user then has = true end
  end
  if has then mine = mine + 1 end
  if r.emoji == emoji then found = i end
  if r.emoji == emoji and has and mode == 'add' then return 'same' end
  if r.emoji == emoji and not has and mode == 'remove' then return 'same' end
end
if mode == 'add' then
  if mine >= tonumber(ARGV[9]) then return 'full_user' end
  if found then
    table.insert(list[found].users, user)
  elseif #list >= tonumber(ARGV[8]) then
    return 'full_message'
  else
    table.insert(list, {emoji = emoji, users = {user}})
  end
else
  if not found then return 'same' end
  local users = {}
  for _, u in ipairs(list[found].users) do
    if u ~= user then table.insert(users, u) end
  end
  if #users == 0 then table.remove(list, found) else list[found].users = users end
end
if #list == 0 then ev.reactions = nil else ev.reactions = list end
redis.call('ZREM', K.log, frame)
redis.call('ZADD', K.log, target, string.sub(frame, 1, at + 8) .. cjson.encode(ev) .. '}')
local seq = append(K, ARGV[6], '')
return 'ok ' .. seq
"#
    ))
});

/// KEYS: the direct room's (`redis/keys.rs`). ARGV: member, role (`blocked` or `member`).
/// Sets the member's role if they are (still) a member. A blocked DM member's sends there are
/// refused by APPEND_MESSAGE at no extra cost. The block itself is in the blocking user's
/// `:blocks`, written just before ([`RedisStore::set_block`]).
static SET_BLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
"#,
    )
});

/// KEYS: the user's read markers. ARGV: user, room, seq, read_marker frame. Returns the marker
/// after the call.
static SET_READ: LazyLock<Script> = LazyLock::new(|| {
    bus_script(
        r#"
local key = KEYS[1]
local current = tonumber(redis.call('HGET', key, ARGV[2]) or '0')
local seq = tonumber(ARGV[3])
if seq <= current then return current end
redis.call('HSET', key, ARGV[2], ARGV[3])
redis.call('SPUBLISH', user_channel(ARGV[1]), 'U ' .. ARGV[1] .. '\n' .. ARGV[4])
return seq
"#,
    )
});

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Member => "member",
    }
}

fn parse_role(s: &str) -> Role {
    if s == "owner" {
        Role::Owner
    } else {
        Role::Member
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn script_error(code: &str) -> StoreError {
    let code = match code {
        "not_a_member" => ErrorCode::NotAMember,
        "message_not_found" => ErrorCode::MessageNotFound,
        "not_author" => ErrorCode::NotAuthor,
        "message_deleted" => ErrorCode::MessageDeleted,
        "blocked" => return super::blocked_error().into(),
        "attachment_not_found" => return super::not_attachable().into(),
        other => return corrupt(&format!("unexpected script reply {other:?}")),
    };
    let message = match code {
        ErrorCode::NotAMember => "you are not a member of this room",
        ErrorCode::MessageNotFound => "no such message in this room",
        ErrorCode::NotAuthor => "only the author can change a message",
        _ => "the message was deleted",
    };
    ApiError::new(code, message).into()
}

/// A client for a `rediss://` URL that trusts the CA certificate(s) in the PEM `ca` bytes
/// instead of the system store. The URL's user and password (ACL) are used as with `redis://`.
pub fn tls_client(url: &str, ca: Vec<u8>) -> Result<redis::Client, redis::RedisError> {
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
}

impl RedisStore {
    /// Connects (commands and the bus subscriber) and registers this node for presence.
    pub async fn connect(
        url: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, redis::RedisError> {
        Self::connect_with(redis::Client::open(url)?, shutdown).await
    }

    /// [`RedisStore::connect`] with a prepared client (e.g. TLS with a private CA, see
    /// [`tls_client`]). Every connection of the store, the bus subscriber's too, comes from it.
    pub async fn connect_with(
        client: redis::Client,
        shutdown: CancellationToken,
    ) -> Result<Self, redis::RedisError> {
        Self::connect_to(conn::Target::Single(client), shutdown).await
    }

    /// Connects to one Redis or a cluster (see [`conn::Target`]).
    pub async fn connect_to(
        target: conn::Target,
        shutdown: CancellationToken,
    ) -> Result<Self, redis::RedisError> {
        let con = target.connect().await?;
        let node = format!("{:016x}", rand::random::<u64>());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        migrate::run(&mut con.clone(), &node, now_ms).await?;
        let feed = bus::Feed::default();
        let watch = Arc::new(Watch {
            epoch: Mutex::default(),
            seen: Mutex::default(),
            checked: AtomicBool::new(true),
            recheck: tokio::sync::Notify::new(),
        });
        // Subscribe before serving so no event published after start is missed.
        let subscription = subscriber::subscribe(&target, &feed, &watch).await?;
        let epoch: String = EPOCH
            .key(EPOCH_KEY)
            .arg(fresh_epoch())
            .invoke_async(&mut con.clone())
            .await?;
        admin::index_skeletons(&mut con.clone()).await?;
        *watch.epoch.lock().unwrap_or_else(|e| e.into_inner()) = epoch;
        let health = Arc::new(super::health::Health::default());
        tokio::spawn(health.clone().run_probe(target.clone(), shutdown.clone()));
        tokio::spawn(subscriber::run_subscriber(
            target,
            subscription,
            feed.clone(),
            shutdown,
            watch.clone(),
            health.clone(),
        ));
        Ok(Self {
            con,
            node,
            feed,
            watch,
            health,
            #[cfg(test)]
            fail_after: Mutex::default(),
        })
    }

    pub fn epoch(&self) -> String {
        self.watch
            .epoch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn same_epoch(&self) -> StoreResult<bool> {
        let current: String = EPOCH
            .key(EPOCH_KEY)
            .arg(fresh_epoch())
            .invoke_async(&mut self.con())
            .await?;
        let mut mine = self.watch.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if *mine == current {
            return Ok(true);
        }
        // Seqs of a wiped data set mean nothing in the new one. After lost writes (same data
        // set, new generation) they still matter: this node's bus check may not have run yet.
        if data_set(&mine) != data_set(&current) {
            self.watch
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        *mine = current;
        Ok(false)
    }

    /// Appends wait while the bus is down or not yet checked after coming back (see [`Watch`]).
    fn writable(&self) -> StoreResult<()> {
        if self.watch.checked.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the bus is reconnecting to the store".into(),
            ))
        }
    }

    /// A script found the store behind what this node saw: it lost writes that the bus has not
    /// noticed. Appends wait until the subscriber has checked every room (raising seqs past
    /// what was seen, new epoch: every socket gets 4010), as after a lost subscription.
    fn behind(&self) -> StoreError {
        self.watch.checked.store(false, Ordering::Release);
        self.watch.recheck.notify_one();
        tracing::error!(
            "the store holds fewer events than this node saw handed out (writes lost); checking"
        );
        StoreError::Unavailable("the store lost writes; checking".into())
    }

    /// Whether the store is known to be unreachable (see [`super::health`]).
    pub fn health(&self) -> &super::health::Health {
        &self.health
    }

    /// Whether the bus is subscribed and, after a reconnect, checked.
    pub fn bus_ready(&self) -> bool {
        self.watch.checked.load(Ordering::Acquire)
    }

    pub fn attach_bus(&self, sink: Arc<dyn bus::Sink>) -> bool {
        self.feed.attach(sink)
    }

    fn con(&self) -> conn::Conn {
        self.con.clone()
    }

    /// Called after each step of an operation that spans slots: fails where a test armed it.
    fn hook(&self, step: Step) -> StoreResult<()> {
        #[cfg(test)]
        {
            let mut armed = self.fail_after.lock().unwrap_or_else(|e| e.into_inner());
            if *armed == Some(step) {
                *armed = None;
                return Err(StoreError::Unavailable(format!(
                    "test failpoint after {step:?}"
                )));
            }
        }
        let _ = step;
        Ok(())
    }

    /// Makes the store fail once, right after `step` (tests).
    #[cfg(test)]
    fn fail_after(&self, step: Step) {
        *self.fail_after.lock().unwrap_or_else(|e| e.into_inner()) = Some(step);
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.con()).await?;
        Ok(())
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<UserRecord> {
        self.register_user(username, password_hash, now, super::Admission::Open)
            .await
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let mut con = self.con();
        let id: Option<String> = con
            .get(format!("uname:{}", username.to_lowercase()))
            .await?;
        // Reserved by a registration under way (or one that stopped): not a user (yet).
        let Some(id) = id.and_then(|id| id.parse::<u64>().ok()) else {
            return Ok(None);
        };
        let fields: HashMap<String, String> = con.hgetall(keys::user(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        user_from_fields(id, &fields).map(Some)
    }

    pub async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<(UserId, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(keys::user(id), "name");
        }
        let names: Vec<Option<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(ids
            .iter()
            .zip(names)
            .filter_map(|(id, name)| Some((*id, name?)))
            .collect())
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<(UserId, String)>> {
        let mut con = self.con();
        let min = format!("[{prefix}");
        let max = format!("[{prefix}\u{ff}");
        let found: Vec<String> = redis::cmd("ZRANGE")
            .arg("unames")
            .arg(min)
            .arg(max)
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut con)
            .await?;
        let ids: Vec<UserId> = found
            .iter()
            .filter_map(|entry| {
                entry
                    .rsplit_once(':')
                    .and_then(|(_, id)| id.parse().ok())
                    .map(UserId)
            })
            .collect();
        self.users(&ids).await
    }

    pub async fn create_session(&self, session: &SessionRecord, ttl_secs: u64) -> StoreResult<()> {
        // The user's index first, then the session (one slot each): a failure between leaves an
        // index entry without a session, which listing drops; never a session that revoking
        // every session of the user would miss.
        let _: i64 = self
            .con()
            .hset(
                keys::user_sessions(session.user),
                &session.id,
                &session.token_hash,
            )
            .await?;
        let key = format!("sess:{}", session.token_hash);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("id", session.id.clone()),
                    ("user", session.user.to_string()),
                    ("device", session.device.clone().unwrap_or_default()),
                    ("created", session.created_ts.to_string()),
                    ("used", session.last_used_ts.to_string()),
                ],
            )
            .ignore()
            .expire(&key, ttl_secs as i64)
            .ignore();
        let () = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }

    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        ttl_secs: u64,
        max_age_secs: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        let key = format!("sess:{token_hash}");
        // The session touched in its slot, then its account's `off` read in the user's: a
        // session of a disabled account is deleted and refused.
        let fields: Option<HashMap<String, String>> = TOUCH_SESSION
            .key(&key)
            .arg(now)
            .arg(ttl_secs)
            .arg(max_age_secs.saturating_mul(1000))
            .invoke_async(&mut self.con())
            .await?;
        let Some(fields) = fields else {
            return Ok(None);
        };
        let session = session_from_fields(token_hash, &fields)?;
        let off: Option<String> = self.con().hget(keys::user(session.user), "off").await?;
        if off.as_deref() == Some("1") {
            let _: i64 = self.con().del(&key).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    pub async fn sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let mut con = self.con();
        let index: HashMap<String, String> = con.hgetall(keys::user_sessions(user)).await?;
        let mut pipe = redis::pipe();
        let entries: Vec<(String, String)> = index.into_iter().collect();
        for (_, hash) in &entries {
            pipe.hgetall(format!("sess:{hash}"));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
        let mut out = Vec::new();
        for ((id, hash), fields) in entries.iter().zip(all) {
            if fields.is_empty() {
                // Expired: drop it from the index.
                let _: i64 = con.hdel(keys::user_sessions(user), id).await?;
                continue;
            }
            out.push(session_from_fields(hash, &fields)?);
        }
        Ok(out)
    }

    pub async fn revoke_session(&self, user: UserId, session_id: &str) -> StoreResult<bool> {
        let hash: Option<String> = self
            .con()
            .hget(keys::user_sessions(user), session_id)
            .await?;
        let Some(hash) = hash else { return Ok(false) };
        // The token is dead from here on; the index entry and the sockets follow.
        let _: i64 = self.con().del(format!("sess:{hash}")).await?;
        self.hook(Step::SessionDeleted)?;
        self.unlist_sessions(user, &[session_id]).await?;
        Ok(true)
    }

    /// Drops sessions (deleted already) from a user's index and closes their sockets.
    pub(super) async fn unlist_sessions(&self, user: UserId, ids: &[&str]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut invocation = UNLIST_SESSIONS.key(keys::user_sessions(user));
        invocation.arg(user.0);
        for id in ids {
            invocation.arg(*id);
        }
        let _: i64 = invocation.invoke_async(&mut self.con()).await?;
        Ok(())
    }

    pub async fn create_room(
        &self,
        owner: UserId,
        name: &str,
        visibility: Visibility,
        event_json: &str,
        _now: i64,
    ) -> StoreResult<RoomId> {
        self.writable()?;
        let public = visibility == Visibility::Public;
        // An id (unused if a later step fails: harmless), the room, the owner's list, the
        // public list: readers skip what a failed attempt left behind.
        let id: u64 = self.con().incr("ids:room", 1).await?;
        let _: i64 = room_script(&CREATE_ROOM, id)
            .arg(id)
            .arg(owner.0)
            .arg(name)
            .arg(if public { "public" } else { "private" })
            .arg(event_json)
            .invoke_async(&mut self.con())
            .await?;
        self.hook(Step::RoomMade)?;
        let _: i64 = self.con().sadd(keys::user_rooms(owner), id).await?;
        if public {
            let _: i64 = self.con().sadd("rooms:public", id).await?;
        }
        Ok(RoomId(id))
    }

    pub async fn open_dm(
        &self,
        a: (UserId, &str),
        b: (UserId, &str),
        _now: i64,
    ) -> StoreResult<RoomId> {
        self.writable()?;
        let (a, b) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        // The pair's room id first (authoritative: the loser of a race takes the winner's),
        // then the room, then both users' lists. Each step is a no-op when done, so opening
        // it again finishes what a failed attempt began.
        let key = format!("dm:{}:{}", a.0, b.0);
        let existing: Option<u64> = self.con().get(&key).await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let new: u64 = self.con().incr("ids:room", 1).await?;
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(new)
                    .arg("NX")
                    .query_async(&mut self.con())
                    .await?;
                let id: Option<u64> = self.con().get(&key).await?;
                id.ok_or_else(|| corrupt("direct room id"))?
            }
        };
        self.hook(Step::DmClaimed)?;
        // A member the other blocked may read the room but not send (see SET_BLOCK).
        let (b_blocks_a, a_blocks_b): (bool, bool) = redis::pipe()
            .sismember(keys::user_blocks(b.0), a.0 .0)
            .sismember(keys::user_blocks(a.0), b.0 .0)
            .query_async(&mut self.con())
            .await?;
        let role = |blocked: bool| if blocked { "blocked" } else { "member" };
        let _: i64 = room_script(&OPEN_DM, id)
            .arg(id)
            .arg(a.0 .0)
            .arg(b.0 .0)
            .arg(role(b_blocks_a))
            .arg(role(a_blocks_b))
            .arg(super::member_joined_json(a.0, a.1, Role::Member, None))
            .arg(super::member_joined_json(b.0, b.1, Role::Member, None))
            .invoke_async(&mut self.con())
            .await?;
        self.hook(Step::DmMade)?;
        let _: (i64, i64) = redis::pipe()
            .sadd(keys::user_rooms(a.0), id)
            .sadd(keys::user_rooms(b.0), id)
            .query_async(&mut self.con())
            .await?;
        Ok(RoomId(id))
    }

    pub async fn room(&self, room: RoomId) -> StoreResult<Option<RoomMeta>> {
        Ok(self.rooms(&[room]).await?.pop())
    }

    pub async fn rooms(&self, rooms: &[RoomId]) -> StoreResult<Vec<RoomMeta>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.hgetall(keys::room(room)).hlen(keys::members(room));
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.con()).await?;
        let mut out = Vec::with_capacity(rooms.len());
        for (room, pair) in rooms.iter().zip(replies.chunks(2)) {
            let fields: HashMap<String, String> = redis::from_redis_value(pair[0].clone())?;
            if fields.is_empty() {
                continue;
            }
            let members: u64 = redis::from_redis_value(pair[1].clone())?;
            let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
            let direct = fields.get("kind").map(String::as_str) == Some("direct");
            out.push(RoomMeta {
                id: *room,
                name: fields.get("name").cloned().unwrap_or_default(),
                kind: if direct {
                    RoomKind::Direct
                } else {
                    RoomKind::Group
                },
                visibility: if fields.get("vis").map(String::as_str) == Some("public") {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
                owner: num("owner").map(UserId),
                last_seq: num("seq").unwrap_or(0),
                member_count: members,
                pair: num("a").zip(num("b")).map(|(a, b)| (UserId(a), UserId(b))),
                topic: fields.get("topic").cloned().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    pub async fn public_rooms(&self) -> StoreResult<Vec<RoomId>> {
        let ids: Vec<u64> = self.con().smembers("rooms:public").await?;
        let mut ids: Vec<RoomId> = ids.into_iter().map(RoomId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>> {
        let ids: Vec<u64> = self.con().smembers(keys::user_rooms(user)).await?;
        // The list is a hint (written after the room's members, in another slot): only rooms
        // whose members have the user count.
        let mut kept = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(512) {
            let mut pipe = redis::pipe();
            for room in chunk {
                pipe.hexists(keys::members(room), user.0);
            }
            let member: Vec<bool> = pipe.query_async(&mut self.con()).await?;
            kept.extend(
                chunk
                    .iter()
                    .zip(member)
                    .filter(|(_, m)| *m)
                    .map(|(r, _)| RoomId(*r)),
            );
        }
        kept.sort();
        Ok(kept)
    }

    pub async fn role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> = self.con().hget(keys::members(room), user.0).await?;
        Ok(role.as_deref().map(parse_role))
    }

    pub async fn members(&self, room: RoomId) -> StoreResult<Vec<(UserId, Role)>> {
        let all: HashMap<u64, String> = self.con().hgetall(keys::members(room)).await?;
        let mut members: Vec<(UserId, Role)> = all
            .into_iter()
            .map(|(u, r)| (UserId(u), parse_role(&r)))
            .collect();
        members.sort_by_key(|(u, _)| *u);
        Ok(members)
    }

    pub async fn change_member(
        &self,
        change: MemberChange<'_>,
        _now: i64,
    ) -> StoreResult<Option<u64>> {
        self.writable()?;
        let seq: i64 = room_script(&CHANGE_MEMBER, change.room.0)
            .arg(change.room.0)
            .arg(change.user.0)
            .arg(change.role.map_or("", role_name))
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .invoke_async(&mut self.con())
            .await?;
        let changed = match seq {
            -1 => return Err(ApiError::room_not_found().into()),
            -2 => return Err(self.behind()),
            -3 => return Err(super::banned_error().into()),
            0 => None,
            seq => {
                self.watch.note(change.room.0, seq as u64);
                Some(seq as u64)
            }
        };
        self.hook(Step::MemberChanged)?;
        // The user's list follows, also when the room changed nothing: a retry after a failure
        // between the steps finishes it.
        let list = keys::user_rooms(change.user);
        let _: i64 = if change.role.is_some() {
            self.con().sadd(list, change.room.0).await?
        } else {
            self.con().srem(list, change.room.0).await?
        };
        Ok(changed)
    }

    pub async fn append_message(
        &self,
        msg: NewMessage<'_>,
        _now: i64,
        dedupe_ttl_secs: u64,
        retention: Retention,
    ) -> StoreResult<SendAck> {
        self.writable()?;
        // Upload ids are hex (`attachments::new_id`); anything else names no upload.
        if msg
            .attachments
            .iter()
            .any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(super::not_attachable().into());
        }
        let p = PARTITIONS.of_room(msg.room.0);
        // Keys and arguments go straight into one command (`redis/call.rs`): this runs for
        // every message.
        let bytes = 320 + msg.event_json.len() + 2 * msg.client_id.len();
        let mut call = call::ScriptCall::new(&APPEND_MESSAGE, 9 + msg.attachments.len(), bytes);
        call.key(keys::RoomKeys::of(msg.room))
            .key(keys::DedupeKey::new(msg.room, msg.sender.0, msg.client_id))
            .key(keys::uploads_pending_key(p))
            .key(keys::uploads_rooms_key(p));
        for id in msg.attachments {
            call.key(keys::upload(p, id));
        }
        call.arg(msg.room.0)
            .arg(msg.sender.0)
            .arg(msg.client_id)
            .arg(msg.event_json)
            .arg(dedupe_ttl_secs)
            .arg(retention.max_events)
            .arg(retention.max_age_ms)
            .arg(self.watch.floor(msg.room.0));
        match msg.reply_to {
            Some(seq) => call.arg(seq),
            None => call.arg(""),
        };
        if msg.attachments.is_empty() {
            call.arg("");
        } else {
            call.arg(msg.attachments.join(" "));
        }
        let reply: String = call.invoke(&mut self.con()).await?;
        let mut parts = call::words(&reply);
        let status = parts.next().unwrap_or_default();
        let duplicate = match status {
            "ok" => false,
            "dup" => true,
            "behind" => return Err(self.behind()),
            other => return Err(script_error(other)),
        };
        let seq = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("append seq"))?;
        let ts = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("append ts"))?;
        self.watch.note(msg.room.0, seq);
        Ok(SendAck {
            room: msg.room,
            id: msg.client_id.to_owned(),
            seq,
            ts,
            duplicate,
        })
    }

    pub async fn change_message(&self, change: Change<'_>, _now: i64) -> StoreResult<u64> {
        self.writable()?;
        let reply: String = room_script(&CHANGE_MESSAGE, change.room.0)
            .key(keys::uploads_dead(PARTITIONS.of_room(change.room.0)))
            .arg(change.room.0)
            .arg(change.target)
            .arg(change.sender.0)
            .arg(change.body.unwrap_or_default())
            .arg(if change.body.is_some() {
                "edit"
            } else {
                "delete"
            })
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .arg(if change.moderator { "1" } else { "0" })
            .invoke_async(&mut self.con())
            .await?;
        match reply.split_once(' ') {
            Some(("ok", seq)) => {
                let seq = seq.parse().map_err(|_| corrupt("change seq"))?;
                self.watch.note(change.room.0, seq);
                Ok(seq)
            }
            _ if reply == "behind" => Err(self.behind()),
            _ => Err(script_error(&reply)),
        }
    }

    pub async fn history(&self, room: RoomId, range: Range, limit: usize) -> StoreResult<LogPage> {
        let log = keys::log(room);
        let mut zrange = redis::cmd("ZRANGE");
        zrange.arg(&log);
        match range {
            Range::After(after) => zrange.arg(format!("({after}")).arg("+inf").arg("BYSCORE"),
            Range::Before(before) => {
                let max = before.map_or_else(|| "+inf".to_owned(), |b| format!("({b}"));
                zrange.arg(max).arg("-inf").arg("BYSCORE").arg("REV")
            }
        };
        zrange.arg("LIMIT").arg(0).arg(limit + 1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(zrange)
            .cmd("ZRANGE")
            .arg(&log)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .hget(keys::room(room), "seq");
        let (mut events, first, last): (Vec<String>, Vec<(String, u64)>, Option<u64>) =
            pipe.query_async(&mut self.con()).await?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        if matches!(range, Range::Before(_)) {
            events.reverse();
        }
        let last_seq = last.unwrap_or(0);
        let first_seq = first.first().map_or(last_seq + 1, |(_, seq)| *seq);
        Ok(LogPage {
            events,
            has_more,
            first_seq,
            last_seq,
        })
    }

    pub async fn set_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        let marker: u64 = SET_READ
            .key(keys::user_read(user))
            .arg(user.0)
            .arg(room.0)
            .arg(seq)
            .arg(bus::read_frame(room, seq))
            .invoke_async(&mut self.con())
            .await?;
        Ok(marker)
    }

    pub async fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<u64>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<u64> = rooms.iter().map(|r| r.0).collect();
        let values: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(keys::user_read(user))
            .arg(fields)
            .query_async(&mut self.con())
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    pub async fn publish(&self, msg: String) -> StoreResult<()> {
        let channel = bus_channel(&msg).ok_or_else(|| corrupt("bus message without a route"))?;
        let _: i64 = redis::cmd("SPUBLISH")
            .arg(channel)
            .arg(msg)
            .query_async(&mut self.con())
            .await?;
        Ok(())
    }
}

// Everyday chat (issue 13).
impl RedisStore {
    pub async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hexists(keys::members(room), user.0);
        }
        Ok(pipe.query_async(&mut self.con()).await?)
    }

    pub async fn react(
        &self,
        change: super::ReactionChange<'_>,
        _now: i64,
    ) -> StoreResult<Option<u64>> {
        self.writable()?;
        let reply: String = room_script(&REACT, change.room.0)
            .arg(change.room.0)
            .arg(change.target)
            .arg(change.user.0)
            .arg(change.emoji)
            .arg(if change.add { "add" } else { "remove" })
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .arg(protocol::limits::MAX_REACTIONS_PER_MESSAGE)
            .arg(protocol::limits::MAX_REACTIONS_PER_USER)
            .invoke_async(&mut self.con())
            .await?;
        match reply.split_once(' ') {
            Some(("ok", seq)) => {
                let seq = seq.parse().map_err(|_| corrupt("reaction seq"))?;
                self.watch.note(change.room.0, seq);
                Ok(Some(seq))
            }
            _ => match reply.as_str() {
                "same" => Ok(None),
                "behind" => Err(self.behind()),
                "full_message" => Err(super::reactions_full(false).into()),
                "full_user" => Err(super::reactions_full(true).into()),
                other => Err(script_error(other)),
            },
        }
    }
}

// Privacy and moderation (issue 11).
impl RedisStore {
    /// Per other user: whether they share a room with `user`. The two users' `:rooms` sets
    /// are in their own partitions (slots), so `user`'s rooms are read once and looked up in
    /// each other's set.
    pub async fn shares_room(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<bool>> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mine: Vec<u64> = self.con().smembers(keys::user_rooms(user)).await?;
        if mine.is_empty() {
            return Ok(vec![false; others.len()]);
        }
        let mut pipe = redis::pipe();
        for other in others {
            pipe.cmd("SMISMEMBER")
                .arg(keys::user_rooms(*other))
                .arg(&mine);
        }
        let found: Vec<Vec<bool>> = pipe.query_async(&mut self.con()).await?;
        Ok(found.into_iter().map(|f| f.contains(&true)).collect())
    }

    pub async fn set_ban(&self, room: RoomId, user: UserId, banned: bool) -> StoreResult<bool> {
        let key = keys::bans(room);
        let changed: u64 = if banned {
            self.con().sadd(key, user.0).await?
        } else {
            self.con().srem(key, user.0).await?
        };
        Ok(changed > 0)
    }

    pub async fn bans(&self, room: RoomId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<u64> = self.con().smembers(keys::bans(room)).await?;
        let mut ids: Vec<UserId> = ids.into_iter().map(UserId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn set_block(&self, user: UserId, other: UserId, blocked: bool) -> StoreResult<()> {
        // The block (the user's slot), then the other's role in their direct room if there is
        // one (the room's): each step idempotent, a retry redoes both.
        let blocks = keys::user_blocks(user);
        let _: i64 = if blocked {
            self.con().sadd(blocks, other.0).await?
        } else {
            self.con().srem(blocks, other.0).await?
        };
        self.hook(Step::BlockSet)?;
        let (a, b) = if user.0 <= other.0 {
            (user, other)
        } else {
            (other, user)
        };
        let dm: Option<u64> = self.con().get(format!("dm:{}:{}", a.0, b.0)).await?;
        if let Some(dm) = dm {
            let _: i64 = room_script(&SET_BLOCK, dm)
                .arg(other.0)
                .arg(if blocked { "blocked" } else { "member" })
                .invoke_async(&mut self.con())
                .await?;
        }
        Ok(())
    }

    pub async fn blocked(&self, by: UserId, whom: UserId) -> StoreResult<bool> {
        Ok(self.con().sismember(keys::user_blocks(by), whom.0).await?)
    }

    pub async fn blocks(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<u64> = self.con().smembers(keys::user_blocks(user)).await?;
        let mut ids: Vec<UserId> = ids.into_iter().map(UserId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn roles(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<Option<Role>>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.hget(keys::members(room), user.0);
        }
        let roles: Vec<Option<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(roles
            .into_iter()
            .map(|r| r.as_deref().map(parse_role))
            .collect())
    }

    pub async fn newest_events(&self, rooms: &[(RoomId, usize)]) -> StoreResult<Vec<Vec<String>>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (room, n) in rooms {
            let n = (*n).max(1) as isize;
            pipe.zrange(keys::log(room), -n, -1);
        }
        let mut pages: Vec<Vec<String>> = pipe.query_async(&mut self.con()).await?;
        for ((_, n), page) in rooms.iter().zip(&mut pages) {
            if *n == 0 {
                page.clear();
            }
        }
        Ok(pages)
    }

    pub async fn room_count(&self, user: UserId) -> StoreResult<u64> {
        Ok(self.con().scard(keys::user_rooms(user)).await?)
    }
}

/// A `user:{id}` hash as a record.
fn user_from_fields(id: u64, fields: &HashMap<String, String>) -> StoreResult<UserRecord> {
    let get = |k: &str| {
        fields
            .get(k)
            .cloned()
            .ok_or_else(|| corrupt("user hash incomplete"))
    };
    Ok(UserRecord {
        id: UserId(id),
        username: get("name")?,
        password_hash: get("pw")?,
        created_ts: get("created")?
            .parse()
            .map_err(|_| corrupt("user created"))?,
        admin: fields.get("admin").is_some_and(|v| v == "1"),
        disabled: fields.get("off").is_some_and(|v| v == "1"),
    })
}

fn session_from_fields(
    token_hash: &str,
    f: &HashMap<String, String>,
) -> StoreResult<SessionRecord> {
    let num = |k: &str| {
        f.get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| corrupt("session hash"))
    };
    Ok(SessionRecord {
        id: f.get("id").cloned().ok_or_else(|| corrupt("session id"))?,
        token_hash: token_hash.to_owned(),
        user: UserId(num("user")? as u64),
        device: f.get("device").filter(|d| !d.is_empty()).cloned(),
        created_ts: num("created")?,
        last_used_ts: num("used")?,
    })
}
