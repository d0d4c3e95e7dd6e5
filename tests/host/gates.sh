#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel-style and Rust gates on the host: rustfmt (the kernel tree's
# .rustfmt.toml for the module, cargo fmt for the tool), clippy on the module
# with the kernel's lint set (make CLIPPY=1) and on the tool, `// SAFETY:`
# comments on every unsafe block, unsafe only in the boundary files, SPDX
# headers, and the tool's unit tests.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

check "rustfmt: module and tool are formatted" bash scripts/check-style.sh

# The module with CLIPPY=1 in a scratch copy, so that the build in the tree
# (and its timestamps) is left alone; any warning fails the gate. On each
# architecture: its code under rust_mapdrv/arch/ is only compiled there.
work=${MAPDRV_TEST_WORK:-$(mktemp -d)}
# clippy_module ARCH KDIR
clippy_module() {
	local arch=$1 kdir=$2 p= kargs
	[ "$arch" = x86_64 ] || p="$arch "
	rm -rf "$work/clippy-$arch"
	(source scripts/lib.sh; copy_module_sources "$work/clippy-$arch")
	read -r -a kargs <<<"$(source scripts/lib.sh; kernel_make_args "$arch")"
	_run make --no-print-directory -C "$kdir" M="$work/clippy-$arch" "${kargs[@]}" CLIPPY=1 modules
	if [ "$_st" -ne 0 ]; then
		fail "${p}clippy: module builds with CLIPPY=1" "status $_st$(_said)"
	elif printf '%s\n' "$_out" | grep -qE '^(warning|error)'; then
		fail "${p}clippy: module has no warnings" "$(printf '%s\n' "$_out" | grep -E -A3 '^(warning|error)' | head -n 8 | tr '\n' ' ')"
	else
		pass "${p}clippy: module has no warnings"
	fi
}
# no_u64_decimal ARCH: a 32-bit kernel's module formats no 64-bit integer
# in decimal with core's code, which divides by 10^4 with a 64-bit
# division: on 32-bit ARM the runtime's __aeabi_uldivmod is a stub that
# traps (an oops on the first pr_info! of a u64). rust_mapdrv/decimal.rs is
# the way; this looks for references to the Display of u64, i64, u128 or
# i128 (v0 mangling: y, x, o, n), core's or the kernel crate's adapter for
# pr_*! (Adapter<&i64>), in the object clippy just built.
no_u64_decimal() {
	local arch=$1 obj=$work/clippy-$1/rust_mapdrv.o refs
	if [ ! -f "$obj" ]; then
		fail "$arch module formats no u64 in decimal with core's division" "no object at $obj"
		return
	fi
	refs=$(llvm-readelf-19 -r "$obj" | grep -oE '_R[A-Za-z0-9_]*(4core3fmt3num3imp[xyno]Nt|6kernel3fmtINtB5_7AdapterR+[xyno]E)[A-Za-z0-9_]*Display3fmt[A-Za-z0-9_]*' | sort -u)
	if [ -z "$refs" ]; then
		pass "$arch module formats no u64 in decimal with core's division"
	else
		fail "$arch module formats no u64 in decimal with core's division" \
			"references $(printf '%s' "$refs" | tr '\n' ' '): format through decimal::Decimal"
	fi
}
clippy_module x86_64 "$(bash scripts/build-module.sh --arch x86_64 --print-kdir 2>/dev/null)"
if [ -n "${MAPDRV_ARM64_KERNEL:-}" ]; then
	clippy_module arm64 "${MAPDRV_ARM64_KERNEL%/arch/arm64/boot/Image}"
else
	skip "arm64 clippy: module has no warnings" "no arm64 kernel given (make test without ARCH gives it)"
fi
if [ -n "${MAPDRV_ARM_KERNEL:-}" ]; then
	clippy_module arm "${MAPDRV_ARM_KERNEL%/arch/arm/boot/zImage}"
	no_u64_decimal arm
else
	skip "arm clippy: module has no warnings" "no arm kernel given (make test without ARCH gives it)"
fi

check "clippy: tool has no warnings" \
	bash -c 'cd userspace && cargo clippy --quiet --locked --all-targets -- -D warnings'

