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

// After `lua_common!`, which they use.
mod accounts;
mod messages;
mod moderation;
mod rooms;
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

/// KEYS: the room's (`redis/keys.rs`), then the dedupe key; with uploads to attach, also the
/// partition's pending uploads and rooms with uploads, and each attached upload's record (see
/// `redis/attachments.rs`; read only when ARGV[10] names uploads). ARGV: room, sender, client id, event, dedupe ttl, max events, max age ms, floor (see
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
