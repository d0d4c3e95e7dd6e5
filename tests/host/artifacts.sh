#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# What `make test` boots and loads, checked on the host: the kernel image,
# the module (built for that kernel, GPL) and the static mapdrv tool.
# Environment (from tests/run.sh): MAPDRV_KERNEL, MAPDRV_MODULE, MAPDRV_TOOL.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"

kernel_info=$(file -b "$MAPDRV_KERNEL")
case $kernel_info in
*"Linux kernel x86 boot executable"*) pass "kernel image is an x86 bzImage" ;;
*) fail "kernel image is an x86 bzImage" "$MAPDRV_KERNEL is: $kernel_info" ;;
esac
kernel_version=$(printf '%s\n' "$kernel_info" | sed -n 's/.*, version \([^ ]*\) .*/\1/p')
note "kernel $kernel_version: $MAPDRV_KERNEL"

# modinfo KEY: a field of the module's .modinfo section (key=value strings
# separated by NUL bytes), without kmod's modinfo.
# Every match, one per line (a module has one parm= line per parameter).
modinfo() { tr '\0' '\n' <"$MAPDRV_MODULE" | sed -n "s/^$1=//p"; }

if [ -f "$MAPDRV_MODULE" ]; then
	pass "module file is there"
	expect_match "module is an x86-64 ELF relocatable" 'ELF 64-bit LSB relocatable, x86-64' file -b "$MAPDRV_MODULE"
	vermagic=$(modinfo vermagic)
	note "module vermagic: $vermagic"
	if [ -n "$kernel_version" ] && [ "${vermagic%% *}" = "$kernel_version" ]; then
		pass "module is built for the VM kernel's version"
	else
		fail "module is built for the VM kernel's version" "vermagic '$vermagic', kernel '$kernel_version'"
	fi
	expect_match "module license is GPL" '^GPL' modinfo license
	expect_match "module name is rust_mapdrv" '^rust_mapdrv$' modinfo name
	expect_match "module has a description" '.{20,}' modinfo description
	expect_match "module names its authors" '.+' modinfo author
	for param in pages mode faultaround_pages; do
		expect_match "modinfo documents parameter $param" "^$param:.{20,}" modinfo parm
	done
else
	fail "module file is there" "no module at '$MAPDRV_MODULE' (tests/run.sh --module)"
fi

if [ -n "$MAPDRV_TOOL" ] && [ -f "$MAPDRV_TOOL" ]; then
	pass "mapdrv tool is there"
	expect_match "mapdrv tool is a static x86-64 executable" \
		'ELF 64-bit LSB .*x86-64.*(statically linked|static-pie linked)' file -b "$MAPDRV_TOOL"
else
	fail "mapdrv tool is there" "no mapdrv tool given (tests/run.sh --tool)"
fi
finish
