#!/bin/sh
# Runs as PID 1 on the test VM, on the host's root made writable in memory:
# mounts what the integration tests need, runs each selected test binary,
# prints their output and a result line per binary on the serial console,
# then powers the VM off. Its settings come from guest.env beside it.
# Written by `cargo xtask test --kernel`.
set -u
here=$(dirname "$0")
. "$here/guest.env"
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p "/lib/modules/$KERNEL_RELEASE"
mount --bind "$MODULES" "/lib/modules/$KERNEL_RELEASE"
ip link set lo up
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root GATEWAY_BIN NO_COLOR=1 RUST_BACKTRACE=1
echo "xtask-vm: kernel $(uname -r), $(nproc) CPUs"

# One test binary a line: `BINARY|ENV|ARGS` (ENV: space-separated VAR=value).
while IFS='|' read -r binary vars args; do
    [ -n "$binary" ] || continue
    name=$(basename "$binary" | sed 's/-[0-9a-f]*$//')
    echo "xtask-vm: running $name $args"
    # shellcheck disable=SC2086
    env $vars "$binary" --test-threads=1 --color never $args 2>&1
    echo "xtask-vm: exit $name $?"
done < "$here/tests.list"
echo "xtask-vm: done"
sync
echo o > /proc/sysrq-trigger
sleep 10
