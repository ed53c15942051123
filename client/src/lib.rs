//! A typed async client of the chat server's REST API (`/api/v1/...`, docs/protocol.md §2),
//! over reqwest and the [`protocol`] crate's types.
//!
//! One [`Client`] talks to one server, optionally as one session (its bearer token); cloning is
//! cheap (the connection pool is shared). Every method is one endpoint. A refusal with the
//! server's error body is [`Error::Server`] (its [`ErrorBody`] decoded); everything else that
//! can go wrong has its own variant, so callers decide what to retry.
//!
//! Used by the desktop app (src-tauri/src/api.rs wraps it with its TLS trust), the server's
//! and the desktop's integration tests, the fault campaign and the benchmark. Tests that send
//! malformed requests build them with [`Client::request`].

use protocol::rest::{
    AdminUser, AdminUsersQuery, AuthResponse, ChangePassword, CreateRoom, CreateUser, Credentials,
    EditMessage, HistoryPage, HistoryQuery, Invite, InviteCode, Member, NewInviteCode, NotifyLevel,
    OpenDm, PublicRoomsQuery, ReadMarker, ResetPassword, Room, SendAck, SendMessage, SessionInfo,
    SetNotify, UpdateProfile, UpdateRoom, UpdateUser, User, UserPublic, UserRef, Visibility,
};
use protocol::{Attachment, ErrorBody, ErrorCode, RoomEvent, RoomId, UserId};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

pub use reqwest;

mod accounts;
mod admin;
mod attachments;

pub use attachments::next_chunk;

/// The time limit of a [`Client::new`] client's requests (password hashing on a busy server
/// can take a while).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request with its error body (docs/protocol.md §2.1).
    #[error("{call}: HTTP {status} {}: {}", body.code, body.message)]
    Server {
        call: Call,
        status: u16,
        body: ErrorBody,
    },
    /// A non-success status without the protocol's error body (a proxy's error page, an old
    /// server). `text` is the body as received.
    #[error("{call}: HTTP {status} without an error body: {}", excerpt(text))]
    Status {
        call: Call,
        status: u16,
        text: String,
    },
    /// A success whose status is not the documented one (only with [`Client::strict`]).
    #[error("{call}: HTTP {status}, documented {expected}: {}", excerpt(text))]
    UnexpectedStatus {
        call: Call,
        status: u16,
        expected: u16,
        text: String,
    },
    /// A success whose body is not the documented type.
    #[error(
        "{call}: HTTP {status} body does not parse: {source}: {}",
        excerpt(text)
    )]
    Decode {
        call: Call,
        status: u16,
        text: String,
        #[source]
        source: serde_json::Error,
    },
    /// The request did not complete: connection refused, TLS, timeout, a body cut short.
    #[error("{call}: {source}")]
    Transport {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    /// The base URL cannot carry a path (e.g. `data:` or `mailto:`).
    #[error("{0} cannot be a base URL")]
    BadBase(String),
}

/// The request a failure belongs to: method and path (no query, no token, no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub path: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// At most 200 characters of a body, for messages.
fn excerpt(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Server { status, .. }
            | Error::Status { status, .. }
            | Error::UnexpectedStatus { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            Error::Transport { source, .. } => source.status().map(|s| s.as_u16()),
            Error::BadBase(_) => None,
        }
    }

    /// The protocol's error code, when the server refused with its error body.
    pub fn code(&self) -> Option<ErrorCode> {
        self.body().map(|b| b.code)
    }

    /// The server's error body, when it refused with one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Error::Server { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The request that failed (none for [`Error::BadBase`]).
    pub fn call(&self) -> Option<&Call> {
        match self {
            Error::Server { call, .. }
            | Error::Status { call, .. }
            | Error::UnexpectedStatus { call, .. }
            | Error::Decode { call, .. }
            | Error::Transport { call, .. } => Some(call),
            Error::BadBase(_) => None,
        }
    }

    /// True when the server never answered (worth retrying, perhaps elsewhere).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client of one server, as one session when it has a token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    strict: bool,
}

