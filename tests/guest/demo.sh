#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The allocation demo (rust_mapdrv/demo/): the report at load and on
# demand, every claim it checks passing, its debugfs files and their bad
# input, /proc/buddyinfo while a block is held, and the tool's views of it
# (mapdrv layout table, --json, --svg, --self; mapdrv buddy).
# kernels: vm debug arm64 arm
# run-vm-debug: --timeout 900
. /tests/lib.sh

DFS=/sys/kernel/debug/mapdrv
require "module file is there" "$MODULE"

# demo_lines: the demo's lines of the kernel log since dmesg_mark, without
# timestamps and prefix.
demo_lines() { dmesg | sed -n 's/^.*rust_mapdrv: demo: /demo: /p'; }

dmesg_mark
check "insmod (demo on by default)" insmod "$MODULE" || finish
demo_lines >/tmp/load-report

# One line per allocation, with the fields the classic allocation demo
# (the small module taught alongside map_driver.c) printed.
for name in kmalloc kzalloc kcalloc kmem_cache_a kmem_cache_b vmalloc alloc_page get_free_pages alloc_pages_max kmap_local kmap; do
	expect_match "load report: one alloc line for $name" \
		"^demo: alloc $name api=[^ ]+ via=[^ ]+ .*vaddr=0x[0-9a-f]+ region=[a-z_]+ phys=0x[0-9a-f]+ .*pages=[0-9]+ contiguous=(yes|no) (runs=[0-9]+ )?gfp=[A-Z_|]+" \
		cat /tmp/load-report
done
expect_match "kmalloc(100) is in the direct map, contiguous" \
	'^demo: alloc kmalloc api=kmalloc .*size=100 .*region=direct_map .*contiguous=yes gfp=GFP_KERNEL ' cat /tmp/load-report
expect_match "kzalloc and kcalloc ask for __GFP_ZERO" \
	'^demo: alloc kcalloc .*gfp=GFP_KERNEL\|__GFP_ZERO ' cat /tmp/load-report
expect_match "vmalloc is in the vmalloc area, 15 pages" \
	'^demo: alloc vmalloc api=vmalloc .*size=60000 .*region=vmalloc .*pages=15 ' cat /tmp/load-report
expect_match "order-3 block: 8 contiguous pages" \
	'^demo: alloc get_free_pages api=__get_free_pages .*order=3 .*pages=8 contiguous=yes' cat /tmp/load-report
expect_match "the largest block is asked for quietly (NOWARN, NORETRY)" \
	'^demo: alloc alloc_pages_max .*gfp=GFP_KERNEL\|__GFP_NOWARN\|__GFP_NORETRY ' cat /tmp/load-report
# The highmem page: on 32-bit ARM it comes from ZONE_HIGHMEM, has no
# permanent address, and its two mappings lie in the fixmap (kmap_local)
# and the pkmap window (kmap); on a 64-bit kernel both are its direct-map
# address.
if [ "$(guest_arch)" = arm ]; then
	expect_match "a __GFP_HIGHMEM page comes from HighMem, page_address() NULL" \
		'^demo: check ok highmem_page no-permanent-address: ' cat /tmp/load-report
	expect_match "kmap_local_page maps it in the fixmap" \
		'^demo: alloc kmap_local api=kmap_local_page .*region=fixmap ' cat /tmp/load-report
	expect_match "kmap maps it in the pkmap window" \
		'^demo: alloc kmap api=kmap .*vaddr=0xbf[ef][0-9a-f]{5} region=pkmap ' cat /tmp/load-report
	expect_match "while kmapped, page_address() is the kmap address" \
		'^demo: check ok kmap page-address: ' cat /tmp/load-report
	expect_match "vmalloc pages are highmem, read back through kmap_local_page" \
		'^demo: check ok vmalloc direct-map-alias: 15 of 15 .* 0 through PAGE_OFFSET .* 15 highmem pages through kmap_local_page' cat /tmp/load-report
else
	expect_match "without highmem the page is in the direct map" \
		'^demo: check ok highmem_page direct-map: ' cat /tmp/load-report
	expect_match "kmap_local_page and kmap of it are its direct-map address" \
		'^demo: alloc kmap api=kmap .*region=direct_map ' cat /tmp/load-report
fi
vpages=$(grep -c '^demo: page vmalloc index=' /tmp/load-report)
check "one page line per vmalloc page (15)" test "$vpages" -eq 15

