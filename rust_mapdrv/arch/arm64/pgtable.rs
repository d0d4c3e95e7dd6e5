// SPDX-License-Identifier: GPL-2.0

//! Our walk of the arm64 kernel page tables (the 4 KiB granule), the classic
//! `map_driver.c`'s `vaddress_to_kaddress()` redone by reading the tables the
//! MMU itself reads: from TTBR1_EL1 through three, four or five levels of
//! tables, stopping early at a 1 GiB (PUD) or 2 MiB (PMD) block. Here are the
//! descriptor bits, the level names, the system-register reads (TCR_EL1,
//! TTBR1_EL1, the `AT S1E1R` translation), and the linear map (`__va()`) the
//! walk reads the tables through; the result's shape is the seam's
//! (`arch/walk.rs`).
//!
//! How many levels: the kernel is built for `CONFIG_PGTABLE_LEVELS` and, with
//! 52-bit addresses (LPA2), folds the top level away at boot on a CPU without
//! LPA2 (`pgtable_l5_enabled()`/`pgtable_l4_enabled()` read `vabits_actual`,
//! which is TCR_EL1.T1SZ). The MMU walks as many levels as T1SZ and the
//! granule say, so the walk takes both from TCR_EL1 itself, at each walk: 39
//! bits are 3 levels, 48 bits 4, 52 bits 5 (the top table then has 16
//! entries). The table a walk starts from is the one the top level's
//! name, `pgd`, always names here, as on x86_64 where a folded P4D leaves the
//! PGD on top.
//!
//! Where the walk starts: TTBR1_EL1, the register the MMU starts from for
//! every kernel address (bit 55 set), as x86_64's walk starts from CR3. While
//! kernel code runs it holds `swapper_pg_dir` (with KPTI the trampoline's
//! table is only in place on the way to and from user space), and neither
//! `swapper_pg_dir` nor `init_mm` is exported to modules. Its other bits are
//! not the address: arm64 keeps the current ASID in TTBR1 (TCR_EL1.A1), bit
//! 0 is CnP, and with the 52-bit descriptor format bits 5..=2 hold address
//! bits 51..=48.
//!
//! The load cross-checks every walk against the kernel's `vmalloc_to_pfn()`
//! and, through [`kernel_lookup_pfn`], the MMU's own answer (`AT S1E1R`):
//! arm64 has no `lookup_address()`, and `vmalloc_to_page()` is the lookup
//! `vmalloc_to_pfn()` already makes.

use super::globals::memstart_addr;
use super::layout::{PAGE_OFFSET, VA_BITS, VA_BITS_MIN};
use crate::arch::{globals::high_memory, Decoded, DirectMap, NotMapped, PageWalk, Paging, Step};
use kernel::{
    fmt,
    page::{PAGE_SHIFT, PAGE_SIZE},
};

#[cfg(not(CONFIG_ARM64_4K_PAGES))]
compile_error!(
    "rust_mapdrv walks arm64 page tables with the 4 KiB granule only (CONFIG_ARM64_4K_PAGES)"
);

/// Bit 0 of every descriptor: the entry is valid (else the MMU faults).
const DESC_VALID: u64 = 1 << 0;
/// Bit 1: at levels 0..=2, a table (1) or a block (0); at level 3, a page
/// (1) or reserved (0, which faults like an invalid entry).
const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
/// AttrIndx, bits 4..=2: the MAIR_EL1 slot of the memory type.
const ATTR_INDX_SHIFT: u32 = 2;
/// AP[2:1], bits 7..=6: read-only (AP[2]) and EL0-accessible (AP[1]).
const AP_SHIFT: u32 = 6;
/// SH, bits 9..=8: shareability (with LPA2, address bits 51..=50 instead).
const SH_SHIFT: u32 = 8;
/// The access flag: clear, the first access faults (the kernel sets it).
const DESC_AF: u64 = 1 << 10;
/// Not global: the TLB entry belongs to one ASID.
const DESC_NG: u64 = 1 << 11;
/// Dirty bit modifier (the kernel's `PTE_WRITE`).
const DESC_DBM: u64 = 1 << 51;
/// The contiguous hint: one of a run of entries (16 pages, or 16 PMDs)
/// that map a contiguous, aligned range alike and may share one TLB entry.
/// It does not change what each entry translates to.
const DESC_CONT: u64 = 1 << 52;
/// Privileged (EL1) execute-never.
const DESC_PXN: u64 = 1 << 53;
/// Unprivileged (EL0) execute-never.
const DESC_UXN: u64 = 1 << 54;
/// The software bits 58..=55 (the kernel's dirty, special, ...).
const SW_SHIFT: u32 = 55;
/// A table descriptor's limits on what is below it: PXNTable, UXNTable,
/// APTable (bits 62..=61).
const TABLE_PXN: u64 = 1 << 59;
const TABLE_UXN: u64 = 1 << 60;
const TABLE_AP_SHIFT: u32 = 61;
/// The output-address bits of a descriptor, 49..=12 (the kernel's
/// `PTE_ADDR_LOW`; 49..=48 are zero without LPA2).
const OA_LOW: u64 = ((1 << 50) - 1) & !((1 << 12) - 1);
/// With the 52-bit (LPA2) format, address bits 51..=50 sit in bits 9..=8.
const OA_HIGH_LPA2: u64 = 0b11 << 8;
const OA_HIGH_LPA2_SHIFT: u32 = 42;

