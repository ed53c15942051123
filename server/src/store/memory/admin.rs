//! Accounts and administration on the embedded store: passwords, revoking every session, admin
//! and disabled flags, invite codes, and the whole data set in and out (export/import).

use super::{MemRoom, MemoryStore, State};
use crate::error::{ApiError, StoreError, StoreResult};
use crate::store::bus;
use crate::store::dump::{DataSet, DedupeRecord, RoomRecord};
use crate::store::{registration_closed, Admission, InviteRecord, RoomMeta, UserFlag, UserRecord};
use protocol::rest::{RoomKind, Visibility};
use protocol::{ErrorCode, RoomEvent, UserId};
use std::collections::{BTreeMap, VecDeque};

fn invalid_invite() -> StoreError {
    ApiError::new(
        ErrorCode::InvalidInvite,
        "the invite code is unknown, used up or expired",
    )
    .into()
}

impl State {
    /// Revokes every session of `user` but `keep`, telling every connection of them to close.
    fn revoke_all(&mut self, user: UserId, keep: Option<&str>) -> u64 {
        let mut revoked = Vec::new();
        self.sessions.retain(|_, (session, _)| {
            let hit = session.user == user && Some(session.id.as_str()) != keep;
            if hit {
                revoked.push(session.id.clone());
            }
            !hit
        });
        for id in &revoked {
            self.send(bus::revoke_msg(user, id));
        }
        revoked.len() as u64
    }
}

