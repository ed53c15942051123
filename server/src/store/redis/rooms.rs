//! Rooms and membership. The scripts are in redis.rs, beside the Lua they share.

use super::*;

impl RedisStore {
    pub async fn create_room(
        &self,
        owner: UserId,
        name: &str,
        visibility: Visibility,
        event_json: &str,
        _now: i64,
    ) -> StoreResult<RoomId> {
        self.writable()?;
        let public = visibility == Visibility::Public;
        // An id (unused if a later step fails: harmless), the room, the owner's list, the
        // public list: readers skip what a failed attempt left behind.
        let id: u64 = self.con().incr("ids:room", 1).await?;
        let _: i64 = room_script(&CREATE_ROOM, id)
            .arg(id)
            .arg(owner.0)
            .arg(name)
            .arg(if public { "public" } else { "private" })
            .arg(event_json)
            .invoke_async(&mut self.con())
            .await?;
        self.hook(Step::RoomMade)?;
        let _: i64 = self.con().sadd(keys::user_rooms(owner), id).await?;
        if public {
            let _: i64 = self.con().sadd("rooms:public", id).await?;
        }
        Ok(RoomId(id))
    }

    pub async fn open_dm(
        &self,
        a: (UserId, &str),
        b: (UserId, &str),
        _now: i64,
    ) -> StoreResult<RoomId> {
        self.writable()?;
        let (a, b) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        // The pair's room id first (authoritative: the loser of a race takes the winner's),
        // then the room, then both users' lists. Each step is a no-op when done, so opening
        // it again finishes what a failed attempt began.
        let key = format!("dm:{}:{}", a.0, b.0);
        let existing: Option<u64> = self.con().get(&key).await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let new: u64 = self.con().incr("ids:room", 1).await?;
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(new)
                    .arg("NX")
                    .query_async(&mut self.con())
                    .await?;
                let id: Option<u64> = self.con().get(&key).await?;
                id.ok_or_else(|| corrupt("direct room id"))?
            }
        };
        self.hook(Step::DmClaimed)?;
        // A member the other blocked may read the room but not send (see SET_BLOCK).
        let (b_blocks_a, a_blocks_b): (bool, bool) = redis::pipe()
            .sismember(keys::user_blocks(b.0), a.0 .0)
            .sismember(keys::user_blocks(a.0), b.0 .0)
            .query_async(&mut self.con())
            .await?;
        let role = |blocked: bool| if blocked { "blocked" } else { "member" };
        let _: i64 = room_script(&OPEN_DM, id)
            .arg(id)
            .arg(a.0 .0)
            .arg(b.0 .0)
            .arg(role(b_blocks_a))
            .arg(role(a_blocks_b))
            .arg(crate::store::member_joined_json(
                a.0,
                a.1,
                Role::Member,
                None,
            ))
            .arg(crate::store::member_joined_json(
                b.0,
                b.1,
                Role::Member,
                None,
            ))
            .invoke_async(&mut self.con())
            .await?;
        self.hook(Step::DmMade)?;
        let _: (i64, i64) = redis::pipe()
            .sadd(keys::user_rooms(a.0), id)
            .sadd(keys::user_rooms(b.0), id)
            .query_async(&mut self.con())
            .await?;
        Ok(RoomId(id))
    }

    pub async fn room(&self, room: RoomId) -> StoreResult<Option<RoomMeta>> {
        Ok(self.rooms(&[room]).await?.pop())
    }

    pub async fn rooms(&self, rooms: &[RoomId]) -> StoreResult<Vec<RoomMeta>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.hgetall(keys::room(room)).hlen(keys::members(room));
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.con()).await?;
        let mut out = Vec::with_capacity(rooms.len());
        for (room, pair) in rooms.iter().zip(replies.chunks(2)) {
            let fields: HashMap<String, String> = redis::from_redis_value(pair[0].clone())?;
            if fields.is_empty() {
                continue;
            }
            let members: u64 = redis::from_redis_value(pair[1].clone())?;
            let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
            let direct = fields.get("kind").map(String::as_str) == Some("direct");
            out.push(RoomMeta {
                id: *room,
                name: fields.get("name").cloned().unwrap_or_default(),
                kind: if direct {
                    RoomKind::Direct
                } else {
                    RoomKind::Group
                },
                visibility: if fields.get("vis").map(String::as_str) == Some("public") {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
                owner: num("owner").map(UserId),
                last_seq: num("seq").unwrap_or(0),
                member_count: members,
                pair: num("a").zip(num("b")).map(|(a, b)| (UserId(a), UserId(b))),
                topic: fields.get("topic").cloned().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    pub async fn public_rooms(&self) -> StoreResult<Vec<RoomId>> {
        let ids: Vec<u64> = self.con().smembers("rooms:public").await?;
        let mut ids: Vec<RoomId> = ids.into_iter().map(RoomId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>> {
        let ids: Vec<u64> = self.con().smembers(keys::user_rooms(user)).await?;
        // The list is a hint (written after the room's members, in another slot): only rooms
        // whose members have the user count.
        let mut kept = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(512) {
            let mut pipe = redis::pipe();
            for room in chunk {
                pipe.hexists(keys::members(room), user.0);
            }
            let member: Vec<bool> = pipe.query_async(&mut self.con()).await?;
            kept.extend(
                chunk
                    .iter()
                    .zip(member)
                    .filter(|(_, m)| *m)
                    .map(|(r, _)| RoomId(*r)),
            );
        }
        kept.sort();
        Ok(kept)
    }

    pub async fn role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> = self.con().hget(keys::members(room), user.0).await?;
        Ok(role.as_deref().map(parse_role))
    }

    pub async fn members(&self, room: RoomId) -> StoreResult<Vec<(UserId, Role)>> {
        let all: HashMap<u64, String> = self.con().hgetall(keys::members(room)).await?;
        let mut members: Vec<(UserId, Role)> = all
            .into_iter()
            .map(|(u, r)| (UserId(u), parse_role(&r)))
            .collect();
        members.sort_by_key(|(u, _)| *u);
        Ok(members)
    }

    pub async fn change_member(
        &self,
        change: MemberChange<'_>,
        _now: i64,
    ) -> StoreResult<Option<u64>> {
        self.writable()?;
        let seq: i64 = room_script(&CHANGE_MEMBER, change.room.0)
            .arg(change.room.0)
            .arg(change.user.0)
            .arg(change.role.map_or("", role_name))
            .arg(change.event_json)
            .arg(self.watch.floor(change.room.0))
            .invoke_async(&mut self.con())
            .await?;
        let changed = match seq {
            -1 => return Err(ApiError::room_not_found().into()),
            -2 => return Err(self.behind()),
            -3 => return Err(crate::store::banned_error().into()),
            0 => None,
            seq => {
                self.watch.note(change.room.0, seq as u64);
                Some(seq as u64)
            }
        };
        self.hook(Step::MemberChanged)?;
        // The user's list follows, also when the room changed nothing: a retry after a failure
        // between the steps finishes it.
        let list = keys::user_rooms(change.user);
        let _: i64 = if change.role.is_some() {
            self.con().sadd(list, change.room.0).await?
        } else {
            self.con().srem(list, change.room.0).await?
        };
        Ok(changed)
    }
}
