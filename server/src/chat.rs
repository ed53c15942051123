//! Chat operations, shared by the REST handlers and the socket: permission checks, validation,
//! and the store calls that follow. Neither transport checks rules of its own.

use crate::auth::{self, now_ms};
use crate::error::{ApiError, ApiResult, StoreError};
use crate::store::{
    self, Change, MemberChange, NewMessage, Range, Retention, RoomMeta, SessionRecord, UserRecord,
};
use crate::AppState;
use protocol::event::{EventBody, Role, SentMessage};
use protocol::rest::{
    AuthResponse, Credentials, HistoryPage, Member, NotifyLevel, Room, RoomKind, SendAck,
    SessionInfo, User, UserPublic, Visibility,
};
use protocol::{validate, ErrorCode, RoomEvent, RoomId, UserId};

fn user_view(u: &UserRecord) -> User {
    User {
        id: u.id,
        username: u.username.clone(),
        created_ts: u.created_ts,
        admin: u.admin,
        display_name: None,
    }
}

fn check_device(device: &Option<String>) -> ApiResult<()> {
    match device {
        Some(d) => Ok(validate::device_name(d)?),
        None => Ok(()),
    }
}

async fn new_session(
    state: &AppState,
    user: &UserRecord,
    device: Option<String>,
) -> ApiResult<AuthResponse> {
    let token = auth::new_token();
    let now = now_ms();
    let session = SessionRecord {
        id: auth::new_session_id(),
        token_hash: auth::token_hash(&token),
        user: user.id,
        device,
        created_ts: now,
        last_used_ts: now,
    };
    // A new session's expiry never reaches past the absolute lifetime.
    let ttl = state
        .config
        .session_ttl_secs
        .min(state.config.session_max_age_secs);
    state.store.create_session(&session, ttl).await?;
    Ok(AuthResponse {
        token,
        session_id: session.id,
        user: user_view(user),
    })
}

pub async fn register(state: &AppState, creds: Credentials) -> ApiResult<AuthResponse> {
    validate::username(&creds.username)?;
    validate::password(&creds.password)?;
    check_device(&creds.device)?;
    let admission = crate::accounts::admission(state.config.registration, creds.invite.as_deref())?;
    // Refused before the costly hash; the store checks again atomically.
    if matches!(admission, crate::accounts::AdmissionKey::FirstAccount(_))
        && !state.store.list_users(0, 1).await?.is_empty()
    {
        let e = store::registration_closed();
        return Err(admission.refusal(e.into()));
    }
    if state.store.user_by_name(&creds.username).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::UsernameTaken,
            "that username is taken",
        ));
    }
    let hash = state.hasher.hash(creds.password).await?;
    let user = state
        .store
        .register_user(&creds.username, &hash, now_ms(), admission.admission())
        .await
        .map_err(|e| admission.refusal(e.into()))?;
    tracing::info!(user = %user.id, "registered");
    new_session(state, &user, creds.device).await
}

pub async fn login(state: &AppState, creds: Credentials) -> ApiResult<AuthResponse> {
    check_device(&creds.device)?;
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong username or password");
    if creds.password.len() > 256 || validate::username(&creds.username).is_err() {
        return Err(invalid());
    }
    let user = state.store.user_by_name(&creds.username).await?;
    let ok = state
        .hasher
        .verify(
            creds.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    match user {
        // Said only to someone who knows the password: no probing for disabled accounts.
        Some(user) if ok && user.disabled => Err(ApiError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled; ask the server's admin",
        )),
        Some(user) if ok => new_session(state, &user, creds.device).await,
        _ => Err(invalid()),
    }
}

pub async fn sessions(state: &AppState, caller: &SessionRecord) -> ApiResult<Vec<SessionInfo>> {
    let mut list: Vec<SessionInfo> = state
        .store
        .sessions(caller.user)
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            current: s.id == caller.id,
            id: s.id,
            device: s.device,
            created_ts: s.created_ts,
            last_used_ts: s.last_used_ts,
        })
        .collect();
    list.sort_by_key(|s| s.created_ts);
    Ok(list)
}

