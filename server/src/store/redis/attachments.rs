//! Upload records on Redis (see `store/uploads.rs` for their life cycle). An upload's keys are
//! in its room's partition (`{t}`, see `keys.rs` and `docs/CLUSTER.md`), so attaching it is part
//! of the message's append, in one slot; the owner's byte count is in the owner's. Keys:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `upl:{t}:{id}` | hash | `owner`, `room`, `name`, `size`, `type`, `w`, `h` (0: not an image), `thumb` (`1`/`0`), `created` (ms), `seq` once attached |
//! | `upl:pending:{t}` | zset | ids of the partition's uploads not attached yet, scored by `created` |
//! | `upl:dead:{t}` | set | ids whose files the collector is to delete |
//! | `room:{t}:{id}:upl` (see `keys.rs`) | zset | ids attached to the room's messages, scored by the message's seq |
//! | `upl:rooms:{t}` | set | the partition's rooms with attached uploads (the collector checks their retention) |
//! | `user:{t}:{id}:upl_bytes` | hash | upload id → bytes, for each upload the user stores (usage: the sum) |
//! | `upl:legacy` | hash | id → room, for ids that do not name their partition (made before it) |
//!
//! An upload id ends with its room's id mod 65536 in four hex digits (`attachments::new_id`),
//! which names the partition ([`keys::upload_partition`]); ids from before are found through
//! `upl:legacy`, which the migration fills.
//!
//! Attaching happens inside the append script (`APPEND_MESSAGE` in `redis.rs` calls
//! `attach_uploads`), and a delete condemns the message's uploads inside `CHANGE_MESSAGE`
//! (`condemn_attachments`): a message and its uploads change in one atomic step.
//!
//! Steps in two slots, each safe to repeat: creating writes the record (pending), then counts
//! its bytes for the owner (refused past the quota: the record goes again). A crash between
//! leaves a pending record nobody holds the id of, condemned after the grace period and then
//! forgotten; counting by id means nothing is ever counted twice or freed twice. Forgetting
//! reads the dead record, uncounts it for the owner, then removes it.

use super::{corrupt, keys, RedisStore, PARTITIONS};
use crate::error::StoreResult;
use crate::store::{quota_exceeded, UploadRecord};
use protocol::{RoomId, UserId};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Lua helpers for the message scripts of `redis.rs`. `attach_uploads` takes the keys
/// `APPEND_MESSAGE` declares after the dedupe key: the partition's pending uploads (`KEYS[8]`),
/// its rooms with uploads (`KEYS[9]`), then each upload's record in the order of `ids`;
/// `condemn_attachments` the partition's dead uploads (`KEYS[7]` of `CHANGE_MESSAGE`).
macro_rules! lua_uploads {
    () => {
        r#"
-- Attaches the uploads `ids` (space-separated hex, '' for none) to message `seq` of `room`, if
-- every one is a pending upload of `sender` for `room`. Returns 'attachment_not_found' (and
-- changes nothing) otherwise, nil when done.
local function attach_uploads(K, sender, seq, ids)
  if ids == '' then return nil end
  local list = {}
  for id in string.gmatch(ids, '%x+') do
    local rkey = KEYS[9 + #list + 1]
    if not rkey or not redis.call('ZSCORE', KEYS[8], id) then return 'attachment_not_found' end
    local f = redis.call('HMGET', rkey, 'owner', 'room')
    if f[1] ~= sender or f[2] ~= K.id then return 'attachment_not_found' end
    list[#list + 1] = {id, rkey}
  end
  for _, u in ipairs(list) do
    redis.call('ZREM', KEYS[8], u[1])
    redis.call('HSET', u[2], 'seq', seq)
    redis.call('ZADD', K.upl, seq, u[1])
  end
  redis.call('SADD', KEYS[9], K.id)
  return nil
end
-- The uploads of a deleted message (its decoded `attachments`, may be nil) are dead.
local function condemn_attachments(K, list)
  if type(list) ~= 'table' then return end
  for _, a in ipairs(list) do
    redis.call('ZREM', K.upl, a.id)
    redis.call('SADD', KEYS[7], a.id)
  end
end
"#
    };
}

/// KEYS: the record, the partition's pending uploads. ARGV: id, owner, room, name, size, type,
/// w, h, thumb, created. Writes the record as pending.
static CREATE_UPLOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'room', ARGV[3], 'name', ARGV[4], 'size', ARGV[5],
  'type', ARGV[6], 'w', ARGV[7], 'h', ARGV[8], 'thumb', ARGV[9], 'created', ARGV[10])
redis.call('ZADD', KEYS[2], ARGV[10], ARGV[1])
return 1
"#,
    )
});

