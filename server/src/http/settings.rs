//! REST routes of room settings and profiles (issue 13). Handlers only translate HTTP to calls
//! into [`crate::settings`].

use super::accounts::Object;
use super::{Json, Path};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::settings;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::Router;
use protocol::rest::{Room, SetNotify, UpdateProfile, UpdateRoom, User};
use protocol::{ErrorBody, RoomId};

#[utoipa::path(patch, path = "/api/v1/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), request_body = UpdateRoom,
    responses((status = 200, body = Room), (status = "4XX", body = ErrorBody)))]
pub(super) async fn update_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Object(req): Object<UpdateRoom>,
) -> ApiResult<Json<Room>> {
    Ok(Json(
        settings::update_room(&state, caller.user, RoomId(room), &req).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn delete_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<StatusCode> {
    settings::delete_room(&state, caller.user, RoomId(room)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/notify", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), request_body = SetNotify,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(super) async fn set_notify(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Object(req): Object<SetNotify>,
) -> ApiResult<StatusCode> {
    settings::set_notify(&state, caller.user, RoomId(room), req.level).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    request_body = UpdateProfile,
    responses((status = 200, body = User), (status = "4XX", body = ErrorBody)))]
pub(super) async fn update_profile(
    State(state): State<AppState>,
    caller: Caller,
    Object(req): Object<UpdateProfile>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        settings::update_profile(&state, caller.user, &req).await?,
    ))
}

/// The routes on paths of their own; `PATCH`/`DELETE /api/v1/rooms/{room}` and
/// `PATCH /api/v1/me` share their paths with `GET` routes in `http.rs`.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms/{room}/notify", put(set_notify))
}
