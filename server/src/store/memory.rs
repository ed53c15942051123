//! The embedded store: everything in one process, behind one mutex, gone at exit.
//!
//! Same semantics as Redis on a single node. Appends publish to the bus while holding the lock,
//! so bus order equals seq order exactly as with the Redis scripts (the hub routes each message
//! right there, under the lock; it never calls back into the store).

mod admin;
mod attachments;
mod settings;

use super::bus::{self, MemberRoute};
use super::{
    Change, LogPage, MemberChange, NewMessage, Presence, Range, Retention, RoomMeta, SessionRecord,
    UserRecord,
};
use crate::error::{ApiError, StoreError, StoreResult};
use protocol::event::{EventBody, Role};
use protocol::rest::{RoomKind, SendAck, Visibility};
use protocol::{ErrorCode, RoomEvent, RoomId, UserId};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub struct MemoryStore {
    /// Random per process: the data set dies with it (unless exported). An import sets it.
    epoch: Mutex<String>,
    state: Mutex<State>,
    /// The same feed as `State::bus`, reachable without the lock (to attach the hub).
    feed: bus::Feed,
}

struct State {
    bus: bus::Feed,
    next_user: u64,
    next_room: u64,
    users: HashMap<UserId, UserRecord>,
    /// Lowercase name → id; ordered for prefix search.
    names: BTreeMap<String, UserId>,
    /// Token hash → (session, expiry ms).
    sessions: HashMap<String, (SessionRecord, i64)>,
    rooms: HashMap<RoomId, MemRoom>,
    user_rooms: HashMap<UserId, BTreeSet<RoomId>>,
    public: BTreeSet<RoomId>,
    dms: HashMap<(UserId, UserId), RoomId>,
    /// (room, sender, client id) → (seq, ts).
    dedupe: HashMap<(RoomId, UserId, String), (u64, i64)>,
    /// Expiry order of `dedupe` keys (the TTL is the same for all).
    dedupe_expiry: VecDeque<(i64, (RoomId, UserId, String))>,
    read: HashMap<(UserId, RoomId), u64>,
    /// Invite code hash → invite.
    invites: HashMap<String, super::InviteRecord>,
    online: BTreeSet<UserId>,
    last_seen: HashMap<UserId, i64>,
    moderation: Moderation,
    uploads: attachments::Uploads,
    profiles: settings::Profiles,
}

/// Bans, blocks and confusable names (issue 11).
#[derive(Default)]
struct Moderation {
    bans: HashMap<RoomId, BTreeSet<UserId>>,
    /// User → the users they blocked.
    blocks: HashMap<UserId, BTreeSet<UserId>>,
    /// [`super::name_skeleton`] of every username → its account.
    skeletons: HashMap<String, UserId>,
}

struct MemRoom {
    meta: RoomMeta,
    members: BTreeMap<UserId, Role>,
    log: VecDeque<(RoomEvent, String)>,
    /// Timestamp of the newest event ever appended (kept when retention empties the log).
    last_ts: i64,
}

fn lock_poisoned() -> StoreError {
    StoreError::Corrupt("memory store lock poisoned".into())
}

impl MemoryStore {
    pub fn new() -> Self {
        let feed = bus::Feed::default();
        Self {
            epoch: Mutex::new(format!("{:016x}", rand::random::<u64>())),
            state: Mutex::new(State {
                bus: feed.clone(),
                next_user: 0,
                next_room: 0,
                users: HashMap::new(),
                names: BTreeMap::new(),
                sessions: HashMap::new(),
                rooms: HashMap::new(),
                user_rooms: HashMap::new(),
                public: BTreeSet::new(),
                dms: HashMap::new(),
                dedupe: HashMap::new(),
                dedupe_expiry: VecDeque::new(),
                read: HashMap::new(),
                invites: HashMap::new(),
                online: BTreeSet::new(),
                last_seen: HashMap::new(),
                moderation: Moderation::default(),
                uploads: Default::default(),
                profiles: settings::Profiles::default(),
            }),
            feed,
        }
    }

