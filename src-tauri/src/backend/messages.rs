//! Writing: sending through the outbox, retry and discard, edit, delete, read markers, typing;
//! and local search.

use super::Backend;
use crate::cache::Outgoing;
use crate::error::{Error, Result};
use protocol::ipc::{AppEvent, MessageView, SearchHit};
use protocol::ws::ClientFrame;
use protocol::{validate, RoomId};
use std::time::{Duration, Instant};

/// Typing notices sent at most this often per room (the server ignores faster repeats).
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Users one message may mention (the server's bound, protocol §1.9).
const MAX_MENTIONS: usize = 50;
/// Local search results returned at most.
const SEARCH_LIMIT: u32 = 100;

impl Backend {
    /// Writes a message to the outbox and sends it when online. Returns it as pending.
    pub async fn send(&self, room: RoomId, body: &str) -> Result<MessageView> {
        self.send_message(
            room,
            Outgoing {
                body: body.to_owned(),
                ..Outgoing::default()
            },
        )
        .await
    }

    /// Like [`Backend::send`], with a reply and mentions.
    pub async fn send_message(&self, room: RoomId, msg: Outgoing) -> Result<MessageView> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to send messages"))?;
        let max = self.inner.lock().limits.max_message_bytes;
        validate::message_body(&msg.body, max)?;
        if msg.mentions.len() > MAX_MENTIONS {
            return Err(Error::Invalid("too many people mentioned".into()));
        }
        let entry = self.inner.outbox.enqueue(room, &msg).await?;
        let mut view = entry.view(&me);
        if let Some(original) = view.reply_to {
            view.quote = self.inner.cache.quote(room, original).await?;
        }
        Ok(view)
    }

    /// Adds (or, with `remove`, takes back) the user's reaction: shown at once, delivered
    /// through the outbox.
    pub async fn react(&self, room: RoomId, seq: u64, emoji: &str, remove: bool) -> Result<()> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to react"))?;
        let emoji = validate::emoji(emoji)?;
        if let Some(message) = self
            .inner
            .outbox
            .react(room, seq, me.id, emoji, remove)
            .await?
        {
            self.inner.sink.emit(AppEvent::Message { message });
        }
        Ok(())
    }

    /// Sends a failed message again.
    pub async fn retry(&self, client_id: &str) -> Result<()> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to send messages"))?;
        let entry = self.inner.outbox.retry(client_id).await?;
        // A message with files not uploaded yet goes through the uploader.
        self.inner.uploads.wake();
        self.inner.sink.emit(AppEvent::Message {
            message: entry.view(&me),
        });
        Ok(())
    }

    /// Drops a failed or pending message. (A pending one already on the wire may still
    /// arrive; it then shows up as a normal message.)
    pub async fn discard(&self, client_id: &str) -> Result<()> {
        if !self.inner.cache.outbox_discard(client_id).await? {
            return Err(Error::Invalid("no such message in the outbox".into()));
        }
        self.inner.unstage(client_id).await;
        Ok(())
    }

    pub async fn edit(&self, room: RoomId, seq: u64, body: &str) -> Result<()> {
        let max = self.inner.lock().limits.max_message_bytes;
        validate::message_body(body, max)?;
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.edit(&token, room, seq, body).await)
            .await
    }

    pub async fn delete(&self, room: RoomId, seq: u64) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.delete(&token, room, seq).await)
            .await
    }

    /// Moves the read marker forward; the server is told now when online, else on connect.
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<()> {
        let me = self.inner.me().ok_or(Error::NotLoggedIn("log in first"))?;
        let cache = &self.inner.cache;
        if !cache.set_read(room, seq, false, me.id).await? {
            return Ok(());
        }
        if self.inner.link.send(ClientFrame::Read { room, seq }) {
            cache.read_marker_synced(room, seq).await?;
        }
        self.inner.rooms_changed().await;
        Ok(())
    }

    /// Tells the room that the user is typing (at most every 2 s per room; dropped offline).
    pub fn typing(&self, room: RoomId) -> Result<()> {
        {
            let mut state = self.inner.lock();
            let now = Instant::now();
            if state
                .typing_sent
                .get(&room)
                .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
            {
                return Ok(());
            }
            state.typing_sent.insert(room, now);
        }
        self.inner.link.send(ClientFrame::Typing { room });
        Ok(())
    }

    /// Full-text search over the cached messages, newest first.
    pub async fn search(&self, query: &str) -> Result<Vec<SearchHit>> {
        self.inner.cache.search(query, SEARCH_LIMIT).await
    }
}
