#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The module's KUnit tests (every #[kunit_tests] module in the module's
# sources, each beside the code it tests), one result per test case: they
# run when the module is loaded and report in KTAP on the kernel log, which
# is parsed here.
# kernels: vm arm64 arm
. /tests/lib.sh

require "module file is there" "$MODULE"
dmesg_mark
check "insmod runs the KUnit suites" insmod "$MODULE" || finish
rmmod "$MODNAME"

# KTAP: each suite is "# Subtest: NAME", "1..N", then one "ok|not ok I CASE"
# per case (indented), then "ok|not ok J NAME" for the suite.
ktap=$(dmesg | sed 's/^\[[ 0-9.]*\] //')
suites=$(printf '%s\n' "$ktap" | sed -n 's/^ *# Subtest: \(rust_mapdrv_[a-z_]*\)$/\1/p')
check "the module has KUnit suites" test -n "$suites"
for suite in $suites; do
	# The suite's lines: from its Subtest header to its own result line.
	body=$(printf '%s\n' "$ktap" | awk -v s="$suite" '
		$0 ~ "# Subtest: " s "$" { on = 1; next }
		on && $0 ~ "^(not )?ok [0-9]+ " s "$" { exit }
		on { print }')
	plan=$(printf '%s\n' "$body" | sed -n 's/^ *1\.\.\([0-9]*\)$/\1/p' | head -n1)
	count=0
	# "ok 3 name" and "not ok 3 name", at the case's indentation.
	printf '%s\n' "$body" | sed -nE -e 's/^ +ok [0-9]+ ([a-z_0-9]+).*/ok \1/p' \
		-e 's/^ +not ok [0-9]+ ([a-z_0-9]+).*/not_ok \1/p' >/tmp/kunit-cases
	while read -r verdict name; do
		case $verdict in
		ok) pass "$suite.$name" ;;
		*) fail "$suite.$name" "KUnit says not ok: $(printf '%s\n' "$body" | grep -E "(Expected|ASSERT|$name)" | head -n 3 | tr '\n' ' ')" ;;
		esac
		count=$((count + 1))
	done </tmp/kunit-cases
	check "$suite ran all $plan cases it planned" test "$count" -eq "${plan:-0}"
done
finish
