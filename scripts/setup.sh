#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build, test and run the project:
# system packages (Redis, WebKitGTK for Tauri, Xvfb and WebKitWebDriver for the end-to-end test,
# a keyring for tests), the wasm32 target, and the UI/test tools from crates.io.
# Idempotent: installs only what is missing. Tools go to $CHAT_TOOLS (default /var/cache/chat/tools).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${CHAT_TOOLS:-/var/cache/chat/tools}
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

APT_PACKAGES=(
  redis-server                                     # store for tests and multi-node servers
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev  # Tauri
  xvfb webkit2gtk-driver imagemagick               # end-to-end test in a real window, screenshots
  dunst                                            # e2e: a notification daemon on the test display
  fonts-noto-color-emoji                           # emoji drawn in those screenshots (not boxes)
  dbus gnome-keyring keyutils libsecret-1-dev      # a real keychain (Secret Service) for tests
  pkg-config build-essential curl
  python3 python3-venv                             # schemathesis (REST fuzzing) in a venv
  nginx                                            # proxy test (server/tests/proxy.rs), rolling restart
  prometheus caddy systemd                         # operations: promtool, Caddyfile check + proxy test, units
  desktop-file-utils rpm                           # desktop packages: desktop-file-validate, rpm -qp
  gcc-mingw-w64-x86-64                             # the app checked for Windows (scripts/cross-check.sh)
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not a Debian/Ubuntu system. Install these (or your distribution's equivalents) yourself:" >&2
  echo "  ${APT_PACKAGES[*]}" >&2
fi

command -v rustup >/dev/null 2>&1 && rustup target add wasm32-unknown-unknown x86_64-pc-windows-gnu >/dev/null 2>&1 || true

mkdir -p "$TOOLS"
install_tool() { # name version binary [--locked]
  local name=$1 version=$2 bin=$3 locked=${4:-}
  if ! cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^$name v$version:" || [ ! -x "$TOOLS/bin/$bin" ]; then
    echo "setup: cargo install $name $version"
    CARGO_TARGET_DIR="${CHAT_INSTALL_TARGET:-/var/cache/chat/install-target}" \
      cargo install "$name" --version "$version" $locked --root "$TOOLS" -j"$(nproc)" --quiet
  fi
}
if [ -f ui/Trunk.toml ]; then
  install_tool trunk 0.21.14 trunk --locked
  # The wasm-bindgen CLI must match the library version in Cargo.lock exactly.
  wb=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  [ -n "$wb" ] && install_tool wasm-bindgen-cli "$wb" wasm-bindgen
fi
if [ -f tauri.conf.json ]; then
  install_tool tauri-driver 2.0.6 tauri-driver --locked
fi
# Fuzzing: cargo fuzz (libFuzzer; scripts/fuzz.sh) and schemathesis from PyPI in a venv
# (scripts/schemathesis.sh).
install_tool cargo-fuzz 0.13.2 cargo-fuzz --locked
# A real S3-protocol server for the attachment tests on object storage (issue 14,
# server/tests/attachments.rs `s3::`); 0.14.1 is the newest that builds with rustc 1.95.
install_tool s3s-fs 0.14.1 s3s-fs "--locked --features binary"
VENV=${CHAT_VENV:-/var/cache/chat/venv}
SCHEMATHESIS=4.32.5
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS$"; then
  echo "setup: schemathesis $SCHEMATHESIS into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
fi
# Operations (issue 12): cargo-deb for the server package (scripts/deb.sh, deb-check.sh);
# check-jsonschema (bundled Compose Specification schema) and dockerfilelint for deploy/
# (scripts/lint-deploy.sh).
install_tool cargo-deb 3.8.0 cargo-deb --locked
CHECK_JSONSCHEMA=0.39.0
if ! "$VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA"; then
  echo "setup: check-jsonschema $CHECK_JSONSCHEMA into $VENV"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==$CHECK_JSONSCHEMA"
fi
if [ ! -x "$TOOLS/npm/node_modules/.bin/dockerfilelint" ] && command -v npm >/dev/null 2>&1; then
  echo "setup: npm install dockerfilelint"
  npm install --silent --prefix "$TOOLS/npm" dockerfilelint@1.8.0 >/dev/null
fi
# Tauri's CLI bundles the app into .deb/.rpm (scripts/desktop-package-check.sh); the npm package
# carries the native binary.
TAURI_CLI=2.12.6
if ! "$TOOLS/npm/node_modules/.bin/tauri" --version 2>/dev/null | grep -q "$TAURI_CLI" && command -v npm >/dev/null 2>&1; then
  echo "setup: npm install @tauri-apps/cli@$TAURI_CLI"
  npm install --silent --prefix "$TOOLS/npm" "@tauri-apps/cli@$TAURI_CLI" >/dev/null
fi
# A WebSocket client that is not ours, for the conformance tests (server/tests/conformance.rs).
WEBSOCKETS=15.0.1
if ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS')" 2>/dev/null; then
  echo "setup: websockets $WEBSOCKETS into $VENV"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS"
fi
echo "setup: ok"
