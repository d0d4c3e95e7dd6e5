// SPDX-License-Identifier: GPL-2.0
//! Runs one operation against the device and the model, and compares.
//!
//! For every call the model predicts the outcome first (the errno, in the
//! order the kernel checks, or what it returns) and then the call is made;
//! any difference, and any byte that reads back other than the model says,
//! is a divergence. Stores and writes are checked at once: the buffer by
//! pread through a file of its own, the mapping by loading it back.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use super::model::{Mapped, Model, Prot};
use super::ops::{self, Access, Advice, Call, GenState, Kind, Op, Place, SLOTS, UserBuf};
use super::sys::{self, Arena, SysResult};

/// `MAX_RW_COUNT`: the most one read or write moves (INT_MAX & PAGE_MASK).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// The top of the default mmap window (47 bits; above it only by hint).
const MAP_WINDOW: u64 = 1 << 47;
/// An address in the kernel half, which `access_ok` refuses.
const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;
/// Size of `struct mapdrv_info` and its fields' (offset, size).
const INFO_FIELDS: [(usize, usize); 4] = [(0, 8), (8, 8), (16, 4), (20, 4)];
const INFO_SIZE: usize = 24;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Its target is not there (or it could touch memory outside the
    /// arena): nothing was called.
    Skipped,
}

/// A disagreement between the device and the model.
pub type Divergence = String;

/// Facts about the system that decide some outcomes.
#[derive(Debug, Clone)]
pub struct Env {
    pub device: PathBuf,
    /// The device node is on a noexec mount (devtmpfs is): the core refuses
    /// PROT_EXEC before the driver sees it.
    pub noexec: bool,
    /// The kernel has swap support (madvise WILLNEED on anonymous memory).
    pub swap: bool,
    /// The highest user address `access_ok` accepts.
    pub user_ptr_max: usize,
    /// The debugfs `mode` file, if there is one.
    pub mode_file: Option<PathBuf>,
    pub info_cmd: u32,
    /// What MAPDRV_IOC_INFO answers, as bytes (the mode, the last four,
    /// follows the mode switches).
    pub info_bytes: [u8; INFO_SIZE],
}

struct Slot {
    fd: OwnedFd,
    access: Access,
    pos: i64,
}

/// The fuzzer's state: the model, the arena, the open files.
pub struct World {
    pub model: Model,
    env: Env,
    arena: Arena,
    slots: Vec<Option<Slot>>,
    /// A read-write file of its own, to check the buffer with pread.
    checker: OwnedFd,
    heap: Vec<u8>,
}

/// Calls that failed with the errno the model predicted, so far.
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

fn expect_result(what: &str, got: SysResult, want: Result<(), Errno>) -> Result<usize, Divergence> {
    match (got, want) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(g), Err(w)) if g == w => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            Ok(0)
        }
        (Ok(v), Err(w)) => Err(format!("{what}: returned {v:#x}, expected {w}")),
        (Err(g), Ok(())) => Err(format!("{what}: failed with {g}, expected success")),
        (Err(g), Err(w)) => Err(format!("{what}: failed with {g}, expected {w}")),
    }
}

/// Where `a` and `b` differ first, as a message.
fn compare(what: &str, base: usize, got: &[u8], want: &[u8]) -> Result<(), Divergence> {
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None if got.len() == want.len() => Ok(()),
        None => Err(format!(
            "{what}: {} bytes where {} were expected",
            got.len(),
            want.len()
        )),
        Some(i) => Err(format!(
            "{what}: byte {:#x} is {:#04x}, the model says {:#04x} ({} of {} bytes differ)",
            base + i,
            got[i],
            want[i],
            got.iter().zip(want).filter(|(g, w)| g != w).count(),
            want.len()
        )),
    }
}

fn open_device(path: &std::path::Path, access: Access) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = match access {
        Access::ReadOnly => libc::O_RDONLY,
        Access::WriteOnly => libc::O_WRONLY,
        Access::ReadWrite => libc::O_RDWR,
    };
    // SAFETY: open(2) of a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `_IOC_TYPE` bytes of the ioctls the VFS handles itself for any file
/// (FIOCLEX, FIFREEZE, FS_IOC_*, FICLONE, FIGETBSZ...): a random command of
/// these types would test the VFS, or freeze a file system, not the driver.
const VFS_IOCTL_TYPES: [u8; 6] = [b'T', b'X', b'f', 0x94, 0x00, 0x15];

