//! Room settings and profiles on Redis (issue 13): rename and topic, deleting a room,
//! notification levels, display names. Keys (see also the table in `redis.rs`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `room:{id}` | hash | field `topic` (absent when none) |
//! | `user:{id}` | hash | field `dname`: the display name (absent when none) |
//! | `user:{id}:notify` | hash | room id → `mentions` / `none` (absent: `all`) |

use super::{corrupt, keys, script_error, RedisStore};
use crate::error::StoreResult;
use crate::store::RoomUpdate;
use protocol::rest::NotifyLevel;
use protocol::{RoomId, UserId};
use redis::Script;
use std::sync::LazyLock;

macro_rules! lua_owner_check {
    () => {
        r#"
-- Refusals shared by the owner's room settings, in the order the API documents them.
local function owner_refusal(K, user)
  local role = redis.call('HGET', K.m, user)
  if not role then return 'not_a_member' end
  if redis.call('HGET', K.room, 'kind') == 'direct' then return 'direct_room' end
  if role ~= 'owner' then return 'not_owner' end
  return nil
end
"#
    };
}

/// KEYS: the room's (`redis/keys.rs`). ARGV: room, by, name ('' keeps it), '1' to set the topic, topic ('' clears), event, floor
/// (see `behind`). Returns "ok seq", "behind" or an error code.
static UPDATE_ROOM: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(concat!(
        lua_common!(),
        lua_owner_check!(),
        r#"
local K = declared_room(ARGV[1])
local refusal = owner_refusal(K, ARGV[2])
if refusal then return refusal end
if behind(K, ARGV[7]) then return 'behind' end
local rkey = K.room
if ARGV[3] ~= '' then redis.call('HSET', rkey, 'name', ARGV[3]) end
if ARGV[4] == '1' then
  if ARGV[5] == '' then redis.call('HDEL', rkey, 'topic') else redis.call('HSET', rkey, 'topic', ARGV[5]) end
end
local seq = append(K, ARGV[6], '')
return 'ok ' .. seq
"#
    ))
});

/// KEYS: the room's (`redis/keys.rs`). ARGV: room, by, event, floor (see `behind`). Appends the
/// event (route ` D`), then deletes every key of the room. Returns "ok seq", "behind" or an
/// error code. The members' entries and `rooms:public` follow in their slots
/// ([`RedisStore::delete_room`]).
static DELETE_ROOM: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(concat!(
        lua_common!(),
        lua_owner_check!(),
        r#"
local room = ARGV[1]
local K = declared_room(room)
local refusal = owner_refusal(K, ARGV[2])
if refusal then return refusal end
if behind(K, ARGV[4]) then return 'behind' end
local seq = append(K, ARGV[3], ' D')
redis.call('DEL', K.room, K.m, K.log, K.edits, K.bans)
return 'ok ' .. seq
"#
    ))
});

/// KEYS: the user's notification levels. ARGV: user, room, level ('all' removes the entry),
/// notify_level frame. (Membership is checked just before, in the room's slot.)
static SET_NOTIFY: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(
        r#"
local key = KEYS[1]
if ARGV[3] == 'all' then redis.call('HDEL', key, ARGV[2]) else redis.call('HSET', key, ARGV[2], ARGV[3]) end
redis.call('SPUBLISH', user_channel(ARGV[1]), 'U ' .. ARGV[1] .. '\n' .. ARGV[4])
return 1
"#,
    )
});

/// KEYS: the user's hash. ARGV: user, display name ('' removes). Returns 0 when there is no
/// such user.
static SET_DISPLAY_NAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
if ARGV[2] == '' then redis.call('HDEL', key, 'dname') else redis.call('HSET', key, 'dname', ARGV[2]) end
return 1
"#,
    )
});

pub(super) fn level_name(level: NotifyLevel) -> &'static str {
    match level {
        NotifyLevel::All => "all",
        NotifyLevel::Mentions => "mentions",
        NotifyLevel::None => "none",
    }
}

pub(super) fn parse_level(s: Option<&str>) -> NotifyLevel {
    match s {
        Some("mentions") => NotifyLevel::Mentions,
        Some("none") => NotifyLevel::None,
        _ => NotifyLevel::All,
    }
}

