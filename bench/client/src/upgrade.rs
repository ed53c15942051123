//! The cache's one-time upgrade after an update (`chat_desktop::cache` `upgrade.rs`) against
//! the one-step migration 0007 it replaced, on the same file and in the same build: a cache of
//! `n` messages is filled, turned back into the layout before (as the builds before the
//! upgrade left it), copied, and brought up to date once each way. Also how often the
//! upgrade reports progress (the longest gap is how long the progress bar stands still).

use crate::fill::{self, Fill};
use crate::Result;
use chat_desktop::cache::Cache;
use serde::Serialize;
use sqlx::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

/// The layout before, and the one-step migration (kept with the desktop app's tests).
const TO_LAYOUT_6: &str = include_str!("../../../src-tauri/tests/data/to_layout_6.sql");
const ONE_STEP: &str = include_str!("../../../src-tauri/tests/data/0007_one_step.sql");

#[derive(Debug, Clone, Serialize)]
pub struct UpgradeResult {
    pub messages: u64,
    /// Migration 0007 as it was: one transaction, nothing reported.
    pub one_step_s: f64,
    /// `Cache::open` (connect + the upgrade in chunks), the same work.
    pub chunked_s: f64,
    pub reports: usize,
    /// The longest time between two progress reports.
    pub longest_gap_s: f64,
}

async fn script(path: &Path, sql: &str) -> Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(chat_desktop::Error::from)?;
    sqlx::raw_sql(sql)
        .execute(&mut conn)
        .await
        .map_err(chat_desktop::Error::from)?;
    conn.close().await.map_err(chat_desktop::Error::from)?;
    Ok(())
}

pub async fn run(dir: &Path, messages: u64, rooms: u32) -> Result<UpgradeResult> {
    let old = dir.join(format!("upgrade-{messages}.sqlite3"));
    let fill = Fill {
        rooms,
        messages,
        seed: 7,
    };
    let written = fill::create(&old, u32::MAX, &fill, None).await?;
    script(&old, TO_LAYOUT_6).await?;
    let copy = dir.join(format!("upgrade-{messages}-one-step.sqlite3"));
    std::fs::copy(&old, &copy)?;

    let started = Instant::now();
    script(&copy, ONE_STEP).await?;
    let one_step_s = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&copy);

    let started = Instant::now();
    let cache = Cache::connect(&old, u32::MAX).await?;
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    let mut reports = 0;
    cache
        .upgrade(|_| {
            reports += 1;
            longest = longest.max(last.elapsed());
            last = Instant::now();
        })
        .await?;
    let chunked_s = started.elapsed().as_secs_f64();
    cache.close().await;
    let _ = std::fs::remove_file(&old);
    Ok(UpgradeResult {
        messages: written,
        one_step_s,
        chunked_s,
        reports,
        longest_gap_s: longest.as_secs_f64(),
    })
}
