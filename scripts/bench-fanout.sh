#!/usr/bin/env bash
# Fan-out benchmark: one replayed 1080p30 ~4 Mbit/s stream shown by the box to N receiving
# stations over TLS on loopback, with and without one throttled receiver, and the same
# stream through a plain GStreamer tcpserversink for comparison. Prints the figures, writes
# docs/bench/fanout.json and regenerates docs/benchmarks.md.
#
#   sudo scripts/bench-fanout.sh [receivers=60] [windows=5] [window_s=10]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
mkdir -p run/bench
if [ ! -s run/bench/thumb.lrp ]; then
  target/release/lanterne-station record --out run/bench/thumb.lrp --frames 100 \
    --label replay --rgb 3c64c8 --width 480 --height 270 --fps 5 --bitrate-kbps 250
fi
if [ ! -s run/bench/full-1080p30.lrp ]; then
  target/release/bench-fanout record run/bench/full-1080p30.lrp
fi
RUST_LOG=warn target/release/bench-fanout run "${1:-60}" "${2:-5}" "${3:-10}" \
  run/bench/thumb.lrp run/bench/full-1080p30.lrp
node scripts/bench/render.mjs
