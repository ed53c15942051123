//! The desktop chat app's backend (Tauri 2).
//!
//! Layers, bottom up: [`api`] (REST) and [`connection`] (the socket, reconnects) talk to the
//! server; [`cache`] (SQLite) and [`credentials`] (OS keychain) keep state on this machine;
//! [`outbox`] makes sends survive disconnects and restarts; [`backend`] ties them together and
//! implements the IPC contract of [`protocol::ipc`] without knowing about Tauri; [`commands`]
//! (the one Tauri command, dispatching a [`protocol::ipc::Command`]) and [`run`] put it in a
//! window with a tray icon, with [`startup`] opening the backend while the window already
//! shows; [`updater`] installs new versions from the user's server. Imports
//! point down: the backend uses the outbox, the connection,
//! the cache; none of those uses the backend.

pub mod api;
pub mod backend;
pub mod blobs;
pub mod cache;
pub mod commands;
pub mod connection;
pub mod credentials;
pub mod error;
pub mod outbox;
pub mod startup;
pub mod tls;
pub mod updater;

pub use backend::{Backend, EventSink, Options};
pub use error::{Error, Result};

use protocol::ipc::{AppEvent, EVENT};
use std::sync::Arc;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, WindowEvent};
use tauri_plugin_notification::NotificationExt;
use tauri_plugin_window_state::{AppHandleExt, StateFlags};

const MAIN_WINDOW: &str = "main";
const TRAY: &str = "main";
/// What the window-state plugin remembers: size, position, maximized...; visibility is ours
/// (start minimized, close to tray).
fn window_state_flags() -> StateFlags {
    StateFlags::all() & !StateFlags::VISIBLE
}

/// The window title and tray label for `total` unread messages: "Chat", "Chat (3)", "Chat (99+)"
/// (task bars and window switchers show the title).
pub fn unread_title(total: u64) -> String {
    match total {
        0 => "Chat".to_owned(),
        n if n > 99 => "Chat (99+)".to_owned(),
        n => format!("Chat ({n})"),
    }
}

/// Forwards backend events to the web view, the notification center and the tray.
struct TauriSink {
    app: AppHandle,
}

impl EventSink for TauriSink {
    fn emit(&self, event: AppEvent) {
        if matches!(
            event,
            AppEvent::Connection {
                state: protocol::ipc::ConnectionState::Online
            }
        ) {
            updater::on_online(&self.app);
        }
        if let Err(e) = self.app.emit(EVENT, event) {
            tracing::warn!(error = %e, "cannot emit an event to the UI");
        }
    }

    fn notify(&self, title: &str, body: &str) {
        let shown = self
            .app
            .notification()
            .builder()
            .title(title)
            .body(body)
            .show();
        if let Err(e) = shown {
            tracing::warn!(error = %e, "cannot show a notification");
        }
    }

    fn unread_changed(&self, total: u64) {
        if let Some(window) = self.app.get_webview_window(MAIN_WINDOW) {
            if let Err(e) = window.set_title(&unread_title(total)) {
                tracing::debug!(error = %e, "cannot set the window title");
            }
        }
        let Some(tray) = self.app.tray_by_id(TRAY) else {
            return;
        };
        let text = match total {
            0 => "Chat".to_owned(),
            1 => "Chat — 1 unread message".to_owned(),
            n if n > 99 => "Chat — 99+ unread messages".to_owned(),
            n => format!("Chat — {n} unread messages"),
        };
        let title = (total > 0).then(|| {
            if total > 99 {
                "99+".to_owned()
            } else {
                total.to_string()
            }
        });
        if let Err(e) = tray.set_tooltip(Some(text)) {
            tracing::debug!(error = %e, "cannot set the tray tooltip");
        }
        // Shown beside the icon on macOS and Linux (app indicators).
        if let Err(e) = tray.set_title(title) {
            tracing::debug!(error = %e, "cannot set the tray title");
        }
    }
}

/// Brings the main window to the front (tray click, second launch).
fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