/// TCR_EL1.T1SZ, bits 21..=16: 64 minus the kernel half's address bits.
const TCR_T1SZ_SHIFT: u32 = 16;
/// TCR_EL1.TG1, bits 31..=30: the kernel half's granule; 0b10 is 4 KiB.
const TCR_TG1_SHIFT: u32 = 30;
const TCR_TG1_4K: u64 = 0b10;
/// TCR_EL1.DS: the 52-bit descriptor format of FEAT_LPA2.
const TCR_DS: u64 = 1 << 59;

/// TTBR1_EL1.BADDR, bits 47..=1 (above are the ASID; bit 0 is CnP).
const TTBR_BADDR: u64 = ((1 << 48) - 1) & !1;
/// With the 52-bit format: the table's bits 47..=6, and bits 51..=48 in
/// the register's bits 5..=2 (the kernel's `phys_to_ttbr()`).
const TTBR_BADDR_52_LOW: u64 = ((1 << 48) - 1) & !((1 << 6) - 1);
const TTBR_BADDR_52_HIGH_SHIFT: u32 = 2;

/// Address bits each level of tables resolves with 4 KiB tables of 8-byte
/// entries.
const BITS_PER_LEVEL: u32 = 9;

/// Reads a system register of the CPU.
macro_rules! read_sysreg {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: Reading TCR_EL1 or TTBR1_EL1 has no side effects; this
        // code runs at EL1 (or EL2 with VHE, where the same names reach the
        // EL2 registers the kernel runs on), where the read is allowed.
        unsafe {
            core::arch::asm!(
                concat!("mrs {}, ", $reg),
                out(reg) value,
                options(nomem, nostack, preserves_flags)
            )
        };
        value
    }};
}

/// A level of the arm64 page tables, by the kernel's names.
///
/// Which hardware level (-1..=3) a name is depends on how many levels the
/// tables have: the top is always `Pgd`, the kernel's folded levels are the
/// ones below it that are missing (`P4d` with four levels, `P4d` and `Pud`
/// with three).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    /// The table TTBR1_EL1 points to.
    Pgd,
    /// Level 0 under a level -1 PGD: present only with five levels.
    P4d,
    /// Level 1: an entry may map a 1 GiB block.
    Pud,
    /// Level 2: an entry may map a 2 MiB block.
    Pmd,
    /// Level 3: its entries map 4 KiB pages.
    Pte,
}

/// The most entries a walk reads: one per level of five-level tables.
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
}

/// How the MMU translates kernel addresses: the facts of TCR_EL1 a walk
/// depends on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Translation {
    /// The kernel half's address bits (`vabits_actual`: 64 - T1SZ).
    pub(crate) va_bits: u32,
    /// TCR_EL1.DS: the 52-bit (LPA2) descriptor and TTBR formats.
    pub(crate) lpa2: bool,
}

impl Translation {
    /// The translation TCR_EL1 `tcr` sets up, if this walk can follow it:
    /// the 4 KiB granule and 3 to 5 levels (31 to 52 address bits).
    pub(crate) fn from_tcr(tcr: u64) -> Result<Self, PagingMismatch> {
        let granule = (tcr >> TCR_TG1_SHIFT) & 0b11;
        if granule != TCR_TG1_4K {
            return Err(PagingMismatch::Granule(granule));
        }
        let va_bits = 64 - ((tcr >> TCR_T1SZ_SHIFT) & 0x3f) as u32;
        if !(31..=52).contains(&va_bits) {
            return Err(PagingMismatch::VaBits(va_bits));
        }
        Ok(Self {
            va_bits,
            lpa2: tcr & TCR_DS != 0,
        })
    }

    /// The translation the CPU runs with now.
    pub(crate) fn current() -> Result<Self, PagingMismatch> {
        Self::from_tcr(read_sysreg!("tcr_el1"))
    }

