//! The certificate file watch: every `tls_watch_secs` the server reads `tls_cert` and `tls_key`
//! and, when their contents changed, loads the new pair (a renewal by certbot, acme.sh or a
//! copy job is picked up without SIGHUP). A pair that cannot be used keeps the certificate in
//! use and is logged once; it is tried again when either file changes again.
//!
//! Polling the contents (two small files, hashed) rather than file-system notifications: it
//! works the same for files replaced by rename, for symlinks switched to a new target (certbot's
//! `live/` directory), on network file systems and in containers with bind mounts, where
//! inotify misses or cannot see changes; a renewal is days ahead of expiry, so seconds of delay
//! do not matter.

use crate::tls::CertStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Checks the files every `every` until `stop`.
pub async fn run(certs: Arc<CertStore>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the files were read at start.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let certs = certs.clone();
        let checked = tokio::task::spawn_blocking(move || certs.reload_if_changed()).await;
        match checked {
            Ok(None) => {}
            Ok(Some(Ok(()))) => {
                tracing::info!("TLS certificate files changed: reloaded");
            }
            Ok(Some(Err(e))) => tracing::error!(
                error = %e,
                "TLS certificate files changed but NOT reloaded; still serving the previous one"
            ),
            Err(e) => tracing::error!(error = %e, "TLS certificate check failed"),
        }
    }
}
