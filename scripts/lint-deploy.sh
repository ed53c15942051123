#!/usr/bin/env bash
# Checks the files under deploy/ with the strictest tools that run on this machine. No container
# engine can run here (podman installs, but base images cannot be pulled from docker.io and
# crun may not set rlimits in this sandbox), so the container files are linted, not run:
#   - deploy/compose.yml: the Compose Specification's JSON schema (check-jsonschema's bundled
#     `vendor.compose-spec`);
#   - deploy/Dockerfile: dockerfilelint (syntax, instruction arguments, best practice);
#   - deploy/compose/Caddyfile and deploy/Caddyfile: `caddy validate` (Debian's caddy: parses
#     and provisions them; deploy/Caddyfile also runs in server/tests/proxy.rs);
#   - deploy/prometheus/chat-alerts.yml and every PromQL query of the Grafana dashboard:
#     `promtool check rules`.
# Tools come from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${CHAT_TOOLS:-/var/cache/chat/tools}
VENV=${CHAT_VENV:-/var/cache/chat/venv}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== compose.yml against the Compose Specification schema"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yml

echo "== Dockerfile (dockerfilelint)"
"$TOOLS/npm/node_modules/.bin/dockerfilelint" deploy/Dockerfile

echo "== Caddyfiles (caddy validate)"
CHAT_DOMAIN=chat.example.org caddy validate --adapter caddyfile --config deploy/compose/Caddyfile 2>&1 \
  | grep -v '"level":"info"'
caddy validate --adapter caddyfile --config deploy/Caddyfile 2>&1 | grep -v '"level":"info"'

echo "== alerting rules and dashboard queries (promtool)"
promtool check rules deploy/prometheus/chat-alerts.yml
python3 - deploy/grafana/chat-server.json "$WORK/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "no queries in the dashboard"
out = ["groups:", "  - name: dashboard", "    rules:"]
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
    out += [f"      - record: dashboard:query{i}", "        expr: " + json.dumps(e)]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
promtool check rules "$WORK/dashboard-rules.yml"
echo "lint-deploy: ok"
