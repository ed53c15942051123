//! The REST API (`/api/v1/...`), health checks and the OpenAPI document.
//!
//! Handlers only translate HTTP to calls into [`crate::chat`]. Extractor failures (bad JSON,
//! bad query, bad path) are answered with the same typed error body as everything else.

use crate::auth::Caller;
use crate::chat;
use crate::client_addr::{net_key, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::Router;
use protocol::rest::*;
use protocol::{ErrorBody, ErrorCode, RoomId, UserId};
use utoipa::OpenApi;

mod accounts;
mod attachments;
mod everyday;
mod moderation;
mod settings;
mod updates;

/// `axum::Json` with typed errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with typed errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with typed errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large");
        }
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

/// Per-address limit on register and login (each costs an argon2 hash); IPv6 per /64.
fn check_login_rate(state: &AppState, client: ClientAddr) -> ApiResult<()> {
    state.limits.login(net_key(client.0))
}

#[utoipa::path(post, path = "/api/v1/register", request_body = Credentials, tag = "accounts",
    responses((status = 201, body = AuthResponse), (status = "4XX", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(creds): Json<Credentials>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    check_login_rate(&state, client)?;
    Ok((
        StatusCode::CREATED,
        Json(chat::register(&state, creds).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/login", request_body = Credentials, tag = "accounts",
    responses((status = 200, body = AuthResponse), (status = "4XX", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    Json(creds): Json<Credentials>,
) -> ApiResult<Json<AuthResponse>> {
    check_login_rate(&state, client)?;
    // Per account too (docs/SECURITY.md, "Password guessing").
    let net = net_key(client.0);
    let username = creds.username.clone();
    let attempt = state
        .login_throttle
        .attempt(&username, net, std::time::Instant::now())?;
    let auth = chat::login(&state, creds).await?;
    state
        .login_throttle
        .succeeded(&username, net, attempt, std::time::Instant::now());
    Ok(Json(auth))
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    chat::revoke(&state, caller.user, &caller.session.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = User), (status = "4XX", body = ErrorBody)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<User>> {
    Ok(Json(chat::me(&state, caller.user).await?))
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>), (status = "4XX", body = ErrorBody)))]
async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    Ok(Json(chat::sessions(&state, &caller.session).await?))
}

#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    chat::revoke(&state, caller.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = Vec<UserPublic>), (status = "4XX", body = ErrorBody)))]
async fn search_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UserQuery>,
) -> ApiResult<Json<Vec<UserPublic>>> {
    Ok(Json(chat::search_users(&state, caller.user, &q.q).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users", security(("bearer" = [])),
    params(("user" = u64, Path)), responses((status = 200, body = UserPublic), (status = "4XX", body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<u64>,
) -> ApiResult<Json<UserPublic>> {
    Ok(Json(chat::user(&state, caller.user, UserId(user)).await?))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, body = Vec<Room>), (status = "4XX", body = ErrorBody)))]
async fn my_rooms(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Room>>> {
    Ok(Json(chat::my_rooms(&state, caller.user).await?))
}

#[utoipa::path(get, path = "/api/v1/rooms/public", tag = "rooms", security(("bearer" = [])), params(PublicRoomsQuery),
    responses((status = 200, body = Vec<Room>), (status = "4XX", body = ErrorBody)))]
async fn public_rooms(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PublicRoomsQuery>,
) -> ApiResult<Json<Vec<Room>>> {
    Ok(Json(chat::public_rooms(&state, caller.user, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])), request_body = CreateRoom,
    responses((status = 201, body = Room), (status = "4XX", body = ErrorBody)))]
async fn create_room(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateRoom>,
) -> ApiResult<(StatusCode, Json<Room>)> {
    let room = chat::create_room(&state, caller.user, &req.name, req.visibility).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 200, body = Room), (status = "4XX", body = ErrorBody)))]
