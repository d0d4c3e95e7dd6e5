#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the test VM (QEMU, serial console, busybox initramfs) and run a command
# in it, or a shell.
#
# Usage: scripts/run-vm.sh [options] [-- COMMAND...]
#   --arch ARCH       the guest's architecture: x86_64 (qemu-system-x86_64
#                     -M microvm), arm64 (qemu-system-aarch64 -M virt) or
#                     arm (qemu-system-arm -M virt);
#                     default $MAPDRV_ARCH, else x86_64
#   --kernel FILE     kernel image to boot (default: the cached vm kernel of
#                     ARCH that scripts/build-kernel.sh vm ARCH builds)
#   --add SRC[:DEST]  put a file or directory into the guest (repeatable);
#                     without DEST: *.ko to /lib/modules/, *.sh to /tests/,
#                     anything else to /bin/ (see scripts/mkinitramfs.sh)
#   --mem SIZE        guest memory (default 1G)
#   --cpus N          guest CPUs (default 2)
#   --kvm MODE        auto (default): KVM when /dev/kvm is usable and a quick
#                     probe boot works (the result is cached per host boot),
#                     else TCG; on: KVM without a probe; off: TCG
#   --icount          TCG with QEMU's instruction counter (-icount shift=0):
#                     the guest's clock advances 1 ns per instruction the
#                     guest executes, so a timing is a count of guest
#                     instructions, the same from run to run and host to
#                     host (not of memory, cache or TLB cost). Implies
#                     --kvm off; the guest gets mapdrv.icount=1
#   --timeout SECS    stop the VM after SECS seconds (default 300; 0 = never;
#                     with --shell the default is never)
#   --log FILE        console log (default $MAPDRV_CACHE/logs/vm-console.log)
#   --shell           interactive: after COMMAND (if any), a shell on the
#                     console; the VM ends when it exits
#   --append ARGS     extra kernel command line arguments
#   --export FILE     a second port (the virtio console /dev/hvc0: each
#                     machine has one UART, the console), written to FILE on
#                     the host; the
#                     guest gets mapdrv.export=<its tty> on its command line
#                     (see scripts/guest/export-file)
#   --kernel-log FILE the guest's whole kernel log (dmesg: every level,
#                     whatever `quiet` keeps off the console), written to
#                     FILE by /init after the command (and the shell) over a
#                     serial port of its own, then a MAPDRV-KERNEL-LOG-END
#                     line; check it with scripts/check-kernel-log.sh. The
#                     ring buffer is made 8 MiB (log_buf_len) so that it
#                     keeps the whole boot
#   --quiet           do not echo the console, only write the log
#   --gdb             start QEMU's gdb stub on localhost:1234 and boot with
#                     nokaslr (for make gdb)
# COMMAND's words are joined with spaces and run by the guest's busybox sh
# (like ssh does), with standard input /dev/null, so quote a whole script as
# one word: run-vm.sh -- 'uname -a; cat /proc/cmdline'.
#
# Exit status: the guest command's (or shell's) exit status, read from the
# "MAPDRV-EXIT <status>" line that the guest's /init prints; 124 when the
# timeout stopped the VM; 125 when the VM ended without that line (a kernel
# panic, QEMU failing to start, ...); 2 for a usage error.
#
# Under TCG the guest is told the host's TSC frequency (tsc_early_khz=...,
# tsc=reliable clocksource=tsc) so that its clock runs on the TSC with
# nanosecond steps instead of 4 ms jiffies. Environment: MAPDRV_TSC_KHZ
# overrides the host TSC frequency read from the host's kernel log or
# /proc/cpuinfo; MAPDRV_KVM_PROBE_TIMEOUT (default 5) bounds the KVM probe.
# An x86_64 guest under TCG whose kernel turned its local APIC timer off at
# boot (no high-resolution timers) is booted again, at most 8 times (see
# timer_boots below).
source "$(dirname "$0")/lib.sh"

