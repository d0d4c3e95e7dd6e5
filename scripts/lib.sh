# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for the rust-mapdrv scripts. Sourced, not run.
#
# Everything downloaded or built lives under $MAPDRV_CACHE, so a second run
# reuses it and `make distclean` removes it in one step.

set -euo pipefail

MAPDRV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MAPDRV_CACHE=${MAPDRV_CACHE:-$HOME/.cache/rust-mapdrv}
# Cargo's target directory for the tool (userspace/), shared by every clone
# on the machine: scripts/build-tool.sh and the host suites' cargo test and
# clippy compile the tool's dependencies once, not once per clone.
TOOL_CARGO_TARGET=$MAPDRV_CACHE/cargo-target

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
# Debian's cargo (cargo-web), the same version as rustc-web: it cross-builds
# the tool for arm64 and arm together with their standard library
# (scripts/build-tool.sh).
DEBIAN_CARGO=/usr/bin/cargo
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

# The architectures the project builds, boots and tests, in the order
# `make test` runs them. MAPDRV_ARCH (the Makefile's ARCH=) picks one;
# the kernel's own spellings are accepted too.
MAPDRV_ARCHES="x86_64 arm64 arm"

# mapdrv_arch [NAME]: NAME (default $MAPDRV_ARCH, else x86_64) as one of
# MAPDRV_ARCHES, or a one-line error naming those.
mapdrv_arch() {
	local a=${1:-${MAPDRV_ARCH:-x86_64}}
	case $a in
	x86_64 | x86 | amd64) echo x86_64 ;;
	arm64 | aarch64) echo arm64 ;;
	arm | armv7l | armhf) echo arm ;;
	*) die "unknown architecture '$a' (known: $MAPDRV_ARCHES)" ;;
	esac
}

# kernel_srcarch ARCH: the kernel's arch/ directory name (SRCARCH).
kernel_srcarch() {
	case $(mapdrv_arch "$1") in
	x86_64) echo x86 ;;
	arm64) echo arm64 ;;
	arm) echo arm ;;
	esac
}

# kernel_image_path ARCH: the bootable image inside a built tree.
kernel_image_path() {
	case $(mapdrv_arch "$1") in
	x86_64) echo arch/x86/boot/bzImage ;;
	arm64) echo arch/arm64/boot/Image ;;
	arm) echo arch/arm/boot/zImage ;;
	esac
}

# debian_arch ARCH: Debian's name for ARCH (amd64, arm64, armhf).
debian_arch() {
	case $(mapdrv_arch "$1") in
	x86_64) echo amd64 ;;
	arm64) echo arm64 ;;
	arm) echo armhf ;;
	esac
}

# host_arch: the architecture of this machine, as mapdrv_arch names it.
host_arch() { mapdrv_arch "$(uname -m)"; }

# foreign_dir ARCH: where scripts/setup.sh unpacks the Debian packages of an
# architecture other than the host's (busybox-static); see FOREIGN_PACKAGES
# there.
foreign_dir() { echo "$MAPDRV_CACHE/foreign/$(debian_arch "$1")"; }

# guest_busybox ARCH: the static busybox for ARCH's guest: the host's own
# (Debian's busybox-static) or the unpacked one of setup.sh.
guest_busybox() {
	if [ "$(mapdrv_arch "$1")" = "$(host_arch)" ]; then
		command -v busybox || echo /bin/busybox
	else
		echo "$(foreign_dir "$1")/bin/busybox"
	fi
}

# rust_target ARCH: the Rust target triple the mapdrv tool is built for.
rust_target() {
	case $(mapdrv_arch "$1") in
	x86_64) echo x86_64-unknown-linux-gnu ;;
	arm64) echo aarch64-unknown-linux-gnu ;;
	arm) echo armv7-unknown-linux-gnueabihf ;;
	esac
}

# c_target ARCH: the GNU triple of ARCH's C library (clang --target, and
# Debian's /usr/<triple> cross sysroot).
c_target() {
	case $(mapdrv_arch "$1") in
	x86_64) echo x86_64-linux-gnu ;;
	arm64) echo aarch64-linux-gnu ;;
	arm) echo arm-linux-gnueabihf ;;
	esac
}

# qemu_system ARCH: the QEMU system emulator for ARCH.
qemu_system() {
	case $(mapdrv_arch "$1") in
	x86_64) echo qemu-system-x86_64 ;;
	arm64) echo qemu-system-aarch64 ;;
	arm) echo qemu-system-arm ;;
	esac
}