    /// The levels a walk goes through, top down (the kernel's
    /// `ARM64_HW_PGTABLE_LEVELS(va_bits)`: 3, 4 or 5).
    pub(crate) fn levels(self) -> &'static [Level] {
        match (self.va_bits - 4) / BITS_PER_LEVEL {
            5 => &[Level::Pgd, Level::P4d, Level::Pud, Level::Pmd, Level::Pte],
            4 => &[Level::Pgd, Level::Pud, Level::Pmd, Level::Pte],
            _ => &[Level::Pgd, Level::Pmd, Level::Pte],
        }
    }

    /// The architecture's number of `level`: -1 for a five-level PGD, 0, 1,
    /// 2 or 3 (the PTE).
    fn hw_level(self, level: Level) -> i32 {
        match level {
            Level::Pgd => 4 - self.levels().len() as i32,
            Level::P4d => 0,
            Level::Pud => 1,
            Level::Pmd => 2,
            Level::Pte => 3,
        }
    }

    /// The lowest address bit that indexes a table of this level, and so
    /// the size an entry of it maps (the kernel's
    /// `ARM64_HW_PGTABLE_LEVEL_SHIFT`): 48, 39, 30, 21, 12 for levels -1..=3.
    pub(crate) fn shift(self, level: Level) -> u32 {
        (BITS_PER_LEVEL as i32 * (4 - self.hw_level(level)) + 3) as u32
    }

    /// The index of `addr` in a table of this level. The top table has
    /// fewer entries when the address bits do not fill it (16 with 52 bits).
    pub(crate) fn index(self, level: Level, addr: usize) -> usize {
        let shift = self.shift(level);
        let bits = BITS_PER_LEVEL.min(self.va_bits - shift);
        (addr >> shift) & ((1 << bits) - 1)
    }

    /// Whether `addr` is one the kernel half's tables translate: bit 55
    /// selects TTBR1, and bits 55..=`va_bits` must all be set (the top byte
    /// may hold a tag, which TCR_EL1.TBI1 lets the MMU ignore).
    pub(crate) fn is_kernel_addr(self, addr: usize) -> bool {
        let high = (addr as u64 >> self.va_bits) & ((1 << (56 - self.va_bits)) - 1);
        high == (1 << (56 - self.va_bits)) - 1
    }

    /// The output address of a table, block or page descriptor.
    pub(crate) fn output_addr(self, entry: u64) -> u64 {
        let high = if self.lpa2 {
            (entry & OA_HIGH_LPA2) << OA_HIGH_LPA2_SHIFT
        } else {
            0
        };
        (entry & OA_LOW) | high
    }

    /// The physical address of the top-level table in TTBR1_EL1's value.
    pub(crate) fn ttbr_table(self, ttbr: u64) -> u64 {
        if self.lpa2 {
            let high = (ttbr >> TTBR_BADDR_52_HIGH_SHIFT) & 0xf;
            (ttbr & TTBR_BADDR_52_LOW) | (high << 48)
        } else {
            ttbr & TTBR_BADDR
        }
    }

    /// What kind of descriptor `entry` is at `level`.
    pub(crate) fn kind(self, level: Level, entry: u64) -> Kind {
        if entry & DESC_VALID == 0 {
            return Kind::Invalid;
        }
        let hw_level = self.hw_level(level);
        let bit1 = entry & DESC_TABLE_OR_PAGE != 0;
        match (hw_level, bit1) {
            (3, true) => Kind::Page,
            (3, false) => Kind::Reserved,
            (_, true) => Kind::Table,
            // 4 KiB granule: 1 GiB and 2 MiB blocks, and 512 GiB ones at
            // level 0 with the 52-bit format; none at level -1.
            (1 | 2, false) => Kind::Block,
            (0, false) if self.lpa2 => Kind::Block,
            _ => Kind::Reserved,
        }
    }
}

/// The kinds of arm64 descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// Bit 0 clear: nothing is mapped.
    Invalid,
    /// The address of the next level's table.
    Table,
    /// A leaf above level 3: maps the whole range of the entry.
    Block,
    /// A level-3 leaf: maps one 4 KiB page.
    Page,
    /// An encoding the MMU treats as a fault at this level (a level-3
    /// "block", a block where the granule allows none).
    Reserved,
}

/// Decodes `entry`, read at `level` while walking `addr` with translation
/// `t`.
///
/// For a block the PFN is that of the 4 KiB page of `addr` inside it, so
/// that all levels answer the same question. A reserved encoding faults in
/// the MMU, so it maps nothing.
pub(crate) fn decode_entry(t: Translation, level: Level, entry: u64, addr: usize) -> Decoded {
    match t.kind(level, entry) {
        Kind::Invalid | Kind::Reserved => Decoded::NotPresent,
        Kind::Table => Decoded::Table(t.output_addr(entry)),
        Kind::Block | Kind::Page => {
            // Below a block's address are ignored or flag bits (nT, bit 16),
            // so mask them off.
            let size_mask = (1u64 << t.shift(level)) - 1;
            let base = t.output_addr(entry) & !size_mask;
            let within = (addr as u64 & size_mask) >> PAGE_SHIFT;
            Decoded::Leaf((base >> PAGE_SHIFT) + within)
        }
    }
}