usage() { sed -n '/^# Usage:/,/^# one word/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

kernel=
arch=
adds=()
mem=1G
cpus=2
kvm=auto
timeout_secs=
log=$MAPDRV_CACHE/logs/vm-console.log
shell=false
extra_append=
gdb_stub=false
quiet=false
export_file=
kernel_log=
icount=false

need_arg() { [ "$2" -ge 2 ] || { echo "run-vm.sh: $1 needs an argument" >&2; usage; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) need_arg "$1" $#; kernel=$2; shift 2 ;;
	--arch) need_arg "$1" $#; arch=$2; shift 2 ;;
	--add) need_arg "$1" $#; adds+=("$2"); shift 2 ;;
	--mem) need_arg "$1" $#; mem=$2; shift 2 ;;
	--cpus) need_arg "$1" $#; cpus=$2; shift 2 ;;
	--kvm) need_arg "$1" $#; kvm=$2; shift 2 ;;
	--icount) icount=true; shift ;;
	--timeout) need_arg "$1" $#; timeout_secs=$2; shift 2 ;;
	--log) need_arg "$1" $#; log=$2; shift 2 ;;
	--append) need_arg "$1" $#; extra_append="$extra_append $2"; shift 2 ;;
	--gdb) gdb_stub=true; shift ;;
	--export) need_arg "$1" $#; export_file=$2; shift 2 ;;
	--kernel-log) need_arg "$1" $#; kernel_log=$2; shift 2 ;;
	--shell) shell=true; shift ;;
	--quiet) quiet=true; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	*) echo "run-vm.sh: unknown argument '$1' (a command goes after --)" >&2; usage ;;
	esac
done
cmd="$*"

case $kvm in auto | on | off) ;; *) die_status 2 "--kvm takes auto, on or off, not '$kvm'" ;; esac
if $icount; then
	[ "$kvm" != on ] || die_status 2 "--icount counts instructions under TCG: it cannot be used with --kvm on"
	kvm=off
fi
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die_status 2 "--cpus takes a positive number, not '$cpus'"
if [ -z "$timeout_secs" ]; then
	if $shell; then timeout_secs=0; else timeout_secs=300; fi
fi
[[ $timeout_secs =~ ^[0-9]+$ ]] || die_status 2 "--timeout takes a number of seconds, not '$timeout_secs'"
if [ -z "$cmd" ] && ! $shell; then
	die_status 2 "nothing to run: give a command after -- or --shell"
fi
if $shell && [ ! -t 0 ]; then
	die_status 2 "--shell needs a terminal on standard input"
fi
arch=$(mapdrv_arch "$arch")
qemu_bin=$(qemu_system "$arch")
command -v "$qemu_bin" >/dev/null || die "$qemu_bin not found: run scripts/setup.sh"

if [ -z "$kernel" ]; then
	kernel=$(kernel_image vm "$arch")
	[ -f "$kernel" ] || die "no $arch VM kernel at $kernel: build it with scripts/build-kernel.sh vm $arch, or pass --kernel"
fi
[ -f "$kernel" ] || die "no such kernel image: $kernel"
# A kernel of another architecture would not boot at all, silently.
case $arch:$(file -b "$kernel") in
x86_64:*"x86 boot executable"* | arm64:*"ARM64 boot executable"* | arm64:*"ARM aarch64"* | arm:*"ARM boot executable zImage"*) ;;
*) die "$kernel is not an $arch kernel image ($(file -b "$kernel" | cut -c1-60)); pass --arch or the right --kernel" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/mapdrv-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
initrd=$work/initramfs.cpio.gz
mk_args=()
[ -n "$cmd" ] && mk_args+=(--cmd "$cmd")
bash "$MAPDRV_ROOT/scripts/mkinitramfs.sh" --arch "$arch" "${mk_args[@]}" "$initrd" "${adds[@]}"

# Facts about this host that do not change until it reboots are cached per
# boot (the KVM probe's result, the TSC frequency).
boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || uname -n)
host_cache=$MAPDRV_CACHE/vm/host-$boot_id
mkdir -p "$host_cache"

