#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The test runner of `make test`: host checks, then guest suites, each guest
# suite in a VM of its own (scripts/run-vm.sh, about 1.5 s a boot under TCG).
#
# Usage: tests/run.sh [options] [SUITE...]
#   --kernel FILE  the VM's bzImage (env MAPDRV_KERNEL; default: the cached
#                  vm kernel that scripts/build-kernel.sh vm builds)
#   --module FILE  rust_mapdrv.ko (env MAPDRV_MODULE; default: rust_mapdrv.ko
#                  in the project root)
#   --tool FILE    the statically linked mapdrv tool (env MAPDRV_TOOL;
#                  default: none, and suites that need it fail)
#   --kvm MODE     auto, on or off, for scripts/run-vm.sh (env MAPDRV_KVM;
#                  default auto)
#   --debug-kernel FILE  the debug flavour's bzImage (env MAPDRV_DEBUG_KERNEL;
#                  default: none, and the debug runs are left out with a note)
#   --debug-module FILE  rust_mapdrv.ko built against it (env
#                  MAPDRV_DEBUG_MODULE)
#   --arm64-kernel FILE, --arm64-module FILE, --arm64-tool FILE
#                  the arm64 VM's Image, rust_mapdrv.ko and mapdrv tool (env
#                  MAPDRV_ARM64_KERNEL, MAPDRV_ARM64_MODULE,
#                  MAPDRV_ARM64_TOOL; default: no arm64 kernel, and the
#                  arm64 runs are left out with a note)
#   --arm-kernel FILE, --arm-module FILE, --arm-tool FILE
#                  the same for the 32-bit ARM VM (zImage; env
#                  MAPDRV_ARM_KERNEL, MAPDRV_ARM_MODULE, MAPDRV_ARM_TOOL)
#   --soak SECONDS run only the suites marked "# soak: yes", on the debug
#                  kernel, for about SECONDS each with new seeds (make soak;
#                  a benchmark, not a test)
#   --out DIR      logs and built helpers (env MAPDRV_TEST_OUT; default
#                  $MAPDRV_CACHE/tests); DIR/logs is emptied at the start.
#                  One run per DIR at a time: a second one stops with an
#                  error before it touches DIR (give it its own --out)
#   --only-arch A  only the runs on architecture A: arm64 or arm (the
#                  arm64/NAME or arm/NAME runs) or x86_64 (host, guest and
#                  debug runs)
#   --jobs N       run up to N suites at once (env MAPDRV_TEST_JOBS; default
#                  the number of CPUs, at most 4): a TCG guest keeps about
#                  one host CPU busy, so two suites on two CPUs take little
#                  more than one. --verbose runs one at a time.
#   --verbose      show each VM's console (on standard error)
#   SUITE          only these suites: host/NAME, guest/NAME, debug/NAME or
#                  NAME (all runs of it) (default: all of tests/host/*.sh
#                  and tests/guest/*.sh)
#
# Suites are files, each printing "PASS: <check>" or "FAIL: <check>: <why>"
# lines through the helpers of tests/guest/lib.sh:
#   tests/host/NAME.sh   run on the host with bash; they get MAPDRV_KERNEL,
#                        MAPDRV_MODULE, MAPDRV_TOOL (possibly empty),
#                        MAPDRV_TEST_WORK (a scratch directory) and
#                        CARGO_TARGET_DIR (scripts/lib.sh's
#                        TOOL_CARGO_TARGET) in the environment.
#   tests/guest/NAME.sh  run in a fresh VM as `sh /tests/NAME.sh`. In the VM:
#                        the module is /lib/modules/rust_mapdrv.ko, the tool
#                        /bin/mapdrv, tests/guest/ is /tests, and the helpers
#                        built statically from tests/helpers/NAME.c are
#                        /bin/NAME. A line "# run-vm: OPTIONS" in a suite adds
#                        scripts/run-vm.sh options (e.g. --mem 2G --timeout 300;
#                        the default timeout is 120 s).
#                        A line "# kernels: vm debug" runs the suite a second
#                        time, as debug/NAME, on the debug kernel (KASAN,
#                        KFENCE, lockdep, DEBUG_VM, kmemleak...:
#                        scripts/kconfig/debug.config) with the module built
#                        for it, 2 GiB and a 360 s timeout, then the options
#                        of a "# run-vm-debug: OPTIONS" line; "# kernels:
#                        debug" runs it there only (default: vm). The guest
#                        sees mapdrv.debug=1 on its command line. "arm64"
#                        in that line runs it again, as arm64/NAME, on the
#                        arm64 VM (qemu-system-aarch64 -M virt under TCG)
#                        with the arm64 module, tool and helpers, then the
#                        options of a "# run-vm-arm64: OPTIONS" line; "arm"
#                        likewise as arm/NAME on the 32-bit ARM VM
#                        (qemu-system-arm -M virt), with a "# run-vm-arm:"
#                        line. A suite that is not run on one of them says
#                        why in a "# not on ARCH: REASON" line, which becomes
#                        the result "SKIP ARCH/NAME: REASON" (counted as
#                        skipped, never as passed). After the
#                        suite, the runner has kmemleak scan (echo scan >
#                        /sys/kernel/debug/kmemleak) and adds "debug/NAME/
#                        kmemleak finds no leak".
# Besides its own checks, each suite gets "<suite>/ran to the end" (it reached
# finish, its VM did not time out or panic); each guest suite gets
# "<suite>/kunit NAME" for each KUnit suite that ran in it (a module's
# #[kunit_tests] run when it is loaded) and "<suite>/kernel log is clean": its
# console has no WARNING:, BUG: (KASAN, KFENCE, "sleeping function called
# from invalid context", bad page state...), kernel BUG at, INFO: (lockdep),
# UBSAN:, Oops, Call Trace, Kernel panic, RCU stall, hung task, kmemleak leak
# or failed KUnit test, no "Tainted:" flags but G, O and N, and no
# "taints kernel" line but those of an out-of-tree or a test module
# (kernel_reports in scripts/lib.sh, the one list of these). (The VM
# kernel has no /proc/sys, so the global taint mask cannot be read; every
# taint that matters logs one of these.) The console shows every level here
# because guest suites boot without `quiet`; the VMs that boot `quiet`
# (host/layout, host/bench, make run, make shell) bring the guest's dmesg
# home instead (scripts/run-vm.sh --kernel-log) and check it with
# scripts/check-kernel-log.sh.
#
# A check that does not apply to the architecture it runs on prints "SKIP:
# <check>: <why>" (lib.sh's skip), which becomes "SKIP <suite>/<check>: why".
#
# Suites run side by side (--jobs), the longest first by the times of the
# last run ($out/suite-times); each suite's results are printed together when
# it ends, so suites appear in the order they end.
#
# Output (standard output): one line per result, "PASS <suite>/<check>",
# "FAIL <suite>/<check>: <why>" or "SKIP <suite>/<check>: <why>", then one
# line per architecture "ARCH: N passed, M failed, K skipped" (host: the
# checks on the host), and last "N passed, M failed". Progress and
# the logs' places go to standard error. Exit status: 0 when all passed, 1
# when something failed, 2 for a usage error.
source "$(dirname "$0")/../scripts/lib.sh"

