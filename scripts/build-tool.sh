#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the mapdrv tool (userspace/) for ARCH's guest, a statically linked
# release binary, and print its path on stdout.
#
# Usage: scripts/build-tool.sh [ARCH]
#   ARCH  x86_64, arm64 or arm (default $MAPDRV_ARCH, the Makefile's ARCH=, else
#         x86_64)
#
# The binary is userspace/target/<rust_target ARCH>/release/mapdrv.
#
# Cargo builds in $MAPDRV_CACHE/cargo-target and the binary is copied into
# the tree: the tool's dependencies (clap, serde, plotters, nix, rand...)
# are compiled once per machine and architecture, not once per clone, which
# took a fresh clone's `make test` about a minute per architecture. Cargo
# gives the tool's own crate the same units in every clone, and takes them
# for fresh when no source file of the clone at hand is newer than the last
# build, which another clone may have made after this one's last edit: so
# when the last build for a target came from another clone (a stamp in the
# target directory says which), the tool's crate alone is cleaned first.
#
# The host's own architecture is built as `cargo build` in userspace/ does:
# the cargo and rustc first on PATH (rustup's), with the static linking of
# userspace/.cargo/config.toml.
#
# arm64 and arm on an x86_64 host are cross-built: there is no rustup
# target for aarch64 or armv7 here, so Debian's cargo and rustc (cargo-web,
# rustc-web) build the tool together with the standard library for ARCH,
# from the standard library's source that Debian ships for the same rustc
# (rust-web-src, installed from the host's own apt sources): cargo's
# build-std, an unstable feature, which RUSTC_BOOTSTRAP=1 opens to this
# stable toolchain. The standard library's own dependencies come from
# crates.io as locked by its Cargo.lock. (Debian's prebuilt
# libstd-rust-web-dev:arm64/:armhf would do too, but they come from another
# architecture's package index, which the mirror may not serve consistently:
# armhf's bookworm-security index did not match its Release file for hours.)
# clang-19 links with lld against Debian's cross C library
# (libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross, and their armhf twins).
# The units of one rustc never replace the other's (cargo keys them by the
# rustc version), so the builds for every architecture share one target
# directory and neither rebuilds because of the other; the standard library
# is built once per architecture and machine.
source "$(dirname "$0")/lib.sh"

[ $# -le 1 ] || die "usage: scripts/build-tool.sh [x86_64|arm64|arm]"
arch=$(mapdrv_arch "${1:-}")
host=$(host_arch)
target=$(rust_target "$arch")
cargo=${CARGO:-cargo}
userspace=$MAPDRV_ROOT/userspace
binary=$userspace/target/$target/release/mapdrv
target_dir=$TOOL_CARGO_TARGET
built=$target_dir/$target/release/mapdrv

command -v "$cargo" >/dev/null ||
	die "no $cargo on PATH: install Rust (rustup) to build the mapdrv tool"

stamp=$target_dir/mapdrv-built-from-$target
if [ "$(cat "$stamp" 2>/dev/null)" != "$userspace" ] && [ -d "$target_dir/$target" ]; then
	clean_cargo=$cargo
	[ "$arch" = "$host" ] || clean_cargo=$DEBIAN_CARGO
	(cd "$userspace" && "$clean_cargo" clean --quiet --release --target "$target" --target-dir "$target_dir" -p mapdrv) >&2 ||
		die "cannot clean another clone's build of the mapdrv tool in $target_dir"
fi

if [ "$arch" = "$host" ]; then
	(cd "$userspace" && "$cargo" build --quiet --release --locked --target "$target" --target-dir "$target_dir") >&2 ||
		die "building the mapdrv tool for $arch failed (cargo's errors are above)"
elif [ "$arch" != x86_64 ] && [ "$host" = x86_64 ]; then
	triple=$(c_target "$arch")
	clang=clang$KERNEL_LLVM_SUFFIX
	[ -x "$KERNEL_RUSTC" ] || die "no $KERNEL_RUSTC (Debian's rustc-web): run scripts/setup.sh"
	[ -x "$DEBIAN_CARGO" ] || die "no $DEBIAN_CARGO (Debian's cargo-web): run scripts/setup.sh"
	std_src=$("$KERNEL_RUSTC" --print sysroot)/lib/rustlib/src/rust/library
	[ -f "$std_src/Cargo.lock" ] ||
		die "no Rust standard library source in $std_src (Debian's rust-web-src): run scripts/setup.sh"
	rustc_version=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null)
	src_version=$(dpkg-query -W -f='${Version}' rust-web-src 2>/dev/null)
	[ "$rustc_version" = "$src_version" ] ||
		die "rust-web-src ${src_version:-is not installed} but rustc-web is $rustc_version: the standard library source must be the compiler's own (apt-get install rust-web-src=$rustc_version)"
	command -v "$clang" >/dev/null || die "no $clang: run scripts/setup.sh"
	command -v "ld.lld$KERNEL_LLVM_SUFFIX" >/dev/null || die "no ld.lld$KERNEL_LLVM_SUFFIX (package lld-19): run scripts/setup.sh"
	[ -f "/usr/$triple/lib/libc.a" ] ||
		die "no /usr/$triple/lib/libc.a (package libc6-dev-$(debian_arch "$arch")-cross): run scripts/setup.sh"
	compgen -G "/usr/lib/gcc-cross/$triple/*/libgcc_eh.a" >/dev/null ||
		die "no libgcc_eh.a in /usr/lib/gcc-cross/$triple (package libgcc-12-dev-$(debian_arch "$arch")-cross): run scripts/setup.sh"
	# clang finds Debian's cross C library (/usr/$triple) and the GCC start
	# files and libgcc_eh (/usr/lib/gcc-cross/$triple) by itself from
	# --target; a --sysroot=/usr/$triple would hide the latter.
	env_name=CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)
	(cd "$userspace" &&
		env RUSTC="$KERNEL_RUSTC" RUSTC_BOOTSTRAP=1 \
			"${env_name}_LINKER=$clang" \
			"${env_name}_RUSTFLAGS=-C link-arg=--target=$triple -C link-arg=-fuse-ld=lld" \
			"$DEBIAN_CARGO" build --quiet --release --locked -Zbuild-std=std,panic_abort \
			--target "$target" --target-dir "$target_dir") >&2 ||
		die "cross-building the mapdrv tool for $arch failed (cargo's errors are above)"
else
	die "building the mapdrv tool for $arch on a $host host is not set up (only the host's own architecture, and arm64 and arm on x86_64)"
fi

[ -x "$built" ] || die "cargo succeeded but there is no $built"
echo "$userspace" >"$stamp"
install -D -p -m 755 "$built" "$binary" || die "cannot copy $built to $binary"
# The guest has no shared libraries: the binary must be static, and for ARCH.
if command -v file >/dev/null; then
	case $arch in
	x86_64) machine=x86-64 ;;
	arm64) machine=aarch64 ;;
	arm) machine="ARM, EABI5" ;;
	esac
	desc=$(file -b "$binary")
	[[ $desc == *"$machine"* && $desc == *"statically linked"* ]] ||
		die "$binary is not a statically linked $arch executable: $desc"
fi
echo "$binary"
