#!/usr/bin/env bash
# Scale benchmark (issue 15): N stations replaying realistic screens (recorded here from real
# programs on Xvfb through the station's own X11 capture and rate control) → a real box →
# one mosaic in headless Chromium; the idle room; and, in the same run, the same motion
# content served by x11vnc to view-only VNC receivers. Prints the figures, writes
# docs/bench/scale.json and regenerates docs/benchmarks.md.
#
#   sudo scripts/bench-scale.sh [stations=40] [windows=3] [window_seconds=10] [vnc_receivers=10]
#
# The recorded content (about 10 MB, mostly the full-size streams) goes to
# target/bench-content/ the first time and is reused; delete it to record again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The scenes' programs and the VNC server of the comparison.
need=()
for p in x11vnc mousepad xwallpaper desktop-base; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
content=target/bench-content
scripts/bench/record-content.sh "$content" 30
LANTERNE_BIN_DIR=$PWD/target/release RUST_LOG=warn node scripts/bench/scale.mjs \
  "${1:-40}" "${2:-3}" "${3:-10}" "${4:-10}" "$content"
node scripts/bench/render.mjs
