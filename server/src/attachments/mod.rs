//! Attachments (issue 14): files uploaded over REST into blob storage, attached to messages,
//! downloaded with the room's authorization, and collected when nothing needs them.
//!
//! Files live behind `object_store`'s [`ObjectStore`] trait (the local filesystem here; S3 is
//! the same code path with another implementation). Their records live in the chat store
//! (`store/uploads.rs`), which also attaches them to a message atomically. The order of steps
//! keeps the promise that a message never points to a missing file:
//!
//! 1. the upload streams into storage (`blobs/{id}`; bounded memory, size limit, quota) and
//!    completes there (images: their metadata stripped, a thumbnail at `thumbs/{id}`);
//! 2. only then is its record created (pending); only a pending record can be attached;
//! 3. the collector ([`collect`]) first condemns records (deleted or trimmed message, pending
//!    past the grace period; a condemned record is never attachable or served), then deletes
//!    the files, then the record. Files no record names (a node died before recording them)
//!    and, on directory storage, half-written temporary files (a node died mid-upload) go
//!    once they are older than the grace period (at least an hour).

pub mod config;
pub mod images;
pub mod range;
mod sniff;

pub use config::AttachmentConfig;

use crate::auth::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::store::UploadRecord;
use crate::AppState;
use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::path::Path as BlobPath;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use protocol::{Attachment, ErrorCode, RoomId, UserId};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a file looked at to tell its type.
const SNIFF_LEN: usize = 4096;
/// Bytes buffered per upload before they are written out (local files have no part size).
const CHUNK: usize = 1024 * 1024;
/// The same for S3, whose multipart parts (but the last) must be at least 5 MiB.
const S3_CHUNK: usize = 5 * 1024 * 1024;
/// Chunks of one upload being written at once.
const IN_FLIGHT: usize = 2;

/// Blob storage and the settings around it; shared by all requests (in `AppState`).
pub struct Attachments {
    config: AttachmentConfig,
    blobs: Option<Arc<dyn ObjectStore>>,
    /// Upload part size for `blobs`.
    chunk: usize,
    /// Wakes the collector early (a message with files was deleted).
    wake: tokio::sync::Notify,
}

/// Which file of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Original,
    Thumbnail,
}

impl Attachments {
    /// Opens the storage named by `config` (creating the directory), or none when unset.
    pub fn new(config: &AttachmentConfig) -> Result<Self, String> {
        if let Some(s3) = &config.s3 {
            let mut builder = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key)
                .with_allow_http(s3.allow_http);
            if let Some(endpoint) = &s3.endpoint {
                // Path-style requests (`endpoint/bucket/key`): what S3-compatible servers take.
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            let s3 = builder
                .build()
                .map_err(|e| format!("attachments.s3: {e}"))?;
            return Ok(Self {
                config: config.clone(),
                blobs: Some(Arc::new(s3)),
                chunk: S3_CHUNK,
                wake: tokio::sync::Notify::new(),
            });
        }
        let blobs: Option<Arc<dyn ObjectStore>> = match &config.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("attachments.dir {}: {e}", dir.display()))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| format!("attachments.dir {}: {e}", dir.display()))?
                    .with_automatic_cleanup(true);
                Some(Arc::new(fs))
            }
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            blobs,
            chunk: CHUNK,
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn config(&self) -> &AttachmentConfig {
        &self.config
    }

    fn blobs(&self) -> ApiResult<&Arc<dyn ObjectStore>> {
        self.blobs.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "this server does not store attachments (neither attachments.dir nor attachments.s3 is set)",
            )
        })
    }

    /// Asks the collector for a pass soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Where the files of upload `id` are.
pub fn blob_path(id: &str, which: Which) -> BlobPath {
    match which {
        Which::Original => BlobPath::from(format!("blobs/{id}")),
        Which::Thumbnail => BlobPath::from(format!("thumbs/{id}")),
    }
}

/// Storage failures are logged; the client learns only that storage is unavailable.
fn storage_error(e: object_store::Error) -> ApiError {
    tracing::warn!(error = %e, "attachment storage failed");
    ApiError::new(
        ErrorCode::StoreUnavailable,
        "file storage is unavailable; retry shortly",
    )
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::AttachmentNotFound, "no such attachment")
}

pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the file is larger than this server's limit of {limit} bytes"),
    )
}

/// A file name as shown to people: 1 to 255 bytes, no control characters, no path.
fn check_name(name: &str) -> ApiResult<()> {
    let bad = name.trim().is_empty()
        || name.len() > 255
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\');
    if bad {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "name must be 1 to 255 bytes without control characters, / or \\",
        ));
    }
    Ok(())
}

