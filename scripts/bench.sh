#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boot the VM (KVM when it works, else TCG), run `mapdrv bench`
# in it with the module loaded by the tool itself, and save the report on
# the host: bench.json (sent over the VM's second serial port with
# scripts/guest/export-file, decoded by scripts/extract-exports.sh),
# bench.txt (the tables), bench.md (the same as Markdown), bench.svg (the
# plot, drawn on the host from the JSON), console.log and dmesg.txt (the
# guest's whole kernel log, scripts/run-vm.sh --kernel-log: the VM boots
# `quiet`, so the console does not show warnings), which is checked like
# tests/run.sh checks a console (scripts/check-kernel-log.sh).
#
# Usage: scripts/bench.sh [options] [-- MAPDRV BENCH ARGS...]
#   --out DIR       where to save (default: results/bench-<date>-<time>)
#   --mem SIZE      guest memory (default 6G: a 1 GiB buffer, two 1 GiB
#                   memfds, one on THP, and 2 GiB of anonymous memory at the
#                   largest size)
#   --timeout SECS  stop the VM after SECS (default 3600)
#   --smoke         a quick run: 16 and 512 pages (one 2 MiB block), 2 rounds, load timing at
#                   one size (what `make test` runs), 1G of guest memory
#   --arch ARCH     the VM's architecture (x86_64, arm64 or arm; default
#                   $MAPDRV_ARCH, else x86_64). On arm64 the VM is emulated
#                   (TCG): its ratios compare paths under emulation
#   --module FILE   rust_mapdrv.ko (default: the one make module builds for
#                   ARCH)
#   --tool FILE     the static mapdrv tool for ARCH (default: the release
#                   build); the tables and the picture are made on the host
#                   by the host's own build of the tool
#   --kvm MODE      auto, on or off (scripts/run-vm.sh)
#   --icount        TCG with QEMU's instruction counter (scripts/run-vm.sh
#                   --icount): every time in the report counts guest
#                   instructions (1 ns each), the same from run to run; the
#                   report's accelerator says "icount"
#   --kernel FILE   the VM's kernel image (default: the cached vm kernel of ARCH)
#   ARGS            more `mapdrv bench` options, e.g. --rounds 7 --sizes 64,4096
# Exit status: 0 when the guest's bench succeeded, its JSON was saved and
# the guest's kernel log is clean; 3 when all was saved but the kernel log
# shows a problem (a WARNING, BUG, lockdep report...: printed); 1 otherwise.
source "$(dirname "$0")/lib.sh"

# This script's arguments as a command line, for the report.
bench_script_args=$(printf '%q ' "$@")
bench_script_args=${bench_script_args% }
usage() { sed -n '/^# Usage:/,/^# Exit status/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

out=
mem=6G
timeout_secs=3600
smoke=false
arch=
module=
tool=
kvm=auto
vm_args=()
kernel_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--out | --mem | --timeout | --module | --tool | --kvm | --kernel | --arch)
		[ $# -ge 2 ] || { echo "bench.sh: $1 needs an argument" >&2; usage; }
		v=$2
		case $1 in
		--out) out=$v ;; --mem) mem=$v ;; --timeout) timeout_secs=$v ;;
		--module) module=$v ;; --tool) tool=$v ;; --kvm) kvm=$v ;;
		--kernel) kernel_args=(--kernel "$v") ;;
		--arch) arch=$v ;;
		esac
		shift 2
		;;
	--smoke) smoke=true; shift ;;
	--icount) vm_args+=(--icount); shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	*) echo "bench.sh: unknown argument '$1' (mapdrv bench options go after --)" >&2; usage ;;
	esac
done
arch=$(mapdrv_arch "$arch")
if [ -z "$module" ]; then
	module=$MAPDRV_ROOT/rust_mapdrv.ko
	[ "$arch" = x86_64 ] || module=$MAPDRV_ROOT/build/$arch/rust_mapdrv.ko
