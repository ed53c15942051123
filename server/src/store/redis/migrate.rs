//! The one-time move of a data set to the partitioned key layout (`docs/CLUSTER.md`).
//!
//! `store:layout` says `2` once a data set's room and dedupe keys carry their partition's hash
//! tag (`redis/keys.rs`). A node that starts on a store without it looks for keys of the layout
//! before (`room:<id>…`, `dd:<room>:…`): if there are none (a new or wiped store) it only sets
//! the marker; otherwise one node renames them while the others wait. Frames in the logs hold
//! no key names, so renaming is the whole migration. It resumes after a crash (only keys that
//! still have their old name are renamed) and runs on a standalone Redis (`RENAME` across
//! slots), before an operator moves the data to a cluster.
//!
//! Nodes of the version before partitions keep using the old names, so the migration refuses
//! to start while one of them is alive (a fresh heartbeat in `pres:nodes`): the upgrade to this
//! version stops every node first (see `docs/OPERATIONS.md`).

use super::keys;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;

/// The layout marker and its value for the partitioned layout.
const LAYOUT_KEY: &str = "store:layout";
const LAYOUT: &str = "2";
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

fn refused(detail: String) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "cannot move the data set to the partitioned key layout",
        detail,
    ))
}

/// Brings the store to the partitioned layout (see the module doc); returns once it is there.
pub(super) async fn run(
    con: &mut ConnectionManager,
    node: &str,
    now_ms: i64,
) -> redis::RedisResult<()> {
    loop {
        let layout: Option<String> = con.get(LAYOUT_KEY).await?;
        if layout.as_deref() == Some(LAYOUT) {
            return Ok(());
        }
        if !has_legacy_keys(con).await? {
            let () = con.set(LAYOUT_KEY, LAYOUT).await?;
            return Ok(());
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

/// One `SCAN` step over keys matching `pattern`: the next cursor (0 at the end) and a batch.
async fn scan(
    con: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
) -> redis::RedisResult<(u64, Vec<String>)> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000)
        .query_async(con)
        .await
}

/// Whether any key of the layout before partitions is left.
async fn has_legacy_keys(con: &mut ConnectionManager) -> redis::RedisResult<bool> {
    for pattern in LEGACY_PATTERNS {
        let mut cursor = 0u64;
        loop {
            let (next, batch) = scan(con, cursor, pattern).await?;
            if !batch.is_empty() {
                return Ok(true);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(false)
}

async fn migrate(con: &mut ConnectionManager, node: &str, now_ms: i64) -> redis::RedisResult<()> {
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
