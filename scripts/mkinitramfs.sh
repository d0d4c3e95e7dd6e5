#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the test VM's initramfs: a gzip'd cpio archive with a static busybox
# (and a symlink per applet), /init from scripts/guest/init, a /dev/console
# node, and the extra files given on the command line.
#
# Usage: scripts/mkinitramfs.sh [--arch ARCH] [--cmd STRING] OUTPUT [SRC[:DEST]...]
#   --arch ARCH    the guest's architecture, whose busybox goes in (x86_64,
#                  arm64 or arm; default $MAPDRV_ARCH, else x86_64)
#   --cmd STRING   put STRING into /etc/mapdrv-cmd: /init runs it with sh
#   OUTPUT         the archive to write (its directory is created); it is
#                  replaced only when its content changes
#   SRC[:DEST]     a file or directory to add. Without DEST: *.ko goes to
#                  /lib/modules/, *.sh to /tests/, anything else to /bin/;
#                  a DEST ending in / is a directory to put SRC into; a
#                  directory SRC is added with everything below it.
# The archive is deterministic (fixed timestamps, sorted entries, gzip -n): the
# same inputs give the same bytes. Environment: BUSYBOX (default: the host's
# busybox on PATH for the host's architecture, else the one scripts/setup.sh
# unpacked for ARCH; it must be statically linked).
source "$(dirname "$0")/lib.sh"

usage() { sed -n '/^# Usage:/,/^# on PATH/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

cmd=
have_cmd=false
arch=
while [ $# -gt 0 ]; do
	case $1 in
	--cmd) [ $# -ge 2 ] || usage; cmd=$2; have_cmd=true; shift 2 ;;
	--arch) [ $# -ge 2 ] || usage; arch=$2; shift 2 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) die "mkinitramfs.sh: unknown option '$1'" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage
output=$1
shift

# The kernel's own cpio writer: it makes device nodes without root and takes a
# fixed timestamp. Built once from the kernel source into the cache.
gen_init_cpio_tool() {
	local src c hash tool
	src=$(kernel_src_dir) || die "no kernel source (for usr/gen_init_cpio.c): run scripts/setup.sh"
	c=$src/usr/gen_init_cpio.c
	[ -f "$c" ] || die "missing $c"
	hash=$(sha256sum "$c" | cut -c1-12)
	tool=$MAPDRV_CACHE/tools/gen_init_cpio-$hash
	if [ ! -x "$tool" ]; then
		mkdir -p "$(dirname "$tool")"
		run_logged "$MAPDRV_CACHE/logs/gen_init_cpio.log" cc -O2 -o "$tool.tmp" "$c"
		mv "$tool.tmp" "$tool"
	fi
	echo "$tool"
}

arch=$(mapdrv_arch "$arch")
busybox=${BUSYBOX:-$(guest_busybox "$arch")}
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
	die "no busybox for $arch found${busybox:+ at $busybox}: run scripts/setup.sh (Debian's busybox-static:$(debian_arch "$arch"))"
fi
# The applet list comes from a busybox that runs here: the guest's own, or
# for another architecture the host's (Debian builds busybox-static with one
# configuration for every architecture).
list_busybox=$busybox
[ "$arch" = "$(host_arch)" ] || list_busybox=$(guest_busybox "$(host_arch)")
if ! file -L "$busybox" | grep -q 'statically linked'; then
	die "$busybox is not statically linked: install busybox-static or set BUSYBOX"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mapdrv-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Entries as "path<TAB>line" so that sort orders them by path; dirs are
# recorded as they are needed.
entries=$work/entries
declare -A have_dir=([/]=1)
: >"$entries"

add_dir() {
	local d=$1
	[ -n "${have_dir[$d]:-}" ] && return 0
	add_dir "$(dirname "$d")"
	have_dir[$d]=1
	printf '%s\tdir %s 0755 0 0\n' "$d" "$d" >>"$entries"
}

check_name() {
	case $1 in
	*[[:space:]]*) die "path with white space cannot go into the initramfs: '$1'" ;;
	esac
}

# add_file SRC DEST [MODE]: MODE defaults to 0755 for an executable SRC or a
# DEST in a bin directory, else 0644.
add_file() {
	local src=$1 dest=$2 mode=${3:-0644}
	check_name "$src"
	check_name "$dest"
	if [ -z "${3:-}" ]; then
		case $dest in
		/bin/* | /sbin/* | /usr/bin/* | /usr/sbin/*) mode=0755 ;;
		*) [ -x "$src" ] && mode=0755 ;;
		esac
	fi
	add_dir "$(dirname "$dest")"
	printf '%s\tfile %s %s %s 0 0\n' "$dest" "$dest" "$(realpath "$src")" "$mode" >>"$entries"
}

default_dest() {
	case $1 in
	*.ko) echo /lib/modules/ ;;
	*.sh) echo /tests/ ;;
	*) echo /bin/ ;;
	esac
}

# SRC[:DEST]: DEST is what follows the last colon when it is an absolute path.
add_arg() {
	local arg=$1 src dest
	src=$arg dest=
	if [[ $arg == *:/* ]]; then
		src=${arg%:*} dest=${arg##*:}
	fi
	[ -e "$src" ] || die "no such file to put into the initramfs: $src"
	if [ -d "$src" ]; then
		dest=${dest:-/$(basename "$src")}
		dest=${dest%/}
		local f rel
		while IFS= read -r f; do
			rel=${f#"$src"}
			add_file "$f" "$dest/${rel#/}"
		done < <(find "$src" -type f | LC_ALL=C sort)
		return 0
	fi
	dest=${dest:-$(default_dest "$src")}
	[[ $dest == */ ]] && dest=$dest$(basename "$src")
	add_file "$src" "$dest"
}

for d in /proc /sys /dev /tmp /root /etc /lib/modules /tests /bin /sbin /usr/bin /usr/sbin; do
	add_dir "$d"
done
printf '%s\tnod /dev/console 0600 0 0 c 5 1\n' /dev/console >>"$entries"
add_file "$MAPDRV_ROOT/scripts/guest/init" /init 0755
add_file "$busybox" /bin/busybox 0755
for arg in "$@"; do
	add_arg "$arg"
done
if $have_cmd; then
	printf '%s\n' "$cmd" >"$work/mapdrv-cmd"
	add_file "$work/mapdrv-cmd" /etc/mapdrv-cmd
fi

# A symlink per busybox applet, unless a file given above has that name.
declare -A taken
while IFS=$'\t' read -r path _; do taken[$path]=1; done <"$entries"
while IFS= read -r applet; do
	[ -n "${taken[/$applet]:-}" ] && continue
	add_dir "$(dirname "/$applet")"
	printf '%s\tslink /%s /bin/busybox 0777 0 0\n' "/$applet" "$applet" >>"$entries"
done < <("$list_busybox" --list-full)

dups=$(cut -f1 "$entries" | LC_ALL=C sort | uniq -d | xargs)
[ -z "$dups" ] || die "the initramfs would have these paths twice: $dups"

LC_ALL=C sort -t$'\t' -k1,1 "$entries" | cut -f2- >"$work/list"
tool=$(gen_init_cpio_tool)
mkdir -p "$(dirname "$output")"
"$tool" -t 0 "$work/list" | gzip -n -6 >"$work/initramfs.cpio.gz" ||
	die "could not write the initramfs (list: $work/list)"
if cmp -s "$work/initramfs.cpio.gz" "$output"; then
	exit 0
fi
mv -f "$work/initramfs.cpio.gz" "$output"
