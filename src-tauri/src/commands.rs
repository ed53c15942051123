//! The one Tauri command, `execute`: it takes a [`protocol::ipc::Command`] (serde-tagged by
//! `cmd`) as its `command` argument and hands it to [`Backend::execute`], which dispatches it.
//! The IPC surface is written once, as that enum; the UI builds its calls from the same enum
//! (`ui/src/ipc.rs`).
//!
//! Results are the command's IPC view type as JSON; failures serialize to
//! [`protocol::ipc::AppError`] `{code, message}` through [`Error`]'s `Serialize`.

use crate::backend::Backend;
use crate::error::Error;
use protocol::ipc::Command;
use tauri::State;

/// Runs one IPC command: `invoke("execute", {command: {cmd: "messages", room: 3, ...}})`.
#[tauri::command]
pub async fn execute(
    backend: State<'_, Backend>,
    command: Command,
) -> Result<serde_json::Value, Error> {
    backend.execute(command).await
}

/// The command, for `tauri::Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![execute]
}
