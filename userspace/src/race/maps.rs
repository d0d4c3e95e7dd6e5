// SPDX-License-Identifier: GPL-2.0
//! The scenarios that change one mapping under its readers: `dontneed`,
//! `remap`, `mremap` and `mprotect`. Their mappings live in a fuzzer
//! [`Arena`] (a reserved range, so MAP_FIXED and mremap replace nothing
//! else), at 2 MiB-aligned places.

use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Ctx, HEAD, SCRATCH, Target, probe};
use crate::fuzz::sys::Arena;

/// Where the mappings start: a 2 MiB boundary, so that 512 pages of 4 KiB
/// fill one page table (one PMD entry's worth).
pub(super) const ALIGN: usize = 2 << 20;

/// Pages from `base` to the first `align`-aligned address at or after it.
pub(super) fn pages_to_alignment(base: usize, align: usize, page_size: usize) -> usize {
    (base.next_multiple_of(align) - base) / page_size
}

/// An arena with room for `places` mappings of `pages` pages, each at an
/// aligned arena page.
pub(super) struct Place {
    pub arena: Arena,
    /// The arena pages where the places start.
    pub at: Vec<usize>,
    pub pages: usize,
    page_size: usize,
}

impl Place {
    pub fn new(pages: usize, page_size: usize, places: usize) -> Result<Place, String> {
        let align = (ALIGN / page_size).max(1);
        let stride = pages.next_multiple_of(align);
        let arena = Arena::new(align + stride * places, page_size)
            .map_err(|e| format!("reserving the address range: {e}"))?;
        let first = pages_to_alignment(arena.addr(0), ALIGN, page_size);
        Ok(Place {
            arena,
            at: (0..places).map(|i| first + i * stride).collect(),
            pages,
            page_size,
        })
    }

    /// The address of arena page `page`.
    pub fn addr(&self, page: usize) -> usize {
        self.arena.addr(page * self.page_size)
    }

    /// Maps `pages` pages of the device from buffer page `from` at arena
    /// page `at`, with MAP_FIXED (over a placeholder or a mapping) or
    /// MAP_FIXED_NOREPLACE (into a hole).
    pub fn map(
        &self,
        t: &Target<'_>,
        at: usize,
        from: usize,
        pages: usize,
        prot: libc::c_int,
        flags: libc::c_int,
    ) -> Result<(), String> {
        let got = self
            .arena
            .mmap_at(
                at,
                pages * self.page_size,
                prot,
                flags,
                t.dev.as_raw_fd(),
                (from * self.page_size) as u64,
            )
            .map_err(|e| format!("mmap of pages {from}+{pages} at {:#x}: {e}", self.addr(at)))?;
        if got != self.addr(at) {
            return Err(format!(
                "mmap of pages {from}+{pages} at {:#x} returned {got:#x}",
                self.addr(at)
            ));
        }
        Ok(())
    }
}

pub(super) const R: u8 = 1;
pub(super) const W: u8 = 2;

fn libc_prot(p: u8) -> libc::c_int {
    let mut prot = libc::PROT_NONE;
    if p & R != 0 {
        prot |= libc::PROT_READ;
    }
    if p & W != 0 {
        prot |= libc::PROT_WRITE;
    }
    prot
}

/// What the arena pages are now (readable, writable), for the readers,
/// behind a sequence lock: the changer makes the sequence odd while it
/// changes a mapping, so a reader whose read began and ended with the same
/// even sequence knows that nothing changed meanwhile, and that an EFAULT
/// on a page mapped readable is the kernel's doing.
pub(super) struct Layout {
    seq: AtomicU64,
    prot: Vec<AtomicU8>,
}

