// SPDX-License-Identifier: GPL-2.0

//! The vmalloc buffer behind `/dev/mapdrv`, and our own walk of the kernel
//! page tables that finds the physical page behind each of its addresses.
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
//! [`walk`] does step 1 in Rust, by reading the tables the CPU itself reads:
//! from CR3 through PGD, P4D (only with 5-level paging), PUD, PMD and PTE, and
//! stops early at a 1 GiB or 2 MiB leaf. Step 2 is the PFN the leaf entry
//! holds (the index of the `struct page` in the memory map), and step 3 is
//! `page_offset_base + (pfn << PAGE_SHIFT)`, the direct-map alias of the same
//! physical page. [`VmallocBuffer::walk_page`] cross-checks the result with the
//! kernel's own answers (`vmalloc_to_pfn()` and `lookup_address()`).

use core::ptr::NonNull;
use kernel::{
    alloc::kvec::VVec,
    bindings,
    iov::{IovIterDest, IovIterSource},
    page::{BorrowedPage, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
};

use crate::uapi::MAX_PAGES;

/// Bits 12..=51 of an x86_64 page-table entry: the physical address of the
/// next table or of the page (`PTE_PFN_MASK` with 52 physical address bits),
/// before the run-time mask of [`AddrMask`].
const ENTRY_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The bits of an entry that are the physical address, as the kernel's
/// `PTE_PFN_MASK` sees them: bits 12..=51 less those the kernel keeps out of
/// physical addresses at run time. With memory encryption an address bit is
/// an attribute: AMD SME/SEV set their encryption bit (`sme_me_mask`, e.g.
/// bit 47 or 51) in every entry, including CR3, and Intel TDX guests a
/// shared bit; the kernel removes those from `physical_mask` at boot
/// (`CONFIG_DYNAMIC_PHYSICAL_MASK`). Without masking them off, the walk would
/// look for the next table far outside the direct map.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct AddrMask(u64);

impl AddrMask {
    /// The mask for a kernel's `physical_mask`.
    pub(crate) const fn with_physical_mask(physical_mask: u64) -> Self {
        Self(ENTRY_ADDR_MASK & physical_mask)
    }

    /// The running kernel's mask.
    pub(crate) fn current() -> Self {
        #[cfg(CONFIG_DYNAMIC_PHYSICAL_MASK)]
        // SAFETY: `physical_mask` is `__ro_after_init`: set during early boot,
        // before any module loads, and only read afterwards.
        let physical_mask = unsafe { bindings::physical_mask };
        // Without run-time changes it is all 52 physical address bits.
        #[cfg(not(CONFIG_DYNAMIC_PHYSICAL_MASK))]
        let physical_mask = u64::MAX;
        Self::with_physical_mask(physical_mask)
    }

    /// The address bits of `entry`.
    pub(crate) fn of(self, entry: u64) -> u64 {
        entry & self.0
    }
}
/// `_PAGE_PRESENT`.
const ENTRY_PRESENT: u64 = 1 << 0;
/// `_PAGE_PSE`: in a PUD or PMD entry, the entry maps a 1 GiB or 2 MiB page.
const ENTRY_HUGE: u64 = 1 << 7;
/// Entries per table at every level on x86_64.
const ENTRIES_PER_TABLE: usize = 512;
/// CR4.LA57: 5-level paging is on.
const CR4_LA57: u64 = 1 << 12;

/// A level of the x86_64 page tables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    /// The top-level table that CR3 points to.
    Pgd,
    /// The fourth level, present only with 5-level paging.
    P4d,
    /// Page upper directory; an entry may map a 1 GiB page.
    Pud,
    /// Page middle directory; an entry may map a 2 MiB page.
    Pmd,
    /// Page table; its entries map 4 KiB pages.
    Pte,
}

impl Level {
    /// The name the kernel uses for the level.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Pgd => "pgd",
            Level::P4d => "p4d",
            Level::Pud => "pud",
            Level::Pmd => "pmd",
            Level::Pte => "pte",
        }
    }

    /// The lowest virtual-address bit that indexes a table of this level.
    ///
    /// With 4-level paging the P4D is folded into the PGD, which then covers
    /// what the P4D would: the PGD is indexed by bits 39..=47.
    pub(crate) fn shift(self, five_level: bool) -> u32 {
        match self {
            Level::Pgd if five_level => 48,
            Level::Pgd | Level::P4d => 39,
            Level::Pud => 30,
            Level::Pmd => 21,
            Level::Pte => 12,
        }
    }

    /// The index of `addr` in a table of this level.
    pub(crate) fn index(self, addr: usize, five_level: bool) -> usize {
        (addr >> self.shift(five_level)) & (ENTRIES_PER_TABLE - 1)
    }

    /// Whether an entry of this level can map a page itself (a leaf).
    fn may_be_leaf(self) -> bool {
        matches!(self, Level::Pud | Level::Pmd | Level::Pte)
    }
}

