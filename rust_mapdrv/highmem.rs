// SPDX-License-Identifier: GPL-2.0

//! Where a page of RAM is, and how the kernel reaches it: its zone, its
//! permanent kernel address (`page_address()`, none for a highmem page not
//! mapped by `kmap()`), and a persistent `kmap()` of it. The 7.3 kernel
//! crate has `kmap_local_page()` (`Page::read_raw` and friends use it) but
//! none of these, so this file is their one unsafe boundary; the rest of
//! the module uses the safe functions here.
//!
//! On a 64-bit kernel every page has a permanent address in the direct map,
//! and `kmap()` of a page is that address. On 32-bit ARM (`CONFIG_HIGHMEM`)
//! the pages above `high_memory` have none: the exact trap of the 2.4
//! `map_driver.c`, whose `page_address(pte_page(...))` is NULL for them.

use kernel::{bindings, page::Page, prelude::*};

/// The permanent kernel address of `page`: its direct-map address, or for
/// a highmem page the pkmap address a persistent `kmap()` gave it while
/// that lasts; `None` for a highmem page that no one has mapped.
pub(crate) fn page_address(page: *mut bindings::page) -> Option<usize> {
    #[cfg(CONFIG_HIGHMEM)]
    {
        // SAFETY: `page_address()` looks the page up in the kernel's
        // hash of kmapped highmem pages under its own lock; the caller
        // passes a `struct page` of RAM (callers hold the page).
        let addr = unsafe { bindings::page_address(page) } as usize;
        (addr != 0).then_some(addr)
    }
    #[cfg(not(CONFIG_HIGHMEM))]
    {
        crate::arch::DirectMap::current().addr_of_pfn(crate::arch::page_to_pfn(page))
    }
}

/// The name of the zone the page frame `pfn` belongs to (`DMA32`,
/// `Normal`, `HighMem`...), as `/proc/zoneinfo` names it, or `"?"` if no
/// zone of node 0 spans it.
pub(crate) fn zone_name(pfn: u64) -> &'static CStr {
    #[cfg(not(CONFIG_NUMA))]
    {
        // SAFETY: `contig_page_data` is the one node of a kernel without
        // NUMA, set up in early boot; its zones' spans and names do not
        // change after that (no memory hotplug in a kernel without NUMA
        // that this module runs on: spans only grow, and are read whole).
        let zones = unsafe { &(*core::ptr::addr_of!(bindings::contig_page_data)).node_zones };
        for zone in zones.iter() {
            let start = zone.zone_start_pfn as u64;
            if zone.spanned_pages != 0 && (start..start + zone.spanned_pages as u64).contains(&pfn)
            {
                // SAFETY: A zone's name is a static string of the kernel
                // (`zone_names[]`), set at boot.
                return unsafe { CStr::from_char_ptr(zone.name) };
            }
        }
    }
    let _ = pfn;
    c"?"
}

/// Writes `value` at the start of `page` (through a `kmap_local_page()`
/// mapping of it, as `Page::write_raw` makes).
pub(crate) fn write_first_u64(page: &Page, value: u64) -> Result {
    let bytes = value.to_ne_bytes();
    // SAFETY: `bytes` is valid for reads of its 8 bytes, and does not
    // overlap the page.
    unsafe { page.write_raw(bytes.as_ptr(), 0, bytes.len()) }
}

/// Calls `f` with the address of a temporary mapping of `page`
/// (`kmap_local_page()`): for a highmem page, a slot of the fixmap's
/// `FIX_KMAP` window, private to this task and valid only until `f`
/// returns; for a lowmem page, its direct-map address. `f` must not sleep
/// on a lock that another kmap_local user needs, nor keep the address.
pub(crate) fn with_kmap_local<R>(page: &Page, f: impl FnOnce(usize) -> R) -> R {
    // SAFETY: `page` is a page we hold (the borrow keeps it allocated).
    // `kmap_local_page()` maps it (disabling migration, so the slot stays
    // this CPU's) until the matching `kunmap_local()`, which follows `f`
    // before any other kmap_local of this task is undone (they nest).
    let addr = unsafe { bindings::kmap_local_page(page.as_ptr()) };
    let result = f(addr as usize);
    // SAFETY: `addr` is the mapping just made, undone once, in LIFO order.
    unsafe { bindings::kunmap_local(addr) };
    result
}

