#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Unsafe Rust in the module stays in its boundary files, each of which wraps
# one kernel facility behind a safe interface; everywhere else the compiler
# checks everything. Prints each `unsafe` outside them as FILE:LINE: TEXT and
# fails if there is one.
#
# Usage: scripts/check-unsafe.sh [DIR]   (the module's sources; default: this tree)
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)}

# The boundary files (patterns), and the facility each one wraps.
boundaries=(
	vmalloc_util.rs                 # the vmalloc buffer and its vmalloc_to_page table
	rust_mapdrv/vm_ops.rs           # vm_operations_struct: fault handlers, page insertion
	rust_mapdrv/registration.rs     # the misc device registration and the device it opens
	rust_mapdrv/owned_debugfs.rs    # debugfs files whose fops pin the module
	rust_mapdrv/sched.rs            # cond_resched
	rust_mapdrv/demo/alloc.rs       # the raw page, slab and kmalloc allocators of the demo
	rust_mapdrv/highmem.rs          # page_address, zones, kmap_local_page, kmap_high
	rust_mapdrv/decimal.rs          # 64-bit division on a 32-bit kernel (div64_u64)
	# The kernel globals every architecture reads alike (high_memory,
	# totalram_pages), an architecture's page tables and control registers
	# (x86_64: CR3, CR4; arm64: TCR_EL1, TTBR1_EL1, the MMU's AT S1E1R; arm:
	# TTBR0, TTBCR, ATS1CPR), and its own kernel globals (x86_64: the layout
	# bases and physical mask; arm64: memstart_addr, kimage_voffset; arm:
	# __pv_phys_pfn_offset, mem_map): arch/x86_64/, arch/arm64/ and arch/arm/
	# alike.
	rust_mapdrv/arch/globals.rs
	'rust_mapdrv/arch/*/pgtable.rs'
	'rust_mapdrv/arch/*/globals.rs'
)

cd "$dir"
# The module's Rust sources: tracked or new files in a git tree (not build/
# copies or generated code, which git ignores), every file in a plain copy.
sources() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -co --exclude-standard -- '*.rs' ':!userspace'
	else
		find . -name '*.rs' ! -path './userspace/*' ! -name 'uapi_generated.rs' -printf '%P\n'
	fi
}
found=$(sources | sort |
	while read -r f; do
		for b in "${boundaries[@]}"; do
			# shellcheck disable=SC2053 # $b is a pattern
			[[ $f == $b ]] && continue 2
		done
		# Code only: comments are cut off first (doc text may say "unsafe").
		awk '{ line = $0; sub(/\/\/.*/, "", line) } line ~ /(^|[^A-Za-z0-9_])unsafe([^A-Za-z0-9_]|$)/ {
			print FILENAME ":" FNR ": " $0 }' "$f"
	done)
if [ -n "$found" ]; then
	echo "unsafe outside the boundary files (${boundaries[*]}):" >&2
	printf '%s\n' "$found" >&2
	exit 1
fi