pub async fn revoke(state: &AppState, user: UserId, session_id: &str) -> ApiResult<()> {
    if state.store.revoke_session(user, session_id).await? {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::SessionNotFound, "no such session"))
    }
}

pub async fn me(state: &AppState, user: UserId) -> ApiResult<User> {
    let names = state.store.users(&[user]).await?;
    let (_, username) = names
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "account gone"))?;
    // created_ts is not needed on hot paths; read the full record by name.
    let record = state
        .store
        .user_by_name(&username)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "account gone"))?;
    let mut view = user_view(&record);
    view.display_name = state.store.display_names(&[user]).await?.pop().flatten();
    Ok(view)
}

/// Names and presence of users, in the order given (unknown users are left out).
///
/// Presence is private to people who share a room (as on the socket): with `viewer` given,
/// users who share no room with the viewer show `online: false` and no `last_seen`. `None`
/// when the caller already knows they all share a room (a room's member list).
pub async fn public_users(
    state: &AppState,
    viewer: Option<UserId>,
    ids: &[UserId],
) -> ApiResult<Vec<UserPublic>> {
    let names = state.store.users(ids).await?;
    let found: Vec<UserId> = names.iter().map(|(id, _)| *id).collect();
    let visible = match viewer {
        Some(viewer) => crate::privacy::presence_visible(state, viewer, &found).await?,
        None => vec![true; found.len()],
    };
    let shown: Vec<UserId> = found
        .iter()
        .zip(&visible)
        .filter(|(_, v)| **v)
        .map(|(id, _)| *id)
        .collect();
    let mut presence = state.store.presence(&shown, now_ms()).await?.into_iter();
    let display_names = state.store.display_names(&found).await?;
    Ok(names
        .into_iter()
        .zip(visible)
        .zip(display_names)
        .map(|(((id, username), visible), display_name)| {
            let p = if visible { presence.next() } else { None };
            let p = p.unwrap_or(store::Presence {
                online: false,
                last_seen: None,
            });
            UserPublic {
                id,
                username,
                display_name,
                online: p.online,
                last_seen: if p.online { None } else { p.last_seen },
            }
        })
        .collect())
}

pub async fn search_users(state: &AppState, viewer: UserId, q: &str) -> ApiResult<Vec<UserPublic>> {
    let q = q.trim().to_lowercase();
    if q.is_empty() || q.len() > 32 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "q must be 1 to 32 characters",
        ));
    }
    let found = state.store.search_users(&q, 20).await?;
    let ids: Vec<UserId> = found.into_iter().map(|(id, _)| id).collect();
    public_users(state, Some(viewer), &ids).await
}

pub async fn user(state: &AppState, viewer: UserId, id: UserId) -> ApiResult<UserPublic> {
    public_users(state, Some(viewer), &[id])
        .await?
        .pop()
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "no such user"))
}

/// The caller's role in a room, or `not_a_member`.
pub async fn require_member(state: &AppState, room: RoomId, user: UserId) -> ApiResult<Role> {
    state
        .store
        .role(room, user)
        .await?
        .ok_or_else(ApiError::not_a_member)
}

