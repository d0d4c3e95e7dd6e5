// SPDX-License-Identifier: GPL-2.0

//! The vmalloc buffer behind `/dev/mapdrv`, and the load-time check that our
//! own walk of the kernel page tables finds the physical page the kernel
//! says is behind each of its addresses.
//!
//! The classic `map_driver.c` turned a vmalloc address into something it could
//! hand to the page-fault code in three steps (`vaddress_to_kaddress()`):
//!
//! 1. walk the kernel page tables (`pgd_offset_k` → `pmd_offset` →
//!    `pte_offset`) down to the page-table entry of the address;
//! 2. turn the entry into its `struct page` (`pte_page`);
//! 3. turn the page into its direct-map ("kernel logical") address
//!    (`page_address`).
//!
//! [`arch::walk`] does step 1 in Rust, by reading the tables the CPU itself
//! reads, and stops early at a huge leaf (the walk and its levels are the
//! architecture's, behind the seam of `rust_mapdrv/arch/`). Step 2 is the PFN
//! the leaf entry holds (the index of the `struct page` in the memory map),
//! and step 3 is [`arch::DirectMap`]'s address of that PFN, the direct-map
//! alias of the same physical page. [`VmallocBuffer::walk_page`] cross-checks
//! the result with the kernel's own answers (`vmalloc_to_pfn()` and
//! [`arch::kernel_lookup_pfn`]).

use crate::arch::{self, Level, NotMapped, PageWalk};
use core::{ops::Range, ptr::NonNull};
use kernel::{
    alloc::kvec::VVec,
    bindings,
    iov::{IovIterDest, IovIterSource},
    page::{BorrowedPage, PAGE_SIZE},
    prelude::*,
};

use crate::uapi::MAX_PAGES;
use crate::vm_ops::PageRun;

/// Pages a loop over the buffer handles between two `cond_resched()` calls
/// (2 MiB of pages: tens of microseconds of work).
pub(crate) const PAGES_PER_RESCHED: usize = 512;

/// Counts the physically contiguous runs of a sequence of page frames, one
/// frame at a time: a run starts wherever a frame does not follow the one
/// before it.
#[derive(Default)]
pub(crate) struct PfnRuns {
    runs: usize,
    previous: Option<u64>,
}

impl PfnRuns {
    /// The next frame of the sequence.
    pub(crate) fn push(&mut self, pfn: u64) {
        if self.previous.and_then(|p| p.checked_add(1)) != Some(pfn) {
            self.runs += 1;
        }
        self.previous = Some(pfn);
    }

    /// The runs so far (0 for no frames).
    pub(crate) fn runs(&self) -> usize {
        self.runs
    }
}

/// In a loop over every page (at load, where sleeping is allowed): lets the
/// scheduler in after each [`PAGES_PER_RESCHED`] pages.
pub(crate) fn resched_every(index: usize) {
    if index % PAGES_PER_RESCHED == PAGES_PER_RESCHED - 1 {
        crate::sched::cond_resched();
    }
}

// `vmalloc_huge_node_noprof` (mm/vmalloc.c, `EXPORT_SYMBOL_GPL`) has no
// binding: the kernel crate's bindings do not include <linux/vmalloc.h>, whose
// vmalloc entry points it reaches through helpers. Its C prototype is
// `void *vmalloc_huge_node_noprof(unsigned long size, gfp_t gfp_mask, int node)`.
extern "C" {
    fn vmalloc_huge_node_noprof(
        size: kernel::ffi::c_ulong,
        gfp_mask: bindings::gfp_t,
        node: kernel::ffi::c_int,
    ) -> *mut kernel::ffi::c_void;
}

/// Pages in a 2 MiB block: the pages one PMD entry maps (one page table's
/// worth of entries; `PMD_SHIFT` has no binding on arm64).
pub(crate) const PMD_PAGES: usize = bindings::PTRS_PER_PTE as usize;

