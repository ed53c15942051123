//! The app core, independent of Tauri: it owns the cache, the token store, the REST client and
//! the connection, implements every IPC command ([`protocol::ipc::Command`], dispatched by
//! [`Backend::execute`]) and reports what happens through an [`EventSink`] (the Tauri emitter in
//! the app, a channel in tests).
//!
//! Data flow: commands read the cache (instant, works offline) and call the server over REST;
//! the socket feeds room events into the cache ([`sync`]), and every change the UI should see
//! goes out as an [`AppEvent`]. Messages go through the [`Outbox`].
//!
//! One file per job: [`account`] (server, sign-in, session), [`rooms`] (room list, membership,
//! people), [`history`] (message pages, gap fills, previews), [`messages`] (send, edit, read
//! markers, typing), [`settings`] (drafts, focus, settings), [`security`] (sessions,
//! password, sign out everywhere), [`moderation`] (bans, blocks), [`room_settings`] (rename,
//! topic, delete, notification levels, display names, user cards), [`attachments`] (files:
//! staging, the uploader, downloads through the blob cache), [`sync`] (socket frames). This
//! file holds the shared state and the dispatch.

mod account;
mod attachments;
mod history;
mod messages;
mod moderation;
mod room_settings;
mod rooms;
mod security;
mod settings;
mod sync;

pub use attachments::THROTTLE_ENV;

use crate::api::{self, Api};
use crate::blobs::BlobCache;
use crate::cache::{Cache, DEFAULT_KEEP_PER_ROOM};
use crate::connection::{Connection, Link, Timing};
use crate::credentials::TokenStore;
use crate::error::{Error, Result};
use crate::outbox::Outbox;
use protocol::ipc::{AppEvent, Command, ConnectionState, Settings};
use protocol::limits::Limits;
use protocol::rest::User;
use protocol::{ErrorCode, RoomId};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

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
    /// Where attachments live on disk: `staging/` (files waiting to be uploaded) and `blobs/`
    /// (the downloaded-file cache). The cache file's folder unless set otherwise.
    pub files_dir: PathBuf,
}

