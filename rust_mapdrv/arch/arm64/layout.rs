// SPDX-License-Identifier: GPL-2.0

//! The arm64 kernel address space of the running system, from the bottom of
//! the kernel half up (`arch/arm64/include/asm/memory.h`, `pgtable.h`,
//! `fixmap.h` of 7.3): the linear map of RAM from `PAGE_OFFSET` to
//! `PAGE_END` (the lower half of the kernel half; with KASAN, its shadow
//! takes the top of that), the modules area (2 GiB), the vmalloc area, the
//! `struct page` array (`vmemmap`), the PCI I/O window and the fixmap, below
//! the top 8 MiB.
//!
//! Unlike x86_64, the kernel image is not in a window of its own: it is
//! mapped at `KIMAGE_VADDR`, the start of the vmalloc area (plus the KASLR
//! offset, which puts it in the middle of the area), and vmalloc keeps out
//! of it because the image is registered as vmalloc areas at boot. So the
//! `kernel_image` region lies inside `vmalloc`; [`Layout::region_of`] names
//! the innermost region.
//!
//! Most bounds are constants of `CONFIG_ARM64_VA_BITS`: unlike x86_64,
//! arm64 randomises only the image's place and the RAM's place in the
//! linear map (`memstart_addr`), not the regions' bases. What depends on the
//! running system is read once in [`Layout::current`] (the address bits
//! TCR_EL1 sets up, `high_memory`, where the image was found); everything
//! else is arithmetic, so that the KUnit tests can check it with known
//! values.

use super::{globals, pgtable};
use crate::arch::{CommonFacts, DirectMap, KeyValues, Region};
use core::fmt;
use kernel::{
    bindings,
    page::{PAGE_SHIFT, PAGE_SIZE},
};

/// `VA_BITS`: the most address bits the kernel half can have.
pub(crate) const VA_BITS: u32 = bindings::CONFIG_ARM64_VA_BITS;
/// `VA_BITS_MIN`: the fewest, on a CPU without LPA2 (4 KiB granule).
pub(crate) const VA_BITS_MIN: u32 = if VA_BITS > 48 { 48 } else { VA_BITS };
/// `PAGE_OFFSET`: the start of the linear map, the bottom of the kernel
/// half of `VA_BITS`.
pub(crate) const PAGE_OFFSET: usize = page_offset(VA_BITS);
/// `MODULES_VADDR`: the middle of the kernel half of `VA_BITS_MIN`.
const MODULES_VADDR: usize = page_end(VA_BITS_MIN);
/// `MODULES_END`, `KIMAGE_VADDR` and `VMALLOC_START`: all the same address.
const MODULES_END: usize = MODULES_VADDR + bindings::MODULES_VSIZE as usize;
/// `VMEMMAP_END`: 1 GiB below the top.
const VMEMMAP_END: usize = (1usize << 30).wrapping_neg();
/// `SZ_8M`: the gaps below `VMALLOC_END`'s end and the PCI I/O window, and
/// the size of the top area above the fixmap.
const SZ_8M: usize = 8 << 20;
/// `sizeof(struct page)`.
const STRUCT_PAGE_SIZE: usize = core::mem::size_of::<bindings::page>();
/// `VMEMMAP_START`: below `VMEMMAP_END`, room for a `struct page` for every
/// page from `PAGE_OFFSET` to `_PAGE_END(VA_BITS_MIN)` (the kernel's
/// `VMEMMAP_SIZE`).
pub(crate) const VMEMMAP_START: usize = vmemmap_start(VA_BITS, STRUCT_PAGE_SIZE);

/// `_PAGE_OFFSET(va)`: the lowest address of a kernel half of `va` bits.
const fn page_offset(va_bits: u32) -> usize {
    (1usize << va_bits).wrapping_neg()
}

/// `_PAGE_END(va)`: the middle of a kernel half of `va` bits, where the
/// linear map ends.
const fn page_end(va_bits: u32) -> usize {
    (1usize << (va_bits - 1)).wrapping_neg()
}

/// `VMEMMAP_START` of a kernel built for `va_bits` (`VA_BITS`) with
/// `struct page`s of `struct_page_size` bytes.
const fn vmemmap_start(va_bits: u32, struct_page_size: usize) -> usize {
    let va_bits_min = if va_bits > 48 { 48 } else { va_bits };
    let range = page_end(va_bits_min).wrapping_sub(page_offset(va_bits));
    VMEMMAP_END - (range >> PAGE_SHIFT) * struct_page_size
}

