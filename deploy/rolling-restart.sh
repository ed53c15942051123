#!/usr/bin/env bash
# Rolling restart (upgrade) of chat-server nodes on this host, one at a time:
#   sudo deploy/rolling-restart.sh chat-server@a=http://127.0.0.1:8081 chat-server@b=http://127.0.0.1:8082
# For each UNIT=URL: `systemctl restart UNIT` (SIGTERM: sockets told 1001, drained; systemd
# waits for READY=1 of the new process), then waits until URL/readyz answers 200, then gives
# the moved clients SETTLE seconds (default 5) before the next node. Stops at the first node
# that does not come back. With several hosts, run it per host, one host at a time.
set -euo pipefail
SETTLE=${SETTLE:-5}
[ $# -gt 0 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
for pair in "$@"; do
  unit=${pair%%=*}
  url=${pair#*=}
  echo "restarting $unit"
  systemctl restart "$unit"
  for _ in $(seq 1 120); do
    if curl -fsS --max-time 2 "$url/readyz" >/dev/null 2>&1; then
      break
    fi
    sleep 0.5
  done
  curl -fsS --max-time 2 "$url/readyz" >/dev/null || { echo "$unit is not ready at $url/readyz; stopping" >&2; exit 1; }
  echo "$unit ready; waiting ${SETTLE}s for clients to settle"
  sleep "$SETTLE"
done
echo "all nodes restarted"
