#!/usr/bin/env bash
# The update test of the desktop app (issue 16, item 4), run by hand (needs root: it installs
# a .deb; about 10 minutes on 2 cores, two builds of the app):
#   1. makes a throwaway signing key (`tauri signer generate`);
#   2. builds version N+1 and then N of the app (the test build's features, UI embedded), both
#      trusting that key (TAURI_CONFIG merges it into tauri.conf.json at build time; the
#      shipped key is not used), and bundles each as a .deb (`tauri bundle --debug`);
#   3. signs N+1's .deb (`tauri signer sign --app-version`) into an updates directory laid
#      out as docs/OPERATIONS.md ("Client updates") says;
#   4. `apt-get install ./` N's .deb, then the e2e test `update` runs the installed app against
#      a local chat-server serving that directory: the app offers the update, installs it,
#      restarts as N+1 with its cache, outbox and keychain token (screenshots
#      30-update-ready.png, 31-updated.png in $CHAT_E2E_SHOTS);
#   5. purges the package.
# The bad-signature test is not here: it runs in CI (src-tauri/tests/updates.rs).
# The AppImage path is not tested: Tauri's AppImage bundler downloads linuxdeploy from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
TOOLS=${CHAT_TOOLS:-/var/cache/chat/tools}
export PATH="$TOOLS/bin:$TOOLS/npm/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHAT_E2E_SHOTS=${CHAT_E2E_SHOTS:-$CARGO_TARGET_DIR/e2e-shots}
JOBS=${JOBS:-$(nproc)}
[ "$(id -u)" -eq 0 ] || { echo "update-check: needs root (apt-get install)" >&2; exit 2; }
PKG=chat
N=$(python3 -c 'import json; print(json.load(open("tauri.conf.json"))["version"])')
N1=$(python3 - "$N" <<'EOF'
import sys
major, minor, patch = sys.argv[1].split(".")
print(f"{major}.{minor}.{int(patch) + 1}")
EOF
)
WORK=$(mktemp -d)
cleanup() {
  rm -rf "$WORK"
  if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
    apt-get purge -y -qq "$PKG" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
fail() { echo "update-check: FAILED: $*" >&2; exit 1; }
start=$(date +%s)

echo "== update: a throwaway signing key"
tauri signer generate --ci -p "" -w "$WORK/update.key" >/dev/null
PUBKEY=$(cat "$WORK/update.key.pub")

echo "== update: UI (trunk build --release)"
(cd ui && trunk build --release) >"$WORK/trunk.log" 2>&1 || { cat "$WORK/trunk.log" >&2; fail "trunk"; }

# Builds the app (and the e2e test binary, same features as CI's test build) as version $1,
# trusting the throwaway key, and bundles it as a .deb into $WORK/$1/.
build() {
  local version=$1 config
  config=$(printf '{"version":"%s","plugins":{"updater":{"pubkey":"%s"}}}' "$version" "$PUBKEY")
  echo "== update: build $version"
  TAURI_CONFIG=$config cargo test --workspace --features chat-desktop/custom-protocol --locked \
    -j"$JOBS" --no-run --test e2e >"$WORK/build-$version.log" 2>&1 \
    || { tail -40 "$WORK/build-$version.log" >&2; fail "build $version"; }
  rm -rf "$CARGO_TARGET_DIR/debug/bundle"
  tauri bundle --debug --bundles deb --config "$config" >"$WORK/bundle-$version.log" 2>&1 \
    || { cat "$WORK/bundle-$version.log" >&2; fail "bundle $version"; }
  mkdir -p "$WORK/$version"
  cp "$CARGO_TARGET_DIR"/debug/bundle/deb/*_"$version"_*.deb "$WORK/$version/"
}
build "$N1"
build "$N"   # last: the e2e test binary stays built from this one

echo "== update: sign $N1 into the updates directory"
mkdir -p "$WORK/updates/$N1"
DEB1=$(ls "$WORK/$N1"/*.deb)
cp "$DEB1" "$WORK/updates/$N1/"
tauri signer sign -f "$WORK/update.key" -p "" --app-version "$N1" "$WORK/updates/$N1/$(basename "$DEB1")" \
  >"$WORK/sign.log" 2>&1 || { cat "$WORK/sign.log" >&2; fail "signer sign"; }
printf 'Update test build %s.\n' "$N1" >"$WORK/updates/$N1/notes.md"
ls -l "$WORK/updates/$N1"

echo "== update: apt-get install ./ $N"
DEB=$(ls "$WORK/$N"/*.deb)
chmod 755 "$WORK" "$WORK/$N"; chmod 644 "$DEB"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB" >"$WORK/apt.log" 2>&1 \
  || { cat "$WORK/apt.log" >&2; fail "apt-get install"; }
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "$N" ] || fail "$N is not what is installed"

echo "== update: the installed app updates itself"
E2E_TEST=$(TAURI_CONFIG=$(printf '{"version":"%s","plugins":{"updater":{"pubkey":"%s"}}}' "$N" "$PUBKEY") \
  cargo test --workspace --features chat-desktop/custom-protocol --locked -j"$JOBS" \
  --no-run --test e2e --message-format=json-render-diagnostics 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
[ -x "$E2E_TEST" ] || fail "the e2e test binary was not built"
CHAT_E2E_APP=/usr/bin/chat-desktop CHAT_E2E_UPDATES="$WORK/updates" CHAT_E2E_UPDATE_VERSION="$N1" \
  "$E2E_TEST" --exact update --ignored --nocapture \
  || fail "the update test (log: $CHAT_E2E_SHOTS/update-app.log)"
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "$N1" ] || fail "$N1 is not installed after the update"

echo "== update: passed in $(( $(date +%s) - start )) s"
