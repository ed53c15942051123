//! History: message pages (cache first, older pages from the server), gap fills after a
//! `gap` frame, and the newest page of rooms the cache knows nothing of (previews).
//!
//! Fills and previews run off the socket loop (on the socket's frame task, or spawned) and
//! stop when the socket is lost (`stop`): what they applied stays, the rest comes again on
//! resume.

use super::{Backend, Inner};
use crate::api::Api;
use crate::connection::{Backoff, Handled};
use crate::error::{Error, Result};
use protocol::event::EventBody;
use protocol::ipc::{MessagePage, MessageView};
use protocol::ws::GapReason;
use protocol::{RoomEvent, RoomId};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Messages per page unless the UI asks otherwise, and the most it may ask for.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
/// History pages fetched from the server per `messages` call, at most.
const MAX_FETCHES: usize = 5;
/// Originals of replies fetched from the server per `messages` call, at most (the others show
/// without a quote until a later page or a jump brings them).
const MAX_QUOTE_FETCHES: usize = 10;
/// Rooms without a cached message whose newest page is fetched after `welcome`, at most, and
/// the size of that page (the preview line, and the first screen when the room opens).
const PREVIEW_ROOMS: usize = 200;
const PREVIEW_PAGE: u32 = 20;
/// How long a gap fill keeps asking for a page the server did not give for a passing reason,
/// and how it paces the attempts. Past that the gap is skipped (the missing messages page in
/// when the user scrolls back) so that the events after it are not held up forever.
const FILL_RETRY_FOR: Duration = Duration::from_secs(60);
const FILL_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_secs(5),
};

