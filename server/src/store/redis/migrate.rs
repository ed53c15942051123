//! The one-time moves of a data set to the partitioned key layout (`docs/CLUSTER.md`).
//!
//! `store:layout` says which layout a data set is in: missing before partitions, `2` once a
//! room's keys and dedupe keys carry their partition's hash tag, `3` once a user's keys, the
//! uploads and presence do too (`redis/keys.rs`). A node that starts on a store below `3` looks
//! for keys of the layouts before (`room:<id>…`, `dd:<room>:…`; `user:<id>…`, `upl:<id>`,
//! `upl:pending`, `upl:dead`, `upl:rooms`, `pres:node:<node>`, `pres:seen`): if there are none
//! (a new or wiped store) it only sets the marker; otherwise one node moves them while the
//! others wait, each layout step in turn. Frames in the logs hold no key names, so moving keys
//! is the whole migration: renames, except that the sets of all uploads and presence are split
//! by partition, a user's upload bytes are counted again per upload from the records, and
//! presence becomes a hash per partition (user → nodes). It resumes after a crash (only keys
//! that still have their old name are moved, each in one script with what it adds) and runs
//! on a standalone Redis (keys of many slots per script), before an operator moves the data to
//! a cluster.
//!
//! Nodes of the version before partitions keep using the old names, so the migration refuses
//! to start while one of them is alive (a fresh heartbeat in `pres:nodes`): the upgrade to this
//! version stops every node first (see `docs/OPERATIONS.md`).

use super::conn::{Conn, ScanNode};
use super::{keys, PARTITIONS};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// The layout marker and its value for the partitioned layout.
const LAYOUT_KEY: &str = "store:layout";
const LAYOUT: &str = "3";
/// Held by the node that migrates; refreshed while it works.
const LOCK_KEY: &str = "store:migrating";
const LOCK_MS: u64 = 30_000;
/// Keys renamed per script call.
const BATCH: usize = 512;

/// ARGV: pairs of old, new name. Renames each old key that still exists. Returns how many.
static RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('EXISTS', ARGV[i]) == 1 then
    redis.call('RENAME', ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
"#,
    )
});

/// ARGV: old key, new key, the owner's upload bytes key, id, `upl:legacy` entry ('' for none:
/// the id names its partition) — per upload record, repeated. Renames the record, counts its
/// bytes for its owner and lists an id that does not name its partition.
static MOVE_UPLOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for i = 1, #ARGV, 5 do
  local size = redis.call('HGET', ARGV[i], 'size')
  if size then
    redis.call('HSET', ARGV[i + 2], ARGV[i + 3], size)
    if ARGV[i + 4] ~= '' then redis.call('HSET', 'upl:legacy', ARGV[i + 3], ARGV[i + 4]) end
    redis.call('RENAME', ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
"#,
    )
});

/// ARGV: the old set, its kind ('zset' or 'set'), then triples of member, new set, score (zset).
/// Moves each member still in the old set to its partition's set.
static SPLIT_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for i = 3, #ARGV, 3 do
  if ARGV[2] == 'zset' then
    if redis.call('ZREM', ARGV[1], ARGV[i]) == 1 then redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i]) n = n + 1 end
  else
    if redis.call('SREM', ARGV[1], ARGV[i]) == 1 then redis.call('SADD', ARGV[i + 1], ARGV[i]) n = n + 1 end
  end
end
return n
"#,
    )
});

/// ARGV: an old `pres:node:<node>` set, the node, then pairs of user, its partition's
/// `pres:{t}`. Adds the node to each user's list, then deletes the old set.
static MOVE_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 3, #ARGV, 2 do
  local list = redis.call('HGET', ARGV[i + 1], ARGV[i])
  if not list then
    redis.call('HSET', ARGV[i + 1], ARGV[i], ARGV[2])
  elseif not string.find(' ' .. list .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then
    redis.call('HSET', ARGV[i + 1], ARGV[i], list .. ' ' .. ARGV[2])
  end
end
redis.call('DEL', ARGV[1])
return 1
"#,
    )
});

/// ARGV: pairs of user, its partition's `pres:seen:{t}`, last seen. Then deletes `pres:seen`.
static MOVE_SEEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 1, #ARGV, 3 do redis.call('HSET', ARGV[i + 1], ARGV[i], ARGV[i + 2]) end
redis.call('DEL', 'pres:seen')
return 1
"#,
    )
});

fn refused(detail: String) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "cannot move the data set to the partitioned key layout",
        detail,
    ))
}

