#!/bin/sh
# Run by scripts/build-image.sh inside the configured arm64 system (configure-base.sh), under
# proot and qemu-aarch64, after the build copied images/image/rootfs over it and put the
# lanterne-box package in /var/cache/lanterne: installs the package (its postinst makes the
# lanterne user and enables the unit), enables the Lanterne units of rootfs, then removes
# what must differ between boxes (machine id, SSH host keys) so each box makes its own at
# first boot.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

dpkg -i /var/cache/lanterne/*.deb
rm -rf /var/cache/lanterne
systemctl is-enabled lanterne-box.service
systemctl enable lanterne-card-ssh.service lanterne-console.service
# The first boot below would otherwise start systemd's first-boot wizard, which waits at the
# console for a locale, a time zone and a root password: the card comes configured (UTC,
# C.UTF-8, root locked) and must boot with no one at the keyboard.
systemctl mask systemd-firstboot.service
# systemd makes the machine id at first boot ("uninitialized": and runs the first-boot units).
echo uninitialized > /etc/machine-id
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
echo "configure-box: done"