/// 112 random bits, then the room's id mod 65536: the Redis store keeps an upload in its
/// room's partition and finds it by the id (`store/redis/keys.rs`, `upload_partition`).
fn new_id(room: RoomId) -> String {
    format!(
        "{:028x}{:04x}",
        rand::random::<u128>() >> 16,
        room.0 & 0xffff
    )
}

/// Stores an upload of `user` for `room` from `body` (at most `max_upload_bytes`; `declared`
/// is the request's Content-Length, checked first) and records it as pending.
pub async fn upload<S, E>(
    state: &AppState,
    user: UserId,
    room: RoomId,
    name: &str,
    declared: Option<u64>,
    mut body: S,
) -> ApiResult<Attachment>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let att = &state.attachments;
    let cfg = &att.config;
    let blobs = att.blobs()?.clone();
    check_name(name)?;
    crate::chat::require_member(state, room, user).await?;
    if declared.is_some_and(|n| n > cfg.max_upload_bytes) {
        return Err(too_large(cfg.max_upload_bytes));
    }
    let used = state.store.upload_usage(user).await?;
    let over_quota = |size: u64| cfg.quota_bytes > 0 && used.saturating_add(size) > cfg.quota_bytes;
    if over_quota(declared.unwrap_or(0)) {
        return Err(crate::store::quota_exceeded());
    }
    let id = new_id(room);
    let path = blob_path(&id, Which::Original);
    let mut writer = WriteMultipart::new_with_chunk_size(
        blobs.put_multipart(&path).await.map_err(storage_error)?,
        att.chunk,
    );
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut size = 0u64;
    let mut content_type = None;
    let refusal = loop {
        let chunk = match body.next().await {
            None => break None,
            Some(Ok(chunk)) => chunk,
            Some(Err(_)) => {
                break Some(ApiError::new(
                    ErrorCode::BadRequest,
                    "the upload was interrupted",
                ));
            }
        };
        size += chunk.len() as u64;
        if size > cfg.max_upload_bytes {
            break Some(too_large(cfg.max_upload_bytes));
        }
        if over_quota(size) {
            break Some(crate::store::quota_exceeded());
        }
        if head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - head.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == SNIFF_LEN {
                match sniff::accept(cfg, &head) {
                    Ok(t) => content_type = Some(t),
                    Err(e) => break Some(e),
                }
            }
        }
        if let Err(e) = writer.wait_for_capacity(IN_FLIGHT).await {
            break Some(storage_error(e));
        }
        writer.put(chunk);
    };
    let content_type = match (refusal, content_type) {
        (Some(e), _) => return abort(writer, e).await,
        (None, Some(t)) => t,
        (None, None) => match sniff::accept(cfg, &head) {
            Ok(t) => t,
            Err(e) => return abort(writer, e).await,
        },
    };
    writer.finish().await.map_err(storage_error)?;
    let mut record = UploadRecord {
        id: id.clone(),
        owner: user,
        room,
        name: name.to_owned(),
        size,
        content_type: content_type.to_owned(),
        width: None,
        height: None,
        thumbnail: false,
        created_ts: now_ms(),
        seq: None,
        dead: false,
    };
    let stored = async {
        if images::is_image(content_type) {
            images::process(&blobs, cfg, &mut record).await?;
        }
        state.store.create_upload(&record, cfg.quota_bytes).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = stored {
        delete_files(&blobs, &id).await;
        return Err(e);
    }
    tracing::info!(upload = %id, size = record.size, "stored an upload");
    Ok(record.view())
}

async fn abort<T>(writer: WriteMultipart, e: ApiError) -> ApiResult<T> {
    if let Err(err) = writer.abort().await {
        tracing::warn!(error = %err, "could not abort a refused upload");
    }
    Err(e)
}

/// Deletes both files of an upload; missing ones are fine.
async fn delete_files(blobs: &Arc<dyn ObjectStore>, id: &str) -> bool {
    let mut ok = true;
    for which in [Which::Original, Which::Thumbnail] {
        match blobs.delete(&blob_path(id, which)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(upload = %id, error = %e, "could not delete an attachment file");
                ok = false;
            }
        }
    }
    ok
}

/// The attachments of a new message of `user` in `room`: each id a live upload of theirs for
/// this room (the store checks again, atomically, that each is still pending when the message
/// is appended), at most `max_per_message`, none twice.
pub async fn for_message(
    state: &AppState,
    user: UserId,
    room: RoomId,
    ids: &[String],
) -> ApiResult<Vec<Attachment>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let max = state.attachments.config.max_per_message;
    if ids.len() > max {
        return Err(ApiError::new(
            ErrorCode::InvalidMessage,
            format!("a message may have at most {max} attachments"),
        ));
    }
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(ApiError::new(
            ErrorCode::InvalidMessage,
            "the same attachment is listed twice",
        ));
    }
    let well_formed = ids
        .iter()
        .all(|id| protocol::attachment::is_attachment_id(id));
    let found: Option<Vec<Attachment>> = if well_formed {
        state
            .store
            .uploads(ids)
            .await?
            .into_iter()
            .map(|r| match r {
                Some(r) if r.owner == user && r.room == room && !r.dead => Some(r.view()),
                _ => None,
            })
            .collect()
    } else {
        None
    };
    match found {
        Some(attachments) => Ok(attachments),
        None => {
            // A non-member hears that first, as for any other message to the room.
            crate::chat::require_member(state, room, user).await?;
            Err(crate::store::not_attachable())
        }
    }
}

