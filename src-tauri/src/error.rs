//! The backend's one error type. Every command fails with an [`Error`], which serializes to the
//! IPC's [`AppError`] `{code, message}`: a stable code for the UI and a message for people.
//! Infrastructure failures (SQLite, keychain) are logged in full and reach the UI as a short
//! message only.

use protocol::ipc::{AppError, AppErrorCode, CertificateView};
use protocol::{ErrorBody, ErrorCode};
use serde::{Serialize, Serializer};

/// What went wrong, by whom it can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server URL is not a usable http(s) URL.
    #[error("{0}")]
    BadUrl(String),
    /// `http://` to a host that is not loopback.
    #[error("{0}")]
    InsecureUrl(String),
    /// The server's certificate is not trusted here; the user may trust it.
    #[error("the server's certificate is not trusted by this computer (SHA-256 {})", .0.sha256)]
    UntrustedCertificate(CertificateView),
    /// The server presented another certificate than the one trusted for it.
    #[error("the server's certificate changed (now SHA-256 {}); refusing to connect: this may be someone else posing as the server. If the operator replaced the certificate, confirm its fingerprint with them", .0.sha256)]
    CertificateChanged(CertificateView),
    /// Nothing (or no chat server) answered: offline, wrong address, TLS failure, timeout.
    #[error("cannot reach the chat server: {0}")]
    Unreachable(String),
    /// No server chosen, or not logged in.
    #[error("{0}")]
    NotLoggedIn(&'static str),
    /// The server refused the request; its code and message are passed on.
    #[error("{}", .0.message)]
    Server(ErrorBody),
    /// The server answered something that does not follow the protocol.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The local cache failed.
    #[error("local cache: {0}")]
    Storage(#[from] sqlx::Error),
    /// The cache's schema could not be brought up to date.
    #[error("local cache migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The OS keychain failed or is not available.
    #[error("keychain: {0}")]
    Keychain(String),
    /// The UI passed arguments that cannot be right.
    #[error("{0}")]
    Invalid(String),
    /// No app update to install, or it could not be installed (see [`crate::updater`]).
    #[error("{0}")]
    Update(String),
    /// The backend could not be opened at start (see [`crate::startup`]): every command gets
    /// the error it failed with, as it was first reported.
    #[error("{}", .0.message)]
    Start(AppError),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A server refusal with `code`, as if the server had sent it (used for local rule checks
    /// that mirror the server's).
    pub fn server(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Server(ErrorBody {
            code,
            message: message.into(),
            retry_after_ms: None,
        })
    }

    /// The server's error code, when the server refused the request.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(body) => Some(body.code),
            _ => None,
        }
    }

    /// A failure that passes by itself: the server did not answer (or not as a chat server: a
    /// proxy's error page), or refused for now (rate limit, busy, store unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable(_) | Error::Protocol(_) => true,
            Error::Server(body) => crate::outbox::is_transient(body.code),
            _ => false,
        }
    }

    /// How long the server asked us to wait before trying again (zero when it did not say).
    pub fn retry_after(&self) -> std::time::Duration {
        match self {
            Error::Server(body) => {
                std::time::Duration::from_millis(body.retry_after_ms.unwrap_or(0))
            }
            _ => std::time::Duration::ZERO,
        }
    }

    /// The IPC form: stable code, and a message fit for the user (internal details are logged
    /// instead).
    pub fn to_app_error(&self) -> AppError {
        let (code, message) = match self {
            Error::BadUrl(_) => (AppErrorCode::BadUrl, self.to_string()),
            Error::InsecureUrl(_) => (AppErrorCode::InsecureUrl, self.to_string()),
            Error::UntrustedCertificate(cert) => {
                return AppError {
                    code: AppErrorCode::UntrustedCertificate,
                    message: self.to_string(),
                    certificate: Some(cert.clone()),
                }
            }
            Error::CertificateChanged(cert) => {
                return AppError {
                    code: AppErrorCode::CertificateChanged,
                    message: self.to_string(),
                    certificate: Some(cert.clone()),
                }
            }
            Error::Unreachable(_) | Error::Protocol(_) => {
                (AppErrorCode::ServerUnreachable, self.to_string())
            }
            Error::NotLoggedIn(_) => (AppErrorCode::NotLoggedIn, self.to_string()),
            Error::Server(body) => (AppErrorCode::Server(body.code), body.message.clone()),
            Error::Storage(_) | Error::Migrate(_) => {
                tracing::error!(error = %self, "cache failure reported to the UI");
                (
                    AppErrorCode::Storage,
                    "The local message cache failed; details are in the log.".to_owned(),
                )
            }
            Error::Keychain(_) => {
                tracing::error!(error = %self, "keychain failure reported to the UI");
                (
                    AppErrorCode::Keychain,
                    "The system keychain is not available; details are in the log.".to_owned(),
                )
            }
            Error::Invalid(_) => (AppErrorCode::Invalid, self.to_string()),
            Error::Update(_) => (AppErrorCode::UpdateFailed, self.to_string()),
            Error::Start(error) => return error.clone(),
        };
        AppError {
            code,
            message,
            certificate: None,
        }
    }
}

impl From<keyring::Error> for Error {
    fn from(e: keyring::Error) -> Self {
        Error::Keychain(e.to_string())
    }
}

impl From<protocol::validate::RuleError> for Error {
    fn from(e: protocol::validate::RuleError) -> Self {
        Error::server(e.code, e.message)
    }
}

/// Tauri serializes command errors with this: the UI receives an [`AppError`] object.
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_app_error().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_app_error() {
        let e = Error::server(ErrorCode::NotAMember, "you are not a member of this room");
        let json = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "code": {"kind": "server", "server": "not_a_member"},
                "message": "you are not a member of this room"
            })
        );
        let json = serde_json::to_value(Error::NotLoggedIn("log in first")).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"code": {"kind": "not_logged_in"}, "message": "log in first"})
        );
    }
}