/// Brings the store to the partitioned layout (see the module doc); returns once it is there.
pub(super) async fn run(con: &mut Conn, node: &str, now_ms: i64) -> redis::RedisResult<()> {
    loop {
        let layout: Option<String> = con.get(LAYOUT_KEY).await?;
        if layout.as_deref() == Some(LAYOUT) {
            return Ok(());
        }
        if !has_legacy_keys(con).await? {
            let () = con.set(LAYOUT_KEY, LAYOUT).await?;
            return Ok(());
        }
        if matches!(con, Conn::Cluster(_)) {
            // The renames cross slots: a cluster refuses them.
            return Err(refused(
                "the data set holds keys of an older layout; start this version once on a standalone Redis with that data (it moves them), then move the data to the cluster (docs/CLUSTER.md)".into(),
            ));
        }
        let locked: bool = redis::cmd("SET")
            .arg(LOCK_KEY)
            .arg(node)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_MS)
            .query_async::<Option<String>>(con)
            .await?
            .is_some();
        if !locked {
            // Another node migrates: wait for it (or for its lock to lapse, then take over).
            tracing::info!(
                "another node is moving the data set to the partitioned layout; waiting"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let result = migrate(con, node, now_ms).await;
        let _: redis::RedisResult<i64> = con.del(LOCK_KEY).await;
        return result;
    }
}

/// Key patterns of the layout before partitions.
const LEGACY_PATTERNS: [&str; 2] = ["room:[0-9]*", "dd:[0-9]*"];
/// Key patterns of layout 2 (users, upload records, node presence) and its single keys.
const LAYOUT2_PATTERNS: [&str; 3] = ["user:[0-9]*", "upl:[0-9a-f]*", "pres:node:*"];
const LAYOUT2_KEYS: [&str; 4] = ["upl:pending", "upl:dead", "upl:rooms", "pres:seen"];

/// One `SCAN` step over keys matching `pattern` (on the one Redis the migration runs on): the
/// next cursor (0 at the end) and a batch.
async fn scan(
    con: &mut Conn,
    cursor: u64,
    pattern: &str,
) -> redis::RedisResult<(u64, Vec<String>)> {
    con.scan(&ScanNode::Single, cursor, pattern, 1000).await
}

/// Whether any key of the layouts before is left (on every master of a cluster).
async fn has_legacy_keys(con: &mut Conn) -> redis::RedisResult<bool> {
    let singles: i64 = con.exists(&LAYOUT2_KEYS[..]).await?;
    if singles > 0 {
        return Ok(true);
    }
    for node in con.scan_nodes().await? {
        for pattern in LEGACY_PATTERNS.into_iter().chain(LAYOUT2_PATTERNS) {
            let mut cursor = 0u64;
            loop {
                let (next, batch) = con.scan(&node, cursor, pattern, 1000).await?;
                if batch.iter().any(|key| is_legacy(key)) {
                    return Ok(true);
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
    }
    Ok(false)
}

async fn migrate(con: &mut Conn, node: &str, now_ms: i64) -> redis::RedisResult<()> {
    // Under the lock, and the marker still missing: no node of this version serves yet, so a
    // live heartbeat is a node of the version before.
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg("pres:nodes")
        .arg(now_ms)
        .arg("+inf")
        .arg("BYSCORE")
        .query_async(con)
        .await?;
    if !live.is_empty() {
        return Err(refused(format!(
            "{} node(s) of an older version are running on this Redis; stop every node, then start this version (it renames the keys once)",
            live.len()
        )));
    }
    tracing::warn!("moving the data set to the partitioned key layout (once)");
    let mut renamed = 0;
    // Layout 1 → 2: a room's keys and its dedupe keys.
    for pattern in LEGACY_PATTERNS {
        let mut cursor = 0u64;
        loop {
            let (next, batch) = scan(con, cursor, pattern).await?;
            let pairs: Vec<(String, String)> = batch
                .into_iter()
                .filter_map(|old| new_name(&old).map(|new| (old, new)))
                .collect();
            for chunk in pairs.chunks(BATCH) {
                let mut invocation = RENAME.prepare_invoke();
                for (old, new) in chunk {
                    invocation.arg(old).arg(new);
                }
                let n: i64 = invocation.invoke_async(con).await?;
                renamed += n;
                let _: bool = con.pexpire(LOCK_KEY, LOCK_MS as i64).await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    // Layout 2 → 3: uploads (the sets by partition before the records: their members' rooms are
    // read from the records' old names), then users, then presence.
    renamed += split_upload_sets(con).await?;
    renamed += move_upload_records(con).await?;
    let _: bool = con.pexpire(LOCK_KEY, LOCK_MS as i64).await?;
    renamed += move_users(con).await?;
    renamed += move_presence(con).await?;
    let _: bool = con.pexpire(LOCK_KEY, LOCK_MS as i64).await?;
    let owner: Option<String> = con.get(LOCK_KEY).await?;
    if owner.as_deref() != Some(node) {
        return Err(refused(
            "lost the migration lock; retrying at the next start".into(),
        ));
    }
    let () = con.set(LAYOUT_KEY, LAYOUT).await?;
    tracing::warn!(
        keys = renamed,
        "the data set is in the partitioned key layout"
    );
    Ok(())
}

/// Whether `key` is of a layout before (a key of the current layout that a pattern of
/// [`LEGACY_PATTERNS`] or [`LAYOUT2_PATTERNS`] matches is not).
fn is_legacy(key: &str) -> bool {
    new_name(key).is_some()
        || old_upload_id(key).is_some()
        || old_user(key).is_some()
        || key.starts_with("pres:node:")
}

/// The id of an upload record of layout 2, `upl:<hex id>`.
fn old_upload_id(key: &str) -> Option<&str> {
    let id = key.strip_prefix("upl:")?;
    (!id.is_empty() && id != "dead" && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// User id and suffix (`""`, `":rooms"`, …) of a user key of layout 2, `user:<id>…`.
fn old_user(key: &str) -> Option<(u64, &str)> {
    let rest = key.strip_prefix("user:")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse().ok()?;
    let suffix = &rest[digits..];
    (suffix.is_empty() || suffix.starts_with(':')).then_some((id, suffix))
}

/// Every key matching `pattern` (one `SCAN`; the keys are moved after it, so none is missed).
async fn scan_all(con: &mut Conn, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut all = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch) = scan(con, cursor, pattern).await?;
        all.extend(batch);
        cursor = next;
        if cursor == 0 {
            return Ok(all);
        }
    }
}

/// The room of a layout-2 upload record (`None` without one).
async fn old_upload_room(con: &mut Conn, id: &str) -> redis::RedisResult<Option<u64>> {
    con.hget(format!("upl:{id}"), "room").await
}

/// `upl:pending`, `upl:dead` and `upl:rooms` split into their partitions' sets.
async fn split_upload_sets(con: &mut Conn) -> redis::RedisResult<i64> {
    let mut moved = 0;
    // Pending and dead: a member's partition is its record's room's (or, for a dead id whose
    // record is gone, the one its id names: forgetting finds it there).
    for (old, kind) in [("upl:pending", "zset"), ("upl:dead", "set")] {
        let members: Vec<(String, f64)> = if kind == "zset" {
            con.zrange_withscores(old, 0, -1).await?
        } else {
            let ids: Vec<String> = con.smembers(old).await?;
            ids.into_iter().map(|id| (id, 0.0)).collect()
        };
        for chunk in members.chunks(BATCH) {
            let mut invocation = SPLIT_SET.prepare_invoke();
            invocation.arg(old).arg(kind);
            for (id, score) in chunk {
                let p = match old_upload_room(con, id).await? {
                    Some(room) => PARTITIONS.of_room(room),
                    None => keys::upload_partition(id).unwrap_or(0),
                };
                let new = if kind == "zset" {
                    keys::uploads_pending(p)
                } else {
                    keys::uploads_dead(p)
                };
                invocation.arg(id).arg(new).arg(*score as i64);
            }
            let n: i64 = invocation.invoke_async(con).await?;
            moved += n;
        }
    }
    let rooms: Vec<u64> = con.smembers("upl:rooms").await?;
    for chunk in rooms.chunks(BATCH) {
        let mut invocation = SPLIT_SET.prepare_invoke();
        invocation.arg("upl:rooms").arg("set");
        for room in chunk {
            invocation
                .arg(room)
                .arg(keys::uploads_rooms(PARTITIONS.of_room(*room)))
                .arg(0);
        }
        let n: i64 = invocation.invoke_async(con).await?;
        moved += n;
    }
    Ok(moved)
}

/// Upload records renamed into their room's partition, their bytes counted for their owner.
async fn move_upload_records(con: &mut Conn) -> redis::RedisResult<i64> {
    let mut moved = 0;
    let ids: Vec<String> = scan_all(con, "upl:[0-9a-f]*")
        .await?
        .iter()
        .filter_map(|key| old_upload_id(key).map(str::to_owned))
        .collect();
    for chunk in ids.chunks(BATCH) {
        let mut invocation = MOVE_UPLOAD.prepare_invoke();
        for id in chunk {
            let fields: (Option<u64>, Option<u64>) = redis::cmd("HMGET")
                .arg(format!("upl:{id}"))
                .arg("room")
                .arg("owner")
                .query_async(con)
                .await?;
            let (Some(room), Some(owner)) = fields else {
                continue;
            };
            let p = PARTITIONS.of_room(room);
            let legacy = if keys::upload_partition(id) == Some(p) {
                String::new()
            } else {
                room.to_string()
            };
            invocation
                .arg(format!("upl:{id}"))
                .arg(keys::upload(p, id))
                .arg(keys::user_upload_bytes(owner))
                .arg(id)
                .arg(legacy);
        }
        let n: i64 = invocation.invoke_async(con).await?;
        moved += n;
    }
    Ok(moved)
}

/// A user's keys renamed into the user's partition; the byte counter of layout 2 goes (the
/// records counted their bytes per upload).
async fn move_users(con: &mut Conn) -> redis::RedisResult<i64> {
    let mut moved = 0;
    let old: Vec<(String, String)> = scan_all(con, "user:[0-9]*")
        .await?
        .into_iter()
        .filter_map(|key| {
            let (id, suffix) = old_user(&key)?;
            let new = format!("{}{suffix}", keys::user(id));
            Some((key, new))
        })
        .collect();
    let (counters, renames): (Vec<_>, Vec<_>) = old
        .into_iter()
        .partition(|(key, _)| key.ends_with(":upl_bytes"));
    for chunk in renames.chunks(BATCH) {
        let mut invocation = RENAME.prepare_invoke();
        for (old, new) in chunk {
            invocation.arg(old).arg(new);
        }
        let n: i64 = invocation.invoke_async(con).await?;
        moved += n;
    }
    for chunk in counters.chunks(BATCH) {
        let keys: Vec<&String> = chunk.iter().map(|(old, _)| old).collect();
        let _: i64 = con.del(keys).await?;
    }
    Ok(moved)
}

/// `pres:node:<node>` sets and `pres:seen` into the users' partitions.
async fn move_presence(con: &mut Conn) -> redis::RedisResult<i64> {
    let mut moved = 0;
    for key in scan_all(con, "pres:node:*").await? {
        let Some(node) = key.strip_prefix("pres:node:") else {
            continue;
        };
        let users: Vec<u64> = con.smembers(&key).await?;
        let mut invocation = MOVE_NODE.prepare_invoke();
        invocation.arg(&key).arg(node);
        for user in &users {
            invocation
                .arg(user)
                .arg(keys::presence(PARTITIONS.of_user(*user)));
        }
        let _: i64 = invocation.invoke_async(con).await?;
        moved += 1;
    }
    let seen: HashMap<u64, String> = con.hgetall("pres:seen").await?;
    if con.exists("pres:seen").await? {
        let mut invocation = MOVE_SEEN.prepare_invoke();
        for (user, at) in &seen {
            invocation
                .arg(user)
                .arg(keys::last_seen(PARTITIONS.of_user(*user)))
                .arg(at);
        }
        let _: i64 = invocation.invoke_async(con).await?;
        moved += 1;
    }
    Ok(moved)
}

/// The partitioned name of a key of the layout before, `None` for any other key.
fn new_name(old: &str) -> Option<String> {
    if let Some(rest) = old.strip_prefix("room:") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id: u64 = rest[..digits].parse().ok()?;
        let suffix = &rest[digits..];
        return (suffix.is_empty() || suffix.starts_with(':'))
            .then(|| format!("{}{suffix}", keys::room(id)));
    }
    if old.starts_with("dd:") && !old.starts_with("dd:{") {
        let (room, sender, client_id) = keys::parse_dedupe(old)?;
        return Some(keys::dedupe(room, sender, client_id));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_2_names_are_told_apart() {
        assert_eq!(old_upload_id("upl:00ff"), Some("00ff"));
        assert_eq!(old_user("user:12:rooms"), Some((12, ":rooms")));
        assert_eq!(old_user("user:12"), Some((12, "")));
        for current in [
            keys::user(12),
            keys::user_rooms(12),
            keys::upload(3, "00ff"),
            keys::uploads_dead(3),
            keys::uploads_pending(3),
            "upl:dead".into(),
            "upl:legacy".into(),
            keys::presence(3),
        ] {
            assert_eq!(old_upload_id(&current), None, "{current}");
            assert_eq!(old_user(&current), None, "{current}");
        }
        assert!(is_legacy("pres:node:abc"));
        assert!(!is_legacy(&keys::last_seen(3)));
    }

    #[test]
    fn old_names_map_to_partitioned_ones() {
        assert_eq!(new_name("room:7").as_deref(), Some(keys::room(7).as_str()));
        assert_eq!(new_name("room:7:log"), Some(keys::log(7)));
        assert_eq!(new_name("room:12:upl"), Some(keys::uploads(12)));
        assert_eq!(new_name("dd:7:3:a:b"), Some(keys::dedupe(7, 3, "a:b")));
        for other in [
            keys::room(7),
            keys::dedupe(7, 3, "x"),
            "rooms:public".into(),
            "room:x".into(),
            "room:7x".into(),
        ] {
            assert_eq!(new_name(&other), None, "{other}");
        }
    }
}