/// The levels a walk goes through, top down.
pub(crate) fn levels(five_level: bool) -> &'static [Level] {
    if five_level {
        &[Level::Pgd, Level::P4d, Level::Pud, Level::Pmd, Level::Pte]
    } else {
        &[Level::Pgd, Level::Pud, Level::Pmd, Level::Pte]
    }
}

/// What an entry read at some level tells the walk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Decoded {
    /// The entry is not present: the address is not mapped.
    NotPresent,
    /// The entry points to the next table, at this physical address.
    Table(u64),
    /// The entry maps the address; this is the PFN of its 4 KiB page.
    Leaf(u64),
}

/// Decodes `entry`, read at `level` while walking `addr`.
///
/// For a huge leaf the PFN is that of the 4 KiB page of `addr` inside the
/// huge page, so that all levels answer the same question. `mask` says which
/// bits are the address ([`AddrMask::current`] for the running kernel).
pub(crate) fn decode_entry(level: Level, entry: u64, addr: usize, mask: AddrMask) -> Decoded {
    if entry & ENTRY_PRESENT == 0 {
        return Decoded::NotPresent;
    }
    let huge = matches!(level, Level::Pud | Level::Pmd) && entry & ENTRY_HUGE != 0;
    if level == Level::Pte || huge {
        // A huge entry's address is aligned to the page size; the bits below
        // it hold flags (bit 12 is PAT), so mask them off.
        let page_bits = level.shift(false);
        let base = mask.of(entry) & !((1u64 << page_bits) - 1);
        let within = (addr as u64 & ((1u64 << page_bits) - 1)) >> PAGE_SHIFT;
        return Decoded::Leaf((base >> PAGE_SHIFT) + within);
    }
    Decoded::Table(mask.of(entry))
}

/// One step of a walk: the entry read at a level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    /// The level of the table read.
    pub(crate) level: Level,
    /// The index of the entry in that table.
    pub(crate) index: usize,
    /// The raw entry.
    pub(crate) entry: u64,
}

/// The result of walking the page tables for one address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageWalk {
    /// The entries read, top down (four with 4-level paging, fewer when a
    /// huge leaf ends the walk early).
    pub(crate) steps: [Option<Step>; 5],
    /// The level that mapped the address.
    pub(crate) leaf: Level,
    /// The page frame number of the 4 KiB page behind the address.
    pub(crate) pfn: u64,
}

/// Why a walk found no page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NotMapped {
    /// The level where the walk stopped.
    pub(crate) level: Level,
    /// The entry that stopped it: not present, or pointing to a table
    /// outside the direct map of RAM (which the walk refuses to read).
    pub(crate) entry: u64,
}

/// Reads a control register of the CPU.
macro_rules! read_cr {
    ($cr:literal) => {{
        let value: u64;
        // SAFETY: Reading a control register has no side effects; this code
        // runs in ring 0, where the instruction is allowed.
        unsafe {
            core::arch::asm!(
                concat!("mov {}, ", $cr),
                out(reg) value,
                options(nomem, nostack, preserves_flags)
            )
        };
        value
    }};
}

/// Whether the CPU runs with 5-level paging (CR4.LA57).
pub(crate) fn five_level_paging() -> bool {
    read_cr!("cr4") & CR4_LA57 != 0
}

/// The kernel's base of the direct map (`PAGE_OFFSET`, randomised by KASLR).
pub(crate) fn page_offset_base() -> usize {
    // SAFETY: `page_offset_base` is written once during early boot and only
    // read afterwards.
    unsafe { bindings::page_offset_base }
}

/// The end of the direct map of RAM (`high_memory`).
pub(crate) fn direct_map_end() -> usize {
    // SAFETY: `high_memory` is set once during early boot.
    unsafe { bindings::high_memory as usize }
}

/// The PGD shift the kernel chose at boot (39 for 4-level, 48 for 5-level).
pub(crate) fn kernel_pgdir_shift() -> u32 {
    // SAFETY: `pgdir_shift` is written once during early boot.
    unsafe { bindings::pgdir_shift }
}

