// SPDX-License-Identifier: GPL-2.0

//! The allocation demo: where `kmalloc`, `kzalloc`, `kcalloc`, a slab cache,
//! `vmalloc` and the page allocator put memory, with the claims the
//! documents make about each checked on the spot.
//!
//! The documents' small module printed the addresses that `get_free_page`,
//! `kmalloc(100)` and `vmalloc` returned. This one does each allocation,
//! prints one line per allocation, `demo: alloc <name> key=value ...`
//! (address, region, physical address, contiguity, GFP flags), one line per
//! page of the vmalloc allocation (`demo: page vmalloc ...`), one line per
//! claim checked (`demo: check ok|FAIL <name> <claim>: <detail>`) and a
//! summary (`demo: done ...`), then frees everything before it returns.
//!
//! The physical addresses are not taken on trust: for direct-map memory the
//! demo computes `virt - PAGE_OFFSET` (what `virt_to_phys` does on x86_64)
//! and compares it with our own walk of the page tables the CPU uses; for
//! vmalloc memory it walks every page (cross-checked against
//! `vmalloc_to_pfn` and `lookup_address`) and reads each page back through
//! its direct-map alias.
//!
//! It runs at load (parameter `demo`, default on) and on each write of
//! `run` to debugfs `mapdrv/demo`; reading that file gives the last report.
//! Debugfs `mapdrv/layout` gives the address-space layout as `key value`
//! lines, and `mapdrv/hold` keeps one block of 2^order pages allocated
//! until `release` is written, so that user space can watch
//! `/proc/buddyinfo` change.

use core::{fmt, ptr::NonNull};
use kernel::{
    alloc::{flags, kvec::VVec},
    bindings,
    ffi::c_void,
    new_mutex,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserSliceReader,
};

use crate::{
    arch::{Extra, Layout, PageWalk, YesNo},
    debugfs::FileData,
    owned_debugfs::FileSpec,
    vmalloc_util::{self, VmallocBuffer},
};

/// The size the documents' demo passed to `kmalloc`.
const KMALLOC_SIZE: usize = 100;
/// The `vmalloc` size: not a multiple of the page size, so that the
/// rounding up to whole pages shows (15 pages).
const VMALLOC_SIZE: usize = 60_000;
/// `kcalloc(KCALLOC_N, KCALLOC_SIZE)`: 25 `u32`s, 100 bytes again.
const KCALLOC_N: usize = 25;
/// The object size of the demo's own slab cache.
const SLAB_OBJECT_SIZE: u32 = 100;
/// The fixed-order block of the page-allocator demo.
const HIGHER_ORDER: u32 = 3;
/// `MAX_PAGE_ORDER`: the largest block the buddy allocator has (10: 4 MiB).
pub(crate) const MAX_ORDER: u32 = bindings::MAX_PAGE_ORDER;
/// A byte that `kzalloc` must not return: `kmalloc`'s object is filled with
/// it before it is freed, so a recycled object that was not zeroed shows.
const DIRT: u8 = 0x5a;

/// A raw `gfp_t` value.
type Gfp = u32;
const RAW_KERNEL: Gfp = bindings::GFP_KERNEL;
const RAW_ZERO: Gfp = bindings::__GFP_ZERO;
const RAW_NOWARN: Gfp = bindings::__GFP_NOWARN;
const RAW_NORETRY: Gfp = 1 << bindings::___GFP_NORETRY_BIT;
/// For the largest block: give up at once and quietly when it cannot be had.
const RAW_TRY_ONCE: Gfp = RAW_KERNEL | RAW_NOWARN | RAW_NORETRY;

/// The names of single GFP bits, lowest first (`include/linux/gfp_types.h`).
const GFP_BITS: [(&str, u32); 24] = [
    ("__GFP_DMA", bindings::___GFP_DMA_BIT),
    ("__GFP_HIGHMEM", bindings::___GFP_HIGHMEM_BIT),
    ("__GFP_DMA32", bindings::___GFP_DMA32_BIT),
    ("__GFP_MOVABLE", bindings::___GFP_MOVABLE_BIT),
    ("__GFP_RECLAIMABLE", bindings::___GFP_RECLAIMABLE_BIT),
    ("__GFP_HIGH", bindings::___GFP_HIGH_BIT),
    ("__GFP_IO", bindings::___GFP_IO_BIT),
    ("__GFP_FS", bindings::___GFP_FS_BIT),
    ("__GFP_ZERO", bindings::___GFP_ZERO_BIT),
    ("__GFP_UNUSED", bindings::___GFP_UNUSED_BIT),
    ("__GFP_DIRECT_RECLAIM", bindings::___GFP_DIRECT_RECLAIM_BIT),
    ("__GFP_KSWAPD_RECLAIM", bindings::___GFP_KSWAPD_RECLAIM_BIT),
    ("__GFP_WRITE", bindings::___GFP_WRITE_BIT),
    ("__GFP_NOWARN", bindings::___GFP_NOWARN_BIT),
    ("__GFP_RETRY_MAYFAIL", bindings::___GFP_RETRY_MAYFAIL_BIT),
    ("__GFP_NOFAIL", bindings::___GFP_NOFAIL_BIT),
    ("__GFP_NORETRY", bindings::___GFP_NORETRY_BIT),
    ("__GFP_MEMALLOC", bindings::___GFP_MEMALLOC_BIT),
    ("__GFP_COMP", bindings::___GFP_COMP_BIT),
    ("__GFP_NOMEMALLOC", bindings::___GFP_NOMEMALLOC_BIT),
    ("__GFP_HARDWALL", bindings::___GFP_HARDWALL_BIT),
    ("__GFP_THISNODE", bindings::___GFP_THISNODE_BIT),
    ("__GFP_ACCOUNT", bindings::___GFP_ACCOUNT_BIT),
    ("__GFP_ZEROTAGS", bindings::___GFP_ZEROTAGS_BIT),
];