/// Room views for `user`, with read markers and unread counts.
pub async fn room_views(
    state: &AppState,
    user: UserId,
    metas: Vec<RoomMeta>,
    member: bool,
) -> ApiResult<Vec<Room>> {
    let ids: Vec<RoomId> = metas.iter().map(|m| m.id).collect();
    // A fixed number of store calls whatever the number of rooms (a reconnect of a user in
    // thousands of rooms must stay cheap): roles, read markers and the events that count
    // toward unread are each read for all rooms at once.
    let (reads, roles, levels) = if member {
        let reads = state.store.read_markers(user, &ids).await?;
        let roles = state.store.roles(user, &ids).await?;
        let levels = state.store.notify_levels(user, &ids).await?;
        (reads, roles, levels)
    } else {
        let n = ids.len();
        (vec![0; n], vec![None; n], vec![NotifyLevel::All; n])
    };
    // Only events after the read marker can be unread: read at most that many per room.
    let scans: Vec<(RoomId, usize)> = metas
        .iter()
        .zip(&reads)
        .filter(|(meta, read)| member && meta.last_seq > **read)
        .map(|(meta, read)| {
            let after = (meta.last_seq - read).min(store::UNREAD_SCAN as u64) as usize;
            (meta.id, after)
        })
        .collect();
    let mut newest: std::collections::HashMap<RoomId, Vec<String>> = scans
        .iter()
        .map(|(id, _)| *id)
        .zip(state.store.newest_events(&scans).await?)
        .collect();
    // Direct rooms are named after the other member.
    let peers: Vec<UserId> = metas
        .iter()
        .filter_map(|m| m.pair.map(|(a, b)| if a == user { b } else { a }))
        .collect();
    let peer_names = state.store.users(&peers).await?;
    let peer_display: Vec<(UserId, Option<String>)> = peers
        .iter()
        .copied()
        .zip(state.store.display_names(&peers).await?)
        .collect();
    let mut views = Vec::with_capacity(metas.len());
    for (((meta, read_seq), role), notify) in metas.into_iter().zip(reads).zip(roles).zip(levels) {
        let peer = meta.pair.map(|(a, b)| if a == user { b } else { a });
        let peer_display_name = peer.and_then(|p| {
            peer_display
                .iter()
                .find(|(id, _)| *id == p)
                .and_then(|(_, n)| n.clone())
        });
        let name = match peer {
            Some(p) => peer_names
                .iter()
                .find(|(id, _)| *id == p)
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            None => meta.name.clone(),
        };
        let (unread, mentions) = match newest.remove(&meta.id) {
            Some(events) => unread_count(&events, user, read_seq)?,
            None => (0, 0),
        };
        views.push(Room {
            id: meta.id,
            name,
            kind: meta.kind,
            visibility: meta.visibility,
            member_count: meta.member_count,
            last_seq: meta.last_seq,
            role,
            read_seq,
            unread,
            mentions,
            peer,
            peer_display_name,
            topic: meta.topic,
            notify,
        });
    }
    Ok(views)
}

/// Unread messages among a room's newest `events` (ascending frames), and how many of them
/// mention `user`.
fn unread_count(events: &[String], user: UserId, read_seq: u64) -> ApiResult<(u64, u64)> {
    // Newest first: messages from others after the read marker, stopping at the user's own
    // latest message or join (having written or joined implies having read what came before).
    let mut count = 0;
    let mut mentions = 0;
    for frame in events.iter().rev() {
        let event: RoomEvent =
            serde_json::from_str(frame).map_err(|e| ApiError::from(StoreError::from(e)))?;
        if event.seq <= read_seq || event.is_own_activity(user) {
            break;
        }
        if event.mentions(user) {
            mentions += 1;
        }
        if event.is_unread_for(user) {
            count += 1;
            if count == store::UNREAD_CAP {
                break;
            }
        }
    }
    Ok((count, mentions))
}

pub async fn my_rooms(state: &AppState, user: UserId) -> ApiResult<Vec<Room>> {
    let ids = state.store.user_rooms(user).await?;
    let metas = state.store.rooms(&ids).await?;
    room_views(state, user, metas, true).await
}

