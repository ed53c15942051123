//! Room settings and profiles in the cache (issue 13): a room's name and topic from
//! `room_updated`, the user's notification level per room (from `notify_level` and room
//! views), and display names (from `user_updated`, members and user cards). A deleted room is
//! dropped like a room the user left (`Cache::apply_event`).

use super::{enum_str, parse_enum, to_i64, Cache};
use crate::error::Result;
use protocol::ipc::UserView;
use protocol::rest::NotifyLevel;
use protocol::{RoomId, UserId};
use sqlx::SqliteConnection;

/// Applies a `room_updated` event: only the fields it carries change.
pub(super) async fn apply_room_update(
    conn: &mut SqliteConnection,
    room: i64,
    name: Option<&str>,
    topic: Option<&str>,
) -> Result<()> {
    if let Some(name) = name {
        sqlx::query("UPDATE rooms SET name = ? WHERE id = ?")
            .bind(name)
            .bind(room)
            .execute(&mut *conn)
            .await?;
    }
    if let Some(topic) = topic {
        sqlx::query("UPDATE rooms SET topic = ? WHERE id = ?")
            .bind(topic)
            .bind(room)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Cache {
    /// Stores the user's notification level for a room; false when the room is not cached.
    pub async fn set_notify(&self, room: RoomId, level: NotifyLevel) -> Result<bool> {
        let done = sqlx::query("UPDATE rooms SET notify = ? WHERE id = ?")
            .bind(enum_str(&level))
            .bind(to_i64(room.0))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The user's notification level for a room (`all` when the room is not cached).
    pub async fn notify_level(&self, room: RoomId) -> Result<NotifyLevel> {
        let level: Option<String> = sqlx::query_scalar("SELECT notify FROM rooms WHERE id = ?")
            .bind(to_i64(room.0))
            .fetch_optional(&self.pool)
            .await?;
        Ok(level.and_then(|l| parse_enum(&l).ok()).unwrap_or_default())
    }

    /// A user as last seen (members list, card, direct room peer), if cached.
    pub async fn user(&self, user: UserId) -> Result<Option<UserView>> {
        let row: Option<(String, Option<String>, bool, Option<i64>)> = sqlx::query_as(
            "SELECT username, display_name, online, last_seen FROM users WHERE id = ?",
        )
        .bind(to_i64(user.0))
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(username, display_name, online, last_seen)| UserView {
                id: user,
                username,
                display_name,
                online,
                last_seen,
            }),
        )
    }

    /// A user's new display name: in the users table and on their direct room's entry.
    pub async fn set_display_name(&self, user: UserId, name: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE users SET display_name = ? WHERE id = ?")
            .bind(name)
            .bind(to_i64(user.0))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE rooms SET peer_display_name = ? WHERE peer = ?")
            .bind(name)
            .bind(to_i64(user.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
