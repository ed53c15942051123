//! Presence on this node: one task applies "user's first connection opened" / "last connection
//! closed" to the store strictly in the order they happened, and keeps the node's heartbeat.
//!
//! Ordering matters: a quick reconnect produces "down" then "up" for the same user; applied out
//! of order they would leave a connected user offline. Only a user's first and last connection
//! on a node reach the store, so the queue carries a small fraction of connection churn.

use crate::auth::now_ms;
use crate::AppState;
use protocol::UserId;
use std::time::Duration;
use tokio::sync::mpsc;

/// A change of a user's presence on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Up(UserId),
    Down(UserId),
}

/// Applies queued changes in order and beats the heartbeat, until shutdown.
pub async fn run(state: AppState, mut changes: mpsc::UnboundedReceiver<Change>) {
    let every = Duration::from_secs(state.config.presence_heartbeat_secs);
    let ttl_ms = (every * 3).as_millis() as i64;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            change = changes.recv() => {
                let Some(change) = change else { return };
                let result = match change {
                    Change::Up(user) => state.store.presence_up(user, now_ms()).await,
                    Change::Down(user) => state.store.presence_down(user, now_ms()).await,
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "presence update failed");
                }
            }
            _ = tick.tick() => {
                check_store(&state.hub, &state.store).await;
                match state.store.presence_heartbeat(now_ms(), ttl_ms).await {
                    Ok(false) => {}
                    Ok(true) => {
                        // Other nodes reaped this one while it could not reach the store: its
                        // users were announced offline. Announce the ones still here again.
                        let users = state.hub.users();
                        tracing::warn!(users = users.len(), "node was reaped during a store outage; re-announcing presence");
                        for user in users {
                            if let Err(e) = state.store.presence_up(user, now_ms()).await {
                                tracing::warn!(error = %e, "presence update failed");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "presence heartbeat failed"),
                }
            }
        }
    }
}

/// Closes every connection with 4010 if the store came back empty (Redis restarted without
/// persistence, or flushed). Their sessions, rooms and seqs are gone; new rooms and users
/// would reuse the old ids and seqs, which the connections' cursors would silently skip (or
/// route to the wrong account). Called on every presence heartbeat.
pub async fn check_store(hub: &crate::hub::Hub, store: &crate::store::Store) {
    match store.same_epoch().await {
        Ok(true) => {}
        Ok(false) => {
            crate::metrics::get().store_epoch_changes.increment(1);
            tracing::error!(
                connections = hub.connections(),
                "the store lost its data (Redis restarted without persistence, or flushed); closing every connection with 4010"
            );
            hub.close_all(
                protocol::close::STORE_RESET,
                "store lost data; drop local state and resync",
            );
        }
        Err(e) => tracing::warn!(error = %e, "store epoch check failed"),
    }
}
