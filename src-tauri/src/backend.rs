//! The app core, independent of Tauri: it owns the cache, the token store, the REST client and
//! the connection, implements every IPC command ([`protocol::ipc::Command`]) and reports what
//! happens through an [`EventSink`] (the Tauri emitter in the app, a channel in tests).
//!
//! Data flow: commands read the cache (instant, works offline) and call the server over REST;
//! the socket feeds room events into the cache ([`Inner::on_frame`]), and every change the UI
//! should see goes out as an [`AppEvent`]. Messages go through the outbox (see [`crate::outbox`]).

use crate::api::{self, Api};
use crate::cache::{Applied, Cache, DEFAULT_KEEP_PER_ROOM};
use crate::connection::{Connection, Handler, Link, Timing, WsConnector};
use crate::credentials::{self, TokenStore};
use crate::error::{Error, Result};
use crate::outbox::SendState;
use protocol::event::EventBody;
use protocol::ipc::{
    AppEvent, Command, ConnectionState, MemberView, MessagePage, MessageView, RoomView, SearchHit,
    Settings, Snapshot, UserView,
};
use protocol::limits::Limits;
use protocol::rest::{AuthResponse, Credentials, Room, User, Visibility};
use protocol::ws::{ClientFrame, GapReason};
use protocol::{validate, ErrorCode, RoomEvent, RoomId, ServerFrame, UserId};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Where the backend reports to. Implementations must not block.
pub trait EventSink: Send + Sync + 'static {
    /// An event for the UI (emitted as [`protocol::ipc::EVENT`]).
    fn emit(&self, event: AppEvent);
    /// A desktop notification for a new message the user is not looking at.
    fn notify(&self, title: &str, body: &str);
    /// The total unread count changed (tray tooltip/title).
    fn unread_changed(&self, total: u64);
}

/// How to build a [`Backend`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The SQLite cache file (created if missing).
    pub cache_path: PathBuf,
    /// Retention: messages kept per room in the cache.
    pub keep_per_room: u32,
    pub timing: Timing,
    /// The session label sent at login (shown in the server's session list).
    pub device: String,
}

impl Options {
    pub fn new(cache_path: impl Into<PathBuf>) -> Self {
        Options {
            cache_path: cache_path.into(),
            keep_per_room: DEFAULT_KEEP_PER_ROOM,
            timing: Timing::default(),
            device: format!("Desktop ({})", std::env::consts::OS),
        }
    }
}

/// Settings keys in the cache's `settings` table.
mod key {
    pub const SERVER_URL: &str = "server_url";
    /// The last username used (prefills the login form).
    pub const USERNAME: &str = "username";
    /// The logged-in user (JSON); present while a token should be in the keychain.
    pub const USER: &str = "user";
    /// `"<server url>|<user id>|<created_ts>"` whose data the cache holds; another account
    /// clears it.
    pub const ACCOUNT: &str = "account";
    pub const SETTINGS: &str = "settings";
    pub const LIMITS: &str = "limits";
}

/// Messages per page unless the UI asks otherwise, and the most it may ask for.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
/// History pages fetched from the server per `messages` call, at most.
const MAX_FETCHES: usize = 5;
/// Typing notices sent at most this often per room (the server ignores faster repeats).
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Rooms without a cached message whose newest page is fetched after `welcome`, at most, and
/// the size of that page (the preview line, and the first screen when the room opens).
const PREVIEW_ROOMS: usize = 200;
const PREVIEW_PAGE: u32 = 20;
/// Local search results returned at most.
const SEARCH_LIMIT: u32 = 100;

fn default_settings() -> Settings {
    Settings {
        start_minimized: false,
        notifications: true,
    }
}

/// The logged-in account.
#[derive(Debug, Clone)]
struct Session {
    user: User,
    token: String,
    /// Keychain account key.
    account: String,
}

struct State {
    api: Option<Api>,
    session: Option<Session>,
    connection: Option<Connection>,
    connection_state: ConnectionState,
    /// After `ready`: events are live (notify about them).
    live: bool,
    last_username: Option<String>,
    limits: Limits,
    settings: Settings,
    focus: Option<RoomId>,
    window_focused: bool,
    typing_sent: HashMap<RoomId, Instant>,
    /// The server's store lost data: the next `hello` sends no resume cursors (until a
    /// `welcome` has re-synced the rooms), even if the cache could not drop them.
    resume_blocked: bool,
}

