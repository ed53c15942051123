//! Account security and administration, shared by the REST routes (`http/accounts.rs`) and the
//! `chat-server admin` sub-commands (`cli.rs`), so both apply the same validation: password
//! change, sign out everywhere, the admin role, disabled accounts, invite codes and the
//! registration mode.

use crate::auth::{self, now_ms};
use crate::config::Registration;
use crate::error::{ApiError, ApiResult};
use crate::store::{Admission, InviteRecord, SessionRecord, Store, UserFlag, UserRecord};
use crate::AppState;
use protocol::rest::{AdminUser, InviteCode};
use protocol::{validate, ErrorCode, UserId};

/// Default and bounds of an invite code's life and uses.
pub const INVITE_DEFAULT_SECS: u64 = 7 * 24 * 3600;
pub const INVITE_MAX_SECS: u64 = 365 * 24 * 3600;
pub const INVITE_MIN_SECS: u64 = 60;
pub const INVITE_MAX_USES: u32 = 10_000;
/// Largest page of `GET /api/v1/admin/users`.
pub const USERS_PAGE_MAX: u32 = 1000;

pub fn admin_view(u: &UserRecord) -> AdminUser {
    AdminUser {
        id: u.id,
        username: u.username.clone(),
        created_ts: u.created_ts,
        admin: u.admin,
        disabled: u.disabled,
    }
}

fn user_not_found() -> ApiError {
    ApiError::new(ErrorCode::UserNotFound, "no such user")
}

/// The caller may use admin routes: an admin account that is not disabled.
pub async fn require_admin(state: &AppState, user: UserId) -> ApiResult<()> {
    match state.store.user(user).await? {
        Some(u) if u.admin && !u.disabled => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::NotAdmin,
            "only an admin can do this",
        )),
    }
}

/// How a registration gets in under `mode`: anyone, with an invite code (its hash), or — in
/// invite mode without a code, and in closed mode — only as the store's first account, so
/// that a new server always gets its admin.
pub fn admission(mode: Registration, invite: Option<&str>) -> ApiResult<AdmissionKey> {
    match (mode, invite.map(str::trim)) {
        (Registration::Open, _) => Ok(AdmissionKey::Open),
        (Registration::Invite, Some(code)) if !code.is_empty() => {
            if code.len() > 128 {
                return Err(ApiError::new(
                    ErrorCode::InvalidInvite,
                    "the invite code is unknown, used up or expired",
                ));
            }
            Ok(AdmissionKey::Invite(auth::token_hash(code)))
        }
        (Registration::Invite, _) => Ok(AdmissionKey::FirstAccount(ErrorCode::InvalidInvite)),
        (Registration::Closed, _) => Ok(AdmissionKey::FirstAccount(ErrorCode::RegistrationClosed)),
    }
}

/// [`Admission`] with owned data; `FirstAccount` carries the code to refuse others with.
pub enum AdmissionKey {
    Open,
    Invite(String),
    FirstAccount(ErrorCode),
}

impl AdmissionKey {
    pub fn admission(&self) -> Admission<'_> {
        match self {
            AdmissionKey::Open => Admission::Open,
            AdmissionKey::Invite(hash) => Admission::Invite(hash),
            AdmissionKey::FirstAccount(_) => Admission::FirstAccount,
        }
    }

    /// The refusal for everyone but the first account, in this mode's words.
    pub fn refusal(&self, e: ApiError) -> ApiError {
        match self {
            AdmissionKey::FirstAccount(ErrorCode::InvalidInvite)
                if e.code == ErrorCode::RegistrationClosed =>
            {
                ApiError::new(
                    ErrorCode::InvalidInvite,
                    "registration on this server needs an invite code",
                )
            }
            _ => e,
        }
    }
}

/// Changes the caller's password after checking the current one; every other session of the
/// account is revoked and its sockets closed (4001) on every node. The calling session stays.
pub async fn change_password(
    state: &AppState,
    caller: &SessionRecord,
    current: String,
    new: String,
) -> ApiResult<()> {
    validate::password(&new)?;
    let user = state
        .store
        .user(caller.user)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "account gone"))?;
    let ok = current.len() <= 256
        && state
            .hasher
            .verify(current, Some(user.password_hash.clone()))
            .await?;
    if !ok {
        return Err(ApiError::new(
            ErrorCode::WrongPassword,
            "the current password is wrong",
        ));
    }
    let hash = state.hasher.hash(new).await?;
    state
        .store
        .set_password(user.id, &hash, Some(&caller.id))
        .await?;
    tracing::info!(user = %user.id, "password changed; other sessions revoked");
    Ok(())
}

