#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Races and lifetimes: what the module hands out (the open device, each
# debugfs file, a mapping, its pages) stays sound when something else
# happens at the same time.
#
# 1. Every file the module creates, held open across an rmmod attempt: rmmod
#    fails while it is open (the file pins the module), the file still reads
#    and closes cleanly, and the module unloads after.
# 2. rmmod and insmod in a loop while other processes open, map, read and
#    close /dev/mapdrv and read every debugfs file: no splat (the runner reads
#    the kernel log), the module unloads at the end.
# 3. In every mode: faults racing for the same entries are counted right
#    (faultcount), and mapdrv race (fault, faultaround, prefault, huge, whose
#    4 MiB mappings are two 2 MiB PMD entries where THP allows): readers
#    against MADV_DONTNEED, munmap+mmap, mremap, mprotect, fork with private
#    writes, the last close, and mode/map_pages switches (see mapdrv race
#    --help); zero SIGBUS inside the buffer, content right.
# Each scenario runs for a fixed time on both CPUs; its operation count goes
# to a "# ..." line.
# kernels: vm debug arm64 arm
# run-vm: --timeout 300
# run-vm-debug: --timeout 900
. /tests/lib.sh

require "module file is there" "$MODULE"
require "mapdrv tool is there" /bin/mapdrv
check "the guest has two CPUs online" test "$(cat /sys/devices/system/cpu/online)" = 0-1

seconds=1
D=/sys/kernel/debug/mapdrv
# Every file the module creates (the debugfs ones as listed by the module).
FILES="/dev/mapdrv $D/pages $D/stats $D/mode $D/map_pages $D/demo $D/layout $D/hold"

# --- 1. each file held open across rmmod ----------------------------------
check "the module loads" insmod "$MODULE" pages=16 || finish
for f in $FILES; do
	check "$f exists" test -e "$f"
done
# The list above is all there is: a new file must be added to FILES.
check "FILES lists every debugfs file" test "$(ls $D | sort | tr '\n' ' ')" = "demo hold layout map_pages mode pages stats "
rmmod "$MODNAME"
for f in $FILES; do
	check "$f: module loads" insmod "$MODULE" pages=16 || continue
	exec 3<"$f"
	expect_errno "$f held open: rmmod fails" EAGAIN rmmod "$MODNAME"
	check "$f held open: module still loaded" module_loaded
	# Read through the held descriptor; content must come out of the live
	# module (the device: page 0's text).
	if [ "$f" = /dev/mapdrv ]; then
		expect_match "$f held open: still reads" '^mapdrv page 0' sh -c 'head -c 64 <&3 | tr "\0" "\n"'
	else
		check "$f held open: still reads" sh -c 'cat <&3 >/dev/null'
	fi
	exec 3<&-
	check "$f closed: rmmod succeeds" rmmod "$MODNAME"
done
module_unload_all

# --- 2. rmmod in a loop against users --------------------------------------
# Users: each loop opens, reads (read(2), or through a mapping with mapdrv
# dump) and closes, ignoring errors while the module is away. They stop when /tmp/race.stop appears.
rm -f /tmp/race.stop /tmp/race.users.*
user() {
	n=0
	while [ ! -e /tmp/race.stop ]; do
		case $1 in
		dev) head -c 8192 /dev/mapdrv >/dev/null 2>&1 ;;
		map) mapdrv dump --page 1 --count 2 >/dev/null 2>&1 ;;
		*) cat "$D/$1" >/dev/null 2>&1 ;;
		esac
		n=$((n + 1))
	done
	echo "$n" >"/tmp/race.users.$1"
}
pids=
for u in dev map pages stats mode map_pages demo layout hold; do
	user "$u" &
	pids="$pids $!"
done
cycles=0 attempts=0 unloads=0
# Until the module went away 3 times (each a load, users in, rmmod until it
# is no longer in use), or 180 s: a bound for a module that never goes away,
# not a speed target (on the debug kernel, with the host busy, one cycle has
# taken 30 s: its insmod runs the KUnit tests under KASAN and lockdep).
end=$(($(date +%s) + 180))
while [ "$unloads" -lt 3 ] && [ "$(date +%s)" -lt "$end" ]; do
	# demo=0: the allocation demo at load is not what is raced here.
	insmod "$MODULE" pages=16 demo=0 2>/dev/null
	# rmmod fails (EAGAIN) while a user holds a file; try again.
	tries=0
	while module_loaded && [ $tries -lt 500 ]; do
		rmmod "$MODNAME" 2>/dev/null
		tries=$((tries + 1))
	done
	attempts=$((attempts + tries))
	module_loaded || unloads=$((unloads + 1))
	cycles=$((cycles + 1))
done
touch /tmp/race.stop
for p in $pids; do wait "$p"; done
ops=0
for u in /tmp/race.users.*; do ops=$((ops + $(cat "$u"))); done
note "rmmod loop: $cycles loads, $unloads unloads, $attempts rmmod attempts, against $ops user operations (open/read/close, map, debugfs reads)"
at_least "rmmod loop: the module unloaded 3 times between users" 3 "$unloads"
at_least "rmmod loop: users ran at least 100 operations" 100 "$ops"
check "rmmod loop: the module is unloaded at the end" sh -c '! grep -q "^rust_mapdrv " /proc/modules' ||
	module_unload_all

# --- 3. mapdrv race in every mode ------------------------------------------
for mode in fault:0 faultaround:1 prefault:2 huge:3; do
	number=${mode#*:} mode=${mode%:*}
	check "race $mode: module loads" insmod "$MODULE" pages=1024 mode="$number" faultaround_pages=512 || continue
	# Racing faults for the same entries: each page is mapped once a
	# round, and only inserted pages count (not entries found present).
	if _run_ok "race $mode: pages_inserted counts each page once" faultcount 64 200 3; then
		note "$_out"
		set -- $_out
		check "race $mode: pages_inserted counts each page once" test "${8:-x}" -eq $((64 * 200))
	fi
	for scenario in dontneed remap mremap mprotect fork close modes; do
		tool_check "race $mode $scenario: no SIGBUS in the buffer, content right" ', 0 problems$' \
			mapdrv race "$scenario" --seconds "$seconds"
		at_least "race $mode $scenario: ran at least 100 operations" 100 \
			"$(sed -n 's/^race [a-z]*: \([0-9]*\) operations.*/\1/p' "$TOOL_OUT")"
	done
	if [ "$mode" = huge ] && [ -d /sys/kernel/mm/transparent_hugepage ]; then
		# The races ran against PMD entries, not only the per-page fallback.
		at_least "race huge: faults were answered with 2 MiB PMD entries" 1 \
			"$(sed -n 's/^huge_faults //p' /sys/kernel/debug/mapdrv/stats)"
	fi
	check "race $mode: the module unloads after" rmmod "$MODNAME"
	module_unload_all
done
finish
