//! App updates from the user's own chat server (issue 16, item 4), with Tauri's updater plugin.
//!
//! The endpoint is not compiled in: it is the server the user signed in to
//! (`GET {server}/api/v1/updates/{target}/{arch}/{bundle_type}/{current_version}`, protocol
//! §2.11), asked as the signed-in user, over the same TLS trust (pins included) as the rest of
//! the app. What is compiled in is the public key (`plugins.updater.pubkey` in
//! `tauri.conf.json`): a package is installed only if its minisign signature verifies against
//! it, and (`requireSignedVersion`) only if the signature names the version the server
//! announced. The server chooses *which* signed release its users run; it cannot make them run
//! anything the app's publisher did not sign.
//!
//! Flow: when the socket comes online ([`on_online`]) and then every [`CHECK_EVERY`], if no
//! check ran for that long, [`check`] asks the server; a newer version is downloaded in the
//! background ([`download`]: the plugin verifies the signature before the bytes are written to
//! the cache dir's `updates/`) and announced to the UI as [`AppEvent::UpdateReady`]; nothing
//! is shown before that, and nothing modal ever. "Restart to update"
//! ([`Command::InstallUpdate`]) installs the file ([`install`], which verifies it again: the
//! file may have changed on disk since) and restarts the app as the new version. Failures are
//! logged and retried at the next check; the user is never bothered with them.

use crate::error::{Error, Result};
use protocol::ipc::{AppEvent, Command, UpdateStatus, UpdateView, EVENT};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_updater::{Update, UpdaterExt};

/// How often a running app asks its server for a newer version.
pub const CHECK_EVERY: Duration = Duration::from_secs(6 * 3600);
/// A check, or a package download (tens of MB on a slow line), that takes longer fails.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Why an update was not installed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The server could not be asked, or answered something that is not a manifest.
    #[error("cannot check for updates: {0}")]
    Check(String),
    /// The package's signature does not verify against the compiled-in key, or it names
    /// another version than the server announced: refused, nothing installed.
    #[error("the update's signature does not match: {0}")]
    Signature(String),
    /// The package could not be downloaded, stored or installed.
    #[error("cannot install the update: {0}")]
    Install(String),
}

impl From<tauri_plugin_updater::Error> for UpdateError {
    fn from(e: tauri_plugin_updater::Error) -> Self {
        use tauri_plugin_updater::Error as E;
        match e {
            E::Minisign(_)
            | E::Base64(_)
            | E::SignatureUtf8(_)
            | E::SignedVersionMismatch { .. }
            | E::MissingSignedVersion => UpdateError::Signature(e.to_string()),
            E::Reqwest(_)
            | E::Network(_)
            | E::Serialization(_)
            | E::ReleaseNotFound
            | E::TargetNotFound(_)
            | E::TargetsNotFound(_)
            | E::InsecureTransportProtocol
            | E::UrlParse(_) => UpdateError::Check(e.to_string()),
            other => UpdateError::Install(other.to_string()),
        }
    }
}

