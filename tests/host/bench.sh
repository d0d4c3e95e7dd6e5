#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`'s pipeline at small sizes (scripts/bench.sh --smoke: 16 and
# 512 pages, 2 rounds, the load timed at 64 pages, in a VM of its own,
# under QEMU's instruction counter, --icount: the report says so, and its
# times, counts of guest instructions, repeat from round to round):
# the guest's report reaches the host as well-formed JSON with every path
# and metric, the tool reads it back, the SVG is well-formed XML, the
# guest's whole kernel log (dmesg, brought home: the VM boots `quiet`) is
# clean. Fault
# counts are behaviour and are checked; no timing is asserted (speed targets
# belong to the benchmark's report, not to tests).
# Environment (from tests/run.sh): MAPDRV_KERNEL, MAPDRV_MODULE, MAPDRV_TOOL,
# MAPDRV_TEST_WORK.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$MAPDRV_TEST_WORK/bench-smoke
rm -rf "$out"

if [ -z "$MAPDRV_TOOL" ] || [ ! -f "$MAPDRV_TOOL" ]; then
	fail "bench smoke run works" "no mapdrv tool (tests/run.sh --tool)"
	finish
fi
rc=0
bash "$root/scripts/bench.sh" --smoke --icount --kernel "$MAPDRV_KERNEL" --module "$MAPDRV_MODULE" \
	--tool "$MAPDRV_TOOL" --out "$out" >"$MAPDRV_TEST_WORK/bench.out" 2>&1 || rc=$?
check "the bench VM's kernel log is clean" bash "$root/scripts/check-kernel-log.sh" \
	--dmesg "$out/dmesg.txt" "$out/console.log"
# 3: all saved, but the kernel log shows a problem (the check above).
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
	fail "bench smoke run works" "$(tail -n 3 "$MAPDRV_TEST_WORK/bench.out" | tr '\n' ' ')"
	finish
fi
pass "bench smoke run works"
check "the guest's JSON was saved on the host" test -s "$out/bench.json"

# Shape of the report, with Python's own JSON parser (not the tool's).
check "bench JSON is well-formed with every path and metric" python3 - "$out/bench.json" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
for key in ("tool", "env", "rounds", "sizes", "paths", "pread_paths", "metrics", "results", "load", "targets"):
    assert key in r, f"no {key}"
assert r["sizes"] == [16, 512], r["sizes"]
assert r["rounds"] == 2
assert r["env"]["clocksource"] not in ("", "unknown"), r["env"]
assert r["env"]["accelerator"] == "TCG icount", r["env"]
paths = [p["name"] for p in r["paths"]]
pread = [p["name"] for p in r["pread_paths"]]
assert {"fault", "faultaround", "prefault", "huge", "memfd", "memfd-thp", "memfd-populate", "anon"} <= set(paths), paths
got = {(s["metric"], s["path"], s["pages"]): s for s in r["results"]}
private = ["fault", "faultaround", "prefault", "memfd"]
for m in r["metrics"]:
    if m["name"] == "pread":
        measured = pread
    elif m["name"].startswith("private_write"):
        measured = private
        assert not [s for s in r["results"] if s["metric"] == m["name"] and s["path"] not in private], m
    else:
        measured = paths
    for p in measured:
      for pages in (16, 512):
        s = got.get((m["name"], p, pages))
        assert s, f"no {m['name']} for {p} at {pages} pages"
        assert len(s["rounds"]) == 2, s
        assert all(math.isfinite(x) and x >= 0 for x in s["rounds"]), s
        assert s["min"] <= s["median"] <= s["max"], s
        if m["reference"]:
            assert s["ratio"]["vs"] == m["reference"] and len(s["ratio"]["rounds"]) == 2, s
