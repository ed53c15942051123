//! Attachments (issue 14): sending files with a message, and getting them back.
//!
//! **Sending.** [`Backend::send_files`] (the file picker, drag and drop) and
//! [`Backend::send_bytes`] (a pasted screenshot) first copy every file into the staging folder
//! (`<data dir>/staging/<client id>/<position>`), so the original may be moved or deleted at
//! once, then write the message to the outbox with the list of its files. From there the
//! uploader, one task per backend, takes over: whenever the socket is up it uploads the files
//! of the oldest waiting message, one after the other, streamed from disk
//! ([`crate::api::Api::upload`]) with [`AppEvent::UploadProgress`] reports, records each
//! answer in the outbox entry (by position, so an upload repeated after a restart is never
//! counted twice), and once all are up hands the message to the outbox, which sends it under
//! its client id like any other (exactly once, also across reconnects and restarts). An upload
//! cut short (socket lost, app closed) starts that file again from its beginning; the server
//! collects the unfinished or unused upload by itself. A refusal (`too_large`,
//! `quota_exceeded`, `unsupported_type`, ...) marks the message failed with the server's code,
//! files kept, for the user to retry or discard. [`Backend::cancel_upload`] stops it and drops
//! the message. The staged copies go when the message is acknowledged, discarded or cancelled,
//! and at start for entries that no longer exist.
//!
//! **Receiving.** Messages carry the server's [`Attachment`] objects (cached with them, so
//! history shows them offline). The bytes come only through the backend: thumbnails and files
//! from the [`BlobCache`] or downloaded into it ([`Backend::attachment_bytes`]), or saved where
//! the user chose ([`Backend::save_attachment`]). The web view never loads a server URL.

use super::{key, Backend, EventSink, Inner};
use crate::api::{self, Api};
use crate::blobs;
use crate::cache::{OutboxEntry, Outgoing};
use crate::error::{Error, Result};
use crate::outbox::new_client_id;
use protocol::attachment::{is_attachment_id, MAX_ATTACHMENTS_PER_MESSAGE};
use protocol::ipc::{AppEvent, BlobCacheView, MessageView, UploadView};
use protocol::{validate, Attachment, ErrorCode, RoomId};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Bytes read from disk per piece of an upload.
const CHUNK: usize = 64 * 1024;
/// Progress is reported at most this often per upload (and at the end of each file).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Waits before trying a failed upload again: doubling from the first to the second.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// The most bytes [`Backend::attachment_bytes`] holds in memory (images are at most the
/// server's `max_image_bytes`, 25 MiB by default; other files are saved, not shown).
const MAX_IN_MEMORY: usize = 64 * 1024 * 1024;
/// Longest file name the server takes, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// The environment variable that slows uploads down to so many bytes per second (tests and
/// the end-to-end run use it to see progress; never set in normal use).
pub const THROTTLE_ENV: &str = "CHAT_TEST_UPLOAD_BYTES_PER_SEC";

/// The uploader's state, apart from [`Inner`] so its task can wait without keeping the core
/// alive.
#[derive(Debug, Default)]
pub(super) struct Uploads {
    wake: Notify,
    stop: CancellationToken,
    /// The outbox entry being uploaded, and how to stop just that one.
    current: Mutex<Option<(String, CancellationToken)>>,
    /// Bytes per second uploads are held to (0: as fast as they go).
    throttle: AtomicU64,
}

impl Uploads {
    /// Something to upload may be there (a new message, a socket up, a retry).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ends the uploader (the backend closes).
    pub(super) fn stop(&self) {
        self.stop.cancel();
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<(String, CancellationToken)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the upload of `client_id` if it is the one running.
    fn cancel(&self, client_id: &str) {
        if let Some((id, token)) = self.current().as_ref() {
            if id == client_id {
                token.cancel();
            }
        }
    }

    /// Stops whatever upload is running (its message is gone: logout).
    fn cancel_any(&self) {
        if let Some((_, token)) = self.current().as_ref() {
            token.cancel();
        }
    }
}

/// Where a file to attach comes from.
enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// What one pass of the uploader ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Nothing left that can go now: wait to be woken.
    Idle,
    /// Something failed for now: try again after a while (or when woken).
    Retry,
}

/// Why one file's upload did not finish.
enum Failure {
    /// Cancelled by the user, or the backend is closing.
    Cancelled,
    /// Worth trying again (network, a busy server).
    Transient(String),
    /// The server (or the disk) refused for good: the message fails with this code.
    Refused(ErrorCode, String),
    /// The token was refused.
    Unauthorized(Error),
}

