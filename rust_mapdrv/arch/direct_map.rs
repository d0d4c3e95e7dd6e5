// SPDX-License-Identifier: GPL-2.0

//! The direct map of RAM ("linear map" on arm64, "lowmem" on 32-bit ARM),
//! the same arithmetic on every architecture: physical address `phys` at
//! `base + (phys - phys_offset)` (`__va()`), up to `end` (`high_memory`).
//! Where it is (`base`, `phys_offset`) is the architecture's, read by its
//! `direct_map()`; x86_64's `phys_offset` is 0.

use super::pfn_phys;
use kernel::page::PAGE_SHIFT;

/// The direct map of RAM of a kernel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DirectMap {
    /// `PAGE_OFFSET`: the address of physical address `phys_offset`.
    pub(crate) base: usize,
    /// The first address past the direct map of RAM (`high_memory`). On
    /// 32-bit ARM the RAM above it (highmem) has no direct-map address.
    pub(crate) end: usize,
    /// `PHYS_OFFSET`: the physical address at `base` (x86_64: 0; arm64:
    /// `memstart_addr`, which may be "negative", so it is added and
    /// subtracted with wrapping; 32-bit ARM: the start of RAM).
    pub(crate) phys_offset: u64,
}

impl DirectMap {
    /// The running kernel's direct map.
    pub(crate) fn current() -> Self {
        super::imp::direct_map()
    }

    /// Whether `addr` lies in the direct map of RAM.
    pub(crate) fn contains(self, addr: usize) -> bool {
        (self.base..self.end).contains(&addr)
    }

    /// The direct-map address of the physical address `phys`, if it is RAM
    /// with a direct-map address (not highmem).
    pub(crate) fn addr_of_phys(self, phys: u64) -> Option<usize> {
        let offset = phys.wrapping_sub(self.phys_offset);
        (offset < (self.end - self.base) as u64).then(|| self.base + offset as usize)
    }

    /// `__pa(addr)` of the direct-map address `addr` (only meaningful when
    /// [`Self::contains`] it).
    pub(crate) fn phys_of(self, addr: usize) -> u64 {
        (addr.wrapping_sub(self.base) as u64).wrapping_add(self.phys_offset)
    }

    /// The page frame behind the direct-map address `addr` (only meaningful
    /// when [`Self::contains`] it).
    pub(crate) fn pfn_of(self, addr: usize) -> u64 {
        self.phys_of(addr) >> PAGE_SHIFT
    }

    /// The direct-map address of page frame `pfn`, if it has one: RAM below
    /// `high_memory` (`page_address()` of a lowmem page). A highmem page has
    /// none: it must be mapped (`kmap`) to be reached.
    pub(crate) fn addr_of_pfn(self, pfn: u64) -> Option<usize> {
        self.addr_of_phys(pfn_phys(pfn))
    }
}
