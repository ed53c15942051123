#!/usr/bin/env bash
# What the Prometheus metrics cost in the fanout benchmark (issue 12): the same short fanout
# run on one node with metrics off and on (`CHAT_METRICS_LISTEN`, inherited by the server
# chat-bench starts), alternated ROUNDS times so that machine noise hits both alike, then the
# server CPU per million deliveries and the p99 latency of each rate, off vs on, and their ratio.
#
#   bench/metrics-cost.sh [ROUNDS] [RATES]      defaults: 2 rounds, rates 2000,4000 msg/s
#
# Needs release builds of chat-server and chat-bench (built here). Writes the JSON of every run
# and the summary to $OUT (default: a new directory under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
RATES=${2:-2000,4000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
OUT=${OUT:-$(mktemp -d /tmp/metrics-cost.XXXXXX)}
cargo build -q --locked --release -p chat-server -p chat-bench
bench="$CARGO_TARGET_DIR/release/chat-bench"
for round in $(seq 1 "$ROUNDS"); do
  for m in off on; do
    echo "== round $round, metrics $m" >&2
    if [ "$m" = on ]; then
      # Any free port: nothing scrapes during the run (a scrape every 15 s costs one render).
      CHAT_METRICS_LISTEN=127.0.0.1:0 "$bench" --json "$OUT/$m-$round.json" fanout --target ours \
        --rates "$RATES" --step-secs 5 --warmup-secs 2 --no-stop >&2
    else
      env -u CHAT_METRICS_LISTEN "$bench" --json "$OUT/$m-$round.json" fanout --target ours \
        --rates "$RATES" --step-secs 5 --warmup-secs 2 --no-stop >&2
    fi
  done
done
python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*-*.json"))):
    mode = os.path.basename(path).split("-")[0]
    for result in json.load(open(path)):
        for s in result["steps"]:
            r = rows.setdefault((s["offered_msgs_per_sec"], s["offered_deliveries_per_sec"]),
                                {"off": [], "on": []})
            r[mode].append((s["server_cpu_s_per_million"], s["latency"]["p99_ms"],
                            s["delivered"], s["expected"]))
lines = ["| offered msg/s (deliveries/s) | server CPU s per million deliveries, off → on | ratio | p99 ms, off → on | delivered/expected, on |",
         "|---|---|---|---|---|"]
for (rate, deliveries), r in sorted(rows.items()):
    off_cpu = statistics.median(x[0] for x in r["off"])
    on_cpu = statistics.median(x[0] for x in r["on"])
    off_p99 = statistics.median(x[1] for x in r["off"])
    on_p99 = statistics.median(x[1] for x in r["on"])
    got = sum(x[2] for x in r["on"]); want = sum(x[3] for x in r["on"])
    lines.append(f"| {rate:.0f} ({deliveries:.0f}) | {off_cpu:.2f} → {on_cpu:.2f} | {on_cpu/off_cpu:.3f} "
                 f"| {off_p99:.1f} → {on_p99:.1f} | {got}/{want} |")
text = "\n".join(lines)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
print(text)
PY
echo "runs and summary: $OUT" >&2
