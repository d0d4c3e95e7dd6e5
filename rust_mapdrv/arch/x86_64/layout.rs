// SPDX-License-Identifier: GPL-2.0

//! The x86_64 kernel address space of the running system: where the direct
//! map, the vmalloc area, the memory map (`struct page` array), the kernel
//! image, the modules and the fixmap are.
//!
//! The classic teaching texts describe the 32-bit layout: user space below `PAGE_OFFSET`
//! (3 GiB), the direct map of low memory above it, an 8 MiB gap, the vmalloc
//! area, the kmap and fixmap windows at the top. On x86_64 the same regions
//! exist with far more room (Documentation/arch/x86/x86_64/mm.rst); their
//! bases move with 5-level paging and, with `CONFIG_RANDOMIZE_MEMORY`
//! (KASLR), from boot to boot. [`Layout::current`] takes the bases the kernel
//! chose (`page_offset_base`, `vmalloc_base`, `vmemmap_base`, all exported
//! to modules and read in `globals.rs`) and the paging mode; everything else
//! here is arithmetic on them and on constants, so that the KUnit tests can
//! check it with known values. How a region looks and how the layout is
//! written as lines is the seam's (`arch/layout.rs`).

use super::{
    globals,
    pgtable::{five_level_paging, levels, Level},
};
use crate::arch::{CommonFacts, DirectMap, KeyValues, Region};
use core::fmt;
use kernel::{bindings, page::PAGE_SIZE};

/// Bases of the direct map without KASLR (`__PAGE_OFFSET_BASE_L4/L5`).
const PAGE_OFFSET_BASE_L4: usize = 0xffff_8880_0000_0000;
const PAGE_OFFSET_BASE_L5: usize = 0xff11_0000_0000_0000;
/// `__START_KERNEL_map`: where the kernel image is mapped.
pub(crate) const START_KERNEL_MAP: usize = 0xffff_ffff_8000_0000;
/// `MODULES_END` (without `CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP`).
const MODULES_END: usize = 0xffff_ffff_ff00_0000;
/// `CPU_ENTRY_AREA_BASE` and `ESPFIX_BASE_ADDR`: PGD entries -4 and -2 of
/// 512 GiB each (`P4D_SHIFT` 39), the same with 4- and 5-level paging.
const CPU_ENTRY_AREA_BASE: usize = 0xffff_fe00_0000_0000;
const ESPFIX_BASE: usize = 0xffff_ff00_0000_0000;
const P4D_SIZE: usize = 1 << 39;
/// `LDT_PGD_ENTRY`: the LDT remap for PTI is PGD entry -240.
const LDT_PGD_ENTRY: usize = (-240isize) as usize;
const TIB: usize = 1 << 40;

/// The number of regions [`Layout::regions`] returns.
pub(crate) const REGIONS: usize = 10;

/// The address space of the running kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// 5-level paging (57-bit addresses) rather than 4-level (48-bit).
    pub(crate) five_level: bool,
    /// `PAGE_OFFSET`: the base of the direct map.
    pub(crate) page_offset: usize,
    /// `high_memory`: the direct-map address of the end of RAM.
    pub(crate) high_memory: usize,
    /// `VMALLOC_START`.
    pub(crate) vmalloc_start: usize,
    /// `VMEMMAP_START`: the `struct page` array (`vmemmap`).
    pub(crate) vmemmap_start: usize,
    /// `KERNEL_IMAGE_SIZE`: 512 MiB, or 1 GiB with `CONFIG_RANDOMIZE_BASE`.
    pub(crate) kernel_image_size: usize,
}

impl Layout {
    /// The layout the running kernel set up at boot.
    pub(crate) fn current() -> Self {
        let direct_map = DirectMap::current();
        Self {
            five_level: five_level_paging(),
            page_offset: direct_map.base,
            high_memory: direct_map.end,
            vmalloc_start: globals::vmalloc_base(),
            vmemmap_start: globals::vmemmap_base(),
            kernel_image_size: bindings::KERNEL_IMAGE_SIZE as usize,
        }
    }

