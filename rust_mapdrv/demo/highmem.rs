// SPDX-License-Identifier: GPL-2.0

//! The highmem demo, the 32-bit world of the original documents: a page
//! allocated with `__GFP_HIGHMEM` (as `GFP_HIGHUSER` asks for user pages)
//! comes from ZONE_HIGHMEM when the kernel has one, and then has no
//! permanent kernel address (`page_address()` is NULL): to touch it the
//! kernel maps it, for a moment with `kmap_local_page()` (a slot of the
//! fixmap, private to the task) or for as long as it likes with `kmap()`
//! (a slot of the pkmap window at `PKMAP_BASE`). Both addresses are
//! checked to lie in their windows and, by our page-table walk, to reach
//! the page; a value written through one is read through the other.
//!
//! On a 64-bit kernel there is no highmem: the page is in the direct map,
//! and both "mappings" are its direct-map address, which the demo checks
//! instead.

use kernel::{alloc::flags, page::Page};

use super::{
    alloc::page_pfn,
    gfp::{Gfp, GfpNames, RAW_KERNEL},
    report::Report,
};
use crate::{
    arch::{pfn_phys, Layout},
    highmem::{self, Kmap},
};

/// `GFP_KERNEL | __GFP_HIGHMEM`, as the C flags.
const RAW_HIGHMEM: Gfp = RAW_KERNEL | kernel::bindings::__GFP_HIGHMEM;

/// What the demo writes at the start of the page through one mapping and
/// reads through the other.
const MARKER: u64 = 0x6869_676d_656d_2121;

/// A highmem page, mapped twice.
pub(super) fn demo_highmem(r: &mut Report, l: &Layout) {
    let Ok(page) = Page::alloc_page(flags::GFP_KERNEL | flags::__GFP_HIGHMEM) else {
        r.check(
            false,
            "highmem_page",
            "allocated",
            format_args!("alloc_page(GFP_KERNEL | __GFP_HIGHMEM) failed"),
        );
        return;
    };
    let pfn = page_pfn(&page);
    let zone = highmem::zone_name(pfn).to_str().unwrap_or("?");
    let permanent = highmem::page_address(page.as_ptr());
    let in_highmem = l.direct_map().addr_of_pfn(pfn).is_none();
    // `kunmap()` releases a pkmap slot lazily (`flush_all_zero_pkmaps()`
    // runs when the window wraps): a highmem page that an earlier kmap()
    // mapped may still have that address, and then `page_address()` and
    // `kmap_local_page()` return it.
    let stale = permanent.filter(|&a| in_highmem && l.region_of(a) == "pkmap");
    r.line(format_args!(
        "note highmem_page: alloc_page({}) gave pfn {:#x} phys {:#x} in zone {}; page_address() = {:#x}{}",
        GfpNames(RAW_HIGHMEM),
        pfn,
        pfn_phys(pfn),
        zone,
        permanent.unwrap_or(0),
        if permanent.is_none() {
            " (NULL: no permanent kernel address)"
        } else if stale.is_some() {
            " (a pkmap slot an earlier kmap() left: kunmap() releases slots lazily)"
        } else {
            ""
        }
    ));
    if cfg!(CONFIG_HIGHMEM) {
        r.check(
            in_highmem && permanent == stale && zone == "HighMem",
            "highmem_page",
            "no-permanent-address",
            format_args!(
                "pfn {:#x} is above high_memory (zone {}), and page_address() is {}",
                pfn,
                zone,
                if stale.is_some() {
                    "a left-over pkmap slot's address"
                } else {
                    "NULL"
                }
            ),
        );
    } else {
        r.check(
            !in_highmem && permanent == l.direct_map().addr_of_pfn(pfn),
            "highmem_page",
            "direct-map",
            format_args!(
                "no highmem on this kernel: pfn {:#x} (zone {}) is at {:#x} in the direct map",
                pfn,
                zone,
                permanent.unwrap_or(0)
            ),
        );
    }
    // Write the marker through a kmap_local mapping.
    let written = highmem::write_first_u64(&page, MARKER);
    // The two windows a highmem page is mapped in, or the direct map.
    let (local_window, kmap_window) = match (in_highmem, stale) {
        (false, _) => ("direct_map", "direct_map"),
        (true, None) => ("fixmap", "pkmap"),
        (true, Some(_)) => ("pkmap", "pkmap"),
    };
    let (local_addr, local_maps) =
        highmem::with_kmap_local(&page, |addr| (addr, highmem::maps_pfn(addr, pfn)));
    report_mapping(
        r,
        l,
        "kmap_local",
        "kmap_local_page",
        local_addr,
        pfn,
        local_window,
        local_maps,
    );
    match Kmap::new(&page) {
        Ok(km) => {
            let kmap_maps = highmem::maps_pfn(km.addr(), pfn);
            report_mapping(r, l, "kmap", "kmap", km.addr(), pfn, kmap_window, kmap_maps);
            let seen = km.read_first_u64();
            r.check(
                written.is_ok() && seen == MARKER,
                "kmap",
                "same-memory",
                format_args!(
                    "{:#x} written through kmap_local_page, {:#x} read through kmap at {:#x}",
                    MARKER,
                    seen,
                    km.addr()
                ),
            );
            if km.is_highmem() {
                let while_mapped = highmem::page_address(page.as_ptr());
                r.check(
                    while_mapped == Some(km.addr()),
                    "kmap",
                    "page-address",
                    format_args!(
                        "while kmapped, page_address() returns the pkmap address {:#x}",
                        while_mapped.unwrap_or(0)
                    ),
                );
            }
        }
        Err(e) => r.check(
            false,
            "kmap",
            "mapped",
            format_args!("kmap failed: {:?}", e),
        ),
    };
    // `page` is freed here, after its kmap is undone.
}

/// One `alloc` line for a mapping of the demo's page at `addr`, and the
/// checks that it lies in `window` and that our walk of it finds the page.
#[allow(clippy::too_many_arguments)]
fn report_mapping(
    r: &mut Report,
    l: &Layout,
    name: &str,
    api: &str,
    addr: usize,
    pfn: u64,
    window: &str,
    maps: bool,
) {
    let region = l.region_of(addr);
    r.allocations += 1;
    r.line(format_args!(
        "alloc {} api={} via=highmem size=4096 vaddr={:#x} region={} phys={:#x} pages=1 contiguous=yes gfp={} gfp_raw={:#x} pfn={:#x}",
        name,
        api,
        addr,
        region,
        pfn_phys(pfn),
        GfpNames(RAW_HIGHMEM),
        RAW_HIGHMEM,
        pfn
    ));
    r.check(
        region == window,
        name,
        "window",
        format_args!("{:#x} is in {} (expected {})", addr, region, window),
    );
    r.check(
        maps,
        name,
        "same-page",
        format_args!("our walk of {:#x} reaches pfn {:#x}, the page's", addr, pfn),
    );
}