/// What a layout is computed from: the kernel's build and the running
/// system's choices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// `CONFIG_ARM64_VA_BITS`.
    pub(crate) va_bits_config: u32,
    /// `vabits_actual`: the address bits TCR_EL1 sets up.
    pub(crate) va_bits: u32,
    /// `sizeof(struct page)`.
    pub(crate) struct_page_size: usize,
    /// `__end_of_fixed_addresses`: fixmap slots, boot-time ones included.
    pub(crate) fixmap_slots: usize,
    /// `high_memory`.
    pub(crate) high_memory: usize,
    /// KASAN's `(KASAN_SHADOW_OFFSET, KASAN_SHADOW_SCALE_SHIFT)`, if built
    /// with generic or software-tag KASAN.
    pub(crate) kasan: Option<(usize, u32)>,
    /// The kernel image's mapping, `[start, end)`.
    pub(crate) kernel_image: (usize, usize),
}

/// The address space of the running kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// The kernel half's address bits (`vabits_actual`).
    pub(crate) va_bits: u32,
    /// `PAGE_OFFSET`: the base of the linear map.
    pub(crate) page_offset: usize,
    /// `PAGE_END`: the end of the linear region (the KASAN shadow's start
    /// with KASAN).
    pub(crate) page_end: usize,
    /// `high_memory`: the linear-map address of the end of RAM.
    pub(crate) high_memory: usize,
    /// The KASAN shadow, `[start, end)`, with KASAN.
    pub(crate) kasan_shadow: Option<(usize, usize)>,
    /// `MODULES_VADDR`.
    pub(crate) modules_start: usize,
    /// `VMALLOC_START` (also `MODULES_END` and `KIMAGE_VADDR`).
    pub(crate) vmalloc_start: usize,
    /// `VMALLOC_END`, exclusive.
    vmalloc_end: usize,
    /// `VMEMMAP_START`.
    pub(crate) vmemmap_start: usize,
    /// `FIXADDR_TOT_START`: the lowest fixmap slot, boot-time ones
    /// included (arm64 still uses them for page-table updates).
    pub(crate) fixmap_start: usize,
    /// The kernel image's mapping, `[start, end)`, inside the vmalloc area.
    pub(crate) kernel_image: (usize, usize),
}

impl Layout {
    /// The layout of a kernel built and booted as `p` says.
    pub(crate) fn new(p: &Params) -> Self {
        let base = page_offset(p.va_bits_config);
        let vmemmap_start = vmemmap_start(p.va_bits_config, p.struct_page_size);
        let va_bits_min = p.va_bits_config.min(48);
        let kasan_shadow = p.kasan.map(|(offset, scale)| {
            let end = (1usize << (64 - scale)).wrapping_add(offset);
            (end - (1usize << (p.va_bits - scale)), end)
        });
        // The vmemmap of a 52-bit kernel covers the 52-bit linear map; on a
        // 48-bit CPU its unused bottom part goes to vmalloc instead.
        let unused_vmemmap = if p.va_bits_config == va_bits_min {
            0
        } else {
            (page_offset(p.va_bits).wrapping_sub(base) >> PAGE_SHIFT) * p.struct_page_size
        };
        let modules_start = page_end(va_bits_min);
        Self {
            va_bits: p.va_bits,
            page_offset: base,
            page_end: kasan_shadow.map_or(page_end(va_bits_min), |(start, _)| start),
            high_memory: p.high_memory,
            kasan_shadow,
            modules_start,
            vmalloc_start: modules_start + bindings::MODULES_VSIZE as usize,
            vmalloc_end: vmemmap_start + unused_vmemmap - SZ_8M,
            vmemmap_start,
            fixmap_start: Self::FIXADDR_TOP - p.fixmap_slots * PAGE_SIZE,
            kernel_image: p.kernel_image,
        }
    }

    /// `FIXADDR_TOP`: 8 MiB below the top; fixmap slot `i` is at
    /// `FIXADDR_TOP - i * PAGE_SIZE`, and slot 0 is a hole.
    pub(crate) const FIXADDR_TOP: usize = SZ_8M.wrapping_neg();

