#!/usr/bin/env bash
# Cross-builds the box (with its Raspberry Pi features: HDMI capture through V4L2 and the
# GPIO front panel) and the station agent for aarch64-unknown-linux-gnu from this x86
# machine, then runs the pure-logic crates' unit tests (wire, privacy, panel) for aarch64
# under qemu-aarch64.
#
#   sudo scripts/cross-build.sh            # release binaries + the aarch64 tests
#   scripts/cross-build.sh --no-test       # binaries only (scripts/build-packages.sh)
#
# Binaries land in target/aarch64-unknown-linux-gnu/release/. Needs gcc-aarch64-linux-gnu,
# qemu-user, mmdebstrap, libclang-dev and the rustup target (scripts/setup.sh installs them).
# The test output ends with cargo's "test result:" lines (scripts/test.sh counts them).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
test=1
[ "${1:-}" = "--no-test" ] && test=0

. scripts/cross-env.sh
echo "cross-build: sysroot $CROSS_SYSROOT" >&2

cargo build --release --target "$TARGET" -p lanterne-box -p lanterne-station \
  -F lanterne-box/v4l2-capture,lanterne-box/rpi-gpio

for bin in lanterne-box lanterne-station; do
  f="target/$TARGET/release/$bin"
  file -b "$f" | grep -q 'ARM aarch64' || { echo "cross-build: $f is not an aarch64 binary" >&2; exit 1; }
done
# The arm64 box starts under emulation: --version goes through argument parsing and the
# dynamic linking of GStreamer, GLib and libc from the sysroot.
# (With its allocator variables set, the box does not re-execute itself, which would need
# binfmt_misc.)
MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576 \
  qemu-aarch64 -L "$CROSS_SYSROOT" "target/$TARGET/release/lanterne-box" --version

if [ $test -eq 1 ]; then
  # Debug profile: these are the same unit tests as on x86, run by the runner under qemu.
  cargo test --target "$TARGET" -p lanterne-wire -p lanterne-privacy -p lanterne-panel \
    -p lanterne-panel-logic -p lanterne-panel-protocol --lib --no-fail-fast
fi
