//! The one Tauri command, `execute`: it takes a [`protocol::ipc::Command`] (serde-tagged by
//! `cmd`) as its `command` argument and hands it to [`crate::Backend::execute`], which
//! dispatches it, once the backend is open ([`Startup`]: commands sent while the app starts
//! wait).
//! The IPC surface is written once, as that enum; the UI builds its calls from the same enum
//! (`ui/src/ipc.rs`).
//!
//! Results are the command's IPC view type as JSON; failures serialize to
//! [`protocol::ipc::AppError`] `{code, message}` through [`Error`]'s `Serialize`.
//!
//! One exception: [`attachment_bytes`] returns raw bytes (an image is megabytes; as JSON it
//! would be a list of numbers four times its size).

use crate::error::Error;
use crate::startup::Startup;
use protocol::ipc::Command;
use tauri::{AppHandle, State};

/// Runs one IPC command: `invoke("execute", {command: {cmd: "messages", room: 3, ...}})`.
/// The app update commands go to [`crate::updater`] (installing one replaces this program,
/// which takes Tauri); every other command to the backend.
#[tauri::command]
pub async fn execute(
    app: AppHandle,
    startup: State<'_, Startup>,
    command: Command,
) -> Result<serde_json::Value, Error> {
    match command {
        Command::UpdateStatus | Command::InstallUpdate => {
            crate::updater::execute(&app, command).await
        }
        command => startup.backend().await?.execute(command).await,
    }
}

/// An attachment's bytes (its thumbnail with `thumbnail`) as an `ArrayBuffer`:
/// `invoke("attachment_bytes", {id, thumbnail})` ([`protocol::ipc::ATTACHMENT_BYTES`]).
#[tauri::command]
pub async fn attachment_bytes(
    startup: State<'_, Startup>,
    id: String,
    thumbnail: bool,
) -> Result<tauri::ipc::Response, Error> {
    let bytes = startup
        .backend()
        .await?
        .attachment_bytes(&id, thumbnail)
        .await?;
    Ok(tauri::ipc::Response::new(bytes))
}

/// The commands, for `tauri::Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![execute, attachment_bytes]
}
