#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `mapdrv layout --json` and `--svg` from a real VM, checked on the host with
# parsers other than the tool's own (Python's json and xml.etree): the JSON
# parses, its regions are ordered and do not overlap, every allocation lies
# in the region it names; the SVG is a well-formed SVG document that names
# the regions and plots the vmalloc pages. The files come back the way
# `make run` brings its picture home: over the VM's second serial port
# (scripts/run-vm.sh --export, scripts/guest/export-file,
# scripts/extract-exports.sh). The VM boots `quiet`, so its whole kernel log
# comes home too (run-vm.sh --kernel-log) and must be clean.
# On x86_64, and on arm64 and arm when make test gives their VMs (those
# checks' names start with "arm64 " or "arm ").
# Environment (from tests/run.sh): MAPDRV_KERNEL, MAPDRV_MODULE, MAPDRV_TOOL,
# MAPDRV_ARM64_KERNEL, MAPDRV_ARM64_MODULE, MAPDRV_ARM64_TOOL, MAPDRV_ARM_*
# likewise, MAPDRV_TEST_WORK.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v python3 >/dev/null || { fail "python3 is there" "install python3 (scripts/setup.sh does)"; finish; }

# check_layout ARCH KERNEL MODULE TOOL: one VM of ARCH, its files checked.
check_layout() {
	local arch=$1 kernel=$2 module=$3 tool=$4 p=
	[ "$arch" = x86_64 ] || p="$arch "
	local work=${MAPDRV_TEST_WORK:-$(mktemp -d)}/layout-$arch
	rm -rf "$work" && mkdir -p "$work"
	if [ -z "$tool" ] || [ ! -f "$module" ]; then
		fail "${p}module and tool are given" "need the $arch module and tool"
		return
	fi

	_run bash "$root/scripts/run-vm.sh" --arch "$arch" --quiet --kernel "$kernel" --timeout 180 \
		--log "$work/console.log" --export "$work/exports.txt" --kernel-log "$work/dmesg.txt" \
		--add "$module" --add "$tool:/bin/mapdrv" \
		--add "$root/scripts/guest/export-file:/bin/export-file" -- \
		'insmod /lib/modules/rust_mapdrv.ko &&
		 mapdrv layout --json >/tmp/layout.json && mapdrv layout --svg /tmp/layout.svg >/dev/null &&
		 export-file layout.json /tmp/layout.json && export-file layout.svg /tmp/layout.svg'
	local vm_st=$_st vm_said
	vm_said=$(_said)
	check "${p}the VM's whole kernel log is clean" bash "$root/scripts/check-kernel-log.sh" \
		--dmesg "$work/dmesg.txt" "$work/console.log"
	if [ "$vm_st" -ne 0 ]; then
		fail "${p}the VM ran mapdrv layout --json and --svg" "status $vm_st$vm_said (console: $work/console.log)"
		return
	fi
	pass "${p}the VM ran mapdrv layout --json and --svg"
	check "${p}the files came back over the export port" bash "$root/scripts/extract-exports.sh" "$work/exports.txt" "$work"

	local py_out line rest
	py_out=$(python3 - "$work/layout.json" "$work/layout.svg" "$p" 2>&1 <<'EOF'
import json, sys
import xml.etree.ElementTree as ET

prefix = sys.argv[3]
def result(ok, name, why=""):
    name = prefix + name
    print(f"PASS: {name}" if ok else f"FAIL: {name}: {why}")

try:
    j = json.load(open(sys.argv[1]))
    result(True, "layout --json is valid JSON")
except Exception as e:
    result(False, "layout --json is valid JSON", e)
    sys.exit(0)

regions = [(r["name"], int(r["start"], 16), int(r["end"], 16)) for r in j["regions"]]
# A 32-bit kernel (ARM, the only one the project builds) says va_bits 32.
arch = "arm" if j["layout"].get("va_bits") == "32" else "64-bit"
result(len(regions) >= (7 if arch == "arm" else 8), "the JSON lists the regions", f"{len(regions)} regions")
bad = [n for n, s, e in regions if not s < e]
result(not bad, "every region has start < end", bad)
# In address order; two regions are disjoint or one holds the other (arm64
# maps its kernel image inside the vmalloc area), never partly overlapping.
order = [(a[0], b[0]) for a, b in zip(regions, regions[1:]) if a[1] > b[1]]
result(not order, "regions are in address order", order)
partial = [(a[0], b[0]) for i, a in enumerate(regions) for b in regions[i + 1:]
           if a[1] < b[2] and b[1] < a[2]                      # they overlap
           and not (a[1] <= b[1] and b[2] <= a[2]) and not (b[1] <= a[1] and a[2] <= b[2])]
result(not partial, "regions do not overlap but where one holds another", partial)
names = {n for n, _, _ in regions}
# 32-bit ARM has no vmemmap (FLATMEM) and its kernel image is in lowmem;
# it has the pkmap window and the vectors page instead.
wanted = (["direct_map", "vmalloc", "pkmap", "vectors", "modules", "fixmap"] if arch == "arm"
          else ["direct_map", "vmalloc", "vmemmap", "kernel_image", "modules", "fixmap"])
for want in wanted:
    result(want in names, f"region {want} is listed", sorted(names))
layout = j["layout"]
po = int(layout["page_offset"], 16)
result(dict((n, s) for n, s, _ in regions)["direct_map"] == po, "direct_map starts at PAGE_OFFSET")
# The physical address of PAGE_OFFSET: 0 on x86_64, the start of RAM
# (memstart_addr, PHYS_OFFSET) on arm64.
phys_offset = int(layout.get("memstart_addr", layout.get("phys_offset", "0x0")), 16)

allocs = j["demo"]["allocations"]
result(len(allocs) == 11, "the JSON has the demo's 11 allocations", len(allocs))
def region_of(addr):
    # The innermost region that holds addr.
    holding = [(e - s, n) for n, s, e in regions if s <= addr < e]
    return min(holding)[1] if holding else "unknown"
wrong = [(a["name"], a["region"], region_of(int(a["vaddr"], 16))) for a in allocs
         if region_of(int(a["vaddr"], 16)) != a["region"]]
result(not wrong, "every allocation lies in the region it names", wrong)
direct = [a for a in allocs if a["region"] == "direct_map"]
wrong = [a["name"] for a in direct if int(a["vaddr"], 16) - po + phys_offset != int(a["phys"], 16)]
result(direct and not wrong, "direct-map allocations: phys == vaddr - PAGE_OFFSET + PHYS_OFFSET", wrong)
pages = j["demo"]["vmalloc_pages"]
result(len(pages) == 15, "the JSON has the 15 vmalloc pages", len(pages))
result(j["checks_failed"] == 0 and j["checks_passed"] >= 25, "the JSON counts the checks, none failed",
       (j["checks_passed"], j["checks_failed"]))

try:
    svg = ET.parse(sys.argv[2]).getroot()
    result(True, "layout --svg is well-formed XML")
except Exception as e:
    result(False, "layout --svg is well-formed XML", e)
    sys.exit(0)
def local(tag):
    return tag.rsplit("}", 1)[-1]
result(local(svg.tag) == "svg" and svg.tag.startswith("{"), "the picture's root is a namespaced svg element", svg.tag)
texts = " | ".join(t.text or "" for t in svg.iter() if local(t.tag) == "text")
for want in ["direct_map", "vmalloc (", "kernel_image" if arch != "arm" else "pkmap", "modules", "kmalloc",
             "/dev/mapdrv buffer", "page frame number"]:
    result(want in texts, f"the picture shows {want}", texts[:200])
circles = sum(1 for t in svg.iter() if local(t.tag) == "circle")
result(circles >= 15 + 10, "the picture plots the vmalloc pages and the buffer's pages", f"{circles} circles")
EOF
	)
	# The checker's lines through the helpers, so that they count.
	while IFS= read -r line; do
		case $line in
		"PASS: "*) pass "${line#PASS: }" ;;
		"FAIL: "*) rest=${line#FAIL: }; fail "${rest%%: *}" "${rest#*: }" ;;
		*) [ -n "$line" ] && fail "${p}the JSON and SVG checker runs" "$line" ;;
		esac
	done <<<"$py_out"
}

check_layout x86_64 "$MAPDRV_KERNEL" "$MAPDRV_MODULE" "$MAPDRV_TOOL"
if [ -n "${MAPDRV_ARM64_KERNEL:-}" ]; then
	check_layout arm64 "$MAPDRV_ARM64_KERNEL" "${MAPDRV_ARM64_MODULE:-}" "${MAPDRV_ARM64_TOOL:-}"
else
	skip "arm64 layout" "no arm64 kernel given (make test without ARCH gives it)"
fi
if [ -n "${MAPDRV_ARM_KERNEL:-}" ]; then
	check_layout arm "$MAPDRV_ARM_KERNEL" "${MAPDRV_ARM_MODULE:-}" "${MAPDRV_ARM_TOOL:-}"
else
	skip "arm layout" "no arm kernel given (make test without ARCH gives it)"
fi
finish
