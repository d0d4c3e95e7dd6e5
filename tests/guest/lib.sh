# SPDX-License-Identifier: GPL-2.0
# Helpers for the test suites, in plain POSIX sh: sourced by tests/guest/*.sh
# in the VM (busybox sh) and by tests/host/*.sh on the host (bash).
#
# A suite prints one line per check, which tests/run.sh collects:
#   PASS: <name>
#   FAIL: <name>: <reason>
#   SKIP: <name>: <why it does not apply here> (counted as skipped)
# A name says what is checked, stays the same from run to run (put measured
# values into the reason or into "# ..." lines) and has no colon in it.
# A suite ends with `finish`, which exits non-zero when a check failed.
#
# In the VM (see tests/run.sh): the module is $MODULE, the mapdrv tool is
# /bin/mapdrv, the suites and this file are in /tests, test helpers built
# from tests/helpers/*.c are in /bin.

MODULE=${MODULE:-/lib/modules/rust_mapdrv.ko}
MODNAME=rust_mapdrv
T_PASSED=0
T_FAILED=0

pass() {
	T_PASSED=$((T_PASSED + 1))
	echo "PASS: $1"
}

# fail NAME REASON
fail() {
	T_FAILED=$((T_FAILED + 1))
	echo "FAIL: $1: $2"
}

# skip NAME WHY: the check NAME does not apply on this machine (an x86_64
# fact on arm64, say); tests/run.sh counts it as skipped, not passed.
skip() { echo "SKIP: $1: $2"; }

# guest_arch: the VM's architecture as the project names it (x86_64, arm64,
# arm).
guest_arch() {
	case $(uname -m) in
	aarch64) echo arm64 ;;
	armv7l | armv7*) echo arm ;;
	*) uname -m ;;
	esac
}

# on_x86_64 NAME WHY: true on x86_64; elsewhere skips NAME ("x86_64 only:
# WHY") and returns false. Usage: on_x86_64 "name" "why" && check "name" ...
on_x86_64() {
	[ "$(guest_arch)" = x86_64 ] && return 0
	skip "$1" "x86_64 only: $2"
	return 1
}

# note TEXT: an informational line, ignored by tests/run.sh.
note() { echo "# $*"; }

# finish: end the suite; its exit status says whether a check failed.
finish() {
	echo "SUITE-END passed=$T_PASSED failed=$T_FAILED"
	[ "$T_FAILED" -eq 0 ]
	exit
}

# _oneline TEXT: TEXT on one line, at most 300 characters.
_oneline() { printf '%s' "$1" | tr '\n' ' ' | cut -c1-300; }

# _said: ": <the output of the last _run>" on one line, or nothing.
_said() { [ -z "$_out" ] || printf ': %s' "$(_oneline "$_out")"; }

# _run CMD...: run CMD, its output (standard output and error) in _out and
# its status in _st.
_run() {
	_out=$("$@" 2>&1)
	_st=$?
}

# _run_ok NAME CMD...: run CMD like _run; when it fails, fail NAME and
# return 1.
_run_ok() {
	_n=$1
	shift
	_run "$@"
	[ "$_st" -eq 0 ] && return 0
	fail "$_n" "'$*' exited with status $_st$(_said)"
	return 1
}

# check NAME CMD...: CMD succeeds. Returns CMD's status.
check() {
	_name=$1
	shift
	_run_ok "$_name" "$@" && pass "$_name"
	return "$_st"
}

# expect_fail NAME CMD...: CMD fails. Returns 0 when it did.
expect_fail() {
	_name=$1
	shift
	_run "$@"
	if [ "$_st" -ne 0 ]; then
		pass "$_name"
		return 0
	fi
	fail "$_name" "'$*' succeeded but should have failed$(_said)"
	return 1
}

# errno_pattern ERRNO: an extended regex that matches how programs report
# ERRNO (e.g. EINVAL): its name, glibc's and musl's strerror text, or Rust's
# "(os error N)".
errno_pattern() {
	case $1 in
	EPERM) echo '1|Operation not permitted' ;;
	ENOENT) echo '2|No such file or directory' ;;
	EINTR) echo '4|Interrupted system call' ;;
	EIO) echo '5|Input/output error|I/O error' ;;
	ENXIO) echo '6|No such device or address' ;;
	EBADF) echo '9|Bad file descriptor' ;;
	EAGAIN | EWOULDBLOCK) echo '11|Resource temporarily unavailable|EAGAIN|EWOULDBLOCK' ;;
	ENOMEM) echo '12|Cannot allocate memory|Out of memory' ;;
	EACCES) echo '13|Permission denied' ;;
	EFAULT) echo '14|Bad address' ;;
	EBUSY) echo '16|Device or resource busy|Resource busy' ;;
	EEXIST) echo '17|File exists' ;;
	ENODEV) echo '19|No such device' ;;
	EINVAL) echo '22|Invalid argument' ;;
	ENOTTY) echo '25|Inappropriate ioctl for device|Not a tty' ;;
	ENOSPC) echo '28|No space left on device' ;;
	ESPIPE) echo '29|Illegal seek|Invalid seek' ;;
	ENOSYS) echo '38|Function not implemented' ;;
	EOVERFLOW) echo '75|Value too large for defined data type|Value too large for data type' ;;
	EOPNOTSUPP) echo '95|Operation not supported|Not supported' ;;
	*) return 1 ;;
	esac | {
		IFS='|' read -r num texts
		echo "$1|os error $num\\)|$texts"
	}
}

