#!/usr/bin/env bash
# End-to-end test: the desktop app in a real window (Xvfb when there is no DISPLAY), driven
# over WebDriver (tauri-driver + WebKitWebDriver), against a real chat server and Redis, with a
# scripted second user. See src-tauri/tests/e2e/main.rs for what it checks.
#
# 1. builds the UI (trunk) into ui/dist;
# 2. builds the workspace's tests with the UI embedded (`chat-desktop/custom-protocol`) — the
#    same command and flags as scripts/test.sh, so after it this is a no-op: the app binary the
#    test build made beside the tests is the one driven here (features are resolved for the
#    whole workspace either way; a `-p chat-desktop` build would resolve them apart and rebuild
#    part of the tree). The binary is copied aside, so a later build never replaces it;
# 3. runs the ignored `e2e` test (the binary that build made) against that copy.
#
# Needs what scripts/setup.sh installs. Environment:
#   CARGO_TARGET_DIR      target dir of the test itself (default /var/cache/chat/target)
#   CHAT_E2E_SHOTS        where screenshots go          (default $CARGO_TARGET_DIR/e2e-shots)
#   CHAT_TOOLS            trunk, wasm-bindgen, tauri-driver (default /var/cache/chat/tools)
#   JOBS                  cargo -j (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
export CHAT_E2E_SHOTS=${CHAT_E2E_SHOTS:-$CARGO_TARGET_DIR/e2e-shots}
JOBS=${JOBS:-$(nproc)}

for tool in trunk wasm-bindgen tauri-driver WebKitWebDriver redis-server dbus-run-session gnome-keyring-daemon dunst dunstctl import; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool is missing; run scripts/setup.sh" >&2; exit 1; }
done
if [ -z "${DISPLAY:-}" ]; then
  command -v Xvfb >/dev/null 2>&1 || { echo "e2e: Xvfb is missing (no DISPLAY); run scripts/setup.sh" >&2; exit 1; }
fi

start=$(date +%s)
echo "== e2e: UI (trunk build --release)"
(cd ui && trunk build --release)

echo "== e2e: app with the UI embedded (the test build's own binary)"
# The e2e test binary is taken from this build too: `cargo test --test e2e` would select fewer
# targets, resolve dev-dependency features apart and rebuild the tauri crates (~4 min cold).
E2E_TEST=$(cargo test --workspace --features chat-desktop/custom-protocol --locked -j"$JOBS" \
  --no-run --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
[ -x "$E2E_TEST" ] || { echo "e2e: the e2e test binary was not built" >&2; exit 1; }
APP=$CARGO_TARGET_DIR/e2e-app/chat-desktop
mkdir -p "$(dirname "$APP")"
cp "$CARGO_TARGET_DIR/debug/chat-desktop" "$APP.tmp" && mv "$APP.tmp" "$APP"
[ -x "$APP" ] || { echo "e2e: $APP was not built" >&2; exit 1; }

echo "== e2e: test (window, WebDriver, server, Redis)"
status=0
# Only the scenario: `installed` drives the installed package (scripts/desktop-package-check.sh).
CHAT_E2E_APP=$APP "$E2E_TEST" e2e --exact --ignored --nocapture || status=$?

echo "== e2e: $( [ $status -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
echo "   screenshots and tauri-driver's log: $CHAT_E2E_SHOTS"
ls -1 "$CHAT_E2E_SHOTS" 2>/dev/null | sed 's/^/     /' || true

exit $status
