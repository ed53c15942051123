//! Local search against a cache of `n` messages, in-process through [`Cache::search`] (what the
//! app's `search` command runs, with its limit of 100 hits), without a window.
//!
//! Queries are what a user types: one word (drawn with the bodies' skew, so mostly common
//! words), two words, and a three-letter prefix of a word. Each query's time is measured
//! alone, after a warm-up, and reported as p50/p99/max over all queries and per kind.

use crate::fill::{self, Fill};
use crate::{Error, Result};
use chat_desktop::cache::Cache;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// The app's limit on hits per search (`backend::messages` `SEARCH_LIMIT`).
pub const HITS: u32 = 100;
/// Queries run (and not counted) before measuring.
const WARMUP: usize = 20;

/// What one search size measured.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub messages: u64,
    pub rooms: u32,
    /// Writing the cache (through `store_page`, i.e. with its FTS5 index).
    pub fill_s: f64,
    pub fill_per_s: f64,
    /// The cache file after the fill.
    pub db_bytes: u64,
    pub queries: usize,
    pub all: Percentiles,
    pub kinds: Vec<(String, Percentiles)>,
    /// Mean hits per query (at most [`HITS`]).
    pub mean_hits: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The `q`-quantile (0..=1) of sorted `xs` (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn percentiles(times: &[Duration]) -> Percentiles {
    let mut sorted = times.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Percentiles {
        p50_ms: ms(quantile(&sorted, 0.50)),
        p99_ms: ms(quantile(&sorted, 0.99)),
        max_ms: ms(sorted.last().copied().unwrap_or_default()),
    }
}

/// `count` queries of each kind, seeded.
pub fn queries(count: usize, seed: u64) -> Vec<(&'static str, String)> {
    let words = fill::vocabulary();
    let mut rng = StdRng::seed_from_u64(seed);
    let pick = |rng: &mut StdRng| words[fill::skewed_index(rng, words.len())].clone();
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(("one word", pick(&mut rng)));
        let (a, b) = (pick(&mut rng), pick(&mut rng));
        out.push(("two words", format!("{a} {b}")));
        let w = pick(&mut rng);
        let prefix: String = w.chars().take(3).collect();
        out.push(("prefix", prefix));
    }
    out
}

/// How a search size is run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep the cache file (`dir/search-N.sqlite3`) and reuse it when it is already there,
    /// so a change to the query can be measured again without filling again.
    pub keep: bool,
    /// Print this many of the slowest queries (kind, text, time, hits) to stderr.
    pub slowest: usize,
}

/// Fills a cache of `messages` over `rooms` in `dir` and measures `per_kind` queries of each
/// kind against it. A reused cache ([`Options::keep`]) reports a fill time of 0.
pub async fn run(
    dir: &Path,
    rooms: u32,
    messages: u64,
    per_kind: usize,
    opts: Options,
) -> Result<SearchResult> {
    let path = dir.join(format!("search-{messages}.sqlite3"));
    let fill = Fill {
        rooms,
        messages,
        seed: 7,
    };
    let started = Instant::now();
    let (written, fill_s) = if opts.keep && path.exists() {
        (messages, 0.0)
    } else {
        // Keep everything: the app's default retention (5,000 per room) would cap 1M at 250k.
        let written = fill::create(&path, u32::MAX, &fill, None).await?;
        (written, started.elapsed().as_secs_f64())
    };
    // Opening runs the cache's migrations (a kept cache may come from an older version).
    let opened = Instant::now();
    let cache = Cache::open(&path, u32::MAX).await?;
    if opts.keep {
        eprintln!(
            "{}: opened in {:.2} s",
            path.display(),
            opened.elapsed().as_secs_f64()
        );
    }
    let result = measure(&cache, per_kind, opts.slowest).await;
    cache.scrub().await;
    cache.close().await;
    let db_bytes = std::fs::metadata(&path)?.len();
    let (times, kinds, hits) = result?;
    if !opts.keep {
        let _ = std::fs::remove_file(&path);
    }
    Ok(SearchResult {
        messages: written,
        rooms,
        fill_s,
        fill_per_s: if fill_s > 0.0 {
            written as f64 / fill_s
        } else {
            0.0
        },
        db_bytes,
        queries: times.len(),
        all: percentiles(&times),
        kinds,
        mean_hits: hits as f64 / times.len().max(1) as f64,
    })
}

type Measured = (Vec<Duration>, Vec<(String, Percentiles)>, u64);

async fn measure(cache: &Cache, per_kind: usize, slowest: usize) -> Result<Measured> {
    let qs = queries(per_kind + WARMUP, 11);
    let (warmup, measured) = qs.split_at((WARMUP * 3).min(qs.len()));
    for (_, q) in warmup {
        cache.search(q, HITS).await?;
    }
    let mut times = Vec::new();
    let mut by_kind: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut hits = 0u64;
    let mut each = Vec::new();
    for (kind, q) in measured {
        let t = Instant::now();
        let found = cache.search(q, HITS).await?;
        let d = t.elapsed();
        hits += found.len() as u64;
        times.push(d);
        each.push((d, *kind, q, found.len()));
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, v)) => v.push(d),
            None => by_kind.push(((*kind).to_owned(), vec![d])),
        }
    }
    if times.is_empty() {
        return Err(Error::Invalid("no queries measured".into()));
    }
    each.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (d, kind, q, n) in each.iter().take(slowest) {
        eprintln!(
            "slow: {:8.2} ms  {kind:<9}  {q:?}  {n} hits",
            d.as_secs_f64() * 1000.0
        );
    }
    let kinds = by_kind
        .into_iter()
        .map(|(k, v)| (k, percentiles(&v)))
        .collect();
    Ok((times, kinds, hits))
}
