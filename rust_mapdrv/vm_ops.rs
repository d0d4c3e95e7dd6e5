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
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
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

/// Maps `pages` at consecutive pages of `vma` from user address `addr`.
///
/// Pages whose entry is already present (a racing fault, an earlier batch)
/// are skipped. Returns how many were inserted, or the error that stopped
/// the batch (`EFAULT` if the range is not inside `vma`, `ENOMEM`).
///
/// The entries get the VMA's protection: writable only for a shared writable
/// mapping, so private mappings keep copy-on-write.
pub(crate) fn insert_pages(vma: &VmaMixedMap, addr: usize, pages: &[&Page]) -> Result<usize> {
    // `vm_insert_pages` takes an array of page pointers; batches bigger than
    // this are split, each chunk one call (one PTE lock per 8 pages inside).
    const CHUNK: usize = 32;
    let mut inserted = 0;
    let mut done = 0;
    while done < pages.len() {
        let n = (pages.len() - done).min(CHUNK);
        let mut raw = [core::ptr::null_mut::<bindings::page>(); CHUNK];
        for (slot, page) in raw.iter_mut().zip(&pages[done..done + n]) {
            *slot = page.as_ptr();
        }
        let mut remaining: usize = n;
        // SAFETY: `vma` has `VM_MIXEDMAP` set and its mmap or VMA lock is held
        // by our caller (`&VmaMixedMap`); `raw[..n]` are live pages that the
        // caller keeps allocated while they are mapped; `vm_insert_pages`
        // takes a reference to each page it maps and checks that the range
        // lies inside `vma`.
        let ret = unsafe {
            bindings::vm_insert_pages(
                vma.as_ptr(),
                addr + done * PAGE_SIZE,
                raw.as_mut_ptr(),
                &mut remaining,
            )
        };
        let mapped = n - remaining;
        inserted += mapped;
        done += mapped;
        match ret {
            0 => {}
            // The entry at `done` is present already: skip it.
            e if e == -(bindings::EBUSY as i32) => done += 1,
            e => return Err(Error::from_errno(e)),
        }
    }
    Ok(inserted)
}

/// The `vm_operations_struct` of the fault handler `H`.
pub(crate) struct VmOps<H>(PhantomData<H>);

impl<H: FaultHandler> VmOps<H> {
    const OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        ..pin_init::zeroed()
    };

    /// Makes `vma` use `H` on faults, with `data` as the handler's data.
    ///
    /// Sets `VM_MIXEDMAP` too (the fault path inserts pages with
    /// `vm_insert_pages`, which needs it) and returns the VMA as such.
    ///
    /// # Safety
    ///
    /// `data` must stay valid for as long as the VMA or any VMA copied or
    /// split from it exists. A VMA keeps a reference to its file until it is
    /// gone, so data owned by the file's private data qualifies.
    pub(crate) unsafe fn install<'a>(vma: &'a VmaNew, data: &H::Data) -> &'a VmaMixedMap {
        let mixed = vma.set_mixedmap();
        let raw = vma.as_ptr();
        // SAFETY: `vma` is being set up by `mmap` with the mmap write lock
        // held, so nobody else reads these fields yet; `OPS` is a static
        // vtable and the caller guarantees that `data` outlives the VMA.
        unsafe {
            (*raw).vm_private_data = core::ptr::from_ref(data).cast_mut().cast();
            (*raw).vm_ops = &Self::OPS;
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
}
