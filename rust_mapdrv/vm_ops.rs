// SPDX-License-Identifier: GPL-2.0

//! A small, safe wrapper for the page-fault side of a mapping.
//!
//! Linux 7.3's Rust `mm` abstractions let an `mmap` hook set VMA flags and
//! insert pages, but have no way to install a `vm_operations_struct`, read a
//! VMA's `vm_pgoff`, or handle a page fault. This file is the one place that
//! does those with raw bindings; everything above it is safe code:
//!
//! - [`FaultHandler`] is what a mapping does on a fault, given its data and a
//!   [`Fault`];
//! - [`VmOps::install`] puts a handler's `vm_operations_struct` on a new VMA,
//!   with data that the mapped file owns (and checks that it does);
//! - [`Fault`] answers questions about the fault and maps the faulting page,
//!   or a window of pages around it, with [`insert_pages`], or hands the
//!   page to the core to copy for a private write ([`Fault::copy_on_write`]);
//! - [`MixedMapVma`] is a VMA that may be given pages, under the lock a
//!   fault holds (the mmap or the per-VMA read lock);
//! - a handler that maps 2 MiB blocks ([`FaultHandler::HUGE`]) also gets
//!   `.huge_fault`, with a [`PmdFault`] that maps a whole block with one
//!   PMD entry.
//!
//! Pages get the VMA's protection (`vm_page_prot`): writable only in a
//! shared writable mapping, so that a write to a `MAP_PRIVATE` mapping always
//! goes through the core's copy-on-write.

use core::{marker::PhantomData, ops::Deref, ops::Range, ptr::NonNull};
use kernel::{
    bindings,
    mm::virt::{VmaMixedMap, VmaNew, VmaRef},
    page::{BorrowedPage, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow,
    },
    types::ForeignOwnable,
};

use crate::{sched, vmalloc_util::HugeBlock, vmalloc_util::PMD_PAGES};

/// What a fault handler tells the core.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum FaultOutcome {
    /// The page is mapped (by us or by a racing fault), or its page table
    /// went away while we mapped it; retry the access.
    Mapped,
    /// The faulting page is handed to the core to be copied (a write fault
    /// on a private mapping, see [`Fault::copy_on_write`]).
    Handed(HandedPage),
    /// The address has no page: the process gets `SIGBUS`.
    SigBus,
    /// Out of memory while mapping.
    Oom,
}

/// The proof that [`Fault::copy_on_write`] put a page, with a reference for
/// the core, into the fault being handled. Only that method makes one, and it
/// is neither `Copy` nor `Clone`: a `.fault` that answers 0 must have set
/// `vmf->page`, or the core dereferences NULL.
#[derive(PartialEq, Eq, Debug)]
pub(crate) struct HandedPage(());

impl FaultOutcome {
    fn into_raw(self) -> bindings::vm_fault_t {
        match self {
            FaultOutcome::Mapped => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            // `vmf->page` is set and referenced; the core locks the page,
            // copies it, maps the copy and unlocks and puts the page.
            FaultOutcome::Handed(HandedPage(())) => 0,
            FaultOutcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
            FaultOutcome::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        }
    }
}

/// The behaviour of a mapping on a page fault.
pub(crate) trait FaultHandler {
    /// The data the handler works on, shared by all mappings of a file.
    type Data: Sync;

    /// Handles a fault in a mapping installed with [`VmOps::install`].
    fn fault(data: &Self::Data, fault: &Fault<'_>) -> FaultOutcome;

    /// Whether the handler maps 2 MiB blocks: its VMAs get a `.huge_fault`
    /// (which calls [`Self::huge_fault`]) and `VM_HUGEPAGE`.
    const HUGE: bool = false;

    /// Handles a fault that a PMD entry could answer, in a VMA of a
    /// [`Self::HUGE`] handler: a first touch of an empty 2 MiB range, or a
    /// write to a read-only PMD entry of a shared mapping. What it does not
    /// map, [`HugeOutcome::Fallback`] leaves to [`Self::fault`], page by
    /// page.
    ///
    /// `data` is borrowed for `'d`, which the [`PmdFault`] names too: a
    /// block it maps must be borrowed for as long (from `data`), so it
    /// outlives the entry.
    fn huge_fault<'d>(_data: &'d Self::Data, _fault: &PmdFault<'_, 'd>) -> HugeOutcome {
        HugeOutcome::Fallback
    }
}

/// What a `.huge_fault` handler tells the core.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum HugeOutcome {
    /// The block is mapped (by us or a racing fault); retry the access.
    Mapped,
    /// Not mapped with a PMD entry: the core maps the range page by page,
    /// with `.fault`.
    Fallback,
    /// The address has no page: the process gets `SIGBUS`.
    #[cfg_attr(
        not(CONFIG_TRANSPARENT_HUGEPAGE),
        expect(dead_code, reason = "only PMD insertion uses it, and it needs THP")
    )]
    SigBus,
    /// Out of memory while mapping.
    #[cfg_attr(
        not(CONFIG_TRANSPARENT_HUGEPAGE),
        expect(dead_code, reason = "only PMD insertion uses it, and it needs THP")
    )]
    Oom,
}

impl HugeOutcome {
    fn into_raw(self) -> bindings::vm_fault_t {
        match self {
            HugeOutcome::Mapped => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            HugeOutcome::Fallback => bindings::vm_fault_reason_VM_FAULT_FALLBACK,
            HugeOutcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
            HugeOutcome::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        }
    }
}