# expect_errno NAME ERRNO CMD...: CMD fails and says it failed with ERRNO
# (a name from errno_pattern, e.g. EINVAL). Returns 0 when it did.
expect_errno() {
	_name=$1 _errno=$2
	shift 2
	if ! _pat=$(errno_pattern "$_errno"); then
		fail "$_name" "unknown errno name '$_errno' (see errno_pattern in tests/guest/lib.sh)"
		return 1
	fi
	_run "$@"
	if [ "$_st" -eq 0 ]; then
		fail "$_name" "'$*' succeeded but should have failed with $_errno$(_said)"
		return 1
	fi
	if ! printf '%s\n' "$_out" | grep -qE "$_pat"; then
		fail "$_name" "'$*' failed (status $_st) but not with $_errno$(_said)"
		return 1
	fi
	pass "$_name"
}

# expect_match NAME ERE CMD...: CMD succeeds and a line of its output
# matches the extended regex ERE. Returns 0 when it did.
expect_match() {
	_name=$1 _re=$2
	shift 2
	_run_ok "$_name" "$@" || return 1
	if printf '%s\n' "$_out" | grep -qE -- "$_re"; then
		pass "$_name"
		return 0
	fi
	fail "$_name" "no line of '$*' matches /$_re/$(_said)"
	return 1
}

# expect_no_match NAME ERE CMD...: CMD succeeds and no line of its output
# matches ERE. Returns 0 when so.
expect_no_match() {
	_name=$1 _re=$2
	shift 2
	_run_ok "$_name" "$@" || return 1
	_hit=$(printf '%s\n' "$_out" | grep -E -m1 -- "$_re")
	if [ -z "$_hit" ]; then
		pass "$_name"
		return 0
	fi
	fail "$_name" "'$*' has a line matching /$_re/: $(_oneline "$_hit")"
	return 1
}

# require NAME FILE: FILE exists, else fail NAME and end the suite (for what
# the rest of a suite cannot do without).
require() {
	if [ -e "$2" ]; then
		pass "$1"
		return 0
	fi
	fail "$1" "$2 is missing (was it given to tests/run.sh?)"
	finish
}

# --- In the VM only ---

# dmesg_mark: forget the kernel messages so far (the console log that
# tests/run.sh reads keeps them); dmesg_new prints those that came after.
# Note: busybox insmod retries a refused load with init_module after
# finit_module, so the reason for a refusal is logged twice.
dmesg_mark() { dmesg -c >/dev/null; }
dmesg_new() { dmesg; }

# module_loaded: the module is in /proc/modules.
module_loaded() { grep -q "^$MODNAME " /proc/modules; }

# module_unload_all: remove the module if a check left it loaded, so that the
# next checks start clean.
module_unload_all() {
	if module_loaded; then
		rmmod "$MODNAME" 2>&1 || note "could not remove $MODNAME"
	fi
}

# debug_kernel: the VM runs the debug kernel (tests/run.sh adds mapdrv.debug=1
# to its command line).
debug_kernel() { grep -qw 'mapdrv.debug=1' /proc/cmdline; }

KMEMLEAK=/sys/kernel/debug/kmemleak

# kmemleak_scan: the number of objects kmemleak reports as leaked now. It
# waits first (kmemleak does not report objects younger than 5 seconds) and
# scans twice: a scan only remembers the checksum of an object it has not
# seen before (a changed object may be in use); the next one reports it.
kmemleak_scan() {
	sleep 6
	echo scan >"$KMEMLEAK" || return 1
	echo scan >"$KMEMLEAK" || return 1
	grep -c '^unreferenced object' "$KMEMLEAK"
}

# kmemleak_report: what tests/run.sh runs after each suite on the debug
# kernel: a scan, "MAPDRV-KMEMLEAK leaks=N" and the first reports.
kmemleak_report() {
	if [ ! -w "$KMEMLEAK" ]; then
		echo "MAPDRV-KMEMLEAK unavailable"
		return
	fi
	_n=$(kmemleak_scan)
	echo "MAPDRV-KMEMLEAK leaks=${_n:-?}"
	[ "${_n:-0}" = 0 ] || head -n 40 "$KMEMLEAK"
}

# TOOL_OUT: the output of the last tool_check.
TOOL_OUT=/tmp/tool_check.out

# tool_check NAME OK_ERE CMD...: run CMD (a long-running tool such as mapdrv
# fuzz), its output as notes, in $TOOL_OUT too; NAME passes when it exits 0
# with a line matching OK_ERE, else fails with its first error lines.
tool_check() {
	_name=$1 _re=$2
	shift 2
	"$@" >"$TOOL_OUT" 2>&1
	_st=$?
	while IFS= read -r _l; do note "$_l"; done <"$TOOL_OUT"
	if [ "$_st" -eq 0 ] && grep -qE -- "$_re" "$TOOL_OUT"; then
		pass "$_name"
		return 0
	fi
	fail "$_name" "status $_st: $(grep -m3 -E 'DIVERGENCE|FAILED|error|replay it with' "$TOOL_OUT" | tr '\n' ' ')"
	return 1
}

# at_least NAME MIN VALUE: VALUE (a count) is at least MIN.
at_least() {
	if [ "${3:-0}" -ge "$2" ] 2>/dev/null; then
		pass "$1"
	else
		fail "$1" "it is ${3:-none}, less than $2"
	fi
}