/// Revokes every session of `user`, the calling one included; all their sockets close (4001).
pub async fn sign_out_everywhere(state: &AppState, user: UserId) -> ApiResult<u64> {
    let n = state.store.revoke_sessions(user, None).await?;
    tracing::info!(%user, sessions = n, "signed out everywhere");
    Ok(n)
}

// --- Admin operations: `store` and `hasher` only, so the CLI runs them without a server ---

/// Accounts by ascending id after `after`, at most `limit` (1..=1000, default 100).
pub async fn list_users(
    store: &Store,
    after: Option<u64>,
    limit: Option<u32>,
) -> ApiResult<Vec<AdminUser>> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > USERS_PAGE_MAX {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "limit must be 1 to 1000",
        ));
    }
    let users = store.list_users(after.unwrap_or(0), limit as usize).await?;
    Ok(users.iter().map(admin_view).collect())
}

/// Creates an account whatever the registration mode, with the rules of registration.
pub async fn create_user(
    store: &Store,
    hasher: &auth::Hasher,
    username: &str,
    password: String,
    admin: bool,
) -> ApiResult<AdminUser> {
    validate::username(username)?;
    validate::password(&password)?;
    if store.user_by_name(username).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::UsernameTaken,
            "that username is taken",
        ));
    }
    let hash = hasher.hash(password).await?;
    let mut user = store.create_user(username, &hash, now_ms()).await?;
    if admin && !user.admin {
        store.set_user_flag(user.id, UserFlag::Admin, true).await?;
        user.admin = true;
    }
    tracing::info!(user = %user.id, admin = user.admin, "account created by an admin");
    Ok(admin_view(&user))
}

/// Sets a new password; every session of the account is revoked.
pub async fn reset_password(
    store: &Store,
    hasher: &auth::Hasher,
    user: UserId,
    password: String,
) -> ApiResult<()> {
    validate::password(&password)?;
    if store.user(user).await?.is_none() {
        return Err(user_not_found());
    }
    let hash = hasher.hash(password).await?;
    if !store.set_password(user, &hash, None).await? {
        return Err(user_not_found());
    }
    tracing::info!(%user, "password reset by an admin; sessions revoked");
    Ok(())
}

/// Sets or clears a flag; returns the account after the change.
pub async fn set_flag(
    store: &Store,
    user: UserId,
    flag: UserFlag,
    on: bool,
) -> ApiResult<AdminUser> {
    if !store.set_user_flag(user, flag, on).await? {
        return Err(user_not_found());
    }
    tracing::info!(%user, ?flag, on, "account flag changed by an admin");
    let record = store.user(user).await?.ok_or_else(user_not_found)?;
    Ok(admin_view(&record))
}

/// Makes an invite code good for `uses` registrations (default 1) until `expires_in_secs`
/// from now (default 7 days). The code is returned once; the store keeps its hash.
pub async fn create_invite(
    store: &Store,
    by: Option<UserId>,
    uses: Option<u32>,
    expires_in_secs: Option<u64>,
) -> ApiResult<InviteCode> {
    let uses = uses.unwrap_or(1);
    let secs = expires_in_secs.unwrap_or(INVITE_DEFAULT_SECS);
    if uses == 0 || uses > INVITE_MAX_USES {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "uses must be 1 to 10000",
        ));
    }
    if !(INVITE_MIN_SECS..=INVITE_MAX_SECS).contains(&secs) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "expires_in_secs must be 60 to 31536000 (one year)",
        ));
    }
    let code = auth::new_token();
    let now = now_ms();
    let invite = InviteRecord {
        code_hash: auth::token_hash(&code),
        uses_left: uses,
        expires_ts: now + secs as i64 * 1000,
        created_by: by,
        created_ts: now,
    };
    store.create_invite(&invite).await?;
    tracing::info!(uses, expires_in_secs = secs, "invite code created");
    Ok(InviteCode {
        code,
        uses,
        expires_ts: invite.expires_ts,
    })
}
