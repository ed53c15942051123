//! The outbox: every message is written to SQLite (pending) before it is sent, so nothing typed
//! is lost to a dropped connection or a closed app.
//!
//! Each message gets a client id (a UUID) that the server uses as its idempotency key, so
//! sending the same entry again — after a reconnect, or after the app restarted with entries
//! still pending — never creates a second message. On `ack` the entry moves to the cached
//! messages under the server's seq ([`crate::cache::Cache::outbox_acked`]); on a permanent
//! `error` for its id it is marked failed with the server's code and reason, for the user to
//! retry or discard; transient refusals (rate limits, a busy server) are retried after the delay
//! the server asks for.
//!
//! Order: on every `welcome` all pending entries are sent in the order they were written
//! ([`flush`]). New messages go straight to the socket only once that flush has happened on the
//! current socket; before that, the flush picks them up. [`SendState`] behind an async mutex
//! makes the two exclusive, so no message overtakes an older pending one.
//!
//! Reactions go through the outbox too (`reaction_outbox`): the change shows at once in the
//! cache, and the `react` frame carries a `ref` (`react:<op>`) that the server's `ok` settles.
//! Until then it is sent again on every `welcome`; reactions are set operations on the server,
//! so a resend never counts twice. Only the latest intent per message and emoji is kept.
//!
//! [`Outbox`] knows the cache and the [`Link`], not the backend: it returns what changed (an
//! entry that failed) and the backend tells the UI.

use crate::cache::{Cache, OutboxEntry, Outgoing, PendingReaction};
use crate::connection::Link;
use crate::error::{Error, Result};
use protocol::ipc::{MessageView, UploadView};
use protocol::ws::ClientFrame;
use protocol::{ErrorCode, RoomId, UserId};
use std::sync::Arc;
use std::time::Duration;

/// Which socket the outbox has been flushed to.
#[derive(Debug, Default)]
struct SendState {
    /// The [`Link`] epoch of the last completed flush.
    flushed_epoch: Option<u64>,
}

/// The outbox: pending messages in the cache, sent over the [`Link`] in the order written.
#[derive(Clone)]
pub struct Outbox {
    cache: Cache,
    link: Link,
    /// Serializes sends so messages leave in the order they were written.
    sending: Arc<tokio::sync::Mutex<SendState>>,
}

fn frame(entry: &OutboxEntry) -> ClientFrame {
    ClientFrame::Send {
        room: entry.room_id(),
        id: entry.client_id.clone(),
        body: entry.body.clone(),
        reply_to: entry.reply_to_seq(),
        mentions: entry.mention_ids(),
        mention_room: entry.mention_room,
        attachments: entry.attachment_list().into_iter().map(|a| a.id).collect(),
    }
}

/// A new client message id (the server's idempotency key).
pub fn new_client_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `ref` prefix of `react` frames.
pub const REACT_REF: &str = "react:";

fn react_frame(pending: &PendingReaction) -> ClientFrame {
    ClientFrame::React {
        room: pending.room,
        seq: pending.seq,
        emoji: pending.emoji.clone(),
        remove: pending.remove,
        reference: Some(format!("{REACT_REF}{}", pending.op)),
    }
}

/// Refusals worth trying again by themselves: nothing was wrong with the message.
pub(crate) fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::ServerBusy
            | ErrorCode::StoreUnavailable
            | ErrorCode::Internal
    )
}

impl Outbox {
    pub fn new(cache: Cache, link: Link) -> Outbox {
        Outbox {
            cache,
            link,
            sending: Arc::default(),
        }
    }

    /// Writes a new pending entry and sends it if the outbox is flushed on a live socket.
    pub async fn enqueue(&self, room: RoomId, msg: &Outgoing) -> Result<OutboxEntry> {
        self.enqueue_as(new_client_id(), room, msg, &[]).await
    }

    /// [`Outbox::enqueue`] under a client id the caller made (it staged files under it). An
    /// entry with files is sent once they are uploaded ([`crate::backend`]'s uploader).
    pub async fn enqueue_as(
        &self,
        client_id: String,
        room: RoomId,
        msg: &Outgoing,
        files: &[UploadView],
    ) -> Result<OutboxEntry> {
        self.cache
            .outbox_add_with_files(&client_id, room, msg, files)
            .await?;
        // Read back for the stored fields. A reconnect's flush may already have sent the entry
        // and its ack removed it (found by the fault runs, issue 5): it was delivered, so report
        // it as written instead of failing the send.
        let entry = match self.cache.outbox_entry(&client_id).await? {
            Some(entry) => entry,
            None => {
                return Ok(OutboxEntry {
                    client_id,
                    room: i64::try_from(room.0).unwrap_or(i64::MAX),
                    body: msg.body.clone(),
                    created: crate::cache::now_ms(),
                    state: "pending".into(),
                    fail_code: None,
                    fail_reason: None,
                    reply_to: msg.reply_to.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                    mentions: serde_json::to_string(&msg.mentions)
                        .unwrap_or_else(|_| "[]".to_owned()),
                    mention_room: msg.mention_room,
                    files: serde_json::to_string(files).unwrap_or_else(|_| "[]".to_owned()),
                    attachments: "[]".to_owned(),
                })
            }
        };
        self.send_if_flushed(&entry).await;
        Ok(entry)
    }

