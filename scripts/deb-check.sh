#!/usr/bin/env bash
# CI check of the server's Debian package (issue 12). Installs it on THIS machine (needs root):
#   1. builds the .deb from the debug build (PROFILE=dev; the release build costs minutes on
#      2 cores and packages the same files) and `dpkg -i`s it;
#   2. `systemd-analyze verify` on the installed units (chat-server.service and an instance of
#      chat-server@.service);
#   3. starts the installed binary as the unit would: the ExecStart, User and Group,
#      EnvironmentFile, UMask, NoNewPrivileges and empty capability set read from the installed
#      unit, with a NOTIFY_SOCKET like systemd's; waits for READY=1, /readyz and a metrics
#      scrape (checked by promtool), then SIGTERM: STOPPING=1 and exit 0. The environment file
#      is edited as an operator would (a private Redis, free ports), which also shows that dpkg
#      keeps the edited conffile on removal;
#   4. `dpkg -r` (binary gone, config kept), then `dpkg -P` (config gone).
# What it cannot show without systemd as PID 1 (a container): the sandboxing directives and
# LimitNOFILE being applied (systemd-analyze verify checks that they parse).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "deb-check: needs root (dpkg -i)" >&2; exit 2; }

UNIT=/usr/lib/systemd/system/chat-server.service
WORK=$(mktemp -d)
REDIS_PID=""
SERVER_PID=""
NOTIFY_PID=""
cleanup() {
  for pid in $SERVER_PID $NOTIFY_PID $REDIS_PID; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  # What systemd's StateDirectory= made (a purge leaves /var/lib/chat-server, as for any unit).
  [ -z "${STATE_DIR:-}" ] || rm -rf "/var/lib/$STATE_DIR"
  if dpkg-query -W -f='${Status}' chat-server 2>/dev/null | grep -q installed; then
    dpkg -P chat-server >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Polls until "$@" succeeds, at most $WAIT seconds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 $((WAIT * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what not within ${WAIT}s"
}
WAIT=20

echo "== deb-check: build (profile dev) and install"
DEB=$(PROFILE=dev bash scripts/deb.sh)
dpkg -I "$DEB" | grep -E "^ (Package|Version|Depends|Recommends):"
dpkg -c "$DEB" | awk '{print "   " $6}' | grep -v '/$'
dpkg -i "$DEB" >/dev/null
[ -x /usr/bin/chat-server ] || fail "/usr/bin/chat-server missing"
getent passwd chat-server >/dev/null || fail "no chat-server user"
[ "$(stat -c '%U:%G %a' /etc/chat-server/chat-server.toml)" = "root:chat-server 640" ] \
  || fail "config owner/mode: $(stat -c '%U:%G %a' /etc/chat-server/chat-server.toml)"
dpkg-query --showformat='${Conffiles}\n' -W chat-server | grep -q /etc/chat-server/chat-server.toml \
  || fail "config is not a conffile"

echo "== deb-check: systemd-analyze verify"
cp /usr/lib/systemd/system/chat-server@.service "$WORK/chat-server@ci.service"
# Units named by After=/Wants= that this machine lacks would only be warnings; errors fail.
systemd-analyze verify "$UNIT" "$WORK/chat-server@ci.service" 2>&1 | tee "$WORK/verify.log"
if grep -vE "redis-server.service|network-online.target|^$" "$WORK/verify.log" | grep -q .; then
  fail "systemd-analyze verify reported problems"
fi

echo "== deb-check: start as the unit would"
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n1; }
USER_=$(unit_value User)
GROUP_=$(unit_value Group)
ENVFILE=$(unit_value EnvironmentFile | sed 's/^-//')
EXEC=$(unit_value ExecStart)
UMASK_=$(unit_value UMask)
STATE_DIR=$(unit_value StateDirectory)
[ "$(unit_value Type)" = notify ] || fail "unit is not Type=notify"
[ "$(unit_value NoNewPrivileges)" = yes ] || fail "NoNewPrivileges is not set"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PORT=$(free_port)
METRICS_PORT=$(free_port)
# What an operator does: settings for this host in the environment file (a conffile).
cat >>"$ENVFILE" <<EOF
CHAT_LISTEN=127.0.0.1:$PORT
CHAT_METRICS_LISTEN=127.0.0.1:$METRICS_PORT
CHAT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
wait_for "redis-server" redis-cli -p "$REDIS_PORT" ping

# A notify socket as systemd provides one: records what the service reports.
mkdir -p "$WORK/notify"
python3 - "$WORK/notify/sock" "$WORK/notify/log" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
PY
NOTIFY_PID=$!
chmod 755 "$WORK" "$WORK/notify"
wait_for "notify socket" test -S "$WORK/notify/sock"

# StateDirectory=: systemd creates /var/lib/<name> owned by the service's user before starting
# it (attachments are stored there).
if [ -n "$STATE_DIR" ]; then
  install -d -o "$USER_" -g "$GROUP_" -m 0755 "/var/lib/$STATE_DIR"
fi

# The environment systemd would give: only the EnvironmentFile's assignments and NOTIFY_SOCKET.
mapfile -t ENV_ARGS < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$ENVFILE")
read -r -a EXEC_ARGS <<<"$EXEC"
(
  umask "${UMASK_:-0022}"
  cd /
  exec setpriv --reuid="$USER_" --regid="$GROUP_" --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all \
    env -i PATH=/usr/bin:/bin NOTIFY_SOCKET="$WORK/notify/sock" "${ENV_ARGS[@]}" "${EXEC_ARGS[@]}"
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 $((WAIT * 10))); do grep -q '^READY=1' "$WORK/notify/log" && break; sleep 0.1; done
grep -q '^READY=1' "$WORK/notify/log" || { cat "$WORK/server.log" >&2; fail "READY=1 not within ${WAIT}s"; }
[ "$(ps -o user= -p "$SERVER_PID")" = "$USER_" ] || fail "server does not run as $USER_"
curl -fsS "http://127.0.0.1:$PORT/readyz" | grep -q ready || fail "/readyz"
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "/healthz"
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" || fail "metrics scrape"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics"
grep -q '^chat_store_up 1' "$WORK/metrics.txt" || fail "chat_store_up is not 1"
echo "   ready: READY=1, /readyz 200, $(grep -c '^chat_' "$WORK/metrics.txt") chat_* series scraped"

kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" -eq 0 ] || { cat "$WORK/server.log" >&2; fail "server exited with $status after SIGTERM"; }
grep -q '^STOPPING=1' "$WORK/notify/log" || fail "no STOPPING=1"
echo "   stopped: STOPPING=1, exit 0"

echo "== deb-check: remove (config kept), purge (config gone)"
dpkg -r chat-server >/dev/null
[ ! -e /usr/bin/chat-server ] || fail "binary left after dpkg -r"
[ -f /etc/chat-server/chat-server.toml ] || fail "config removed by dpkg -r"
grep -q "CHAT_LISTEN=127.0.0.1:$PORT" "$ENVFILE" || fail "edited environment file lost on dpkg -r"
dpkg -P chat-server >/dev/null
[ ! -e /etc/chat-server/chat-server.toml ] || fail "config left after dpkg -P"
[ ! -e "$ENVFILE" ] || fail "$ENVFILE left after dpkg -P"
echo "deb-check: ok"
