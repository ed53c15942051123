//! The cache's one long upgrade: message ids counting down in milliseconds and prefix indexes
//! of 1 to 8 characters (what a one-step migration 0007 did until it took 12 s at 100k and
//! 142 s at 1M cached messages on the first start after the update, with nothing on screen).
//!
//! Why the layout: `NEXT_ID` in `cache.rs` and `search.rs` (local search in the milliseconds at
//! a million messages). What it does to a cache of the layout before (migration 0006: ids
//! `ts << 20`, prefix indexes 1–4):
//!
//! 1. **begin** (one transaction): drops the old FTS table and its triggers, creates the new
//!    (empty) one, and writes the id map: in `(ts, room, seq)` order each message takes the
//!    larger of its ts and the previous one's + 1 (a running maximum), and its new id is
//!    `ID_BASE` minus that — the same numbers the one-step migration gave.
//! 2. **renumber**: moves each message to its new id, a chunk of ids per transaction. When a
//!    new id could meet an old one not yet moved (only with timestamps in the first days of
//!    1970, i.e. in tests), the chunks move to the new id negated, and a second pass
//!    (**unnegate**) turns them positive.
//! 3. **index**: adds the messages to the new FTS index, a chunk per transaction, in id order.
//! 4. **finish** (one transaction): the FTS triggers, and the bookkeeping tables are dropped.
//!
//! Every transaction also writes where it stands into `cache_upgrade`, so an upgrade stopped
//! anywhere (crash, power cut, the user quits) resumes where the last chunk committed, and a
//! chunk that did not commit did nothing. Progress is counted in units of work (a message
//! moved counts 1 per pass, a message indexed 2, about their cost) and reported after each
//! chunk.
//!
//! Nothing else writes to the cache while this runs: [`super::Cache::open`] finishes it before
//! it returns, and the app opens its backend only after it (`crate::startup`), showing the
//! progress meanwhile. A cache created new passes through it in a moment (no messages).

use super::{Cache, ID_BASE};
use crate::error::Result;
use sqlx::{Sqlite, Transaction};

/// Messages per transaction: small enough that progress moves every few tens of milliseconds
/// and a crash loses little, large enough that commits do not dominate.
const CHUNK: i64 = 5_000;

/// How far the upgrade is, in units of work (`done` of `total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

impl Progress {
    /// Whole percent, 0 to 100.
    pub fn percent(&self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        u8::try_from((self.done.min(self.total) * 100) / self.total).unwrap_or(100)
    }
}

/// The FTS table of the current layout (content from `messages.plain`, rows by message id).
const CREATE_FTS: &str = "CREATE VIRTUAL TABLE messages_fts USING fts5 (
    plain,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3 4 5 6 7 8'
)";

/// How to tell the current layout from its `sqlite_master.sql`.
const CURRENT_PREFIXES: &str = "prefix = '1 2 3 4 5 6 7 8'";

const CREATE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, plain) VALUES (new.id, new.plain);
END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, plain) VALUES ('delete', old.id, old.plain);
END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF plain ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, plain) VALUES ('delete', old.id, old.plain);
    INSERT INTO messages_fts (rowid, plain) VALUES (new.id, new.plain);
END",
];

/// The new id of every message (`old` the id it has now): the running maximum described above.
const FILL_ID_MAP: &str = "INSERT INTO upgrade_ids (old, new)
    SELECT old, ?1 - (i + max(t - i) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING))
    FROM (
        SELECT id AS old, min(max(ts, 0), ?1 - 1) AS t,
               row_number() OVER (ORDER BY ts, room, seq) AS i
        FROM messages
    )
    ORDER BY old";

/// Where an upgrade stands (the one row of `cache_upgrade`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct State {
    /// `renumber`, `unnegate` or `index`.
    step: String,
    /// The last id the step has handled (it goes on above it).
    cursor: i64,
    /// Renumber to negated ids first (a new id could meet an old one).
    negate: bool,
    done: i64,
    total: i64,
}

