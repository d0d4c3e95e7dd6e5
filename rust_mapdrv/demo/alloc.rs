// SPDX-License-Identifier: GPL-2.0

//! The demo's raw allocators, the one place in the demo that calls the C
//! allocators and reads memory by address: owned types whose constructors
//! allocate and whose `Drop` frees ([`PageBlock`] from `alloc_pages`,
//! [`FreePages`] from `__get_free_pages`, [`SlabCache`] and its
//! [`SlabObject`]s), and [`Held`], a borrow of direct-map memory that one of
//! them (or a `KBox`, `KVec` or `Page`) keeps allocated, whose page-table
//! walk is therefore safe. Everything offered here is safe; the rest of the
//! demo writes no `unsafe` and calls no bindings.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    alloc::kvec::VVec,
    bindings,
    ffi::c_void,
    page::{BorrowedPage, Page, PAGE_SIZE},
    prelude::*,
};

use super::gfp::Gfp;
use crate::arch::{self, PageWalk};
use crate::vmalloc_util::{self, WalkMismatch};

/// `MAX_PAGE_ORDER`: the largest block the buddy allocator has (10: 4 MiB).
pub(crate) const MAX_ORDER: u32 = bindings::MAX_PAGE_ORDER;

/// The PFN of a page from `alloc_page`.
pub(crate) fn page_pfn(page: &Page) -> u64 {
    arch::page_to_pfn(page.as_ptr())
}

/// The direct-map address of the page frame `pfn`, if it has one (a
/// highmem page of 32-bit ARM has none).
fn direct_map_addr(pfn: u64) -> Option<usize> {
    arch::DirectMap::current().addr_of_pfn(pfn)
}

/// Direct-map memory `[vaddr, vaddr + size)` that stays allocated for `'a`:
/// made only from a borrow of an owner that keeps it so.
///
/// # Invariants
///
/// The range (empty when `size` is 0, and then never walked) is direct-map memory (kmalloc, slab or page
/// allocator memory) that is not freed during `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Held<'a> {
    vaddr: usize,
    size: usize,
    _owner: PhantomData<&'a ()>,
}

impl<'a> Held<'a> {
    /// The memory of a `kmalloc` allocation of `size` bytes at `ptr`.
    fn kmalloc(ptr: *const u8, size: usize) -> Self {
        // INVARIANT: The callers pass a live kmalloc allocation that they
        // borrow for `'a` (or, with no bytes, a pointer never walked);
        // kmalloc memory is in the direct map.
        Self {
            vaddr: ptr as usize,
            size,
            _owner: PhantomData,
        }
    }

    /// The object in `obj`.
    pub(crate) fn kbox<T>(obj: &'a KBox<T>) -> Self {
        Self::kmalloc(
            core::ptr::from_ref::<T>(obj).cast(),
            core::mem::size_of::<T>(),
        )
    }

    /// The elements of `v` (its length, not its capacity).
    pub(crate) fn kvec<T>(v: &'a KVec<T>) -> Self {
        Self::kmalloc(v.as_ptr().cast(), core::mem::size_of_val(&v[..]))
    }

    /// The page `page`, through its direct-map address; `None` for a
    /// highmem page, which has none.
    pub(crate) fn page(page: &'a Page) -> Option<Self> {
        // INVARIANT: One page of RAM, in the direct map (just found there),
        // kept allocated by the borrow of `page`.
        Some(Self {
            vaddr: direct_map_addr(page_pfn(page))?,
            size: PAGE_SIZE,
            _owner: PhantomData,
        })
    }

    /// The first address.
    pub(crate) fn vaddr(&self) -> usize {
        self.vaddr
    }

