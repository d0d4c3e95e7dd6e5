#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Configure and build the VM kernel out of tree in the cache, once per
# (kernel version, flavour, config fragments) and reused after that.
#
# Usage: scripts/build-kernel.sh [FLAVOUR [ARCH]]
#   FLAVOUR  vm (the default), debug or gdb (the last two: x86_64 only)
#   ARCH     x86_64, arm64 or arm (default: $MAPDRV_ARCH, else x86_64)
# Prints the build directory (usable as KDIR) on standard output.
source "$(dirname "$0")/lib.sh"

flavour=${1:-vm}
arch=$(mapdrv_arch "${2:-}")
src=$(kernel_src_dir) || die "no kernel source: run scripts/setup.sh first"
out=$(kernel_build_dir "$flavour" "$arch")
image=$(kernel_image_path "$arch")
stamp=$out/.mapdrv-built

if [ -f "$stamp" ]; then
	echo "$out"
	exit 0
fi
# One build of a tree at a time: a second make (make run while make test
# builds, say) waits for the first and then finds it built, instead of
# building into the same directory and log at once.
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
if ! flock -n 9; then
	stage "waiting for another build of $(basename "$out") to finish"
	flock 9
fi
if [ -f "$stamp" ]; then
	echo "$out"
	exit 0
fi

ver=$(cat "$MAPDRV_CACHE/src/version")
log=$MAPDRV_CACHE/logs/kernel-$arch-$flavour.log
read -r -a make_args <<<"$(kernel_make_args "$arch")"
kmake() { make -C "$src" O="$out" "${make_args[@]}" "$@"; }

stage "configuring Linux $ver ($arch $flavour): tinyconfig + $(kconfig_fragments "$flavour" "$arch" | xargs -n1 basename | xargs)"
mkdir -p "$out"
: >"$log"
run_logged "$log.config" kmake tinyconfig
# shellcheck disable=SC2046
run_logged "$log.merge" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" $(kconfig_fragments "$flavour" "$arch")
run_logged "$log.olddefconfig" kmake olddefconfig

# Kconfig drops an option silently when a dependency is missing (CONFIG_RUST
# needs a usable rustc and bindgen, KASAN is dropped by SLUB_TINY...): check
# that every line of the fragments made it into the final .config.
lost=()
while IFS= read -r line; do
	case $line in
	CONFIG_*=*) grep -qxF "$line" "$out/.config" || lost+=("$line") ;;
	"# CONFIG_"*" is not set")
		opt=${line#"# "}; opt=${opt%% *}
		grep -q "^$opt=" "$out/.config" && lost+=("$line") ;;
	esac
done < <(kconfig_fragments "$flavour" "$arch" | xargs cat)
if [ ${#lost[@]} -gt 0 ]; then
	if ! grep -qx CONFIG_RUST=y "$out/.config"; then
		info "CONFIG_RUST did not survive; the kernel's own check says:"
		kmake rustavailable >&2 || true
	fi
	die "these config options did not survive olddefconfig: ${lost[*]} (see $out/.config)"
fi

jobs=$(nproc)
stage "building Linux $ver ($arch $flavour) with -j$jobs, about 5 to 7 minutes on 2 cores (log: $log)"
start=$(date +%s)
# The build's own output goes to the log; a heartbeat line every minute shows
# that it is alive and which file it is on.
kmake -j"$jobs" all >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null && sleep 1; done
	kill -0 "$pid" 2>/dev/null && info "... $(($(date +%s) - start))s: $(tail -n1 "$log" | cut -c1-100)"
done
if ! wait "$pid"; then
	printf -- '--- last 40 lines of %s ---\n' "$log" >&2
	tail -n 40 "$log" >&2
	die "kernel build failed (full log: $log)"
fi
[ -f "$out/$image" ] || die "kernel build produced no $image (log: $log)"
echo "$ver $arch $flavour $(($(date +%s) - start))s" >"$stamp"
stage "kernel built in $(($(date +%s) - start))s: $out"
echo "$out"
