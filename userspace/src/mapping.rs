// SPDX-License-Identifier: GPL-2.0

//! An owned range of this process's address space, made by `mmap` and
//! unmapped when dropped: the one place where the tool maps and unmaps
//! memory for its own use (a device mapping, a memfd, anonymous memory, a
//! `PROT_NONE` reservation to move a mapping onto).
//!
//! The memory of a [`Mapping`] may be shared with the kernel, other
//! mappings and other processes, so it is never handed out as a Rust slice:
//! every access is an atomic load or store of the mapped bytes, checked
//! against the range and the protection the mapping was given. Code that
//! needs the raw range (a `MAP_FIXED` inside it, a typed view of a shared
//! anonymous page) takes [`Mapping::as_ptr`] and argues its own `unsafe`.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::sys::mman::{MRemapFlags, MapFlags, MmapAdvise, ProtFlags};

/// A mapping this value owns; unmapped when dropped.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    prot: ProtFlags,
}

// SAFETY: the mapping is plain memory owned by this value; all accesses go
// through atomics, so sharing it between threads cannot race.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only allows atomic loads and stores.
unsafe impl Sync for Mapping {}

/// `MAP_FIXED` and `MAP_FIXED_NOREPLACE` place a mapping at an address of
/// the caller's choosing, which [`Mapping::file`] and
/// [`Mapping::anonymous`] never do: they could replace memory that other
/// values own.
const PLACING: MapFlags = MapFlags::MAP_FIXED.union(MapFlags::MAP_FIXED_NOREPLACE);

/// The size of the blocks a PMD entry maps (x86_64 and arm64 with 4 KiB
/// pages; also what the kernel aligns to for 32-bit ARM, where it changes
/// nothing).
pub const HUGE_BLOCK: usize = 2 << 20;

/// Where to ask the kernel to place a file mapping of `len` bytes from
/// `offset`: an address congruent to `offset` modulo [`HUGE_BLOCK`] when the
/// mapping holds at least one whole block, so that whole 2 MiB blocks of the
/// file fall on 2 MiB blocks of addresses, which one PMD entry can map
/// (`/dev/mapdrv` in huge mode). That is the kernel's own rule for files
/// whose `get_unmapped_area` is `thp_get_unmapped_area` (and for shmem);
/// the Rust misc device of Linux 7.3 cannot set one, so the tool places its
/// mappings itself. `None` (no hint) for shorter mappings or when
/// [`free_address_congruent`] finds no room.
fn placement_hint(len: usize, offset: u64) -> Option<usize> {
    if len < HUGE_BLOCK {
        return None;
    }
    free_address_congruent(len, (offset % HUGE_BLOCK as u64) as usize).ok()
}

/// An address congruent to `residue` modulo [`HUGE_BLOCK`] with `len` free
/// bytes from it: found by reserving `len + HUGE_BLOCK` bytes and giving the
/// range back. A hint for mmap, never `MAP_FIXED`: a racing thread that
/// takes the range first only moves the mapping, so a caller that needs the
/// address checks where the kernel placed it.
pub fn free_address_congruent(len: usize, residue: usize) -> nix::Result<usize> {
    let room = Mapping::reserve(len.checked_add(HUGE_BLOCK).ok_or(Errno::ENOMEM)?)?;
    let start = room.addr();
    // The first address from `start` congruent to `residue`.
    let skip = (residue % HUGE_BLOCK + HUGE_BLOCK - start % HUGE_BLOCK) % HUGE_BLOCK;
    Ok(start + skip)
}

impl Mapping {
    /// mmap(hint, len, prot, flags, fd, offset): `len` bytes of the file
    /// from `offset`, where the hint is [`placement_hint`]'s (no
    /// `MAP_FIXED`: the kernel may place it elsewhere). `offset` is passed as the kernel sees it (an unsigned
    /// long, bit for bit), so huge offsets can be tried; a `len` of 0 is
    /// passed on as is. Placing flags are refused with EINVAL. On 32-bit
    /// ARM the kernel takes a page number (mmap2) and libc's mmap64 makes
    /// it: an offset that is not page-aligned, or whose page number does
    /// not fit in 32 bits, is refused by libc with EINVAL.
    pub fn file(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> nix::Result<Mapping> {
        Self::file_at_hint(
            fd,
            offset,
            len,
            prot,
            flags,
            placement_hint(len, offset).unwrap_or(0),
        )
    }

    /// [`Mapping::file`], asking for `hint` as the address instead of
    /// [`placement_hint`]'s (0: no hint). Still no `MAP_FIXED`: the kernel
    /// places it elsewhere if the range is not free, so the caller checks
    /// [`Mapping::addr`].
    pub fn file_at_hint(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
        hint: usize,
    ) -> nix::Result<Mapping> {
        if flags.intersects(PLACING) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: no MAP_FIXED (refused above): the address is a hint, and
        // the kernel places the mapping in a free range, so no existing
        // memory of this process is replaced.
        let ptr = unsafe {
            libc::mmap64(
                hint as *mut c_void,
                len,
                prot.bits(),
                flags.bits(),
                fd.as_raw_fd(),
                crate::device::off64(offset),
            )
        };
        Self::made(ptr, len, prot)
    }

    /// `len` bytes of anonymous memory (`flags` adds `MAP_PRIVATE` or
    /// `MAP_SHARED`, `MAP_NORESERVE`, ...; placing flags are refused with
    /// EINVAL). It starts zero-filled.
    pub fn anonymous(len: usize, prot: ProtFlags, flags: MapFlags) -> nix::Result<Mapping> {
        if flags.intersects(PLACING) {
            return Err(Errno::EINVAL);
        }
        let length = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a new anonymous mapping at an address the kernel chooses
        // (no MAP_FIXED, refused above); it replaces nothing.
        let ptr = unsafe { nix::sys::mman::mmap_anonymous(None, length, prot, flags) }?;
        Ok(Mapping {
            ptr: ptr.cast::<u8>(),
            len,
            prot,
        })
    }

    /// An inaccessible private range (`PROT_NONE`): a landing place for
    /// [`Mapping::move_onto`], or room to place mappings in.
    pub fn reserve(len: usize) -> nix::Result<Mapping> {
        Self::anonymous(len, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE)
    }

    fn made(ptr: *mut c_void, len: usize, prot: ProtFlags) -> nix::Result<Mapping> {
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Mapping { ptr, len, prot })
    }