/// How the buffer's pages were allocated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Backing {
    /// `vmalloc`: one page at a time, wherever the page allocator finds one
    /// (the classic demonstration: physically scattered).
    Pages,
    /// `vmalloc_huge`: in 2 MiB blocks (order-9 allocations, split into
    /// pages, mapped by the kernel with PMD leaves) where the architecture
    /// supports it and the memory is there; vmalloc falls back to single
    /// pages for the whole buffer otherwise. The area is rounded up to
    /// whole blocks; the buffer uses its first `pages`.
    Huge,
}

/// A 2 MiB block of a [`VmallocBuffer`] that one PMD entry can map.
///
/// # Invariants
///
/// `pfn` is a multiple of [`PMD_PAGES`], and the [`PMD_PAGES`] frames from it
/// are pages of a buffer borrowed for `'a`, so allocated for that long.
pub(crate) struct HugeBlock<'a> {
    pfn: u64,
    _buffer: core::marker::PhantomData<&'a VmallocBuffer>,
}

impl HugeBlock<'_> {
    /// The first frame of the block.
    #[cfg_attr(
        not(CONFIG_TRANSPARENT_HUGEPAGE),
        expect(dead_code, reason = "only PMD insertion uses it, and it needs THP")
    )]
    pub(crate) fn pfn(&self) -> u64 {
        self.pfn
    }
}

/// A page-aligned, zero-filled vmalloc buffer that lives until it is dropped.
///
/// # Invariants
///
/// `ptr` is the start of a vmalloc allocation of `pages * PAGE_SIZE` bytes,
/// owned by this value and freed only in [`Drop`]. The allocation is never
/// resized: shrinking a vmalloc area frees its tail pages, which user mappings
/// may still map. `page_ptrs[i]` is the `struct page` behind page `i` of the
/// allocation (vmalloc pages never move), for every `i < pages` once
/// [`VmallocBuffer::new_zeroed`] returns. `block_pfns[b]`, where it is
/// `Some(pfn)`, is the first of [`PMD_PAGES`] physically contiguous frames
/// behind the pages `b * PMD_PAGES..(b + 1) * PMD_PAGES`, all inside the
/// buffer, and `pfn` is a multiple of [`PMD_PAGES`].
pub(crate) struct VmallocBuffer {
    ptr: NonNull<u8>,
    pages: usize,
    /// The `struct page` of each page, looked up once at allocation, so that
    /// a fault finds its pages by index instead of walking the kernel page
    /// tables with `vmalloc_to_page` for each (8 bytes per 4 KiB page). The
    /// kernel keeps the same array in the area's `vm_struct`, but
    /// `find_vm_area` is not exported to modules.
    page_ptrs: KVVec<NonNull<bindings::page>>,
    backing: Backing,
    /// For each whole 2 MiB block of the buffer, its first frame if the
    /// block is one aligned physical block (what a PMD entry can map).
    block_pfns: KVVec<Option<u64>>,
}

// SAFETY: The buffer is plain memory; the type hands out no references into
// it, only copies made with the kernel's copy routines, which are safe against
// concurrent writers. It can be used and dropped from any thread.
unsafe impl Send for VmallocBuffer {}
// SAFETY: As above: `&VmallocBuffer` only allows byte copies in and out.
unsafe impl Sync for VmallocBuffer {}

