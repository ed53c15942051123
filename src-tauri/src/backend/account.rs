//! The server and the account: choosing a server, register, login, logout, and the session
//! (token in the keychain, the connection) from start to end.

use super::{key, Backend, Inner, Session};
use crate::api::{self, Api};
use crate::connection::{Connection, WsConnector};
use crate::credentials;
use crate::error::{Error, Result};
use crate::tls::Fingerprint;
use protocol::ipc::{AppEvent, ConnectionState, Snapshot};
use protocol::rest::{AuthResponse, Credentials, User};
use protocol::{validate, ErrorCode};

impl Backend {
    pub fn snapshot(&self) -> Snapshot {
        let state = self.inner.lock();
        Snapshot {
            server_url: state.api.as_ref().map(|a| api::display_url(a.base())),
            username: state.last_username.clone(),
            user: state.session.as_ref().map(|s| s.user.clone()),
            connection: state.connection_state.clone(),
            limits: state.limits.clone(),
            last_room: state.last_room,
        }
    }

    /// Checks that a chat server answers at `url` and remembers it. Over https, a certificate
    /// no root vouches for fails with [`Error::UntrustedCertificate`] (unless the user trusted
    /// it for this server before).
    pub async fn set_server(&self, url: &str) -> Result<()> {
        self.choose_server(url, None).await
    }

    /// Like [`Backend::set_server`], trusting the certificate with SHA-256 `sha256` for this
    /// server (the user checked it); the pin is stored with the server. Another certificate
    /// fails with [`Error::CertificateChanged`].
    pub async fn trust_certificate(&self, url: &str, sha256: &str) -> Result<()> {
        let pin = crate::tls::parse_fingerprint(sha256)
            .ok_or_else(|| Error::Invalid("not a SHA-256 fingerprint".into()))?;
        self.choose_server(url, Some(pin)).await
    }

    async fn choose_server(&self, url: &str, pin: Option<Fingerprint>) -> Result<()> {
        let base = api::parse_server_url(url)?;
        {
            let state = self.inner.lock();
            let current = state.api.as_ref().map(|a| api::display_url(a.base()));
            if state.session.is_some() && current.as_deref() != Some(&api::display_url(&base)) {
                return Err(Error::Invalid(
                    "log out before switching to another server".into(),
                ));
            }
        }
        // A certificate trusted for this server before stays trusted (and checked).
        let cache = &self.inner.cache;
        let pin_key = key::server_pin(&api::display_url(&base));
        let pin = match pin {
            Some(pin) => Some(pin),
            None => cache
                .setting(&pin_key)
                .await?
                .and_then(|p| crate::tls::parse_fingerprint(&p)),
        };
        let api = Api::new(base, pin)?;
        api.probe().await?;
        cache
            .set_setting(key::SERVER_URL, &api::display_url(api.base()))
            .await?;
        if let Some(pin) = pin {
            cache
                .set_setting(&pin_key, &crate::tls::format_fingerprint(&pin))
                .await?;
        }
        self.inner.lock().api = Some(api);
        Ok(())
    }

    pub async fn register(&self, username: &str, password: &str) -> Result<User> {
        validate::username(username)?;
        validate::password(password)?;
        let api = self.inner.server_api()?;
        let auth = api
            .register(&self.inner.credentials(username, password))
            .await?;
        self.inner.start_session(api, auth).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<User> {
        if username.trim().is_empty() || password.is_empty() {
            return Err(Error::Invalid("enter a username and a password".into()));
        }
        let api = self.inner.server_api()?;
        let auth = api
            .login(&self.inner.credentials(username, password))
            .await?;
        self.inner.start_session(api, auth).await
    }

    /// Messages in the outbox (pending or failed): what [`Backend::logout`] would drop. The UI
    /// asks before logging out so nothing unsent is lost without the user knowing.
    pub async fn unsent(&self) -> Result<u32> {
        self.inner.cache.outbox_count().await
    }

    /// Revokes the token on the server (best effort when unreachable), deletes it from the
    /// keychain and empties the cache, unsent messages included (see [`Backend::unsent`]). The
    /// cache is emptied even when the keychain fails; that failure is returned afterwards.
    pub async fn logout(&self) -> Result<()> {
        let (api, session, connection) = {
            let mut state = self.inner.lock();
            (
                state.api.clone(),
                state.session.take(),
                state.connection.take(),
            )
        };
        if let Some(connection) = connection {
            connection.stopped().await;
        }
        if let (Some(api), Some(session)) = (api, &session) {
            match api.logout(&session.token).await {
                Ok(()) => {}
                Err(e) if e.server_code() == Some(ErrorCode::Unauthorized) => {}
                Err(e) => tracing::warn!(error = %e, "could not revoke the session on the server"),
            }
        }
        // The cache is cleared even when the keychain refuses: the user asked for this
        // device to forget the account. The keychain failure is reported afterwards.
        let forgotten = match session {
            Some(session) => {
                let account = session.account.clone();
                credentials::blocking(&self.inner.tokens, move |t| t.delete(&account)).await
            }
            None => Ok(()),
        };
        self.inner.forget_account().await?;
        self.inner.cache.delete_setting(key::USER).await?;
        self.inner.cache.delete_setting(key::ACCOUNT).await?;
        self.inner.set_connection_state(ConnectionState::Offline);
        self.inner.sink.emit(AppEvent::RoomsChanged);
        self.inner.sink.unread_changed(0);
        if let Err(e) = &forgotten {
            tracing::error!(error = %e, "logged out; the token could not be removed from the keychain");
        }
        forgotten
    }
}

impl Inner {
    fn server_api(&self) -> Result<Api> {
        let state = self.lock();
        if state.session.is_some() {
            return Err(Error::Invalid("already logged in; log out first".into()));
        }
        state
            .api
            .clone()
            .ok_or(Error::NotLoggedIn("choose a server first"))
    }