    /// Paging levels: 4 or 5.
    pub(crate) fn levels(&self) -> usize {
        levels(self.five_level).len()
    }

    /// The PGD shift: 39 with 4-level paging, 48 with 5-level.
    fn pgdir_shift(&self) -> u32 {
        Level::Pgd.shift(self.five_level)
    }

    /// The direct map of RAM, `[PAGE_OFFSET, high_memory)`.
    pub(crate) fn direct_map(&self) -> DirectMap {
        DirectMap {
            base: self.page_offset,
            end: self.high_memory,
            phys_offset: 0,
        }
    }

    /// `PAGE_OFFSET` without KASLR for this paging mode.
    pub(crate) fn default_page_offset(&self) -> usize {
        if self.five_level {
            PAGE_OFFSET_BASE_L5
        } else {
            PAGE_OFFSET_BASE_L4
        }
    }

    /// `TASK_SIZE_MAX`: the end of user space (minus a guard page).
    pub(crate) fn user_end(&self) -> usize {
        let bits = if self.five_level { 56 } else { 47 };
        (1usize << bits) - PAGE_SIZE
    }

    /// `VMALLOC_END` as an exclusive bound (the kernel's macro is the last
    /// byte): `VMALLOC_SIZE_TB` is 32 TiB with 4-level paging and 12800 TiB
    /// with 5-level.
    pub(crate) fn vmalloc_end(&self) -> usize {
        let tib = if self.five_level { 12800 } else { 32 };
        self.vmalloc_start + tib * TIB
    }

    /// The direct map's reserved window: 64 TiB (4-level) or 32 PiB
    /// (5-level), cut short where the next region starts (KASLR packs the
    /// regions closer together).
    fn direct_map_end(&self) -> usize {
        let size = if self.five_level {
            1usize << 55
        } else {
            1usize << 46
        };
        (self.page_offset + size).min(self.vmalloc_start)
    }

    /// The `vmemmap` window: 1 TiB (4-level) or 512 TiB (5-level).
    fn vmemmap_end(&self) -> usize {
        let size = if self.five_level { 512 * TIB } else { TIB };
        (self.vmemmap_start + size).min(CPU_ENTRY_AREA_BASE)
    }

    /// `MODULES_VADDR`: right after the kernel image's window.
    pub(crate) fn modules_start(&self) -> usize {
        START_KERNEL_MAP + self.kernel_image_size
    }

    /// `FIXADDR_TOP`: the page below the 2 MiB boundary above the vsyscall
    /// page; fixmap slot `i` is at `FIXADDR_TOP - i * PAGE_SIZE`.
    pub(crate) fn fixaddr_top() -> usize {
        let vsyscall = vsyscall_addr();
        let pmd = 1usize << 21;
        (vsyscall + PAGE_SIZE).next_multiple_of(pmd) - PAGE_SIZE
    }

    /// `FIXADDR_START`: below the permanent fixmap slots.
    pub(crate) fn fixaddr_start() -> usize {
        let slots = bindings::fixed_addresses___end_of_permanent_fixed_addresses as usize;
        Self::fixaddr_top() - slots * PAGE_SIZE
    }

    /// The regions, in address order.
    pub(crate) fn regions(&self) -> [Region; REGIONS] {
        let ldt = LDT_PGD_ENTRY << self.pgdir_shift();
        [
            Region {
                name: "user",
                start: 0,
                end: self.user_end(),
            },
            Region {
                name: "ldt_remap",
                start: ldt,
                end: ldt + (1usize << self.pgdir_shift()),
            },
            Region {
                name: "direct_map",
                start: self.page_offset,
                end: self.direct_map_end(),
            },
            Region {
                name: "vmalloc",
                start: self.vmalloc_start,
                end: self.vmalloc_end(),
            },
            Region {
                name: "vmemmap",
                start: self.vmemmap_start,
                end: self.vmemmap_end(),
            },
            Region {
                name: "cpu_entry_area",
                start: CPU_ENTRY_AREA_BASE,
                end: CPU_ENTRY_AREA_BASE + P4D_SIZE,
            },
            Region {
                name: "espfix",
                start: ESPFIX_BASE,
                end: ESPFIX_BASE + P4D_SIZE,
            },
            Region {
                name: "kernel_image",
                start: START_KERNEL_MAP,
                end: self.modules_start(),
            },
            Region {
                name: "modules",
                start: self.modules_start(),
                end: MODULES_END,
            },
            Region {
                name: "fixmap",
                start: Self::fixaddr_start(),
                // Slot 0 is the page at FIXADDR_TOP itself.
                end: Self::fixaddr_top() + PAGE_SIZE,
            },
        ]
    }

