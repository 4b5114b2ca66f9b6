#!/usr/bin/env bash
# Functional check of the aarch64 box (issue 15): the box cross-built for aarch64 runs under
# qemu-aarch64 user emulation, with Debian's arm64 GStreamer plugins, through the scale
# benchmark (scripts/bench/scale.mjs) at a small scale: x86 stations replaying the recorded
# screens, headless Chromium on the room page. Writes docs/bench/scale-aarch64.json and
# regenerates docs/benchmarks.md. The figures are an emulator's, not a Pi's (see there).
#
#   sudo scripts/bench-aarch64.sh [stations=5] [windows=3] [window_seconds=10]
#
# LANTERNE_AARCH64_BOX names an arm64 box binary already built (e.g. by
# scripts/cross-build.sh) instead of building it here (a release cross-build of the box takes
# about 15 to 20 minutes on a cold 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
need=()
for p in x11vnc mousepad xwallpaper desktop-base; do # the recorded scenes' programs
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

TARGET=aarch64-unknown-linux-gnu
box=${LANTERNE_AARCH64_BOX:-}
if [ -z "$box" ]; then
  (. scripts/cross-env.sh && cargo build --release --target "$TARGET" -p lanterne-box)
  box=$PWD/target/$TARGET/release/lanterne-box
fi
file -b "$box" | grep -q 'ARM aarch64' || { echo "bench-aarch64: $box is not an aarch64 binary" >&2; exit 1; }
runtime=$(scripts/cross-sysroot.sh --runtime | tail -1)

# The x86 stations, and the recording of the scenes (reused when already there).
cargo build --release -p lanterne-box -p lanterne-station
content=target/bench-content
scripts/bench/record-content.sh "$content" 30

# Under user emulation nothing foreign can be executed through the kernel (no binfmt_misc):
# GStreamer scans its plugins in-process instead of in its helper, into a registry of its
# own (the x86 stations keep theirs), and the box's allocator variables are set up front so
# that it does not re-execute itself to set them. Only the box gets these variables.
wrapper="env GST_REGISTRY_FORK=no GST_REGISTRY=$PWD/target/gst-registry-aarch64.bin"
wrapper+=" MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576 qemu-aarch64 -L $runtime"
LANTERNE_BENCH_AARCH64="$(basename "$box") for $TARGET, under $(qemu-aarch64 --version | head -1)" \
  LANTERNE_BOX_BIN=$box LANTERNE_BOX_WRAPPER="$wrapper" \
  LANTERNE_BIN_DIR=$PWD/target/release RUST_LOG=warn \
  node scripts/bench/scale.mjs "${1:-5}" "${2:-3}" "${3:-10}" 0 "$content"
node scripts/bench/render.mjs
