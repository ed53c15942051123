//! The desktop backend as a fault-run client: the app's real connection manager, SQLite cache
//! and outbox ([`chat_desktop::Backend`]) without a window. It reaches the nodes through a
//! front proxy the harness controls (cut it: the app is offline and composes into its outbox;
//! re-point it: the app reconnects to another node), and it can be closed and reopened on the
//! same cache file with messages still pending.

use crate::proxy::{Link, Proxy};
use chat_desktop::backend::{EventSink, Options};
use chat_desktop::connection::{Backoff, Timing};
use chat_desktop::credentials::{MemoryTokens, TokenStore};
use chat_desktop::Backend;
use protocol::ipc::{AppEvent, ConnectionState};
use protocol::{RoomId, UserId};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records the connection state the UI would show.
struct StateSink(Arc<Mutex<ConnectionState>>);

impl EventSink for StateSink {
    fn emit(&self, event: AppEvent) {
        if let AppEvent::Connection { state } = event {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
        }
    }
    fn notify(&self, _title: &str, _body: &str) {}
    fn unread_changed(&self, _total: u64) {}
}

/// A message the app was asked to send.
#[derive(Debug, Clone)]
pub struct DesktopComposed {
    pub room: RoomId,
    pub client_id: String,
    /// Written while the app was not online (it went to the outbox only).
    pub offline: bool,
    /// The seq of the message it answers.
    pub reply_to: Option<u64>,
    /// The file it carries: its length and fingerprint ([`crate::files::fingerprint`]).
    pub file: Option<(u64, u64)>,
}

/// A reaction the app was asked to add (it never takes one back, so history must show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopReaction {
    pub room: RoomId,
    pub seq: u64,
    pub emoji: String,
}

pub struct Desktop {
    pub user: UserId,
    pub username: String,
    cache_path: PathBuf,
    tokens: Arc<dyn TokenStore>,
    pub front: Proxy,
    backend: tokio::sync::Mutex<Option<Backend>>,
    state: Arc<Mutex<ConnectionState>>,
    pub composed: Mutex<Vec<DesktopComposed>>,
    pub reactions: Mutex<Vec<DesktopReaction>>,
    pub reopens: Mutex<u32>,
}

fn timing() -> Timing {
    Timing {
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(400),
        },
        ping_every: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(3),
    }
}

impl Desktop {
    /// Opens the app on a fresh cache, points it at the front proxy and registers `username`.
    pub async fn start(
        dir: PathBuf,
        nodes: Vec<SocketAddr>,
        username: &str,
        password: &str,
    ) -> Result<Desktop, String> {
        let front = Proxy::start(nodes).await.map_err(|e| e.to_string())?;
        let tokens: Arc<dyn TokenStore> = Arc::new(MemoryTokens::default());
        let state = Arc::new(Mutex::new(ConnectionState::Offline));
        let cache_path = dir.join("desktop-cache.sqlite3");
        let backend = open(&cache_path, tokens.clone(), state.clone()).await?;
        within(backend.set_server(&format!("http://{}", front.addr))).await?;
        let user = within(backend.register(username, password)).await?;
        Ok(Desktop {
            user: user.id,
            username: username.to_owned(),
            cache_path,
            tokens,
            front,
            backend: tokio::sync::Mutex::new(Some(backend)),
            state,
            composed: Mutex::new(Vec::new()),
            reactions: Mutex::new(Vec::new()),
            reopens: Mutex::new(0),
        })
    }