    /// The name of the region `addr` lies in, or `"unknown"`.
    pub(crate) fn region_of(&self, addr: usize) -> &'static str {
        self.regions()
            .iter()
            .find(|r| r.contains(addr))
            .map_or("unknown", |r| r.name)
    }

    /// Whether `addr` is in the direct map of RAM: `[PAGE_OFFSET,
    /// high_memory)`, where `virt_to_phys(addr) == addr - PAGE_OFFSET`.
    pub(crate) fn in_direct_map_ram(&self, addr: usize) -> bool {
        self.direct_map().contains(addr)
    }

    /// Whether `addr` is a vmalloc address: `[VMALLOC_START, VMALLOC_END)`.
    pub(crate) fn in_vmalloc(&self, addr: usize) -> bool {
        (self.vmalloc_start..self.vmalloc_end()).contains(&addr)
    }
}

/// The legacy vsyscall page, the top fixmap slot that user space can see.
pub(crate) fn vsyscall_addr() -> usize {
    bindings::VSYSCALL_ADDR as isize as usize
}

/// Writes the layout as `key value` lines (addresses in hex, `_end`
/// exclusive), as debugfs `layout` shows it and the load prints it.
pub(crate) fn write_layout(f: &mut impl fmt::Write, layout: &Layout, extra: &Extra) -> fmt::Result {
    let mut out = KeyValues::new(f);
    out.number("paging_levels", layout.levels())?;
    out.number("page_size", PAGE_SIZE)?;
    out.addr("page_offset", layout.page_offset)?;
    out.addr("page_offset_default", layout.default_page_offset())?;
    out.addr("high_memory", layout.high_memory)?;
    for r in layout.regions() {
        out.region(&r)?;
    }
    out.addr("vsyscall_page", vsyscall_addr())?;
    out.addr("fixaddr_top", Layout::fixaddr_top())?;
    extra.common.write_places(&mut out)?;
    out.addr("phys_base", extra.phys_base)?;
    extra.common.write_memory(&mut out)?;
    out.flag("kaslr_text", extra.kaslr_text)?;
    out.flag("kaslr_memory", extra.kaslr_memory)?;
    out.flag(
        "page_offset_randomized",
        layout.page_offset != layout.default_page_offset(),
    )
}

/// Facts about the running kernel that are not region bounds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extra {
    /// What every architecture reports.
    pub(crate) common: CommonFacts,
    /// `phys_base`: where the kernel image was loaded, minus where it was
    /// linked to load (non-zero when KASLR moved it physically).
    pub(crate) phys_base: u64,
    /// `CONFIG_RANDOMIZE_BASE`: the kernel image's place is randomised.
    pub(crate) kaslr_text: bool,
    /// `CONFIG_RANDOMIZE_MEMORY`: the direct map, vmalloc and vmemmap bases
    /// are randomised.
    pub(crate) kaslr_memory: bool,
}

impl Extra {
    /// The facts of the running kernel.
    pub(crate) fn current() -> Self {
        Self {
            common: CommonFacts::current(),
            phys_base: globals::phys_base(),
            kaslr_text: cfg!(CONFIG_RANDOMIZE_BASE),
            kaslr_memory: cfg!(CONFIG_RANDOMIZE_MEMORY),
        }
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_layout)]
mod tests {
    use super::*;

