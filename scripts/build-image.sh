#!/usr/bin/env bash
# Builds the SD-card image of a Lanterne box for the Raspberry Pi 4: Debian 12 arm64 from
# Debian's own packages (linux-image-arm64, raspi-firmware), with the lanterne-box package
# installed and enabled.
#
#   sudo scripts/build-image.sh        # -> target/image/lanterne-box-arm64.img
#
# How, without arm64 emulation in a chroot (no binfmt_misc here) and without mounting
# anything on this machine:
#   1. debootstrap --foreign unpacks the packages into a directory (cached between runs in
#      /var/cache/lanterne-image);
#   2. the directory becomes an ext4 file system (mkfs.ext4 -d), and that system boots under
#      qemu-system-aarch64 with its own kernel and a small initrd made here
#      (images/image/initrd-init.sh), to configure every package and let raspi-firmware
#      fill the FAT boot partition (images/image/stage2-base.sh). This is the long part
#      (tens of minutes of emulation); its result is cached in /var/cache/lanterne-image,
#      keyed by the package list and the recipe, so the next builds skip steps 1 and 2;
#   3. a second, short boot installs the lanterne-box package (images/image/stage2-box.sh);
#   4. the boot, root and data partitions are put together into one disk image.
# The card: RASPIFIRM (FAT, 256 MiB), RASPIROOT (ext4, the system), LANTERNE (ext4, the box's
# state in /var/lib/lanterne). Flash it with dd or bmaptool (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."

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
# an SSH server that stays off unless a technician turns it on (lanterne-card-ssh.service).
BASE=(systemd-sysv udev kmod dbus linux-image-arm64 raspi-firmware initramfs-tools
  systemd-resolved systemd-timesyncd ca-certificates iproute2 netbase openssh-server
  busybox-static)

for tool in debootstrap qemu-system-aarch64 mkfs.ext4 mkfs.vfat sfdisk depmod cpio; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
[ -f "$BOX_DEB" ] || scripts/build-packages.sh arm64
mkdir -p "$OUT" "$WORK/debs"
start=$(date +%s)

