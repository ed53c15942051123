//! Messages: appending, editing and deleting, reactions, history pages, read markers.

use super::*;

impl MemoryStore {
    pub async fn append_message(
        &self,
        msg: NewMessage<'_>,
        now: i64,
        dedupe_ttl_secs: u64,
        retention: Retention,
    ) -> StoreResult<SendAck> {
        self.with(|s| {
            while let Some((expires, _)) = s.dedupe_expiry.front() {
                if *expires > now {
                    break;
                }
                if let Some((_, key)) = s.dedupe_expiry.pop_front() {
                    s.dedupe.remove(&key);
                }
            }
            let key = (msg.room, msg.sender, msg.client_id.to_owned());
            if let Some((seq, ts)) = s.dedupe.get(&key) {
                return Ok(SendAck {
                    room: msg.room,
                    id: msg.client_id.to_owned(),
                    seq: *seq,
                    ts: *ts,
                    duplicate: true,
                });
            }
            let room = s.rooms.get(&msg.room).ok_or_else(ApiError::not_a_member)?;
            if !room.members.contains_key(&msg.sender) {
                return Err(ApiError::not_a_member().into());
            }
            if s.blocked_in_dm(msg.room, msg.sender) {
                return Err(crate::store::blocked_error().into());
            }
            if let Some(target) = msg.reply_to {
                s.rooms
                    .get_mut(&msg.room)
                    .ok_or_else(ApiError::not_a_member)?
                    .message(target)?;
            }
            s.uploads.check(msg.room, msg.sender, msg.attachments)?;
            let seq = s.append(msg.room, msg.event_json, now, None)?;
            s.uploads.attach(msg.attachments, seq);
            let ts = s
                .rooms
                .get(&msg.room)
                .and_then(|r| r.log.back())
                .map_or(now, |(e, _)| e.ts);
            s.dedupe.insert(key.clone(), (seq, ts));
            s.dedupe_expiry
                .push_back((now + dedupe_ttl_secs as i64 * 1000, key));
            s.trim(msg.room, retention, now);
            Ok(SendAck {
                room: msg.room,
                id: msg.client_id.to_owned(),
                seq,
                ts,
                duplicate: false,
            })
        })
    }

    pub async fn change_message(&self, change: Change<'_>, now: i64) -> StoreResult<u64> {
        self.with(|s| {
            // A DM member the other blocked may delete their messages there, not edit them.
            if change.body.is_some() && s.blocked_in_dm(change.room, change.sender) {
                return Err(crate::store::blocked_error().into());
            }
            let room = s
                .rooms
                .get_mut(&change.room)
                .ok_or_else(ApiError::not_a_member)?;
            if !room.members.contains_key(&change.sender) {
                return Err(ApiError::not_a_member().into());
            }
            let not_found =
                || ApiError::new(ErrorCode::MessageNotFound, "no such message in this room");
            let first = room.log.front().map_or(u64::MAX, |(e, _)| e.seq);
            let index = change.target.checked_sub(first).ok_or_else(not_found)? as usize;
            let (event, frame) = room.log.get_mut(index).ok_or_else(not_found)?;
            let EventBody::Message {
                sender,
                body,
                edited_ts,
                deleted,
                reactions,
                attachments,
                ..
            } = &mut event.event
            else {
                return Err(not_found().into());
            };
            // Moderators (the room's owner, see `chat::change`) may delete, never edit.
            if *sender != change.sender && !(change.moderator && change.body.is_none()) {
                return Err(ApiError::new(
                    ErrorCode::NotAuthor,
                    "only the author can change a message",
                )
                .into());
            }
            if *deleted {
                return Err(
                    ApiError::new(ErrorCode::MessageDeleted, "the message was deleted").into(),
                );
            }
            match change.body {
                Some(text) => {
                    text.clone_into(body);
                    *edited_ts = Some(now);
                }
                None => {
                    body.clear();
                    *deleted = true;
                    *edited_ts = None;
                    reactions.clear();
                    s.uploads.condemn(attachments.drain(..).map(|a| a.id));
                }
            }
            let json = serde_json::to_string(&event.event)?;
            *frame = bus::event_frame(event.room, event.seq, event.ts, &json);
            if change.body.is_none() {
                // The text of every earlier edit goes too: history must hold no trace of it.
                for (event, frame) in room.log.iter_mut().skip(index + 1) {
                    if let EventBody::Edit { target, body, .. } = &mut event.event {
                        if *target == change.target && !body.is_empty() {
                            body.clear();
                            let json = serde_json::to_string(&event.event)?;
                            *frame = bus::event_frame(event.room, event.seq, event.ts, &json);
                        }
                    }
                }
            }
            s.append(change.room, change.event_json, now, None)
        })
    }