impl State {
    fn progress(&self) -> Progress {
        Progress {
            done: u64::try_from(self.done).unwrap_or(0),
            total: u64::try_from(self.total).unwrap_or(0),
        }
    }
}

impl Cache {
    /// Whether [`Cache::upgrade`] has work to do (a cache of an older layout, or an upgrade
    /// that was stopped).
    pub async fn needs_upgrade(&self) -> Result<bool> {
        if self.upgrade_state().await?.is_some() {
            return Ok(true);
        }
        let fts: Option<String> =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(!fts.is_some_and(|sql| sql.contains(CURRENT_PREFIXES)))
    }

    /// Brings the cache to the current layout (see the module doc), resuming a stopped
    /// upgrade, and calls `report` after every step. Returns at once when there is nothing
    /// to do (without reporting).
    pub async fn upgrade(&self, mut report: impl FnMut(Progress) + Send) -> Result<()> {
        if !self.needs_upgrade().await? {
            return Ok(());
        }
        let mut state = match self.upgrade_state().await? {
            Some(state) => state,
            None => {
                report(Progress { done: 0, total: 1 });
                self.begin_upgrade().await?
            }
        };
        tracing::info!(
            step = %state.step,
            done = state.done,
            total = state.total,
            "upgrading the local cache"
        );
        report(state.progress());
        loop {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let next = match state.step.as_str() {
                "renumber" => renumber_chunk(&mut tx, &state).await?,
                "unnegate" => unnegate_chunk(&mut tx, &state).await?,
                "index" => index_chunk(&mut tx, &state).await?,
                other => {
                    // Written only by this module: a step it does not know is a newer app's.
                    return Err(crate::error::Error::Invalid(format!(
                        "the cache is being upgraded by a newer version of the app (step {other})"
                    )));
                }
            };
            match next {
                Some(next) => {
                    sqlx::query(
                        "UPDATE cache_upgrade SET step = ?, cursor = ?, done = ?, total = ?",
                    )
                    .bind(&next.step)
                    .bind(next.cursor)
                    .bind(next.done)
                    .bind(next.total)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    state = next;
                    report(state.progress());
                }
                None => {
                    for trigger in CREATE_TRIGGERS {
                        sqlx::query(trigger).execute(&mut *tx).await?;
                    }
                    sqlx::query("DROP TABLE upgrade_ids")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DROP TABLE cache_upgrade")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    report(Progress {
                        done: state.progress().total,
                        total: state.progress().total,
                    });
                    tracing::info!("local cache upgraded");
                    return Ok(());
                }
            }
        }
    }

    async fn upgrade_state(&self) -> Result<Option<State>> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'cache_upgrade')",
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok(None);
        }
        Ok(
            sqlx::query_as("SELECT step, cursor, negate, done, total FROM cache_upgrade")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Step 1: the new, empty FTS table, the id map and the bookkeeping, in one transaction.
    async fn begin_upgrade(&self) -> Result<State> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for sql in [
            "DROP TRIGGER IF EXISTS messages_fts_insert",
            "DROP TRIGGER IF EXISTS messages_fts_delete",
            "DROP TRIGGER IF EXISTS messages_fts_update",
            "DROP TABLE IF EXISTS messages_fts",
            CREATE_FTS,
            // As `Cache::open` sets it on the table it finds: deletes remove the tokens.
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1)",
            "CREATE TABLE upgrade_ids (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)",
            "CREATE TABLE cache_upgrade (
                step   TEXT NOT NULL,
                cursor INTEGER NOT NULL,
                negate INTEGER NOT NULL,
                done   INTEGER NOT NULL,
                total  INTEGER NOT NULL
            )",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        sqlx::query(FILL_ID_MAP)
            .bind(ID_BASE)
            .execute(&mut *tx)
            .await?;
        let (count, min_old, max_new): (i64, Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT count(*), min(old), max(new) FROM upgrade_ids")
                .fetch_one(&mut *tx)
                .await?;
        // Old ids (`ts << 20`, never negative) are moved in ascending order: a new id below
        // every old one can be written as it is.
        let negate = match (min_old, max_new) {
            (Some(min_old), Some(max_new)) => max_new >= min_old || min_old < 0,
            _ => false,
        };
        let passes = if negate { 2 } else { 1 };
        let state = State {
            step: "renumber".to_owned(),
            cursor: min_old.map_or(-1, |m| m - 1),
            negate,
            done: 0,
            // Each pass moves every message once (1 unit); indexing costs about twice that.
            total: count * (passes + 2),
        };
        sqlx::query(
            "INSERT INTO cache_upgrade (step, cursor, negate, done, total) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&state.step)
        .bind(state.cursor)
        .bind(state.negate)
        .bind(state.done)
        .bind(state.total)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(state)
    }
}

