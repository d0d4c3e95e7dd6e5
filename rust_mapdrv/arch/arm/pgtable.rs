// SPDX-License-Identifier: GPL-2.0

//! Our walk of the 32-bit ARM kernel page tables (ARMv7 short descriptors,
//! `CONFIG_ARM_LPAE` off): the classic `map_driver.c`'s
//! `vaddress_to_kaddress()` on the tables the documents describe, two
//! levels, read as the MMU reads them.
//!
//! The hardware has a first-level table of 4096 word-sized entries, one per
//! MiB: a fault, a *section* (1 MiB mapped at once: the kernel maps lowmem
//! with them), a *supersection* (16 MiB, in 16 identical entries) or a
//! pointer to a second-level table of 256 word entries, one per 4 KiB page.
//! Linux pairs them (`arch/arm/include/asm/pgtable-2level.h`): its `pgd_t`
//! is two hardware entries (2 MiB, `PGDIR_SHIFT` 21, 2048 entries; the
//! `pmd` is folded into it), and a page-table page of 4 KiB holds the two
//! hardware tables of the pair in its upper half and, in its lower half,
//! Linux's own *software* PTEs for the same 512 pages: the hardware PTE has
//! no young, dirty or "user" bits, so Linux keeps them beside it
//! (`L_PTE_*`) and `set_pte_ext()` writes both.
//!
//! So a step here reads more than one word, and its raw entry is wider
//! than what the hardware reads: the `pgd` step's entry is Linux's
//! `pgd_t`, both hardware first-level entries of the pair (the even MiB's in
//! the low word, the odd one's in the high word); the `pte` step's entry is
//! the hardware PTE in the low word and Linux's PTE in the high word.
//!
//! Where the walk starts: TTBR0, the register the MMU starts from for every
//! address when TTBCR.N is 0, as Linux sets it (the kernel's
//! `cpu_get_pgd()`): the current task's first-level table, whose kernel part
//! is a copy of `init_mm`'s. Entries of the vmalloc area reach that copy
//! lazily (the translation fault that first touches a new area copies the
//! entry from `init_mm`, `vmalloc_fault()`), so an address nothing on this
//! CPU's task has touched yet may not be in it; the load's cross-check
//! walks the buffer after filling it.
//!
//! The load cross-checks every walk against the kernel's `vmalloc_to_pfn()`
//! and, through [`kernel_lookup_pfn`], the MMU's own answer (`ATS1CPR`, the
//! stage-1 PL1 read translation).

use super::layout::{PAGE_OFFSET, TASK_SIZE};
use crate::arch::{globals::high_memory, Decoded, DirectMap, NotMapped, PageWalk, Paging, Step};
use kernel::{fmt, page::PAGE_SHIFT};

#[cfg(CONFIG_ARM_LPAE)]
compile_error!("rust_mapdrv walks the classic two-level ARM tables only (CONFIG_ARM_LPAE off)");

/// A first-level descriptor's type, bits 1..=0: a fault, a pointer to a
/// second-level table, or a section (bit 1; bit 0 is then PXN).
const L1_TYPE_MASK: u32 = 0b11;
const L1_TYPE_TABLE: u32 = 0b01;
const L1_SECTION: u32 = 0b10;
/// A table descriptor's PXN (bit 2), domain (bits 8..=5), and the table's
/// address (bits 31..=10: second-level tables are 1 KiB).
const L1_TABLE_PXN: u32 = 1 << 2;
const L1_DOMAIN_SHIFT: u32 = 5;
const L1_TABLE_ADDR: u32 = !0x3ff;
/// A section's attributes: B, C (bits 2, 3), XN (4), AP[1:0] (11..=10),
/// TEX (14..=12), APX (15), S (16), nG (17), and bit 18, which makes it a
/// supersection.
const SECT_PXN: u32 = 1 << 0;
const SECT_B: u32 = 1 << 2;
const SECT_C: u32 = 1 << 3;
const SECT_XN: u32 = 1 << 4;
const SECT_AP_SHIFT: u32 = 10;
const SECT_TEX_SHIFT: u32 = 12;
const SECT_APX: u32 = 1 << 15;
const SECT_S: u32 = 1 << 16;
const SECT_NG: u32 = 1 << 17;
const SECT_SUPER: u32 = 1 << 18;
/// A section maps 1 MiB, a supersection 16 MiB.
const SECTION_SHIFT: u32 = 20;
const SUPERSECTION_SHIFT: u32 = 24;