    /// Start address (for /proc/self/pagemap, and to compare placements).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The start as a raw pointer. Getting it is safe; whoever writes or
    /// remaps through it must argue why nothing else relies on those bytes.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn check_range(&self, offset: usize, len: usize, prot: ProtFlags) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "access of {len} bytes at {offset} outside a mapping of {} bytes",
            self.len
        );
        assert!(
            self.prot.contains(prot),
            "access {prot:?} to a mapping with {:?}",
            self.prot
        );
    }

    fn byte(&self, offset: usize) -> &AtomicU8 {
        // SAFETY: callers checked that `offset` is inside the mapping, which
        // stays mapped while `self` is borrowed; AtomicU8 needs no alignment.
        unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(offset)) }
    }

    /// The word at `offset`, which callers checked to be in range and
    /// 8-byte aligned.
    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: in range and aligned (callers' checks); the mapping stays
        // mapped while `self` is borrowed.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast::<u64>()) }
    }

    /// Reads one byte (faults the page in if needed).
    pub fn read_u8(&self, offset: usize) -> u8 {
        self.check_range(offset, 1, ProtFlags::PROT_READ);
        self.byte(offset).load(Ordering::SeqCst)
    }

    /// Writes one byte.
    pub fn write_u8(&self, offset: usize, value: u8) {
        self.check_range(offset, 1, ProtFlags::PROT_WRITE);
        self.byte(offset).store(value, Ordering::SeqCst);
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) {
        self.check_range(offset, buf.len(), ProtFlags::PROT_READ);
        let base = self.ptr.as_ptr().wrapping_add(offset);
        if base.align_offset(8) == 0 && buf.len().is_multiple_of(8) {
            for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
                let word = self.word(offset + i * 8);
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
            }
        } else {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.byte(offset + i).load(Ordering::Relaxed);
            }
        }
    }

    /// Copies `len` bytes from `offset` into a new vector.
    pub fn read_vec(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.read_into(offset, &mut buf);
        buf
    }

    /// Reads one byte every `step` bytes from the start, in order (the
    /// first touch of each page when `step` is the page size). Returns
    /// their sum, so that the reads are not optimised away.
    pub fn touch_read(&self, step: usize) -> u64 {
        self.check_range(0, self.len, ProtFlags::PROT_READ);
        (0..self.len)
            .step_by(step.max(1))
            .map(|at| u64::from(self.byte(at).load(Ordering::Relaxed)))
            .fold(0, u64::wrapping_add)
    }

    /// Writes `value` to one byte every `step` bytes from the start, in
    /// order (for anonymous memory, the first touch allocates the page).
    pub fn touch_write(&self, step: usize, value: u8) {
        self.check_range(0, self.len, ProtFlags::PROT_WRITE);
        for at in (0..self.len).step_by(step.max(1)) {
            self.byte(at).store(value, Ordering::Relaxed);
        }
    }

    /// Reads every whole 8-byte word in order, four at a time, and returns
    /// a value that depends on all of them (a sequential read of the range).
    pub fn read_words(&self) -> u64 {
        self.check_range(0, self.len, ProtFlags::PROT_READ);
        let words = self.len / 8;
        let load = |i: usize| self.word(i * 8).load(Ordering::Relaxed);
        let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
        let mut i = 0;
        while i + 4 <= words {
            // Four sums, so that the loads do not wait on one another.
            a = a.wrapping_add(load(i));
            b = b.wrapping_add(load(i + 1));
            c = c.wrapping_add(load(i + 2));
            d = d.wrapping_add(load(i + 3));
            i += 4;
        }
        while i < words {
            a = a.wrapping_add(load(i));
            i += 1;
        }
        a ^ b ^ c ^ d
    }

    /// mprotect(2) of the whole mapping.
    pub fn protect(&mut self, prot: ProtFlags) -> nix::Result<()> {
        // SAFETY: changes the protection of memory this value owns; no Rust
        // reference points into it (accesses are checked against self.prot).
        unsafe { nix::sys::mman::mprotect(self.ptr.cast::<c_void>(), self.len, prot) }?;
        self.prot = prot;
        Ok(())
    }

    /// madvise(2) of the whole mapping.
    pub fn advise(&self, advice: MmapAdvise) -> nix::Result<()> {
        self.advise_range(0, self.len, advice)
    }

    /// madvise(2) of `len` bytes from `offset` (page-aligned; the kernel
    /// refuses others with EINVAL). Panics if the range is not inside the
    /// mapping.
    pub fn advise_range(&self, offset: usize, len: usize, advice: MmapAdvise) -> nix::Result<()> {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "madvise of {len} bytes at {offset} outside a mapping of {}",
            self.len
        );
        // SAFETY: advice on memory this value owns (the range is inside it,
        // asserted above), which no Rust reference points into (every
        // access is an atomic load or store); for a shared mapping
        // MADV_DONTNEED only drops page table entries, and the pages are
        // faulted in again from the file on the next access.
        unsafe { nix::sys::mman::madvise(self.ptr.add(offset).cast::<c_void>(), len, advice) }
    }

    /// mremap(2) to `new_len`, letting the kernel move it if `may_move`.
    pub fn remap(&mut self, new_len: usize, may_move: bool) -> nix::Result<()> {
        let flags = if may_move {
            MRemapFlags::MREMAP_MAYMOVE
        } else {
            MRemapFlags::empty()
        };
        // SAFETY: remaps memory this value owns; `&mut self` guarantees no
        // access is in progress, and ptr/len are updated on success.
        let ptr = unsafe {
            nix::sys::mman::mremap(self.ptr.cast::<c_void>(), self.len, new_len, flags, None)
        }?;
        self.ptr = ptr.cast::<u8>();
        self.len = new_len;
        Ok(())
    }

    /// Moves the mapping onto the range `target` owns (mremap with
    /// MREMAP_FIXED), which it replaces; `target` is typically a
    /// [`Mapping::reserve`] of the same size.
    pub fn move_onto(&mut self, target: Mapping) -> nix::Result<()> {
        assert_eq!(
            target.len, self.len,
            "move_onto needs a target of the same size"
        );
        // From here the target's range is ours to replace; if the move
        // fails, `target` still unmaps it when dropped.
        // SAFETY: the destination range belongs to `target`, which we hold
        // (so nothing else lives there) and the source is ours; `&mut self`
        // means no access is in progress.
        let ptr = unsafe {
            nix::sys::mman::mremap(
                self.ptr.cast::<c_void>(),
                self.len,
                self.len,
                MRemapFlags::MREMAP_MAYMOVE | MRemapFlags::MREMAP_FIXED,
                Some(target.ptr.cast::<c_void>()),
            )
        }?;
        // The range now holds this mapping: `target` must not unmap it.
        std::mem::forget(target);
        self.ptr = ptr.cast::<u8>();
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the range this value owns; nothing
            // borrows it any more.
            let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast::<c_void>(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn page() -> usize {
        crate::device::system_page_size().unwrap()
    }

    #[test]
    fn free_address_congruent_has_the_residue() {
        let len = 3 * page();
        for residue in [
            0,
            page(),
            HUGE_BLOCK - page(),
            HUGE_BLOCK,
            HUGE_BLOCK + page(),
        ] {
            let addr = free_address_congruent(len, residue).unwrap();
            assert_eq!(
                addr % HUGE_BLOCK,
                residue % HUGE_BLOCK,
                "residue {residue:#x}"
            );
        }
        assert_eq!(free_address_congruent(usize::MAX, 0), Err(Errno::ENOMEM));
    }

    #[test]
    fn anonymous_memory_is_touched_and_read() {
        let ps = page();
        let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let m = Mapping::anonymous(4 * ps, rw, MapFlags::MAP_PRIVATE).unwrap();
        assert_eq!(m.touch_read(ps), 0);
        m.touch_write(ps, 1);
        assert_eq!(m.touch_read(ps), 4);
        assert_eq!(m.read_u8(ps), 1);
        assert_ne!(m.read_words(), 0);
    }

    #[test]
    fn placing_flags_and_empty_ranges_are_refused() {
        let ps = page();
        let fixed = MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED;
        assert_eq!(
            Mapping::anonymous(ps, ProtFlags::PROT_READ, fixed).unwrap_err(),
            Errno::EINVAL
        );
        let f = tempfile::tempfile().unwrap();
        let noreplace = MapFlags::MAP_SHARED | MapFlags::MAP_FIXED_NOREPLACE;
        assert_eq!(
            Mapping::file(f.as_fd(), 0, ps, ProtFlags::PROT_READ, noreplace).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(Mapping::reserve(0).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    #[should_panic(expected = "PROT_WRITE")]
    fn a_write_to_a_read_only_mapping_is_caught() {
        let m = Mapping::anonymous(page(), ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE).unwrap();
        m.touch_write(1, 0);
    }
}