async fn get_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<Json<Room>> {
    Ok(Json(
        chat::get_room(&state, caller.user, RoomId(room)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/join", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 200, body = Room), (status = "4XX", body = ErrorBody)))]
async fn join_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<Json<Room>> {
    Ok(Json(chat::join(&state, caller.user, RoomId(room)).await?))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/leave", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn leave_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<StatusCode> {
    chat::leave(&state, caller.user, RoomId(room)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/members", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), responses((status = 200, body = Vec<Member>), (status = "4XX", body = ErrorBody)))]
async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(
        chat::members(&state, caller.user, RoomId(room)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/members", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path)), request_body = Invite,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Json(req): Json<Invite>,
) -> ApiResult<StatusCode> {
    chat::invite(&state, caller.user, RoomId(room), req.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/members/{user}", tag = "rooms", security(("bearer" = [])),
    params(("room" = u64, Path), ("user" = u64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, user)): Path<(u64, u64)>,
) -> ApiResult<StatusCode> {
    chat::remove(&state, caller.user, RoomId(room), UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/dms", tag = "rooms", security(("bearer" = [])), request_body = OpenDm,
    responses((status = 200, body = Room), (status = "4XX", body = ErrorBody)))]
async fn open_dm(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<OpenDm>,
) -> ApiResult<Json<Room>> {
    Ok(Json(chat::open_dm(&state, caller.user, req.user).await?))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/events", tag = "messages", security(("bearer" = [])),
    params(("room" = u64, Path), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = "4XX", body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    Ok(Json(
        chat::history(
            &state,
            caller.user,
            RoomId(room),
            q.before,
            q.after,
            q.limit,
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "messages", security(("bearer" = [])),
    params(("room" = u64, Path)), request_body = SendMessage,
    responses((status = 200, body = SendAck), (status = "4XX", body = ErrorBody)))]
async fn send_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Json(req): Json<SendMessage>,
) -> ApiResult<Json<SendAck>> {
    state.limits.message(caller.user)?;
    Ok(Json(
        chat::send(
            &state,
            caller.user,
            None,
            RoomId(room),
            chat::Draft {
                id: &req.id,
                body: &req.body,
                reply_to: req.reply_to,
                mentions: &req.mentions,
                mention_room: req.mention_room,
                attachments: &req.attachments,
            },
        )
        .await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/rooms/{room}/messages/{seq}", tag = "messages", security(("bearer" = [])),
    params(("room" = u64, Path), ("seq" = u64, Path)), request_body = EditMessage,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn edit_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, seq)): Path<(u64, u64)>,
    Json(req): Json<EditMessage>,
) -> ApiResult<StatusCode> {
    state.limits.message(caller.user)?;
    chat::change(&state, caller.user, RoomId(room), seq, Some(&req.body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}", tag = "messages", security(("bearer" = [])),
    params(("room" = u64, Path), ("seq" = u64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn delete_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((room, seq)): Path<(u64, u64)>,
) -> ApiResult<StatusCode> {
    state.limits.message(caller.user)?;
    chat::change(&state, caller.user, RoomId(room), seq, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/read", tag = "messages", security(("bearer" = [])),
    params(("room" = u64, Path)), request_body = ReadMarker,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn set_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Json(req): Json<ReadMarker>,
) -> ApiResult<StatusCode> {
    chat::set_read(&state, caller.user, RoomId(room), req.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "process is up")))]
async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the store before answering 503.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "store reachable, bus subscribed, not draining"),
        (status = 503, body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            ErrorCode::ServerBusy,
            "shutting down; use another node",
        ));
    }
    let unavailable = |what: &'static str| ApiError::new(ErrorCode::StoreUnavailable, what);
    if !state.store.bus_ready() {
        return Err(unavailable("not subscribed to the store's event bus"));
    }
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(unavailable("the store did not answer within a second")),
    }
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn fallback() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method",
    )
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Chat server API", description = "REST half of the protocol; the socket half is in docs/protocol.md."),
    paths(register, login, logout, me, sessions, revoke_session, search_users, get_user, my_rooms, public_rooms,
        create_room, get_room, join_room, leave_room, members, invite, remove_member, open_dm, history,
        send_message, edit_message, delete_message, set_read, healthz, readyz,
        moderation::bans, moderation::ban, moderation::unban, moderation::blocks, moderation::block,
        moderation::unblock,
        accounts::change_password, accounts::logout_everywhere, accounts::list_users,
        accounts::create_user, accounts::update_user, accounts::reset_password,
        accounts::create_invite, accounts::export,
        everyday::add_reaction, everyday::remove_reaction,
        attachments::upload, attachments::download, attachments::thumbnail,
        settings::update_room, settings::delete_room, settings::set_notify, settings::update_profile,
        updates::check, updates::file),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Every HTTP route of the server except `/ws`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/register", post(register))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/me", get(me).patch(settings::update_profile))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/sessions/{id}", delete(revoke_session))
        .route("/api/v1/users", get(search_users))
        .route("/api/v1/users/{user}", get(get_user))
        .route("/api/v1/rooms", get(my_rooms).post(create_room))
        .route("/api/v1/rooms/public", get(public_rooms))
        .route(
            "/api/v1/rooms/{room}",
            get(get_room)
                .patch(settings::update_room)
                .delete(settings::delete_room),
        )
        .route("/api/v1/rooms/{room}/join", post(join_room))
        .route("/api/v1/rooms/{room}/leave", post(leave_room))
        .route("/api/v1/rooms/{room}/members", get(members).post(invite))
        .route("/api/v1/rooms/{room}/members/{user}", delete(remove_member))
        .route("/api/v1/dms", post(open_dm))
        .route("/api/v1/rooms/{room}/events", get(history))
        .route("/api/v1/rooms/{room}/messages", post(send_message))
        .route(
            "/api/v1/rooms/{room}/messages/{seq}",
            axum::routing::patch(edit_message).delete(delete_message),
        )
        .route("/api/v1/rooms/{room}/read", put(set_read))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .merge(moderation::router())
        .merge(accounts::router())
        .merge(everyday::router())
        .merge(attachments::router())
        .merge(settings::router())
        .merge(updates::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
}