impl Client {
    /// A client of the server at `base` (`http(s)://host[:port][/prefix]`) with its own
    /// connection pool and a [`DEFAULT_TIMEOUT`] per request.
    pub fn new(base: &str) -> Result<Client> {
        let base = Url::parse(base).map_err(|e| Error::BadBase(format!("{base} ({e})")))?;
        let http = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| Error::BadBase(format!("{base} (cannot set up HTTP: {e})")))?;
        Client::with_http(http, base)
    }

    /// A client of the server at `base` over a ready `http` client (its TLS trust, time
    /// limits, user agent and proxy settings are used as they are).
    pub fn with_http(http: reqwest::Client, base: Url) -> Result<Client> {
        if base.cannot_be_a_base() {
            return Err(Error::BadBase(base.to_string()));
        }
        Ok(Client {
            http,
            base,
            token: None,
            strict: false,
        })
    }

    /// The same server as the session of `token`.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same server without a session.
    pub fn without_token(&self) -> Client {
        Client {
            token: None,
            ..self.clone()
        }
    }

    /// This client also refuses success statuses other than the documented ones
    /// ([`Error::UnexpectedStatus`]): for conformance tests.
    pub fn strict(mut self) -> Client {
        self.strict = true;
        self
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of `segments` under the base (each segment percent-encoded).
    pub fn url<S: AsRef<str>>(&self, segments: impl IntoIterator<Item = S>) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            // Checked at construction: the base can carry a path.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request to `path` (`/api/v1/...`, appended to the base's path as it is: no
    /// encoding) with this client's token: for requests no method covers, and for tests
    /// that send what a well-behaved client never would.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let base = self.base.as_str().trim_end_matches('/');
        self.authorized(self.http.request(method, format!("{base}{path}")))
    }

    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn api(&self, method: Method, segments: &[&str]) -> Req {
        let url = self.url(["api", "v1"].iter().chain(segments));
        let call = Call {
            method: method.clone(),
            path: url.path().to_owned(),
        };
        Req {
            builder: self.authorized(self.http.request(method, url)),
            call,
            strict: self.strict,
        }
    }
}

/// One request on its way, with what its failure is to name.
struct Req {
    builder: RequestBuilder,
    call: Call,
    strict: bool,
}

impl Req {
    fn map(mut self, f: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Req {
        self.builder = f(self.builder);
        self
    }

    fn json(self, body: &impl Serialize) -> Req {
        self.map(|b| b.json(body))
    }

    fn query(self, query: &impl Serialize) -> Req {
        self.map(|b| b.query(query))
    }

    /// Sends; a non-success status becomes the server's error.
    async fn send(self, expected: u16) -> Result<(Response, Call)> {
        let response = match self.builder.send().await {
            Ok(response) => response,
            Err(source) => {
                return Err(Error::Transport {
                    call: self.call,
                    source,
                })
            }
        };
        let status = response.status();
        if status.is_success() {
            if self.strict && status.as_u16() != expected {
                let text = response.text().await.unwrap_or_default();
                return Err(Error::UnexpectedStatus {
                    call: self.call,
                    status: status.as_u16(),
                    expected,
                    text,
                });
            }
            return Ok((response, self.call));
        }
        Err(refusal(self.call, status, response).await)
    }

    async fn json_answer<T: DeserializeOwned>(self, expected: u16) -> Result<T> {
        let (response, call) = self.send(expected).await?;
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(source) => return Err(Error::Transport { call, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            call,
            status,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            source,
        })
    }

    async fn empty_answer(self) -> Result<()> {
        self.send(204).await.map(drop)
    }
}

/// The error of a non-success answer.
async fn refusal(call: Call, status: StatusCode, response: Response) -> Error {
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(source) => return Error::Transport { call, source },
    };
    let status = status.as_u16();
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Error::Server { call, status, body },
        Err(_) => Error::Status {
            call,
            status,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        },
    }
}

// Rooms and membership (docs/protocol.md §2.5).
impl Client {
    /// The rooms of this user.
    pub async fn my_rooms(&self) -> Result<Vec<Room>> {
        self.api(Method::GET, &["rooms"]).json_answer(200).await
    }

