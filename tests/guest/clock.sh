#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest's clock: timing measurements in the other suites need a clock
# source finer than jiffies (4 ms at HZ=250). Under TCG, scripts/run-vm.sh
# passes the host's TSC frequency (tsc_early_khz=...) for that on x86_64;
# arm64's architected timer counts at a fixed frequency without help.
# kernels: vm arm64 arm
# shellcheck source=lib.sh
. /tests/lib.sh

CS=/sys/devices/system/clocksource/clocksource0
cs=$(cat $CS/current_clocksource)
note "clock source $cs (available: $(cat $CS/available_clocksource))"
case $(guest_arch):$cs in
x86_64:tsc | x86_64:tsc-early | x86_64:kvm-clock) pass "clock source is the TSC or kvm-clock" ;;
x86_64:*) fail "clock source is the TSC or kvm-clock" "it is $cs; kernel command line: $(cat /proc/cmdline)" ;;
arm64:arch_sys_counter | arm:arch_sys_counter) pass "clock source is the architected timer" ;;
arm64:* | arm:*) fail "clock source is the architected timer" "it is $cs" ;;
esac

require "clockres helper is there" /bin/clockres
if ! out=$(clockres); then
	fail "clockres measures CLOCK_MONOTONIC" "$out"
	finish
fi
note "$out"
pass "clockres measures CLOCK_MONOTONIC"
# clockres: getres=1 min_step=40 median_step=50 zero_steps=0 samples=20000
value() { printf '%s\n' "$out" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
res=$(value getres)
step=$(value median_step)
if [ "$res" -le 1 ]; then
	pass "clock_getres(CLOCK_MONOTONIC) is 1 ns (high-resolution timers)"
else
	fail "clock_getres(CLOCK_MONOTONIC) is 1 ns (high-resolution timers)" "it is $res ns"
fi
if [ "$step" -lt 1000 ]; then
	pass "CLOCK_MONOTONIC steps by less than a microsecond"
else
	fail "CLOCK_MONOTONIC steps by less than a microsecond" "median step $step ns"
fi
finish