usage() { sed -n '/^# Usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

kernel=${MAPDRV_KERNEL:-}
module=${MAPDRV_MODULE:-$MAPDRV_ROOT/rust_mapdrv.ko}
tool=${MAPDRV_TOOL:-}
kvm=${MAPDRV_KVM:-auto}
out=${MAPDRV_TEST_OUT:-$MAPDRV_CACHE/tests}
debug_kernel=${MAPDRV_DEBUG_KERNEL:-}
debug_module=${MAPDRV_DEBUG_MODULE:-}
arm64_kernel=${MAPDRV_ARM64_KERNEL:-}
arm64_module=${MAPDRV_ARM64_MODULE:-}
arm64_tool=${MAPDRV_ARM64_TOOL:-}
arm_kernel=${MAPDRV_ARM_KERNEL:-}
arm_module=${MAPDRV_ARM_MODULE:-}
arm_tool=${MAPDRV_ARM_TOOL:-}
# The architectures whose VMs are emulated (TCG), each with its own kernel,
# module, tool and helpers: $<arch>_kernel and so on.
EMULATED_ARCHES="arm64 arm"
jobs=${MAPDRV_TEST_JOBS:-}
soak=
only_arch=
verbose=false
while [ $# -gt 0 ]; do
	case $1 in
	--kernel | --module | --tool | --kvm | --out | --debug-kernel | --debug-module | --soak | \
		--arm64-kernel | --arm64-module | --arm64-tool | \
		--arm-kernel | --arm-module | --arm-tool | --only-arch | --jobs)
		[ $# -ge 2 ] || { echo "tests/run.sh: $1 needs an argument" >&2; usage; }
		opt=${1#--}
		declare "${opt//-/_}=$2"
		shift 2
		;;
	--verbose) verbose=true; shift ;;
	-h | --help) usage ;;
	-*) echo "tests/run.sh: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done