    /// Forgets what the cache and the files hold of the account, and the room last opened.
    async fn forget_account(&self) -> Result<()> {
        self.cache.clear_account().await?;
        self.clear_files().await;
        self.cache.delete_setting(key::LAST_ROOM).await?;
        self.lock().last_room = None;
        Ok(())
    }

    fn credentials(&self, username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.trim().to_owned(),
            password: password.to_owned(),
            device: Some(self.options.device.clone()),
            invite: None,
        }
    }

    /// Stores the token and account, then connects.
    pub(super) async fn start_session(&self, api: Api, auth: AuthResponse) -> Result<User> {
        let server = api::display_url(api.base());
        let user = auth.user;
        let account = credentials::account_key(&server, &user.username);
        {
            let (account, token) = (account.clone(), auth.token.clone());
            let saved =
                credentials::blocking(&self.tokens, move |t| t.save(&account, &token)).await;
            if let Err(e) = saved {
                // Without the keychain the token cannot be kept: do not leave it valid.
                if let Err(revoke) = api.logout(&auth.token).await {
                    tracing::warn!(error = %revoke, "could not revoke the unsaved session");
                }
                return Err(e);
            }
        }
        // The creation time tells a wiped server's reused user id from the cached account.
        let owner = format!("{server}|{}|{}", user.id, user.created_ts);
        if self.cache.setting(key::ACCOUNT).await?.as_deref() != Some(owner.as_str()) {
            self.forget_account().await?;
            self.cache.set_setting(key::ACCOUNT, &owner).await?;
        }
        self.cache
            .set_setting(key::USERNAME, &user.username)
            .await?;
        self.cache.set_json_setting(key::USER, &user).await?;
        {
            let mut state = self.lock();
            state.last_username = Some(user.username.clone());
            state.session = Some(Session {
                user: user.clone(),
                token: auth.token,
                account,
            });
        }
        self.connect(api)?;
        self.rooms_changed().await;
        Ok(user)
    }

    /// At startup: picks the remembered session up again if its token is in the store.
    pub(super) async fn resume_session(&self, user: User) -> Result<()> {
        let Some(api) = self.lock().api.clone() else {
            return Ok(());
        };
        let account = credentials::account_key(&api::display_url(api.base()), &user.username);
        let token = {
            let account = account.clone();
            credentials::blocking(&self.tokens, move |t| t.load(&account)).await
        };
        match token {
            Ok(Some(token)) => {
                self.lock().session = Some(Session {
                    user,
                    token,
                    account,
                });
                self.connect(api)?;
                let total = self.cache.total_unread().await?;
                self.sink.unread_changed(total);
            }
            Ok(None) => {
                tracing::info!("no token in the keychain; logged out");
                self.cache.delete_setting(key::USER).await?;
            }
            Err(e) => {
                // Keep the session remembered: the keychain may be locked now, not later.
                tracing::warn!(error = %e, "cannot read the token from the keychain");
            }
        }
        Ok(())
    }

    fn connect(&self, api: Api) -> Result<()> {
        let Some(me) = self.me.upgrade() else {
            return Ok(());
        };
        let connector = WsConnector {
            url: api.ws_url()?.to_string(),
            tls: api.tls().cloned(),
        };
        let connection = Connection::spawn(me, connector, self.link.clone(), self.options.timing);
        let old = self.lock().connection.replace(connection);
        if let Some(old) = old {
            old.stop();
        }
        Ok(())
    }

    /// The token was refused (close 4001 or HTTP 401): forget it and show the login screen.
    /// The cache stays, for when the same account logs in again.
    pub(super) async fn end_session(&self, reason: String) {
        let (session, connection) = {
            let mut state = self.lock();
            (state.session.take(), state.connection.take())
        };
        let Some(session) = session else {
            return;
        };
        if let Some(connection) = connection {
            // Not awaited: this may run on the connection's own task.
            connection.stop();
        }
        let account = session.account.clone();
        if let Err(e) = credentials::blocking(&self.tokens, move |t| t.delete(&account)).await {
            tracing::warn!(error = %e, "could not delete the token from the keychain");
        }
        if let Err(e) = self.cache.delete_setting(key::USER).await {
            tracing::warn!(error = %e, "could not forget the user");
        }
        self.set_connection_state(ConnectionState::Offline);
        self.sink.emit(AppEvent::SessionEnded { reason });
    }
}