impl World {
    /// A world for a buffer that holds `shadow` now.
    pub fn new(
        env: Env,
        shadow: Vec<u8>,
        page_size: usize,
        arena_pages: usize,
    ) -> anyhow::Result<World> {
        let checker = open_device(&env.device, Access::ReadWrite)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", env.device.display()))?;
        let arena = Arena::new(arena_pages, page_size)
            .map_err(|e| anyhow::anyhow!("reserving the arena: {e}"))?;
        let heap = vec![0u8; shadow.len() + 2 * page_size];
        Ok(World {
            model: Model::new(shadow, page_size, arena_pages),
            env,
            arena,
            slots: (0..SLOTS).map(|_| None).collect(),
            checker,
            heap,
        })
    }

    pub fn gen_state(&self) -> GenState<'_> {
        let mut open = [false; SLOTS as usize];
        for (i, s) in self.slots.iter().enumerate() {
            open[i] = s.is_some();
        }
        GenState {
            model: &self.model,
            open,
            has_debugfs: self.env.mode_file.is_some(),
            info_cmd: self.env.info_cmd,
        }
    }

    fn ps(&self) -> usize {
        self.model.page_size
    }

    fn size(&self) -> usize {
        self.model.shadow.len()
    }

    /// Checks buffer bytes `range` with pread against the shadow.
    fn check_buffer(&self, what: &str, range: std::ops::Range<usize>) -> Result<(), Divergence> {
        if range.is_empty() {
            return Ok(());
        }
        let mut got = vec![0u8; range.len()];
        let fd = self.checker.as_raw_fd();
        let mut done = 0;
        while done < got.len() {
            let at = (range.start + done) as i64;
            let dst = got[done..].as_mut_ptr() as usize;
            // SAFETY: the destination is the rest of `got`.
            let n = unsafe { sys::pread(fd, dst, (got.len() - done) as u64, at) }
                .map_err(|e| format!("{what}: checking pread at {at} failed: {e}"))?;
            if n == 0 {
                return Err(format!("{what}: checking pread at {at} returned 0"));
            }
            done += n;
        }
        compare(
            &format!("{what}: buffer (pread)"),
            range.start,
            &got,
            &self.model.shadow[range],
        )
    }

    /// Loads arena bytes `at..at + len` (readable, per the model) and
    /// compares them with the model.
    fn check_mapped(&self, what: &str, at: usize, len: usize) -> Result<(), Divergence> {
        let got = self.arena.load(at, len);
        let want: Vec<u8> = (at..at + len).filter_map(|a| self.model.byte(a)).collect();
        compare(&format!("{what}: mapping (load)"), at, &got, &want)
    }

    /// Whether arena bytes `at..at + len` are mapped with `prot`'s access.
    fn mapped_with(&self, at: usize, len: usize, need: fn(Prot) -> bool) -> bool {
        let ps = self.ps();
        len > 0
            && at + len <= self.arena.bytes()
            && (at / ps..(at + len).div_ceil(ps))
                .all(|p| self.model.arena[p].as_ref().is_some_and(|m| need(m.prot)))
    }

    /// The buffer ranges behind the shared pages of arena bytes `at..+len`.
    fn shared_buffer_ranges(&self, at: usize, len: usize) -> Vec<std::ops::Range<usize>> {
        let ps = self.ps();
        self.model
            .buffer_ranges(at, len)
            .into_iter()
            .filter(|r| {
                let page = r.start / ps;
                (at / ps..(at + len).div_ceil(ps)).any(|p| {
                    self.model.arena[p]
                        .as_ref()
                        .is_some_and(|m| m.shared && m.buf_page == page)
                })
            })
            .collect()
    }

    /// Checks, after arena bytes `at..+len` were written, the buffer behind
    /// them (changed if shared, unchanged if private) and the mapping.
    fn check_after_store(&self, what: &str, at: usize, len: usize) -> Result<(), Divergence> {
        let ps = self.ps();
        for p in at / ps..(at + len).div_ceil(ps) {
            if let Some(m) = &self.model.arena[p] {
                let b = m.buf_page * ps;
                self.check_buffer(what, b..b + ps)?;
            }
        }
        if self.mapped_with(at, len, |p| p.r) {
            self.check_mapped(what, at, len)?;
        }
        Ok(())
    }

    fn refill(&self, page: usize, pages: usize) -> Result<(), Divergence> {
        self.arena.refill(page, pages).map(drop).map_err(|e| {
            format!("re-reserving arena pages {page}+{pages}: {e} (were they not unmapped?)")
        })
    }

    /// Runs `op`.
    pub fn apply(&mut self, op: &Op) -> Result<Applied, Divergence> {
        match op {
            Op::Open { slot, access } => {
                let s = *slot as usize;
                self.slots[s] = None;
                let fd = open_device(&self.env.device, *access)
                    .map_err(|e| format!("open {access:?}: {e}"))?;
                self.slots[s] = Some(Slot {
                    fd,
                    access: *access,
                    pos: 0,
                });
                Ok(Applied::Done)
            }
            Op::Close { slot } => Ok(match self.slots[*slot as usize].take() {
                Some(_) => Applied::Done,
                None => Applied::Skipped,
            }),
            Op::Mmap(m) => self.mmap(m),
            Op::Munmap { page, pages } => {
                if page + pages > self.arena.pages() {
                    return Ok(Applied::Skipped);
                }
                expect_result("munmap", self.arena.munmap(*page, *pages), Ok(()))?;
                self.model.unmap(*page..page + pages);
                self.refill(*page, *pages)?;
                Ok(Applied::Done)
            }
            Op::Mremap {
                page,
                old_pages,
                new_pages,
                to,
            } => self.mremap(*page, *old_pages, *new_pages, *to),
            Op::Mprotect { page, pages, prot } => self.mprotect(*page, *pages, *prot),
            Op::Madvise {
                page,
                pages,
                advice,
            } => self.madvise(*page, *pages, *advice),
            Op::Touch { at, len, write } => self.touch(*at, *len, *write),
            Op::Rw(rw) => self.rw(rw),
            Op::Ioctl { slot, cmd, arg } => self.ioctl(*slot, *cmd, *arg),
            Op::Fork { probes, writes } => self.fork(probes, writes),
            Op::SetMode { mode } => {
                let Some(file) = &self.env.mode_file else {
                    return Ok(Applied::Skipped);
                };
                std::fs::write(file, format!("{mode}\n"))
                    .map_err(|e| format!("writing {mode} to {}: {e}", file.display()))?;
                self.env.info_bytes[20..24].copy_from_slice(&mode.to_ne_bytes());
                Ok(Applied::Done)
            }
            Op::CheckAll => {
                self.check_buffer("check-all", 0..self.size())?;
                let ps = self.ps();
                for p in 0..self.arena.pages() {
                    if self.model.arena[p].as_ref().is_some_and(|m| m.prot.r) {
                        self.check_mapped(&format!("check-all arena page {p}"), p * ps, ps)?;
                    }
                }
                Ok(Applied::Done)
            }
        }
    }

    /// What mmap must answer, in the order the kernel checks; and whether a
    /// refusal comes from the driver (after a MAP_FIXED unmapped the range).
    fn predict_mmap(
        &self,
        slot: Option<Access>,
        place: Place,
        len: u64,
        offset: u64,
        prot: Prot,
        kind: Kind,
    ) -> (Result<(), Errno>, bool) {
        let ps = self.ps() as u64;
        let pre = |e| (Err(e), false);
        if !offset.is_multiple_of(ps) {
            return pre(Errno::EINVAL);
        }
        let Some(access) = slot else {
            return pre(Errno::EBADF);
        };
        if kind == Kind::PrivateHugetlb {
            return pre(Errno::EINVAL);
        }
        if len == 0 {
            return pre(Errno::EINVAL);
        }
        let Some(rounded) = len.checked_next_multiple_of(ps) else {
            return pre(Errno::ENOMEM);
        };
        let pgoff = offset / ps;
        let pages = rounded / ps;
        if pgoff.checked_add(pages).is_none() {
            return pre(Errno::EOVERFLOW);
        }
        // Without an address hint above it, mmap stays below 128 TiB even
        // with 5-level paging (DEFAULT_MAP_WINDOW).
        if rounded > MAP_WINDOW - ps {
            return pre(Errno::ENOMEM);
        }
        if matches!(place, Place::NoReplace(_)) {
            return pre(Errno::EEXIST);
        }
        if pgoff > (u64::MAX - rounded) / ps {
            return pre(Errno::EOVERFLOW);
        }
        match kind {
            Kind::NoType => return pre(Errno::EINVAL),
            Kind::SharedValidateSync => return pre(Errno::EOPNOTSUPP),
            k if k.shared() && prot.w && !access.writable() => return pre(Errno::EACCES),
            _ => {}
        }
        if !access.readable() {
            return pre(Errno::EACCES);
        }
        if prot.x && self.env.noexec {
            return pre(Errno::EPERM);
        }
        if kind == Kind::PrivateGrowsdown {
            return pre(Errno::EINVAL);
        }
        // The driver.
        if prot.x {
            return (Err(Errno::EPERM), true);
        }
        if pgoff + pages > self.model.buffer_pages() as u64 {
            return (Err(Errno::EINVAL), true);
        }
        (Ok(()), false)
    }

    fn mmap(&mut self, op: &ops::Mmap) -> Result<Applied, Divergence> {
        let ops::Mmap {
            slot,
            place,
            len,
            offset,
            prot,
            kind,
            populate,
        } = *op;
        let ps = self.ps();
        let pages = (len.div_ceil(ps as u64)) as usize;
        let fits = |p: usize| {
            pages > 0
                && p.checked_add(pages)
                    .is_some_and(|e| e <= self.arena.pages())
        };
        match place {
            Place::Fixed(p) | Place::NoReplace(p) if !fits(p) => return Ok(Applied::Skipped),
            Place::Anywhere(Some(p)) if !fits(p) => return Ok(Applied::Skipped),
            _ => {}
        }
        let (fd, access) = match &self.slots[slot as usize] {
            Some(s) => (s.fd.as_raw_fd(), Some(s.access)),
            None => (-1, None),
        };
        let (want, driver_refused) = self.predict_mmap(access, place, len, offset, prot, kind);
        let mut flags = kind.flags();
        if populate {
            flags |= libc::MAP_POPULATE;
        }
        let what = format!("mmap {kind:?} {prot} len {len:#x} offset {offset:#x} at {place:?}");
        let got = match place {
            Place::Fixed(p) => self.arena.mmap_at(
                p,
                len as usize,
                prot.bits(),
                flags | libc::MAP_FIXED,
                fd,
                offset,
            ),
            Place::NoReplace(p) => self.arena.mmap_at(
                p,
                len as usize,
                prot.bits(),
                flags | libc::MAP_FIXED_NOREPLACE,
                fd,
                offset,
            ),
            Place::Anywhere(_) => sys::mmap_anywhere(len, prot.bits(), flags, fd, offset),
        };
        if let (Ok(addr), Err(_), Place::Anywhere(_)) = (got, want, place) {
            // Do not leave a mapping the model does not know about.
            let _ = sys::munmap_anywhere(addr, len as usize);
        }
        let addr = expect_result(&what, got, want)?;
        let (Place::Fixed(at) | Place::NoReplace(at) | Place::Anywhere(Some(at))) = place else {
            // Anywhere, not moved in: look at it and let it go.
            if want.is_ok() {
                let b = (offset as usize)..(offset as usize + ps);
                if prot.r {
                    // SAFETY: the kernel just mapped `len` bytes at `addr`,
                    // readable; the first page is inside it.
                    let first = unsafe { std::ptr::read_volatile(addr as *const u8) };
                    if first != self.model.shadow[b.start] {
                        return Err(format!(
                            "{what}: the first byte reads {first:#04x}, the buffer holds {:#04x}",
                            self.model.shadow[b.start]
                        ));
                    }
                }
                expect_result(
                    "munmap of it",
                    sys::munmap_anywhere(addr, len as usize),
                    Ok(()),
                )?;
            }
            return Ok(Applied::Done);
        };
        if want.is_err() {
            if let Place::Fixed(p) = place {
                if driver_refused {
                    // The core unmapped the range before asking the driver:
                    // a refused MAP_FIXED leaves a hole (refill proves it).
                    self.model.unmap(p..p + pages);
                    self.refill(p, pages)?;
                } else if !self.arena.all_present(p, pages) {
                    return Err(format!(
                        "{what}: refused before the driver, yet it left a hole"
                    ));
                }
            }
            return Ok(Applied::Done);
        }
        if let Place::Anywhere(Some(to)) = place {
            expect_result(
                "mremap MREMAP_FIXED of the new mapping into the arena",
                self.arena.move_in(addr, len as usize, to),
                Ok(()),
            )?;
        }
        // The new VMA.
        let shared = kind.shared();
        let maywrite = !shared || access.is_some_and(Access::writable);
        let vma = self.model.new_vma();
        let pgoff = offset as usize / ps;
        for i in 0..pages {
            let cow = (populate && !shared && prot.w).then(|| {
                let b = (pgoff + i) * ps;
                self.model.shadow[b..b + ps].to_vec().into_boxed_slice()
            });
            self.model.arena[at + i] = Some(Mapped {
                vma,
                buf_page: pgoff + i,
                prot,
                shared,
                maywrite,
                dontfork: false,
                cow,
            });
        }
        if prot.r {
            for i in 0..pages {
                self.check_mapped(&what, (at + i) * ps, 16)?;
            }
        }
        Ok(Applied::Done)
    }

    fn mremap(
        &mut self,
        page: usize,
        old: usize,
        new: usize,
        to: Option<usize>,
    ) -> Result<Applied, Divergence> {
        let arena = self.arena.pages();
        if old == 0 || page + old > arena || to.is_some_and(|t| t + new > arena || new == 0) {
            return Ok(Applied::Skipped);
        }
        // The source must be inside one VMA of the device.
        match self.model.vma_range(page) {
            Some(r) if r.end >= page + old => {}
            _ => return Ok(Applied::Skipped),
        }
        let overlaps = to.is_some_and(|t| t < page + old && page < t + new);
        let want = if new == 0 || overlaps {
            Err(Errno::EINVAL)
        } else if new > old {
            // VM_DONTEXPAND.
            Err(Errno::EFAULT)
        } else {
            Ok(())
        };
        let what = format!(
            "mremap {old} -> {new} pages{}",
            to.map(|t| format!(" to {t}")).unwrap_or_default()
        );
        expect_result(&what, self.arena.mremap(page, old, new, to), want)?;
        if want.is_err() {
            return Ok(Applied::Done);
        }
        match to {
            None => {
                if new < old {
                    self.model.unmap(page + new..page + old);
                    self.refill(page + new, old - new)?;
                }
            }
            Some(t) => {
                let vma = self.model.new_vma();
                let moved: Vec<Option<Mapped>> = self.model.arena[page..page + new]
                    .iter()
                    .cloned()
                    .map(|m| m.map(|m| Mapped { vma, ..m }))
                    .collect();
                self.model.unmap(page..page + old);
                self.refill(page, old)?;
                for (i, m) in moved.into_iter().enumerate() {
                    self.model.arena[t + i] = m;
                }
                let ps = self.ps();
                for p in t..t + new {
                    if self.model.arena[p].as_ref().is_some_and(|m| m.prot.r) {
                        self.check_mapped(&what, p * ps, ps)?;
                    }
                }
            }
        }
        Ok(Applied::Done)
    }

    fn mprotect(&mut self, page: usize, pages: usize, prot: Prot) -> Result<Applied, Divergence> {
        if page + pages > self.arena.pages() || !self.model.all_mapped(page..page + pages) {
            return Ok(Applied::Skipped);
        }
        // VMA by VMA, stopping at the first one that refuses (the ones
        // before it keep their new protection).
        let mut want = Ok(());
        for piece in self.model.vmas_in(page..page + pages).into_iter().flatten() {
            let Some(m) = self.model.arena[piece.start].clone() else {
                continue;
            };
            if prot.x || (prot.w && !m.maywrite) {
                want = Err(Errno::EACCES);
                break;
            }
            if m.prot != prot {
                self.model.split_off(piece.clone());
                for p in piece {
                    if let Some(m) = self.model.arena[p].as_mut() {
                        m.prot = prot;
                    }
                }
            }
        }
        expect_result(
            &format!("mprotect {prot}"),
            self.arena.mprotect(page, pages, prot.bits()),
            want,
        )?;
        Ok(Applied::Done)
    }

    fn madvise(
        &mut self,
        page: usize,
        pages: usize,
        advice: Advice,
    ) -> Result<Applied, Divergence> {
        if page + pages > self.arena.pages() {
            return Ok(Applied::Skipped);
        }
        let range = page..page + pages;
        let pieces = self.model.vmas_in(range.clone());
        let any_device = pieces.iter().any(Option::is_some);
        let want = match advice {
            Advice::DontNeed | Advice::DontFork => Ok(()),
            Advice::WillNeed if !self.env.swap && pieces.iter().any(Option::is_none) => {
                Err(Errno::EBADF)
            }
            Advice::WillNeed => Ok(()),
            // VM_SPECIAL (VM_DONTEXPAND | VM_MIXEDMAP) may not be forked
            // again once MADV_DONTFORK set VM_DONTCOPY.
            Advice::DoFork if any_device => Err(Errno::EINVAL),
            Advice::DoFork => Ok(()),
            Advice::Remove => match &pieces[0] {
                None => Err(Errno::EINVAL),
                Some(r) => {
                    let m = self.model.arena[r.start].as_ref();
                    if m.is_some_and(|m| m.shared && m.maywrite) {
                        // vfs_fallocate on a character device.
                        Err(Errno::ENODEV)
                    } else {
                        Err(Errno::EACCES)
                    }
                }
            },
        };
        expect_result(
            &format!("madvise {advice:?}"),
            self.arena.madvise(page, pages, advice.raw()),
            want,
        )?;
        match advice {
            Advice::DontNeed => {
                // Private copies are dropped: the next access maps the
                // buffer page again.
                for p in range {
                    if let Some(m) = self.model.arena[p].as_mut() {
                        m.cow = None;
                    }
                }
            }
            Advice::DontFork => {
                for piece in pieces.into_iter().flatten() {
                    if self.model.arena[piece.start]
                        .as_ref()
                        .is_some_and(|m| !m.dontfork)
                    {
                        self.model.split_off(piece.clone());
                        for p in piece {
                            if let Some(m) = self.model.arena[p].as_mut() {
                                m.dontfork = true;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(Applied::Done)
    }

    fn touch(&mut self, at: usize, len: usize, write: Option<u64>) -> Result<Applied, Divergence> {
        match write {
            None => {
                if !self.mapped_with(at, len, |p| p.r) {
                    return Ok(Applied::Skipped);
                }
                self.check_mapped("load", at, len)?;
            }
            Some(seed) => {
                if !self.mapped_with(at, len, |p| p.w) {
                    return Ok(Applied::Skipped);
                }
                let data = ops::data(seed, len);
                self.arena.store(at, &data);
                self.model.store(at, &data);
                self.check_after_store("store", at, len)?;
            }
        }
        Ok(Applied::Done)
    }

    fn rw(&mut self, op: &ops::Rw) -> Result<Applied, Divergence> {
        let ops::Rw {
            slot,
            call,
            offset,
            len,
            buf,
            seed,
        } = *op;
        let size = self.size() as i64;
        let (fd, access, fpos) = match &self.slots[slot as usize] {
            Some(s) => (s.fd.as_raw_fd(), Some(s.access), s.pos),
            None => (-1, None, 0),
        };
        let positional = matches!(call, Call::Pread | Call::Pwrite);
        let pos = if positional { offset } else { fpos };
        let fills = call.fills_user();
        let addr = match buf {
            UserBuf::Heap => self.heap.as_mut_ptr() as usize,
            UserBuf::Arena(b) => self.arena.addr(b),
            UserBuf::Null => 0,
            UserBuf::Kernel => KERNEL_ADDR,
        };
        // What the driver would move, at most.
        let count = len.min(MAX_RW_COUNT);
        let k = if pos >= 0 && pos < size {
            count.min((size - pos) as u64) as usize
        } else {
            0
        };
        if let UserBuf::Arena(b) = buf {
            if b + k > self.arena.bytes() {
                return Ok(Applied::Skipped);
            }
            // The kernel copying from the buffer into a shared mapping of
            // the same bytes (or the other way) has no single right answer.
            let (p0, p1) = (pos.max(0) as usize, pos.max(0) as usize + k);
            let overlap = |ranges: Vec<std::ops::Range<usize>>| {
                ranges.iter().any(|r| r.start < p1 && p0 < r.end)
            };
            let ranges = if fills {
                self.shared_buffer_ranges(b, k)
            } else {
                self.model.buffer_ranges(b, k)
            };
            if overlap(ranges) {
                return Ok(Applied::Skipped);
            }
        }
        // The outcome, in the kernel's order of checks.
        let access_ok = (addr as u64)
            .checked_add(len)
            .is_some_and(|end| end <= self.env.user_ptr_max as u64);
        let want: Result<(), Errno> = if positional && pos < 0 {
            Err(Errno::EINVAL)
        } else if (fills && !access.is_some_and(Access::readable))
            || (!fills && !access.is_some_and(Access::writable))
        {
            Err(Errno::EBADF)
        } else if !access_ok {
            Err(Errno::EFAULT)
        } else if (len as i64) < 0 || pos < 0 || pos.checked_add(len as i64).is_none() {
            Err(Errno::EINVAL)
        } else if !fills && len > 0 && pos >= size {
            Err(Errno::ENOSPC)
        } else {
            Ok(())
        };
        // How many bytes the user memory takes or gives.
        let avail = match buf {
            UserBuf::Heap => k,
            UserBuf::Arena(b) => self.model.accessible(b, k, fills),
            UserBuf::Null | UserBuf::Kernel => 0,
        };
        let want = match want {
            Ok(()) if k > 0 && avail == 0 => Err(Errno::EFAULT),
            w => w,
        };
        let expect_n = avail.min(k);
        // The source bytes of a write, as the model sees them.
        let src: Vec<u8> = match buf {
            UserBuf::Heap if !fills => {
                let d = ops::data(seed, k);
                self.heap[..k].copy_from_slice(&d);
                d
            }
            UserBuf::Arena(b) if !fills => (b..b + expect_n)
                .map(|a| self.model.byte(a).unwrap_or(0))
                .collect(),
            _ => Vec::new(),
        };
        let what = format!("{call:?} of {len:#x} at {pos} into/from {buf:?}");
        let got = match call {
            // SAFETY: the destination is the heap buffer (big enough for
            // `k`, the most the driver moves), arena bytes (checked to lie
            // inside the arena), or an address the kernel refuses.
            Call::Read => unsafe { sys::read(fd, addr, len) },
            // SAFETY: as above.
            Call::Pread => unsafe { sys::pread(fd, addr, len, offset) },
            Call::Write => sys::write(fd, addr, len),
            Call::Pwrite => sys::pwrite(fd, addr, len, offset),
        };
        let n = expect_result(&what, got, want)?;
        if want.is_err() {
            return Ok(Applied::Done);
        }
        if n != expect_n {
            return Err(format!(
                "{what}: moved {n} bytes, the model says {expect_n}"
            ));
        }
        let p = pos as usize;
        if !positional {
            if let Some(s) = self.slots[slot as usize].as_mut() {
                s.pos += n as i64;
            }
        }
        if n == 0 {
            return Ok(Applied::Done);
        }
        if fills {
            let data = self.model.shadow[p..p + n].to_vec();
            match buf {
                UserBuf::Heap => compare(&what, p, &self.heap[..n], &data)?,
                UserBuf::Arena(b) => {
                    self.model.store(b, &data);
                    self.check_after_store(&what, b, n)?;
                }
                _ => {}
            }
        } else {
            self.model.shadow[p..p + n].copy_from_slice(&src[..n]);
            self.check_buffer(&what, p..p + n)?;
        }
        Ok(Applied::Done)
    }

    fn ioctl(&mut self, slot: u8, cmd: u32, arg: UserBuf) -> Result<Applied, Divergence> {
        let ty = ((cmd >> 8) & 0xff) as u8;
        if cmd != self.env.info_cmd && VFS_IOCTL_TYPES.contains(&ty) {
            return Ok(Applied::Skipped);
        }
        let fd = match &self.slots[slot as usize] {
            Some(s) => s.fd.as_raw_fd(),
            None => -1,
        };
        let is_info = cmd == self.env.info_cmd;
        let addr = match arg {
            UserBuf::Heap => self.heap.as_mut_ptr() as usize,
            UserBuf::Arena(b) => {
                if b + INFO_SIZE > self.arena.bytes() {
                    return Ok(Applied::Skipped);
                }
                self.arena.addr(b)
            }
            UserBuf::Null => 0,
            UserBuf::Kernel => KERNEL_ADDR,
        };
        // Which fields of the answer land (all of them, or up to the first
        // that is not writable).
        let mut fields = INFO_FIELDS.len();
        if let UserBuf::Arena(b) = arg {
            for (i, (off, sz)) in INFO_FIELDS.iter().enumerate() {
                let ok = self.model.accessible(b + off, *sz, true);
                if ok != *sz {
                    if ok != 0 {
                        // A field across the edge of a writable page: how
                        // much of it lands is not the driver's to say.
                        return Ok(Applied::Skipped);
                    }
                    fields = fields.min(i);
                }
            }
        } else if !matches!(arg, UserBuf::Heap) {
            fields = 0;
        }
        let want = if fd < 0 {
            Err(Errno::EBADF)
        } else if !is_info {
            Err(Errno::ENOTTY)
        } else if fields < INFO_FIELDS.len() {
            Err(Errno::EFAULT)
        } else {
            Ok(())
        };
        if matches!(arg, UserBuf::Heap) {
            self.heap[..INFO_SIZE].fill(0xee);
        }
        // SAFETY: only MAPDRV_IOC_INFO writes (24 bytes): to the heap
        // buffer, to arena bytes checked to lie inside the arena, or to an
        // address the kernel refuses. Other commands must not write at all.
        let got = unsafe { sys::ioctl(fd, cmd, addr) };
        let what = format!("ioctl {cmd:#x} to {arg:?}");
        expect_result(&what, got, want)?;
        if !is_info || fd < 0 {
            return Ok(Applied::Done);
        }
        let written = INFO_FIELDS[..fields].last().map_or(0, |(o, s)| o + s);
        match arg {
            UserBuf::Heap if want.is_ok() => {
                compare(&what, 0, &self.heap[..INFO_SIZE], &self.env.info_bytes)?;
            }
            UserBuf::Arena(b) if written > 0 => {
                let bytes = self.env.info_bytes;
                self.model.store(b, &bytes[..written]);
                self.check_after_store(&what, b, written)?;
            }
            _ => {}
        }
        Ok(Applied::Done)
    }

    fn fork(
        &mut self,
        probes: &[usize],
        writes: &[(usize, usize, u64)],
    ) -> Result<Applied, Divergence> {
        let ps = self.ps();
        let arena_bytes = self.arena.bytes();
        // The stores the child makes: inside the arena, on pages it has
        // (not MADV_DONTFORK) and may write.
        let stores: Vec<(usize, Vec<u8>)> = writes
            .iter()
            .filter(|(at, len, _)| {
                at + len <= arena_bytes
                    && (at / ps..(at + len).div_ceil(ps)).all(|p| {
                        self.model.arena[p]
                            .as_ref()
                            .is_some_and(|m| m.prot.w && !m.dontfork)
                    })
            })
            .map(|&(at, len, seed)| (at, ops::data(seed, len)))
            .collect();
        let mut pipe = [0 as RawFd; 2];
        // SAFETY: pipe(2) fills the two descriptors.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", Errno::last()));
        }
        // SAFETY: the fuzzer is single-threaded, so the child may run any
        // code; it only loads and stores arena bytes and ends with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", Errno::last()));
        }
        if pid == 0 {
            let msg = self.child(probes, &stores);
            let code = match msg {
                Ok(()) => 0,
                Err(m) => {
                    let _ = sys::write(pipe[1], m.as_ptr() as usize, m.len() as u64);
                    1
                }
            };
            // SAFETY: ends the child without running the parent's
            // destructors (they would unmap and close the parent's copies).
            unsafe { libc::_exit(code) };
        }
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(pipe[1]) };
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let mut msg = vec![0u8; 4096];
        let n = sys::read_fd(pipe[0], &mut msg);
        // SAFETY: closing the read end, which we own.
        unsafe { libc::close(pipe[0]) };
        if libc::WIFSIGNALED(status) {
            return Err(format!(
                "fork: the child was killed by signal {} while checking or storing",
                libc::WTERMSIG(status)
            ));
        }
        if libc::WEXITSTATUS(status) != 0 {
            return Err(format!(
                "fork: in the child: {}",
                String::from_utf8_lossy(&msg[..n])
            ));
        }
        // The child's stores to shared pages are the parent's too.
        for (at, data) in &stores {
            for (i, b) in data.iter().enumerate() {
                let a = at + i;
                if let Some(m) = &self.model.arena[a / ps] {
                    if m.shared {
                        let at_buf = m.buf_page * ps + a % ps;
                        self.model.shadow[at_buf] = *b;
                    }
                }
            }
        }
        for (at, data) in &stores {
            self.check_after_store("fork: after the child's store", *at, data.len())?;
        }
        for &p in probes {
            if p < arena_bytes && self.mapped_with(p, 1, |p| p.r) {
                self.check_mapped("fork: the parent after the child", p, 1)?;
            }
        }
        Ok(Applied::Done)
    }

    /// The forked child: its mappings are the parent's (less DONTFORK ones).
    fn child(&self, probes: &[usize], stores: &[(usize, Vec<u8>)]) -> Result<(), Divergence> {
        let ps = self.ps();
        for &at in probes {
            if at >= self.arena.bytes() {
                continue;
            }
            let page = at / ps;
            match &self.model.arena[page] {
                Some(m) if m.dontfork && self.arena.all_present(page, 1) => {
                    return Err(format!(
                        "arena page {page} is MADV_DONTFORK but the child has it"
                    ));
                }
                Some(m) if m.dontfork => {}
                Some(m) if m.prot.r => self.check_mapped("the child's view", at, 1)?,
                _ => {}
            }
        }
        for (at, data) in stores {
            self.arena.store(*at, data);
            let back = self.arena.load(*at, data.len());
            compare("the child's store", *at, &back, data)?;
        }
        Ok(())
    }

    /// Closes every file and unmaps every mapping (for the final checks and
    /// for running another sequence in the same process).
    pub fn teardown(&mut self) {
        for s in self.slots.iter_mut() {
            *s = None;
        }
        let pages = self.arena.pages();
        let _ = self.arena.munmap(0, pages);
        self.model.unmap(0..pages);
        let _ = self.arena.refill(0, pages);
    }
}