fi
[ -n "$tool" ] || tool=$MAPDRV_ROOT/userspace/target/$(rust_target "$arch")/release/mapdrv
# The host's tool reads the JSON back into tables and a picture.
host_tool=$tool
[ "$arch" = "$(host_arch)" ] || host_tool=$MAPDRV_ROOT/userspace/target/$(rust_target "$(host_arch)")/release/mapdrv
[ -f "$module" ] || die "no module at $module: run make module ARCH=$arch"
[ -f "$tool" ] || die "no mapdrv tool at $tool: run make tool ARCH=$arch"
[ -f "$host_tool" ] || die "no mapdrv tool for this host at $host_tool: run make tool"

bench_args=(--module /lib/modules/rust_mapdrv.ko)
if $smoke; then
	mem=1G
	bench_args+=(--sizes 16,512 --rounds 2 --load-sizes 64)
fi
bench_args+=("$@")
# What the report records to be re-run: the commit the module and tool were
# built from, and the command (make bench passes its own; else this script's).
commit=$(git -C "$MAPDRV_ROOT" describe --always --dirty 2>/dev/null || echo unknown)
command=${MAPDRV_BENCH_COMMAND:-scripts/bench.sh${bench_script_args:+ $bench_script_args}}
bench_args+=(--source-commit "$commit" --command "$command")
[ -n "$out" ] || out=$MAPDRV_ROOT/results/bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/console.log

# The guest: the bench (progress on standard error, the console), then its
# JSON to the host. `quiet` keeps the module's pr_info lines (and KUnit's,
# which run at every load) off the console.
guest_cmd="mapdrv bench $(printf '%q ' "${bench_args[@]}")--json-out /tmp/bench.json >/dev/null || exit
export-file bench.json /tmp/bench.json"

stage "mapdrv bench in the VM: ${bench_args[*]} (results: $out)"
rc=0
: >"$log"
bash "$MAPDRV_ROOT/scripts/run-vm.sh" --arch "$arch" "${kernel_args[@]}" --quiet --log "$log" --mem "$mem" --timeout "$timeout_secs" \
	--kvm "$kvm" "${vm_args[@]}" --append quiet --add "$module:/lib/modules/rust_mapdrv.ko" --add "$tool:/bin/mapdrv" \
	--add "$MAPDRV_ROOT/scripts/guest/export-file:/bin/export-file" --export "$out/exports.txt" \
	--kernel-log "$out/dmesg.txt" -- "$guest_cmd" &
vm_pid=$!
# The bench's progress lines while the VM runs, once each (the runner
# rewrites the log at the end, and tail -F then reads it again); tail ends
# when the runner does.
declare -A seen=()
while IFS= read -r line; do
	line=${line%$'\r'}
	[ -z "${seen[$line]:-}" ] || continue
	seen[$line]=1
	printf '%s\n' "$line" >&2
done < <(tail -n +1 -F --pid="$vm_pid" "$log" 2>/dev/null | grep -a --line-buffered -E '^(mapdrv bench|mapdrv: error)')
wait "$vm_pid" || rc=$?

rm -f "$out/bench.json"
[ ! -f "$out/exports.txt" ] || bash "$MAPDRV_ROOT/scripts/extract-exports.sh" "$out/exports.txt" "$out" >/dev/null || true
kernel_problems=$(kernel_log_problems --dmesg "$out/dmesg.txt" "$log")
show_kernel_problems() {
	printf '%s\n' "$kernel_problems" | while IFS= read -r l; do info "$l"; done
}
if [ "$rc" != 0 ] || [ ! -s "$out/bench.json" ]; then
	[ -z "$kernel_problems" ] || { info "the guest's kernel log:"; show_kernel_problems; }
	die "the bench failed in the VM (status $rc; console log: $log)"
fi
"$host_tool" bench --from-json "$out/bench.json" --svg "$out/bench.svg" >"$out/bench.txt" ||
	die "the guest's JSON does not read back: $out/bench.json"
"$host_tool" bench --from-json "$out/bench.json" --markdown >"$out/bench.md"
cat "$out/bench.txt"
stage "saved: $out/{bench.json,bench.txt,bench.md,bench.svg,console.log,dmesg.txt}"
if [ -n "$kernel_problems" ]; then
	show_kernel_problems
	die_status 3 "the guest's kernel log shows a problem during the bench (above; the whole log: $out/dmesg.txt)"
fi
