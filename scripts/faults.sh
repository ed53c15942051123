#!/usr/bin/env bash
# The long fault campaign (issue 5): RUNS randomized fault runs (default 1000), each with its
# own redis-server, 2-3 chat-server nodes as processes, scripted clients and (in half of the
# runs) the desktop backend, faults injected at random moments, and the history checker.
# Prints one line per run (its seed replays it: `faults run --seed N`), writes
# docs/faults-results.json and the results table into docs/RELIABILITY.md.
#
#   scripts/faults.sh [RUNS] [--jobs J] [--seed FIRST] [--only KIND] [--cluster]
#
# --cluster: the runs use a Redis Cluster (3 masters with a replica each) and its faults; the
# results go to docs/faults-cluster-results.json and RELIABILITY.md's cluster section.
#
# FAULTS_JOBS (default 3) runs at a time (--jobs J wins). FAULTS_BIN: a faults binary already
# built (e.g. by `cargo test --workspace ... --test fault_runs`) instead of building one.
# Exit status 1 if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="$HOME/.cargo/bin:$PATH"
RUNS=1000
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  RUNS=$1
  shift
fi
command -v redis-server >/dev/null || { echo "redis-server is missing: run scripts/setup.sh" >&2; exit 2; }

if [[ -z ${FAULTS_BIN:-} ]]; then
  cargo build -j"${JOBS:-2}" -p faults
  FAULTS_BIN="$CARGO_TARGET_DIR/debug/faults"
fi
# A private copy: a rebuild during the campaign must not swap the binary under running runs.
BIN_DIR=$(mktemp -d)
trap 'rm -rf "$BIN_DIR"' EXIT
cp "$FAULTS_BIN" "$BIN_DIR/faults"

OUT=docs/faults-results.json
for a in "$@"; do
  if [[ $a == --cluster ]]; then OUT=docs/faults-cluster-results.json; fi
done
# The caller's options first: the first of a repeated option counts.
"$BIN_DIR/faults" campaign --runs "$RUNS" "$@" --jobs "${FAULTS_JOBS:-3}" \
  --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --out "$OUT" --doc docs/RELIABILITY.md