/// The attribute fields of a block or page descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LeafAttrs {
    /// AttrIndx: the MAIR slot (the kernel's `MT_NORMAL` 0,
    /// `MT_NORMAL_TAGGED` 1, `MT_NORMAL_NC` 2, `MT_DEVICE_nGnRnE` 3,
    /// `MT_DEVICE_nGnRE` 4).
    pub(crate) attr_indx: u8,
    /// AP[2:1]: 0b00 kernel read/write, 0b01 kernel and user read/write,
    /// 0b10 kernel read-only, 0b11 kernel and user read-only.
    pub(crate) ap: u8,
    /// SH, or `None` with the 52-bit format (where TCR_EL1.SH1 sets it).
    pub(crate) sh: Option<u8>,
    pub(crate) af: bool,
    pub(crate) ng: bool,
    pub(crate) contiguous: bool,
    pub(crate) pxn: bool,
    pub(crate) uxn: bool,
    pub(crate) dbm: bool,
    /// The software bits 58..=55.
    pub(crate) sw: u8,
}

impl LeafAttrs {
    /// The attributes of the block or page descriptor `entry`.
    pub(crate) fn of(t: Translation, entry: u64) -> Self {
        Self {
            attr_indx: ((entry >> ATTR_INDX_SHIFT) & 0b111) as u8,
            ap: ((entry >> AP_SHIFT) & 0b11) as u8,
            sh: (!t.lpa2).then_some(((entry >> SH_SHIFT) & 0b11) as u8),
            af: entry & DESC_AF != 0,
            ng: entry & DESC_NG != 0,
            contiguous: entry & DESC_CONT != 0,
            pxn: entry & DESC_PXN != 0,
            uxn: entry & DESC_UXN != 0,
            dbm: entry & DESC_DBM != 0,
            sw: ((entry >> SW_SHIFT) & 0xf) as u8,
        }
    }
}

/// An entry's bits by name, as the log of page 0's walk shows them after
/// the raw value.
pub(crate) struct EntryBits {
    t: Translation,
    level: Level,
    entry: u64,
}

/// The names of the bits of a walk's entry.
pub(crate) fn entry_bits(step: &Step) -> EntryBits {
    // A walk that was made found the translation; if TCR_EL1 cannot be
    // read as one now, name the bits as the kernel was built.
    let t = Translation::current().unwrap_or(Translation {
        va_bits: VA_BITS,
        lpa2: false,
    });
    EntryBits {
        t,
        level: step.level,
        entry: step.entry,
    }
}

impl fmt::Display for EntryBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, entry) = (self.t, self.entry);
        let flag = |bit: u64| u8::from(entry & bit != 0);
        match t.kind(self.level, entry) {
            Kind::Invalid => f.write_str(" invalid"),
            Kind::Reserved => f.write_str(" valid, reserved encoding (faults)"),
            Kind::Table => write!(
                f,
                " valid table next={:#x} PXNTable={} UXNTable={} APTable={:#04b}",
                t.output_addr(entry),
                flag(TABLE_PXN),
                flag(TABLE_UXN),
                (entry >> TABLE_AP_SHIFT) & 0b11
            ),
            kind => {
                let a = LeafAttrs::of(t, entry);
                write!(
                    f,
                    " valid {} oa={:#x} AttrIndx={} AP={:#04b}",
                    if kind == Kind::Block { "block" } else { "page" },
                    t.output_addr(entry) & !((1u64 << t.shift(self.level)) - 1),
                    a.attr_indx,
                    a.ap
                )?;
                match a.sh {
                    Some(sh) => write!(f, " SH={sh:#04b}")?,
                    None => f.write_str(" SH=TCR")?,
                }
                write!(
                    f,
                    " AF={} nG={} Contiguous={} PXN={} UXN={} DBM={} SW={:#06b}",
                    u8::from(a.af),
                    u8::from(a.ng),
                    u8::from(a.contiguous),
                    u8::from(a.pxn),
                    u8::from(a.uxn),
                    u8::from(a.dbm),
                    a.sw
                )
            }
        }
    }
}