# --- 1. unpack --------------------------------------------------------------------------
deps=$(dpkg-deb -f "$BOX_DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | sort -u)
include=$(printf '%s\n' "${BASE[@]}" $deps | sort -u | paste -sd,)
key=$( { echo "$include $ROOT_MB $BOOT_MB"; cat images/image/stage2-base.sh images/image/initrd-init.sh; } |
  sha256sum | cut -c1-16)
BASE_ROOT=$WORK/base-$key.root.fs
BASE_BOOT=$WORK/base-$key.boot.fs
KDIR=$WORK/kernel
INITRD=$WORK/stage2-initrd

boot_stage() { # root fs, boot fs, log, marker: one boot of the image under emulation
  timeout 5400 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 -nographic -no-reboot \
    -kernel "$KDIR/boot/vmlinuz-$(ls "$KDIR/lib/modules")" -initrd "$INITRD.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 rw" \
    -drive "file=$1,format=raw,if=virtio" -drive "file=$2,format=raw,if=virtio" -nic none \
    </dev/null >"$3" 2>&1 || true
  if ! grep -q "^$4" "$3"; then
    echo "build-image: the boot that should print $4 failed; the end of its console:" >&2
    grep -v '^\[' "$3" | tail -n 40 >&2
    exit 1
  fi
}

if [ -f "$BASE_ROOT" ] && [ -f "$BASE_BOOT" ] && [ -f "$INITRD.cpio.gz" ] && [ -d "$KDIR" ]; then
  echo "build-image: configured base system from the cache ($BASE_ROOT)"
else
  ROOT=$WORK/root
  rm -rf "$ROOT"
  echo "build-image: debootstrap (stage 1) into $ROOT"
  debootstrap --foreign --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --cache-dir="$WORK/debs" --include="$include" bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # debootstrap leaves /proc as a link to the host's /proc when it cannot mount it (as in a
  # container): the booted system needs a plain directory there.
  [ -L "$ROOT/proc" ] && rm "$ROOT/proc"
  mkdir -p -m 0555 "$ROOT/proc"
  install -D -m 0755 images/image/stage2-base.sh "$ROOT/usr/local/sbin/lanterne-stage2"
  mkdir -p "$ROOT/boot/firmware" "$ROOT/var/lib/lanterne"

  # The image's own kernel, from its package, for the configuring boots.
  kdeb=$(ls "$ROOT"/var/cache/apt/archives/linux-image-[0-9]*-arm64_*.deb | head -1)
  rm -rf "$KDIR"
  dpkg-deb -x "$kdeb" "$KDIR"
  KVER=$(ls "$KDIR/lib/modules")

  # A small initrd: busybox, the modules for a virtio disk, ext4 and vfat, and their order.
  rm -rf "$INITRD" "$INITRD.cpio.gz"
  mkdir -p "$INITRD/bin"
  dpkg-deb --fsys-tarfile "$(ls "$ROOT"/var/cache/apt/archives/busybox-static_*.deb)" |
    tar -xO ./bin/busybox > "$INITRD/bin/busybox"
  chmod 755 "$INITRD/bin/busybox"
  mkdir -p "$INITRD/lib/modules"
  cp -a "$KDIR/lib/modules/$KVER" "$INITRD/lib/modules/"
  depmod -b "$INITRD" "$KVER"
  for m in virtio_pci virtio_blk ext4 vfat nls_cp437 nls_ascii; do
    modprobe -d "$INITRD" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '/^insmod/ { print $2 }'
  done | sed "s|^$INITRD/lib/modules/$KVER/||" | awk '!seen[$0]++' > "$WORK/modules.list"
  # Keep only those modules (the initrd stays a few MB), then the names busybox loads.
  (cd "$INITRD/lib/modules/$KVER" && find kernel -name '*.ko*' | grep -vxF -f "$WORK/modules.list" | xargs rm -f)
  depmod -b "$INITRD" "$KVER"
  sed 's|.*/||; s|\.ko.*||' "$WORK/modules.list" > "$INITRD/modules.order"
  install -m 0755 images/image/initrd-init.sh "$INITRD/init"
  (cd "$INITRD" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.cpio.gz"

  # --- 2. configure under emulation -------------------------------------------------------
  rm -f "$WORK"/base-*.fs "$WORK/stage.root.fs" "$WORK/stage.boot.fs"
  mkfs.ext4 -q -L RASPIROOT -d "$ROOT" "$WORK/stage.root.fs" "${ROOT_MB}M"
  mkfs.vfat -n RASPIFIRM -F 32 -C "$WORK/stage.boot.fs" $((BOOT_MB * 1024)) >/dev/null
  echo "build-image: configuring the packages under qemu-system-aarch64 (log: $WORK/stage2-base.log)"
  boot_stage "$WORK/stage.root.fs" "$WORK/stage.boot.fs" "$WORK/stage2-base.log" LANTERNE-BASE-OK
  mv "$WORK/stage.root.fs" "$BASE_ROOT"
  mv "$WORK/stage.boot.fs" "$BASE_BOOT"
  rm -rf "$ROOT"
fi

# --- 3. install lanterne-box --------------------------------------------------------------
echo "build-image: installing $(basename "$BOX_DEB") under qemu-system-aarch64 (log: $WORK/stage2-box.log)"
cp --sparse=always "$BASE_ROOT" "$WORK/root.fs"
cp --sparse=always "$BASE_BOOT" "$WORK/boot.fs"
# The Lanterne files (images/image/rootfs), the package and the stage script, written into
# the file system without mounting it. The files are root's, with their modes from the tree.
{
  (cd images/image/rootfs && find . -mindepth 1 -type d | sort | sed 's|^\.|mkdir |')
  (cd images/image/rootfs && find . -type f | sort) | while read -r f; do
    echo "rm ${f#.}"
    echo "write images/image/rootfs/${f#./} ${f#.}"
    echo "sif ${f#.} mode 0100$(stat -c %a "images/image/rootfs/$f")"
  done
  echo "mkdir /var/cache/lanterne"
  echo "write $BOX_DEB /var/cache/lanterne/$(basename "$BOX_DEB")"
  echo "rm /usr/local/sbin/lanterne-stage2"
  echo "write images/image/stage2-box.sh /usr/local/sbin/lanterne-stage2"
  echo "sif /usr/local/sbin/lanterne-stage2 mode 0100755"
} > "$WORK/debugfs.cmds"
debugfs -w -f "$WORK/debugfs.cmds" "$WORK/root.fs" >"$WORK/debugfs.log" 2>&1
debugfs -R "cat /usr/local/sbin/lanterne-console" "$WORK/root.fs" 2>/dev/null | cmp -s - images/image/rootfs/usr/local/sbin/lanterne-console ||
  { echo "build-image: writing the Lanterne files into the root file system failed" >&2; cat "$WORK/debugfs.log" >&2; exit 1; }
boot_stage "$WORK/root.fs" "$WORK/boot.fs" "$WORK/stage2-box.log" LANTERNE-BOX-OK
e2fsck -fy "$WORK/root.fs" >/dev/null 2>&1 || true
e2fsck -fn "$WORK/root.fs" >/dev/null
rm -f "$WORK/data.fs"
mkfs.ext4 -q -L LANTERNE -m 0 "$WORK/data.fs" "${DATA_MB}M"

# --- 4. the card --------------------------------------------------------------------------
echo "build-image: assembling $IMAGE"
rm -f "$IMAGE"
total_mb=$((4 + BOOT_MB + ROOT_MB + DATA_MB + 1))
truncate -s "${total_mb}M" "$IMAGE"
sfdisk --quiet "$IMAGE" <<PARTS
label: dos
start=4MiB, size=${BOOT_MB}MiB, type=c, bootable
size=${ROOT_MB}MiB, type=83
size=${DATA_MB}MiB, type=83
PARTS
dd if="$WORK/boot.fs" of="$IMAGE" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$WORK/root.fs" of="$IMAGE" bs=1M seek=$((4 + BOOT_MB)) conv=notrunc,sparse status=none
dd if="$WORK/data.fs" of="$IMAGE" bs=1M seek=$((4 + BOOT_MB + ROOT_MB)) conv=notrunc,sparse status=none
echo "build-image: $IMAGE ($(du -h --apparent-size "$IMAGE" | cut -f1), $(du -h "$IMAGE" | cut -f1) used) in $(($(date +%s) - start)) s"
