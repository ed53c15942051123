//! Accounts and administration on Redis: passwords, revoking every session, admin and disabled
//! flags, invite codes, and the whole data set in and out (export/import). Keys: see the table
//! in `redis.rs`.

use super::conn::Conn;
use super::{
    corrupt, keys, parse_role, role_name, user_from_fields, RedisStore, Step, CLAIM_INVITE,
};
use crate::error::{ApiError, StoreError, StoreResult};
use crate::store::dump::{DataSet, DedupeRecord, RoomRecord};
use crate::store::{Admission, InviteRecord, SessionRecord, UserFlag, UserRecord};
use protocol::event::EventBody;
use protocol::rest::{NotifyLevel, RoomKind, Visibility};
use protocol::{ErrorCode, RoomEvent, RoomId, UserId};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Keys are read and written this many at a time (one pipeline each).
const BATCH: usize = 500;

/// Set once every account's name skeleton is in the `uskel:` index ([`index_skeletons`]).
const SKELETONS_INDEXED: &str = "migr:uskel";

/// Puts the name skeleton of every account in the `uskel:` index, once per data set (marked
/// by `migr:uskel`): accounts registered before the index existed, or imported by a server
/// that did not build it, would otherwise let a confusable name be registered beside them.
/// Safe to run from several nodes at once (`SET NX`; the first account of a skeleton keeps it,
/// in name order). Registrations meanwhile index themselves.
pub(super) async fn index_skeletons(con: &mut Conn) -> redis::RedisResult<()> {
    if con.exists(SKELETONS_INDEXED).await? {
        return Ok(());
    }
    let mut indexed = 0usize;
    let mut start = 0isize;
    loop {
        let entries: Vec<String> = con
            .zrange("unames", start, start + BATCH as isize - 1)
            .await?;
        if entries.is_empty() {
            break;
        }
        start += entries.len() as isize;
        let ids: Vec<u64> = entries
            .iter()
            .filter_map(|e| e.rsplit_once(':').and_then(|(_, id)| id.parse().ok()))
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(keys::user(id), "name");
        }
        let names: Vec<Option<String>> = pipe.query_async(con).await?;
        let mut pipe = redis::pipe();
        for (id, name) in ids.iter().zip(names) {
            if let Some(name) = name {
                pipe.cmd("SET")
                    .arg(format!("uskel:{}", crate::store::name_skeleton(&name)))
                    .arg(id)
                    .arg("NX")
                    .ignore();
                indexed += 1;
            }
        }
        let () = pipe.query_async(con).await?;
    }
    let () = con.set(SKELETONS_INDEXED, 1).await?;
    if indexed > 0 {
        tracing::info!(
            accounts = indexed,
            "indexed existing usernames for confusables"
        );
    }
    Ok(())
}

/// KEYS: a user's hash. ARGV: field, value. Sets it if the user exists: 1, else 0.
static SET_FIELD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// How long a registration holds its name and skeleton before it completes (a registration
/// that failed half-way frees them when this passes).
#[cfg(not(test))]
pub(super) const RESERVE_SECS: u64 = 60;
#[cfg(test)]
pub(super) const RESERVE_SECS: u64 = 1;

fn store_not_empty() -> StoreError {
    ApiError::new(
        ErrorCode::StoreNotEmpty,
        "the store already holds accounts or rooms",
    )
    .into()
}

fn num<T: std::str::FromStr>(fields: &HashMap<String, String>, key: &str) -> Option<T> {
    fields.get(key).and_then(|v| v.parse().ok())
}

impl RedisStore {
    pub async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let fields: HashMap<String, String> = self.con().hgetall(keys::user(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        user_from_fields(id.0, &fields).map(Some)
    }

    pub async fn list_users(&self, after: u64, limit: usize) -> StoreResult<Vec<UserRecord>> {
        let mut con = self.con();
        let last: Option<u64> = con.get("ids:user").await?;
        let last = last.unwrap_or(0);
        let mut out = Vec::new();
        let mut next = after.saturating_add(1);
        while out.len() < limit && next <= last {
            let ids: Vec<u64> = (next..=last).take(limit.clamp(1, BATCH)).collect();
            next = ids.last().map_or(last, |l| l + 1);
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(keys::user(id));
            }
            let all: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
            for (id, fields) in ids.into_iter().zip(all) {
                if !fields.is_empty() && out.len() < limit {
                    out.push(user_from_fields(id, &fields)?);
                }
            }
        }
        Ok(out)
    }

