#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rustfmt the kernel's way for the module, cargo fmt for the userspace tool.
#
# Usage: scripts/check-style.sh [--fix]
#   Without --fix: report files that are not formatted, exit 1 if any.
source "$(dirname "$0")/lib.sh"

mode=--check
[ "${1:-}" = --fix ] && mode=

src=$(kernel_src_dir) || die "no kernel source: run scripts/setup.sh first"
# The module is formatted with Debian's rustfmt and the kernel tree's own
# .rustfmt.toml, exactly as 'make rustfmt' formats in-tree Rust code.
mapfile -t files < <(cd "$MAPDRV_ROOT" && git ls-files -co --exclude-standard -- '*.rs' ':!userspace')
status=0
(cd "$MAPDRV_ROOT" && "$KERNEL_RUSTFMT" --color "$([ -t 1 ] && [ -z "${NO_COLOR:-}" ] && echo auto || echo never)" --config-path "$src/.rustfmt.toml" $mode "${files[@]}") || status=1
(cd "$MAPDRV_ROOT/userspace" && cargo fmt --all ${mode:+-- --check}) || status=1
exit $status
