#!/usr/bin/env bash
# The project's one test command: formatting, lints, then every test of the workspace.
# Integration tests start their own redis-server on a free port and their own chat servers on
# 127.0.0.1:0; nothing needs to be running. On a fresh Debian/Ubuntu machine it first installs
# what is missing (scripts/setup.sh: idempotent, a few seconds when everything is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
JOBS=${JOBS:-$(nproc)}

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -j"$JOBS" -- -D warnings

echo "== cargo check of the desktop app for Windows (x86_64-pc-windows-gnu, mingw-w64)"
bash scripts/cross-check.sh

echo "== UI (trunk build --release): the app below embeds it"
(cd ui && trunk build --release)

echo "== cargo test"
# With the UI embedded (`custom-protocol`): the app binary this build makes beside the tests is
# the one the end-to-end test drives, so the tree is built once. scripts/e2e.sh uses the same
# flags; keep them in step.
cargo test --workspace --features chat-desktop/custom-protocol --locked --no-fail-fast -j"$JOBS" \
  -- --test-threads=4

echo "== operations: deploy/ linted; the .deb built, installed, run as its unit would, removed"
bash scripts/lint-deploy.sh
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -E"
$SUDO bash scripts/deb-check.sh

echo "== fuzz smoke: each target replays its seeds and regressions, then fuzzes 15 s (libFuzzer)"
bash scripts/fuzz.sh smoke

echo "== schemathesis: the REST API fuzzed from its OpenAPI document"
# A fixed seed keeps CI repeatable; `scripts/schemathesis.sh` alone picks a random one.
SEED=${SCHEMATHESIS_SEED:-24879} bash scripts/schemathesis.sh

echo "== end-to-end: the desktop app in a real window"
bash scripts/e2e.sh

echo "== desktop packages: .deb/.rpm bundled, the .deb installed, run in a window, removed"
$SUDO bash scripts/desktop-package-check.sh
