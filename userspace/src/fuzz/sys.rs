// SPDX-License-Identifier: GPL-2.0
//! The raw system calls of the fuzzer, with the arguments exactly as given
//! (bad pointers, huge lengths and all), and the arena they may change.
//!
//! Everything here that can change the fuzzer's own memory takes an
//! [`Arena`] range: the arena is an address range the fuzzer reserved for
//! the purpose (a [`Mapping`] that it owns), so a `MAP_FIXED`, `munmap` or
//! `mremap` there replaces nothing that the rest of the program uses.

use std::ffi::c_void;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags};

use crate::device::off64;
use crate::mapping::Mapping;

/// A result as the kernel gave it: the return value or the errno.
pub type SysResult = Result<usize, Errno>;

fn check(ret: isize) -> SysResult {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

fn check_ptr(ret: *mut c_void) -> SysResult {
    if ret == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

/// `len` bytes of placeholder (anonymous, `PROT_NONE`, not reserved) at
/// `addr` with `MAP_FIXED_NOREPLACE`: never replaces a mapping, fails with
/// `EEXIST` where something is mapped already.
fn map_placeholder_noreplace(addr: *mut c_void, len: usize) -> SysResult {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping, so nothing that
    // the program uses changes; the new mapping is the caller's to unmap.
    check_ptr(unsafe {
        libc::mmap(
            addr,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    })
}

/// Whether the page at `addr` lies in this process's user address space:
/// asking for it with `MAP_FIXED_NOREPLACE` either gets it (given back at
/// once) or finds something there already (`EEXIST`); above the top of the
/// user address space the kernel refuses with `ENOMEM`.
pub fn is_user_page(addr: usize, page_size: usize) -> bool {
    match map_placeholder_noreplace(addr as *mut c_void, page_size) {
        Ok(got) => {
            // SAFETY: `got` is the page this call just mapped (elsewhere
            // than `addr` on a kernel that takes the flag for a hint), which
            // nothing else knows about.
            unsafe { libc::munmap(got as *mut c_void, page_size) };
            got == addr
        }
        Err(e) => e == Errno::EEXIST,
    }
}

/// The fuzzer's reserved address range: `pages` pages, each either a
/// placeholder (anonymous `PROT_NONE`) or a mapping of the device. The
/// range is a [`Mapping`] reservation, which unmaps all of it when dropped;
/// the calls here only ever change pages inside it.
#[derive(Debug)]
pub struct Arena {
    range: Mapping,
    pages: usize,
    page_size: usize,
}

impl Arena {
    /// Reserves `pages` pages of placeholders.
    pub fn new(pages: usize, page_size: usize) -> Result<Arena, Errno> {
        let range = Mapping::anonymous(
            pages * page_size,
            ProtFlags::PROT_NONE,
            MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
        )?;
        Ok(Arena {
            range,
            pages,
            page_size,
        })
    }

    pub fn pages(&self) -> usize {
        self.pages
    }

    pub fn bytes(&self) -> usize {
        self.range.len()
    }

    /// The address of arena byte `at`.
    pub fn addr(&self, at: usize) -> usize {
        self.range.addr() + at
    }

    /// A pointer to arena byte `at` (callers check that it is inside).
    fn ptr(&self, at: usize) -> *mut c_void {
        self.range.as_ptr().wrapping_add(at).cast()
    }

    /// A pointer to arena page `page`, checking that `pages` pages from it
    /// lie inside the arena.
    fn pages_at(&self, page: usize, pages: usize) -> *mut c_void {
        assert!(
            page.checked_add(pages).is_some_and(|end| end <= self.pages),
            "arena pages {page}+{pages} outside the arena of {}",
            self.pages
        );
        self.ptr(page * self.page_size)
    }

    /// Puts placeholders on pages that are unmapped (after `munmap`, a
    /// shrinking `mremap`, a failed `MAP_FIXED`). Fails with `EEXIST` if any
    /// of them is still mapped, which proves they all were free otherwise.
    pub fn refill(&self, page: usize, pages: usize) -> SysResult {
        // The range is inside the arena, which is ours (owned by its
        // Mapping): what lands there stays there until the arena goes.
        map_placeholder_noreplace(self.pages_at(page, pages), pages * self.page_size)
    }

    /// Whether every page of the range is mapped (mincore succeeds).
    pub fn all_present(&self, page: usize, pages: usize) -> bool {
        let addr = self.pages_at(page, pages);
        let mut vec = vec![0u8; pages];
        // SAFETY: mincore only writes `pages` bytes into `vec`.
        let ret = unsafe { libc::mincore(addr, pages * self.page_size, vec.as_mut_ptr()) };
        ret == 0
    }

    /// `mmap` into the arena (`MAP_FIXED` or `MAP_FIXED_NOREPLACE` in
    /// `flags`), `len` bytes from arena page `page`, which must fit.
    pub fn mmap_at(
        &self,
        page: usize,
        len: usize,
        prot: libc::c_int,
        flags: libc::c_int,
        fd: RawFd,
        offset: u64,
    ) -> SysResult {
        let addr = self.pages_at(page, len.div_ceil(self.page_size));
        // SAFETY: the range is inside the arena, which is ours (owned by its
        // Mapping) and holds nothing but placeholders and device mappings.
        check_ptr(unsafe { libc::mmap64(addr, len, prot, flags, fd, off64(offset)) })
    }

    pub fn munmap(&self, page: usize, pages: usize) -> SysResult {
        let addr = self.pages_at(page, pages);
        // SAFETY: the range is inside the arena, which is ours (owned by its
        // Mapping, which unmaps the whole range again when dropped).
        check(unsafe { libc::munmap(addr, pages * self.page_size) } as isize)
    }

    pub fn mprotect(&self, page: usize, pages: usize, prot: libc::c_int) -> SysResult {
        let addr = self.pages_at(page, pages);
        // SAFETY: the range is inside the arena, which is ours (owned by its
        // Mapping); accesses to it are checked against the model's
        // protection.
        check(unsafe { libc::mprotect(addr, pages * self.page_size, prot) } as isize)
    }

    pub fn madvise(&self, page: usize, pages: usize, advice: libc::c_int) -> SysResult {
        let addr = self.pages_at(page, pages);
        // SAFETY: the range is inside the arena, which is ours (owned by its
        // Mapping); no Rust reference points into it.
        check(unsafe { libc::madvise(addr, pages * self.page_size, advice) } as isize)
    }

    /// `mremap` of arena pages, in place (`MREMAP_MAYMOVE`, which a shrink
    /// never needs) or to arena page `to` (`MREMAP_MAYMOVE | MREMAP_FIXED`).
    pub fn mremap(
        &self,
        page: usize,
        old_pages: usize,
        new_pages: usize,
        to: Option<usize>,
    ) -> SysResult {
        let addr = self.pages_at(page, old_pages);
        let ps = self.page_size;
        let (flags, dest) = match to {
            Some(t) => (
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                self.pages_at(t, new_pages),
            ),
            None => (libc::MREMAP_MAYMOVE, std::ptr::null_mut()),
        };
        // SAFETY: source and destination are inside the arena, which is ours
        // (owned by its Mapping). Without MREMAP_FIXED the caller only
        // shrinks or keeps the size, or grows a mapping the driver marked
        // VM_DONTEXPAND, which fails: nothing leaves the arena.
        check_ptr(unsafe { libc::mremap(addr, old_pages * ps, new_pages * ps, flags, dest) })
    }

    /// Moves a mapping made outside the arena onto arena page `to`.
    pub fn move_in(&self, from: usize, len: usize, to: usize) -> SysResult {
        let dest = self.pages_at(to, len.div_ceil(self.page_size));
        // SAFETY: `from..from + len` is a mapping the caller just made and
        // owns; the destination is inside the arena, which is ours (owned by
        // its Mapping).
        check_ptr(unsafe {
            libc::mremap(
                from as *mut c_void,
                len,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                dest,
            )
        })
    }

    /// Loads `len` bytes at arena byte `at`. The caller checked with the
    /// model that they are mapped readable.
    pub fn load(&self, at: usize, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.load_into(at, &mut buf);
        buf
    }

    /// Loads `buf.len()` bytes at arena byte `at` into `buf`, without
    /// allocating (a forked child of a threaded process may call it).
    pub fn load_into(&self, at: usize, buf: &mut [u8]) {
        assert!(at + buf.len() <= self.bytes());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: inside the arena (asserted above), which is ours (owned
            // by its Mapping); the model says the page maps the device with
            // PROT_READ, so the load does not fault (unless the driver is
            // broken, which the fuzzer's parent reports).
            *b = unsafe { std::ptr::read_volatile(self.ptr(at + i).cast::<u8>()) };
        }
    }

    /// Stores `data` at arena byte `at`. The caller checked with the model
    /// that the pages are mapped writable.
    pub fn store(&self, at: usize, data: &[u8]) {
        assert!(at + data.len() <= self.bytes());
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as in `load`, for PROT_WRITE pages; no Rust reference
            // points into the arena.
            unsafe { std::ptr::write_volatile(self.ptr(at + i).cast::<u8>(), *b) };
        }
    }
}

/// `mmap` where the kernel likes (no `MAP_FIXED`), with any arguments.
pub fn mmap_anywhere(
    len: u64,
    prot: libc::c_int,
    flags: libc::c_int,
    fd: RawFd,
    offset: u64,
) -> SysResult {
    // SAFETY: without MAP_FIXED the kernel picks a free range and replaces
    // nothing.
    check_ptr(unsafe {
        libc::mmap64(
            std::ptr::null_mut(),
            len as usize,
            prot,
            flags,
            fd,
            off64(offset),
        )
    })
}

/// Unmaps a mapping that [`mmap_anywhere`] made.
pub fn munmap_anywhere(addr: usize, len: usize) -> SysResult {
    // SAFETY: the caller owns the mapping at `addr` (made by mmap_anywhere).
    check(unsafe { libc::munmap(addr as *mut c_void, len) } as isize)
}

/// The user buffer of a read, write or ioctl, as a raw address.
///
/// # Safety
///
/// The kernel may write up to `len` bytes from `addr` (for reads and the
/// info ioctl): `addr..addr + len` must be memory the caller lets the kernel
/// write (a heap buffer of that size, arena pages) or memory the kernel
/// cannot write (unmapped, read-only, kernel addresses).
pub unsafe fn read(fd: RawFd, addr: usize, len: u64) -> SysResult {
    // SAFETY: the caller's contract covers the destination.
    check(unsafe { libc::read(fd, addr as *mut c_void, len as usize) })
}

/// # Safety
///
/// As for [`read`].
pub unsafe fn pread(fd: RawFd, addr: usize, len: u64, offset: i64) -> SysResult {
    // SAFETY: the caller's contract covers the destination.
    check(unsafe { libc::pread64(fd, addr as *mut c_void, len as usize, offset) })
}

/// write(2) from any address: the kernel only reads the source.
pub fn write(fd: RawFd, addr: usize, len: u64) -> SysResult {
    // SAFETY: the kernel reads user memory with fault handling; a bad
    // address is EFAULT, not a crash, and nothing of ours is written.
    check(unsafe { libc::write(fd, addr as *const c_void, len as usize) })
}

/// pwrite(2) from any address.
pub fn pwrite(fd: RawFd, addr: usize, len: u64, offset: i64) -> SysResult {
    // SAFETY: as in `write`.
    check(unsafe { libc::pwrite64(fd, addr as *const c_void, len as usize, offset) })
}

/// # Safety
///
/// An ioctl command may write through `arg`: as for [`read`], for the size
/// the command encodes.
pub unsafe fn ioctl(fd: RawFd, cmd: u32, arg: usize) -> SysResult {
    // SAFETY: the caller's contract covers what the command may write.
    check(unsafe { libc::ioctl(fd, libc::c_ulong::from(cmd), arg) } as isize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No test here leaves a hole in the arena (munmap, a moving mremap):
    /// another test thread could map something there, which the arena
    /// would then unmap. The fuzzer runs single-threaded for that reason.
    #[test]
    fn the_arena_is_filled_and_mapped_over_in_place() {
        let ps = crate::device::system_page_size().unwrap();
        let arena = Arena::new(4, ps).unwrap();
        assert_eq!(arena.bytes(), 4 * ps);
        assert!(arena.all_present(0, 4));
        // A placeholder over a placeholder is refused: nothing is replaced.
        assert_eq!(arena.refill(1, 1), Err(Errno::EEXIST));
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
        assert_eq!(arena.mmap_at(1, ps, rw, flags, -1, 0), Ok(arena.addr(ps)));
        arena.store(ps + 5, b"mapdrv");
        assert_eq!(arena.load(ps + 4, 8), b"\0mapdrv\0");
        assert_eq!(arena.mprotect(1, 1, libc::PROT_READ), Ok(0));
        assert!(arena.all_present(0, 4));
    }

    #[test]
    #[should_panic(expected = "outside the arena")]
    fn calls_outside_the_arena_are_caught() {
        let ps = crate::device::system_page_size().unwrap();
        let _ = Arena::new(2, ps).unwrap().munmap(1, 2);
    }
}
