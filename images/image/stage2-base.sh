#!/bin/sh
# Second stage of scripts/build-image.sh, run as PID 1 of the arm64 system booted under
# qemu-system-aarch64 (this machine cannot run arm64 programs in a chroot: no binfmt_misc).
# It configures the Debian packages debootstrap unpacked and sets up the system's services
# (the Lanterne files of images/image/rootfs come in the last stage).
# The result is cached: lanterne-box is installed over it by stage2-box.sh, in a second,
# short boot. Ends by powering the virtual machine off; the build reads "LANTERNE-BASE-OK"
# on the serial console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# PID 1 ending makes the kernel panic, and with panic=-1 restart at once, which ends QEMU
# (-no-reboot): the power-off request is only the quicker way.
off() {
  sync
  mountpoint -q /proc || mount -t proc proc /proc
  echo 1 > /proc/sys/kernel/sysrq
  echo o > /proc/sysrq-trigger
  sleep 10
  exit 0
}
fail() {
  echo "LANTERNE-STAGE2-FAILED: $*"
  off
}
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys

/debootstrap/debootstrap --second-stage || {
  tail -n 40 /debootstrap/debootstrap.log 2>/dev/null
  fail "debootstrap --second-stage"
}
# The Debian mirrors, for `apt update && apt upgrade` on the box.
cat > /etc/apt/sources.list <<'SOURCES'
deb http://deb.debian.org/debian bookworm main non-free-firmware
deb http://deb.debian.org/debian bookworm-updates main non-free-firmware
deb http://security.debian.org/debian-security bookworm-security main non-free-firmware
SOURCES

# Where the Pi's kernel finds its root, and its consoles (HDMI, then the UART), for the
# cmdline.txt raspi-firmware writes.
cat >> /etc/default/raspi-firmware <<'DEFAULTS'

# Lanterne (scripts/build-image.sh)
ROOTPART=LABEL=RASPIROOT
CONSOLES="ttyS1,115200 tty0"
DEFAULTS
# The kernel hooks of raspi-firmware fill /boot/firmware (mounted from the card's FAT
# partition by the build's initrd): kernel, initrd, device trees, config.txt, cmdline.txt.
# The kernel's own configuration made its initrd already; only raspi-firmware's hook runs
# again, for cmdline.txt with the settings above (update-initramfs would make the initrd a
# second time, minutes under emulation, then call this same hook).
DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware || fail "raspi-firmware's kernel hook"
grep -q 'root=LABEL=RASPIROOT' /boot/firmware/cmdline.txt || fail "cmdline.txt does not name LABEL=RASPIROOT"
ls /boot/firmware/vmlinuz* /boot/firmware/initrd.img* /boot/firmware/bcm2711-rpi-4-b.dtb \
  /boot/firmware/cmdline.txt /boot/firmware/config.txt >/dev/null || fail "raspi-firmware left /boot/firmware incomplete"

systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  || fail "systemctl enable"
# SSH stays off until a technician asks for it with a key on the card.
systemctl disable ssh.service || true
rm -f /etc/ssh/ssh_host_*
ln -sfn /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# Root has no password: nobody signs in at the console; SSH takes only keys.
passwd -l root
apt-get clean
rm -rf /debootstrap /usr/local/sbin/lanterne-stage2
sync
umount /boot/firmware || fail "unmounting /boot/firmware"
mount -o remount,ro / || fail "remounting / read-only"
echo "LANTERNE-BASE-OK"
off
