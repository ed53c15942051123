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

use crate::backend::Inner;
use crate::cache::OutboxEntry;
use crate::connection::Link;
use crate::error::{Error, Result};
use protocol::ipc::AppEvent;
use protocol::ws::ClientFrame;
use protocol::{ErrorCode, RoomId};
use std::time::Duration;

/// Which socket the outbox has been flushed to.
#[derive(Debug, Default)]
pub(crate) struct SendState {
    /// The [`Link`] epoch of the last completed flush.
    flushed_epoch: Option<u64>,
}

fn frame(entry: &OutboxEntry) -> ClientFrame {
    ClientFrame::Send {
        room: entry.room_id(),
        id: entry.client_id.clone(),
        body: entry.body.clone(),
    }
}

/// Refusals worth trying again by themselves: nothing was wrong with the message.
fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::ServerBusy
            | ErrorCode::StoreUnavailable
            | ErrorCode::Internal
    )
}

/// Writes a new pending entry and sends it if the outbox is flushed on a live socket.
pub(crate) async fn enqueue(inner: &Inner, room: RoomId, body: &str) -> Result<OutboxEntry> {
    let client_id = uuid::Uuid::new_v4().simple().to_string();
    inner.cache.outbox_add(&client_id, room, body).await?;
    // Read back for the stored fields. A reconnect's flush may already have sent the entry
    // and its ack removed it (found by the fault runs, issue 5): it was delivered, so report
    // it as written instead of failing the send.
    let entry = match inner.cache.outbox_entry(&client_id).await? {
        Some(entry) => entry,
        None => {
            return Ok(OutboxEntry {
                client_id,
                room: i64::try_from(room.0).unwrap_or(i64::MAX),
                body: body.to_owned(),
                created: crate::cache::now_ms(),
                state: "pending".into(),
                fail_code: None,
                fail_reason: None,
            })
        }
    };
    send_if_flushed(inner, &entry).await;
    Ok(entry)
}

/// Makes a failed entry pending again and sends it like a new one.
pub(crate) async fn retry(inner: &Inner, client_id: &str) -> Result<OutboxEntry> {
    if !inner.cache.outbox_retry(client_id).await? {
        return Err(Error::Invalid("no such message in the outbox".into()));
    }
    let entry = inner
        .cache
        .outbox_entry(client_id)
        .await?
        .ok_or_else(|| Error::Invalid("no such message in the outbox".into()))?;
    send_if_flushed(inner, &entry).await;
    Ok(entry)
}

async fn send_if_flushed(inner: &Inner, entry: &OutboxEntry) {
    let sending = inner.sending.lock().await;
    let epoch = inner.link.epoch();
    if epoch.is_some() && sending.flushed_epoch == epoch {
        inner.link.send(frame(entry));
    }
}

/// Sends every pending entry, oldest first, on the socket that just said `welcome`.
pub(crate) async fn flush(inner: &Inner, link: &Link) -> Result<()> {
    let mut sending = inner.sending.lock().await;
    let epoch = link.epoch();
    let pending = inner.cache.outbox_pending().await?;
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "sending pending messages");
    }
    for entry in &pending {
        if !link.send(frame(entry)) {
            // The socket is already gone; the next welcome flushes again.
            return Ok(());
        }
    }
    sending.flushed_epoch = epoch;
    Ok(())
}

/// The server refused the `send` of `client_id`.
pub(crate) async fn refused(
    inner: &Inner,
    room: RoomId,
    client_id: &str,
    code: ErrorCode,
    reason: &str,
    retry_after_ms: Option<u64>,
) -> Result<()> {
    if is_transient(code) {
        let delay = Duration::from_millis(retry_after_ms.unwrap_or(1000).clamp(100, 60_000));
        tracing::info!(%room, %code, ?delay, "send refused for now; retrying");
        if let Some(inner) = inner.upgrade() {
            let client_id = client_id.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match inner.cache.outbox_entry(&client_id).await {
                    Ok(Some(entry)) if entry.is_pending() => send_if_flushed(&inner, &entry).await,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
                }
            });
        }
        return Ok(());
    }
    tracing::info!(%room, %code, %reason, "send refused");
    if inner.cache.outbox_fail(client_id, code, reason).await? {
        if let (Some(me), Some(entry)) = (inner.me(), inner.cache.outbox_entry(client_id).await?) {
            inner.sink().emit(AppEvent::Message {
                message: entry.view(&me),
            });
        }
    }
    Ok(())
}
