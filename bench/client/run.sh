#!/usr/bin/env bash
# The client benchmark (issue 16): builds the UI (trunk) and, in release, the desktop app with
# the UI embedded, the empty Tauri window (bench/tauri-floor) and chat-client-bench in one
# cargo build (one compiled tauri), then runs `chat-client-bench run`, which writes
# docs/client-bench.json, docs/bench-client.md and the "Client" section of docs/BENCHMARKS.md.
#
#   bench/client/run.sh                         # 0/10k/100k cached messages, search at 100k and 1M, 60 s idle
#   bench/client/run.sh --sizes 0,1000 --search-sizes 10000 --idle-secs 5   # a quick look
#
# Needs what scripts/setup.sh installs for the e2e test (trunk, wasm-bindgen, tauri-driver,
# WebKitWebDriver, Xvfb, dbus-run-session, gnome-keyring-daemon). Takes about 10 minutes after
# the build; a cold release build takes 15–25 minutes on 2 cores. JOBS sets cargo -j.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$(pwd)/target}"
JOBS=${JOBS:-$(nproc)}
(cd ui && trunk build --release)
cargo build --release --locked -j"$JOBS" -p chat-desktop -p tauri-floor -p chat-client-bench \
  --features chat-desktop/custom-protocol
exec "$target_dir/release/chat-client-bench" run \
  --app "$target_dir/release/chat-desktop" --floor "$target_dir/release/tauri-floor" "$@"
