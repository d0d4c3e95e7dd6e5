// SPDX-License-Identifier: GPL-2.0
//! The scenarios about processes, files and the driver's state: `fork`,
//! `close` and `modes`. Their readers load through the pointer; a signal is
//! caught and reported by the handler of [`probe`].

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::mman::{MmapAdvise, ProtFlags};
use rand::RngExt;

use super::maps::Place;
use super::{Ctx, HEAD, SCRATCH, probe, write_map_pages};
use crate::child::{self, Ended};
use crate::device::{Access, Device, Share};
use crate::mapping::Mapping;
use crate::stress::{Switches, switch_mode};

/// How long a forked child may take to check and write a few pages.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);
/// Pages a forked child checks and writes.
const CHILD_PAGES: usize = 8;
/// How often `modes` switches.
const SWITCH_EVERY: Duration = Duration::from_millis(10);

/// What a forked child of `fork` found, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildFinding {
    Header = 20,
    ReadBack = 21,
    Buffer = 22,
    Shared = 23,
    Pread = 24,
}

impl ChildFinding {
    const ALL: [ChildFinding; 5] = [
        ChildFinding::Header,
        ChildFinding::ReadBack,
        ChildFinding::Buffer,
        ChildFinding::Shared,
        ChildFinding::Pread,
    ];

    fn from_status(code: i32) -> Option<ChildFinding> {
        Self::ALL.into_iter().find(|f| *f as i32 == code)
    }

    fn describe(self) -> &'static str {
        match self {
            ChildFinding::Header => {
                "a page of its MAP_PRIVATE view does not start as the buffer did"
            }
            ChildFinding::ReadBack => "its private write does not read back from its own view",
            ChildFinding::Buffer => "its private write reached the buffer (pread)",
            ChildFinding::Shared => "its private write shows in the MAP_SHARED mapping",
            ChildFinding::Pread => "pread of the device failed",
        }
    }
}

/// The value a writer stores into page `p`'s scratch area of a private
/// view: who wrote it and a count, and its complement.
fn private_value(writer: u64, p: usize, count: u64) -> [u8; SCRATCH] {
    let v = (0x50 << 56)
        | ((writer & 0xff) << 48)
        | ((p as u64 & 0xffff) << 32)
        | (count & 0xffff_ffff);
    let mut b = [0u8; SCRATCH];
    b[..8].copy_from_slice(&v.to_le_bytes());
    b[8..].copy_from_slice(&(!v).to_le_bytes());
    b
}

/// The page views `fork` checks: the private mapping (in the arena) and a
/// shared one of the same pages.
struct Views<'a> {
    ctx: &'a Ctx<'a>,
    place: &'a Place,
    shared: &'a Mapping,
}

impl Views<'_> {
    /// Writes `data` into page `p`'s scratch area of the private view and
    /// checks it: it reads back there, and neither the buffer (pread) nor
    /// the shared mapping sees it. No allocation (a forked child runs it).
    fn private_write(&self, p: usize, data: &[u8; SCRATCH]) -> Result<(), ChildFinding> {
        let t = self.ctx.t;
        let ps = t.ps();
        let at = (self.place.at[0] + p) * ps;
        let mut buf = [0u8; HEAD];
        self.place.arena.load_into(at, &mut buf);
        if buf != t.head(p) {
            return Err(ChildFinding::Header);
        }
        self.place.arena.store(at + ps - SCRATCH, data);
        let mut back = [0u8; SCRATCH];
        self.place.arena.load_into(at + ps - SCRATCH, &mut back);
        if back != *data {
            return Err(ChildFinding::ReadBack);
        }
        let mut now = [0u8; SCRATCH];
        match t.dev.pread(&mut now, t.scratch_offset(p) as u64) {
            Ok(SCRATCH) if now == t.scratch(p) => {}
            Ok(SCRATCH) => return Err(ChildFinding::Buffer),
            _ => return Err(ChildFinding::Pread),
        }
        self.shared.read_into(t.scratch_offset(p), &mut now);
        if now != t.scratch(p) {
            return Err(ChildFinding::Shared);
        }
        Ok(())
    }

    /// The forked child: writes and checks a few pages of its view.
    fn child(&self, k: u64) -> i32 {
        let n = self.ctx.t.pages;
        // A small generator: no allocation, no locks.
        let mut x = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for i in 0..CHILD_PAGES {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = (x % n as u64) as usize;
            if let Err(f) = self.private_write(p, &private_value(0xff, p, k << 8 | i as u64)) {
                return f as i32;
            }
        }
        0
    }
}

