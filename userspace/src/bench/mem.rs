// SPDX-License-Identifier: GPL-2.0

//! The memory under test and how it is touched, read and timed: mappings
//! (of the device, of a memfd, anonymous), a pre-filled memfd, the touch and
//! read loops, minor-fault counts and the clock.
//!
//! The mappings are [`Mapping`]s, so the mapped memory is never made into a
//! Rust slice (it is shared with the kernel and other mappings).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::sys::resource::{UsageWho, getrusage};

use crate::mapping::Mapping;

/// How a region is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `MAP_SHARED`, `PROT_READ`, of a file (the device or a memfd).
    SharedFile,
    /// The same with `MAP_POPULATE`.
    SharedFilePopulate,
    /// `MAP_PRIVATE | MAP_ANONYMOUS`, `PROT_READ | PROT_WRITE`.
    Anonymous,
    /// `MAP_PRIVATE`, `PROT_READ | PROT_WRITE`, of a file: a write gets a
    /// private copy of the page.
    PrivateFile,
}

/// Maps `len` bytes as `kind` (of `fd` at offset 0 for the file kinds), for
/// one measurement.
pub fn map(kind: Kind, fd: Option<BorrowedFd<'_>>, len: usize) -> Result<Mapping, Errno> {
    match kind {
        Kind::SharedFile | Kind::SharedFilePopulate => {
            let populate = if kind == Kind::SharedFilePopulate {
                MapFlags::MAP_POPULATE
            } else {
                MapFlags::empty()
            };
            let fd = fd.ok_or(Errno::EBADF)?;
            Mapping::file(
                fd,
                0,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED | populate,
            )
        }
        Kind::PrivateFile => Mapping::file(
            fd.ok_or(Errno::EBADF)?,
            0,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE,
        ),
        Kind::Anonymous => Mapping::anonymous(
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE,
        ),
    }
}

/// Runs of physically consecutive pages (ascending PFNs, from
/// /proc/self/pagemap) per 1000 pages of `map`: 1000 when no two
/// neighbours are consecutive, near 0 for one contiguous block. None when
/// the PFNs are hidden (not root) or a page is not mapped.
pub fn pfn_runs_per_1000(map: &Mapping, page_size: usize) -> Option<f64> {
    let pages = map.len() / page_size;
    let entries = crate::pagemap::read_self(map.addr(), pages, page_size).ok()?;
    let pfns: Option<Vec<u64>> = entries
        .iter()
        .map(|e| e.pfn().filter(|&p| p != 0))
        .collect();
    let pfns = pfns?;
    let runs = 1 + pfns.windows(2).filter(|w| w[1] != w[0] + 1).count();
    Some(runs as f64 * 1000.0 / pages as f64)
}

