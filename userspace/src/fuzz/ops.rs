// SPDX-License-Identifier: GPL-2.0
//! The fuzzer's operations, and the generator that picks them.
//!
//! An operation names everything it touches by position: a file slot, arena
//! pages or arena bytes, buffer offsets. So a recorded sequence replays the
//! same way, and a subsequence (what minimisation tries) is still a valid
//! program: an operation whose target is not there any more is skipped.

use std::fmt;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::model::{Model, Prot};
use crate::abi;
use crate::device::ULONG_MAX;

/// File slots the fuzzer keeps (`open` into one, `close` one).
pub const SLOTS: u8 = 4;

/// A huge read or write length that is still a positive `ssize_t`, so the
/// driver gets it (and moves at most `MAX_RW_COUNT`): 1 TiB on 64-bit, the
/// largest `ssize_t` on 32-bit.
const HUGE_LEN: u64 = if usize::BITS == 64 {
    1 << 40
} else {
    isize::MAX as u64
};

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

impl Access {
    pub fn readable(self) -> bool {
        self != Access::WriteOnly
    }
    pub fn writable(self) -> bool {
        self != Access::ReadOnly
    }
}

/// Where an `mmap` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// `MAP_FIXED` at this arena page, over whatever is there.
    Fixed(usize),
    /// `MAP_FIXED_NOREPLACE` at this arena page (always taken: `EEXIST`).
    NoReplace(usize),
    /// Wherever the kernel likes; then moved (`mremap` `MREMAP_FIXED`) to
    /// this arena page, or unmapped again.
    Anywhere(Option<usize>),
}

/// The mapping type flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shared,
    Private,
    /// `MAP_SHARED_VALIDATE`: like shared, but unknown flags are refused.
    SharedValidate,
    /// `MAP_SHARED_VALIDATE | MAP_SYNC`: `EOPNOTSUPP` (no DAX here).
    SharedValidateSync,
    /// `MAP_PRIVATE | MAP_HUGETLB` on a file that is not hugetlbfs: `EINVAL`.
    PrivateHugetlb,
    /// `MAP_PRIVATE | MAP_GROWSDOWN`: a file mapping cannot grow, `EINVAL`.
    PrivateGrowsdown,
    /// Neither shared nor private: `EINVAL`.
    NoType,
}

impl Kind {
    pub fn flags(self) -> libc::c_int {
        match self {
            Kind::Shared => libc::MAP_SHARED,
            Kind::Private => libc::MAP_PRIVATE,
            Kind::SharedValidate => libc::MAP_SHARED_VALIDATE,
            Kind::SharedValidateSync => libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            Kind::PrivateHugetlb => libc::MAP_PRIVATE | libc::MAP_HUGETLB,
            Kind::PrivateGrowsdown => libc::MAP_PRIVATE | libc::MAP_GROWSDOWN,
            Kind::NoType => 0,
        }
    }
    pub fn shared(self) -> bool {
        matches!(
            self,
            Kind::Shared | Kind::SharedValidate | Kind::SharedValidateSync
        )
    }
}

/// `madvise` advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Advice {
    DontNeed,
    WillNeed,
    DontFork,
    DoFork,
    Remove,
}

impl Advice {
    pub fn raw(self) -> libc::c_int {
        match self {
            Advice::DontNeed => libc::MADV_DONTNEED,
            Advice::WillNeed => libc::MADV_WILLNEED,
            Advice::DontFork => libc::MADV_DONTFORK,
            Advice::DoFork => libc::MADV_DOFORK,
            Advice::Remove => libc::MADV_REMOVE,
        }
    }
}

/// read(2)/write(2) at the file position or pread(2)/pwrite(2) at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Call {
    Read,
    Write,
    Pread,
    Pwrite,
}

impl Call {
    /// Whether the kernel writes into the user buffer.
    pub fn fills_user(self) -> bool {
        matches!(self, Call::Read | Call::Pread)
    }
}

/// The user memory of a read, write or ioctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserBuf {
    /// A heap buffer big enough for anything the kernel may copy.
    Heap,
    /// Arena byte: device mappings, private copies, placeholders.
    Arena(usize),
    /// Address 0.
    Null,
    /// An address in the kernel half.
    Kernel,
}

