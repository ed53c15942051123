//! Privacy and moderation (issue 11): bans, blocks, who shares a room with whom. The scripts
//! are in redis.rs, beside the Lua they share.

use super::*;

impl RedisStore {
    /// Per other user: whether they share a room with `user`. The two users' `:rooms` sets
    /// are in their own partitions (slots), so `user`'s rooms are read once and looked up in
    /// each other's set.
    pub async fn shares_room(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<bool>> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mine: Vec<u64> = self.con().smembers(keys::user_rooms(user)).await?;
        if mine.is_empty() {
            return Ok(vec![false; others.len()]);
        }
        let mut pipe = redis::pipe();
        for other in others {
            pipe.cmd("SMISMEMBER")
                .arg(keys::user_rooms(*other))
                .arg(&mine);
        }
        let found: Vec<Vec<bool>> = pipe.query_async(&mut self.con()).await?;
        Ok(found.into_iter().map(|f| f.contains(&true)).collect())
    }

    pub async fn set_ban(&self, room: RoomId, user: UserId, banned: bool) -> StoreResult<bool> {
        let key = keys::bans(room);
        let changed: u64 = if banned {
            self.con().sadd(key, user.0).await?
        } else {
            self.con().srem(key, user.0).await?
        };
        Ok(changed > 0)
    }

    pub async fn bans(&self, room: RoomId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<u64> = self.con().smembers(keys::bans(room)).await?;
        let mut ids: Vec<UserId> = ids.into_iter().map(UserId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn set_block(&self, user: UserId, other: UserId, blocked: bool) -> StoreResult<()> {
        // The block (the user's slot), then the other's role in their direct room if there is
        // one (the room's): each step idempotent, a retry redoes both.
        let blocks = keys::user_blocks(user);
        let _: i64 = if blocked {
            self.con().sadd(blocks, other.0).await?
        } else {
            self.con().srem(blocks, other.0).await?
        };
        self.hook(Step::BlockSet)?;
        let (a, b) = if user.0 <= other.0 {
            (user, other)
        } else {
            (other, user)
        };
        let dm: Option<u64> = self.con().get(format!("dm:{}:{}", a.0, b.0)).await?;
        if let Some(dm) = dm {
            let _: i64 = room_script(&SET_BLOCK, dm)
                .arg(other.0)
                .arg(if blocked { "blocked" } else { "member" })
                .invoke_async(&mut self.con())
                .await?;
        }
        Ok(())
    }

    pub async fn blocked(&self, by: UserId, whom: UserId) -> StoreResult<bool> {
        Ok(self.con().sismember(keys::user_blocks(by), whom.0).await?)
    }

    pub async fn blocks(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<u64> = self.con().smembers(keys::user_blocks(user)).await?;
        let mut ids: Vec<UserId> = ids.into_iter().map(UserId).collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn roles(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<Option<Role>>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.hget(keys::members(room), user.0);
        }
        let roles: Vec<Option<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(roles
            .into_iter()
            .map(|r| r.as_deref().map(parse_role))
            .collect())
    }

    pub async fn newest_events(&self, rooms: &[(RoomId, usize)]) -> StoreResult<Vec<Vec<String>>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (room, n) in rooms {
            let n = (*n).max(1) as isize;
            pipe.zrange(keys::log(room), -n, -1);
        }
        let mut pages: Vec<Vec<String>> = pipe.query_async(&mut self.con()).await?;
        for ((_, n), page) in rooms.iter().zip(&mut pages) {
            if *n == 0 {
                page.clear();
            }
        }
        Ok(pages)
    }

    pub async fn room_count(&self, user: UserId) -> StoreResult<u64> {
        Ok(self.con().scard(keys::user_rooms(user)).await?)
    }
}
