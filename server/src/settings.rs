//! Room settings and profiles (issue 13): the owner renames a room, sets its topic or deletes
//! it; each member picks a notification level per room; each user sets a display name. Rules
//! and permission checks here, shared by REST (and any future socket frame); the stores check
//! ownership again in the same atomic step as the change.

use crate::auth::now_ms;
use crate::chat::{self, require_member};
use crate::error::{ApiError, ApiResult, StoreError};
use crate::store::{self, bus, RoomUpdate};
use crate::AppState;
use protocol::event::{EventBody, Role};
use protocol::rest::{NotifyLevel, Room, RoomKind, UpdateProfile, UpdateRoom, User};
use protocol::{validate, RoomId, ServerFrame, UserId};

/// The caller owns `room`, a group room: `not_a_member`, `direct_room` or `not_owner` if not.
async fn require_owner(state: &AppState, room: RoomId, user: UserId) -> ApiResult<store::RoomMeta> {
    let role = require_member(state, room, user).await?;
    let meta = state
        .store
        .room(room)
        .await?
        .ok_or_else(ApiError::not_a_member)?;
    if meta.kind == RoomKind::Direct {
        return Err(store::direct_room_error());
    }
    if role != Role::Owner {
        return Err(store::not_owner_error());
    }
    Ok(meta)
}

fn event_json(event: &EventBody) -> ApiResult<String> {
    serde_json::to_string(event).map_err(|e| ApiError::from(StoreError::from(e)))
}

/// Renames the room and/or changes its topic (owner only). Appends one `room_updated` event
/// with what actually changed (none when nothing did); returns the room as the caller sees it.
pub async fn update_room(
    state: &AppState,
    user: UserId,
    room: RoomId,
    update: &UpdateRoom,
) -> ApiResult<Room> {
    if let Some(name) = &update.name {
        validate::room_name(name)?;
    }
    if let Some(topic) = &update.topic {
        validate::topic(topic)?;
    }
    let meta = require_owner(state, room, user).await?;
    state.limits.message(user)?;
    let name = update.name.as_deref().filter(|n| *n != meta.name);
    let topic = update.topic.as_deref().filter(|t| *t != meta.topic);
    if name.is_some() || topic.is_some() {
        let event = event_json(&EventBody::RoomUpdated {
            by: user,
            name: name.map(str::to_owned),
            topic: topic.map(str::to_owned),
        })?;
        let change = RoomUpdate {
            room,
            by: user,
            name,
            topic,
            event_json: &event,
        };
        state.store.update_room(change, now_ms()).await?;
    }
    chat::room_view(state, user, room).await
}

/// Deletes a group room (owner only): members get `room_deleted`, the server forgets its
/// history, members, bans, read markers and notification levels.
pub async fn delete_room(state: &AppState, user: UserId, room: RoomId) -> ApiResult<()> {
    require_owner(state, room, user).await?;
    let event = event_json(&EventBody::RoomDeleted { by: user })?;
    state
        .store
        .delete_room(room, user, &event, now_ms())
        .await?;
    tracing::info!(%room, "room deleted by its owner");
    // Its attachments' files go with it (see `attachments::collect`).
    state.attachments.wake();
    Ok(())
}

/// Sets the caller's notification level for a room they are a member of; every device of the
/// caller gets a `notify_level` frame.
pub async fn set_notify(
    state: &AppState,
    user: UserId,
    room: RoomId,
    level: NotifyLevel,
) -> ApiResult<()> {
    let frame = bus::notify_frame(room, level);
    Ok(state.store.set_notify(user, room, level, &frame).await?)
}

/// Changes the caller's profile. A new display name reaches everyone sharing a room with the
/// caller, and the caller's own devices, as a `user_updated` frame.
pub async fn update_profile(
    state: &AppState,
    user: UserId,
    update: &UpdateProfile,
) -> ApiResult<User> {
    if let Some(name) = &update.display_name {
        if !name.is_empty() {
            validate::display_name(name)?;
        }
        state.limits.message(user)?;
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        if !state.store.set_display_name(user, name).await? {
            return Err(ApiError::new(
                protocol::ErrorCode::Unauthorized,
                "account gone",
            ));
        }
        let frame = ServerFrame::UserUpdated {
            user,
            display_name: name.map(str::to_owned),
        };
        let frame =
            serde_json::to_string(&frame).map_err(|e| ApiError::from(StoreError::from(e)))?;
        let rooms = state.store.user_rooms(user).await?;
        state
            .store
            .publish(bus::presence_msg(user, &rooms, &frame))
            .await?;
        state.store.publish(bus::user_msg(user, &frame)).await?;
    }
    chat::me(state, user).await
}