/// A second-level descriptor's type, bits 1..=0: a fault, a 64 KiB large
/// page (0b01; Linux does not use them), or a 4 KiB small page (bit 1; bit
/// 0 is then XN).
const L2_TYPE_MASK: u32 = 0b11;
const L2_LARGE: u32 = 0b01;
const L2_SMALL: u32 = 0b10;
const L2_XN: u32 = 1 << 0;
const L2_B: u32 = 1 << 2;
const L2_C: u32 = 1 << 3;
const L2_AP_SHIFT: u32 = 4;
const L2_TEX_SHIFT: u32 = 6;
const L2_APX: u32 = 1 << 9;
const L2_S: u32 = 1 << 10;
const L2_NG: u32 = 1 << 11;
const LARGE_PAGE_SHIFT: u32 = 16;

/// Linux's software PTE bits (`L_PTE_*`): present, young, the memory type
/// (bits 5..=2), dirty, read-only, user, XN, shared, none.
const L_PTE_PRESENT: u32 = 1 << 0;
const L_PTE_YOUNG: u32 = 1 << 1;
const L_PTE_MT_SHIFT: u32 = 2;
const L_PTE_DIRTY: u32 = 1 << 6;
const L_PTE_RDONLY: u32 = 1 << 7;
const L_PTE_USER: u32 = 1 << 8;
const L_PTE_XN: u32 = 1 << 9;
const L_PTE_SHARED: u32 = 1 << 10;

/// Linux's PTEs for the 512 pages of a page-table page fill its first
/// half; the hardware tables of the pair its second (`PTE_HWTABLE_OFF`).
const PTRS_PER_PTE: usize = 512;
const PTE_HWTABLE_OFF: usize = PTRS_PER_PTE * 4;
/// The first-level table has 4096 entries (16 KiB), TTBR0's table address
/// is 16 KiB-aligned (TTBCR.N 0).
const TTBR_TABLE: u32 = !0x3fff;
/// TTBCR.EAE: the long-descriptor (LPAE) format; TTBCR.N: the split
/// between TTBR0 and TTBR1.
const TTBCR_EAE: u32 = 1 << 31;
const TTBCR_N_MASK: u32 = 0b111;

/// Reads a CP15 register of the CPU (`mrc p15, 0, <reg>, ...`).
macro_rules! read_cp15 {
    ($crn:literal, $crm:literal, $op2:literal) => {{
        let value: u32;
        // SAFETY: Reading TTBR0 or TTBCR has no side effects and is allowed
        // at PL1, where the kernel runs.
        unsafe {
            core::arch::asm!(
                concat!("mrc p15, 0, {}, ", $crn, ", ", $crm, ", ", $op2),
                out(reg) value,
                options(nomem, nostack, preserves_flags)
            )
        };
        value
    }};
}

/// A level of the 32-bit ARM tables, by the kernel's names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    /// The first level: a Linux `pgd_t` is a pair of hardware entries (its
    /// `p4d`, `pud` and `pmd` are folded into it); the one of the address
    /// may be a section or a supersection.
    Pgd,
    /// The second level: a 4 KiB page.
    Pte,
}

/// The most entries a walk reads: one per level.
pub(crate) const MAX_LEVELS: usize = 2;

impl Level {
    /// The level a walk starts from.
    pub(crate) const TOP: Level = Level::Pgd;

    /// The name the kernel uses for the level.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Pgd => "pgd",
            Level::Pte => "pte",
        }
    }

    /// The index of `addr` in a table of this level, as Linux counts: 2048
    /// `pgd_t` pairs of 2 MiB, 512 PTEs per page-table page.
    pub(crate) fn index(self, addr: usize) -> usize {
        match self {
            Level::Pgd => addr >> 21,
            Level::Pte => (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1),
        }
    }
}

/// The hardware first-level entry of `addr` in the `pgd_t` pair `pgd`.
fn first_level_of(pgd: u64, addr: usize) -> u32 {
    (pgd >> (32 * ((addr >> SECTION_SHIFT) & 1))) as u32
}

