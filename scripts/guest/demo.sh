#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What `make run` shows in the VM: the classic map_driver session, modernised.
# insmod, the device appears, user space maps it and prints the text the
# kernel put there, dmesg shows where each page lives, rmmod.
set -e
module=${MAPDRV_KO:-/lib/modules/rust_mapdrv.ko}

step() { printf '\n==> %s\n' "$*"; }

step "insmod $module pages=10"
insmod "$module" pages=10
step "the misc device: /proc/misc and /dev/mapdrv"
grep mapdrv /proc/misc
ls -l /dev/mapdrv
step "mapdrv info (the MAPDRV_IOC_INFO ioctl)"
mapdrv info
step "mapdrv dump: mmap /dev/mapdrv and print the kernel's text in each page"
mapdrv dump
step "dmesg: the buffer, our page-table walk, and each page's physical address"
dmesg | grep 'rust_mapdrv:'
step "debugfs: /sys/kernel/debug/mapdrv/stats after the dump"
cat /sys/kernel/debug/mapdrv/stats
step "rmmod rust_mapdrv"
rmmod rust_mapdrv
dmesg | grep 'rust_mapdrv:' | tail -n 1