/// Sets `VM_HUGEPAGE` on a VMA being set up, as `madvise(MADV_HUGEPAGE)`
/// would: with the kernel's THP setting `madvise` (our VM kernels' default),
/// the core calls `.huge_fault` on a `VM_MIXEDMAP` VMA only when the flag is
/// set (`vma_file_allow_thp_tuneables`). THP `never`, `prctl(PR_SET_THP_DISABLE)`
/// and `MADV_NOHUGEPAGE` still win: they are checked before the flag.
fn set_hugepage(vma: &VmaNew) {
    let raw = vma.as_ptr();
    // SAFETY: `vma` is being set up by `mmap` under the mmap write lock and
    // is not yet visible to anyone else (`VmaNew` is `!Sync`), as the kernel
    // crate's own flag setters argue; `VM_HUGEPAGE` is a flag `madvise` sets
    // on any VMA, so the flags stay valid.
    unsafe {
        (*raw).__bindgen_anon_2.vm_flags |= bindings::VM_HUGEPAGE as bindings::vm_flags_t;
    }
}

/// The page offset (in pages into the file) where `vma` starts.
pub(crate) fn vma_pgoff(vma: &VmaRef) -> usize {
    // SAFETY: `vma` is a live VMA (a `&VmaRef` guarantees that the mmap or
    // VMA read lock is held), and `vm_pgoff` only changes under the write lock.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// Whether `vma`'s operations have a `.huge_fault` (huge mode's VMAs): only
/// those can hold PMD leaves among ours.
fn has_huge_fault(vma: &VmaRef) -> bool {
    // SAFETY: `vma` is a live VMA (a `&VmaRef` guarantees that the mmap or
    // VMA read lock is held); `vm_ops` is set by `mmap` and then never
    // changes, and when set it points to one of our static
    // `vm_operations_struct`s (or another driver's, equally static).
    unsafe {
        let ops = (*vma.as_ptr()).vm_ops;
        !ops.is_null() && (*ops).huge_fault.is_some()
    }
}

/// The length of `vma` in pages.
pub(crate) fn vma_pages(vma: &VmaRef) -> usize {
    (vma.end() - vma.start()) >> PAGE_SHIFT
}

/// A VMA with `VM_MIXEDMAP` set, borrowed under its mmap or VMA read lock.
///
/// The kernel crate's `VmaMixedMap` is documented to need the mmap read
/// lock; a fault handled under the per-VMA lock (see [`VmOps`]) holds only
/// the VMA's read lock. This type's contract is the one of `VmaRef`, whose
/// documentation allows either lock, plus the flag. What it is used for,
/// `vm_insert_pages`, needs no more: it checks the range against
/// `vm_start`/`vm_end` and reads `vm_flags` and `vm_page_prot`, which only
/// change under the VMA write lock, and takes the page-table locks itself
/// (allocating a table like the anonymous fault path does under the same
/// lock).
///
/// # Invariants
///
/// `vma` has `VM_MIXEDMAP` set, and its mmap or VMA read lock (or stronger)
/// is held for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct MixedMapVma<'a> {
    vma: &'a VmaRef,
}

impl<'a> From<&'a VmaMixedMap> for MixedMapVma<'a> {
    fn from(vma: &'a VmaMixedMap) -> Self {
        // INVARIANT: a `VmaMixedMap` has the flag and is borrowed under the
        // mmap read lock (or stronger).
        Self { vma }
    }
}

impl Deref for MixedMapVma<'_> {
    type Target = VmaRef;

    fn deref(&self) -> &VmaRef {
        self.vma
    }
}

/// A page fault being handled.
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a fault in progress on `vma`; both are
/// valid for `'a`.
pub(crate) struct Fault<'a> {
    vmf: *mut bindings::vm_fault,
    vma: MixedMapVma<'a>,
}

/// How often [`Fault::map`] tries the faulting page alone after a batch
/// stopped with the page table gone (see there).
const SINGLE_PAGE_TRIES: usize = 3;

impl<'a> Fault<'a> {
    fn raw(&self) -> &bindings::vm_fault__bindgen_ty_1 {
        // SAFETY: `vmf` is valid for `'a` (type invariant); the first part of
        // a `struct vm_fault` is constant while the fault is handled.
        unsafe { &(*self.vmf).__bindgen_anon_1 }
    }