impl Layout {
    pub fn new(pages: usize) -> Layout {
        Layout {
            seq: AtomicU64::new(0),
            prot: (0..pages).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Runs `f`, which changes mappings and says so with [`Layout::set`].
    pub fn change<T>(&self, f: impl FnOnce() -> T) -> T {
        self.seq.fetch_add(1, Ordering::SeqCst);
        let r = f();
        self.seq.fetch_add(1, Ordering::SeqCst);
        r
    }

    pub fn set(&self, pages: Range<usize>, prot: u8) {
        for p in &self.prot[pages] {
            p.store(prot, Ordering::SeqCst);
        }
    }

    /// The sequence now and the protection of arena page `page`.
    pub fn look(&self, page: usize) -> (u64, u8) {
        let seq = self.seq.load(Ordering::SeqCst);
        (seq, self.prot[page].load(Ordering::SeqCst))
    }

    /// True when nothing changed since `look` returned `seq`.
    pub fn unchanged_since(&self, seq: u64) -> bool {
        seq.is_multiple_of(2) && self.seq.load(Ordering::SeqCst) == seq
    }
}

/// A pause after a change, so that readers meet a settled layout too.
fn settle(rng: &mut ChaCha8Rng) {
    let until = Instant::now() + Duration::from_micros(rng.random_range(0..100));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// One read of buffer page `p`, mapped at arena page `at`, through
/// probe::read_at; EFAULT is fine unless the layout says otherwise.
fn read_checked(
    ctx: &Ctx<'_>,
    place: &Place,
    layout: &Layout,
    at: usize,
    p: usize,
    c: &mut probe::Counts<'_>,
) {
    let (seq, prot) = layout.look(at);
    let mut buf = [0u8; HEAD];
    c.read();
    match probe::read_at(place.addr(at), &mut buf) {
        Ok(()) => {
            if let Err(e) = ctx
                .t
                .check_head(p, &buf, "through a read that may meet a hole")
            {
                probe::problem(e);
            }
        }
        Err(Errno::EFAULT) => {
            c.hole();
            if prot & R != 0 && layout.unchanged_since(seq) {
                probe::problem(format!(
                    "a read of page {p} at {:#x} through {}: EFAULT while it was mapped readable \
                     and nothing changed the mapping (a fault answered with SIGBUS?)",
                    place.addr(at),
                    probe::method_name()
                ));
            }
        }
        Err(e) => probe::problem(format!(
            "a read of page {p} through {}: {e}, where success or EFAULT was expected",
            probe::method_name()
        )),
    }
}

/// Readers of random pages at random places of `places`, until the end.
fn spawn_readers<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    ctx: &'s Ctx<'_>,
    place: &'s Place,
    layout: &'s Layout,
    places: &'s [usize],
    start: &'s Barrier,
) {
    for r in 0..ctx.threads {
        s.spawn(move || {
            probe::warm_up();
            start.wait();
            let mut rng = ctx.rng(r as u64 + 1);
            let mut c = ctx.counts();
            while ctx.running() {
                let p = rng.random_range(0..place.pages);
                let at = places[rng.random_range(0..places.len())] + p;
                read_checked(ctx, place, layout, at, p, &mut c);
            }
        });
    }
}

/// The changing thread: `step` over and over until the end or a failure,
/// once every thread is at `start`.
fn run_changer(
    ctx: &Ctx<'_>,
    start: &Barrier,
    mut step: impl FnMut(&mut ChaCha8Rng, &mut probe::Counts<'_>) -> Result<(), String>,
) {
    start.wait();
    let mut rng = ctx.rng(0);
    let mut c = ctx.counts();
    while ctx.running() {
        if let Err(e) = step(&mut rng, &mut c) {
            probe::problem(e);
            return;
        }
        settle(&mut rng);
    }
}

/// `dontneed`: MADV_DONTNEED of the whole mapping over and over while the
/// readers load page headers through it (a signal is a problem).
pub(super) fn dontneed(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n, ps) = (ctx.t, ctx.t.pages, ctx.t.ps());
    let place = Place::new(n, ps, 1)?;
    let a = place.at[0];
    place.map(
        t,
        a,
        0,
        n,
        libc::PROT_READ,
        libc::MAP_SHARED | libc::MAP_FIXED,
    )?;
    let _valid = probe::register(0, place.addr(a), n * ps, 0);
    probe::ready();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = ctx.counts();
            while ctx.running() {
                match place.arena.madvise(a, n, libc::MADV_DONTNEED) {
                    Ok(_) => c.mutation(),
                    Err(e) => {
                        probe::problem(format!("madvise(MADV_DONTNEED) of the mapping: {e}"));
                        return;
                    }
                }
            }
        });
        for r in 0..ctx.threads {
            let place = &place;
            s.spawn(move || {
                let mut rng = ctx.rng(r as u64 + 1);
                let mut c = ctx.counts();
                let mut buf = [0u8; HEAD];
                while ctx.running() {
                    let p = rng.random_range(0..n);
                    place.arena.load_into((a + p) * ps, &mut buf);
                    c.read();
                    if let Err(e) = t.check_head(p, &buf, "through the mapping") {
                        probe::problem(e);
                    }
                }
            });
        }
    });
    Ok(())
}

