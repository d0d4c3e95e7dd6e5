#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The buffer outlives every file and mapping: rmmod fails while the device is
# open or mapped and works after; 200 load/unload cycles (20 on the debug
# kernel, arm64 and arm) do not leak: not vmalloc memory (VmallocUsed), and
# on the debug kernel nothing kmemleak finds.
# kernels: vm debug arm64 arm
# run-vm-debug: --timeout 900
. /tests/lib.sh

require "module file is there" "$MODULE"
check "insmod" insmod "$MODULE" pages=16 || finish

exec 3</dev/mapdrv
expect_errno "rmmod while the device is open fails" EAGAIN rmmod "$MODNAME"
check "module still loaded while open" module_loaded
exec 3<&-

maphold 16 >/tmp/maphold.out 2>&1 &
holder=$!
for _ in $(seq 100); do grep -q mapped /tmp/maphold.out && break; sleep 0.05; done
check "a process maps the device and closes its fd" grep -q "mapped 16 pages" /tmp/maphold.out
expect_errno "rmmod while the device is mapped fails" EAGAIN rmmod "$MODNAME"
check "module still loaded while mapped" module_loaded
kill "$holder"
wait "$holder" 2>/dev/null
check "rmmod after close and munmap succeeds" rmmod "$MODNAME"

vmalloc_kb() { awk '/^VmallocUsed:/ { print $2 }' /proc/meminfo; }
# 200 cycles on the x86_64 VM kernel; 20 on the debug kernel (a cycle there
# takes a second: KASAN, kmemleak and lockdep watch every load) and on the
# emulated arm64 and arm VMs (up to a second, with the KUnit suites and the
# demo run at each load). vmalloc hands out whole pages, so a cycle that
# leaks vmalloc memory leaks 4 KiB at least (our buffer here: 256 KiB), and
# 20 such cycles grow VmallocUsed past the 64 KiB the check below allows;
# on the debug kernel kmemleak finds any leak, of any size, in one cycle.
cycles=200
{ [ "$(guest_arch)" = x86_64 ] && ! debug_kernel; } || cycles=20
# On the debug kernel: what kmemleak reports before the cycles (it keeps
# listing a leak once found, so the cycles' own are those added).
debug_kernel && leaks_before=$(kmemleak_scan)
# One cycle first so that one-time allocations (module loader caches) are
# not counted as growth.
insmod "$MODULE" pages=64 && rmmod "$MODNAME"
before=$(vmalloc_kb)
i=0
while [ $i -lt $cycles ]; do
	insmod "$MODULE" pages=64 || break
	head -c 4096 /dev/mapdrv >/dev/null
	rmmod "$MODNAME" || break
	i=$((i + 1))
done
# rmmod and insmod hand some vmalloc'ed memory (a module's init sections,
# lazily purged areas) to deferred work; with two CPUs that may still be
# pending right after the last cycle. Give it up to 10 s to settle: a leaked
# buffer (256 KiB a cycle) never does.
waited=0
after=$(vmalloc_kb)
while [ "$((after - before))" -ge 64 ] && [ $waited -lt 20 ]; do
	sleep 0.5
	waited=$((waited + 1))
	after=$(vmalloc_kb)
done
note "VmallocUsed before ${before} kB, after $cycles load/unload cycles of 256 KiB: ${after} kB (after $waited half-second waits)"
check "$cycles load/unload cycles all succeed" test "$i" -eq "$cycles"
# One leaked buffer would be 256 KiB; allow 64 KiB for unrelated activity.
check "load/unload does not grow VmallocUsed" test "$((after - before))" -lt 64
if debug_kernel; then
	leaks=$(kmemleak_scan)
	if [ -n "$leaks" ] && [ "$leaks" = "${leaks_before:-}" ]; then
		pass "$cycles load/unload cycles leak nothing kmemleak finds"
	else
		fail "$cycles load/unload cycles leak nothing kmemleak finds" "${leaks:-?} leak reports after, ${leaks_before:-?} before: $(head -n 12 "$KMEMLEAK" | tr '\n' ' ')"
	fi
fi
module_unload_all
finish
