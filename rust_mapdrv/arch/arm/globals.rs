// SPDX-License-Identifier: GPL-2.0

//! The 32-bit ARM kernel globals the walk and the layout read: where RAM
//! starts (`__pv_phys_pfn_offset`, which the kernel patched into every
//! `__pa()`/`__va()` at boot), the `struct page` array of a FLATMEM kernel
//! (`mem_map`) and the count of highmem pages. Each is exported to modules
//! and read here, once, behind a safe function, so that the rest of
//! `arch/arm/` needs no `unsafe` for them.

use kernel::{bindings, page::PAGE_SHIFT};

#[cfg(not(CONFIG_ARM_PATCH_PHYS_VIRT))]
compile_error!(
    "rust_mapdrv reads PHYS_OFFSET from __pv_phys_pfn_offset (CONFIG_ARM_PATCH_PHYS_VIRT)"
);

#[cfg(not(CONFIG_FLATMEM))]
compile_error!("rust_mapdrv's page_to_pfn on 32-bit ARM is FLATMEM's (mem_map)");

/// `PHYS_PFN_OFFSET`: the page frame of the first byte of RAM, which
/// `PAGE_OFFSET` maps.
pub(super) fn phys_pfn_offset() -> u64 {
    // SAFETY: `__pv_phys_pfn_offset` is `__ro_after_init`-like: set while
    // the kernel patches its phys/virt stubs in early boot, before any
    // module can be loaded, and only read afterwards.
    unsafe { bindings::__pv_phys_pfn_offset as u64 }
}

/// `PHYS_OFFSET`: the physical address `PAGE_OFFSET` maps.
pub(super) fn phys_offset() -> u64 {
    phys_pfn_offset() << PAGE_SHIFT
}

/// `page_to_pfn()` of a `struct page`: FLATMEM's index of the page in
/// `mem_map`, plus `ARCH_PFN_OFFSET` (the first page frame of RAM).
/// Arithmetic only: the page is not read.
pub(crate) fn page_to_pfn(page: *const bindings::page) -> u64 {
    // SAFETY: `mem_map` is set once while the kernel sets up its memory
    // map in early boot, before any module can be loaded.
    let mem_map = unsafe { bindings::mem_map } as usize;
    let index = (page as usize).wrapping_sub(mem_map) / core::mem::size_of::<bindings::page>();
    (index as u64).wrapping_add(phys_pfn_offset())
}

/// `totalhigh_pages()`: RAM pages in ZONE_HIGHMEM, those without a
/// permanent kernel address.
pub(super) fn totalhigh_pages() -> u64 {
    // SAFETY: `__totalhigh_pages()` only sums the zones' managed-page
    // counters (atomics); it takes no lock and may be called from any
    // context.
    unsafe { bindings::__totalhigh_pages() as u64 }
}