/// `remap`: munmap and mmap again at the same address (all of it or a
/// part), or MAP_FIXED over it.
pub(super) fn remap(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n) = (ctx.t, ctx.t.pages);
    let place = Place::new(n, t.ps(), 1)?;
    let a = place.at[0];
    let layout = Layout::new(place.arena.pages());
    let shared = libc::MAP_SHARED;
    place.map(t, a, 0, n, libc::PROT_READ, shared | libc::MAP_FIXED)?;
    layout.set(a..a + n, R);
    probe::ready();
    let places = [a];
    // Every thread has made its own mappings (its signal stack, its heap)
    // before the first hole is there: a new mapping would land in it.
    let start = Barrier::new(ctx.threads + 1);
    std::thread::scope(|s| {
        spawn_readers(s, ctx, &place, &layout, &places, &start);
        run_changer(ctx, &start, |rng, c| {
            let (first, k) = match rng.random_range(0..3) {
                0 => (0, n),
                1 => {
                    c.mutation();
                    return layout.change(|| {
                        place.map(t, a, 0, n, libc::PROT_READ, shared | libc::MAP_FIXED)
                    });
                }
                _ => {
                    let first = rng.random_range(0..n);
                    (first, rng.random_range(1..=(n - first).min(64)))
                }
            };
            let pages = a + first..a + first + k;
            layout.change(|| {
                c.mutation();
                place
                    .arena
                    .munmap(pages.start, k)
                    .map_err(|e| format!("munmap of pages {first}+{k}: {e}"))?;
                layout.set(pages.clone(), 0);
                Ok::<(), String>(())
            })?;
            settle(rng);
            layout.change(|| {
                c.mutation();
                place
                    .map(
                        t,
                        pages.start,
                        first,
                        k,
                        libc::PROT_READ,
                        shared | libc::MAP_FIXED_NOREPLACE,
                    )
                    .map_err(|e| format!("{e} (into the hole just made)"))?;
                layout.set(pages.clone(), R);
                Ok(())
            })
        });
    });
    Ok(())
}

/// Reads the start of every page mapped at arena page `at` in one call:
/// they must all be there, as they were.
fn check_all(ctx: &Ctx<'_>, place: &Place, at: usize, what: &str) -> Result<(), String> {
    let t = ctx.t;
    let mut heads = vec![[0u8; HEAD]; place.pages];
    probe::read_page_starts(place.addr(at), t.ps(), &mut heads)
        .map_err(|(p, e)| format!("{what}: reading page {p} at {:#x}: {e}", place.addr(at + p)))?;
    for (p, h) in heads.iter().enumerate() {
        t.check_head(p, h, &format!("{what}, at {:#x},", place.addr(at + p)))?;
    }
    Ok(())
}