    pub async fn register_user(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
        admission: Admission<'_>,
    ) -> StoreResult<UserRecord> {
        let lower = username.to_lowercase();
        let name_key = format!("uname:{lower}");
        let skel_key = format!("uskel:{}", crate::store::name_skeleton(username));
        let taken = || ApiError::new(ErrorCode::UsernameTaken, "that username is taken").into();
        if let Admission::FirstAccount = admission {
            // Accounts that completed (an attempt that failed half-way leaves none).
            let accounts: u64 = self.con().zcard("unames").await?;
            if accounts > 0 {
                return Err(crate::store::registration_closed());
            }
        }
        // Steps, each in one slot: reserve the name and its skeleton (they expire unless the
        // account completes), take the invite, an id, the user's hash, then the name and
        // skeleton point at it. Until then the name is no user (`user_by_name`), and a failure
        // half-way frees it when the reservation passes.
        let reserve = |key: &str| {
            redis::cmd("SET")
                .arg(key)
                .arg("")
                .arg("NX")
                .arg("EX")
                .arg(RESERVE_SECS)
                .to_owned()
        };
        let got: Option<String> = reserve(&name_key).query_async(&mut self.con()).await?;
        if got.is_none() {
            return Err(taken());
        }
        let got: Option<String> = reserve(&skel_key).query_async(&mut self.con()).await?;
        if got.is_none() {
            let _: i64 = self.con().del(&name_key).await?;
            return Err(taken());
        }
        if let Admission::Invite(code) = admission {
            let claimed: i64 = CLAIM_INVITE
                .key(format!("invite:{code}"))
                .arg(now)
                .invoke_async(&mut self.con())
                .await?;
            if claimed == 2 {
                let _: i64 = self.con().srem("invites", code).await?;
            }
            if claimed == 0 {
                let _: i64 = self.con().del(&[&name_key, &skel_key]).await?;
                return Err(ApiError::new(
                    ErrorCode::InvalidInvite,
                    "the invite code is unknown, used up or expired",
                )
                .into());
            }
        }
        self.hook(Step::UserReserved)?;
        let id: u64 = self.con().incr("ids:user", 1).await?;
        let admin = id == 1;
        let () = self
            .con()
            .hset_multiple(
                keys::user(id),
                &[
                    ("name", username),
                    ("pw", password_hash),
                    ("created", &now.to_string()),
                    ("admin", if admin { "1" } else { "0" }),
                    ("off", "0"),
                ],
            )
            .await?;
        self.hook(Step::UserWritten)?;
        let () = redis::pipe()
            .set(&name_key, id)
            .ignore()
            .set(&skel_key, id)
            .ignore()
            .zadd("unames", format!("{lower}:{id}"), 0)
            .ignore()
            .query_async(&mut self.con())
            .await?;
        Ok(UserRecord {
            id: UserId(id),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            created_ts: now,
            admin,
            disabled: false,
        })
    }

    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<&str>,
    ) -> StoreResult<bool> {
        let found: i64 = SET_FIELD
            .key(keys::user(user))
            .arg("pw")
            .arg(password_hash)
            .invoke_async(&mut self.con())
            .await?;
        if found == 0 {
            return Ok(false);
        }
        self.revoke_sessions(user, keep).await?;
        Ok(true)
    }

    /// Every session but `keep`: the sessions deleted (their tokens are dead from here on),
    /// then dropped from the index with their sockets closed. A failure between the steps
    /// leaves index entries without sessions, which listing drops; a retry finishes it.
    pub async fn revoke_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64> {
        let index: HashMap<String, String> = self.con().hgetall(keys::user_sessions(user)).await?;
        let doomed: Vec<(&String, &String)> = index
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != keep)
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let tokens: Vec<String> = doomed.iter().map(|(_, h)| format!("sess:{h}")).collect();
        let mut revoked = 0;
        for token in &tokens {
            let n: u64 = self.con().del(token).await?;
            revoked += n;
        }
        let ids: Vec<&str> = doomed.iter().map(|(id, _)| id.as_str()).collect();
        self.unlist_sessions(user, &ids).await?;
        Ok(revoked)
    }

    pub async fn set_user_flag(&self, user: UserId, flag: UserFlag, on: bool) -> StoreResult<bool> {
        let field = match flag {
            UserFlag::Admin => "admin",
            UserFlag::Disabled => "off",
        };
        // The flag first: a disabled account's sessions are refused from here on (see
        // `touch_session`), then they go.
        let found: i64 = SET_FIELD
            .key(keys::user(user))
            .arg(field)
            .arg(if on { "1" } else { "0" })
            .invoke_async(&mut self.con())
            .await?;
        if found == 0 {
            return Ok(false);
        }
        if matches!(flag, UserFlag::Disabled) && on {
            self.revoke_sessions(user, None).await?;
        }
        Ok(true)
    }

    pub async fn create_invite(&self, invite: &InviteRecord) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        add_invite(&mut pipe, invite);
        let () = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }

    pub async fn dump(&self, now: i64) -> StoreResult<DataSet> {
        let mut con = self.con();
        let (epoch, last_user, last_room): (Option<String>, Option<u64>, Option<u64>) =
            redis::pipe()
                .get("store:epoch")
                .get("ids:user")
                .get("ids:room")
                .query_async(&mut con)
                .await?;
        let mut data = DataSet {
            epoch: epoch.unwrap_or_default(),
            last_user: last_user.unwrap_or(0),
            last_room: last_room.unwrap_or(0),
            ..DataSet::default()
        };
        let user_ids: Vec<u64> = (1..=data.last_user).collect();
        for ids in user_ids.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.hgetall(keys::user(id))
                    .hgetall(keys::user_sessions(id))
                    .hgetall(keys::user_read(id));
            }
            let all: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
            let mut tokens = Vec::new();
            for (id, three) in ids.iter().zip(all.chunks(3)) {
                if three[0].is_empty() {
                    continue;
                }
                data.users.push(user_from_fields(*id, &three[0])?);
                tokens.extend(three[1].values().cloned());
                for (room, seq) in &three[2] {
                    let room: u64 = room.parse().map_err(|_| corrupt("read marker room"))?;
                    let seq: u64 = seq.parse().map_err(|_| corrupt("read marker"))?;
                    if seq > 0 {
                        data.reads.push((UserId(*id), RoomId(room), seq));
                    }
                }
            }
            if tokens.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for hash in &tokens {
                pipe.hgetall(format!("sess:{hash}"))
                    .cmd("PEXPIRETIME")
                    .arg(format!("sess:{hash}"));
            }
            let replies: Vec<redis::Value> = pipe.query_async(&mut con).await?;
            for (hash, pair) in tokens.iter().zip(replies.chunks(2)) {
                let fields: HashMap<String, String> = redis::from_redis_value(pair[0].clone())?;
                let expires: i64 = redis::from_redis_value(pair[1].clone())?;
                if fields.is_empty() || expires <= now {
                    continue;
                }
                data.sessions
                    .push((super::session_from_fields(hash, &fields)?, expires));
            }
        }
        let room_ids: Vec<u64> = (1..=data.last_room).collect();
        for ids in room_ids.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.hgetall(keys::room(id)).hgetall(keys::members(id));
            }
            let replies: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
            for (id, pair) in ids.iter().zip(replies.chunks(2)) {
                let f = &pair[0];
                if f.is_empty() {
                    continue;
                }
                let direct = f.get("kind").map(String::as_str) == Some("direct");
                data.rooms.push(RoomRecord {
                    id: RoomId(*id),
                    name: f.get("name").cloned().unwrap_or_default(),
                    kind: if direct {
                        RoomKind::Direct
                    } else {
                        RoomKind::Group
                    },
                    visibility: if f.get("vis").map(String::as_str) == Some("public") {
                        Visibility::Public
                    } else {
                        Visibility::Private
                    },
                    owner: num(f, "owner").map(UserId),
                    topic: f.get("topic").cloned().unwrap_or_default(),
                    last_seq: num(f, "seq").unwrap_or(0),
                    last_ts: num(f, "ts").unwrap_or(0),
                    pair: num(f, "a")
                        .zip(num(f, "b"))
                        .map(|(a, b)| (UserId(a), UserId(b))),
                });
                for (user, role) in &pair[1] {
                    let user: u64 = user.parse().map_err(|_| corrupt("member id"))?;
                    data.members
                        .push((RoomId(*id), UserId(user), parse_role(role)));
                }
            }
        }
        for room in &data.rooms {
            // A page at a time, by seq, so a long history is never one huge reply.
            let mut after = 0u64;
            loop {
                let page: Vec<(String, u64)> = redis::cmd("ZRANGE")
                    .arg(keys::log(room.id))
                    .arg(format!("({after}"))
                    .arg("+inf")
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(BATCH)
                    .arg("WITHSCORES")
                    .query_async(&mut con)
                    .await?;
                let Some((_, last)) = page.last() else { break };
                after = *last;
                let full = page.len() == BATCH;
                data.events.extend(page.into_iter().map(|(frame, _)| frame));
                if !full {
                    break;
                }
            }
        }
        let codes: Vec<String> = con.smembers("invites").await?;
        let all: Vec<HashMap<String, String>> = if codes.is_empty() {
            Vec::new()
        } else {
            let mut pipe = redis::pipe();
            for code in &codes {
                pipe.hgetall(format!("invite:{code}"));
            }
            pipe.query_async(&mut con).await?
        };
        for (code, f) in codes.into_iter().zip(all) {
            let invite = InviteRecord {
                code_hash: code,
                uses_left: num(&f, "left").unwrap_or(0),
                expires_ts: num(&f, "expires").unwrap_or(0),
                created_by: num(&f, "by").map(UserId),
                created_ts: num(&f, "created").unwrap_or(0),
            };
            if invite.uses_left > 0 && invite.expires_ts > now {
                data.invites.push(invite);
            }
        }
        // Every master's in a cluster.
        let keys = con.keys_matching("dd:*").await?;
        for chunk in keys.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.get(key).cmd("PEXPIRETIME").arg(key);
            }
            let replies: Vec<redis::Value> = pipe.query_async(&mut con).await?;
            for (key, pair) in chunk.iter().zip(replies.chunks(2)) {
                let value: Option<String> = redis::from_redis_value(pair[0].clone())?;
                let expires: i64 = redis::from_redis_value(pair[1].clone())?;
                let (Some(value), true) = (value, expires > now) else {
                    continue;
                };
                let (room, sender, client_id) =
                    keys::parse_dedupe(key).ok_or_else(|| corrupt("dedupe key"))?;
                let (seq, ts) = value
                    .split_once(' ')
                    .ok_or_else(|| corrupt("dedupe value"))?;
                data.dedupe.push(DedupeRecord {
                    room: RoomId(room),
                    sender: UserId(sender),
                    client_id: client_id.to_owned(),
                    seq: seq.parse().map_err(|_| corrupt("dedupe seq"))?,
                    ts: ts.parse().map_err(|_| corrupt("dedupe ts"))?,
                    expires_ts: expires,
                });
            }
        }
        for ids in user_ids.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.smembers(keys::user_blocks(id))
                    .hget(keys::user(id), "dname")
                    .hgetall(keys::user_notify(id));
            }
            let all: Vec<redis::Value> = pipe.query_async(&mut con).await?;
            for (id, three) in ids.iter().zip(all.chunks(3)) {
                let user = UserId(*id);
                let blocked: Vec<u64> = redis::from_redis_value(three[0].clone())?;
                data.blocks
                    .extend(blocked.into_iter().map(|b| (user, UserId(b))));
                let name: Option<String> = redis::from_redis_value(three[1].clone())?;
                data.display_names.extend(name.map(|n| (user, n)));
                let levels: HashMap<u64, String> = redis::from_redis_value(three[2].clone())?;
                for (room, level) in levels {
                    let level = super::settings::parse_level(Some(&level));
                    if level != NotifyLevel::All {
                        data.notify.push((user, RoomId(room), level));
                    }
                }
            }
        }
        for ids in room_ids.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.smembers(keys::bans(id));
            }
            let all: Vec<Vec<u64>> = pipe.query_async(&mut con).await?;
            for (id, banned) in ids.iter().zip(all) {
                data.bans
                    .extend(banned.into_iter().map(|u| (RoomId(*id), UserId(u))));
            }
        }
        data.uploads = self.export_uploads().await?;
        data.sort();
        Ok(data)
    }

    /// Not atomic (a data set can be larger than one script should take): run it with no
    /// server on this Redis. It refuses to start on a store that holds accounts or rooms.
    pub async fn load(&self, data: &DataSet) -> StoreResult<()> {
        let mut con = self.con();
        let (users, rooms): (bool, bool) = redis::pipe()
            .exists("ids:user")
            .exists("ids:room")
            .query_async(&mut con)
            .await?;
        if users || rooms {
            return Err(store_not_empty());
        }
        let mut pipe = redis::pipe();
        pipe.set("store:epoch", &data.epoch).ignore();
        if data.last_user > 0 {
            pipe.set("ids:user", data.last_user).ignore();
        }
        if data.last_room > 0 {
            pipe.set("ids:room", data.last_room).ignore();
        }
        let () = pipe.query_async(&mut con).await?;
        for chunk in data.users.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for u in chunk {
                let lower = u.username.to_lowercase();
                pipe.hset_multiple(
                    keys::user(u.id),
                    &[
                        ("name", u.username.clone()),
                        ("pw", u.password_hash.clone()),
                        ("created", u.created_ts.to_string()),
                        ("admin", flag(u.admin).to_owned()),
                        ("off", flag(u.disabled).to_owned()),
                    ],
                )
                .ignore()
                .set(format!("uname:{lower}"), u.id.0)
                .ignore()
                .zadd("unames", format!("{lower}:{}", u.id), 0)
                .ignore();
                // Confusable names of the data set collide from now on (the first keeps it).
                pipe.cmd("SET")
                    .arg(format!(
                        "uskel:{}",
                        crate::store::name_skeleton(&u.username)
                    ))
                    .arg(u.id.0)
                    .arg("NX")
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        let () = con.set(SKELETONS_INDEXED, 1).await?;
        for chunk in data.sessions.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (s, expires) in chunk {
                add_session(&mut pipe, s, *expires);
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.rooms.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let key = keys::room(r.id);
                let direct = r.kind == RoomKind::Direct;
                let mut fields = vec![
                    ("name", r.name.clone()),
                    ("kind", if direct { "direct" } else { "group" }.to_owned()),
                    (
                        "vis",
                        if r.visibility == Visibility::Public {
                            "public"
                        } else {
                            "private"
                        }
                        .to_owned(),
                    ),
                    ("seq", r.last_seq.to_string()),
                    ("ts", r.last_ts.to_string()),
                ];
                if let Some(owner) = r.owner {
                    fields.push(("owner", owner.to_string()));
                }
                if !r.topic.is_empty() {
                    fields.push(("topic", r.topic.clone()));
                }
                if let Some((a, b)) = r.pair {
                    fields.push(("a", a.to_string()));
                    fields.push(("b", b.to_string()));
                    pipe.set(format!("dm:{a}:{b}"), r.id.0).ignore();
                }
                pipe.hset_multiple(&key, &fields).ignore();
                if r.visibility == Visibility::Public && !direct {
                    pipe.sadd("rooms:public", r.id.0).ignore();
                }
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.members.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (room, user, role) in chunk {
                pipe.hset(keys::members(room), user.0, role_name(*role))
                    .ignore()
                    .sadd(keys::user_rooms(user), room.0)
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        // The edit index (`room:{id}:edits`: message seq → its edit events) is derived from the
        // events, so a message deleted after the move still has its edits' text erased.
        let mut edits: HashMap<(RoomId, u64), String> = HashMap::new();
        for chunk in data.events.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for frame in chunk {
                let event: RoomEvent = serde_json::from_str(frame)?;
                pipe.zadd(keys::log(event.room), frame, event.seq).ignore();
                match event.event {
                    EventBody::Edit { target, .. } => {
                        let seqs = edits.entry((event.room, target)).or_default();
                        if !seqs.is_empty() {
                            seqs.push(' ');
                        }
                        seqs.push_str(&event.seq.to_string());
                    }
                    // As the live store does: a deleted message's entry is gone.
                    EventBody::Delete { target, .. } => {
                        edits.remove(&(event.room, target));
                    }
                    _ => {}
                }
            }
            let () = pipe.query_async(&mut con).await?;
        }
        let edits: Vec<_> = edits.into_iter().collect();
        for chunk in edits.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for ((room, target), seqs) in chunk {
                pipe.hset(keys::edits(room), target, seqs).ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.reads.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (user, room, seq) in chunk {
                pipe.hset(keys::user_read(user), room.0, seq).ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.invites.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for invite in chunk {
                add_invite(&mut pipe, invite);
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.bans.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (room, user) in chunk {
                pipe.sadd(keys::bans(room), user.0).ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        // A DM member the other blocked has the role `blocked` there (as SET_BLOCK leaves it):
        // without it the blocked user could write in the existing DM after the move.
        let dms: HashMap<(UserId, UserId), RoomId> = data
            .rooms
            .iter()
            .filter_map(|r| r.pair.map(|pair| (pair, r.id)))
            .collect();
        for chunk in data.blocks.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (user, blocked) in chunk {
                pipe.sadd(keys::user_blocks(user), blocked.0).ignore();
                let pair = ((*user).min(*blocked), (*user).max(*blocked));
                if let Some(dm) = dms.get(&pair) {
                    pipe.hset(keys::members(dm), blocked.0, "blocked").ignore();
                }
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.display_names.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (user, name) in chunk {
                pipe.hset(keys::user(user), "dname", name).ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        for chunk in data.notify.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (user, room, level) in chunk {
                pipe.hset(
                    keys::user_notify(user),
                    room.0,
                    super::settings::level_name(*level),
                )
                .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        self.import_uploads(&data.uploads).await?;
        for chunk in data.dedupe.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for d in chunk {
                pipe.cmd("SET")
                    .arg(keys::dedupe(d.room, d.sender.0, &d.client_id))
                    .arg(format!("{} {}", d.seq, d.ts))
                    .arg("PXAT")
                    .arg(d.expires_ts)
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        Ok(())
    }
}

fn flag(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

fn add_session(pipe: &mut redis::Pipeline, s: &SessionRecord, expires: i64) {
    let key = format!("sess:{}", s.token_hash);
    pipe.hset_multiple(
        &key,
        &[
            ("id", s.id.clone()),
            ("user", s.user.to_string()),
            ("device", s.device.clone().unwrap_or_default()),
            ("created", s.created_ts.to_string()),
            ("used", s.last_used_ts.to_string()),
        ],
    )
    .ignore()
    .cmd("PEXPIREAT")
    .arg(&key)
    .arg(expires)
    .ignore()
    .hset(keys::user_sessions(s.user), &s.id, &s.token_hash)
    .ignore();
}

fn add_invite(pipe: &mut redis::Pipeline, invite: &InviteRecord) {
    let key = format!("invite:{}", invite.code_hash);
    let mut fields = vec![
        ("left", invite.uses_left.to_string()),
        ("expires", invite.expires_ts.to_string()),
        ("created", invite.created_ts.to_string()),
    ];
    if let Some(by) = invite.created_by {
        fields.push(("by", by.to_string()));
    }
    pipe.hset_multiple(&key, &fields)
        .ignore()
        .cmd("PEXPIREAT")
        .arg(&key)
        .arg(invite.expires_ts)
        .ignore()
        .sadd("invites", &invite.code_hash)
        .ignore();
}
