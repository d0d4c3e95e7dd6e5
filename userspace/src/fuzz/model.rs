// SPDX-License-Identifier: GPL-2.0
//! The fuzzer's shadow model: what the buffer holds, and what each page of the
//! fuzzer's address-space arena maps.
//!
//! The arena is a fixed range of the fuzzer's address space. Every page of it
//! is either a page of a device mapping ([`Mapped`]) or a placeholder
//! (anonymous, `PROT_NONE`) that keeps the range reserved, so that a
//! `MAP_FIXED` never lands on memory of the program itself. A run of pages
//! with the same `vma` number is one VMA of the kernel: the driver's VMAs are
//! `VM_MIXEDMAP | VM_DONTEXPAND`, which the kernel never merges, so a VMA
//! only ever splits.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Page protection bits as `mmap`/`mprotect` take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Prot {
    pub r: bool,
    pub w: bool,
    pub x: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        r: false,
        w: false,
        x: false,
    };
    pub const R: Prot = Prot {
        r: true,
        w: false,
        x: false,
    };
    pub const RW: Prot = Prot {
        r: true,
        w: true,
        x: false,
    };

    pub fn bits(self) -> libc::c_int {
        (if self.r { libc::PROT_READ } else { 0 })
            | (if self.w { libc::PROT_WRITE } else { 0 })
            | (if self.x { libc::PROT_EXEC } else { 0 })
    }

    /// Whether the kernel can read the page for a copy from user space: a
    /// writable page is readable too, on x86_64 and on arm64 alike. (An
    /// execute-only page would be readable on x86_64 but not on an arm64
    /// CPU with EPAN; the generator never asks for one: PROT_EXEC comes
    /// with PROT_READ.)
    pub fn kernel_readable(self) -> bool {
        self.r || self.w || self.x
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on, ch| if on { ch } else { '-' };
        write!(f, "{}{}{}", c(self.r, 'r'), c(self.w, 'w'), c(self.x, 'x'))
    }
}

/// One arena page that maps a page of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The VMA it belongs to (a run of equal numbers is one VMA).
    pub vma: u64,
    /// The buffer page it maps.
    pub buf_page: usize,
    pub prot: Prot,
    /// `MAP_SHARED`: reads see the buffer, writes change it.
    pub shared: bool,
    /// `VM_MAYWRITE`: `mprotect` may add `PROT_WRITE` (not for a shared
    /// mapping of a read-only file).
    pub maywrite: bool,
    /// `MADV_DONTFORK`: a child does not get this page.
    pub dontfork: bool,
    /// A `MAP_PRIVATE` page after its first write: the private copy.
    pub cow: Option<Box<[u8]>>,
}

/// The buffer and the arena, as they should be.
#[derive(Debug, Clone)]
pub struct Model {
    pub page_size: usize,
    /// The top of the default mmap window (`DEFAULT_MAP_WINDOW`): a
    /// mapping without an address hint lies below it, so none can be
    /// longer.
    pub map_window: u64,
    /// The kernel's `ULONG_MAX`, the largest `size_t` too: where lengths
    /// and mmap's sums wrap (2^64 - 1; 2^32 - 1 on 32-bit ARM).
    pub ulong_max: u64,
    /// The whole buffer.
    pub shadow: Vec<u8>,
    /// One entry per arena page: `None` is a placeholder.
    pub arena: Vec<Option<Mapped>>,
    next_vma: u64,
}

impl Model {
    pub fn new(shadow: Vec<u8>, page_size: usize, arena_pages: usize, map_window: u64) -> Model {
        Model {
            page_size,
            map_window,
            ulong_max: crate::device::ULONG_MAX,
            shadow,
            arena: vec![None; arena_pages],
            next_vma: 1,
        }
    }

    pub fn buffer_pages(&self) -> usize {
        self.shadow.len() / self.page_size
    }

    /// A new VMA number.
    pub fn new_vma(&mut self) -> u64 {
        self.next_vma += 1;
        self.next_vma
    }

    /// The bytes arena page `page` shows (if it maps the device).
    pub fn page_bytes(&self, page: usize) -> Option<&[u8]> {
        let m = self.arena.get(page)?.as_ref()?;
        Some(match &m.cow {
            Some(copy) => copy,
            None => {
                let start = m.buf_page * self.page_size;
                &self.shadow[start..start + self.page_size]
            }
        })
    }

