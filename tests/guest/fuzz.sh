#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# mapdrv fuzz, bounded and with fixed seeds: random system calls against the
# device, every outcome and every byte checked against the fuzzer's model
# (see userspace/src/fuzz/). 20 s per configuration on the VM kernel, 60 s
# on the debug kernel, whose checkers (KASAN, lockdep, DEBUG_VM,
# page_table_check, kmemleak) watch the kernel side meanwhile. Under make
# soak (mapdrv.soak=SECONDS on the command line) it runs that long with new
# random seeds instead: a benchmark, not a test.
# run-vm: --timeout 300
# kernels: vm debug
# run-vm-debug: --timeout 900
# soak: yes
. /tests/lib.sh

require "module file is there" "$MODULE"
require "mapdrv tool is there" /bin/mapdrv

soak=$(sed -n 's/.*mapdrv\.soak=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$soak" ]; then
	runs="16:new"
	seconds=$soak
elif debug_kernel; then
	# seed 1 on a 16-page buffer, seed 2 on a one-page buffer (every
	# mapping is at an edge).
	runs="16:1 1:2"
	seconds=30
else
	runs="16:1 1:2 64:3"
	seconds=10
fi

for r in $runs; do
	pages=${r%:*} seed=${r#*:}
	c="pages=$pages seed=$seed"
	seed_arg="--seed $seed"
	[ "$seed" = new ] && seed_arg=
	check "$c loads" insmod "$MODULE" pages="$pages" || continue
	# shellcheck disable=SC2086 # no seed argument: a new random seed
	mapdrv fuzz --seconds "$seconds" $seed_arg --shrink-seconds 120 >/tmp/fuzz.out 2>&1
	st=$?
	while IFS= read -r l; do note "$l"; done </tmp/fuzz.out
	if [ "$st" -eq 0 ] && grep -q ': no divergence$' /tmp/fuzz.out; then
		pass "$c fuzz finds no divergence"
	else
		fail "$c fuzz finds no divergence" "status $st: $(grep -m1 -E '^(DIVERGENCE|mapdrv: error)' /tmp/fuzz.out) (replay: $(grep -m1 '^replay it with' /tmp/fuzz.out))"
	fi
	ops=$(sed -n 's/^fuzz: \([0-9]*\) operations in.*/\1/p' /tmp/fuzz.out)
	# Not a speed target: a run that did almost nothing tested nothing.
	if [ "${ops:-0}" -ge 100 ]; then
		pass "$c fuzz ran at least 100 operations"
	else
		fail "$c fuzz ran at least 100 operations" "it ran ${ops:-none}"
	fi
	check "$c the buffer is as it was (page 0)" sh -c "mapdrv dump --page 0 --count 1 | grep -qx 'mapdrv page 0'"
	check "$c unloads" rmmod "$MODNAME"
	module_unload_all
done
finish
