#!/usr/bin/env bash
# REST fuzzing from the server's own OpenAPI document (schemathesis, from PyPI, in a venv).
# Starts a real chat-server on the embedded store on a free port, registers a user with a room
# and a message, then lets schemathesis generate valid and invalid requests for every operation
# with and without that user's token. Fails on any 5xx, any response that does not match the
# document (every 4xx must be an ErrorBody with a documented code), any panic in the server log.
#
#   scripts/schemathesis.sh                 # CI size (MAX_EXAMPLES=25 per operation)
#   MAX_EXAMPLES=500 scripts/schemathesis.sh
#
# Reports (JUnit, and the server log) land in $CARGO_TARGET_DIR/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
VENV=${CHAT_VENV:-/var/cache/chat/venv}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
SEED=${SEED:-$RANDOM}
OUT="$CARGO_TARGET_DIR/schemathesis"
ROOT=$(pwd)
mkdir -p "$OUT"   # schemathesis runs there: its .schemathesis/ cache stays out of the tree

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "schemathesis: not installed in $VENV; run scripts/setup.sh" >&2
  exit 1
fi

cargo build -p chat-server --locked -j"${JOBS:-$(nproc)}" --quiet
BIN="$CARGO_TARGET_DIR/debug/chat-server"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# Logins, messages, rooms, DMs and invites limited far above what the run sends, so generated requests reach the
# handlers instead of stopping at 429 (rate limiting has its own tests).
FILES=$(mktemp -d)   # attachments (removed at exit)
CHAT_ATTACHMENTS__DIR="$FILES" CHAT_LISTEN="127.0.0.1:$PORT" CHAT_LOGINS_PER_MIN=100000 CHAT_MSGS_PER_SEC=100000 \
  CHAT_MSGS_BURST=100000 CHAT_ROOMS_PER_HOUR=100000 CHAT_DMS_PER_HOUR=100000 \
  CHAT_INVITES_PER_HOUR=100000 CHAT_MAX_ROOMS_PER_USER=100000 RUST_LOG=warn "$BIN" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$FILES"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { cat "$OUT/server.log"; echo "schemathesis: server exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# A few users first, so the small ids schemathesis tries for invites and DMs exist. The first
# account of a store is its admin: its token drives the admin routes below.
ADMIN_TOKEN=""
for i in 1 2 3; do
  T=$(curl -fsS -XPOST "$BASE/api/v1/register" -H 'content-type: application/json' \
    -d "{\"username\":\"peer$i$RANDOM\",\"password\":\"correct horse battery\"}" | json "['token']")
  [ -n "$ADMIN_TOKEN" ] || ADMIN_TOKEN=$T
done
NAME="fuzz$RANDOM$RANDOM"
TOKEN=$(curl -fsS -XPOST "$BASE/api/v1/register" -H 'content-type: application/json' \
  -d "{\"username\":\"$NAME\",\"password\":\"correct horse battery\"}" | json "['token']")
ROOM=$(curl -fsS -XPOST "$BASE/api/v1/rooms" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"name":"schemathesis","visibility":"public"}' | json "['id']")
curl -fsS -XPOST "$BASE/api/v1/rooms/$ROOM/messages" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"id":"first","body":"hello"}' >/dev/null
# A message with a file, so downloads have something to find.
FILE=$(printf '%%PDF-1.7\nschemathesis' | curl -fsS -XPOST "$BASE/api/v1/rooms/$ROOM/attachments?name=a.pdf" \
  -H "authorization: Bearer $TOKEN" --data-binary @- | json "['id']")
curl -fsS -XPOST "$BASE/api/v1/rooms/$ROOM/messages" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"id\":\"second\",\"body\":\"\",\"attachments\":[\"$FILE\"]}" >/dev/null

echo "== schemathesis against $BASE (seed $SEED, $MAX_EXAMPLES examples per operation)"
status=0
(cd "$OUT" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
  --request-timeout 20 \
  --report junit --report-junit-path "$OUT/junit.xml" \
  --exclude-path /api/v1/logout \
  --exclude-path /api/v1/logout/all \
  --exclude-path "/api/v1/sessions/{id}") \
  || status=$?

# The admin routes as the admin (the run above tried them as a non-admin), except the two that
# could disable the admin or change its password mid-run.
(cd "$OUT" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE/openapi.json" \
  --header "Authorization: Bearer $ADMIN_TOKEN" \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 20 \
  --include-path /api/v1/admin/users --include-path /api/v1/admin/invites \
  --include-path /api/v1/admin/export) \
  || status=$?

# Logout and session revocation would end the run's own session; test them without a token.
(cd "$OUT" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 20 \
  --include-path /api/v1/logout --include-path /api/v1/logout/all \
  --include-path "/api/v1/sessions/{id}") \
  || status=$?

if grep -q "panicked" "$OUT/server.log"; then
  echo "schemathesis: the server panicked:" >&2
  grep -A5 "panicked" "$OUT/server.log" >&2
  status=1
fi
kill -0 $SERVER 2>/dev/null || { echo "schemathesis: the server died" >&2; status=1; }
exit $status
