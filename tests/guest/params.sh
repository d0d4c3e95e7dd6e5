#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad module parameters: each refused with EINVAL (or ENOMEM for a buffer the
# VM cannot hold), one distinct dmesg line saying why, and nothing left
# behind: no module, no /dev/mapdrv, no warning in the kernel log.
# run-vm: --mem 1G
# kernels: vm debug arm64 arm
# run-vm-debug: --mem 1G --timeout 600
. /tests/lib.sh

require "module file is there" "$MODULE"

# refused NAME ERRNO REASON_RE PARAMS...: insmod with PARAMS fails with
# ERRNO, logs REASON_RE in one distinct line, and leaves nothing loaded.
refused() {
	_case=$1 _errno=$2 _reason=$3
	shift 3
	dmesg_mark
	expect_errno "$_case is refused with $_errno" "$_errno" insmod "$MODULE" "$@"
	# busybox insmod tries finit_module, then init_module: the reason is
	# logged once per attempt, so count distinct lines.
	_lines=$(dmesg | grep "$MODNAME: " | sed 's/^\[[ 0-9.]*\] //' | sort -u | grep -cE -- "$_reason")
	if [ "$_lines" -eq 1 ]; then
		pass "$_case logs one line saying why"
	else
		fail "$_case logs one line saying why" "$_lines distinct lines match /$_reason/: $(_oneline "$(dmesg | grep "$MODNAME")")"
	fi
	expect_fail "$_case leaves no module loaded" module_loaded
	expect_fail "$_case leaves no /dev/mapdrv" test -e /dev/mapdrv
	module_unload_all
}

refused "pages=0" EINVAL 'pages=0 is out of range 1\.\.=262144' pages=0
refused "pages=262145" EINVAL 'pages=262145 is out of range' pages=262145
refused "pages=-1" EINVAL 'pages=-1 is out of range' pages=-1
refused "pages=abc" EINVAL "invalid for parameter .pages" pages=abc
refused "pages=99999999999999999999" EINVAL "invalid for parameter .pages" pages=99999999999999999999
refused "mode=4" EINVAL 'mode=4 is not 0 \(fault\), 1 \(faultaround\), 2 \(prefault\) or 3 \(huge\)' mode=4
refused "mode=fault" EINVAL "invalid for parameter .mode" mode=fault
refused "faultaround_pages=0" EINVAL 'faultaround_pages=0 is out of range' faultaround_pages=0
refused "faultaround_pages=513" EINVAL 'faultaround_pages=513 is out of range' faultaround_pages=513
# The rest of the matrix: each parameter's largest and smallest values of its
# type, one past them, negative, empty, twice.
refused "pages=9223372036854775807 (i64 max)" EINVAL 'pages=9223372036854775807 is out of range' pages=9223372036854775807
refused "pages=-9223372036854775808 (i64 min)" EINVAL 'pages=-9223372036854775808 is out of range' pages=-9223372036854775808
refused "pages=9223372036854775808 (past i64)" EINVAL "invalid for parameter .pages" pages=9223372036854775808
refused "pages=-0" EINVAL 'pages=0 is out of range' pages=-0
refused "pages= (empty)" EINVAL "^rust_mapdrv: \`' invalid for parameter .pages" pages=
refused "mode=-1" EINVAL "invalid for parameter .mode" mode=-1
refused "mode=4294967295 (u32 max)" EINVAL 'mode=4294967295 is not 0' mode=4294967295
refused "mode=4294967296 (past u32)" EINVAL "invalid for parameter .mode" mode=4294967296
refused "faultaround_pages=-1" EINVAL "invalid for parameter .faultaround_pages" faultaround_pages=-1
refused "faultaround_pages=abc" EINVAL "invalid for parameter .faultaround_pages" faultaround_pages=abc
refused "faultaround_pages=4294967296 (past u32)" EINVAL "invalid for parameter .faultaround_pages" faultaround_pages=4294967296
# A parameter given twice: the kernel crate's parameters are set once, so the
# second is refused (EEXIST) and logged as invalid.
refused "pages given twice" EEXIST "invalid for parameter .pages" pages=4 pages=8
# A 1 GiB buffer does not fit in this 1 GiB VM: ENOMEM, and thanks to
# __GFP_NOWARN | __GFP_RETRY_MAYFAIL no allocation warning, no OOM kill.
refused "pages=262144 in a 1 GiB VM" ENOMEM 'cannot allocate 262144 pages' pages=262144
# The same in huge mode: vmalloc_huge tries 2 MiB blocks, then single pages.
refused "pages=262144 mode=3 in a 1 GiB VM" ENOMEM 'cannot allocate 262144 pages' pages=262144 mode=3
expect_no_match "a failed allocation does not wake the OOM killer" 'Out of memory|oom-kill|invoked oom-killer' dmesg

# The edges that are valid load (a 256 MiB buffer; 128 MiB on 32-bit ARM,
# whose vmalloc area is 240 MiB).
large=65536
[ "$(guest_arch)" = arm ] && large=32768
for ok in pages=1 pages=$large mode=0 mode=1 mode=2 mode=3 faultaround_pages=1 faultaround_pages=512; do
	check "$ok is accepted" insmod "$MODULE" "$ok" && check "$ok unloads" rmmod "$MODNAME"
	module_unload_all
done
# Numbers in other notations (the kernel crate's parser) and an unknown
# parameter, which the module loader ignores with a line in the log.
for c in "pages=0x10:16" "pages=010:8" "pages=+5:5"; do
	arg=${c%:*} want=${c#*:}
	if check "$arg is accepted" insmod "$MODULE" "$arg"; then
		expect_match "$arg gives $want pages" "^pages: *$want\$" mapdrv info
	fi
	module_unload_all
done
dmesg_mark
check "an unknown parameter is ignored" insmod "$MODULE" colour=blue
expect_match "an unknown parameter is named in the log" "rust_mapdrv: unknown parameter 'colour' ignored" dmesg_new
expect_match "an unknown parameter leaves the default of 10 pages" '^pages: *10$' mapdrv info
module_unload_all
finish
