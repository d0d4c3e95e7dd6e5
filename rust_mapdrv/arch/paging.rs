// SPDX-License-Identifier: GPL-2.0

//! The paging facts of the running kernel that the load checks and logs,
//! the same on every architecture: how many levels of tables a walk of a
//! kernel address reads and how many bits of the address they translate.
//! How the architecture finds them, and what it checks them against, is its
//! own (`arch/<arch>/pgtable.rs`, `paging()`).

/// The paging mode the running kernel's tables use for kernel addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Paging {
    /// The levels of tables a walk reads (e.g. 4 or 5 on x86_64, 3 to 5 on
    /// arm64), as logged: `N-level paging`.
    pub(crate) levels: usize,
    /// The bits of a kernel virtual address the tables translate (48 or 57
    /// on x86_64; 39, 48 or 52 on arm64).
    pub(crate) va_bits: u32,
}
