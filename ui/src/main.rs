//! Entry point for trunk: mounts the app.

fn main() {
    chat_ui::run();
}
