//! Client updates (issue 16) on both stores: the server offers its users' desktop apps the
//! newest signed version in `updates_dir` for their platform (204 when nothing is newer),
//! streams the package with its length, and answers bad paths with typed errors without
//! ever reading outside the directory.

mod common;

use common::*;
use protocol::rest::UpdateManifest;
use protocol::{ErrorBody, ErrorCode};
use std::path::Path;

backend_tests!(
    offers_the_newest_signed_version_for_the_platform,
    streams_the_package_with_its_length,
    bad_paths_get_typed_errors,
    updates_are_off_without_the_setting,
);

/// The signature files hold what `tauri signer sign` writes: base64 text on one line.
const SIG_DEB: &str = "dW50cnVzdGVkIGNvbW1lbnQ6IGRlYgo=";
const SIG_RPM: &str = "dW50cnVzdGVkIGNvbW1lbnQ6IHJwbQo=";

fn write(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// An updates directory as an operator fills it: an old version, the current release with
/// notes, a newer one with only an .rpm, a newer one whose .deb lacks its signature, and a
/// version still being copied in under a hidden name. The updates directory is `updates/` of
/// the returned one; a secret lies beside it.
fn updates_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("secret-beside-updates"), b"secret");
    let d = &dir.path().join("updates");
    write(&d.join("0.1.0/chat_0.1.0_amd64.deb"), b"old");
    write(&d.join("0.1.0/chat_0.1.0_amd64.deb.sig"), b"old");
    write(
        &d.join("0.2.0/chat_0.2.0_amd64.deb"),
        &package(0x5a, 3 << 20),
    );
    write(
        &d.join("0.2.0/chat_0.2.0_amd64.deb.sig"),
        format!("{SIG_DEB}\n").as_bytes(),
    );
    write(&d.join("0.2.0/chat_0.2.0_arm64.deb"), b"arm");
    write(&d.join("0.2.0/chat_0.2.0_arm64.deb.sig"), b"arm");
    write(&d.join("0.2.0/notes.md"), b"Faster start.\n");
    write(&d.join("0.3.0/chat-0.3.0-1.x86_64.rpm"), b"rpm");
    write(
        &d.join("0.3.0/chat-0.3.0-1.x86_64.rpm.sig"),
        SIG_RPM.as_bytes(),
    );
    write(&d.join("0.4.0/chat_0.4.0_amd64.deb"), b"unsigned");
    write(&d.join(".incoming/9.0.0/chat_9.0.0_amd64.deb"), b"half");
    write(&d.join(".incoming/9.0.0/chat_9.0.0_amd64.deb.sig"), b"half");
    write(&d.join("0.2.0/sub/x"), b"a directory is not a file");
    dir
}

/// `len` bytes that are not all alike, so a truncated or shifted download shows.
fn package(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed ^ (i as u8) ^ ((i >> 9) as u8))
        .collect()
}

async fn start(backend: Backend, dir: &Path) -> TestServer {
    let dir = dir.join("updates");
    TestServer::start_with(backend, move |c| c.updates_dir = Some(dir)).await
}

