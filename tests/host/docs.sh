#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The documentation points at what exists: links between the Markdown files,
# the README's layout and make targets (scripts/check-docs.py); the README
# stays an overview of at most two screens that opens with the two commands.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

check "links, layout paths and make targets in the docs all exist" python3 "$root/scripts/check-docs.py" "$root"
lines=$(wc -l <"$root/README.md")
check "README.md is at most 200 lines" test "$lines" -le 200
check "the README's first screen gives make run and make test" bash -c \
	"head -n 24 '$root/README.md' | grep -q '^make run ' && head -n 24 '$root/README.md' | grep -q '^make test '"
finish
