#!/usr/bin/env bash
# Windows agent benchmark: the Windows station agent under Wine next to the Linux agent, both
# capturing the same moving picture (drawn by a Windows program on one Xvfb display) and
# streaming to a real box: CPU and RSS of each agent with nobody watching, while it sends a
# thumbnail (mosaic open) and while it sends its full stream (focus view open), medians over
# a few windows, plus the bytes and frames it sent. Wine figures are indicative only (Wine is
# not Windows). Release builds: the box and the Linux agent for this machine, the Windows
# agent for x86_64-pc-windows-gnu. Prints the figures, writes docs/bench/windows.json and
# regenerates docs/benchmarks.md. Needs root (the Linux session helper runs as nobody).
#
#   sudo scripts/bench-windows.sh [window_seconds=10] [windows=5]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
scripts/setup.sh
name=bench-windows
. scripts/wine-env.sh
wine_check

cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
cargo build --release -p lanterne-station -p lanterne-winsys --target "$WINDOWS_TARGET" --bins --examples

wine_display
wine_prefix
LANTERNE_WINDOWS_BIN_DIR=$CARGO_TARGET_DIR/$WINDOWS_TARGET/release \
  "$CARGO_TARGET_DIR/release/bench-windows" "${1:-10}" "${2:-5}"
node scripts/bench/render.mjs