/// A name the server takes (1–255 bytes, no control characters, `/` or `\`) from a file's.
pub fn clean_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = if c.is_control() || c == '/' || c == '\\' {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() {
        "file".to_owned()
    } else {
        out
    }
}

/// Whether `id` is a client id this app makes (it names a staging folder).
fn is_client_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Backend {
    /// Sends the files at `paths` (with `body` as its text, which may be empty) as one
    /// message: staged, uploaded and sent through the outbox. Returns it pending.
    pub async fn send_files(
        &self,
        room: RoomId,
        paths: &[PathBuf],
        body: &str,
        reply_to: Option<u64>,
    ) -> Result<MessageView> {
        let sources = paths
            .iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (clean_name(&name), Source::Path(p.clone()))
            })
            .collect();
        self.send_staged(room, body, reply_to, sources).await
    }

    /// Sends `bytes` (a pasted image) as a file called `name`, like [`Backend::send_files`].
    pub async fn send_bytes(
        &self,
        room: RoomId,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<MessageView> {
        let sources = vec![(clean_name(name), Source::Bytes(bytes))];
        self.send_staged(room, "", None, sources).await
    }

    async fn send_staged(
        &self,
        room: RoomId,
        body: &str,
        reply_to: Option<u64>,
        sources: Vec<(String, Source)>,
    ) -> Result<MessageView> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to send files"))?;
        if sources.is_empty() {
            return Err(Error::Invalid("choose a file to send".into()));
        }
        if sources.len() > MAX_ATTACHMENTS_PER_MESSAGE {
            return Err(Error::server(
                ErrorCode::InvalidMessage,
                format!("at most {MAX_ATTACHMENTS_PER_MESSAGE} files go in one message"),
            ));
        }
        let body = if body.trim().is_empty() { "" } else { body };
        if !body.is_empty() {
            let max = self.inner.lock().limits.max_message_bytes;
            validate::message_body(body, max)?;
        }
        let client_id = new_client_id();
        let files = self.inner.stage(&client_id, sources).await?;
        let msg = Outgoing {
            body: body.to_owned(),
            reply_to,
            ..Outgoing::default()
        };
        let entry = match self
            .inner
            .outbox
            .enqueue_as(client_id.clone(), room, &msg, &files)
            .await
        {
            Ok(entry) => entry,
            Err(e) => {
                self.inner.unstage(&client_id).await;
                return Err(e);
            }
        };
        let mut view = entry.view(&me);
        if let Some(original) = view.reply_to {
            view.quote = match self.inner.cache.quote(room, original).await {
                Ok(quote) => quote,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a reply's original");
                    None
                }
            };
        }
        // Also as an event (before any progress): files may come from elsewhere than the UI's
        // own call (a drop on the window), and the progress reports refer to this message.
        self.inner.sink.emit(AppEvent::Message {
            message: view.clone(),
        });
        self.inner.uploads.wake();
        Ok(view)
    }

    /// Stops the upload of the pending message `client_id` and drops the message with its
    /// staged files: nothing is sent. (Once every file is up the message may already be on
    /// its way; it then arrives like any other.)
    pub async fn cancel_upload(&self, client_id: &str) -> Result<()> {
        let cache = &self.inner.cache;
        let entry = cache.outbox_entry(client_id).await?.ok_or_else(|| {
            Error::Invalid("that message is no longer waiting (sent or cancelled)".into())
        })?;
        if entry.file_list().is_empty() {
            return Err(Error::Invalid("that message has no files".into()));
        }
        // The entry goes first: an upload finishing meanwhile then finds nothing to send.
        cache.outbox_discard(client_id).await?;
        self.inner.uploads.cancel(client_id);
        self.inner.unstage(client_id).await;
        Ok(())
    }

    /// The bytes of attachment `id` (its thumbnail with `thumbnail`), from the file cache or
    /// downloaded into it.
    pub async fn attachment_bytes(&self, id: &str, thumbnail: bool) -> Result<Vec<u8>> {
        if !is_attachment_id(id) {
            return Err(Error::Invalid("not an attachment id".into()));
        }
        let key = blobs::key(id, thumbnail);
        if let Some(bytes) = self.inner.blobs.get(&key).await {
            return Ok(bytes);
        }
        let (api, token) = self.inner.authed()?;
        let mut response = self
            .inner
            .checked(api.download(&token, id, thumbnail).await)
            .await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = api::next_chunk(&mut response).await? {
            bytes.extend_from_slice(chunk.as_ref());
            if bytes.len() > MAX_IN_MEMORY {
                return Err(Error::Invalid(
                    "the file is too large to show here; save it instead".into(),
                ));
            }
        }
        self.inner.blobs.put(&key, &bytes).await;
        Ok(bytes)
    }

    /// Saves attachment `id` at `path` (chosen by the user): copied from the file cache, or
    /// downloaded straight to disk (never whole in memory). Returns the bytes written.
    pub async fn save_attachment(&self, id: &str, path: &Path) -> Result<u64> {
        if !is_attachment_id(id) {
            return Err(Error::Invalid("not an attachment id".into()));
        }
        let cannot = |e: std::io::Error| Error::Invalid(format!("cannot save the file: {e}"));
        if let Some(cached) = self.inner.blobs.file(&blobs::key(id, false)).await {
            return tokio::fs::copy(&cached, path).await.map_err(cannot);
        }
        let (api, token) = self.inner.authed()?;
        let mut response = self
            .inner
            .checked(api.download(&token, id, false).await)
            .await?;
        // Written beside the target and renamed at the end: a failed download leaves the
        // chosen name untouched.
        let mut partial = path.as_os_str().to_owned();
        partial.push(".part");
        let partial = PathBuf::from(partial);
        let written = async {
            let mut file = tokio::fs::File::create(&partial).await.map_err(cannot)?;
            let mut size = 0u64;
            while let Some(chunk) = api::next_chunk(&mut response).await? {
                file.write_all(chunk.as_ref()).await.map_err(cannot)?;
                size += chunk.as_ref().len() as u64;
            }
            file.flush().await.map_err(cannot)?;
            file.sync_all().await.map_err(cannot)?;
            tokio::fs::rename(&partial, path).await.map_err(cannot)?;
            Ok::<u64, Error>(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written
    }

    /// How much the file cache holds, and may.
    pub async fn blob_cache(&self) -> BlobCacheView {
        BlobCacheView {
            used: self.inner.blobs.used().await,
            limit: self.inner.blobs.limit(),
        }
    }

    /// Sets the file cache's size (kept in the settings); evicts down to it at once.
    pub async fn set_blob_cache_limit(&self, bytes: u64) -> Result<BlobCacheView> {
        self.inner
            .cache
            .set_json_setting(key::BLOB_CACHE_LIMIT, &bytes)
            .await?;
        self.inner.blobs.set_limit(bytes).await;
        Ok(self.blob_cache().await)
    }

    /// Holds uploads to `bytes_per_sec` (`None`: full speed). For tests and the end-to-end
    /// run, which need an upload slow enough to watch ([`THROTTLE_ENV`] in the app).
    pub fn throttle_uploads(&self, bytes_per_sec: Option<u64>) {
        self.inner
            .uploads
            .throttle
            .store(bytes_per_sec.unwrap_or(0), Ordering::Relaxed);
    }
}

impl Inner {
    fn staging_dir(&self) -> PathBuf {
        self.options.files_dir.join("staging")
    }

    fn staged_file(&self, client_id: &str, pos: usize) -> PathBuf {
        self.staging_dir().join(client_id).join(pos.to_string())
    }

    /// Copies the files to attach into `staging/<client_id>/`; all or nothing.
    async fn stage(
        &self,
        client_id: &str,
        sources: Vec<(String, Source)>,
    ) -> Result<Vec<UploadView>> {
        let dir = self.staging_dir().join(client_id);
        let staged = async {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Error::Invalid(format!("cannot prepare the upload: {e}")))?;
            let mut files = Vec::new();
            for (pos, (name, source)) in sources.into_iter().enumerate() {
                let target = dir.join(pos.to_string());
                let size = match source {
                    Source::Path(path) => {
                        let meta = tokio::fs::metadata(&path)
                            .await
                            .map_err(|e| Error::Invalid(format!("cannot read {name}: {e}")))?;
                        if !meta.is_file() {
                            return Err(Error::Invalid(format!("{name} is not a file")));
                        }
                        tokio::fs::copy(&path, &target)
                            .await
                            .map_err(|e| Error::Invalid(format!("cannot read {name}: {e}")))?
                    }
                    Source::Bytes(bytes) => {
                        tokio::fs::write(&target, &bytes)
                            .await
                            .map_err(|e| Error::Invalid(format!("cannot keep {name}: {e}")))?;
                        bytes.len() as u64
                    }
                };
                files.push(UploadView { name, size });
            }
            Ok::<_, Error>(files)
        }
        .await;
        if staged.is_err() {
            self.unstage(client_id).await;
        }
        staged
    }

    /// Deletes the staged files of outbox entry `client_id` (sent, discarded or cancelled).
    pub(super) async fn unstage(&self, client_id: &str) {
        if !is_client_id(client_id) {
            return;
        }
        remove_dir(&self.staging_dir().join(client_id)).await;
    }

    /// At start: deletes staged files of entries no longer in the outbox (the app closed
    /// between staging and recording, or after the ack and before the clean-up).
    pub(super) async fn sweep_staging(&self) -> Result<()> {
        let keep = self.cache.outbox_ids().await?;
        let Ok(mut dir) = tokio::fs::read_dir(self.staging_dir()).await else {
            return Ok(());
        };
        while let Ok(Some(item)) = dir.next_entry().await {
            let name = item.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                remove_dir(&item.path()).await;
            }
        }
        Ok(())
    }

    /// Logout, or another account: the running upload stops, the file cache and every
    /// staged file go.
    pub(super) async fn clear_files(&self) {
        self.uploads.cancel_any();
        self.blobs.clear().await;
        remove_dir(&self.staging_dir()).await;
    }

    /// Uploads what the outbox holds, oldest message first, while the socket is up.
    async fn upload_pending(&self) -> Pass {
        let Ok((api, token)) = self.authed() else {
            return Pass::Idle;
        };
        // Offline: `welcome` wakes the uploader when the socket is back.
        if self.link.epoch().is_none() {
            return Pass::Idle;
        }
        let entries = match self.cache.outbox_uploading().await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox's uploads");
                return Pass::Retry;
            }
        };
        for entry in entries {
            if self.uploads.stop.is_cancelled() {
                return Pass::Idle;
            }
            if self.upload_entry(&api, &token, &entry).await == Pass::Retry {
                return Pass::Retry;
            }
        }
        Pass::Idle
    }

    /// Uploads the files of `entry` not uploaded yet, then sends it.
    async fn upload_entry(&self, api: &Api, token: &str, entry: &OutboxEntry) -> Pass {
        let files = entry.file_list();
        let done = entry.attachment_list().len();
        let total: u64 = files.iter().map(|f| f.size).sum();
        let mut sent: u64 = files.iter().take(done).map(|f| f.size).sum();
        let cancel = self.uploads.stop.child_token();
        *self.uploads.current() = Some((entry.client_id.clone(), cancel.clone()));
        let outcome = async {
            for (pos, file) in files.iter().enumerate().skip(done) {
                let attachment = match self
                    .upload_file(api, token, entry, pos, file, sent, total, &cancel)
                    .await
                {
                    Ok(attachment) => attachment,
                    Err(failure) => return Err(failure),
                };
                match self
                    .cache
                    .outbox_uploaded(&entry.client_id, pos, &attachment)
                    .await
                {
                    Ok(true) => {}
                    // Cancelled or discarded meanwhile: nothing to send.
                    Ok(false) => return Err(Failure::Cancelled),
                    Err(e) => return Err(Failure::Transient(e.to_string())),
                }
                sent += file.size;
            }
            Ok::<(), Failure>(())
        }
        .await;
        *self.uploads.current() = None;
        match outcome {
            Ok(()) => {
                // Every file is up: the outbox sends it (now, or at the next flush).
                match self.cache.outbox_entry(&entry.client_id).await {
                    Ok(Some(entry)) if entry.is_pending() => {
                        self.outbox.send_if_flushed(&entry).await
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
                }
                Pass::Idle
            }
            Err(Failure::Cancelled) => Pass::Idle,
            Err(Failure::Transient(reason)) => {
                tracing::info!(%reason, "upload interrupted; trying again later");
                Pass::Retry
            }
            Err(Failure::Refused(code, reason)) => {
                tracing::info!(%code, %reason, "upload refused");
                match self
                    .cache
                    .outbox_fail(&entry.client_id, code, &reason)
                    .await
                {
                    Ok(true) => {
                        if let (Some(me), Ok(Some(failed))) =
                            (self.me(), self.cache.outbox_entry(&entry.client_id).await)
                        {
                            self.sink.emit(AppEvent::Message {
                                message: failed.view(&me),
                            });
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot mark a message failed"),
                }
                Pass::Idle
            }
            Err(Failure::Unauthorized(e)) => {
                let _ = self.checked::<()>(Err(e)).await;
                Pass::Idle
            }
        }
    }

    /// Streams staged file `pos` of `entry` to the server, reporting progress (`base` bytes
    /// of `total` were sent before it).
    #[allow(clippy::too_many_arguments)]
    async fn upload_file(
        &self,
        api: &Api,
        token: &str,
        entry: &OutboxEntry,
        pos: usize,
        file: &UploadView,
        base: u64,
        total: u64,
        cancel: &CancellationToken,
    ) -> std::result::Result<Attachment, Failure> {
        let path = self.staged_file(&entry.client_id, pos);
        let opened = tokio::fs::File::open(&path).await;
        let staged = match opened {
            Ok(f) => f,
            Err(e) => {
                return Err(Failure::Refused(
                    ErrorCode::AttachmentNotFound,
                    format!(
                        "the copy of {} made when it was attached is gone: {e}",
                        file.name
                    ),
                ))
            }
        };
        let len = match staged.metadata().await {
            Ok(meta) => meta.len(),
            Err(e) => return Err(Failure::Transient(e.to_string())),
        };
        let reader = Reader {
            file: staged,
            left: len,
            failed: false,
            progress: Progress {
                sink: self.sink.clone(),
                room: entry.room_id(),
                client_id: entry.client_id.clone(),
                sent: base,
                total,
                last: None,
            },
            uploads: self.uploads_handle(),
        };
        let stream = futures_util::stream::unfold(reader, Reader::read_next);
        let body = reqwest::Body::wrap_stream(stream);
        let uploaded = tokio::select! {
            _ = cancel.cancelled() => return Err(Failure::Cancelled),
            uploaded = api.upload(token, entry.room_id(), &file.name, len, body) => uploaded,
        };
        uploaded.map_err(|e| match e.server_code() {
            Some(ErrorCode::Unauthorized) => Failure::Unauthorized(e),
            Some(code) if crate::outbox::is_transient(code) => Failure::Transient(e.to_string()),
            // The server's message (`Error::Server` displays it).
            Some(code) => Failure::Refused(code, e.to_string()),
            None => Failure::Transient(e.to_string()),
        })
    }

    fn uploads_handle(&self) -> Arc<Uploads> {
        self.uploads.clone()
    }
}

/// Starts the backend's uploader: a pass over the outbox whenever woken, and again after a
/// while when a pass failed for now. Ends with [`Uploads::stop`] or when the backend is gone.
pub(super) fn spawn_uploader(inner: &Arc<Inner>) {
    let uploads = inner.uploads.clone();
    let core = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut retry = RETRY_FIRST;
        loop {
            let pass = match core.upgrade() {
                Some(inner) => inner.upload_pending().await,
                None => return,
            };
            let wait = match pass {
                Pass::Idle => {
                    retry = RETRY_FIRST;
                    Duration::from_secs(24 * 3600)
                }
                Pass::Retry => {
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
            };
            tokio::select! {
                _ = uploads.stop.cancelled() => return,
                _ = uploads.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Reports an upload's progress to the UI, at most every [`PROGRESS_EVERY`].
struct Progress {
    sink: Arc<dyn EventSink>,
    room: RoomId,
    client_id: String,
    sent: u64,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    fn advance(&mut self, n: usize, end_of_file: bool) {
        self.sent += n as u64;
        let now = Instant::now();
        if end_of_file
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY)
        {
            self.last = Some(now);
            self.sink.emit(AppEvent::UploadProgress {
                room: self.room,
                client_id: self.client_id.clone(),
                sent: self.sent.min(self.total),
                total: self.total,
            });
        }
    }
}

/// A staged file read piece by piece as an upload body.
struct Reader {
    file: tokio::fs::File,
    /// Bytes of the file not read yet.
    left: u64,
    failed: bool,
    progress: Progress,
    uploads: Arc<Uploads>,
}

impl Reader {
    async fn read_next(mut self) -> Option<(std::io::Result<Vec<u8>>, Reader)> {
        if self.failed {
            return None;
        }
        let mut buf = vec![0u8; CHUNK];
        let n = match self.file.read(&mut buf).await {
            Ok(0) => return None,
            Ok(n) => n,
            Err(e) => {
                self.failed = true;
                return Some((Err(e), self));
            }
        };
        buf.truncate(n);
        let throttle = self.uploads.throttle.load(Ordering::Relaxed);
        if let Some(ms) = (n as u64).saturating_mul(1000).checked_div(throttle) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.left = self.left.saturating_sub(n as u64);
        self.progress.advance(n, self.left == 0);
        Some((Ok(buf), self))
    }
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot delete staged files"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_server_takes() {
        assert_eq!(clean_name("plan.pdf"), "plan.pdf");
        assert_eq!(clean_name("a/b\\c\u{7}.txt"), "a_b_c_.txt");
        assert_eq!(clean_name("   "), "file");
        let long = "é".repeat(200);
        let cleaned = clean_name(&long);
        assert!(cleaned.len() <= MAX_NAME_BYTES && cleaned.chars().all(|c| c == 'é'));
        assert!(is_client_id(&new_client_id()));
        assert!(!is_client_id("../etc"));
    }
}