    /// The VMA that faulted.
    pub(crate) fn vma(&self) -> MixedMapVma<'a> {
        self.vma
    }

    /// The index in the VMA (in pages from its start) of the faulting page.
    pub(crate) fn index(&self) -> usize {
        (self.raw().address - self.vma.start()) >> PAGE_SHIFT
    }

    /// Whether this is a write fault on a private (`MAP_PRIVATE`) mapping:
    /// the core is in `do_cow_fault`, with a new anonymous page ready for
    /// the copy, and answers the write in this one fault if
    /// [`Self::copy_on_write`] hands it the page.
    pub(crate) fn is_private_write(&self) -> bool {
        // SAFETY: `vmf` is valid for `'a` (type invariant); `flags` is set
        // by the core before `.fault` is called and only read here.
        let flags = unsafe { (*self.vmf).flags };
        flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
            && self.vma.flags() & bindings::VM_SHARED as bindings::vm_flags_t == 0
    }

    /// Answers a write fault on a private mapping ([`Self::is_private_write`])
    /// with `page`, for the core to copy: `do_cow_fault` locks it, copies it
    /// into the anonymous page it allocated, maps the copy writable, then
    /// unlocks the page and drops the reference taken here. One trap per
    /// written page, where mapping our page read-only (as for a read) would
    /// take a second fault for the copy. Our page is never mapped by this.
    ///
    /// Must be what the handler returns: the outcome is the only thing that
    /// tells the core to look at the page.
    ///
    /// A tail page of a compound page cannot be handed (its reference count
    /// is its head's): the fault gets `SIGBUS`. The buffer's pages never are
    /// one (vmalloc splits its higher orders, `split_page`).
    pub(crate) fn copy_on_write(&self, page: BorrowedPage<'_>) -> FaultOutcome {
        let raw = page.as_ptr();
        // SAFETY: `raw` is a live page (borrowed); `compound_info` is what
        // `PageTail()` reads (bit 0 set on a tail page), read once as there.
        let tail = unsafe {
            core::ptr::read_volatile(
                &raw const (*raw).__bindgen_anon_1.__bindgen_anon_3.compound_info,
            )
        } & 1
            != 0;
        if tail {
            return FaultOutcome::SigBus;
        }
        // SAFETY: `raw` is a live page (borrowed) with a reference of its
        // owner, so its count is positive and it cannot be freed while we
        // add one. It is not a tail page (checked above), so its `_refcount`
        // is its folio's: this is `get_page()`, an inline function that
        // modules cannot call, without its page_ref tracepoint
        // (`CONFIG_DEBUG_PAGE_REF`). `add` with `Relaxed` is `atomic_add`,
        // as in `atomic_inc`.
        unsafe {
            Atomic::<i32>::from_ptr(&raw mut (*raw)._refcount.counter).add(1, Relaxed);
        }
        // SAFETY: `vmf` is valid for `'a` (type invariant) and `page` is
        // the field a `.fault` handler fills in; the core reads it only
        // because of the 0 that `FaultOutcome::Handed` becomes, and then
        // owns the reference taken above.
        unsafe { (*self.vmf).page = raw };
        FaultOutcome::Handed(HandedPage(()))
    }

    /// Maps the pages `window` of the VMA (indices from its start; the
    /// faulting page among them), `pages(r)` being the run of pages for the
    /// VMA's pages `r`. Returns what to tell the core, how many pages were
    /// inserted (entries that were present already are not counted).
    ///
    /// `vm_insert_pages` can stop early for reasons that say nothing about
    /// the address: it maps in steps of up to 8 pages, dropping the PTE lock
    /// in between, and when the page table is gone at the next step (with
    /// `CONFIG_PT_RECLAIM`, `MADV_DONTNEED` frees an emptied table under the
    /// VMA read lock only), it returns `EFAULT`. Then the faulting page is
    /// mapped alone, which allocates a new table. If the table keeps
    /// vanishing (a `MADV_DONTNEED` loop can win that race a few times in a
    /// row), the fault is answered `VM_FAULT_NOPAGE` without a page: the
    /// access is retried and faults again, as the core does for a racing
    /// fault. That cannot loop on a real shortage: the core allocated the
    /// upper tables of the faulting address before calling `.fault`
    /// (`__handle_mm_fault`) and PT_RECLAIM frees only PTE tables, so for a
    /// single page `EFAULT` means the table went away, and a PTE table that
    /// cannot be allocated is `ENOMEM`, answered `VM_FAULT_OOM`.
    /// `VM_FAULT_SIGBUS` means `pages` has no page for the faulting
    /// address: it is outside the buffer.
    ///
    /// When the window ends at a 2 MiB boundary of user addresses and the
    /// VMA goes on, the next 2 MiB gets its page table now
    /// ([`prepare_next_table`]): the fault that will need it then finds it,
    /// and the core does not allocate one for it in vain (see there).
    pub(crate) fn map<'p>(
        &self,
        window: Range<usize>,
        pages: impl Fn(Range<usize>) -> Option<PageRun<'p>>,
    ) -> (FaultOutcome, InsertCounts) {
        let start = self.vma.start() + window.start * PAGE_SIZE;
        let end = start + window.len() * PAGE_SIZE;
        let mut counts = InsertCounts::default();
        if let Some(run) = pages(window.clone()) {
            let batch = insert_pages(self.vma, start, run);
            counts = batch.counts;
            match batch.stopped {
                Ok(()) => {
                    prepare_next_table(self.vma, end);
                    return (FaultOutcome::Mapped, counts);
                }
                Err(e) if e == ENOMEM => return (FaultOutcome::Oom, counts),
                Err(_) => {}
            }
        }
        let index = self.index();
        let Some(page) = pages(index..index + 1) else {
            return (FaultOutcome::SigBus, counts);
        };
        let address = self.vma.start() + index * PAGE_SIZE;
        for _ in 0..SINGLE_PAGE_TRIES {
            let single = insert_pages(self.vma, address, page);
            counts += single.counts;
            match single.stopped {
                Ok(()) => return (FaultOutcome::Mapped, counts),
                Err(e) if e == EFAULT => sched::cond_resched(),
                Err(e) if e == ENOMEM => return (FaultOutcome::Oom, counts),
                Err(_) => return (FaultOutcome::SigBus, counts),
            }
        }
        // The table went away each time: let the access fault again.
        (FaultOutcome::Mapped, counts)
    }
}

/// A fault that a PMD entry could answer (`.huge_fault` with the PMD order).
///
/// `'d` is the lifetime of the handler's data as [`FaultHandler::huge_fault`]
/// sees it: what is borrowed for `'d` stays allocated while the VMA's file
/// is open, which is longer than any entry of the VMA lives (the core zaps
/// every entry before it closes the file).
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a fault in progress on `vma`, with
/// `vmf->pmd` the PMD entry of the faulting address; both are valid for `'a`.
/// Whatever lives for `'d` lives until the VMA's file is released.
pub(crate) struct PmdFault<'a, 'd> {
    vmf: *mut bindings::vm_fault,
    vma: MixedMapVma<'a>,
    _data: PhantomData<&'d ()>,
}

