# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for the rust-mapdrv scripts. Sourced, not run.
#
# Everything downloaded or built lives under $MAPDRV_CACHE, so a second run
# reuses it and `make distclean` removes it in one step.

set -euo pipefail

MAPDRV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MAPDRV_CACHE=${MAPDRV_CACHE:-$HOME/.cache/rust-mapdrv}

# The kernel we build against: Debian's linux-source package from this suite.
KERNEL_SERIES=${KERNEL_SERIES:-7.3}
KERNEL_SUITE=${KERNEL_SUITE:-trixie-backports}
BINDGEN_VERSION=0.72.1

# Debian's Rust toolchain (rustc-web) builds the kernel side. The rustup
# toolchain that may come first on PATH has no rust-src, and a kernel crate
# built by one rustc cannot be read by another, so name the tools explicitly.
KERNEL_RUSTC=/usr/bin/rustc
KERNEL_CLIPPY_DRIVER=/usr/bin/clippy-driver
KERNEL_RUSTFMT=/usr/bin/rustfmt
KERNEL_LLVM_SUFFIX=-19
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
BINDGEN=$MAPDRV_CACHE/tools/bindgen-$BINDGEN_VERSION/bin/bindgen

# Colour only for people: not in CI, not when piped, not with NO_COLOR.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ] && [ "${CI:-}" != true ]; then
	_c_bold=$'\e[1m' _c_red=$'\e[31m' _c_off=$'\e[0m'
else
	_c_bold='' _c_red='' _c_off=''
fi

_t0=${MAPDRV_T0:-$(date +%s)}
export MAPDRV_T0=$_t0

# stage "text": a progress line with the elapsed time since the run began.
stage() { printf '%s[%4ss] %s%s\n' "$_c_bold" "$(($(date +%s) - _t0))" "$*" "$_c_off" >&2; }
info() { printf '       %s\n' "$*" >&2; }
die() { printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; exit 1; }

# run_logged LOG CMD...: run CMD with its output in LOG; on failure print the
# tail of LOG and where the rest is, then fail.
run_logged() {
	local log=$1; shift
	mkdir -p "$(dirname "$log")"
	if ! "$@" >"$log" 2>&1; then
		printf '%s--- last 40 lines of %s ---%s\n' "$_c_red" "$log" "$_c_off" >&2
		tail -n 40 "$log" >&2
		die "command failed: $* (full log: $log)"
	fi
}

# The unpacked kernel source recorded by setup.sh.
kernel_src_dir() {
	local f=$MAPDRV_CACHE/src/current
	[ -f "$f" ] || return 1
	cat "$f"
}

# The version of the unpacked kernel source, e.g. 7.3.4.
kernel_version() { make -s -C "$1" kernelversion 2>/dev/null; }

# Cache key of a kernel build: version + flavour + hash of the config fragments.
# Usage: kernel_build_dir FLAVOUR
kernel_build_dir() {
	local flavour=$1 src ver hash
	src=$(kernel_src_dir) || die "no kernel source yet: run scripts/setup.sh"
	ver=$(cat "$MAPDRV_CACHE/src/version")
	hash=$(kconfig_fragments "$flavour" | xargs cat | sha256sum | cut -c1-12)
	echo "$MAPDRV_CACHE/build/linux-$ver-$flavour-$hash"
}

# The config fragments of a flavour, in the order they are merged.
kconfig_fragments() {
	case $1 in
	vm) echo "$MAPDRV_ROOT/scripts/kconfig/vm.config" ;;
	debug) echo "$MAPDRV_ROOT/scripts/kconfig/vm.config $MAPDRV_ROOT/scripts/kconfig/debug.config" ;;
	gdb) echo "$MAPDRV_ROOT/scripts/kconfig/vm.config $MAPDRV_ROOT/scripts/kconfig/gdb.config" ;;
	*) die "unknown kernel flavour '$1' (known: vm, debug, gdb)" ;;
	esac
}

# module_sources: the files Kbuild compiles into rust_mapdrv.ko, one per line,
# relative to the root: Kbuild, the module's Rust sources and headers, and the
# ABI header the module is generated from, which lives with the tool's
# sources for C users.
module_sources() {
	(cd "$MAPDRV_ROOT" && {
		git ls-files -co --exclude-standard -- Kbuild '*.rs' '*.h' ':!userspace'
		git ls-files -co --exclude-standard -- userspace/include
	})
}