/// The upload `id` if `user` may read it: attached to a message of a room they are a member
/// of, or their own pending upload. Anything else is `attachment_not_found`, exactly as for an
/// id that does not exist.
pub async fn visible(state: &AppState, user: UserId, id: &str) -> ApiResult<UploadRecord> {
    state.attachments.blobs()?;
    if !protocol::attachment::is_attachment_id(id) {
        return Err(not_found());
    }
    let record = state
        .store
        .uploads(&[id.to_owned()])
        .await?
        .pop()
        .flatten()
        .filter(|r| !r.dead)
        .ok_or_else(not_found)?;
    let allowed = match record.seq {
        None => record.owner == user,
        Some(_) => state.store.role(record.room, user).await?.is_some(),
    };
    if allowed {
        Ok(record)
    } else {
        Err(not_found())
    }
}

/// An open file: its length and a stream of the requested bytes.
pub struct Opened {
    pub size: u64,
    pub body: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
}

/// The size of a file of an upload (no bytes read).
pub async fn size_of(state: &AppState, id: &str, which: Which) -> ApiResult<u64> {
    let blobs = state.attachments.blobs()?;
    match blobs.head(&blob_path(id, which)).await {
        Ok(meta) => Ok(meta.size),
        Err(object_store::Error::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(storage_error(e)),
    }
}

/// Streams `range` (half-open byte offsets) of a file, or all of it.
pub async fn open(
    state: &AppState,
    id: &str,
    which: Which,
    range: Option<std::ops::Range<u64>>,
) -> ApiResult<Opened> {
    let blobs = state.attachments.blobs()?;
    let options = GetOptions {
        range: range.map(GetRange::Bounded),
        ..Default::default()
    };
    match blobs.get_opts(&blob_path(id, which), options).await {
        Ok(result) => Ok(Opened {
            size: result.meta.size,
            body: match result.payload {
                GetResultPayload::File(file, _) => file_stream(file, result.range),
                GetResultPayload::Stream(_) => result.into_stream(),
            },
        }),
        Err(object_store::Error::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(storage_error(e)),
    }
}

/// How much of a file of the directory storage one blocking read takes. `object_store` reads
/// local files 8 KiB per blocking call, and downloads ran at a third of the disk's read speed
/// (`chat-bench files`, docs/BENCHMARKS.md).
const FILE_READ: usize = 256 * 1024;

/// `range` of a file of the directory storage, [`FILE_READ`] bytes per blocking read.
fn file_stream(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> futures_util::stream::BoxStream<'static, object_store::Result<Bytes>> {
    let step = |(mut file, at, end): (std::fs::File, u64, u64)| async move {
        if at >= end {
            return Ok(None);
        }
        let want = usize::try_from(end - at).map_or(FILE_READ, |left| left.min(FILE_READ));
        let read = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            file.seek(SeekFrom::Start(at))?;
            let mut chunk = vec![0; want];
            file.read_exact(&mut chunk)?;
            Ok::<_, std::io::Error>((file, Bytes::from(chunk)))
        })
        .await;
        let generic =
            |source: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                store: "LocalFileSystem",
                source,
            };
        let (file, chunk) = read
            .map_err(|e| generic(Box::new(e)))?
            .map_err(|e| generic(Box::new(e)))?;
        let next = at + chunk.len() as u64;
        Ok(Some((chunk, (file, next, end))))
    };
    futures_util::stream::try_unfold((file, range.start, range.end), step).boxed()
}

/// What one pass of the collector did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Uploads whose files and records were deleted.
    pub deleted: u64,
    /// Files without a record (a node died between storing a file and recording it).
    pub strays: u64,
    /// Half-written files of uploads a node died during (`blobs/{id}#N`: the temporary file
    /// the filesystem storage writes before renaming it into place). Directory storage only.
    pub partial: u64,
}

/// A file without a record is deleted once it is this old at least (whatever
/// `orphan_grace_secs` says): an upload being processed has its file before its record.
pub const STRAY_MIN_AGE: Duration = Duration::from_secs(3600);

