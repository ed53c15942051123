//! The backend while the app starts. The window shows at once; the backend opens on a task
//! (the cache's upgrade after an update can take minutes, reading the keychain takes a D-Bus
//! round trip), and every command waits for it. Meanwhile the UI draws its loading screen and,
//! during an upgrade, the progress it hears about ([`protocol::ipc::AppEvent::CacheUpgrade`]).

use crate::backend::Backend;
use crate::error::{Error, Result};
use protocol::ipc::AppError;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone)]
enum Phase {
    Opening,
    Ready(Arc<Backend>),
    /// Opening failed; commands fail with this (the UI shows "Can't start" and its message).
    Failed(AppError),
}

/// The backend, once open (managed by Tauri in place of the [`Backend`] itself).
pub struct Startup {
    phase: watch::Receiver<Phase>,
}

/// The other end: says how opening ended.
pub struct Opened {
    phase: watch::Sender<Phase>,
}

impl Startup {
    pub fn new() -> (Startup, Opened) {
        let (tx, rx) = watch::channel(Phase::Opening);
        (Startup { phase: rx }, Opened { phase: tx })
    }

    /// The backend if it is open.
    pub fn get(&self) -> Option<Arc<Backend>> {
        match &*self.phase.borrow() {
            Phase::Ready(backend) => Some(backend.clone()),
            Phase::Opening | Phase::Failed(_) => None,
        }
    }

    /// The backend, waiting until it is open.
    pub async fn backend(&self) -> Result<Arc<Backend>> {
        let mut phase = self.phase.clone();
        let phase = phase
            .wait_for(|p| !matches!(p, Phase::Opening))
            .await
            .map_err(|_| Error::Invalid("the app is shutting down".to_owned()))?
            .clone();
        match phase {
            Phase::Ready(backend) => Ok(backend),
            Phase::Failed(error) => Err(Error::Start(error)),
            Phase::Opening => Err(Error::Invalid("the app is still starting".to_owned())),
        }
    }
}

impl Opened {
    /// Opening ended with `result`: commands waiting go on.
    pub fn finish(self, result: Result<Backend>) -> Option<Arc<Backend>> {
        let phase = match result {
            Ok(backend) => Phase::Ready(Arc::new(backend)),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the app's backend");
                Phase::Failed(e.to_app_error())
            }
        };
        let ready = match &phase {
            Phase::Ready(backend) => Some(backend.clone()),
            _ => None,
        };
        self.phase.send_replace(phase);
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ipc::AppErrorCode;

    #[tokio::test]
    async fn commands_waiting_for_a_backend_that_failed_get_its_error() {
        let (startup, opened) = Startup::new();
        assert!(startup.get().is_none());
        let waiting = tokio::spawn(async move { startup.backend().await.map(drop) });
        opened.finish(Err(Error::Keychain("no secret service".to_owned())));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap_or_else(|_| panic!("still waiting"))
            .unwrap_or_else(|e| panic!("task: {e}"));
        match got {
            Err(e) => assert_eq!(e.to_app_error().code, AppErrorCode::Keychain),
            Ok(()) => panic!("a backend appeared"),
        }
    }
}
