// SPDX-License-Identifier: GPL-2.0

//! The rules of the device contract, as plain functions without side effects:
//! parameter validation, the mapping modes, the bounds of an `mmap` request
//! and the content pattern. They are what the KUnit tests exercise.

use core::fmt::{self, Write};
use kernel::page::PAGE_SIZE;

use crate::uapi;

pub(crate) use crate::uapi::{MAX_FAULTAROUND_PAGES, MAX_PAGES};

/// How a mapping gets its pages. The numbers are the header's
/// `MAPDRV_MODE_*`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub(crate) enum Mode {
    /// One page per fault, like the classic `nopage` driver.
    Fault = uapi::MODE_FAULT,
    /// Each fault also maps a batch of neighbouring pages.
    FaultAround = uapi::MODE_FAULTAROUND,
    /// Every page is inserted when `mmap` is called.
    Prefault = uapi::MODE_PREFAULT,
    /// A shared mapping gets a 2 MiB block with one PMD entry per fault
    /// where the buffer, the address and the offset allow it; elsewhere one
    /// page per fault. The buffer is allocated in 2 MiB blocks when the
    /// module is loaded in this mode.
    Huge = uapi::MODE_HUGE,
}

impl Mode {
    /// All modes, in the order of their numbers.
    pub(crate) const ALL: [Mode; 4] = [Mode::Fault, Mode::FaultAround, Mode::Prefault, Mode::Huge];

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
            Mode::Huge => "huge",
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

/// Checks the `pages` parameter: 1..=[`MAX_PAGES`].
pub(crate) fn check_pages(pages: i64) -> Option<usize> {
    usize::try_from(pages)
        .ok()
        .filter(|p| (1..=MAX_PAGES).contains(p))
}

/// The buffer offset of a `read`/`write` file position. The VFS refuses
/// negative positions before the file sees them; a position past what
/// `usize` holds (4 GiB on a 32-bit kernel) is past the end of any buffer,
/// so it saturates and reads at end of file (0) or writes `ENOSPC`, as on
/// a 64-bit kernel, instead of being refused.
pub(crate) fn file_offset(pos: i64) -> usize {
    usize::try_from(pos).unwrap_or(usize::MAX)
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

#[kernel::macros::kunit_tests(rust_mapdrv_contract)]
mod tests {
    use super::*;

    #[test]
    fn file_offsets_saturate() {
        assert_eq!(file_offset(0), 0);
        assert_eq!(file_offset(4096), 4096);
        assert_eq!(
            file_offset(i64::MAX),
            usize::try_from(i64::MAX).unwrap_or(usize::MAX)
        );
        assert_eq!(file_offset(-1), usize::MAX);
        // Past 4 GiB: beyond any buffer on every architecture.
        assert!(file_offset(1 << 40) >= MAX_PAGES * kernel::page::PAGE_SIZE);
    }

    #[test]
    fn mode_names_and_numbers() {
        for mode in Mode::ALL {
            assert_eq!(Mode::from_number(mode as u32), Some(mode));
            assert_eq!(Mode::parse(mode.name().as_bytes()), Some(mode));
        }
        assert_eq!(Mode::parse(b"faultaround\n"), Some(Mode::FaultAround));
        assert_eq!(Mode::parse(b" prefault "), Some(Mode::Prefault));
        assert_eq!(Mode::parse(b"2"), Some(Mode::Prefault));
        assert_eq!(Mode::parse(b"huge"), Some(Mode::Huge));
        assert_eq!(Mode::from_number(4), None);
        assert_eq!(Mode::parse(b"4"), None);
        assert_eq!(Mode::parse(b""), None);
        assert_eq!(Mode::parse(b"FAULT"), None);
        assert_eq!(Mode::parse(b"fault around"), None);
        assert_eq!(Mode::parse(b"\xff"), None);
    }

    #[test]
    fn pages_parameter_range() {
        assert_eq!(check_pages(0), None);
        assert_eq!(check_pages(-1), None);
        assert_eq!(check_pages(i64::MIN), None);
        assert_eq!(check_pages(1), Some(1));
        assert_eq!(check_pages(10), Some(10));
        assert_eq!(check_pages(262_144), Some(262_144));
        assert_eq!(check_pages(262_145), None);
        assert_eq!(check_pages(i64::MAX), None);
        assert_eq!(check_faultaround_pages(0), None);
        assert_eq!(check_faultaround_pages(16), Some(16));
        assert_eq!(check_faultaround_pages(512), Some(512));
        assert_eq!(check_faultaround_pages(513), None);
    }

    #[test]
    fn mmap_bounds() {
        assert!(mmap_in_bounds(0, 10, 10));
        assert!(mmap_in_bounds(9, 1, 10));
        assert!(!mmap_in_bounds(0, 11, 10));
        assert!(!mmap_in_bounds(10, 1, 10));
        assert!(!mmap_in_bounds(0, 0, 10));
        assert!(!mmap_in_bounds(usize::MAX, 2, 10));
        assert!(!mmap_in_bounds(2, usize::MAX, 10));
    }

    #[test]
    fn faultaround_windows() {
        assert_eq!(faultaround_window(5, 100, 16), 0..16);
        assert_eq!(faultaround_window(16, 100, 16), 16..32);
        assert_eq!(faultaround_window(17, 20, 16), 16..20);
        assert_eq!(faultaround_window(0, 1, 16), 0..1);
        assert_eq!(faultaround_window(7, 10, 1), 7..8);
    }

    #[test]
    fn page_content_pattern() {
        let mut page = [0xffu8; 64];
        assert_eq!(fill_page(7, &mut page), 14);
        assert_eq!(&page[..14], b"mapdrv page 7\n");
        assert!(page[14..].iter().all(|&b| b == 0));
        let mut page = [0xffu8; 64];
        assert_eq!(fill_page(262_143, &mut page), 19);
        assert_eq!(&page[..19], b"mapdrv page 262143\n");
        assert!(page[19..].iter().all(|&b| b == 0));
    }
}
