//! Upload records on Redis (see `store/uploads.rs` for their life cycle). Keys:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `upl:{id}` | hash | `owner`, `room`, `name`, `size`, `type`, `w`, `h` (0: not an image), `thumb` (`1`/`0`), `created` (ms), `seq` once attached |
//! | `upl:pending` | zset | ids of uploads not attached yet, scored by `created` |
//! | `upl:dead` | set | ids whose files the collector is to delete |
//! | `room:{t}:{id}:upl` (see `keys.rs`) | zset | ids attached to the room's messages, scored by the message's seq |
//! | `upl:rooms` | set | rooms with attached uploads (the collector checks their retention) |
//! | `user:{id}:upl_bytes` | string | bytes the user stores |
//!
//! Attaching happens inside the append script (`APPEND_MESSAGE` in `redis.rs` calls
//! `attach_uploads`), and a delete condemns the message's uploads inside `CHANGE_MESSAGE`
//! (`condemn_attachments`): a message and its uploads change in one atomic step.

use super::{corrupt, keys, RedisStore};
use crate::error::StoreResult;
use crate::store::{quota_exceeded, UploadRecord};
use protocol::{RoomId, UserId};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Lua helpers for the message scripts of `redis.rs`.
macro_rules! lua_uploads {
    () => {
        r#"
-- Attaches the uploads `ids` (space-separated, '' for none) to message `seq` of `room`, if every
-- one is a pending upload of `sender` for `room`. Returns 'attachment_not_found' (and changes
-- nothing) otherwise, nil when done.
local function attach_uploads(K, sender, seq, ids)
  if ids == '' then return nil end
  local list = {}
  for id in string.gmatch(ids, '%x+') do
    if not redis.call('ZSCORE', 'upl:pending', id) then return 'attachment_not_found' end
    local f = redis.call('HMGET', 'upl:' .. id, 'owner', 'room')
    if f[1] ~= sender or f[2] ~= K.id then return 'attachment_not_found' end
    list[#list + 1] = id
  end
  for _, id in ipairs(list) do
    redis.call('ZREM', 'upl:pending', id)
    redis.call('HSET', 'upl:' .. id, 'seq', seq)
    redis.call('ZADD', K.upl, seq, id)
  end
  redis.call('SADD', 'upl:rooms', K.id)
  return nil
end
-- The uploads of a deleted message (its decoded `attachments`, may be nil) are dead.
local function condemn_attachments(K, list)
  if type(list) ~= 'table' then return end
  for _, a in ipairs(list) do
    redis.call('ZREM', K.upl, a.id)
    redis.call('SADD', 'upl:dead', a.id)
  end
end
"#
    };
}

/// ARGV: id, owner, room, name, size, type, w, h, thumb, created, quota (0: none). Returns 1,
/// or 0 when the quota would be exceeded.
static CREATE_UPLOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ukey = 'user:' .. ARGV[2] .. ':upl_bytes'
local used = tonumber(redis.call('GET', ukey) or '0')
local quota = tonumber(ARGV[11])
if quota > 0 and used + tonumber(ARGV[5]) > quota then return 0 end
redis.call('HSET', 'upl:' .. ARGV[1], 'owner', ARGV[2], 'room', ARGV[3], 'name', ARGV[4], 'size', ARGV[5],
  'type', ARGV[6], 'w', ARGV[7], 'h', ARGV[8], 'thumb', ARGV[9], 'created', ARGV[10])
redis.call('ZADD', 'upl:pending', ARGV[10], ARGV[1])
redis.call('INCRBY', ukey, ARGV[5])
return 1
"#,
    )
});

/// ARGV: pending_until (ms). Condemns pending uploads created at or before it, and attached ones
/// below the first seq their room's log still keeps.
static CONDEMN: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(
        r#"
for _, id in ipairs(redis.call('ZRANGE', 'upl:pending', '-inf', ARGV[1], 'BYSCORE')) do
  redis.call('ZREM', 'upl:pending', id)
  redis.call('SADD', 'upl:dead', id)
end
for _, room in ipairs(redis.call('SMEMBERS', 'upl:rooms')) do
  local K = room_keys(room)
  local first = redis.call('ZRANGE', K.log, 0, 0, 'WITHSCORES')[2]
  local below = '+inf'
  if first then below = '(' .. first end
  local ukey = K.upl
  for _, id in ipairs(redis.call('ZRANGE', ukey, '-inf', below, 'BYSCORE')) do
    redis.call('ZREM', ukey, id)
    redis.call('SADD', 'upl:dead', id)
  end
  if redis.call('EXISTS', ukey) == 0 then redis.call('SREM', 'upl:rooms', room) end
end
return 1
"#,
    )
});

/// ARGV: id. Removes a dead upload's record and frees its bytes.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(
        r#"
local id = ARGV[1]
if redis.call('SREM', 'upl:dead', id) == 0 then return 0 end
local f = redis.call('HMGET', 'upl:' .. id, 'owner', 'size', 'room')
if f[1] then
  local left = redis.call('DECRBY', 'user:' .. f[1] .. ':upl_bytes', f[2])
  if left <= 0 then redis.call('DEL', 'user:' .. f[1] .. ':upl_bytes') end
  redis.call('ZREM', room_keys(f[3]).upl, id)
