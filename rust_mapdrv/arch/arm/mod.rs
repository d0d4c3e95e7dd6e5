// SPDX-License-Identifier: GPL-2.0

//! 32-bit ARM (ARMv7, short-descriptor tables, a 3G/1G split with
//! highmem) behind the seam of `arch/mod.rs`: the two levels of tables and
//! our walk of them (`pgtable.rs`, which also asks the MMU for the load's
//! second opinion), the kernel address-space layout (`layout.rs`), and the
//! kernel globals both read (`globals.rs`, the only place that reads them).
//! The seam names the items of the interface; this file only gathers them.

mod globals;
mod layout;
mod pgtable;

pub(crate) use self::{globals::*, layout::*, pgtable::*};
