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

# pages_as_loaded N: mapdrv dump shows the N pages' lines as the module
# wrote them at load (the fuzzer puts the buffer back).
pages_as_loaded() {
	mapdrv dump | awk -v n="$1" '$0 != "mapdrv page " NR - 1 { bad = 1 } END { exit bad || NR != n }'
}

for r in $runs; do
	pages=${r%:*} seed=${r#*:}
	c="pages=$pages seed=$seed"
	seed_arg="--seed $seed"
	[ "$seed" = new ] && seed_arg=
	check "$c loads" insmod "$MODULE" pages="$pages" || continue
	# shellcheck disable=SC2086 # no seed argument: a new random seed
	tool_check "$c fuzz finds no divergence" ': no divergence$' \
		mapdrv fuzz --seconds "$seconds" $seed_arg --shrink-seconds 120
	# Not a speed target: a run that did almost nothing tested nothing.
	at_least "$c fuzz ran at least 100 operations" 100 \
		"$(sed -n 's/^fuzz: \([0-9]*\) operations in.*/\1/p' "$TOOL_OUT")"
	check "$c every page reads as loaded afterwards" pages_as_loaded "$pages"
	check "$c unloads" rmmod "$MODNAME"
	module_unload_all
done

# --json: one summary object on stdout and nothing else (the progress lines
# are gone), its counts consistent. Once, on the VM kernel.
if [ -z "$soak" ] && ! debug_kernel; then
	check "the module loads for the --json runs" insmod "$MODULE" pages=4
	if tool_check "fuzz --json prints a summary with no divergence" '"divergence": null' \
		mapdrv fuzz --seconds 2 --seed 4 --json; then
		check "fuzz --json prints one JSON object and nothing else" \
			sh -c "head -1 '$TOOL_OUT' | grep -qx '{' && tail -1 '$TOOL_OUT' | grep -qx '}' && ! grep -q '^fuzz:' '$TOOL_OUT'"
		check "fuzz --json reports seed 4 and ok true" \
			sh -c "grep -q '\"seed\": 4,' '$TOOL_OUT' && grep -q '\"ok\": true' '$TOOL_OUT'"
		at_least "fuzz --json counts at least 100 operations" 100 \
			"$(sed -n 's/^  "operations": \([0-9]*\),$/\1/p' "$TOOL_OUT")"
	fi
	check "the module unloads after the --json runs" rmmod "$MODNAME"
	module_unload_all
fi
finish
