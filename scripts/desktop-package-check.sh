#!/usr/bin/env bash
# CI check of the desktop app's packages (issue 16). Installs the .deb on THIS machine (needs root):
#   1. bundles the app the test build made (`$CARGO_TARGET_DIR/debug/chat-desktop`, UI embedded
#      by `--features chat-desktop/custom-protocol`) into a .deb and an .rpm with Tauri's CLI
#      (`tauri bundle --debug`: the packaging is the release's, the binary is the debug build —
#      a release build costs minutes on 2 cores and packages the same files);
#   2. checks the desktop entry (`desktop-file-validate`) and the icons it names, and that every
#      shared library the binary loads comes from a package in the closure of the .deb's
#      declared Depends (so `apt-get install ./chat.deb` on a machine without our build
#      dependencies pulls in all it needs); the .rpm lists the same files;
#   3. `apt-get install ./….deb`, then the `installed` end-to-end test runs the installed
#      /usr/bin/chat-desktop in a real window (Xvfb) against a local server: sign up, create a
#      room, send a message that the other user receives (screenshot 20-installed-deb.png);
#   4. `apt-get remove` (every file of the package gone), then `dpkg -P`.
# The AppImage is not built here: Tauri's AppImage bundler downloads linuxdeploy from GitHub,
# which this machine cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
TOOLS=${CHAT_TOOLS:-/var/cache/chat/tools}
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"
export CHAT_E2E_SHOTS=${CHAT_E2E_SHOTS:-$CARGO_TARGET_DIR/e2e-shots}
JOBS=${JOBS:-$(nproc)}
[ "$(id -u)" -eq 0 ] || { echo "desktop-package-check: needs root (apt-get install)" >&2; exit 2; }
PKG=chat
WORK=$(mktemp -d)
cleanup() {
  rm -rf "$WORK"
  if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
    apt-get purge -y -qq "$PKG" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
fail() { echo "desktop-package-check: FAILED: $*" >&2; exit 1; }
start=$(date +%s)

echo "== desktop packages: bundle (.deb, .rpm) from the test build's app"
[ -x "$CARGO_TARGET_DIR/debug/chat-desktop" ] \
  || fail "$CARGO_TARGET_DIR/debug/chat-desktop is missing: run scripts/test.sh (or e2e.sh) first"
rm -rf "$CARGO_TARGET_DIR/debug/bundle"
"$TOOLS/npm/node_modules/.bin/tauri" bundle --debug --bundles deb,rpm >"$WORK/bundle.log" 2>&1 \
  || { cat "$WORK/bundle.log" >&2; fail "tauri bundle"; }
DEB=$(ls "$CARGO_TARGET_DIR"/debug/bundle/deb/*.deb)
RPM=$(ls "$CARGO_TARGET_DIR"/debug/bundle/rpm/*.rpm)
echo "   $(basename "$DEB") $(du -h "$DEB" | cut -f1), $(basename "$RPM") $(du -h "$RPM" | cut -f1)"

echo "== desktop packages: desktop entry, icons, declared dependencies"
dpkg-deb -x "$DEB" "$WORK/root"
[ "$(dpkg-deb -f "$DEB" Package)" = "$PKG" ] || fail "the .deb is not named $PKG"
mapfile -t entries < <(find "$WORK/root/usr/share/applications" -name '*.desktop')
[ ${#entries[@]} -eq 1 ] || fail "expected one desktop entry, found ${#entries[@]}"
desktop-file-validate "${entries[0]}" || fail "desktop-file-validate ${entries[0]}"
exec_bin=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "${entries[0]}")
icon=$(sed -n 's/^Icon=//p' "${entries[0]}")
[ -x "$WORK/root/usr/bin/$exec_bin" ] || fail "Exec=$exec_bin is not in /usr/bin of the package"
find "$WORK/root/usr/share/icons/hicolor" -name "$icon.png" | grep -q . || fail "no hicolor icon $icon.png"
# The package closure of the declared Depends (installed or not: apt-cache knows them all).
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/([^)]*)//; s/|.*//; s/ //g' | grep .)
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances $deps 2>/dev/null | sed -n 's/^ *\(Pre\)\{0,1\}Depends: //p; /^[a-z0-9]/p' \
  | sed 's/[<>]//g; s/:any$//; s/:amd64$//' | sort -u >"$WORK/closure"
missing=""
while read -r lib; do
  owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) \
    || owner=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1) || owner=""
  [ -n "$owner" ] || { missing+=" $lib(no package)"; continue; }
  # libc6 and the other Essential packages are on every system.
  if ! grep -qx "$owner" "$WORK/closure" \
     && [ "$(dpkg-query -W -f='${Essential}' "$owner" 2>/dev/null)" != yes ] \
     && [ "$owner" != libc6 ]; then
    missing+=" $lib($owner)"
  fi
done < <(ldd "$WORK/root/usr/bin/chat-desktop" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p')
[ -z "$missing" ] || fail "libraries from packages outside the declared Depends ($deps):$missing"
echo "   Depends: $(echo $deps | tr ' ' ','); every loaded library is in their closure"
rpm -qpl "$RPM" 2>/dev/null | grep -v '^/usr$\|/$' | sort >"$WORK/rpm.files"
(cd "$WORK/root" && find . -type f | sed 's/^\.//' | sort) >"$WORK/deb.files"
comm -13 "$WORK/rpm.files" "$WORK/deb.files" | grep . && fail "files in the .deb missing from the .rpm"

echo "== desktop packages: apt-get install ./$(basename "$DEB")"
cp "$DEB" "$WORK/"   # apt's _apt sandbox user must be able to read it
chmod 755 "$WORK"; chmod 644 "$WORK/$(basename "$DEB")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$WORK/$(basename "$DEB")" >"$WORK/apt.log" 2>&1 \
  || { cat "$WORK/apt.log" >&2; fail "apt-get install"; }
[ -x /usr/bin/chat-desktop ] || fail "/usr/bin/chat-desktop is not installed"
dpkg -L "$PKG" >"$WORK/installed.files"

echo "== desktop packages: the installed app in a real window"
E2E_TEST=$(cargo test --workspace --features chat-desktop/custom-protocol --locked -j"$JOBS" \
  --no-run --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
[ -x "$E2E_TEST" ] || fail "the e2e test binary was not built"
CHAT_E2E_APP=/usr/bin/chat-desktop "$E2E_TEST" --exact installed --ignored --nocapture \
  || fail "the installed app's test (log: $CHAT_E2E_SHOTS/installed-app.log)"

echo "== desktop packages: apt-get remove, purge"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$PKG" >/dev/null
left=""
while read -r f; do [ -f "$f" ] && left+=" $f"; done <"$WORK/installed.files"
[ -z "$left" ] || fail "files left after remove:$left"
# No conffiles, so remove leaves nothing for a purge (apt no longer knows the package); dpkg's
# purge of what is left must find nothing either.
dpkg -P "$PKG" >/dev/null 2>&1
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed && fail "still installed after purge"
echo "== desktop packages: passed in $(( $(date +%s) - start )) s"
