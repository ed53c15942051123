//! REST routes for account security (password change, sign out everywhere) and for admins
//! (`/api/v1/admin/...`). The rules are in [`crate::accounts`]; the CLI uses the same ones.

use super::{check_login_rate, Json, Path, Query};
use crate::accounts;
use crate::auth::Caller;
use crate::client_addr::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::store::UserFlag;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use axum::Router;
use protocol::rest::{
    AdminUser, AdminUsersQuery, ChangePassword, CreateUser, InviteCode, NewInviteCode,
    ResetPassword, UpdateUser,
};
use protocol::{ErrorBody, UserId};

/// A JSON body that must be an object (serde alone would also take `[...]` for a struct).
pub struct Object<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for Object<T> {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::new(
                protocol::ErrorCode::BadRequest,
                "the body must be a JSON object",
            ));
        }
        serde_json::from_value(value)
            .map(Object)
            .map_err(|e| ApiError::new(protocol::ErrorCode::BadRequest, e.to_string()))
    }
}

/// An authenticated caller with the admin role. Checked before the body is read, so a
/// non-admin is refused with `not_admin` whatever they send.
pub struct Admin(pub UserId);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        accounts::require_admin(state, caller.user).await?;
        Ok(Admin(caller.user))
    }
}

#[utoipa::path(post, path = "/api/v1/password", tag = "accounts", security(("bearer" = [])),
    request_body = ChangePassword,
    responses((status = 204, description = "changed; every other session revoked"), (status = "4XX", body = ErrorBody)))]
pub(super) async fn change_password(
    State(state): State<AppState>,
    client: ClientAddr,
    caller: Caller,
    Object(req): Object<ChangePassword>,
) -> ApiResult<StatusCode> {
    // Checking the current password costs a hash and is a guess: limited like login.
    check_login_rate(&state, client)?;
    accounts::change_password(&state, &caller.session, req.current, req.new).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/logout/all", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "every session revoked, this one included"), (status = "4XX", body = ErrorBody)))]
pub(super) async fn logout_everywhere(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    accounts::sign_out_everywhere(&state, caller.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(AdminUsersQuery),
    responses((status = 200, body = Vec<AdminUser>), (status = "4XX", body = ErrorBody)))]
pub(super) async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<AdminUsersQuery>,
) -> ApiResult<Json<Vec<AdminUser>>> {
    Ok(Json(
        accounts::list_users(&state.store, q.after, q.limit).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    request_body = CreateUser,
    responses((status = 201, body = AdminUser), (status = "4XX", body = ErrorBody)))]
pub(super) async fn create_user(
    State(state): State<AppState>,
    _admin: Admin,
    Object(req): Object<CreateUser>,
) -> ApiResult<(StatusCode, Json<AdminUser>)> {
    let user = accounts::create_user(
        &state.store,
        &state.hasher,
        &req.username,
        req.password,
        req.admin,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(patch, path = "/api/v1/admin/users/{user}", tag = "admin", security(("bearer" = [])),
    params(("user" = u64, Path)), request_body = UpdateUser,
    responses((status = 200, body = AdminUser), (status = "4XX", body = ErrorBody)))]
pub(super) async fn update_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(user): Path<u64>,
    Object(req): Object<UpdateUser>,
) -> ApiResult<Json<AdminUser>> {
    let user = UserId(user);
    let mut view = None;
    if let Some(on) = req.admin {
        view = Some(accounts::set_flag(&state.store, user, UserFlag::Admin, on).await?);
    }
    if let Some(on) = req.disabled {
        view = Some(accounts::set_flag(&state.store, user, UserFlag::Disabled, on).await?);
    }
    match view {
        Some(view) => Ok(Json(view)),
        None => {
            let record =
                state.store.user(user).await?.ok_or_else(|| {
                    ApiError::new(protocol::ErrorCode::UserNotFound, "no such user")
                })?;
            Ok(Json(accounts::admin_view(&record)))
        }
    }
}

#[utoipa::path(put, path = "/api/v1/admin/users/{user}/password", tag = "admin", security(("bearer" = [])),
    params(("user" = u64, Path)), request_body = ResetPassword,
    responses((status = 204, description = "set; every session of the account revoked"), (status = "4XX", body = ErrorBody)))]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    _admin: Admin,
    Path(user): Path<u64>,
    Object(req): Object<ResetPassword>,
) -> ApiResult<StatusCode> {
    accounts::reset_password(&state.store, &state.hasher, UserId(user), req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/invites", tag = "admin", security(("bearer" = [])),
    request_body = NewInviteCode,
    responses((status = 201, body = InviteCode), (status = "4XX", body = ErrorBody)))]
pub(super) async fn create_invite(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Object(req): Object<NewInviteCode>,
) -> ApiResult<(StatusCode, Json<InviteCode>)> {
    let invite =
        accounts::create_invite(&state.store, Some(admin), req.uses, req.expires_in_secs).await?;
    Ok((StatusCode::CREATED, Json(invite)))
}

#[utoipa::path(get, path = "/api/v1/admin/export", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "the whole data set as JSON lines (see README, Backups)",
        content_type = "application/x-ndjson", body = String), (status = "4XX", body = ErrorBody)))]
pub(super) async fn export(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> ApiResult<impl IntoResponse> {
    let data = state.store.dump(crate::auth::now_ms()).await?;
    tracing::info!(by = %admin, users = data.users.len(), rooms = data.rooms.len(), "data set exported");
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        crate::backup::encode(&data),
    ))
}

/// The routes of this module.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/password", post(change_password))
        .route("/api/v1/logout/all", post(logout_everywhere))
        .route("/api/v1/admin/users", get(list_users).post(create_user))
        .route("/api/v1/admin/users/{user}", patch(update_user))
        .route("/api/v1/admin/users/{user}/password", put(reset_password))
        .route("/api/v1/admin/invites", post(create_invite))
        .route("/api/v1/admin/export", get(export))
}