impl VmallocBuffer {
    /// Allocates `pages` zeroed pages.
    ///
    /// The kernel crate's `Vmalloc` allocator cannot express
    /// `__GFP_RETRY_MAYFAIL`, so this calls the same C entry point
    /// (`vrealloc_node_align`) with it: a request near the size of RAM fails
    /// with `ENOMEM` instead of waking the OOM killer, and `__GFP_NOWARN`
    /// keeps a failure from printing a warning with a call trace.
    ///
    /// With [`Backing::Huge`] the allocation is `vmalloc_huge`'s, with the
    /// same flags, and every whole 2 MiB block of it is checked for being
    /// one aligned physical block ([`Self::huge_block`]).
    pub(crate) fn new_zeroed(pages: usize, backing: Backing) -> Result<Self> {
        if pages == 0 || pages > MAX_PAGES {
            return Err(EINVAL);
        }
        let size = pages * PAGE_SIZE;
        let gfp = bindings::GFP_KERNEL
            | bindings::__GFP_ZERO
            | bindings::__GFP_NOWARN
            | (1 << bindings::___GFP_RETRY_MAYFAIL_BIT);
        let raw = match backing {
            // SAFETY: A NULL pointer asks for a new allocation; `PAGE_SIZE` is
            // a valid alignment and `size` is not zero.
            Backing::Pages => unsafe {
                bindings::vrealloc_node_align(
                    core::ptr::null(),
                    size,
                    PAGE_SIZE,
                    gfp,
                    bindings::NUMA_NO_NODE,
                )
            },
            // SAFETY: `size` is not zero; any GFP flags and node are valid.
            Backing::Huge => unsafe { vmalloc_huge_node_noprof(size, gfp, bindings::NUMA_NO_NODE) },
        };
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ENOMEM)?;
        // From here on an error drops `buffer`, which frees the allocation.
        let mut buffer = Self {
            ptr,
            pages,
            page_ptrs: KVVec::new(),
            backing,
            block_pfns: KVVec::new(),
        };
        let mut page_ptrs = KVVec::with_capacity(pages, GFP_KERNEL)?;
        for index in 0..pages {
            let addr = ptr.as_ptr().wrapping_add(index * PAGE_SIZE).cast();
            // SAFETY: `addr` is inside our live vmalloc allocation.
            let page = unsafe { bindings::vmalloc_to_page(addr) };
            page_ptrs.push(NonNull::new(page).ok_or(EIO)?, GFP_KERNEL)?;
            resched_every(index);
        }
        // INVARIANT: `ptr` is a new vmalloc allocation of `size` bytes, and
        // `page_ptrs` holds the `struct page` of each of its pages.
        buffer.page_ptrs = page_ptrs;
        if backing == Backing::Huge {
            let mut block_pfns = KVVec::with_capacity(pages / PMD_PAGES, GFP_KERNEL)?;
            for block in 0..pages / PMD_PAGES {
                block_pfns.push(buffer.contiguous_block(block), GFP_KERNEL)?;
                crate::sched::cond_resched();
            }
            // INVARIANT: `contiguous_block` checked each block as the
            // invariant asks.
            buffer.block_pfns = block_pfns;
        }
        Ok(buffer)
    }

    /// The first frame of block `block` (of [`PMD_PAGES`] pages, all inside
    /// the buffer) if its frames are contiguous and the first is a multiple
    /// of [`PMD_PAGES`], as `vmalloc_huge` allocates a block when it can.
    fn contiguous_block(&self, block: usize) -> Option<u64> {
        let first = block.checked_mul(PMD_PAGES)?;
        if first.checked_add(PMD_PAGES)? > self.pages {
            return None;
        }
        let pfn = self.kernel_pfn(first)?;
        if pfn % PMD_PAGES as u64 != 0 {
            return None;
        }
        (1..PMD_PAGES)
            .all(|i| self.kernel_pfn(first + i) == Some(pfn + i as u64))
            .then_some(pfn)
    }

    /// How the buffer was allocated.
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }

    /// The 2 MiB block `block` (pages `block * PMD_PAGES` on) if one PMD
    /// entry can map it: a whole block of the buffer, physically contiguous
    /// and aligned. Always `None` for [`Backing::Pages`].
    pub(crate) fn huge_block(&self, block: usize) -> Option<HugeBlock<'_>> {
        let pfn = self.block_pfns.get(block).copied().flatten()?;
        // INVARIANT: `block_pfns` holds only such blocks (type invariant);
        // their frames are the buffer's, freed when it is dropped, after the
        // borrow of `self` ends.
        Some(HugeBlock {
            pfn,
            _buffer: core::marker::PhantomData,
        })
    }

    /// The number of 2 MiB blocks that [`Self::huge_block`] gives, that one PMD entry can map.
    pub(crate) fn mappable_blocks(&self) -> usize {
        self.block_pfns.iter().filter(|b| b.is_some()).count()
    }

    /// The size in pages.
    pub(crate) fn pages(&self) -> usize {
        self.pages
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// The kernel virtual address of the buffer.
    pub(crate) fn vaddr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The kernel virtual address of page `index`, if it is in the buffer.
    pub(crate) fn page_vaddr(&self, index: usize) -> Option<usize> {
        (index < self.pages).then(|| self.vaddr() + index * PAGE_SIZE)
    }

    /// The `struct page` behind page `index`, if it is in the buffer.
    pub(crate) fn page(&self, index: usize) -> Option<BorrowedPage<'_>> {
        self.page_run(index..index + 1)?.page(0)
    }

    /// The pages `range` of the buffer, if they are all in it, as a run that
    /// `vm_insert_pages` reads as it is: the fault path maps from it with no
    /// copy and no lookup per page.
    pub(crate) fn page_run(&self, range: Range<usize>) -> Option<PageRun<'_>> {
        let pages = self.page_ptrs.get(range)?;
        // SAFETY: `pages` are the `struct page`s of pages of our live
        // allocation (type invariant), which is freed only when `self` is
        // dropped, after the returned borrow of `self` ends; vmalloc's pages
        // are order 0 or split (`split_page`), so none is a tail page.
        Some(unsafe { PageRun::from_slice(pages) })
    }

    /// The PFN of page `index` as the kernel's `vmalloc_to_pfn()` sees it.
    pub(crate) fn kernel_pfn(&self, index: usize) -> Option<u64> {
        let addr = self.page_vaddr(index)?;
        // SAFETY: `addr` is inside the live vmalloc allocation of `self`.
        Some(unsafe { bindings::vmalloc_to_pfn(addr as *const _) } as u64)
    }

    /// Our own page-table walk for page `index`, checked against the
    /// kernel's `vmalloc_to_pfn()` and the architecture's second opinion
    /// ([`arch::kernel_lookup_pfn`]).
    ///
    /// A disagreement is reported with the three answers, so that the caller
    /// can name the page; it is `EIO` for the errno.
    pub(crate) fn walk_page(&self, index: usize) -> Result<PageWalk, WalkMismatch> {
        let addr = self.page_vaddr(index).ok_or(WalkMismatch::NO_PAGE)?;
        // SAFETY: `addr` is inside our vmalloc area, which stays mapped while
        // `self` is borrowed.
        unsafe { walk_checked(addr) }
    }

    /// Fills the buffer; `f` gets each page's index and its bytes.
    ///
    /// Takes `&mut self`: only possible before the buffer is shared, so
    /// nothing else can access the memory meanwhile.
    pub(crate) fn fill_pages(&mut self, mut f: impl FnMut(usize, &mut [u8])) {
        for index in 0..self.pages {
            // SAFETY: The page lies inside our allocation (type invariant) and
            // `&mut self` guarantees that nobody else accesses it now.
            let page = unsafe {
                core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(index * PAGE_SIZE), PAGE_SIZE)
            };
            f(index, page);
            resched_every(index);
        }
    }

    /// Copies the buffer from byte `offset` into `iov`; returns the count.
    ///
    /// Returns 0 at or past the end of the buffer (end of file).
    pub(crate) fn read_at(&self, offset: usize, iov: &mut IovIterDest<'_>) -> usize {
        let Some(len) = self.size().checked_sub(offset) else {
            return 0;
        };
        let len = len.min(iov.len());
        // SAFETY: `offset + len <= size`, so the source lies inside our live
        // allocation. `_copy_to_iter` copies bytes without creating Rust
        // references, so user space writing the same pages through a mapping
        // at the same time is not undefined behaviour, only a torn read.
        unsafe { bindings::_copy_to_iter(self.ptr.as_ptr().add(offset).cast(), len, iov.as_raw()) }
    }

    /// Copies from `iov` into the buffer at byte `offset`; returns the count.
    ///
    /// Writes what fits: the count is short when the data crosses the end.
    pub(crate) fn write_at(&self, offset: usize, iov: &mut IovIterSource<'_>) -> usize {
        let Some(len) = self.size().checked_sub(offset) else {
            return 0;
        };
        let len = len.min(iov.len());
        // SAFETY: As in `read_at`: the destination lies inside our live
        // allocation and the copy is byte-wise, so concurrent readers and
        // writers (other files, user mappings) see torn data at worst.
        unsafe {
            bindings::_copy_from_iter(self.ptr.as_ptr().add(offset).cast(), len, iov.as_raw())
        }
    }
}