/// KEYS: the owner's byte counts. ARGV: id, size, quota (0: none). Counts the upload's bytes,
/// once; returns 0 (counting nothing) when the quota would be exceeded.
static COUNT_UPLOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local quota = tonumber(ARGV[3])
if quota > 0 then
  local used = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do used = used + tonumber(v) end
  if used + tonumber(ARGV[2]) > quota then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// KEYS: the partition's pending, dead and rooms-with-uploads keys. ARGV: pending_until (ms).
/// Condemns the partition's pending uploads created at or before it, and attached ones below
/// the first seq their room's log still keeps (the rooms' `:log` and `:upl` are in the
/// partition too).
static CONDEMN: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(
        r#"
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE')) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('SADD', KEYS[2], id)
end
for _, room in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local K = room_keys(room)
  local first = redis.call('ZRANGE', K.log, 0, 0, 'WITHSCORES')[2]
  local below = '+inf'
  if first then below = '(' .. first end
  local ukey = K.upl
  for _, id in ipairs(redis.call('ZRANGE', ukey, '-inf', below, 'BYSCORE')) do
    redis.call('ZREM', ukey, id)
    redis.call('SADD', KEYS[2], id)
  end
  if redis.call('EXISTS', ukey) == 0 then redis.call('SREM', KEYS[3], room) end
end
return 1
"#,
    )
});

/// KEYS: the record, the partition's dead and pending uploads, the room's `:upl`. ARGV: id.
/// Removes a dead upload's record (its bytes were uncounted just before).
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id = ARGV[1]
if redis.call('SREM', KEYS[2], id) == 0 then return 0 end
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', KEYS[1])
return 1
"#,
    )
});

