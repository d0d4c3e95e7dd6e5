// SPDX-License-Identifier: GPL-2.0
//! The fuzzer's rules: from the model and one operation, what the kernel and
//! the driver must answer (the errno, in the order the kernel checks, or how
//! many bytes move), which bytes the user memory or the buffer then hold,
//! and how the arena's mappings change.
//!
//! Every rule here is a pure function of the model and the operation, so
//! each can be tested on its own; `exec` makes the call, compares what
//! happened with the rule's answer, and applies the change to the model.
//! A rule answers `None` for an operation that is not applicable in the
//! state it meets (nothing is called for it).

use std::ops::Range;

use nix::errno::Errno;

use super::model::{Mapped, Model, Prot};
use super::ops::{self, Access, Advice, Call, Kind, Mmap, Place, UserBuf};
use crate::abi::MapdrvInfo;

/// `MAX_RW_COUNT`: the most one read or write moves (INT_MAX & PAGE_MASK).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// The `_IOC_TYPE` bytes of the ioctls the VFS handles itself for any file
/// (FIOCLEX, FIFREEZE, FS_IOC_*, FICLONE, FIGETBSZ...): a random command of
/// these types would test the VFS, or freeze a file system, not the driver.
const VFS_IOCTL_TYPES: [u8; 6] = [b'T', b'X', b'f', 0x94, 0x00, 0x15];

/// An expected errno, or success.
pub type Want = Result<(), Errno>;

/// The arena pages `len` bytes of a mapping take (rounded up).
fn pages_of(len: u64, ps: usize) -> usize {
    len.div_ceil(ps as u64) as usize
}

/// What an mmap must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmapPlan {
    pub want: Want,
    /// The refusal comes from the driver, after a `MAP_FIXED` unmapped the
    /// range.
    pub driver_refused: bool,
    /// Pages the mapping takes.
    pub pages: usize,
}

/// What the arena must look like after a refused mmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRefusal {
    /// Nothing was there to change (not `MAP_FIXED`).
    Unchanged,
    /// The core unmapped the range before asking the driver: a hole.
    Hole(Range<usize>),
    /// Refused before anything was unmapped: every page is still there.
    Intact(Range<usize>),
}

impl MmapPlan {
    pub fn after_refusal(&self, place: Place) -> AfterRefusal {
        match place {
            Place::Fixed(p) if self.driver_refused => AfterRefusal::Hole(p..p + self.pages),
            Place::Fixed(p) => AfterRefusal::Intact(p..p + self.pages),
            _ => AfterRefusal::Unchanged,
        }
    }
}

/// The rule for mmap: `None` when the mapping would not fit in the arena,
/// or its length in a `size_t` (a sequence saved on a 64-bit machine,
/// replayed on 32-bit ARM).
pub fn mmap(model: &Model, op: &Mmap, access: Option<Access>, noexec: bool) -> Option<MmapPlan> {
    if op.len > model.ulong_max {
        return None;
    }
    let pages = pages_of(op.len, model.page_size);
    let fits = |p: usize| pages > 0 && p.checked_add(pages).is_some_and(|e| e <= model.arena.len());
    match op.place {
        Place::Fixed(p) | Place::NoReplace(p) | Place::Anywhere(Some(p)) if !fits(p) => {
            return None;
        }
        _ => {}
    }
    let (want, driver_refused) = mmap_errno(model, op, access, noexec);
    Some(MmapPlan {
        want,
        driver_refused,
        pages,
    })
}

