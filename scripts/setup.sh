#!/usr/bin/env bash
# Installs everything Lanterne needs to build, run and test on Debian 12 (run as root):
# apt packages (GStreamer with software codecs, Xvfb, Chromium), the Rust components and
# targets, and the npm packages of the browser tests. Safe to run again: it only installs
# what is missing.
#
#   sudo scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config git ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x gstreamer1.0-tools
  xvfb x11-utils x11-xserver-utils x11-apps xdotool
  # The X application the remote-help browser test and benchmark click and type into.
  python3-tk
  chromium fonts-dejavu-core
  webkit2gtk-driver
  # Packages, the aarch64 cross-build and the SD-card image (scripts/build-packages.sh,
  # cross-build.sh, build-image.sh, test-image.sh).
  lintian file mmdebstrap debootstrap gcc-aarch64-linux-gnu libc6-dev-arm64-cross libclang-dev
  qemu-user qemu-system-arm proot gcc dosfstools fdisk mtools e2fsprogs openssh-client python3 curl
  # The Windows station agent: cross-built with mingw-w64, tested under Wine
  # (scripts/test-windows.sh); its benchmark reads the link's bytes with ss (iproute2); its
  # installer is made with wixl and checked with msiinfo (scripts/build-msi.sh).
  mingw-w64 wine64 iproute2 wixl msitools
)
# Node.js may come from elsewhere than Debian (with its own npm, which conflicts with
# Debian's npm package): install Debian's only when there is no node or npm at all.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages and not root; run as root: sudo $0" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  installed_components=$(rustup component list --installed 2>/dev/null || true)
  for c in clippy rustfmt; do
    grep -q "^$c" <<<"$installed_components" || rustup component add "$c"
  done
  rustup target list --installed | grep -q '^thumbv6m-none-eabi$' || rustup target add thumbv6m-none-eabi
  rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$' || rustup target add aarch64-unknown-linux-gnu
  rustup target list --installed | grep -q '^x86_64-pc-windows-gnu$' || rustup target add x86_64-pc-windows-gnu
fi

if [ -f tests/e2e/package-lock.json ]; then
  # npm ci only when the lock file changed since the last install.
  stamp=tests/e2e/node_modules/.lanterne-lock-sha
  want=$(sha256sum tests/e2e/package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
fi
echo "setup: ok"