impl<'a, 'd> PmdFault<'a, 'd> {
    /// The VMA that faulted.
    pub(crate) fn vma(&self) -> MixedMapVma<'a> {
        self.vma
    }

    /// The index in the VMA (in pages from its start) of the first page of
    /// the 2 MiB-aligned block of user addresses around the fault, if that
    /// whole block lies inside the VMA; a PMD entry maps exactly such a
    /// block.
    pub(crate) fn block_index(&self) -> Option<usize> {
        let block_size = PMD_PAGES * PAGE_SIZE;
        // SAFETY: `vmf` is valid for `'a` (type invariant); `address` is set
        // by the core before the call and constant during it.
        let address = unsafe { (*self.vmf).__bindgen_anon_1.address };
        let start = address & !(block_size - 1);
        let end = start.checked_add(block_size)?;
        (start >= self.vma.start() && end <= self.vma.end())
            .then(|| (start - self.vma.start()) >> PAGE_SHIFT)
    }

    /// Whether the mapping is shared (`MAP_SHARED`). Private mappings are
    /// left to the per-page path, where the core copies on write. A shared
    /// mapping of a file opened read-only has `VM_MAYSHARE` but not
    /// `VM_SHARED`: both count, as in the core's `wp_huge_pmd`.
    pub(crate) fn is_shared(&self) -> bool {
        self.vma.flags() & (bindings::VM_SHARED | bindings::VM_MAYSHARE) as bindings::vm_flags_t
            != 0
    }

    /// Maps `block` at [`Self::block_index`] with one PMD entry (a special
    /// entry: no page reference is taken), writable and dirty if this is a
    /// write fault, as device DAX does. A racing fault that mapped the block
    /// first is no error. Fails with [`HugeOutcome::Fallback`] where the
    /// kernel has no PMD entries for user memory (no THP).
    ///
    /// The entry holds no reference of its own, so the frames must outlive
    /// it: `block` is borrowed for `'d`, until the VMA's file is released
    /// (type invariant), and the core zaps the entry (on `munmap`, `exit`,
    /// `MADV_DONTNEED`, a split...) before it closes the file.
    pub(crate) fn map_block(&self, block: HugeBlock<'d>) -> HugeOutcome {
        #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
        {
            // SAFETY: `vmf` is valid for `'a` (type invariant);
            // `vmf->address`'s block lies inside the VMA (the caller found
            // `block` for `block_index`, and the core checks the range again);
            // the VMA has `VM_MIXEDMAP` and not `VM_PFNMAP`
            // (`vmf_insert_pfn_pmd` BUG()s otherwise: `MixedMapVma`'s
            // invariant, and we never set `VM_PFNMAP`); the frames are an
            // aligned block (`HugeBlock`'s invariant) that outlives the entry
            // (it is borrowed for `'d`). The function takes the PMD lock itself
            // and is what device DAX calls under the same locks.
            let ret = unsafe {
                bindings::vmf_insert_pfn_pmd(
                    self.vmf,
                    block.pfn() as kernel::ffi::c_ulong,
                    self.is_write(),
                )
            };
            match ret {
                r if r == bindings::vm_fault_reason_VM_FAULT_NOPAGE => HugeOutcome::Mapped,
                r if r == bindings::vm_fault_reason_VM_FAULT_OOM => HugeOutcome::Oom,
                _ => HugeOutcome::SigBus,
            }
        }
        #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
        {
            let _ = block;
            HugeOutcome::Fallback
        }
    }

    /// Whether the access that faulted is a write.
    #[cfg_attr(
        not(CONFIG_TRANSPARENT_HUGEPAGE),
        expect(dead_code, reason = "only PMD insertion uses it, and it needs THP")
    )]
    fn is_write(&self) -> bool {
        // SAFETY: `vmf` is valid for `'a` (type invariant); `flags` is set
        // by the core before the call and only read here.
        let flags = unsafe { (*self.vmf).flags };
        flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }
}

/// What [`insert_pages`] did, in numbers.
#[derive(Clone, Copy, Default)]
pub(crate) struct InsertCounts {
    /// Pages inserted (not counting entries that were present already).
    pub(crate) pages: usize,
    /// `vm_insert_pages` calls made: one per batch, and one more for each
    /// restart after a present entry (what skipping present runs saves).
    pub(crate) calls: usize,
}

impl core::ops::AddAssign for InsertCounts {
    fn add_assign(&mut self, other: Self) {
        self.pages += other.pages;
        self.calls += other.calls;
    }
}

/// What [`insert_pages`] did.
pub(crate) struct Inserted {
    /// Pages inserted and calls made.
    pub(crate) counts: InsertCounts,
    /// Why it stopped before the end, if it did.
    pub(crate) stopped: Result,
}

/// Pages handed to one `vm_insert_pages` call by [`insert_pages`] at most,
/// between two chances for the scheduler; also the reach of one
/// [`present_entries`] look (one bit each in a `u64`).
const INSERT_BATCH: usize = 64;

/// A run of pages to map, borrowed for `'p`: the `struct page` pointer of
/// each, in the order they are to be mapped, which is the array
/// `vm_insert_pages` takes. A buffer that keeps such an array hands out runs
/// of it without a copy.
///
/// # Invariants
///
/// Every entry of `pages` is a live page that stays allocated (its owner
/// holds a reference) for at least `'p`, and is not a tail page of a
/// compound page.
#[derive(Clone, Copy)]
pub(crate) struct PageRun<'p> {
    pages: &'p [NonNull<bindings::page>],
}

