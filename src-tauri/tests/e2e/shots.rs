//! Screenshots.

use super::*;

pub(crate) fn window_shots_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHAT_E2E_SHOTS") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("e2e-shots");
    }
    // <target>/debug/deps/e2e-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("e2e-shots")
}

pub(crate) struct Shots {
    pub(crate) dir: PathBuf,
}

impl Shots {
    /// The same folder, keeping what is there (a second window in the same run).
    pub(crate) fn keep() -> Shots {
        Shots {
            dir: window_shots_dir(),
        }
    }

    pub(crate) fn new() -> Shots {
        let dir = window_shots_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Old screenshots would pass for new ones.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "png" || e == "log") {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Shots { dir }
    }
}
