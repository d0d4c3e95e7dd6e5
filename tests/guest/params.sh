#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad module parameters: each refused with EINVAL (or ENOMEM for a buffer the
# VM cannot hold), one distinct dmesg line saying why, and nothing left
# behind: no module, no /dev/mapdrv, no warning in the kernel log.
# run-vm: --mem 1G
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
refused "mode=3" EINVAL 'mode=3 is not 0 \(fault\), 1 \(faultaround\) or 2 \(prefault\)' mode=3
refused "mode=fault" EINVAL "invalid for parameter .mode" mode=fault
refused "faultaround_pages=0" EINVAL 'faultaround_pages=0 is out of range' faultaround_pages=0
refused "faultaround_pages=513" EINVAL 'faultaround_pages=513 is out of range' faultaround_pages=513
# A 1 GiB buffer does not fit in this 1 GiB VM: ENOMEM, and thanks to
# __GFP_NOWARN | __GFP_RETRY_MAYFAIL no allocation warning, no OOM kill.
refused "pages=262144 in a 1 GiB VM" ENOMEM 'cannot allocate 262144 pages' pages=262144
expect_no_match "a failed allocation does not wake the OOM killer" 'Out of memory|oom-kill|invoked oom-killer' dmesg

# The edges that are valid load.
for ok in pages=1 pages=65536 mode=0 mode=1 mode=2 faultaround_pages=1 faultaround_pages=512; do
	check "$ok is accepted" insmod "$MODULE" "$ok" && check "$ok unloads" rmmod "$MODNAME"
	module_unload_all
done
finish