qemu_base=("$qemu_bin" -nodefaults -no-user-config -no-reboot -display none
	-smp "$cpus" -m "$mem" -kernel "$kernel" -initrd "$initrd")
case $arch in
x86_64)
	# microvm: one ISA UART (ttyS0), an IO-APIC, virtio-mmio slots and
	# no ACPI, no PCI: the kernel finds its CPUs in the MP table of the
	# firmware (qboot) and the virtio devices on its command line (QEMU
	# adds them). No keyboard controller to reset through: reboot=t
	# reboots by triple fault, which -no-reboot turns into QEMU's exit.
	# pit=on: the i8254, the kernel's tick until the local APIC timer is
	# calibrated (microvm has it by default under TCG too; said here
	# because the kernel needs it: see timer_boots below).
	# no_timer_check: under TCG on a busy host the emulated IO-APIC timer
	# can tick too slowly for the boot-time check, which then panics
	# ("IO-APIC + timer doesn't work"); the timer itself works, as in any VM.
	qemu_base+=(-M microvm,acpi=off,pit=on)
	base_append="console=ttyS0 panic=-1 reboot=t no_timer_check"
	;;
arm64)
	# The virt machine: GIC, PL011 UART (ttyAMA0), virtio-mmio slots, RAM
	# from 1 GiB physical; the kernel boots directly from its Image.
	qemu_base+=(-M virt)
	base_append="console=ttyAMA0 panic=-1"
	;;
arm)
	# The same virt machine for a 32-bit ARMv7 kernel (zImage); RAM from
	# 1 GiB physical, of which the 3G/1G kernel maps about 760 MiB
	# directly: the rest is ZONE_HIGHMEM.
	qemu_base+=(-M virt)
	base_append="console=ttyAMA0 panic=-1"
	;;
esac

# kvm_probe: boot this kernel under KVM with mapdrv.probe=1, within a few
# seconds; the guest's /init prints MAPDRV-PROBE-OK at once. Prints "ok" or
# why not. (On some hosts -cpu host aborts on an MSR write, or the boot hangs.)
kvm_probe() {
	local limit=${MAPDRV_KVM_PROBE_TIMEOUT:-5} plog=$work/kvm-probe.log rc=0
	(timeout -k 1 "$limit" "${qemu_base[@]}" -accel kvm -cpu host -serial stdio \
		-append "$base_append mapdrv.probe=1" </dev/null >"$plog" 2>&1; exit $?) 2>/dev/null || rc=$?
	if grep -aq MAPDRV-PROBE-OK "$plog"; then
		echo ok
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "a KVM boot did not reach /init within ${limit}s"
	else
		echo "QEMU with KVM failed (status $rc): $(grep -a -m1 -i error "$plog" || tail -n1 "$plog")"
	fi
}

# choose_accel: sets accel (kvm or tcg) and accel_note.
choose_accel() {
	accel=tcg accel_note=
	case $kvm in
	off)
		accel_note="KVM off (--kvm off)"
		! $icount || accel_note="icount: 1 ns of guest time per guest instruction"
		return
		;;
	on) accel=kvm; return ;;
	esac
	if [ "$arch" != "$(host_arch)" ]; then
		accel_note="an $arch guest on an $(host_arch) host"
		return
	fi
	if [ ! -e /dev/kvm ]; then
		accel_note="no /dev/kvm"
		return
	fi
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		accel_note="/dev/kvm is not usable by $(id -un)"
		return
	fi
	local qver cache result
	qver=$("$qemu_bin" --version | awk 'NR == 1 { print $4 }')
	cache=$host_cache/kvm-probe-qemu-$qver
	if [ -f "$cache" ]; then
		result=$(cat "$cache")
	else
		info "probing KVM (at most ${MAPDRV_KVM_PROBE_TIMEOUT:-5}s, once per host boot)"
		result=$(kvm_probe)
		echo "$result" >"$cache"
	fi
	if [ "$result" = ok ]; then
		accel=kvm
	else
		accel_note="KVM probe: $result (cached in $cache)"
	fi
}