/// One pass: condemns what nothing needs any more, deletes the files of dead uploads, then
/// their records. Safe to run on several nodes at once (every step is idempotent).
pub async fn collect(state: &AppState) -> ApiResult<Collected> {
    let att = &state.attachments;
    let Some(blobs) = att.blobs.clone() else {
        return Ok(Collected::default());
    };
    let grace_ms = (att.config.orphan_grace_secs as i64).saturating_mul(1000);
    state.store.condemn_uploads(now_ms() - grace_ms).await?;
    let mut done = Collected::default();
    let stray_ms = grace_ms.max(STRAY_MIN_AGE.as_millis() as i64);
    done.strays = sweep_strays(state, &blobs, now_ms() - stray_ms).await?;
    if let (None, Some(dir)) = (&att.config.s3, &att.config.dir) {
        done.partial = sweep_partial(dir.clone(), now_ms() - stray_ms).await;
    }
    loop {
        let ids = state.store.dead_uploads(100).await?;
        if ids.is_empty() {
            return Ok(done);
        }
        for id in ids {
            if !delete_files(&blobs, &id).await {
                // Storage trouble: the record stays dead; the next pass tries again.
                return Ok(done);
            }
            state.store.forget_upload(&id).await?;
            done.deleted += 1;
        }
    }
}

/// Deletes files last modified at or before `until` (ms) whose upload has no record. Lists
/// every stored file: one pass costs a listing of the storage and a store call per 100 files.
async fn sweep_strays(
    state: &AppState,
    blobs: &Arc<dyn ObjectStore>,
    until: i64,
) -> ApiResult<u64> {
    let mut old = Vec::new();
    for prefix in ["blobs", "thumbs"] {
        let mut listing = blobs.list(Some(&BlobPath::from(prefix)));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(storage_error)?;
            let Some(id) = meta.location.filename() else {
                continue;
            };
            if meta.last_modified.timestamp_millis() <= until && !old.iter().any(|o| o == id) {
                old.push(id.to_owned());
            }
        }
    }
    let mut deleted = 0;
    for chunk in old.chunks(100) {
        let records = state.store.uploads(chunk).await?;
        for (id, record) in chunk.iter().zip(records) {
            if record.is_none() && delete_files(blobs, id).await {
                tracing::info!(upload = %id, "deleted a file without a record");
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

/// Whether `name` is a temporary file of the filesystem storage: `{id}#{n}`, which
/// `object_store`'s `LocalFileSystem` writes an upload into and renames into place when it
/// completes. Its listings skip such files and its paths cannot name them, so a file left by a
/// process killed mid-upload is invisible to [`sweep_strays`] and must be found here.
fn is_partial(name: &str) -> bool {
    name.split_once('#').is_some_and(|(id, n)| {
        !id.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Deletes temporary upload files under `dir` last modified at or before `until` (ms). An
/// upload in progress writes its file with every chunk, so one untouched that long was
/// abandoned (its process died). Failures are logged: the next pass tries again.
async fn sweep_partial(dir: std::path::PathBuf, until: i64) -> u64 {
    let swept = tokio::task::spawn_blocking(move || {
        let mut deleted = 0;
        for sub in ["blobs", "thumbs"] {
            let entries = match std::fs::read_dir(dir.join(sub)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the attachment directory");
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if !name.to_str().is_some_and(is_partial) {
                    continue;
                }
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64);
                if modified.is_none_or(|m| m > until) {
                    continue;
                }
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = ?name, "deleted a half-written upload");
                        deleted += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = ?name, error = %e, "could not delete a half-written upload")
                    }
                }
            }
        }
        deleted
    })
    .await;
    swept.unwrap_or(0)
}

/// Runs [`collect`] every `collect_every_secs`, and soon after [`Attachments::wake`].
pub async fn run_collector(state: AppState) {
    if state.attachments.blobs.is_none() {
        return;
    }
    let every = Duration::from_secs(state.attachments.config.collect_every_secs);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = state.attachments.wake.notified() => {}
        }
        match collect(&state).await {
            Ok(c) if c.deleted + c.strays + c.partial > 0 => {
                tracing::info!(
                    deleted = c.deleted,
                    strays = c.strays,
                    partial = c.partial,
                    "collected attachments"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "attachment collection failed"),
        }
    }
}

/// The type of the thumbnail of a file of `content_type`: JPEG for photos, PNG otherwise
/// (keeps transparency).
pub fn thumbnail_type(content_type: &str) -> &'static str {
    if content_type == "image/jpeg" {
        "image/jpeg"
    } else {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use super::is_partial;

    #[test]
    fn temporary_files_are_told_apart_from_uploads() {
        assert!(is_partial("0123456789abcdef0123456789abcdef#1"));
        assert!(is_partial("0123456789abcdef0123456789abcdef#42"));
        assert!(!is_partial("0123456789abcdef0123456789abcdef"));
        assert!(!is_partial("0123456789abcdef0123456789abcdef#"));
        assert!(!is_partial("0123456789abcdef0123456789abcdef#1a"));
        assert!(!is_partial("#1"));
    }
}
