//! The REST client (`/api/v1/...`): the typed client of crate `chat-client` over this app's
//! reqwest (rustls, [`crate::tls`]'s trust), with its errors turned into this crate's: the
//! server's error bodies into [`Error::Server`], transport failures into
//! [`Error::Unreachable`] (or the certificate refusal behind them), anything else that breaks
//! the protocol into [`Error::Protocol`].

use crate::error::{Error, Result};
use crate::tls::{Fingerprint, Refusal, Tls};
use chat_client::Client;
use protocol::rest::{
    AuthResponse, Credentials, HistoryPage, Member, Room, SessionInfo, User, UserPublic, UserRef,
    Visibility,
};
use protocol::{ErrorCode, RoomId, UserId};
use reqwest::{Response, StatusCode, Url};
use std::time::Duration;

/// Password hashing on a busy server can take a while; nothing else should.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    base: Url,
    /// For https: the trust shared with the socket.
    tls: Option<Tls>,
    pin: Option<Fingerprint>,
}

/// Checks and normalizes a server URL typed by the user: http(s), a host, no query; the path
/// (if any) is kept as a prefix, without a trailing slash.
pub fn parse_server_url(input: &str) -> Result<Url> {
    let input = input.trim();
    let mut url = Url::parse(input).map_err(|e| Error::BadUrl(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::BadUrl(
            "the server URL must start with http:// or https://".into(),
        ));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()).map(str::to_owned) else {
        return Err(Error::BadUrl("the server URL has no host".into()));
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::BadUrl(
            "the server URL must not contain a query, fragment or user name".into(),
        ));
    }
    if url.scheme() == "http" && !is_loopback(&host) {
        return Err(Error::InsecureUrl(format!(
            "Refusing http://{host}: over plain http the password and the session token would \
             cross the network unencrypted. Use https://{host} instead. If the server does not \
             answer on https, its operator must enable TLS (tls_cert and tls_key in the server's \
             configuration, or a reverse proxy such as nginx or Caddy in front of it). Plain \
             http is allowed only for a server on this computer (localhost)."
        )));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// This machine: `localhost`, 127.0.0.0/8, `[::1]` (a URL's host as `Url::host_str` gives it).
fn is_loopback(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    }
    if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        return v4.is_loopback();
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The server URL as stored and shown: no trailing slash.
pub fn display_url(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

impl Api {
    /// A client for `base`; over https it trusts the bundled and OS roots and `pin` (the
    /// SHA-256 of a certificate the user accepted for this server).
    pub fn new(base: Url, pin: Option<Fingerprint>) -> Result<Api> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("chat-desktop/", env!("CARGO_PKG_VERSION")));
        let tls = if base.scheme() == "https" {
            let tls = Tls::new(pin).map_err(Error::Unreachable)?;
            builder = builder.use_preconfigured_tls((*tls.config()).clone());
            Some(tls)
        } else {
            None
        };
        let http = builder
            .build()
            .map_err(|e| Error::Unreachable(format!("cannot set up HTTP: {e}")))?;
        let client = Client::with_http(http, base.clone())
            .map_err(|_| Error::BadUrl("the server URL cannot have a path".into()))?;
        Ok(Api {
            client,
            base,
            tls,
            pin,
        })
    }

    /// The TLS trust of this server (https only), shared with the socket.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The certificate pinned for this server.
    pub fn pin(&self) -> Option<Fingerprint> {
        self.pin
    }

    /// A transport failure caused by the server's certificate becomes the typed error.
    fn certificate_error(&self, e: Error) -> Error {
        match self.tls.as_ref().and_then(Tls::refusal) {
            Some(Refusal::Untrusted(cert)) => Error::UntrustedCertificate(cert),
            Some(Refusal::Changed(cert)) => Error::CertificateChanged(cert),
            None => e,
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The socket URL: `ws(s)://host[:port][/prefix]/ws`.
    pub fn ws_url(&self) -> Result<Url> {
        let mut url = self.client.url(["ws"]);
        let scheme = if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        url.set_scheme(scheme)
            .map_err(|()| Error::BadUrl("cannot derive the socket URL".into()))?;
        Ok(url)
    }

    /// The client as the session of `token`.
    fn session(&self, token: &str) -> Client {
        self.client.with_token(token)
    }

    /// Checks that a chat server answers at the base URL: an unauthenticated `GET /api/v1/me`
    /// must be refused with the protocol's `unauthorized` error body.
    pub async fn probe(&self) -> Result<()> {
        match self.client.me().await {
            Err(chat_client::Error::Server { status, body, .. })
                if status == StatusCode::UNAUTHORIZED.as_u16()
                    && body.code == ErrorCode::Unauthorized =>
            {
                Ok(())
            }
            Err(e @ chat_client::Error::Transport { .. }) => {
                Err(self.certificate_error(from_client(e)))
            }
            Err(e) => {
                let status = e.status().and_then(|s| StatusCode::from_u16(s).ok());
                let status = status.map_or_else(|| "?".to_owned(), |s| s.to_string());
                Err(Error::Unreachable(format!(
                    "{} does not look like a chat server (HTTP {status})",
                    display_url(&self.base)
                )))
            }
            Ok(_) => Err(Error::Unreachable(format!(
                "{} does not look like a chat server (HTTP {})",
                display_url(&self.base),
                StatusCode::OK
            ))),
        }
    }

    pub async fn register(&self, creds: &Credentials) -> Result<AuthResponse> {
        self.client.register_with(creds).await.map_err(from_client)
    }

    pub async fn login(&self, creds: &Credentials) -> Result<AuthResponse> {
        self.client.login_with(creds).await.map_err(from_client)
    }

    /// Revokes the session of `token`.
    pub async fn logout(&self, token: &str) -> Result<()> {
        self.session(token).logout().await.map_err(from_client)
    }

    /// Revokes every session of the account, this one included.
    pub async fn logout_all(&self, token: &str) -> Result<()> {
        self.session(token).logout_all().await.map_err(from_client)
    }

    /// The account's live sessions, oldest first.
    pub async fn sessions(&self, token: &str) -> Result<Vec<SessionInfo>> {
        self.session(token).sessions().await.map_err(from_client)
    }

    /// Revokes one session of the account.
    pub async fn revoke_session(&self, token: &str, id: &str) -> Result<()> {
        let revoked = self.session(token).delete_session(id).await;
        revoked.map_err(from_client)
    }

    /// Changes the password (`current` must be right); the server revokes every other session.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Result<()> {
        let changed = self.session(token).change_password(current, new).await;
        changed.map_err(from_client)
    }

    pub async fn me(&self, token: &str) -> Result<User> {
        self.session(token).me().await.map_err(from_client)
    }

    pub async fn user(&self, token: &str, user: UserId) -> Result<UserPublic> {
        self.session(token)
            .get_user(user)
            .await
            .map_err(from_client)
    }

    pub async fn rooms(&self, token: &str) -> Result<Vec<Room>> {
        self.session(token).my_rooms().await.map_err(from_client)
    }

    pub async fn room(&self, token: &str, room: RoomId) -> Result<Room> {
        self.session(token)
            .get_room(room)
            .await
            .map_err(from_client)
    }

    pub async fn public_rooms(&self, token: &str) -> Result<Vec<Room>> {
        self.session(token)
            .public_rooms()
            .await
            .map_err(from_client)
    }

    pub async fn create_room(
        &self,
        token: &str,
        name: &str,
        visibility: Visibility,
    ) -> Result<Room> {
        let room = self.session(token).create_room(name, visibility).await;
        room.map_err(from_client)
    }

    pub async fn join(&self, token: &str, room: RoomId) -> Result<Room> {
        self.session(token).join(room).await.map_err(from_client)
    }

    pub async fn leave(&self, token: &str, room: RoomId) -> Result<()> {
        self.session(token).leave(room).await.map_err(from_client)
    }

    pub async fn members(&self, token: &str, room: RoomId) -> Result<Vec<Member>> {
        self.session(token).members(room).await.map_err(from_client)
    }

    pub async fn search_users(&self, token: &str, query: &str) -> Result<Vec<UserPublic>> {
        let found = self.session(token).search_users(query).await;
        found.map_err(from_client)
    }

    pub async fn open_dm(&self, token: &str, user: UserId) -> Result<Room> {
        self.session(token).open_dm(user).await.map_err(from_client)
    }

    /// One page of a room's events: `before` pages back (newest page when both are `None`),
    /// `after` pages forward.
    pub async fn history(
        &self,
        token: &str,
        room: RoomId,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage> {
        let page = self
            .session(token)
            .history(room, before, after, Some(limit))
            .await;
        page.map_err(from_client)
    }

    pub async fn edit(&self, token: &str, room: RoomId, seq: u64, body: &str) -> Result<()> {
        let edited = self.session(token).edit(room, seq, body).await;
        edited.map_err(from_client)
    }

    pub async fn delete(&self, token: &str, room: RoomId, seq: u64) -> Result<()> {
        let deleted = self.session(token).delete_message(room, seq).await;
        deleted.map_err(from_client)
    }

    /// The owner renames the room and/or sets its topic (issue 13).
    pub async fn update_room(
        &self,
        token: &str,
        room: RoomId,
        update: &protocol::rest::UpdateRoom,
    ) -> Result<Room> {
        let updated = self.session(token).update_room(room, update).await;
        updated.map_err(from_client)
    }

    /// The owner deletes the room.
    pub async fn delete_room(&self, token: &str, room: RoomId) -> Result<()> {
        self.session(token)
            .delete_room(room)
            .await
            .map_err(from_client)
    }

    /// The user's notification level for a room.
    pub async fn set_notify(
        &self,
        token: &str,
        room: RoomId,
        level: protocol::rest::NotifyLevel,
    ) -> Result<()> {
        let set = self.session(token).set_notify(room, level).await;
        set.map_err(from_client)
    }

    /// Changes the user's profile (display name).
    pub async fn update_profile(
        &self,
        token: &str,
        update: &protocol::rest::UpdateProfile,
    ) -> Result<User> {
        let updated = self.session(token).update_profile(update).await;
        updated.map_err(from_client)
    }

    pub async fn set_read(&self, token: &str, room: RoomId, seq: u64) -> Result<()> {
        let set = self.session(token).mark_read(room, seq).await;
        set.map_err(from_client)
    }
}

// Moderation (protocol §2.9): bans of a room, the account's blocks.
impl Api {
    /// Bans (`true`) or unbans `user` from `room`.
    pub async fn set_ban(&self, token: &str, room: RoomId, user: UserId, ban: bool) -> Result<()> {
        let set = self.session(token).set_ban(room, user, ban).await;
        set.map_err(from_client)
    }

    pub async fn bans(&self, token: &str, room: RoomId) -> Result<Vec<UserRef>> {
        self.session(token).bans(room).await.map_err(from_client)
    }

    /// Blocks (`true`) or unblocks `user`.
    pub async fn set_block(&self, token: &str, user: UserId, block: bool) -> Result<()> {
        let set = self.session(token).set_block(user, block).await;
        set.map_err(from_client)
    }

    pub async fn blocks(&self, token: &str) -> Result<Vec<UserRef>> {
        self.session(token).blocks().await.map_err(from_client)
    }
}

// Attachments (protocol §2.10): uploads streamed from a body, downloads as a response to read
// in chunks.
impl Api {
    /// Uploads a file of `len` bytes from `body` to `room` under `name`; the server's
    /// [`protocol::Attachment`] comes back. The time allowed grows with the size.
    pub async fn upload(
        &self,
        token: &str,
        room: RoomId,
        name: &str,
        len: u64,
        body: reqwest::Body,
    ) -> Result<protocol::Attachment> {
        let timeout = Some(transfer_timeout(len));
        let uploaded = self
            .session(token)
            .upload(room, name, body, Some(len), timeout)
            .await;
        uploaded.map_err(from_client)
    }

    /// Starts downloading attachment `id` (its thumbnail with `thumbnail`); read the body
    /// with [`Response::chunk`]. Refusals (`attachment_not_found`) are [`Error::Server`].
    pub async fn download(&self, token: &str, id: &str, thumbnail: bool) -> Result<Response> {
        let timeout = Some(transfer_timeout(MAX_DOWNLOAD_GUESS));
        let response = self.session(token).download(id, thumbnail, timeout).await;
        response.map_err(from_client)
    }
}

/// What a download's time limit assumes about its size (the server's largest upload).
const MAX_DOWNLOAD_GUESS: u64 = 50 * 1024 * 1024;

/// Time allowed for moving `len` bytes: a minute plus a second per 64 KiB (a slow line still
/// finishes; a dead one does not hang forever).
fn transfer_timeout(len: u64) -> Duration {
    Duration::from_secs(60 + len / (64 * 1024))
}

/// The next chunk of a download's body.
pub async fn next_chunk(response: &mut Response) -> Result<Option<impl AsRef<[u8]>>> {
    chat_client::next_chunk(response).await.map_err(from_client)
}

/// The client's error as this app reports it (the same words as before the client was shared).
fn from_client(e: chat_client::Error) -> Error {
    match e {
        chat_client::Error::Server { body, .. } => Error::Server(body),
        chat_client::Error::Transport { source, .. } => Error::Unreachable(source.to_string()),
        chat_client::Error::Status { status, .. }
        | chat_client::Error::UnexpectedStatus { status, .. } => {
            let status =
                StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
            Error::Protocol(format!("HTTP {status} without an error body"))
        }
        chat_client::Error::Decode { source, .. } => Error::Protocol(source.to_string()),
        chat_client::Error::BadBase(url) => Error::BadUrl(format!("bad request URL: {url}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let url = parse_server_url(" https://chat.example.org/ ").ok();
        assert_eq!(
            url.as_ref().map(display_url).as_deref(),
            Some("https://chat.example.org")
        );
        let api = url.and_then(|u| Api::new(u, None).ok());
        let ws = api.and_then(|a| a.ws_url().ok()).map(|u| u.to_string());
        assert_eq!(ws.as_deref(), Some("wss://chat.example.org/ws"));

        let prefixed = parse_server_url("http://127.0.0.1:8080/chat/").ok();
        let api = prefixed.and_then(|u| Api::new(u, None).ok());
        let ws = api.and_then(|a| a.ws_url().ok()).map(|u| u.to_string());
        assert_eq!(ws.as_deref(), Some("ws://127.0.0.1:8080/chat/ws"));

        for ok in [
            "http://localhost:8080",
            "http://127.1.2.3",
            "http://[::1]:8080",
        ] {
            assert!(parse_server_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://10.0.0.1:8080",
            "http://chat.example.com",
            "http://[fe80::1]",
        ] {
            assert!(
                matches!(parse_server_url(insecure), Err(Error::InsecureUrl(_))),
                "{insecure}"
            );
        }

        for bad in ["ftp://x", "not a url", "http://x/?a=1", "file:///etc"] {
            assert!(
                matches!(parse_server_url(bad), Err(Error::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
