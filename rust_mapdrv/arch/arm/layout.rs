// SPDX-License-Identifier: GPL-2.0

//! The 32-bit ARM kernel address space of the running system
//! (`arch/arm/include/asm/memory.h`, `pgtable.h`, `highmem.h`, `fixmap.h`
//! of 7.3), the 3G/1G world of the original documents: user space up to
//! `TASK_SIZE` (3 GiB minus 16 MiB), the modules area in the 16 MiB below
//! `PAGE_OFFSET` with the persistent-kmap window (`PKMAP_BASE`, 2 MiB) at
//! its top, the direct map of lowmem from `PAGE_OFFSET` (3 GiB) to
//! `high_memory`, then, 8 MiB higher, the vmalloc area up to `VMALLOC_END`,
//! the fixmap (where `kmap_local_page()` maps highmem pages) and the
//! vectors page at `0xffff0000`.
//!
//! Why lowmem ends where it does: the kernel keeps at least 240 MiB of its
//! 1 GiB for the vmalloc area (`vmalloc_size`, `vmalloc=` on the command
//! line) and an 8 MiB gap below it, so with the default split
//! `high_memory` is at most `VMALLOC_END - 240 MiB - 8 MiB` =
//! `0xf0000000`: 768 MiB of RAM can be mapped directly, where x86_32 stops
//! at 896 MiB (it keeps only 128 MiB for vmalloc, and ARM's vmalloc area
//! also ends lower, at `0xff800000`, below the fixmap and vectors).
//! Everything above is ZONE_HIGHMEM.
//!
//! Every bound is a constant but `high_memory`, which the running system
//! sets; [`Layout::new`] is arithmetic, so that the KUnit tests can check
//! it with known values.

use crate::arch::{CommonFacts, DirectMap, KeyValues, Region};
use crate::decimal::Decimal;
use core::fmt;
use kernel::{bindings, page::PAGE_SIZE};

/// `PAGE_OFFSET`: the start of the kernel's 1 GiB (`CONFIG_PAGE_OFFSET`,
/// `0xc0000000` with `VMSPLIT_3G`).
pub(crate) const PAGE_OFFSET: usize = bindings::CONFIG_PAGE_OFFSET as usize;
/// `TASK_SIZE`, also `MODULES_VADDR`: 16 MiB below `PAGE_OFFSET`.
pub(crate) const TASK_SIZE: usize = PAGE_OFFSET - bindings::SZ_16M as usize;
/// `PKMAP_BASE`, also `MODULES_END`: one PMD (2 MiB) below `PAGE_OFFSET`.
pub(crate) const PKMAP_BASE: usize = PAGE_OFFSET - bindings::PMD_SIZE as usize;
/// `VMALLOC_OFFSET`: the gap between lowmem and the vmalloc area, which
/// catches stray accesses past the end of lowmem.
const VMALLOC_OFFSET: usize = bindings::VMALLOC_OFFSET as usize;
/// `VMALLOC_END`.
const VMALLOC_END: usize = bindings::VMALLOC_END as usize;
/// The fixmap, `[FIXADDR_START, FIXADDR_END)`.
const FIXADDR_START: usize = bindings::FIXADDR_START as usize;
const FIXADDR_END: usize = bindings::FIXADDR_END as usize;
/// The vectors page and the page of their stubs (high vectors).
const VECTORS_START: usize = 0xffff_0000;
const VECTORS_END: usize = VECTORS_START + 2 * PAGE_SIZE;

/// The address space of the running kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// `PAGE_OFFSET`: the base of lowmem's direct map.
    pub(crate) page_offset: usize,
    /// `high_memory`: the end of lowmem's direct map.
    pub(crate) high_memory: usize,
    /// `VMALLOC_START`: `high_memory` plus the 8 MiB gap, rounded up to 8
    /// MiB.
    pub(crate) vmalloc_start: usize,
    /// `PHYS_OFFSET`: the physical address `PAGE_OFFSET` maps.
    pub(crate) phys_offset: u64,
}

impl Layout {
    /// The layout of a kernel whose lowmem ends at `high_memory` and whose
    /// RAM starts at `phys_offset`.
    pub(crate) fn new(high_memory: usize, phys_offset: u64) -> Self {
        Self {
            page_offset: PAGE_OFFSET,
            high_memory,
            vmalloc_start: (high_memory + VMALLOC_OFFSET) & !(VMALLOC_OFFSET - 1),
            phys_offset,
        }
    }

    /// The layout the running kernel set up at boot.
    pub(crate) fn current() -> Self {
        let dm = DirectMap::current();
        Self::new(dm.end, dm.phys_offset)
    }

    /// Paging levels: 2.
    pub(crate) fn levels(&self) -> usize {
        super::MAX_LEVELS
    }

    /// The direct map of lowmem, `[PAGE_OFFSET, high_memory)`.
    pub(crate) fn direct_map(&self) -> DirectMap {
        DirectMap {
            base: PAGE_OFFSET,
            end: self.high_memory,
            phys_offset: self.phys_offset,
        }
    }

    /// `VMALLOC_END` as an exclusive bound.
    pub(crate) fn vmalloc_end(&self) -> usize {
        VMALLOC_END
    }

