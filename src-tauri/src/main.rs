//! The desktop app's entry point: everything lives in the `chat_desktop` library.

// No console window next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    chat_desktop::run();
}