// The run's slice is handed to C as a `struct page **`.
const _: () = assert!(
    core::mem::size_of::<NonNull<bindings::page>>() == core::mem::size_of::<*mut bindings::page>()
);

impl<'p> PageRun<'p> {
    /// # Safety
    ///
    /// Every entry of `pages` is a live page, not a tail page, that stays
    /// allocated for at least `'p`.
    pub(crate) unsafe fn from_slice(pages: &'p [NonNull<bindings::page>]) -> Self {
        // INVARIANT: The caller's guarantee.
        Self { pages }
    }

    /// The number of pages in the run.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// Page `index` of the run.
    pub(crate) fn page(&self, index: usize) -> Option<BorrowedPage<'p>> {
        let page = *self.pages.get(index)?;
        // SAFETY: `page` is live for `'p` (type invariant).
        Some(unsafe { BorrowedPage::from_raw(page) })
    }
}

/// Maps the pages of `run` at consecutive pages of `vma` from user address
/// `addr`.
///
/// Pages whose entry is already present (a racing fault, an earlier batch,
/// the rest of a window that `MADV_DONTNEED` cut into) are skipped.
/// `vm_insert_pages` stops at a present entry (`EBUSY`), so each skip costs a
/// new call (a walk to the PMD and the PTE lock again). A lone present page
/// is skipped that way; when the call right after a skip stops at once too
/// (a run of present entries), [`present_entries`] looks at the rest of the
/// batch in one pass under the PTE lock, and the remaining calls cover only
/// the runs of pages that were absent, whatever the length of the present
/// runs between them. Returns how many were inserted and the error that
/// stopped it, if one did: `EFAULT` if the range is not inside `vma`, if a
/// page table went away between two steps of `vm_insert_pages` (see
/// [`Fault::map`]) or an upper-level table could not be allocated; `ENOMEM`
/// if a page table could not be allocated.
///
/// No memory is allocated here (beyond the page tables the core may need)
/// and no page pointer is copied: `vm_insert_pages` reads them from the
/// run itself, [`INSERT_BATCH`] at a time, each batch one call, which takes
/// the PTE lock once per 8 pages. Between batches it lets the scheduler in
/// (`cond_resched`): mapping a 1 GiB buffer at once takes milliseconds.
///
/// The entries get the VMA's protection: writable only for a shared writable
/// mapping, so private mappings keep copy-on-write.
pub(crate) fn insert_pages(vma: MixedMapVma<'_>, addr: usize, run: PageRun<'_>) -> Inserted {
    let mut counts = InsertCounts::default();
    let stopped = insert_pages_counted(vma, addr, run, &mut counts);
    Inserted { counts, stopped }
}

/// [`insert_pages`], counting into `counts` as it goes.
fn insert_pages_counted(
    vma: MixedMapVma<'_>,
    addr: usize,
    run: PageRun<'_>,
    counts: &mut InsertCounts,
) -> Result {
    let count = run.len();
    // `vm_insert_pages` takes `struct page **` but only reads the array.
    let raw = run.pages.as_ptr().cast::<*mut bindings::page>().cast_mut();
    // Pages of the run before `done` are mapped or skipped.
    let mut done = 0;
    while done < count {
        let n = (count - done).min(INSERT_BATCH);
        let mut batch_done = 0;
        // Bit `i`: the entry of the batch's page `i` was present when
        // `present_entries` looked (a hint; `vm_insert_pages` checks again).
        let mut known_present = 0u64;
        // The last call stopped at its first page (a present entry).
        let mut stopped_at_once = false;
        while batch_done < n {
            batch_done += (known_present >> batch_done).trailing_ones() as usize;
            if batch_done >= n {
                break;
            }
            // Up to the next page known to be present.
            let absent =
                ((known_present >> batch_done).trailing_zeros() as usize).min(n - batch_done);
            let mut remaining: usize = absent;
            // SAFETY: `vma` has `VM_MIXEDMAP` set and its mmap or VMA read
            // lock is held (`MixedMapVma`'s invariant); the `absent` entries
            // of `raw` from `done + batch_done` are inside `run` (`absent <=
            // n - batch_done` and `done + n <= count`), live pages that are not
            // tail pages, borrowed for longer than this call (`PageRun`'s
            // invariant); `vm_insert_pages` only reads that many entries,
            // checks that the range lies inside `vma` and takes a reference
            // to each page it maps, so a mapped page stays allocated until
            // it is unmapped.
            let ret = unsafe {
                bindings::vm_insert_pages(
                    vma.as_ptr(),
                    addr + (done + batch_done) * PAGE_SIZE,
                    raw.add(done + batch_done),
                    &mut remaining,
                )
            };
            let mapped = absent - remaining;
            counts.calls += 1;
            counts.pages += mapped;
            batch_done += mapped;
            match ret {
                0 if remaining == 0 => stopped_at_once = false,
                // Not something `vm_insert_pages` does; never loop on it.
                0 => return Err(EIO),
                // The entry at `batch_done` is present already: skip it, and
                // if this is the second call in a row that mapped nothing,
                // look at the rest of the batch before the next one.
                e if e == -(bindings::EBUSY as i32) => {
                    let again = mapped == 0 && stopped_at_once;
                    stopped_at_once = mapped == 0;
                    batch_done += 1;
                    if again && batch_done < n {
                        let from = addr + (done + batch_done) * PAGE_SIZE;
                        if let Some(present) = present_entries(vma, from, n - batch_done) {
                            known_present |= present << batch_done;
                        }
                    }
                }
                e => return Err(Error::from_errno(e)),
            }
        }
        done += n;
        if done < count {
            sched::cond_resched();
        }
    }
    Ok(())
}

