//! Privacy rules that are not about rooms' contents: who may see whose presence.
//!
//! Presence (online, last seen) is shown only to people who share a room with the user, the
//! same rule the socket follows when it routes `presence` frames. Everyone else sees the
//! documented "hidden" shape: `online: false` and no `last_seen`.

use crate::error::ApiResult;
use crate::AppState;
use protocol::UserId;

/// For each of `users`: whether `viewer` may see their presence (themselves, or a shared room).
pub async fn presence_visible(
    state: &AppState,
    viewer: UserId,
    users: &[UserId],
) -> ApiResult<Vec<bool>> {
    let others: Vec<UserId> = users.iter().copied().filter(|u| *u != viewer).collect();
    let mut shared = state.store.shares_room(viewer, &others).await?.into_iter();
    Ok(users
        .iter()
        .map(|u| *u == viewer || shared.next().unwrap_or(false))
        .collect())
}