/// Where to ask: the user's server, as that user.
#[derive(Clone)]
pub struct Source {
    /// The server URL (as the app stores it: no trailing slash, maybe a path prefix).
    pub server: reqwest::Url,
    /// The session token, sent as `Authorization: Bearer`.
    pub token: String,
    /// The TLS trust the app uses for this server (https only): roots plus the user's pin.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The update endpoint of `server`; the plugin fills in the `{{…}}` variables.
pub fn endpoint(server: &reqwest::Url) -> std::result::Result<reqwest::Url, UpdateError> {
    let base = server.as_str().trim_end_matches('/');
    reqwest::Url::parse(&format!(
        "{base}/api/v1/updates/{{{{target}}}}/{{{{arch}}}}/{{{{bundle_type}}}}/{{{{current_version}}}}"
    ))
    .map_err(|e| UpdateError::Check(format!("bad update URL: {e}")))
}

/// Asks `source` whether a newer version is served for this app; `None` when not.
/// `executable` replaces the running program as the thing to update (tests only).
pub async fn check<R: Runtime>(
    app: &AppHandle<R>,
    source: &Source,
    executable: Option<&Path>,
) -> std::result::Result<Option<Update>, UpdateError> {
    let mut builder = app
        .updater_builder()
        .endpoints(vec![endpoint(&source.server)?])?
        .header("Authorization", format!("Bearer {}", source.token))?
        .timeout(CHECK_TIMEOUT);
    if let Some(tls) = source.tls.clone() {
        builder =
            builder.configure_client(move |client| client.use_preconfigured_tls((*tls).clone()));
    }
    if let Some(exe) = executable {
        builder = builder.executable_path(exe);
    }
    let Some(mut update) = builder.build()?.check().await? else {
        return Ok(None);
    };
    update.timeout = Some(DOWNLOAD_TIMEOUT);
    Ok(Some(update))
}

/// Downloads `update`'s package into `dir` once its signature verified (the plugin checks it
/// before handing the bytes over); returns the file. Nothing is written for a bad signature.
pub async fn download(update: &Update, dir: &Path) -> std::result::Result<PathBuf, UpdateError> {
    let bytes = update.download(|_, _| {}, || {}).await?;
    let io = |e: std::io::Error| UpdateError::Install(format!("cannot store the package: {e}"));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let path = dir.join(format!("chat-{}.update", update.version));
    let partial = dir.join(format!(".chat-{}.update.part", update.version));
    tokio::fs::write(&partial, &bytes).await.map_err(io)?;
    tokio::fs::rename(&partial, &path).await.map_err(io)?;
    Ok(path)
}

/// Installs the package at `path` for `update`, verifying its signature again first (the file
/// sat on disk since the download). Blocks: `.deb`/`.rpm` installs wait for the system's
/// package tool (and the user's password at `pkexec`). The caller restarts the app after.
pub fn install(update: &Update, path: &Path) -> std::result::Result<(), UpdateError> {
    let bytes = std::fs::read(path)
        .map_err(|e| UpdateError::Install(format!("cannot read the package: {e}")))?;
    update.install(bytes)?;
    Ok(())
}

/// A downloaded, verified update waiting for "Restart to update".
struct Ready {
    update: Update,
    file: PathBuf,
}

#[derive(Default)]
struct State {
    last_check: Option<Instant>,
    checking: bool,
    ready: Option<Ready>,
}

/// The app's update state (Tauri managed state).
pub struct Updates {
    /// `updates/` in the app's cache dir: downloaded packages.
    dir: PathBuf,
    state: Mutex<State>,
}

impl Updates {
    /// Update state keeping packages in `dir`; packages left there by an earlier run (the
    /// version now running, or one never installed) are deleted.
    pub fn new(dir: PathBuf) -> Updates {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot clear old update packages");
            }
        }
        Updates {
            dir,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The socket came online: check for an update unless one was checked within
/// [`CHECK_EVERY`], one is being checked, or one is ready.
pub fn on_online<R: Runtime>(app: &AppHandle<R>) {
    let (Some(updates), Some(backend)) = (
        app.try_state::<Updates>(),
        app.try_state::<crate::startup::Startup>()
            .and_then(|s| s.get()),
    ) else {
        return;
    };
    // Signed out: nothing to ask (signing in brings the socket online again).
    let Some((api, token)) = backend.server_session() else {
        return;
    };
    let source = Source {
        server: api.base().clone(),
        token,
        tls: api.tls().map(|t| t.config()),
    };
    {
        let mut state = updates.lock();
        let recent = state.last_check.is_some_and(|t| t.elapsed() < CHECK_EVERY);
        if recent || state.checking || state.ready.is_some() {
            return;
        }
        state.checking = true;
        state.last_check = Some(Instant::now());
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let found = find(&app, &source).await;
        let Some(updates) = app.try_state::<Updates>() else {
            return;
        };
        let ready = match found {
            Ok(Some(ready)) => ready,
            Ok(None) => {
                updates.lock().checking = false;
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, "no app update this time");
                updates.lock().checking = false;
                return;
            }
        };
        let view = UpdateView {
            version: ready.update.version.clone(),
            notes: ready.update.body.clone(),
        };
        tracing::info!(version = %view.version, "app update downloaded and verified");
        {
            let mut state = updates.lock();
            state.checking = false;
            state.ready = Some(ready);
        }
        if let Err(e) = app.emit(EVENT, AppEvent::UpdateReady { update: view }) {
            tracing::warn!(error = %e, "cannot tell the UI about the update");
        }
    });
}

/// Checks `source` and downloads a newer version.
async fn find<R: Runtime>(
    app: &AppHandle<R>,
    source: &Source,
) -> std::result::Result<Option<Ready>, UpdateError> {
    let Some(update) = check(app, source, None).await? else {
        tracing::debug!("the app is up to date");
        return Ok(None);
    };
    let Some(updates) = app.try_state::<Updates>() else {
        return Ok(None);
    };
    tracing::info!(version = %update.version, "downloading an app update");
    let file = download(&update, &updates.dir).await?;
    Ok(Some(Ready { update, file }))
}

/// Re-checks every [`CHECK_EVERY`] while the app runs (the check is skipped when signed out).
pub fn spawn_periodic_checks<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            on_online(&app);
        }
    });
}

/// The update commands of the IPC ([`Command::UpdateStatus`], [`Command::InstallUpdate`]).
pub async fn execute<R: Runtime>(
    app: &AppHandle<R>,
    command: Command,
) -> Result<serde_json::Value> {
    match command {
        Command::UpdateStatus => {
            let ready = app.try_state::<Updates>().and_then(|u| {
                u.lock().ready.as_ref().map(|r| UpdateView {
                    version: r.update.version.clone(),
                    notes: r.update.body.clone(),
                })
            });
            let status = UpdateStatus {
                current: app.package_info().version.to_string(),
                ready,
            };
            serde_json::to_value(status).map_err(|e| Error::Invalid(e.to_string()))
        }
        Command::InstallUpdate => {
            let updates = app
                .try_state::<Updates>()
                .ok_or_else(|| Error::Update("updates are off in this app".into()))?;
            let ready = updates.lock().ready.take();
            let Some(ready) = ready else {
                return Err(Error::Update("there is no update to install".into()));
            };
            let version = ready.update.version.clone();
            let installed = tauri::async_runtime::spawn_blocking(move || {
                let result = install(&ready.update, &ready.file);
                (ready, result)
            })
            .await
            .map_err(|e| Error::Update(format!("the installer stopped: {e}")))?;
            match installed {
                (_, Ok(())) => {
                    tracing::info!(
                        %version,
                        display = ?std::env::var_os("DISPLAY"),
                        wayland = ?std::env::var_os("WAYLAND_DISPLAY"),
                        "app update installed; restarting"
                    );
                    app.restart()
                }
                (ready, Err(e)) => {
                    tracing::warn!(%version, error = %e, "app update not installed");
                    // Keep it: the user may try again (e.g. after cancelling the password).
                    if let Some(updates) = app.try_state::<Updates>() {
                        updates.lock().ready = Some(ready);
                    }
                    Err(Error::Update(e.to_string()))
                }
            }
        }
        _ => Err(Error::Invalid("not an update command".into())),
    }
}
