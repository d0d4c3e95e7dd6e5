// SPDX-License-Identifier: GPL-2.0

//! x86_64 behind the seam of `arch/mod.rs`: the four- and five-level page
//! tables and our walk of them (`pgtable.rs`), the kernel address-space
//! layout (`layout.rs`), and the kernel globals both read (`globals.rs`, the
//! only place that reads them). The seam names the items of the interface;
//! this file only gathers them.

mod globals;
mod layout;
mod pgtable;

pub(crate) use self::{globals::*, layout::*, pgtable::*};
