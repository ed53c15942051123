//! REST routes for moderation and abuse control: room bans and user blocks. Handlers only
//! translate HTTP to calls into [`crate::moderation`].

use super::{Json, Path};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::moderation;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::Router;
use protocol::rest::UserRef;
use protocol::{ErrorBody, RoomId, UserId};

#[utoipa::path(get, path = "/api/v1/rooms/{room}/bans", tag = "moderation", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 200, body = Vec<UserRef>), (status = "4XX", body = ErrorBody)))]
pub(super) async fn bans(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<Json<Vec<UserRef>>> {
    Ok(Json(
        moderation::bans(&state, caller.user, RoomId(room)).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/bans/{user}", tag = "moderation", security(("bearer" = [])),
    params(("room" = u64, Path), ("user" = u64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn ban(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, user)): Path<(u64, u64)>,
) -> ApiResult<StatusCode> {
    moderation::ban(&state, caller.user, RoomId(room), UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/bans/{user}", tag = "moderation", security(("bearer" = [])),
    params(("room" = u64, Path), ("user" = u64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn unban(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, user)): Path<(u64, u64)>,
) -> ApiResult<StatusCode> {
    moderation::unban(&state, caller.user, RoomId(room), UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/blocks", tag = "moderation", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserRef>), (status = "4XX", body = ErrorBody)))]
pub(super) async fn blocks(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserRef>>> {
    Ok(Json(moderation::blocks(&state, caller.user).await?))
}

#[utoipa::path(put, path = "/api/v1/blocks/{user}", tag = "moderation", security(("bearer" = [])),
    params(("user" = u64, Path)), responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn block(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<u64>,
) -> ApiResult<StatusCode> {
    moderation::block(&state, caller.user, UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/blocks/{user}", tag = "moderation", security(("bearer" = [])),
    params(("user" = u64, Path)), responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<u64>,
) -> ApiResult<StatusCode> {
    moderation::unblock(&state, caller.user, UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The moderation routes, merged into [`super::router`].
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/bans", get(bans))
        .route("/api/v1/rooms/{room}/bans/{user}", put(ban).delete(unban))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/blocks/{user}", put(block).delete(unblock))
}
