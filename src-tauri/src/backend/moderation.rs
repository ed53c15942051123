//! Moderation (protocol §2.9): a room owner bans and unbans, anyone blocks and unblocks.
//! The server enforces all of it; the app only asks and reports. What a banned or removed user
//! sees comes from the socket ([`super::sync`] emits
//! [`protocol::ipc::AppEvent::RemovedFromRoom`]).

use super::Backend;
use crate::error::Result;
use protocol::rest::UserRef;
use protocol::{RoomId, UserId};

impl Backend {
    /// Bans (`ban`) or unbans `user` from `room`. The banned member's removal reaches this
    /// app as a `member_left` event like any other (the member list then drops them).
    pub async fn set_ban(&self, room: RoomId, user: UserId, ban: bool) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.set_ban(&token, room, user, ban).await)
            .await
    }

    /// Who is banned from `room` (its owner only).
    pub async fn bans(&self, room: RoomId) -> Result<Vec<UserRef>> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.bans(&token, room).await).await
    }

    /// Blocks (`block`) or unblocks `user`.
    pub async fn set_block(&self, user: UserId, block: bool) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.set_block(&token, user, block).await)
            .await
    }

    /// The users this account blocked.
    pub async fn blocks(&self) -> Result<Vec<UserRef>> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.blocks(&token).await).await
    }
}