/// Our walk for the vmalloc address `addr`, checked against the kernel's
/// `vmalloc_to_pfn()` and the architecture's second opinion
/// ([`arch::kernel_lookup_pfn`]; not `vmalloc_to_page()`, which is the same
/// lookup as `vmalloc_to_pfn()` under another name).
///
/// # Safety
///
/// `addr` must lie in a vmalloc area that stays mapped during the call;
/// vmalloc never frees the page tables of a live area.
unsafe fn walk_checked(addr: usize) -> Result<PageWalk, WalkMismatch> {
    // SAFETY: The caller guarantees that `addr` is mapped by a live vmalloc
    // area, whose page tables vmalloc keeps while it is mapped.
    let walked = unsafe { arch::walk(addr) };
    // SAFETY: As above; `vmalloc_to_pfn` only reads the page tables.
    let kernel_pfn = unsafe { bindings::vmalloc_to_pfn(addr as *const _) } as u64;
    // SAFETY: As for the walk: `addr` is mapped by a live vmalloc area.
    let lookup_pfn = unsafe { arch::kernel_lookup_pfn(addr) };
    match walked {
        Ok(w) if w.pfn == kernel_pfn && lookup_pfn == Some(w.pfn) => Ok(w),
        _ => Err(WalkMismatch {
            walked: walked.map(|w| w.pfn),
            vmalloc_to_pfn: kernel_pfn,
            kernel_lookup: lookup_pfn,
        }),
    }
}