impl Backend {
    /// A page of messages ending before `before` (the newest page when `None`, followed by the
    /// room's outbox entries). Served from the cache when it holds the range without holes;
    /// otherwise older pages come from the server and are cached.
    pub async fn messages(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagePage> {
        self.inner.messages(room, before, limit).await
    }
}

/// A history event as a message view, when it is a message.
fn message_view(event: &RoomEvent) -> Option<MessageView> {
    match &event.event {
        EventBody::Message {
            id,
            sender,
            sender_name,
            body,
            edited_ts,
            deleted,
            reply_to,
            reactions,
            mentions,
            mention_room,
            attachments,
        } => Some(MessageView {
            room: event.room,
            seq: Some(event.seq),
            client_id: id.clone(),
            sender: *sender,
            sender_name: sender_name.clone(),
            body: body.clone(),
            ts: event.ts,
            edited: edited_ts.is_some(),
            deleted: *deleted,
            status: protocol::ipc::MessageStatus::Sent,
            reply_to: *reply_to,
            quote: None,
            reactions: reactions.clone(),
            mentions: mentions.clone(),
            mention_room: *mention_room,
            attachments: attachments.clone(),
            uploads: Vec::new(),
        }),
        _ => None,
    }
}

impl Inner {
    /// A page of messages ending before `before` (the newest page when `None`, followed by the
    /// room's outbox entries). Served from the cache when it holds the range without holes;
    /// otherwise older pages come from the server and are cached.
    async fn messages(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagePage> {
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let cache = &self.cache;
        let cached = cache.room(room).await?;
        let upper = before.unwrap_or(u64::MAX);
        // Lower end of the hole-free range; nothing below it is trusted.
        let complete_from = cached
            .as_ref()
            .and_then(|c| c.complete_from)
            .unwrap_or(u64::MAX);
        let mut messages = if complete_from < upper {
            cache.messages(room, complete_from, upper, limit).await?
        } else {
            Vec::new()
        };
        let mut has_more = if messages.len() >= limit as usize {
            true
        } else {
            // Everything in [complete_from, upper) is here; older messages exist unless the
            // whole history is cached.
            complete_from > 1
        };
        if messages.len() < limit as usize && has_more {
            if let Ok((api, token)) = self.authed() {
                match self
                    .fetch_older(
                        &api,
                        &token,
                        room,
                        &mut messages,
                        upper,
                        complete_from,
                        limit,
                    )
                    .await
                {
                    Ok(more) => has_more = more,
                    Err(Error::Unreachable(e)) => {
                        // Offline: what the cache has, plus whatever older it holds.
                        tracing::debug!(error = %e, "older messages unavailable");
                        let oldest = messages.first().and_then(|m| m.seq).unwrap_or(upper);
                        has_more = true;
                        if messages.is_empty() {
                            let got = cache.messages(room, 0, oldest, limit).await?;
                            messages = got;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if before.is_none() {
            if let Some(me) = self.me() {
                for entry in cache.outbox_for_room(room).await? {
                    messages.push(entry.view(&me));
                }
            }
        }
        self.fill_quotes(room, &mut messages).await?;
        Ok(MessagePage { messages, has_more })
    }

    /// Gives replies the quote of their original: from the cache, else (online, a few per
    /// page) fetched from history as protocol §1.7 says (`after = reply_to - 1`, `limit = 1`)
    /// and cached. An original that fell out of retention stays without a quote.
    async fn fill_quotes(&self, room: RoomId, messages: &mut [MessageView]) -> Result<()> {
        let mut fetched = 0;
        for message in messages.iter_mut() {
            let Some(original) = message.reply_to else {
                continue;
            };
            if message.quote.is_some() {
                continue;
            }
            let mut quote = self.cache.quote(room, original).await?;
            if quote.is_none() && fetched < MAX_QUOTE_FETCHES {
                fetched += 1;
                if let Ok((api, token)) = self.authed() {
                    match api
                        .history(&token, room, None, Some(original.saturating_sub(1)), 1)
                        .await
                    {
                        Ok(page) if page.events.first().is_some_and(|e| e.seq == original) => {
                            self.cache.store_page(room, &page.events[..1], None).await?;
                            quote = self.cache.quote(room, original).await?;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "cannot fetch a reply's original"),
                    }
                }
            }
            message.quote = quote;
        }
        Ok(())
    }

    /// Pages history back from the server until `messages` holds `limit` or the start of the
    /// room is reached; caches every page. Returns whether more exist.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_older(
        &self,
        api: &Api,
        token: &str,
        room: RoomId,
        messages: &mut Vec<MessageView>,
        upper: u64,
        complete_from: u64,
        limit: u32,
    ) -> Result<bool> {
        let page_size = self.lock().limits.max_history_page.clamp(1, 100);
        let mut bound = messages
            .first()
            .and_then(|m| m.seq)
            .unwrap_or(upper.min(complete_from));
        // Lower end of the hole-free range as this loop extends it.
        let mut range_from = complete_from;
        for _ in 0..MAX_FETCHES {
            let before = (bound != u64::MAX).then_some(bound);
            let page = self
                .checked(api.history(token, room, before, None, page_size).await)
                .await?;
            // A page ending at or inside the hole-free range extends it downwards.
            let continues = range_from != u64::MAX && bound >= range_from;
            let extends_to = continues.then(|| {
                if page.has_more {
                    page.events.first().map_or(bound, |e| e.seq)
                } else {
                    0
                }
            });
            if let Some(to) = extends_to {
                range_from = range_from.min(to);
            }
            self.cache
                .store_page(room, &page.events, extends_to)
                .await?;
            let older: Vec<MessageView> = page
                .events
                .iter()
                .filter(|e| e.seq < bound)
                .filter_map(message_view)
                .collect();
            let first = page.events.first().map(|e| e.seq);
            let need = (limit as usize).saturating_sub(messages.len());
            let skip = older.len().saturating_sub(need);
            let mut combined: Vec<MessageView> = older.into_iter().skip(skip).collect();
            let truncated = skip > 0;
            combined.append(messages);
            *messages = combined;
            if truncated {
                return Ok(true);
            }
            match first {
                Some(first) if page.has_more && first < bound => bound = first,
                _ => return Ok(page.has_more),
            }
            if messages.len() >= limit as usize {
                return Ok(true);
            }
        }
        Ok(true)
    }

    /// Rooms whose newest message is not cached (new to this device, or joined before the
    /// cache knew them) get their newest page in the background, so the room list shows every
    /// room's last message. Bounded: one small page per room, at most [`PREVIEW_ROOMS`] rooms,
    /// one at a time, and a room is fetched only while nothing of it is cached. Spawned, so
    /// the socket's frames go on meanwhile; ends when the socket is lost (`stop`).
    pub(super) async fn fill_previews(&self, stop: &CancellationToken) -> Result<()> {
        let mut rooms = Vec::new();
        for cached in self.cache.rooms().await? {
            if cached.room.last_seq > 0 && self.cache.last_message(cached.room.id).await?.is_none()
            {
                rooms.push(cached.room.id);
            }
            if rooms.len() >= PREVIEW_ROOMS {
                break;
            }
        }
        let Some(inner) = self.me.upgrade() else {
            return Ok(());
        };
        if rooms.is_empty() {
            return Ok(());
        }
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut filled = 0;
            for room in rooms {
                if inner.authed().is_err() {
                    return;
                }
                let page = tokio::select! {
                    _ = stop.cancelled() => break,
                    page = inner.messages(room, None, Some(PREVIEW_PAGE)) => page,
                };
                match page {
                    Ok(_) => filled += 1,
                    Err(Error::Unreachable(e)) => {
                        tracing::debug!(error = %e, "previews stop: server unreachable");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %room, "cannot fetch a room's newest page")
                    }
                }
            }
            if filled > 0 {
                inner.rooms_changed().await;
            }
        });
        Ok(())
    }

    /// The server skipped `after+1 ..= until`: page them in over REST (at most the retention
    /// window), then continue from `until` like the server does. Runs on the socket's frame
    /// task: the frames after the gap wait for it (so they reach the cache and the UI in
    /// order), the socket does not. Interrupted when the socket is lost: the pages applied so
    /// far stay and the next `hello` resumes after them.
    pub(super) async fn fill_gap(
        &self,
        room: RoomId,
        after: u64,
        until: u64,
        reason: GapReason,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        tracing::info!(%room, after, until, ?reason, "filling a gap");
        let keep = u64::from(self.options.keep_per_room);
        let mut cursor = after;
        if until.saturating_sub(after) > keep {
            cursor = until - keep;
            self.cache.skip_to(room, cursor).await?;
        }
        let page_size = self.lock().limits.max_history_page.clamp(1, 100);
        let (api, token) = self.authed()?;
        while cursor < until {
            // A page the server did not give for a passing reason (no answer while a node
            // restarts, busy, store unavailable) is asked for again while the socket is up:
            // skipping it would leave the cache with a hole that only scrolling back fills.
            let retry_until = Instant::now() + FILL_RETRY_FOR;
            let mut attempt = 0;
            let page = loop {
                let page = tokio::select! {
                    _ = stop.cancelled() => return Ok(Handled::Interrupted),
                    page = api.history(&token, room, None, Some(cursor), page_size) => page,
                };
                match page {
                    Err(e) if e.is_transient() && Instant::now() < retry_until => {
                        attempt += 1;
                        let wait = FILL_BACKOFF.delay(attempt).max(e.retry_after());
                        tracing::info!(error = %e, %room, ?wait, "gap fill page failed; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(Handled::Interrupted),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    page => break page,
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, %room, "gap fill failed; the rest pages in when scrolled to");
                    break;
                }
            };
            let Some(last) = page.events.last().map(|e| e.seq) else {
                break;
            };
            for event in page.events.into_iter().filter(|e| e.seq <= until) {
                if self.apply(event, stop).await? == Handled::Interrupted {
                    return Ok(Handled::Interrupted);
                }
            }
            cursor = last;
            if !page.has_more {
                break;
            }
        }
        if let Some(cached) = self.cache.room(room).await? {
            if cached.synced_seq.is_none_or(|s| s < until) {
                self.cache.skip_to(room, until).await?;
            }
        }
        Ok(Handled::Done)
    }
}
