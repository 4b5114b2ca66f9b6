#!/usr/bin/env bash
# Hostile-network benchmark: the box at a systemd service's 1024 open-file limit, with a
# station streaming and a teacher watching, through 2,000 half-sent requests (from 16
# addresses, then one), slow headers and slow bodies on both ports and 500 logins at once.
# Prints the figures, writes docs/bench/hostile.json and regenerates docs/benchmarks.md.
#
#   sudo scripts/bench-hostile.sh [half_requests=2000] [logins=500]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station -p lanterne-scenarios --bins
RUST_LOG=warn target/release/bench-hostile "${1:-2000}" "${2:-500}"
node scripts/bench/render.mjs