    /// The first page of public rooms.
    pub async fn public_rooms(&self) -> Result<Vec<Room>> {
        self.public_rooms_page(&PublicRoomsQuery::default()).await
    }

    /// One page of public rooms (a name filter, after an id, a page size).
    pub async fn public_rooms_page(&self, query: &PublicRoomsQuery) -> Result<Vec<Room>> {
        self.api(Method::GET, &["rooms", "public"])
            .query(query)
            .json_answer(200)
            .await
    }

    pub async fn create_room(&self, name: &str, visibility: Visibility) -> Result<Room> {
        let body = CreateRoom {
            name: name.to_owned(),
            visibility,
        };
        self.api(Method::POST, &["rooms"])
            .json(&body)
            .json_answer(201)
            .await
    }

    pub async fn get_room(&self, room: RoomId) -> Result<Room> {
        self.api(Method::GET, &["rooms", &room.to_string()])
            .json_answer(200)
            .await
    }

    /// The owner renames the room and/or sets its topic.
    pub async fn update_room(&self, room: RoomId, update: &UpdateRoom) -> Result<Room> {
        self.api(Method::PATCH, &["rooms", &room.to_string()])
            .json(update)
            .json_answer(200)
            .await
    }

    /// The owner deletes the room.
    pub async fn delete_room(&self, room: RoomId) -> Result<()> {
        self.api(Method::DELETE, &["rooms", &room.to_string()])
            .empty_answer()
            .await
    }

    /// This user's notification level for a room.
    pub async fn set_notify(&self, room: RoomId, level: NotifyLevel) -> Result<()> {
        self.api(Method::PUT, &["rooms", &room.to_string(), "notify"])
            .json(&SetNotify { level })
            .empty_answer()
            .await
    }

    pub async fn join(&self, room: RoomId) -> Result<Room> {
        self.api(Method::POST, &["rooms", &room.to_string(), "join"])
            .json_answer(200)
            .await
    }

    pub async fn leave(&self, room: RoomId) -> Result<()> {
        self.api(Method::POST, &["rooms", &room.to_string(), "leave"])
            .empty_answer()
            .await
    }

    pub async fn members(&self, room: RoomId) -> Result<Vec<Member>> {
        self.api(Method::GET, &["rooms", &room.to_string(), "members"])
            .json_answer(200)
            .await
    }

    pub async fn invite(&self, room: RoomId, user: UserId) -> Result<()> {
        self.api(Method::POST, &["rooms", &room.to_string(), "members"])
            .json(&Invite { user })
            .empty_answer()
            .await
    }

    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let (room, user) = (room.to_string(), user.to_string());
        self.api(Method::DELETE, &["rooms", &room, "members", &user])
            .empty_answer()
            .await
    }

    /// Opens (or gets) the direct room with `user`.
    pub async fn open_dm(&self, user: UserId) -> Result<Room> {
        self.api(Method::POST, &["dms"])
            .json(&OpenDm { user })
            .json_answer(200)
            .await
    }
}

// Messages, history and read markers (docs/protocol.md §2.6).
impl Client {
    /// One page of a room's events: `before` pages back (the newest page when both are
    /// `None`), `after` pages forward; `limit` defaults to the server's (50).
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<HistoryPage> {
        let query = HistoryQuery {
            before,
            after,
            limit,
        };
        self.api(Method::GET, &["rooms", &room.to_string(), "events"])
            .query(&query)
            .json_answer(200)
            .await
    }

    /// Every event of the room the server keeps, paging forward from the start.
    pub async fn all_events(&self, room: RoomId) -> Result<Vec<RoomEvent>> {
        let mut events: Vec<RoomEvent> = Vec::new();
        loop {
            let after = events.last().map(|e| e.seq).unwrap_or(0);
            let page = self.history(room, None, Some(after), Some(100)).await?;
            let done = !page.has_more || page.events.is_empty();
            events.extend(page.events);
            if done {
                return Ok(events);
            }
        }
    }

