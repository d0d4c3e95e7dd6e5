#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# mapdrv fuzz, bounded and with fixed seeds: random system calls against the
# device, every outcome and every byte checked against the fuzzer's model
# (see userspace/src/fuzz/). Each configuration runs for the seconds set
# below, longer on the debug kernel, whose checkers (KASAN, lockdep,
# DEBUG_VM, page_table_check, kmemleak) watch the kernel side meanwhile.
# Under make soak (mapdrv.soak=SECONDS on the command line) it runs that
# long with new random seeds instead: a benchmark, not a test.
# run-vm: --timeout 300
# kernels: vm debug arm64 arm
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
	seconds=20
else
	runs="16:1 1:2 64:3"
	seconds=10
fi

# pages_as_loaded N: mapdrv dump shows the N pages' lines as the module
# wrote them at load (the fuzzer puts the buffer back), and exits 0 (its
# output goes to a file first: a pipe would drop its status).
pages_as_loaded() {
	mapdrv dump >/tmp/dump.out || return
	awk -v n="$1" '$0 != "mapdrv page " NR - 1 { bad = 1 } END { exit bad || NR != n }' /tmp/dump.out
}

# by_kind_sum: the sum of the counts by kind in $TOOL_OUT, from the text
# line ("fuzz: by kind: close 3, mmap 5") or from the JSON's "by_kind".
by_kind_sum() {
	awk '/^fuzz: by kind: / { sub(/^fuzz: by kind: /, ""); n = split($0, kv, ", ")
			for (i = 1; i <= n; i++) { split(kv[i], f, " "); s += f[2] }; found = 1 }
		/^  "by_kind": \{/ { inside = 1; next }
		inside && /^  \}/ { inside = 0; found = 1 }
		inside { v = $2; sub(/,$/, "", v); s += v }
		END { if (found) print s }' "$TOOL_OUT"
}

# executed_matches_by_kind NAME TOTAL: the total of executed operations is
# the sum of the executed operations by kind (skipped ones are in neither).
executed_matches_by_kind() {
	check "$1" test "${2:-none}" = "$(by_kind_sum)"
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
	# Operations executed: the skipped ones called nothing.
	executed=$(sed -n 's/^fuzz: \([0-9]*\) operations executed in .*/\1/p' "$TOOL_OUT")
	at_least "$c fuzz executed at least 100 operations" 100 "$executed"
	executed_matches_by_kind "$c fuzz counts only executed operations in its total" "$executed"
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
		executed=$(sed -n 's/^  "operations": \([0-9]*\),$/\1/p' "$TOOL_OUT")
		at_least "fuzz --json counts at least 100 executed operations" 100 "$executed"
		executed_matches_by_kind "fuzz --json operations counts only executed ones" "$executed"
		check "fuzz --json reports the skipped operations apart" grep -qE '^  "skipped": [0-9]+,$' "$TOOL_OUT"
	fi
	check "the module unloads after the --json runs" rmmod "$MODNAME"
	module_unload_all
fi
finish