impl Options {
    pub fn new(cache_path: impl Into<PathBuf>) -> Self {
        let cache_path: PathBuf = cache_path.into();
        let files_dir = cache_path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Options {
            files_dir,
            cache_path,
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
    /// Bytes the downloaded-file cache may take (JSON number).
    pub const BLOB_CACHE_LIMIT: &str = "blob_cache_limit";
    /// The room last opened (JSON room id): opened again at the next start.
    pub const LAST_ROOM: &str = "last_room";

    /// The SHA-256 (`AB:CD:…`) of the certificate the user trusted for the server at `url`
    /// (as [`crate::api::display_url`] writes it): pins are kept per server.
    pub fn server_pin(url: &str) -> String {
        format!("server_pin {url}")
    }
}

fn default_settings() -> Settings {
    Settings {
        start_minimized: false,
        notifications: true,
        hide_notification_text: false,
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
    /// The room last opened, as stored under [`key::LAST_ROOM`].
    last_room: Option<RoomId>,
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

struct Inner {
    me: Weak<Inner>,
    cache: Cache,
    tokens: Arc<dyn TokenStore>,
    sink: Arc<dyn EventSink>,
    options: Options,
    link: Link,
    outbox: Outbox,
    /// The uploader of attachments ([`attachments`]).
    uploads: Arc<attachments::Uploads>,
    /// Downloaded attachments.
    blobs: BlobCache,
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
        let cache = Cache::connect(&options.cache_path, options.keep_per_room).await?;
        Backend::start(cache, options, tokens, sink).await
    }

    /// The app settings stored in `cache`, readable as soon as it is connected (before its
    /// upgrade): the app needs "start minimized" before it shows its window.
    pub async fn stored_settings(cache: &Cache) -> Result<Settings> {
        Ok(cache
            .json_setting::<Settings>(key::SETTINGS)
            .await?
            .unwrap_or_else(default_settings))
    }

    /// [`Backend::open`] on a cache already connected ([`Cache::connect`]): upgrades it first
    /// when this is the first start after an update that changed its layout, telling the UI
    /// how far it is ([`AppEvent::CacheUpgrade`], each whole percent once).
    pub async fn start(
        cache: Cache,
        options: Options,
        tokens: Arc<dyn TokenStore>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Backend> {
        let mut shown = None;
        cache
            .upgrade(|progress| {
                let percent = progress.percent();
                if shown != Some(percent) {
                    shown = Some(percent);
                    sink.emit(AppEvent::CacheUpgrade { percent });
                }
            })
            .await?;
        let settings = Backend::stored_settings(&cache).await?;
        let limits = cache
            .json_setting::<Limits>(key::LIMITS)
            .await?
            .unwrap_or_default();
        let pin = match cache.setting(key::SERVER_URL).await? {
            Some(url) => cache
                .setting(&key::server_pin(&url))
                .await?
                .and_then(|p| crate::tls::parse_fingerprint(&p)),
            None => None,
        };
        let api = match cache.setting(key::SERVER_URL).await? {
            Some(url) => match api::parse_server_url(&url).and_then(|u| Api::new(u, pin)) {
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
        let last_room = cache.json_setting::<RoomId>(key::LAST_ROOM).await?;
        let link = Link::default();
        let outbox = Outbox::new(cache.clone(), link.clone());
        let blob_limit = cache
            .json_setting::<u64>(key::BLOB_CACHE_LIMIT)
            .await?
            .unwrap_or(crate::blobs::DEFAULT_LIMIT);
        let blobs = BlobCache::new(options.files_dir.join("blobs"), blob_limit);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            cache,
            tokens,
            sink,
            options,
            link,
            outbox,
            uploads: Arc::default(),
            blobs,
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
                last_room,
                window_focused: true,
                typing_sent: HashMap::new(),
                resume_blocked: false,
            }),
        });
        let backend = Backend { inner };
        backend.inner.sweep_staging().await?;
        attachments::spawn_uploader(&backend.inner);
        if let Some(user) = user {
            backend.inner.resume_session(user).await?;
        }
        Ok(backend)
    }

    /// Stops the connection (waiting for it) and closes the cache.
    pub async fn shutdown(self) {
        self.inner.uploads.stop();
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

    /// The server and the session token, while signed in: the app shell asks this server for
    /// app updates (`crate::updater`), as this user.
    pub fn server_session(&self) -> Option<(Api, String)> {
        self.inner.authed().ok()
    }

    /// The cache (for tests and diagnostics).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Runs one IPC command and returns its result as JSON: the one dispatch behind the one
    /// Tauri command ([`crate::commands::run`]), also driven directly by tests.
    pub async fn execute(&self, command: Command) -> Result<Value> {
        fn json<T: serde::Serialize>(v: T) -> Result<Value> {
            serde_json::to_value(v).map_err(|e| Error::Invalid(e.to_string()))
        }
        match command {
            Command::Snapshot => json(self.snapshot()),
            Command::SetServer { url } => json(self.set_server(&url).await?),
            Command::TrustCertificate { url, sha256 } => {
                json(self.trust_certificate(&url, &sha256).await?)
            }
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
            Command::Send {
                room,
                body,
                reply_to,
                mentions,
                mention_room,
            } => json(
                self.send_message(
                    room,
                    crate::cache::Outgoing {
                        body,
                        reply_to,
                        mentions,
                        mention_room,
                    },
                )
                .await?,
            ),
            Command::React { room, seq, emoji } => {
                json(self.react(room, seq, &emoji, false).await?)
            }
            Command::Unreact { room, seq, emoji } => {
                json(self.react(room, seq, &emoji, true).await?)
            }
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
            Command::SetFocus { room } => json(self.set_focus(room).await?),
            Command::GetSettings => json(self.get_settings()),
            Command::SetSettings { settings } => json(self.set_settings(settings).await?),
            Command::Sessions => json(self.sessions().await?),
            Command::EndSession { id } => json(self.end_session(&id).await?),
            Command::ChangePassword { current, new } => {
                json(self.change_password(&current, &new).await?)
            }
            Command::LogoutEverywhere => json(self.logout_everywhere().await?),
            Command::Ban { room, user } => json(self.set_ban(room, user, true).await?),
            Command::Unban { room, user } => json(self.set_ban(room, user, false).await?),
            Command::Bans { room } => json(self.bans(room).await?),
            Command::Block { user } => json(self.set_block(user, true).await?),
            Command::Unblock { user } => json(self.set_block(user, false).await?),
            Command::Blocks => json(self.blocks().await?),
            Command::UpdateRoom { room, name, topic } => {
                json(self.update_room(room, name, topic).await?)
            }
            Command::DeleteRoom { room } => json(self.delete_room(room).await?),
            Command::SetNotify { room, level } => json(self.set_notify(room, level).await?),
            Command::SetDisplayName { display_name } => {
                json(self.set_display_name(&display_name).await?)
            }
            Command::UserCard { user } => json(self.user_card(user).await?),
            Command::SendFiles {
                room,
                paths,
                body,
                reply_to,
            } => {
                let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
                json(self.send_files(room, &paths, &body, reply_to).await?)
            }
            Command::SendBytes { room, name, bytes } => {
                json(self.send_bytes(room, &name, bytes).await?)
            }
            Command::CancelUpload { client_id } => json(self.cancel_upload(&client_id).await?),
            Command::SaveAttachment { id, path } => json(
                self.save_attachment(&id, std::path::Path::new(&path))
                    .await?,
            ),
            Command::BlobCache => json(self.blob_cache().await),
            Command::SetBlobCacheLimit { bytes } => json(self.set_blob_cache_limit(bytes).await?),
            // App updates replace the running program, which takes Tauri: the shell answers
            // them (`crate::commands::execute`, `crate::updater`) before they reach here.
            Command::UpdateStatus | Command::InstallUpdate => Err(Error::Update(
                "app updates are handled by the app shell".into(),
            )),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.inner.uploads.stop();
        // The connection task holds the core alive; stop it so both go away.
        if let Ok(state) = self.inner.state.lock() {
            if let Some(connection) = &state.connection {
                connection.stop();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn me(&self) -> Option<User> {
        self.lock().session.as_ref().map(|s| s.user.clone())
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
}