# Every unsafe block in kernel code is argued for in a SAFETY comment right
# above it (comment lines may continue the argument), every unsafe fn
# documents its contract in a "# Safety" section.
unsafe_report=$(git ls-files -- '*.rs' ':!userspace' | xargs awk '
	FNR == 1 { last = -10; doc = -10 }
	/\/\/ SAFETY:/ { last = FNR }
	/^[ \t]*\/\// && last == FNR - 1 { last = FNR; next }
	/^[ \t]*\/\/\/ # Safety/ { doc = FNR }
	/unsafe[ ]*\{/ && $0 !~ /^[ \t]*\/\// && FNR - last > 2 { print FILENAME ":" FNR ": unsafe block without SAFETY comment" }
	/unsafe (extern "C" )?fn / && $0 !~ /^[ \t]*\/\// && FNR - doc > 12 { print FILENAME ":" FNR ": unsafe fn without # Safety section" }
')
if [ -z "$unsafe_report" ]; then
	pass "every unsafe block has a SAFETY comment and every unsafe fn a Safety section"
else
	fail "every unsafe block has a SAFETY comment and every unsafe fn a Safety section" "$(_oneline "$unsafe_report")"
fi

# Unsafe code only in the named boundary files (scripts/check-unsafe.sh); a
# copy with an unsafe block added to a file outside them shows the gate bites.
check "unsafe appears only in the boundary files" bash scripts/check-unsafe.sh
rm -rf "$work/unsafe"
(source scripts/lib.sh; copy_module_sources "$work/unsafe")
printf '\nfn f() {\n    unsafe { core::hint::unreachable_unchecked() }\n}\n' >>"$work/unsafe/rust_mapdrv/contract.rs"
_run bash scripts/check-unsafe.sh "$work/unsafe"
if [ "$_st" -ne 0 ] && printf '%s\n' "$_out" | grep -q '^rust_mapdrv/contract.rs:[0-9]*: '; then
	pass "the unsafe gate fails on unsafe outside the boundary files, naming the line"
else
	fail "the unsafe gate fails on unsafe outside the boundary files, naming the line" "status $_st$(_said)"
fi

missing_spdx=$(git ls-files -- '*.rs' '*.sh' '*.c' '*.h' Makefile Kbuild 'scripts/guest/*' '.ci/*' |
	while read -r f; do head -n 3 "$f" | grep -q 'SPDX-License-Identifier' || echo "$f"; done)
if [ -z "$missing_spdx" ]; then
	pass "every source file has an SPDX header"
else
	fail "every source file has an SPDX header" "$(_oneline "$missing_spdx")"
fi

# The module's documentation builds without warnings, and the editor support
# file names the module's crate.
_run bash scripts/rustdoc.sh "$work/rustdoc"
if [ "$_st" -ne 0 ] || [ ! -f "$work/rustdoc/rust_mapdrv/index.html" ]; then
	fail "rustdoc: module documentation builds" "status $_st$(_said)"
elif printf '%s\n' "$_out" | grep -q '^warning'; then
	fail "rustdoc: module documentation has no warnings" "$(_said)"
else
	pass "rustdoc: module documentation builds without warnings"
fi
check "rust-analyzer: rust-project.json lists the module crate" bash -c \
	"make --no-print-directory rust-analyzer >/dev/null 2>&1 && python3 -c '
import json, sys
crates = json.load(open(\"rust-project.json\"))[\"crates\"]
sys.exit(0 if any(c[\"display_name\"] == \"rust_mapdrv\" and c[\"root_module\"].endswith(\"rust_mapdrv.rs\") for c in crates) else 1)'"

_run bash -c 'cd userspace && cargo test --quiet --locked 2>&1'
summary=$(printf '%s\n' "$_out" | grep -E '^test result:' | tail -n 3 | tr '\n' ' ')
if [ "$_st" -eq 0 ] && printf '%s\n' "$_out" | grep -qE '^test result: ok\. [1-9][0-9]* passed'; then
	pass "cargo test: the tool's unit tests pass"
	note "cargo test: $summary"
else
	fail "cargo test: the tool's unit tests pass" "status $_st: $summary$(_said)"
fi
finish
