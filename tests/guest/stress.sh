#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# mapdrv stress, bounded: 2 processes x 4 threads map, fault, remap and unmap
# the device at once on both vCPUs while the mode switches between fault,
# faultaround and prefault; every read is checked and, at the end, every
# byte of the buffer. 10 s on the VM kernel, 20 s on the debug kernel (with
# its lock and memory checkers); under make soak (mapdrv.soak=SECONDS) that
# long with a new seed and more workers: a benchmark, not a test.
# run-vm: --timeout 300
# kernels: vm debug arm64 arm
# run-vm-debug: --timeout 900
# soak: yes
. /tests/lib.sh

require "module file is there" "$MODULE"
require "mapdrv tool is there" /bin/mapdrv

soak=$(sed -n 's/.*mapdrv\.soak=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$soak" ]; then
	set -- --threads 8 --procs 4 --seconds "$soak"
elif debug_kernel; then
	set -- --threads 4 --procs 2 --seconds 20 --seed 1
else
	set -- --threads 4 --procs 2 --seconds 10 --seed 1
fi
c="pages=16 $*"
# The point is two CPUs faulting at once (run-vm.sh gives the VM two).
check "the guest has two CPUs online" test "$(cat /sys/devices/system/cpu/online)" = 0-1
check "$c loads" insmod "$MODULE" pages=16 || finish
tool_check "stress: every read and every byte at the end as expected" 'all as expected' \
	mapdrv stress "$@"
at_least "stress ran at least 100 operations" 100 \
	"$(sed -n 's/^stress: \([0-9]*\) operations by.*/\1/p' "$TOOL_OUT")"
# The mode switches every 50 ms, each read back from the mode file: the
# fault paths really ran at once.
at_least "stress switched the mode at least 3 times" 3 \
	"$(sed -n 's/^stress: .* \([0-9]*\) mode switches$/\1/p' "$TOOL_OUT")"
check "stress: the module unloads after it" rmmod "$MODNAME"
module_unload_all

# --json: one summary object on stdout, every worker reported, no problem.
# Once, on the VM kernel.
if [ -z "$soak" ] && ! debug_kernel; then
	check "the module loads for the --json runs" insmod "$MODULE" pages=16
	if tool_check "stress --json prints a summary with ok true" '"ok": true' \
		mapdrv stress --threads 2 --procs 2 --seconds 2 --seed 3 --json; then
		check "stress --json prints one JSON object with all 4 workers and no problems" \
			sh -c "head -1 '$TOOL_OUT' | grep -qx '{' && tail -1 '$TOOL_OUT' | grep -qx '}' &&
				grep -q '\"workers_reported\": 4,' '$TOOL_OUT' && grep -q '\"problems\": \[\]' '$TOOL_OUT'"
		at_least "stress --json counts at least 100 operations" 100 \
			"$(sed -n 's/^  "operations": \([0-9]*\),$/\1/p' "$TOOL_OUT")"
		at_least "stress --json counts at least 3 mode switches" 3 \
			"$(sed -n 's/^  "mode_switches": \([0-9]*\),$/\1/p' "$TOOL_OUT")"
	fi
	check "the module unloads after the --json runs" rmmod "$MODNAME"
	module_unload_all
fi
finish
