#!/usr/bin/env bash
# Lock benchmark: a lock order (API call or panel button) → the lock shown on N stations and
# acknowledged to the box. Prints the figures, writes docs/bench/lock.json and regenerates
# docs/benchmarks.md.
#
#   sudo scripts/bench-lock.sh [stations=40] [rounds=40]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
mkdir -p run/bench
if [ ! -s run/bench/thumb.lrp ]; then
  target/release/lanterne-station record --out run/bench/thumb.lrp --frames 100 \
    --label replay --rgb 3c64c8 --width 480 --height 270 --fps 5 --bitrate-kbps 250
fi
RUST_LOG=warn target/release/bench-lock "${1:-40}" "${2:-40}" run/bench/thumb.lrp
node scripts/bench/render.mjs