/// The usual combinations, tried first (largest first).
const GFP_COMBOS: [(&str, Gfp); 3] = [
    ("GFP_KERNEL", bindings::GFP_KERNEL),
    ("GFP_NOWAIT", bindings::GFP_NOWAIT),
    ("GFP_ATOMIC", bindings::GFP_ATOMIC),
];

/// Writes `gfp` as names joined by `|`: a combination such as `GFP_KERNEL`
/// when all its bits are set, then the remaining single bits.
pub(crate) struct GfpNames(pub(crate) Gfp);

impl fmt::Display for GfpNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut sep = "";
        for (name, bits) in GFP_COMBOS {
            if bits != 0 && rest & bits == bits {
                write!(f, "{sep}{name}")?;
                sep = "|";
                rest &= !bits;
            }
        }
        for (name, bit) in GFP_BITS {
            if rest & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
                rest &= !(1 << bit);
            }
        }
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        } else if sep.is_empty() {
            f.write_str("0")?;
        }
        Ok(())
    }
}

/// Shows a value that implements the kernel's `Display` with `core::fmt`.
struct KernelDisplay<'a, T: kernel::fmt::Display>(&'a T);

impl<T: kernel::fmt::Display> fmt::Display for KernelDisplay<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        kernel::fmt::Display::fmt(self.0, f)
    }
}

/// The number of runs of consecutive values in `pfns` (1 for a physically
/// contiguous range, one per page when every page is elsewhere).
pub(crate) fn contiguous_runs(pfns: impl IntoIterator<Item = u64>) -> usize {
    let mut runs = 0;
    let mut previous: Option<u64> = None;
    for pfn in pfns {
        if previous.and_then(|p| p.checked_add(1)) != Some(pfn) {
            runs += 1;
        }
        previous = Some(pfn);
    }
    runs
}

/// The PFN of a `struct page` (`page_to_pfn` with `SPARSEMEM_VMEMMAP`: the
/// page's index in the `vmemmap` array).
fn page_to_pfn(page: *const bindings::page) -> u64 {
    // SAFETY: `vmemmap_base` is written once during early boot.
    let vmemmap = unsafe { bindings::vmemmap_base };
    ((page as usize - vmemmap) / core::mem::size_of::<bindings::page>()) as u64
}

/// Walks the page tables for the direct-map address `addr`.
///
/// # Safety
///
/// `addr` must lie in memory the caller holds (an allocation not freed
/// during the call). Such memory stays in the direct map, whose page tables
/// are only ever split, never freed, while it is in use: memory hot-remove
/// cannot offline pages in use, and the page-table collapse of
/// `set_memory_rox` works on the module area only.
unsafe fn walk_direct(addr: usize) -> Option<PageWalk> {
    // SAFETY: See above.
    unsafe { vmalloc_util::walk(addr) }.ok()
}

/// A block of 2^order physically contiguous pages from `alloc_pages`.
///
/// # Invariants
///
/// `page` is the first page of a block of order `order` that this value owns
/// and frees in [`Drop`].
pub(crate) struct PageBlock {
    page: NonNull<bindings::page>,
    order: u32,
}

// SAFETY: The block is plain memory owned by this value; it can be freed
// from any thread.
unsafe impl Send for PageBlock {}

impl PageBlock {
    /// `alloc_pages(gfp, order)`.
    fn alloc(gfp: Gfp, order: u32) -> Result<Self> {
        if order > MAX_ORDER {
            return Err(EINVAL);
        }
        // SAFETY: `order` is at most MAX_PAGE_ORDER. Every caller runs in
        // process context (module init, a debugfs write), where `gfp` may
        // sleep.
        let page = unsafe { bindings::alloc_pages(gfp, order) };
        // INVARIANT: A new block of `order`, now ours.
        Ok(Self {
            page: NonNull::new(page).ok_or(ENOMEM)?,
            order,
        })
    }

    fn pfn(&self) -> u64 {
        page_to_pfn(self.page.as_ptr())
    }

