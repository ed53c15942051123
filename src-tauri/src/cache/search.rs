//! Local search: the FTS5 index over what readers see of message bodies (`messages.plain`), and
//! the query over it.
//!
//! A search reads its hits newest first straight from the index and stops at its limit: the
//! index lists rows by id, and message ids follow time backwards (`NEXT_ID` in `cache.rs`,
//! `upgrade.rs`). Every word typed is a prefix; prefix indexes of 1 to 8 characters let FTS5
//! read a prefix like a word instead of merging the lists of every word it matches, which is
//! what kept a search of a common word in the milliseconds at a million messages
//! (docs/BENCHMARKS.md, client section; bench/analysis.md).

use super::{to_u64, Cache};
use crate::error::Result;
use protocol::ipc::SearchHit;
use protocol::RoomId;

/// The search: hits newest first, read from the index in its order (ascending ids are falling
/// times), joined to their message and room one by one, up to the limit.
const SEARCH: &str = "SELECT m.room, r.name, m.seq, m.sender_name, m.plain, m.ts \
     FROM messages_fts f JOIN messages m ON m.id = f.rowid JOIN rooms r ON r.id = m.room \
     WHERE messages_fts MATCH ? AND m.deleted = 0 ORDER BY f.rowid LIMIT ?";

impl Cache {
    /// Full-text search over cached message bodies, newest first. Every word of `query` must
    /// match (as a word prefix); FTS syntax in the query is treated as plain text. The words
    /// are those a reader sees (`markup::plain_text`), and a hit's `body` is that text.
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let Some(expr) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, String, i64, String, String, i64)> = sqlx::query_as(SEARCH)
            .bind(expr)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(room, room_name, seq, sender_name, body, ts)| SearchHit {
                room: RoomId(to_u64(room)),
                room_name,
                seq: to_u64(seq),
                sender_name,
                body,
                ts,
            })
            .collect())
    }
}

