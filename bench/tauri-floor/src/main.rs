//! The floor of the client benchmark (`bench/client`): a Tauri 2 app with one window and a
//! static page, nothing else. What it costs (memory over its processes, time to its first
//! frame, CPU while idle) is what any Tauri app costs on the machine; the desktop app is
//! measured against it in the same run.

fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("tauri-floor: {e}");
        std::process::exit(1);
    }
}
