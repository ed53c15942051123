//! The local cache: one SQLite file (WAL) holding the signed-in account's rooms, members,
//! messages, read markers, outbox and drafts, with an FTS5 index over message bodies kept in
//! sync by triggers (see `src-tauri/migrations`).
//!
//! The cache knows nothing about sockets: callers hand it room events in stream order
//! ([`Cache::apply_event`]) or history pages ([`Cache::store_page`]) and it answers with what
//! changed, so the caller can tell the UI. Per room it tracks the resume cursor (`synced_seq`)
//! and the range of seqs it holds without holes (`complete_from..=synced_seq`), so a page can be
//! served from disk only when nothing is missing from it. At most `keep_per_room` messages are
//! kept per room; older ones are deleted as new ones arrive.
//!
//! Privacy: the file (and its `-wal`/`-shm`) is readable by its owner only (0600 on Unix), and
//! deleted text leaves no trace in it: `PRAGMA secure_delete` zeroes freed content, the FTS5
//! index runs with `secure-delete` (tokens are removed, not shadowed by delete markers), and
//! after a message is deleted or the account cleared the WAL is checkpointed and truncated
//! ([`Cache::scrub`]), so old page images are gone from it too.

use crate::error::{Error, Result};
use protocol::event::{apply_reaction, EventBody, Reaction, Role};
use protocol::ipc::{MemberView, MessageStatus, MessageView, Quote, UploadView, UserView};
use protocol::rest::{Member, Room, SendAck, User};
use protocol::ws::Cursor;
use protocol::{Attachment, ErrorCode, RoomEvent, RoomId, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqliteConnection, SqlitePool};

/// Setting: the server's `epoch` (from `welcome`) that the resume cursors belong to.
pub const STORE_EPOCH: &str = "store_epoch";
use std::path::Path;
use std::time::Duration;

mod search;
mod settings;
mod upgrade;

pub use upgrade::Progress;

/// Messages kept per room unless configured otherwise.
pub const DEFAULT_KEEP_PER_ROOM: u32 = 5000;

/// Unread counts stop here (the server counts up to 100 as well; the UI shows "99+").
const UNREAD_CAP: i64 = 100;

/// The cache. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Cache {
    pool: SqlitePool,
    keep_per_room: i64,
}

/// A room as cached, with its sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRoom {
    pub room: Room,
    /// The resume cursor; `None` until the socket has said where the room stands.
    pub synced_seq: Option<u64>,
    /// Every message from here up to `synced_seq` is cached (0: all of history).
    pub complete_from: Option<u64>,
    pub activity_ts: i64,
}

/// A message the user wrote, as it enters the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    pub body: String,
    /// The seq of the message it answers.
    pub reply_to: Option<u64>,
    /// The users it mentions.
    pub mentions: Vec<UserId>,
    /// `@room`.
    pub mention_room: bool,
}

/// A pending or failed message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxEntry {
    pub client_id: String,
    pub room: i64,
    pub body: String,
    pub created: i64,
    pub state: String,
    pub fail_code: Option<String>,
    pub fail_reason: Option<String>,
    pub reply_to: Option<i64>,
    /// JSON array of user ids.
    pub mentions: String,
    pub mention_room: bool,
    /// JSON array of [`UploadView`]: the files to upload first.
    pub files: String,
    /// JSON array of the [`Attachment`]s uploaded so far, in the order of `files`.
    pub attachments: String,
}

const OUTBOX_COLUMNS: &str = "client_id, room, body, created, state, fail_code, fail_reason, \
     reply_to, mentions, mention_room, files, attachments";

/// A reaction change waiting for the server's `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReaction {
    pub room: RoomId,
    pub seq: u64,
    pub emoji: String,
    pub remove: bool,
    /// The `ref` it is sent with.
    pub op: String,
}

impl OutboxEntry {
    /// The users the message mentions.
    pub fn mention_ids(&self) -> Vec<UserId> {
        json_list(&self.mentions)
    }

    pub fn reply_to_seq(&self) -> Option<u64> {
        self.reply_to.map(to_u64)
    }

    pub fn room_id(&self) -> RoomId {
        RoomId(to_u64(self.room))
    }

    pub fn is_pending(&self) -> bool {
        self.state == "pending"
    }

    /// The files it carries, as attached.
    pub fn file_list(&self) -> Vec<UploadView> {
        json_list(&self.files)
    }

    /// The files uploaded so far.
    pub fn attachment_list(&self) -> Vec<Attachment> {
        json_list(&self.attachments)
    }

    /// Every file is uploaded: the message can be sent.
    pub fn is_ready(&self) -> bool {
        self.attachment_list().len() >= self.file_list().len()
    }

    /// The entry as the UI shows it, sent by `me`.
    pub fn view(&self, me: &User) -> MessageView {
        let status = if self.is_pending() {
            MessageStatus::Pending
        } else {
            let code = self
                .fail_code
                .as_deref()
                .and_then(|c| parse_enum::<ErrorCode>(c).ok())
                .unwrap_or(ErrorCode::Internal);
            MessageStatus::Failed {
                code,
                reason: self.fail_reason.clone().unwrap_or_default(),
            }
        };
        MessageView {
            room: self.room_id(),
            seq: None,
            client_id: self.client_id.clone(),
            sender: me.id,
            sender_name: me.username.clone(),
            body: self.body.clone(),
            ts: self.created,
            edited: false,
            deleted: false,
            status,
            reply_to: self.reply_to_seq(),
            quote: None,
            reactions: Vec::new(),
            mentions: self.mention_ids(),
            mention_room: self.mention_room,
            attachments: Vec::new(),
            uploads: self.file_list(),
        }
    }
}

/// What applying one event changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// A message that appeared or changed (new, edited, deleted).
    pub message: Option<MessageView>,
    /// The message was one of ours waiting in the outbox: it has left it.
    pub from_outbox: bool,
    /// Room list data changed (membership, roles, unread count, a new room).
    pub rooms_changed: bool,
    /// We are no longer a member: the room and its messages are gone from the cache.
    pub left: bool,
}

/// The outcome of [`Cache::apply_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once per event and matched at once; boxing `Changes` would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Applied {
    /// The room is not cached: fetch it, [`Cache::upsert_room`] it, then apply again.
    UnknownRoom,
    /// Already applied (at or below the room's cursor): nothing changed.
    Duplicate,
    Done(Changes),
}

#[derive(FromRow)]
struct RoomRow {
    id: i64,
    name: String,
    kind: String,
    visibility: String,
    member_count: i64,
    last_seq: i64,
    role: Option<String>,
    read_seq: i64,
    unread: i64,
    mentions: i64,
    peer: Option<i64>,
    synced_seq: Option<i64>,
    complete_from: Option<i64>,
    activity_ts: i64,
    topic: String,
    notify: String,
    peer_display_name: Option<String>,
}

impl RoomRow {
    fn into_cached(self) -> Result<CachedRoom> {
        Ok(CachedRoom {
            room: Room {
                id: RoomId(to_u64(self.id)),
                name: self.name,
                kind: parse_enum(&self.kind)?,
                visibility: parse_enum(&self.visibility)?,
                member_count: to_u64(self.member_count),
                last_seq: to_u64(self.last_seq),
                role: self.role.as_deref().map(parse_enum).transpose()?,
                read_seq: to_u64(self.read_seq),
                unread: to_u64(self.unread),
                mentions: to_u64(self.mentions),
                peer: self.peer.map(|p| UserId(to_u64(p))),
                peer_display_name: self.peer_display_name,
                topic: self.topic,
                notify: parse_enum(&self.notify).unwrap_or_default(),
            },
            synced_seq: self.synced_seq.map(to_u64),
            complete_from: self.complete_from.map(to_u64),
            activity_ts: self.activity_ts,
        })
    }
}

