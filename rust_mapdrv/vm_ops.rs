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
//! - [`VmOps::install`] puts a handler's `vm_operations_struct` on a new VMA;
//! - [`Fault`] answers questions about the fault and inserts pages, and it
//!   only maps a page writable for a shared mapping, so that a write to a
//!   `MAP_PRIVATE` mapping always goes through the core's copy-on-write.

use core::marker::PhantomData;
use kernel::{
    bindings,
    mm::virt::{flags, VmaMixedMap, VmaNew, VmaRef},
    page::{BorrowedPage, Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
};

/// What a fault handler tells the core.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FaultOutcome {
    /// The page is mapped (by us or by a racing fault); retry the access.
    Mapped,
    /// The address has no page: the process gets `SIGBUS`.
    SigBus,
    /// Out of memory while mapping.
    Oom,
}

impl FaultOutcome {
    fn into_raw(self) -> bindings::vm_fault_t {
        match self {
            FaultOutcome::Mapped => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            FaultOutcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
            FaultOutcome::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        }
    }

    fn from_raw(raw: bindings::vm_fault_t) -> Self {
        if raw & bindings::vm_fault_reason_VM_FAULT_OOM != 0 {
            FaultOutcome::Oom
        } else if raw & bindings::vm_fault_reason_VM_FAULT_NOPAGE != 0 {
            FaultOutcome::Mapped
        } else {
            FaultOutcome::SigBus
        }
    }
}

/// The behaviour of a mapping on a page fault.
pub(crate) trait FaultHandler {
    /// The data the handler works on, shared by all mappings of a file.
    type Data: Sync;

    /// Handles a fault in a mapping installed with [`VmOps::install`].
    fn fault(data: &Self::Data, fault: &Fault<'_>) -> FaultOutcome;
}

/// The page offset (in pages into the file) where `vma` starts.
pub(crate) fn vma_pgoff(vma: &VmaRef) -> usize {
    // SAFETY: `vma` is a live VMA (a `&VmaRef` guarantees that the mmap or
    // VMA read lock is held), and `vm_pgoff` only changes under the write lock.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// The length of `vma` in pages.
pub(crate) fn vma_pages(vma: &VmaRef) -> usize {
    (vma.end() - vma.start()) >> PAGE_SHIFT
}

/// A page fault being handled.
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a fault in progress on `vma`, which has
/// `VM_MIXEDMAP` set; both are valid for `'a`.
pub(crate) struct Fault<'a> {
    vmf: *mut bindings::vm_fault,
    vma: &'a VmaMixedMap,
}

impl<'a> Fault<'a> {
    fn raw(&self) -> &bindings::vm_fault__bindgen_ty_1 {
        // SAFETY: `vmf` is valid for `'a` (type invariant); the first part of
        // a `struct vm_fault` is constant while the fault is handled.
        unsafe { &(*self.vmf).__bindgen_anon_1 }
    }

    /// The VMA that faulted.
    pub(crate) fn vma(&self) -> &'a VmaMixedMap {
        self.vma
    }

    /// The file page offset of the faulting address.
    pub(crate) fn pgoff(&self) -> usize {
        self.raw().pgoff
    }

    /// The page-aligned user address that faulted.
    pub(crate) fn address(&self) -> usize {
        self.raw().address
    }