    /// The layout the running kernel set up at boot.
    pub(crate) fn current() -> Self {
        let voffset = globals::kimage_voffset();
        // The image runs from `_text` to `_end`, neither exported: found
        // around a function (in `.text`) and a variable (in `.bss`) of it.
        let text = bindings::kfree as *const () as usize;
        let kernel_image = (
            pgtable::kimage_start(text, voffset, MODULES_END),
            pgtable::kimage_end(
                crate::arch::globals::high_memory_addr(),
                voffset,
                VMEMMAP_START,
            ),
        );
        #[cfg(CONFIG_KASAN_GENERIC)]
        let kasan = Some((bindings::CONFIG_KASAN_SHADOW_OFFSET as usize, 3));
        #[cfg(CONFIG_KASAN_SW_TAGS)]
        let kasan = Some((bindings::CONFIG_KASAN_SHADOW_OFFSET as usize, 4));
        #[cfg(not(any(CONFIG_KASAN_GENERIC, CONFIG_KASAN_SW_TAGS)))]
        let kasan = None;
        Self::new(&Params {
            va_bits_config: VA_BITS,
            va_bits: pgtable::Translation::current().map_or(VA_BITS_MIN, |t| t.va_bits),
            struct_page_size: STRUCT_PAGE_SIZE,
            fixmap_slots: bindings::fixed_addresses___end_of_fixed_addresses as usize,
            high_memory: DirectMap::current().end,
            kasan,
            kernel_image,
        })
    }

    /// Paging levels: 3, 4 or 5 (`ARM64_HW_PGTABLE_LEVELS(vabits_actual)`).
    pub(crate) fn levels(&self) -> usize {
        pgtable::Translation {
            va_bits: self.va_bits,
            lpa2: false,
        }
        .levels()
        .len()
    }

    /// The linear map of RAM, `[PAGE_OFFSET, high_memory)`.
    pub(crate) fn direct_map(&self) -> DirectMap {
        DirectMap {
            end: self.high_memory,
            ..DirectMap::current()
        }
    }

    /// `VMALLOC_END` as an exclusive bound.
    pub(crate) fn vmalloc_end(&self) -> usize {
        self.vmalloc_end
    }

    /// The regions, in address order of their starts; `kernel_image` lies
    /// inside `vmalloc`, every other pair is disjoint.
    pub(crate) fn regions(&self) -> impl Iterator<Item = Region> {
        let region = |name, (start, end)| Region { name, start, end };
        [
            Some(region("user", (0, 1usize << self.va_bits))),
            Some(region("direct_map", (self.page_offset, self.page_end))),
            self.kasan_shadow.map(|r| region("kasan_shadow", r)),
            Some(region("modules", (self.modules_start, self.vmalloc_start))),
            Some(region("vmalloc", (self.vmalloc_start, self.vmalloc_end))),
            Some(region("kernel_image", self.kernel_image)),
            // The part of vmemmap in use: a 52-bit kernel on a 48-bit CPU
            // gives the bottom of it to vmalloc (`VMEMMAP_UNUSED_NPAGES`).
            Some(region("vmemmap", (self.vmalloc_end + SZ_8M, VMEMMAP_END))),
            Some(region(
                "pci_io",
                (
                    VMEMMAP_END + SZ_8M,
                    VMEMMAP_END + SZ_8M + bindings::PCI_IO_SIZE as usize,
                ),
            )),
            Some(region("fixmap", (self.fixmap_start, Self::FIXADDR_TOP))),
        ]
        .into_iter()
        .flatten()
    }

    /// The name of the innermost region `addr` lies in (`kernel_image`
    /// rather than the `vmalloc` around it), or `"unknown"`.
    pub(crate) fn region_of(&self, addr: usize) -> &'static str {
        self.regions()
            .filter(|r| r.contains(addr))
            .min_by_key(|r| r.end - r.start)
            .map_or("unknown", |r| r.name)
    }

    /// Whether `addr` is in the linear map of RAM: `[PAGE_OFFSET,
    /// high_memory)`, where `__pa(addr)` is `addr - PAGE_OFFSET +
    /// PHYS_OFFSET`.
    pub(crate) fn in_direct_map_ram(&self, addr: usize) -> bool {
        self.direct_map().contains(addr)
    }

    /// Whether `addr` is a vmalloc address: `[VMALLOC_START, VMALLOC_END)`
    /// (the kernel's `is_vmalloc_addr()`, which counts the image too).
    pub(crate) fn in_vmalloc(&self, addr: usize) -> bool {
        (self.vmalloc_start..self.vmalloc_end).contains(&addr)
    }
}

