//! Accounts and sessions: register, login, the session list, profiles and user search.

use crate::auth::{self, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::store::{self, SessionRecord, UserRecord};
use crate::AppState;
use protocol::rest::{AuthResponse, Credentials, SessionInfo, User, UserPublic};
use protocol::{validate, ErrorCode, UserId};

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