    /// Whether the access was a write.
    pub(crate) fn is_write(&self) -> bool {
        // SAFETY: `vmf` is valid (type invariant); `flags` is read-only here.
        let flags = unsafe { (*self.vmf).flags };
        flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// Maps `page` at the faulting address.
    ///
    /// With `write` on a shared mapping the entry is made writable and dirty
    /// at once. A private mapping always gets a read-only entry, whatever
    /// `write` says: the write is retried and the core copies the page, so a
    /// `MAP_PRIVATE` write never reaches `page`.
    pub(crate) fn insert_page(&self, page: &Page, write: bool) -> FaultOutcome {
        let shared = self.vma.flags() & flags::SHARED != 0;
        // SAFETY: `vmf` is a fault in progress (type invariant) and `page` is
        // a live page that the caller keeps allocated while it is mapped;
        // `vmf_insert_page_mkwrite` takes its own reference to it.
        let raw =
            unsafe { bindings::vmf_insert_page_mkwrite(self.vmf, page.as_ptr(), write && shared) };
        FaultOutcome::from_raw(raw)
    }
}

/// Pages handed to one `vm_insert_pages` call by [`insert_pages`]: an array
/// of page pointers on the stack (512 bytes), so that no fault allocates.
const INSERT_BATCH: usize = 64;

/// Maps `count` pages at consecutive pages of `vma` from user address `addr`;
/// the page for the `i`-th is `page_at(i)`.
///
/// Pages whose entry is already present (a racing fault, an earlier batch)
/// are skipped. Returns how many were inserted, or the error that stopped
/// the batch: `EINVAL` when `page_at` has no page, `EFAULT` if the range is
/// not inside `vma`, `ENOMEM`.
///
/// No memory is allocated here (beyond the page tables the core may need):
/// the page pointers go through a fixed array on the stack, [`INSERT_BATCH`]
/// at a time, each batch one `vm_insert_pages` call, which takes the PTE lock
/// once per 8 pages.
///
/// The entries get the VMA's protection: writable only for a shared writable
/// mapping, so private mappings keep copy-on-write.
pub(crate) fn insert_pages<'p>(
    vma: &VmaMixedMap,
    addr: usize,
    count: usize,
    mut page_at: impl FnMut(usize) -> Option<BorrowedPage<'p>>,
) -> Result<usize> {
    let mut raw = [core::ptr::null_mut::<bindings::page>(); INSERT_BATCH];
    let mut inserted = 0;
    // Pages of the current batch before `done` are mapped or skipped.
    let mut done = 0;
    while done < count {
        let n = (count - done).min(INSERT_BATCH);
        for (i, slot) in raw[..n].iter_mut().enumerate() {
            // The pointer outlives the `BorrowedPage`, not the page: it is
            // borrowed for `'p`, which spans this whole call.
            *slot = page_at(done + i).ok_or(EINVAL)?.as_ptr();
        }
        let mut batch_done = 0;
        while batch_done < n {
            let mut remaining: usize = n - batch_done;
            // SAFETY: `vma` has `VM_MIXEDMAP` set and its mmap or VMA lock is
            // held by our caller (`&VmaMixedMap`); `raw[batch_done..n]` are
            // live pages, borrowed for `'p` (longer than this call);
            // `vm_insert_pages` only reads that many entries, checks that the
            // range lies inside `vma` and takes a reference to each page it
            // maps, so a mapped page stays allocated until it is unmapped.
            let ret = unsafe {
                bindings::vm_insert_pages(
                    vma.as_ptr(),
                    addr + (done + batch_done) * PAGE_SIZE,
                    raw[batch_done..].as_mut_ptr(),
                    &mut remaining,
                )
            };
            let mapped = n - batch_done - remaining;
            inserted += mapped;
            batch_done += mapped;
            match ret {
                0 if remaining == 0 => {}
                // Not something `vm_insert_pages` does; never loop on it.
                0 => return Err(EIO),
                // The entry at `batch_done` is present already: skip it.
                e if e == -(bindings::EBUSY as i32) => batch_done += 1,
                e => return Err(Error::from_errno(e)),
            }
        }
        done += n;
    }
    Ok(inserted)
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
/// and it maps with `vm_insert_pages`/`vmf_insert_page_mkwrite` on a VMA that
/// already has `VM_MIXEDMAP`, which take the page-table locks themselves and
/// allocate page tables the way the anonymous fault path does under the same
/// lock. Copy-on-write of a private mapping is the core's `do_cow_fault`/
/// `do_wp_page`, which handle the VMA lock themselves.
///
/// [`VmOps::install`] takes `map_pages` to choose, so that `mapdrv bench`
/// can show the difference in one run (debugfs `mapdrv/map_pages`).
pub(crate) struct VmOps<H>(PhantomData<H>);

impl<H: FaultHandler> VmOps<H> {
    /// With `.map_pages`: faults are handled under the per-VMA lock.
    const OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        map_pages: Some(Self::map_pages),
        ..pin_init::zeroed()
    };

    /// Without `.map_pages`: each fault is retried under `mmap_lock`.
    const OPS_FAULT_ONLY: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        ..pin_init::zeroed()
    };

    /// Makes `vma` use `H` on faults, with `data` as the handler's data;
    /// with `map_pages`, through the operations that have a (no-op)
    /// `.map_pages`, so that faults are handled under the per-VMA lock.
    ///
    /// Sets `VM_MIXEDMAP` too (the fault path inserts pages with
    /// `vm_insert_pages`, which needs it) and returns the VMA as such.
    ///
    /// # Safety
    ///
    /// `data` must stay valid for as long as the VMA or any VMA copied or
    /// split from it exists. A VMA keeps a reference to its file until it is
    /// gone, so data owned by the file's private data qualifies.
    pub(crate) unsafe fn install<'a>(
        vma: &'a VmaNew,
        data: &H::Data,
        map_pages: bool,
    ) -> &'a VmaMixedMap {
        let mixed = vma.set_mixedmap();
        let raw = vma.as_ptr();
        // SAFETY: `vma` is being set up by `mmap` with the mmap write lock
        // held, so nobody else reads these fields yet; `OPS` is a static
        // vtable and the caller guarantees that `data` outlives the VMA.
        unsafe {
            (*raw).vm_private_data = core::ptr::from_ref(data).cast_mut().cast();
            (*raw).vm_ops = if map_pages {
                &Self::OPS
            } else {
                &Self::OPS_FAULT_ONLY
            };
        }
        mixed
    }

    /// # Safety
    ///
    /// Called by the core for a fault on a VMA set up by [`Self::install`].
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: The core passes a valid fault in progress on a live VMA,
        // with the mmap read lock or the VMA read lock held.
        let vma = unsafe { (*vmf).__bindgen_anon_1.vma };
        // SAFETY: `vma` is live and locked (above); `install` set
        // `VM_MIXEDMAP` on it, and the flag is never cleared.
        let vma = unsafe { VmaMixedMap::from_raw(vma) };
        // SAFETY: `install` stored a `&H::Data` that outlives the VMA.
        let data = unsafe { &*(*vma.as_ptr()).vm_private_data.cast::<H::Data>() };
        // INVARIANT: `vmf` is a fault in progress on `vma`, which is mixedmap.
        let fault = Fault { vmf, vma };
        H::fault(data, &fault).into_raw()
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