/// What mmap answers, in the order the kernel checks: the core's checks of
/// the arguments, then of the file and its access, then the driver's; and
/// whether a refusal is the driver's. Sums are the kernel's, in
/// `unsigned long` (`model.ulong_max`).
fn mmap_errno(model: &Model, op: &Mmap, access: Option<Access>, noexec: bool) -> (Want, bool) {
    let pre = |e| (Err(e), false);
    let ps = model.page_size as u64;
    let (len, offset) = (op.len, op.offset);
    // On 32-bit ARM the kernel takes a page number (mmap2), and libc's
    // mmap64 refuses an offset whose page number does not fit in one, as
    // the kernel refuses an unaligned one. (On 64-bit, every page number
    // fits.)
    let ulong_max = model.ulong_max;
    if !offset.is_multiple_of(ps) || offset / ps > ulong_max {
        return pre(Errno::EINVAL);
    }
    let Some(access) = access else {
        return pre(Errno::EBADF);
    };
    if op.kind == Kind::PrivateHugetlb || len == 0 {
        return pre(Errno::EINVAL);
    }
    // PAGE_ALIGN(len) wraps to 0.
    let Some(rounded) = len.checked_next_multiple_of(ps).filter(|&r| r <= ulong_max) else {
        return pre(Errno::ENOMEM);
    };
    let pgoff = offset / ps;
    let pages = rounded / ps;
    if pgoff.checked_add(pages).is_none_or(|end| end > ulong_max) {
        return pre(Errno::EOVERFLOW);
    }
    // Without an address hint above it, mmap stays below the default
    // window (DEFAULT_MAP_WINDOW: 128 TiB on x86_64 even with 5-level
    // paging, 256 TiB on arm64 even with 52-bit addresses; TASK_SIZE on
    // 32-bit ARM).
    if rounded > model.map_window - ps {
        return pre(Errno::ENOMEM);
    }
    if matches!(op.place, Place::NoReplace(_)) {
        return pre(Errno::EEXIST);
    }
    // file_mmap_ok(): offset + length at most ULONG_MAX for a device.
    if pgoff > (ulong_max - rounded) / ps {
        return pre(Errno::EOVERFLOW);
    }
    if let Err(e) = mmap_file_errno(op.kind, op.prot, access, noexec) {
        return pre(e);
    }
    // The driver.
    if op.prot.x {
        return (Err(Errno::EPERM), true);
    }
    if pgoff + pages > model.buffer_pages() as u64 {
        return (Err(Errno::EINVAL), true);
    }
    (Ok(()), false)
}