    fn pages(&self) -> usize {
        1 << self.order
    }
}

impl Drop for PageBlock {
    fn drop(&mut self) {
        // SAFETY: The block is ours and of this order (type invariant); this
        // is its only release.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// A block from `__get_free_pages`: its direct-map address.
///
/// # Invariants
///
/// `addr` is a block of order `order` that this value owns.
struct FreePages {
    addr: usize,
    order: u32,
}

impl FreePages {
    /// `__get_free_pages(gfp, order)`.
    fn get(gfp: Gfp, order: u32) -> Result<Self> {
        if order > MAX_ORDER {
            return Err(EINVAL);
        }
        // SAFETY: As in `PageBlock::alloc`.
        let addr = unsafe { bindings::get_free_pages_noprof(gfp, order) } as usize;
        if addr == 0 {
            return Err(ENOMEM);
        }
        // INVARIANT: A new block of `order`, now ours.
        Ok(Self { addr, order })
    }
}

impl Drop for FreePages {
    fn drop(&mut self) {
        // SAFETY: The block is ours and of this order (type invariant).
        unsafe { bindings::free_pages(self.addr, self.order) };
    }
}

/// A slab cache of its own (`kmem_cache_create`), destroyed when dropped.
///
/// # Invariants
///
/// `cache` is a live cache created by [`SlabCache::new`]; every object
/// allocated from it is a [`SlabObject`] borrowing it, so all are freed
/// before the cache is destroyed.
struct SlabCache {
    cache: NonNull<bindings::kmem_cache>,
}

impl SlabCache {
    /// A cache of `size`-byte objects, aligned to cache lines and never
    /// merged with another cache of the same geometry (so that it is really
    /// ours, with its own line in `/proc/slabinfo`).
    fn new(name: &'static core::ffi::CStr, size: u32) -> Result<Self> {
        let mut args = bindings::kmem_cache_args::default();
        let flags = (1 << bindings::_slab_flag_bits__SLAB_HWCACHE_ALIGN)
            | (1 << bindings::_slab_flag_bits__SLAB_NO_MERGE);
        // SAFETY: `name` is NUL-terminated (the kernel copies it), `args` is
        // a valid, zeroed argument block, and we are in process context.
        let cache = unsafe {
            bindings::__kmem_cache_create_args(name.as_char_ptr(), size, &mut args, flags)
        };
        // INVARIANT: A new cache, with no objects yet.
        Ok(Self {
            cache: NonNull::new(cache).ok_or(ENOMEM)?,
        })
    }

    /// `kmem_cache_alloc(cache, gfp)`.
    fn alloc(&self, gfp: Gfp) -> Result<SlabObject<'_>> {
        // SAFETY: The cache is live (type invariant).
        let obj = unsafe { bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), gfp) };
        Ok(SlabObject {
            cache: self,
            obj: NonNull::new(obj).ok_or(ENOMEM)?,
        })
    }

    /// The size of one object with its alignment (`kmem_cache_size`).
    fn object_size(&self) -> u32 {
        // SAFETY: The cache is live (type invariant).
        unsafe { bindings::kmem_cache_size(self.cache.as_ptr()) }
    }
}

impl Drop for SlabCache {
    fn drop(&mut self) {
        // SAFETY: The cache is live and has no objects left: each borrowed
        // the cache, so all were dropped before it (type invariant).
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}

/// An object from a [`SlabCache`], freed when dropped.
struct SlabObject<'a> {
    cache: &'a SlabCache,
    obj: NonNull<c_void>,
}

impl SlabObject<'_> {
    fn addr(&self) -> usize {
        self.obj.as_ptr() as usize
    }
}

impl Drop for SlabObject<'_> {
    fn drop(&mut self) {
        // SAFETY: The object came from this live cache and is freed once.
        unsafe { bindings::kmem_cache_free(self.cache.cache.as_ptr(), self.obj.as_ptr()) };
    }
}

