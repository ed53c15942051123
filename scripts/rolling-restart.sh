#!/usr/bin/env bash
# The rolling restart under load (issue 12), full size by default: 3 nodes behind nginx, each
# restarted twice in turn (SIGTERM, start, /readyz) while 30 scripted clients send; the history
# checker then looks for anything lost, duplicated or reordered, and each client's reconnects
# are counted (at most one per restart). CI runs a short variant (faults/tests/rolling_restart.rs).
#
#   scripts/rolling-restart.sh [--nodes N] [--clients C] [--rounds R] [--between-ms MS] [--json]
#
# The procedure it exercises is the upgrade procedure of docs/OPERATIONS.md; for real hosts
# see deploy/rolling-restart.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is missing: run scripts/setup.sh" >&2; exit 2; }
cargo build -q --locked -j"${JOBS:-2}" -p faults
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--nodes 3 --clients 30 --rounds 2 --between-ms 5000 --send-every-ms 200)
"$CARGO_TARGET_DIR/debug/faults" rolling "${args[@]}"