/// `mremap`: shrink and grow back (which mremap must refuse: the driver's
/// mappings are VM_DONTEXPAND; an mmap puts the rest back), move to a
/// second place and back (MREMAP_MAYMOVE | MREMAP_FIXED), the content
/// checked after each move.
pub(super) fn mremap(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n) = (ctx.t, ctx.t.pages);
    let place = Place::new(n, t.ps(), 2)?;
    let (a, b) = (place.at[0], place.at[1]);
    let layout = Layout::new(place.arena.pages());
    let fixed = libc::MAP_SHARED | libc::MAP_FIXED;
    place.map(t, a, 0, n, libc::PROT_READ, fixed)?;
    layout.set(a..a + n, R);
    let refill = |at: usize, k: usize| {
        place
            .arena
            .refill(at, k)
            .map(drop)
            .map_err(|e| format!("a placeholder at {:#x} after mremap: {e}", place.addr(at)))
    };
    probe::ready();
    let places = [a, b];
    let start = Barrier::new(ctx.threads + 1);
    std::thread::scope(|s| {
        spawn_readers(s, ctx, &place, &layout, &places, &start);
        let mut cycle = 0u64;
        run_changer(ctx, &start, |rng, c| {
            cycle += 1;
            if n >= 2 && cycle % 2 == 1 {
                let k = rng.random_range(1..n);
                layout.change(|| {
                    c.mutation();
                    let got = place
                        .arena
                        .mremap(a, n, k, None)
                        .map_err(|e| format!("mremap shrinking {n} pages to {k}: {e}"))?;
                    if got != place.addr(a) {
                        return Err(format!("mremap shrinking {n} pages to {k} moved them"));
                    }
                    layout.set(a + k..a + n, 0);
                    refill(a + k, n - k)
                })?;
                settle(rng);
                if t.dontexpand {
                    c.mutation();
                    match place.arena.mremap(a, k, n, None) {
                        Err(Errno::EFAULT) => {}
                        Err(e) => probe::problem(format!(
                            "mremap growing {k} pages to {n}: {e}, expected EFAULT (VM_DONTEXPAND)"
                        )),
                        Ok(got) => {
                            probe::problem(format!(
                                "mremap grew a mapping of the device from {k} to {n} pages (to {got:#x}), \
                                 which VM_DONTEXPAND forbids"
                            ));
                            return Err("stopping after the mapping grew".into());
                        }
                    }
                }
                c.mutation();
                return layout.change(|| {
                    place.map(t, a, 0, n, libc::PROT_READ, fixed)?;
                    layout.set(a..a + n, R);
                    Ok(())
                });
            }
            for (from, to) in [(a, b), (b, a)] {
                layout.change(|| {
                    c.mutation();
                    let got = place.arena.mremap(from, n, n, Some(to)).map_err(|e| {
                        format!("mremap moving {n} pages to {:#x}: {e}", place.addr(to))
                    })?;
                    if got != place.addr(to) {
                        return Err(format!("mremap to {:#x} moved to {got:#x}", place.addr(to)));
                    }
                    layout.set(from..from + n, 0);
                    layout.set(to..to + n, R);
                    refill(from, n)
                })?;
                c.extra();
                if let Err(e) = check_all(ctx, &place, to, "after the move") {
                    probe::problem(e);
                }
                settle(rng);
            }
            Ok(())
        });
    });
    Ok(())
}

/// `mprotect`: sub-ranges switched between PROT_READ, PROT_READ |
/// PROT_WRITE and PROT_NONE; readers and a writer (of the scratch areas,
/// each write checked with pread) use probe::read_at/write_at.
pub(super) fn mprotect(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n, ps) = (ctx.t, ctx.t.pages, ctx.t.ps());
    let place = Place::new(n, ps, 1)?;
    let a = place.at[0];
    let layout = Layout::new(place.arena.pages());
    place.map(
        t,
        a,
        0,
        n,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_FIXED,
    )?;
    layout.set(a..a + n, R | W);
    probe::ready();
    let places = [a];
    let start = Barrier::new(ctx.threads + 2);
    let last = std::thread::scope(|s| {
        spawn_readers(s, ctx, &place, &layout, &places, &start);
        let writer = s.spawn(|| {
            probe::warm_up();
            start.wait();
            write_scratch(ctx, &place, &layout, a)
        });
        run_changer(ctx, &start, |rng, c| {
            let first = rng.random_range(0..n);
            let k = rng.random_range(1..=(n - first).min(64));
            let prot = [R, R | W, R | W, 0][rng.random_range(0..4)];
            c.mutation();
            layout.change(|| {
                place
                    .arena
                    .mprotect(a + first, k, libc_prot(prot))
                    .map_err(|e| format!("mprotect of pages {first}+{k}: {e}"))?;
                layout.set(a + first..a + first + k, prot);
                Ok(())
            })
        });
        writer.join().unwrap_or_default()
    });
    // Every write that succeeded is in the buffer.
    for (p, data) in last.iter().enumerate() {
        let Some(data) = data else { continue };
        match t.dev.read_exact_at(t.scratch_offset(p), SCRATCH) {
            Ok(now) if now == data => {}
            Ok(now) => probe::problem(
                super::check_bytes(p, &now, data, "at the end, by pread, at its scratch area,")
                    .unwrap_err(),
            ),
            Err(e) => probe::problem(format!("pread at the end: {e:#}")),
        }
    }
    Ok(())
}