/// The last of the next `CHUNK` ids above `cursor` in `table.column`, if any is left.
async fn chunk_end(
    tx: &mut Transaction<'_, Sqlite>,
    table_column: (&str, &str),
    cursor: i64,
) -> Result<Option<i64>> {
    let (table, column) = table_column;
    Ok(sqlx::query_scalar(&format!(
        "SELECT max({column}) FROM (SELECT {column} FROM {table} WHERE {column} > ? \
         ORDER BY {column} LIMIT ?)"
    ))
    .bind(cursor)
    .bind(CHUNK)
    .fetch_one(&mut **tx)
    .await?)
}

/// Step 2: the next chunk of messages (by old id) to their new ids (negated when `negate`).
async fn renumber_chunk(tx: &mut Transaction<'_, Sqlite>, state: &State) -> Result<Option<State>> {
    let Some(end) = chunk_end(tx, ("upgrade_ids", "old"), state.cursor).await? else {
        let next = if state.negate {
            State {
                step: "unnegate".to_owned(),
                cursor: i64::MIN,
                ..state.clone()
            }
        } else {
            index_start(state)
        };
        return Ok(Some(next));
    };
    let sign = if state.negate { -1 } else { 1 };
    let moved = sqlx::query(
        "UPDATE messages SET id = ? * (SELECT new FROM upgrade_ids WHERE old = messages.id) \
         WHERE id > ? AND id <= ?",
    )
    .bind(sign)
    .bind(state.cursor)
    .bind(end)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Some(State {
        cursor: end,
        done: state.done + i64::try_from(moved).unwrap_or(0),
        ..state.clone()
    }))
}

/// Step 2b: the next chunk of negated ids to their new ids.
async fn unnegate_chunk(tx: &mut Transaction<'_, Sqlite>, state: &State) -> Result<Option<State>> {
    // Only the negated ids: the chunk may reach into the positive ones already moved.
    let end = chunk_end(tx, ("messages", "id"), state.cursor)
        .await?
        .map(|end| end.min(-1))
        .filter(|end| *end > state.cursor);
    let Some(end) = end else {
        return Ok(Some(index_start(state)));
    };
    let moved = sqlx::query("UPDATE messages SET id = -id WHERE id > ? AND id <= ?")
        .bind(state.cursor)
        .bind(end)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(Some(State {
        cursor: end,
        done: state.done + i64::try_from(moved).unwrap_or(0),
        ..state.clone()
    }))
}

fn index_start(state: &State) -> State {
    State {
        step: "index".to_owned(),
        cursor: i64::MIN,
        ..state.clone()
    }
}