    /// Makes a failed entry pending again and sends it like a new one.
    pub async fn retry(&self, client_id: &str) -> Result<OutboxEntry> {
        if !self.cache.outbox_retry(client_id).await? {
            return Err(Error::Invalid("no such message in the outbox".into()));
        }
        let entry = self
            .cache
            .outbox_entry(client_id)
            .await?
            .ok_or_else(|| Error::Invalid("no such message in the outbox".into()))?;
        self.send_if_flushed(&entry).await;
        Ok(entry)
    }

    /// Sends `entry` now if the outbox has been flushed on the live socket and its files are
    /// uploaded (else the next flush, or the uploader, sends it).
    pub async fn send_if_flushed(&self, entry: &OutboxEntry) {
        if entry.is_ready() {
            self.send_frame_if_flushed(frame(entry)).await;
        }
    }

    /// Sends `frame` now if the outbox has been flushed on the live socket (else the next
    /// flush sends what it stands for).
    async fn send_frame_if_flushed(&self, frame: ClientFrame) {
        let sending = self.sending.lock().await;
        let epoch = self.link.epoch();
        if epoch.is_some() && sending.flushed_epoch == epoch {
            self.link.send(frame);
        }
    }

    /// Sends every pending entry, oldest first, on the socket that just said `welcome`.
    pub async fn flush(&self, link: &Link) -> Result<()> {
        let mut sending = self.sending.lock().await;
        let epoch = link.epoch();
        let pending = self.cache.outbox_pending().await?;
        if !pending.is_empty() {
            tracing::info!(count = pending.len(), "sending pending messages");
        }
        for entry in &pending {
            if !link.send(frame(entry)) {
                // The socket is already gone; the next welcome flushes again.
                return Ok(());
            }
        }
        for pending in self.cache.reactions_pending().await? {
            if !link.send(react_frame(&pending)) {
                return Ok(());
            }
        }
        sending.flushed_epoch = epoch;
        Ok(())
    }

    /// The user adds (or takes back) a reaction: applied to the cache at once, queued, and
    /// sent when the outbox is flushed on a live socket. Returns the message if it changed.
    pub async fn react(
        &self,
        room: RoomId,
        seq: u64,
        me: UserId,
        emoji: &str,
        remove: bool,
    ) -> Result<Option<MessageView>> {
        let changed = self
            .cache
            .react_locally(room, seq, me, emoji, !remove)
            .await?;
        let pending = self.cache.reaction_queue(room, seq, emoji, remove).await?;
        self.send_frame_if_flushed(react_frame(&pending)).await;
        Ok(changed)
    }

    /// The server's `ok` for `reference`: a confirmed reaction leaves the queue.
    pub async fn confirmed(&self, reference: &str) -> Result<()> {
        if let Some(op) = reference.strip_prefix(REACT_REF) {
            self.cache.reaction_done(op).await?;
        }
        Ok(())
    }

    /// The server refused the `react` sent as `reference`. Transient refusals are sent again
    /// after the delay asked for; otherwise the change leaves the queue and is undone in the
    /// cache (returned, for the UI). Nothing when `reference` is not a reaction's.
    pub async fn reaction_refused(
        &self,
        reference: &str,
        me: UserId,
        code: ErrorCode,
        retry_after_ms: Option<u64>,
    ) -> Result<Option<MessageView>> {
        let Some(op) = reference.strip_prefix(REACT_REF) else {
            return Ok(None);
        };
        let Some(pending) = self.cache.reaction_op(op).await? else {
            return Ok(None);
        };
        if is_transient(code) {
            let delay = Duration::from_millis(retry_after_ms.unwrap_or(1000).clamp(100, 60_000));
            let outbox = self.clone();
            let op = op.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match outbox.cache.reaction_op(&op).await {
                    Ok(Some(pending)) => outbox.send_frame_if_flushed(react_frame(&pending)).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the reaction outbox"),
                }
            });
            return Ok(None);
        }
        tracing::info!(room = %pending.room, %code, "reaction refused");
        self.cache.reaction_done(op).await?;
        self.cache
            .react_locally(
                pending.room,
                pending.seq,
                me,
                &pending.emoji,
                pending.remove,
            )
            .await
    }

    /// The server refused the `send` of `client_id`. Transient refusals are sent again after
    /// the delay the server asks for; otherwise the entry is marked failed and returned (for
    /// the UI).
    pub async fn refused(
        &self,
        room: RoomId,
        client_id: &str,
        code: ErrorCode,
        reason: &str,
        retry_after_ms: Option<u64>,
    ) -> Result<Option<OutboxEntry>> {
        if is_transient(code) {
            let delay = Duration::from_millis(retry_after_ms.unwrap_or(1000).clamp(100, 60_000));
            tracing::info!(%room, %code, ?delay, "send refused for now; retrying");
            let outbox = self.clone();
            let client_id = client_id.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match outbox.cache.outbox_entry(&client_id).await {
                    Ok(Some(entry)) if entry.is_pending() => outbox.send_if_flushed(&entry).await,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
                }
            });
            return Ok(None);
        }
        tracing::info!(%room, %code, %reason, "send refused");
        if self.cache.outbox_fail(client_id, code, reason).await? {
            return self.cache.outbox_entry(client_id).await;
        }
        Ok(None)
    }
}
