#!/bin/busybox sh
# /init of the small initrd scripts/build-image.sh boots the image with once, under
# qemu-system-aarch64, to configure it: the image has no initrd of its own yet (Debian's is
# made during that boot). It loads the virtio disk, ext4 and vfat modules of the image's own
# kernel, mounts the root (vda) and the boot partition (vdb), and hands over to the image's
# stage2 script.
/bin/busybox mkdir -p /proc /sys /dev /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do /bin/busybox modprobe "$m"; done
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ -b /dev/vda ] && [ -b /dev/vdb ] && break
  /bin/busybox sleep 1
done
/bin/busybox mount -t ext4 /dev/vda /root || { echo "initrd: cannot mount the root"; exec /bin/busybox sh; }
/bin/busybox mkdir -p /root/boot/firmware
/bin/busybox mount -t vfat /dev/vdb /root/boot/firmware || { echo "initrd: cannot mount the boot partition"; exec /bin/busybox sh; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /root/dev
exec /bin/busybox switch_root /root /usr/local/sbin/lanterne-stage2