/// An `mmap` of the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mmap {
    pub slot: u8,
    pub place: Place,
    pub len: u64,
    pub offset: u64,
    pub prot: Prot,
    pub kind: Kind,
    pub populate: bool,
}

impl fmt::Display for Mmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mmap fd#{} {:?} len {:#x} offset {:#x} {} {:?}{}",
            self.slot,
            self.place,
            self.len,
            self.offset,
            self.prot,
            self.kind,
            if self.populate { " POPULATE" } else { "" }
        )
    }
}

/// A read, write, pread or pwrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rw {
    pub slot: u8,
    pub call: Call,
    pub offset: i64,
    pub len: u64,
    pub buf: UserBuf,
    /// The data of a write from the heap.
    pub seed: u64,
}

impl fmt::Display for Rw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} fd#{} offset {} len {:#x} buffer {:?}",
            self.call, self.slot, self.offset, self.len, self.buf
        )
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Open {
        slot: u8,
        access: Access,
    },
    Close {
        slot: u8,
    },
    Mmap(Mmap),
    Munmap {
        page: usize,
        pages: usize,
    },
    Mremap {
        page: usize,
        old_pages: usize,
        new_pages: usize,
        to: Option<usize>,
    },
    Mprotect {
        page: usize,
        pages: usize,
        prot: Prot,
    },
    Madvise {
        page: usize,
        pages: usize,
        advice: Advice,
    },
    /// Load (or, with `write`, store bytes made from that seed) `len` bytes
    /// at arena byte `at`.
    Touch {
        at: usize,
        len: usize,
        write: Option<u64>,
    },
    Rw(Rw),
    Ioctl {
        slot: u8,
        cmd: u32,
        arg: UserBuf,
    },
    /// fork(); the child checks the bytes at `probes` (arena bytes), stores
    /// `writes` (arena byte, length, data seed) and exits.
    Fork {
        probes: Vec<usize>,
        writes: Vec<(usize, usize, u64)>,
    },
    /// Switch the driver's mode for new mappings through debugfs.
    SetMode {
        mode: u32,
    },
    /// Compare the whole buffer (pread) and every readable mapped page.
    CheckAll,
}

impl Op {
    /// A short name, for the statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Open { .. } => "open",
            Op::Close { .. } => "close",
            Op::Mmap(_) => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::Mremap { .. } => "mremap",
            Op::Mprotect { .. } => "mprotect",
            Op::Madvise { .. } => "madvise",
            Op::Touch { write: None, .. } => "load",
            Op::Touch { write: Some(_), .. } => "store",
            Op::Rw(rw) => match rw.call {
                Call::Read => "read",
                Call::Write => "write",
                Call::Pread => "pread",
                Call::Pwrite => "pwrite",
            },
            Op::Ioctl { .. } => "ioctl",
            Op::Fork { .. } => "fork",
            Op::SetMode { .. } => "set-mode",
            Op::CheckAll => "check-all",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open { slot, access } => write!(f, "open fd#{slot} {access:?}"),
            Op::Close { slot } => write!(f, "close fd#{slot}"),
            Op::Mmap(m) => m.fmt(f),
            Op::Munmap { page, pages } => write!(f, "munmap arena page {page} +{pages}"),
            Op::Mremap {
                page,
                old_pages,
                new_pages,
                to,
            } => write!(
                f,
                "mremap arena page {page} {old_pages} -> {new_pages} pages{}",
                to.map(|t| format!(" to arena page {t}"))
                    .unwrap_or_default()
            ),
            Op::Mprotect { page, pages, prot } => {
                write!(f, "mprotect arena page {page} +{pages} {prot}")
            }
            Op::Madvise {
                page,
                pages,
                advice,
            } => write!(f, "madvise arena page {page} +{pages} {advice:?}"),
            Op::Touch { at, len, write } => match write {
                None => write!(f, "load {len} bytes at arena byte {at:#x}"),
                Some(_) => write!(f, "store {len} bytes at arena byte {at:#x}"),
            },
            Op::Rw(rw) => rw.fmt(f),
            Op::Ioctl { slot, cmd, arg } => write!(f, "ioctl fd#{slot} cmd {cmd:#x} arg {arg:?}"),
            Op::Fork { probes, writes } => write!(
                f,
                "fork: child checks {} bytes, stores {} times",
                probes.len(),
                writes.len()
            ),
            Op::SetMode { mode } => write!(f, "set mode {mode}"),
            Op::CheckAll => write!(f, "check everything"),
        }
    }
}

