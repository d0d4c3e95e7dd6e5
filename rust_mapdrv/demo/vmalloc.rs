// SPDX-License-Identifier: GPL-2.0

//! The demo's `vmalloc`: an allocation that is virtually contiguous but
//! made of pages from anywhere, each found with our page walk and read back
//! through its direct-map alias.

use core::fmt;
use kernel::{
    alloc::{flags, kvec::VVec},
    page::PAGE_SIZE,
    prelude::*,
};

use super::{
    alloc::{read_through_alias, Alias},
    gfp::{GfpNames, RAW_KERNEL},
    report::Report,
};
use crate::arch::{pfn_phys, Layout, YesNo};
use crate::vmalloc_util::PfnRuns;

/// The `vmalloc` size: not a multiple of the page size, so that the
/// rounding up to whole pages shows (15 pages).
const VMALLOC_SIZE: usize = 60_000;

/// Shows a value that implements the kernel's `Display` with `core::fmt`.
struct KernelDisplay<'a, T: kernel::fmt::Display>(&'a T);

impl<T: kernel::fmt::Display> fmt::Display for KernelDisplay<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        kernel::fmt::Display::fmt(self.0, f)
    }
}

/// The number of runs of consecutive values in `pfns` (1 for a physically
/// contiguous range, one per page when every page is elsewhere).
pub(super) fn contiguous_runs(pfns: impl IntoIterator<Item = u64>) -> usize {
    let mut runs = PfnRuns::default();
    pfns.into_iter().for_each(|pfn| runs.push(pfn));
    runs.runs()
}

/// `vmalloc(60000)`: 15 pages, virtually contiguous; each page found with
/// our page walk and read back through its direct-map alias.
pub(super) fn demo_vmalloc(r: &mut Report, l: &Layout) {
    let mut v = match VVec::<u8>::with_capacity(VMALLOC_SIZE, flags::GFP_KERNEL) {
        Ok(v) => v,
        Err(_) => {
            r.check(
                false,
                "vmalloc",
                "allocated",
                format_args!("vmalloc(60000) failed"),
            );
            return;
        }
    };
    if v.resize(VMALLOC_SIZE, 0, flags::GFP_KERNEL).is_err() {
        r.check(
            false,
            "vmalloc",
            "allocated",
            format_args!("could not fill the allocation"),
        );
        return;
    }
    let vaddr = v.as_ptr() as usize;
    let pages = VMALLOC_SIZE.div_ceil(PAGE_SIZE);
    // A marker at the start of each page, to find through the alias.
    for i in 0..pages {
        let marker = marker(vaddr, i);
        v[i * PAGE_SIZE..i * PAGE_SIZE + 8].copy_from_slice(&marker.to_ne_bytes());
    }
    let mut pfns = KVec::<u64>::new();
    let mut walk_errors = 0usize;
    let mut alias_errors = 0usize;
    let mut kmapped = 0usize;
    for i in 0..pages {
        match read_through_alias(&v, i) {
            Ok((w, seen, via)) => {
                let _ = pfns.push(w.pfn, flags::GFP_KERNEL);
                kmapped += usize::from(via == Alias::KmapLocal);
                if seen != marker(vaddr, i) {
                    alias_errors += 1;
                }
            }
            Err(m) => {
                walk_errors += 1;
                r.line(format_args!(
                    "note vmalloc page {}: {}",
                    i,
                    KernelDisplay(&m)
                ));
                let _ = pfns.push(0, flags::GFP_KERNEL);
            }
        }
    }
    let runs = contiguous_runs(pfns.iter().copied());
    r.allocations += 1;
    r.line(format_args!(
        "alloc vmalloc api=vmalloc via=VVec size={} vaddr={:#x} region={} phys={:#x} pages={} contiguous={} runs={} gfp={} gfp_raw={:#x}",
        VMALLOC_SIZE,
        vaddr,
        l.region_of(vaddr),
        pfns.first().map_or(0, |&p| pfn_phys(p)),
        pages,
        YesNo(runs == 1 && walk_errors == 0),
        runs,
        GfpNames(RAW_KERNEL),
        RAW_KERNEL
    ));
    for (i, pfn) in pfns.iter().enumerate() {
        r.line(format_args!(
            "page vmalloc index={} vaddr={:#x} pfn={:#x} phys={:#x}",
            i,
            vaddr + i * PAGE_SIZE,
            pfn,
            pfn_phys(*pfn)
        ));
    }
    let end = vaddr + pages * PAGE_SIZE;
    r.check(
        l.in_vmalloc(vaddr) && l.in_vmalloc(end - 1) && l.region_of(vaddr) == "vmalloc",
        "vmalloc",
        "vmalloc-range",
        format_args!(
            "[{:#x}, {:#x}) is in [VMALLOC_START {:#x}, VMALLOC_END {:#x})",
            vaddr,
            end,
            l.vmalloc_start,
            l.vmalloc_end()
        ),
    );
    r.check(
        walk_errors == 0,
        "vmalloc",
        "page-walk",
        format_args!(
            "{} of {} pages: our walk agrees with vmalloc_to_pfn and {}",
            pages - walk_errors,
            pages,
            crate::arch::KERNEL_LOOKUP
        ),
    );
    r.check(
        alias_errors == 0 && walk_errors == 0,
        "vmalloc",
        "direct-map-alias",
        format_args!(
            "{} of {} pages read back through a second mapping: {} through PAGE_OFFSET + pfn * 4096, {} highmem pages through kmap_local_page",
            pages - walk_errors - alias_errors,
            pages,
            pages - walk_errors - kmapped,
            kmapped
        ),
    );
    r.check(
        !l.in_direct_map_ram(vaddr),
        "vmalloc",
        "not-direct-map",
        format_args!(
            "virt_to_phys would say {:#x}, but page 0 is at {:#x}",
            l.direct_map().phys_of(vaddr),
            pfns.first().map_or(0, |&p| pfn_phys(p))
        ),
    );
    // `v` is freed here (vfree).
}

/// The marker written at the start of page `i` of the vmalloc allocation.
fn marker(vaddr: usize, i: usize) -> u64 {
    0x6d61_7064_7276_0000 ^ (vaddr as u64) ^ i as u64
}
