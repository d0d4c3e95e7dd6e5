#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the module's documentation with rustdoc, private items included.
#
# The kernel's own `make rustdoc` documents only the kernel crates, so this
# runs rustdoc with exactly the flags Kbuild gave rustc for the module (read
# from .rust_mapdrv.o.cmd, which `make module` writes), minus the flags that
# only mean something to code generation and clippy.
#
# Usage: scripts/rustdoc.sh [OUTDIR]   (default $MAPDRV_CACHE/doc)
source "$(dirname "$0")/lib.sh"

out=${1:-$MAPDRV_CACHE/doc}
cmdfile=$MAPDRV_ROOT/.rust_mapdrv.o.cmd
[ -f "$cmdfile" ] || die "no $cmdfile: build the module first (make module)"
cmd=$(sed -n 's/^savedcmd_rust_mapdrv.o := //p' "$cmdfile")
cmd=${cmd%% ; *}
# "VAR=value ... /path/to/rustc ARGS": keep the environment, swap the tool.
env_part=${cmd%%"$KERNEL_RUSTC"*}
args=${cmd#*"$KERNEL_RUSTC "}
[ "$args" != "$cmd" ] || die "the module was not built with $KERNEL_RUSTC (see $cmdfile)"
args=$(sed -E -e 's/-Zbinary_dep_depinfo=y|--crate-type rlib|--out-dir [^ ]+|--emit=[^ ]+//g' \
	-e 's/-[WA]clippy::[a-z_]+//g' -e 's/-Cembed-bitcode=n|-Clto=n//g' <<<"$args")
rm -rf "$out"
mkdir -p "$out"
stage "rustdoc: documenting rust_mapdrv (private items included)"
(cd "$MAPDRV_ROOT" && eval "env RUSTC_BOOTSTRAP=1 $env_part ${KERNEL_RUSTC%rustc}rustdoc $args \
	--document-private-items -Arustdoc::private_intra_doc_links -o '$out'")
info "open $out/rust_mapdrv/index.html"
