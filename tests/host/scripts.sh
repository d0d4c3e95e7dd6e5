#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The project's shell scripts: they parse, carry the SPDX line and no URL,
# and the initramfs builder is deterministic.
# Environment (from tests/run.sh): MAPDRV_TEST_WORK, a scratch directory.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
cd "$(dirname "$0")/../.." || exit 1

mapfile -t bash_scripts < <(ls scripts/*.sh tests/run.sh tests/host/*.sh)
mapfile -t sh_scripts < <(ls scripts/guest/* tests/guest/*.sh)

# each_file NAME TEST FILE...: TEST FILE succeeds for every FILE.
each_file() {
	local name=$1 test=$2 f bad=()
	shift 2
	for f in "$@"; do
		$test "$f" >/dev/null 2>&1 || bad+=("$f")
	done
	if [ ${#bad[@]} = 0 ]; then
		pass "$name"
	else
		fail "$name" "not in: ${bad[*]}"
	fi
}
bash_parses() { bash -n "$1"; }
sh_parses() { busybox sh -n "$1"; }
has_spdx() { head -n 3 "$1" | grep -q 'SPDX-License-Identifier: GPL-2.0'; }
has_no_url() { ! grep -qE '[a-z]+://' "$1"; }

each_file "bash scripts parse (bash -n)" bash_parses "${bash_scripts[@]}"
each_file "guest scripts parse (busybox sh -n)" sh_parses "${sh_scripts[@]}"
each_file "scripts carry the SPDX line" has_spdx "${bash_scripts[@]}" "${sh_scripts[@]}" tests/helpers/*.c
each_file "scripts have no URL" has_no_url "${bash_scripts[@]}" "${sh_scripts[@]}" tests/helpers/*.c

work=${MAPDRV_TEST_WORK:-$(mktemp -d)}
a=$work/a.cpio.gz b=$work/b.cpio.gz
check "mkinitramfs builds an archive" bash scripts/mkinitramfs.sh --cmd true "$a" tests/guest:/tests
check "mkinitramfs builds it again" bash scripts/mkinitramfs.sh --cmd true "$b" tests/guest:/tests
check "mkinitramfs output is deterministic" cmp "$a" "$b"
listing=$(zcat "$a" | cpio -it --quiet)
for path in init bin/busybox bin/sh dev/console etc/mapdrv-cmd tests/lib.sh; do
	check "initramfs has $path" grep -qx "$path" <<<"$listing"
done
finish