    /// The regions, in address order, disjoint.
    pub(crate) fn regions(&self) -> impl Iterator<Item = Region> {
        let region = |name, start, end| Region { name, start, end };
        [
            region("user", 0, TASK_SIZE),
            region("modules", TASK_SIZE, PKMAP_BASE),
            region(
                "pkmap",
                PKMAP_BASE,
                PKMAP_BASE + bindings::LAST_PKMAP as usize * PAGE_SIZE,
            ),
            region("direct_map", PAGE_OFFSET, self.high_memory),
            region("vmalloc", self.vmalloc_start, VMALLOC_END),
            region("fixmap", FIXADDR_START, FIXADDR_END),
            region("vectors", VECTORS_START, VECTORS_END),
        ]
        .into_iter()
    }

    /// The name of the region `addr` lies in, or `"unknown"`.
    pub(crate) fn region_of(&self, addr: usize) -> &'static str {
        self.regions()
            .find(|r| r.contains(addr))
            .map_or("unknown", |r| r.name)
    }

    /// Whether `addr` is in the direct map of lowmem, where `__pa(addr)` is
    /// `addr - PAGE_OFFSET + PHYS_OFFSET`.
    pub(crate) fn in_direct_map_ram(&self, addr: usize) -> bool {
        self.direct_map().contains(addr)
    }

    /// Whether `addr` is a vmalloc address (`is_vmalloc_addr()`).
    pub(crate) fn in_vmalloc(&self, addr: usize) -> bool {
        (self.vmalloc_start..VMALLOC_END).contains(&addr)
    }
}

/// Writes the layout as `key value` lines (addresses in hex, `_end`
/// exclusive), as debugfs `layout` shows it and the load prints it.
pub(crate) fn write_layout(f: &mut impl fmt::Write, layout: &Layout, extra: &Extra) -> fmt::Result {
    let mut out = KeyValues::new(f);
    out.number("paging_levels", layout.levels())?;
    out.number("va_bits", 32)?;
    out.number("page_size", PAGE_SIZE)?;
    out.addr("page_offset", PAGE_OFFSET)?;
    out.addr("task_size", TASK_SIZE)?;
    out.addr("high_memory", layout.high_memory)?;
    for r in layout.regions() {
        out.region(&r)?;
    }
    out.addr("pkmap_base", PKMAP_BASE)?;
    extra.common.write_places(&mut out)?;
    out.addr("phys_offset", layout.phys_offset)?;
    out.number("lowmem_bytes", layout.high_memory - PAGE_OFFSET)?;
    out.number("highmem_pages", Decimal(extra.highmem_pages))?;
    extra.common.write_memory(&mut out)?;
    out.flag("kaslr_text", false)?;
    out.flag("kaslr_memory", false)
}

/// Facts about the running kernel that are not region bounds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extra {
    /// What every architecture reports (its `kernel_text` is in lowmem: the
    /// image is at `PAGE_OFFSET + TEXT_OFFSET`).
    pub(crate) common: CommonFacts,
    /// `totalhigh_pages()`: the RAM pages in ZONE_HIGHMEM.
    pub(crate) highmem_pages: u64,
}

impl Extra {
    /// The facts of the running kernel.
    pub(crate) fn current() -> Self {
        Self {
            common: CommonFacts::current(),
            highmem_pages: super::globals::totalhigh_pages(),
        }
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_arm_layout)]
mod tests {
    use super::*;

    /// QEMU's virt machine with 1 GiB of RAM at 1 GiB: 768 MiB of lowmem.
    fn virt_1g() -> Layout {
        Layout::new(0xf000_0000, 0x4000_0000)
    }

    #[test]
    fn the_3g_1g_split() {
        let l = virt_1g();
        assert_eq!(PAGE_OFFSET, 0xc000_0000);
        assert_eq!(TASK_SIZE, 0xbf00_0000);
        assert_eq!(PKMAP_BASE, 0xbfe0_0000);
        assert_eq!(l.vmalloc_start, 0xf080_0000);
        assert_eq!(l.region_of(0x1000), "user");
        assert_eq!(l.region_of(0xbf00_1000), "modules");
        assert_eq!(l.region_of(0xbfe0_1000), "pkmap");
        assert_eq!(l.region_of(0xc000_8000), "direct_map");
        // The 8 MiB gap after lowmem belongs to nobody.
        assert_eq!(l.region_of(0xf000_0000), "unknown");
        assert_eq!(l.region_of(0xf080_0000), "vmalloc");
        assert_eq!(l.region_of(0xffc8_0000), "fixmap");
        assert_eq!(l.region_of(0xffff_0000), "vectors");
        assert!(l.in_direct_map_ram(0xefff_ffff));
        assert!(!l.in_direct_map_ram(0xf000_0000));
        assert!(l.in_vmalloc(0xff7f_f000));
        assert!(!l.in_vmalloc(0xff80_0000));
    }

    #[test]
    fn regions_are_ordered_and_disjoint() {
        let l = virt_1g();
        let mut last_end = 0;
        for r in l.regions() {
            assert!(r.start >= last_end);
            assert!(r.end > r.start);
            last_end = r.end;
        }
        // With less RAM (256 MiB, all lowmem) vmalloc starts lower.
        let small = Layout::new(0xd000_0000, 0x4000_0000);
        assert_eq!(small.vmalloc_start, 0xd080_0000);
    }
}
