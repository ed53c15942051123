#!/usr/bin/env bash
# Builds the server's Debian package: target/debian/chat-server_<version>-1_<arch>.deb.
#   scripts/deb.sh            release build (what you install on a server)
#   PROFILE=dev scripts/deb.sh   reuses the debug build (what CI checks; see scripts/deb-check.sh)
# Needs cargo-deb (scripts/setup.sh installs it). Prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/chat/target}
export PATH="${CHAT_TOOLS:-/var/cache/chat/tools}/bin:$HOME/.cargo/bin:$PATH"
PROFILE=${PROFILE:-release}
OUT="$CARGO_TARGET_DIR/debian"
mkdir -p "$OUT"
if [ "$PROFILE" = dev ]; then
  # The binary the test build made (same flags as scripts/test.sh, so features resolve as
  # there and nothing is rebuilt); `-p chat-server` alone would resolve them apart and rebuild
  # a large part of the tree (about 12 minutes on a cold CI machine).
  cargo build --locked -q --workspace --features chat-desktop/custom-protocol --bin chat-server \
    -j"${JOBS:-$(nproc)}"
else
  cargo build --locked -q -p chat-server --profile "$PROFILE" -j"${JOBS:-$(nproc)}"
fi
cargo deb -q -p chat-server --no-build --profile "$PROFILE" -o "$OUT" >/dev/null
version=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="chat-server"))')
ls -t "$OUT"/chat-server_"$version"*.deb | head -n1