/// Gives the 2 MiB of user addresses from `addr` their page table now, if
/// `addr` is where such a block begins, `vma` goes on there and the block has
/// no table yet; called by a fault that has just mapped the pages up to
/// `addr`.
///
/// Why: when a fault finds no page table under its address, the core
/// allocates one before it calls the handler (`vmf->prealloc_pte`, in
/// `do_fault_around` and `__do_fault`), for its own mapping of a page the
/// handler returns (`finish_fault`). `vm_insert_pages` cannot take it: it
/// allocates a table of its own, and the core frees the one it made. So a
/// fault-around reader paid two table allocations (each a zeroed page) per
/// 2 MiB where the kernel's own file mappings pay one: 2% of `faultaround`'s
/// first touch in guest instructions (docs/performance.md). With the next
/// block's table made here, the fault that comes to it (a sequential
/// reader's) finds it, and the core allocates nothing. If no fault comes,
/// the table (4 KiB) is freed with the mapping, like the table a touch
/// there would have made.
///
/// A hint, no more: if the table cannot be made (no memory), the fault
/// there makes it as before; a VMA with `.huge_fault` gets none (a page
/// table there would keep its blocks from being mapped with PMD entries).
fn prepare_next_table(vma: MixedMapVma<'_>, addr: usize) {
    if addr % (PMD_PAGES * PAGE_SIZE) == 0 {
        // `present_entries` walks to the entry of `addr`, making the table
        // if it is missing, when `addr` is inside `vma` and the VMA has no
        // `.huge_fault`; what it finds there is of no interest here.
        let _ = present_entries(vma, addr, 1);
    }
}

/// Which of the `n` (at most 64) pages of `vma` from user address `addr`
/// have a page-table entry: bit `i` for the `i`-th; `None` if it could not
/// look (`apply_to_page_range` could not allocate a missing table, or the
/// table went away under it).
///
/// A hint for [`insert_pages`], no more: entries can change as soon as the
/// PTE lock is dropped again, and `vm_insert_pages` checks each one under
/// it. A page taken for present wrongly is not mapped now and faults on
/// its own later; one taken for absent wrongly stops `vm_insert_pages` with
/// `EBUSY` as before.
///
/// One pass, through the kernel's exported `apply_to_page_range` (the way
/// Xen's privcmd and gntdev look at user page tables): it walks to the PTE
/// table, takes its lock and calls [`note_present`] for each entry. The
/// walk allocates a missing table (as `vm_insert_pages` would), but it
/// refuses a PMD leaf with a `WARN`, so it is not used at all in a VMA with
/// a `.huge_fault` (huge mode): there a block's PMD entry can be zapped,
/// its table reclaimed and a leaf installed again by another thread between
/// any look and the walk. Such VMAs skip each present page with a new
/// `vm_insert_pages` call instead. A VMA without `.huge_fault` never has a
/// PMD leaf: `VM_MIXEDMAP` device VMAs get THP only through that hook.
fn present_entries(vma: MixedMapVma<'_>, addr: usize, n: usize) -> Option<u64> {
    let inside = addr >= vma.start() && n <= (vma.end().saturating_sub(addr)) / PAGE_SIZE;
    if n == 0 || n > u64::BITS as usize || !inside || has_huge_fault(&vma) {
        return None;
    }
    let mut scan = PresentScan {
        start: addr,
        present: 0,
    };
    // SAFETY: `vma`'s mmap or VMA read lock is held (`MixedMapVma`'s
    // invariant), which keeps its `mm` alive; `[addr, addr + n pages)` is
    // inside `vma` (checked above), which cannot change under the read
    // lock, so the walk makes no table outside it; it has no PMD leaf (no
    // `.huge_fault`, checked above), so the walk does not `WARN`;
    // `note_present` is a `pte_fn_t` that only records, and `scan` outlives
    // the call that is its only user.
    let ret = unsafe {
        bindings::apply_to_page_range(
            vma.mm().as_raw(),
            addr as kernel::ffi::c_ulong,
            (n * PAGE_SIZE) as kernel::ffi::c_ulong,
            Some(note_present),
            (&raw mut scan).cast(),
        )
    };
    (ret == 0).then_some(scan.present)
}

/// What [`note_present`] fills in for [`present_entries`].
struct PresentScan {
    /// The user address of bit 0.
    start: usize,
    present: u64,
}

// A PTE is read as its `pteval_t`: `pte_t` is that value, or a struct of it.
const _: () =
    assert!(core::mem::size_of::<bindings::pte_t>() == core::mem::size_of::<bindings::pteval_t>());

/// The `pte_fn_t` of [`present_entries`]: notes whether the entry at `addr`
/// is present. An entry is `pte_none()` when it is zero on x86_64, arm64
/// and arm (x86's Knights Landing may leave accessed and dirty bits in an
/// empty entry; that page is then only taken for present, see
/// [`present_entries`]).
///
/// # Safety
///
/// `pte` points to the entry of user address `addr` in a PTE table that is
/// mapped and locked for the call, and `data` to the [`PresentScan`] of a
/// range of at most 64 pages from its `start` that holds `addr`.
unsafe extern "C" fn note_present(
    pte: *mut bindings::pte_t,
    addr: kernel::ffi::c_ulong,
    data: *mut kernel::ffi::c_void,
) -> kernel::ffi::c_int {
    // SAFETY: `data` is the caller's `PresentScan`, borrowed by no one else
    // during `apply_to_page_range` (function's safety requirement).
    let scan = unsafe { &mut *data.cast::<PresentScan>() };
    // SAFETY: `pte` is a mapped, aligned entry under its lock (function's
    // safety requirement), and a `pte_t` is one `pteval_t` (asserted above);
    // the hardware may set accessed/dirty bits meanwhile, which a volatile
    // read of the whole aligned value tolerates.
    let value = unsafe { core::ptr::read_volatile(pte.cast::<bindings::pteval_t>()) };
    if value != 0 {
        let bit = addr.wrapping_sub(scan.start) >> PAGE_SHIFT;
        if bit < u64::BITS as usize {
            scan.present |= 1 << bit;
        }
    }
    0
}

