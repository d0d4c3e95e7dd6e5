// SPDX-License-Identifier: GPL-2.0

//! The per-architecture seam: our own page-table walk and the kernel
//! address-space layout, behind one interface that every architecture
//! provides. The rest of the module names these items only as
//! `crate::arch::...`, never an architecture's own module.
//!
//! What is the same on every architecture lives here and in the neutral
//! files beside this one: the shape of a walk's result (`walk.rs`), the
//! paging facts (`paging.rs`) and how a layout is written as `key value`
//! lines (`layout.rs`). An architecture's
//! directory (`x86_64/`, `arm64/`, `arm/`) holds only what is its own: entry bits,
//! level names, the registers and kernel globals it reads, the constants of
//! its layout.
//!
//! Each architecture provides:
//!
//! - the walk: [`walk()`] (`unsafe`: the caller keeps the tables of the address
//!   in place) returns a [`PageWalk`] of [`Step`]s or a [`NotMapped`]; a
//!   `Level` type with `name()` (the kernel's name for the level) and `TOP`
//!   (the table the walk starts from), and `MAX_LEVELS`, the most steps a
//!   walk takes; entries decode to a [`Decoded`]; [`entry_bits`] names the
//!   bits of an entry read (empty where the raw value says enough);
//! - a second opinion for the load-time cross-check: [`kernel_lookup_pfn`],
//!   a lookup other than `vmalloc_to_pfn()` (which the check always asks),
//!   named in messages as [`KERNEL_LOOKUP`]: x86_64's is the kernel's
//!   `lookup_address()`, arm64's and arm's the MMU's own translation (`AT
//!   S1E1R`, `ATS1CPR`);
//! - the paging facts the load checks and logs: [`paging()`], a [`Paging`]
//!   or, when what the CPU runs with and what the kernel was set up for
//!   disagree, a `PagingMismatch` that says how (a `Display`);
//! - the direct map: `direct_map()`, the running kernel's [`DirectMap`]
//!   (neutral, `direct_map.rs`: its base, end and physical offset, whether
//!   an address is in it, `__va()` of a physical address or a page frame,
//!   none for 32-bit ARM's highmem); [`page_to_pfn`] of a `struct page`;
//! - the layout: [`Layout`] (the regions, [`Region`], and the checks on an
//!   address the demo makes; regions are disjoint, except that arm64's
//!   `kernel_image` lies inside its `vmalloc`, and `region_of` names the
//!   innermost), [`Extra`] (facts that are not region bounds)
//!   and [`write_layout`], which writes both with the neutral
//!   [`KeyValues`] writer (and [`YesNo`] for flags).

#[cfg(CONFIG_X86_64)]
#[path = "x86_64/mod.rs"]
mod imp;

#[cfg(CONFIG_ARM64)]
#[path = "arm64/mod.rs"]
mod imp;

#[cfg(CONFIG_ARM)]
#[path = "arm/mod.rs"]
mod imp;

#[cfg(not(any(CONFIG_X86_64, CONFIG_ARM64, CONFIG_ARM)))]
compile_error!(
    "rust_mapdrv has no page-table walk and address-space layout for this \
     architecture yet: add rust_mapdrv/arch/<arch>/ (see rust_mapdrv/arch/mod.rs)"
);

mod direct_map;
pub(crate) mod globals;
mod layout;
mod paging;
mod walk;

pub(crate) use direct_map::DirectMap;
pub(crate) use imp::{
    entry_bits, kernel_lookup_pfn, page_to_pfn, paging, walk, write_layout, Extra, Layout, Level,
    KERNEL_LOOKUP,
};
pub(crate) use layout::{CommonFacts, KeyValues, Region, YesNo};
pub(crate) use paging::Paging;
pub(crate) use walk::{pfn_phys, Decoded, NotMapped, PageWalk, Step};