/// A fixed-size line buffer: one report line is formatted here, then logged
/// and appended to the report. Longer lines are cut.
struct LineBuf {
    buf: [u8; 320],
    len: usize,
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl LineBuf {
    fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            // Cut inside a character: keep the valid part.
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// The report of one run: its lines go to the kernel log as they are made
/// and are kept for debugfs `demo`.
struct Report {
    text: KVec<u8>,
    allocations: u32,
    checks: u32,
    failed: u32,
    /// Set when a line could not be kept (no memory); the log has it.
    truncated: bool,
}

impl Report {
    fn new() -> Self {
        Self {
            text: KVec::new(),
            allocations: 0,
            checks: 0,
            failed: 0,
            truncated: false,
        }
    }

    /// Logs `demo: <args>` and keeps it.
    fn line(&mut self, args: fmt::Arguments<'_>) {
        self.line_at(false, args)
    }

    /// Logs `demo: <args>` (as an error if `error`) and keeps it.
    fn line_at(&mut self, error: bool, args: fmt::Arguments<'_>) {
        let mut line = LineBuf {
            buf: [0; 320],
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut line, format_args!("demo: {args}"));
        let text = line.as_str();
        if error {
            pr_err!("{}\n", text);
        } else {
            pr_info!("{}\n", text);
        }
        if self
            .text
            .extend_from_slice(text.as_bytes(), flags::GFP_KERNEL)
            .is_err()
            || self.text.push(b'\n', flags::GFP_KERNEL).is_err()
        {
            self.truncated = true;
        }
    }

    /// Reports a claim about allocation `name`, checked: `ok` or `FAIL`.
    fn check(&mut self, ok: bool, name: &str, claim: &str, detail: fmt::Arguments<'_>) {
        self.checks += 1;
        if !ok {
            self.failed += 1;
        }
        self.line_at(
            !ok,
            format_args!(
                "check {} {} {}: {}",
                if ok { "ok" } else { "FAIL" },
                name,
                claim,
                detail
            ),
        );
    }
}

/// What an allocation line says besides the common fields.
struct Alloc<'a> {
    name: &'a str,
    api: &'a str,
    via: &'a str,
    size: usize,
    vaddr: usize,
    gfp: Gfp,
}

/// Reports direct-map memory of `size` bytes at `a.vaddr` that the caller
/// holds: one `alloc` line, then the checks: it is in the direct map, the
/// CPU's page tables map it to `virt - PAGE_OFFSET`, and its pages are
/// physically contiguous. `more` adds fields to the line.
///
/// # Safety
///
/// `[a.vaddr, a.vaddr + a.size)` must be memory the caller holds during the
/// call.
unsafe fn report_direct(r: &mut Report, l: &Layout, a: &Alloc<'_>, more: fmt::Arguments<'_>) {
    r.allocations += 1;
    let in_direct = l.in_direct_map_ram(a.vaddr) && l.region_of(a.vaddr) == "direct_map";
    let phys = a.vaddr.wrapping_sub(l.page_offset);
    let first = a.vaddr >> PAGE_SHIFT;
    let last = (a.vaddr + a.size.max(1) - 1) >> PAGE_SHIFT;
    let pages = last - first + 1;
    let mut walked_first = None;
    let mut all_walked = true;
    let mut pfns_ok = true;
    for i in 0..pages {
        let addr = (first + i) << PAGE_SHIFT;
        let addr = addr.max(a.vaddr);
        // SAFETY: `addr` lies in `[a.vaddr, a.vaddr + a.size)`, which the
        // caller holds.
        match unsafe { walk_direct(addr) } {
            Some(w) => {
                if i == 0 {
                    walked_first = Some(w.pfn);
                }
                pfns_ok &= Some(w.pfn) == walked_first.map(|p| p + i as u64);
            }
            None => all_walked = false,
        }
    }
    let contiguous = all_walked && pfns_ok;
    r.line(format_args!(
        "alloc {} api={} via={} size={} vaddr={:#x} region={} phys={:#x} pages={} contiguous={} gfp={} gfp_raw={:#x}{}",
        a.name,
        a.api,
        a.via,
        a.size,
        a.vaddr,
        l.region_of(a.vaddr),
        phys,
        pages,
        YesNo(contiguous),
        GfpNames(a.gfp),
        a.gfp,
        more
    ));
    r.check(
        in_direct,
        a.name,
        "direct-map",
        format_args!(
            "{:#x} is in [PAGE_OFFSET {:#x}, high_memory {:#x})",
            a.vaddr, l.page_offset, l.high_memory
        ),
    );
    let walked_phys =
        walked_first.map(|pfn| (pfn << PAGE_SHIFT) | (a.vaddr as u64 & (PAGE_SIZE as u64 - 1)));
    r.check(
        walked_phys == Some(phys as u64),
        a.name,
        "virt-to-phys",
        format_args!(
            "virt - PAGE_OFFSET = {:#x}, the page tables map it to {:#x}",
            phys,
            walked_phys.unwrap_or(0)
        ),
    );
    if pages > 1 {
        r.check(
            contiguous,
            a.name,
            "contiguous",
            format_args!("its {} pages follow each other physically", pages),
        );
    }
}

/// Reports a block of 2^order pages that the caller holds, at direct-map
/// address `vaddr`, PFN `pfn`: the `alloc` line, then the checks: in the
/// direct map, `virt - PAGE_OFFSET` is where the page tables map every one
/// of its pages (so the block is 2^order physically contiguous pages), and
/// the block is aligned to its size, as buddies are.
///
/// # Safety
///
/// The block must be held by the caller during the call.
unsafe fn report_block(
    r: &mut Report,
    l: &Layout,
    a: &Alloc<'_>,
    pfn: u64,
    order: u32,
    more: fmt::Arguments<'_>,
) {
    r.allocations += 1;
    let pages = 1usize << order;
    let phys = a.vaddr.wrapping_sub(l.page_offset) as u64;
    let mut mismatch: Option<(usize, u64)> = None;
    for i in 0..pages {
        // SAFETY: Page `i` of the block, which the caller holds.
        let walked = unsafe { walk_direct(a.vaddr + i * PAGE_SIZE) }.map_or(u64::MAX, |w| w.pfn);
        if walked != pfn + i as u64 && mismatch.is_none() {
            mismatch = Some((i, walked));
        }
    }
    r.line(format_args!(
        "alloc {} api={} via={} order={} size={} vaddr={:#x} region={} phys={:#x} pfn={:#x} pages={} contiguous={} gfp={} gfp_raw={:#x}{}",
        a.name,
        a.api,
        a.via,
        order,
        a.size,
        a.vaddr,
        l.region_of(a.vaddr),
        phys,
        pfn,
        pages,
        YesNo(mismatch.is_none()),
        GfpNames(a.gfp),
        a.gfp,
        more
    ));
    r.check(
        l.in_direct_map_ram(a.vaddr) && l.region_of(a.vaddr) == "direct_map",
        a.name,
        "direct-map",
        format_args!(
            "{:#x} is in [PAGE_OFFSET {:#x}, high_memory {:#x})",
            a.vaddr, l.page_offset, l.high_memory
        ),
    );
    r.check(
        phys == pfn << PAGE_SHIFT,
        a.name,
        "virt-to-phys",
        format_args!(
            "virt - PAGE_OFFSET = {:#x}, the struct page says pfn {:#x}",
            phys, pfn
        ),
    );
    match mismatch {
        None => r.check(
            true,
            a.name,
            "contiguous",
            format_args!(
                "all {} pages walked: pfn {:#x}..={:#x} in order",
                pages,
                pfn,
                pfn + pages as u64 - 1
            ),
        ),
        Some((i, got)) => r.check(
            false,
            a.name,
            "contiguous",
            format_args!(
                "page {} maps to pfn {:#x}, not {:#x}",
                i,
                got,
                pfn + i as u64
            ),
        ),
    }
    r.check(
        pfn % pages as u64 == 0,
        a.name,
        "aligned",
        format_args!("pfn {:#x} is a multiple of 2^{} = {}", pfn, order, pages),
    );
}

/// The demo's state: the last report and the block `hold` keeps.
#[pin_data]
pub(crate) struct Demo {
    #[pin]
    state: Mutex<State>,
}

struct State {
    report: KVec<u8>,
    runs: u64,
    held: Option<PageBlock>,
}

impl Demo {
    /// A demo that has not run yet.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                state <- new_mutex!(State {
                    report: KVec::new(),
                    runs: 0,
                    held: None,
                }),
            }),
            flags::GFP_KERNEL,
        )
    }

    /// At load: log the layout, then run the demo if `run` (the parameter).
    pub(crate) fn at_load(&self, run: bool, buffer: &VmallocBuffer) {
        let layout = Layout::current();
        let mut text = LineBuf {
            buf: [0; 320],
            len: 0,
        };
        let mut sink = LayoutLines { line: &mut text };
        let _ = crate::layout::write_layout(&mut sink, &layout, &Extra::current());
        if run {
            self.run("load", buffer);
        }
    }

    /// Runs the demo once and keeps its report; runs are serialised.
    pub(crate) fn run(&self, trigger: &str, buffer: &VmallocBuffer) {
        let mut state = self.state.lock();
        state.runs += 1;
        let run = state.runs;
        let mut r = Report::new();
        r.line(format_args!("run {} trigger={}", run, trigger));
        let layout = Layout::current();
        demo_kmalloc(&mut r, &layout);
        demo_slab(&mut r, &layout);
        demo_vmalloc(&mut r, &layout);
        demo_pages(&mut r, &layout);
        r.line(format_args!(
            "buffer vaddr={:#x} region={} pages={} (the /dev/mapdrv buffer, for comparison)",
            buffer.vaddr(),
            layout.region_of(buffer.vaddr()),
            buffer.pages()
        ));
        let (allocations, checks, failed) = (r.allocations, r.checks, r.failed);
        let truncated = if r.truncated { " truncated=yes" } else { "" };
        r.line(format_args!(
            "done run={run} allocations={allocations} checks={checks} failed={failed} freed=yes{truncated}"
        ));
        state.report = r.text;
    }
}

