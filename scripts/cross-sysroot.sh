#!/usr/bin/env bash
# Makes (once) the Debian 12 arm64 sysroot that Lanterne cross-builds against: the GStreamer,
# GLib and C library development files of Debian's own arm64 packages, unpacked with
# `mmdebstrap --variant=extract` (nothing is configured or run, so no arm64 emulation is
# needed). Prints the sysroot's path on its last line.
#
#   sudo scripts/cross-sysroot.sh            # /var/cache/lanterne-sysroot/bookworm-arm64
#   LANTERNE_SYSROOT=/some/dir scripts/cross-sysroot.sh
#   sudo scripts/cross-sysroot.sh --runtime  # .../bookworm-arm64-runtime: what the box runs
#                                            # with (its GStreamer plugins), for running the
#                                            # arm64 box under qemu-aarch64 -L (bench-aarch64.sh)
#
# The arm64 -dev packages are not installed through dpkg multiarch on purpose:
# libgstreamer-plugins-base1.0-dev is not multi-arch on bookworm and would replace the amd64
# one this machine builds with. The sysroot is kept between runs: a stamp file records the
# package list it was made from, and only a changed list makes it again.
set -euo pipefail

MIRROR=${LANTERNE_MIRROR:-http://deb.debian.org/debian}
if [ "${1:-}" = "--runtime" ]; then
  SYSROOT=${LANTERNE_SYSROOT:-/var/cache/lanterne-sysroot/bookworm-arm64-runtime}
  # The lanterne-box package's run-time dependencies (scripts/build-packages.sh).
  PACKAGES=(
    libc6 libgcc-s1 libglib2.0-0 libgstreamer1.0-0 libgstreamer-plugins-base1.0-0
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav
  )
else
  SYSROOT=${LANTERNE_SYSROOT:-/var/cache/lanterne-sysroot/bookworm-arm64}
  # What the box, the station agent and the arm64 test binaries link against or run with.
  PACKAGES=(
    libc6-dev linux-libc-dev libgcc-s1 libstdc++6
    libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  )
fi

want="bookworm arm64 ${PACKAGES[*]}"
stamp="$SYSROOT/.lanterne-sysroot"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$SYSROOT"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "cross-sysroot: install mmdebstrap" >&2; exit 1; }

tmp="$SYSROOT.new"
rm -rf "$tmp"
mkdir -p "$(dirname "$SYSROOT")"
include=$(IFS=,; echo "${PACKAGES[*]}")
echo "cross-sysroot: unpacking $include into $SYSROOT" >&2
mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$include" \
  bookworm "$tmp" "$MIRROR" "$MIRROR-security bookworm-security main" >&2

# Absolute symbolic links (e.g. libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1) would point
# into this machine's own root: make them relative to the sysroot so the linker and
# qemu-aarch64 -L find the arm64 files.
find "$tmp" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$tmp$target")" "$link"
done

# Libraries that Debian provides through update-alternatives (the reference BLAS and LAPACK
# that libav's filters load) get their links from maintainer scripts, which an extracted root
# never runs: make the links the default alternatives would.
for alt in blas/libblas.so.3 lapack/liblapack.so.3; do
  dir="$tmp/usr/lib/aarch64-linux-gnu"
  if [ -e "$dir/$alt" ] && [ ! -e "$dir/$(basename "$alt")" ]; then
    ln -s "$alt" "$dir/$(basename "$alt")"
  fi
done

rm -rf "$SYSROOT"
mv "$tmp" "$SYSROOT"
echo "$want" > "$stamp"
echo "$SYSROOT"
