//! The client benchmark (issue 16): the desktop app, built in release, measured in a real
//! window under Xvfb side by side with an empty Tauri 2 window (the floor, `bench/tauri-floor`)
//! in one run, and local search against large caches.
//!
//! Layers: [`fill`] writes a cache as the app would have (through its own `Cache` API);
//! [`search`] measures local search in-process; [`ipc`] times the commands a room click makes; [`procs`] reads `/proc` (PSS and CPU over a
//! process tree); [`x11`] looks at the screen (first frame); [`launch`] starts an app directly
//! or through WebDriver and measures it; [`report`] writes the markdown section.

pub mod fill;
pub mod ipc;
pub mod launch;
pub mod procs;
pub mod report;
pub mod search;
pub mod upgrade;
pub mod x11;

/// What can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the app's cache or keychain: {0}")]
    App(#[from] chat_desktop::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("X11: {0}")]
    X11(String),
    #[error("WebDriver: {0}")]
    WebDriver(String),
    #[error("{0}")]
    Process(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