/// Logs the layout's `key value` lines one by one as `layout: key value`.
struct LayoutLines<'a> {
    line: &'a mut LineBuf,
}

impl fmt::Write for LayoutLines<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                pr_info!("layout: {}\n", self.line.as_str());
                self.line.len = 0;
            }
            self.line.write_str(part)?;
        }
        Ok(())
    }
}

/// `kmalloc(100)`, then `kzalloc(100)` (which the slab usually serves with
/// the object `kmalloc` just freed, dirty), then `kcalloc(25, 4)` and a
/// `kcalloc` whose size overflows.
fn demo_kmalloc(r: &mut Report, l: &Layout) {
    let kmalloc_addr = match KBox::new([DIRT; KMALLOC_SIZE], flags::GFP_KERNEL) {
        Ok(obj) => {
            let a = Alloc {
                name: "kmalloc",
                api: "kmalloc",
                via: "KBox",
                size: KMALLOC_SIZE,
                vaddr: core::ptr::from_ref(&*obj) as usize,
                gfp: RAW_KERNEL,
            };
            // SAFETY: `obj` is held until the end of this arm.
            unsafe { report_direct(r, l, &a, format_args!("")) };
            a.vaddr
            // `obj` is freed here, full of DIRT.
        }
        Err(_) => {
            r.check(
                false,
                "kmalloc",
                "allocated",
                format_args!("kmalloc(100) failed"),
            );
            0
        }
    };
    match KVec::<u8>::zeroed(KMALLOC_SIZE, flags::GFP_KERNEL) {
        Ok(obj) => {
            let vaddr = obj.as_ptr() as usize;
            let a = Alloc {
                name: "kzalloc",
                api: "kzalloc",
                via: "KVec::zeroed",
                size: KMALLOC_SIZE,
                vaddr,
                gfp: RAW_KERNEL | RAW_ZERO,
            };
            let reused = vaddr == kmalloc_addr;
            // SAFETY: `obj` is held until the end of this arm.
            unsafe { report_direct(r, l, &a, format_args!(" reused_kmalloc={}", YesNo(reused))) };
            let dirty = obj.iter().filter(|&&b| b != 0).count();
            r.check(
                dirty == 0,
                "kzalloc",
                "zeroed",
                format_args!(
                    "{} of {} bytes are not zero{}",
                    dirty,
                    KMALLOC_SIZE,
                    if reused {
                        " (the same object kmalloc filled with 0x5a and freed)"
                    } else {
                        ""
                    }
                ),
            );
        }
        Err(_) => r.check(
            false,
            "kzalloc",
            "allocated",
            format_args!("kzalloc(100) failed"),
        ),
    }
    match KVec::<u32>::zeroed(KCALLOC_N, flags::GFP_KERNEL) {
        Ok(obj) => {
            let a = Alloc {
                name: "kcalloc",
                api: "kcalloc",
                via: "KVec::zeroed",
                size: KCALLOC_N * core::mem::size_of::<u32>(),
                vaddr: obj.as_ptr() as usize,
                gfp: RAW_KERNEL | RAW_ZERO,
            };
            // SAFETY: `obj` is held until the end of this arm.
            unsafe {
                report_direct(
                    r,
                    l,
                    &a,
                    format_args!(" n={} elem_size={}", KCALLOC_N, core::mem::size_of::<u32>()),
                )
            };
            let dirty = obj.iter().filter(|&&x| x != 0).count();
            r.check(
                dirty == 0,
                "kcalloc",
                "zeroed",
                format_args!("{} of {} elements are not zero", dirty, KCALLOC_N),
            );
        }
        Err(_) => r.check(
            false,
            "kcalloc",
            "allocated",
            format_args!("kcalloc(25, 4) failed"),
        ),
    }
    // kcalloc(n, size) refuses n * size that overflows before allocating;
    // so does the array layout of a `KVec`.
    let huge = usize::MAX / 2;
    let refused = KVec::<u32>::zeroed(huge, flags::GFP_KERNEL | flags::__GFP_NOWARN).is_err();
    r.check(
        refused,
        "kcalloc",
        "overflow-refused",
        format_args!("kcalloc({:#x}, 4): {} * 4 overflows, refused", huge, huge),
    );
}