if [ -z "$kernel" ]; then
	kernel=$(kernel_image vm x86_64)
fi
[ -n "$only_arch" ] && [ "$(mapdrv_arch "$only_arch")" != x86_64 ] || [ -f "$kernel" ] ||
	die "no VM kernel at $kernel: build it with scripts/build-kernel.sh vm, or pass --kernel"
[ -f "$module" ] || info "note: no module at $module; the suites that load it will fail"
[ -z "$tool" ] || [ -f "$tool" ] || die "no mapdrv tool at $tool"
[ -z "$debug_kernel" ] || [ -f "$debug_kernel" ] || die "no debug kernel at $debug_kernel"
[ -z "$debug_module" ] || [ -f "$debug_module" ] || die "no debug module at $debug_module"
# arch_file ARCH kernel|module|tool: the file given for an emulated ARCH.
arch_file() { local v="${1}_$2"; echo "${!v}"; }
for a in $EMULATED_ARCHES; do
	for what in kernel module tool; do
		f=$(arch_file "$a" "$what")
		[ -z "$f" ] || [ -f "$f" ] || die "no $a $what at $f"
	done
done
if [ -z "$jobs" ]; then
	jobs=$(nproc 2>/dev/null || echo 1)
	[ "$jobs" -le 4 ] || jobs=4
fi
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die_status 2 "--jobs takes a number of suites at once (1 or more), not '$jobs'"
$verbose && jobs=1
if [ -n "$soak" ]; then
	[[ $soak =~ ^[1-9][0-9]*$ ]] || die_status 2 "--soak takes a number of seconds, not '$soak'"
	[ -n "$debug_kernel" ] || die_status 2 "--soak needs --debug-kernel"
fi

# suite_line FILE KEY: the value of a "# KEY: value" line of a suite.
suite_line() { sed -n "s/^# $2: *//p" "$1" | head -n1; }

# The kernels a guest suite runs on ("# kernels:" line; default vm).
suite_kernels() { local k; k=$(suite_line "$1" kernels); echo "${k:-vm}"; }