    pub async fn history(&self, room: RoomId, range: Range, limit: usize) -> StoreResult<LogPage> {
        self.with(|s| {
            let Some(room) = s.rooms.get(&room) else {
                return Ok(LogPage {
                    events: vec![],
                    has_more: false,
                    first_seq: 1,
                    last_seq: 0,
                });
            };
            let last_seq = room.meta.last_seq;
            let first_seq = room.log.front().map_or(last_seq + 1, |(e, _)| e.seq);
            let frames = |from: u64, to: u64| -> Vec<String> {
                // Inclusive seq range, clamped to what is kept.
                let from = from.max(first_seq);
                if to < from {
                    return Vec::new();
                }
                let start = (from - first_seq) as usize;
                let end = ((to - first_seq) as usize + 1).min(room.log.len());
                room.log.range(start..end).map(|(_, f)| f.clone()).collect()
            };
            let (events, has_more) = match range {
                Range::After(after) => {
                    // Like Redis: start at the oldest kept event when `after` was trimmed.
                    let from = (after + 1).max(first_seq);
                    let to = from.saturating_add(limit as u64 - 1).min(last_seq);
                    (frames(from, to), to < last_seq)
                }
                Range::Before(before) => {
                    let to = before.map_or(last_seq, |b| b.saturating_sub(1).min(last_seq));
                    let from = to.saturating_sub(limit as u64 - 1).max(1);
                    (frames(from, to), from > first_seq)
                }
            };
            Ok(LogPage {
                events,
                has_more,
                first_seq,
                last_seq,
            })
        })
    }

    pub async fn set_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        self.with(|s| {
            let marker = s.read.entry((user, room)).or_default();
            if seq > *marker {
                *marker = seq;
                let value = *marker;
                s.send(bus::user_msg(user, &bus::read_frame(room, value)));
                return Ok(value);
            }
            Ok(*marker)
        })
    }

    pub async fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<u64>> {
        self.with(|s| {
            Ok(rooms
                .iter()
                .map(|r| s.read.get(&(user, *r)).copied().unwrap_or(0))
                .collect())
        })
    }
}

impl MemRoom {
    /// The kept, not deleted message at `seq` (`message_not_found`, `message_deleted`).
    pub(super) fn message(&mut self, seq: u64) -> StoreResult<&mut (RoomEvent, String)> {
        let not_found =
            || ApiError::new(ErrorCode::MessageNotFound, "no such message in this room");
        let first = self.log.front().map_or(u64::MAX, |(e, _)| e.seq);
        let index = seq.checked_sub(first).ok_or_else(not_found)? as usize;
        let entry = self.log.get_mut(index).ok_or_else(not_found)?;
        match &entry.0.event {
            EventBody::Message { deleted: true, .. } => {
                Err(ApiError::new(ErrorCode::MessageDeleted, "the message was deleted").into())
            }
            EventBody::Message { .. } => Ok(entry),
            _ => Err(not_found().into()),
        }
    }
}

// Everyday chat (issue 13).
impl MemoryStore {
    pub async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<bool>> {
        self.with(|s| {
            let room = s.rooms.get(&room);
            Ok(users
                .iter()
                .map(|u| room.is_some_and(|r| r.members.contains_key(u)))
                .collect())
        })
    }

    pub async fn react(
        &self,
        change: crate::store::ReactionChange<'_>,
        now: i64,
    ) -> StoreResult<Option<u64>> {
        self.with(|s| {
            if s.blocked_in_dm(change.room, change.user) {
                return Err(crate::store::blocked_error().into());
            }
            let room = s
                .rooms
                .get_mut(&change.room)
                .ok_or_else(ApiError::not_a_member)?;
            if !room.members.contains_key(&change.user) {
                return Err(ApiError::not_a_member().into());
            }
            let (event, frame) = room.message(change.target)?;
            let EventBody::Message { reactions, .. } = &mut event.event else {
                return Ok(None);
            };
            let found = reactions.iter().position(|r| r.emoji == change.emoji);
            let mine = |r: &protocol::event::Reaction| r.users.contains(&change.user);
            match (change.add, found) {
                (true, Some(i)) if mine(&reactions[i]) => return Ok(None),
                (false, None) => return Ok(None),
                (false, Some(i)) if !mine(&reactions[i]) => return Ok(None),
                (true, found) => {
                    if reactions.iter().filter(|r| mine(r)).count()
                        >= protocol::limits::MAX_REACTIONS_PER_USER
                    {
                        return Err(crate::store::reactions_full(true).into());
                    }
                    match found {
                        Some(i) => reactions[i].users.push(change.user),
                        None if reactions.len() >= protocol::limits::MAX_REACTIONS_PER_MESSAGE => {
                            return Err(crate::store::reactions_full(false).into())
                        }
                        None => reactions.push(protocol::event::Reaction {
                            emoji: change.emoji.to_owned(),
                            users: vec![change.user],
                        }),
                    }
                }
                (false, Some(i)) => {
                    reactions[i].users.retain(|u| *u != change.user);
                    if reactions[i].users.is_empty() {
                        reactions.remove(i);
                    }
                }
            }
            let json = serde_json::to_string(&event.event)?;
            *frame = bus::event_frame(event.room, event.seq, event.ts, &json);
            s.append(change.room, change.event_json, now, None)
                .map(Some)
        })
    }
}