    /// The byte at arena byte `at` as the mapping shows it.
    pub fn byte(&self, at: usize) -> Option<u8> {
        let ps = self.page_size;
        self.page_bytes(at / ps).map(|p| p[at % ps])
    }

    /// The VMA that arena page `page` is part of, as a page range.
    pub fn vma_range(&self, page: usize) -> Option<std::ops::Range<usize>> {
        let id = self.arena.get(page)?.as_ref()?.vma;
        let same = |p: usize| self.arena[p].as_ref().is_some_and(|m| m.vma == id);
        let mut start = page;
        while start > 0 && same(start - 1) {
            start -= 1;
        }
        let mut end = page + 1;
        while end < self.arena.len() && same(end) {
            end += 1;
        }
        Some(start..end)
    }

    /// The VMAs that pages `range` touch, as page ranges clipped to `range`,
    /// in address order; `None` where a page is a placeholder.
    pub fn vmas_in(&self, range: std::ops::Range<usize>) -> Vec<Option<std::ops::Range<usize>>> {
        let mut out = Vec::new();
        let mut p = range.start;
        while p < range.end {
            match self.vma_range(p) {
                Some(r) => {
                    let end = r.end.min(range.end);
                    out.push(Some(p..end));
                    p = end;
                }
                None => {
                    while p < range.end && self.arena[p].is_none() {
                        p += 1;
                    }
                    out.push(None);
                }
            }
        }
        out
    }

    /// Whether every page of `range` maps the device.
    pub fn all_mapped(&self, range: std::ops::Range<usize>) -> bool {
        range.end <= self.arena.len() && self.arena[range].iter().all(Option::is_some)
    }

    /// Gives pages `range` a VMA number of their own, if that splits a VMA.
    pub fn split_off(&mut self, range: std::ops::Range<usize>) {
        let Some(first) = self.vma_range(range.start) else {
            return;
        };
        if first.start == range.start && first.end == range.end {
            return;
        }
        let id = self.new_vma();
        for p in range {
            if let Some(m) = self.arena[p].as_mut() {
                m.vma = id;
            }
        }
    }

    /// Unmaps pages `range` (they become placeholders).
    pub fn unmap(&mut self, range: std::ops::Range<usize>) {
        for p in range {
            self.arena[p] = None;
        }
    }

    /// How many bytes from arena byte `at` (at most `len`) the kernel can
    /// copy into (`write`) or out of, before the first page it cannot.
    pub fn accessible(&self, at: usize, len: usize, write: bool) -> usize {
        let ps = self.page_size;
        let mut n = 0;
        while n < len {
            let p = (at + n) / ps;
            let ok = self.arena.get(p).and_then(Option::as_ref).is_some_and(|m| {
                if write {
                    m.prot.w
                } else {
                    m.prot.kernel_readable()
                }
            });
            if !ok {
                break;
            }
            n += ps - (at + n) % ps;
        }
        n.min(len)
    }

    /// The buffer bytes that arena bytes `at..at + len` show (for pages that
    /// show the buffer itself, not a private copy): buffer byte ranges.
    pub fn buffer_ranges(&self, at: usize, len: usize) -> Vec<std::ops::Range<usize>> {
        let ps = self.page_size;
        let mut out = Vec::new();
        let mut n = 0;
        while n < len {
            let a = at + n;
            let chunk = (ps - a % ps).min(len - n);
            if let Some(Some(m)) = self.arena.get(a / ps) {
                if m.cow.is_none() {
                    let b = m.buf_page * ps + a % ps;
                    out.push(b..b + chunk);
                }
            }
            n += chunk;
        }
        out
    }

    /// Whether arena bytes `at..at + len` (not empty) all lie on device
    /// pages whose protection passes `need`.
    pub fn mapped_with(&self, at: usize, len: usize, need: fn(Prot) -> bool) -> bool {
        let ps = self.page_size;
        len > 0
            && at + len <= self.arena.len() * ps
            && (at / ps..(at + len).div_ceil(ps))
                .all(|p| self.arena[p].as_ref().is_some_and(|m| need(m.prot)))
    }