# The suites to run, as host/NAME, guest/NAME (the VM kernel), debug/NAME
# (the debug kernel), arm64/NAME and arm/NAME (the emulated VMs; a suite
# that does not run there is still listed, and reported as skipped).
all_suites() {
	local f k
	if [ -n "$soak" ]; then
		for f in "$MAPDRV_ROOT"/tests/guest/*.sh; do
			[ "$(suite_line "$f" soak)" = yes ] && echo "debug/$(basename "$f" .sh)"
		done
		return 0
	fi
	for f in "$MAPDRV_ROOT"/tests/host/*.sh; do
		[ -e "$f" ] && echo "host/$(basename "$f" .sh)"
	done
	for f in "$MAPDRV_ROOT"/tests/guest/*.sh; do
		[ "$(basename "$f")" = lib.sh ] && continue
		for k in $(suite_kernels "$f"); do
			case $k in
			vm) echo "guest/$(basename "$f" .sh)" ;;
			debug) echo "debug/$(basename "$f" .sh)" ;;
			esac
		done
		for k in $EMULATED_ARCHES; do echo "$k/$(basename "$f" .sh)"; done
	done
}
mapfile -t known < <(all_suites)
suites=()
if [ $# -eq 0 ]; then
	suites=("${known[@]}")
else
	for want in "$@"; do
		match=
		for s in "${known[@]}"; do
			# guest/NAME means both runs of a guest suite, like NAME.
			if [ "$s" = "$want" ] || [ "${s#*/}" = "$want" ] || [ "${s#*/}" = "${want#guest/}" ]; then
				match=1
				suites+=("$s")
			fi
		done
		[ -n "$match" ] || die_status 2 "no suite '$want' (known: ${known[*]})"
	done
fi
if [ -n "$only_arch" ]; then
	only_arch=$(mapdrv_arch "$only_arch")
	kept=()
	for s in "${suites[@]}"; do
		case $only_arch:$s in "$only_arch:$only_arch"/* | x86_64:host/* | x86_64:guest/* | x86_64:debug/*) kept+=("$s") ;; esac
	done
	suites=("${kept[@]}")
fi
# leave_out PREFIX WHY: drops the PREFIX/* runs from the suites, saying
# why and which if there were any.
leave_out() {
	local left=() kept=() s
	for s in "${suites[@]}"; do
		case $s in "$1"/*) left+=("$s") ;; *) kept+=("$s") ;; esac
	done
	[ ${#left[@]} -eq 0 ] || info "$2: leaving out ${left[*]}"
	suites=("${kept[@]}")
}
# Without a debug kernel the debug runs are left out, with a note; likewise
# without an arm64 or arm kernel.
[ -n "$debug_kernel" ] || leave_out debug "no debug kernel given (--debug-kernel, or make test)"
for a in $EMULATED_ARCHES; do
	[ -n "$(arch_file "$a" kernel)" ] || leave_out "$a" "no $a kernel given (--$a-kernel, or make test)"
done

# One run per --out at a time. A second run would empty this one's logs
# and rebuild its helpers under it, so it stops here, before it changes
# anything; the lock goes with the last process of this run.
mkdir -p "$out"
exec {out_lock}>"$out/.lock"
flock -n "$out_lock" ||
	die "another tests/run.sh is using $out: let it finish, or give this run its own --out DIR (MAPDRV_TEST_OUT)"

logs=$out/logs
rm -rf "$logs"
mkdir -p "$logs"/{host,guest,debug,arm64,arm,build} "$out/work" "$out/bin"

# Counts per architecture ("host" for the checks on the host), in the order
# they first report.
passed=0
failed=0
declare -A count_pass=() count_fail=() count_skip=()
groups=()
# result_group NAME: the group a result counts in, by its suite's prefix.
result_group() {
	case $1 in
	host/*) echo host ;;
	arm64/*) echo arm64 ;;
	arm/*) echo arm ;;
	build/*) local rest=${1#build/}; echo "${rest%%/*}" ;;
	*) echo x86_64 ;;
	esac
}
# In a suite's own process (the pool below), results go to its record file
# ($result_record: one "STATUS<TAB>NAME<TAB>WHY" line each) and the main
# process counts and prints them when the suite ends.
result_record=
result() { # result PASS|FAIL|SKIP NAME [WHY]
	local g
	if [ -n "$result_record" ]; then
		printf '%s\t%s\t%s\n' "$1" "${2//$'\t'/ }" "${3:+${3//$'\t'/ }}" >>"$result_record"
		return 0
	fi
	g=$(result_group "$2")
	[ -n "${count_pass[$g]+set}" ] || { groups+=("$g"); count_pass[$g]=0 count_fail[$g]=0 count_skip[$g]=0; }
	case $1 in
	PASS)
		passed=$((passed + 1)) count_pass[$g]=$((count_pass[$g] + 1))
		echo "PASS $2"
		;;
	SKIP)
		count_skip[$g]=$((count_skip[$g] + 1))
		echo "SKIP $2: $3"
		;;
	*)
		failed=$((failed + 1)) count_fail[$g]=$((count_fail[$g] + 1))
		echo "FAIL $2: $3"
		;;
	esac
}

# collect SUITE OUTPUT STATUS: the suite's result lines, and whether it ran to
# the end.
collect() {
	local suite=$1 output=$2 rc=$3 line rest n_fail=0 n_all=0
	while IFS= read -r line; do
		n_all=$((n_all + 1))
		rest=${line#*: }
		if [ "${line%%: *}" = PASS ]; then
			result PASS "$suite/$rest"
		elif [ "${line%%: *}" = SKIP ] && [[ $rest == *": "* ]]; then
			result SKIP "$suite/${rest%%: *}" "${rest#*: }"
		elif [ "${line%%: *}" = SKIP ]; then
			result FAIL "$suite/$rest" "skipped without saying why"
			n_fail=$((n_fail + 1))
		elif [[ $rest == *": "* ]]; then
			result FAIL "$suite/${rest%%: *}" "${rest#*: }"
			n_fail=$((n_fail + 1))
		else
			result FAIL "$suite/$rest" "(no reason given)"
			n_fail=$((n_fail + 1))
		fi
	done < <(grep -aE '^(PASS|FAIL|SKIP): ' "$output")
	if [ "$rc" = 124 ]; then
		result FAIL "$suite/ran to the end" "the VM timed out (log: $output)"
	elif [ "$rc" = 125 ]; then
		result FAIL "$suite/ran to the end" "the VM ended without an exit status, e.g. a kernel panic (log: $output)"
	elif ! grep -aq '^SUITE-END ' "$output"; then
		result FAIL "$suite/ran to the end" "it stopped before finish, status $rc (log: $output)"
	elif [ "$n_all" = 0 ]; then
		result FAIL "$suite/ran to the end" "it reported no result (log: $output)"
	elif [ "$rc" != 0 ] && [ "$n_fail" = 0 ]; then
		result FAIL "$suite/ran to the end" "it exited with status $rc but reported no failure (log: $output)"
	else
		result PASS "$suite/ran to the end"
	fi
}

# kmemleak_result SUITE LOG: the scan that ends a debug run found no leak.
kmemleak_result() {
	local line
	line=$(grep -a -m1 '^MAPDRV-KMEMLEAK ' "$2" || true)
	case $line in
	"MAPDRV-KMEMLEAK leaks=0") result PASS "$1/kmemleak finds no leak" ;;
	"MAPDRV-KMEMLEAK leaks="*)
		result FAIL "$1/kmemleak finds no leak" \
			"${line#MAPDRV-KMEMLEAK leaks=} suspected leaks: $(grep -a -m3 -A3 '^unreferenced object' "$2" | tr '\n' ' ' | cut -c1-300) (log: $2)"
		;;
	"MAPDRV-KMEMLEAK unavailable") result FAIL "$1/kmemleak finds no leak" "the kernel has no /sys/kernel/debug/kmemleak (log: $2)" ;;
	*) result FAIL "$1/kmemleak finds no leak" "no kmemleak scan ran (did the VM end early?) (log: $2)" ;;
	esac
}

# kunit_results LOG: "ok NAME" or "not ok NAME" for each KUnit suite that ran
# after boot (a loaded module's #[kunit_tests]), once per name ("not ok" when
# any of its runs failed). Suites built into the kernel run before /init and
# are only checked by kernel_reports.
kunit_results() {
	sed -n '/Run \/init as init process/,$p' "$1" |
		sed -nE 's/^.*\[ *[0-9]+\.[0-9]+\] (ok|not ok) [0-9]+ ([^ #]+).*/\2 \1/p' |
		awk '{ name = $1; $1 = ""; st = substr($0, 2) }
			!(name in res) { order[++n] = name; res[name] = st }
			st != "ok" { res[name] = st }
			END { for (i = 1; i <= n; i++) print res[order[i]] " " order[i] }'
}