assert [l["pages"] for l in r["load"]] == [64], r["load"]
assert r["load"][0]["total_ns_per_page"]["median"] > 0
assert len(r["targets"]) == 8 and all("met" in t for t in r["targets"])
assert r["env"]["pinned_cpu"] in range(r["env"]["cpus"]), r["env"]
# What it takes to re-run it: the commit and the command.
assert r["source_commit"] and r["source_commit"] != "unknown", r.get("source_commit")
assert r["command"].startswith("scripts/bench.sh --smoke --icount --kernel "), r.get("command")
PY
# Under icount a time is a count of instructions: the same work gives the
# same count from round to round (under TCG's wall clock the rounds of a
# read spread by 10-25%). The sequential read of anonymous memory at 512
# pages is the steadiest work of the run: no fault, no allocation.
check "under icount the rounds of the same work agree within 1%" python3 - "$out/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
[s] = [s for s in r["results"] if s["metric"] == "read" and s["path"] == "anon" and s["pages"] == 512]
lo, hi = min(s["rounds"]), max(s["rounds"])
assert lo > 0 and hi / lo <= 1.01, s["rounds"]
PY

# Fault counts are what each mode does, not a speed: at 16 pages, one fault
# each in fault mode, one 16-page window in faultaround mode, none after
# prefault and MAP_POPULATE; at 512 pages (one 2 MiB block), one fault for
# the whole block in huge mode and for the THP memfd.
# faults PATH [METRIC [PAGES]]: the rounds of METRIC (faults) at PAGES (16).
faults() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join(str(x) for s in r["results"] if s["metric"] == sys.argv[3] and s["path"] == sys.argv[2] and s["pages"] == int(sys.argv[4]) for x in s["rounds"]))' "$out/bench.json" "$1" "${2:-faults}" "${3:-16}"
}
expect_match "fault mode takes one fault per page" '^1\.0 1\.0$' faults fault
expect_match "faultaround mode takes one fault per 16 pages" '^0\.0625 0\.0625$' faults faultaround
expect_match "prefault mode takes no fault on first touch" '^0\.0 0\.0$' faults prefault
expect_match "memfd with MAP_POPULATE takes no fault on first touch" '^0\.0 0\.0$' faults memfd-populate
expect_match "huge mode below 2 MiB takes one fault per page" '^1\.0 1\.0$' faults huge
expect_match "huge mode maps a 2 MiB block with one fault" '^0\.001953125 0\.001953125$' faults huge faults 512
expect_match "the THP memfd maps a 2 MiB block with one fault" '^0\.001953125 0\.001953125$' faults memfd-thp faults 512
# A first write to a private mapping is one trap per page in every mode
# (the page handed to the core to copy; prefault's read-only entries take
# one write-protect fault), as for the memfd.
for path in fault faultaround prefault memfd; do
	expect_match "a first private write takes one fault per page ($path)" '^1\.0 1\.0$' faults $path private_write_faults
done

check "the tool reads its JSON back" "$MAPDRV_TOOL" bench --from-json "$out/bench.json" --device /nonexistent
# --from-json judges the targets again from the saved rounds (its tables are
# this build's, so must its verdicts be): a saved verdict is not reprinted.
check "a copy of the JSON with stale verdicts is written" python3 - "$out/bench.json" "$out/stale.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["targets"], "no targets saved"
for t in r["targets"]:
    t["detail"] = "STALE VERDICT"
json.dump(r, open(sys.argv[2], "w"))
PY
expect_no_match "--from-json does not reprint saved verdicts" 'STALE VERDICT' \
	"$MAPDRV_TOOL" bench --from-json "$out/stale.json" --device /nonexistent
expect_match "--from-json judges the targets again" '^  (MET|MISSED|NOT MEASURED): .+: .+' \
	"$MAPDRV_TOOL" bench --from-json "$out/stale.json" --device /nonexistent
expect_match "the table names the clock source" 'clock source ' cat "$out/bench.txt"
expect_match "the table says its times count instructions" '^\(icount: the clock counts guest instructions' cat "$out/bench.txt"
expect_match "the table names the commit it was built from" '^built from commit [0-9a-f]' cat "$out/bench.txt"
check "bench SVG is well-formed XML" python3 -c 'import sys, xml.etree.ElementTree as E
assert E.parse(sys.argv[1]).getroot().tag.endswith("svg")' "$out/bench.svg"
finish