    /// Sends a text message with client id `id` (the idempotency key).
    pub async fn send(&self, room: RoomId, id: &str, body: &str) -> Result<SendAck> {
        self.send_message(
            room,
            &SendMessage {
                id: id.to_owned(),
                body: body.to_owned(),
                reply_to: None,
                mentions: Vec::new(),
                mention_room: false,
                attachments: Vec::new(),
            },
        )
        .await
    }

    /// Sends a message with every field (a reply, mentions, attachments).
    pub async fn send_message(&self, room: RoomId, message: &SendMessage) -> Result<SendAck> {
        self.api(Method::POST, &["rooms", &room.to_string(), "messages"])
            .json(message)
            .json_answer(200)
            .await
    }

    pub async fn edit(&self, room: RoomId, seq: u64, body: &str) -> Result<()> {
        let (room, seq) = (room.to_string(), seq.to_string());
        self.api(Method::PATCH, &["rooms", &room, "messages", &seq])
            .json(&EditMessage {
                body: body.to_owned(),
            })
            .empty_answer()
            .await
    }

    pub async fn delete_message(&self, room: RoomId, seq: u64) -> Result<()> {
        let (room, seq) = (room.to_string(), seq.to_string());
        self.api(Method::DELETE, &["rooms", &room, "messages", &seq])
            .empty_answer()
            .await
    }

    /// Adds (`true`) or takes back this user's reaction `emoji` to a message.
    pub async fn react(&self, room: RoomId, seq: u64, emoji: &str, add: bool) -> Result<()> {
        let method = if add { Method::PUT } else { Method::DELETE };
        let (room, seq) = (room.to_string(), seq.to_string());
        self.api(
            method,
            &["rooms", &room, "messages", &seq, "reactions", emoji],
        )
        .empty_answer()
        .await
    }

    /// Moves this user's read marker of `room` to `seq`.
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<()> {
        self.api(Method::PUT, &["rooms", &room.to_string(), "read"])
            .json(&ReadMarker { seq })
            .empty_answer()
            .await
    }
}

// Moderation (docs/protocol.md §2.9).
impl Client {
    /// The users banned from `room` (its owner only).
    pub async fn bans(&self, room: RoomId) -> Result<Vec<UserRef>> {
        self.api(Method::GET, &["rooms", &room.to_string(), "bans"])
            .json_answer(200)
            .await
    }

    /// Bans (`true`) or unbans `user` from `room`.
    pub async fn set_ban(&self, room: RoomId, user: UserId, ban: bool) -> Result<()> {
        let method = if ban { Method::PUT } else { Method::DELETE };
        let (room, user) = (room.to_string(), user.to_string());
        self.api(method, &["rooms", &room, "bans", &user])
            .empty_answer()
            .await
    }

    /// The users this user blocked.
    pub async fn blocks(&self) -> Result<Vec<UserRef>> {
        self.api(Method::GET, &["blocks"]).json_answer(200).await
    }

    /// Blocks (`true`) or unblocks `user`.
    pub async fn set_block(&self, user: UserId, block: bool) -> Result<()> {
        let method = if block { Method::PUT } else { Method::DELETE };
        self.api(method, &["blocks", &user.to_string()])
            .empty_answer()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let client = Client::new("https://chat.example.org/chat/").unwrap();
        assert_eq!(
            client.url(["api", "v1", "sessions", "a/b c"]).as_str(),
            "https://chat.example.org/chat/api/v1/sessions/a%2Fb%20c"
        );
        let client = Client::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            client.url(["api", "v1", "me"]).as_str(),
            "http://127.0.0.1:8080/api/v1/me"
        );
        assert_eq!(
            client
                .request(Method::GET, "/healthz")
                .build()
                .unwrap()
                .url()
                .as_str(),
            "http://127.0.0.1:8080/healthz"
        );
        assert!(matches!(
            Client::new("mailto:someone@example.org"),
            Err(Error::BadBase(_))
        ));
    }

    #[test]
    fn excerpts_are_short_and_cut_on_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(300);
        assert_eq!(excerpt(&long).chars().count(), 200);
    }
}
