//! Moderation: who may act on others in a room (delete their messages, ban them), bans and
//! blocks, and the caps that keep one account from flooding the server with rooms, DMs and
//! invites. The checks live here; the store keeps the state (ban and block sets) and refuses
//! what must be refused atomically (a banned user's join).

use crate::auth::now_ms;
use crate::chat;
use crate::error::{ApiError, ApiResult};
use crate::store::{MemberChange, RoomMeta};
use crate::AppState;
use protocol::event::{EventBody, Role};
use protocol::rest::{RoomKind, UserRef};
use protocol::{ErrorCode, RoomId, UserId};

/// Whether `user` moderates `room`: its owner, or a server admin ([`is_admin`]).
pub async fn moderates(state: &AppState, room: RoomId, user: UserId) -> ApiResult<bool> {
    if state.store.role(room, user).await? == Some(Role::Owner) {
        return Ok(true);
    }
    is_admin(state, user).await
}

/// Server-wide admins (not disabled) moderate every room they are in.
pub async fn is_admin(state: &AppState, user: UserId) -> ApiResult<bool> {
    Ok(matches!(state.store.user(user).await?, Some(u) if u.admin && !u.disabled))
}

fn limit_reached(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::LimitReached, message)
}

/// `user` may belong to one more room (`max_rooms_per_user`).
pub async fn check_room_cap(state: &AppState, user: UserId) -> ApiResult<()> {
    if state.store.room_count(user).await? >= state.config.max_rooms_per_user {
        return Err(limit_reached(
            "that user is in as many rooms as this server allows",
        ));
    }
    Ok(())
}

/// `user` may be added to `room`: the room has space and the user may be in one more room.
pub async fn check_caps(state: &AppState, room: &RoomMeta, user: UserId) -> ApiResult<()> {
    if room.member_count >= state.config.max_members_per_room {
        return Err(limit_reached(
            "this room has as many members as this server allows",
        ));
    }
    check_room_cap(state, user).await
}

/// Refuses with `blocked` when `by` blocked `whom` (a direct room or invite from `whom`).
pub async fn check_not_blocked(state: &AppState, by: UserId, whom: UserId) -> ApiResult<()> {
    if state.store.blocked(by, whom).await? {
        return Err(crate::store::blocked_error());
    }
    Ok(())
}

/// A group room that `by` moderates, or the error to give.
async fn moderated_room(state: &AppState, by: UserId, room: RoomId) -> ApiResult<RoomMeta> {
    chat::require_member(state, room, by).await?;
    let meta = state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::not_a_member)?;
    if meta.kind == RoomKind::Direct {
        return Err(ApiError::new(
            ErrorCode::DirectRoom,
            "direct rooms have no bans; block the user instead",
        ));
    }
    if !moderates(state, room, by).await? {
        return Err(ApiError::new(
            ErrorCode::NotOwner,
            "only the room's owner can ban or unban",
        ));
    }
    Ok(meta)
}

/// Bans `user` from `room`: they are removed (a `member_left` event with `by`) and cannot
/// rejoin or be invited until unbanned. Banning someone who is not a member is allowed.
pub async fn ban(state: &AppState, by: UserId, room: RoomId, user: UserId) -> ApiResult<()> {
    moderated_room(state, by, room).await?;
    if user == by {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "you cannot ban yourself",
        ));
    }
    if state.store.users(&[user]).await?.is_empty() {
        return Err(ApiError::new(ErrorCode::UserNotFound, "no such user"));
    }
    if state.store.role(room, user).await? == Some(Role::Owner) {
        return Err(ApiError::new(
            ErrorCode::NotOwner,
            "the room's owner cannot be banned",
        ));
    }
    // Ban first: a join racing with this ban is refused by the store, or removed below.
    state.store.set_ban(room, user, true).await?;
    let event = serde_json::to_string(&EventBody::MemberLeft {
        user,
        by: Some(by),
        banned: true,
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

/// Lifts a ban; the user may join or be invited again.
pub async fn unban(state: &AppState, by: UserId, room: RoomId, user: UserId) -> ApiResult<()> {
    moderated_room(state, by, room).await?;
    existing_user(state, user).await?;
    state.store.set_ban(room, user, false).await?;
    Ok(())
}

/// The users banned from a room (moderators only).
pub async fn bans(state: &AppState, by: UserId, room: RoomId) -> ApiResult<Vec<UserRef>> {
    moderated_room(state, by, room).await?;
    let ids = state.store.bans(room).await?;
    refs(state, &ids).await
}

async fn refs(state: &AppState, ids: &[UserId]) -> ApiResult<Vec<UserRef>> {
    Ok(state
        .store
        .users(ids)
        .await?
        .into_iter()
        .map(|(id, username)| UserRef { id, username })
        .collect())
}

/// `user` blocks `other`: `other` can no longer open a direct room with `user`, send in the one
/// they have, or invite them.
pub async fn block(state: &AppState, user: UserId, other: UserId) -> ApiResult<()> {
    if user == other {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "you cannot block yourself",
        ));
    }
    existing_user(state, other).await?;
    state.store.set_block(user, other, true).await?;
    Ok(())
}

pub async fn unblock(state: &AppState, user: UserId, other: UserId) -> ApiResult<()> {
    existing_user(state, other).await?;
    state.store.set_block(user, other, false).await?;
    Ok(())
}

/// `user_not_found` for an id no account has (block, unblock, unban alike).
async fn existing_user(state: &AppState, user: UserId) -> ApiResult<()> {
    if state.store.users(&[user]).await?.is_empty() {
        return Err(ApiError::new(ErrorCode::UserNotFound, "no such user"));
    }
    Ok(())
}

/// The users `user` blocked.
pub async fn blocks(state: &AppState, user: UserId) -> ApiResult<Vec<UserRef>> {
    let ids = state.store.blocks(user).await?;
    refs(state, &ids).await
}