/// Writes the layout as `key value` lines (addresses in hex, `_end`
/// exclusive), as debugfs `layout` shows it and the load prints it.
pub(crate) fn write_layout(f: &mut impl fmt::Write, layout: &Layout, extra: &Extra) -> fmt::Result {
    let mut out = KeyValues::new(f);
    out.number("paging_levels", layout.levels())?;
    out.number("va_bits", layout.va_bits)?;
    out.number("page_size", PAGE_SIZE)?;
    out.addr("page_offset", layout.page_offset)?;
    out.addr("page_end", layout.page_end)?;
    out.addr("high_memory", layout.high_memory)?;
    for r in layout.regions() {
        out.region(&r)?;
    }
    out.addr("fixaddr_top", Layout::FIXADDR_TOP)?;
    extra.common.write_places(&mut out)?;
    out.addr("kimage_voffset", extra.kimage_voffset)?;
    out.addr("memstart_addr", extra.memstart_addr)?;
    extra.common.write_memory(&mut out)?;
    out.flag("kaslr_text", extra.kaslr)?;
    out.flag("kaslr_memory", extra.kaslr)
}

/// Facts about the running kernel that are not region bounds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extra {
    /// What every architecture reports.
    pub(crate) common: CommonFacts,
    /// `kimage_voffset`: the image's virtual minus physical address.
    pub(crate) kimage_voffset: u64,
    /// `memstart_addr` (`PHYS_OFFSET`), as its 64 bits.
    pub(crate) memstart_addr: u64,
    /// `CONFIG_RANDOMIZE_BASE`: the image's place, and RAM's place in the
    /// linear map, are randomised (arm64 has no separate switch for the
    /// second, x86_64's `RANDOMIZE_MEMORY`).
    pub(crate) kaslr: bool,
}

impl Extra {
    /// The facts of the running kernel.
    pub(crate) fn current() -> Self {
        Self {
            common: CommonFacts::current(),
            kimage_voffset: globals::kimage_voffset(),
            memstart_addr: DirectMap::current().phys_offset,
            kaslr: cfg!(CONFIG_RANDOMIZE_BASE),
        }
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_arm64_layout)]
mod tests {
    use super::*;

    /// A 48-bit kernel on QEMU's virt machine with 1 GiB of RAM at 1 GiB,
    /// no KASLR: the image at `KIMAGE_VADDR`.
    fn va48() -> Layout {
        Layout::new(&Params {
            va_bits_config: 48,
            va_bits: 48,
            struct_page_size: 64,
            fixmap_slots: 977,
            high_memory: 0xffff_0000_4000_0000,
            kasan: None,
            kernel_image: (0xffff_8000_8000_0000, 0xffff_8000_82a0_0000),
        })
    }

    /// A 52-bit (LPA2) kernel, on a CPU with LPA2 and on one without.
    fn va52(va_bits: u32) -> Layout {
        Layout::new(&Params {
            va_bits_config: 52,
            va_bits,
            struct_page_size: 64,
            fixmap_slots: 977,
            high_memory: 0xfff0_0000_4000_0000,
            kasan: None,
            kernel_image: (0xffff_8000_8000_0000, 0xffff_8000_82a0_0000),
        })
    }

    /// A 39-bit (three-level) kernel with generic KASAN (its default
    /// shadow offset for 39 bits).
    fn va39_kasan() -> Layout {
        Layout::new(&Params {
            va_bits_config: 39,
            va_bits: 39,
            struct_page_size: 64,
            fixmap_slots: 977,
            high_memory: 0xffff_ff80_4000_0000,
            kasan: Some((0xdfff_ffc0_0000_0000, 3)),
            kernel_image: (0xffff_ffc0_8000_0000, 0xffff_ffc0_82a0_0000),
        })
    }

    #[test]
    fn regions_are_ordered_and_disjoint_but_the_image() {
        for layout in [va48(), va52(52), va52(48), va39_kasan()] {
            let mut previous: Option<Region> = None;
            for r in layout.regions() {
                assert!(r.start < r.end);
                if let Some(p) = previous {
                    assert!(p.start <= r.start);
                    if r.name == "kernel_image" {
                        // Nested in the vmalloc area.
                        assert_eq!(p.name, "vmalloc");
                        assert!(p.start <= r.start && r.end <= p.end);
                    } else if p.name == "kernel_image" {
                        assert!(layout.vmalloc_end() <= r.start);
                    } else {
                        assert!(p.end <= r.start);
                    }
                }
                previous = Some(r);
            }
        }
    }