/// What a hardware first-level entry is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FirstLevel {
    /// Nothing mapped: the MMU faults.
    Fault,
    /// The physical address of a 1 KiB second-level table.
    Table(u64),
    /// A 1 MiB section at this physical address.
    Section(u64),
    /// A 16 MiB supersection at this physical address (with its bits
    /// 39..=32 from the entry's extended address fields).
    Supersection(u64),
}

impl FirstLevel {
    /// Decodes the hardware first-level entry `desc`.
    pub(crate) fn of(desc: u32) -> Self {
        if desc & L1_SECTION != 0 {
            if desc & SECT_SUPER != 0 {
                // PA[31:24] in bits 31..=24, PA[35:32] in 23..=20, PA[39:36]
                // in 8..=5.
                let low = u64::from(desc & 0xff00_0000);
                let high = u64::from((desc >> 20) & 0xf) | (u64::from((desc >> 5) & 0xf) << 4);
                FirstLevel::Supersection(low | (high << 32))
            } else {
                FirstLevel::Section(u64::from(desc & 0xfff0_0000))
            }
        } else if desc & L1_TYPE_MASK == L1_TYPE_TABLE {
            FirstLevel::Table(u64::from(desc & L1_TABLE_ADDR))
        } else {
            FirstLevel::Fault
        }
    }
}

/// The hardware PTE of a `pte` step's entry.
fn hw_pte(entry: u64) -> u32 {
    entry as u32
}

/// Linux's software PTE of a `pte` step's entry.
fn linux_pte(entry: u64) -> u32 {
    (entry >> 32) as u32
}

/// A `pte` step's entry: the hardware PTE low, Linux's high.
pub(crate) fn pte_entry(hw: u32, linux: u32) -> u64 {
    u64::from(hw) | (u64::from(linux) << 32)
}

/// Decodes `entry`, read at `level` while walking `addr`: what the MMU
/// does with it. For a section or supersection, and a 64 KiB large page,
/// the PFN is that of the 4 KiB page of `addr` inside it, so that all
/// levels answer the same question.
pub(crate) fn decode_entry(level: Level, entry: u64, addr: usize) -> Decoded {
    let within = |shift: u32| ((addr as u64) & ((1 << shift) - 1)) >> PAGE_SHIFT;
    match level {
        Level::Pgd => match FirstLevel::of(first_level_of(entry, addr)) {
            FirstLevel::Fault => Decoded::NotPresent,
            FirstLevel::Table(phys) => Decoded::Table(phys),
            FirstLevel::Section(base) => {
                Decoded::Leaf((base >> PAGE_SHIFT) + within(SECTION_SHIFT))
            }
            FirstLevel::Supersection(base) => {
                Decoded::Leaf((base >> PAGE_SHIFT) + within(SUPERSECTION_SHIFT))
            }
        },
        Level::Pte => {
            let hw = hw_pte(entry);
            match hw & L2_TYPE_MASK {
                0 => Decoded::NotPresent,
                L2_LARGE => Decoded::Leaf(
                    (u64::from(hw & 0xffff_0000) >> PAGE_SHIFT) + within(LARGE_PAGE_SHIFT),
                ),
                _ => Decoded::Leaf(u64::from(hw & 0xffff_f000) >> PAGE_SHIFT),
            }
        }
    }
}

/// An entry's bits by name, as the log of page 0's walk shows them after
/// the raw value.
pub(crate) struct EntryBits {
    level: Level,
    index: usize,
    entry: u64,
}

/// The names of the bits of a walk's entry.
pub(crate) fn entry_bits(step: &Step) -> EntryBits {
    EntryBits {
        level: step.level,
        index: step.index,
        entry: step.entry,
    }
}

/// A hardware first-level entry by name.
struct FirstLevelBits(u32);

