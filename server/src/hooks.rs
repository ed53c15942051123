//! Pause points for tests that must make a race deterministic. Unused in production: each
//! check is one uncontended lock on an empty map.
//!
//! A test arms a pause for a user; the next code path that reaches that point for the user
//! stops there, says so, and waits for the test to let it go.

use protocol::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Where a connection can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Point {
    /// A socket's start read the user's rooms and has not routed them yet.
    ConnectRoomsRead,
}

/// One armed pause: `reached` fires when code arrives, `resume` lets it continue.
#[derive(Default)]
pub struct Pause {
    reached: Notify,
    resume: Notify,
}

impl Pause {
    /// Waits until code reached the point.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held code continue.
    pub fn resume(&self) {
        self.resume.notify_one();
    }
}

#[derive(Default)]
pub struct Hooks {
    armed: Mutex<HashMap<(Point, UserId), Arc<Pause>>>,
}

impl Hooks {
    /// Holds the next arrival of `user` at `point` (once).
    pub fn arm(&self, point: Point, user: UserId) -> Arc<Pause> {
        let pause = Arc::new(Pause::default());
        self.armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((point, user), pause.clone());
        pause
    }

    /// Called by the code at `point`: waits there if a test armed it for `user`.
    pub async fn at(&self, point: Point, user: UserId) {
        let pause = self
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(point, user));
        if let Some(pause) = pause {
            pause.reached.notify_one();
            pause.resume.notified().await;
        }
    }
}
