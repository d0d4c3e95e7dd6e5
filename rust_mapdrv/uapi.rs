// SPDX-License-Identifier: GPL-2.0

//! The device's user-space ABI, taken from its C header.
//!
//! `userspace/include/mapdrv.h` is the one source of the ABI: what C programs
//! include, what the tool mirrors (and tests against the header), and what
//! the module is built from. Kbuild runs bindgen on it (through
//! `uapi_helper.h`, which also hands over the `_IOR()` value bindgen cannot
//! expand) and writes `uapi_generated.rs` next to this file; it is not in
//! git. This file gives the generated items the names the module uses and
//! checks at compile time what the module relies on, so that a header the
//! module cannot serve stops the build instead of reaching a user.

use core::mem::{offset_of, size_of, size_of_val};
use kernel::ioctl::{_IOC_DIR, _IOC_NR, _IOC_SIZE, _IOR};

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    missing_docs,
    unreachable_pub,
    clippy::all
)]
mod generated {
    include!("uapi_generated.rs");
}

/// `struct mapdrv_info`: the answer of [`MAPDRV_IOC_INFO`].
pub(crate) use generated::mapdrv_info as MapdrvInfo;

/// `MAPDRV_IOC_INFO`: `_IOR(MAPDRV_IOC_MAGIC, 1, struct mapdrv_info)`.
pub(crate) const MAPDRV_IOC_INFO: u32 = generated::MAPDRV_IOC_INFO;

/// `MAPDRV_MODE_*`: the values of the `mode` parameter and of
/// `mapdrv_info.mode`.
pub(crate) const MODE_FAULT: u32 = generated::MAPDRV_MODE_FAULT;
pub(crate) const MODE_FAULTAROUND: u32 = generated::MAPDRV_MODE_FAULTAROUND;
pub(crate) const MODE_PREFAULT: u32 = generated::MAPDRV_MODE_PREFAULT;
pub(crate) const MODE_HUGE: u32 = generated::MAPDRV_MODE_HUGE;

/// `MAPDRV_MAX_PAGES`: the largest `pages` parameter.
pub(crate) const MAX_PAGES: usize = generated::MAPDRV_MAX_PAGES as usize;

/// `MAPDRV_MAX_FAULTAROUND_PAGES`: the largest `faultaround_pages` parameter.
pub(crate) const MAX_FAULTAROUND_PAGES: u32 = generated::MAPDRV_MAX_FAULTAROUND_PAGES;

// What the module relies on, checked against whatever the header says.

// The ioctl hands out exactly one `struct mapdrv_info`, to be read by the
// caller, under the header's magic; the kernel's own `_IOR` agrees.
const _: () = assert!(
    _IOC_SIZE(MAPDRV_IOC_INFO) == size_of::<MapdrvInfo>(),
    "mapdrv.h: MAPDRV_IOC_INFO must encode the size of struct mapdrv_info"
);
const _: () = assert!(
    _IOC_DIR(MAPDRV_IOC_INFO) == kernel::uapi::_IOC_READ,
    "mapdrv.h: MAPDRV_IOC_INFO must be an _IOR (the module writes, the caller reads)"
);
const _: () = assert!(
    MAPDRV_IOC_INFO
        == _IOR::<MapdrvInfo>(generated::MAPDRV_IOC_MAGIC as u32, _IOC_NR(MAPDRV_IOC_INFO)),
    "mapdrv.h: MAPDRV_IOC_INFO must use MAPDRV_IOC_MAGIC"
);

// The ioctl writes the struct field by field, in this order, so the header's
// struct must hold exactly these fields, in this order, without padding: each
// field starts where the one before it ends and nothing follows the last one
// (a hole would reach the user uninitialised). The literal below stops the
// build if a field is added, removed or renamed.
const _: () = {
    const INFO: MapdrvInfo = MapdrvInfo {
        size: 0,
        pages: 0,
        page_size: 0,
        mode: 0,
    };
    let size = size_of_val(&INFO.size);
    let pages = size_of_val(&INFO.pages);
    let page_size = size_of_val(&INFO.page_size);
    let mode = size_of_val(&INFO.mode);
    assert!(
        offset_of!(MapdrvInfo, size) == 0
            && offset_of!(MapdrvInfo, pages) == size
            && offset_of!(MapdrvInfo, page_size) == size + pages
            && offset_of!(MapdrvInfo, mode) == size + pages + page_size
            && size_of::<MapdrvInfo>() == size + pages + page_size + mode,
        "mapdrv.h: struct mapdrv_info must be size, pages, page_size, mode in this order, unpadded"
    );
};

// `contract::Mode` takes its numbers from here; a number must name one mode.
const _: () = assert!(
    MODE_FAULT != MODE_FAULTAROUND
        && MODE_FAULT != MODE_PREFAULT
        && MODE_FAULT != MODE_HUGE
        && MODE_FAULTAROUND != MODE_PREFAULT
        && MODE_FAULTAROUND != MODE_HUGE
        && MODE_PREFAULT != MODE_HUGE,
    "mapdrv.h: the MAPDRV_MODE_* values must be distinct"
);

// Limits the module can honour: a buffer size in bytes fits the ABI's `__u64`
// and the kernel's `usize` and `i64` parameter; a fault-around batch fits one
// page table, whose 512 entries are what `vm_insert_pages` fills at most.
const _: () = assert!(
    MAX_PAGES > 0 && MAX_PAGES <= (i64::MAX as usize) >> kernel::page::PAGE_SHIFT,
    "mapdrv.h: MAPDRV_MAX_PAGES must be positive and its bytes must fit the kernel's types"
);
const _: () = assert!(
    MAX_FAULTAROUND_PAGES > 0 && MAX_FAULTAROUND_PAGES <= 512,
    "mapdrv.h: MAPDRV_MAX_FAULTAROUND_PAGES must be 1..=512 (one page table)"
);
