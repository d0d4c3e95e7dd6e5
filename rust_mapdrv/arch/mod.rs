// SPDX-License-Identifier: GPL-2.0

//! The per-architecture seam: our own page-table walk and the kernel
//! address-space layout, behind one interface that every architecture
//! provides. The rest of the module names these items only as
//! `crate::arch::...`, never an architecture's own module.
//!
//! What is the same on every architecture lives here and in the neutral
//! files beside this one: the shape of a walk's result (`walk.rs`) and how a
//! layout is written as `key value` lines (`layout.rs`). An architecture's
//! directory (`x86_64/`) holds only what is its own: entry bits, level names,
//! the registers and kernel globals it reads, the constants of its layout.
//!
//! Each architecture provides:
//!
//! - the walk: [`walk()`] (`unsafe`: the caller keeps the tables of the address
//!   in place) returns a [`PageWalk`] of [`Step`]s or a [`NotMapped`]; a
//!   `Level` type with `name()` (the kernel's name for the level) and `TOP`
//!   (the table the walk starts from), and `MAX_LEVELS`, the most steps a
//!   walk takes; entries decode to a [`Decoded`];
//! - a second opinion for the load-time cross-check: [`kernel_lookup_pfn`],
//!   the kernel's own lookup of the leaf entry, named in messages as
//!   [`KERNEL_LOOKUP`];
//! - the paging facts the load checks and logs: [`five_level_paging`] and
//!   [`kernel_pgdir_shift`] (x86_64's; another architecture names its own);
//! - the direct map: [`DirectMap`] (its base and end, whether an address is
//!   in it, `__va()` of a physical address or a page frame) and
//!   [`page_offset_base`]; [`page_to_pfn`] of a `struct page`;
//! - the layout: [`Layout`] (the regions, [`Region`], and the checks on an
//!   address the demo makes), [`Extra`] (facts that are not region bounds)
//!   and [`write_layout`], which writes both with the neutral
//!   [`KeyValues`] writer (and [`YesNo`] for flags).

#[cfg(CONFIG_X86_64)]
#[path = "x86_64/mod.rs"]
mod imp;

#[cfg(not(CONFIG_X86_64))]
compile_error!(
    "rust_mapdrv has no page-table walk and address-space layout for this \
     architecture yet: add rust_mapdrv/arch/<arch>/ (see rust_mapdrv/arch/mod.rs)"
);

mod layout;
mod walk;

pub(crate) use imp::{
    five_level_paging, kernel_lookup_pfn, kernel_pgdir_shift, page_offset_base, page_to_pfn, walk,
    write_layout, DirectMap, Extra, Layout, Level, KERNEL_LOOKUP,
};
pub(crate) use layout::{KeyValues, Region, YesNo};
pub(crate) use walk::{pfn_phys, Decoded, NotMapped, PageWalk, Step};
