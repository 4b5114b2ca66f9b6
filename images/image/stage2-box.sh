#!/bin/sh
# Last stage of scripts/build-image.sh, run as PID 1 of the configured arm64 system under
# qemu-system-aarch64, after the build wrote images/image/rootfs over it: enables the
# Lanterne units of rootfs, installs the lanterne-box package the build put in
# /var/cache/lanterne (its postinst makes the lanterne user and enables the unit), then
# removes what must differ between boxes (machine id, SSH host keys) so each box makes its
# own at first boot. Ends by powering the virtual machine off; the build reads
# "LANTERNE-BOX-OK" on the serial console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
off() {
  sync
  mountpoint -q /proc || mount -t proc proc /proc
  echo 1 > /proc/sys/kernel/sysrq
  echo o > /proc/sysrq-trigger
  sleep 10
  exit 0
}
fail() {
  echo "LANTERNE-BOX-FAILED: $*"
  off
}
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys

dpkg -i /var/cache/lanterne/*.deb || fail "dpkg -i lanterne-box"
rm -rf /var/cache/lanterne /usr/local/sbin/lanterne-stage2
systemctl is-enabled lanterne-box.service || fail "lanterne-box.service is not enabled"
# The build wrote images/image/rootfs over the system just before this boot.
systemctl enable lanterne-card-ssh.service lanterne-console.service || fail "systemctl enable"
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
sync
umount /boot/firmware || fail "unmounting /boot/firmware"
mount -o remount,ro / || fail "remounting / read-only"
echo "LANTERNE-BOX-OK"
off
