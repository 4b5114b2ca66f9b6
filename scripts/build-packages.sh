#!/usr/bin/env bash
# Builds Lanterne's Debian 12 packages with dpkg-deb, for amd64 and arm64:
#   lanterne-box       the box daemon, its hardened systemd unit, the room configuration as a
#                      conffile (/etc/lanterne/lanterne.toml), the front panel's udev rule;
#                      its postinst makes the `lanterne` system user and /var/lib/lanterne
#   lanterne-station   the station agent: system service, per-session user unit, XDG
#                      autostart entry, /etc/lanterne/station.toml as a conffile
# then checks each with lintian (no errors allowed).
#
#   sudo scripts/build-packages.sh              # both architectures
#   sudo scripts/build-packages.sh amd64        # or only one
#   sudo scripts/build-packages.sh --no-build amd64   # package binaries built before
#
# Output: target/packages/<name>_<version>_<arch>.deb. The arm64 binaries come from
# scripts/cross-build.sh (Raspberry Pi features on); the amd64 box has V4L2 capture for USB
# HDMI dongles.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

build=1
if [ "${1:-}" = "--no-build" ]; then
  build=0
  shift
fi
ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(amd64 arm64)
OUT=target/packages
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# Reproducible dates in the packages: the last commit's, not the build's. Not exported:
# some build scripts rerun when SOURCE_DATE_EPOCH changes, and cargo would then rebuild half
# the workspace at every commit.
SDE=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
MAINTAINER="Lanterne maintainers <lanterne@example.invalid>"
mkdir -p "$OUT"

. scripts/package-depends.sh

binary_dir() { # arch -> where its release binaries are
  case $1 in
    amd64) echo target/release ;;
    arm64) echo target/aarch64-unknown-linux-gnu/release ;;
  esac
}

build_binaries() { # arch
  case $1 in
    amd64) cargo build --release -p lanterne-box -p lanterne-station -F lanterne-box/v4l2-capture ;;
    arm64) scripts/cross-build.sh --no-test ;;
    *) echo "build-packages: unknown architecture '$1' (amd64, arm64)" >&2; exit 2 ;;
  esac
}

check_needed() { # arch, binary: every library it needs is one LIB_DEPENDS covers
  local lib objdump=objdump
  [ "$1" = arm64 ] && objdump=aarch64-linux-gnu-objdump
  shift
  for lib in $("$objdump" -p "$1" | awk '/NEEDED/ { print $2 }'); do
    if ! grep -qw -- "$lib" <<<"$KNOWN_NEEDED"; then
      echo "build-packages: $1 needs $lib, which no declared dependency provides" >&2
      exit 1
    fi
  done
}

install_bin() { # arch, binary, destination
  install -D -m 0755 "$2" "$3"
  case $1 in
    amd64) strip --strip-unneeded --remove-section=.comment "$3" ;;
    arm64) aarch64-linux-gnu-strip --strip-unneeded --remove-section=.comment "$3" ;;
  esac
}

docs() { # package, root
  local d="$2/usr/share/doc/$1"
  install -d -m 0755 "$d"
  install -m 0644 images/debian/copyright "$d/copyright"
  {
    echo "$1 ($VERSION) bookworm; urgency=medium"
    echo
    echo "  * Built from the Lanterne source tree, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo
    echo " -- $MAINTAINER  $(date -R -u -d "@$SDE")"
  } | gzip -9n > "$d/changelog.gz"
}

