#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The device's ABI has one source, userspace/include/mapdrv.h, and both sides
# are checked against it: the module is generated from it by bindgen and
# checks at compile time what it relies on (rust_mapdrv/uapi.rs); the tool's
# mirror (userspace/src/abi.rs) is compared with it by a cargo test. Here a
# copy of the header is changed in two ways, and each side must notice.
# shellcheck source=../guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
work=${MAPDRV_TEST_WORK:-$(mktemp -d)}/abi
header=userspace/include/mapdrv.h
kdir=$(bash scripts/build-module.sh --print-kdir 2>/dev/null)
read -r -a kargs <<<"$(source scripts/lib.sh; kernel_make_args)"

# variant NAME SED: a copy of the module's sources whose header is changed by
# the sed script (none: unchanged), in $work/NAME.
variant() {
	rm -rf "${work:?}/$1"
	(source scripts/lib.sh; copy_module_sources "$work/$1")
	[ -z "$2" ] || sed -i "$2" "$work/$1/$header"
}
# build NAME: the module from variant NAME; its output in $said, status in $st.
build() {
	_run make --no-print-directory -C "$kdir" M="$work/$1" "${kargs[@]}" modules
	said=$_out st=$_st
}
# tool_abi NAME: the tool's ABI test against variant NAME's header, likewise.
tool_abi() {
	_run bash -c "cd userspace && MAPDRV_UAPI_INCLUDE='$work/$1/userspace/include' \
		cargo test --quiet --locked abi:: 2>&1"
	said=$_out st=$_st
}
generated() { cat "$work/$1/rust_mapdrv/uapi_generated.rs"; }

# The header as it is: the module builds from it and the tool agrees.
variant same ""
build same
check "the module builds from the header" test "$st" -eq 0
expect_match "the module's ioctl number is the header's _IOR('M', 1, 24 bytes)" \
	'pub const MAPDRV_IOC_INFO: __u32 = 2149076225;' generated same
tool_abi same
check "the tool's mirror agrees with the header" test "$st" -eq 0

# Two fields swapped: a layout the module's field-by-field answer cannot
# serve. The module must not build, and the tool must say which offset.
variant swapped '/__u32 page_size;/{h;d};/__u32 mode;/G'
check "the swapped header really swaps page_size and mode" \
	grep -Pzq '__u32 mode;[^\n]*\n\t__u32 page_size;' "$work/swapped/$header"
build swapped
check "a header with a changed layout stops the module's build" test "$st" -ne 0
check "the build says which rule of mapdrv.h is broken" \
	grep -q 'struct mapdrv_info must be size, pages, page_size, mode' <<<"$said"
tool_abi swapped
check "a header with a changed layout fails the tool's ABI test" test "$st" -ne 0
check "the tool's ABI test names the field offset that differs" \
	grep -q 'disagree on offset_page_size' <<<"$said"

# A mode renumbered: the module follows the header (one source), the tool's
# mirror no longer agrees and its test must fail.
variant renumbered 's/^#define MAPDRV_MODE_PREFAULT .*/#define MAPDRV_MODE_PREFAULT    5/'
build renumbered
check "the module builds from a header with a renumbered mode" test "$st" -eq 0
expect_match "the module takes the new mode number from the header" \
	'pub const MAPDRV_MODE_PREFAULT: u32 = 5;' generated renumbered
tool_abi renumbered
check "a renumbered mode fails the tool's ABI test" test "$st" -ne 0
check "the tool's ABI test names the mode that differs" \
	grep -q 'disagree on mode_prefault' <<<"$said"
finish