/// The core's checks of the mapping type against the file and its mount.
fn mmap_file_errno(kind: Kind, prot: Prot, access: Access, noexec: bool) -> Want {
    match kind {
        Kind::NoType => return Err(Errno::EINVAL),
        Kind::SharedValidateSync => return Err(Errno::EOPNOTSUPP),
        k if k.shared() && prot.w && !access.writable() => return Err(Errno::EACCES),
        _ => {}
    }
    if !access.readable() {
        return Err(Errno::EACCES);
    }
    if prot.x && noexec {
        return Err(Errno::EPERM);
    }
    if kind == Kind::PrivateGrowsdown {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The pages of the VMA a successful mmap makes, numbered `vma`: a private
/// writable mapping populated at mmap time has its copies already.
pub fn mmap_pages(model: &Model, op: &Mmap, access: Option<Access>, vma: u64) -> Vec<Mapped> {
    let ps = model.page_size;
    let shared = op.kind.shared();
    let maywrite = !shared || access.is_some_and(Access::writable);
    let pgoff = op.offset as usize / ps;
    (0..pages_of(op.len, ps))
        .map(|i| {
            let b = (pgoff + i) * ps;
            Mapped {
                vma,
                buf_page: pgoff + i,
                prot: op.prot,
                shared,
                maywrite,
                dontfork: false,
                cow: (op.populate && !shared && op.prot.w)
                    .then(|| model.shadow[b..b + ps].to_vec().into_boxed_slice()),
            }
        })
        .collect()
}

/// The rule for munmap: the arena pages it unmaps.
pub fn munmap(model: &Model, page: usize, pages: usize) -> Option<Range<usize>> {
    (page + pages <= model.arena.len()).then_some(page..page + pages)
}

/// What an mremap of one device VMA must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MremapPlan {
    pub want: Want,
    pub page: usize,
    pub old: usize,
    pub new: usize,
    pub to: Option<usize>,
}

/// The rule for mremap: `None` unless the source lies inside one VMA of the
/// device and the destination inside the arena.
pub fn mremap(
    model: &Model,
    page: usize,
    old: usize,
    new: usize,
    to: Option<usize>,
) -> Option<MremapPlan> {
    let arena = model.arena.len();
    if old == 0 || page + old > arena || to.is_some_and(|t| t + new > arena || new == 0) {
        return None;
    }
    if model.vma_range(page).is_none_or(|r| r.end < page + old) {
        return None;
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
    Some(MremapPlan {
        want,
        page,
        old,
        new,
        to,
    })
}

impl MremapPlan {
    /// Applies a successful mremap to the model; returns the arena pages it
    /// left unmapped (to be refilled, maybe none) and, for a move, the pages
    /// the mapping took.
    pub fn apply(&self, model: &mut Model) -> (Range<usize>, Option<Range<usize>>) {
        let (page, old, new) = (self.page, self.old, self.new);
        let Some(t) = self.to else {
            // In place: only a shrink succeeds, and it drops the tail.
            let tail = page + new.min(old)..page + old;
            model.unmap(tail.clone());
            return (tail, None);
        };
        let vma = model.new_vma();
        let moved: Vec<Option<Mapped>> = model.arena[page..page + new]
            .iter()
            .cloned()
            .map(|m| m.map(|m| Mapped { vma, ..m }))
            .collect();
        model.unmap(page..page + old);
        for (i, m) in moved.into_iter().enumerate() {
            model.arena[t + i] = m;
        }
        (page..page + old, Some(t..t + new))
    }
}

/// What an mprotect must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MprotectPlan {
    pub want: Want,
    pub prot: Prot,
    /// The VMAs (or the parts of them in range) that get the protection.
    pub changed: Vec<Range<usize>>,
}

/// The rule for mprotect of device pages: VMA by VMA, stopping at the first
/// one that refuses (the ones before it keep their new protection). `None`
/// unless every page maps the device.
pub fn mprotect(model: &Model, page: usize, pages: usize, prot: Prot) -> Option<MprotectPlan> {
    if page + pages > model.arena.len() || !model.all_mapped(page..page + pages) {
        return None;
    }
    let mut plan = MprotectPlan {
        want: Ok(()),
        prot,
        changed: Vec::new(),
    };
    for piece in model.vmas_in(page..page + pages).into_iter().flatten() {
        let Some(m) = &model.arena[piece.start] else {
            continue;
        };
        if prot.x || (prot.w && !m.maywrite) {
            plan.want = Err(Errno::EACCES);
            break;
        }
        if m.prot != prot {
            plan.changed.push(piece);
        }
    }
    Some(plan)
}

impl MprotectPlan {
    pub fn apply(&self, model: &mut Model) {
        for piece in &self.changed {
            model.split_off(piece.clone());
            for p in piece.clone() {
                if let Some(m) = model.arena[p].as_mut() {
                    m.prot = self.prot;
                }
            }
        }
    }
}

/// What a madvise must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadvisePlan {
    pub want: Want,
    pub advice: Advice,
    pub range: Range<usize>,
    /// The VMAs in range (`None` for placeholders).
    pub pieces: Vec<Option<Range<usize>>>,
}

/// The rule for madvise over arena pages; `swap`: the kernel has swap
/// support (WILLNEED on anonymous memory).
pub fn madvise(
    model: &Model,
    page: usize,
    pages: usize,
    advice: Advice,
    swap: bool,
) -> Option<MadvisePlan> {
    if page + pages > model.arena.len() {
        return None;
    }
    let range = page..page + pages;
    let pieces = model.vmas_in(range.clone());
    let any_device = pieces.iter().any(Option::is_some);
    let want = match advice {
        Advice::DontNeed | Advice::DontFork => Ok(()),
        Advice::WillNeed if !swap && pieces.iter().any(Option::is_none) => Err(Errno::EBADF),
        Advice::WillNeed => Ok(()),
        // VM_SPECIAL (VM_DONTEXPAND | VM_MIXEDMAP) may not be forked
        // again once MADV_DONTFORK set VM_DONTCOPY.
        Advice::DoFork if any_device => Err(Errno::EINVAL),
        Advice::DoFork => Ok(()),
        Advice::Remove => match &pieces[0] {
            None => Err(Errno::EINVAL),
            Some(r)
                if model.arena[r.start]
                    .as_ref()
                    .is_some_and(|m| m.shared && m.maywrite) =>
            {
                // vfs_fallocate on a character device.
                Err(Errno::ENODEV)
            }
            Some(_) => Err(Errno::EACCES),
        },
    };
    Some(MadvisePlan {
        want,
        advice,
        range,
        pieces,
    })
}

