// SPDX-License-Identifier: GPL-2.0
//! Runs one operation against the device and compares with the model.
//!
//! For every call the rules in [`super::predict`] give the outcome first
//! (the errno, in the order the kernel checks, or what it returns); then
//! the call is made, and any difference, and any byte that reads back other
//! than the model says, is a divergence. Stores and writes are checked at
//! once: the buffer by pread through a file of its own, the mapping by
//! loading it back.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use super::model::{Model, Prot};
use super::ops::{self, Access, Advice, Call, GenState, Op, Place, SLOTS, UserBuf};
use super::predict::{self, AfterRefusal, ChildView, OpenFile, Want};
use super::sys::{self, Arena, SysResult};
use crate::abi::MapdrvInfo;
use crate::child::{self, Ended};

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
    /// The top of the default mmap window (see [`Model::map_window`]).
    pub map_window: u64,
    /// The kernel's user copies stop exactly at the first byte they cannot
    /// access (x86_64), not up to a store's width before it (arm64); see
    /// [`predict::RwPlan::allows`].
    pub exact_uaccess: bool,
    /// A copy from user memory that can reach fewer bytes than this before
    /// memory it cannot access may copy nothing at all (0 on x86_64 and
    /// arm64; 64 on 32-bit ARM, whose copy loops load a block of words
    /// before storing any, and whose fault fixup then reports the whole
    /// copy as not done): see [`predict::RwPlan::may_copy_nothing`].
    pub copy_nothing_below: usize,
    /// The debugfs `mode` file, if there is one.
    pub mode_file: Option<PathBuf>,
    pub info_cmd: u32,
    /// What MAPDRV_IOC_INFO answers (its mode follows the mode switches).
    pub info: MapdrvInfo,
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

