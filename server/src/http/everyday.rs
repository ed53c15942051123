//! REST routes of everyday chat (issue 13): reactions. Handlers only translate HTTP to calls
//! into [`crate::chat`].

use super::Path;
use crate::auth::Caller;
use crate::chat;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::Router;
use protocol::{ErrorBody, RoomId};

#[utoipa::path(put, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("room" = u64, Path), ("seq" = u64, Path), ("emoji" = String, Path, description = "one emoji, percent-encoded")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn add_reaction(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, seq, emoji)): Path<(u64, u64, String)>,
) -> ApiResult<StatusCode> {
    state.limits.message(caller.user)?;
    chat::react(&state, caller.user, RoomId(room), seq, &emoji, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("room" = u64, Path), ("seq" = u64, Path), ("emoji" = String, Path, description = "one emoji, percent-encoded")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn remove_reaction(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, seq, emoji)): Path<(u64, u64, String)>,
) -> ApiResult<StatusCode> {
    state.limits.message(caller.user)?;
    chat::react(&state, caller.user, RoomId(room), seq, &emoji, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
        put(add_reaction).delete(remove_reaction),
    )
}
