#!/usr/bin/env bash
# Fuzzing with cargo fuzz (libFuzzer), on stable Rust: RUSTC_BOOTSTRAP=1 lets stable rustc take
# the coverage flags cargo fuzz passes, and `-s none` skips AddressSanitizer (the project's
# crates forbid unsafe code; libFuzzer's coverage guidance works without it).
#
#   scripts/fuzz.sh smoke              # CI: every target replays its seeds and fuzz/regressions,
#                                      #     then fuzzes for $SMOKE_SECS (15) seconds
#   scripts/fuzz.sh run TARGET SECS    # fuzz one target (decode, frames, rest, markdown)
#   scripts/fuzz.sh campaign SECS      # every target in turn, SECS each
#
# The corpus grows in $CHAT_FUZZ_OUT/corpus/TARGET (default /var/cache/chat/fuzz). A crash stops
# the run and leaves its input in $CHAT_FUZZ_OUT/artifacts/TARGET/: copy it to
# fuzz/regressions/TARGET/ under a name that says what it is, fix the server, and both this
# script and `cargo test` in fuzz/ (plain stable) replay it from then on.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${JOBS:-$(nproc)}
TARGET_DIR=${CHAT_FUZZ_TARGET:-/var/cache/chat/target-fuzz}
OUT=${CHAT_FUZZ_OUT:-/var/cache/chat/fuzz}
TARGETS=(decode frames rest markdown)

build() {
  cargo fuzz build -s none --target-dir "$TARGET_DIR" >"$OUT/build.log" 2>&1 || {
    tail -n 40 "$OUT/build.log" >&2
    echo "fuzz: build failed" >&2
    exit 1
  }
}

run() { # target seconds
  local t=$1 secs=$2 log="$OUT/$1.log"
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  local dirs=("$OUT/corpus/$t" "seeds/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  local status=0
  cargo fuzz run -s none --target-dir "$TARGET_DIR" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t/" >"$log" 2>&1 || status=$?
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  echo "fuzz: $t: ${runs} runs in ${secs}s, $cov, corpus $(ls "$OUT/corpus/$t" | wc -l) inputs"
  if [ $status -ne 0 ]; then
    grep -v '^"' "$log" | tail -n 60 >&2
    echo "fuzz: $t FAILED; inputs in $OUT/artifacts/$t/:" >&2
    ls -la "$OUT/artifacts/$t/" >&2
    return 1
  fi
}

mkdir -p "$OUT"
case "${1:-smoke}" in
  smoke)
    build
    for t in "${TARGETS[@]}"; do run "$t" "${SMOKE_SECS:-15}"; done
    ;;
  run)
    build
    run "$2" "$3"
    ;;
  campaign)
    build
    for t in "${TARGETS[@]}"; do run "$t" "$2"; done
    ;;
  *)
    echo "usage: $0 smoke | run TARGET SECS | campaign SECS" >&2
    exit 2
    ;;
esac