/// Our walk for page `index` of a vmalloc allocation the caller owns as a
/// [`VVec`], checked like [`VmallocBuffer::walk_page`]. Pages are counted
/// from the start of the allocation; only those its capacity covers exist.
pub(crate) fn walk_vvec_page<T>(v: &VVec<T>, index: usize) -> Result<PageWalk, WalkMismatch> {
    let bytes = v.capacity().saturating_mul(core::mem::size_of::<T>());
    if index >= bytes.div_ceil(PAGE_SIZE) {
        // Also a zero-sized allocation, whose pointer is dangling.
        return Err(WalkMismatch::NO_PAGE);
    }
    let addr = v.as_ptr() as usize + index * PAGE_SIZE;
    // SAFETY: `addr` lies in the first `bytes` of the allocation, which the
    // `Vmalloc` allocator mapped as one vmalloc area; the borrow of `v`
    // keeps it allocated, so mapped, during the call.
    unsafe { walk_checked(addr) }
}

impl Drop for VmallocBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` is our vmalloc allocation (type invariant) and this is
        // its only release; `kvfree` hands vmalloc memory to `vfree`.
        unsafe { bindings::kvfree(self.ptr.as_ptr().cast()) };
    }
}

/// The three answers for a page when they disagree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalkMismatch {
    /// Our walk's PFN, or where it found the address unmapped.
    pub(crate) walked: Result<u64, NotMapped>,
    /// The kernel's `vmalloc_to_pfn()`.
    pub(crate) vmalloc_to_pfn: u64,
    /// The kernel's own lookup of the leaf entry
    /// ([`arch::kernel_lookup_pfn`]), decoded.
    pub(crate) kernel_lookup: Option<u64>,
}

impl WalkMismatch {
    /// The answer for a page outside the allocation.
    pub(crate) const NO_PAGE: Self = Self {
        walked: Err(NotMapped {
            level: Level::TOP,
            entry: 0,
        }),
        vmalloc_to_pfn: 0,
        kernel_lookup: None,
    };
}

impl kernel::fmt::Display for WalkMismatch {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self.walked {
            Ok(pfn) => write!(f, "our walk says pfn {pfn:#x}")?,
            Err(e) => write!(
                f,
                "our walk found no page (stopped at the {} level, entry {:#x})",
                e.level.name(),
                e.entry
            )?,
        }
        write!(f, ", vmalloc_to_pfn says {:#x}", self.vmalloc_to_pfn)?;
        match self.kernel_lookup {
            Some(pfn) => write!(f, ", {} says pfn {pfn:#x}", arch::KERNEL_LOOKUP),
            None => write!(f, ", {} found no page", arch::KERNEL_LOOKUP),
        }
    }
}
