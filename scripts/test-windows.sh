#!/usr/bin/env bash
# The Windows station agent, tested on this Linux machine: cross-builds it for
# x86_64-pc-windows-gnu with warnings as errors, builds its unit tests (and those of
# lanterne-winsys) and runs them under Wine on a private Xvfb display, in a fresh Wine prefix
# under the cargo target directory; then the scenario tests/scenarios/tests/windows_agent.rs:
# the Windows agent under Wine enrols with a real box built here for Linux, a Windows program
# paints the Wine desktop, and the box's focus view decodes that colour.
#
#   scripts/test-windows.sh
#
# Needs the rustup target x86_64-pc-windows-gnu and Debian's mingw-w64, wine64 and xvfb (as
# scripts/setup.sh installs). Rust's standard library imports ProcessPrng, which Wine 8.0
# lacks: the prefix gets a test-only bcryptprimitives.dll built from tests/windows/ (never
# shipped). Ends with cargo's "test result:" lines; fails if a test failed or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET=x86_64-pc-windows-gnu
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TARGET_DIR=$target_dir

for tool in x86_64-w64-mingw32-gcc wine Xvfb; do
  command -v "$tool" >/dev/null || { echo "test-windows: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" \
  || { echo "test-windows: rustup target $TARGET is missing" >&2; exit 1; }

echo "==> cross-build for Windows (warnings as errors)"
RUSTFLAGS="-D warnings" cargo build -p lanterne-station -p lanterne-winsys --target "$TARGET" --bins --examples
RUSTFLAGS="-D warnings" cargo test -p lanterne-station -p lanterne-winsys --target "$TARGET" --no-run

work=$(mktemp -d)
xvfb_pid=
cleanup() {
  if [ -n "${WINEPREFIX:-}" ] && [ -d "${WINEPREFIX:-}" ]; then wineserver -k 2>/dev/null || true; fi
  if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A display of its own: -displayfd prints its number once the server accepts connections.
Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp -noreset 3>"$work/display" 2>/dev/null &
xvfb_pid=$!
for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
[ -s "$work/display" ] || { echo "test-windows: Xvfb did not start" >&2; exit 1; }
export DISPLAY=":$(head -1 "$work/display")"

echo "==> fresh Wine prefix"
export WINEPREFIX=$target_dir/wine-prefix
export WINEARCH=win64 WINEDEBUG=-all
# Neither Mono nor Gecko (they would be downloaded): the agent needs neither.
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
rm -rf "$WINEPREFIX"
wineboot --init >/dev/null 2>&1
wineserver -w
x86_64-w64-mingw32-gcc -O2 -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  tests/windows/processprng.c tests/windows/processprng.def -lbcrypt

echo "==> unit tests under Wine on $DISPLAY"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
status=0
RUSTFLAGS="-D warnings" cargo test -p lanterne-station -p lanterne-winsys --target "$TARGET" \
  2>&1 | tee "$work/tests.log" || status=1

echo "==> scenario: the Windows agent under Wine with a real box"
unset CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER
cargo build -p lanterne-box --bins
LANTERNE_WINDOWS_BIN_DIR=$target_dir/$TARGET/debug \
  cargo test -p lanterne-scenarios --test windows_agent -- --ignored 2>&1 | tee -a "$work/tests.log" \
  || status=1

ran=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) p += $i } END { print p + 0 }' "$work/tests.log")
if [ "$ran" -eq 0 ]; then
  echo "test-windows: no test ran" >&2
  exit 1
fi
exit "$status"