/// The paging mode for the load's check and log: the levels and address
/// bits TCR_EL1 sets up, which must be ones the kernel was built for
/// (`VA_BITS_MIN..=VA_BITS`, the 52-bit format only with
/// `CONFIG_ARM64_LPA2`) for its tables to be the ones our walk expects.
pub(crate) fn paging() -> Result<Paging, PagingMismatch> {
    let t = Translation::current()?;
    if !(VA_BITS_MIN..=VA_BITS).contains(&t.va_bits) {
        return Err(PagingMismatch::VaBits(t.va_bits));
    }
    if t.lpa2 && !cfg!(CONFIG_ARM64_LPA2) {
        return Err(PagingMismatch::Lpa2);
    }
    Ok(Paging {
        levels: t.levels().len(),
        va_bits: t.va_bits,
    })
}

/// What TCR_EL1 says that our walk cannot follow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PagingMismatch {
    /// TG1 is not the 4 KiB granule (its value).
    Granule(u64),
    /// T1SZ gives these address bits, which the kernel was not built for.
    VaBits(u32),
    /// DS is set, but the kernel was built without LPA2.
    Lpa2,
}

impl fmt::Display for PagingMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PagingMismatch::Granule(tg1) => write!(
                f,
                "TCR_EL1.TG1 is {tg1:#04b}, not the 4 KiB granule our walk reads"
            ),
            PagingMismatch::VaBits(bits) => write!(
                f,
                "TCR_EL1.T1SZ says {bits}-bit kernel addresses but the kernel was built for {VA_BITS_MIN} to {VA_BITS}"
            ),
            PagingMismatch::Lpa2 => f.write_str(
                "TCR_EL1.DS says the 52-bit (LPA2) descriptor format but the kernel was built without CONFIG_ARM64_LPA2",
            ),
        }
    }
}

/// The running kernel's linear map of RAM ("direct map"): physical
/// address `phys` at `PAGE_OFFSET + (phys - memstart_addr)` (`__va()`), up
/// to `high_memory`.
pub(crate) fn direct_map() -> DirectMap {
    DirectMap {
        base: PAGE_OFFSET,
        end: high_memory(),
        phys_offset: memstart_addr() as u64,
    }
}

/// Walks the page tables the MMU uses now for the kernel address `addr`.
///
/// # Safety
///
/// `addr` must be mapped by a kernel mapping (such as a live vmalloc area,
/// or the linear map of pages the caller holds) whose page tables are not
/// freed during the call.
pub(crate) unsafe fn walk(addr: usize) -> Result<PageWalk, NotMapped> {
    let Ok(t) = Translation::current() else {
        return Err(NotMapped {
            level: Level::Pgd,
            entry: 0,
        });
    };
    if !t.is_kernel_addr(addr) {
        // A user (TTBR0) address, or one outside the kernel half's bits.
        return Err(NotMapped {
            level: Level::Pgd,
            entry: 0,
        });
    }
    // The tables are read through the linear map of RAM: a table address
    // outside it would mean the entry holds bits this walk does not know,
    // and it must not be read.
    let direct_map = DirectMap::current();
    // Read once: the entry reported for the top level is the value the walk
    // started from.
    let ttbr1 = read_sysreg!("ttbr1_el1");
    let mut table_phys = t.ttbr_table(ttbr1);
    let mut steps = [None; MAX_LEVELS];
    let mut entry = ttbr1;
    for (depth, &level) in t.levels().iter().enumerate() {
        let index = t.index(level, addr);
        let Some(table) = direct_map.addr_of_phys(table_phys) else {
            return Err(NotMapped { level, entry });
        };
        let slot = table as *const u64;
        // SAFETY: Every page-table page of the kernel half is ordinary
        // memory: `swapper_pg_dir` is in the kernel image, whose memory the
        // linear map covers too, and the tables below it come from the page
        // allocator. `addr_of_phys` just checked that the table lies in the
        // linear map of RAM; `index` is below the table's entry count (at most
        // 512), so the read stays inside the table. The caller guarantees
        // that the tables of `addr` stay in place; the read is volatile
        // because the MMU may set the access or dirty state at any time.
        entry = unsafe { slot.add(index).read_volatile() };
        steps[depth] = Some(Step {
            level,
            index,
            entry,
        });
        match decode_entry(t, level, entry, addr) {
            Decoded::NotPresent => return Err(NotMapped { level, entry }),
            Decoded::Leaf(pfn) => {
                return Ok(PageWalk {
                    steps,
                    leaf: level,
                    pfn,
                })
            }
            Decoded::Table(next) => table_phys = next,
        }
    }
    // The PTE level always decodes to a leaf or to not-present.
    Err(NotMapped {
        level: Level::Pte,
        entry: 0,
    })
}

/// PAR_EL1.F: the translation faulted.
const PAR_FAULT: u64 = 1 << 0;
/// PAR_EL1.PA, bits 51..=12, when the translation succeeded.
const PAR_PA: u64 = ((1 << 52) - 1) & !((1 << 12) - 1);