    /// The buffer ranges behind the shared pages of arena bytes `at..+len`.
    pub fn shared_buffer_ranges(&self, at: usize, len: usize) -> Vec<std::ops::Range<usize>> {
        let ps = self.page_size;
        self.buffer_ranges(at, len)
            .into_iter()
            .filter(|r| {
                let page = r.start / ps;
                (at / ps..(at + len).div_ceil(ps)).any(|p| {
                    self.arena[p]
                        .as_ref()
                        .is_some_and(|m| m.shared && m.buf_page == page)
                })
            })
            .collect()
    }

    /// A store of `data` at arena byte `at` by the process (or by the kernel
    /// on its behalf): a shared page changes the buffer, a private page gets
    /// its copy first. The caller checked that the pages are writable.
    pub fn store(&mut self, at: usize, data: &[u8]) {
        let ps = self.page_size;
        let mut n = 0;
        while n < data.len() {
            let a = at + n;
            let chunk = (ps - a % ps).min(data.len() - n);
            let (page, off) = (a / ps, a % ps);
            let Some(m) = self.arena[page].as_mut() else {
                return;
            };
            if m.shared {
                let b = m.buf_page * ps + off;
                self.shadow[b..b + chunk].copy_from_slice(&data[n..n + chunk]);
            } else {
                if m.cow.is_none() {
                    let b = m.buf_page * ps;
                    m.cow = Some(self.shadow[b..b + ps].to_vec().into_boxed_slice());
                }
                if let Some(copy) = m.cow.as_mut() {
                    copy[off..off + chunk].copy_from_slice(&data[n..n + chunk]);
                }
            }
            n += chunk;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(vma: u64, buf_page: usize, shared: bool) -> Option<Mapped> {
        Some(Mapped {
            vma,
            buf_page,
            prot: Prot::RW,
            shared,
            maywrite: true,
            dontfork: false,
            cow: None,
        })
    }

    fn model() -> Model {
        let mut m = Model::new((0..4 * 16).map(|i| i as u8).collect(), 16, 8, 1 << 47);
        m.arena[1] = mapped(5, 0, true);
        m.arena[2] = mapped(5, 1, true);
        m.arena[3] = mapped(6, 1, false);
        m.arena[4] = mapped(6, 2, false);
        m
    }

    #[test]
    fn vmas_are_runs_of_one_number() {
        let m = model();
        assert_eq!(m.vma_range(2), Some(1..3));
        assert_eq!(m.vma_range(3), Some(3..5));
        assert_eq!(m.vma_range(0), None);
        assert_eq!(m.vmas_in(0..6), vec![None, Some(1..3), Some(3..5), None]);
        assert!(m.all_mapped(1..5));
        assert!(!m.all_mapped(0..2));
    }

    #[test]
    fn shared_stores_reach_the_buffer_private_ones_do_not() {
        let mut m = model();
        m.store(2 * 16 + 3, &[0xaa, 0xbb]);
        assert_eq!(&m.shadow[16 + 3..16 + 5], &[0xaa, 0xbb]);
        // Page 3 maps buffer page 1 privately: it sees the shared store...
        assert_eq!(m.byte(3 * 16 + 3), Some(0xaa));
        // ...until it is written, which copies it.
        m.store(3 * 16 + 4, &[0xcc]);
        assert_eq!(m.byte(3 * 16 + 4), Some(0xcc));
        assert_eq!(m.shadow[16 + 4], 0xbb);
        m.store(2 * 16, &[0x11]);
        assert_eq!(
            m.byte(3 * 16),
            Some(16),
            "a private copy no longer follows the buffer"
        );
        assert_eq!(m.buffer_ranges(3 * 16, 32), vec![32..48]);
    }

    #[test]
    fn split_and_unmap() {
        let mut m = model();
        m.split_off(2..3);
        assert_eq!(m.vma_range(1), Some(1..2));
        assert_eq!(m.vma_range(2), Some(2..3));
        m.unmap(3..4);
        assert_eq!(m.vma_range(4), Some(4..5));
        assert_eq!(m.accessible(16, 100, true), 32);
        assert_eq!(m.accessible(17, 10, false), 10);
        assert_eq!(m.accessible(0, 10, false), 0);
    }
}