/// The app core. Dropping it stops the connection; [`Backend::shutdown`] also waits for it.
pub struct Backend {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    me: Weak<Inner>,
    pub(crate) cache: Cache,
    tokens: Arc<dyn TokenStore>,
    sink: Arc<dyn EventSink>,
    options: Options,
    pub(crate) link: Link,
    /// Serializes outbox sends so messages leave in the order they were written.
    pub(crate) sending: tokio::sync::Mutex<SendState>,
    state: Mutex<State>,
}

impl Backend {
    /// Opens the cache and, when a session is remembered and its token is in the store,
    /// connects.
    pub async fn open(
        options: Options,
        tokens: Arc<dyn TokenStore>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Backend> {
        let cache = Cache::open(&options.cache_path, options.keep_per_room).await?;
        let settings = cache
            .json_setting::<Settings>(key::SETTINGS)
            .await?
            .unwrap_or_else(default_settings);
        let limits = cache
            .json_setting::<Limits>(key::LIMITS)
            .await?
            .unwrap_or_default();
        let api = match cache.setting(key::SERVER_URL).await? {
            Some(url) => match api::parse_server_url(&url).and_then(Api::new) {
                Ok(api) => Some(api),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the stored server URL");
                    None
                }
            },
            None => None,
        };
        let last_username = cache.setting(key::USERNAME).await?;
        let user = cache.json_setting::<User>(key::USER).await?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            cache,
            tokens,
            sink,
            options,
            link: Link::default(),
            sending: tokio::sync::Mutex::new(SendState::default()),
            state: Mutex::new(State {
                api,
                session: None,
                connection: None,
                connection_state: ConnectionState::Offline,
                live: false,
                last_username,
                limits,
                settings,
                focus: None,
                window_focused: true,
                typing_sent: HashMap::new(),
                resume_blocked: false,
            }),
        });
        let backend = Backend { inner };
        if let Some(user) = user {
            backend.inner.resume_session(user).await?;
        }
        Ok(backend)
    }

    /// Stops the connection (waiting for it) and closes the cache.
    pub async fn shutdown(self) {
        let connection = self.inner.lock().connection.take();
        if let Some(connection) = connection {
            connection.stopped().await;
        }
        self.inner.cache.close().await;
    }

    /// The window gained or lost focus (notifications are shown only when it matters).
    pub fn set_window_focused(&self, focused: bool) {
        self.inner.lock().window_focused = focused;
    }

    /// The app settings (also needed by the shell before the UI asks, e.g. start minimized).
    pub fn settings(&self) -> Settings {
        self.inner.lock().settings.clone()
    }

    /// Skips a pending reconnect wait.
    pub fn reconnect_now(&self) {
        if let Some(c) = &self.inner.lock().connection {
            c.reconnect_now();
        }
    }

    /// The cache (for tests and diagnostics).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Runs one IPC command and returns its result as JSON (the same value the Tauri command
    /// returns). The Tauri commands call the typed methods directly; this exists so every
    /// [`Command`] has exactly one implementation that can be driven from tests.
    pub async fn execute(&self, command: Command) -> Result<Value> {
        fn json<T: serde::Serialize>(v: T) -> Result<Value> {
            serde_json::to_value(v).map_err(|e| Error::Invalid(e.to_string()))
        }
        match command {
            Command::Snapshot => json(self.snapshot()),
            Command::SetServer { url } => json(self.set_server(&url).await?),
            Command::Register { username, password } => {
                json(self.register(&username, &password).await?)
            }
            Command::Login { username, password } => json(self.login(&username, &password).await?),
            Command::Logout => json(self.logout().await?),
            Command::Unsent => json(self.unsent().await?),
            Command::ReconnectNow => {
                self.reconnect_now();
                Ok(Value::Null)
            }
            Command::Rooms => json(self.rooms().await?),
            Command::Messages {
                room,
                before,
                limit,
            } => json(self.messages(room, before, limit).await?),
            Command::Send { room, body } => json(self.send(room, &body).await?),
            Command::Retry { client_id } => json(self.retry(&client_id).await?),
            Command::Discard { client_id } => json(self.discard(&client_id).await?),
            Command::Edit { room, seq, body } => json(self.edit(room, seq, &body).await?),
            Command::Delete { room, seq } => json(self.delete(room, seq).await?),
            Command::MarkRead { room, seq } => json(self.mark_read(room, seq).await?),
            Command::Typing { room } => json(self.typing(room)?),
            Command::CreateRoom { name, visibility } => {
                json(self.create_room(&name, visibility).await?)
            }
            Command::PublicRooms => json(self.public_rooms().await?),
            Command::JoinRoom { room } => json(self.join_room(room).await?),
            Command::LeaveRoom { room } => json(self.leave_room(room).await?),
            Command::Members { room } => json(self.members(room).await?),
            Command::SearchUsers { query } => json(self.search_users(&query).await?),
            Command::OpenDm { user } => json(self.open_dm(user).await?),
            Command::Search { query } => json(self.search(&query).await?),
            Command::GetDraft { room } => json(self.get_draft(room).await?),
            Command::SetDraft { room, text } => json(self.set_draft(room, &text).await?),
            Command::SetFocus { room } => {
                self.set_focus(room);
                Ok(Value::Null)
            }
            Command::GetSettings => json(self.get_settings()),
            Command::SetSettings { settings } => json(self.set_settings(settings).await?),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Server and account
    // -----------------------------------------------------------------------------------------

    pub fn snapshot(&self) -> Snapshot {
        let state = self.inner.lock();
        Snapshot {
            server_url: state.api.as_ref().map(|a| api::display_url(a.base())),
            username: state.last_username.clone(),
            user: state.session.as_ref().map(|s| s.user.clone()),
            connection: state.connection_state.clone(),
            limits: state.limits.clone(),
        }
    }

    /// Checks that a chat server answers at `url` and remembers it.
    pub async fn set_server(&self, url: &str) -> Result<()> {
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
        let api = Api::new(base)?;
        api.probe().await?;
        self.inner
            .cache
            .set_setting(key::SERVER_URL, &api::display_url(api.base()))
            .await?;
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
    /// keychain and empties the cache, unsent messages included (see [`Backend::unsent`]).
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
        if let Some(session) = session {
            let account = session.account.clone();
            credentials::blocking(&self.inner.tokens, move |t| t.delete(&account)).await?;
        }
        self.inner.cache.clear_account().await?;
        self.inner.cache.delete_setting(key::USER).await?;
        self.inner.cache.delete_setting(key::ACCOUNT).await?;
        self.inner.set_connection_state(ConnectionState::Offline);
        self.inner.sink.emit(AppEvent::RoomsChanged);
        self.inner.sink.unread_changed(0);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Rooms
    // -----------------------------------------------------------------------------------------

    /// The room list from the cache, most recently active first.
    pub async fn rooms(&self) -> Result<Vec<RoomView>> {
        let cache = &self.inner.cache;
        let mut views = Vec::new();
        for cached in cache.rooms().await? {
            let last_message = cache.last_message(cached.room.id).await?;
            let peer_online = match cached.room.peer {
                Some(peer) => cache.online(peer).await?,
                None => None,
            };
            // Every event from the start is cached (`complete_from` 0 or 1) and none is a message.
            let no_messages =
                last_message.is_none() && cached.complete_from.is_some_and(|from| from <= 1);
            views.push(RoomView {
                room: cached.room,
                last_message,
                peer_online,
                no_messages,
            });
        }
        Ok(views)
    }

    pub async fn create_room(&self, name: &str, visibility: Visibility) -> Result<Room> {
        validate::room_name(name)?;
        let (api, token) = self.inner.authed()?;
        let room = self
            .inner
            .checked(api.create_room(&token, name, visibility).await)
            .await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    pub async fn public_rooms(&self) -> Result<Vec<Room>> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.public_rooms(&token).await).await
    }

    pub async fn join_room(&self, room: RoomId) -> Result<Room> {
        let (api, token) = self.inner.authed()?;
        let room = self.inner.checked(api.join(&token, room).await).await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    pub async fn leave_room(&self, room: RoomId) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.leave(&token, room).await).await?;
        self.inner.cache.remove_room(room).await?;
        self.inner.rooms_changed().await;
        Ok(())
    }

    pub async fn open_dm(&self, user: UserId) -> Result<Room> {
        let (api, token) = self.inner.authed()?;
        let room = self.inner.checked(api.open_dm(&token, user).await).await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    /// Members from the server (refreshing the cache), or from the cache when offline.
    pub async fn members(&self, room: RoomId) -> Result<Vec<MemberView>> {
        let (api, token) = self.inner.authed()?;
        match self.inner.checked(api.members(&token, room).await).await {
            Ok(members) => self.inner.cache.set_members(room, &members).await?,
            Err(Error::Unreachable(e)) => {
                tracing::debug!(error = %e, "members from the cache (server unreachable)");
            }
            Err(e) => return Err(e),
        }
        self.inner.cache.members(room).await
    }

    pub async fn search_users(&self, query: &str) -> Result<Vec<UserView>> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let (api, token) = self.inner.authed()?;
        let users = self
            .inner
            .checked(api.search_users(&token, query).await)
            .await?;
        Ok(users
            .into_iter()
            .map(|u| UserView {
                id: u.id,
                username: u.username,
                online: u.online,
                last_seen: u.last_seen,
            })
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // Messages
    // -----------------------------------------------------------------------------------------

    /// A page of messages ending before `before` (the newest page when `None`, followed by the
    /// room's outbox entries). Served from the cache when it holds the range without holes;
    /// otherwise older pages come from the server and are cached.
    pub async fn messages(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagePage> {
        self.inner.messages(room, before, limit).await
    }

    /// Writes a message to the outbox and sends it when online. Returns it as pending.
    pub async fn send(&self, room: RoomId, body: &str) -> Result<MessageView> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to send messages"))?;
        let max = self.inner.lock().limits.max_message_bytes;
        validate::message_body(body, max)?;
        let entry = crate::outbox::enqueue(&self.inner, room, body).await?;
        Ok(entry.view(&me))
    }

    /// Sends a failed message again.
    pub async fn retry(&self, client_id: &str) -> Result<()> {
        let me = self
            .inner
            .me()
            .ok_or(Error::NotLoggedIn("log in to send messages"))?;
        let entry = crate::outbox::retry(&self.inner, client_id).await?;
        self.inner.sink.emit(AppEvent::Message {
            message: entry.view(&me),
        });
        Ok(())
    }

    /// Drops a failed or pending message. (A pending one already on the wire may still
    /// arrive; it then shows up as a normal message.)
    pub async fn discard(&self, client_id: &str) -> Result<()> {
        if !self.inner.cache.outbox_discard(client_id).await? {
            return Err(Error::Invalid("no such message in the outbox".into()));
        }
        Ok(())
    }

    pub async fn edit(&self, room: RoomId, seq: u64, body: &str) -> Result<()> {
        let max = self.inner.lock().limits.max_message_bytes;
        validate::message_body(body, max)?;
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.edit(&token, room, seq, body).await)
            .await
    }

    pub async fn delete(&self, room: RoomId, seq: u64) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.delete(&token, room, seq).await)
            .await
    }

    /// Moves the read marker forward; the server is told now when online, else on connect.
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<()> {
        let me = self.inner.me().ok_or(Error::NotLoggedIn("log in first"))?;
        let cache = &self.inner.cache;
        if !cache.set_read(room, seq, false, me.id).await? {
            return Ok(());
        }
        if self.inner.link.send(ClientFrame::Read { room, seq }) {
            cache.read_marker_synced(room, seq).await?;
        }
        self.inner.rooms_changed().await;
        Ok(())
    }

    /// Tells the room that the user is typing (at most every 2 s per room; dropped offline).
    pub fn typing(&self, room: RoomId) -> Result<()> {
        {
            let mut state = self.inner.lock();
            let now = Instant::now();
            if state
                .typing_sent
                .get(&room)
                .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
            {
                return Ok(());
            }
            state.typing_sent.insert(room, now);
        }
        self.inner.link.send(ClientFrame::Typing { room });
        Ok(())
    }

    /// Full-text search over the cached messages, newest first.
    pub async fn search(&self, query: &str) -> Result<Vec<SearchHit>> {
        self.inner.cache.search(query, SEARCH_LIMIT).await
    }

    // -----------------------------------------------------------------------------------------
    // Drafts, focus, settings
    // -----------------------------------------------------------------------------------------

    pub async fn get_draft(&self, room: RoomId) -> Result<String> {
        self.inner.cache.draft(room).await
    }

    pub async fn set_draft(&self, room: RoomId, text: &str) -> Result<()> {
        self.inner.cache.set_draft(room, text).await
    }

    pub fn set_focus(&self, room: Option<RoomId>) {
        self.inner.lock().focus = room;
    }

    pub fn get_settings(&self) -> Settings {
        self.settings()
    }

    pub async fn set_settings(&self, settings: Settings) -> Result<()> {
        self.inner
            .cache
            .set_json_setting(key::SETTINGS, &settings)
            .await?;
        self.inner.lock().settings = settings;
        Ok(())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // The connection task holds the core alive; stop it so both go away.
        if let Ok(state) = self.inner.state.lock() {
            if let Some(connection) = &state.connection {
                connection.stop();
            }
        }
    }
}

