#!/bin/busybox sh
# PID 1 of the test VM's initramfs: load the modules that reach the host's
# root (virtio-9p) and make it writable in memory (overlayfs), then hand over
# to the guest script on it. Written by `cargo xtask test --kernel`.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do insmod "/modules/$m" || echo "xtask-vm: insmod $m failed"; done
mkdir -p /lower /mem /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /lower || { echo "xtask-vm: cannot mount the host root"; poweroff -f; }
mount -t tmpfs -o size=75% tmpfs /mem
mkdir -p /mem/upper /mem/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/mem/upper,workdir=/mem/work /newroot || { echo "xtask-vm: overlay failed"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh "$(cat /guest_script)"