impl core::fmt::Display for FirstLevelBits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = self.0;
        let flag = |bit: u32| u8::from(d & bit != 0);
        match FirstLevel::of(d) {
            FirstLevel::Fault => f.write_str("fault"),
            FirstLevel::Table(phys) => write!(
                f,
                "table l2={phys:#x} domain={} PXN={}",
                (d >> L1_DOMAIN_SHIFT) & 0xf,
                flag(L1_TABLE_PXN)
            ),
            kind => {
                let (name, base) = match kind {
                    FirstLevel::Supersection(base) => ("supersection", base),
                    FirstLevel::Section(base) => ("section", base),
                    _ => ("", 0),
                };
                write!(f, "{name} pa={base:#x}")?;
                if matches!(kind, FirstLevel::Section(_)) {
                    write!(f, " domain={}", (d >> L1_DOMAIN_SHIFT) & 0xf)?;
                }
                write!(
                    f,
                    " AP={:#04b} APX={} TEX={:#05b} C={} B={} S={} nG={} XN={} PXN={}",
                    (d >> SECT_AP_SHIFT) & 0b11,
                    flag(SECT_APX),
                    (d >> SECT_TEX_SHIFT) & 0b111,
                    flag(SECT_C),
                    flag(SECT_B),
                    flag(SECT_S),
                    flag(SECT_NG),
                    flag(SECT_XN),
                    flag(SECT_PXN)
                )
            }
        }
    }
}

impl fmt::Display for EntryBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Level::Pgd => write!(
                f,
                " pair: hw[{}]: {}; hw[{}]: {}",
                2 * self.index,
                FirstLevelBits(self.entry as u32),
                2 * self.index + 1,
                FirstLevelBits((self.entry >> 32) as u32)
            ),
            Level::Pte => {
                let hw = hw_pte(self.entry);
                let flag = |bit: u32| u8::from(hw & bit != 0);
                match hw & L2_TYPE_MASK {
                    0 => f.write_str(" hw: fault")?,
                    t => {
                        // XN is bit 0 of a small page (whose type is bit 1),
                        // bit 15 of a large one.
                        let xn = if t == L2_LARGE {
                            hw & (1 << 15) != 0
                        } else {
                            hw & L2_XN != 0
                        };
                        write!(
                        f,
                        " hw: {} pa={:#x} AP={:#04b} APX={} TEX={:#05b} C={} B={} S={} nG={} XN={}",
                        if t == L2_LARGE { "large page" } else { "small page" },
                        if t == L2_LARGE { hw & 0xffff_0000 } else { hw & 0xffff_f000 },
                        (hw >> L2_AP_SHIFT) & 0b11,
                        flag(L2_APX),
                        (hw >> L2_TEX_SHIFT) & 0b111,
                        flag(L2_C),
                        flag(L2_B),
                        flag(L2_S),
                        flag(L2_NG),
                        u8::from(xn)
                    )?
                    }
                }
                let l = linux_pte(self.entry);
                let lflag = |bit: u32| u8::from(l & bit != 0);
                write!(
                    f,
                    "; linux: {:#010x} present={} young={} dirty={} rdonly={} user={} xn={} shared={} mt={:#06b}",
                    l,
                    lflag(L_PTE_PRESENT),
                    lflag(L_PTE_YOUNG),
                    lflag(L_PTE_DIRTY),
                    lflag(L_PTE_RDONLY),
                    lflag(L_PTE_USER),
                    lflag(L_PTE_XN),
                    lflag(L_PTE_SHARED),
                    (l >> L_PTE_MT_SHIFT) & 0xf
                )
            }
        }
    }
}

/// The paging mode for the load's check and log: two levels of short
/// descriptors, all of the 32-bit address space from TTBR0.
pub(crate) fn paging() -> Result<Paging, PagingMismatch> {
    let ttbcr = read_cp15!("c2", "c0", "2");
    if ttbcr & TTBCR_EAE != 0 {
        return Err(PagingMismatch::LongDescriptors);
    }
    if ttbcr & TTBCR_N_MASK != 0 {
        return Err(PagingMismatch::Split(ttbcr & TTBCR_N_MASK));
    }
    Ok(Paging {
        levels: MAX_LEVELS,
        va_bits: 32,
    })
}

/// What TTBCR says that our walk cannot follow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PagingMismatch {
    /// TTBCR.EAE: the MMU reads LPAE's long descriptors.
    LongDescriptors,
    /// TTBCR.N is not 0: TTBR1 translates the top of the address space.
    Split(u32),
}

