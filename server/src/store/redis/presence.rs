//! Presence on Redis: which users are online on which node, in the users' partitions
//! (`docs/CLUSTER.md`). Keys:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `pres:nodes` | zset | node id scored by heartbeat expiry (ms); global |
//! | `pres:{t}` | hash | user → the nodes it has a connection on (space-separated), per partition |
//! | `pres:seen:{t}` | hash | user → last seen (ms), per partition |
//!
//! A change of one user is one script in the user's partition, given the live nodes (read from
//! `pres:nodes` just before): a user is online while one of its nodes is live. Cleaning up after
//! nodes that stopped takes a step per partition (their users' entries, offline announcements),
//! then removes the nodes from `pres:nodes`; a crash between the steps leaves the nodes listed
//! and expired, so the next heartbeat of any node does it again.

use super::{keys, RedisStore, PARTITIONS};
use crate::error::StoreResult;
use crate::store::Presence;
use protocol::UserId;
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

const NODES: &str = "pres:nodes";

macro_rules! lua_presence {
    () => {
        r#"
-- Tells the user's rooms (`rooms_key`: the user's `:rooms`) that it came online or went offline.
local function announce(rooms_key, user, online, seen)
  local rooms = redis.call('SMEMBERS', rooms_key)
  local frame
  if online then
    frame = '{"type":"presence","user":' .. user .. ',"online":true}'
  else
    frame = '{"type":"presence","user":' .. user .. ',"online":false,"last_seen":' .. seen .. '}'
  end
  redis.call('SPUBLISH', user_channel(user), 'P ' .. user .. ' ' .. table.concat(rooms, ',') .. '\n' .. frame)
end
-- The set of node ids in a space-separated list.
local function node_set(list)
  local set = {}
  for n in string.gmatch(list, '%S+') do set[n] = true end
  return set
end
"#
    };
}

/// KEYS: `pres:{t}`, `pres:seen:{t}`, the user's `:rooms` (one partition). ARGV: node, user,
/// now, 'up' | 'down', live nodes (space-separated).
static PRESENCE_CHANGE: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(concat!(
        lua_presence!(),
        r#"
local node, user, now, dir = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local live = node_set(ARGV[5])
local list, elsewhere = {}, false
for n in string.gmatch(redis.call('HGET', KEYS[1], user) or '', '%S+') do
  if n ~= node then
    list[#list + 1] = n
    if live[n] then elsewhere = true end
  end
end
if dir == 'up' then list[#list + 1] = node end
if #list == 0 then redis.call('HDEL', KEYS[1], user) else redis.call('HSET', KEYS[1], user, table.concat(list, ' ')) end
if not elsewhere then
  if dir == 'up' then
    announce(KEYS[3], user, true, nil)
  else
    redis.call('HSET', KEYS[2], user, now)
    announce(KEYS[3], user, false, now)
  end
end
return 1
"#
    ))
});

/// KEYS: `pres:{t}`, `pres:seen:{t}` (one partition). ARGV: live nodes (space-separated), then
/// pairs of a stopped node and when it was last alive (ms). Drops the stopped nodes from the
/// partition's users; a user left on no live node goes offline, last seen when its last node
/// was. (A user's `:rooms`, read to announce, is in the same partition.)
static DROP_NODES: LazyLock<Script> = LazyLock::new(|| {
    super::bus_script(concat!(
        lua_presence!(),
        r#"
local live = node_set(ARGV[1])
local stopped = {}
for i = 2, #ARGV, 2 do stopped[ARGV[i]] = tonumber(ARGV[i + 1]) end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local user = all[i]
  local list, seen, online = {}, nil, false
  for n in string.gmatch(all[i + 1], '%S+') do
    if stopped[n] then
      if not seen or stopped[n] > seen then seen = stopped[n] end
    else
      list[#list + 1] = n
      if live[n] then online = true end
    end
  end
  if seen then
    if #list == 0 then redis.call('HDEL', KEYS[1], user) else redis.call('HSET', KEYS[1], user, table.concat(list, ' ')) end
    if not online then
      redis.call('HSET', KEYS[2], user, seen)
      announce(user_key(user) .. ':rooms', user, false, seen)
    end
  end
end
return 1
"#
    ))
});

/// KEYS: `pres:nodes`. ARGV: node, now, ttl ms. Refreshes this node; returns 1 if it was not listed, then the
/// stopped nodes (expired) with their expiry, as pairs.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local added = redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
local out = {tostring(added)}
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[2], 'BYSCORE', 'WITHSCORES')) do
  out[#out + 1] = v
end
return out
"#,
    )
});

/// KEYS: `pres:nodes`. ARGV: pairs of node, expiry. Removes each node still listed with that expiry (a node that
/// came back since has a newer one and stays).
static FORGET_NODES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1
"#,
    )
});

