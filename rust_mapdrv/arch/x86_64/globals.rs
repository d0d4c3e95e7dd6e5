// SPDX-License-Identifier: GPL-2.0

//! The x86_64 kernel globals the walk and the layout read: the choices the
//! kernel made at boot (where the direct map, vmalloc and `vmemmap` start,
//! the paging mode's PGD shift, the physical-address mask, where the image
//! was loaded). Each is read here, once, behind a
//! safe function, so that the rest of `arch/x86_64/` needs no `unsafe` for
//! them.

use kernel::bindings;

/// The kernel's base of the direct map (`PAGE_OFFSET`, randomised by KASLR).
pub(super) fn page_offset_base() -> usize {
    // SAFETY: `page_offset_base` is written once during early boot, before
    // any module can be loaded, and only read afterwards.
    unsafe { bindings::page_offset_base }
}

/// The PGD shift the kernel chose at boot (39 for 4-level, 48 for 5-level).
pub(super) fn kernel_pgdir_shift() -> u32 {
    // SAFETY: `pgdir_shift` is written once during early boot.
    unsafe { bindings::pgdir_shift }
}

/// `VMALLOC_START` (`vmalloc_base`, randomised by KASLR).
pub(super) fn vmalloc_base() -> usize {
    // SAFETY: `vmalloc_base` is written once during early boot and only read
    // afterwards.
    unsafe { bindings::vmalloc_base }
}

/// `VMEMMAP_START` (`vmemmap_base`, randomised by KASLR).
pub(super) fn vmemmap_base() -> usize {
    // SAFETY: `vmemmap_base` is written once during early boot and only read
    // afterwards.
    unsafe { bindings::vmemmap_base }
}

/// `page_to_pfn()` of a `struct page` (with `SPARSEMEM_VMEMMAP`, as on
/// x86_64: the page's index in the `vmemmap` array). Arithmetic only: the
/// page is not read.
pub(crate) fn page_to_pfn(page: *const bindings::page) -> u64 {
    ((page as usize).wrapping_sub(vmemmap_base()) / core::mem::size_of::<bindings::page>()) as u64
}

/// The kernel's `physical_mask`: the bits of a physical address that are
/// address, not attributes (see `AddrMask`).
pub(super) fn physical_mask() -> u64 {
    #[cfg(CONFIG_DYNAMIC_PHYSICAL_MASK)]
    // SAFETY: `physical_mask` is `__ro_after_init`: set during early boot,
    // before any module loads, and only read afterwards.
    let physical_mask = unsafe { bindings::physical_mask };
    // Without run-time changes it is all 52 physical address bits.
    #[cfg(not(CONFIG_DYNAMIC_PHYSICAL_MASK))]
    let physical_mask = u64::MAX;
    physical_mask
}

/// `phys_base`: where the kernel image was loaded, minus where it was
/// linked to load.
pub(super) fn phys_base() -> u64 {
    // SAFETY: `phys_base` is set during early boot and only read afterwards.
    unsafe { bindings::phys_base as u64 }
}
