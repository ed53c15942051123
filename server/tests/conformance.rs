//! The server against a WebSocket client that is not ours: Python `websockets`, driven through
//! `tests/clients/*.py` in the venv `scripts/setup.sh` makes (`CHAT_VENV`, default
//! `/var/cache/chat/venv`).

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

common::backend_tests!(
    cluster;
    close_from_the_client_is_answered,
    close_before_hello_is_answered
);

/// Runs `tests/clients/<script>` with `args` and returns the JSON line it prints.
async fn python(script: &str, args: &[&str]) -> Value {
    let venv = std::env::var("CHAT_VENV").unwrap_or_else(|_| "/var/cache/chat/venv".into());
    let python = PathBuf::from(venv).join("bin/python");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let run = tokio::process::Command::new(&python)
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 20 s"))
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (run scripts/setup.sh): {e}",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed {stdout:?}: {e}"))
}

/// RFC 6455 §5.5.1: the endpoint that receives a close frame answers with one. The server
/// echoes the client's code and reason (docs/protocol.md §3.6).
async fn close_from_the_client_is_answered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let seen = python("close_handshake.py", &[&server.ws_url, &alice.token]).await;
    assert_eq!(
        seen["close_rcvd"],
        serde_json::json!({"code": 1000, "reason": "done"}),
        "{seen}"
    );
    assert_eq!(seen["handshake_completed"], Value::Bool(true), "{seen}");
}

/// The same before `hello`.
async fn close_before_hello_is_answered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let seen = python("close_handshake.py", &[&server.ws_url, "-"]).await;
    assert_eq!(
        seen["close_rcvd"],
        serde_json::json!({"code": 1000, "reason": "done"}),
        "{seen}"
    );
}
