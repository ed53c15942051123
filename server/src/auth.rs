//! Passwords, tokens and sessions.
//!
//! Passwords are hashed with argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane) on the
//! blocking pool, at most `max_concurrent_hashes` at once, so a login flood queues instead of
//! exhausting memory. Tokens are 256 random bits; the store keeps only their SHA-256.

use crate::error::{ApiError, ApiResult, StoreResult};
use crate::store::{SessionRecord, Store};
use crate::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use protocol::{ErrorCode, UserId};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Runs password hashing off the async threads, a bounded number at a time.
pub struct Hasher {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

fn argon2() -> Argon2<'static> {
    // OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string that no password verifies against; used for unknown users so that a login for
/// a missing account costs as much as one for an existing account.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"not a password of anyone", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Puts the calling (hashing) thread below the async workers: a login flood then takes the CPU
/// the chat leaves idle instead of delaying message delivery (on 2 cores, four hashing threads
/// at normal priority delayed other users' messages by ~0.4 s). Linux only: elsewhere nice is
/// per process.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(me), HASHING_NICE) {
            tracing::debug!(error = %e, "cannot lower the priority of a password hashing thread");
        }
    }
}

/// Nice value of the hashing threads (0 is normal, 19 the lowest).
#[cfg(target_os = "linux")]
const HASHING_NICE: i32 = 10;

impl Hasher {
    /// Starts `max_concurrent` hashing threads. Hashing runs only on them, not on tokio's
    /// blocking pool: glibc keeps each thread's freed 19 MiB argon2 block in that thread's
    /// arena, so hashing on up to 512 blocking threads left hundreds of MB resident after a
    /// few dozen logins. A fixed set of threads bounds that to `max_concurrent` blocks.
    pub fn new(max_concurrent: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(max_concurrent);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..max_concurrent {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the Hasher is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            jobs,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let busy = || {
            ApiError::new(
                ErrorCode::ServerBusy,
                "the server is busy; retry in a few seconds",
            )
        };
        // A permit per running job keeps the hand-off below from ever blocking.
        let waiting = std::time::Instant::now();
        let permit =
            tokio::time::timeout(Duration::from_secs(5), self.permits.clone().acquire_owned())
                .await;
        crate::metrics::get()
            .hash_wait
            .record(waiting.elapsed().as_secs_f64());
        let permit = permit.map_err(|_| busy())?.map_err(|_| busy())?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
            drop(permit);
        });
        self.jobs.try_send(job).map_err(|_| busy())?;
        result.await.map_err(|_| {
            tracing::error!("password hashing thread failed");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let hashed = self
            .run(move || {
                let salt = SaltString::generate(&mut OsRng);
                hash_reusing_memory(&argon2(), password.as_bytes(), salt.as_salt())
                    .map(|h| h.to_string())
            })
            .await?;
        hashed.map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }

    /// Verifies against `hash`, or against a dummy hash when the user does not exist.
    pub async fn verify(&self, password: String, hash: Option<String>) -> ApiResult<bool> {
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            known && verify_reusing_memory(password.as_bytes(), &hash)
        })
        .await
    }
}

thread_local! {
    /// The argon2 working memory of this hashing thread, allocated once and reused: a fresh
    /// 19 MiB allocation per hash is not reliably returned to the OS by glibc (measured: RSS
    /// grew by ~17 MB per registration).
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Argon2::hash_password`, computed in this thread's reusable memory.
fn hash_reusing_memory<'a>(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: argon2::password_hash::Salt<'a>,
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let params = argon.params().clone();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = argon2::password_hash::Output::init_with(len, |out| {
        BLOCKS.with_borrow_mut(|blocks| {
            blocks.resize(params.block_count(), argon2::Block::default());
            argon
                .hash_password_into_with_memory(password, salt_bytes, out, &mut blocks[..])
                .map_err(|_| argon2::password_hash::Error::Password)
        })
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Checks `password` against a stored argon2id PHC string (with the parameters it records).
fn verify_reusing_memory(password: &[u8], phc: &str) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    if stored.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&stored) else {
        return false;
    };
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // Output equality is constant-time.
    hash_reusing_memory(&argon, password, salt).is_ok_and(|h| h.hash == Some(expected))
}

/// A new random token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A new random session id (96 bits), safe to show: it cannot be used to authenticate.
pub fn new_session_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
}

/// What the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Looks a token up, sliding its expiry (never past the absolute lifetime `max_age_secs`).
/// `unauthorized` when unknown, expired, too old, revoked, or its account is disabled.
pub async fn authenticate(
    store: &Store,
    token: &str,
    ttl_secs: u64,
    max_age_secs: u64,
) -> ApiResult<SessionRecord> {
    let unauthorized = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "invalid or expired token; log in again",
        )
    };
    if token.is_empty() || token.len() > 128 {
        return Err(unauthorized());
    }
    let found: StoreResult<_> = store
        .touch_session(&token_hash(token), now_ms(), ttl_secs, max_age_secs)
        .await;
    found?.ok_or_else(unauthorized)
}

/// The authenticated caller of an HTTP request (`Authorization: Bearer <token>`).
pub struct Caller {
    pub user: UserId,
    pub session: SessionRecord,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "missing Authorization: Bearer <token> header",
                )
            })?;
        let config = &state.config;
        let session = authenticate(
            &state.store,
            token.trim(),
            config.session_ttl_secs,
            config.session_max_age_secs,
        )
        .await?;
        Ok(Caller {
            user: session.user,
            session,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail() {
        let hasher = Hasher::new(2);
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!hasher
            .verify("not a password of anyone".into(), None)
            .await
            .unwrap());
    }

    #[test]
    fn tokens_are_long_and_hashed() {
        let token = new_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, new_token());
        assert_eq!(token_hash(&token).len(), 64);
    }
}
