#!/usr/bin/env bash
# One command for a new user: installs what is missing (Debian/Ubuntu; elsewhere it prints what
# to install), builds the UI and the desktop app, starts a local chat server on the embedded
# store, and opens the app pointed at it. Ctrl-C (or closing the app from its tray menu) stops both.
#   PORT=8080 scripts/run-desktop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
# The app with the UI embedded is built apart from the test builds (different features).
APP_TARGET=${CHAT_APP_TARGET:-/var/cache/chat/target-app}
PORT=${PORT:-8080}

echo "== building the UI"
(cd ui && trunk build --release)
echo "== building the server and the app (first time: several minutes)"
cargo build --release -p chat-server
CARGO_TARGET_DIR="$APP_TARGET" cargo build --release -p chat-desktop --features custom-protocol

echo "== starting the chat server on http://127.0.0.1:$PORT (embedded store)"
CHAT_LISTEN="127.0.0.1:$PORT" "$CARGO_TARGET_DIR/release/chat-server" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "the server did not start (is port $PORT taken? try PORT=8090)"; exit 1; }
  sleep 0.1
done

echo "== opening the app. A second client to chat with:"
echo "   cargo run -p chat-server --example chat-client -- --server http://127.0.0.1:$PORT --user bob"
CHAT_SERVER_URL="http://127.0.0.1:$PORT" "$APP_TARGET/release/chat-desktop"