    #[test]
    fn documented_bounds() {
        // memory.h with VA_BITS 48 and a 64-byte struct page.
        let l = va48();
        assert_eq!(l.levels(), 4);
        assert_eq!(l.page_offset, 0xffff_0000_0000_0000);
        assert_eq!(l.page_end, 0xffff_8000_0000_0000);
        assert_eq!(l.modules_start, 0xffff_8000_0000_0000);
        assert_eq!(l.vmalloc_start, 0xffff_8000_8000_0000);
        assert_eq!(l.vmemmap_start, 0xffff_fdff_c000_0000);
        assert_eq!(l.vmalloc_end(), 0xffff_fdff_bf80_0000);
        assert_eq!(l.fixmap_start, 0xffff_ffff_ff80_0000 - 977 * 4096);
        assert_eq!(l.regions().count(), 8);
        // 52 bits: PAGE_OFFSET moves down, the modules do not; on a CPU
        // without LPA2 the unused bottom of vmemmap goes to vmalloc.
        let l = va52(52);
        assert_eq!(l.levels(), 5);
        assert_eq!(l.page_offset, 0xfff0_0000_0000_0000);
        assert_eq!(l.modules_start, 0xffff_8000_0000_0000);
        assert_eq!(l.vmemmap_start, VMEMMAP_END - (1 << 46) + (1 << 41));
        assert_eq!(l.vmalloc_end(), l.vmemmap_start - SZ_8M);
        let folded = va52(48);
        assert_eq!(folded.levels(), 4);
        assert_eq!(
            folded.vmalloc_end(),
            l.vmemmap_start + ((1 << 46) - (1 << 42)) - SZ_8M
        );
        // 39 bits with KASAN: the shadow ends where the modules start.
        let l = va39_kasan();
        assert_eq!(l.levels(), 3);
        assert_eq!(l.page_offset, 0xffff_ff80_0000_0000);
        assert_eq!(
            l.kasan_shadow,
            Some((0xffff_ffb0_0000_0000, 0xffff_ffc0_0000_0000))
        );
        assert_eq!(l.page_end, 0xffff_ffb0_0000_0000);
        assert_eq!(l.modules_start, 0xffff_ffc0_0000_0000);
    }

    #[test]
    fn classification() {
        let l = va48();
        assert_eq!(l.region_of(0xaaaa_0000_0000), "user");
        assert_eq!(l.region_of(0xffff_0000_0123_4000), "direct_map");
        assert_eq!(l.region_of(0xffff_8000_0000_1000), "modules");
        assert_eq!(l.region_of(0xffff_8000_8123_4000), "kernel_image");
        assert_eq!(l.region_of(0xffff_8000_82a0_0000), "vmalloc");
        assert_eq!(l.region_of(0xffff_fdff_c000_0040), "vmemmap");
        assert_eq!(l.region_of(0xffff_ffff_c080_0000), "pci_io");
        assert_eq!(l.region_of(0xffff_ffff_ff7f_f000), "fixmap");
        assert_eq!(l.region_of(0xffff_ffff_ff80_0000), "unknown");
        assert_eq!(l.region_of(0x8000_0000_0000_0000), "unknown");
        assert!(l.in_direct_map_ram(0xffff_0000_3fff_f000));
        assert!(!l.in_direct_map_ram(0xffff_0000_4000_0000));
        assert!(l.in_vmalloc(0xffff_8000_8000_0000));
        assert!(l.in_vmalloc(0xffff_8000_82a0_0000));
        assert!(!l.in_vmalloc(0xffff_fdff_bf80_0000));
        assert!(!l.in_vmalloc(0xffff_8000_7fff_f000));
    }

    #[test]
    fn running_kernel_layout() {
        // The image holds `kfree` and lies in the vmalloc area; RAM's end is
        // in the linear map.
        let l = Layout::current();
        let kfree = bindings::kfree as *const () as usize;
        assert_eq!(l.region_of(kfree), "kernel_image");
        assert!(l.in_vmalloc(l.kernel_image.0) && l.in_vmalloc(l.kernel_image.1 - 1));
        assert!(l.page_offset < l.high_memory && l.high_memory <= l.page_end);
        assert_eq!(l.region_of(l.high_memory - 1), "direct_map");
    }
}