# host_tsc_khz: the host's TSC frequency in kHz, which a TCG guest's TSC
# runs at (QEMU's TCG reads the host's TSC). From the host kernel's log, else
# /proc/cpuinfo; nothing when the host has no constant TSC.
host_tsc_khz() {
	if [ -n "${MAPDRV_TSC_KHZ:-}" ]; then
		echo "$MAPDRV_TSC_KHZ"
		return
	fi
	grep -qw constant_tsc /proc/cpuinfo || return 0
	local f=$host_cache/tsc-khz mhz
	if [ ! -s "$f" ]; then
		mhz=$(dmesg 2>/dev/null | sed -n \
			-e 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/1 \1/p' \
			-e 's/.*tsc: Detected \([0-9.]*\) MHz TSC.*/2 \1/p' \
			-e 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/3 \1/p' |
			sort -n | awk 'NR == 1 { print $2 }')
		[ -n "$mhz" ] || mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
		[ -n "$mhz" ] || return 0
		awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 + 0.5 }' >"$f"
	fi
	cat "$f"
}

choose_accel
if [ "$accel" = kvm ]; then
	accel_args=(-accel kvm -cpu host)
	clock_append=
elif [ "$arch" != x86_64 ]; then
	# arm64's and arm's generic timer is a fixed-frequency counter that TCG derives
	# from the host's clock: nothing to calibrate.
	accel_args=(-accel tcg -cpu max)
	clock_append=
else
	accel_args=(-accel tcg -cpu max)
	tsc_khz=$(host_tsc_khz)
	# Under icount TCG's TSC is the virtual clock itself, 1 tick per ns.
	! $icount || tsc_khz=1000000
	if [ -n "$tsc_khz" ]; then
		clock_append="tsc_early_khz=$tsc_khz tsc=reliable clocksource=tsc"
	else
		clock_append=
		accel_note="${accel_note:+$accel_note; }host TSC frequency unknown, the guest calibrates its own"
	fi
fi
append="$base_append${clock_append:+ $clock_append}"
if $icount; then
	# sleep=on: while every vCPU is idle the clock follows real time, so
	# timers and timeouts still fire; the vCPUs run in turn on one thread.
	accel_args+=(-icount shift=0,sleep=on)
	append="$append mapdrv.icount=1"
fi
$shell && append="$append mapdrv.shell=1"
# More ports after the console, each written to a file on the host: virtio
# consoles hvc0, hvc1 in this order (every machine here has one UART).
serial_args=()
extra_ports=0
# add_port FILE: the next port, written to FILE; sets port to its guest tty.
add_port() {
	mkdir -p "$(dirname "$1")"
	: >"$1"
	[ "$extra_ports" -gt 0 ] || serial_args+=(-device virtio-serial-device)
	serial_args+=(-chardev "file,id=port$extra_ports,path=$1"
		-device "virtconsole,chardev=port$extra_ports")
	port=hvc$extra_ports
	extra_ports=$((extra_ports + 1))
}
if [ -n "$export_file" ]; then
	add_port "$export_file"
	append="$append mapdrv.export=$port"
fi
if [ -n "$kernel_log" ]; then
	add_port "$kernel_log"
	append="$append mapdrv.kernel_log=$port log_buf_len=8M"
fi
append="$append$extra_append"
if $gdb_stub; then
	[ "$arch" = x86_64 ] || die_status 2 "--gdb is set up for x86_64 only"
	append="$append nokaslr"
fi

mkdir -p "$(dirname "$log")"
: >"$log"
stage "booting $(basename "$kernel") ($arch) under ${accel^^} ($cpus CPUs, $mem)${accel_note:+ [$accel_note]}"
info "kernel: $kernel"
info "console log: $log"