impl MadvisePlan {
    pub fn apply(&self, model: &mut Model) {
        match self.advice {
            Advice::DontNeed => {
                // Private copies are dropped: the next access maps the
                // buffer page again.
                for p in self.range.clone() {
                    if let Some(m) = model.arena[p].as_mut() {
                        m.cow = None;
                    }
                }
            }
            Advice::DontFork => {
                for piece in self.pieces.iter().flatten() {
                    if model.arena[piece.start]
                        .as_ref()
                        .is_some_and(|m| !m.dontfork)
                    {
                        model.split_off(piece.clone());
                        for p in piece.clone() {
                            if let Some(m) = model.arena[p].as_mut() {
                                m.dontfork = true;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The rule for a load or store through the arena: applicable only when
/// every byte is on a device page readable (load) or writable (store).
pub fn touchable(model: &Model, at: usize, len: usize, write: bool) -> bool {
    if write {
        model.mapped_with(at, len, |p| p.w)
    } else {
        model.mapped_with(at, len, |p| p.r)
    }
}

/// The open file a read, write or ioctl goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFile {
    pub access: Access,
    /// The file position.
    pub pos: i64,
}

/// What a read, write, pread or pwrite must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RwPlan {
    pub want: Want,
    /// The buffer offset it starts at.
    pub pos: i64,
    /// The bytes that move.
    pub moved: usize,
    /// The user memory ends before the transfer would: the copy stops at a
    /// page it cannot access, after `moved` bytes, or before on an
    /// architecture whose copies are not exact to the byte (see
    /// [`RwPlan::allows`]).
    pub cut_short: bool,
    /// The source of a write as the model sees it (for a write from the
    /// heap, what to put there first: as many bytes as the driver takes).
    pub src: Vec<u8>,
}

/// The rule for read/write/pread/pwrite with the user buffer at `addr`
/// (`user_ptr_max`: the highest address `access_ok` accepts). `None` when
/// the user buffer in the arena could run past its end, or when the driver
/// would copy between the buffer and a mapping of the same bytes (which has
/// no single right answer), or for a length that is no `size_t` here.
pub fn rw(
    model: &Model,
    op: &ops::Rw,
    file: Option<OpenFile>,
    addr: usize,
    user_ptr_max: usize,
) -> Option<RwPlan> {
    if op.len > model.ulong_max {
        return None;
    }
    let positional = matches!(op.call, Call::Pread | Call::Pwrite);
    let pos = if positional {
        op.offset
    } else {
        file.map_or(0, |f| f.pos)
    };
    let fills = op.call.fills_user();
    let k = rw_span(pos, op.len, model.shadow.len());
    if let UserBuf::Arena(b) = op.buf {
        if rw_overlaps_itself(model, fills, b, pos, k) {
            return None;
        }
    }
    let access = file.map(|f| f.access);
    let want = rw_errno(op, pos, access, (addr, user_ptr_max), model);
    // How many bytes the user memory takes or gives.
    let avail = match op.buf {
        UserBuf::Heap => k,
        UserBuf::Arena(b) => model.accessible(b, k, fills),
        UserBuf::Null | UserBuf::Kernel => 0,
    };
    let want = match want {
        Ok(()) if k > 0 && avail == 0 => Err(Errno::EFAULT),
        w => w,
    };
    let moved = avail.min(k);
    let src = match op.buf {
        UserBuf::Heap if !fills => ops::data(op.seed, k),
        UserBuf::Arena(b) if !fills => (b..b + moved).map(|a| model.byte(a).unwrap_or(0)).collect(),
        _ => Vec::new(),
    };
    Some(RwPlan {
        want,
        pos,
        moved,
        cut_short: moved < k,
        src,
    })
}

/// The most the driver moves for `len` bytes at `pos` of a `size`-byte
/// buffer: nothing outside it, never more than `MAX_RW_COUNT`.
fn rw_span(pos: i64, len: u64, size: usize) -> usize {
    let size = size as i64;
    if pos >= 0 && pos < size {
        len.min(MAX_RW_COUNT).min((size - pos) as u64) as usize
    } else {
        0
    }
}

/// Whether a transfer of `k` bytes between buffer offset `pos` and arena
/// byte `b` runs past the arena, or touches a mapping of the buffer bytes
/// it moves (for a read, only a shared mapping writes them back).
fn rw_overlaps_itself(model: &Model, fills: bool, b: usize, pos: i64, k: usize) -> bool {
    if b + k > model.arena.len() * model.page_size {
        return true;
    }
    let (p0, p1) = (pos.max(0) as usize, pos.max(0) as usize + k);
    let ranges = if fills {
        model.shared_buffer_ranges(b, k)
    } else {
        model.buffer_ranges(b, k)
    };
    ranges.iter().any(|r| r.start < p1 && p0 < r.end)
}

/// The errno of a read or write, in the kernel's order of checks, before
/// the user memory is touched (the user buffer at `addr`, `access_ok`'s
/// highest address `user_ptr_max`).
fn rw_errno(
    op: &ops::Rw,
    pos: i64,
    access: Option<Access>,
    (addr, user_ptr_max): (usize, usize),
    model: &Model,
) -> Want {
    let size = model.shadow.len();
    let positional = matches!(op.call, Call::Pread | Call::Pwrite);
    let fills = op.call.fills_user();
    let len = op.len;
    let access_ok = (addr as u64)
        .checked_add(len)
        .is_some_and(|end| end <= user_ptr_max as u64);
    if positional && pos < 0 {
        Err(Errno::EINVAL)
    } else if (fills && !access.is_some_and(Access::readable))
        || (!fills && !access.is_some_and(Access::writable))
    {
        Err(Errno::EBADF)
    } else if !access_ok {
        Err(Errno::EFAULT)
    } else if len > model.ulong_max >> 1 // (ssize_t)count < 0
        || pos < 0
        || pos.checked_add(len as i64).is_none()
    {
        Err(Errno::EINVAL)
    } else if !fills && len > 0 && pos >= size as i64 {
        Err(Errno::ENOSPC)
    } else {
        Ok(())
    }
}

impl RwPlan {
    /// Whether `n` bytes moved is a right answer. Exactly [`RwPlan::moved`],
    /// with `exact_uaccess` (x86_64's user copies stop at the first byte
    /// they cannot access). Without it, a copy cut short by user memory
    /// it cannot access may stop before that byte, as the kernel's contract
    /// for `raw_copy_{to,from}_user` allows (include/linux/uaccess.h: the
    /// bytes past the reported ones are left alone, and nothing is copied
    /// only when nothing could be): arm64's copies store 16 bytes at a
    /// time, and the store that crosses into the page it cannot write is
    /// not reported at all.
    pub fn allows(&self, n: usize, exact_uaccess: bool) -> bool {
        n == self.moved || (!exact_uaccess && self.cut_short && (1..self.moved).contains(&n))
    }

    /// Whether a transfer may fail with `EFAULT`, having reported nothing
    /// copied although its first [`RwPlan::moved`] bytes of user memory are
    /// reachable: the copy is cut short by memory it cannot access, and
    /// fewer than `below` bytes come before it (32-bit ARM's
    /// `arm_copy_{from,to}_user` move blocks of words, and a fault in the
    /// first block reports the whole copy as not done).
    pub fn may_copy_nothing(&self, below: usize) -> bool {
        self.cut_short && self.moved < below
    }

    /// The plan for a transfer that moved `n` bytes ([`RwPlan::allows`]).
    pub fn with_moved(&self, n: usize) -> RwPlan {
        RwPlan {
            moved: n,
            src: self.src[..n.min(self.src.len())].to_vec(),
            ..self.clone()
        }
    }

    /// Applies a successful transfer to the model: a write changes the
    /// buffer, a read into the arena stores there. Returns the bytes a read
    /// brings (empty for a write).
    pub fn apply(&self, model: &mut Model, op: &ops::Rw) -> Vec<u8> {
        let (p, n) = (self.pos as usize, self.moved);
        if n == 0 {
            return Vec::new();
        }
        if !op.call.fills_user() {
            model.shadow[p..p + n].copy_from_slice(&self.src[..n]);
            return Vec::new();
        }
        let data = model.shadow[p..p + n].to_vec();
        if let UserBuf::Arena(b) = op.buf {
            model.store(b, &data);
        }
        data
    }
}

/// What an ioctl must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoctlPlan {
    pub want: Want,
    /// How many bytes of the `MAPDRV_IOC_INFO` answer land in user memory
    /// (the fields up to the first that is not writable).
    pub written: usize,
}

/// The rule for an ioctl with command `cmd` and argument `arg`, where
/// `info_cmd` is `MAPDRV_IOC_INFO`. `None` for commands the VFS answers
/// itself, an argument that could run past the arena, and a field of the
/// answer across the edge of a writable page (how much of it lands is not
/// the driver's to say).
pub fn ioctl(
    model: &Model,
    open: bool,
    cmd: u32,
    info_cmd: u32,
    arg: UserBuf,
) -> Option<IoctlPlan> {
    let is_info = cmd == info_cmd;
    let ty = ((cmd >> 8) & 0xff) as u8;
    if !is_info && VFS_IOCTL_TYPES.contains(&ty) {
        return None;
    }
    let fields = info_fields_landing(model, arg)?;
    let all = MapdrvInfo::FIELDS.len();
    let want = if !open {
        Err(Errno::EBADF)
    } else if !is_info {
        Err(Errno::ENOTTY)
    } else if fields < all {
        Err(Errno::EFAULT)
    } else {
        Ok(())
    };
    let written = if open && is_info {
        MapdrvInfo::FIELDS[..fields]
            .last()
            .map_or(0, |(o, s)| o + s)
    } else {
        0
    };
    Some(IoctlPlan { want, written })
}

/// How many fields of the info answer the user memory `arg` takes.
fn info_fields_landing(model: &Model, arg: UserBuf) -> Option<usize> {
    let all = MapdrvInfo::FIELDS.len();
    let b = match arg {
        UserBuf::Heap => return Some(all),
        UserBuf::Null | UserBuf::Kernel => return Some(0),
        UserBuf::Arena(b) => b,
    };
    if b + MapdrvInfo::SIZE > model.arena.len() * model.page_size {
        return None;
    }
    let mut fields = all;
    for (i, (off, sz)) in MapdrvInfo::FIELDS.iter().enumerate() {
        match model.accessible(b + off, *sz, true) {
            ok if ok == *sz => {}
            0 => fields = fields.min(i),
            _ => return None,
        }
    }
    Some(fields)
}

/// The stores a forked child makes: inside the arena, on pages it has (not
/// `MADV_DONTFORK`) and may write.
pub fn fork_stores(model: &Model, writes: &[(usize, usize, u64)]) -> Vec<(usize, Vec<u8>)> {
    let ps = model.page_size;
    writes
        .iter()
        .filter(|(at, len, _)| {
            at + len <= model.arena.len() * ps
                && (at / ps..(at + len).div_ceil(ps)).all(|p| {
                    model.arena[p]
                        .as_ref()
                        .is_some_and(|m| m.prot.w && !m.dontfork)
                })
        })
        .map(|&(at, len, seed)| (at, ops::data(seed, len)))
        .collect()
}

/// What a forked child must see at an arena byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildView {
    /// Nothing to check (outside the arena, not readable, a placeholder).
    Nothing,
    /// A `MADV_DONTFORK` page: the child must not have it.
    Absent(usize),
    /// The byte the parent's model shows.
    Same,
}

pub fn child_view(model: &Model, at: usize) -> ChildView {
    if at >= model.arena.len() * model.page_size {
        return ChildView::Nothing;
    }
    let page = at / model.page_size;
    match &model.arena[page] {
        Some(m) if m.dontfork => ChildView::Absent(page),
        Some(m) if m.prot.r => ChildView::Same,
        _ => ChildView::Nothing,
    }
}

/// The child's stores to shared pages are the parent's too: applies them
/// to the buffer.
pub fn apply_child_stores(model: &mut Model, stores: &[(usize, Vec<u8>)]) {
    let ps = model.page_size;
    for (at, data) in stores {
        for (i, b) in data.iter().enumerate() {
            let a = at + i;
            if let Some(m) = &model.arena[a / ps] {
                if m.shared {
                    let at_buf = m.buf_page * ps + a % ps;
                    model.shadow[at_buf] = *b;
                }
            }
        }
    }
}

/// The arena pages whose content a full comparison loads.
pub fn readable_pages(model: &Model) -> Vec<usize> {
    (0..model.arena.len())
        .filter(|&p| model.arena[p].as_ref().is_some_and(|m| m.prot.r))
        .collect()
}

#[cfg(test)]
mod tests;
