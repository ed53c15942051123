//! The account's security: its sessions (list, end one), changing the password, signing out
//! everywhere. Each is one REST call; a refused token ends the session as everywhere else.

use super::Backend;
use crate::error::{Error, Result};
use protocol::rest::SessionInfo;
use protocol::{validate, ErrorCode};

impl Backend {
    /// The account's live sessions (device, created, last used), oldest first; `current`
    /// marks this device's.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.sessions(&token).await).await
    }

    /// Ends one session of the account. Ending this device's own session is a logout.
    pub async fn end_session(&self, id: &str) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        let sessions = self.inner.checked(api.sessions(&token).await).await?;
        let Some(session) = sessions.iter().find(|s| s.id == id) else {
            return Err(Error::server(
                ErrorCode::SessionNotFound,
                "that session has already ended",
            ));
        };
        if session.current {
            return self.logout().await;
        }
        self.inner
            .checked(api.revoke_session(&token, id).await)
            .await
    }

    /// Changes the password; the server revokes every other session (their sockets close),
    /// this one stays. `wrong_password` when `current` is not the password in use.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        if current.is_empty() {
            return Err(Error::Invalid("enter your current password".into()));
        }
        validate::password(new)?;
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.change_password(&token, current, new).await)
            .await
    }

    /// Revokes every session of the account on the server (all devices), then logs this
    /// device out as [`Backend::logout`] does. Nothing changes here if the server cannot be
    /// reached: the other devices would stay signed in.
    pub async fn logout_everywhere(&self) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.logout_all(&token).await).await?;
        self.logout().await
    }
}
