#!/usr/bin/env bash
# The Windows station agent, tested on this Linux machine: cross-builds it for
# x86_64-pc-windows-gnu with warnings as errors, builds its unit tests (and those of
# lanterne-winsys) and runs them under Wine on a private Xvfb display, in a fresh Wine prefix
# under the cargo target directory; then the scenario tests/scenarios/tests/windows_agent.rs:
# the Windows agent under Wine enrols with a real box built here for Linux, a Windows program
# paints the Wine desktop, and the box's focus view decodes that colour (the agent split in
# two processes on a named pipe, as on a real PC); and the Windows service under Wine's
# service manager starts, restarts and stops its session helper. The scenarios share the
# Wine prefix and display: one at a time. Then the installer
# (scripts/build-msi.sh) and tests/scenarios/tests/windows_msi.rs: its tables, and an install
# with Wine's msiexec that enrols with a real box and starts the service, then an uninstall.
#
#   scripts/test-windows.sh
#
# Needs the rustup target x86_64-pc-windows-gnu and Debian's mingw-w64, wine64 and xvfb (as
# scripts/setup.sh installs); the display and the prefix are made by scripts/wine-env.sh
# (with a test-only bcryptprimitives.dll, never shipped). Ends with cargo's "test result:"
# lines; fails if a test failed or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TARGET_DIR=$target_dir

name=test-windows
. scripts/wine-env.sh
wine_check

echo "==> cross-build for Windows (warnings as errors)"
RUSTFLAGS="-D warnings" cargo build -p lanterne-station -p lanterne-winsys --target "$WINDOWS_TARGET" --bins --examples
RUSTFLAGS="-D warnings" cargo test -p lanterne-station -p lanterne-winsys --target "$WINDOWS_TARGET" --no-run

wine_display
echo "==> fresh Wine prefix"
wine_prefix

echo "==> unit tests under Wine on $DISPLAY"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
status=0
RUSTFLAGS="-D warnings" cargo test -p lanterne-station -p lanterne-winsys --target "$WINDOWS_TARGET" \
  2>&1 | tee "$wine_work/tests.log" || status=1

echo "==> scenario: the Windows agent under Wine with a real box"
unset CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER
cargo build -p lanterne-box --bins
LANTERNE_WINDOWS_BIN_DIR=$target_dir/$WINDOWS_TARGET/debug \
  cargo test -p lanterne-scenarios --test windows_agent -- --ignored --test-threads=1 2>&1 | tee -a "$wine_work/tests.log" \
  || status=1

echo "==> the installer: built, then installed, enrolled and removed under Wine"
scripts/build-msi.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
LANTERNE_WINDOWS_MSI=$PWD/target/packages/lanterne-station_${version}_x64.msi \
  cargo test -p lanterne-scenarios --test windows_msi -- --ignored 2>&1 | tee -a "$wine_work/tests.log" \
  || status=1

ran=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) p += $i } END { print p + 0 }' "$wine_work/tests.log")
if [ "$ran" -eq 0 ]; then
  echo "test-windows: no test ran" >&2
  exit 1
fi
exit "$status"