    pub fn attach_bus(&self, sink: Arc<dyn bus::Sink>) -> bool {
        self.feed.attach(sink)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> StoreResult<T>) -> StoreResult<T> {
        let mut state = self.state.lock().map_err(|_| lock_poisoned())?;
        f(&mut state)
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.with(|_| Ok(()))
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<UserRecord> {
        self.with(|s| s.insert_user(username, password_hash, now))
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.with(|s| {
            Ok(s.names
                .get(&username.to_lowercase())
                .and_then(|id| s.users.get(id))
                .cloned())
        })
    }

    pub async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<(UserId, String)>> {
        self.with(|s| {
            Ok(ids
                .iter()
                .filter_map(|id| s.users.get(id).map(|u| (u.id, u.username.clone())))
                .collect())
        })
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<(UserId, String)>> {
        self.with(|s| {
            Ok(s.names
                .range(prefix.to_owned()..)
                .take_while(|(name, _)| name.starts_with(prefix))
                .take(limit)
                .filter_map(|(_, id)| s.users.get(id).map(|u| (u.id, u.username.clone())))
                .collect())
        })
    }

    pub async fn create_session(&self, session: &SessionRecord, ttl_secs: u64) -> StoreResult<()> {
        self.with(|s| {
            let expires = session.last_used_ts + ttl_secs as i64 * 1000;
            s.sessions
                .insert(session.token_hash.clone(), (session.clone(), expires));
            Ok(())
        })
    }

    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        ttl_secs: u64,
        max_age_secs: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        self.with(|s| {
            let disabled = |user: UserId| s.users.get(&user).is_none_or(|u| u.disabled);
            let dead = match s.sessions.get(token_hash) {
                None => return Ok(None),
                Some((session, expires)) => {
                    let too_old = session.created_ts + (max_age_secs as i64).saturating_mul(1000);
                    *expires <= now || too_old <= now || disabled(session.user)
                }
            };
            if dead {
                s.sessions.remove(token_hash);
                return Ok(None);
            }
            let Some((session, expires)) = s.sessions.get_mut(token_hash) else {
                return Ok(None);
            };
            session.last_used_ts = now;
            *expires = now + ttl_secs as i64 * 1000;
            Ok(Some(session.clone()))
        })
    }

    pub async fn sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        self.with(|s| {
            let now = crate::auth::now_ms();
            Ok(s.sessions
                .values()
                .filter(|(session, expires)| session.user == user && *expires > now)
                .map(|(session, _)| session.clone())
                .collect())
        })
    }

    pub async fn revoke_session(&self, user: UserId, session_id: &str) -> StoreResult<bool> {
        self.with(|s| {
            let now = crate::auth::now_ms();
            let mut revoked = false;
            s.sessions.retain(|_, (session, expires)| {
                let hit = session.user == user && session.id == session_id;
                revoked |= hit && *expires > now;
                !hit
            });
            if revoked {
                s.send(bus::revoke_msg(user, session_id));
            }
            Ok(revoked)
        })
    }

    pub async fn create_room(
        &self,
        owner: UserId,
        name: &str,
        visibility: Visibility,
        event_json: &str,
        now: i64,
    ) -> StoreResult<RoomId> {
        self.with(|s| {
            let id = s.new_room(name, RoomKind::Group, visibility, Some(owner), None);
            if visibility == Visibility::Public {
                s.public.insert(id);
            }
            s.add_member(id, owner, Role::Owner, event_json, now)?;
            Ok(id)
        })
    }

    pub async fn open_dm(
        &self,
        a: (UserId, &str),
        b: (UserId, &str),
        now: i64,
    ) -> StoreResult<RoomId> {
        let (a, b) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        self.with(|s| {
            if let Some(room) = s.dms.get(&(a.0, b.0)) {
                return Ok(*room);
            }
            let id = s.new_room(
                "",
                RoomKind::Direct,
                Visibility::Private,
                None,
                Some((a.0, b.0)),
            );
            s.dms.insert((a.0, b.0), id);
            for (user, name) in [a, b] {
                s.add_member(
                    id,
                    user,
                    Role::Member,
                    &super::member_joined_json(user, name, Role::Member, None),
                    now,
                )?;
            }
            Ok(id)
        })
    }

    pub async fn room(&self, room: RoomId) -> StoreResult<Option<RoomMeta>> {
        self.with(|s| Ok(s.rooms.get(&room).map(|r| r.meta.clone())))
    }

