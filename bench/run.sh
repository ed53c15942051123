#!/usr/bin/env bash
# Reproduces docs/BENCHMARKS.md: builds the server and the load generator in release mode,
# installs the Socket.IO peer's Node packages from its lockfile, runs every scenario on both
# targets (3 runs each, medians) and writes the report and its plots into docs/.
#
#   bench/run.sh                  # small scale (a few minutes on 2 cores)
#   bench/run.sh --scale full     # the issue's sizes
#   bench/run.sh --runs 5         # any other `chat-bench report` option
#   bench/run.sh client [...]     # the desktop client instead (bench/client/run.sh)
#
# The attachments section alone, merged into the existing report without touching the others:
#   cargo build --release -p chat-server -p chat-bench
#   target/release/chat-bench files --sizes-mib 5,50,200 --runs 3 --merge docs
#
# Needs: cargo, node >= 18 with npm, /usr/bin/redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = client ]; then
  shift
  exec bench/client/run.sh "$@"
fi
target_dir="${CARGO_TARGET_DIR:-$(pwd)/target}"
cargo build --release -p chat-server -p chat-bench
if [ ! -d bench/peers/socketio/node_modules/socket.io ]; then
  (cd bench/peers/socketio && npm ci --no-audit --no-fund)
fi
exec "$target_dir/release/chat-bench" --server-bin "$target_dir/release/chat-server" report "$@"