/// Step 3: the next chunk of messages (by new id) into the FTS index. `None` when all are in.
async fn index_chunk(tx: &mut Transaction<'_, Sqlite>, state: &State) -> Result<Option<State>> {
    let Some(end) = chunk_end(tx, ("messages", "id"), state.cursor).await? else {
        return Ok(None);
    };
    let indexed = sqlx::query(
        "INSERT INTO messages_fts (rowid, plain) SELECT id, plain FROM messages \
         WHERE id > ? AND id <= ? ORDER BY id",
    )
    .bind(state.cursor)
    .bind(end)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Some(State {
        cursor: end,
        done: state.done + 2 * i64::try_from(indexed).unwrap_or(0),
        ..state.clone()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::search::tests::migrated_before;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{Connection, SqliteConnection};
    use std::path::{Path, PathBuf};

    /// What migration 0007 of earlier builds did, in one step (`src-tauri/tests/data`).
    const ONE_STEP: &str = include_str!("../../tests/data/0007_one_step.sql");

    const WORDS: [&str; 12] = [
        "meeting", "today", "release", "tomorrow", "lunch", "build", "party", "deploy", "coffee",
        "météo", "report", "plan",
    ];

    /// A cache file of the layout before (0006), with `n` messages over 3 rooms from `ts0` on
    /// (several in some milliseconds, ids `ts << 20` plus their place as 0006 gave them), an
    /// outbox entry, a draft and a setting.
    async fn old_cache(dir: &Path, name: &str, n: i64, ts0: i64) -> PathBuf {
        let path = dir.join(name);
        let pool = migrated_before(&path, 7).await;
        let mut tx = pool.begin().await.unwrap_or_else(|e| panic!("begin: {e}"));
        for sql in [
            "INSERT INTO rooms (id, name, kind, visibility, member_count, last_seq) VALUES \
             (1, 'a', 'group', 'public', 2, 0), (2, 'b', 'group', 'public', 2, 0), \
             (3, 'c', 'group', 'public', 2, 0)",
            "INSERT INTO outbox (client_id, room, body, created, state) \
             VALUES ('out-1', 1, 'written offline', 5, 'pending')",
            "INSERT INTO drafts (room, text, updated) VALUES (2, 'half a thought', 1)",
            "INSERT INTO settings (key, value) VALUES ('username', 'ann')",
        ] {
            sqlx::query(sql)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        for i in 0..n {
            let room = i % 3 + 1;
            let seq = i / 3 + 1;
            // Three messages share each millisecond; now and then one comes late (an older
            // page paged in after newer ones).
            let ts = ts0 + (i / 3) * 7 - if i % 97 == 0 { 500 } else { 0 };
            let place = i % 3;
            let text = format!(
                "{} {} {} n{i}",
                WORDS[(i % 12) as usize],
                WORDS[(i * 7 % 12) as usize],
                WORDS[(i * 5 % 11) as usize]
            );
            sqlx::query(
                "INSERT INTO messages (id, room, seq, client_id, sender, sender_name, body, \
                 plain, ts) VALUES (?, ?, ?, ?, 2, 'bob', ?, ?, ?)",
            )
            .bind((ts.max(0) << 20) + place)
            .bind(room)
            .bind(seq)
            .bind(format!("c{i}"))
            .bind(&text)
            .bind(&text)
            .bind(ts)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        }
        tx.commit().await.unwrap_or_else(|e| panic!("commit: {e}"));
        pool.close().await;
        path
    }

    /// `copy` of `path`, migrated the one-step way.
    async fn one_step(path: &Path, copy: &Path) -> Cache {
        std::fs::copy(path, copy).unwrap_or_else(|e| panic!("copy: {e}"));
        let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(copy))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        sqlx::raw_sql(ONE_STEP)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("one step: {e}"));
        conn.close().await.unwrap_or_else(|e| panic!("close: {e}"));
        let cache = Cache::open(copy, 10_000)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        assert!(!cache.needs_upgrade().await.unwrap_or(true));
        cache
    }

    type Row = (i64, i64, i64, String, i64, String);

    /// Every message with its id, the outbox, drafts and settings, and what searches find.
    async fn contents(cache: &Cache) -> (Vec<Row>, Vec<String>, Vec<Vec<(u64, u64)>>) {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT id, room, seq, client_id, ts, plain FROM messages ORDER BY id")
                .fetch_all(&cache.pool)
                .await
                .unwrap_or_else(|e| panic!("messages: {e}"));
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT client_id || ':' || body FROM outbox UNION ALL \
             SELECT room || ':' || text FROM drafts UNION ALL \
             SELECT key || ':' || value FROM settings WHERE key = 'username'",
        )
        .fetch_all(&cache.pool)
        .await
        .unwrap_or_else(|e| panic!("kept: {e}"));
        let mut hits = Vec::new();
        for q in [
            "meet",
            "tomorrow",
            "meteo rep",
            "release party",
            "n1234",
            "coffee plan de",
        ] {
            let found = cache
                .search(q, 100)
                .await
                .unwrap_or_else(|e| panic!("search {q}: {e}"));
            hits.push(found.iter().map(|h| (h.room.0, h.seq)).collect());
        }
        (rows, kept, hits)
    }

    async fn integrity(cache: &Cache) {
        sqlx::query("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
            .execute(&cache.pool)
            .await
            .unwrap_or_else(|e| panic!("the FTS index does not match the messages: {e}"));
    }

    /// The upgrade in chunks ends where the one-step migration did: the same ids, the same
    /// hits, nothing else touched; it reports its progress from 0 to 100 % on the way.
    #[tokio::test]
    async fn the_upgrade_in_chunks_ends_where_the_one_step_migration_did() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        // Real timestamps (new ids below every old one: one renumbering pass).
        let path = old_cache(dir.path(), "c.sqlite3", 12_000, 1_765_000_000_000).await;
        let straight = one_step(&path, &dir.path().join("straight.sqlite3")).await;

        let cache = Cache::connect(&path, 10_000)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        assert!(cache.needs_upgrade().await.unwrap_or(false));
        let mut seen = Vec::new();
        cache
            .upgrade(|p| seen.push(p))
            .await
            .unwrap_or_else(|e| panic!("upgrade: {e}"));
        let percents: Vec<u8> = seen.iter().map(Progress::percent).collect();
        assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
        assert_eq!(percents.first(), Some(&0));
        assert_eq!(percents.last(), Some(&100));
        assert!(
            percents.iter().filter(|p| **p > 0 && **p < 100).count() >= 5,
            "progress moves in steps: {percents:?}"
        );
        assert!(!cache.needs_upgrade().await.unwrap_or(true));
        integrity(&cache).await;
        let (rows, kept, hits) = contents(&cache).await;
        assert_eq!(rows.len(), 12_000);
        assert_eq!((rows, kept.clone(), hits), contents(&straight).await);
        assert_eq!(
            kept,
            ["out-1:written offline", "2:half a thought", "username:ann"]
        );
        // Nothing left to do at the next start.
        let mut again = Vec::new();
        cache
            .upgrade(|p| again.push(p))
            .await
            .unwrap_or_else(|e| panic!("upgrade: {e}"));
        assert!(again.is_empty());
    }

    /// An upgrade stopped in the middle (the app quit, crashed) goes on at the next start and
    /// ends where an upgrade without a stop does. Timestamps of the first days of 1970, where
    /// new ids could meet old ones (the two-pass renumbering).
    #[tokio::test]
    async fn an_upgrade_stopped_in_the_middle_goes_on_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let path = old_cache(dir.path(), "c.sqlite3", 12_000, 1_000).await;
        let straight = one_step(&path, &dir.path().join("straight.sqlite3")).await;

        for stop_at in [20, 45, 80] {
            let cache = Cache::connect(&path, 10_000)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let mut tx = Some(tx);
            let upgrade = cache.upgrade(move |p| {
                if p.percent() >= stop_at {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            });
            // Dropped at its next await, which may be inside a chunk's transaction.
            tokio::select! {
                done = upgrade => panic!("the upgrade ended before {stop_at} %: {done:?}"),
                _ = rx => {}
            }
            cache.close().await;
        }
        let cache = Cache::connect(&path, 10_000)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let state = cache
            .upgrade_state()
            .await
            .unwrap_or_else(|e| panic!("state: {e}"))
            .unwrap_or_else(|| panic!("no upgrade in progress"));
        assert!(state.negate, "two passes expected");
        let mut first = None;
        cache
            .upgrade(|p| {
                first.get_or_insert(p.percent());
            })
            .await
            .unwrap_or_else(|e| panic!("upgrade: {e}"));
        assert!(
            first.is_some_and(|p| p >= 80),
            "resumed where it stopped: {first:?}"
        );
        integrity(&cache).await;
        assert_eq!(contents(&cache).await, contents(&straight).await);
    }
}