/// The `vm_operations_struct`s of the fault handler `H`.
///
/// # `.map_pages`, and why ours maps nothing
///
/// On a read fault the core first calls `.map_pages` (if there is one) under
/// `rcu_read_lock()`, to map whatever pages around the fault are ready
/// without blocking; for files that is `filemap_map_pages`, the kernel's own
/// fault-around. It must not sleep or allocate. A module cannot map a page
/// soundly from there:
///
/// - `vm_insert_pages`/`vm_insert_page`, the exported ways to map a
///   `struct page`, allocate the page table with `GFP_KERNEL` when the PMD
///   is empty (`pte_alloc`): on the first fault in every 2 MiB, and again
///   after `CONFIG_PT_RECLAIM` freed an emptied table. That may sleep, which
///   is a bug under RCU; checking `pmd_none()` first does not help, since the
///   table can be reclaimed between the check and the call.
/// - What `filemap_map_pages` builds on (`pte_offset_map_lock`,
///   `pmd_install`, `set_pte_range`, `folio_add_file_rmap_ptes`, the mm
///   counters) is not exported to modules, and most of it is inline C that
///   the Rust bindings do not reach.
///
/// So our `.map_pages` maps nothing and returns 0, which is a valid answer
/// (`filemap_map_pages` gives it when no page is cached): "the faulting page
/// is not mapped, call `.fault`". Fault-around stays in our `.fault`
/// (`FaultAround` in `rust_mapdrv.rs`).
///
/// Why have one at all: in 7.3 the core calls `.fault` under the per-VMA
/// lock only when the VMA's operations have a `.map_pages`
/// (`vmf_can_call_fault` in `mm/memory.c`; the core takes its presence as the
/// sign that `.fault` does not rely on `mmap_lock`). Without one, every fault
/// that arrives under the VMA lock (with `CONFIG_PER_VMA_LOCK` a user fault
/// tries that first) is answered `VM_FAULT_RETRY` and taken a second time
/// under `mmap_lock`. With one, a read fault pays for the core's fault-around
/// call instead (and, once per 2 MiB, a page table allocated in advance that
/// `vm_insert_pages` does not use); measured, faults got 3-17% cheaper.
/// Our `.fault` is sound under the VMA read lock alone: it reads `vm_start`,
/// `vm_end`, `vm_pgoff`, `vm_flags` and `vm_private_data`, which only change
/// under the VMA write lock; the data outlives the VMA (see [`Self::install`]);
/// and it maps with `vm_insert_pages` on a VMA that already has
/// `VM_MIXEDMAP` (see [`MixedMapVma`]), which takes the page-table locks themselves and
/// allocate page tables the way the anonymous fault path does under the same
/// lock. Copy-on-write of a private mapping is the core's `do_cow_fault`/
/// `do_wp_page`, which handle the VMA lock themselves.
///
/// [`VmOps::install`] takes `map_pages` to choose, so that `mapdrv bench`
/// can show the difference in one run (debugfs `mapdrv/map_pages`).
///
/// The tables are meant for `static` items, one per handler, so that the
/// pointer a VMA keeps to them is to a real static:
///
/// `static OPS: VmOps<MyHandler> = VmOps::new();`
pub(crate) struct VmOps<H> {
    /// With `.map_pages`: faults are handled under the per-VMA lock.
    with_map_pages: bindings::vm_operations_struct,
    /// Without `.map_pages`: each fault is retried under `mmap_lock`.
    fault_only: bindings::vm_operations_struct,
    _handler: PhantomData<fn(H)>,
}

impl<H: FaultHandler> VmOps<H> {
    /// The operations of the handler `H`.
    pub(crate) const fn new() -> Self {
        Self {
            with_map_pages: bindings::vm_operations_struct {
                fault: Some(Self::fault),
                map_pages: Some(Self::map_pages),
                huge_fault: Self::HUGE_FAULT,
                ..pin_init::zeroed()
            },
            fault_only: bindings::vm_operations_struct {
                fault: Some(Self::fault),
                huge_fault: Self::HUGE_FAULT,
                ..pin_init::zeroed()
            },
            _handler: PhantomData,
        }
    }