end
redis.call('ZREM', 'upl:pending', id)
redis.call('DEL', 'upl:' .. id)
return 1
"#,
    )
});

fn record(id: &str, f: &HashMap<String, String>, dead: bool) -> StoreResult<UploadRecord> {
    let num = |k: &str| -> StoreResult<u64> {
        f.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("upload record"))
    };
    let dim = |k: &str| {
        f.get(k)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
    };
    Ok(UploadRecord {
        id: id.to_owned(),
        owner: UserId(num("owner")?),
        room: RoomId(num("room")?),
        name: f.get("name").cloned().unwrap_or_default(),
        size: num("size")?,
        content_type: f.get("type").cloned().unwrap_or_default(),
        width: dim("w"),
        height: dim("h"),
        thumbnail: f.get("thumb").map(String::as_str) == Some("1"),
        created_ts: num("created")? as i64,
        seq: f.get("seq").and_then(|v| v.parse().ok()),
        dead,
    })
}

impl RedisStore {
    pub async fn create_upload(&self, r: &UploadRecord, quota_bytes: u64) -> StoreResult<()> {
        let ok: i64 = CREATE_UPLOAD
            .arg(&r.id)
            .arg(r.owner.0)
            .arg(r.room.0)
            .arg(&r.name)
            .arg(r.size)
            .arg(&r.content_type)
            .arg(r.width.unwrap_or(0))
            .arg(r.height.unwrap_or(0))
            .arg(if r.thumbnail { "1" } else { "0" })
            .arg(r.created_ts)
            .arg(quota_bytes)
            .invoke_async(&mut self.con())
            .await?;
        if ok == 1 {
            Ok(())
        } else {
            Err(quota_exceeded().into())
        }
    }

    pub async fn uploads(&self, ids: &[String]) -> StoreResult<Vec<Option<UploadRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(format!("upl:{id}")).sismember("upl:dead", id);
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.con()).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, pair) in ids.iter().zip(replies.chunks(2)) {
            let fields: HashMap<String, String> = redis::from_redis_value(pair[0].clone())?;
            let dead: bool = redis::from_redis_value(pair[1].clone())?;
            out.push(if fields.is_empty() {
                None
            } else {
                Some(record(id, &fields, dead)?)
            });
        }
        Ok(out)
    }

    pub async fn upload_usage(&self, user: UserId) -> StoreResult<u64> {
        let used: Option<i64> = self.con().get(format!("user:{user}:upl_bytes")).await?;
        Ok(used.unwrap_or(0).max(0) as u64)
    }

    pub async fn condemn_uploads(&self, pending_until: i64) -> StoreResult<()> {
        let _: i64 = CONDEMN
            .arg(pending_until)
            .invoke_async(&mut self.con())
            .await?;
        Ok(())
    }

    pub async fn dead_uploads(&self, limit: usize) -> StoreResult<Vec<String>> {
        let ids: Vec<String> = self
            .con()
            .srandmember_multiple("upl:dead", limit as isize)
            .await?;
        Ok(ids)
    }

    /// Live records (pending, and attached in every room), for an export.
    pub(super) async fn export_uploads(&self) -> StoreResult<Vec<UploadRecord>> {
        let mut con = self.con();
        let mut ids: Vec<String> = con.zrange("upl:pending", 0, -1).await?;
        let rooms: Vec<u64> = con.smembers("upl:rooms").await?;
        for room in rooms {
            let attached: Vec<String> = con.zrange(keys::uploads(room), 0, -1).await?;
            ids.extend(attached);
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            out.extend(
                self.uploads(chunk)
                    .await?
                    .into_iter()
                    .flatten()
                    .filter(|r| !r.dead),
            );
        }
        Ok(out)
    }

    /// Records from an export (into an empty store): the same keys `CREATE_UPLOAD` and
    /// `attach_uploads` write.
    pub(super) async fn import_uploads(&self, records: &[UploadRecord]) -> StoreResult<()> {
        let mut con = self.con();
        for chunk in records.chunks(500) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let key = format!("upl:{}", r.id);
                pipe.hset_multiple(
                    &key,
                    &[
                        ("owner", r.owner.0.to_string()),
                        ("room", r.room.0.to_string()),
                        ("name", r.name.clone()),
                        ("size", r.size.to_string()),
                        ("type", r.content_type.clone()),
                        ("w", r.width.unwrap_or(0).to_string()),
                        ("h", r.height.unwrap_or(0).to_string()),
                        ("thumb", if r.thumbnail { "1" } else { "0" }.to_string()),
                        ("created", r.created_ts.to_string()),
                    ],
                )
                .ignore();
                match r.seq {
                    None => {
                        pipe.zadd("upl:pending", &r.id, r.created_ts).ignore();
                    }
                    Some(seq) => {
                        pipe.hset(&key, "seq", seq).ignore();
                        pipe.zadd(keys::uploads(r.room), &r.id, seq).ignore();
                        pipe.sadd("upl:rooms", r.room.0).ignore();
                    }
                }
                pipe.incr(format!("user:{}:upl_bytes", r.owner), r.size)
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        Ok(())
    }

    pub async fn forget_upload(&self, id: &str) -> StoreResult<()> {
        let _: i64 = FORGET.arg(id).invoke_async(&mut self.con()).await?;
        Ok(())
    }
}
