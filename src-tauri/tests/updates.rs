//! App updates (issue 16), the bad-signature test: a real chat server serves version 0.2.0 of
//! the app from its `updates_dir`; the app (Tauri's mock runtime with the real updater plugin,
//! configured like `tauri.conf.json` but with a public key made here) checks and downloads it
//! through `chat_desktop::updater`, as the signed-in user.
//!
//! A package signed with another key, changed after it was signed, or signed for another
//! version than the server announces is refused: nothing lands in the download directory and
//! the installed program is unchanged. A package changed on disk after its download is refused
//! at install. The same flow with a good signature does install (the program file is replaced
//! by the package): the control that shows the refusals come from the signature check.
//!
//! The app under test is not a packaged one (no bundle type), so the plugin treats the
//! "installed program" as an AppImage: a file in a temp dir that an install overwrites.

mod common;

use base64::Engine;
use chat_desktop::updater::{self, Source, UpdateError};
use common::*;
use std::path::{Path, PathBuf};
use tauri::test::{mock_builder, mock_context, noop_assets, MockRuntime};

const NEW_VERSION: &str = "0.2.0";

/// A minisign key pair in Tauri's encoding (base64 of the minisign text files).
struct Key {
    pair: minisign::KeyPair,
}

impl Key {
    fn new() -> Key {
        Key {
            pair: minisign::KeyPair::generate_unencrypted_keypair()
                .unwrap_or_else(|e| panic!("key pair: {e}")),
        }
    }