# Every claim checked, none failed, and the counts add up.
checks=$(grep -c '^demo: check ' /tmp/load-report)
note "load report: $checks checks"
check "the load report checks at least 25 claims" test "$checks" -ge 25
expect_no_match "no claim of the load report failed" '^demo: check FAIL' cat /tmp/load-report
for claim in "kmalloc direct-map" "kmalloc virt-to-phys" "kzalloc zeroed" "kcalloc zeroed" \
	"kcalloc overflow-refused" "vmalloc vmalloc-range" "vmalloc page-walk" "vmalloc direct-map-alias" \
	"get_free_pages contiguous" "get_free_pages aligned" "alloc_pages_max contiguous" "alloc_pages_max virt-to-phys" \
	"kmap_local window" "kmap_local same-page" "kmap window" "kmap same-page" "kmap same-memory"; do
	expect_match "claim checked and ok: $claim" "^demo: check ok $claim: " cat /tmp/load-report
done
expect_match "the load report ends with its summary" \
	"^demo: done run=1 allocations=11 checks=$checks failed=0 freed=yes$" cat /tmp/load-report

# The layout: key value lines, at load and in debugfs, the same.
expect_match "layout is logged at load" 'rust_mapdrv: layout: page_offset 0x[0-9a-f]+$' dmesg
check "debugfs layout is readable" cat "$DFS/layout"
expect_no_match "debugfs layout has only key value lines" '^([^ ]+|[^ ]+ [^ ]+ .*)$' cat "$DFS/layout"
case $(guest_arch) in
arm) keys="page_offset task_size high_memory vmalloc_start vmalloc_end modules_start pkmap_start fixmap_start vectors_start highmem_pages lowmem_bytes" ;;
*) keys="page_offset vmalloc_start vmalloc_end vmemmap_start modules_start fixmap_start kernel_image_start" ;;
esac
for key in $keys kaslr_memory max_page_order; do
	expect_match "debugfs layout has $key" "^$key [0-9a-fx]+|^$key (yes|no)$" cat "$DFS/layout"
done
dmesg | sed -n 's/^.*rust_mapdrv: layout: //p' >/tmp/layout-dmesg
check "the layout logged at load is the one in debugfs" cmp -s /tmp/layout-dmesg "$DFS/layout"

# On demand: write run, read the report back.
check "debugfs demo holds the load report" cmp -s /tmp/load-report "$DFS/demo"
dmesg_mark
check "echo run > demo runs the demo again" sh -c "echo run > $DFS/demo"
expect_match "the new report is run 2" '^demo: done run=2 .* failed=0 freed=yes$' cat "$DFS/demo"
expect_match "the run is logged too" 'rust_mapdrv: demo: run 2 trigger=debugfs' dmesg_new
expect_errno "writing anything else to demo is EINVAL" EINVAL sh -c "echo jump > $DFS/demo"
expect_match "a refused write does not run the demo" '^demo: done run=2 ' cat "$DFS/demo"
i=0
while [ $i -lt 20 ]; do echo 1 >"$DFS/demo" || break; i=$((i + 1)); done
check "20 more runs on demand" test "$i" -eq 20
expect_match "run 22 passes all its checks" '^demo: done run=22 .* failed=0 freed=yes$' cat "$DFS/demo"

# The tool reads the same files.
expect_match "mapdrv layout: table with regions, allocations, checks" '^Checks: [0-9]+ passed, 0 failed$' mapdrv layout
expect_match "mapdrv layout --run runs the demo first" '^Demo allocations \(run 23\)$' mapdrv layout --run
check "mapdrv layout --json exits 0" sh -c 'mapdrv layout --json >/tmp/layout.json'
expect_match "the JSON has the regions" '"name": "vmalloc"' cat /tmp/layout.json
expect_match "the JSON has the allocations" '"api": "__get_free_pages"' cat /tmp/layout.json
check "mapdrv layout --svg writes a picture" mapdrv layout --svg /tmp/layout.svg
expect_match "the picture is an SVG document" '<svg ' head -c 300 /tmp/layout.svg
expect_match "the picture ends its SVG element" '</svg>' tail -c 20 /tmp/layout.svg
expect_match "the picture names the regions" 'direct_map \(' cat /tmp/layout.svg
expect_match "mapdrv layout --self: the process's stack" 'a local variable of run: 0x[0-9a-f]+.*\[stack\]' mapdrv layout --self
expect_match "mapdrv layout --self: the heap" 'malloc\): 0x[0-9a-f]+.*\[heap\]' mapdrv layout --self
expect_match "mapdrv layout --self: the device mapping" 'mmap of /dev/mapdrv: 0x[0-9a-f]+.*/dev/mapdrv\]' mapdrv layout --self
expect_match "mapdrv layout --self: user pages are the buffer's pages" '^the same physical pages' mapdrv layout --self