/// Where an upload of `room` with this id is listed besides its partition: `upl:legacy` for an id
/// that does not name the room's partition.
fn names_partition(id: &str, room: RoomId) -> bool {
    keys::upload_partition(id) == Some(PARTITIONS.of_room(room.0))
}

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
        let p = PARTITIONS.of_room(r.room.0);
        if !names_partition(&r.id, r.room) {
            let _: i64 = self
                .con()
                .hset(keys::UPLOADS_LEGACY, &r.id, r.room.0)
                .await?;
        }
        let record = keys::upload(p, &r.id);
        let _: i64 = CREATE_UPLOAD
            .key(&record)
            .key(keys::uploads_pending(p))
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
            .invoke_async(&mut self.con())
            .await?;
        self.hook(super::Step::UploadRecorded)?;
        let ok: i64 = COUNT_UPLOAD
            .key(keys::user_upload_bytes(r.owner))
            .arg(&r.id)
            .arg(r.size)
            .arg(quota_bytes)
            .invoke_async(&mut self.con())
            .await?;
        if ok == 1 {
            return Ok(());
        }
        let _: i64 = redis::pipe()
            .atomic()
            .zrem(keys::uploads_pending(p), &r.id)
            .del(&record)
            .query_async::<Vec<i64>>(&mut self.con())
            .await?
            .len() as i64;
        Err(quota_exceeded().into())
    }

    /// The partition each id's record is in, by the id, or `upl:legacy` for those not found there.
    async fn upload_partitions(&self, ids: &[String]) -> StoreResult<Vec<Option<u16>>> {
        let legacy: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(keys::UPLOADS_LEGACY)
            .arg(ids)
            .query_async(&mut self.con())
            .await?;
        Ok(ids
            .iter()
            .zip(legacy)
            .map(|(id, room)| match room {
                Some(room) => Some(PARTITIONS.of_room(room)),
                None => keys::upload_partition(id),
            })
            .collect())
    }

    pub async fn uploads(&self, ids: &[String]) -> StoreResult<Vec<Option<UploadRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = self
            .uploads_at(ids, ids.iter().map(|id| keys::upload_partition(id)))
            .await?;
        // Not where the id points: an id from before partitioned uploads, or unknown.
        let missing: Vec<usize> = (0..ids.len()).filter(|i| out[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let rooms: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(keys::UPLOADS_LEGACY)
            .arg(missing.iter().map(|i| &ids[*i]).collect::<Vec<_>>())
            .query_async(&mut self.con())
            .await?;
        let (found, parts): (Vec<usize>, Vec<Option<u16>>) = missing
            .into_iter()
            .zip(rooms)
            .filter_map(|(i, room)| Some((i, Some(PARTITIONS.of_room(room?)))))
            .unzip();
        if found.is_empty() {
            return Ok(out);
        }
        let again: Vec<String> = found.iter().map(|i| ids[*i].clone()).collect();
        let records = self.uploads_at(&again, parts.into_iter()).await?;
        for (i, record) in found.into_iter().zip(records) {
            out[i] = record;
        }
        Ok(out)
    }

    /// The records of `ids` in the given partitions (`None` for no partition).
    async fn uploads_at(
        &self,
        ids: &[String],
        parts: impl Iterator<Item = Option<u16>>,
    ) -> StoreResult<Vec<Option<UploadRecord>>> {
        let parts: Vec<Option<u16>> = parts.collect();
        let mut pipe = redis::pipe();
        for (id, p) in ids.iter().zip(&parts) {
            if let Some(p) = p {
                pipe.hgetall(keys::upload(*p, id))
                    .sismember(keys::uploads_dead(*p), id);
            }
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.con()).await?;
        let mut replies = replies.chunks(2);
        let mut out = Vec::with_capacity(ids.len());
        for (id, p) in ids.iter().zip(&parts) {
            let (Some(_), Some(pair)) = (p, p.and_then(|_| replies.next())) else {
                out.push(None);
                continue;
            };
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
        let sizes: Vec<u64> = self.con().hvals(keys::user_upload_bytes(user)).await?;
        Ok(sizes.into_iter().sum())
    }

    pub async fn condemn_uploads(&self, pending_until: i64) -> StoreResult<()> {
        for p in 0..PARTITIONS.count() {
            let _: i64 = CONDEMN
                .key(keys::uploads_pending(p))
                .key(keys::uploads_dead(p))
                .key(keys::uploads_rooms(p))
                .arg(pending_until)
                .invoke_async(&mut self.con())
                .await?;
        }
        Ok(())
    }

    pub async fn dead_uploads(&self, limit: usize) -> StoreResult<Vec<String>> {
        let mut pipe = redis::pipe();
        for p in 0..PARTITIONS.count() {
            pipe.srandmember_multiple(keys::uploads_dead(p), limit as isize);
        }
        let all: Vec<Vec<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(all.into_iter().flatten().take(limit).collect())
    }

    /// Live records (pending, and attached in every room), for an export.
    pub(super) async fn export_uploads(&self) -> StoreResult<Vec<UploadRecord>> {
        let mut con = self.con();
        let mut ids: Vec<String> = Vec::new();
        for p in 0..PARTITIONS.count() {
            let pending: Vec<String> = con.zrange(keys::uploads_pending(p), 0, -1).await?;
            ids.extend(pending);
            let rooms: Vec<u64> = con.smembers(keys::uploads_rooms(p)).await?;
            for room in rooms {
                let attached: Vec<String> = con.zrange(keys::uploads(room), 0, -1).await?;
                ids.extend(attached);
            }
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

    /// Records from an export (into an empty store): the same keys `CREATE_UPLOAD`,
    /// `COUNT_UPLOAD` and `attach_uploads` write.
    pub(super) async fn import_uploads(&self, records: &[UploadRecord]) -> StoreResult<()> {
        let mut con = self.con();
        for chunk in records.chunks(500) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let p = PARTITIONS.of_room(r.room.0);
                let key = keys::upload(p, &r.id);
                if !names_partition(&r.id, r.room) {
                    pipe.hset(keys::UPLOADS_LEGACY, &r.id, r.room.0).ignore();
                }
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
                        pipe.zadd(keys::uploads_pending(p), &r.id, r.created_ts)
                            .ignore();
                    }
                    Some(seq) => {
                        pipe.hset(&key, "seq", seq).ignore();
                        pipe.zadd(keys::uploads(r.room), &r.id, seq).ignore();
                        pipe.sadd(keys::uploads_rooms(p), r.room.0).ignore();
                    }
                }
                pipe.hset(keys::user_upload_bytes(r.owner), &r.id, r.size)
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        Ok(())
    }

    pub async fn forget_upload(&self, id: &str) -> StoreResult<()> {
        let ids = [id.to_owned()];
        let Some(Some(p)) = self.upload_partitions(&ids).await?.pop() else {
            return Ok(());
        };
        let record = keys::upload(p, id);
        let (dead, fields): (bool, HashMap<String, String>) = redis::pipe()
            .sismember(keys::uploads_dead(p), id)
            .hgetall(&record)
            .query_async(&mut self.con())
            .await?;
        if !dead {
            return Ok(());
        }
        let owner = fields.get("owner").and_then(|v| v.parse::<u64>().ok());
        let room = fields.get("room").and_then(|v| v.parse::<u64>().ok());
        if let Some(owner) = owner {
            let _: i64 = self.con().hdel(keys::user_upload_bytes(owner), id).await?;
        }
        self.hook(super::Step::UploadUncounted)?;
        let _: i64 = FORGET
            .key(&record)
            .key(keys::uploads_dead(p))
            .key(keys::uploads_pending(p))
            .key(room.map_or_else(|| record.clone(), keys::uploads))
            .arg(id)
            .invoke_async(&mut self.con())
            .await?;
        let _: i64 = self.con().hdel(keys::UPLOADS_LEGACY, id).await?;
        Ok(())
    }
}