impl fmt::Display for PagingMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PagingMismatch::LongDescriptors => f.write_str(
                "TTBCR.EAE says the long-descriptor (LPAE) format, but our walk reads short descriptors",
            ),
            PagingMismatch::Split(n) => write!(
                f,
                "TTBCR.N is {n}: TTBR1 translates the top of the address space, but our walk starts from TTBR0"
            ),
        }
    }
}

/// The running kernel's direct map of RAM (lowmem): physical address
/// `phys` at `PAGE_OFFSET + (phys - PHYS_OFFSET)` (`__va()`), up to
/// `high_memory`. RAM above it is highmem, with no direct-map address.
pub(crate) fn direct_map() -> DirectMap {
    DirectMap {
        base: PAGE_OFFSET,
        end: high_memory(),
        phys_offset: super::globals::phys_offset(),
    }
}

/// Reads the 32-bit word at the physical address `phys` of a page table
/// through the direct map, or `None` if it is not in lowmem.
///
/// # Safety
///
/// `phys` must be the address of a word of a page table that stays in
/// place during the call.
unsafe fn read_table_word(direct_map: DirectMap, phys: u64) -> Option<u32> {
    let addr = direct_map.addr_of_phys(phys)?;
    // SAFETY: `addr` is in the direct map of RAM (just checked), so it is
    // mapped; the caller guarantees that it is a word of a page table that
    // stays in place. Page tables are word-aligned. The read is volatile
    // because the kernel may change the entry at any time.
    Some(unsafe { (addr as *const u32).read_volatile() })
}

/// Walks the page tables the MMU uses now for the kernel address `addr`.
///
/// # Safety
///
/// `addr` must be mapped by a kernel mapping (such as a live vmalloc area,
/// or the direct map of pages the caller holds) whose page tables are not
/// freed during the call.
pub(crate) unsafe fn walk(addr: usize) -> Result<PageWalk, NotMapped> {
    let refused = |level| Err(NotMapped { level, entry: 0 });
    if addr < TASK_SIZE || paging().is_err() {
        // A user address (its tables may be in highmem, and are the task's
        // own), or tables this walk cannot read.
        return refused(Level::Pgd);
    }
    // The tables are read through the direct map of RAM: a table outside it
    // would mean the entry holds bits this walk does not know.
    let direct_map = direct_map();
    let ttbr0 = read_cp15!("c2", "c0", "0");
    let pgd_phys = u64::from(ttbr0 & TTBR_TABLE) + (Level::Pgd.index(addr) * 8) as u64;
    // SAFETY: The first-level table TTBR0 points to is the current task's
    // (or `swapper_pg_dir`), in place while this task runs; its pair for
    // `addr` is two words, inside the 16 KiB table since the index is below
    // 2048. The caller keeps the tables of `addr` in place.
    let (Some(even), Some(odd)) = (unsafe { read_table_word(direct_map, pgd_phys) }, unsafe {
        read_table_word(direct_map, pgd_phys + 4)
    }) else {
        return refused(Level::Pgd);
    };
    let pgd = u64::from(even) | (u64::from(odd) << 32);
    let mut steps = [None; MAX_LEVELS];
    steps[0] = Some(Step {
        level: Level::Pgd,
        index: Level::Pgd.index(addr),
        entry: pgd,
    });
    let l2_phys = match decode_entry(Level::Pgd, pgd, addr) {
        Decoded::NotPresent => {
            return Err(NotMapped {
                level: Level::Pgd,
                entry: pgd,
            })
        }
        Decoded::Leaf(pfn) => {
            return Ok(PageWalk {
                steps,
                leaf: Level::Pgd,
                pfn,
            })
        }
        Decoded::Table(phys) => phys,
    };
    let index = Level::Pte.index(addr);
    // The hardware PTE the MMU reads: in the 1 KiB table of the address's
    // MiB, 256 entries. Linux's PTE: in the first half of the same page,
    // when the table is where Linux puts it (the page's second half).
    let hw_phys = l2_phys + (((addr >> PAGE_SHIFT) & 0xff) * 4) as u64;
    let linux_phys =
        (l2_phys as usize & PTE_HWTABLE_OFF != 0).then(|| (l2_phys & !0xfff) + (index * 4) as u64);
    // SAFETY: `hw_phys` is a word of the second-level table the first-level
    // entry points to (the index is below 256), which the caller keeps in
    // place.
    let Some(hw) = (unsafe { read_table_word(direct_map, hw_phys) }) else {
        return Err(NotMapped {
            level: Level::Pgd,
            entry: pgd,
        });
    };
    // SAFETY: `linux_phys` is a word of the first half of the same
    // page-table page (the index is below 512), in place as above.
    let linux = linux_phys
        .and_then(|p| unsafe { read_table_word(direct_map, p) })
        .unwrap_or(0);
    let entry = pte_entry(hw, linux);
    steps[1] = Some(Step {
        level: Level::Pte,
        index,
        entry,
    });
    match decode_entry(Level::Pte, entry, addr) {
        Decoded::Leaf(pfn) => Ok(PageWalk {
            steps,
            leaf: Level::Pte,
            pfn,
        }),
        _ => Err(NotMapped {
            level: Level::Pte,
            entry,
        }),
    }
}

