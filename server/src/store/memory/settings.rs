//! Room settings and profiles in the embedded store (issue 13), with the semantics of
//! `redis/settings.rs`: rename and topic, deleting a room, notification levels, display names.

use super::{MemoryStore, State};
use crate::error::{ApiError, StoreResult};
use crate::store::bus::{self, MemberRoute};
use crate::store::RoomUpdate;
use protocol::event::Role;
use protocol::rest::{NotifyLevel, RoomKind};
use protocol::{RoomId, UserId};
use std::collections::HashMap;

/// Display names and notification levels, apart from the accounts and rooms they belong to.
#[derive(Default)]
pub(super) struct Profiles {
    pub(super) display_names: HashMap<UserId, String>,
    /// (user, room) → level; absent means [`NotifyLevel::All`].
    pub(super) notify: HashMap<(UserId, RoomId), NotifyLevel>,
}

impl State {
    /// The refusals shared by the owner's room settings, in the documented order.
    fn check_owner(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        let r = self.rooms.get(&room).ok_or_else(ApiError::not_a_member)?;
        let role = r.members.get(&user).ok_or_else(ApiError::not_a_member)?;
        if r.meta.kind == RoomKind::Direct {
            return Err(crate::store::direct_room_error().into());
        }
        if *role != Role::Owner {
            return Err(crate::store::not_owner_error().into());
        }
        Ok(())
    }
}

impl MemoryStore {
    pub async fn update_room(&self, update: RoomUpdate<'_>, now: i64) -> StoreResult<Option<u64>> {
        if update.name.is_none() && update.topic.is_none() {
            return Ok(None);
        }
        self.with(|s| {
            s.check_owner(update.room, update.by)?;
            let r = s
                .rooms
                .get_mut(&update.room)
                .ok_or_else(ApiError::not_a_member)?;
            if let Some(name) = update.name {
                r.meta.name = name.to_owned();
            }
            if let Some(topic) = update.topic {
                r.meta.topic = topic.to_owned();
            }
            s.append(update.room, update.event_json, now, None)
                .map(Some)
        })
    }

    pub async fn delete_room(
        &self,
        room: RoomId,
        by: UserId,
        event_json: &str,
        now: i64,
    ) -> StoreResult<u64> {
        self.with(|s| {
            s.check_owner(room, by)?;
            let seq = s.append(room, event_json, now, Some(MemberRoute::RoomDeleted))?;
            if let Some(r) = s.rooms.remove(&room) {
                for user in r.members.keys() {
                    if let Some(rooms) = s.user_rooms.get_mut(user) {
                        rooms.remove(&room);
                    }
                    s.read.remove(&(*user, room));
                    s.profiles.notify.remove(&(*user, room));
                }
            }
            s.public.remove(&room);
            s.moderation.bans.remove(&room);
            Ok(seq)
        })
    }

    pub async fn set_notify(
        &self,
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
        frame: &str,
    ) -> StoreResult<()> {
        self.with(|s| {
            let member = s
                .rooms
                .get(&room)
                .is_some_and(|r| r.members.contains_key(&user));
            if !member {
                return Err(ApiError::not_a_member().into());
            }
            if level == NotifyLevel::All {
                s.profiles.notify.remove(&(user, room));
            } else {
                s.profiles.notify.insert((user, room), level);
            }
            s.send(bus::user_msg(user, frame));
            Ok(())
        })
    }

    pub async fn notify_levels(
        &self,
        user: UserId,
        rooms: &[RoomId],
    ) -> StoreResult<Vec<NotifyLevel>> {
        self.with(|s| {
            Ok(rooms
                .iter()
                .map(|room| {
                    s.profiles
                        .notify
                        .get(&(user, *room))
                        .copied()
                        .unwrap_or_default()
                })
                .collect())
        })
    }

    pub async fn set_display_name(&self, user: UserId, name: Option<&str>) -> StoreResult<bool> {
        self.with(|s| {
            if !s.users.contains_key(&user) {
                return Ok(false);
            }
            match name {
                Some(name) => s.profiles.display_names.insert(user, name.to_owned()),
                None => s.profiles.display_names.remove(&user),
            };
            Ok(true)
        })
    }

    pub async fn display_names(&self, users: &[UserId]) -> StoreResult<Vec<Option<String>>> {
        self.with(|s| {
            Ok(users
                .iter()
                .map(|u| s.profiles.display_names.get(u).cloned())
                .collect())
        })
    }
}