/// An "ok seq" script reply as the seq, or the refusal it names.
fn seq_reply(store: &RedisStore, room: RoomId, reply: &str) -> StoreResult<u64> {
    match reply.split_once(' ') {
        Some(("ok", seq)) => {
            let seq = seq.parse().map_err(|_| corrupt("room settings seq"))?;
            store.watch.note(room.0, seq);
            Ok(seq)
        }
        _ => match reply {
            "behind" => Err(store.behind()),
            "not_owner" => Err(crate::store::not_owner_error().into()),
            "direct_room" => Err(crate::store::direct_room_error().into()),
            other => Err(script_error(other)),
        },
    }
}

impl RedisStore {
    pub async fn update_room(&self, update: RoomUpdate<'_>, _now: i64) -> StoreResult<Option<u64>> {
        if update.name.is_none() && update.topic.is_none() {
            return Ok(None);
        }
        self.writable()?;
        let reply: String = super::room_script(&UPDATE_ROOM, update.room.0)
            .arg(update.room.0)
            .arg(update.by.0)
            .arg(update.name.unwrap_or(""))
            .arg(if update.topic.is_some() { "1" } else { "0" })
            .arg(update.topic.unwrap_or(""))
            .arg(update.event_json)
            .arg(self.watch.floor(update.room.0))
            .invoke_async(&mut self.con())
            .await?;
        seq_reply(self, update.room, &reply).map(Some)
    }

    pub async fn delete_room(
        &self,
        room: RoomId,
        by: UserId,
        event_json: &str,
        _now: i64,
    ) -> StoreResult<u64> {
        self.writable()?;
        // The members as the room step finds them (the room's slot), the room deleted, then
        // each member's entries and the public list: readers skip a room that is gone, so a
        // failure before those only leaves entries nobody reads.
        let members: Vec<u64> = redis::cmd("HKEYS")
            .arg(keys::members(room))
            .query_async(&mut self.con())
            .await?;
        let reply: String = super::room_script(&DELETE_ROOM, room.0)
            .arg(room.0)
            .arg(by.0)
            .arg(event_json)
            .arg(self.watch.floor(room.0))
            .invoke_async(&mut self.con())
            .await?;
        let seq = seq_reply(self, room, &reply)?;
        self.hook(super::Step::RoomDeleted)?;
        for user in members {
            let () = redis::pipe()
                .srem(keys::user_rooms(user), room.0)
                .ignore()
                .hdel(keys::user_read(user), room.0)
                .ignore()
                .hdel(keys::user_notify(user), room.0)
                .ignore()
                .query_async(&mut self.con())
                .await?;
        }
        let _: i64 = redis::cmd("SREM")
            .arg("rooms:public")
            .arg(room.0)
            .query_async(&mut self.con())
            .await?;
        Ok(seq)
    }

    pub async fn set_notify(
        &self,
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
        frame: &str,
    ) -> StoreResult<()> {
        let member: bool = redis::cmd("HEXISTS")
            .arg(keys::members(room))
            .arg(user.0)
            .query_async(&mut self.con())
            .await?;
        if !member {
            return Err(crate::error::ApiError::not_a_member().into());
        }
        let _: i64 = SET_NOTIFY
            .key(keys::user_notify(user))
            .arg(user.0)
            .arg(room.0)
            .arg(level_name(level))
            .arg(frame)
            .invoke_async(&mut self.con())
            .await?;
        Ok(())
    }

    pub async fn notify_levels(
        &self,
        user: UserId,
        rooms: &[RoomId],
    ) -> StoreResult<Vec<NotifyLevel>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<u64> = rooms.iter().map(|r| r.0).collect();
        let levels: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::user_notify(user))
            .arg(&ids)
            .query_async(&mut self.con())
            .await?;
        Ok(levels.iter().map(|l| parse_level(l.as_deref())).collect())
    }

    pub async fn set_display_name(&self, user: UserId, name: Option<&str>) -> StoreResult<bool> {
        let done: i64 = SET_DISPLAY_NAME
            .key(keys::user(user))
            .arg(user.0)
            .arg(name.unwrap_or(""))
            .invoke_async(&mut self.con())
            .await?;
        Ok(done == 1)
    }

    pub async fn display_names(&self, users: &[UserId]) -> StoreResult<Vec<Option<String>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hget(keys::user(user), "dname");
        }
        Ok(pipe.query_async(&mut self.con()).await?)
    }
}
