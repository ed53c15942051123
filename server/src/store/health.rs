//! Whether the Redis store is known to be unreachable, so callers get `store_unavailable` at
//! once instead of each waiting out the client's reconnect attempts (about 9.5 s with the
//! redis crate's defaults, longer than any health probe waits).
//!
//! The store is marked down by the first call that fails for a connection reason, or by the
//! bus subscriber when its subscription drops and a fresh connection fails too (Redis stopped). While it is down,
//! every store call fails immediately; one probe task tries a fresh connection and a `PING`
//! every [`PROBE_EVERY`] and marks it up as soon as one answers (a cluster: once a fresh
//! cluster connection comes up and a node answers).

use super::redis::conn::Target;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Time between probes while the store is down.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);
/// How long one probe (connect and `PING`) may take (each step; twice that in all).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Shared between the store's callers, its bus subscriber and the probe task.
#[derive(Default)]
pub struct Health {
    down: AtomicBool,
    wake: Notify,
}

impl Health {
    /// True while the store is known to be unreachable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The store did not answer: fail fast from now on until a probe gets through.
    pub fn mark_down(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!("store unreachable; failing store calls fast until it answers again");
            self.wake.notify_one();
        }
    }

    /// Probes once now; marks the store down if it does not answer.
    pub async fn check_now(&self, target: &Target) {
        if !target.probe(PROBE_TIMEOUT).await {
            self.mark_down();
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("store reachable again");
        }
    }

    /// Probes while the store is down, until `shutdown`.
    pub async fn run_probe(self: Arc<Self>, target: Target, shutdown: CancellationToken) {
        loop {
            if !self.is_down() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            if target.probe(PROBE_TIMEOUT).await {
                self.mark_up();
            }
        }
    }
}

/// Whether a Redis error means the server could not be reached (as opposed to an answer the
/// store did not like).
pub fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}