fn build_tray(app: &tauri::App) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .tooltip("Chat")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => show_main_window(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_main_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

fn setup(app: &mut tauri::App) -> Result<(), Box<dyn std::error::Error>> {
    let dir = app.path().app_data_dir()?;
    std::fs::create_dir_all(&dir)?;
    app.manage(updater::Updates::new(
        app.path().app_cache_dir()?.join("updates"),
    ));
    let options = Options::new(dir.join("cache.sqlite3"));
    // Only the quick part here (the file and its migrations, the settings): the window shows
    // now, and the rest — the cache's upgrade after an update, the keychain, the connection —
    // runs on a task the commands wait for (`startup`).
    let cache = tauri::async_runtime::block_on(cache::Cache::connect(
        &options.cache_path,
        options.keep_per_room,
    ))?;
    let start_minimized =
        tauri::async_runtime::block_on(Backend::stored_settings(&cache))?.start_minimized;
    let (startup, opened) = startup::Startup::new();
    app.manage(startup);
    build_tray(app)?;
    // The window is created hidden (tauri.conf.json) so "start minimized" never flashes it.
    if !start_minimized {
        show_main_window(app.handle());
    }
    let handle = app.handle().clone();
    tauri::async_runtime::spawn(async move {
        let sink = Arc::new(TauriSink {
            app: handle.clone(),
        });
        let tokens = Arc::new(credentials::Keychain::default());
        let opening = Backend::start(cache, options, tokens, sink).await;
        if let Ok(backend) = &opening {
            prepare(backend).await;
        }
        if let Some(backend) = opened.finish(opening) {
            // App updates from the signed-in server, checked when the socket comes online:
            // if it already did (before the backend was ready), now.
            if backend.snapshot().connection == protocol::ipc::ConnectionState::Online {
                updater::on_online(&handle);
            }
            updater::spawn_periodic_checks(&handle);
        }
    });
    Ok(())
}

/// What the environment asks of a backend just opened, before any command reaches it.
async fn prepare(backend: &Backend) {
    // CHAT_SERVER_URL preselects the server on first run (scripts/run-desktop.sh uses it).
    if backend.snapshot().server_url.is_none() {
        if let Ok(url) = std::env::var("CHAT_SERVER_URL") {
            if let Err(e) = backend.set_server(&url).await {
                tracing::warn!(error = %e, "CHAT_SERVER_URL not usable; asking the user");
            }
        }
    }
    // Test runs slow uploads down to watch their progress (never set otherwise).
    if let Some(rate) = std::env::var(crate::backend::THROTTLE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        backend.throttle_uploads(Some(rate));
    }
}

/// Builds and runs the app until it quits.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = tauri::Builder::default()
        // First, so a second launch exits before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main_window(app);
        }))
        .plugin(tauri_plugin_notification::init())
        // Links in messages open in the system browser, only through the UI's own click
        // handler (which confirms a link whose text is not its target): the plugin's global
        // click interception stays off. The capability limits it to http, https and mailto.
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        // The file picker and save dialog of attachments (the web view may only open them).
        .plugin(tauri_plugin_dialog::init())
        // App updates (crate::updater drives it from Rust; the web view gets no permission).
        .plugin(tauri_plugin_updater::Builder::new().build())
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(window_state_flags())
                .build(),
        )
        .invoke_handler(commands::handler())
        .setup(setup)
        .on_window_event(|window, event| match event {
            // Close to tray: the app keeps receiving messages; Quit is in the tray menu.
            WindowEvent::CloseRequested { api, .. } if window.label() == MAIN_WINDOW => {
                api.prevent_close();
                // The plugin writes the geometry only when the app exits; an app in the tray
                // may instead end with the session (SIGTERM), so write it now too (while the
                // window is still shown and its geometry real).
                if let Err(e) = window.app_handle().save_window_state(window_state_flags()) {
                    tracing::warn!(error = %e, "cannot save the window state");
                }
                let _ = window.hide();
            }
            WindowEvent::Focused(focused) => {
                if let Some(backend) = window.try_state::<startup::Startup>().and_then(|s| s.get())
                {
                    backend.set_window_focused(*focused);
                }
            }
            _ => {}
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!(error = %e, "the app failed");
        std::process::exit(1);
    }
}
