//! The socket's side: the `hello` for each new socket and every server frame, applied to the
//! cache in order and reported to the UI (on the socket's frame task, see
//! [`crate::connection`]).

use super::{key, Inner};
use crate::cache::Applied;
use crate::connection::{Handled, Handler, Link};
use crate::error::Result;
use protocol::event::EventBody;
use protocol::ipc::{AppEvent, ConnectionState, MessageView};
use protocol::limits::Limits;
use protocol::rest::{NotifyLevel, Room, User};
use protocol::ws::ClientFrame;
use protocol::{RoomEvent, ServerFrame, UserId};
use tokio_util::sync::CancellationToken;

/// How long the removal notice waits for the remover's name from the server.
const NAME_LOOKUP: std::time::Duration = std::time::Duration::from_secs(3);

/// A notification's text when the settings hide message text.
pub const HIDDEN_TEXT: &str = "New message";

impl Inner {
    /// The server's store lost data (close 4010, protocol §7.7): what the cache holds from it
    /// may be gone there and its cursors may now name other events. Drop both (the outbox,
    /// drafts and settings stay) and tell the UI; the next `hello` resumes nothing, `welcome`
    /// re-syncs the room list and [`Inner::fill_previews`] refetches every room's newest page.
    /// Pending messages are sent again on that `welcome` under their client ids. If the
    /// token is gone with the data, the server refuses it (4001) and the session ends.
    async fn store_reset(&self) {
        let cleared = self.cache.reset_history().await;
        if let Err(e) = &cleared {
            tracing::error!(error = %e, "cannot drop the cached history after a store reset");
        }
        // Even if the cache could not be cleared, never resume from its cursors.
        self.lock().resume_blocked = true;
        self.sink.emit(AppEvent::HistoryReset);
        self.sink.unread_changed(0);
    }

    // -----------------------------------------------------------------------------------------
    // Socket frames
    // -----------------------------------------------------------------------------------------

    async fn handle_frame(
        &self,
        frame: ServerFrame,
        link: &Link,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        match frame {
            ServerFrame::Welcome {
                user,
                rooms,
                limits,
                epoch,
                ..
            } => {
                self.cache
                    .set_setting(crate::cache::STORE_EPOCH, &epoch)
                    .await?;
                self.on_welcome(user, rooms, limits, link, stop).await?
            }
            ServerFrame::Ready => {
                self.set_connection_state(ConnectionState::Online);
                self.lock().live = true;
            }
            ServerFrame::Event(event) => return self.apply(event, stop).await,
            ServerFrame::Gap {
                room,
                after,
                until,
                reason,
            } => return self.fill_gap(room, after, until, reason, stop).await,
            ServerFrame::Ack(ack) => {
                if let Some(me) = self.me() {
                    if let Some(message) = self.cache.outbox_acked(&ack, &me).await? {
                        if !message.attachments.is_empty() {
                            self.unstage(&ack.id).await;
                        }
                        self.sink.emit(AppEvent::Message { message });
                    }
                }
            }
            ServerFrame::Error {
                code,
                message,
                room: Some(room),
                id: Some(id),
                retry_after_ms,
                ..
            } => {
                let failed = self
                    .outbox
                    .refused(room, &id, code, &message, retry_after_ms)
                    .await?;
                if let (Some(me), Some(entry)) = (self.me(), failed) {
                    self.sink.emit(AppEvent::Message {
                        message: entry.view(&me),
                    });
                }
            }
            ServerFrame::Error {
                code,
                reference: Some(reference),
                retry_after_ms,
                ..
            } if reference.starts_with(crate::outbox::REACT_REF) => {
                if let Some(me) = self.me() {
                    if let Some(message) = self
                        .outbox
                        .reaction_refused(&reference, me.id, code, retry_after_ms)
                        .await?
                    {
                        self.sink.emit(AppEvent::Message { message });
                    }
                }
            }
            ServerFrame::Error { code, message, .. } => {
                tracing::warn!(%code, %message, "the server reported an error");
            }
            ServerFrame::Ok { reference } => self.outbox.confirmed(&reference).await?,
            ServerFrame::Presence {
                user,
                online,
                last_seen,
            } => {
                self.cache.set_presence(user, online, last_seen).await?;
                self.sink.emit(AppEvent::Presence {
                    user,
                    online,
                    last_seen,
                });
            }
            ServerFrame::Typing {
                room,
                user,
                username,
                ttl_ms,
            } => {
                if self.me().is_some_and(|me| me.id != user) {
                    self.sink.emit(AppEvent::Typing {
                        room,
                        user,
                        username,
                        ttl_ms,
                    });
                }
            }
            ServerFrame::ReadMarker { room, seq } => {
                if let Some(me) = self.me() {
                    if self.cache.set_read(room, seq, true, me.id).await? {
                        self.rooms_changed().await;
                    }
                }
            }
            ServerFrame::History { .. } | ServerFrame::Pong { .. } => {}
            ServerFrame::NotifyLevel { room, level } => {
                if self.cache.set_notify(room, level).await? {
                    self.rooms_changed().await;
                }
            }
            ServerFrame::UserUpdated { user, display_name } => {
                self.user_updated(user, display_name).await?;
            }
        }
        Ok(Handled::Done)
    }