finish() { # package, arch, root, depends, description...
  local pkg=$1 arch=$2 root=$3 depends=$4
  shift 4
  install -d -m 0755 "$root/DEBIAN"
  install -m 0755 images/debian/"$pkg"/{postinst,prerm,postrm} "$root/DEBIAN/"
  (cd "$root" && find etc -type f 2>/dev/null | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  {
    echo "Package: $pkg"
    echo "Version: $VERSION"
    echo "Architecture: $arch"
    echo "Maintainer: $MAINTAINER"
    echo "Installed-Size: $size"
    echo "Depends: $depends"
    echo "Section: net"
    echo "Priority: optional"
    echo "Homepage: https://example.invalid/lanterne"
    printf '%s\n' "$@"
  } > "$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
  find "$root" -exec touch -h -d "@$SDE" {} +
  local deb="$OUT/${pkg}_${VERSION}_${arch}.deb"
  SOURCE_DATE_EPOCH=$SDE dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
  echo "$deb"
}

package_box() { # arch
  local arch=$1 root
  root=$(mktemp -d)
  chmod 0755 "$root"
  check_needed "$arch" "$(binary_dir "$arch")/lanterne-box"
  install_bin "$arch" "$(binary_dir "$arch")/lanterne-box" "$root/usr/bin/lanterne-box"
  install -D -m 0644 images/systemd/lanterne-box.service "$root/lib/systemd/system/lanterne-box.service"
  install -D -m 0644 images/udev/99-lanterne-panel.rules "$root/lib/udev/rules.d/99-lanterne-panel.rules"
  install -D -m 0644 images/config/lanterne.toml "$root/etc/lanterne/lanterne.toml"
  docs lanterne-box "$root"
  install -m 0644 images/README.md "$root/usr/share/doc/lanterne-box/README.md"
  finish lanterne-box "$arch" "$root" "$BOX_DEPENDS" \
    "Recommends: ca-certificates" \
    "Description: Lanterne classroom box" \
    " The classroom box of Lanterne: student PCs stream their screens to it over" \
    " mutually authenticated TLS, and a teacher watches and steers the class from a" \
    " tablet browser (live mosaic, focus view, demo to all, lock, messages, power)." \
    " Runs as the lanterne system user under a hardened systemd unit; its state" \
    " (database, certificate authorities) lives in /var/lib/lanterne."
  rm -rf "$root"
}

package_station() { # arch
  local arch=$1 root
  root=$(mktemp -d)
  chmod 0755 "$root"
  check_needed "$arch" "$(binary_dir "$arch")/lanterne-station"
  install_bin "$arch" "$(binary_dir "$arch")/lanterne-station" "$root/usr/bin/lanterne-station"
  install -D -m 0644 images/station/lanterne-station.service "$root/lib/systemd/system/lanterne-station.service"
  install -D -m 0644 images/station/lanterne-station-session.service "$root/usr/lib/systemd/user/lanterne-station-session.service"
  install -D -m 0644 images/station/lanterne-station-session.desktop "$root/etc/xdg/autostart/lanterne-station-session.desktop"
  install -D -m 0644 images/config/station.toml "$root/etc/lanterne/station.toml"
  docs lanterne-station "$root"
  finish lanterne-station "$arch" "$root" "$LIB_DEPENDS, $STATION_GST" \
    "Recommends: gstreamer1.0-pipewire, xdg-utils" \
    "Description: Lanterne classroom station agent" \
    " The agent of a student PC in a Lanterne classroom: a system service (link to" \
    " the classroom box, power, sessions, the commands this PC allows) and a helper" \
    " in each graphical session, run as the student (screen capture, lock screen," \
    " messages, demo player, links)."
  rm -rf "$root"
}

for arch in "${ARCHES[@]}"; do
  [ $build -eq 0 ] || build_binaries "$arch"
  package_box "$arch"
  package_station "$arch"
done

if command -v lintian >/dev/null; then
  status=0
  for arch in "${ARCHES[@]}"; do
    for pkg in lanterne-box lanterne-station; do
      deb="$OUT/${pkg}_${VERSION}_${arch}.deb"
      # Errors fail the build; warnings are printed for whoever reads the log.
      lintian --fail-on error "$deb" || status=1
    done
  done
  [ $status -eq 0 ] || { echo "build-packages: lintian reported errors" >&2; exit 1; }
else
  echo "build-packages: lintian not installed, packages not checked" >&2
fi
