// SPDX-License-Identifier: GPL-2.0

//! The shape of a walk of the kernel page tables, the same on every
//! architecture: the entries read top down, the level that mapped the
//! address and the page frame behind it, or where the walk stopped. The
//! levels themselves (`Level`, `MAX_LEVELS`) and how an entry is read and
//! decoded are the architecture's (`arch/<arch>/pgtable.rs`).

use super::imp::{Level, MAX_LEVELS};
use kernel::page::PAGE_SHIFT;

/// What an entry read at some level tells the walk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Decoded {
    /// The entry is not present: the address is not mapped.
    NotPresent,
    /// The entry points to the next table, at this physical address.
    Table(u64),
    /// The entry maps the address; this is the PFN of its base-size page
    /// (the page of the address inside a huge page).
    Leaf(u64),
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
    /// The entries read, top down; a huge leaf ends the walk early and
    /// leaves the rest `None`.
    pub(crate) steps: [Option<Step>; MAX_LEVELS],
    /// The level that mapped the address.
    pub(crate) leaf: Level,
    /// The page frame number of the base-size page behind the address.
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

/// The physical address of page frame `pfn` (the kernel's `PFN_PHYS`).
pub(crate) const fn pfn_phys(pfn: u64) -> u64 {
    pfn << PAGE_SHIFT
}