    async fn on_welcome(
        &self,
        user: User,
        rooms: Vec<Room>,
        limits: Limits,
        link: &Link,
        stop: &CancellationToken,
    ) -> Result<()> {
        self.cache.set_json_setting(key::LIMITS, &limits).await?;
        let limits_changed = self.lock().limits != limits;
        if limits_changed {
            self.sink.emit(AppEvent::Limits {
                limits: limits.clone(),
            });
        }
        let user_changed = {
            let mut state = self.lock();
            state.limits = limits;
            match &mut state.session {
                Some(session) if session.user != user => {
                    session.user = user.clone();
                    true
                }
                _ => false,
            }
        };
        if user_changed {
            self.cache.set_json_setting(key::USER, &user).await?;
        }
        self.cache.sync_rooms(&rooms).await?;
        self.lock().resume_blocked = false;
        // Read markers moved while offline.
        for (room, seq) in self.cache.unsynced_read_markers().await? {
            if link.send(ClientFrame::Read { room, seq }) {
                self.cache.read_marker_synced(room, seq).await?;
                self.cache.recount_unread(room, user.id).await?;
            }
        }
        self.outbox.flush(link).await?;
        // Files waiting in the outbox can go up now.
        self.uploads.wake();
        self.rooms_changed().await;
        self.refresh_peers(&rooms);
        self.fill_previews(stop).await?;
        Ok(())
    }

