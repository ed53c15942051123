//! Resume after `hello`: each room replayed from the client's cursor (or a `gap` when the events
//! fell out of retention or were lost), then `ready`.

use super::*;

impl Connection {
    /// Sends `welcome`, replays what the client missed, sends `ready`.
    pub(super) async fn start(
        &mut self,
        session_id: &str,
        resume: Vec<Cursor>,
    ) -> Result<(), StartError> {
        let me = chat::me(&self.state, self.user).await?;
        self.username = me.username.clone();
        let read = self.state.store.user_rooms(self.user).await?;
        let hooks = self.state.hooks.clone();
        hooks
            .at(crate::hooks::Point::ConnectRoomsRead, self.user)
            .await;
        // Route live events first, then read where each room stands: nothing falls in between.
        self.state.hub.join(&self.handle, &read);
        // A removal the hub routed between the read and the join above was undone by the join
        // (the route came back): read the rooms again now that routing is on and drop those the
        // user left meanwhile. Removals after this read reach the socket as `member_left`, and
        // rooms joined meanwhile were routed by their `member_joined`.
        let rooms = self.state.store.user_rooms(self.user).await?;
        let gone: Vec<RoomId> = read.into_iter().filter(|r| !rooms.contains(r)).collect();
        self.state.hub.leave(&self.handle, &gone);
        let metas = self.state.store.rooms(&rooms).await?;
        let resume: HashMap<RoomId, u64> = resume.into_iter().map(|c| (c.room, c.seq)).collect();
        let mut replay = Vec::new();
        for meta in &metas {
            let cursor = match resume.get(&meta.id) {
                Some(&seq) if seq < meta.last_seq => {
                    replay.push((meta.id, meta.last_seq));
                    seq
                }
                _ => meta.last_seq,
            };
            self.cursors.insert(meta.id, cursor);
        }
        let views = chat::room_views(&self.state, self.user, metas, true).await?;
        let welcome = ServerFrame::Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            user: me,
            session_id: session_id.to_owned(),
            rooms: views,
            limits: self.state.config.limits.clone(),
            epoch: self.state.store.epoch(),
        };
        self.send(&welcome).await?;
        for (room, last_seq) in replay {
            let cursor = self.cursors.get(&room).copied().unwrap_or(last_seq);
            if last_seq - cursor > self.state.config.limits.max_replay as u64 {
                let gap = ServerFrame::Gap {
                    room,
                    after: cursor,
                    until: last_seq,
                    reason: GapReason::TooLarge,
                };
                self.send(&gap).await?;
                self.cursors.insert(room, last_seq);
                continue;
            }
            self.fill(room, last_seq).await?;
        }
        self.send(&ServerFrame::Ready).await?;
        Ok(())
    }

    /// Delivers events of `room` from the cursor up to `until` from the store. Reports events
    /// that fell out of retention with a `gap` frame.
    pub(super) async fn fill(&mut self, room: RoomId, until: u64) -> Result<(), FillError> {
        while let Some(&cursor) = self.cursors.get(&room) {
            if cursor >= until {
                break;
            }
            let page = self
                .state
                .store
                .history(room, Range::After(cursor), FILL_CHUNK)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "gap fill failed");
                    FillError::Store
                })?;
            if page.first_seq > cursor + 1 {
                let lost_until = (page.first_seq - 1).min(until);
                let gap = ServerFrame::Gap {
                    room,
                    after: cursor,
                    until: lost_until,
                    reason: GapReason::Truncated,
                };
                self.send(&gap).await.map_err(|_| FillError::Socket)?;
                self.cursors.insert(room, lost_until);
                continue;
            }
            if page.events.is_empty() {
                // Nothing stored up to `until`: the store lost those events (§7.7).
                self.lost(room, cursor, until).await?;
                break;
            }
            for frame in page.events {
                let event: RoomEvent = match serde_json::from_str(&frame) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(error = %e, "unreadable stored event");
                        return Err(FillError::Store);
                    }
                };
                let cursor = self.cursors.get(&room).copied().unwrap_or(until);
                // A hole in the log: events the store lost (§7.7). Say so, never skip silently.
                if event.seq > until {
                    if cursor < until {
                        self.lost(room, cursor, until).await?;
                    }
                    break;
                }
                if event.seq > cursor + 1 {
                    self.lost(room, cursor, event.seq - 1).await?;
                }
                let member = match &event.event {
                    protocol::EventBody::MemberJoined { user, .. } => {
                        Some(MemberRoute::Joined(*user))
                    }
                    protocol::EventBody::MemberLeft { user, .. } => Some(MemberRoute::Left(*user)),
                    protocol::EventBody::RoomDeleted { .. } => Some(MemberRoute::RoomDeleted),
                    _ => None,
                };
                self.emit(room, event.seq, member, Utf8Bytes::from(frame))
                    .await
                    .map_err(|_| FillError::Socket)?;
                crate::metrics::get().delivered(crate::metrics::DeliveryKind::Replay, 1);
            }
        }
        Ok(())
    }

    /// Reports events `after+1 ..= until` of `room` as gone (`gap` `truncated`) and moves the
    /// cursor past them.
    pub(super) async fn lost(
        &mut self,
        room: RoomId,
        after: u64,
        until: u64,
    ) -> Result<(), FillError> {
        let gap = ServerFrame::Gap {
            room,
            after,
            until,
            reason: GapReason::Truncated,
        };
        self.send(&gap).await.map_err(|_| FillError::Socket)?;
        self.cursors.insert(room, until);
        Ok(())
    }
}