# Static helpers for the guests of ARCH, from tests/helpers/*.c, into
# $out/bin/ARCH/ (scripts/lib.sh's build_static_c: cc for the host, clang
# with Debian's cross C library for another architecture).
build_helpers() {
	local arch=$1 c name bin log
	mkdir -p "$out/bin/$arch"
	for c in "$MAPDRV_ROOT"/tests/helpers/*.c; do
		[ -e "$c" ] || continue
		name=$(basename "$c" .c)
		bin=$out/bin/$arch/$name
		log=$logs/build/$arch-$name.log
		if [ ! -x "$bin" ] || [ "$c" -nt "$bin" ]; then
			if ! (build_static_c "$arch" "$bin" "$c" -O2 -Wall -Wextra -Werror) >"$log" 2>&1; then
				rm -f "$bin"
				result FAIL "build/$arch/$name" "static build failed: $(head -c 300 "$log" | tr '\n' ' ')"
				continue
			fi
		fi
		result PASS "build/$arch/$name"
	done
}

run_host_suite() {
	local suite=$1 log=$logs/$1.log rc=0
	stage "$suite"
	mkdir -p "$out/work/$suite"
	# CARGO_TARGET_DIR: the tool's cargo test and clippy (host/abi,
	# host/gates) build in the machine's shared target directory, so a fresh
	# clone does not compile the tool's dependencies again.
	CARGO_TARGET_DIR=$TOOL_CARGO_TARGET \
		MAPDRV_KERNEL=$kernel MAPDRV_MODULE=$module MAPDRV_TOOL=$tool MAPDRV_TEST_WORK=$out/work/$suite \
		MAPDRV_ARM64_KERNEL=$arm64_kernel MAPDRV_ARM64_MODULE=$arm64_module MAPDRV_ARM64_TOOL=$arm64_tool \
		MAPDRV_ARM_KERNEL=$arm_kernel MAPDRV_ARM_MODULE=$arm_module MAPDRV_ARM_TOOL=$arm_tool \
		bash "$MAPDRV_ROOT/tests/$suite.sh" </dev/null >"$log" 2>&1 || rc=$?
	collect "$suite" "$log" "$rc"
}

# run_guest_suite guest/NAME | debug/NAME | arm64/NAME | arm/NAME: one VM,
# on the VM kernel, the debug kernel or an emulated architecture's kernel.
run_guest_suite() {
	local suite=$1 name=${1#*/} log=$logs/$1.log runlog=$logs/$1.run rc=0 opts=() more=() reports
	local file=$MAPDRV_ROOT/tests/guest/$name.sh
	local kern=$kernel mod=$module tl=$tool arch=x86_64 cmd="sh /tests/$name.sh" debug=false
	read -r -a opts <<<"$(suite_line "$file" run-vm)"
	local prefix=${suite%%/*}
	if [[ " $EMULATED_ARCHES " == *" $prefix "* ]]; then
		if [[ " $(suite_kernels "$file") " != *" $prefix "* ]]; then
			local why
			why=$(suite_line "$file" "not on $prefix")
			if [ -n "$why" ]; then
				result SKIP "$suite" "$why"
			else
				result FAIL "$suite" "not run on $prefix and no '# not on $prefix: REASON' line says why"
			fi
			return 0
		fi
		arch=$prefix kern=$(arch_file "$prefix" kernel) mod=$(arch_file "$prefix" module) tl=$(arch_file "$prefix" tool)
		read -r -a more <<<"$(suite_line "$file" "run-vm-$prefix")"
		opts+=("${more[@]}")
	fi
	if [ "${suite%%/*}" = debug ]; then
		debug=true
		kern=$debug_kernel mod=$debug_module
		read -r -a more <<<"$(suite_line "$file" run-vm-debug)"
		# no5lvl: 4-level paging on the debug kernel (the VM kernel runs
		# 5-level under TCG's -cpu max, so both modes are walked for real).
		# It also keeps the debug runs off a boot-time race of 7.3 with
		# KASAN and 5-level paging: identify_cpu() clears the boot CPU's
		# feature bits while it re-reads CPUID, and an interrupt in that
		# window sees pgtable_l5_enabled() false, so KASAN reports the
		# irq_desc's direct-map address as a "wild-memory-access" (seen once
		# in 18 debug boots, before any module is loaded).
		opts+=(--mem 2G --timeout 360 --append "mapdrv.debug=1 no5lvl" "${more[@]}")
		if [ -n "$soak" ]; then
			opts+=(--append "mapdrv.soak=$soak" --timeout $((3 * soak + 600)))
		fi
		# Then a kmemleak scan, whatever the suite's status.
		cmd="$cmd; s=\$?; . /tests/lib.sh; kmemleak_report; exit \$s"
	fi
	local args=(--arch "$arch" --kernel "$kern" --kvm "$kvm" --log "$log" --timeout 120
		--add "$MAPDRV_ROOT/tests/guest:/tests")
	[ -f "$mod" ] && args+=(--add "$mod:/lib/modules/rust_mapdrv.ko")
	[ -n "$tl" ] && args+=(--add "$tl:/bin/mapdrv")
	local h
	for h in "$out/bin/$arch"/*; do
		[ -x "$h" ] && args+=(--add "$h:/bin/$(basename "$h")")
	done
	$verbose || args+=(--quiet)
	stage "$suite (VM$($debug && echo ", debug kernel")$([ "$arch" = x86_64 ] || echo ", $arch"))"
	if $verbose; then
		bash "$MAPDRV_ROOT/scripts/run-vm.sh" "${args[@]}" "${opts[@]}" -- "$cmd" 2>&1 |
			tee "$runlog" >&2 || rc=${PIPESTATUS[0]}
	else
		bash "$MAPDRV_ROOT/scripts/run-vm.sh" "${args[@]}" "${opts[@]}" -- "$cmd" \
			>"$runlog" 2>&1 || rc=$?
	fi
	# How long the VM took (the main process shows the accelerator once).
	sed -n 's/^ *\(VM finished .*\)/\1/p' "$runlog" | while IFS= read -r l; do info "$suite: $l"; done
	if [ -s "$log" ]; then
		collect "$suite" "$log" "$rc"
	else
		# No console at all: run-vm.sh failed before booting.
		result FAIL "$suite/ran to the end" "scripts/run-vm.sh failed (status $rc): $(tail -n 3 "$runlog" | tr '\n' ' ')"
	fi
	local kunit kname
	while read -r kunit; do
		case $kunit in
		"ok "*) result PASS "$suite/kunit ${kunit#ok }" ;;
		"not ok "*)
			kname=${kunit#not ok }
			result FAIL "$suite/kunit $kname" "KUnit reports 'not ok' (log: $log)"
			;;
		esac
	done < <(kunit_results "$log")
	reports=$(kernel_reports "$log")
	if [ -z "$reports" ]; then
		result PASS "$suite/kernel log is clean"
	else
		result FAIL "$suite/kernel log is clean" "$(printf '%s' "$reports" | head -n1) (log: $log)"
		printf '%s\n' "$reports" | while IFS= read -r l; do info "$suite: $l"; done
	fi
	if $debug; then
		kmemleak_result "$suite" "$log"
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
		tail -n 32 "$runlog" >&2
	fi
}

accel_shown=
[ -n "$only_arch" ] && [ "$only_arch" != x86_64 ] || build_helpers x86_64
for a in $EMULATED_ARCHES; do
	[ -n "$(arch_file "$a" kernel)" ] || continue
	for s in "${suites[@]}"; do
		case $s in "$a"/*) build_helpers "$a"; break ;; esac
	done
done
# The pool. Each suite runs in a process of its own with its results in
# $logs/results/SUITE; the main process starts the next suite when one ends
# and counts the results of the one that ended.
times_file=$out/suite-times
# last_time SUITE: its seconds in the last run that ran it, or a guess by
# kind for a suite never timed (the debug kernel's boot alone is about 20 s).
last_time() {
	local t
	t=$(awk -v s="$1" '$1 == s { print $2 }' "$times_file" 2>/dev/null | tail -n1)
	if [ -n "$t" ]; then
		echo "$t"
	else
		case $1 in debug/*) echo 80 ;; arm/*) echo 30 ;; *) echo 15 ;; esac
	fi
}
# The longest first, so that no long suite starts last and runs alone.
mapfile -t order < <(for s in "${suites[@]}"; do echo "$(last_time "$s") $s"; done | sort -s -k1,1nr | cut -d' ' -f2)
mkdir -p "$logs/results"
record_of() { echo "$logs/results/${1//\//_}"; }
declare -A running=()
times=()
# finish_one: wait for a suite to end, then count and print its results.
finish_one() {
	local pid= suite status why name seconds=
	wait -n -p pid "${!running[@]}" || true
	if [ -z "$pid" ]; then
		# (Already reaped: find it by hand.)
		local p
		for p in "${!running[@]}"; do
			kill -0 "$p" 2>/dev/null || { pid=$p; break; }
		done
		[ -n "$pid" ] || { sleep 1; return 0; }
	fi
	suite=${running[$pid]}
	unset "running[$pid]"
	# The record's last line, "TIME<TAB>seconds", says the process ended.
	while IFS=$'\t' read -r status name why; do
		if [ "$status" = TIME ]; then
			seconds=$name
		else
			result "$status" "$name" "$why"
		fi
	done <"$(record_of "$suite")"
	if [ -z "$seconds" ]; then
		result FAIL "$suite/ran to the end" "the test runner's process for it ended early (see the messages above)"
	else
		times+=("$suite ${seconds}s")
	fi
	if [ -z "$accel_shown" ] && [ -f "$logs/$suite.run" ]; then
		accel_shown=$(grep -a -m1 ' booting ' "$logs/$suite.run" | sed 's/^.*\] //' || true)
		[ -z "$accel_shown" ] || info "$accel_shown"
	fi
}
for suite in "${order[@]}"; do
	while [ ${#running[@]} -ge "$jobs" ]; do finish_one; done
	(
		result_record=$(record_of "$suite")
		: >"$result_record"
		t0=$(date +%s)
		case $suite in
		host/*) run_host_suite "$suite" ;;
		guest/* | debug/* | arm64/* | arm/*) run_guest_suite "$suite" ;;
		esac
		printf 'TIME\t%s\n' "$(($(date +%s) - t0))" >>"$result_record"
	) &
	running[$!]=$suite
done
while [ ${#running[@]} -gt 0 ]; do finish_one; done
# Keep this run's times for the next run's order (other suites' times stay).
if [ ${#times[@]} -gt 0 ]; then
	{
		printf '%s\n' "${times[@]}" | sed 's/s$//'
		[ ! -f "$times_file" ] || cat "$times_file"
	} | awk '!seen[$1]++' >"$times_file.new" && mv "$times_file.new" "$times_file"
fi
# The debug kernel's runs are x86_64's alone: say so once for each emulated
# architecture, as a skip, when its suites ran.
for a in $EMULATED_ARCHES; do
	for s in "${suites[@]}"; do
		case $a:$s in
		arm64:arm64/*)
			result SKIP "arm64/debug runs" "the debug kernel (KASAN, KFENCE, lockdep, kmemleak) is built for x86_64 only: a second one for arm64, and its suites under KASAN in an emulated aarch64 VM, do not fit make test's time budget"
			break
			;;
		arm:arm/*)
			result SKIP "arm/debug runs" "the debug kernel is built for x86_64 only: KASAN cannot be combined with Rust on 32-bit ARM (arch/arm/Kconfig: HAVE_RUST needs !KASAN)"
			break
			;;
		esac
	done
done
info "time per suite: ${times[*]}"
info "logs: $logs"
for g in "${groups[@]}"; do
	echo "$g: ${count_pass[$g]} passed, ${count_fail[$g]} failed, ${count_skip[$g]} skipped"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