/// PAR: bit 0, the translation faulted; bit 1, it was a supersection.
const PAR_F: u32 = 1 << 0;
const PAR_SS: u32 = 1 << 1;

/// The physical address of the page the MMU translates the kernel address
/// `addr` to now (`ATS1CPR`, a stage-1 read translation at PL1), or `None`
/// if the translation faults.
///
/// Safe for any address: the translation does not access the address,
/// cannot fault, and only writes PAR, which this reads back before anything
/// else on this CPU can use it.
pub(crate) fn mmu_translate(addr: usize) -> Option<u64> {
    let par: u32;
    // SAFETY: `ATS1CPR` (`mcr p15, 0, <va>, c7, c8, 0`) translates without
    // accessing `addr` or raising an exception; it and the PAR read run with
    // IRQs and FIQs masked (CPSR saved and restored around them) so that no
    // interrupt handler's own translation can replace PAR in between. The
    // `isb` (emitted by its encoding: the kernel's Rust target is ARMv6,
    // whose assembler lacks the mnemonic; this kernel runs on ARMv7) makes
    // the translation's result visible to the PAR read. The block touches
    // no memory and restores every register it changes but its outputs.
    unsafe {
        core::arch::asm!(
            "mrs {flags}, cpsr",
            "cpsid if",
            "mcr p15, 0, {addr}, c7, c8, 0",
            ".inst 0xf57ff06f",
            "mrc p15, 0, {par}, c7, c4, 0",
            "msr cpsr_c, {flags}",
            addr = in(reg) addr,
            flags = out(reg) _,
            par = lateout(reg) par,
            options(nostack, preserves_flags)
        )
    };
    if par & PAR_F != 0 {
        return None;
    }
    let pa = if par & PAR_SS != 0 {
        // PA[31:24] in bits 31..=24, PA[39:32] in bits 23..=16.
        u64::from(par & 0xff00_0000)
            | (u64::from((par >> 16) & 0xff) << 32)
            | (addr as u64 & 0x00ff_f000)
    } else {
        u64::from(par & 0xffff_f000)
    };
    Some(pa)
}

/// The kernel function [`kernel_lookup_pfn`] asks, as messages name it: on
/// 32-bit ARM, the MMU's own translation.
pub(crate) const KERNEL_LOOKUP: &str = "ATS1CPR";

/// The PFN behind the kernel address `addr` as the MMU translates it
/// (`ATS1CPR`): a second opinion that shares nothing with our walk or with
/// `vmalloc_to_pfn()`; `None` when the translation faults.
///
/// # Safety
///
/// None needed by the translation itself (see [`mmu_translate`]); the
/// seam's contract is kept: `addr` is mapped by a kernel mapping whose page
/// tables are not freed during the call, so that the answer is meaningful.
pub(crate) unsafe fn kernel_lookup_pfn(addr: usize) -> Option<u64> {
    mmu_translate(addr).map(|pa| pa >> PAGE_SHIFT)
}

#[kernel::macros::kunit_tests(rust_mapdrv_arm_walk)]
mod tests {
    use super::*;