/// A slab cache of our own and two objects from it.
fn demo_slab(r: &mut Report, l: &Layout) {
    let cache = match SlabCache::new(c"rust_mapdrv_demo", SLAB_OBJECT_SIZE) {
        Ok(c) => c,
        Err(_) => {
            r.check(
                false,
                "kmem_cache",
                "created",
                format_args!("kmem_cache_create failed"),
            );
            return;
        }
    };
    let objsize = cache.object_size();
    let (a, b) = match (cache.alloc(RAW_KERNEL), cache.alloc(RAW_KERNEL)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            r.check(
                false,
                "kmem_cache",
                "allocated",
                format_args!("kmem_cache_alloc failed"),
            );
            return;
        }
    };
    for (name, obj) in [("kmem_cache_a", &a), ("kmem_cache_b", &b)] {
        let al = Alloc {
            name,
            api: "kmem_cache_alloc",
            via: "bindings",
            size: SLAB_OBJECT_SIZE as usize,
            vaddr: obj.addr(),
            gfp: RAW_KERNEL,
        };
        // SAFETY: `a` and `b` are held until the end of this function.
        unsafe {
            report_direct(
                r,
                l,
                &al,
                format_args!(
                    " cache=rust_mapdrv_demo object_size={} slab_pfn={:#x}",
                    objsize,
                    (obj.addr() - l.page_offset) >> PAGE_SHIFT
                ),
            )
        };
    }
    let same_slab = (a.addr() >> PAGE_SHIFT) == (b.addr() >> PAGE_SHIFT);
    r.line(format_args!(
        "note kmem_cache objects {:#x} and {:#x}: {} bytes apart, same slab page {}",
        a.addr(),
        b.addr(),
        a.addr().abs_diff(b.addr()),
        YesNo(same_slab)
    ));
    // `b`, `a`, then the cache are freed here, in that order.
}