# A timer the kernel turned off: with no ACPI PM timer to calibrate against
# (microvm has none), x86_64 checks the local APIC timer against PIT ticks,
# and under TCG on a busy host QEMU drops PIT ticks (13 to 21 of 25 in a
# tenth of a second with four guests on two CPUs), so the kernel may
# disable the APIC timer: no one-shot timer, no high-resolution timers.
# mapdrv.timer_retry=1 asks /init to reboot such a guest at once
# (MAPDRV-REBOOT); it is booted again, at most timer_boots times in all, the
# last without the flag, so that a guest that never gets its timer still
# runs and guest/clock says so. Not with --shell or --gdb: someone is at
# the console or the debugger, and a new QEMU would drop them.
timer_boots=1
[ "$arch" = x86_64 ] && [ "$accel" = tcg ] && ! $shell && ! $gdb_stub && timer_boots=8
qemu_cmd() {
	local a=$append
	[ "$1" -lt "$timer_boots" ] && a="$a mapdrv.timer_retry=1"
	qemu=("${qemu_base[@]}" "${accel_args[@]}" -append "$a")
	# -gdb on the loopback address only: the stub gives full control of the VM.
	if $gdb_stub; then qemu+=(-gdb tcp:127.0.0.1:1234); fi
}
start=$(date +%s%N)
rc=0
if $shell; then
	qemu_cmd 1
	# The console is the terminal: Ctrl-A X ends QEMU, Ctrl-A H lists keys.
	qemu+=(-serial mon:stdio "${serial_args[@]}")
	if [ "$timeout_secs" -gt 0 ]; then
		timeout --foreground -k 5 "$timeout_secs" "${qemu[@]}" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
	else
		"${qemu[@]}" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
	fi
else
	limit=()
	[ "$timeout_secs" -gt 0 ] && limit=(timeout -k 5 "$timeout_secs")
	boot=1
	while :; do
		qemu_cmd "$boot"
		qemu+=(-serial stdio "${serial_args[@]}")
		rc=0
		if $quiet; then
			# (Not exec'd by the subshell, so that the shell's own "Aborted"
			# notice for a QEMU killed by a signal goes to /dev/null.)
			("${limit[@]}" "${qemu[@]}" </dev/null >"$log" 2>&1; exit $?) 2>/dev/null || rc=$?
		else
			("${limit[@]}" "${qemu[@]}" </dev/null 2>&1 | tee "$log"; exit "${PIPESTATUS[0]}") 2>/dev/null || rc=$?
		fi
		[ "$rc" = 0 ] && [ "$boot" -lt "$timer_boots" ] && grep -aq '^MAPDRV-REBOOT' "$log" || break
		info "boot $boot: $(grep -a -m1 '^MAPDRV-REBOOT' "$log" | cut -d' ' -f2-); booting again"
		boot=$((boot + 1))
	done
fi
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
sed -i 's/\r$//' "$log"
[ -z "$kernel_log" ] || sed -i 's/\r$//' "$kernel_log"
took=$(printf '%d.%03ds' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)))

console_tail() {
	printf -- '--- last 30 console lines (full log: %s) ---\n' "$log" >&2
	tail -n 30 "$log" >&2
	printf -- '---\n' >&2
}

if [ "$rc" = 124 ] || { [ "$timeout_secs" -gt 0 ] && [ "$rc" = 137 ]; }; then
	console_tail
	die_status 124 "the VM did not finish within ${timeout_secs}s under ${accel^^}: QEMU was stopped"
fi
status=$(grep -aoE 'MAPDRV-EXIT [0-9]+' "$log" | tail -n1 | cut -d' ' -f2 || true)
if [ -z "$status" ]; then
	console_tail
	why="QEMU exited with status $rc"
	panic=$(grep -a -m1 'Kernel panic' "$log" || true)
	[ -n "$panic" ] && why="the guest kernel panicked: ${panic#*] }"
	die_status 125 "the VM ended after $took without reporting an exit status (no MAPDRV-EXIT line): $why"
fi
info "VM finished in $took under ${accel^^}; guest exit status $status"
exit "$status"