/// What the generator knows besides the model.
pub struct GenState<'a> {
    pub model: &'a Model,
    /// Which slots hold an open file.
    pub open: [bool; SLOTS as usize],
    pub has_debugfs: bool,
    pub info_cmd: u32,
}

/// The targets the generator aims at, taken from the state once per
/// operation. Every choice draws from the one generator in a fixed order,
/// which is what makes a seed replay the same operations.
struct Aim<'a> {
    st: &'a GenState<'a>,
    ps: usize,
    arena: usize,
    bpages: usize,
    /// The buffer's size in bytes.
    size: u64,
    /// Arena pages that map the device.
    mapped: Vec<usize>,
    /// Slots that hold an open file.
    open: Vec<u8>,
}

impl<'a> Aim<'a> {
    fn new(st: &'a GenState<'a>) -> Aim<'a> {
        let m = st.model;
        let arena = m.arena.len();
        Aim {
            st,
            ps: m.page_size,
            arena,
            bpages: m.buffer_pages(),
            size: m.shadow.len() as u64,
            mapped: (0..arena).filter(|&p| m.arena[p].is_some()).collect(),
            open: (0..SLOTS).filter(|&s| st.open[s as usize]).collect(),
        }
    }

    /// A file slot, mostly one that is open.
    fn slot(&self, rng: &mut ChaCha8Rng) -> u8 {
        if !self.open.is_empty() && rng.random_ratio(15, 16) {
            self.open[rng.random_range(0..self.open.len())]
        } else {
            rng.random_range(0..SLOTS)
        }
    }

    /// An arena page, mostly one that maps something.
    fn page(&self, rng: &mut ChaCha8Rng) -> usize {
        if !self.mapped.is_empty() && rng.random_ratio(4, 5) {
            self.mapped[rng.random_range(0..self.mapped.len())]
        } else {
            rng.random_range(0..self.arena)
        }
    }

    /// A byte of an arena page.
    fn byte(&self, rng: &mut ChaCha8Rng) -> usize {
        let p = self.page(rng);
        p * self.ps + rng.random_range(0..self.ps)
    }

    /// A number of pages from arena page `p`, inside the arena.
    fn run(&self, rng: &mut ChaCha8Rng, p: usize) -> usize {
        let max = (self.arena - p).min(8);
        rng.random_range(1..=max)
    }

    fn prot(&self, rng: &mut ChaCha8Rng) -> Prot {
        match rng.random_range(0..16) {
            0 => Prot::NONE,
            1..=5 => Prot::R,
            6..=14 => Prot::RW,
            _ => Prot {
                r: true,
                w: false,
                x: true,
            },
        }
    }

    fn buf(&self, rng: &mut ChaCha8Rng) -> UserBuf {
        match rng.random_range(0..20) {
            0 => UserBuf::Null,
            1 => UserBuf::Kernel,
            2..=9 => UserBuf::Heap,
            _ => UserBuf::Arena(self.byte(rng)),
        }
    }
}

/// Picks the next operation. Most are aimed at what exists (a mapped page,
/// an open file); some are edge values that must be refused.
pub fn generate(rng: &mut ChaCha8Rng, st: &GenState<'_>) -> Op {
    let aim = Aim::new(st);
    if aim.open.is_empty() && rng.random_ratio(3, 4) {
        return Op::Open {
            slot: rng.random_range(0..SLOTS),
            access: Access::ReadWrite,
        };
    }
    match rng.random_range(0..100) {
        0..=3 => gen_open(rng),
        4..=5 => Op::Close {
            slot: aim.slot(rng),
        },
        6..=22 => gen_mmap(rng, &aim),
        23..=28 => {
            let p = aim.page(rng);
            Op::Munmap {
                page: p,
                pages: aim.run(rng, p),
            }
        }
        29..=35 => gen_mremap(rng, &aim),
        36..=41 => gen_mprotect(rng, &aim),
        42..=48 => gen_madvise(rng, &aim),
        49..=69 => gen_touch(rng, &aim),
        70..=89 => gen_rw(rng, &aim),
        90..=93 => gen_ioctl(rng, &aim),
        94..=95 => gen_fork(rng, &aim),
        96..=97 if st.has_debugfs => Op::SetMode {
            mode: rng.random_range(0..abi::Mode::ALL.len() as u32),
        },
        _ => Op::CheckAll,
    }
}