/// `vmalloc(60000)`: 15 pages, virtually contiguous; each page found with
/// our page walk and read back through its direct-map alias.
fn demo_vmalloc(r: &mut Report, l: &Layout) {
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
    for i in 0..pages {
        match vmalloc_util::walk_vvec_page(&v, i) {
            Ok(w) => {
                let _ = pfns.push(w.pfn, flags::GFP_KERNEL);
                let alias = l.page_offset + ((w.pfn as usize) << PAGE_SHIFT);
                // SAFETY: `alias` is the direct-map address of page `i` of
                // our allocation (PFN from the checked walk; all RAM is in
                // the direct map on x86_64), which `v` keeps allocated; it
                // is page aligned, so aligned for a u64, and nothing writes
                // the page meanwhile (`v` is not borrowed mutably).
                let seen = unsafe { core::ptr::read_volatile(alias as *const u64) };
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
        pfns.first().map_or(0, |p| p << PAGE_SHIFT),
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
            pfn << PAGE_SHIFT
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
            "{} of {} pages: our walk agrees with vmalloc_to_pfn and lookup_address",
            pages - walk_errors,
            pages
        ),
    );
    r.check(
        alias_errors == 0 && walk_errors == 0,
        "vmalloc",
        "direct-map-alias",
        format_args!(
            "{} of {} pages read back through PAGE_OFFSET + pfn * 4096",
            pages - walk_errors - alias_errors,
            pages
        ),
    );
    r.check(
        !l.in_direct_map_ram(vaddr),
        "vmalloc",
        "not-direct-map",
        format_args!(
            "virt_to_phys would say {:#x}, but page 0 is at {:#x}",
            vaddr.wrapping_sub(l.page_offset),
            pfns.first().map_or(0, |p| p << PAGE_SHIFT)
        ),
    );
    // `v` is freed here (vfree).
}

/// The marker written at the start of page `i` of the vmalloc allocation.
fn marker(vaddr: usize, i: usize) -> u64 {
    0x6d61_7064_7276_0000 ^ (vaddr as u64) ^ i as u64
}

/// The page allocator: one page (`alloc_page`), an order-3 block
/// (`__get_free_pages`) and the largest block that can be had now.
fn demo_pages(r: &mut Report, l: &Layout) {
    match Page::alloc_page(flags::GFP_KERNEL) {
        Ok(page) => {
            let pfn = page_to_pfn(page.as_ptr());
            let vaddr = l.page_offset + ((pfn as usize) << PAGE_SHIFT);
            let a = Alloc {
                name: "alloc_page",
                api: "alloc_page",
                via: "Page",
                size: PAGE_SIZE,
                vaddr,
                gfp: RAW_KERNEL,
            };
            // SAFETY: `page` is held until the end of this arm.
            unsafe { report_block(r, l, &a, pfn, 0, format_args!("")) };
        }
        Err(_) => r.check(
            false,
            "alloc_page",
            "allocated",
            format_args!("alloc_page failed"),
        ),
    }
    match FreePages::get(RAW_KERNEL, HIGHER_ORDER) {
        Ok(block) => {
            let pfn = (block.addr.wrapping_sub(l.page_offset) >> PAGE_SHIFT) as u64;
            let a = Alloc {
                name: "get_free_pages",
                api: "__get_free_pages",
                via: "bindings",
                size: PAGE_SIZE << block.order,
                vaddr: block.addr,
                gfp: RAW_KERNEL,
            };
            // SAFETY: `block` is held until the end of this arm.
            unsafe { report_block(r, l, &a, pfn, block.order, format_args!("")) };
        }
        Err(_) => r.check(
            false,
            "get_free_pages",
            "allocated",
            format_args!("order 3 failed"),
        ),
    }
    let mut failed_orders = 0;
    for order in (0..=MAX_ORDER).rev() {
        let Ok(block) = PageBlock::alloc(RAW_TRY_ONCE, order) else {
            failed_orders += 1;
            continue;
        };
        let pfn = block.pfn();
        let a = Alloc {
            name: "alloc_pages_max",
            api: "alloc_pages",
            via: "bindings",
            size: PAGE_SIZE * block.pages(),
            vaddr: l.page_offset + ((pfn as usize) << PAGE_SHIFT),
            gfp: RAW_TRY_ONCE,
        };
        // SAFETY: `block` is held until the end of this iteration.
        unsafe {
            report_block(
                r,
                l,
                &a,
                pfn,
                order,
                format_args!(
                    " max_page_order={} failed_orders={}",
                    MAX_ORDER, failed_orders
                ),
            )
        };
        return;
    }
    r.check(
        false,
        "alloc_pages_max",
        "allocated",
        format_args!("no order up to {} could be had", MAX_ORDER),
    );
}

/// The demo's debugfs files: `demo` (the last report; write `run`),
/// `layout` (the kernel's address-space layout) and `hold` (a block held to
/// show in `/proc/buddyinfo`).
pub(crate) fn files() -> [FileSpec<FileData>; 3] {
    [
        FileSpec {
            name: c"demo",
            show: show_report,
            store: Some(store_run),
        },
        FileSpec {
            name: c"layout",
            show: show_layout,
            store: None,
        },
        FileSpec {
            name: c"hold",
            show: show_hold,
            store: Some(store_hold),
        },
    ]
}

/// Reads what was written to a debugfs file (at most 16 bytes), trimmed.
fn read_word<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8; 16]) -> Result<&'a str> {
    let len = reader.len();
    let text = buf.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(text)?;
    Ok(core::str::from_utf8(text).map_err(|_| EINVAL)?.trim())
}