/// One page of public rooms (ascending id), optionally those whose name contains `q`.
pub async fn public_rooms(
    state: &AppState,
    user: UserId,
    query: &protocol::rest::PublicRoomsQuery,
) -> ApiResult<Vec<Room>> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 100 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "limit must be between 1 and 100",
        ));
    }
    let needle = match &query.q {
        Some(q) if q.trim().is_empty() || q.chars().count() > 64 => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "q must be 1 to 64 characters",
            ))
        }
        Some(q) => Some(q.trim().to_lowercase()),
        None => None,
    };
    let after = RoomId(query.after.unwrap_or(0));
    let ids: Vec<RoomId> = state
        .store
        .public_rooms()
        .await?
        .into_iter()
        .filter(|id| *id > after)
        .collect();
    // Names are in the metadata: read it a chunk at a time until the page is full.
    let mut metas = Vec::with_capacity(limit);
    for chunk in ids.chunks(limit.max(64)) {
        for meta in state.store.rooms(chunk).await? {
            let hit = needle
                .as_deref()
                .is_none_or(|n| meta.name.to_lowercase().contains(n));
            if hit && metas.len() < limit {
                metas.push(meta);
            }
        }
        if metas.len() >= limit {
            break;
        }
    }
    let mine = state.store.user_rooms(user).await?;
    let mut views = room_views(state, user, metas, false).await?;
    for view in &mut views {
        if mine.contains(&view.id) {
            view.role = state.store.role(view.id, user).await?;
        }
    }
    Ok(views)
}

pub(crate) async fn room_view(state: &AppState, user: UserId, room: RoomId) -> ApiResult<Room> {
    let meta = state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    room_views(state, user, vec![meta], true)
        .await?
        .pop()
        .ok_or_else(ApiError::room_not_found)
}

/// A room as the caller sees it: members see everything; others only public rooms.
pub async fn get_room(state: &AppState, user: UserId, room: RoomId) -> ApiResult<Room> {
    if state.store.role(room, user).await?.is_some() {
        return room_view(state, user, room).await;
    }
    match state.store.room(room).await? {
        Some(meta) if meta.visibility == Visibility::Public && meta.kind == RoomKind::Group => {
            room_views(state, user, vec![meta], false)
                .await?
                .pop()
                .ok_or_else(ApiError::room_not_found)
        }
        _ => Err(ApiError::room_not_found()),
    }
}

pub async fn create_room(
    state: &AppState,
    user: UserId,
    name: &str,
    visibility: Visibility,
) -> ApiResult<Room> {
    validate::room_name(name)?;
    state.limits.room(user)?;
    crate::moderation::check_room_cap(state, user).await?;
    let username = username_of(state, user).await?;
    let event = store::member_joined_json(user, &username, Role::Owner, None);
    let room = state
        .store
        .create_room(user, name, visibility, &event, now_ms())
        .await?;
    room_view(state, user, room).await
}

async fn username_of(state: &AppState, user: UserId) -> ApiResult<String> {
    state
        .store
        .users(&[user])
        .await?
        .pop()
        .map(|(_, name)| name)
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "no such user"))
}

pub async fn join(state: &AppState, user: UserId, room: RoomId) -> ApiResult<Room> {
    let meta = state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    let is_member = state.store.role(room, user).await?.is_some();
    if !is_member && (meta.visibility != Visibility::Public || meta.kind != RoomKind::Group) {
        return Err(ApiError::room_not_found());
    }
    if !is_member {
        crate::moderation::check_caps(state, &meta, user).await?;
    }
    let username = username_of(state, user).await?;
    let event = store::member_joined_json(user, &username, Role::Member, None);
    let change = MemberChange {
        room,
        user,
        role: Some(Role::Member),
        event_json: &event,
    };
    state.store.change_member(change, now_ms()).await?;
    room_view(state, user, room).await
}

async fn group_room(state: &AppState, room: RoomId) -> ApiResult<RoomMeta> {
    let meta = state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::not_a_member)?;
    if meta.kind == RoomKind::Direct {
        return Err(ApiError::new(
            ErrorCode::DirectRoom,
            "direct rooms always have exactly their two members",
        ));
    }
    Ok(meta)
}