/// The 16 bytes the writer writes: its count and page, twice.
fn scratch_value(p: usize, count: u64) -> [u8; SCRATCH] {
    let v = (0x52 << 56) | ((p as u64) << 32) | (count & 0xffff_ffff);
    let mut b = [0u8; SCRATCH];
    b[..8].copy_from_slice(&v.to_le_bytes());
    b[8..].copy_from_slice(&(!v).to_le_bytes());
    b
}

/// Writes random pages' scratch areas with probe::write_at and checks
/// each write that succeeds with pread; returns the last write of each page.
fn write_scratch(
    ctx: &Ctx<'_>,
    place: &Place,
    layout: &Layout,
    a: usize,
) -> Vec<Option<[u8; SCRATCH]>> {
    let t = ctx.t;
    let mut rng = ctx.rng(1000);
    let mut c = ctx.counts();
    let mut last = vec![None; t.pages];
    let mut count = 0;
    while ctx.running() {
        let p = rng.random_range(0..t.pages);
        count += 1;
        let data = scratch_value(p, count);
        let (seq, prot) = layout.look(a + p);
        let addr = place.addr(a + p) + t.ps() - SCRATCH;
        c.extra();
        // SAFETY: the scratch area of a page of the device mapping, which
        // no Rust reference points into.
        match unsafe { probe::write_at(addr, &data) } {
            Ok(()) => {
                last[p] = Some(data);
                match t.dev.read_exact_at(t.scratch_offset(p), SCRATCH) {
                    Ok(now) if now == data => {}
                    Ok(now) => probe::problem(format!(
                        "page {p}: wrote {} to its scratch area through the mapping, pread reads {}",
                        data.escape_ascii(),
                        now.escape_ascii()
                    )),
                    Err(e) => probe::problem(format!("pread: {e:#}")),
                }
            }
            Err(Errno::EFAULT) => {
                if prot & W != 0 && layout.unchanged_since(seq) {
                    probe::problem(format!(
                        "a write to page {p} through {}: EFAULT while it was mapped writable and \
                         nothing changed the mapping",
                        probe::method_name()
                    ));
                }
            }
            Err(e) => probe::problem(format!(
                "a write to page {p} through {}: {e}, where success or EFAULT was expected",
                probe::method_name()
            )),
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_counts_pages_to_the_next_boundary() {
        assert_eq!(pages_to_alignment(0x20_0000, ALIGN, 4096), 0);
        assert_eq!(pages_to_alignment(0x20_1000, ALIGN, 4096), 511);
        assert_eq!(pages_to_alignment(0x3f_f000, ALIGN, 4096), 1);
        assert_eq!(pages_to_alignment(0x7f12_3456_7000, ALIGN, 4096), 0x99);
    }

    #[test]
    fn places_are_aligned_and_apart() {
        let place = Place::new(300, 4096, 2).unwrap();
        for &at in &place.at {
            assert_eq!(place.addr(at) % ALIGN, 0);
            assert!(at + 300 <= place.arena.pages());
        }
        assert_eq!(place.at[1] - place.at[0], 512);
    }

    #[test]
    fn the_layout_tells_a_settled_read_from_one_during_a_change() {
        let l = Layout::new(4);
        l.set(0..4, R);
        let (seq, prot) = l.look(1);
        assert_eq!(prot, R);
        assert!(l.unchanged_since(seq));
        let during = l.change(|| {
            l.set(1..2, 0);
            l.look(1).0
        });
        assert!(!l.unchanged_since(seq));
        assert!(!l.unchanged_since(during));
        let (after, prot) = l.look(1);
        assert_eq!(prot, 0);
        assert!(l.unchanged_since(after));
    }

    #[test]
    fn scratch_values_differ_and_protections_map() {
        assert_ne!(scratch_value(1, 1), scratch_value(1, 2));
        assert_ne!(scratch_value(1, 1), scratch_value(2, 1));
        assert_eq!(libc_prot(R | W), libc::PROT_READ | libc::PROT_WRITE);
        assert_eq!(libc_prot(0), libc::PROT_NONE);
    }
}
