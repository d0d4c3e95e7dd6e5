// SPDX-License-Identifier: GPL-2.0

//! What a kernel address-space layout is made of and how it is written, the
//! same on every architecture: regions `[start, end)` with short names, and
//! the `key value` lines of debugfs `mapdrv/layout` and of the load's
//! `layout:` log lines (addresses in hex, numbers in decimal, flags as
//! `yes`/`no`, a region as `<name>_start` and `<name>_end`). Which regions
//! and facts there are is the architecture's (`arch/<arch>/layout.rs`).

use crate::decimal::Decimal;
use core::fmt;
use kernel::bindings;

/// One region of the kernel address space, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    /// A short name, used as the key prefix in debugfs `layout`
    /// (`<name>_start`, `<name>_end`) and in the demo's `region=` fields.
    pub(crate) name: &'static str,
    /// The first address.
    pub(crate) start: usize,
    /// The first address past the region.
    pub(crate) end: usize,
}

impl Region {
    /// Whether `addr` lies in the region.
    pub(crate) fn contains(&self, addr: usize) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// Writes `yes` or `no`.
pub(crate) struct YesNo(pub(crate) bool);

impl fmt::Display for YesNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "yes" } else { "no" })
    }
}

/// Writes a layout's `key value` lines, one per call.
pub(crate) struct KeyValues<'a, W: fmt::Write>(&'a mut W);

impl<'a, W: fmt::Write> KeyValues<'a, W> {
    /// Writes the lines to `out`.
    pub(crate) fn new(out: &'a mut W) -> Self {
        Self(out)
    }

    /// `key 0x...`: an address (or a physical address).
    pub(crate) fn addr(&mut self, key: &str, value: impl fmt::LowerHex) -> fmt::Result {
        writeln!(self.0, "{key} {value:#x}")
    }

    /// `key N`: a count or size, in decimal.
    pub(crate) fn number(&mut self, key: &str, value: impl fmt::Display) -> fmt::Result {
        writeln!(self.0, "{key} {value}")
    }

    /// `key yes` or `key no`.
    pub(crate) fn flag(&mut self, key: &str, value: bool) -> fmt::Result {
        writeln!(self.0, "{key} {}", YesNo(value))
    }

    /// `<name>_start 0x...` and `<name>_end 0x...` (exclusive).
    pub(crate) fn region(&mut self, region: &Region) -> fmt::Result {
        writeln!(self.0, "{}_start {:#x}", region.name, region.start)?;
        writeln!(self.0, "{}_end {:#x}", region.name, region.end)
    }
}

/// The facts every architecture's layout reports besides its regions and
/// its own facts (an architecture's `Extra` holds them as `common`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CommonFacts {
    /// The address of `kfree`, a function in the kernel image.
    pub(crate) kernel_text: usize,
    /// The address of a static of this module, in the modules area.
    pub(crate) module_data: usize,
    /// `totalram_pages()`.
    pub(crate) ram_pages: u64,
    /// `sizeof(struct page)`.
    pub(crate) struct_page_size: usize,
}

/// Something in this module's data, to show where the module lives.
static MODULE_DATA: u8 = 0;

impl CommonFacts {
    /// The facts of the running kernel.
    pub(crate) fn current() -> Self {
        Self {
            kernel_text: bindings::kfree as *const () as usize,
            module_data: core::ptr::from_ref(&MODULE_DATA) as usize,
            ram_pages: super::globals::totalram_pages(),
            struct_page_size: core::mem::size_of::<bindings::page>(),
        }
    }

    /// `kernel_text_kfree` and `module_data`: where the kernel's code and
    /// this module live.
    pub(crate) fn write_places<W: fmt::Write>(&self, out: &mut KeyValues<'_, W>) -> fmt::Result {
        out.addr("kernel_text_kfree", self.kernel_text)?;
        out.addr("module_data", self.module_data)
    }

    /// `ram_pages`, `struct_page_size` and `max_page_order`.
    pub(crate) fn write_memory<W: fmt::Write>(&self, out: &mut KeyValues<'_, W>) -> fmt::Result {
        out.number("ram_pages", Decimal(self.ram_pages))?;
        out.number("struct_page_size", self.struct_page_size)?;
        out.number("max_page_order", bindings::MAX_PAGE_ORDER)
    }
}
