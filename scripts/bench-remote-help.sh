#!/usr/bin/env bash
# Remote-help benchmark: a tap sent by the tablet → the pixel it changes on a real station's
# X screen (Xvfb), p50/p99 over 200 taps, next to the same click played straight into the X
# server. Prints the figures, writes docs/bench/remote-help.json and regenerates
# docs/benchmarks.md. Needs root (the session helper runs as nobody).
#
#   sudo scripts/bench-remote-help.sh [rounds=200]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
RUST_LOG=warn target/release/bench-remote-help "${1:-200}"
node scripts/bench/render.mjs
