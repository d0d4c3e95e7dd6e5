// SPDX-License-Identifier: GPL-2.0

//! Our walk of the x86_64 kernel page tables, the classic `map_driver.c`'s
//! `vaddress_to_kaddress()` redone by reading the tables the CPU itself
//! reads: from CR3 through PGD, P4D (only with 5-level paging), PUD, PMD and
//! PTE, stopping early at a 1 GiB or 2 MiB leaf. Here are the entry bits, the
//! level names, the CR3/CR4 reads, the run-time physical-address mask and
//! the direct map (`__va()`) the walk reads the tables through; the result's
//! shape is the seam's (`arch/walk.rs`). The load cross-checks every walk
//! against the kernel's `vmalloc_to_pfn()` and, through
//! [`kernel_lookup_pfn`], `lookup_address()`.

use super::globals::{kernel_pgdir_shift, page_offset_base, physical_mask};
use crate::arch::{globals::high_memory, Decoded, DirectMap, NotMapped, PageWalk, Paging, Step};
use kernel::fmt;
use kernel::{bindings, page::PAGE_SHIFT};

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
        Self::with_physical_mask(physical_mask())
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

/// The most entries a walk reads: one per level of 5-level paging.
pub(crate) const MAX_LEVELS: usize = 5;

impl Level {
    /// The level a walk starts from.
    pub(crate) const TOP: Level = Level::Pgd;

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

/// The paging mode for the load's check and log: 4 or 5 levels, as CR4.LA57
/// says the CPU walks them, which must be what the kernel set up at boot
/// (its `pgdir_shift`) for our walk's PGD index to be the kernel's.
pub(crate) fn paging() -> Result<Paging, PagingMismatch> {
    let five_level = five_level_paging();
    let pgdir_shift = kernel_pgdir_shift();
    if Level::Pgd.shift(five_level) != pgdir_shift {
        return Err(PagingMismatch {
            five_level,
            pgdir_shift,
        });
    }
    Ok(Paging {
        levels: levels(five_level).len(),
        va_bits: if five_level { 57 } else { 48 },
    })
}

/// CR4.LA57 and the kernel's `pgdir_shift` disagree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PagingMismatch {
    five_level: bool,
    pgdir_shift: u32,
}

impl fmt::Display for PagingMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CR4.LA57 says {}-level paging but the kernel's pgdir_shift is {}",
            if self.five_level { 5 } else { 4 },
            self.pgdir_shift
        )
    }
}

/// The names of an entry's bits for the log of a walk: none on x86_64,
/// whose raw entries the log has always shown alone.
pub(crate) fn entry_bits(_step: &Step) -> impl fmt::Display {
    ""
}

/// The running kernel's direct map of RAM: every physical page of RAM at
/// `page_offset_base + phys` (`__va()`), up to `high_memory`.
pub(crate) fn direct_map() -> DirectMap {
    DirectMap {
        base: page_offset_base(),
        end: high_memory(),
        phys_offset: 0,
    }
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
    // The tables are read through the direct map of RAM: a table address
    // outside it would mean the entry holds bits this walk does not know (a
    // memory-encryption bit, say), and it must not be read.
    let direct_map = DirectMap::current();
    // CR3 holds the physical address of the top-level table; its low 12 bits
    // are the PCID and bit 63 the no-flush hint, neither part of the address.
    let mask = AddrMask::current();
    // (With SME, CR3 carries the encryption bit too.) Read once: the entry
    // reported for the top level is the value the walk started from.
    let cr3 = read_cr!("cr3");
    let mut table_phys = mask.of(cr3);
    let mut steps = [None; MAX_LEVELS];
    let mut entry = cr3;
    for (depth, &level) in levels(five_level).iter().enumerate() {
        let index = level.index(addr, five_level);
        let Some(table) = direct_map.addr_of_phys(table_phys) else {
            return Err(NotMapped { level, entry });
        };
        let slot = table as *const u64;
        // SAFETY: Every page-table page is ordinary memory, so it lies in the
        // direct map at `page_offset_base + phys`, which `addr_of_phys` just
        // checked to be inside the direct map of RAM; `index` is below 512,
        // so the read stays inside the 4 KiB table. The caller guarantees the
        // tables of `addr` stay in place; the read is volatile because the
        // CPU may still set accessed bits in the entry at any time.
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

/// The kernel function [`kernel_lookup_pfn`] asks, as messages name it.
pub(crate) const KERNEL_LOOKUP: &str = "lookup_address";

/// The PFN behind the kernel address `addr` as the kernel's own lookup of
/// the leaf entry (`lookup_address()`) finds it, decoded like our walk's
/// leaf; `None` when it finds no page.
///
/// # Safety
///
/// As for [`walk`]: `addr` must be mapped by a kernel mapping whose page
/// tables are not freed during the call.
pub(crate) unsafe fn kernel_lookup_pfn(addr: usize) -> Option<u64> {
    let mut level: u32 = 0;
    // SAFETY: `lookup_address` only reads the kernel page tables; `addr`
    // is mapped (the caller's guarantee), so it returns the leaf entry,
    // which stays valid as long as that mapping does.
    let pte = unsafe { bindings::lookup_address(addr, &mut level) };
    if pte.is_null() {
        return None;
    }
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
        let last_page = (high_memory() - page_offset_base() - 1) as u64 & !0xfff;
        assert_eq!(mask.of(last_page), last_page);
    }
}
