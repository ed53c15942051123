//! The blob cache: downloaded attachments (thumbnails and whole files) as files in one folder,
//! so an image shown once shows again without the network, also offline.
//!
//! Bounded by a size the user sets ([`BlobCache::set_limit`]): after every addition the least
//! recently used files go until the rest fits. "Used" is the file's modification time, which
//! every read refreshes, so the order survives restarts without an index to keep in sync. A
//! file larger than the whole limit is not kept. Entries are named by attachment id (`<id>`,
//! `<id>-t` for a thumbnail): the server never changes a file under an id, so an entry never
//! goes stale. Writes go to a temporary name first and are renamed into place, so a crash
//! leaves no half file under a real name. Cleared at logout ([`BlobCache::clear`]).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The cache's size unless the user sets another.
pub const DEFAULT_LIMIT: u64 = 250_000_000;

/// Suffix of files being written.
const PARTIAL: &str = ".part";

/// The cache folder and its bound. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct BlobCache {
    dir: PathBuf,
    limit: AtomicU64,
    /// One writer at a time, so an eviction pass never races another's rename.
    write: tokio::sync::Mutex<()>,
}

/// What [`BlobCache::key`] names: an attachment's file or its thumbnail.
pub fn key(id: &str, thumbnail: bool) -> String {
    if thumbnail {
        format!("{id}-t")
    } else {
        id.to_owned()
    }
}

/// Whether `key` is one [`key`] makes (keys become file names).
fn is_key(key: &str) -> bool {
    let id = key.strip_suffix("-t").unwrap_or(key);
    protocol::attachment::is_attachment_id(id)
}

impl BlobCache {
    /// A cache in `dir` (created when first written) holding at most `limit` bytes.
    pub fn new(dir: impl Into<PathBuf>, limit: u64) -> BlobCache {
        BlobCache {
            dir: dir.into(),
            limit: AtomicU64::new(limit),
            write: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        is_key(key).then(|| self.dir.join(key))
    }

    /// The cached bytes of `key`, marking it used.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.path(key)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        touch(&path).await;
        Some(bytes)
    }

    /// Where `key` is cached (marking it used), to copy it somewhere without reading it whole.
    pub async fn file(&self, key: &str) -> Option<PathBuf> {
        let path = self.path(key)?;
        tokio::fs::metadata(&path).await.ok()?;
        touch(&path).await;
        Some(path)
    }

    /// Keeps `bytes` under `key` (unless they alone exceed the limit), then evicts down to
    /// the limit. A failure is logged: the cache is an optimization.
    pub async fn put(&self, key: &str, bytes: &[u8]) {
        let Some(path) = self.path(key) else {
            return;
        };
        if bytes.len() as u64 > self.limit() {
            return;
        }
        let _writing = self.write.lock().await;
        let partial = self.dir.join(format!("{key}{PARTIAL}"));
        let written = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&partial, bytes).await?;
            tokio::fs::rename(&partial, &path).await?;
            Ok::<(), std::io::Error>(())
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep a downloaded file in the cache");
            let _ = tokio::fs::remove_file(&partial).await;
            return;
        }
        // The kernel's own timestamps are coarse (a clock tick); [`touch`]'s are not, and
        // they are compared with these.
        touch(&path).await;
        self.evict_locked().await;
    }

    /// Bytes the cached files take.
    pub async fn used(&self) -> u64 {
        self.entries().await.iter().map(|e| e.size).sum()
    }

    /// Sets the bound and evicts down to it.
    pub async fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
        let _writing = self.write.lock().await;
        self.evict_locked().await;
    }

    /// Deletes every cached file (logout).
    pub async fn clear(&self) {
        let _writing = self.write.lock().await;
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "cannot clear the file cache"),
        }
    }

    async fn evict_locked(&self) {
        let mut entries = self.entries().await;
        let mut used: u64 = entries.iter().map(|e| e.size).sum();
        let limit = self.limit();
        if used <= limit {
            return;
        }
        // Least recently used first.
        entries.sort_by_key(|e| e.used);
        for entry in entries {
            if used <= limit {
                break;
            }
            match tokio::fs::remove_file(&entry.path).await {
                Ok(()) => used = used.saturating_sub(entry.size),
                Err(e) if e.kind() == ErrorKind::NotFound => used = used.saturating_sub(entry.size),
                Err(e) => tracing::warn!(error = %e, "cannot evict a cached file"),
            }
        }
    }

    /// The cached files (not the partial ones) with their size and last use.
    async fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await else {
            return out;
        };
        while let Ok(Some(item)) = dir.next_entry().await {
            let name = item.file_name();
            if !name.to_str().is_some_and(is_key) {
                continue;
            }
            let Ok(meta) = item.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            out.push(Entry {
                path: item.path(),
                size: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out
    }
}

struct Entry {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

/// Marks a cached file used now (its modification time).
async fn touch(path: &Path) {
    let path = path.to_owned();
    let touched = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()))
    })
    .await;
    if let Ok(Err(e)) = touched {
        tracing::debug!(error = %e, "cannot mark a cached file used");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("{:032x}", n)
    }

    #[tokio::test]
    async fn bounded_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let cache = BlobCache::new(dir.path().join("blobs"), 250);
        cache.put(&key(&id(1), false), &[1; 100]).await;
        cache.put(&key(&id(2), true), &[2; 100]).await;
        // 1 is used again: 2 is now the least recently used.
        assert_eq!(cache.get(&key(&id(1), false)).await, Some(vec![1; 100]));
        cache.put(&key(&id(3), false), &[3; 100]).await;
        assert!(cache.used().await <= 250);
        assert_eq!(cache.get(&key(&id(2), true)).await, None);
        assert!(cache.get(&key(&id(1), false)).await.is_some());
        assert!(cache.get(&key(&id(3), false)).await.is_some());
        // Too big for the whole cache: not kept, nothing else evicted for it.
        cache.put(&key(&id(4), false), &[4; 300]).await;
        assert_eq!(cache.get(&key(&id(4), false)).await, None);
        assert_eq!(cache.used().await, 200);
        // Names that are not keys are refused.
        cache.put("../escape", &[0; 10]).await;
        assert_eq!(cache.get("../escape").await, None);
        cache.set_limit(100).await;
        assert_eq!(cache.used().await, 100);
        cache.clear().await;
        assert_eq!(cache.used().await, 0);
    }
}