/// A memfd of `len` bytes, every page written (so that the page cache holds
/// it before it is mapped, like the device's buffer).
pub fn filled_memfd(len: usize, page_size: usize) -> Result<File> {
    let fd = memfd_create(c"mapdrv-bench", MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    let file = File::from(fd);
    file.set_len(len as u64).context("ftruncate of the memfd")?;
    let mut chunk = vec![0u8; (1 << 20).min(len)];
    for (i, page) in chunk.chunks_mut(page_size).enumerate() {
        page.fill(b'a' + (i % 26) as u8);
    }
    let mut offset = 0;
    while offset < len {
        let n = chunk.len().min(len - offset);
        nix::sys::uio::pwrite(file.as_fd(), &chunk[..n], file_offset(offset)?)
            .context("filling the memfd")?;
        offset += n;
    }
    Ok(file)
}

/// A memfd of `len` bytes on shmem with transparent huge pages where the
/// kernel gives them: filled through a shared mapping marked
/// `MADV_HUGEPAGE` (with shmem_enabled=advise, the fault path allocates 2 MiB
/// folios for such a mapping; a write(2) has no mapping to ask with), every
/// page written, then unmapped. Later mappings of it get PMD entries where
/// their address is aligned (`Mapping::file` places them so).
pub fn filled_thp_memfd(len: usize, page_size: usize) -> Result<File> {
    let fd = memfd_create(c"mapdrv-bench-thp", MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    let file = File::from(fd);
    file.set_len(len as u64)
        .context("ftruncate of the THP memfd")?;
    let map = Mapping::file(
        file.as_fd(),
        0,
        len,
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        MapFlags::MAP_SHARED,
    )
    .context("mapping the THP memfd to fill it")?;
    // Without THP in the kernel (32-bit ARM) the advice is refused: the
    // memfd is then filled with small pages, like the plain one.
    let _ = map.advise(nix::sys::mman::MmapAdvise::MADV_HUGEPAGE);
    map.touch_write(page_size, b'a');
    Ok(file)
}

/// `offset` as libc's `off_t`, which is 32 bits on 32-bit ARM: an error
/// there past 2 GiB (more than the buffer's 1 GiB at most), never a
/// wrapped offset.
fn file_offset(offset: usize) -> Result<libc::off_t> {
    libc::off_t::try_from(offset).with_context(|| format!("offset {offset} does not fit in off_t"))
}

/// Reads `len` bytes of `file` from offset 0 with pread(2) into `buf`, a
/// chunk of `buf.len()` at a time. Returns the bytes read.
pub fn pread_all(file: BorrowedFd<'_>, len: usize, buf: &mut [u8]) -> Result<usize> {
    let mut offset = 0;
    while offset < len {
        let want = buf.len().min(len - offset);
        let n =
            nix::sys::uio::pread(file, &mut buf[..want], file_offset(offset)?).context("pread")?;
        if n == 0 {
            break;
        }
        offset += n;
    }
    Ok(offset)
}

/// This thread's minor page faults so far (getrusage RUSAGE_THREAD): the
/// faults of the touch being measured, not those of other threads (the
/// test harness runs tests on several threads at once).
pub fn minor_faults() -> u64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| u.minor_page_faults() as u64)
        .unwrap_or(0)
}

/// Times `f` on CLOCK_MONOTONIC (what `std::time::Instant` reads on Linux),
/// in nanoseconds.
pub fn time_ns<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let value = f();
    (start.elapsed().as_nanos() as f64, value)
}

/// The resolution clock_getres(2) reports for CLOCK_MONOTONIC, in ns.
pub fn clock_resolution_ns() -> Option<u64> {
    nix::time::clock_getres(nix::time::ClockId::CLOCK_MONOTONIC)
        .ok()
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_region_touch_and_read() {
        let ps = 4096;
        let r = map(Kind::Anonymous, None, 4 * ps).unwrap();
        assert_eq!(r.touch_read(ps), 0);
        r.touch_write(ps, 1);
        assert_eq!(r.touch_read(ps), 4);
        // One byte of value 1 at the start of each of 4 pages; the sum is
        // over four accumulators XORed, each page's first word lands in one.
        assert_ne!(r.read_words(), 0);
    }

    #[test]
    fn memfd_is_filled_and_preads_back() {
        let ps = 4096;
        let f = filled_memfd(3 * ps, ps).unwrap();
        let mut buf = vec![0u8; 2 * ps];
        assert_eq!(pread_all(f.as_fd(), 3 * ps, &mut buf).unwrap(), 3 * ps);
        let m = map(Kind::SharedFile, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(
            m.touch_read(ps),
            u64::from(b'a') + u64::from(b'b') + u64::from(b'c')
        );
        // MAP_POPULATE maps every page at mmap time: all present in
        // /proc/self/pagemap before any touch, where a plain shared mapping
        // of the same file has none. (Counting minor faults around a touch
        // here would also count the test binary's own first touches of its
        // code and stack, which depend on how the binary was built.)
        let present = |r: &Mapping| {
            crate::pagemap::read_self(r.addr(), 3, ps)
                .map(|e| crate::pagemap::present_pages(&e).len())
                .unwrap()
        };
        let plain = map(Kind::SharedFile, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(
            present(&plain),
            0,
            "a fresh MAP_SHARED mapping has no page mapped"
        );
        let p = map(Kind::SharedFilePopulate, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(present(&p), 3, "MAP_POPULATE left pages to fault");
    }
}