/// A cached message as read, with its reply's original (`q_*`, from a self-join).
#[derive(FromRow)]
struct MessageRow {
    room: i64,
    seq: i64,
    client_id: String,
    sender: i64,
    sender_name: String,
    body: String,
    ts: i64,
    edited: bool,
    deleted: bool,
    reply_to: Option<i64>,
    mentions: String,
    mention_room: bool,
    reactions: String,
    attachments: String,
    q_sender_name: Option<String>,
    q_body: Option<String>,
    q_deleted: Option<bool>,
}

impl MessageRow {
    fn view(self) -> MessageView {
        let quote = match (self.q_sender_name, self.q_body, self.q_deleted) {
            (Some(sender_name), Some(body), Some(deleted)) => Some(Quote {
                sender_name,
                text: if deleted {
                    String::new()
                } else {
                    quote_text(&body)
                },
                deleted,
            }),
            _ => None,
        };
        MessageView {
            room: RoomId(to_u64(self.room)),
            seq: Some(to_u64(self.seq)),
            client_id: self.client_id,
            sender: UserId(to_u64(self.sender)),
            sender_name: self.sender_name,
            body: self.body,
            ts: self.ts,
            edited: self.edited,
            deleted: self.deleted,
            status: MessageStatus::Sent,
            reply_to: self.reply_to.map(to_u64),
            quote,
            reactions: json_list(&self.reactions),
            mentions: json_list(&self.mentions),
            mention_room: self.mention_room,
            attachments: json_list(&self.attachments),
            uploads: Vec::new(),
        }
    }
}

/// A message to write (from an event, a history page or an acknowledged outbox entry).
struct NewMessage {
    room: i64,
    seq: i64,
    client_id: String,
    sender: i64,
    sender_name: String,
    body: String,
    ts: i64,
    edited: bool,
    deleted: bool,
    reply_to: Option<i64>,
    mentions: Vec<UserId>,
    mention_room: bool,
    reactions: Vec<Reaction>,
    attachments: Vec<Attachment>,
}

impl NewMessage {
    /// The message of a `message` event, in the state the event carries.
    fn from_event(event: &RoomEvent) -> Option<NewMessage> {
        match &event.event {
            EventBody::Message {
                id,
                sender,
                sender_name,
                body,
                edited_ts,
                deleted,
                reply_to,
                reactions,
                mentions,
                mention_room,
                attachments,
            } => Some(NewMessage {
                room: to_i64(event.room.0),
                seq: to_i64(event.seq),
                client_id: id.clone(),
                sender: to_i64(sender.0),
                sender_name: sender_name.clone(),
                body: body.clone(),
                ts: event.ts,
                edited: edited_ts.is_some(),
                deleted: *deleted,
                reply_to: reply_to.map(to_i64),
                mentions: mentions.clone(),
                mention_room: *mention_room,
                reactions: reactions.clone(),
                attachments: attachments.clone(),
            }),
            _ => None,
        }
    }
}

/// What a reply's quote shows of its original's text.
pub fn quote_text(body: &str) -> String {
    markup::first_line(body, Quote::MAX_CHARS)
}

/// A JSON list column; an unreadable one (never written by this version) reads as empty.
fn json_list<T: DeserializeOwned>(json: &str) -> Vec<T> {
    serde_json::from_str(json).unwrap_or_default()
}

/// A list as a JSON column.
fn json_text<T: Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a list for the cache");
        "[]".to_owned()
    })
}

/// Reads messages with their reply's original; callers add `WHERE` on `m`.
const MESSAGE_SELECT: &str = "SELECT m.room, m.seq, m.client_id, m.sender, m.sender_name, \
     m.body, m.ts, m.edited, m.deleted, m.reply_to, m.mentions, m.mention_room, m.reactions, \
     m.attachments, q.sender_name AS q_sender_name, q.body AS q_body, q.deleted AS q_deleted \
     FROM messages m LEFT JOIN messages q ON q.room = m.room AND q.seq = m.reply_to";

const ROOM_COLUMNS: &str = "id, name, kind, visibility, member_count, last_seq, role, read_seq, \
     unread, mentions, peer, synced_seq, complete_from, activity_ts, topic, notify, \
     peer_display_name";