/// The physical address of the page the MMU translates the kernel address
/// `addr` to now (`AT S1E1R`, a stage-1 read translation at EL1), or `None`
/// if the translation faults.
///
/// Safe for any address: `AT` does not access the address, cannot fault,
/// and only writes PAR_EL1, which this reads back before anything else on
/// this CPU can use it.
pub(crate) fn mmu_translate(addr: usize) -> Option<u64> {
    let par: u64;
    // SAFETY: `AT S1E1R` translates without accessing `addr` or raising an
    // exception; it and the PAR_EL1 read run with IRQs and FIQs masked (DAIF
    // saved and restored around them, as the kernel's own
    // `is_spurious_el1_translation_fault()` does with `local_irq_save`), so
    // that no interrupt handler's own `AT` can replace PAR_EL1 in between.
    // The `dmb sy` around the PAR_EL1 read is the kernel's
    // `read_sysreg_par()` (erratum 1508412), harmless where not needed. The
    // block touches no memory and restores every register it changes but
    // its outputs; `flags` is `inout` so that it never shares a register
    // with `addr`, which is read after `flags` is written.
    unsafe {
        core::arch::asm!(
            "mrs {flags}, daif",
            "msr daifset, #3",
            "at s1e1r, {addr}",
            "isb",
            "dmb sy",
            "mrs {par}, par_el1",
            "dmb sy",
            "msr daif, {flags}",
            addr = in(reg) addr,
            flags = inout(reg) 0u64 => _,
            par = out(reg) par,
            options(nostack, preserves_flags)
        )
    };
    (par & PAR_FAULT == 0).then_some(par & PAR_PA)
}

/// The kernel function [`kernel_lookup_pfn`] asks, as messages name it: on
/// arm64, the MMU's own translation.
pub(crate) const KERNEL_LOOKUP: &str = "AT S1E1R";

/// The PFN behind the kernel address `addr` as the MMU translates it
/// (`AT S1E1R`): a second opinion that shares nothing with our walk or with
/// `vmalloc_to_pfn()` (a software walk of the same tables), since arm64 has
/// no `lookup_address()`; `None` when the translation faults.
///
/// # Safety
///
/// None needed by the translation itself (see [`mmu_translate`]); the
/// seam's contract is kept: `addr` is mapped by a kernel mapping whose page
/// tables are not freed during the call, so that the answer is meaningful.
pub(crate) unsafe fn kernel_lookup_pfn(addr: usize) -> Option<u64> {
    mmu_translate(addr).map(|pa| pa >> PAGE_SHIFT)
}

/// Whether the MMU maps the page at `va` to `va - voffset`, as it maps
/// every page of the kernel image (`__kimg_to_phys()`).
fn maps_kimage_page(va: usize, voffset: u64) -> bool {
    mmu_translate(va) == Some((va as u64).wrapping_sub(voffset))
}

/// The first page of the kernel image mapping that holds `inside`: the
/// lowest of the pages below it that are all mapped at `va - voffset`, not
/// below `floor`. Found by asking the MMU page by page: the image is one
/// physically contiguous mapping, and below it lies either the end of the
/// modules area or a hole.
pub(crate) fn kimage_start(inside: usize, voffset: u64, floor: usize) -> usize {
    let mut start = inside & !(PAGE_SIZE - 1);
    while start >= floor + PAGE_SIZE && maps_kimage_page(start - PAGE_SIZE, voffset) {
        start -= PAGE_SIZE;
    }
    start
}

/// The first page past the kernel image mapping that holds `inside`, not
/// past `ceiling`, found like [`kimage_start`]. A vmalloc area right above
/// the image maps other physical pages, so it ends the search too.
pub(crate) fn kimage_end(inside: usize, voffset: u64, ceiling: usize) -> usize {
    let mut end = (inside & !(PAGE_SIZE - 1)) + PAGE_SIZE;
    while end < ceiling && maps_kimage_page(end, voffset) {
        end += PAGE_SIZE;
    }
    end
}

#[kernel::macros::kunit_tests(rust_mapdrv_arm64_walk)]
mod tests {
    use super::*;

    const L3: Translation = Translation {
        va_bits: 39,
        lpa2: false,
    };
    const L4: Translation = Translation {
        va_bits: 48,
        lpa2: false,
    };
    const L5: Translation = Translation {
        va_bits: 52,
        lpa2: true,
    };

