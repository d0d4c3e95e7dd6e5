// SPDX-License-Identifier: GPL-2.0

//! The memory under test and how it is touched, read and timed: mappings
//! (of the device, of a memfd, anonymous), a pre-filled memfd, the touch and
//! read loops, minor-fault counts and the clock.
//!
//! Like `device.rs`, the mapped memory is never made into a Rust slice (it is
//! shared with the kernel and other mappings): every access is a volatile
//! load or store through a raw pointer.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::resource::{UsageWho, getrusage};

/// How a region is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `MAP_SHARED`, `PROT_READ`, of a file (the device or a memfd).
    SharedFile,
    /// The same with `MAP_POPULATE`.
    SharedFilePopulate,
    /// `MAP_PRIVATE | MAP_ANONYMOUS`, `PROT_READ | PROT_WRITE`.
    Anonymous,
}

/// A mapping made for one measurement; unmapped when dropped.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Maps `len` bytes as `kind` (of `fd` at offset 0 for the file kinds).
    pub fn map(kind: Kind, fd: Option<BorrowedFd<'_>>, len: usize) -> Result<Region, Errno> {
        let (prot, flags, raw_fd) = match kind {
            Kind::SharedFile | Kind::SharedFilePopulate => {
                let populate = if kind == Kind::SharedFilePopulate {
                    libc::MAP_POPULATE
                } else {
                    0
                };
                let fd = fd.ok_or(Errno::EBADF)?;
                (libc::PROT_READ, libc::MAP_SHARED | populate, fd.as_raw_fd())
            }
            Kind::Anonymous => (
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
            ),
        };
        // SAFETY: no address hint and no MAP_FIXED: the kernel picks a free
        // range, so no memory of this process is replaced.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, raw_fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Region { ptr, len })
    }

    /// The start address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Runs of physically consecutive pages (ascending PFNs, from
    /// /proc/self/pagemap) per 1000 pages of the region: 1000 when no two
    /// neighbours are consecutive, near 0 for one contiguous block. None
    /// when the PFNs are hidden (not root) or a page is not mapped.
    pub fn pfn_runs_per_1000(&self, page_size: usize) -> Option<f64> {
        let pages = self.len / page_size;
        let entries = crate::pagemap::read_self(self.addr(), pages, page_size).ok()?;
        let pfns: Option<Vec<u64>> = entries
            .iter()
            .map(|e| e.pfn().filter(|&p| p != 0))
            .collect();
        let pfns = pfns?;
        let runs = 1 + pfns.windows(2).filter(|w| w[1] != w[0] + 1).count();
        Some(runs as f64 * 1000.0 / pages as f64)
    }

    /// Reads one byte of each page, in order (the first touch of a file
    /// mapping). Returns a value that depends on the bytes read.
    pub fn touch_read(&self, page_size: usize) -> u64 {
        let mut sum = 0u64;
        for offset in (0..self.len).step_by(page_size) {
            // SAFETY: `offset < len`, inside the mapping, which is readable
            // and stays mapped while `self` lives.
            let byte = unsafe { self.ptr.as_ptr().add(offset).read_volatile() };
            sum = sum.wrapping_add(u64::from(byte));
        }
        sum
    }

    /// Writes one byte of each page, in order (the first touch of anonymous
    /// memory: it allocates and zeroes the page).
    ///
    /// # Panics
    ///
    /// If the region is not writable (not [`Kind::Anonymous`]): the write
    /// would kill the process with SIGSEGV instead.
    pub fn touch_write(&self, page_size: usize, kind: Kind) {
        assert_eq!(kind, Kind::Anonymous, "only anonymous regions are written");
        for offset in (0..self.len).step_by(page_size) {
            // SAFETY: `offset < len`, inside the mapping, which is writable
            // (anonymous, checked above) and private to this process.
            unsafe { self.ptr.as_ptr().add(offset).write_volatile(1) };
        }
    }

    /// Reads every byte, 8 at a time in order, into a sum (sequential read).
    pub fn read_all(&self) -> u64 {
        let words = self.len / 8;
        let base = self.ptr.as_ptr().cast::<u64>();
        let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
        let mut i = 0;
        while i + 4 <= words {
            // SAFETY: `i + 3 < words`, so all four words lie inside the
            // mapping (page aligned, hence 8-byte aligned), which is readable.
            unsafe {
                a = a.wrapping_add(base.add(i).read_volatile());
                b = b.wrapping_add(base.add(i + 1).read_volatile());
                c = c.wrapping_add(base.add(i + 2).read_volatile());
                d = d.wrapping_add(base.add(i + 3).read_volatile());
            }
            i += 4;
        }
        while i < words {
            // SAFETY: `i < words`: inside the mapping.
            a = a.wrapping_add(unsafe { base.add(i).read_volatile() });
            i += 1;
        }
        a ^ b ^ c ^ d
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are a mapping this value made and owns; no
        // reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
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
        nix::sys::uio::pwrite(file.as_fd(), &chunk[..n], offset as libc::off_t)
            .context("filling the memfd")?;
        offset += n;
    }
    Ok(file)
}

/// Reads `len` bytes of `file` from offset 0 with pread(2) into `buf`, a
/// chunk of `buf.len()` at a time. Returns the bytes read.
pub fn pread_all(file: BorrowedFd<'_>, len: usize, buf: &mut [u8]) -> Result<usize> {
    let mut offset = 0;
    while offset < len {
        let want = buf.len().min(len - offset);
        let n =
            nix::sys::uio::pread(file, &mut buf[..want], offset as libc::off_t).context("pread")?;
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
        let r = Region::map(Kind::Anonymous, None, 4 * ps).unwrap();
        assert_eq!(r.touch_read(ps), 0);
        r.touch_write(ps, Kind::Anonymous);
        assert_eq!(r.touch_read(ps), 4);
        // One byte of value 1 at the start of each of 4 pages; the sum is
        // over four accumulators XORed, each page's first word lands in one.
        assert_ne!(r.read_all(), 0);
    }

    #[test]
    fn memfd_is_filled_and_preads_back() {
        let ps = 4096;
        let f = filled_memfd(3 * ps, ps).unwrap();
        let mut buf = vec![0u8; 2 * ps];
        assert_eq!(pread_all(f.as_fd(), 3 * ps, &mut buf).unwrap(), 3 * ps);
        let m = Region::map(Kind::SharedFile, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(
            m.touch_read(ps),
            u64::from(b'a') + u64::from(b'b') + u64::from(b'c')
        );
        // MAP_POPULATE maps every page at mmap time: all present in
        // /proc/self/pagemap before any touch, where a plain shared mapping
        // of the same file has none. (Counting minor faults around a touch
        // here would also count the test binary's own first touches of its
        // code and stack, which depend on how the binary was built.)
        let present = |r: &Region| {
            crate::pagemap::read_self(r.addr(), 3, ps)
                .map(|e| crate::pagemap::present_pages(&e).len())
                .unwrap()
        };
        let plain = Region::map(Kind::SharedFile, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(
            present(&plain),
            0,
            "a fresh MAP_SHARED mapping has no page mapped"
        );
        let p = Region::map(Kind::SharedFilePopulate, Some(f.as_fd()), 3 * ps).unwrap();
        assert_eq!(present(&p), 3, "MAP_POPULATE left pages to fault");
    }
}
