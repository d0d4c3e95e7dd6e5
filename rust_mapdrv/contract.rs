// SPDX-License-Identifier: GPL-2.0

//! The rules of the device contract, as plain functions without side effects:
//! parameter validation, the mapping modes, the bounds of an `mmap` request
//! and the content pattern. They are what the KUnit tests exercise.

use core::fmt::{self, Write};
use kernel::page::PAGE_SIZE;

use crate::vmalloc_util::MAX_PAGES;

/// How a mapping gets its pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub(crate) enum Mode {
    /// One page per fault, like the classic `nopage` driver.
    Fault = 0,
    /// Each fault also maps a batch of neighbouring pages.
    FaultAround = 1,
    /// Every page is inserted when `mmap` is called.
    Prefault = 2,
}

impl Mode {
    /// All modes, in the order of their numbers.
    pub(crate) const ALL: [Mode; 3] = [Mode::Fault, Mode::FaultAround, Mode::Prefault];

    /// The mode with this number (the `mode` parameter), if any.
    pub(crate) fn from_number(n: u32) -> Option<Mode> {
        Self::ALL.into_iter().find(|m| *m as u32 == n)
    }

    /// The name users read and write in debugfs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Fault => "fault",
            Mode::FaultAround => "faultaround",
            Mode::Prefault => "prefault",
        }
    }

    /// Parses a name or a number, ignoring surrounding white space (so that
    /// `echo prefault > mode` works).
    pub(crate) fn parse(text: &[u8]) -> Option<Mode> {
        let text = core::str::from_utf8(text).ok()?.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.name() == text || text.parse::<u32>().ok() == Some(*m as u32))
    }
}

/// The largest fault-around batch: one page table's worth of entries.
pub(crate) const MAX_FAULTAROUND_PAGES: u32 = 512;

/// Checks the `pages` parameter: 1..=[`MAX_PAGES`].
pub(crate) fn check_pages(pages: i64) -> Option<usize> {
    usize::try_from(pages)
        .ok()
        .filter(|p| (1..=MAX_PAGES).contains(p))
}

/// Checks the `faultaround_pages` parameter.
pub(crate) fn check_faultaround_pages(n: u32) -> Option<usize> {
    (1..=MAX_FAULTAROUND_PAGES)
        .contains(&n)
        .then_some(n as usize)
}

/// Checks that an `mmap` of `len_pages` pages from page `pgoff` lies inside
/// a buffer of `buffer_pages` pages, without overflowing on the way.
pub(crate) fn mmap_in_bounds(pgoff: usize, len_pages: usize, buffer_pages: usize) -> bool {
    len_pages > 0
        && pgoff
            .checked_add(len_pages)
            .is_some_and(|end| end <= buffer_pages)
}

/// The window of pages a fault-around fault maps, as indices into the VMA.
///
/// The window is the `batch`-aligned block that holds the faulting page
/// `fault_index` (as the core's own fault-around aligns to 64 KiB), clipped
/// to the VMA's `vma_pages` pages.
pub(crate) fn faultaround_window(
    fault_index: usize,
    vma_pages: usize,
    batch: usize,
) -> core::ops::Range<usize> {
    let start = fault_index - fault_index % batch.max(1);
    let end = start.saturating_add(batch.max(1)).min(vma_pages);
    start..end
}

/// A `fmt::Write` into a byte slice that fails instead of truncating.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes the content of page `index` into `page`: the line
/// `mapdrv page <index>\n` and zeros after it. Returns the line's length.
pub(crate) fn fill_page(index: usize, page: &mut [u8]) -> usize {
    let mut w = SliceWriter { buf: page, len: 0 };
    // A page always has room for the line: it is at most 32 bytes.
    let len = match writeln!(w, "mapdrv page {index}") {
        Ok(()) => w.len,
        Err(_) => 0,
    };
    page[len..].fill(0);
    len
}

/// The size of one page, as `u32` for the ioctl answer.
pub(crate) const PAGE_SIZE_U32: u32 = PAGE_SIZE as u32;