    #[test]
    fn levels_from_tcr() {
        // T1SZ 16, TG1 4K: a 48-bit kernel half, four levels.
        let tcr48 = (16 << TCR_T1SZ_SHIFT) | (TCR_TG1_4K << TCR_TG1_SHIFT);
        assert_eq!(Translation::from_tcr(tcr48), Ok(L4));
        assert_eq!(L4.levels().len(), 4);
        // T1SZ 25: 39 bits, three levels (the pgd maps 1 GiB per entry).
        let tcr39 = (25 << TCR_T1SZ_SHIFT) | (TCR_TG1_4K << TCR_TG1_SHIFT);
        assert_eq!(Translation::from_tcr(tcr39), Ok(L3));
        assert_eq!(L3.levels(), &[Level::Pgd, Level::Pmd, Level::Pte]);
        // T1SZ 12 with DS: 52 bits, LPA2, five levels.
        let tcr52 = (12 << TCR_T1SZ_SHIFT) | (TCR_TG1_4K << TCR_TG1_SHIFT) | TCR_DS;
        assert_eq!(Translation::from_tcr(tcr52), Ok(L5));
        assert_eq!(L5.levels().len(), 5);
        // A 64 KiB granule (TG1 0b11) is refused.
        let tcr64k = (16 << TCR_T1SZ_SHIFT) | (0b11 << TCR_TG1_SHIFT);
        assert_eq!(
            Translation::from_tcr(tcr64k),
            Err(PagingMismatch::Granule(0b11))
        );
    }

    #[test]
    fn indices_and_shifts() {
        // 48 bits: pgd bits 47..=39, pud 38..=30, pmd 29..=21, pte 20..=12.
        let addr = 0xffff_8000_8123_4000usize;
        assert_eq!(L4.shift(Level::Pgd), 39);
        assert_eq!(L4.index(Level::Pgd, addr), 256);
        assert_eq!(L4.index(Level::Pud, addr), 2);
        assert_eq!(L4.index(Level::Pmd, addr), 9);
        assert_eq!(L4.index(Level::Pte, addr), 0x34);
        // 39 bits: the pgd is level 1, bits 38..=30.
        assert_eq!(L3.shift(Level::Pgd), 30);
        assert_eq!(L3.index(Level::Pgd, 0xffff_ff80_c000_0000), 3);
        assert_eq!(L3.index(Level::Pmd, 0xffff_ff80_0060_0000), 3);
        // 52 bits: the pgd is level -1 with 16 entries (bits 51..=48).
        assert_eq!(L5.shift(Level::Pgd), 48);
        assert_eq!(L5.shift(Level::P4d), 39);
        assert_eq!(L5.index(Level::Pgd, 0xfff0_0000_0000_0000), 0);
        assert_eq!(L5.index(Level::Pgd, 0xffff_8000_0000_0000), 15);
        assert_eq!(L5.index(Level::P4d, 0xffff_8000_0000_0000), 256);
        // Kernel addresses only, and within the translated bits.
        assert!(L4.is_kernel_addr(0xffff_0000_0000_0000));
        assert!(!L4.is_kernel_addr(0x0000_ffff_ffff_f000));
        assert!(!L4.is_kernel_addr(0xfff0_0000_0000_0000));
        assert!(L5.is_kernel_addr(0xfff0_0000_0000_0000));
        // A KASAN tag in the top byte is ignored.
        assert!(L4.is_kernel_addr(0xf2ff_8000_0000_0000));
    }

    #[test]
    fn decode_invalid_and_tables() {
        assert_eq!(decode_entry(L4, Level::Pmd, 0, 0), Decoded::NotPresent);
        // Bit 0 clear: invalid whatever else is set.
        assert_eq!(
            decode_entry(L4, Level::Pte, 0x0068_0000_4123_4f02, 0),
            Decoded::NotPresent
        );
        // A table descriptor with UXNTable and PXNTable: the next table.
        assert_eq!(L4.kind(Level::Pgd, 0x1800_0000_4175_f003), Kind::Table);
        assert_eq!(
            decode_entry(L4, Level::Pgd, 0x1800_0000_4175_f003, 0),
            Decoded::Table(0x4175_f000)
        );
        // A level -1 entry cannot be a block; a level-3 "block" faults.
        assert_eq!(L5.kind(Level::Pgd, 0x4000_0001), Kind::Reserved);
        assert_eq!(L4.kind(Level::Pte, 0x4123_4701), Kind::Reserved);
        assert_eq!(
            decode_entry(L4, Level::Pte, 0x4123_4701, 0),
            Decoded::NotPresent
        );
        // With LPA2, bits 9..=8 are address bits 51..=50.
        assert_eq!(
            decode_entry(L5, Level::P4d, 0x0000_0000_4175_f303, 0),
            Decoded::Table(0x000c_0000_4175_f000)
        );
        assert_eq!(
            L5.ttbr_table(0x0001_0000_4175_f000 | (0x8 << 2) | 1),
            0x0008_0000_4175_f000
        );
        // The ASID (63..=48) and CnP (0) are not part of TTBR1's address.
        assert_eq!(L4.ttbr_table(0x00a5_0000_4175_f001), 0x4175_f000);
    }