fn gen_open(rng: &mut ChaCha8Rng) -> Op {
    Op::Open {
        slot: rng.random_range(0..SLOTS),
        access: match rng.random_range(0..6) {
            0 => Access::WriteOnly,
            1 | 2 => Access::ReadOnly,
            _ => Access::ReadWrite,
        },
    }
}

fn gen_mmap(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let ps = aim.ps;
    let pages = rng.random_range(1..=aim.bpages.min(8).min(aim.arena));
    let at = rng.random_range(0..=aim.arena - pages);
    let place = match rng.random_range(0..10) {
        0 => Place::NoReplace(at),
        1 => Place::Anywhere(None),
        2 => Place::Anywhere(Some(at)),
        _ => Place::Fixed(at),
    };
    let mut len = (pages * ps) as u64;
    if rng.random_ratio(1, 8) {
        // Not a multiple of the page size: rounded up.
        len -= rng.random_range(1..ps as u64);
    }
    let offset = (rng.random_range(0..aim.bpages) * ps) as u64;
    let kind = match rng.random_range(0..40) {
        0 => Kind::SharedValidateSync,
        1 => Kind::PrivateHugetlb,
        2 => Kind::PrivateGrowsdown,
        3 => Kind::NoType,
        4..=8 => Kind::SharedValidate,
        9..=24 => Kind::Shared,
        _ => Kind::Private,
    };
    let (place, len, offset) = mmap_edge(rng, aim, place, len, offset);
    Op::Mmap(Mmap {
        slot: aim.slot(rng),
        place,
        len,
        offset,
        prot: aim.prot(rng),
        kind,
        populate: rng.random_ratio(1, 6),
    })
}

/// Now and then an edge value for an mmap's place, length or offset. The
/// kernel refuses them before mapping anything, but only an Anywhere
/// mapping may try them (a refused MAP_FIXED may still unmap what was
/// there).
fn mmap_edge(
    rng: &mut ChaCha8Rng,
    aim: &Aim<'_>,
    place: Place,
    len: u64,
    offset: u64,
) -> (Place, u64, u64) {
    let (ps, size) = (aim.ps as u64, aim.size);
    let anywhere = Place::Anywhere(None);
    match rng.random_range(0..24) {
        0 => (place, len, size),
        1 => (place, len, size + ps),
        2 => (place, len, rng.random_range(1..ps)),
        3 => (place, len, (ULONG_MAX - len) & !(ps - 1)),
        4 => (place, len, (ULONG_MAX - ps + 1) & !(ps - 1)),
        5 => (anywhere, 0, offset),
        6 => (anywhere, ULONG_MAX - rng.random_range(0..ps), offset),
        7 => (anywhere, size + ps, offset),
        8 => (anywhere, aim.st.model.map_window, offset),
        _ => (place, len, offset),
    }
}

fn gen_mremap(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let arena = aim.arena;
    let p = aim.page(rng);
    let (start, len) = match aim.st.model.vma_range(p) {
        Some(r) => {
            let s = rng.random_range(r.clone());
            (s, rng.random_range(1..=r.end - s))
        }
        None => (p, 1),
    };
    let new_pages = match rng.random_range(0..8) {
        0 => 0,
        1 | 2 => len + rng.random_range(1..=2),
        3 | 4 => rng.random_range(1..=len),
        _ => len,
    };
    let to = if rng.random_ratio(2, 3) && new_pages > 0 && new_pages <= arena {
        Some(rng.random_range(0..=arena - new_pages))
    } else {
        None
    };
    Op::Mremap {
        page: start,
        old_pages: len,
        new_pages,
        to,
    }
}

fn gen_mprotect(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let p = aim.page(rng);
    let r = aim.st.model.vma_range(p).unwrap_or(p..p + 1);
    let s = rng.random_range(r.clone());
    Op::Mprotect {
        page: s,
        pages: rng.random_range(1..=r.end - s),
        prot: aim.prot(rng),
    }
}