/// Walks the page tables the CPU uses now for the kernel address `addr`.
///
/// # Safety
///
/// `addr` must be mapped by a kernel mapping (such as a live vmalloc area,
/// or the direct map of pages the caller holds) whose page tables are not
/// freed during the call.
pub(crate) unsafe fn walk(addr: usize) -> Result<PageWalk, NotMapped> {
    let five_level = five_level_paging();
    let direct_map = page_offset_base();
    // CR3 holds the physical address of the top-level table; its low 12 bits
    // are the PCID and bit 63 the no-flush hint, neither part of the address.
    let mask = AddrMask::current();
    // (With SME, CR3 carries the encryption bit too.)
    let mut table_phys = mask.of(read_cr!("cr3"));
    // The end of the direct map of RAM: a table address past it would mean
    // the entry holds bits this walk does not know (a memory-encryption bit,
    // say), and it must not be read.
    let direct_map_end = direct_map_end();
    let mut steps = [None; 5];
    let mut entry = read_cr!("cr3");
    for (depth, &level) in levels(five_level).iter().enumerate() {
        let index = level.index(addr, five_level);
        let table = direct_map.wrapping_add(table_phys as usize);
        if table < direct_map || table >= direct_map_end {
            return Err(NotMapped { level, entry });
        }
        let slot = table as *const u64;
        // SAFETY: Every page-table page is ordinary memory, so it lies in the
        // direct map at `page_offset_base + phys`, which was just checked to
        // be inside the direct map of RAM; `index` is below 512, so the read
        // stays inside the 4 KiB table. The caller guarantees the tables of
        // `addr` stay in place; the read is volatile because the CPU may
        // still set accessed bits in the entry at any time.
        entry = unsafe { slot.add(index).read_volatile() };
        steps[depth] = Some(Step {
            level,
            index,
            entry,
        });
        match decode_entry(level, entry, addr, mask) {
            Decoded::NotPresent => return Err(NotMapped { level, entry }),
            Decoded::Leaf(pfn) if level.may_be_leaf() => {
                return Ok(PageWalk {
                    steps,
                    leaf: level,
                    pfn,
                })
            }
            // PSE in a PGD or P4D entry is reserved; treat it as a table.
            Decoded::Leaf(_) => table_phys = mask.of(entry),
            Decoded::Table(next) => table_phys = next,
        }
    }
    // The PTE level always decodes to a leaf or to not-present.
    Err(NotMapped {
        level: Level::Pte,
        entry: 0,
    })
}

/// Pages a loop over the buffer handles between two `cond_resched()` calls
/// (2 MiB of pages: tens of microseconds of work).
pub(crate) const PAGES_PER_RESCHED: usize = 512;