    /// Applies one room event and tells the UI; fetches the room first when it is new to us
    /// (interrupted if `stop` comes first: the event is not applied).
    pub(super) async fn apply(
        &self,
        event: RoomEvent,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        let Some(me) = self.me() else {
            return Ok(Handled::Done);
        };
        let removal = self.removal(&event, me.id).await?;
        let mut applied = self.cache.apply_event(&event, me.id).await?;
        if applied == Applied::UnknownRoom {
            // We are a member (the server only sends our rooms' events) of a room we have not
            // cached yet, e.g. joined on another device or invited.
            let (api, token) = self.authed()?;
            let fetched = tokio::select! {
                _ = stop.cancelled() => return Ok(Handled::Interrupted),
                fetched = api.room(&token, event.room) => fetched,
            };
            match fetched {
                Ok(room) => {
                    self.cache.upsert_room(&room).await?;
                    applied = self.cache.apply_event(&event, me.id).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = %event.room, "cannot fetch a new room");
                    return Ok(Handled::Done);
                }
            }
        }
        let Applied::Done(changes) = applied else {
            return Ok(Handled::Done);
        };
        if let Some(message) = changes.message {
            if changes.from_outbox && !message.attachments.is_empty() {
                self.unstage(&message.client_id).await;
            }
            let level = self.cache.notify_level(event.room).await?;
            let notify = self.notification_for(&event, &message, level);
            self.sink.emit(AppEvent::Message { message });
            if let Some((title, body)) = notify {
                self.sink.notify(&title, &body);
            }
        }
        if let (true, Some(removal)) = (changes.left, removal) {
            self.sink.emit(removal);
        }
        if changes.rooms_changed {
            self.rooms_changed().await;
        }
        Ok(Handled::Done)
    }

    /// For an event that takes the user out of a room by someone else's hand (removed or
    /// banned): what to tell them, with the names read from the cache before the room goes.
    async fn removal(&self, event: &RoomEvent, me: UserId) -> Result<Option<AppEvent>> {
        let EventBody::MemberLeft {
            user,
            by: Some(by),
            banned,
        } = &event.event
        else {
            return Ok(None);
        };
        if *user != me || *by == me {
            return Ok(None);
        }
        let Some(room) = self.cache.room(event.room).await? else {
            return Ok(None);
        };
        let by_name = self
            .cache
            .members(event.room)
            .await?
            .into_iter()
            .find(|m| m.user.id == *by)
            .map(|m| m.user.username);
        // Not cached (the member list was never opened): ask the server, briefly — a rare
        // event, and the notice does without the name.
        let by_name = match (by_name, self.authed()) {
            (Some(name), _) => Some(name),
            (None, Ok((api, token))) => {
                match tokio::time::timeout(NAME_LOOKUP, api.user(&token, *by)).await {
                    Ok(Ok(user)) => Some(user.username),
                    _ => None,
                }
            }
            (None, Err(_)) => None,
        };
        Ok(Some(AppEvent::RemovedFromRoom {
            room: event.room,
            room_name: room.room.name,
            by_name,
            banned: *banned,
        }))
    }

    /// The notification (title, text) for a new message the user is not looking at, if any,
    /// as the room's notification `level` allows: `none` never, `mentions` only when the
    /// message mentions the user (by id or `@room`).
    fn notification_for(
        &self,
        event: &RoomEvent,
        message: &MessageView,
        level: NotifyLevel,
    ) -> Option<(String, String)> {
        let EventBody::Message {
            sender, deleted, ..
        } = &event.event
        else {
            return None;
        };
        let state = self.lock();
        let mine = state.session.as_ref().is_some_and(|s| s.user.id == *sender);
        let in_view = state.window_focused && state.focus == Some(event.room);
        if !state.live || !state.settings.notifications || mine || *deleted || in_view {
            return None;
        }
        let me = state.session.as_ref().map(|s| s.user.id)?;
        match level {
            NotifyLevel::All => {}
            NotifyLevel::Mentions if event.mentions(me) => {}
            NotifyLevel::Mentions | NotifyLevel::None => return None,
        }
        // A mention says so in the title.
        let title = if event.mentions(me) {
            format!("{} mentioned you", message.sender_name)
        } else {
            message.sender_name.clone()
        };
        if state.settings.hide_notification_text {
            return Some((title, HIDDEN_TEXT.to_owned()));
        }
        let mut body: String = message.body.chars().take(200).collect();
        if body.len() < message.body.len() {
            body.push('…');
        }
        // A file without text: say which.
        if body.is_empty() {
            if let Some(first) = message.attachments.first() {
                body = match message.attachments.len() {
                    1 => format!("📎 {}", first.name),
                    n => format!("📎 {} and {} more", first.name, n - 1),
                };
            }
        }
        Some((title, body))
    }
}

impl Handler for Inner {
    async fn hello(&self) -> std::result::Result<ClientFrame, String> {
        let (token, resume_blocked) = {
            let state = self.lock();
            let token = state
                .session
                .as_ref()
                .map(|s| s.token.clone())
                .ok_or_else(|| "not logged in".to_owned())?;
            (token, state.resume_blocked)
        };
        let resume = if resume_blocked {
            Vec::new()
        } else {
            self.cache.cursors().await.map_err(|e| e.to_string())?
        };
        // The cursors' data set: if the server lost data since, it answers 4010 rather than
        // resuming from cursors that mean something else now.
        let epoch = if resume.is_empty() {
            None
        } else {
            self.cache
                .setting(crate::cache::STORE_EPOCH)
                .await
                .map_err(|e| e.to_string())?
        };
        Ok(ClientFrame::Hello {
            token,
            resume,
            epoch,
        })
    }

    async fn on_frame(&self, frame: ServerFrame, link: &Link, stop: &CancellationToken) -> Handled {
        match self.handle_frame(frame, link, stop).await {
            Ok(handled) => handled,
            Err(e) => {
                tracing::error!(error = %e, "handling a server frame failed");
                Handled::Done
            }
        }
    }

    fn on_state(&self, state: ConnectionState) {
        self.set_connection_state(state);
    }

    async fn on_session_ended(&self, reason: String) {
        self.end_session(reason).await;
    }

    async fn on_store_reset(&self) {
        self.store_reset().await;
    }
}
