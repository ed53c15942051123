//! Small helpers of the scenario: logins from other devices, the keychain, the app launcher.

use super::*;

/// Logs `username` in from another device named `device`; returns that session's id.
pub(crate) async fn login_from(server: &Server, username: &str, device: &str) -> String {
    let api = server.api();
    let auth = rest(api.login(username, PASSWORD, Some(device))).await;
    let sessions = rest(api.with_token(&auth.token).sessions()).await;
    sessions
        .into_iter()
        .find(|s| s.current)
        .map(|s| s.id)
        .unwrap_or_else(|| panic!("no current session"))
}

/// The app keeps the session token in the Secret Service (the throwaway keyring of this run),
/// under the server and username.
pub(crate) async fn assert_token_in_keychain(server_url: &str, username: &str) {
    use chat_desktop::credentials::{account_key, Keychain, TokenStore};
    let base = chat_desktop::api::parse_server_url(server_url)
        .unwrap_or_else(|e| panic!("bad server URL {server_url}: {e}"));
    let account = account_key(&chat_desktop::api::display_url(&base), username);
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let key = account.clone();
        let found = tokio::task::spawn_blocking(move || Keychain::default().load(&key))
            .await
            .unwrap_or_else(|e| panic!("keychain lookup panicked: {e}"));
        match found {
            Ok(Some(token)) if !token.is_empty() => {
                note("the token is in the keychain");
                return;
            }
            other if Instant::now() >= deadline => {
                panic!("no token for {account} in the Secret Service: {other:?}")
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// A wrapper that starts the app with its log (stdout, where `tracing` writes) in a file:
/// WebKitWebDriver discards the browser's output.
pub(crate) fn app_launcher(app: &Path, dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    // Links open through the opener plugin, which runs `xdg-open URL`: a stand-in on the PATH
    // writes the URL to `opened_urls(dir)` instead of starting a browser.
    let bin = dir.join("fake-bin");
    let opener = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >>{}\n",
        quote(&opened_urls(dir))
    );
    std::fs::create_dir_all(&bin)
        .and_then(|()| std::fs::write(bin.join("xdg-open"), opener))
        .and_then(|()| {
            std::fs::set_permissions(bin.join("xdg-open"), std::fs::Permissions::from_mode(0o755))
        })
        .unwrap_or_else(|e| panic!("cannot write the stand-in xdg-open: {e}"));
    // Uploads are slowed down (1 MB/s) so the attachment steps can see an upload's progress.
    let script = format!(
        "#!/bin/sh\nPATH={}:\"$PATH\" {}=1000000 exec {} \"$@\" >>{} 2>&1\n",
        quote(&bin),
        chat_desktop::backend::THROTTLE_ENV,
        quote(app),
        quote(log)
    );
    let path = dir.join("chat-desktop-e2e");
    std::fs::write(&path, script)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Where the stand-in `xdg-open` (see [`app_launcher`]) writes each URL it was asked to open.
pub(crate) fn opened_urls(dir: &Path) -> PathBuf {
    dir.join("opened-urls.txt")
}

pub(crate) fn read_opened(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(opened_urls(dir))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn note(msg: &str) {
    eprintln!("[e2e] {msg}");
}

/// A short tag that makes names unique across runs (the store is fresh anyway).
pub(crate) fn short_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:06x}", (nanos ^ std::process::id()) & 0xff_ffff)
}
