#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The bad-input matrix at the system-call level: tests/helpers/badinput.c
# makes each call with an edge or bad argument (mmap offsets at, past and
# wrapping the end, lengths 0 and overflowing, PROT_EXEC, PROT_WRITE on a
# read-only file, refused flags, mprotect, mremap, madvise; read and write at
# and past the end, of 0 and huge lengths, to and from bad pointers; unknown
# ioctls and bad pointers), checks the exact errno or result, and that the
# buffer holds what it held before. For a one-page buffer and a 16-page one
# in each mode. (Module parameters: params.sh; rmmod while open or mapped
# and load/unload cycles: lifecycle.sh.)
# run-vm: --timeout 300
# kernels: vm debug arm64 arm
# run-vm-debug: --timeout 600
. /tests/lib.sh

require "module file is there" "$MODULE"
require "badinput helper is there" /bin/badinput

for c in "1 0 fault" "16 0 fault" "16 1 faultaround" "16 2 prefault" "1024 3 huge"; do
	# shellcheck disable=SC2086 # split "pages mode name" on purpose
	set -- $c
	cfg="pages=$1 mode=$3"
	check "$cfg loads" insmod "$MODULE" pages="$1" mode="$2" || continue
	# One result line per case, named after this configuration.
	badinput "$cfg: " >/tmp/badinput.out 2>&1
	st=$?
	grep -E '^(PASS|FAIL): ' /tmp/badinput.out
	note "$cfg: $(grep '^# cases' /tmp/badinput.out)"
	if [ "$st" -eq 0 ]; then
		pass "$cfg badinput ran every case"
	else
		fail "$cfg badinput ran every case" "status $st: $(grep -v '^PASS' /tmp/badinput.out | head -n 3 | tr '\n' ' ')"
	fi
	check "$cfg unloads" rmmod "$MODNAME"
	module_unload_all
done
finish
