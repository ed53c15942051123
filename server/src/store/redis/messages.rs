//! Messages: the append (exactly once, in seq order, per room), edits, deletions and reactions,
//! history pages, read markers. The scripts are in redis.rs, beside the Lua they share.

use super::*;

impl RedisStore {
    pub async fn append_message(
        &self,
        msg: NewMessage<'_>,
        _now: i64,
        dedupe_ttl_secs: u64,
        retention: Retention,
    ) -> StoreResult<SendAck> {
        self.writable()?;
        // Upload ids are hex (`attachments::new_id`); anything else names no upload.
        if msg
            .attachments
            .iter()
            .any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(crate::store::not_attachable().into());
        }
        // Keys and arguments go straight into one command (`redis/call.rs`): this runs for
        // every message.
        let bytes = 320 + msg.event_json.len() + 2 * msg.client_id.len();
        // The partition's upload keys only when the message has files: the script reads them
        // only then (`attach_uploads` returns at once on no ids), so a plain message declares
        // the room's six keys and its dedupe key, all in the room's slot.
        let declared = match msg.attachments.len() {
            0 => 7,
            n => 9 + n,
        };
        let mut call = call::ScriptCall::new(&APPEND_MESSAGE, declared, bytes);
        call.key(keys::RoomKeys::of(msg.room))
            .key(keys::DedupeKey::new(msg.room, msg.sender.0, msg.client_id));
        if !msg.attachments.is_empty() {
            let p = PARTITIONS.of_room(msg.room.0);
            call.key(keys::uploads_pending_key(p))
                .key(keys::uploads_rooms_key(p));
            for id in msg.attachments {
                call.key(keys::upload(p, id));
            }
        }
        call.arg(msg.room.0)
            .arg(msg.sender.0)
            .arg(msg.client_id)
            .arg(msg.event_json)
            .arg(dedupe_ttl_secs)
            .arg(retention.max_events)
            .arg(retention.max_age_ms)
            .arg(self.watch.floor(msg.room.0));
        match msg.reply_to {
            Some(seq) => call.arg(seq),
            None => call.arg(""),
        };
        if msg.attachments.is_empty() {
            call.arg("");
        } else {
            call.arg(msg.attachments.join(" "));
        }
        let reply: String = call.invoke(&mut self.con()).await?;
        let mut parts = call::words(&reply);
        let status = parts.next().unwrap_or_default();
        let duplicate = match status {
            "ok" => false,
            "dup" => true,
            "behind" => return Err(self.behind()),
            other => return Err(script_error(other)),
        };
        let seq = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("append seq"))?;
        let ts = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("append ts"))?;
        self.watch.note(msg.room.0, seq);
        Ok(SendAck {
            room: msg.room,
            id: msg.client_id.to_owned(),
            seq,
            ts,
            duplicate,
        })
    }

    pub async fn change_message(&self, change: Change<'_>, _now: i64) -> StoreResult<u64> {
        self.writable()?;
        let reply: String = room_script(&CHANGE_MESSAGE, change.room.0)
            .key(keys::uploads_dead(PARTITIONS.of_room(change.room.0)))
            .arg(change.room.0)
            .arg(change.target)
            .arg(change.sender.0)
            .arg(change.body.unwrap_or_default())
            .arg(if change.body.is_some() {
                "edit"
            } else {
                "delete"
            })
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .arg(if change.moderator { "1" } else { "0" })
            .invoke_async(&mut self.con())
            .await?;
        match reply.split_once(' ') {
            Some(("ok", seq)) => {
                let seq = seq.parse().map_err(|_| corrupt("change seq"))?;
                self.watch.note(change.room.0, seq);
                Ok(seq)
            }
            _ if reply == "behind" => Err(self.behind()),
            _ => Err(script_error(&reply)),
        }
    }

    pub async fn history(&self, room: RoomId, range: Range, limit: usize) -> StoreResult<LogPage> {
        let log = keys::log(room);
        let mut zrange = redis::cmd("ZRANGE");
        zrange.arg(&log);
        match range {
            Range::After(after) => zrange.arg(format!("({after}")).arg("+inf").arg("BYSCORE"),
            Range::Before(before) => {
                let max = before.map_or_else(|| "+inf".to_owned(), |b| format!("({b}"));
                zrange.arg(max).arg("-inf").arg("BYSCORE").arg("REV")
            }
        };
        zrange.arg("LIMIT").arg(0).arg(limit + 1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(zrange)
            .cmd("ZRANGE")
            .arg(&log)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .hget(keys::room(room), "seq");
        let (mut events, first, last): (Vec<String>, Vec<(String, u64)>, Option<u64>) =
            pipe.query_async(&mut self.con()).await?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        if matches!(range, Range::Before(_)) {
            events.reverse();
        }
        let last_seq = last.unwrap_or(0);
        let first_seq = first.first().map_or(last_seq + 1, |(_, seq)| *seq);
        Ok(LogPage {
            events,
            has_more,
            first_seq,
            last_seq,
        })
    }

    pub async fn set_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        let marker: u64 = SET_READ
            .key(keys::user_read(user))
            .arg(user.0)
            .arg(room.0)
            .arg(seq)
            .arg(bus::read_frame(room, seq))
            .invoke_async(&mut self.con())
            .await?;
        Ok(marker)
    }

    pub async fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<u64>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<u64> = rooms.iter().map(|r| r.0).collect();
        let values: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(keys::user_read(user))
            .arg(fields)
            .query_async(&mut self.con())
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }
}

impl RedisStore {
    pub async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hexists(keys::members(room), user.0);
        }
        Ok(pipe.query_async(&mut self.con()).await?)
    }

    pub async fn react(
        &self,
        change: crate::store::ReactionChange<'_>,
        _now: i64,
    ) -> StoreResult<Option<u64>> {
        self.writable()?;
        let reply: String = room_script(&REACT, change.room.0)
            .arg(change.room.0)
            .arg(change.target)
            .arg(change.user.0)
            .arg(change.emoji)
            .arg(if change.add { "add" } else { "remove" })
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .arg(protocol::limits::MAX_REACTIONS_PER_MESSAGE)
            .arg(protocol::limits::MAX_REACTIONS_PER_USER)
            .invoke_async(&mut self.con())
            .await?;
        match reply.split_once(' ') {
            Some(("ok", seq)) => {
                let seq = seq.parse().map_err(|_| corrupt("reaction seq"))?;
                self.watch.note(change.room.0, seq);
                Ok(Some(seq))
            }
            _ => match reply.as_str() {
                "same" => Ok(None),
                "behind" => Err(self.behind()),
                "full_message" => Err(crate::store::reactions_full(false).into()),
                "full_user" => Err(crate::store::reactions_full(true).into()),
                other => Err(script_error(other)),
            },
        }
    }
}