# copy_module_sources DIR: those files into DIR (made if missing), with their
# times, to build the module there with objects of its own.
copy_module_sources() {
	local dest
	dest=$(mkdir -p "$1" && cd "$1" && pwd)
	module_sources | (cd "$MAPDRV_ROOT" && cpio -pdmu --quiet "$dest")
}

# The make arguments that every kernel-side build uses.
kernel_make_args() {
	echo "LLVM=$KERNEL_LLVM_SUFFIX RUSTC=$KERNEL_RUSTC BINDGEN=$BINDGEN CLIPPY_DRIVER=$KERNEL_CLIPPY_DRIVER RUSTFMT=$KERNEL_RUSTFMT"
}

# kernel_reports LOG...: the lines of kernel logs (a VM's console, or a
# guest's dmesg: both have "[    1.234567] " timestamps) that show a kernel
# problem, at most 5, or nothing. The one list of what "the kernel log is
# clean" means (tests/run.sh, scripts/check-kernel-log.sh): WARNING:, BUG:
# (KASAN, KFENCE, "sleeping function called from invalid context", bad page
# state...), kernel BUG at, INFO: (lockdep), UBSAN:, Oops, Call Trace, Kernel
# panic, RCU stalls, hung tasks, kmemleak reports, a fault handler's
# VM_FAULT_OOM without a real out-of-memory ("Huh VM_FAULT_OOM leaked out to
# the #PF handler", and its "pagefault_out_of_memory: N callbacks
# suppressed"), failed KUnit tests,
# "Tainted:" flags but G, O and N, "taints kernel" lines but those of an
# out-of-tree or a test module.
kernel_reports() {
	local ts='\[ *[0-9]+\.[0-9]+\] '
	{
		grep -ahE "$ts.*(WARNING:|BUG:|kernel BUG at|INFO: |UBSAN:|Oops|Call Trace|Kernel panic|general protection fault|detected stalls?|blocked for more than|suspected memory leaks?|VM_FAULT_OOM leaked|pagefault_out_of_memory: )" "$@"
		grep -ahE "$ts +not ok [0-9]" "$@" | sed 's/$/ (a failed KUnit test)/'
		grep -ahE "${ts}.*taints kernel" "$@" | grep -avE '(out-of-tree|test) module taints kernel'
		# "Tainted: G     O N 7.3.4" or "Tainted: [O]=OOT_MODULE, [N]=TEST"
		grep -ahE "${ts}.*Tainted: ([A-Z ]*[A-FH-MP-Z]|.*\[[^ON]\]=)" "$@"
	} | awk '!seen[$0]++' | head -n 5 || true
}

# The line that scripts/guest/init writes after the guest's dmesg on the
# port of scripts/run-vm.sh --kernel-log.
KERNEL_LOG_END=MAPDRV-KERNEL-LOG-END

# kernel_log_problems [--dmesg FILE] [LOG...]: kernel_reports over FILE and
# the LOGs (console logs), and first a line when FILE, a guest's whole
# kernel log as scripts/run-vm.sh --kernel-log brought it home, cannot be
# trusted to be whole: missing, without its end line (the VM ended before
# /init sent it all) or not starting at boot (the ring buffer wrapped).
# Prints nothing when all is clean.
kernel_log_problems() {
	local dmesg= logs=()
	if [ "${1:-}" = --dmesg ]; then
		dmesg=$2
		shift 2
	fi
	logs=("$@")
	if [ -n "$dmesg" ]; then
		if [ ! -s "$dmesg" ]; then
			echo "no kernel log came back from the guest ($dmesg is empty or missing: did the VM end early?)"
		elif ! grep -aqx "$KERNEL_LOG_END" "$dmesg"; then
			echo "the guest's kernel log is cut short (no $KERNEL_LOG_END line in $dmesg)"
		elif [[ $(head -n 1 "$dmesg") != *"Linux version "* ]]; then
			echo "the guest's kernel log does not start at boot (its ring buffer wrapped): $dmesg"
		fi
		[ ! -f "$dmesg" ] || logs+=("$dmesg")
	fi
	[ ${#logs[@]} -eq 0 ] || kernel_reports "${logs[@]}"
}

# die_status STATUS "text": like die, but exit with STATUS.
die_status() { local s=$1; shift; printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; exit "$s"; }
