//! The client's frames once the socket is serving: each parsed, rate-limited and answered (a send,
//! an edit or delete, a reaction, read markers, typing, ping).

use super::*;

impl Connection {
    /// The per-connection frame bucket; an `error` frame when empty.
    pub(super) fn check_rate(&mut self) -> Result<(), ApiError> {
        if let Err(e) = self.frames.check() {
            self.strikes += 1;
            return Err(e);
        }
        self.strikes = 0;
        Ok(())
    }

    /// A `send`: its `ack`, or an `error` with its room and id.
    pub(super) async fn on_send(&mut self, room: RoomId, draft: chat::Draft<'_>) -> ServerFrame {
        let state = &self.state;
        let result = match state.limits.message(self.user) {
            Ok(()) => chat::send(state, self.user, Some(&self.username), room, draft).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(ack) => ServerFrame::Ack(ack),
            Err(e) => error_frame(&e, None, Some(room), Some(draft.id.to_owned())),
        }
    }

    /// Handles one client frame; returns the reply, if any.
    pub(super) async fn on_text(&mut self, text: &str) -> Option<ServerFrame> {
        if let Err(e) = self.check_rate() {
            return Some(error_frame(&e, None, None, None));
        }
        // The hot path: a `send` read in place, its id and body borrowed from the frame.
        if let Some(send) = SendFrame::parse(text) {
            let draft = chat::Draft {
                id: &send.id,
                body: &send.body,
                reply_to: send.reply_to,
                mentions: &send.mentions,
                mention_room: send.mention_room,
                attachments: &send.attachments,
            };
            return Some(self.on_send(send.room, draft).await);
        }
        let frame = match parse(text) {
            Ok(frame) => frame,
            Err(e) => return Some(error_frame(&e, None, None, None)),
        };
        let state = self.state.clone();
        let user = self.user;
        match frame {
            ClientFrame::Hello { .. } => Some(error_frame(
                &ApiError::new(
                    ErrorCode::AlreadyAuthenticated,
                    "this socket is already authenticated",
                ),
                None,
                None,
                None,
            )),
            ClientFrame::Send {
                room,
                id,
                body,
                reply_to,
                mentions,
                mention_room,
                attachments,
            } => {
                let draft = chat::Draft {
                    id: &id,
                    body: &body,
                    reply_to,
                    mentions: &mentions,
                    mention_room,
                    attachments: &attachments,
                };
                Some(self.on_send(room, draft).await)
            }
            ClientFrame::Edit {
                room,
                seq,
                body,
                reference,
            } => {
                let result = match state.limits.message(user) {
                    Ok(()) => chat::change(&state, user, room, seq, Some(&body)).await,
                    Err(e) => Err(e),
                };
                reply_ok(result, reference)
            }
            ClientFrame::Delete {
                room,
                seq,
                reference,
            } => {
                let result = match state.limits.message(user) {
                    Ok(()) => chat::change(&state, user, room, seq, None).await,
                    Err(e) => Err(e),
                };
                reply_ok(result, reference)
            }
            ClientFrame::React {
                room,
                seq,
                emoji,
                remove,
                reference,
            } => {
                let result = match state.limits.message(user) {
                    Ok(()) => chat::react(&state, user, room, seq, &emoji, !remove).await,
                    Err(e) => Err(e),
                };
                reply_ok(result.map(|()| seq), reference)
            }
            ClientFrame::Typing { room } => {
                if !self.cursors.contains_key(&room) {
                    return Some(error_frame(
                        &ApiError::not_a_member(),
                        None,
                        Some(room),
                        None,
                    ));
                }
                // Repeats within a third of the indicator's lifetime add nothing.
                let min_gap = Duration::from_millis(state.config.limits.typing_ttl_ms / 3);
                let now = Instant::now();
                if self
                    .last_typing
                    .get(&room)
                    .is_some_and(|t| now.duration_since(*t) < min_gap)
                {
                    return None;
                }
                self.last_typing.insert(room, now);
                chat::typing(&state, user, &self.username, room)
                    .await
                    .err()
                    .map(|e| error_frame(&e, None, Some(room), None))
            }
            ClientFrame::Read { room, seq } => chat::set_read(&state, user, room, seq)
                .await
                .err()
                .map(|e| error_frame(&e, None, Some(room), None)),
            ClientFrame::History {
                room,
                before,
                after,
                limit,
                reference,
            } => Some(
                match chat::history(&state, user, room, before, after, limit).await {
                    Ok(page) => ServerFrame::History {
                        reference,
                        room,
                        events: page.events,
                        has_more: page.has_more,
                        first_seq: page.first_seq,
                        last_seq: page.last_seq,
                    },
                    Err(e) => error_frame(&e, reference, Some(room), None),
                },
            ),
            ClientFrame::Ping { reference } => Some(ServerFrame::Pong { reference }),
        }
    }
}