    fn four_level() -> Layout {
        Layout {
            five_level: false,
            page_offset: 0xffff_8880_0000_0000,
            high_memory: 0xffff_8880_4000_0000,
            vmalloc_start: 0xffff_c900_0000_0000,
            vmemmap_start: 0xffff_ea00_0000_0000,
            kernel_image_size: 512 << 20,
        }
    }

    fn five_level() -> Layout {
        Layout {
            five_level: true,
            page_offset: 0xff11_0000_0000_0000,
            high_memory: 0xff11_0000_3ffe_0000,
            vmalloc_start: 0xffa0_0000_0000_0000,
            vmemmap_start: 0xffd4_0000_0000_0000,
            kernel_image_size: 512 << 20,
        }
    }

    #[test]
    fn regions_are_ordered_and_disjoint() {
        for layout in [four_level(), five_level()] {
            let regions = layout.regions();
            for r in regions.iter() {
                assert!(r.start < r.end);
            }
            for pair in regions.windows(2) {
                assert!(pair[0].end <= pair[1].start);
            }
        }
    }

    #[test]
    fn documented_bounds() {
        // Documentation/arch/x86/x86_64/mm.rst, 4-level table.
        let l4 = four_level();
        let r = l4.regions();
        assert_eq!(r[0].end, 0x0000_7fff_ffff_f000);
        assert_eq!(
            (r[1].start, r[1].end),
            (0xffff_8800_0000_0000, 0xffff_8880_0000_0000)
        );
        assert_eq!(r[2].end, 0xffff_c880_0000_0000);
        assert_eq!(r[3].end, 0xffff_e900_0000_0000);
        assert_eq!(r[4].end, 0xffff_eb00_0000_0000);
        assert_eq!(r[7].start, 0xffff_ffff_8000_0000);
        assert_eq!(r[8].start, 0xffff_ffff_a000_0000);
        // 5-level table.
        let l5 = five_level();
        let r = l5.regions();
        assert_eq!(r[0].end, 0x00ff_ffff_ffff_f000);
        assert_eq!(
            (r[1].start, r[1].end),
            (0xff10_0000_0000_0000, 0xff11_0000_0000_0000)
        );
        assert_eq!(r[2].end, 0xff91_0000_0000_0000);
        assert_eq!(r[3].end, 0xffd2_0000_0000_0000);
        assert_eq!(r[4].end, 0xffd6_0000_0000_0000);
        // The fixmap ends with the vsyscall page's 2 MiB and holds it.
        assert_eq!(Layout::fixaddr_top(), 0xffff_ffff_ff7f_f000);
        assert!(r[9].contains(vsyscall_addr()));
        assert!(r[9].start > MODULES_END - 1);
    }

    #[test]
    fn classification() {
        let l5 = five_level();
        assert_eq!(l5.region_of(0x40_0000), "user");
        assert_eq!(l5.region_of(0xff11_0000_0123_4000), "direct_map");
        assert_eq!(l5.region_of(0xffa0_0000_000f_d000), "vmalloc");
        assert_eq!(l5.region_of(0xffd4_0000_0000_0040), "vmemmap");
        assert_eq!(l5.region_of(0xffff_ffff_8100_0000), "kernel_image");
        assert_eq!(l5.region_of(0xffff_ffff_c000_0000), "modules");
        assert_eq!(l5.region_of(0xffff_ffff_ff60_0000), "fixmap");
        assert_eq!(l5.region_of(0x8000_0000_0000_0000), "unknown");
        assert!(l5.in_direct_map_ram(0xff11_0000_0000_1000));
        assert!(!l5.in_direct_map_ram(0xff11_0000_4000_0000));
        assert!(l5.in_vmalloc(0xffa0_0000_0000_0000));
        assert!(!l5.in_vmalloc(0xffd2_0000_0000_0000));
        assert!(!four_level().in_vmalloc(0xffff_e900_0000_0000));
    }
}
