//! Accounts and sessions. The scripts are in redis.rs, beside the Lua they share.

use super::*;

impl RedisStore {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<UserRecord> {
        self.register_user(username, password_hash, now, crate::store::Admission::Open)
            .await
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let mut con = self.con();
        let id: Option<String> = con
            .get(format!("uname:{}", username.to_lowercase()))
            .await?;
        // Reserved by a registration under way (or one that stopped): not a user (yet).
        let Some(id) = id.and_then(|id| id.parse::<u64>().ok()) else {
            return Ok(None);
        };
        let fields: HashMap<String, String> = con.hgetall(keys::user(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        user_from_fields(id, &fields).map(Some)
    }

    pub async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<(UserId, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(keys::user(id), "name");
        }
        let names: Vec<Option<String>> = pipe.query_async(&mut self.con()).await?;
        Ok(ids
            .iter()
            .zip(names)
            .filter_map(|(id, name)| Some((*id, name?)))
            .collect())
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<(UserId, String)>> {
        let mut con = self.con();
        let min = format!("[{prefix}");
        let max = format!("[{prefix}\u{ff}");
        let found: Vec<String> = redis::cmd("ZRANGE")
            .arg("unames")
            .arg(min)
            .arg(max)
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut con)
            .await?;
        let ids: Vec<UserId> = found
            .iter()
            .filter_map(|entry| {
                entry
                    .rsplit_once(':')
                    .and_then(|(_, id)| id.parse().ok())
                    .map(UserId)
            })
            .collect();
        self.users(&ids).await
    }

    pub async fn create_session(&self, session: &SessionRecord, ttl_secs: u64) -> StoreResult<()> {
        // The user's index first, then the session (one slot each): a failure between leaves an
        // index entry without a session, which listing drops; never a session that revoking
        // every session of the user would miss.
        let _: i64 = self
            .con()
            .hset(
                keys::user_sessions(session.user),
                &session.id,
                &session.token_hash,
            )
            .await?;
        let key = format!("sess:{}", session.token_hash);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("id", session.id.clone()),
                    ("user", session.user.to_string()),
                    ("device", session.device.clone().unwrap_or_default()),
                    ("created", session.created_ts.to_string()),
                    ("used", session.last_used_ts.to_string()),
                ],
            )
            .ignore()
            .expire(&key, ttl_secs as i64)
            .ignore();
        let () = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }

    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        ttl_secs: u64,
        max_age_secs: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        let key = format!("sess:{token_hash}");
        // The session touched in its slot, then its account's `off` read in the user's: a
        // session of a disabled account is deleted and refused.
        let fields: Option<HashMap<String, String>> = TOUCH_SESSION
            .key(&key)
            .arg(now)
            .arg(ttl_secs)
            .arg(max_age_secs.saturating_mul(1000))
            .invoke_async(&mut self.con())
            .await?;
        let Some(fields) = fields else {
            return Ok(None);
        };
        let session = session_from_fields(token_hash, &fields)?;
        let off: Option<String> = self.con().hget(keys::user(session.user), "off").await?;
        if off.as_deref() == Some("1") {
            let _: i64 = self.con().del(&key).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    pub async fn sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let mut con = self.con();
        let index: HashMap<String, String> = con.hgetall(keys::user_sessions(user)).await?;
        let mut pipe = redis::pipe();
        let entries: Vec<(String, String)> = index.into_iter().collect();
        for (_, hash) in &entries {
            pipe.hgetall(format!("sess:{hash}"));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
        let mut out = Vec::new();
        for ((id, hash), fields) in entries.iter().zip(all) {
            if fields.is_empty() {
                // Expired: drop it from the index.
                let _: i64 = con.hdel(keys::user_sessions(user), id).await?;
                continue;
            }
            out.push(session_from_fields(hash, &fields)?);
        }
        Ok(out)
    }

    pub async fn revoke_session(&self, user: UserId, session_id: &str) -> StoreResult<bool> {
        let hash: Option<String> = self
            .con()
            .hget(keys::user_sessions(user), session_id)
            .await?;
        let Some(hash) = hash else { return Ok(false) };
        // The token is dead from here on; the index entry and the sockets follow.
        let _: i64 = self.con().del(format!("sess:{hash}")).await?;
        self.hook(Step::SessionDeleted)?;
        self.unlist_sessions(user, &[session_id]).await?;
        Ok(true)
    }

    /// Drops sessions (deleted already) from a user's index and closes their sockets.
    pub(super) async fn unlist_sessions(&self, user: UserId, ids: &[&str]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut invocation = UNLIST_SESSIONS.key(keys::user_sessions(user));
        invocation.arg(user.0);
        for id in ids {
            invocation.arg(*id);
        }
        let _: i64 = invocation.invoke_async(&mut self.con()).await?;
        Ok(())
    }
}
