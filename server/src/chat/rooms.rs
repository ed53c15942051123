//! Rooms and membership: the room list and directory, create, join, leave, invite, remove,
//! members and direct rooms.

use super::accounts::public_users;
use crate::auth::now_ms;
use crate::error::{ApiError, ApiResult, StoreError};
use crate::store::{self, MemberChange, RoomMeta};
use crate::AppState;
use protocol::event::{EventBody, Role};
use protocol::rest::{Member, NotifyLevel, Room, RoomKind, Visibility};
use protocol::{validate, ErrorCode, RoomEvent, RoomId, UserId};

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

pub(super) async fn username_of(state: &AppState, user: UserId) -> ApiResult<String> {
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
