#!/usr/bin/env bash
# Instruction, allocation, syscall and context-switch counts per delivery for one fanout target
# at fixed offered rates: repeatable on a busy machine, unlike wall-clock throughput.
#
#   bench/profile/run.sh callgrind ours  OUT_DIR [rates] [rooms] [members]
#   bench/profile/run.sh strace    floor OUT_DIR [rates] [rooms] [members]
#   bench/profile/summarize.py OUT_DIR
#   bench/profile/diff.py   OFF_DIR ON_DIR STEP   (function-level difference of two callgrind runs)
#
# The server (chat-server or the floor) runs under callgrind with instrumentation switched on
# only during the measured steps (hook.sh zeroes and dumps the counters around each), or is
# traced by `strace -c -f` during each step. The generator and Redis are not measured.
# Needs release builds in $CARGO_TARGET_DIR/release (cargo build --release -p chat-server -p chat-bench),
# or PROFILE_BIN=<dir holding chat-server and chat-bench>.
set -euo pipefail
mode=$1 target=$2 out=$3
rates=${4:-20,60} rooms=${5:-10} members=${6:-10}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PROFILE_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release}
rm -rf "$out" && mkdir -p "$out"
export PROFILE_MODE=$mode PROFILE_OUT=$out CHAT_BENCH_STEP_HOOK=$here/hook.sh
# Registering hashes passwords; under valgrind that is slow, so let them all hash at once
# instead of queueing past the server's 5 s wait (server_busy).
export CHAT_MAX_CONCURRENT_HASHES=64
if [ "$mode" = callgrind ]; then
  export CHAT_BENCH_SERVER_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/callgrind.out.%p"
fi
"$bin/chat-bench" --server-bin "$bin/chat-server" --json "$out/fanout.json" fanout \
  --target "$target" --rooms "$rooms" --members "$members" --users-per-room 1 \
  --rates "$rates" --step-secs 10 --warmup-secs 2 --no-stop
