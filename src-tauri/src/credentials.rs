//! Where the session token lives: the operating system's keychain (macOS Keychain, Windows
//! Credential Manager, the Secret Service on Linux — GNOME Keyring, KWallet, KeePassXC).
//!
//! The token never reaches the web view or a plain file. Entries are keyed by service
//! [`SERVICE`] and account `"<server url>|<username>"`, so accounts on different servers do not
//! collide. [`TokenStore`] is the seam the backend uses; [`Keychain`] is the real store.
//! [`MemoryTokens`] exists for tests that are not about the keychain and must run without one.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The keychain service name (also the app's identifier).
pub const SERVICE: &str = "org.selfchat.desktop";

/// The keychain account for `username` on `server`.
pub fn account_key(server: &str, username: &str) -> String {
    format!("{server}|{username}")
}

/// Stores session tokens by account key. Calls may block (D-Bus, Keychain prompts): call them
/// from `spawn_blocking`.
pub trait TokenStore: Send + Sync + 'static {
    fn load(&self, account: &str) -> Result<Option<String>>;
    fn save(&self, account: &str, token: &str) -> Result<()>;
    /// Deletes the token; deleting a missing token is not an error.
    fn delete(&self, account: &str) -> Result<()>;
}

/// The OS keychain through the `keyring` crate, built with its native backends (never its
/// in-memory mock, which would lose the token at exit).
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Keychain {
    pub fn new(service: impl Into<String>) -> Self {
        Keychain {
            service: service.into(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry> {
        Ok(keyring::Entry::new(&self.service, account)?)
    }
}

impl Default for Keychain {
    fn default() -> Self {
        Keychain::new(SERVICE)
    }
}

impl TokenStore for Keychain {
    fn load(&self, account: &str) -> Result<Option<String>> {
        match self.entry(account)?.get_password() {
            Ok(token) => Ok(Some(token)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, account: &str, token: &str) -> Result<()> {
        Ok(self.entry(account)?.set_password(token)?)
    }

    fn delete(&self, account: &str) -> Result<()> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Tokens in memory, shared by clones: survives dropping a backend (so tests can restart one)
/// but not the process. Not for the app.
#[derive(Debug, Clone, Default)]
pub struct MemoryTokens {
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl MemoryTokens {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, String>>> {
        self.tokens
            .lock()
            .map_err(|_| Error::Keychain("token map poisoned".into()))
    }
}

impl TokenStore for MemoryTokens {
    fn load(&self, account: &str) -> Result<Option<String>> {
        Ok(self.map()?.get(account).cloned())
    }

    fn save(&self, account: &str, token: &str) -> Result<()> {
        self.map()?.insert(account.to_owned(), token.to_owned());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<()> {
        self.map()?.remove(account);
        Ok(())
    }
}

/// Runs a blocking token-store call off the async runtime.
pub(crate) async fn blocking<T, F>(store: &Arc<dyn TokenStore>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn TokenStore) -> Result<T> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::Keychain(format!("keychain task failed: {e}")))?
}