impl RedisStore {
    /// Nodes whose heartbeat has not expired at `now`, space-separated.
    async fn live_nodes(&self, now: i64) -> StoreResult<String> {
        let live: Vec<String> = redis::cmd("ZRANGE")
            .arg(NODES)
            .arg(now)
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut self.con())
            .await?;
        Ok(live.join(" "))
    }

    pub async fn presence_up(&self, user: UserId, now: i64) -> StoreResult<()> {
        self.presence_change(user, now, "up").await
    }

    pub async fn presence_down(&self, user: UserId, now: i64) -> StoreResult<()> {
        self.presence_change(user, now, "down").await
    }

    async fn presence_change(&self, user: UserId, now: i64, dir: &str) -> StoreResult<()> {
        let live = self.live_nodes(now).await?;
        let p = PARTITIONS.of_user(user.0);
        let _: i64 = PRESENCE_CHANGE
            .key(keys::presence(p))
            .key(keys::last_seen(p))
            .key(keys::user_rooms(user))
            .arg(&self.node)
            .arg(user.0)
            .arg(now)
            .arg(dir)
            .arg(live)
            .invoke_async(&mut self.con())
            .await?;
        Ok(())
    }

    pub async fn presence(&self, users: &[UserId], now: i64) -> StoreResult<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let live = self.live_nodes(now).await?;
        let live: Vec<&str> = live.split(' ').filter(|n| !n.is_empty()).collect();
        let mut pipe = redis::pipe();
        for user in users {
            let p = PARTITIONS.of_user(user.0);
            pipe.hget(keys::presence(p), user.0)
                .hget(keys::last_seen(p), user.0);
        }
        let replies: Vec<Option<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(replies
            .chunks(2)
            .map(|pair| Presence {
                online: pair[0]
                    .as_deref()
                    .is_some_and(|nodes| nodes.split(' ').any(|n| live.contains(&n))),
                last_seen: pair[1].as_deref().and_then(|s| s.parse().ok()),
            })
            .collect())
    }

    pub async fn presence_heartbeat(&self, now: i64, ttl_ms: i64) -> StoreResult<bool> {
        let reply: Vec<String> = HEARTBEAT
            .key(NODES)
            .arg(&self.node)
            .arg(now)
            .arg(ttl_ms)
            .invoke_async(&mut self.con())
            .await?;
        let added = reply.first().is_some_and(|a| a == "1");
        let stopped: Vec<(String, i64)> = reply[1.min(reply.len())..]
            .chunks(2)
            .filter_map(|pair| Some((pair[0].clone(), pair.get(1)?.parse::<f64>().ok()? as i64)))
            .collect();
        if !stopped.is_empty() {
            self.drop_nodes(&stopped, now).await?;
        }
        Ok(added)
    }

    pub async fn presence_node_down(&self, now: i64) -> StoreResult<()> {
        let expiry: Option<f64> = redis::cmd("ZSCORE")
            .arg(NODES)
            .arg(&self.node)
            .query_async(&mut self.con())
            .await?;
        let mut this = vec![(self.node.clone(), now)];
        self.drop_from_partitions(&this, now).await?;
        if let Some(expiry) = expiry {
            this[0].1 = expiry as i64;
            self.forget_nodes(&this).await?;
        }
        Ok(())
    }

    /// Cleans up after nodes that stopped (with their expiry): every partition, then the list.
    async fn drop_nodes(&self, stopped: &[(String, i64)], now: i64) -> StoreResult<()> {
        self.drop_from_partitions(stopped, now).await?;
        self.forget_nodes(stopped).await
    }

    /// The partitions' step of [`Self::drop_nodes`]; `stopped` pairs a node with the time its
    /// users were last seen.
    async fn drop_from_partitions(&self, stopped: &[(String, i64)], now: i64) -> StoreResult<()> {
        let gone: HashMap<&str, i64> = stopped.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let live = self.live_nodes(now).await?;
        let live: Vec<&str> = live
            .split(' ')
            .filter(|n| !n.is_empty() && !gone.contains_key(n))
            .collect();
        let live = live.join(" ");
        for p in 0..PARTITIONS.count() {
            let mut invocation = DROP_NODES.key(keys::presence(p));
            invocation.key(keys::last_seen(p)).arg(&live);
            for (node, seen) in stopped {
                invocation.arg(node).arg(seen);
            }
            let _: i64 = invocation.invoke_async(&mut self.con()).await?;
        }
        Ok(())
    }

    async fn forget_nodes(&self, stopped: &[(String, i64)]) -> StoreResult<()> {
        let mut invocation = FORGET_NODES.key(NODES);
        for (node, expiry) in stopped {
            invocation.arg(node).arg(expiry);
        }
        let _: i64 = invocation.invoke_async(&mut self.con()).await?;
        Ok(())
    }
}