impl MemoryStore {
    pub async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.with(|s| Ok(s.users.get(&id).cloned()))
    }

    pub async fn list_users(&self, after: u64, limit: usize) -> StoreResult<Vec<UserRecord>> {
        self.with(|s| {
            let mut users: Vec<UserRecord> = s
                .users
                .values()
                .filter(|u| u.id.0 > after)
                .cloned()
                .collect();
            users.sort_by_key(|u| u.id);
            users.truncate(limit);
            Ok(users)
        })
    }

    pub async fn register_user(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
        admission: Admission<'_>,
    ) -> StoreResult<UserRecord> {
        self.with(|s| {
            let invite = match admission {
                Admission::Open => None,
                Admission::FirstAccount if s.next_user > 0 => return Err(registration_closed()),
                Admission::FirstAccount => None,
                Admission::Invite(code) => {
                    let usable = s
                        .invites
                        .get(code)
                        .is_some_and(|i| i.uses_left > 0 && i.expires_ts > now);
                    if !usable {
                        return Err(invalid_invite());
                    }
                    Some(code)
                }
            };
            let user = s.insert_user(username, password_hash, now)?;
            if let Some(code) = invite {
                if let Some(i) = s.invites.get_mut(code) {
                    i.uses_left -= 1;
                    if i.uses_left == 0 {
                        s.invites.remove(code);
                    }
                }
            }
            Ok(user)
        })
    }

    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<&str>,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let Some(record) = s.users.get_mut(&user) else {
                return Ok(false);
            };
            password_hash.clone_into(&mut record.password_hash);
            s.revoke_all(user, keep);
            Ok(true)
        })
    }

    pub async fn revoke_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64> {
        self.with(|s| Ok(s.revoke_all(user, keep)))
    }

    pub async fn set_user_flag(&self, user: UserId, flag: UserFlag, on: bool) -> StoreResult<bool> {
        self.with(|s| {
            let Some(record) = s.users.get_mut(&user) else {
                return Ok(false);
            };
            match flag {
                UserFlag::Admin => record.admin = on,
                UserFlag::Disabled => {
                    record.disabled = on;
                    if on {
                        s.revoke_all(user, None);
                    }
                }
            }
            Ok(true)
        })
    }

    pub async fn create_invite(&self, invite: &InviteRecord) -> StoreResult<()> {
        self.with(|s| {
            s.invites.insert(invite.code_hash.clone(), invite.clone());
            Ok(())
        })
    }

    pub async fn dump(&self, now: i64) -> StoreResult<DataSet> {
        let epoch = self.epoch();
        self.with(|s| {
            let mut data = DataSet {
                epoch,
                last_user: s.next_user,
                last_room: s.next_room,
                users: s.users.values().cloned().collect(),
                sessions: s
                    .sessions
                    .values()
                    .filter(|(_, expires)| *expires > now)
                    .cloned()
                    .collect(),
                reads: s
                    .read
                    .iter()
                    .filter(|(_, seq)| **seq > 0)
                    .map(|((u, r), seq)| (*u, *r, *seq))
                    .collect(),
                invites: s
                    .invites
                    .values()
                    .filter(|i| i.expires_ts > now && i.uses_left > 0)
                    .cloned()
                    .collect(),
                ..DataSet::default()
            };
            let mut rooms: Vec<&MemRoom> = s.rooms.values().collect();
            rooms.sort_by_key(|r| r.meta.id);
            for room in rooms {
                let m = &room.meta;
                data.rooms.push(RoomRecord {
                    id: m.id,
                    name: m.name.clone(),
                    kind: m.kind,
                    visibility: m.visibility,
                    owner: m.owner,
                    topic: m.topic.clone(),
                    last_seq: m.last_seq,
                    last_ts: room.last_ts,
                    pair: m.pair,
                });
                data.members
                    .extend(room.members.iter().map(|(u, r)| (m.id, *u, *r)));
                data.events
                    .extend(room.log.iter().map(|(_, frame)| frame.clone()));
            }
            let expiry: BTreeMap<_, i64> = s
                .dedupe_expiry
                .iter()
                .map(|(at, key)| (key.clone(), *at))
                .collect();
            for ((room, sender, client_id), (seq, ts)) in &s.dedupe {
                let key = (*room, *sender, client_id.clone());
                let expires_ts = expiry.get(&key).copied().unwrap_or(0);
                if expires_ts > now {
                    data.dedupe.push(DedupeRecord {
                        room: *room,
                        sender: *sender,
                        client_id: client_id.clone(),
                        seq: *seq,
                        ts: *ts,
                        expires_ts,
                    });
                }
            }
            for (room, users) in &s.moderation.bans {
                data.bans.extend(users.iter().map(|u| (*room, *u)));
            }
            for (user, blocked) in &s.moderation.blocks {
                data.blocks.extend(blocked.iter().map(|b| (*user, *b)));
            }
            data.display_names = s
                .profiles
                .display_names
                .iter()
                .map(|(u, n)| (*u, n.clone()))
                .collect();
            data.notify = s
                .profiles
                .notify
                .iter()
                .map(|((u, r), level)| (*u, *r, *level))
                .collect();
            data.uploads = s.uploads.export();
            data.sort();
            Ok(data)
        })
    }

    pub async fn load(&self, data: &DataSet) -> StoreResult<()> {
        self.with(|s| {
            if s.next_user > 0 || s.next_room > 0 || !s.users.is_empty() || !s.rooms.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::StoreNotEmpty,
                    "the store already holds accounts or rooms",
                )
                .into());
            }
            s.next_user = data.last_user;
            s.next_room = data.last_room;
            for u in &data.users {
                s.names.insert(u.username.to_lowercase(), u.id);
                // Confusable names of the data set collide from now on (the first keeps it).
                s.moderation
                    .skeletons
                    .entry(crate::store::name_skeleton(&u.username))
                    .or_insert(u.id);
                s.users.insert(u.id, u.clone());
            }
            for (session, expires) in &data.sessions {
                s.sessions
                    .insert(session.token_hash.clone(), (session.clone(), *expires));
            }
            for r in &data.rooms {
                let meta = RoomMeta {
                    id: r.id,
                    name: r.name.clone(),
                    kind: r.kind,
                    visibility: r.visibility,
                    owner: r.owner,
                    last_seq: r.last_seq,
                    member_count: 0,
                    pair: r.pair,
                    topic: r.topic.clone(),
                };
                if r.visibility == Visibility::Public && r.kind == RoomKind::Group {
                    s.public.insert(r.id);
                }
                if let Some(pair) = r.pair {
                    s.dms.insert(pair, r.id);
                }
                s.rooms.insert(
                    r.id,
                    MemRoom {
                        meta,
                        members: BTreeMap::new(),
                        log: VecDeque::new(),
                        last_ts: r.last_ts,
                    },
                );
            }
            for (room, user, role) in &data.members {
                let r = s
                    .rooms
                    .get_mut(room)
                    .ok_or_else(|| StoreError::Corrupt(format!("member of missing room {room}")))?;
                r.members.insert(*user, *role);
                r.meta.member_count = r.members.len() as u64;
                s.user_rooms.entry(*user).or_default().insert(*room);
            }
            for frame in &data.events {
                let event: RoomEvent = serde_json::from_str(frame)?;
                let r = s.rooms.get_mut(&event.room).ok_or_else(|| {
                    StoreError::Corrupt(format!("event of missing room {}", event.room))
                })?;
                r.log.push_back((event, frame.clone()));
            }
            for (user, room, seq) in &data.reads {
                s.read.insert((*user, *room), *seq);
            }
            for i in &data.invites {
                s.invites.insert(i.code_hash.clone(), i.clone());
            }
            for (room, user) in &data.bans {
                s.moderation.bans.entry(*room).or_default().insert(*user);
            }
            for (user, blocked) in &data.blocks {
                s.moderation
                    .blocks
                    .entry(*user)
                    .or_default()
                    .insert(*blocked);
            }
            for (user, name) in &data.display_names {
                s.profiles.display_names.insert(*user, name.clone());
            }
            for (user, room, level) in &data.notify {
                s.profiles.notify.insert((*user, *room), *level);
            }
            s.uploads.import(&data.uploads);
            let mut dedupe: Vec<&DedupeRecord> = data.dedupe.iter().collect();
            dedupe.sort_by_key(|d| d.expires_ts);
            for d in dedupe {
                let key = (d.room, d.sender, d.client_id.clone());
                s.dedupe.insert(key.clone(), (d.seq, d.ts));
                s.dedupe_expiry.push_back((d.expires_ts, key));
            }
            Ok(())
        })?;
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = data.epoch.clone();
        Ok(())
    }
}