    #[test]
    fn indices() {
        // 2 MiB per pgd_t, 512 PTEs per page-table page.
        assert_eq!(Level::Pgd.index(0xc000_0000), 0x600);
        assert_eq!(Level::Pgd.index(0xf080_3000), 0x784);
        assert_eq!(Level::Pte.index(0xf080_3000), 0x003);
        // The odd MiB of a pair: PTEs 256..=511 of the page.
        assert_eq!(Level::Pte.index(0xf090_3000), 0x103);
    }

    #[test]
    fn first_level_kinds() {
        // A lowmem section: 1 MiB at 0x40100000, AP=0b01 (kernel RW), S.
        let section = 0x4010_0000 | SECT_S | (0b01 << SECT_AP_SHIFT) | SECT_C | SECT_B | L1_SECTION;
        assert_eq!(FirstLevel::of(section), FirstLevel::Section(0x4010_0000));
        // A supersection with extended address bits: PA 0x12_3400_0000.
        let sup = 0x3400_0000 | (0x2 << 20) | (0x1 << 5) | SECT_SUPER | L1_SECTION;
        assert_eq!(
            FirstLevel::of(sup),
            FirstLevel::Supersection(0x12_3400_0000)
        );
        // A table: second-level table at 0x4f7f6c00, domain 0.
        assert_eq!(FirstLevel::of(0x4f7f_6c01), FirstLevel::Table(0x4f7f_6c00));
        // Type 0b11 is a section with PXN; 0 is a fault.
        assert_eq!(
            FirstLevel::of(0x4020_0003),
            FirstLevel::Section(0x4020_0000)
        );
        assert_eq!(FirstLevel::of(0), FirstLevel::Fault);
    }

    #[test]
    fn pairs_and_leaves() {
        // A pgd_t pair: the even MiB a section, the odd one a table.
        let pgd = u64::from(0x4010_0c0eu32) | (u64::from(0x4f7f_6c01u32) << 32);
        // (The even MiB of pgd_t 0x600 is 0xc0000000..0xc0100000.)
        assert_eq!(
            decode_entry(Level::Pgd, pgd, 0xc000_5000),
            Decoded::Leaf(0x40105)
        );
        assert_eq!(
            decode_entry(Level::Pgd, pgd, 0xc00f_f000),
            Decoded::Leaf(0x401ff)
        );
        assert_eq!(
            decode_entry(Level::Pgd, pgd, 0xc010_0000),
            Decoded::Table(0x4f7f_6c00)
        );
        // A supersection: the page of the address inside its 16 MiB.
        let sup = u64::from(0x4000_0000 | SECT_SUPER | L1_SECTION);
        assert_eq!(
            decode_entry(Level::Pgd, sup, 0xc0ab_c000),
            Decoded::Leaf(0x40abc)
        );
        // Small and large pages; the Linux half does not change the answer.
        let small = pte_entry(0x7f12_3000 | L2_SMALL | L2_XN, 0x7f12_3000 | L_PTE_PRESENT);
        assert_eq!(decode_entry(Level::Pte, small, 0), Decoded::Leaf(0x7f123));
        let large = pte_entry(0x7f12_0000 | L2_LARGE, 0);
        assert_eq!(
            decode_entry(Level::Pte, large, 0xf000_5000),
            Decoded::Leaf(0x7f125)
        );
        // A hardware fault with Linux bits set (a PROT_NONE-like entry) maps
        // nothing: the MMU reads only the hardware word.
        let none = pte_entry(0, 0x7f12_3000 | L_PTE_YOUNG);
        assert_eq!(decode_entry(Level::Pte, none, 0), Decoded::NotPresent);
    }

    #[test]
    fn direct_map_of_lowmem() {
        // 1 GiB of RAM at 0x40000000, 768 MiB of it lowmem.
        let dm = DirectMap {
            base: 0xc000_0000,
            end: 0xf000_0000,
            phys_offset: 0x4000_0000,
        };
        assert_eq!(dm.addr_of_phys(0x4123_4000), Some(0xc123_4000));
        assert_eq!(dm.phys_of(0xc123_4567), 0x4123_4567);
        // Highmem and memory below RAM have no direct-map address.
        assert_eq!(dm.addr_of_pfn(0x70000), None);
        assert_eq!(dm.addr_of_pfn(0x3ffff), None);
        assert_eq!(dm.addr_of_pfn(0x6ffff), Some(0xefff_f000));
    }
}
