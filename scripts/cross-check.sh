#!/usr/bin/env bash
# A Windows-breaking change is caught on Linux (issue 16): `cargo check` of the desktop app for
# x86_64-pc-windows-gnu. Tauri's Windows code (webview2-com, windows-rs, the tray, the
# single-instance plugin, keyring's Windows Credential Manager backend) is type-checked, and the
# build scripts run as they would for a Windows build: ring compiles its C with Debian's mingw-w64
# gcc, tauri-build compiles the icon and manifest into a resource with mingw's windres.
#
# Needs what scripts/setup.sh installs (gcc-mingw-w64-x86-64 and the rustup target). Its own
# target dir beside the main one: nothing of the host build can be shared with another target.
#   CARGO_TARGET_DIR   default /var/cache/chat/target-windows
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_WINDOWS:-/var/cache/chat/target-windows}
export PATH="$HOME/.cargo/bin:$PATH"
JOBS=${JOBS:-$(nproc)}
for tool in x86_64-w64-mingw32-gcc x86_64-w64-mingw32-windres; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cross-check: $tool is missing; run scripts/setup.sh" >&2; exit 1; }
done
rustup target list --installed | grep -qx x86_64-pc-windows-gnu \
  || { echo "cross-check: the x86_64-pc-windows-gnu target is missing; run scripts/setup.sh" >&2; exit 1; }
start=$(date +%s)
cargo check -p chat-desktop --target x86_64-pc-windows-gnu --locked -j"$JOBS"
echo "cross-check: chat-desktop checks for x86_64-pc-windows-gnu ($(( $(date +%s) - start )) s)"