/// SQLite integers are signed; seqs and ids never come near 2^63.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An enum's serde name (`"direct"`, `"not_a_member"`), for TEXT columns.
fn enum_str<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| Error::Storage(sqlx::Error::Decode(Box::new(e))))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Creates the cache file readable by its owner only, and tightens an older one (and its WAL
/// and shared-memory files, which SQLite creates with the file's mode).
fn owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let storage = |e: std::io::Error| Error::Storage(sqlx::Error::Io(e));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(storage)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(storage(e)),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// How long a statement waits for another connection's lock before "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Cache::scrub`]'s checkpoint waits for readers (holding the write lock).
const SCRUB_WAIT: Duration = Duration::from_millis(200);

async fn set_busy_timeout(conn: &mut SqliteConnection, wait: Duration) -> sqlx::Result<()> {
    sqlx::query(&format!("PRAGMA busy_timeout = {}", wait.as_millis()))
        .execute(conn)
        .await
        .map(drop)
}

impl Cache {
    /// Opens (creating if needed) the cache at `path` and brings its schema up to date,
    /// including the long [`upgrade`] (without reporting its progress).
    pub async fn open(path: &Path, keep_per_room: u32) -> Result<Cache> {
        let cache = Cache::connect(path, keep_per_room).await?;
        cache.upgrade(|_| {}).await?;
        Ok(cache)
    }

    /// Opens (creating if needed) the cache at `path` and runs its migrations, which are
    /// quick; [`Cache::upgrade`] must run before anything else is read or written (the app
    /// shows its progress meanwhile).
    ///
    /// Migration 0007 of earlier builds did the upgrade's work in one step; a cache that had
    /// it is of the current layout already, so the migrator does not ask for its file.
    pub async fn connect(path: &Path, keep_per_room: u32) -> Result<Cache> {
        owner_only(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .pragma("secure_delete", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Write transactions start with BEGIN IMMEDIATE: a deferred transaction that reads and
        // then writes fails at once with "database is locked" when another connection writes
        // (SQLite skips the busy handler to avoid a deadlock); an immediate one waits its turn.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let mut migrator = sqlx::migrate!("src-tauri/migrations");
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        // A persistent FTS5 option (SQLite 3.42+): deletes remove the tokens from the index.
        sqlx::query("INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1)")
            .execute(&pool)
            .await?;
        Ok(Cache {
            pool,
            keep_per_room: i64::from(keep_per_room.max(1)),
        })
    }

    /// Moves the WAL into the file and truncates it, so page images written before a delete
    /// (with the deleted text) are gone from the WAL too. Best effort: a busy reader makes it
    /// wait for the next one.
    ///
    /// A TRUNCATE checkpoint holds the write lock while it waits for readers, for as long as
    /// its busy timeout. With the pool's timeout a writer already queued behind another one
    /// could run out of time behind the checkpoint and fail with "database is locked" (seen in
    /// CI at logout), so the checkpoint waits only [`SCRUB_WAIT`] and leaves the rest to the
    /// next one.
    pub async fn scrub(&self) {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot checkpoint the cache's WAL");
                return;
            }
        };
        let done = async {
            set_busy_timeout(&mut conn, SCRUB_WAIT).await?;
            let done: (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await?;
            set_busy_timeout(&mut conn, BUSY_TIMEOUT).await?;
            Ok::<_, sqlx::Error>(done)
        }
        .await;
        match done {
            Ok((0, _, _)) => {}
            Ok(_) => tracing::debug!("WAL checkpoint busy; the next one truncates it"),
            Err(e) => {
                // Whatever its busy timeout now is, the connection does not go back to the pool.
                conn.close_on_drop();
                tracing::warn!(error = %e, "cannot checkpoint the cache's WAL");
            }
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // -----------------------------------------------------------------------------------------
    // Settings
    // -----------------------------------------------------------------------------------------

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A JSON-encoded setting; `None` when absent or unreadable (e.g. from an older version).
    pub async fn json_setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(self
            .setting(key)
            .await?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub async fn set_json_setting<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)
            .map_err(|e| Error::Storage(sqlx::Error::Encode(Box::new(e))))?;
        self.set_setting(key, &json).await
    }

    /// Forgets everything about the account (rooms, messages, outbox, drafts, ...), keeping
    /// only `settings`.
    pub async fn clear_account(&self) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for table in [
            "members",
            "rooms",
            "users",
            "messages",
            "read_markers",
            "outbox",
            "reaction_outbox",
            "drafts",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.scrub().await;
        Ok(())
    }

    /// The server's store lost data (close 4010): forgets what came from it — rooms (with their
    /// resume cursors and read state), members, users, messages (the FTS index follows by
    /// trigger) and read markers — so nothing it no longer has is shown and the next `hello`
    /// resumes nothing. Keeps what only this device has: the outbox (never acknowledged, so
    /// still to be sent once under the same client ids), drafts and settings (except the
    /// store epoch, which belonged to the dropped cursors).
    pub async fn reset_history(&self) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Unconfirmed reactions name seqs of the lost data set: they go too.
        for table in [
            "members",
            "rooms",
            "users",
            "messages",
            "read_markers",
            "reaction_outbox",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        // The cursors are gone; so is the data set they belonged to.
        sqlx::query("DELETE FROM settings WHERE key = ?")
            .bind(STORE_EPOCH)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.scrub().await;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Rooms
    // -----------------------------------------------------------------------------------------

    /// Takes the server's room list (from `welcome`): updates known rooms, adds new ones at
    /// their newest seq (the server replays nothing for rooms we have no cursor for), and drops
    /// rooms we are no longer in.
    pub async fn sync_rooms(&self, rooms: &[Room]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for room in rooms {
            upsert_room(&mut tx, room).await?;
            let id = to_i64(room.id.0);
            let server_last = to_i64(room.last_seq);
            // A cursor beyond the server's end means the server lost history (restored from an
            // older backup): drop what it no longer has and follow it from its end.
            let ahead: Option<i64> =
                sqlx::query_scalar("SELECT id FROM rooms WHERE id = ? AND synced_seq > ?")
                    .bind(id)
                    .bind(server_last)
                    .fetch_optional(&mut *tx)
                    .await?;
            if ahead.is_some() {
                sqlx::query("DELETE FROM messages WHERE room = ? AND seq > ?")
                    .bind(id)
                    .bind(server_last)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE rooms SET synced_seq = ?2, last_seq = ?2, complete_from = ?2 + 1 \
                     WHERE id = ?1",
                )
                .bind(id)
                .bind(server_last)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE rooms SET synced_seq = COALESCE(synced_seq, last_seq), \
                 complete_from = COALESCE(complete_from, last_seq + 1) WHERE id = ?",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let keep: Vec<i64> = rooms.iter().map(|r| to_i64(r.id.0)).collect();
        let cached: Vec<i64> = sqlx::query_scalar("SELECT id FROM rooms")
            .fetch_all(&mut *tx)
            .await?;
        for id in cached.into_iter().filter(|id| !keep.contains(id)) {
            remove_room(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds or refreshes a room from a REST answer (join, create, DM). A new room starts
    /// untracked: the socket tells where its stream stands.
    pub async fn upsert_room(&self, room: &Room) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        upsert_room(&mut conn, room).await
    }

    /// Forgets a room and everything in it.
    pub async fn remove_room(&self, room: RoomId) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        remove_room(&mut tx, to_i64(room.0)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn room(&self, room: RoomId) -> Result<Option<CachedRoom>> {
        sqlx::query_as::<_, RoomRow>(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?"))
            .bind(to_i64(room.0))
            .fetch_optional(&self.pool)
            .await?
            .map(RoomRow::into_cached)
            .transpose()
    }

    /// All rooms, most recently active first.
    pub async fn rooms(&self) -> Result<Vec<CachedRoom>> {
        sqlx::query_as::<_, RoomRow>(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms ORDER BY activity_ts DESC, last_seq DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(RoomRow::into_cached)
        .collect()
    }

    /// Resume cursors for `hello`: the last applied seq of every tracked room.
    pub async fn cursors(&self) -> Result<Vec<Cursor>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, synced_seq FROM rooms WHERE synced_seq IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(room, seq)| Cursor {
                room: RoomId(to_u64(room)),
                seq: to_u64(seq),
            })
            .collect())
    }

    /// Jumps a room's cursor to `seq` without the events before it (a gap too big to fill):
    /// nothing before `seq` counts as cached without holes any more.
    pub async fn skip_to(&self, room: RoomId, seq: u64) -> Result<()> {
        sqlx::query(
            "UPDATE rooms SET synced_seq = ?2, complete_from = ?2 + 1, \
             last_seq = max(last_seq, ?2) WHERE id = ?1",
        )
        .bind(to_i64(room.0))
        .bind(to_i64(seq))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sum of unread counts over all rooms (for the tray).
    pub async fn total_unread(&self) -> Result<u64> {
        let total: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(unread), 0) FROM rooms")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(total))
    }

    // -----------------------------------------------------------------------------------------
    // Room events
    // -----------------------------------------------------------------------------------------

    /// Applies one event of a room's stream (live, replayed or gap fill), in seq order.
    /// `me` decides what counts as unread and which outbox entries the event settles.
    pub async fn apply_event(&self, event: &RoomEvent, me: UserId) -> Result<Applied> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let room = to_i64(event.room.0);
        let seq = to_i64(event.seq);
        let state: Option<(Option<i64>, i64, i64, Option<String>)> =
            sqlx::query_as("SELECT synced_seq, last_seq, read_seq, role FROM rooms WHERE id = ?")
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((synced, last_seq, read_seq, role)) = state else {
            return Ok(Applied::UnknownRoom);
        };
        if synced.is_some_and(|s| seq <= s) {
            return Ok(Applied::Duplicate);
        }
        // Events missing in between (or none seen yet): the hole-free range starts here.
        let hole = synced.is_none_or(|s| seq > s + 1);
        let mut changes = Changes::default();
        let mut trim = false;
        // A message's text was erased: scrub the WAL after the commit.
        let mut erased = false;
        match &event.event {
            EventBody::Message {
                id,
                sender,
                deleted,
                ..
            } => {
                let mut inserted = false;
                if let Some(new) = NewMessage::from_event(event) {
                    inserted = upsert_message(&mut tx, &new).await?;
                }
                if *sender == me {
                    changes.from_outbox = sqlx::query("DELETE FROM outbox WHERE client_id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        > 0;
                    // Like the server: writing in a room means having read what came before.
                    changes.rooms_changed |= clear_unread(&mut tx, room).await?;
                } else if !*deleted && seq > read_seq && seq > last_seq {
                    // Only events newer than the room's last seq: the server's count (from
                    // `welcome` or REST) already includes replayed and filled ones.
                    sqlx::query(
                        "UPDATE rooms SET unread = min(unread + 1, ?1), \
                         mentions = min(mentions + ?2, ?1) WHERE id = ?3",
                    )
                    .bind(UNREAD_CAP)
                    .bind(i64::from(event.mentions(me)))
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
                    changes.rooms_changed = true;
                }
                if inserted || changes.from_outbox {
                    changes.message = message_in(&mut tx, room, seq).await?;
                }
                trim = true;
            }
            EventBody::Edit { target, body, .. } => {
                let done = sqlx::query(
                    "UPDATE messages SET body = ?, plain = ?, edited = 1 WHERE room = ? AND seq = ? AND deleted = 0",
                )
                .bind(body)
                .bind(markup::plain_text(body))
                .bind(room)
                .bind(to_i64(*target))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    changes.message = message_in(&mut tx, room, to_i64(*target)).await?;
                }
            }
            EventBody::Delete { target, .. } => {
                // A deleted message stops counting as a mention (protocol §1.9).
                let counted: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT m.seq, r.read_seq FROM messages m JOIN rooms r ON r.id = m.room \
                     WHERE m.room = ?1 AND m.seq = ?2 AND m.deleted = 0 AND m.sender != ?3 \
                     AND (m.mention_room OR EXISTS \
                     (SELECT 1 FROM json_each(m.mentions) WHERE value = ?3))",
                )
                .bind(room)
                .bind(to_i64(*target))
                .bind(to_i64(me.0))
                .fetch_optional(&mut *tx)
                .await?;
                if counted.is_some_and(|(seq, read)| seq > read) {
                    sqlx::query("UPDATE rooms SET mentions = max(mentions - 1, 0) WHERE id = ?")
                        .bind(room)
                        .execute(&mut *tx)
                        .await?;
                    changes.rooms_changed = true;
                }
                let done = sqlx::query(
                    "UPDATE messages SET body = '', plain = '', deleted = 1, reactions = '[]', \
                     attachments = '[]' WHERE room = ? AND seq = ? AND deleted = 0",
                )
                .bind(room)
                .bind(to_i64(*target))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    erased = true;
                    changes.message = message_in(&mut tx, room, to_i64(*target)).await?;
                }
            }
            EventBody::MemberJoined {
                user,
                username,
                role: member_role,
                ..
            } => {
                upsert_user(&mut tx, *user, username).await?;
                // Counted only when new here: a member list fetched after the join already
                // holds them (and the count with them). An upsert reports a row either way.
                let new = sqlx::query(
                    "INSERT INTO members (room, user, owner) VALUES (?, ?, ?) \
                     ON CONFLICT (room, user) DO NOTHING",
                )
                .bind(room)
                .bind(to_i64(user.0))
                .bind(*member_role == Role::Owner)
                .execute(&mut *tx)
                .await?;
                if new.rows_affected() == 0 {
                    sqlx::query("UPDATE members SET owner = ? WHERE room = ? AND user = ?")
                        .bind(*member_role == Role::Owner)
                        .bind(room)
                        .bind(to_i64(user.0))
                        .execute(&mut *tx)
                        .await?;
                }
                if *user == me {
                    sqlx::query("UPDATE rooms SET role = ? WHERE id = ?")
                        .bind(enum_str(member_role))
                        .bind(room)
                        .execute(&mut *tx)
                        .await?;
                    // Joining reads what came before, but not what the server already counted
                    // after it (the room was fetched when messages had followed the join).
                    if seq >= last_seq {
                        clear_unread(&mut tx, room).await?;
                    }
                } else if new.rows_affected() > 0 {
                    sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?")
                        .bind(room)
                        .execute(&mut *tx)
                        .await?;
                }
                changes.rooms_changed = true;
            }
            EventBody::MemberLeft { user, .. } => {
                if *user == me {
                    remove_room(&mut tx, room).await?;
                    tx.commit().await?;
                    changes.left = true;
                    changes.rooms_changed = true;
                    return Ok(Applied::Done(changes));
                }
                sqlx::query("DELETE FROM members WHERE room = ? AND user = ?")
                    .bind(room)
                    .bind(to_i64(user.0))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE rooms SET member_count = max(member_count - 1, 0) WHERE id = ?",
                )
                .bind(room)
                .execute(&mut *tx)
                .await?;
                changes.rooms_changed = true;
            }
            EventBody::OwnerChanged { user } => {
                sqlx::query("UPDATE members SET owner = (user = ?) WHERE room = ?")
                    .bind(to_i64(user.0))
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
                let my_role = if *user == me {
                    Some(Role::Owner)
                } else if role.as_deref() == Some("owner") {
                    Some(Role::Member)
                } else {
                    None
                };
                if let Some(my_role) = my_role {
                    sqlx::query("UPDATE rooms SET role = ? WHERE id = ?")
                        .bind(enum_str(&my_role))
                        .bind(room)
                        .execute(&mut *tx)
                        .await?;
                }
                changes.rooms_changed = true;
            }
            EventBody::ReactionAdded {
                target,
                user,
                emoji,
            } => {
                changes.message = react_in(&mut tx, room, *target, *user, emoji, true).await?;
            }
            EventBody::ReactionRemoved {
                target,
                user,
                emoji,
            } => {
                changes.message = react_in(&mut tx, room, *target, *user, emoji, false).await?;
            }
            // Kinds this client does not know: the seq still counts as synced below.
            EventBody::Unknown => {}
            EventBody::RoomUpdated { name, topic, .. } => {
                settings::apply_room_update(&mut tx, room, name.as_deref(), topic.as_deref())
                    .await?;
                changes.rooms_changed = true;
            }
            EventBody::RoomDeleted { .. } => {
                // Like leaving: the room and everything cached of it go (the server has
                // dropped its history too).
                remove_room(&mut tx, room).await?;
                tx.commit().await?;
                changes.left = true;
                changes.rooms_changed = true;
                return Ok(Applied::Done(changes));
            }
        }
        sqlx::query(
            "UPDATE rooms SET synced_seq = ?2, last_seq = max(last_seq, ?2), \
             activity_ts = max(activity_ts, ?3), \
             complete_from = CASE WHEN ?4 THEN ?2 ELSE complete_from END WHERE id = ?1",
        )
        .bind(room)
        .bind(seq)
        .bind(event.ts)
        .bind(hole)
        .execute(&mut *tx)
        .await?;
        if trim {
            self.trim(&mut tx, room).await?;
        }
        tx.commit().await?;
        if erased {
            self.scrub().await;
        }
        Ok(Applied::Done(changes))
    }

    /// Stores a page of history (REST) for `room`: its messages, in their current state. When
    /// the page reaches down from the hole-free range, `extends_to` is the new lower end of that
    /// range (0 when the page reached the start of history).
    pub async fn store_page(
        &self,
        room: RoomId,
        events: &[RoomEvent],
        extends_to: Option<u64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = to_i64(room.0);
        for event in events.iter().filter(|e| e.room == room) {
            if let Some(new) = NewMessage::from_event(event) {
                upsert_message(&mut tx, &new).await?;
            }
        }
        if let Some(from) = extends_to {
            sqlx::query(
                "UPDATE rooms SET complete_from = min(complete_from, ?) \
                 WHERE id = ? AND complete_from IS NOT NULL",
            )
            .bind(to_i64(from))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        self.trim(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retention: keeps the newest `keep_per_room` messages of `room`.
    async fn trim(&self, conn: &mut SqliteConnection, room: i64) -> Result<()> {
        let deleted = sqlx::query(
            "DELETE FROM messages WHERE room = ?1 AND seq < \
             (SELECT seq FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(room)
        .bind(self.keep_per_room - 1)
        .execute(&mut *conn)
        .await?;
        if deleted.rows_affected() > 0 {
            sqlx::query(
                "UPDATE rooms SET complete_from = \
                 max(complete_from, (SELECT min(seq) FROM messages WHERE room = ?1)) \
                 WHERE id = ?1 AND complete_from IS NOT NULL",
            )
            .bind(room)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Messages
    // -----------------------------------------------------------------------------------------

    /// Up to `limit` cached messages of `room` with `from <= seq < before`, ascending.
    pub async fn messages(
        &self,
        room: RoomId,
        from: u64,
        before: u64,
        limit: u32,
    ) -> Result<Vec<MessageView>> {
        let mut rows = sqlx::query_as::<_, MessageRow>(&format!(
            "{MESSAGE_SELECT} WHERE m.room = ? AND m.seq >= ? AND m.seq < ? \
             ORDER BY m.seq DESC LIMIT ?"
        ))
        .bind(to_i64(room.0))
        .bind(to_i64(from))
        .bind(to_i64(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.reverse();
        Ok(rows.into_iter().map(MessageRow::view).collect())
    }

    /// Whether any cached message of `room` is older than `seq`.
    pub async fn has_cached_before(&self, room: RoomId, seq: u64) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE room = ? AND seq < ? LIMIT 1")
                .bind(to_i64(room.0))
                .bind(to_i64(seq))
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    pub async fn message(&self, room: RoomId, seq: u64) -> Result<Option<MessageView>> {
        let mut conn = self.pool.acquire().await?;
        message_in(&mut conn, to_i64(room.0), to_i64(seq)).await
    }

    /// The newest cached message of `room`.
    pub async fn last_message(&self, room: RoomId) -> Result<Option<MessageView>> {
        Ok(sqlx::query_as::<_, MessageRow>(&format!(
            "{MESSAGE_SELECT} WHERE m.room = ? ORDER BY m.seq DESC LIMIT 1"
        ))
        .bind(to_i64(room.0))
        .fetch_optional(&self.pool)
        .await?
        .map(MessageRow::view))
    }

    /// How many messages of `room` are cached.
    pub async fn message_count(&self, room: RoomId) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE room = ?")
            .bind(to_i64(room.0))
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    // -----------------------------------------------------------------------------------------
    // Outbox
    // -----------------------------------------------------------------------------------------

    /// Puts a new message in the outbox, pending.
    pub async fn outbox_add(&self, client_id: &str, room: RoomId, msg: &Outgoing) -> Result<()> {
        self.outbox_add_with_files(client_id, room, msg, &[]).await
    }

    /// Puts a new message with `files` (staged by the caller) in the outbox, pending: it is
    /// sent once they are uploaded.
    pub async fn outbox_add_with_files(
        &self,
        client_id: &str,
        room: RoomId,
        msg: &Outgoing,
        files: &[UploadView],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (client_id, room, body, created, state, reply_to, mentions, \
             mention_room, files) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        )
        .bind(client_id)
        .bind(to_i64(room.0))
        .bind(&msg.body)
        .bind(now_ms())
        .bind(msg.reply_to.map(to_i64))
        .bind(json_text(&msg.mentions))
        .bind(msg.mention_room)
        .bind(json_text(files))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// File `pos` of outbox entry `client_id` is uploaded as `attachment`. `false` when the
    /// entry is gone (cancelled, discarded) or that file was recorded already (an upload
    /// repeated after a restart): the attachment is then not used.
    pub async fn outbox_uploaded(
        &self,
        client_id: &str,
        pos: usize,
        attachment: &Attachment,
    ) -> Result<bool> {
        let json = serde_json::to_string(attachment)
            .map_err(|e| Error::Storage(sqlx::Error::Encode(Box::new(e))))?;
        let done = sqlx::query(
            "UPDATE outbox SET attachments = json_insert(attachments, '$[#]', json(?)) \
             WHERE client_id = ? AND json_array_length(attachments) = ? \
             AND json_array_length(attachments) < json_array_length(files)",
        )
        .bind(json)
        .bind(client_id)
        .bind(i64::try_from(pos).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Pending entries with files still to upload, in the order they were written.
    pub async fn outbox_uploading(&self) -> Result<Vec<OutboxEntry>> {
        Ok(sqlx::query_as::<_, OutboxEntry>(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' \
             AND json_array_length(attachments) < json_array_length(files) ORDER BY created, rowid"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Client ids of every outbox entry (whose staged files are still needed).
    pub async fn outbox_ids(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT client_id FROM outbox")
            .fetch_all(&self.pool)
            .await?)
    }

    /// The quoted preview of message `seq` of `room`, when it is cached.
    pub async fn quote(&self, room: RoomId, seq: u64) -> Result<Option<Quote>> {
        let row: Option<(String, String, bool)> = sqlx::query_as(
            "SELECT sender_name, body, deleted FROM messages WHERE room = ? AND seq = ?",
        )
        .bind(to_i64(room.0))
        .bind(to_i64(seq))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(sender_name, body, deleted)| Quote {
            sender_name,
            text: if deleted {
                String::new()
            } else {
                quote_text(&body)
            },
            deleted,
        }))
    }

    pub async fn outbox_entry(&self, client_id: &str) -> Result<Option<OutboxEntry>> {
        Ok(sqlx::query_as::<_, OutboxEntry>(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE client_id = ?"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Pending entries ready to send (their files, if any, uploaded) in the order they were
    /// written (the order to send them in). A message whose files are still uploading is sent
    /// when they are up; messages written after it do not wait for it.
    pub async fn outbox_pending(&self) -> Result<Vec<OutboxEntry>> {
        Ok(sqlx::query_as::<_, OutboxEntry>(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' \
             AND json_array_length(attachments) >= json_array_length(files) ORDER BY created, rowid"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many messages wait in the outbox (pending and failed).
    pub async fn outbox_count(&self) -> Result<u32> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Every entry of `room` (pending and failed), oldest first.
    pub async fn outbox_for_room(&self, room: RoomId) -> Result<Vec<OutboxEntry>> {
        Ok(sqlx::query_as::<_, OutboxEntry>(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE room = ? ORDER BY created, rowid"
        ))
        .bind(to_i64(room.0))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks an entry failed; `false` when it is no longer in the outbox.
    pub async fn outbox_fail(
        &self,
        client_id: &str,
        code: ErrorCode,
        reason: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'failed', fail_code = ?, fail_reason = ? WHERE client_id = ?",
        )
        .bind(enum_str(&code))
        .bind(reason)
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes a failed entry pending again; `false` when it is not in the outbox.
    pub async fn outbox_retry(&self, client_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', fail_code = NULL, fail_reason = NULL \
             WHERE client_id = ?",
        )
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Drops an entry; `false` when it was not in the outbox.
    pub async fn outbox_discard(&self, client_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM outbox WHERE client_id = ?")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The server accepted an outbox entry: it moves to `messages` under its seq, in one
    /// transaction. `None` when the entry had already left (e.g. its event came first).
    pub async fn outbox_acked(&self, ack: &SendAck, me: &User) -> Result<Option<MessageView>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let entry = sqlx::query_as::<_, OutboxEntry>(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE client_id = ?"
        ))
        .bind(&ack.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM outbox WHERE client_id = ?")
            .bind(&ack.id)
            .execute(&mut *tx)
            .await?;
        let room = entry.room;
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM rooms WHERE id = ?")
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?;
        let seq = to_i64(ack.seq);
        let message = if known.is_some() {
            upsert_message(
                &mut tx,
                &NewMessage {
                    room,
                    seq,
                    client_id: ack.id.clone(),
                    sender: to_i64(me.id.0),
                    sender_name: me.username.clone(),
                    body: entry.body.clone(),
                    ts: ack.ts,
                    edited: false,
                    deleted: false,
                    reply_to: entry.reply_to,
                    mentions: entry.mention_ids(),
                    mention_room: entry.mention_room,
                    reactions: Vec::new(),
                    attachments: entry.attachment_list(),
                },
            )
            .await?;
            sqlx::query("UPDATE rooms SET activity_ts = max(activity_ts, ?) WHERE id = ?")
                .bind(ack.ts)
                .bind(room)
                .execute(&mut *tx)
                .await?;
            self.trim(&mut tx, room).await?;
            message_in(&mut tx, room, seq).await?
        } else {
            // Not a cached room (sent to a room we are not tracking): report it as sent.
            let mut view = entry.view(me);
            view.seq = Some(ack.seq);
            view.ts = ack.ts;
            view.status = MessageStatus::Sent;
            view.attachments = entry.attachment_list();
            view.uploads = Vec::new();
            Some(view)
        };
        tx.commit().await?;
        Ok(message)
    }

    // -----------------------------------------------------------------------------------------
    // Reactions
    // -----------------------------------------------------------------------------------------

    /// Applies the user's own reaction change at once (before the server confirms it), so it
    /// shows offline too. Returns the message when it changed.
    pub async fn react_locally(
        &self,
        room: RoomId,
        seq: u64,
        me: UserId,
        emoji: &str,
        add: bool,
    ) -> Result<Option<MessageView>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let changed = react_in(&mut tx, to_i64(room.0), seq, me, emoji, add).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Queues a reaction change for the server, replacing an unconfirmed one for the same
    /// message and emoji (only the latest intent matters). Returns it with its new `op`.
    pub async fn reaction_queue(
        &self,
        room: RoomId,
        seq: u64,
        emoji: &str,
        remove: bool,
    ) -> Result<PendingReaction> {
        let op = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(
            "INSERT INTO reaction_outbox (room, seq, emoji, remove, op, created) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room, seq, emoji) DO UPDATE SET \
             remove = excluded.remove, op = excluded.op, created = excluded.created",
        )
        .bind(to_i64(room.0))
        .bind(to_i64(seq))
        .bind(emoji)
        .bind(remove)
        .bind(&op)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(PendingReaction {
            room,
            seq,
            emoji: emoji.to_owned(),
            remove,
            op,
        })
    }

    /// Unconfirmed reaction changes, oldest first.
    pub async fn reactions_pending(&self) -> Result<Vec<PendingReaction>> {
        let rows: Vec<(i64, i64, String, bool, String)> = sqlx::query_as(
            "SELECT room, seq, emoji, remove, op FROM reaction_outbox ORDER BY created, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(room, seq, emoji, remove, op)| PendingReaction {
                room: RoomId(to_u64(room)),
                seq: to_u64(seq),
                emoji,
                remove,
                op,
            })
            .collect())
    }

    /// The unconfirmed change sent as `op`, if it is still the latest intent.
    pub async fn reaction_op(&self, op: &str) -> Result<Option<PendingReaction>> {
        Ok(self
            .reactions_pending()
            .await?
            .into_iter()
            .find(|p| p.op == op))
    }

    /// The server confirmed (or refused for good) the change sent as `op`: it leaves the
    /// queue, unless a newer intent replaced it. `true` when a row went.
    pub async fn reaction_done(&self, op: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM reaction_outbox WHERE op = ?")
            .bind(op)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // -----------------------------------------------------------------------------------------
    // Read markers
    // -----------------------------------------------------------------------------------------

    /// Moves the read marker of `room` forward to `seq` (never back) and recounts unread
    /// messages. `synced`: the server already knows (it told us, or we just told it).
    /// Returns whether anything moved.
    pub async fn set_read(&self, room: RoomId, seq: u64, synced: bool, me: UserId) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = to_i64(room.0);
        let seq = to_i64(seq);
        let current: Option<(i64, i64)> =
            sqlx::query_as("SELECT seq, synced FROM read_markers WHERE room = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let room_state: Option<(i64,)> = sqlx::query_as("SELECT read_seq FROM rooms WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let marker = current.map_or(0, |c| c.0);
        let room_read = room_state.map_or(0, |r| r.0);
        if seq <= marker.max(room_read) {
            // Not forward. Still record that the server knows the current marker.
            if synced && current.is_some_and(|(s, sy)| s <= seq && sy == 0) {
                sqlx::query("UPDATE read_markers SET synced = 1 WHERE room = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO read_markers (room, seq, synced) VALUES (?1, ?2, ?3) \
             ON CONFLICT (room) DO UPDATE SET seq = excluded.seq, synced = excluded.synced",
        )
        .bind(id)
        .bind(seq)
        .bind(synced)
        .execute(&mut *tx)
        .await?;
        if room_state.is_some() {
            sqlx::query("UPDATE rooms SET read_seq = ? WHERE id = ?")
                .bind(seq)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            recount_unread(&mut tx, id, me).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Recounts the unread messages of `room` after its read marker.
    pub async fn recount_unread(&self, room: RoomId, me: UserId) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        recount_unread(&mut conn, to_i64(room.0), me).await
    }

    /// Read markers moved here that the server has not been told about.
    pub async fn unsynced_read_markers(&self) -> Result<Vec<(RoomId, u64)>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT room, seq FROM read_markers WHERE synced = 0")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(r, s)| (RoomId(to_u64(r)), to_u64(s)))
            .collect())
    }

    pub async fn read_marker_synced(&self, room: RoomId, seq: u64) -> Result<()> {
        sqlx::query("UPDATE read_markers SET synced = 1 WHERE room = ? AND seq <= ?")
            .bind(to_i64(room.0))
            .bind(to_i64(seq))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Users and members
    // -----------------------------------------------------------------------------------------

    /// Presence of a user we know; `false` when we do not know them.
    pub async fn set_presence(
        &self,
        user: UserId,
        online: bool,
        last_seen: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET online = ?, last_seen = ? WHERE id = ?")
            .bind(online)
            .bind(last_seen)
            .bind(to_i64(user.0))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Remembers another user with presence (e.g. a direct room's peer).
    pub async fn set_user(&self, user: &protocol::rest::UserPublic) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, online, last_seen, display_name) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
             online = excluded.online, last_seen = excluded.last_seen, \
             display_name = excluded.display_name",
        )
        .bind(to_i64(user.id.0))
        .bind(&user.username)
        .bind(user.online)
        .bind(user.last_seen)
        .bind(&user.display_name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether `user` is online, when known.
    pub async fn online(&self, user: UserId) -> Result<Option<bool>> {
        Ok(
            sqlx::query_scalar::<_, bool>("SELECT online FROM users WHERE id = ?")
                .bind(to_i64(user.0))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces the member list of `room` with the server's.
    pub async fn set_members(&self, room: RoomId, members: &[Member]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = to_i64(room.0);
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM rooms WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        for m in members {
            upsert_user(&mut tx, m.user.id, &m.user.username).await?;
            sqlx::query(
                "UPDATE users SET online = ?, last_seen = ?, display_name = ? WHERE id = ?",
            )
            .bind(m.user.online)
            .bind(m.user.last_seen)
            .bind(&m.user.display_name)
            .bind(to_i64(m.user.id.0))
            .execute(&mut *tx)
            .await?;
        }
        if known.is_some() {
            sqlx::query("DELETE FROM members WHERE room = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for m in members {
                sqlx::query("INSERT INTO members (room, user, owner) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(to_i64(m.user.id.0))
                    .bind(m.role == Role::Owner)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE rooms SET member_count = ? WHERE id = ?")
                .bind(i64::try_from(members.len()).unwrap_or(i64::MAX))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The cached member list of `room` (owner first, then by name).
    pub async fn members(&self, room: RoomId) -> Result<Vec<MemberView>> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            username: String,
            online: bool,
            last_seen: Option<i64>,
            owner: bool,
            display_name: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT u.id, u.username, u.online, u.last_seen, m.owner, u.display_name \
             FROM members m JOIN users u ON u.id = m.user WHERE m.room = ? \
             ORDER BY m.owner DESC, u.username COLLATE NOCASE",
        )
        .bind(to_i64(room.0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MemberView {
                user: UserView {
                    id: UserId(to_u64(r.id)),
                    username: r.username,
                    display_name: r.display_name,
                    online: r.online,
                    last_seen: r.last_seen,
                },
                owner: r.owner,
            })
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // Drafts
    // -----------------------------------------------------------------------------------------

    pub async fn draft(&self, room: RoomId) -> Result<String> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT text FROM drafts WHERE room = ?")
                .bind(to_i64(room.0))
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or_default(),
        )
    }

    /// Saves the draft of `room`; an empty text removes it.
    pub async fn set_draft(&self, room: RoomId, text: &str) -> Result<()> {
        if text.is_empty() {
            sqlx::query("DELETE FROM drafts WHERE room = ?")
                .bind(to_i64(room.0))
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO drafts (room, text, updated) VALUES (?, ?, ?) \
                 ON CONFLICT (room) DO UPDATE SET text = excluded.text, updated = excluded.updated",
            )
            .bind(to_i64(room.0))
            .bind(text)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

/// Sets `unread` of a room from its read marker: exact when every message after the marker is
/// cached, 0 when the marker is at the end, otherwise the server's last count stays.
async fn recount_unread(conn: &mut SqliteConnection, room: i64, me: UserId) -> Result<()> {
    let state: Option<(i64, i64, Option<i64>)> =
        sqlx::query_as("SELECT read_seq, last_seq, complete_from FROM rooms WHERE id = ?")
            .bind(room)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((read_seq, last_seq, complete_from)) = state else {
        return Ok(());
    };
    let (unread, mentions) = if read_seq >= last_seq {
        (0, 0)
    } else if complete_from.is_some_and(|c| c <= read_seq + 1) {
        let (n, m): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(mention_room OR EXISTS \
             (SELECT 1 FROM json_each(mentions) WHERE value = ?3)), 0) FROM messages \
             WHERE room = ?1 AND seq > ?2 AND sender != ?3 AND deleted = 0",
        )
        .bind(room)
        .bind(read_seq)
        .bind(to_i64(me.0))
        .fetch_one(&mut *conn)
        .await?;
        (n.min(UNREAD_CAP), m.min(UNREAD_CAP))
    } else {
        return Ok(());
    };
    sqlx::query("UPDATE rooms SET unread = ?, mentions = ? WHERE id = ?")
        .bind(unread)
        .bind(mentions)
        .bind(room)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets a room's unread count to 0; `true` when it was not 0.
async fn clear_unread(conn: &mut SqliteConnection, room: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE rooms SET unread = 0, mentions = 0 WHERE id = ? AND (unread != 0 OR mentions != 0)",
    )
    .bind(room)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

async fn upsert_room(conn: &mut SqliteConnection, room: &Room) -> Result<()> {
    sqlx::query(
        "INSERT INTO rooms (id, name, kind, visibility, member_count, last_seq, role, read_seq, unread, mentions, \
         peer, topic, notify, peer_display_name) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
         visibility = excluded.visibility, member_count = excluded.member_count, \
         last_seq = max(rooms.last_seq, excluded.last_seq), role = excluded.role, \
         read_seq = max(rooms.read_seq, excluded.read_seq), unread = excluded.unread, \
         mentions = excluded.mentions, peer = excluded.peer, topic = excluded.topic, \
         notify = excluded.notify, peer_display_name = excluded.peer_display_name",
    )
    .bind(to_i64(room.id.0))
    .bind(&room.name)
    .bind(enum_str(&room.kind))
    .bind(enum_str(&room.visibility))
    .bind(to_i64(room.member_count))
    .bind(to_i64(room.last_seq))
    .bind(room.role.as_ref().map(enum_str))
    .bind(to_i64(room.read_seq))
    .bind(to_i64(room.unread))
    .bind(to_i64(room.mentions))
    .bind(room.peer.map(|p| to_i64(p.0)))
    .bind(&room.topic)
    .bind(enum_str(&room.notify))
    .bind(&room.peer_display_name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn remove_room(conn: &mut SqliteConnection, room: i64) -> Result<()> {
    for sql in [
        "DELETE FROM messages WHERE room = ?",
        "DELETE FROM members WHERE room = ?",
        "DELETE FROM read_markers WHERE room = ?",
        "DELETE FROM drafts WHERE room = ?",
        "DELETE FROM reaction_outbox WHERE room = ?",
        "DELETE FROM rooms WHERE id = ?",
    ] {
        sqlx::query(sql).bind(room).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn upsert_user(conn: &mut SqliteConnection, user: UserId, username: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username) VALUES (?, ?) \
         ON CONFLICT (id) DO UPDATE SET username = excluded.username",
    )
    .bind(to_i64(user.0))
    .bind(username)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Message ids count down from here as time goes on: a message's id is `ID_BASE - ts` (ts in
/// milliseconds, year 6429 at most); [`Cache::upgrade`] numbers older caches the same way.
pub(crate) const ID_BASE: i64 = 1 << 47;

/// A new message's id: `ID_BASE - ts`, or when another message has that id already, the first
/// free id below it (a later arrival of the same millisecond counts as newer). Ids follow time
/// backwards, so the FTS index, ordered by id, lists matches newest first and a search reads
/// its first hits and stops (`ORDER BY rowid` needs no sort). Backwards because FTS5 skips
/// ahead in a long list of matches (its doclist index) only when it reads the list forwards:
/// "a rare word AND a common word" jumps from one rare match to the next instead of stepping
/// through every message of the common word. Milliseconds, not finer: FTS5 stores the gaps
/// between a word's ids as varints, and small gaps keep the index small.
const NEXT_ID: &str =
    "(SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM messages WHERE id = ?1) THEN ?1 \
     ELSE (SELECT a.id - 1 FROM messages a WHERE a.id <= ?1 \
     AND NOT EXISTS (SELECT 1 FROM messages b WHERE b.id = a.id - 1) ORDER BY a.id DESC LIMIT 1) \
     END)";

/// Inserts or updates a message; `true` when the row is new or its content changed.
async fn upsert_message(conn: &mut SqliteConnection, m: &NewMessage) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO messages (id, room, seq, client_id, sender, sender_name, body, plain, ts, \
         edited, deleted, reply_to, mentions, mention_room, reactions, attachments) \
         VALUES ({NEXT_ID}, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT (room, seq) DO UPDATE SET client_id = excluded.client_id, \
         sender = excluded.sender, sender_name = excluded.sender_name, body = excluded.body, \
         plain = excluded.plain, \
         ts = excluded.ts, edited = excluded.edited, deleted = excluded.deleted, \
         reply_to = excluded.reply_to, mentions = excluded.mentions, \
         mention_room = excluded.mention_room, reactions = excluded.reactions, \
         attachments = excluded.attachments \
         WHERE messages.body IS NOT excluded.body OR messages.edited IS NOT excluded.edited \
         OR messages.deleted IS NOT excluded.deleted OR messages.client_id IS NOT excluded.client_id \
         OR messages.reply_to IS NOT excluded.reply_to OR messages.mentions IS NOT excluded.mentions \
         OR messages.mention_room IS NOT excluded.mention_room \
         OR messages.reactions IS NOT excluded.reactions \
         OR messages.attachments IS NOT excluded.attachments"
    ))
    .bind(ID_BASE - m.ts.clamp(0, ID_BASE - 1))
    .bind(m.room)
    .bind(m.seq)
    .bind(&m.client_id)
    .bind(m.sender)
    .bind(&m.sender_name)
    .bind(&m.body)
    .bind(markup::plain_text(&m.body))
    .bind(m.ts)
    .bind(m.edited)
    .bind(m.deleted)
    .bind(m.reply_to)
    .bind(json_text(&m.mentions))
    .bind(m.mention_room)
    .bind(json_text(&m.reactions))
    .bind(json_text(&m.attachments))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Applies one reaction change to a cached message as a set operation; returns the message
/// when it changed (an unknown or deleted message, or a repeat, changes nothing).
async fn react_in(
    conn: &mut SqliteConnection,
    room: i64,
    target: u64,
    user: UserId,
    emoji: &str,
    add: bool,
) -> Result<Option<MessageView>> {
    let target = to_i64(target);
    let current: Option<String> = sqlx::query_scalar(
        "SELECT reactions FROM messages WHERE room = ? AND seq = ? AND deleted = 0",
    )
    .bind(room)
    .bind(target)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    let mut reactions: Vec<Reaction> = json_list(&current);
    if !apply_reaction(&mut reactions, user, emoji, add) {
        return Ok(None);
    }
    sqlx::query("UPDATE messages SET reactions = ? WHERE room = ? AND seq = ?")
        .bind(json_text(&reactions))
        .bind(room)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    message_in(conn, room, target).await
}

async fn message_in(
    conn: &mut SqliteConnection,
    room: i64,
    seq: i64,
) -> Result<Option<MessageView>> {
    Ok(
        sqlx::query_as::<_, MessageRow>(&format!(
            "{MESSAGE_SELECT} WHERE m.room = ? AND m.seq = ?"
        ))
        .bind(room)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?
        .map(MessageRow::view),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::rest::{RoomKind, Visibility};

    pub(crate) fn room(id: u64, last_seq: u64) -> Room {
        Room {
            id: RoomId(id),
            name: format!("room {id}"),
            kind: RoomKind::Group,
            visibility: Visibility::Public,
            member_count: 2,
            last_seq,
            role: Some(Role::Member),
            read_seq: 0,
            unread: 0,
            mentions: 0,
            peer: None,
            peer_display_name: None,
            topic: String::new(),
            notify: Default::default(),
        }
    }

    pub(crate) fn message(room: u64, seq: u64, sender: u64, body: &str) -> RoomEvent {
        RoomEvent {
            room: RoomId(room),
            seq,
            ts: 1000 + i64::try_from(seq).unwrap_or(0),
            event: EventBody::Message {
                id: format!("c{seq}"),
                sender: UserId(sender),
                sender_name: format!("user{sender}"),
                body: body.to_owned(),
                edited_ts: None,
                deleted: false,
                reply_to: None,
                reactions: Vec::new(),
                mentions: Vec::new(),
                mention_room: false,
                attachments: Vec::new(),
            },
        }
    }

    pub(crate) async fn open(keep: u32) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let cache = Cache::open(&dir.path().join("c.sqlite3"), keep)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        (dir, cache)
    }

    fn joined(room: u64, seq: u64, user: u64) -> RoomEvent {
        RoomEvent {
            room: RoomId(room),
            seq,
            ts: 1000,
            event: EventBody::MemberJoined {
                user: UserId(user),
                username: format!("user{user}"),
                role: Role::Member,
                by: None,
            },
        }
    }

    /// The member list came from the server after bob joined, his join event after it: he is
    /// counted once. A join of someone not listed counts.
    #[tokio::test]
    async fn a_join_already_in_the_member_list_is_not_counted_again() {
        let (_dir, cache) = open(10).await;
        let me = UserId(1);
        cache.sync_rooms(&[room(7, 0)]).await.unwrap_or_default();
        let member = |id: u64| Member {
            user: protocol::rest::UserPublic {
                id: UserId(id),
                username: format!("user{id}"),
                display_name: None,
                online: false,
                last_seen: None,
            },
            role: Role::Member,
        };
        cache
            .set_members(RoomId(7), &[member(1), member(2)])
            .await
            .unwrap_or_else(|e| panic!("set_members: {e}"));
        let count = || async {
            cache
                .room(RoomId(7))
                .await
                .ok()
                .flatten()
                .map(|c| c.room.member_count)
        };
        assert_eq!(count().await, Some(2));
        let applied = cache.apply_event(&joined(7, 1, 2), me).await.ok();
        assert!(matches!(applied, Some(Applied::Done(_))), "{applied:?}");
        assert_eq!(count().await, Some(2), "bob was listed already");
        let applied = cache.apply_event(&joined(7, 2, 3), me).await.ok();
        assert!(matches!(applied, Some(Applied::Done(_))), "{applied:?}");
        assert_eq!(count().await, Some(3), "carol is new");
    }

    #[tokio::test]
    async fn stream_events_are_applied_once_and_trimmed() {
        let (_dir, cache) = open(3).await;
        let me = UserId(1);
        cache.sync_rooms(&[room(7, 0)]).await.unwrap_or_default();
        for seq in 1..=5 {
            let applied = cache
                .apply_event(&message(7, seq, 2, &format!("m{seq}")), me)
                .await
                .unwrap_or(Applied::Duplicate);
            assert!(matches!(applied, Applied::Done(_)), "seq {seq}");
        }
        // A replayed event is a duplicate.
        let again = cache.apply_event(&message(7, 4, 2, "m4"), me).await.ok();
        assert_eq!(again, Some(Applied::Duplicate));
        let cached = cache.room(RoomId(7)).await.ok().flatten();
        assert_eq!(cached.as_ref().and_then(|c| c.synced_seq), Some(5));
        // Retention keeps 3; the hole-free range starts at the oldest kept.
        assert_eq!(cached.as_ref().and_then(|c| c.complete_from), Some(3));
        assert_eq!(cached.map(|c| c.room.unread), Some(5));
        let kept = cache
            .messages(RoomId(7), 0, u64::MAX, 10)
            .await
            .unwrap_or_default();
        let seqs: Vec<_> = kept.iter().filter_map(|m| m.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        // Unknown rooms are reported, not guessed.
        let unknown = cache.apply_event(&message(8, 1, 2, "x"), me).await.ok();
        assert_eq!(unknown, Some(Applied::UnknownRoom));
    }

    #[tokio::test]
    async fn a_server_behind_the_cache_resets_the_cursor() {
        let (_dir, cache) = open(100).await;
        let me = UserId(1);
        cache.sync_rooms(&[room(7, 0)]).await.unwrap_or_default();
        for seq in 1..=4 {
            let _ = cache.apply_event(&message(7, seq, 2, "m"), me).await;
        }
        // The server comes back from an older backup: it ends at seq 2.
        cache.sync_rooms(&[room(7, 2)]).await.unwrap_or_default();
        let cursors = cache.cursors().await.unwrap_or_default();
        assert_eq!(
            cursors,
            [Cursor {
                room: RoomId(7),
                seq: 2
            }]
        );
        assert_eq!(cache.message_count(RoomId(7)).await.ok(), Some(2));
        // Its new seq 3 is applied, not taken for a duplicate.
        let applied = cache
            .apply_event(&message(7, 3, 2, "new three"), me)
            .await
            .ok();
        assert!(matches!(applied, Some(Applied::Done(_))));
        let m = cache.message(RoomId(7), 3).await.ok().flatten();
        assert_eq!(m.map(|m| m.body), Some("new three".to_owned()));
    }

    #[tokio::test]
    async fn rooms_missing_from_welcome_are_dropped() {
        let (_dir, cache) = open(100).await;
        cache
            .sync_rooms(&[room(1, 0), room(2, 0)])
            .await
            .unwrap_or_default();
        let _ = cache.apply_event(&message(2, 1, 5, "bye"), UserId(1)).await;
        cache.sync_rooms(&[room(1, 0)]).await.unwrap_or_default();
        let ids: Vec<_> = cache
            .rooms()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.room.id)
            .collect();
        assert_eq!(ids, [RoomId(1)]);
        assert_eq!(cache.message_count(RoomId(2)).await.ok(), Some(0));
        assert!(cache.search("bye", 10).await.unwrap_or_default().is_empty());
    }
}
