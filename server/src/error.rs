//! Errors: [`ApiError`] is what a client sees (a stable code and a human message); infrastructure
//! failures come in through `From` and are logged here, never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::validate::RuleError;
use protocol::{ErrorBody, ErrorCode};
use std::borrow::Cow;

/// An error answered to a client, over HTTP or as a socket `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub retry_after_ms: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn not_a_member() -> Self {
        Self::new(ErrorCode::NotAMember, "you are not a member of this room")
    }

    pub fn room_not_found() -> Self {
        Self::new(ErrorCode::RoomNotFound, "no such room, or it is private")
    }

    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: "too many requests; slow down".into(),
            retry_after_ms: Some(retry_after_ms),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.to_string(),
            retry_after_ms: self.retry_after_ms,
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        Self::new(e.code, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(e) => e,
            StoreError::Unavailable(detail) | StoreError::Unreachable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::new(
                    ErrorCode::StoreUnavailable,
                    "the message store is unreachable; retry shortly",
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "unexpected data in store");
                Self::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule of the domain was broken (not a member, not the author, ...): reported as is.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The store could not be reached or answered with an error; nothing is known to have changed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store could not be reached (connection refused, dropped or timed out), or is known
    /// to be down: the node fails store calls fast until it answers again.
    #[error("store unreachable: {0}")]
    Unreachable(String),
    /// The store holds something this server cannot read.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if crate::store::health::is_unreachable(&e) {
            StoreError::Unreachable(e.to_string())
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}

impl From<redis::ParsingError> for StoreError {
    fn from(e: redis::ParsingError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot reach Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
}