/// Whether the kernel address `addr`, mapped now, translates to page
/// frame `pfn`: our walk of the page tables, for a mapping the caller
/// holds (a `kmap_local_page()` or `kmap()` of that page).
pub(crate) fn maps_pfn(addr: usize, pfn: u64) -> bool {
    // SAFETY: The callers pass an address of a kmap or kmap_local mapping
    // they hold during the call: the pkmap and fixmap page tables are
    // allocated at boot and never freed, and the direct map's are never
    // freed while memory in it is in use.
    matches!(unsafe { crate::arch::walk(addr) }, Ok(w) if w.pfn == pfn)
}

/// A persistent kernel mapping of a page (`kmap()`): for a highmem page, a
/// slot of the pkmap window (`PKMAP_BASE`, 2 MiB) that `kmap_high()` took
/// and that stays until this is dropped (`kunmap_high()`), from any CPU; for
/// a lowmem page, its direct-map address. Unlike `kmap_local_page()` it may
/// sleep and may be held across sleeps.
///
/// # Invariants
///
/// `addr` maps `page` until this value is dropped; `highmem` says whether
/// `kmap_high()` made it (and `kunmap_high()` must end it).
pub(crate) struct Kmap<'a> {
    page: &'a Page,
    addr: usize,
    highmem: bool,
}

impl<'a> Kmap<'a> {
    /// `kmap(page)`. May sleep (waiting for a free pkmap slot).
    pub(crate) fn new(page: &'a Page) -> Result<Self> {
        let raw = page.as_ptr();
        if let Some(addr) =
            crate::arch::DirectMap::current().addr_of_pfn(crate::arch::page_to_pfn(raw))
        {
            // INVARIANT: A lowmem page's direct-map address maps it while it
            // is allocated, which the borrow of `page` ensures.
            return Ok(Self {
                page,
                addr,
                highmem: false,
            });
        }
        #[cfg(CONFIG_HIGHMEM)]
        {
            // SAFETY: `raw` is a highmem page we hold (borrowed for `'a`);
            // `kmap_high()` sleeps, which the callers (process context:
            // module init, debugfs writes) allow, and returns its mapping.
            let addr = unsafe { bindings::kmap_high(raw) } as usize;
            if addr == 0 {
                return Err(ENOMEM);
            }
            // INVARIANT: `kmap_high()` mapped it; `Drop` unmaps it.
            Ok(Self {
                page,
                addr,
                highmem: true,
            })
        }
        #[cfg(not(CONFIG_HIGHMEM))]
        {
            // Without highmem every page is in the direct map.
            Err(EINVAL)
        }
    }

    /// The address the page is mapped at.
    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    /// Whether the page is a highmem page, mapped by `kmap_high()`.
    pub(crate) fn is_highmem(&self) -> bool {
        self.highmem
    }

    /// The `u64` at the start of the page, read through this mapping.
    pub(crate) fn read_first_u64(&self) -> u64 {
        // SAFETY: `addr` maps the whole page while `self` lives (type
        // invariant) and is page aligned, so aligned for a u64; the page
        // is RAM. The read is volatile: the page may be written through
        // another mapping of it.
        unsafe { core::ptr::read_volatile(self.addr as *const u64) }
    }
}

impl Drop for Kmap<'_> {
    fn drop(&mut self) {
        #[cfg(CONFIG_HIGHMEM)]
        if self.highmem {
            // SAFETY: `kmap_high()` mapped this page (type invariant), and
            // this is its one `kunmap_high()`.
            unsafe { bindings::kunmap_high(self.page.as_ptr()) };
        }
        let _ = self.page;
    }
}