# build_static_c ARCH OUT SRC [CFLAGS...]: a statically linked C program for
# ARCH's guest: the host's cc for the host, clang-19 with Debian's cross C
# library (libc6-dev-ARCH-cross) for another architecture (clang finds it,
# and the cross libgcc, under /usr/TRIPLE and /usr/lib/gcc-cross by itself).
build_static_c() {
	local arch out src triple
	arch=$(mapdrv_arch "$1") out=$2 src=$3
	shift 3
	if [ "$arch" = "$(host_arch)" ]; then
		cc -static "$@" -o "$out" "$src"
	else
		triple=$(c_target "$arch")
		clang$KERNEL_LLVM_SUFFIX --target="$triple" -fuse-ld=lld -static "$@" -o "$out" "$src"
	fi
}

# kernel_config_arch CONFIG: the architecture a kernel .config is for
# (x86_64, arm64, arm, or the kernel's own name for others: i386, riscv...).
kernel_config_arch() {
	local cfg=$1
	if grep -qx CONFIG_X86_64=y "$cfg"; then echo x86_64
	elif grep -qx CONFIG_X86_32=y "$cfg"; then echo i386
	elif grep -qx CONFIG_ARM64=y "$cfg"; then echo arm64
	elif grep -qx CONFIG_ARM=y "$cfg"; then echo arm
	elif grep -qx CONFIG_RISCV=y "$cfg"; then echo riscv
	else echo unknown
	fi
}

# Cache key of a kernel build: version + architecture + flavour + hash of
# the config fragments.
# Usage: kernel_build_dir FLAVOUR [ARCH]
kernel_build_dir() {
	local flavour=$1 arch ver hash
	arch=$(mapdrv_arch "${2:-}")
	kernel_src_dir >/dev/null || die "no kernel source yet: run scripts/setup.sh"
	ver=$(cat "$MAPDRV_CACHE/src/version")
	hash=$(kconfig_fragments "$flavour" "$arch" | xargs cat | sha256sum | cut -c1-12)
	echo "$MAPDRV_CACHE/build/linux-$ver-$arch-$flavour-$hash"
}

# kernel_image FLAVOUR [ARCH]: the cached kernel's bootable image (it may
# not be built yet).
kernel_image() {
	echo "$(kernel_build_dir "$1" "${2:-}")/$(kernel_image_path "${2:-}")"
}

# The config fragments of a flavour, in the order they are merged: what
# every VM kernel needs (vm.config), then the architecture's own
# (vm-ARCH.config), then the flavour's. The debug and gdb flavours are
# x86_64's: KASAN with Rust, and the gdb scripts, are only set up there.
# Usage: kconfig_fragments FLAVOUR [ARCH]
kconfig_fragments() {
	local arch dir=$MAPDRV_ROOT/scripts/kconfig
	arch=$(mapdrv_arch "${2:-}")
	case $1 in
	vm) echo "$dir/vm.config $dir/vm-$arch.config" ;;
	debug | gdb)
		[ "$arch" = x86_64 ] || die "the $1 kernel is built for x86_64 only, not $arch"
		echo "$dir/vm.config $dir/vm-$arch.config $dir/$1.config"
		;;
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

# The make arguments that every kernel-side build for ARCH (default
# $MAPDRV_ARCH) uses. ARCH is always given: a `make ARCH=arm64` above us
# passes its ARCH down to every make it starts, the x86_64 kernel's too.
kernel_make_args() {
	echo "ARCH=$(mapdrv_arch "${1:-}") LLVM=$KERNEL_LLVM_SUFFIX RUSTC=$KERNEL_RUSTC BINDGEN=$BINDGEN CLIPPY_DRIVER=$KERNEL_CLIPPY_DRIVER RUSTFMT=$KERNEL_RUSTFMT"
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
		elif ! head -n 3 "$dmesg" | grep -aq "Linux version "; then
			# (x86_64 prints it first; arm64 after "Booting Linux on physical CPU")
			echo "the guest's kernel log does not start at boot (its ring buffer wrapped): $dmesg"
		fi
		[ ! -f "$dmesg" ] || logs+=("$dmesg")
	fi
	[ ${#logs[@]} -eq 0 ] || kernel_reports "${logs[@]}"
}

# die_status STATUS "text": like die, but exit with STATUS.
die_status() { local s=$1; shift; printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; exit "$s"; }
