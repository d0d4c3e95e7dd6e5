#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The project's shell scripts: they parse, carry the SPDX line and no URL,
# the initramfs builder is deterministic, make shell's VM runs a shell on
# its console, and tests/run.sh runs once per --out directory at a time.
# Environment (from tests/run.sh): MAPDRV_KERNEL, MAPDRV_TEST_WORK (a
# scratch directory).
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

# Bad input changes nothing: --icount is TCG's, and ICOUNT takes 1 or 0.
expect_match "run-vm.sh refuses --icount with --kvm on" 'cannot be used with --kvm on' \
	bash -c 'bash scripts/run-vm.sh --icount --kvm on -- true 2>&1; [ $? = 2 ]'
expect_match "make bench refuses an ICOUNT that is not 1 or 0" "ICOUNT takes 1 .* not 'yes'" \
	bash -c 'make --no-print-directory bench ICOUNT=yes 2>&1; [ $? = 2 ]'

# One test run per --out at a time: while one holds DIR (here flock(1)
# stands for it), a second stops with an error and leaves DIR's logs as
# they are, instead of emptying them under the first. (timeout: should the
# lock not hold, the second run must not go on to run this suite again.)
busy=$work/busy-out
rm -rf "$busy"
mkdir -p "$busy/logs"
echo "the first run's log" >"$busy/logs/first.log"
expect_match "a second tests/run.sh on the same --out stops with an error" \
	'another tests/run.sh is using .*busy-out' \
	flock "$busy/.lock" bash -c 'timeout 60 bash tests/run.sh --out "$1" host/docs 2>&1; [ $? = 1 ]' _ "$busy"
check "the second run leaves the first run's logs" grep -qx "the first run's log" "$busy/logs/first.log"
rm -rf "$busy"

# make shell's VM (run-vm.sh --shell): an interactive shell on the console,
# under a terminal (script(1) gives it one), whose exit status is the VM's.
# Typed only once the prompt is there, as a user would.
if [ -n "${MAPDRV_KERNEL:-}" ] && [ -f "$MAPDRV_KERNEL" ]; then
	typed=$work/shell.in said=$work/shell.out
	rm -f "$typed" "$said"
	mkfifo "$typed"
	script -qec "bash scripts/run-vm.sh --shell --timeout 300 --kernel '$MAPDRV_KERNEL'" /dev/null \
		<"$typed" >"$said" 2>&1 &
	vm=$!
	exec {keys}>"$typed"
	for _ in $(seq 300); do
		grep -aq 'mapdrv-vm:/# ' "$said" && break
		kill -0 "$vm" 2>/dev/null || break
		sleep 1
	done
	printf 'echo typed-$((6 * 7))\rexit 3\r' >&"$keys"
	shell_rc=0
	wait "$vm" || shell_rc=$?
	exec {keys}>&-
	check "run-vm.sh --shell runs what is typed at its prompt" grep -aq '^typed-42' "$said"
	check "run-vm.sh --shell ends with the shell's exit status" test "$shell_rc" = 3
	rm -f "$typed"
else
	fail "run-vm.sh --shell works" "no VM kernel (tests/run.sh --kernel)"
fi

# Every checkout builds the tool in the cache's one cargo target directory
# (scripts/build-tool.sh), where cargo gives the tool's crate the same units
# whatever the checkout, and takes them for fresh when no source file of the
# checkout at hand is newer than the last build, whoever made it. So a file
# edited in one checkout before another checkout builds must still reach
# the first checkout's binary: B's help text is changed, A builds, B builds.
if command -v "${CARGO:-cargo}" >/dev/null; then
	ck=$work/checkouts
	rm -rf "$ck"
	for c in a b; do
		mkdir -p "$ck/$c"
		tar -C . --exclude=userspace/target -cf - scripts userspace | tar -C "$ck/$c" -xf -
	done
	check "a help text is changed in checkout B" \
		sed -i 's/about = "Inspect and verify/about = "Checkout B inspects and verifies/' "$ck/b/userspace/src/main.rs"
	# The edit is older than A's build, as when B was edited first.
	touch -d '-1 min' "$ck/b/userspace/src/main.rs"
	check "checkout A builds the tool" bash "$ck/a/scripts/build-tool.sh" x86_64
	check "checkout B builds the tool" bash "$ck/b/scripts/build-tool.sh" x86_64
	expect_match "checkout B's tool has checkout B's source" '^Checkout B inspects' \
		"$ck/b/userspace/target/x86_64-unknown-linux-gnu/release/mapdrv" --help
	expect_no_match "checkout A's tool has checkout A's source" 'Checkout B' \
		"$ck/a/userspace/target/x86_64-unknown-linux-gnu/release/mapdrv" --help
	rm -rf "$ck"
else
	fail "two checkouts build their own tool" "no cargo on PATH"
fi
finish
