#!/bin/sh
# Run by scripts/build-image.sh inside the unpacked arm64 system, under proot and
# qemu-aarch64 (user-mode emulation: this machine has no binfmt_misc, so arm64 programs cannot
# run in a plain chroot), after `debootstrap --second-stage` configured the Debian packages.
# Sets the system up for a Raspberry Pi 4 box: Debian's mirrors, the boot partition's files
# (raspi-firmware), the network, name and time services, SSH off, no root password.
# The Lanterne files of images/image/rootfs and the lanterne-box package come after
# (configure-box.sh), so this result is cached while only those change.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

# The Debian mirrors, for `apt update && apt upgrade` on the box.
cat > /etc/apt/sources.list <<'SOURCES'
deb http://deb.debian.org/debian bookworm main non-free-firmware
deb http://deb.debian.org/debian bookworm-updates main non-free-firmware
deb http://security.debian.org/debian-security bookworm-security main non-free-firmware
SOURCES

# Where the Pi's kernel finds its root, and its consoles (HDMI, then the UART), for the
# cmdline.txt raspi-firmware writes. CMA=0: no cma= on the command line, which raspi-firmware
# leaves out on a Pi 4 by itself but cannot tell here, off the device (a cma= setting made for
# the older Pis keeps a Pi 4 from booting, says its hook).
cat >> /etc/default/raspi-firmware <<'DEFAULTS'

# Lanterne (scripts/build-image.sh)
ROOTPART=LABEL=RASPIROOT
CONSOLES="ttyS1,115200 tty0"
CMA=0
DEFAULTS
# The initrd holds only the kernel modules needed to mount the root, not Debian's default
# (MODULES=most: every storage, file-system and input driver, 33 minutes to make under
# emulation). Checked against Debian 12's arm64 kernel (6.1), whose modules.builtin already
# holds mmc_block, the Pi 4's clocks, pin controller, firmware mailbox and GPIO expander,
# virtio and virtio_ring:
#   Pi 4 SD card: sdhci-iproc (the BCM2711 EMMC2 controller, with sdhci-pltfm and sdhci),
#     bcm2835 (the older SD host, which a Pi 4's device tree can route the card to), and the
#     regulators the card's supply and 1.8 V signalling go through (fixed, gpio-regulator:
#     without them the controller waits for its supplies forever);
#   qemu-system-aarch64 -M virt (scripts/test-image.sh): virtio_pci and virtio_mmio, the
#     buses, and virtio_blk, the disk;
#   the root itself: ext4 (modprobe brings jbd2, mbcache, crc16) and crc32c_generic, the
#     checksum ext4 asks the crypto API for (a soft dependency, listed so it is never missed).
# The rest (network, USB, sound, the FAT boot partition) is loaded by udev from the root.
mkdir -p /etc/initramfs-tools/conf.d
cat > /etc/initramfs-tools/conf.d/lanterne.conf <<'CONF'
# Lanterne (images/image/configure-base.sh): only the modules listed in ../modules.
MODULES=list
CONF
cat >> /etc/initramfs-tools/modules <<'MODULES'
# Lanterne (images/image/configure-base.sh): what mounts the root on a Pi 4 and under QEMU.
sdhci-iproc
bcm2835
fixed
gpio-regulator
virtio_pci
virtio_mmio
virtio_blk
ext4
crc32c_generic
MODULES
# The kernel's initrd, made once now that every package (udev, zstd, ...) is in place: the
# build configured the packages with INITRD=No. initramfs-tools' own hook for raspi-firmware
# copies it to /boot/firmware.
update-initramfs -c -k all
# What went in: each listed module (or its alias) must be there.
for m in sdhci-iproc virtio_blk virtio_pci ext4 crc32c_generic jbd2; do
  lsinitramfs /boot/initrd.img-* | grep -q "/$(echo "$m" | sed 's/[-_]/[-_]/g')\.ko" ||
    { echo "configure-base: $m is not in the initrd" >&2; exit 1; }
done
ls /boot/initrd.img-* >/dev/null
# raspi-firmware's kernel hook fills /boot/firmware (the card's FAT partition, made from
# this directory by the build): kernel, initrd, device trees, config.txt, cmdline.txt with
# the settings above.
DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
grep -q 'root=LABEL=RASPIROOT' /boot/firmware/cmdline.txt
ls /boot/firmware/vmlinuz-* /boot/firmware/initrd.img-* /boot/firmware/bcm2711-rpi-4-b.dtb \
  /boot/firmware/cmdline.txt /boot/firmware/config.txt >/dev/null

systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
# SSH stays off until a technician asks for it with a key on the card.
systemctl disable ssh.service
rm -f /etc/ssh/ssh_host_*
ln -sfn /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# Root has no password: nobody signs in at the console; SSH takes only keys.
passwd -l root
apt-get clean
rm -rf /debootstrap
echo "configure-base: done"