/// Turns what the user typed into an FTS5 expression: every word quoted (so `AND`, `*`, `"`
/// and column filters are plain text) and matched as a prefix. `None` when nothing is left.
fn fts_query(query: &str) -> Option<String> {
    let terms: Vec<String> = query
        .split_whitespace()
        .map(|w| w.replace('"', ""))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cache::tests::{message, open, room};
    use protocol::RoomEvent;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use sqlx::SqlitePool;
    use std::path::Path;

    /// A cache file as a version before migration `version` wrote it (its schema, no rows).
    pub(crate) async fn migrated_before(path: &Path, version: i64) -> SqlitePool {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true),
            )
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let all = sqlx::migrate!("src-tauri/migrations");
        let before = sqlx::migrate::Migrator {
            migrations: all
                .migrations
                .iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate!("src-tauri/migrations")
        };
        before
            .run(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrations before {version}: {e}"));
        pool
    }

    /// `(ts the id stands for, seq)`, oldest first.
    async fn ids(cache: &Cache) -> Vec<(i64, i64)> {
        sqlx::query_as("SELECT ? - id, seq FROM messages ORDER BY id DESC")
            .bind(crate::cache::ID_BASE)
            .fetch_all(&cache.pool)
            .await
            .unwrap_or_else(|e| panic!("ids: {e}"))
    }

    fn seqs(hits: &[SearchHit]) -> Vec<u64> {
        hits.iter().map(|h| h.seq).collect()
    }

    /// History paged in after newer messages (older pages, fetched on scroll-back) is still
    /// searched newest first, and the limit keeps the newest matches.
    #[tokio::test]
    async fn search_lists_the_newest_matches_first_whatever_came_first() {
        let (_dir, cache) = open(100).await;
        cache.sync_rooms(&[room(7, 0)]).await.unwrap_or_default();
        let page = |seqs: std::ops::RangeInclusive<u64>| -> Vec<RoomEvent> {
            seqs.map(|seq| message(7, seq, 2, &format!("standup note {seq}")))
                .collect()
        };
        for range in [21..=30, 1..=10, 11..=20] {
            cache
                .store_page(RoomId(7), &page(range), None)
                .await
                .unwrap_or_else(|e| panic!("store_page: {e}"));
        }
        let hits = cache.search("stand", 5).await.unwrap_or_default();
        assert_eq!(seqs(&hits), [30, 29, 28, 27, 26]);
        let all = cache.search("note", 100).await.unwrap_or_default();
        assert_eq!(seqs(&all), (1..=30).rev().collect::<Vec<_>>());
    }

    /// A cache written before message ids followed time (migration 0006) is renumbered and
    /// reindexed when opened: search finds its messages, newest first, by any prefix.
    #[tokio::test]
    async fn a_cache_from_before_time_ordered_ids_is_searched_newest_first() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let path = dir.path().join("c.sqlite3");
        {
            let pool = migrated_before(&path, 6).await;
            sqlx::query(
                "INSERT INTO rooms (id, name, kind, visibility, member_count, last_seq) \
                 VALUES (7, 'r', 'group', 'public', 2, 4)",
            )
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("room: {e}"));
            // Ids in arrival order: the newest message first, then older history; two share
            // a millisecond.
            for (id, seq, ts, text) in [
                (1, 3, 3000, "release party"),
                (2, 1, 1000, "release plan"),
                (3, 2, 2000, "released build"),
                (4, 4, 3000, "relentless"),
            ] {
                sqlx::query(
                    "INSERT INTO messages (id, room, seq, client_id, sender, sender_name, body, plain, ts) \
                     VALUES (?, 7, ?, '', 2, 'bob', ?, ?, ?)",
                )
                .bind(id)
                .bind(seq)
                .bind(text)
                .bind(text)
                .bind(ts)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("message: {e}"));
            }
            pool.close().await;
        }
        let cache = Cache::open(&path, 100)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        assert_eq!(
            seqs(&cache.search("rel", 10).await.unwrap_or_default()),
            [4, 3, 2, 1]
        );
        assert_eq!(
            seqs(&cache.search("release", 10).await.unwrap_or_default()),
            [3, 2, 1]
        );
        assert_eq!(
            seqs(&cache.search("released b", 10).await.unwrap_or_default()),
            [2]
        );
        // New messages take ids after the renumbered ones.
        cache
            .store_page(RoomId(7), &[message(7, 5, 2, "relay")], None)
            .await
            .unwrap_or_else(|e| panic!("store_page: {e}"));
        let ts_of_5 = message(7, 5, 2, "").ts;
        assert!(ts_of_5 < 3000, "the helper's ts is {ts_of_5}");
        assert_eq!(
            seqs(&cache.search("rel", 10).await.unwrap_or_default()),
            [4, 3, 2, 5, 1]
        );
    }

    /// A cache written with ids `ts << 20` (migration 0006) is renumbered to milliseconds,
    /// counting down, when opened, in time order, and searched as before: long prefixes (served by the new prefix
    /// indexes), case and diacritics folded, newest first.
    #[tokio::test]
    async fn a_cache_with_ids_of_migration_6_is_renumbered_to_milliseconds() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let path = dir.path().join("c.sqlite3");
        {
            let pool = migrated_before(&path, 7).await;
            sqlx::query(
                "INSERT INTO rooms (id, name, kind, visibility, member_count, last_seq) \
                 VALUES (7, 'r', 'group', 'public', 2, 6), (8, 's', 'group', 'public', 2, 1)",
            )
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("rooms: {e}"));
            // As 0006's code numbered them: `ts << 20` plus the place within the millisecond.
            // Three share 5000 ms; one is at 5001 ms, where a renumbered id would land first.
            for (id, room, seq, ts, text) in [
                ((1000 << 20), 7, 1, 1000, "Tomorrow's meeting"),
                ((5000 << 20), 7, 2, 5000, "meetings moved"),
                ((5000 << 20) + 1, 7, 3, 5000, "the MEETING room"),
                ((5000 << 20) + 2, 8, 1, 5000, "a météo report"),
                ((5001 << 20), 7, 4, 5001, "tomorrowland"),
                ((9000 << 20), 7, 5, 9000, "no match here"),
            ] {
                sqlx::query(
                    "INSERT INTO messages (id, room, seq, client_id, sender, sender_name, body, \
                     plain, ts) VALUES (?, ?, ?, '', 2, 'bob', ?, ?, ?)",
                )
                .bind(id)
                .bind(room)
                .bind(seq)
                .bind(text)
                .bind(text)
                .bind(ts)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("message: {e}"));
            }
            pool.close().await;
        }
        let cache = Cache::open(&path, 100)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        // Milliseconds, in (ts, room, seq) order; a taken one moves to the next free one.
        assert_eq!(
            ids(&cache).await,
            [
                (1000, 1),
                (5000, 2),
                (5001, 3),
                (5002, 1),
                (5003, 4),
                (9000, 5)
            ]
        );
        let search = |q: &'static str| {
            let cache = cache.clone();
            async move {
                cache
                    .search(q, 10)
                    .await
                    .unwrap_or_else(|e| panic!("search {q}: {e}"))
                    .iter()
                    .map(|h| (h.room.0, h.seq))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(search("meeting").await, [(7, 3), (7, 2), (7, 1)]);
        assert_eq!(search("Meetings").await, [(7, 2)]);
        assert_eq!(search("tomorro").await, [(7, 4), (7, 1)]);
        assert_eq!(search("tomorrowla").await, [(7, 4)]);
        assert_eq!(search("meteo").await, [(8, 1)]);
        assert_eq!(search("MÉTÉO rep").await, [(8, 1)]);
        assert_eq!(search("meeting room").await, [(7, 3)]);
        // A message of an earlier millisecond, paged in now, is listed by its time.
        cache
            .store_page(RoomId(7), &[message(7, 6, 2, "meeting notes")], None)
            .await
            .unwrap_or_else(|e| panic!("store_page: {e}"));
        assert_eq!(message(7, 6, 2, "").ts, 1006);
        assert_eq!(search("meeting").await, [(7, 3), (7, 2), (7, 6), (7, 1)]);
    }

    /// Messages that share a millisecond each get an id, in the order they came, and a
    /// message of the next millisecond that came after them is still listed before them;
    /// one of an earlier millisecond that came last, after them.
    #[tokio::test]
    async fn messages_of_one_millisecond_are_all_found_in_time_order() {
        let (_dir, cache) = open(1000).await;
        cache
            .sync_rooms(&[room(1, 0), room(2, 0)])
            .await
            .unwrap_or_else(|e| panic!("rooms: {e}"));
        let at = |room: u64, seq: u64, ts: i64| -> RoomEvent {
            RoomEvent {
                ts,
                ..message(room, seq, 2, &format!("deployment {room}-{seq}"))
            }
        };
        // Eight in room 1 at 5000 ms, then room 2's page: 5001 ms (taken by then), 4999 ms.
        let burst: Vec<RoomEvent> = (1..=8).map(|seq| at(1, seq, 5000)).collect();
        for (room, page) in [(1, burst), (2, vec![at(2, 1, 4999), at(2, 2, 5001)])] {
            cache
                .store_page(RoomId(room), &page, None)
                .await
                .unwrap_or_else(|e| panic!("store_page: {e}"));
        }
        let hits = cache
            .search("deploym", 100)
            .await
            .unwrap_or_else(|e| panic!("search: {e}"));
        let found: Vec<(u64, u64)> = hits.iter().map(|h| (h.room.0, h.seq)).collect();
        let mut want = vec![(2, 2)];
        want.extend((1..=8).rev().map(|seq| (1, seq)));
        want.push((2, 1));
        assert_eq!(found, want);
        assert!(hits.windows(2).all(|w| w[0].ts >= w[1].ts));
    }

    /// The plan SQLite picks: the FTS5 table drives, in its order, with nothing sorted after
    /// (a sort would read every match before the first hit), and each hit is looked up once.
    #[tokio::test]
    async fn the_search_reads_the_index_in_order_and_sorts_nothing() {
        let (_dir, cache) = open(100).await;
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {SEARCH}"))
                .bind("\"word\"*")
                .bind(100)
                .fetch_all(&cache.pool)
                .await
                .unwrap_or_else(|e| panic!("plan: {e}"));
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, s)| s.as_str()).collect();
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(steps[0].starts_with("SCAN f VIRTUAL TABLE"), "{steps:?}");
        assert!(
            steps[1].starts_with("SEARCH m USING INTEGER PRIMARY KEY"),
            "{steps:?}"
        );
        assert!(
            steps[2].starts_with("SEARCH r USING INTEGER PRIMARY KEY"),
            "{steps:?}"
        );
    }

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("hello"), Some("\"hello\"*".into()));
        assert_eq!(
            fts_query("a\"b OR c*"),
            Some("\"ab\"* \"OR\"* \"c*\"*".into())
        );
        assert_eq!(fts_query("-- ()"), None);
    }
}
