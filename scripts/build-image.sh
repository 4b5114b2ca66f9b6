#!/usr/bin/env bash
# Builds the SD-card image of a Lanterne box for the Raspberry Pi 4: Debian 12 arm64 from
# Debian's own packages (linux-image-arm64, raspi-firmware), with the lanterne-box package
# installed and enabled.
#
#   sudo scripts/build-image.sh              # -> target/image/lanterne-box-arm64.img
#   sudo scripts/build-image.sh --base-only  # steps 1 and 2 only (needs no package yet:
#                                            # scripts/test.sh starts it early, in the background)
#
# How, without arm64 emulation in a chroot (no binfmt_misc here) and without mounting
# anything on this machine:
#   1. debootstrap --foreign unpacks the packages into a directory (the .deb files are kept
#      in /var/cache/lanterne-image/debs between runs);
#   2. the packages are configured in that directory under proot with qemu-aarch64 (user-mode
#      emulated): debootstrap --second-stage, then images/image/configure-base.sh (the
#      kernel's initrd, made once; raspi-firmware fills /boot/firmware). This is the
#      long part; its result is cached in /var/cache/lanterne-image, keyed by the package
#      list and the recipe, so the next builds skip steps 1 and 2;
#   3. images/image/rootfs is copied over a copy of it and lanterne-box installed, the same
#      way (images/image/configure-box.sh);
#   4. the card: its partition table, /boot/firmware copied into a FAT file system (mtools)
#      for the boot partition, and the ext4 root (mkfs.ext4 -d) and empty ext4 data
#      partition made in place, at their offsets in the card.
# The card: RASPIFIRM (FAT, 256 MiB), RASPIROOT (ext4, the system), LANTERNE (ext4, the box's
# state in /var/lib/lanterne). Flash it with dd or bmaptool (docs/operations.md). Each step's
# time is printed; scripts/test-image.sh boots the image under qemu-system-aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
base_only=0
case "${1:-}" in
  "") ;;
  --base-only) base_only=1 ;;
  *) echo "build-image: unknown option '$1' (--base-only)" >&2; exit 2 ;;
esac