    pub async fn rooms(&self, rooms: &[RoomId]) -> StoreResult<Vec<RoomMeta>> {
        self.with(|s| {
            Ok(rooms
                .iter()
                .filter_map(|id| s.rooms.get(id).map(|r| r.meta.clone()))
                .collect())
        })
    }

    pub async fn public_rooms(&self) -> StoreResult<Vec<RoomId>> {
        self.with(|s| Ok(s.public.iter().copied().collect()))
    }

    pub async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>> {
        self.with(|s| {
            Ok(s.user_rooms
                .get(&user)
                .map(|r| r.iter().copied().collect())
                .unwrap_or_default())
        })
    }

    pub async fn role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        self.with(|s| {
            Ok(s.rooms
                .get(&room)
                .and_then(|r| r.members.get(&user).copied()))
        })
    }

    pub async fn members(&self, room: RoomId) -> StoreResult<Vec<(UserId, Role)>> {
        self.with(|s| {
            Ok(s.rooms
                .get(&room)
                .map(|r| r.members.iter().map(|(u, r)| (*u, *r)).collect())
                .unwrap_or_default())
        })
    }

    pub async fn change_member(
        &self,
        change: MemberChange<'_>,
        now: i64,
    ) -> StoreResult<Option<u64>> {
        self.with(|s| {
            let room = s
                .rooms
                .get(&change.room)
                .ok_or_else(ApiError::room_not_found)?;
            let is_member = room.members.contains_key(&change.user);
            let banned = s
                .moderation
                .bans
                .get(&change.room)
                .is_some_and(|b| b.contains(&change.user));
            match change.role {
                Some(_) if is_member => Ok(None),
                Some(_) if banned => Err(super::banned_error().into()),
                Some(role) => {
                    let orphaned = room.meta.kind == RoomKind::Group && room.meta.owner.is_none();
                    let seq =
                        s.add_member(change.room, change.user, role, change.event_json, now)?;
                    // A group room whose last member left has no owner: the next to join takes it over.
                    if orphaned {
                        let r = s
                            .rooms
                            .get_mut(&change.room)
                            .ok_or_else(ApiError::room_not_found)?;
                        r.members.insert(change.user, Role::Owner);
                        r.meta.owner = Some(change.user);
                        s.append(
                            change.room,
                            &super::owner_changed_json(change.user),
                            now,
                            None,
                        )?;
                    }
                    Ok(Some(seq))
                }
                None if !is_member => Ok(None),
                None => {
                    let was_owner = room.members.get(&change.user) == Some(&Role::Owner);
                    let room = s
                        .rooms
                        .get_mut(&change.room)
                        .ok_or_else(ApiError::room_not_found)?;
                    room.members.remove(&change.user);
                    room.meta.member_count = room.members.len() as u64;
                    if let Some(rooms) = s.user_rooms.get_mut(&change.user) {
                        rooms.remove(&change.room);
                    }
                    let member = Some(MemberRoute::Left(change.user));
                    let seq = s.append(change.room, change.event_json, now, member)?;
                    if was_owner {
                        let room = s
                            .rooms
                            .get_mut(&change.room)
                            .ok_or_else(ApiError::room_not_found)?;
                        room.meta.owner = None;
                        // The longest-standing member takes over (lowest id as a stable stand-in).
                        if let Some(&heir) = room.members.keys().next() {
                            room.members.insert(heir, Role::Owner);
                            room.meta.owner = Some(heir);
                            s.append(change.room, &super::owner_changed_json(heir), now, None)?;
                        }
                    }
                    Ok(Some(seq))
                }
            }
        })
    }

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
                return Err(super::blocked_error().into());
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
                return Err(super::blocked_error().into());
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

    pub async fn publish(&self, msg: String) -> StoreResult<()> {
        self.with(|s| {
            s.send(msg);
            Ok(())
        })
    }

    pub async fn presence_up(&self, user: UserId, _now: i64) -> StoreResult<()> {
        self.with(|s| {
            if s.online.insert(user) {
                s.announce(user, true, None);
            }
            Ok(())
        })
    }

    pub async fn presence_down(&self, user: UserId, now: i64) -> StoreResult<()> {
        self.with(|s| {
            if s.online.remove(&user) {
                s.last_seen.insert(user, now);
                s.announce(user, false, Some(now));
            }
            Ok(())
        })
    }

    pub async fn presence(&self, users: &[UserId], _now: i64) -> StoreResult<Vec<Presence>> {
        self.with(|s| {
            Ok(users
                .iter()
                .map(|u| Presence {
                    online: s.online.contains(u),
                    last_seen: s.last_seen.get(u).copied(),
                })
                .collect())
        })
    }

    pub async fn presence_heartbeat(&self, _now: i64, _ttl_ms: i64) -> StoreResult<bool> {
        Ok(false)
    }

    pub fn epoch(&self) -> String {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The embedded store lives and dies with the process: never reset under a running node.
    pub async fn same_epoch(&self) -> StoreResult<bool> {
        Ok(true)
    }

    pub async fn presence_node_down(&self, now: i64) -> StoreResult<()> {
        self.with(|s| {
            for user in std::mem::take(&mut s.online) {
                s.last_seen.insert(user, now);
                s.announce(user, false, Some(now));
            }
            Ok(())
        })
    }
}