async fn get(server: &TestServer, token: Option<&str>, path: &str) -> reqwest::Response {
    let mut req = server.http().get(format!("{}{path}", server.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn expect_error(resp: reqwest::Response, code: ErrorCode, what: &str) {
    assert_eq!(resp.status().as_u16(), code.http_status(), "{what}");
    let body: ErrorBody = resp
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not an error body: {e}"));
    assert_eq!(body.code, code, "{what}: {}", body.message);
}

async fn offers_the_newest_signed_version_for_the_platform(backend: Backend) {
    let dir = updates_dir();
    let server = start(backend, dir.path()).await;
    let alice = server.user("alice").await;
    let token = Some(alice.token.as_str());

    let resp = get(&server, token, "/api/v1/updates/linux/x86_64/deb/0.1.0").await;
    assert_eq!(resp.status().as_u16(), 200, "[{backend}] deb from 0.1.0");
    let manifest: UpdateManifest = resp.json().await.expect("a manifest");
    assert_eq!(
        manifest,
        UpdateManifest {
            version: "0.2.0".into(),
            notes: Some("Faster start.".into()),
            url: format!(
                "{}/api/v1/updates/files/0.2.0/chat_0.2.0_amd64.deb",
                server.base
            ),
            signature: SIG_DEB.into(),
        },
        "[{backend}] the newest signed .deb (0.4.0's has no signature)"
    );

    let resp = get(&server, token, "/api/v1/updates/linux/aarch64/deb/0.1.0").await;
    let manifest: UpdateManifest = resp.json().await.expect("a manifest");
    assert!(
        manifest.url.ends_with("/0.2.0/chat_0.2.0_arm64.deb"),
        "[{backend}] the arm64 package for an arm64 app: {}",
        manifest.url
    );

    let resp = get(&server, token, "/api/v1/updates/linux/x86_64/rpm/0.2.0").await;
    let manifest: UpdateManifest = resp.json().await.expect("a manifest");
    assert_eq!(
        (manifest.version.as_str(), manifest.signature.as_str()),
        ("0.3.0", SIG_RPM),
        "[{backend}] an .rpm install gets the .rpm"
    );

    for (path, why) in [
        (
            "/api/v1/updates/linux/x86_64/deb/0.2.0",
            "already on the newest .deb",
        ),
        (
            "/api/v1/updates/linux/x86_64/deb/1.0.0",
            "newer than anything served",
        ),
        (
            "/api/v1/updates/linux/x86_64/rpm/0.3.0",
            "already on the newest .rpm",
        ),
        (
            "/api/v1/updates/windows/x86_64/nsis/0.1.0",
            "no Windows package served",
        ),
        (
            "/api/v1/updates/linux/x86_64/unknown/0.1.0",
            "no AppImage served",
        ),
    ] {
        let resp = get(&server, token, path).await;
        assert_eq!(resp.status().as_u16(), 204, "[{backend}] {why}");
    }

    // Only the server's users learn what it serves.
    let resp = get(&server, None, "/api/v1/updates/linux/x86_64/deb/0.1.0").await;
    expect_error(resp, ErrorCode::Unauthorized, "no token").await;
}

async fn streams_the_package_with_its_length(backend: Backend) {
    let dir = updates_dir();
    let server = start(backend, dir.path()).await;
    let alice = server.user("alice").await;
    let manifest: UpdateManifest = get(
        &server,
        Some(&alice.token),
        "/api/v1/updates/linux/x86_64/deb/0.1.0",
    )
    .await
    .json()
    .await
    .expect("a manifest");
    let resp = server
        .http()
        .get(&manifest.url)
        .bearer_auth(&alice.token)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status().as_u16(), 200, "[{backend}]");
    let expected = package(0x5a, 3 << 20);
    assert_eq!(
        resp.content_length(),
        Some(expected.len() as u64),
        "[{backend}] Content-Length is the file's size"
    );
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/octet-stream")
    );
    let bytes = resp.bytes().await.expect("body");
    assert!(bytes[..] == expected[..], "[{backend}] the package, whole");

    let resp = server
        .http()
        .get(&manifest.url)
        .send()
        .await
        .expect("download");
    expect_error(resp, ErrorCode::Unauthorized, "download without a token").await;
}

async fn bad_paths_get_typed_errors(backend: Backend) {
    let dir = updates_dir();
    let server = start(backend, dir.path()).await;
    let alice = server.user("alice").await;
    let token = Some(alice.token.as_str());
    for (path, code, why) in [
        (
            "/api/v1/updates/files/0.2.0/..%2F..%2Fsecret-beside-updates",
            ErrorCode::BadRequest,
            "an encoded ../",
        ),
        (
            "/api/v1/updates/files/0.2.0/sub%2Fx",
            ErrorCode::BadRequest,
            "an encoded /",
        ),
        (
            "/api/v1/updates/files/..%2F0.2.0/chat_0.2.0_amd64.deb",
            ErrorCode::BadRequest,
            "a version with ../",
        ),
        (
            "/api/v1/updates/files/latest/chat_0.2.0_amd64.deb",
            ErrorCode::BadRequest,
            "a version that is no semver",
        ),
        (
            "/api/v1/updates/files/0.2.0/.hidden",
            ErrorCode::BadRequest,
            "a hidden file",
        ),
        (
            "/api/v1/updates/files/0.2.0/a%5Cb",
            ErrorCode::BadRequest,
            "a backslash",
        ),
        (
            "/api/v1/updates/files/0.2.0/missing.deb",
            ErrorCode::UpdateNotFound,
            "a missing file",
        ),
        (
            "/api/v1/updates/files/0.2.0/sub",
            ErrorCode::UpdateNotFound,
            "a directory",
        ),
        (
            "/api/v1/updates/files/7.7.7/chat_7.7.7_amd64.deb",
            ErrorCode::UpdateNotFound,
            "a missing version",
        ),
        (
            "/api/v1/updates/plan9/x86_64/deb/0.1.0",
            ErrorCode::BadRequest,
            "an unknown target",
        ),
        (
            "/api/v1/updates/linux/sparc/deb/0.1.0",
            ErrorCode::BadRequest,
            "an unknown arch",
        ),
        (
            "/api/v1/updates/linux/x86_64/msi/0.1.0",
            ErrorCode::BadRequest,
            "a bundle of another system",
        ),
        (
            "/api/v1/updates/linux/x86_64/deb/one",
            ErrorCode::BadRequest,
            "a version that is no semver",
        ),
    ] {
        let resp = get(&server, token, path).await;
        expect_error(resp, code, &format!("[{backend}] {why}: {path}")).await;
    }
}

async fn updates_are_off_without_the_setting(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let token = Some(alice.token.as_str());
    for path in [
        "/api/v1/updates/linux/x86_64/deb/0.1.0",
        "/api/v1/updates/files/0.2.0/chat_0.2.0_amd64.deb",
    ] {
        let resp = get(&server, token, path).await;
        expect_error(
            resp,
            ErrorCode::UpdateNotFound,
            &format!("[{backend}] {path}"),
        )
        .await;
    }
}
