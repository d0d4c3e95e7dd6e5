#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build rust_mapdrv.ko out of tree against a kernel tree.
#
# Usage: scripts/build-module.sh [--kdir DIR | --flavour F] [--copy-to DIR]
#                                [--print-kdir] [KBUILD ARGS...]
#   --kdir DIR     a built, Rust-enabled kernel tree (default: the cached VM
#                  kernel, set up and built first if missing)
#   --flavour F    the project's kernel of flavour F (vm, debug, gdb; see
#                  scripts/build-kernel.sh), built first if missing
#   --arch ARCH    the architecture to build for (x86_64, arm64 or arm; default
#                  $MAPDRV_ARCH, the Makefile's ARCH=, else x86_64); a KDIR
#                  configured for another architecture is refused
#   --copy-to DIR  build a copy of the module's sources in DIR, so that the
#                  objects for another kernel do not replace the tree's own
#                  (the module is then DIR/rust_mapdrv.ko)
#   --print-kdir   only print the tree that would be used
# Extra arguments go to the kernel's make (e.g. CLIPPY=1, clean).
source "$(dirname "$0")/lib.sh"

kdir=
flavour=vm
arch=
copy_to=
print_only=false
while [ $# -gt 0 ]; do
	case $1 in
	--kdir) kdir=${2:?--kdir needs a directory}; shift 2 ;;
	--flavour) flavour=${2:?--flavour needs a name}; shift 2 ;;
	--arch) arch=${2:?--arch needs a name}; shift 2 ;;
	--copy-to) copy_to=${2:?--copy-to needs a directory}; shift 2 ;;
	--print-kdir) print_only=true; shift ;;
	*) break ;;
	esac
done

arch=$(mapdrv_arch "$arch")
if [ -z "$kdir" ]; then
	bash "$MAPDRV_ROOT/scripts/setup.sh" >&2
	kdir=$(bash "$MAPDRV_ROOT/scripts/build-kernel.sh" "$flavour" "$arch")
fi

# A user's tree must be one the module can build against: configured and
# built with Rust, by the same rustc (a crate's metadata is only readable by
# the compiler that wrote it).
[ -d "$kdir" ] || die "KDIR=$kdir: no such directory"
kdir=$(cd "$kdir" && pwd)
[ -f "$kdir/Makefile" ] || die "KDIR=$kdir is not a kernel tree (no Makefile)"
[ -f "$kdir/.config" ] || die "KDIR=$kdir is not configured (no .config): run 'make defconfig' or similar there"
# The tree's architecture must be the one asked for: a module built by
# ARCH=arm64 against an x86_64 tree (or the reverse) fails deep in Kbuild.
tree_arch=$(kernel_config_arch "$kdir/.config")
if [ "$tree_arch" != "$arch" ]; then
	case " $MAPDRV_ARCHES " in
	*" $tree_arch "*) hint="pass a KDIR built for $arch, or ARCH=$tree_arch" ;;
	*) hint="pass a KDIR built for $arch (this project builds for $MAPDRV_ARCHES)" ;;
	esac
	die "KDIR=$kdir is configured for $tree_arch, but the module is being built for $arch (ARCH=$arch): $hint"
fi
grep -qx 'CONFIG_RUST=y' "$kdir/.config" ||
	die "KDIR=$kdir is built without Rust (CONFIG_RUST is not set): enable CONFIG_RUST and rebuild it, or leave KDIR unset to use the project's kernel"
grep -qx 'CONFIG_MODULES=y' "$kdir/.config" || die "KDIR=$kdir has no module support (CONFIG_MODULES is not set)"
[ -f "$kdir/rust/libkernel.rmeta" ] ||
	die "KDIR=$kdir has no Rust metadata (rust/libkernel.rmeta): build the tree first ('make LLVM=1' there)"
[ -f "$kdir/Module.symvers" ] || die "KDIR=$kdir is not fully built (no Module.symvers): run make there first"
tree_rustc=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config")
our_rustc=$("$KERNEL_RUSTC" --version 2>/dev/null || true)
[ -n "$our_rustc" ] || die "$KERNEL_RUSTC not found: run scripts/setup.sh (Debian package rustc-web)"
[ "$tree_rustc" = "$our_rustc" ] ||
	die "KDIR=$kdir was built with '$tree_rustc' but the module would be built with '$our_rustc' ($KERNEL_RUSTC); a kernel crate can only be used by the rustc that built it"

if $print_only; then
	echo "$kdir"
	exit 0
fi

src=$MAPDRV_ROOT
if [ -n "$copy_to" ]; then
	# The sources the tree's Kbuild compiles, with their times (so that make
	# rebuilds only what changed), into a directory with its own objects.
	copy_module_sources "$copy_to"
	src=$(cd "$copy_to" && pwd)
fi

read -r -a make_args <<<"$(kernel_make_args "$arch")"
stage "building rust_mapdrv.ko for $arch against $kdir${copy_to:+ in $copy_to}"
make --no-print-directory -C "$kdir" M="$src" "${make_args[@]}" "${@:-modules}"
