#!/usr/bin/env bash
# Mosaic benchmark (issue: live overview): N replayed stations → box → one composed stream →
# headless Chromium. Prints the figures, writes docs/bench/mosaic.json and regenerates
# docs/benchmarks.md.
#
#   sudo scripts/bench-mosaic.sh [stations=32] [windows=5] [window_seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station
mkdir -p run/bench
# A 20 s loop of a 5 fps thumbnail, pre-encoded once so that the benchmark measures the box,
# not 32 encoders. The box asks each station for a thumbnail no larger than its tile (about
# 208x116 with 32 stations on a 1280x720 mosaic); replayed stations cannot rescale, so the
# file is recorded at 256x144, a little larger than what real stations would send.
if [ ! -s run/bench/thumb-256.lrp ]; then
  target/release/lanterne-station record --out run/bench/thumb-256.lrp --frames 100 \
    --label replay --rgb 3c64c8 --width 256 --height 144 --fps 5 --bitrate-kbps 150
fi
LANTERNE_BIN_DIR=$PWD/target/release RUST_LOG=warn node scripts/bench/mosaic.mjs "${1:-32}" "${2:-5}" "${3:-10}" run/bench/thumb-256.lrp
node scripts/bench/render.mjs