fn gen_madvise(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let p = aim.page(rng);
    let advice = match rng.random_range(0..12) {
        0..=4 => Advice::DontNeed,
        5 | 6 => Advice::WillNeed,
        7 | 8 => Advice::DontFork,
        9 => Advice::DoFork,
        _ => Advice::Remove,
    };
    Op::Madvise {
        page: p,
        pages: aim.run(rng, p),
        advice,
    }
}

fn gen_touch(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let ps = aim.ps;
    let at = aim.byte(rng);
    let len = match rng.random_range(0..4) {
        0 => 1,
        1 => 8,
        2 => rng.random_range(1..=ps),
        _ => rng.random_range(1..=2 * ps),
    };
    let write = rng.random_ratio(1, 2).then(|| rng.random::<u64>());
    Op::Touch { at, len, write }
}

fn gen_rw(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let (ps, size) = (aim.ps, aim.size);
    let call = match rng.random_range(0..4) {
        0 => Call::Read,
        1 => Call::Write,
        2 => Call::Pread,
        _ => Call::Pwrite,
    };
    let offset: i64 = match rng.random_range(0..20) {
        0 => size as i64,
        1 => size as i64 + rng.random_range(1..100_000),
        2 => -rng.random_range(1..=4096),
        3 => i64::MAX - rng.random_range(0..4096),
        4 => size as i64 - rng.random_range(1..=16),
        _ => rng.random_range(0..size) as i64,
    };
    let len: u64 = match rng.random_range(0..20) {
        0 => 0,
        1 => HUGE_LEN,
        2 => ULONG_MAX - rng.random_range(0..4096),
        3 => size,
        4..=9 => rng.random_range(1..=64),
        _ => rng.random_range(1..=2 * ps as u64),
    };
    Op::Rw(Rw {
        slot: aim.slot(rng),
        call,
        offset,
        len,
        buf: aim.buf(rng),
        seed: rng.random(),
    })
}

fn gen_ioctl(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let cmd = match rng.random_range(0..8) {
        0..=3 => aim.st.info_cmd,
        4 => (rng.random::<u32>() & 0xffff_00ff) | (u32::from(abi::MAPDRV_IOC_MAGIC) << 8),
        _ => rng.random(),
    };
    let arg = match rng.random_range(0..6) {
        0 => {
            // Straddling the end of a mapped page, at a field boundary of
            // struct mapdrv_info (8, 16 or 20 bytes in).
            let p = aim.page(rng);
            let field = [8usize, 16, 20][rng.random_range(0..3)];
            UserBuf::Arena(((p + 1) * aim.ps).saturating_sub(field))
        }
        _ => aim.buf(rng),
    };
    Op::Ioctl {
        slot: aim.slot(rng),
        cmd,
        arg,
    }
}

fn gen_fork(rng: &mut ChaCha8Rng, aim: &Aim<'_>) -> Op {
    let probes = (0..8).map(|_| aim.byte(rng)).collect();
    let writes = (0..rng.random_range(0..4))
        .map(|_| (aim.byte(rng), rng.random_range(1..=64), rng.random()))
        .collect();
    Op::Fork { probes, writes }
}

/// The bytes a store or write with this seed puts down.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generation_is_reproducible() {
        let model = Model::new(vec![0; 16 * 4096], 4096, 40, 1 << 47);
        let st = GenState {
            model: &model,
            open: [true, false, true, false],
            has_debugfs: true,
            info_cmd: crate::abi::MAPDRV_IOC_INFO,
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..500)
                .map(|_| generate(&mut rng, &st))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn ops_round_trip_through_json() {
        let model = Model::new(vec![0; 4 * 4096], 4096, 16, 1 << 47);
        let st = GenState {
            model: &model,
            open: [true; 4],
            has_debugfs: true,
            info_cmd: 1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..500 {
            let op = generate(&mut rng, &st);
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op, "{json}");
            assert!(!op.to_string().is_empty());
        }
    }

    #[test]
    fn data_depends_on_the_seed_only() {
        assert_eq!(data(3, 10), data(3, 10));
        assert_ne!(data(3, 10), data(4, 10));
        assert_eq!(&data(3, 20)[..10], &data(3, 10)[..]);
    }
}