pub async fn leave(state: &AppState, user: UserId, room: RoomId) -> ApiResult<()> {
    require_member(state, room, user).await?;
    group_room(state, room).await?;
    let event = serde_json::to_string(&EventBody::MemberLeft {
        user,
        by: None,
        banned: false,
    })
    .unwrap_or_default();
    state
        .store
        .change_member(
            MemberChange {
                room,
                user,
                role: None,
                event_json: &event,
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

pub async fn invite(state: &AppState, by: UserId, room: RoomId, user: UserId) -> ApiResult<()> {
    let role = require_member(state, room, by).await?;
    let meta = group_room(state, room).await?;
    if meta.visibility == Visibility::Private && role != Role::Owner {
        return Err(ApiError::new(
            ErrorCode::NotOwner,
            "only the owner can invite to a private room",
        ));
    }
    state.limits.invite(by)?;
    let username = username_of(state, user).await?;
    crate::moderation::check_not_blocked(state, user, by).await?;
    if state.store.role(room, user).await?.is_none() {
        crate::moderation::check_caps(state, &meta, user).await?;
    }
    let event = store::member_joined_json(user, &username, Role::Member, Some(by));
    state
        .store
        .change_member(
            MemberChange {
                room,
                user,
                role: Some(Role::Member),
                event_json: &event,
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

pub async fn remove(state: &AppState, by: UserId, room: RoomId, user: UserId) -> ApiResult<()> {
    let role = require_member(state, room, by).await?;
    group_room(state, room).await?;
    if by == user {
        return leave(state, user, room).await;
    }
    if role != Role::Owner {
        return Err(ApiError::new(
            ErrorCode::NotOwner,
            "only the owner can remove members",
        ));
    }
    if state.store.role(room, user).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::UserNotFound,
            "that user is not a member",
        ));
    }
    let event = serde_json::to_string(&EventBody::MemberLeft {
        user,
        by: Some(by),
        banned: false,
    })
    .unwrap_or_default();
    state
        .store
        .change_member(
            MemberChange {
                room,
                user,
                role: None,
                event_json: &event,
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

pub async fn members(state: &AppState, user: UserId, room: RoomId) -> ApiResult<Vec<Member>> {
    require_member(state, room, user).await?;
    let members = state.store.members(room).await?;
    let ids: Vec<UserId> = members.iter().map(|(u, _)| *u).collect();
    let users = public_users(state, None, &ids).await?;
    Ok(users
        .into_iter()
        .filter_map(|u| {
            members
                .iter()
                .find(|(id, _)| *id == u.id)
                .map(|(_, role)| Member {
                    user: u,
                    role: *role,
                })
        })
        .collect())
}

pub async fn open_dm(state: &AppState, user: UserId, peer: UserId) -> ApiResult<Room> {
    if user == peer {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a direct room needs another user",
        ));
    }
    let names = state.store.users(&[user, peer]).await?;
    let name = |id: UserId| {
        names
            .iter()
            .find(|(u, _)| *u == id)
            .map(|(_, n)| n.as_str())
    };
    let (Some(mine), Some(theirs)) = (name(user), name(peer)) else {
        return Err(ApiError::new(ErrorCode::UserNotFound, "no such user"));
    };
    crate::moderation::check_not_blocked(state, peer, user).await?;
    state.limits.dm(user)?;
    // A direct room they already have adds no room; a new one adds one to each.
    if !state
        .store
        .shares_room(user, &[peer])
        .await?
        .contains(&true)
    {
        crate::moderation::check_room_cap(state, user).await?;
        crate::moderation::check_room_cap(state, peer).await?;
    }
    let room = state
        .store
        .open_dm((user, mine), (peer, theirs), now_ms())
        .await?;
    room_view(state, user, room).await
}

/// A message as a client sends it (socket `send`, `POST .../messages`).
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// The client message id (idempotency key).
    pub id: &'a str,
    pub body: &'a str,
    /// The seq of the message of the same room this one replies to.
    pub reply_to: Option<u64>,
    /// Users it mentions (only the room's members are kept).
    pub mentions: &'a [UserId],
    /// `@room`: room owners and server admins only, rate limited.
    pub mention_room: bool,
    /// Ids of the sender's uploads to attach (see [`crate::attachments`]).
    pub attachments: &'a [String],
}

/// Most users one message may mention.
pub const MAX_MENTIONS: usize = 50;

/// The members of `room` among `mentioned` (without `user` and duplicates), and whether
/// `user` may mention the whole room. One store call for the members, whatever their number.
async fn check_mentions(
    state: &AppState,
    user: UserId,
    room: RoomId,
    mentioned: &[UserId],
    mention_room: bool,
) -> ApiResult<Vec<UserId>> {
    let mut ids: Vec<UserId> = Vec::with_capacity(mentioned.len());
    for id in mentioned {
        if *id != user && !ids.contains(id) {
            ids.push(*id);
        }
    }
    if ids.len() > MAX_MENTIONS {
        return Err(ApiError::new(
            ErrorCode::InvalidMessage,
            format!("a message may mention at most {MAX_MENTIONS} users"),
        ));
    }
    if mention_room {
        // Non-members learn nothing more than from any other room operation.
        match require_member(state, room, user).await? {
            Role::Owner => {}
            Role::Member if crate::moderation::is_admin(state, user).await? => {}
            Role::Member => {
                return Err(ApiError::new(
                    ErrorCode::NotOwner,
                    "only the room's owner can mention @room",
                ))
            }
        }
        state.limits.room_mention(user)?;
    }
    if ids.is_empty() {
        return Ok(ids);
    }
    let members = state.store.members_among(room, &ids).await?;
    Ok(ids
        .into_iter()
        .zip(members)
        .filter_map(|(id, member)| member.then_some(id))
        .collect())
}

/// Sends a message as `user`. `sender_name` saves a lookup when the caller knows it (sockets do).
pub async fn send(
    state: &AppState,
    user: UserId,
    sender_name: Option<&str>,
    room: RoomId,
    draft: Draft<'_>,
) -> ApiResult<SendAck> {
    let Draft {
        id: client_id,
        body,
        reply_to,
        mentions,
        mention_room,
        attachments: upload_ids,
    } = draft;
    validate::client_id(client_id)?;
    // A message with files may have no text.
    if upload_ids.is_empty() || !body.is_empty() {
        validate::message_body(body, state.config.limits.max_message_bytes)?;
    }
    let attachments = crate::attachments::for_message(state, user, room, upload_ids).await?;
    let mentions = check_mentions(state, user, room, mentions, mention_room).await?;
    let looked_up;
    let sender_name = match sender_name {
        Some(name) => name,
        None => {
            looked_up = username_of(state, user).await?;
            &looked_up
        }
    };
    // Written once, from the borrowed text: the frame's id and body and the socket's name are
    // not copied into an owned event first.
    let event = SentMessage {
        id: client_id,
        sender: user,
        sender_name,
        body,
        reply_to,
        mentions: &mentions,
        mention_room,
        attachments: &attachments,
    };
    let event_json = event
        .to_json()
        .map_err(|e| ApiError::from(StoreError::from(e)))?;
    let retention = Retention {
        max_events: state.config.retention_events,
        max_age_ms: (state.config.retention_secs as i64).saturating_mul(1000),
    };
    let msg = NewMessage {
        room,
        sender: user,
        client_id,
        event_json: &event_json,
        reply_to,
        attachments: upload_ids,
    };
    let ack = state
        .store
        .append_message(msg, now_ms(), state.config.dedupe_ttl_secs, retention)
        .await?;
    if !ack.duplicate {
        crate::metrics::get().message(crate::metrics::MessageKind::Message);
    }
    Ok(ack)
}

/// Edits (`Some(body)`) or deletes (`None`) an own message; returns the change event's seq.
pub async fn change(
    state: &AppState,
    user: UserId,
    room: RoomId,
    target: u64,
    body: Option<&str>,
) -> ApiResult<u64> {
    if let Some(body) = body {
        validate::message_body(body, state.config.limits.max_message_bytes)?;
    }
    let event = match body {
        Some(body) => EventBody::Edit {
            target,
            sender: user,
            body: body.to_owned(),
        },
        None => EventBody::Delete {
            target,
            sender: user,
        },
    };
    let event_json =
        serde_json::to_string(&event).map_err(|e| ApiError::from(StoreError::from(e)))?;
    // Deleting someone else's message takes moderation rights; the store still requires
    // membership and lets authors change their own messages.
    let moderator = body.is_none() && crate::moderation::moderates(state, room, user).await?;
    let change = Change {
        room,
        target,
        sender: user,
        body,
        event_json: &event_json,
        moderator,
    };
    let seq = state.store.change_message(change, now_ms()).await?;
    if body.is_none() {
        // Its files (if any) are dead now: have the collector delete them soon.
        state.attachments.wake();
    }
    crate::metrics::get().message(if body.is_some() {
        crate::metrics::MessageKind::Edit
    } else {
        crate::metrics::MessageKind::Delete
    });
    Ok(seq)
}

/// Adds (`add`) or takes back `user`'s `emoji` reaction to message `target`. Idempotent:
/// nothing is appended when nothing changes.
pub async fn react(
    state: &AppState,
    user: UserId,
    room: RoomId,
    target: u64,
    emoji: &str,
    add: bool,
) -> ApiResult<()> {
    let emoji = validate::emoji(emoji)?;
    let event = if add {
        EventBody::ReactionAdded {
            target,
            user,
            emoji: emoji.to_owned(),
        }
    } else {
        EventBody::ReactionRemoved {
            target,
            user,
            emoji: emoji.to_owned(),
        }
    };
    let event_json =
        serde_json::to_string(&event).map_err(|e| ApiError::from(StoreError::from(e)))?;
    let change = store::ReactionChange {
        room,
        target,
        user,
        emoji,
        add,
        event_json: &event_json,
    };
    state.store.react(change, now_ms()).await?;
    Ok(())
}

/// A history page; events are raw frames, parsed here for the REST response.
pub async fn history(
    state: &AppState,
    user: UserId,
    room: RoomId,
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
) -> ApiResult<HistoryPage> {
    require_member(state, room, user).await?;
    let max = state.config.limits.max_history_page;
    let limit = limit.unwrap_or(50.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("limit must be between 1 and {max}"),
        ));
    }
    let range = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "give before or after, not both",
            ))
        }
        (before, None) => Range::Before(before),
        (None, Some(after)) => Range::After(after),
    };
    let page = state.store.history(room, range, limit).await?;
    let events = page
        .events
        .iter()
        .map(|f| serde_json::from_str::<RoomEvent>(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::from(StoreError::from(e)))?;
    Ok(HistoryPage {
        room,
        events,
        has_more: page.has_more,
        first_seq: page.first_seq,
        last_seq: page.last_seq,
    })
}

pub async fn set_read(state: &AppState, user: UserId, room: RoomId, seq: u64) -> ApiResult<u64> {
    require_member(state, room, user).await?;
    // A marker past the end would hide every future message's unread count.
    let last_seq = state.store.room(room).await?.map_or(0, |m| m.last_seq);
    Ok(state.store.set_read(user, room, seq.min(last_seq)).await?)
}

/// Tells the room's other members that `user` is typing.
pub async fn typing(state: &AppState, user: UserId, username: &str, room: RoomId) -> ApiResult<()> {
    // The socket's cursor may be stale (removed while the event is still on its way).
    require_member(state, room, user).await?;
    let frame = protocol::ServerFrame::Typing {
        room,
        user,
        username: username.to_owned(),
        ttl_ms: state.config.limits.typing_ttl_ms,
    };
    let frame = serde_json::to_string(&frame).unwrap_or_default();
    state
        .store
        .publish(store::bus::typing_msg(room, user, &frame))
        .await?;
    Ok(())
}