/// Compares a call's result with the rule's: a refusal the rule predicted
/// counts as refused and returns 0.
fn expect_result(what: &str, got: SysResult, want: Want) -> Result<usize, Divergence> {
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
            model: Model::new(shadow, page_size, arena_pages, env.map_window),
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
        let got = self.read_buffer(what, range.clone())?;
        compare(
            &format!("{what}: buffer (pread)"),
            range.start,
            &got,
            &self.model.shadow[range],
        )
    }

    /// Buffer bytes `range`, by pread.
    fn read_buffer(
        &self,
        what: &str,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<u8>, Divergence> {
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
        Ok(got)
    }

    /// After a transfer between buffer bytes from `pos` and arena bytes
    /// from `at` that reported `n` bytes where the model allowed `full`
    /// (cut short by user memory it cannot access, on an architecture whose
    /// user copies are not exact: see [`predict::RwPlan::allows`]), the
    /// `full - n` bytes after the reported ones in the destination: each
    /// must hold its old value or the source's (arm64 stores 16 bytes as two
    /// 8-byte halves, and the half before the page it cannot write lands
    /// unreported). What they hold goes into the model; returns how many
    /// there are.
    fn settle_tail(
        &mut self,
        what: &str,
        fills: bool,
        (pos, at): (usize, usize),
        n: usize,
        full: usize,
    ) -> Result<usize, Divergence> {
        let len = full - n;
        if len == 0 {
            return Ok(0);
        }
        let (src, dst) = ((pos + n)..(pos + full), (at + n)..(at + full));
        let arena_old: Vec<u8> = dst.clone().filter_map(|a| self.model.byte(a)).collect();
        if arena_old.len() != len {
            return Err(format!("{what}: the unreported bytes are not all mapped"));
        }
        let (got, old, new) = if fills {
            let got = self.arena.load(dst.start, len);
            (got, arena_old, self.model.shadow[src.clone()].to_vec())
        } else {
            let got = self.read_buffer(what, src.clone())?;
            (got, self.model.shadow[src.clone()].to_vec(), arena_old)
        };
        if let Some(i) = (0..len).find(|&i| got[i] != old[i] && got[i] != new[i]) {
            return Err(format!(
                "{what}: byte {i} after the {n} reported is {:#04x}, neither the old {:#04x} nor the copied {:#04x}",
                got[i], old[i], new[i]
            ));
        }
        if !fills {
            self.model.shadow[src].copy_from_slice(&got);
            return Ok(len);
        }
        // Only pages that were written to: a store into a private page
        // gives the process its own copy, so a page whose bytes all kept
        // their value stays as the model has it.
        let ps = self.ps();
        let mut i = 0;
        while i < len {
            let chunk = (ps - (dst.start + i) % ps).min(len - i);
            if (i..i + chunk).any(|j| got[j] != old[j]) {
                self.model.store(dst.start + i, &got[i..i + chunk]);
            }
            i += chunk;
        }
        Ok(len)
    }

    /// Loads arena bytes `at..at + len` (readable, per the model) and
    /// compares them with the model.
    fn check_mapped(&self, what: &str, at: usize, len: usize) -> Result<(), Divergence> {
        let got = self.arena.load(at, len);
        let want: Vec<u8> = (at..at + len).filter_map(|a| self.model.byte(a)).collect();
        compare(&format!("{what}: mapping (load)"), at, &got, &want)
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
        if predict::touchable(&self.model, at, len, false) {
            self.check_mapped(what, at, len)?;
        }
        Ok(())
    }

    fn refill(&self, page: usize, pages: usize) -> Result<(), Divergence> {
        self.arena.refill(page, pages).map(drop).map_err(|e| {
            format!("re-reserving arena pages {page}+{pages}: {e} (were they not unmapped?)")
        })
    }

    /// The open file in `slot`, its descriptor (-1 when there is none) and
    /// what the rules need to know of it.
    fn file(&self, slot: u8) -> (libc::c_int, Option<OpenFile>) {
        match &self.slots[slot as usize] {
            Some(s) => (
                s.fd.as_raw_fd(),
                Some(OpenFile {
                    access: s.access,
                    pos: s.pos,
                }),
            ),
            None => (-1, None),
        }
    }

    /// The address the kernel gets for user memory `buf`.
    fn user_addr(&mut self, buf: UserBuf) -> usize {
        match buf {
            UserBuf::Heap => self.heap.as_mut_ptr() as usize,
            UserBuf::Arena(b) => self.arena.addr(b),
            UserBuf::Null => 0,
            UserBuf::Kernel => crate::device::KERNEL_HALF_START,
        }
    }

    /// Runs `op`.
    pub fn apply(&mut self, op: &Op) -> Result<Applied, Divergence> {
        match op {
            Op::Open { slot, access } => self.open(*slot, *access),
            Op::Close { slot } => Ok(match self.slots[*slot as usize].take() {
                Some(_) => Applied::Done,
                None => Applied::Skipped,
            }),
            Op::Mmap(m) => self.mmap(m),
            Op::Munmap { page, pages } => self.munmap(*page, *pages),
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
            Op::SetMode { mode } => self.set_mode(*mode),
            Op::CheckAll => self.check_all(),
        }
    }

    fn open(&mut self, slot: u8, access: Access) -> Result<Applied, Divergence> {
        let s = slot as usize;
        self.slots[s] = None;
        let fd =
            open_device(&self.env.device, access).map_err(|e| format!("open {access:?}: {e}"))?;
        self.slots[s] = Some(Slot { fd, access, pos: 0 });
        Ok(Applied::Done)
    }

    fn munmap(&mut self, page: usize, pages: usize) -> Result<Applied, Divergence> {
        let Some(range) = predict::munmap(&self.model, page, pages) else {
            return Ok(Applied::Skipped);
        };
        expect_result("munmap", self.arena.munmap(page, pages), Ok(()))?;
        self.model.unmap(range);
        self.refill(page, pages)?;
        Ok(Applied::Done)
    }

    fn set_mode(&mut self, mode: u32) -> Result<Applied, Divergence> {
        let Some(file) = &self.env.mode_file else {
            return Ok(Applied::Skipped);
        };
        std::fs::write(file, format!("{mode}\n"))
            .map_err(|e| format!("writing {mode} to {}: {e}", file.display()))?;
        self.env.info.mode = mode;
        Ok(Applied::Done)
    }

    fn check_all(&mut self) -> Result<Applied, Divergence> {
        self.check_buffer("check-all", 0..self.size())?;
        let ps = self.ps();
        for p in predict::readable_pages(&self.model) {
            self.check_mapped(&format!("check-all arena page {p}"), p * ps, ps)?;
        }
        Ok(Applied::Done)
    }

    fn mmap(&mut self, op: &ops::Mmap) -> Result<Applied, Divergence> {
        let (fd, file) = self.file(op.slot);
        let access = file.map(|f| f.access);
        let Some(plan) = predict::mmap(&self.model, op, access, self.env.noexec) else {
            return Ok(Applied::Skipped);
        };
        let what = format!(
            "mmap {:?} {} len {:#x} offset {:#x} at {:?}",
            op.kind, op.prot, op.len, op.offset, op.place
        );
        let got = self.mmap_call(op, fd);
        if let (Ok(addr), Err(_), Place::Anywhere(_)) = (got, plan.want, op.place) {
            // Do not leave a mapping the model does not know about.
            let _ = sys::munmap_anywhere(addr, op.len as usize);
        }
        let addr = expect_result(&what, got, plan.want)?;
        let (Place::Fixed(at) | Place::NoReplace(at) | Place::Anywhere(Some(at))) = op.place else {
            if plan.want.is_ok() {
                self.look_and_unmap(&what, op, addr)?;
            }
            return Ok(Applied::Done);
        };
        if plan.want.is_err() {
            self.after_refused_mmap(&what, plan.after_refusal(op.place))?;
            return Ok(Applied::Done);
        }
        if let Place::Anywhere(Some(to)) = op.place {
            expect_result(
                "mremap MREMAP_FIXED of the new mapping into the arena",
                self.arena.move_in(addr, op.len as usize, to),
                Ok(()),
            )?;
        }
        let vma = self.model.new_vma();
        let pages = predict::mmap_pages(&self.model, op, access, vma);
        for (i, m) in pages.into_iter().enumerate() {
            self.model.arena[at + i] = Some(m);
        }
        if op.prot.r {
            for i in 0..plan.pages {
                self.check_mapped(&what, (at + i) * self.ps(), 16)?;
            }
        }
        Ok(Applied::Done)
    }

    /// Makes the mmap call of `op` on `fd`, in the arena or where the
    /// kernel likes.
    fn mmap_call(&self, op: &ops::Mmap, fd: libc::c_int) -> SysResult {
        let mut flags = op.kind.flags();
        if op.populate {
            flags |= libc::MAP_POPULATE;
        }
        let (prot, len) = (op.prot.bits(), op.len as usize);
        match op.place {
            Place::Fixed(p) => {
                self.arena
                    .mmap_at(p, len, prot, flags | libc::MAP_FIXED, fd, op.offset)
            }
            Place::NoReplace(p) => self.arena.mmap_at(
                p,
                len,
                prot,
                flags | libc::MAP_FIXED_NOREPLACE,
                fd,
                op.offset,
            ),
            Place::Anywhere(_) => sys::mmap_anywhere(op.len, prot, flags, fd, op.offset),
        }
    }

    /// A mapping made where the kernel liked and not moved into the arena:
    /// its first byte must be the buffer's at the offset; then it goes.
    fn look_and_unmap(&self, what: &str, op: &ops::Mmap, addr: usize) -> Result<(), Divergence> {
        if op.prot.r {
            let want = self.model.shadow[op.offset as usize];
            // SAFETY: the kernel just mapped `len` bytes at `addr`,
            // readable; the first page is inside it.
            let first = unsafe { std::ptr::read_volatile(addr as *const u8) };
            if first != want {
                return Err(format!(
                    "{what}: the first byte reads {first:#04x}, the buffer holds {want:#04x}"
                ));
            }
        }
        expect_result(
            "munmap of it",
            sys::munmap_anywhere(addr, op.len as usize),
            Ok(()),
        )?;
        Ok(())
    }

    fn after_refused_mmap(&mut self, what: &str, after: AfterRefusal) -> Result<(), Divergence> {
        match after {
            AfterRefusal::Unchanged => {}
            AfterRefusal::Hole(r) => {
                // Refilling the hole proves that it is one.
                self.model.unmap(r.clone());
                self.refill(r.start, r.len())?;
            }
            AfterRefusal::Intact(r) => {
                if !self.arena.all_present(r.start, r.len()) {
                    return Err(format!(
                        "{what}: refused before the driver, yet it left a hole"
                    ));
                }
            }
        }
        Ok(())
    }

    fn mremap(
        &mut self,
        page: usize,
        old: usize,
        new: usize,
        to: Option<usize>,
    ) -> Result<Applied, Divergence> {
        let Some(plan) = predict::mremap(&self.model, page, old, new, to) else {
            return Ok(Applied::Skipped);
        };
        let what = format!(
            "mremap {old} -> {new} pages{}",
            to.map(|t| format!(" to {t}")).unwrap_or_default()
        );
        expect_result(&what, self.arena.mremap(page, old, new, to), plan.want)?;
        if plan.want.is_err() {
            return Ok(Applied::Done);
        }
        let (gone, moved) = plan.apply(&mut self.model);
        if !gone.is_empty() {
            self.refill(gone.start, gone.len())?;
        }
        let ps = self.ps();
        for p in moved.unwrap_or_default() {
            if self.model.arena[p].as_ref().is_some_and(|m| m.prot.r) {
                self.check_mapped(&what, p * ps, ps)?;
            }
        }
        Ok(Applied::Done)
    }

    fn mprotect(&mut self, page: usize, pages: usize, prot: Prot) -> Result<Applied, Divergence> {
        let Some(plan) = predict::mprotect(&self.model, page, pages, prot) else {
            return Ok(Applied::Skipped);
        };
        plan.apply(&mut self.model);
        expect_result(
            &format!("mprotect {prot}"),
            self.arena.mprotect(page, pages, prot.bits()),
            plan.want,
        )?;
        Ok(Applied::Done)
    }

    fn madvise(
        &mut self,
        page: usize,
        pages: usize,
        advice: Advice,
    ) -> Result<Applied, Divergence> {
        let Some(plan) = predict::madvise(&self.model, page, pages, advice, self.env.swap) else {
            return Ok(Applied::Skipped);
        };
        expect_result(
            &format!("madvise {advice:?}"),
            self.arena.madvise(page, pages, advice.raw()),
            plan.want,
        )?;
        plan.apply(&mut self.model);
        Ok(Applied::Done)
    }

    fn touch(&mut self, at: usize, len: usize, write: Option<u64>) -> Result<Applied, Divergence> {
        if !predict::touchable(&self.model, at, len, write.is_some()) {
            return Ok(Applied::Skipped);
        }
        match write {
            None => self.check_mapped("load", at, len)?,
            Some(seed) => {
                let data = ops::data(seed, len);
                self.arena.store(at, &data);
                self.model.store(at, &data);
                self.check_after_store("store", at, len)?;
            }
        }
        Ok(Applied::Done)
    }

    fn rw(&mut self, op: &ops::Rw) -> Result<Applied, Divergence> {
        let (fd, file) = self.file(op.slot);
        let addr = self.user_addr(op.buf);
        let Some(plan) = predict::rw(&self.model, op, file, addr, self.env.user_ptr_max) else {
            return Ok(Applied::Skipped);
        };
        if op.buf == UserBuf::Heap && !op.call.fills_user() {
            self.heap[..plan.src.len()].copy_from_slice(&plan.src);
        }
        let what = format!(
            "{:?} of {:#x} at {} into/from {:?}",
            op.call, op.len, plan.pos, op.buf
        );
        let got = rw_call(op, fd, addr);
        // A copy that reported nothing moved (EFAULT) although a few bytes
        // were reachable: then it is settled like one cut short after 0
        // bytes (the bytes it may have stored are checked by settle_tail).
        let copied_nothing = got == Err(Errno::EFAULT)
            && plan.want.is_ok()
            && plan.may_copy_nothing(self.env.copy_nothing_below);
        let n = if copied_nothing {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            0
        } else {
            expect_result(&what, got, plan.want)?
        };
        if plan.want.is_err() {
            return Ok(Applied::Done);
        }
        if !copied_nothing && !plan.allows(n, self.env.exact_uaccess) {
            return Err(format!(
                "{what}: moved {n} bytes, the model says {}",
                plan.moved
            ));
        }
        let full = plan.moved;
        let plan = plan.with_moved(n);
        if matches!(op.call, Call::Read | Call::Write) {
            if let Some(s) = self.slots[op.slot as usize].as_mut() {
                s.pos += n as i64;
            }
        }
        if n == 0 && !copied_nothing {
            return Ok(Applied::Done);
        }
        let fills = op.call.fills_user();
        // Private arena pages this read may give their own copy, and the
        // buffer before it, for `settle_cow_snapshots`.
        let uncopied = match op.buf {
            UserBuf::Arena(b) if fills && !self.env.exact_uaccess => {
                let ps = self.ps();
                let pages = (b / ps + 1)..(b + full).div_ceil(ps);
                let fresh: Vec<usize> = pages
                    .filter(|&q| {
                        self.model.arena[q]
                            .as_ref()
                            .is_some_and(|m| !m.shared && m.cow.is_none())
                    })
                    .collect();
                (!fresh.is_empty()).then(|| (fresh, self.model.shadow.clone()))
            }
            _ => None,
        };
        let brought = plan.apply(&mut self.model, op);
        let p = plan.pos as usize;
        // The copies first: the bytes after the reported ones may be in
        // one, and hold what it was taken with.
        if let Some((fresh, before)) = uncopied {
            self.settle_cow_snapshots(&fresh, &before);
        }
        let tail = match op.buf {
            UserBuf::Arena(b) => self.settle_tail(&what, fills, (p, b), n, full)?,
            _ => 0,
        };
        match op.buf {
            _ if !fills => self.check_buffer(&what, p..p + n + tail)?,
            UserBuf::Heap => compare(&what, p, &self.heap[..n], &brought)?,
            UserBuf::Arena(b) => self.check_after_store(&what, b, n + tail)?,
            _ => {}
        }
        Ok(Applied::Done)
    }

    /// After a read into the arena that crossed into private pages `fresh`
    /// (no copy of their own before it), with the buffer `before` it. Where
    /// the page before such a page is a shared mapping of the same buffer
    /// page, the read wrote the end of that buffer page through it just
    /// before it got to the private page, which copies the buffer page at
    /// its first write. On x86_64 the bytes before the private page land
    /// first, so the copy has them; arm64 stores up to 16 bytes at a time,
    /// and a store across the page boundary faults whole, so its bytes
    /// before the boundary land after the copy was taken, and the copy has
    /// their old values. Where the arena page shows an old value there, the
    /// model's copy takes it.
    fn settle_cow_snapshots(&mut self, fresh: &[usize], before: &[u8]) {
        const STORE: usize = 16;
        let ps = self.ps();
        for &q in fresh {
            let prev = self.model.arena[q - 1]
                .as_ref()
                .map(|m| (m.shared, m.buf_page));
            let Some(m) = self.model.arena[q].as_ref() else {
                continue;
            };
            if m.shared || m.cow.is_none() || prev != Some((true, m.buf_page)) {
                continue;
            }
            let base = m.buf_page * ps;
            let got = self.arena.load(q * ps + ps - STORE, STORE);
            if let Some(copy) = self.model.arena[q].as_mut().and_then(|m| m.cow.as_mut()) {
                for (i, &g) in got.iter().enumerate() {
                    let off = ps - STORE + i;
                    if g != copy[off] && g == before[base + off] {
                        copy[off] = g;
                    }
                }
            }
        }
    }

    fn ioctl(&mut self, slot: u8, cmd: u32, arg: UserBuf) -> Result<Applied, Divergence> {
        let (fd, _) = self.file(slot);
        let Some(plan) = predict::ioctl(&self.model, fd >= 0, cmd, self.env.info_cmd, arg) else {
            return Ok(Applied::Skipped);
        };
        let addr = self.user_addr(arg);
        if arg == UserBuf::Heap {
            self.heap[..MapdrvInfo::SIZE].fill(0xee);
        }
        // SAFETY: only MAPDRV_IOC_INFO writes (MapdrvInfo::SIZE bytes): to
        // the heap buffer, to arena bytes the rule checked to lie inside the
        // arena, or to an address the kernel refuses. Other commands must
        // not write at all.
        let got = unsafe { sys::ioctl(fd, cmd, addr) };
        let what = format!("ioctl {cmd:#x} to {arg:?}");
        expect_result(&what, got, plan.want)?;
        let n = plan.written;
        let answer = self.env.info.to_ne_bytes();
        match arg {
            UserBuf::Heap if n > 0 => compare(&what, 0, &self.heap[..n], &answer[..n])?,
            UserBuf::Arena(b) if n > 0 => {
                self.model.store(b, &answer[..n]);
                self.check_after_store(&what, b, n)?;
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
        let stores = predict::fork_stores(&self.model, writes);
        self.run_child(probes, &stores)?;
        predict::apply_child_stores(&mut self.model, &stores);
        for (at, data) in &stores {
            self.check_after_store("fork: after the child's store", *at, data.len())?;
        }
        for &p in probes {
            if predict::touchable(&self.model, p, 1, false) {
                self.check_mapped("fork: the parent after the child", p, 1)?;
            }
        }
        Ok(Applied::Done)
    }

    /// Forks a child that checks its view and makes `stores`; its complaint,
    /// if any, comes back as the divergence.
    fn run_child(&self, probes: &[usize], stores: &[(usize, Vec<u8>)]) -> Result<(), Divergence> {
        // SAFETY: the fuzzing process is single-threaded, so the child may
        // run any code; it only loads and stores arena bytes, writes to the
        // pipe and ends with _exit (child::spawn).
        let proc = unsafe {
            child::spawn(|fd| match self.child(probes, stores) {
                Ok(()) => 0,
                Err(m) => {
                    child::write_all(fd, m.as_bytes());
                    1
                }
            })
        }
        .map_err(|e| format!("{e}"))?;
        let mut said = Vec::new();
        // No deadline, like the fuzzing process itself (see run_child).
        let ended = proc
            .collect(None, |l| said.push(l.to_string()))
            .map_err(|e| format!("fork: waiting for the child: {e}"))?;
        match ended {
            Ended::Exited(0) => Ok(()),
            Ended::Exited(_) => Err(format!("fork: in the child: {}", said.join("\n"))),
            Ended::Signaled(sig) => Err(format!(
                "fork: the child was killed by signal {} while checking or storing",
                sig as i32
            )),
            Ended::Hung => Err("fork: the child hung while checking or storing".to_string()),
        }
    }

    /// The forked child: its mappings are the parent's (less DONTFORK ones).
    fn child(&self, probes: &[usize], stores: &[(usize, Vec<u8>)]) -> Result<(), Divergence> {
        for &at in probes {
            match predict::child_view(&self.model, at) {
                ChildView::Absent(page) if self.arena.all_present(page, 1) => {
                    return Err(format!(
                        "arena page {page} is MADV_DONTFORK but the child has it"
                    ));
                }
                ChildView::Same => self.check_mapped("the child's view", at, 1)?,
                ChildView::Absent(_) | ChildView::Nothing => {}
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

/// Makes the read, write, pread or pwrite of `op` on `fd` with the user
/// buffer at `addr`.
fn rw_call(op: &ops::Rw, fd: libc::c_int, addr: usize) -> SysResult {
    match op.call {
        // SAFETY: the destination is the heap buffer (big enough for the
        // most the driver moves), arena bytes (the rule checked that they
        // lie inside the arena), or an address the kernel refuses.
        Call::Read => unsafe { sys::read(fd, addr, op.len) },
        // SAFETY: as above.
        Call::Pread => unsafe { sys::pread(fd, addr, op.len, op.offset) },
        Call::Write => sys::write(fd, addr, op.len),
        Call::Pwrite => sys::pwrite(fd, addr, op.len, op.offset),
    }
}
