#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What `make run` shows in the VM: the classic map_driver session, modernised.
# insmod, the device appears, user space maps it and prints the text the
# kernel put there, dmesg shows where each page lives; then the allocation
# demo: the kernel's layout, where kmalloc, vmalloc and the page allocator
# put memory (dmesg, mapdrv layout), /proc/buddyinfo while a block is held,
# the process's own layout; the picture and the JSON go to the host
# (export-file, when the VM has --export); rmmod.
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
dmesg | grep 'rust_mapdrv:' | grep -vE 'rust_mapdrv: (layout|demo):'
step "debugfs: /sys/kernel/debug/mapdrv/stats after the dump"
cat /sys/kernel/debug/mapdrv/stats
step "dmesg: the kernel's address space (debugfs mapdrv/layout), logged at load"
dmesg | grep 'rust_mapdrv: layout:'
step "dmesg: the allocation demo at load: one line per allocation, each claim checked"
dmesg | grep 'rust_mapdrv: demo:'
step "mapdrv layout --run: the demo again, on demand, as tables"
mapdrv layout --run --svg /tmp/layout.svg
mapdrv layout --json >/tmp/layout.json
step "mapdrv buddy: /proc/buddyinfo while the module holds a block of the largest order"
mapdrv buddy
step "mapdrv layout --self: this process's own memory, and the /dev/mapdrv mapping"
mapdrv layout --self
export-file layout.svg /tmp/layout.svg
export-file layout.json /tmp/layout.json
step "rmmod rust_mapdrv"
rmmod rust_mapdrv
dmesg | grep 'rust_mapdrv:' | tail -n 1