    /// What goes into `plugins.updater.pubkey`.
    fn public(&self) -> String {
        let text = self
            .pair
            .pk
            .to_box()
            .unwrap_or_else(|e| panic!("public key box: {e}"))
            .to_string();
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// The `.sig` file `tauri signer sign --app-version VERSION` writes for `bytes`.
    fn sign(&self, bytes: &[u8], version: &str) -> String {
        let trusted = format!("timestamp:1765000000\tfile:package\tversion:{version}");
        let sig = minisign::sign(
            Some(&self.pair.pk),
            &self.pair.sk,
            bytes,
            Some(&trusted),
            Some("signature from tauri secret key"),
        )
        .unwrap_or_else(|e| panic!("sign: {e}"));
        base64::engine::general_purpose::STANDARD.encode(sig.to_string())
    }
}

/// A stand-in for a new AppImage: an ELF header (the plugin checks the magic) and some bytes.
fn package(tag: u8) -> Vec<u8> {
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.extend((0..64 * 1024).map(|i| (i as u8) ^ tag));
    bytes
}

/// The app as the user runs it: version 0.1.0 (the mock context's), trusting `key`.
fn app(key: &Key) -> tauri::App<MockRuntime> {
    let mut context = mock_context(noop_assets());
    context.config_mut().plugins.0.insert(
        "updater".into(),
        serde_json::json!({"pubkey": key.public(), "requireSignedVersion": true}),
    );
    mock_builder()
        .plugin(tauri_plugin_updater::Builder::new().build())
        .build(context)
        .unwrap_or_else(|e| panic!("mock app: {e}"))
}

/// The server's `updates_dir` with 0.2.0: `bytes` as the AppImage and `sig` as its signature.
fn serve(dir: &Path, bytes: &[u8], sig: &str) {
    let version = dir.join(NEW_VERSION);
    std::fs::create_dir_all(&version).unwrap_or_else(|e| panic!("{e}"));
    let name = format!("Chat_{NEW_VERSION}_amd64.AppImage");
    std::fs::write(version.join(&name), bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(version.join(format!("{name}.sig")), sig).unwrap_or_else(|e| panic!("{e}"));
}

struct Setup {
    _redis: Redis,
    server: Server,
    updates: tempfile::TempDir,
    work: tempfile::TempDir,
    source: Source,
}

impl Setup {
    async fn start() -> Setup {
        let redis = Redis::start().await;
        let updates = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = updates.path().to_owned();
        let server = Server::start_with(&redis, move |c| c.updates_dir = Some(dir)).await;
        let user = Peer::register(&server, "updater").await;
        let source = Source {
            server: server
                .url()
                .parse()
                .unwrap_or_else(|e| panic!("server URL: {e}")),
            token: user.token.clone(),
            tls: None,
        };
        Setup {
            _redis: redis,
            server,
            updates,
            work: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            source,
        }
    }

    /// The "installed" program: a file that holds the current version.
    fn program(&self) -> PathBuf {
        let path = self.work.path().join("chat.AppImage");
        if !path.exists() {
            std::fs::write(&path, b"\x7fELF version 0.1.0").unwrap_or_else(|e| panic!("{e}"));
        }
        path
    }

    fn downloads(&self) -> PathBuf {
        self.work.path().join("downloads")
    }

    /// Check, download and install as the app does; the error of the first step that fails.
    async fn update(&self, app: &tauri::App<MockRuntime>) -> Result<(), UpdateError> {
        let update = updater::check(app.handle(), &self.source, Some(&self.program()))
            .await?
            .unwrap_or_else(|| panic!("the server offers {NEW_VERSION}"));
        assert_eq!(update.version, NEW_VERSION);
        let file = updater::download(&update, &self.downloads()).await?;
        updater::install(&update, &file)
    }

    fn installed(&self) -> Vec<u8> {
        std::fs::read(self.program()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn downloaded(&self) -> Vec<String> {
        std::fs::read_dir(self.downloads())
            .map(|d| {
                d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The three ways a signature can fail to match, each refused before anything is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_signature_does_not_match_is_refused() {
    let setup = Setup::start().await;
    let trusted = Key::new();
    let app = app(&trusted);
    let before = setup.installed();
    let bytes = package(1);
    let cases = [
        (
            "signed with another key",
            bytes.clone(),
            Key::new().sign(&bytes, NEW_VERSION),
        ),
        (
            "changed after signing",
            package(2),
            trusted.sign(&bytes, NEW_VERSION),
        ),
        (
            "signed for another version",
            bytes.clone(),
            trusted.sign(&bytes, "0.9.0"),
        ),
    ];
    for (why, served, sig) in cases {
        serve(setup.updates.path(), &served, &sig);
        let result = setup.update(&app).await;
        assert!(
            matches!(result, Err(UpdateError::Signature(_))),
            "a package {why} must be refused for its signature: {result:?}"
        );
        assert_eq!(setup.installed(), before, "{why}: the program was changed");
        assert_eq!(
            setup.downloaded(),
            Vec::<String>::new(),
            "{why}: bytes kept"
        );
    }
    drop(setup.server);
}

/// A verified download changed on disk before "Restart to update" is refused at install; the
/// untouched download installs (the control: the same flow does install a good package).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_update_installs_and_a_tampered_download_does_not() {
    let setup = Setup::start().await;
    let key = Key::new();
    let app = app(&key);
    let bytes = package(3);
    serve(setup.updates.path(), &bytes, &key.sign(&bytes, NEW_VERSION));
    let before = setup.installed();

    let update = updater::check(app.handle(), &setup.source, Some(&setup.program()))
        .await
        .unwrap_or_else(|e| panic!("check: {e}"))
        .unwrap_or_else(|| panic!("the server offers {NEW_VERSION}"));
    let file = updater::download(&update, &setup.downloads())
        .await
        .unwrap_or_else(|e| panic!("a good package downloads: {e}"));
    assert_eq!(std::fs::read(&file).ok(), Some(bytes.clone()));
    let mut changed = bytes.clone();
    changed[100] ^= 0xff;
    std::fs::write(&file, &changed).unwrap_or_else(|e| panic!("{e}"));
    let result = updater::install(&update, &file);
    assert!(
        matches!(result, Err(UpdateError::Signature(_))),
        "a download changed on disk must be refused: {result:?}"
    );
    assert_eq!(setup.installed(), before, "the program was changed");

    std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{e}"));
    updater::install(&update, &file).unwrap_or_else(|e| panic!("a good package installs: {e}"));
    assert!(
        setup.installed() == bytes,
        "the program is the new version after the install"
    );
    drop(setup.server);
}