WORK=${LANTERNE_IMAGE_WORK:-/var/cache/lanterne-image}
MIRROR=${LANTERNE_MIRROR:-http://deb.debian.org/debian}
OUT=target/image
IMAGE=$OUT/lanterne-box-arm64.img
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
BOX_DEB=target/packages/lanterne-box_${VERSION}_arm64.deb
BOOT_MB=256
ROOT_MB=2048
DATA_MB=512
# What the box runs on (besides what lanterne-box itself depends on, added below): systemd
# with its network, name and time services (a Pi has no clock battery: TLS certificates and
# the monitoring schedule need the time), the Pi's firmware and Debian's arm64 kernel, and
# an SSH server that stays off unless a technician turns it on (lanterne-card-ssh.service),
# zstd for initramfs-tools' default compression (without it the initrd falls back to gzip),
# procps for the technician (ps, top, free), and dbus-user-session: GStreamer's plugins
# pull in dconf, which needs a D-Bus session bus that debootstrap does not pick by itself
# (it resolves no virtual package; without one, 15 packages stay unconfigured).
BASE=(systemd-sysv udev kmod dbus linux-image-arm64 raspi-firmware initramfs-tools
  systemd-resolved systemd-timesyncd ca-certificates iproute2 netbase openssh-server
  dbus-user-session zstd procps)

for tool in debootstrap proot qemu-aarch64 cc mkfs.ext4 mkfs.vfat mcopy sfdisk; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: run as root (the image's files are root's)" >&2; exit 1; }
mkdir -p "$OUT" "$WORK/debs"
# One build at a time: a second one (scripts/test.sh's image step while its early base build
# still runs) waits here, then finds the base system in the cache.
exec 9>"$WORK/.build-lock"
if ! flock -n 9; then
  echo "build-image: waiting for the other image build that holds $WORK/.build-lock"
  flock 9
fi
[ $base_only -eq 1 ] || [ -f "$BOX_DEB" ] || scripts/build-packages.sh arm64
start=$(date +%s)
step_start=$start
step() { # what was just done: its time, and the time so far
  local now
  now=$(date +%s)
  echo "build-image: $1 in $((now - step_start)) s ($((now - start)) s so far)"
  step_start=$now
}

# Runs a command inside an arm64 system directory: proot makes the directory look like the
# root, and runs each arm64 program it starts through qemu-aarch64 (user-mode emulation).
# The host's /proc and /sys are visible inside, and a few harmless device nodes; the image's
# /dev is its own (debootstrap makes its nodes there), so nothing done inside can replace
# this machine's device nodes, and mounts and unmounts are refused (qemu-under-proot.c).
# Nothing runs as a service there (/run/systemd/system does not exist inside, so maintainer
# scripts only enable units).
# qemu-aarch64 runs through images/image/qemu-under-proot.c, which keeps the system calls
# Debian 12's proot cannot translate from reaching this machine's own files.
QEMU_WRAP=$PWD/$OUT/qemu-under-proot
cc -O2 -Wall -o "$QEMU_WRAP" images/image/qemu-under-proot.c
in_image() { # root dir, command...
  local root=$1
  shift
  proot -q "$QEMU_WRAP /host-rootfs$(command -v qemu-aarch64)" -r "$root" \
    -b /dev/null -b /dev/zero -b /dev/full -b /dev/random -b /dev/urandom -b /proc -b /sys -w / \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive PKGSYSTEM_ENABLE_FSYNC=0 "$@"
}
stamped() { # each line of the input with the time it came, for the logs of the long steps
  local line
  while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done
}

# --- 1. unpack, 2. configure --------------------------------------------------------------
# The box package's dependencies, from the declaration the package is made from (so that
# this part needs no package yet); checked against the package itself below.
. scripts/package-depends.sh
package_names() { tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | sort -u; }
deps=$(package_names <<<"$BOX_DEPENDS")
include=$(printf '%s\n' "${BASE[@]}" $deps | sort -u | paste -sd,)
key=$( { echo "$include"; cat images/image/configure-base.sh images/image/qemu-under-proot.c; } | sha256sum | cut -c1-16)
BASE_DIR=$WORK/base-$key
ROOT=$WORK/root
# What a build leaves while it works (a system tree, the boot file system, the unfinished
# card: a few GB): removed when it ends, failed or not, so that a failed build does not keep
# the disk full. The configured base system is kept (moved to $BASE_DIR) and so are the logs.
trap 'rm -rf "$ROOT" "$WORK/boot.fs" "$IMAGE.part"' EXIT

if [ -f "$BASE_DIR/.lanterne-base" ]; then
  echo "build-image: configured base system from the cache ($BASE_DIR)"
else
  rm -rf "$WORK"/base-* "$ROOT"
  echo "build-image: debootstrap --foreign into $ROOT (log: $WORK/debootstrap.log)"
  debootstrap --foreign --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --cache-dir="$WORK/debs" --include="$include" bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # debootstrap leaves /proc as a link to the host's /proc when it cannot mount it (as in a
  # container): the booted system needs a plain directory there.
  [ -L "$ROOT/proc" ] && rm "$ROOT/proc"
  mkdir -p -m 0555 "$ROOT/proc"
  mkdir -p "$ROOT/boot/firmware" "$ROOT/var/lib/lanterne"
  # proot aborts (an assertion in its path translation, killing every process under it) when
  # systemd-tmpfiles makes the symbolic links of tmpfiles.d ("L" lines), which maintainer
  # scripts run it for. While the packages are configured, a stand-in found first in PATH
  # (/usr/sbin before /usr/bin, where Debian's is) does nothing instead: the box's
  # systemd-tmpfiles-setup.service applies every tmpfiles.d file at each boot anyway. The
  # stand-in is removed before the file systems are made.
  printf '%s\n' '#!/bin/sh' '# scripts/build-image.sh: removed once the image is configured.' 'exit 0' \
    > "$ROOT/usr/sbin/systemd-tmpfiles"
  chmod 0755 "$ROOT/usr/sbin/systemd-tmpfiles"
  # dpkg syncs every file it unpacks; nothing here survives a crash anyway (a failed build
  # starts again from the .deb files), so it skips the syncs while the image is made. Removed
  # with the stand-in above: on the box, apt syncs as usual.
  echo force-unsafe-io > "$ROOT/etc/dpkg/dpkg.cfg.d/lanterne-build-unsafe-io"
  step "$(ls "$ROOT/var/cache/apt/archives" | grep -c '\.deb$') packages downloaded and unpacked"

  echo "build-image: configuring the packages under proot + qemu-aarch64 (log: $WORK/configure-base.log)"
  # INITRD=No: the kernel's hook makes no initrd while the packages are configured. Made
  # then, the initrd was made twice (again when initramfs-tools' trigger ran for the packages
  # configured after the kernel), over 30 minutes each under emulation; configure-base.sh
  # makes it once, with every package in place.
  if ! in_image "$ROOT" /bin/sh -c 'INITRD=No DEBOOTSTRAP_DIR=/debootstrap /debootstrap/debootstrap --second-stage' \
    2>&1 | stamped >"$WORK/configure-base.log"; then
    tail -n 30 "$ROOT/debootstrap/debootstrap.log" 2>/dev/null || tail -n 30 "$WORK/configure-base.log"
    echo "build-image: debootstrap --second-stage failed" >&2
    exit 1
  fi
  step "packages configured (debootstrap --second-stage)"
  install -m 0755 images/image/configure-base.sh "$ROOT/configure-base"
  in_image "$ROOT" /configure-base 2>&1 | stamped >>"$WORK/configure-base.log" ||
    { tail -n 30 "$WORK/configure-base.log"; echo "build-image: configure-base.sh failed" >&2; exit 1; }
  rm -f "$ROOT/configure-base"
  step "initrd made and base system set up (configure-base.sh)"
  touch "$ROOT/.lanterne-base"
  mv "$ROOT" "$BASE_DIR"
fi

[ $base_only -eq 0 ] || exit 0

# --- 3. install lanterne-box --------------------------------------------------------------
if [ "$(dpkg-deb -f "$BOX_DEB" Depends | package_names)" != "$deps" ]; then
  echo "build-image: $BOX_DEB depends on other packages than scripts/package-depends.sh says" >&2
  exit 1
fi
rm -rf "$ROOT"
cp -a "$BASE_DIR" "$ROOT"
rm "$ROOT/.lanterne-base"
# The Lanterne files (images/image/rootfs): root's (copied as root), with their modes from the tree.
cp -r --preserve=mode images/image/rootfs/. "$ROOT/"
install -D -m 0644 "$BOX_DEB" "$ROOT/var/cache/lanterne/$(basename "$BOX_DEB")"
install -m 0755 images/image/configure-box.sh "$ROOT/configure-box"
echo "build-image: installing $(basename "$BOX_DEB") (log: $WORK/configure-box.log)"
in_image "$ROOT" /configure-box >"$WORK/configure-box.log" 2>&1 ||
  { tail -n 30 "$WORK/configure-box.log"; echo "build-image: configure-box.sh failed" >&2; exit 1; }
rm -f "$ROOT/configure-box" "$ROOT/usr/sbin/systemd-tmpfiles" "$ROOT/etc/dpkg/dpkg.cfg.d/lanterne-build-unsafe-io"
[ -x "$ROOT/usr/bin/systemd-tmpfiles" ] || { echo "build-image: systemd-tmpfiles is missing" >&2; exit 1; }
step "lanterne-box installed (configure-box.sh)"

# --- 4. the card --------------------------------------------------------------------------
# Made in $IMAGE.part, renamed when complete, so that a failed build leaves no card that looks
# finished. The partition table first; the ext4 file systems are then made in place, at their
# partitions' offsets (mke2fs -E offset), which needs no separate file system file of the
# system's size beside the card (the disk is fullest at this step of a test run).
boot_start_mb=4
root_start_mb=$((boot_start_mb + BOOT_MB))
data_start_mb=$((root_start_mb + ROOT_MB))
total_mb=$((data_start_mb + DATA_MB + 1))
find "$ROOT/boot/firmware" -mindepth 1 | grep -q . ||
  { echo "build-image: /boot/firmware is empty (raspi-firmware did not fill it)" >&2; exit 1; }
boot_mb=$(du -sm "$ROOT/boot/firmware" | cut -f1)
used_mb=$(( $(du -sm "$ROOT" | cut -f1) - boot_mb ))
[ "$used_mb" -lt $((ROOT_MB * 85 / 100)) ] ||
  { echo "build-image: the system takes $used_mb MB, too much for a $ROOT_MB MB root" >&2; exit 1; }
# The card is a sparse file holding about what the system takes, and the boot partition is
# made beside it first. Said plainly here rather than as mkfs's "No space left on device"
# halfway through.
need_mb=$((used_mb + 2 * boot_mb + 256))
for dir in "$WORK" "$OUT"; do
  free_mb=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
  [ "$free_mb" -ge "$need_mb" ] ||
    { echo "build-image: $free_mb MB free on the disk of $dir; making the card needs about $need_mb MB" >&2; exit 1; }
done

echo "build-image: making $IMAGE"
rm -f "$IMAGE" "$IMAGE.part"
truncate -s "${total_mb}M" "$IMAGE.part"
sfdisk --quiet "$IMAGE.part" <<PARTS
label: dos
start=${boot_start_mb}MiB, size=${BOOT_MB}MiB, type=c, bootable
size=${ROOT_MB}MiB, type=83
size=${DATA_MB}MiB, type=83
PARTS
# The boot partition: what raspi-firmware put in /boot/firmware, which becomes its mount point.
rm -f "$WORK/boot.fs"
mkfs.vfat -n RASPIFIRM -F 32 -C "$WORK/boot.fs" $((BOOT_MB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -i "$WORK/boot.fs" "$ROOT"/boot/firmware/* ::/
dd if="$WORK/boot.fs" of="$IMAGE.part" bs=1M seek=$boot_start_mb conv=notrunc,sparse status=none
rm -f "$WORK/boot.fs"
find "$ROOT/boot/firmware" -mindepth 1 -delete
# The root and the data partitions, in place.
mkfs.ext4 -q -F -L RASPIROOT -d "$ROOT" -E offset=$((root_start_mb * 1024 * 1024)) "$IMAGE.part" "${ROOT_MB}M"
mkfs.ext4 -q -F -L LANTERNE -m 0 -E offset=$((data_start_mb * 1024 * 1024)) "$IMAGE.part" "${DATA_MB}M"
rm -rf "$ROOT"
mv "$IMAGE.part" "$IMAGE"
step "partitions made and put together"
echo "build-image: $IMAGE ($(du -h --apparent-size "$IMAGE" | cut -f1), $(du -h "$IMAGE" | cut -f1) used) in $(($(date +%s) - start)) s"