    #[test]
    fn decode_leaves() {
        // A kernel page: UXN, PXN, AF, SH inner, AttrIndx 0; PFN 0x41234.
        let page = 0x0060_0000_4123_4703u64;
        assert_eq!(L4.kind(Level::Pte, page), Kind::Page);
        assert_eq!(
            decode_entry(L4, Level::Pte, page, 0),
            Decoded::Leaf(0x41234)
        );
        let a = LeafAttrs::of(L4, page);
        assert_eq!(
            a,
            LeafAttrs {
                attr_indx: 0,
                ap: 0,
                sh: Some(0b11),
                af: true,
                ng: false,
                contiguous: false,
                pxn: true,
                uxn: true,
                dbm: false,
                sw: 0,
            }
        );
        // A 2 MiB block at 0x4020_0000 (PMD): the page 5 pages into it.
        let pmd_block = 0x0040_0000_4020_0705u64;
        assert_eq!(L4.kind(Level::Pmd, pmd_block), Kind::Block);
        assert_eq!(
            decode_entry(L4, Level::Pmd, pmd_block, 0xffff_0000_0020_5000),
            Decoded::Leaf(0x40200 + 5)
        );
        // nT (bit 16) inside a block's address bits is not address.
        assert_eq!(
            decode_entry(L4, Level::Pmd, pmd_block | (1 << 16), 0xffff_0000_0020_5000),
            Decoded::Leaf(0x40200 + 5)
        );
        // A 1 GiB block at 0x4000_0000 (PUD), read-only, AttrIndx 4
        // (device), nG: the page 0x1234_5678 into it.
        let pud_block = 0x0060_0000_4000_0f91u64;
        assert_eq!(L4.kind(Level::Pud, pud_block), Kind::Block);
        assert_eq!(
            decode_entry(L4, Level::Pud, pud_block, 0xffff_0000_1234_5678),
            Decoded::Leaf(0x40000 + 0x12345)
        );
        let a = LeafAttrs::of(L4, pud_block);
        assert_eq!((a.attr_indx, a.ap, a.ng, a.af), (4, 0b10, true, true));
        // With three levels the pgd is level 1, where blocks are 1 GiB.
        assert_eq!(L3.kind(Level::Pgd, pud_block), Kind::Block);
        // A contiguous page with DBM and the software dirty bit (55): the
        // hint changes nothing in the translation.
        let cont = 0x00d8_0000_4123_4703u64;
        assert_eq!(
            decode_entry(L4, Level::Pte, cont, 0),
            Decoded::Leaf(0x41234)
        );
        let a = LeafAttrs::of(L4, cont);
        assert!(a.contiguous && a.dbm && !a.pxn && a.uxn);
        assert_eq!(a.sw, 0b0001);
        // With LPA2, SH is not in the descriptor.
        assert_eq!(LeafAttrs::of(L5, page).sh, None);
    }

    #[test]
    fn direct_map_arithmetic() {
        // RAM at 1 GiB, as on QEMU's virt machine.
        let dm = DirectMap {
            base: 0xffff_0000_0000_0000,
            end: 0xffff_0000_4000_0000,
            phys_offset: 0x4000_0000,
        };
        assert_eq!(dm.addr_of_phys(0x4123_4000), Some(0xffff_0000_0123_4000));
        assert_eq!(dm.addr_of_phys(0x3fff_f000), None);
        assert_eq!(dm.addr_of_phys(0x8000_0000), None);
        assert_eq!(dm.phys_of(0xffff_0000_0123_4567), 0x4123_4567);
        assert_eq!(dm.addr_of_pfn(0x41234), Some(0xffff_0000_0123_4000));
        // A "negative" PHYS_OFFSET (52-bit kernel on a 48-bit CPU).
        let folded = DirectMap {
            base: 0xfff0_0000_0000_0000,
            end: 0xffff_0000_4000_0000,
            phys_offset: (0x4000_0000i64 - (0x000f_0000_0000_0000i64)) as u64,
        };
        assert_eq!(
            folded.addr_of_phys(0x4000_0000),
            Some(0xffff_0000_0000_0000)
        );
        assert_eq!(folded.phys_of(0xffff_0000_0000_1000), 0x4000_1000);
    }

    #[test]
    fn current_translation_is_walkable() {
        // The running kernel's TCR_EL1 passes the load's check, and the
        // walk of a kernel address agrees with the MMU.
        assert!(paging().is_ok());
        let addr = core::ptr::from_ref(&L4) as usize;
        assert!(mmu_translate(addr).is_some());
    }
}
