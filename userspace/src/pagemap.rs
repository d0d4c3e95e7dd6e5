// SPDX-License-Identifier: GPL-2.0

//! /proc/self/pagemap: one little-endian u64 per virtual page
//! (Documentation/admin-guide/mm/pagemap.rst).

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, ensure};

const PFN_MASK: u64 = (1 << 55) - 1;
const PRESENT: u64 = 1 << 63;

/// One pagemap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(pub u64);

impl Entry {
    /// Bit 63: the page is mapped (present in RAM).
    pub fn present(self) -> bool {
        self.0 & PRESENT != 0
    }

    /// Bits 0-54: the page frame number when present. Reads as 0 without
    /// CAP_SYS_ADMIN.
    pub fn pfn(self) -> Option<u64> {
        self.present().then_some(self.0 & PFN_MASK)
    }
}

/// Decodes raw pagemap bytes (a multiple of 8) into entries.
pub fn decode(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .chunks_exact(8)
        .map(|c| Entry(u64::from_le_bytes(c.try_into().expect("chunk of 8"))))
        .collect()
}

/// Byte offset in pagemap of the entry for virtual address `addr`.
pub fn entry_offset(addr: usize, page_size: usize) -> u64 {
    (addr / page_size) as u64 * 8
}

/// Reads the entries of `pages` pages starting at virtual address `addr` of
/// this process.
pub fn read_self(addr: usize, pages: usize, page_size: usize) -> Result<Vec<Entry>> {
    let file = File::open("/proc/self/pagemap").context("cannot open /proc/self/pagemap")?;
    let mut buf = vec![0u8; pages * 8];
    let offset = entry_offset(addr, page_size);
    file.read_exact_at(&mut buf, offset)
        .with_context(|| format!("reading /proc/self/pagemap at {offset:#x}"))?;
    let entries = decode(&buf);
    ensure!(entries.len() == pages, "short pagemap read");
    Ok(entries)
}

/// Indices of the present pages.
pub fn present_pages(entries: &[Entry]) -> Vec<usize> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.present())
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits 55 (soft-dirty), 56 (exclusive), 61 (file/shared) and 62 (swap).
    const OTHER_FLAGS: u64 = (1 << 55) | (1 << 56) | (1 << 61) | (1 << 62);

    #[test]
    fn present_entry_decodes_pfn() {
        let e = Entry(PRESENT | OTHER_FLAGS | 0x12_3456);
        assert!(e.present());
        assert_eq!(e.pfn(), Some(0x12_3456));
    }

    #[test]
    fn pfn_uses_bits_0_to_54_only() {
        assert_eq!(
            Entry(PRESENT | OTHER_FLAGS | PFN_MASK).pfn(),
            Some((1 << 55) - 1)
        );
        assert_eq!(PFN_MASK, 0x007f_ffff_ffff_ffff);
    }

    #[test]
    fn absent_entry_has_no_pfn() {
        assert_eq!(Entry(0).pfn(), None);
        assert_eq!(Entry(0x1234).pfn(), None);
        assert_eq!(Entry(OTHER_FLAGS | 0x1234).pfn(), None);
    }

    #[test]
    fn decode_is_little_endian() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(PRESENT | 0xabc).to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let entries = decode(&bytes);
        assert_eq!(entries, vec![Entry(PRESENT | 0xabc), Entry(0)]);
        assert_eq!(present_pages(&entries), vec![0]);
    }

    #[test]
    fn entry_offsets() {
        assert_eq!(entry_offset(0x7f00_0000_3000, 4096), 0x7_f000_0003 * 8);
        assert_eq!(entry_offset(4095, 4096), 0);
    }

    #[test]
    fn own_stack_page_is_present() {
        let x = std::hint::black_box(42u64);
        let addr = &x as *const u64 as usize;
        let page = crate::device::system_page_size().unwrap();
        let e = read_self(addr, 1, page).unwrap();
        assert!(e[0].present(), "{:?}", e[0]);
    }
}