/// `fork`: a MAP_PRIVATE read-write mapping; each reader thread writes the
/// scratch areas of its own pages and checks them (and that the buffer and
/// a MAP_SHARED mapping never see them), while another thread forks child
/// after child, each writing and checking its own copy-on-write view.
pub(super) fn fork(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n, ps) = (ctx.t, ctx.t.pages, ctx.t.ps());
    let place = Place::new(n, ps, 1)?;
    let a = place.at[0];
    place.map(
        t,
        a,
        0,
        n,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_FIXED,
    )?;
    let _private = probe::register(0, place.addr(a), n * ps, 0);
    let shared = t
        .dev
        .map(0, n * ps, ProtFlags::PROT_READ, Share::Shared)
        .map_err(|e| format!("the MAP_SHARED mapping: {e}"))?;
    let _shared = probe::register(1, shared.addr(), shared.len(), 0);
    let views = Views {
        ctx,
        place: &place,
        shared: &shared,
    };
    probe::ready();
    // The first fork once every thread has started (made its own mappings
    // and allocations): fork then copies a steady process.
    let start = Barrier::new(ctx.threads + 1);
    std::thread::scope(|s| {
        let (views, start) = (&views, &start);
        for r in 0..ctx.threads {
            s.spawn(move || {
                // Pages r, r + T, r + 2T, ...: each has one writer.
                let mine: Vec<usize> = (r..n).step_by(ctx.threads).collect();
                let mut last: Vec<Option<[u8; SCRATCH]>> = vec![None; mine.len()];
                probe::warm_up();
                start.wait();
                if mine.is_empty() {
                    return;
                }
                let mut rng = ctx.rng(r as u64 + 1);
                let mut c = ctx.counts();
                let mut count = 0;
                while ctx.running() {
                    let i = rng.random_range(0..mine.len());
                    let p = mine[i];
                    if let Some(before) = last[i] {
                        let mut now = [0u8; SCRATCH];
                        views
                            .place
                            .arena
                            .load_into((a + p + 1) * ps - SCRATCH, &mut now);
                        c.read();
                        if now != before {
                            probe::problem(
                                super::check_bytes(
                                    p,
                                    &now,
                                    &before,
                                    "at its private scratch area, which only this thread writes,",
                                )
                                .unwrap_err(),
                            );
                        }
                    }
                    count += 1;
                    let data = private_value(r as u64, p, count);
                    c.extra();
                    // The header, the read back, pread and the shared view.
                    for _ in 0..4 {
                        c.read();
                    }
                    match views.private_write(p, &data) {
                        Ok(()) => last[i] = Some(data),
                        Err(f) => probe::problem(format!("page {p}: {}", f.describe())),
                    }
                }
            });
        }
        s.spawn(move || {
            start.wait();
            let mut c = ctx.counts();
            let mut k = 0u64;
            while ctx.running() {
                k += 1;
                // SAFETY: the child only loads and stores through the
                // mappings (atomics, volatile), preads into the stack and
                // leaves with _exit: no allocation, no locks.
                let forked = unsafe { child::spawn(|_| views.child(k)) };
                let proc = match forked {
                    Ok(p) => p,
                    Err(e) => {
                        probe::problem(format!("{e:#}"));
                        return;
                    }
                };
                let pid = proc.pid();
                c.mutation();
                match proc.collect(Some(Instant::now() + CHILD_TIMEOUT), |_| {}) {
                    Ok(Ended::Exited(0)) => {}
                    // The handler already said where.
                    Ok(Ended::Exited(probe::FAULT_EXIT)) => {}
                    Ok(Ended::Exited(code)) => probe::problem(format!(
                        "forked child {pid}: {}",
                        ChildFinding::from_status(code)
                            .map_or(format!("exit status {code}"), |f| f.describe().to_string())
                    )),
                    Ok(Ended::Signaled(sig)) => {
                        probe::problem(format!("forked child {pid} was killed by {sig}"))
                    }
                    Ok(Ended::Hung) => probe::problem(format!(
                        "forked child {pid} did not finish within {} s: killed (a hang?)",
                        CHILD_TIMEOUT.as_secs()
                    )),
                    Err(e) => probe::problem(format!("waiting for forked child {pid}: {e:#}")),
                }
            }
        });
    });
    Ok(())
}

