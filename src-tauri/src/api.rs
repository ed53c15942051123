//! The REST client (`/api/v1/...`): typed requests over reqwest (rustls), with the server's
//! error bodies ([`ErrorBody`]) turned into [`Error::Server`] and transport failures into
//! [`Error::Unreachable`].

use crate::error::{Error, Result};
use crate::tls::{Fingerprint, Refusal, Tls};
use protocol::rest::{
    AuthResponse, ChangePassword, CreateRoom, Credentials, HistoryPage, Member, OpenDm, Room,
    SessionInfo, User, UserPublic, UserRef, Visibility,
};
use protocol::{ErrorBody, ErrorCode, RoomId, UserId};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Password hashing on a busy server can take a while; nothing else should.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
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
        Ok(Api {
            http,
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
        let mut url = self.url("ws")?;
        let scheme = if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        url.set_scheme(scheme)
            .map_err(|()| Error::BadUrl("cannot derive the socket URL".into()))?;
        Ok(url)
    }

    fn url(&self, path: &str) -> Result<Url> {
        let base = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{path}"))
            .map_err(|e| Error::BadUrl(format!("bad request URL: {e}")))
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> Result<RequestBuilder> {
        Ok(self.request_url(method, self.url(path)?, token))
    }

    fn request_url(&self, method: Method, url: Url, token: Option<&str>) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Checks that a chat server answers at the base URL: an unauthenticated `GET /api/v1/me`
    /// must be refused with the protocol's `unauthorized` error body.
    pub async fn probe(&self) -> Result<()> {
        let response = send(self.request(Method::GET, "api/v1/me", None)?)
            .await
            .map_err(|e| self.certificate_error(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) if status == StatusCode::UNAUTHORIZED && e.code == ErrorCode::Unauthorized => {
                Ok(())
            }
            _ => Err(Error::Unreachable(format!(
                "{} does not look like a chat server (HTTP {status})",
                display_url(&self.base)
            ))),
        }
    }

    pub async fn register(&self, creds: &Credentials) -> Result<AuthResponse> {
        json(
            self.request(Method::POST, "api/v1/register", None)?
                .json(creds),
        )
        .await
    }

    pub async fn login(&self, creds: &Credentials) -> Result<AuthResponse> {
        json(
            self.request(Method::POST, "api/v1/login", None)?
                .json(creds),
        )
        .await
    }

    /// Revokes the session of `token`.
    pub async fn logout(&self, token: &str) -> Result<()> {
        empty(self.request(Method::POST, "api/v1/logout", Some(token))?).await
    }

    /// Revokes every session of the account, this one included.
    pub async fn logout_all(&self, token: &str) -> Result<()> {
        empty(self.request(Method::POST, "api/v1/logout/all", Some(token))?).await
    }

    /// The account's live sessions, oldest first.
    pub async fn sessions(&self, token: &str) -> Result<Vec<SessionInfo>> {
        json(self.request(Method::GET, "api/v1/sessions", Some(token))?).await
    }

    /// Revokes one session of the account.
    pub async fn revoke_session(&self, token: &str, id: &str) -> Result<()> {
        let mut url = self.url("api/v1/sessions")?;
        url.path_segments_mut()
            .map_err(|()| Error::BadUrl("the server URL cannot have a path".into()))?
            .push(id);
        empty(self.request_url(Method::DELETE, url, Some(token))).await
    }

    /// Changes the password (`current` must be right); the server revokes every other session.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Result<()> {
        let body = ChangePassword {
            current: current.to_owned(),
            new: new.to_owned(),
        };
        empty(
            self.request(Method::POST, "api/v1/password", Some(token))?
                .json(&body),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Result<User> {
        json(self.request(Method::GET, "api/v1/me", Some(token))?).await
    }

    pub async fn user(&self, token: &str, user: UserId) -> Result<UserPublic> {
        json(self.request(Method::GET, &format!("api/v1/users/{user}"), Some(token))?).await
    }

    pub async fn rooms(&self, token: &str) -> Result<Vec<Room>> {
        json(self.request(Method::GET, "api/v1/rooms", Some(token))?).await
    }

    pub async fn room(&self, token: &str, room: RoomId) -> Result<Room> {
        json(self.request(Method::GET, &format!("api/v1/rooms/{room}"), Some(token))?).await
    }

    pub async fn public_rooms(&self, token: &str) -> Result<Vec<Room>> {
        json(self.request(Method::GET, "api/v1/rooms/public", Some(token))?).await
    }

    pub async fn create_room(
        &self,
        token: &str,
        name: &str,
        visibility: Visibility,
    ) -> Result<Room> {
        let body = CreateRoom {
            name: name.to_owned(),
            visibility,
        };
        json(
            self.request(Method::POST, "api/v1/rooms", Some(token))?
                .json(&body),
        )
        .await
    }

    pub async fn join(&self, token: &str, room: RoomId) -> Result<Room> {
        json(self.request(
            Method::POST,
            &format!("api/v1/rooms/{room}/join"),
            Some(token),
        )?)
        .await
    }

    pub async fn leave(&self, token: &str, room: RoomId) -> Result<()> {
        empty(self.request(
            Method::POST,
            &format!("api/v1/rooms/{room}/leave"),
            Some(token),
        )?)
        .await
    }

    pub async fn members(&self, token: &str, room: RoomId) -> Result<Vec<Member>> {
        json(self.request(
            Method::GET,
            &format!("api/v1/rooms/{room}/members"),
            Some(token),
        )?)
        .await
    }

    pub async fn search_users(&self, token: &str, query: &str) -> Result<Vec<UserPublic>> {
        json(
            self.request(Method::GET, "api/v1/users", Some(token))?
                .query(&[("q", query)]),
        )
        .await
    }

    pub async fn open_dm(&self, token: &str, user: UserId) -> Result<Room> {
        json(
            self.request(Method::POST, "api/v1/dms", Some(token))?
                .json(&OpenDm { user }),
        )
        .await
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
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        json(
            self.request(
                Method::GET,
                &format!("api/v1/rooms/{room}/events"),
                Some(token),
            )?
            .query(&query),
        )
        .await
    }

    pub async fn edit(&self, token: &str, room: RoomId, seq: u64, body: &str) -> Result<()> {
        #[derive(Serialize)]
        struct Edit<'a> {
            body: &'a str,
        }
        empty(
            self.request(
                Method::PATCH,
                &format!("api/v1/rooms/{room}/messages/{seq}"),
                Some(token),
            )?
            .json(&Edit { body }),
        )
        .await
    }

    pub async fn delete(&self, token: &str, room: RoomId, seq: u64) -> Result<()> {
        empty(self.request(
            Method::DELETE,
            &format!("api/v1/rooms/{room}/messages/{seq}"),
            Some(token),
        )?)
        .await
    }

    /// The owner renames the room and/or sets its topic (issue 13).
    pub async fn update_room(
        &self,
        token: &str,
        room: RoomId,
        update: &protocol::rest::UpdateRoom,
    ) -> Result<Room> {
        json(
            self.request(Method::PATCH, &format!("api/v1/rooms/{room}"), Some(token))?
                .json(update),
        )
        .await
    }

    /// The owner deletes the room.
    pub async fn delete_room(&self, token: &str, room: RoomId) -> Result<()> {
        empty(self.request(Method::DELETE, &format!("api/v1/rooms/{room}"), Some(token))?).await
    }

    /// The user's notification level for a room.
    pub async fn set_notify(
        &self,
        token: &str,
        room: RoomId,
        level: protocol::rest::NotifyLevel,
    ) -> Result<()> {
        empty(
            self.request(
                Method::PUT,
                &format!("api/v1/rooms/{room}/notify"),
                Some(token),
            )?
            .json(&protocol::rest::SetNotify { level }),
        )
        .await
    }

    /// Changes the user's profile (display name).
    pub async fn update_profile(
        &self,
        token: &str,
        update: &protocol::rest::UpdateProfile,
    ) -> Result<User> {
        json(
            self.request(Method::PATCH, "api/v1/me", Some(token))?
                .json(update),
        )
        .await
    }

    pub async fn set_read(&self, token: &str, room: RoomId, seq: u64) -> Result<()> {
        empty(
            self.request(
                Method::PUT,
                &format!("api/v1/rooms/{room}/read"),
                Some(token),
            )?
            .json(&protocol::rest::ReadMarker { seq }),
        )
        .await
    }
}

// Moderation (protocol §2.9): bans of a room, the account's blocks.
impl Api {
    /// Bans (`true`) or unbans `user` from `room`.
    pub async fn set_ban(&self, token: &str, room: RoomId, user: UserId, ban: bool) -> Result<()> {
        let method = if ban { Method::PUT } else { Method::DELETE };
        let path = format!("api/v1/rooms/{room}/bans/{user}");
        empty(self.request(method, &path, Some(token))?).await
    }

    pub async fn bans(&self, token: &str, room: RoomId) -> Result<Vec<UserRef>> {
        let path = format!("api/v1/rooms/{room}/bans");
        json(self.request(Method::GET, &path, Some(token))?).await
    }

    /// Blocks (`true`) or unblocks `user`.
    pub async fn set_block(&self, token: &str, user: UserId, block: bool) -> Result<()> {
        let method = if block { Method::PUT } else { Method::DELETE };
        empty(self.request(method, &format!("api/v1/blocks/{user}"), Some(token))?).await
    }

    pub async fn blocks(&self, token: &str) -> Result<Vec<UserRef>> {
        json(self.request(Method::GET, "api/v1/blocks", Some(token))?).await
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
        let path = format!("api/v1/rooms/{room}/attachments");
        json(
            self.request(Method::POST, &path, Some(token))?
                .query(&[("name", name)])
                .header(reqwest::header::CONTENT_LENGTH, len)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .timeout(transfer_timeout(len))
                .body(body),
        )
        .await
    }

    /// Starts downloading attachment `id` (its thumbnail with `thumbnail`); read the body
    /// with [`Response::chunk`]. Refusals (`attachment_not_found`) are [`Error::Server`].
    pub async fn download(&self, token: &str, id: &str, thumbnail: bool) -> Result<Response> {
        let mut url = self.url("api/v1/attachments")?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::BadUrl("the server URL cannot have a path".into()))?;
            segments.push(id);
            if thumbnail {
                segments.push("thumbnail");
            }
        }
        checked(
            self.request_url(Method::GET, url, Some(token))
                .timeout(transfer_timeout(MAX_DOWNLOAD_GUESS)),
        )
        .await
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
    response.chunk().await.map_err(transport)
}

fn transport(e: reqwest::Error) -> Error {
    Error::Unreachable(e.to_string())
}

async fn send(request: RequestBuilder) -> Result<Response> {
    request.send().await.map_err(transport)
}

/// Sends; a non-success status becomes the server's error (or a protocol error when the body
/// is not an [`ErrorBody`]).
async fn checked(request: RequestBuilder) -> Result<Response> {
    let response = send(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.map_err(transport)?;
    Err(match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(body) => Error::Server(body),
        Err(_) => Error::Protocol(format!("HTTP {status} without an error body")),
    })
}

async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T> {
    let response = checked(request).await?;
    let body = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
}

async fn empty(request: RequestBuilder) -> Result<()> {
    checked(request).await.map(drop)
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
