#!/usr/bin/env bash
# DEV ONLY: builds the UI with the fake backend (dev/mock-tauri.js) into ui/dev-dist and serves
# it on http://127.0.0.1:${PORT:-8765}/ for a browser. ui/dist (the app's build) is untouched.
#   dev/preview.sh            build and serve (Ctrl-C stops)
#   dev/preview.sh --shots    build, serve in the background, save screenshots to
#                             ${SHOTS:-/tmp/ui-shots} with headless Chromium, stop
# Needs trunk and wasm-bindgen on PATH; --shots needs Debian's chromium and puppeteer-core
# (npm, no browser download) in ${SHOTS_TOOL:-/var/cache/chat/shots-tool}/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8765}"
export PATH="/var/cache/chat/tools/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat/target}"
# The release profile shares its build with `trunk build --release`, so this is incremental.
trunk build dev/index.html --release --dist dev-dist
if [[ "${1:-}" == "--shots" ]]; then
  python3 -m http.server "$PORT" --bind 127.0.0.1 --directory dev-dist >/dev/null 2>&1 &
  server=$!
  trap 'kill "$server"' EXIT
  sleep 1
  NODE_PATH="${SHOTS_TOOL:-/var/cache/chat/shots-tool}/node_modules" \
    node dev/shots.cjs "http://127.0.0.1:$PORT" "${SHOTS:-/tmp/ui-shots}" "${2:-}"
else
  echo "Serving http://127.0.0.1:$PORT/  (try ?state=fresh, ?state=login, ?conn=reconnecting, ?live=1)"
  exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory dev-dist
fi
