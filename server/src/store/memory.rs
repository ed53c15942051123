//! The embedded store: everything in one process, behind one mutex, gone at exit.
//!
//! Same semantics as Redis on a single node. Appends publish to the bus while holding the lock,
//! so bus order equals seq order exactly as with the Redis scripts (the hub routes each message
//! right there, under the lock; it never calls back into the store).

mod admin;
mod attachments;
mod messages;
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
        self.bus.message(msg);
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