    /// Makes `vma` use `H` on faults, with `data` as the handler's data;
    /// with `map_pages`, through the operations that have a (no-op)
    /// `.map_pages`, so that faults are handled under the per-VMA lock.
    ///
    /// `data` must be what the mapped file owns: the `Arc` that a misc
    /// device's `open` returned, which the file's private data holds until
    /// `release`. A VMA, and every VMA copied or split from it, keeps a
    /// reference to its file, so the data outlives them all. Any other data
    /// is refused with `EINVAL`, checked by comparing the file's private
    /// data with the pointer the `Arc` is stored as.
    ///
    /// Sets `VM_MIXEDMAP` too (the fault path inserts pages with
    /// `vm_insert_pages`, which needs it) and returns the VMA as such; for a
    /// [`FaultHandler::HUGE`] handler also `VM_HUGEPAGE` (see
    /// [`set_hugepage`]).
    pub(crate) fn install<'a>(
        &'static self,
        vma: &'a VmaNew,
        data: ArcBorrow<'_, H::Data>,
        map_pages: bool,
    ) -> Result<&'a VmaMixedMap>
    where
        H::Data: Send + Sync + 'static,
    {
        // SAFETY: `vma` is a live VMA being set up by `mmap`; `vm_file` is
        // set (to the file being mapped) before the driver's `mmap` runs and
        // the VMA holds a reference to it, so the file is live too.
        let private = unsafe {
            let file = (*vma.as_ptr()).vm_file;
            if file.is_null() {
                return Err(EINVAL);
            }
            (*file).private_data
        };
        // The pointer `data` is stored as, taken and given back at once.
        let stored = Arc::from(data).into_foreign();
        // SAFETY: `stored` comes from `into_foreign` just above and is used
        // once, here.
        drop(unsafe { Arc::<H::Data>::from_foreign(stored) });
        if private != stored {
            return Err(EINVAL);
        }
        let mixed = vma.set_mixedmap();
        if H::HUGE {
            set_hugepage(vma);
        }
        let raw = vma.as_ptr();
        // SAFETY: `vma` is being set up by `mmap` with the mmap write lock
        // held, so nobody else reads these fields yet; `self` is `'static`;
        // and `data` outlives the VMA: the file's private data holds a
        // reference to it (checked above) until the file is released, which
        // is after the last VMA that refers to the file is gone.
        unsafe {
            (*raw).vm_private_data = core::ptr::from_ref::<H::Data>(&data).cast_mut().cast();
            (*raw).vm_ops = if map_pages {
                &self.with_map_pages
            } else {
                &self.fault_only
            };
        }
        Ok(mixed)
    }

    /// `.huge_fault` for a [`FaultHandler::HUGE`] handler, else none.
    const HUGE_FAULT: Option<
        unsafe extern "C" fn(*mut bindings::vm_fault, kernel::ffi::c_uint) -> bindings::vm_fault_t,
    > = if H::HUGE {
        Some(Self::huge_fault)
    } else {
        None
    };

    /// The VMA and the handler's data of a fault.
    ///
    /// # Safety
    ///
    /// `vmf` is a fault in progress, passed by the core to an operation of a
    /// VMA set up by [`Self::install`]; the results are used only during
    /// that call.
    unsafe fn vma_and_data<'a>(vmf: *mut bindings::vm_fault) -> (MixedMapVma<'a>, &'a H::Data) {
        // SAFETY: The core passes a valid fault in progress on a live VMA.
        let vma = unsafe { (*vmf).__bindgen_anon_1.vma };
        // SAFETY: The core holds the mmap read lock or, for operations with
        // `.map_pages` and for `.huge_fault`, possibly only the VMA read
        // lock, during the call; `VmaRef` asks for one of them.
        let vma = unsafe { VmaRef::from_raw(vma) };
        // INVARIANT: `install` set `VM_MIXEDMAP` on the VMA, the flag is
        // never cleared, and a lock is held (above).
        let vma = MixedMapVma { vma };
        // SAFETY: `install` stored a `&H::Data` that outlives the VMA (the
        // file it maps owns the data).
        let data = unsafe { &*(*vma.as_ptr()).vm_private_data.cast::<H::Data>() };
        (vma, data)
    }

    /// # Safety
    ///
    /// Called by the core for a fault on a VMA set up by [`Self::install`].
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: As this function's own contract.
        let (vma, data) = unsafe { Self::vma_and_data(vmf) };
        // INVARIANT: `vmf` is a fault in progress on `vma`.
        let fault = Fault { vmf, vma };
        H::fault(data, &fault).into_raw()
    }

    /// `.huge_fault`: the PMD order goes to [`FaultHandler::huge_fault`];
    /// any other order (a PUD, 1 GiB) falls back.
    ///
    /// # Safety
    ///
    /// Called by the core for a fault on a VMA set up by [`Self::install`],
    /// from `create_huge_pmd` or `wp_huge_pmd` (with `vmf->pmd` set) for the
    /// PMD order.
    unsafe extern "C" fn huge_fault(
        vmf: *mut bindings::vm_fault,
        order: kernel::ffi::c_uint,
    ) -> bindings::vm_fault_t {
        if 1usize.checked_shl(order) != Some(PMD_PAGES) {
            return HugeOutcome::Fallback.into_raw();
        }
        // SAFETY: As this function's own contract.
        let (vma, data) = unsafe { Self::vma_and_data(vmf) };
        // INVARIANT: `vmf` is a fault in progress on `vma` at the PMD order,
        // for which the core set `vmf->pmd`; `data`'s lifetime is the one
        // `'d` names, and `install` made sure that the data lives until the
        // VMA's file is released.
        let fault = PmdFault {
            vmf,
            vma,
            _data: PhantomData,
        };
        H::huge_fault(data, &fault).into_raw()
    }
    /// `.map_pages`: maps nothing (see the type's documentation).
    ///
    /// # Safety
    ///
    /// Called by the core, under `rcu_read_lock()`, for a read fault on a VMA
    /// set up by [`Self::install`]. It touches nothing, so any call is sound.
    unsafe extern "C" fn map_pages(
        _vmf: *mut bindings::vm_fault,
        _start_pgoff: kernel::ffi::c_ulong,
        _end_pgoff: kernel::ffi::c_ulong,
    ) -> bindings::vm_fault_t {
        0
    }
}
