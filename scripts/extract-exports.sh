#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Decode the files a VM sent with export-file (scripts/guest/export-file)
# over the serial port that scripts/run-vm.sh --export FILE recorded.
#
# Usage: scripts/extract-exports.sh EXPORT_FILE OUTDIR
#   Writes OUTDIR/NAME for each exported NAME and prints the paths; exits 1
#   when a file's base64 does not decode or its END line is missing.
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { sed -n '/^# Usage:/,/^#   when/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
input=$1 outdir=$2
[ -f "$input" ] || die "no export file $input"
mkdir -p "$outdir"
status=0
while read -r name; do
	out=$outdir/$name
	if ! tr -d '\r' <"$input" |
		sed -n "/^MAPDRV-EXPORT-BEGIN $name\$/,/^MAPDRV-EXPORT-END $name\$/p" |
		sed '1d;$d' | base64 -d >"$out.tmp" 2>/dev/null; then
		info "could not decode $name from $input"
		status=1
		rm -f "$out.tmp"
		continue
	fi
	# (grep on the file itself: grep -q ends at the first match, and under
	# pipefail a writer into it that is still writing fails with SIGPIPE.)
	if ! grep -aqxE "MAPDRV-EXPORT-END $name"$'\r''?' "$input"; then
		info "$name is cut short in $input"
		status=1
		rm -f "$out.tmp"
		continue
	fi
	mv "$out.tmp" "$out"
	echo "$out"
done < <(tr -d '\r' <"$input" | sed -n 's/^MAPDRV-EXPORT-BEGIN \([A-Za-z0-9_.-]*\)$/\1/p' | sort -u)
exit $status