/// `close`: open, map, and close the file while the readers fault through
/// the mapping (which must go on working), then munmap; over and over.
pub(super) fn close(ctx: &Ctx<'_>) -> Result<(), String> {
    let (t, n, ps) = (ctx.t, ctx.t.pages, ctx.t.ps());
    let reads_per_phase = 16 * ctx.threads as u64;
    let mut c = ctx.counts();
    let mut first = true;
    while ctx.running() {
        let dev = Device::open(t.dev.path(), Access::ReadOnly).map_err(|e| format!("{e:#}"))?;
        let map = dev
            .map(0, n * ps, ProtFlags::PROT_READ, Share::Shared)
            .map_err(|e| format!("mmap of {n} pages: {e}"))?;
        let valid = probe::register(0, map.addr(), map.len(), 0);
        if std::mem::take(&mut first) {
            probe::ready();
        }
        let reads = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for r in 0..ctx.threads {
                let (map, reads, stop) = (&map, &reads, &stop);
                s.spawn(move || {
                    let mut rng = ctx.rng(r as u64 + 1);
                    let mut c = ctx.counts();
                    let mut buf = [0u8; HEAD];
                    while !stop.load(Ordering::Relaxed) {
                        let p = rng.random_range(0..n);
                        map.read_into(p * ps, &mut buf);
                        c.read();
                        reads.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = t.check_head(p, &buf, "through the mapping") {
                            probe::problem(e);
                        }
                    }
                });
            }
            // Some reads before the close, some after.
            let wait_for = |n: u64| {
                while reads.load(Ordering::Relaxed) < n && ctx.running() {
                    std::thread::yield_now();
                }
            };
            wait_for(reads_per_phase);
            drop(dev);
            c.mutation();
            wait_for(reads.load(Ordering::Relaxed) + reads_per_phase);
            stop.store(true, Ordering::Relaxed);
        });
        drop(valid);
        drop(map);
    }
    Ok(())
}

/// `modes`: the mode (fault, faultaround, prefault, huge in turn) and map_pages
/// switched every 10 ms while readers map a random range (in the mode of
/// the moment), fault it in and drop it with MADV_DONTNEED, again and
/// again. The parent puts the mode and map_pages back.
pub(super) fn modes(ctx: &Ctx<'_>) -> Result<(), String> {
    let t = ctx.t;
    let m = t.modes.as_ref().map_err(|e| e.clone())?;
    let (n, ps) = (t.pages, t.ps());
    probe::ready();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = ctx.counts();
            let mut sw = Switches::new(m.mode);
            let mut map_pages = m.map_pages;
            while ctx.running() {
                let done = sw.done;
                let to = sw.next();
                sw.record(to, switch_mode(&m.debugfs, to));
                if sw.done > done {
                    c.mutation();
                }
                if let Some(on) = map_pages {
                    match write_map_pages(&m.dir, !on)
                        .map_err(|e| format!("{e}"))
                        .and_then(|()| super::read_map_pages(&m.dir).map_err(|e| format!("{e:#}")))
                    {
                        Ok(now) if now != on => {
                            map_pages = Some(now);
                            c.extra();
                        }
                        Ok(_) => probe::problem(format!(
                            "map_pages still reads {} after writing {}",
                            u8::from(on),
                            u8::from(!on)
                        )),
                        Err(e) => {
                            probe::problem(format!("switching map_pages: {e}"));
                            map_pages = None;
                        }
                    }
                }
                std::thread::sleep(SWITCH_EVERY);
            }
            for e in &sw.errors {
                probe::problem(e);
            }
            // Failures beyond the few described.
            for _ in sw.errors.len() as u64..sw.failed {
                probe::problem("a mode switch failed");
            }
        });
        for r in 0..ctx.threads {
            s.spawn(move || {
                let mut rng = ctx.rng(r as u64 + 1);
                let mut c = ctx.counts();
                let mut buf = [0u8; HEAD];
                while ctx.running() {
                    let k = rng.random_range(1..=n.min(64));
                    let from = rng.random_range(0..=n - k);
                    let map = match t.dev.map(
                        (from * ps) as u64,
                        k * ps,
                        ProtFlags::PROT_READ,
                        Share::Shared,
                    ) {
                        Ok(m) => m,
                        Err(e) => {
                            probe::problem(format!("mmap of pages {from}+{k}: {e}"));
                            return;
                        }
                    };
                    let _valid = probe::register(2 + r, map.addr(), map.len(), from);
                    for i in 0..32 {
                        let p = rng.random_range(0..k);
                        map.read_into(p * ps, &mut buf);
                        c.read();
                        if let Err(e) = t.check_head(from + p, &buf, "through the mapping") {
                            probe::problem(e);
                        }
                        if i % 8 == 7 {
                            if let Err(e) = map.advise(MmapAdvise::MADV_DONTNEED) {
                                probe::problem(format!("madvise(MADV_DONTNEED): {e}"));
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_findings_round_trip_through_the_exit_status() {
        for f in ChildFinding::ALL {
            assert_eq!(ChildFinding::from_status(f as i32), Some(f));
            assert_ne!(f as i32, probe::FAULT_EXIT);
        }
        assert_eq!(ChildFinding::from_status(0), None);
    }

    #[test]
    fn private_values_name_writer_page_and_count() {
        let v = private_value(2, 7, 9);
        assert_eq!(
            u64::from_le_bytes(v[..8].try_into().unwrap()),
            0x5002_0007_0000_0009
        );
        assert_eq!(
            u64::from_le_bytes(v[8..].try_into().unwrap()),
            !0x5002_0007_0000_0009
        );
    }
}
