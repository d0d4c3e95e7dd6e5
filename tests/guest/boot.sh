#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The test VM itself: the file systems /init mounts, the devices and tools the
# other suites use, the CPUs and memory asked for. Needs no module.
# kernels: vm arm64 arm
# shellcheck source=lib.sh
. /tests/lib.sh

for fs in "proc /proc" "sysfs /sys" "devtmpfs /dev" "debugfs /sys/kernel/debug" "tmpfs /tmp"; do
	# shellcheck disable=SC2086 # split "fstype dir" on purpose
	set -- $fs
	expect_match "$1 is mounted on $2" "^[^ ]+ $2 $1 " cat /proc/mounts
done
check "the console device is there" test -c /dev/console
check "the null device is there" test -c /dev/null
for tool in insmod rmmod lsmod dmesg grep sed awk dd od cmp; do
	check "busybox has $tool" command -v "$tool"
done
check "tmpfs on /tmp is writable" sh -c 'echo x >/tmp/boot-check && rm /tmp/boot-check'
expect_match "at least one CPU is online" '^0' cat /sys/devices/system/cpu/online
note "CPUs online: $(cat /sys/devices/system/cpu/online), $(grep MemTotal /proc/meminfo)"
# The serial console: microvm's 8250 UART, or the virt machine's PL011.
case $(guest_arch) in
arm64 | arm) console=ttyAMA0 ;;
*) console=ttyS0 ;;
esac
expect_match "kernel command line has a serial console" "console=$console" cat /proc/cmdline
finish
