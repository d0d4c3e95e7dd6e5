#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# What `make test` boots and loads, checked on the host for each
# architecture: the kernel image, the module (built for that kernel and
# architecture, GPL) and the static mapdrv tool.
# Environment (from tests/run.sh): MAPDRV_KERNEL, MAPDRV_MODULE, MAPDRV_TOOL
# (x86_64); MAPDRV_ARM64_KERNEL, MAPDRV_ARM64_MODULE, MAPDRV_ARM64_TOOL
# (arm64, when make test runs it), and MAPDRV_ARM_* likewise (arm).
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"

# check_artifacts ARCH KERNEL MODULE TOOL: the checks for one architecture,
# named with an "ARCH " prefix but for x86_64's (their names predate arm64).
check_artifacts() {
	local arch=$1 kernel=$2 module=$3 tool=$4 p= image_re image_name elf_re elf_name bits=64
	[ "$arch" = x86_64 ] || p="$arch "
	case $arch in
	x86_64)
		image_re="Linux kernel x86 boot executable" image_name="an x86 bzImage"
		elf_re="x86-64" elf_name="x86-64"
		;;
	arm64)
		image_re="Linux kernel ARM64 boot executable Image" image_name="an ARM64 Image"
		elf_re="ARM aarch64" elf_name="aarch64"
		;;
	arm)
		image_re="Linux kernel ARM boot executable zImage" image_name="an ARM zImage"
		elf_re="ARM, EABI5" elf_name="32-bit ARM" bits=32
		;;
	esac
	local kernel_info kernel_version
	kernel_info=$(file -b "$kernel")
	case $kernel_info in
	*"$image_re"*) pass "${p}kernel image is $image_name" ;;
	*) fail "${p}kernel image is $image_name" "$kernel is: $kernel_info" ;;
	esac
	# x86's file(1) names the version; an arm64 Image does not carry it in
	# its header, so take it from the tree's include/config/kernel.release.
	kernel_version=$(printf '%s\n' "$kernel_info" | sed -n 's/.*, version \([^ ]*\) .*/\1/p')
	if [ -z "$kernel_version" ]; then
		local release=${kernel%/arch/*}/include/config/kernel.release
		[ -f "$release" ] && kernel_version=$(cat "$release")
	fi
	note "$arch kernel $kernel_version: $kernel"

	# modinfo KEY: a field of the module's .modinfo section (key=value
	# strings separated by NUL bytes), without kmod's modinfo. Every match,
	# one per line (a module has one parm= line per parameter).
	modinfo() { tr '\0' '\n' <"$module" | sed -n "s/^$1=//p"; }

	if [ -f "$module" ]; then
		pass "${p}module file is there"
		expect_match "${p}module is an $elf_name ELF relocatable" "ELF $bits-bit LSB relocatable, $elf_re" file -b "$module"
		local vermagic
		vermagic=$(modinfo vermagic)
		note "$arch module vermagic: $vermagic"
		if [ -n "$kernel_version" ] && [ "${vermagic%% *}" = "$kernel_version" ]; then
			pass "${p}module is built for the VM kernel's version"
		else
			fail "${p}module is built for the VM kernel's version" "vermagic '$vermagic', kernel '$kernel_version'"
		fi
		expect_match "${p}module license is GPL" '^GPL' modinfo license
		expect_match "${p}module name is rust_mapdrv" '^rust_mapdrv$' modinfo name
		expect_match "${p}module has a description" '.{20,}' modinfo description
		expect_match "${p}module names its authors" '.+' modinfo author
		local param
		for param in pages mode faultaround_pages; do
			expect_match "${p}modinfo documents parameter $param" "^$param:.{20,}" modinfo parm
		done
	else
		fail "${p}module file is there" "no module at '$module' (tests/run.sh --${p:+$arch-}module)"
	fi

	if [ -n "$tool" ] && [ -f "$tool" ]; then
		pass "${p}mapdrv tool is there"
		expect_match "${p}mapdrv tool is a static $elf_name executable" \
			"ELF $bits-bit LSB .*$elf_re.*(statically linked|static-pie linked)" file -b "$tool"
	else
		fail "${p}mapdrv tool is there" "no mapdrv tool given (tests/run.sh --${p:+$arch-}tool)"
	fi
}

check_artifacts x86_64 "$MAPDRV_KERNEL" "$MAPDRV_MODULE" "${MAPDRV_TOOL:-}"
if [ -n "${MAPDRV_ARM64_KERNEL:-}" ]; then
	check_artifacts arm64 "$MAPDRV_ARM64_KERNEL" "${MAPDRV_ARM64_MODULE:-}" "${MAPDRV_ARM64_TOOL:-}"
else
	skip "arm64 artifacts" "no arm64 kernel given (make test without ARCH gives it)"
fi
if [ -n "${MAPDRV_ARM_KERNEL:-}" ]; then
	check_artifacts arm "$MAPDRV_ARM_KERNEL" "${MAPDRV_ARM_MODULE:-}" "${MAPDRV_ARM_TOOL:-}"
else
	skip "arm artifacts" "no arm kernel given (make test without ARCH gives it)"
fi
finish
