// SPDX-License-Identifier: GPL-2.0

//! The arm64 kernel globals the walk and the layout read: the choices the
//! kernel made at boot (`memstart_addr`, the physical address at the base of
//! the linear map; `kimage_voffset`, the kernel image's virtual minus
//! physical address). Each is exported to modules and read here, once,
//! behind a safe function, so that the rest of `arch/arm64/` needs no
//! `unsafe` for them. (`vabits_actual` is no global in 7.x: the kernel reads
//! TCR_EL1.T1SZ, as `pgtable.rs` does.)

use super::layout::VMEMMAP_START;
use kernel::{bindings, page::PAGE_SHIFT};

/// `PHYS_OFFSET` (`memstart_addr`): the physical address `PAGE_OFFSET` maps.
/// Signed: a 52-bit kernel on a 48-bit CPU moves it below zero.
pub(super) fn memstart_addr() -> i64 {
    // SAFETY: `memstart_addr` is `__ro_after_init`: set during early boot,
    // before any module can be loaded, and only read afterwards.
    unsafe { bindings::memstart_addr }
}

/// `kimage_voffset`: the kernel image's virtual address minus its physical
/// address (`__kimg_to_phys()` subtracts it).
pub(super) fn kimage_voffset() -> u64 {
    // SAFETY: `kimage_voffset` is `__ro_after_init`, set while the kernel
    // maps itself at boot and only read afterwards.
    unsafe { bindings::kimage_voffset }
}

/// `page_to_pfn()` of a `struct page`: with `SPARSEMEM_VMEMMAP`, the page's
/// index in `vmemmap`, which arm64 places at `VMEMMAP_START` minus the
/// `struct page`s of the PFNs below `memstart_addr` (the kernel's `vmemmap`
/// macro). Arithmetic only: the page is not read.
pub(crate) fn page_to_pfn(page: *const bindings::page) -> u64 {
    let index =
        (page as usize).wrapping_sub(VMEMMAP_START) / core::mem::size_of::<bindings::page>();
    (index as u64).wrapping_add((memstart_addr() >> PAGE_SHIFT) as u64)
}
