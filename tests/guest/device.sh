#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The device contract from user space: `mapdrv verify` (content, pagemap
# PFNs against debugfs, shared and private mappings, bounds, PROT_EXEC,
# mremap, concurrent faults, read/write edges, ioctl, stats) for every mode
# (and for fault and faultaround without .map_pages, debugfs map_pages; in
# huge mode, a touch maps its whole 2 MiB block where THP allows)
# and for buffers of 1, 10 and 65536 pages (32768 on 32-bit ARM, whose
# whole vmalloc area is 240 MiB; 16384 on the debug kernel, where KASAN
# checks every access of verify's passes over the buffer, and 64 MiB still
# spans 32 page tables), plus map_driver.c's test.c flow (mapdrv dump).
# run-vm: --mem 1G --timeout 600
# kernels: vm debug arm64 arm
# run-vm-debug: --timeout 1500
. /tests/lib.sh

require "module file is there" "$MODULE"
require "mapdrv tool is there" /bin/mapdrv

large=65536
[ "$(guest_arch)" = arm ] && large=32768
debug_kernel && large=16384
for pages in 1 10 $large; do
	for mode in 0 1 2 3; do
		case $mode in 0) name=fault ;; 1) name=faultaround ;; 2) name=prefault ;; 3) name=huge ;; esac
		c="pages=$pages mode=$name"
		check "$c loads" insmod "$MODULE" pages=$pages mode=$mode || continue
		# One result line per verify check, under this case's name.
		_run mapdrv verify
		printf '%s\n' "$_out" | sed -n "s/^\(PASS\|FAIL\): /\1: $c verify /p"
		if [ "$_st" -eq 0 ]; then
			pass "$c verify exits 0"
		else
			fail "$c verify exits 0" "status $_st"
		fi
		expect_match "$c verify saw checks pass" '^PASS: ' printf '%s\n' "$_out"
		if [ "$mode" = 3 ] && [ "$pages" = "$large" ]; then
			# verify maps the whole buffer at 2 MiB-aligned addresses: with
			# THP in the kernel, its faults were answered with PMD entries.
			huge=$(sed -n 's/^huge_faults //p' /sys/kernel/debug/mapdrv/stats)
			if [ -d /sys/kernel/mm/transparent_hugepage ]; then
				at_least "$c verify was served with 2 MiB PMD entries (huge_faults)" 1 "$huge"
			else
				check "$c verify: no PMD entries without THP (huge_faults $huge)" test "$huge" = 0
			fi
		fi
		check "$c unloads" rmmod "$MODNAME"
		module_unload_all
	done
done

# map_driver.c's test.c: map the device and print the kernel's text.
insmod "$MODULE" pages=10
expect_match "dump prints page 0's line from kernel memory" '^mapdrv page 0$' mapdrv dump
expect_match "dump prints page 9's line from kernel memory" '^mapdrv page 9$' mapdrv dump
expect_match "info reports 10 pages of 4096 bytes" 'pages: *10' mapdrv info
# Writes through write(2) land in the buffer and read(2) sees them.
check "write(2) at offset 0 works" sh -c 'printf HELLO > /dev/mapdrv'
expect_match "read(2) sees what write(2) wrote" '^HELLOv page 0$' head -n 1 /dev/mapdrv
check "dd with skip= reads page 3 (no lseek: dd reads and skips)" sh -c \
	'dd if=/dev/mapdrv bs=4096 skip=3 count=1 2>/dev/null | head -n 1 | grep -qx "mapdrv page 3"'
# The mode can be switched by name at runtime, for new mappings.
check "debugfs mode accepts a name" sh -c 'echo prefault > /sys/kernel/debug/mapdrv/mode'
expect_match "debugfs mode reads back the name" '^prefault$' cat /sys/kernel/debug/mapdrv/mode
expect_errno "debugfs mode refuses an unknown name" EINVAL sh -c 'echo sometimes > /sys/kernel/debug/mapdrv/mode'
expect_match "debugfs mode is unchanged after a refused write" '^prefault$' cat /sys/kernel/debug/mapdrv/mode
expect_match "info reports the new mode" 'prefault' mapdrv info
# Faults with and without .map_pages (under the per-VMA lock or retried
# under mmap_lock): the contract holds either way.
D=/sys/kernel/debug/mapdrv
check "write(2) puts page 0's text back" sh -c 'printf mapdrv > /dev/mapdrv'
expect_match "debugfs map_pages is 1 by default" '^1$' cat $D/map_pages
expect_errno "debugfs map_pages refuses anything but 0 or 1" EINVAL sh -c "echo 2 > $D/map_pages"
expect_match "debugfs map_pages is unchanged after a refused write" '^1$' cat $D/map_pages
check "debugfs map_pages accepts 0" sh -c "echo 0 > $D/map_pages"
expect_match "debugfs map_pages reads back 0" '^0$' cat $D/map_pages
for name in fault faultaround; do
	echo $name >$D/mode
	check "verify passes in $name mode without .map_pages" mapdrv verify
done
echo 1 >$D/map_pages
expect_match "load timing lines are in debugfs stats" '^load_walk_ns [0-9]+$' cat $D/stats
expect_match "load timing is in the kernel log" 'rust_mapdrv: load timing: 10 pages: alloc [0-9]+ ns' dmesg
check "rmmod" rmmod "$MODNAME"
module_unload_all
finish