fn show_report(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = data.demo.state.lock();
    if state.report.is_empty() {
        return writeln!(f, "# no demo run yet: write `run` to this file");
    }
    f.write_str(core::str::from_utf8(&state.report).unwrap_or("# (report is not text)\n"))
}

fn store_run(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    match read_word(reader, &mut buf)? {
        "run" | "1" => {
            data.demo.run("debugfs", &data.device.buffer);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

fn show_layout(_data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    crate::layout::write_layout(f, &Layout::current(), &Extra::current())
}

fn show_hold(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = data.demo.state.lock();
    match &state.held {
        None => writeln!(f, "none"),
        Some(b) => {
            let pfn = b.pfn();
            writeln!(
                f,
                "order {} pages {} pfn {:#x} vaddr {:#x}",
                b.order,
                b.pages(),
                pfn,
                vmalloc_util::page_offset_base() + ((pfn as usize) << PAGE_SHIFT)
            )
        }
    }
}

/// `hold`: write an order (0..=MAX_PAGE_ORDER) to allocate a block and keep
/// it (EBUSY if one is kept already, ENOMEM if none can be had), `release`
/// to free it.
fn store_hold(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let word = read_word(reader, &mut buf)?;
    let mut state = data.demo.state.lock();
    if word == "release" {
        if let Some(b) = state.held.take() {
            pr_info!("demo: release order={} pfn={:#x}\n", b.order, b.pfn());
        }
        return Ok(());
    }
    let order = word.parse::<u32>().map_err(|_| EINVAL)?;
    if order > MAX_ORDER {
        return Err(EINVAL);
    }
    if state.held.is_some() {
        return Err(EBUSY);
    }
    let block = PageBlock::alloc(RAW_TRY_ONCE, order)?;
    pr_info!(
        "{}\n",
        format_args!(
            "demo: hold order={} pages={} pfn={:#x} gfp={}",
            order,
            block.pages(),
            block.pfn(),
            GfpNames(RAW_TRY_ONCE)
        )
    );
    state.held = Some(block);
    Ok(())
}

#[kernel::macros::kunit_tests(rust_mapdrv_demo)]
mod tests {
    use super::*;

    fn name(gfp: Gfp) -> KVec<u8> {
        let mut line = LineBuf {
            buf: [0; 320],
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut line, format_args!("{}", GfpNames(gfp)));
        let mut v = KVec::new();
        let _ = v.extend_from_slice(line.as_str().as_bytes(), flags::GFP_KERNEL);
        v
    }

    #[test]
    fn gfp_names() {
        assert_eq!(&name(RAW_KERNEL)[..], b"GFP_KERNEL");
        assert_eq!(&name(RAW_KERNEL | RAW_ZERO)[..], b"GFP_KERNEL|__GFP_ZERO");
        assert_eq!(
            &name(RAW_TRY_ONCE)[..],
            b"GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY"
        );
        assert_eq!(&name(bindings::GFP_ATOMIC)[..], b"GFP_ATOMIC");
        assert_eq!(&name(0)[..], b"0");
        assert_eq!(&name(1 << 30)[..], b"0x40000000");
        assert_eq!(&name(bindings::__GFP_HIGHMEM)[..], b"__GFP_HIGHMEM");
    }

    #[test]
    fn runs() {
        assert_eq!(contiguous_runs([5, 6, 7]), 1);
        assert_eq!(contiguous_runs([5, 7, 8, 2]), 3);
        assert_eq!(contiguous_runs([9, 8, 7]), 3);
        assert_eq!(contiguous_runs(core::iter::empty()), 0);
        assert_eq!(contiguous_runs([u64::MAX, 0]), 2);
    }

    #[test]
    fn line_buffer_cuts_long_lines() {
        let mut line = LineBuf {
            buf: [0; 320],
            len: 0,
        };
        for _ in 0..100 {
            let _ = fmt::Write::write_str(&mut line, "abcdefgh");
        }
        assert_eq!(line.as_str().len(), 320);
    }
}
