//! The desktop app's user interface: Yew compiled to wasm32, shown in the Tauri web view.
//!
//! Layout: [`ipc`] is the only code that talks to the backend (typed Tauri commands and the
//! `chat` event, all from `protocol::ipc`); [`state`] holds the app state as a reducer;
//! [`effects`] runs commands and feeds their results to the state; [`components`] draws it,
//! one component per file; [`rows`] and [`format`] are the pure helpers behind the message
//! list. Message text is Markdown turned into a tree of allowed elements by the `markup` crate
//! and drawn node by node: its characters only ever reach the page as text nodes.

pub mod components;
pub mod effects;
pub mod format;
pub mod ipc;
pub mod mentions;
pub mod replies;
pub mod rows;
pub mod search;
pub mod shortcodes;
pub mod state;

/// Mounts the app on the page's `<body>`, in place of the loading screen that `index.html`
/// draws before the wasm is compiled (the same markup as [`state::Screen::Loading`]'s, so the
/// window shows the app's frame at once and nothing jumps when the app takes over).
pub fn run() {
    if let Some(boot) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot"))
    {
        boot.remove();
    }
    yew::Renderer::<components::app::App>::new().render();
}