/// In a loop over every page (at load, where sleeping is allowed): lets the
/// scheduler in after each [`PAGES_PER_RESCHED`] pages.
pub(crate) fn resched_every(index: usize) {
    if index % PAGES_PER_RESCHED == PAGES_PER_RESCHED - 1 {
        crate::sched::cond_resched();
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
/// [`VmallocBuffer::new_zeroed`] returns.
pub(crate) struct VmallocBuffer {
    ptr: NonNull<u8>,
    pages: usize,
    /// The `struct page` of each page, looked up once at allocation, so that
    /// a fault finds its pages by index instead of walking the kernel page
    /// tables with `vmalloc_to_page` for each (8 bytes per 4 KiB page). The
    /// kernel keeps the same array in the area's `vm_struct`, but
    /// `find_vm_area` is not exported to modules.
    page_ptrs: KVVec<NonNull<bindings::page>>,
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
    pub(crate) fn new_zeroed(pages: usize) -> Result<Self> {
        if pages == 0 || pages > MAX_PAGES {
            return Err(EINVAL);
        }
        let size = pages * PAGE_SIZE;
        let gfp = bindings::GFP_KERNEL
            | bindings::__GFP_ZERO
            | bindings::__GFP_NOWARN
            | (1 << bindings::___GFP_RETRY_MAYFAIL_BIT);
        // SAFETY: A NULL pointer asks for a new allocation; `PAGE_SIZE` is a
        // valid alignment and `size` is not zero.
        let raw = unsafe {
            bindings::vrealloc_node_align(
                core::ptr::null(),
                size,
                PAGE_SIZE,
                gfp,
                bindings::NUMA_NO_NODE,
            )
        };
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ENOMEM)?;
        // From here on an error drops `buffer`, which frees the allocation.
        let mut buffer = Self {
            ptr,
            pages,
            page_ptrs: KVVec::new(),
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
        Ok(buffer)
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
    ///
    /// An array lookup: the fault path calls it for every page it maps.
    pub(crate) fn page(&self, index: usize) -> Option<BorrowedPage<'_>> {
        let page = *self.page_ptrs.get(index)?;
        // SAFETY: `page` is the `struct page` of page `index` of our live
        // allocation (type invariant), which is freed only when `self` is
        // dropped, after the returned borrow of `self` ends.
        Some(unsafe { BorrowedPage::from_raw(page) })
    }

    /// The PFN of page `index` as the kernel's `vmalloc_to_pfn()` sees it.
    pub(crate) fn kernel_pfn(&self, index: usize) -> Option<u64> {
        let addr = self.page_vaddr(index)?;
        // SAFETY: `addr` is inside the live vmalloc allocation of `self`.
        Some(unsafe { bindings::vmalloc_to_pfn(addr as *const _) } as u64)
    }

    /// Our own page-table walk for page `index`, checked against the
    /// kernel's `vmalloc_to_pfn()` and `lookup_address()`.
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
/// `vmalloc_to_pfn()` and `lookup_address()`.
///
/// # Safety
///
/// `addr` must lie in a vmalloc area that stays mapped during the call;
/// vmalloc never frees the page tables of a live area.
unsafe fn walk_checked(addr: usize) -> Result<PageWalk, WalkMismatch> {
    // SAFETY: The caller guarantees that `addr` is mapped by a live vmalloc
    // area.
    let walked = unsafe { walk(addr) };
    // SAFETY: As above; `vmalloc_to_pfn` only reads the page tables.
    let kernel_pfn = unsafe { bindings::vmalloc_to_pfn(addr as *const _) } as u64;
    let mut level: u32 = 0;
    // SAFETY: `lookup_address` only reads the kernel page tables; `addr`
    // is mapped, so it returns the leaf entry, which stays valid as long
    // as our area is mapped.
    let pte = unsafe { bindings::lookup_address(addr, &mut level) };
    let lookup_pfn = if pte.is_null() {
        None
    } else {
        // SAFETY: `pte` points to the live leaf entry of `addr` (above).
        let entry = unsafe { (*pte).pte } as u64;
        // `level` is PG_LEVEL_4K (1), PG_LEVEL_2M (2) or PG_LEVEL_1G (3).
        let leaf = match level {
            3 => Level::Pud,
            2 => Level::Pmd,
            _ => Level::Pte,
        };
        match decode_entry(leaf, entry, addr, AddrMask::current()) {
            Decoded::Leaf(pfn) => Some(pfn),
            _ => None,
        }
    };
    match walked {
        Ok(w) if w.pfn == kernel_pfn && lookup_pfn == Some(w.pfn) => Ok(w),
        _ => Err(WalkMismatch {
            walked: walked.map(|w| w.pfn),
            vmalloc_to_pfn: kernel_pfn,
            lookup_address: lookup_pfn,
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
    /// The kernel's `lookup_address()`, decoded.
    pub(crate) lookup_address: Option<u64>,
}

impl WalkMismatch {
    /// The answer for a page outside the allocation.
    const NO_PAGE: Self = Self {
        walked: Err(NotMapped {
            level: Level::Pgd,
            entry: 0,
        }),
        vmalloc_to_pfn: 0,
        lookup_address: None,
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
        match self.lookup_address {
            Some(pfn) => write!(f, ", lookup_address says pfn {pfn:#x}"),
            None => write!(f, ", lookup_address found no page"),
        }
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_walk)]
mod tests {
    use super::*;

    // A real walk from a 5-level guest: vmalloc address 0xffa00000000fe000
    // went through pgd[416], p4d[0], pud[0], pmd[0] and pte[254].
    const SAMPLE_ADDR: usize = 0xffa0_0000_000f_e000;

    #[test]
    fn indices_five_level() {
        let expected = [416, 0, 0, 0, 254];
        assert_eq!(levels(true).len(), expected.len());
        for (level, want) in levels(true).iter().zip(expected) {
            assert_eq!(level.index(SAMPLE_ADDR, true), want);
        }
    }

    #[test]
    fn indices_four_level() {
        // With 4-level paging the same address bits 39..=47 index the PGD.
        assert_eq!(levels(false).len(), 4);
        assert_eq!(Level::Pgd.index(0xffff_c900_0000_0000, false), 402);
        assert_eq!(Level::Pud.index(0xffff_c900_4000_0000, false), 1);
        assert_eq!(Level::Pmd.index(0xffff_c900_0040_0000, false), 2);
        assert_eq!(Level::Pte.index(0xffff_c900_0000_3000, false), 3);
    }

    /// No run-time mask: all 52 address bits.
    const ALL: AddrMask = AddrMask::with_physical_mask(u64::MAX);

    #[test]
    fn decode_pte_and_tables() {
        // NX, global, dirty, accessed, RW, present; PFN 0xc00.
        assert_eq!(
            decode_entry(Level::Pte, 0x8000_0000_00c0_0163, 0, ALL),
            Decoded::Leaf(0xc00)
        );
        assert_eq!(decode_entry(Level::Pte, 0, 0, ALL), Decoded::NotPresent);
        assert_eq!(
            decode_entry(Level::Pmd, 0x0000_0000_0015_1067, 0, ALL),
            Decoded::Table(0x15_1000)
        );
        // Bits 52..=62 (software, protection keys) are not address bits.
        assert_eq!(
            decode_entry(Level::Pud, 0x7ff0_0000_0015_0067, 0, ALL),
            Decoded::Table(0x15_0000)
        );
        assert_eq!(
            decode_entry(Level::Pgd, 0x0000_0000_0010_0066, 0, ALL),
            Decoded::NotPresent
        );
    }

    #[test]
    fn decode_huge_leaves() {
        // A 2 MiB page at 0x20_0000 with PAT (bit 12) set: the PFN of the
        // 4 KiB page 5 pages into it.
        assert_eq!(
            decode_entry(
                Level::Pmd,
                0x0000_0000_0020_10e3,
                0xffff_0000_0000_5000,
                ALL
            ),
            Decoded::Leaf(0x200 + 5)
        );
        // A 1 GiB page at 0x4000_0000, address 0x1234_5678 into it.
        assert_eq!(
            decode_entry(
                Level::Pud,
                0x0000_0000_4000_00e3,
                0xffff_0000_1234_5678,
                ALL
            ),
            Decoded::Leaf(0x4_0000 + 0x1_2345)
        );
    }

    #[test]
    fn decode_masks_memory_encryption_bits() {
        // AMD SME with the encryption bit at 47: the kernel's
        // physical_mask is then 2^47 - 1, and the bit is in every entry.
        let sme = AddrMask::with_physical_mask((1 << 47) - 1);
        let c_bit = 1u64 << 47;
        assert_eq!(
            decode_entry(Level::Pmd, c_bit | 0x15_1067, 0, sme),
            Decoded::Table(0x15_1000)
        );
        assert_eq!(
            decode_entry(Level::Pte, 0x8000_0000_00c0_0163 | c_bit, 0, sme),
            Decoded::Leaf(0xc00)
        );
        assert_eq!(
            decode_entry(Level::Pmd, c_bit | 0x20_10e3, 0xffff_0000_0000_5000, sme),
            Decoded::Leaf(0x200 + 5)
        );
        // Unmasked, the same entry points far outside RAM: the walk used to
        // stop there (and insmod failed with EIO).
        assert_eq!(
            decode_entry(Level::Pmd, c_bit | 0x15_1067, 0, ALL),
            Decoded::Table(0x8000_0015_1000)
        );
        // An Intel TDX guest's shared bit (here 51, the top address bit).
        let tdx = AddrMask::with_physical_mask((1 << 51) - 1);
        assert_eq!(
            decode_entry(
                Level::Pud,
                (1 << 51) | 0x4000_00e3,
                0xffff_0000_1234_5678,
                tdx
            ),
            Decoded::Leaf(0x4_0000 + 0x1_2345)
        );
        // Not-present stays not-present whatever the mask.
        assert_eq!(decode_entry(Level::Pte, c_bit, 0, sme), Decoded::NotPresent);
    }

    #[test]
    fn current_mask_keeps_every_ram_address_bit() {
        // Our VMs have no memory encryption: the running kernel's mask is
        // all 52 bits, or (with CONFIG_DYNAMIC_PHYSICAL_MASK) a subset that
        // still covers every address in the direct map.
        let mask = AddrMask::current();
        let last_page = (direct_map_end() - page_offset_base() - 1) as u64 & !0xfff;
        assert_eq!(mask.of(last_page), last_page);
    }
}