// Privacy and moderation (issue 11).
impl MemoryStore {
    pub async fn shares_room(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<bool>> {
        self.with(|s| {
            let empty = BTreeSet::new();
            let mine = s.user_rooms.get(&user).unwrap_or(&empty);
            Ok(others
                .iter()
                .map(|o| {
                    s.user_rooms
                        .get(o)
                        .is_some_and(|theirs| !mine.is_disjoint(theirs))
                })
                .collect())
        })
    }

    pub async fn set_ban(&self, room: RoomId, user: UserId, banned: bool) -> StoreResult<bool> {
        self.with(|s| {
            let set = s.moderation.bans.entry(room).or_default();
            Ok(if banned {
                set.insert(user)
            } else {
                set.remove(&user)
            })
        })
    }

    pub async fn bans(&self, room: RoomId) -> StoreResult<Vec<UserId>> {
        self.with(|s| {
            Ok(s.moderation
                .bans
                .get(&room)
                .map(|b| b.iter().copied().collect())
                .unwrap_or_default())
        })
    }

    pub async fn set_block(&self, user: UserId, other: UserId, blocked: bool) -> StoreResult<()> {
        self.with(|s| {
            let set = s.moderation.blocks.entry(user).or_default();
            if blocked {
                set.insert(other);
            } else {
                set.remove(&other);
            }
            Ok(())
        })
    }

    pub async fn blocked(&self, by: UserId, whom: UserId) -> StoreResult<bool> {
        self.with(|s| {
            Ok(s.moderation
                .blocks
                .get(&by)
                .is_some_and(|b| b.contains(&whom)))
        })
    }

    pub async fn blocks(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.with(|s| {
            Ok(s.moderation
                .blocks
                .get(&user)
                .map(|b| b.iter().copied().collect())
                .unwrap_or_default())
        })
    }

    pub async fn roles(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<Option<Role>>> {
        self.with(|s| {
            Ok(rooms
                .iter()
                .map(|r| s.rooms.get(r).and_then(|r| r.members.get(&user).copied()))
                .collect())
        })
    }

    pub async fn newest_events(&self, rooms: &[(RoomId, usize)]) -> StoreResult<Vec<Vec<String>>> {
        self.with(|s| {
            Ok(rooms
                .iter()
                .map(|(r, n)| {
                    s.rooms.get(r).map_or_else(Vec::new, |r| {
                        let skip = r.log.len().saturating_sub(*n);
                        r.log.iter().skip(skip).map(|(_, f)| f.clone()).collect()
                    })
                })
                .collect())
        })
    }

    pub async fn room_count(&self, user: UserId) -> StoreResult<u64> {
        self.with(|s| Ok(s.user_rooms.get(&user).map_or(0, |r| r.len() as u64)))
    }
}

impl MemRoom {
    /// The kept, not deleted message at `seq` (`message_not_found`, `message_deleted`).
    fn message(&mut self, seq: u64) -> StoreResult<&mut (RoomEvent, String)> {
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
        change: super::ReactionChange<'_>,
        now: i64,
    ) -> StoreResult<Option<u64>> {
        self.with(|s| {
            if s.blocked_in_dm(change.room, change.user) {
                return Err(super::blocked_error().into());
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
                        return Err(super::reactions_full(true).into());
                    }
                    match found {
                        Some(i) => reactions[i].users.push(change.user),
                        None if reactions.len() >= protocol::limits::MAX_REACTIONS_PER_MESSAGE => {
                            return Err(super::reactions_full(false).into())
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

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// `user` is a member of the direct room `room` whose other member blocked them: they may
    /// read it, not write in it (send, edit, react).
    fn blocked_in_dm(&self, room: RoomId, user: UserId) -> bool {
        let Some((a, b)) = self.rooms.get(&room).and_then(|r| r.meta.pair) else {
            return false;
        };
        let other = if a == user { b } else { a };
        (a == user || b == user)
            && self
                .moderation
                .blocks
                .get(&other)
                .is_some_and(|blocked| blocked.contains(&user))
    }

    /// Creates an account; the first account of the store is an admin.
    fn insert_user(
        &mut self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<UserRecord> {
        let lower = username.to_lowercase();
        let skeleton = super::name_skeleton(username);
        if self.names.contains_key(&lower) || self.moderation.skeletons.contains_key(&skeleton) {
            return Err(ApiError::new(ErrorCode::UsernameTaken, "that username is taken").into());
        }
        self.next_user += 1;
        let user = UserRecord {
            id: UserId(self.next_user),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            created_ts: now,
            admin: self.next_user == 1,
            disabled: false,
        };
        self.names.insert(lower, user.id);
        self.moderation.skeletons.insert(skeleton, user.id);
        self.users.insert(user.id, user.clone());
        Ok(user)
    }

    fn send(&self, msg: String) {
        self.bus.message(&msg);
    }

    fn announce(&self, user: UserId, online: bool, last_seen: Option<i64>) {
        let rooms: Vec<RoomId> = self
            .user_rooms
            .get(&user)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        self.send(bus::presence_msg(
            user,
            &rooms,
            &bus::presence_frame(user, online, last_seen),
        ));
    }

    fn new_room(
        &mut self,
        name: &str,
        kind: RoomKind,
        visibility: Visibility,
        owner: Option<UserId>,
        pair: Option<(UserId, UserId)>,
    ) -> RoomId {
        self.next_room += 1;
        let id = RoomId(self.next_room);
        let meta = RoomMeta {
            id,
            name: name.to_owned(),
            kind,
            visibility,
            owner,
            last_seq: 0,
            member_count: 0,
            pair,
            topic: String::new(),
        };
        self.rooms.insert(
            id,
            MemRoom {
                meta,
                members: BTreeMap::new(),
                log: VecDeque::new(),
                last_ts: 0,
            },
        );
        id
    }

    fn add_member(
        &mut self,
        room: RoomId,
        user: UserId,
        role: Role,
        event_json: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let r = self
            .rooms
            .get_mut(&room)
            .ok_or_else(ApiError::room_not_found)?;
        r.members.insert(user, role);
        r.meta.member_count = r.members.len() as u64;
        if role == Role::Owner {
            r.meta.owner = Some(user);
        }
        self.user_rooms.entry(user).or_default().insert(room);
        self.append(room, event_json, now, Some(MemberRoute::Joined(user)))
    }

    /// Assigns the next seq, stores the event and publishes it: the one append path.
    fn append(
        &mut self,
        room: RoomId,
        event_json: &str,
        now: i64,
        member: Option<MemberRoute>,
    ) -> StoreResult<u64> {
        let r = self
            .rooms
            .get_mut(&room)
            .ok_or_else(ApiError::room_not_found)?;
        let seq = r.meta.last_seq + 1;
        // Timestamps never go backwards within a room, even if the clock does.
        let ts = r.last_ts.max(now);
        let frame = bus::event_frame(room, seq, ts, event_json);
        let event: RoomEvent = serde_json::from_str(&frame)?;
        r.meta.last_seq = seq;
        r.last_ts = ts;
        r.log.push_back((event, frame.clone()));
        let msg = bus::room_msg(room, seq, member, &frame);
        self.send(msg);
        Ok(seq)
    }

    fn trim(&mut self, room: RoomId, retention: Retention, now: i64) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        if retention.max_events > 0 {
            while r.log.len() as u64 > retention.max_events {
                r.log.pop_front();
            }
        }
        if retention.max_age_ms > 0 {
            while r
                .log
                .front()
                .is_some_and(|(e, _)| e.ts < now - retention.max_age_ms)
            {
                r.log.pop_front();
            }
        }
    }
}