    /// Our page-table walk for `addr`; `None` outside the memory or where
    /// the walk found it unmapped.
    pub(crate) fn walk(&self, addr: usize) -> Option<PageWalk> {
        if addr < self.vaddr || addr - self.vaddr >= self.size {
            return None;
        }
        // SAFETY: `addr` lies in memory that is allocated during `'a` (type
        // invariant), which outlives this call. Such memory stays in the
        // direct map, whose page tables are only ever split, never freed,
        // while it is in use: memory hot-remove cannot offline pages in use,
        // and the page-table collapse of `set_memory_rox` works on the
        // module area only.
        unsafe { arch::walk(addr) }.ok()
    }
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
    pub(crate) fn alloc(gfp: Gfp, order: u32) -> Result<Self> {
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

    pub(crate) fn pfn(&self) -> u64 {
        arch::page_to_pfn(self.page.as_ptr())
    }

    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    pub(crate) fn pages(&self) -> usize {
        1 << self.order
    }

    /// The block's direct-map address, if it has one (a block from
    /// highmem has none).
    pub(crate) fn vaddr(&self) -> Option<usize> {
        direct_map_addr(self.pfn())
    }

    /// The block's memory, through its direct-map address, if it has one.
    pub(crate) fn held(&self) -> Option<Held<'_>> {
        // INVARIANT: The block is RAM, in the direct map (just found there;
        // a block is physically contiguous and lowmem is one range, so all
        // of it), and ours until dropped, which the borrow of `self`
        // prevents.
        Some(Held {
            vaddr: self.vaddr()?,
            size: PAGE_SIZE << self.order,
            _owner: PhantomData,
        })
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
pub(crate) struct FreePages {
    addr: usize,
    order: u32,
}

impl FreePages {
    /// `__get_free_pages(gfp, order)`.
    pub(crate) fn get(gfp: Gfp, order: u32) -> Result<Self> {
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

    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    pub(crate) fn order(&self) -> u32 {
        self.order
    }

    /// The block's memory.
    pub(crate) fn held(&self) -> Held<'_> {
        // INVARIANT: `__get_free_pages` returns direct-map memory, ours
        // until dropped, which the borrow of `self` prevents.
        Held {
            vaddr: self.addr,
            size: PAGE_SIZE << self.order,
            _owner: PhantomData,
        }
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
pub(crate) struct SlabCache {
    cache: NonNull<bindings::kmem_cache>,
}

impl SlabCache {
    /// A cache of `size`-byte objects, aligned to cache lines and never
    /// merged with another cache of the same geometry (so that it is really
    /// ours, with its own line in `/proc/slabinfo`).
    pub(crate) fn new(name: &'static core::ffi::CStr, size: u32) -> Result<Self> {
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
    pub(crate) fn alloc(&self, gfp: Gfp) -> Result<SlabObject<'_>> {
        // SAFETY: The cache is live (type invariant).
        let obj = unsafe { bindings::kmem_cache_alloc_noprof(self.cache.as_ptr(), gfp) };
        Ok(SlabObject {
            cache: self,
            obj: NonNull::new(obj).ok_or(ENOMEM)?,
        })
    }

    /// The size of one object with its alignment (`kmem_cache_size`).
    pub(crate) fn object_size(&self) -> u32 {
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
pub(crate) struct SlabObject<'a> {
    cache: &'a SlabCache,
    obj: NonNull<c_void>,
}

impl SlabObject<'_> {
    pub(crate) fn addr(&self) -> usize {
        self.obj.as_ptr() as usize
    }

    /// The object's memory.
    pub(crate) fn held(&self) -> Held<'_> {
        // INVARIANT: Slab memory is in the direct map; the object is ours
        // until dropped, which the borrow of `self` prevents, and has the
        // cache's object size.
        Held {
            vaddr: self.addr(),
            size: self.cache.object_size() as usize,
            _owner: PhantomData,
        }
    }
}

impl Drop for SlabObject<'_> {
    fn drop(&mut self) {
        // SAFETY: The object came from this live cache and is freed once.
        unsafe { bindings::kmem_cache_free(self.cache.cache.as_ptr(), self.obj.as_ptr()) };
    }
}

/// How [`read_through_alias`] reached a vmalloc page the second time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Alias {
    /// Through its direct-map address (`PAGE_OFFSET + pfn * 4096`, less
    /// `PHYS_OFFSET`): a lowmem page.
    DirectMap,
    /// Through a temporary `kmap_local_page()` mapping in the fixmap: a
    /// highmem page, which has no direct-map address (32-bit ARM).
    KmapLocal,
}

/// Page `index` of the vmalloc allocation `v`: our checked walk of it, and
/// the `u64` at the start of the page read through a second mapping of the
/// same memory: its direct-map alias, or for a highmem page a
/// `kmap_local_page()` of it.
pub(crate) fn read_through_alias(
    v: &VVec<u8>,
    index: usize,
) -> Result<(PageWalk, u64, Alias), WalkMismatch> {
    let walk = vmalloc_util::walk_vvec_page(v, index)?;
    if let Some(alias) = direct_map_addr(walk.pfn) {
        // SAFETY: `alias` is the direct-map address of page `index` of `v`
        // (PFN from the checked walk, which found the page in the
        // allocation); vmalloc allocates whole pages, and the borrow of `v`
        // keeps them allocated. It is page aligned, so aligned for a u64,
        // and nothing writes the page meanwhile (`v` is not borrowed
        // mutably).
        let seen = unsafe { core::ptr::read_volatile(alias as *const u64) };
        return Ok((walk, seen, Alias::DirectMap));
    }
    let addr = v.as_ptr() as usize + index * PAGE_SIZE;
    // SAFETY: `addr` is in page `index` of the live allocation (the walk
    // found it there), which the borrow of `v` keeps mapped.
    let page = NonNull::new(unsafe { bindings::vmalloc_to_page(addr as *const _) })
        .ok_or(WalkMismatch::NO_PAGE)?;
    // SAFETY: `page` is the `struct page` of page `index` of `v`, which the
    // borrow of `v` keeps allocated for the borrowed page's life (this
    // call).
    let page = unsafe { BorrowedPage::from_raw(page) };
    let mut seen = [0u8; 8];
    // SAFETY: `seen` is valid for writes of its 8 bytes, and the page is
    // not written meanwhile (`v` is not borrowed mutably).
    unsafe { page.read_raw(seen.as_mut_ptr(), 0, seen.len()) }
        .map_err(|_| WalkMismatch::NO_PAGE)?;
    Ok((walk, u64::from_ne_bytes(seen), Alias::KmapLocal))
}
