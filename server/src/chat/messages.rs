//! Messages: send (with mentions), edit and delete, reactions, history, read markers and typing.

use super::rooms::{require_member, username_of};
use crate::auth::now_ms;
use crate::error::{ApiError, ApiResult, StoreError};
use crate::store::{self, Change, NewMessage, Range, Retention};
use crate::AppState;
use protocol::event::{EventBody, Role, SentMessage};
use protocol::rest::{HistoryPage, SendAck};
use protocol::{validate, ErrorCode, RoomEvent, RoomId, UserId};

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
