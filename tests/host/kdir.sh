#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make KDIR=...` with a tree the module cannot be built against fails with
# a clear message that says which problem it is, and builds nothing.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${MAPDRV_TEST_WORK:-$(mktemp -d)}

expect_match "KDIR=/nonexistent: says there is no such directory" 'KDIR=/nonexistent: no such directory' \
	bash -c "make -C '$root' --no-print-directory module KDIR=/nonexistent 2>&1; test \$? -ne 0"
expect_match "KDIR that is not a kernel tree: says so" 'is not a kernel tree' \
	bash -c "make -C '$root' --no-print-directory module KDIR='$work' 2>&1; test \$? -ne 0"

# A configured tree without Rust: tinyconfig of the same source for
# x86_64 (plain tinyconfig is i386 on x86), which takes a few seconds and no
# build.
src=$(source "$root/scripts/lib.sh"; kernel_src_dir)
norust=$work/norust
if [ ! -f "$norust/.config" ]; then
	make -s -C "$src" O="$norust" ARCH=x86_64 LLVM=-19 tinyconfig >/dev/null 2>&1
fi
check "a tinyconfig tree without Rust was configured" test -f "$norust/.config"
expect_match "KDIR without CONFIG_RUST: says it is built without Rust" 'built without Rust \(CONFIG_RUST is not set\)' \
	bash -c "make -C '$root' --no-print-directory module KDIR='$norust' 2>&1; test \$? -ne 0"

# A Rust tree whose rustc differs from ours: a copy of the VM tree's .config
# with another compiler version recorded is enough for the check.
kdir=$(bash "$root/scripts/build-module.sh" --print-kdir 2>/dev/null)
# fake_tree NAME SED-ARGS...: $work/NAME, a copy of the VM tree's files that
# build-module.sh checks (Makefile, Module.symvers, the Rust metadata) with
# its .config edited by sed SED-ARGS; prints the directory.
fake_tree() {
	local dir=$work/$1
	shift
	rm -rf "$dir" && mkdir -p "$dir/rust"
	cp "$kdir/Makefile" "$kdir/Module.symvers" "$dir/"
	touch "$dir/rust/libkernel.rmeta"
	sed "$@" "$kdir/.config" >"$dir/.config"
	echo "$dir"
}
fake=$(fake_tree otherrustc 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.78.0 (9b00956e5 2024-04-29)"/')
expect_match "KDIR built by another rustc: names both compilers" "built with 'rustc 1.78.0.*' but the module would be built with 'rustc" \
	bash -c "make -C '$root' --no-print-directory module KDIR='$fake' 2>&1; test \$? -ne 0"
# A tree of the other architecture: one line that names both, and nothing
# built. A copy of the x86_64 tree's files is enough for the check, with
# its .config saying arm64 for the second case.
expect_match "ARCH=arm64 with an x86_64 KDIR: names both architectures" \
	"KDIR=$kdir is configured for x86_64, but the module is being built for arm64" \
	bash -c "make -C '$root' --no-print-directory module ARCH=arm64 KDIR='$kdir' 2>&1; test \$? -ne 0"
armfake=$(fake_tree arm64tree 's/^CONFIG_X86_64=y$/CONFIG_ARM64=y/')
expect_match "an arm64 KDIR without ARCH: names both architectures" \
	"KDIR=$armfake is configured for arm64, but the module is being built for x86_64" \
	bash -c "make -C '$root' --no-print-directory module KDIR='$armfake' 2>&1; test \$? -ne 0"
# A tree for an architecture the project does not build for at all.
i386=$(fake_tree i386tree -e 's/^CONFIG_X86_64=y$/# CONFIG_X86_64 is not set/' -e '$a CONFIG_X86_32=y')
expect_match "an i386 KDIR: names it and the architectures the project builds" \
	"KDIR=$i386 is configured for i386, but the module is being built for x86_64 \\(ARCH=x86_64\\): pass a KDIR built for x86_64 \\(this project builds for x86_64 arm64 arm\\)" \
	bash -c "make -C '$root' --no-print-directory module KDIR='$i386' 2>&1; test \$? -ne 0"
expect_match "an unknown ARCH: says which are known" "unknown architecture 'sparc' \(known: x86_64 arm64 arm\)" \
	bash -c "make -C '$root' --no-print-directory module ARCH=sparc 2>&1; test \$? -ne 0"
check "make kdir prints the tree in use" bash -c "make -C '$root' --no-print-directory kdir 2>/dev/null | grep -qx '$kdir'"
finish