# /proc/buddyinfo while a block of MAX_PAGE_ORDER is held, read here with
# awk (independently of the tool), then with mapdrv buddy.
order=$(awk '$1 == "max_page_order" { print $2 }' "$DFS/layout")
free_at() { awk -v col=$(($1 + 5)) '{ n += $col } END { print n }' /proc/buddyinfo; }
expect_match "hold is empty at first" '^none$' cat "$DFS/hold"
check "hold an order-$order block" sh -c "echo $order > $DFS/hold"
expect_match "hold shows the block" "^order $order pages $((1 << order)) pfn 0x[0-9a-f]+ vaddr 0x[0-9a-f]+$" cat "$DFS/hold"
expect_errno "a second hold is EBUSY" EBUSY sh -c "echo 0 > $DFS/hold"
check "release it" sh -c "echo release > $DFS/hold"
# The count is the whole system's, and the other CPU splits or frees blocks
# too: the drop and the rise must show in one of three hold/release rounds.
attempt=0 dropped=no rose=no
while [ $attempt -lt 3 ] && [ "$dropped$rose" != yesyes ]; do
	attempt=$((attempt + 1))
	before=$(free_at "$order")
	echo "$order" >"$DFS/hold"
	held=$(free_at "$order")
	echo release >"$DFS/hold"
	after=$(free_at "$order")
	note "free blocks of order $order, round $attempt: before $before, while held $held, after $after"
	dropped=no rose=no
	[ "$held" -lt "$before" ] && dropped=yes
	[ "$after" -gt "$held" ] && rose=yes
done
check "buddyinfo: order-$order free count drops while held" test $dropped = yes
check "buddyinfo: and rises again when released" test $rose = yes
expect_match "hold is empty after release" '^none$' cat "$DFS/hold"
expect_errno "hold refuses order MAX+1" EINVAL sh -c "echo $((order + 1)) > $DFS/hold"
expect_errno "hold refuses a word" EINVAL sh -c "echo lots > $DFS/hold"
expect_errno "hold refuses a negative order" EINVAL sh -c "echo -1 > $DFS/hold"
expect_match "refused holds hold nothing" '^none$' cat "$DFS/hold"
expect_match "mapdrv buddy: the drop and the return" '^PASS: the count dropped' mapdrv buddy
expect_match "mapdrv buddy --json" '"ok":true' mapdrv buddy --json

# A held block is freed by rmmod (nothing leaks); as above, up to three
# rounds for the other CPU's noise.
check "hold a block, then rmmod" sh -c "echo $order > $DFS/hold"
free_held=$(free_at "$order")
check "rmmod with a block held" rmmod "$MODNAME"
free_gone=$(free_at "$order")
attempt=1
while [ "$free_gone" -le "$free_held" ] && [ $attempt -lt 3 ]; do
	attempt=$((attempt + 1))
	insmod "$MODULE" demo=0 && echo "$order" >"$DFS/hold" || break
	free_held=$(free_at "$order")
	rmmod "$MODNAME" || break
	free_gone=$(free_at "$order")
done
note "free blocks of order $order, round $attempt: held $free_held, after rmmod $free_gone"
check "rmmod freed the held block" test "$free_gone" -gt "$free_held"

# demo=0: no demo at load, but the files work.
dmesg_mark
check "insmod demo=0" insmod "$MODULE" demo=0
expect_no_match "demo=0: no demo at load" 'rust_mapdrv: demo: ' dmesg_new
expect_match "demo=0: demo file says no run yet" '^# no demo run yet' cat "$DFS/demo"
# Its status and its output, each checked (not through a pipe, whose left
# side's status sh drops).
expect_match "mapdrv layout says there is no report yet" '^No demo report yet' mapdrv layout
expect_no_match "mapdrv layout says no report (and fails nothing)" '^Checks:' mapdrv layout
check "demo=0: echo run still works" sh -c "echo run > $DFS/demo"
expect_match "demo=0: then run 1 passes" '^demo: done run=1 .* failed=0 freed=yes$' cat "$DFS/demo"
check "rmmod" rmmod "$MODNAME"
module_unload_all
finish