/// A history event as a message view, when it is a message.
fn message_view(event: &RoomEvent) -> Option<MessageView> {
    match &event.event {
        EventBody::Message {
            id,
            sender,
            sender_name,
            body,
            edited_ts,
            deleted,
        } => Some(MessageView {
            room: event.room,
            seq: Some(event.seq),
            client_id: id.clone(),
            sender: *sender,
            sender_name: sender_name.clone(),
            body: body.clone(),
            ts: event.ts,
            edited: edited_ts.is_some(),
            deleted: *deleted,
            status: protocol::ipc::MessageStatus::Sent,
        }),
        _ => None,
    }
}

impl Inner {
    /// A page of messages ending before `before` (the newest page when `None`, followed by the
    /// room's outbox entries). Served from the cache when it holds the range without holes;
    /// otherwise older pages come from the server and are cached.
    async fn messages(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagePage> {
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let cache = &self.cache;
        let cached = cache.room(room).await?;
        let upper = before.unwrap_or(u64::MAX);
        // Lower end of the hole-free range; nothing below it is trusted.
        let complete_from = cached
            .as_ref()
            .and_then(|c| c.complete_from)
            .unwrap_or(u64::MAX);
        let mut messages = if complete_from < upper {
            cache.messages(room, complete_from, upper, limit).await?
        } else {
            Vec::new()
        };
        let mut has_more = if messages.len() >= limit as usize {
            true
        } else {
            // Everything in [complete_from, upper) is here; older messages exist unless the
            // whole history is cached.
            complete_from > 1
        };
        if messages.len() < limit as usize && has_more {
            if let Ok((api, token)) = self.authed() {
                match self
                    .fetch_older(
                        &api,
                        &token,
                        room,
                        &mut messages,
                        upper,
                        complete_from,
                        limit,
                    )
                    .await
                {
                    Ok(more) => has_more = more,
                    Err(Error::Unreachable(e)) => {
                        // Offline: what the cache has, plus whatever older it holds.
                        tracing::debug!(error = %e, "older messages unavailable");
                        let oldest = messages.first().and_then(|m| m.seq).unwrap_or(upper);
                        has_more = true;
                        if messages.is_empty() {
                            let got = cache.messages(room, 0, oldest, limit).await?;
                            messages = got;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if before.is_none() {
            if let Some(me) = self.me() {
                for entry in cache.outbox_for_room(room).await? {
                    messages.push(entry.view(&me));
                }
            }
        }
        Ok(MessagePage { messages, has_more })
    }

    /// Pages history back from the server until `messages` holds `limit` or the start of the
    /// room is reached; caches every page. Returns whether more exist.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_older(
        &self,
        api: &Api,
        token: &str,
        room: RoomId,
        messages: &mut Vec<MessageView>,
        upper: u64,
        complete_from: u64,
        limit: u32,
    ) -> Result<bool> {
        let page_size = self.lock().limits.max_history_page.clamp(1, 100);
        let mut bound = messages
            .first()
            .and_then(|m| m.seq)
            .unwrap_or(upper.min(complete_from));
        // Lower end of the hole-free range as this loop extends it.
        let mut range_from = complete_from;
        for _ in 0..MAX_FETCHES {
            let before = (bound != u64::MAX).then_some(bound);
            let page = self
                .checked(api.history(token, room, before, None, page_size).await)
                .await?;
            // A page ending at or inside the hole-free range extends it downwards.
            let continues = range_from != u64::MAX && bound >= range_from;
            let extends_to = continues.then(|| {
                if page.has_more {
                    page.events.first().map_or(bound, |e| e.seq)
                } else {
                    0
                }
            });
            if let Some(to) = extends_to {
                range_from = range_from.min(to);
            }
            self.cache
                .store_page(room, &page.events, extends_to)
                .await?;
            let older: Vec<MessageView> = page
                .events
                .iter()
                .filter(|e| e.seq < bound)
                .filter_map(message_view)
                .collect();
            let first = page.events.first().map(|e| e.seq);
            let need = (limit as usize).saturating_sub(messages.len());
            let skip = older.len().saturating_sub(need);
            let mut combined: Vec<MessageView> = older.into_iter().skip(skip).collect();
            let truncated = skip > 0;
            combined.append(messages);
            *messages = combined;
            if truncated {
                return Ok(true);
            }
            match first {
                Some(first) if page.has_more && first < bound => bound = first,
                _ => return Ok(page.has_more),
            }
            if messages.len() >= limit as usize {
                return Ok(true);
            }
        }
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn me(&self) -> Option<User> {
        self.lock().session.as_ref().map(|s| s.user.clone())
    }

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

    fn credentials(&self, username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.trim().to_owned(),
            password: password.to_owned(),
            device: Some(self.options.device.clone()),
            invite: None,
        }
    }

    /// The server and token for an authenticated request.
    fn authed(&self) -> Result<(Api, String)> {
        let state = self.lock();
        match (&state.api, &state.session) {
            (Some(api), Some(session)) => Ok((api.clone(), session.token.clone())),
            (None, _) => Err(Error::NotLoggedIn("choose a server first")),
            (_, None) => Err(Error::NotLoggedIn("log in first")),
        }
    }

    /// Passes a REST result on; a refused token ends the session.
    async fn checked<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.server_code() == Some(ErrorCode::Unauthorized) {
                self.end_session(e.to_string()).await;
            }
        }
        result
    }

    fn set_connection_state(&self, state: ConnectionState) {
        {
            let mut s = self.lock();
            if s.connection_state == state {
                return;
            }
            if state != ConnectionState::Online {
                s.live = false;
            }
            s.connection_state = state.clone();
        }
        self.sink.emit(AppEvent::Connection { state });
    }

    /// Stores the token and account, then connects.
    async fn start_session(&self, api: Api, auth: AuthResponse) -> Result<User> {
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
            self.cache.clear_account().await?;
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
    async fn resume_session(&self, user: User) -> Result<()> {
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
    async fn end_session(&self, reason: String) {
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

    /// The server's store lost data (close 4010, protocol §7.7): what the cache holds from it
    /// may be gone there and its cursors may now name other events. Drop both (the outbox,
    /// drafts and settings stay) and tell the UI; the next `hello` resumes nothing, `welcome`
    /// re-syncs the room list and [`Inner::fill_previews`] refetches every room's newest page.
    /// Pending messages are sent again on that `welcome` under their client ids. If the
    /// token is gone with the data, the server refuses it (4001) and the session ends.
    async fn store_reset(&self) {
        let cleared = self.cache.reset_history().await;
        if let Err(e) = &cleared {
            tracing::error!(error = %e, "cannot drop the cached history after a store reset");
        }
        // Even if the cache could not be cleared, never resume from its cursors.
        self.lock().resume_blocked = true;
        self.sink.emit(AppEvent::HistoryReset);
        self.sink.unread_changed(0);
    }

    /// A room came from REST (created, joined, DM): cache it and tell the UI.
    async fn room_added(&self, room: &Room) -> Result<()> {
        self.cache.upsert_room(room).await?;
        if let (Some(peer), Ok((api, token))) = (room.peer, self.authed()) {
            match api.user(&token, peer).await {
                Ok(user) => self.cache.set_user(&user).await?,
                Err(e) => tracing::debug!(error = %e, "cannot fetch the peer's presence"),
            }
        }
        self.rooms_changed().await;
        Ok(())
    }

    async fn rooms_changed(&self) {
        self.sink.emit(AppEvent::RoomsChanged);
        match self.cache.total_unread().await {
            Ok(total) => self.sink.unread_changed(total),
            Err(e) => tracing::warn!(error = %e, "cannot count unread messages"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Socket frames
    // -----------------------------------------------------------------------------------------

    async fn handle_frame(&self, frame: ServerFrame, link: &Link) -> Result<()> {
        match frame {
            ServerFrame::Welcome {
                user,
                rooms,
                limits,
                epoch,
                ..
            } => {
                self.cache
                    .set_setting(crate::cache::STORE_EPOCH, &epoch)
                    .await?;
                self.on_welcome(user, rooms, limits, link).await?
            }
            ServerFrame::Ready => {
                self.set_connection_state(ConnectionState::Online);
                self.lock().live = true;
            }
            ServerFrame::Event(event) => self.apply(event).await?,
            ServerFrame::Gap {
                room,
                after,
                until,
                reason,
            } => self.fill_gap(room, after, until, reason).await?,
            ServerFrame::Ack(ack) => {
                if let Some(me) = self.me() {
                    if let Some(message) = self.cache.outbox_acked(&ack, &me).await? {
                        self.sink.emit(AppEvent::Message { message });
                    }
                }
            }
            ServerFrame::Error {
                code,
                message,
                room: Some(room),
                id: Some(id),
                retry_after_ms,
                ..
            } => {
                crate::outbox::refused(self, room, &id, code, &message, retry_after_ms).await?;
            }
            ServerFrame::Error { code, message, .. } => {
                tracing::warn!(%code, %message, "the server reported an error");
            }
            ServerFrame::Presence {
                user,
                online,
                last_seen,
            } => {
                self.cache.set_presence(user, online, last_seen).await?;
                self.sink.emit(AppEvent::Presence {
                    user,
                    online,
                    last_seen,
                });
            }
            ServerFrame::Typing {
                room,
                user,
                username,
                ttl_ms,
            } => {
                if self.me().is_some_and(|me| me.id != user) {
                    self.sink.emit(AppEvent::Typing {
                        room,
                        user,
                        username,
                        ttl_ms,
                    });
                }
            }
            ServerFrame::ReadMarker { room, seq } => {
                if let Some(me) = self.me() {
                    if self.cache.set_read(room, seq, true, me.id).await? {
                        self.rooms_changed().await;
                    }
                }
            }
            ServerFrame::Ok { .. } | ServerFrame::History { .. } | ServerFrame::Pong { .. } => {}
        }
        Ok(())
    }

    async fn on_welcome(
        &self,
        user: User,
        rooms: Vec<Room>,
        limits: Limits,
        link: &Link,
    ) -> Result<()> {
        self.cache.set_json_setting(key::LIMITS, &limits).await?;
        let limits_changed = self.lock().limits != limits;
        if limits_changed {
            self.sink.emit(AppEvent::Limits {
                limits: limits.clone(),
            });
        }
        let user_changed = {
            let mut state = self.lock();
            state.limits = limits;
            match &mut state.session {
                Some(session) if session.user != user => {
                    session.user = user.clone();
                    true
                }
                _ => false,
            }
        };
        if user_changed {
            self.cache.set_json_setting(key::USER, &user).await?;
        }
        self.cache.sync_rooms(&rooms).await?;
        self.lock().resume_blocked = false;
        // Read markers moved while offline.
        for (room, seq) in self.cache.unsynced_read_markers().await? {
            if link.send(ClientFrame::Read { room, seq }) {
                self.cache.read_marker_synced(room, seq).await?;
                self.cache.recount_unread(room, user.id).await?;
            }
        }
        crate::outbox::flush(self, link).await?;
        self.rooms_changed().await;
        self.refresh_peers(&rooms);
        self.fill_previews().await?;
        Ok(())
    }

    /// Rooms whose newest message is not cached (new to this device, or joined before the
    /// cache knew them) get their newest page in the background, so the room list shows every
    /// room's last message. Bounded: one small page per room, at most [`PREVIEW_ROOMS`] rooms,
    /// one at a time, and a room is fetched only while nothing of it is cached.
    async fn fill_previews(&self) -> Result<()> {
        let mut rooms = Vec::new();
        for cached in self.cache.rooms().await? {
            if cached.room.last_seq > 0 && self.cache.last_message(cached.room.id).await?.is_none()
            {
                rooms.push(cached.room.id);
            }
            if rooms.len() >= PREVIEW_ROOMS {
                break;
            }
        }
        let Some(inner) = self.me.upgrade() else {
            return Ok(());
        };
        if rooms.is_empty() {
            return Ok(());
        }
        tokio::spawn(async move {
            let mut filled = 0;
            for room in rooms {
                if inner.authed().is_err() {
                    return;
                }
                match inner.messages(room, None, Some(PREVIEW_PAGE)).await {
                    Ok(_) => filled += 1,
                    Err(Error::Unreachable(e)) => {
                        tracing::debug!(error = %e, "previews stop: server unreachable");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %room, "cannot fetch a room's newest page")
                    }
                }
            }
            if filled > 0 {
                inner.rooms_changed().await;
            }
        });
        Ok(())
    }

    /// Fetches the presence of direct rooms' peers in the background (presence frames only
    /// report changes), so the side bar can show who is online.
    fn refresh_peers(&self, rooms: &[Room]) {
        let peers: Vec<UserId> = rooms.iter().filter_map(|r| r.peer).take(100).collect();
        let (Some(inner), Ok((api, token))) = (self.me.upgrade(), self.authed()) else {
            return;
        };
        if peers.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for peer in peers {
                match api.user(&token, peer).await {
                    Ok(user) => {
                        if let Err(e) = inner.cache.set_user(&user).await {
                            tracing::warn!(error = %e, "cannot cache a peer");
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot fetch a peer's presence");
                        return;
                    }
                }
            }
            inner.sink.emit(AppEvent::RoomsChanged);
        });
    }

    /// Applies one room event and tells the UI; fetches the room first when it is new to us.
    async fn apply(&self, event: RoomEvent) -> Result<()> {
        let Some(me) = self.me() else {
            return Ok(());
        };
        let mut applied = self.cache.apply_event(&event, me.id).await?;
        if applied == Applied::UnknownRoom {
            // We are a member (the server only sends our rooms' events) of a room we have not
            // cached yet, e.g. joined on another device or invited.
            let (api, token) = self.authed()?;
            match api.room(&token, event.room).await {
                Ok(room) => {
                    self.cache.upsert_room(&room).await?;
                    applied = self.cache.apply_event(&event, me.id).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = %event.room, "cannot fetch a new room");
                    return Ok(());
                }
            }
        }
        let Applied::Done(changes) = applied else {
            return Ok(());
        };
        if let Some(message) = changes.message {
            let notify = self.notification_for(&event, &message);
            self.sink.emit(AppEvent::Message { message });
            if let Some((title, body)) = notify {
                self.sink.notify(&title, &body);
            }
        }
        if changes.rooms_changed {
            self.rooms_changed().await;
        }
        Ok(())
    }

    /// The notification (title, text) for a new message the user is not looking at, if any.
    fn notification_for(
        &self,
        event: &RoomEvent,
        message: &MessageView,
    ) -> Option<(String, String)> {
        let EventBody::Message {
            sender, deleted, ..
        } = &event.event
        else {
            return None;
        };
        let state = self.lock();
        let mine = state.session.as_ref().is_some_and(|s| s.user.id == *sender);
        let in_view = state.window_focused && state.focus == Some(event.room);
        if !state.live || !state.settings.notifications || mine || *deleted || in_view {
            return None;
        }
        let mut body: String = message.body.chars().take(200).collect();
        if body.len() < message.body.len() {
            body.push('…');
        }
        Some((message.sender_name.clone(), body))
    }

    /// The server skipped `after+1 ..= until`: page them in over REST (at most the retention
    /// window), then continue from `until` like the server does.
    async fn fill_gap(
        &self,
        room: RoomId,
        after: u64,
        until: u64,
        reason: GapReason,
    ) -> Result<()> {
        tracing::info!(%room, after, until, ?reason, "filling a gap");
        let keep = u64::from(self.options.keep_per_room);
        let mut cursor = after;
        if until.saturating_sub(after) > keep {
            cursor = until - keep;
            self.cache.skip_to(room, cursor).await?;
        }
        let page_size = self.lock().limits.max_history_page.clamp(1, 100);
        let (api, token) = self.authed()?;
        while cursor < until {
            let page = match api
                .history(&token, room, None, Some(cursor), page_size)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, %room, "gap fill failed; history will page in later");
                    break;
                }
            };
            let Some(last) = page.events.last().map(|e| e.seq) else {
                break;
            };
            for event in page.events.into_iter().filter(|e| e.seq <= until) {
                self.apply(event).await?;
            }
            cursor = last;
            if !page.has_more {
                break;
            }
        }
        if let Some(cached) = self.cache.room(room).await? {
            if cached.synced_seq.is_none_or(|s| s < until) {
                self.cache.skip_to(room, until).await?;
            }
        }
        Ok(())
    }

    pub(crate) fn sink(&self) -> &dyn EventSink {
        self.sink.as_ref()
    }

    pub(crate) fn upgrade(&self) -> Option<Arc<Inner>> {
        self.me.upgrade()
    }
}

impl Handler for Inner {
    async fn hello(&self) -> std::result::Result<ClientFrame, String> {
        let (token, resume_blocked) = {
            let state = self.lock();
            let token = state
                .session
                .as_ref()
                .map(|s| s.token.clone())
                .ok_or_else(|| "not logged in".to_owned())?;
            (token, state.resume_blocked)
        };
        let resume = if resume_blocked {
            Vec::new()
        } else {
            self.cache.cursors().await.map_err(|e| e.to_string())?
        };
        // The cursors' data set: if the server lost data since, it answers 4010 rather than
        // resuming from cursors that mean something else now.
        let epoch = if resume.is_empty() {
            None
        } else {
            self.cache
                .setting(crate::cache::STORE_EPOCH)
                .await
                .map_err(|e| e.to_string())?
        };
        Ok(ClientFrame::Hello {
            token,
            resume,
            epoch,
        })
    }

    async fn on_frame(&self, frame: ServerFrame, link: &Link) {
        if let Err(e) = self.handle_frame(frame, link).await {
            tracing::error!(error = %e, "handling a server frame failed");
        }
    }

    fn on_state(&self, state: ConnectionState) {
        self.set_connection_state(state);
    }

    async fn on_session_ended(&self, reason: String) {
        self.end_session(reason).await;
    }

    async fn on_store_reset(&self) {
        self.store_reset().await;
    }
}