    pub fn online(&self) -> bool {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) == ConnectionState::Online
    }

    /// Signed out: the session ended (4001), the app no longer tries to connect.
    pub fn signed_out(&self) -> bool {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) == ConnectionState::Offline
    }

    pub async fn join(&self, room: RoomId) -> Result<(), String> {
        let guard = self.backend.lock().await;
        let backend = guard.as_ref().ok_or("app closed")?;
        within(backend.join_room(room)).await.map(|_| ())
    }

    /// Writes a message as the user would (into the outbox; sent when connected).
    pub async fn compose(&self, room: RoomId, n: u64) -> Result<(), String> {
        self.write(room, Write::Text(n)).await
    }

    /// Writes as the user would: a message, a reply to the newest message the cache holds of
    /// `room`, a reaction to it, or a message carrying a file (staged, uploaded, then sent,
    /// all through the outbox). A reply or reaction with nothing to answer writes a message.
    pub async fn write(&self, room: RoomId, what: Write) -> Result<(), String> {
        let guard = self.backend.lock().await;
        let Some(backend) = guard.as_ref() else {
            return Ok(());
        };
        let offline = !self.online() || self.front.link() != Link::Up;
        let target = match what {
            Write::Reply(_) | Write::React(_) => newest_message(backend, room).await?,
            _ => None,
        };
        let (view, reply_to, file) = match (what, target) {
            (Write::React(emoji), Some(seq)) => {
                within(backend.react(room, seq, emoji, false)).await?;
                self.reactions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(DesktopReaction {
                        room,
                        seq,
                        emoji: emoji.to_owned(),
                    });
                return Ok(());
            }
            (Write::Reply(n), Some(seq)) => {
                let msg = chat_desktop::cache::Outgoing {
                    body: format!("desktop reply {n}"),
                    reply_to: Some(seq),
                    ..Default::default()
                };
                (
                    within(backend.send_message(room, msg)).await?,
                    Some(seq),
                    None,
                )
            }
            (Write::File(file), _) => {
                let print = (
                    file.bytes.len() as u64,
                    crate::files::fingerprint(&file.bytes),
                );
                let view = within(backend.send_bytes(room, &file.name, file.bytes)).await?;
                (view, None, Some(print))
            }
            (Write::Text(n) | Write::Reply(n), _) => (
                within(backend.send(room, &format!("desktop message {n}"))).await?,
                None,
                None,
            ),
            (Write::React(_), None) => (
                within(backend.send(room, "desktop message (nothing to react to)")).await?,
                None,
                None,
            ),
        };
        self.composed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(DesktopComposed {
                room,
                client_id: view.client_id,
                offline,
                reply_to,
                file,
            });
        Ok(())
    }

    /// Closes the app (its outbox may hold pending messages) and opens it again on the same
    /// cache file and keychain.
    pub async fn reopen(&self) -> Result<(), String> {
        let mut guard = self.backend.lock().await;
        if let Some(backend) = guard.take() {
            tokio::time::timeout(Duration::from_secs(20), backend.shutdown())
                .await
                .map_err(|_| "closing the app timed out".to_owned())?;
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = ConnectionState::Offline;
        *guard = Some(open(&self.cache_path, self.tokens.clone(), self.state.clone()).await?);
        *self.reopens.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(())
    }

    /// The open app's cache (for the checker).
    pub async fn with_cache<T>(
        &self,
        f: impl AsyncFnOnce(&chat_desktop::cache::Cache) -> T,
    ) -> Option<T> {
        let guard = self.backend.lock().await;
        let backend = guard.as_ref()?;
        Some(f(backend.cache()).await)
    }

    pub async fn close(&self) {
        if let Some(backend) = self.backend.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), backend.shutdown()).await;
        }
    }
}

/// What the app is asked to write.
pub enum Write {
    /// A message `desktop message {n}`.
    Text(u64),
    /// A reply to the newest message of the room.
    Reply(u64),
    /// A reaction to the newest message of the room.
    React(&'static str),
    /// A message carrying this file.
    File(crate::files::File),
}

/// The seq of the newest message (not deleted) the cache holds of `room`.
async fn newest_message(backend: &Backend, room: RoomId) -> Result<Option<u64>, String> {
    let cached = within(backend.cache().messages(room, 0, u64::MAX >> 2, 100_000)).await?;
    Ok(cached
        .iter()
        .rev()
        .find(|m| !m.deleted && m.seq.is_some())
        .and_then(|m| m.seq))
}

async fn open(
    cache_path: &std::path::Path,
    tokens: Arc<dyn TokenStore>,
    state: Arc<Mutex<ConnectionState>>,
) -> Result<Backend, String> {
    let mut options = Options::new(cache_path);
    options.timing = timing();
    options.keep_per_room = 100_000;
    options.device = "fault run".into();
    within(Backend::open(options, tokens, Arc::new(StateSink(state)))).await
}

async fn within<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("desktop backend call timed out".into()),
    }
}
