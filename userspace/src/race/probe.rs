// SPDX-License-Identifier: GPL-2.0
//! What a race scenario's process uses to look and to tell: counters in
//! memory shared with the parent, the SIGBUS/SIGSEGV handler that reports a
//! fault with its address and page, and reads and writes through
//! process_vm_readv/writev, which turn a hole into EFAULT instead of a
//! signal.
//!
//! The handler runs in the scenario's own (forked) process: it looks the
//! address up in the [`Window`]s (the device mappings that are valid at the
//! moment), writes one `F ...` line to the report pipe and ends the process
//! with [`FAULT_EXIT`]. The parent turns the line into a problem
//! ([`FaultReport`]) and starts the scenario again for the time left.

use std::ffi::c_void;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::uio::{RemoteIoVec, process_vm_readv, process_vm_writev};
use nix::unistd::Pid;

use crate::child;
use crate::mapping::Mapping;

/// Problems a process describes in full; the others are only counted.
pub const MAX_TOLD: u64 = 10;
/// Exit status of a process that the fault handler ended.
pub const FAULT_EXIT: i32 = 101;
/// Exit status of a process whose scenario could not be set up (it said
/// why in a problem line).
pub const SETUP_FAILED: i32 = 102;

/// Counts of a thread (or a few), on a cache line of their own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct Slot {
    reads: AtomicU64,
    mutations: AtomicU64,
    extra: AtomicU64,
    holes: AtomicU64,
}

/// Threads that count without sharing a cache line.
const SLOTS: usize = 64;

/// The counters of one scenario, in memory shared by all its processes.
/// Each thread counts in a slot of its own, at once: when a fault ends its
/// process, nothing it counted is lost.
#[repr(C)]
#[derive(Debug)]
pub struct Tally {
    slots: [Slot; SLOTS],
    next_slot: AtomicUsize,
    pub problems: AtomicU64,
}

/// What the slots of a tally add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub reads: u64,
    pub mutations: u64,
    pub extra: u64,
    pub holes: u64,
}

impl Tally {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.slots {
            t.reads += s.reads.load(Ordering::SeqCst);
            t.mutations += s.mutations.load(Ordering::SeqCst);
            t.extra += s.extra.load(Ordering::SeqCst);
            t.holes += s.holes.load(Ordering::SeqCst);
        }
        t
    }
}

/// A [`Tally`] in an anonymous shared mapping: a forked child's counts are
/// the parent's, even when the child dies.
#[derive(Debug)]
pub struct SharedTally {
    map: Mapping,
}

impl SharedTally {
    pub fn new() -> nix::Result<SharedTally> {
        let map = Mapping::anonymous(
            std::mem::size_of::<Tally>(),
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?;
        Ok(SharedTally { map })
    }
}

impl std::ops::Deref for SharedTally {
    type Target = Tally;
    fn deref(&self) -> &Tally {
        // SAFETY: the mapping is live while `self` is, page-aligned, at
        // least a Tally long, and zero-filled, which is a Tally of zeros
        // (atomics only); every access to it goes through those atomics.
        unsafe { &*self.map.as_ptr().cast::<Tally>() }
    }
}

/// A thread's counts: a slot of the tally (shared with another thread
/// only when more than [`SLOTS`] count at once).
pub struct Counts<'a> {
    slot: &'a Slot,
}

impl<'a> Counts<'a> {
    pub fn new(tally: &'a Tally) -> Counts<'a> {
        let i = tally.next_slot.fetch_add(1, Ordering::Relaxed) % SLOTS;
        Counts {
            slot: &tally.slots[i],
        }
    }

    pub fn read(&mut self) {
        self.slot.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn hole(&mut self) {
        self.slot.holes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mutation(&mut self) {
        self.slot.mutations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn extra(&mut self) {
        self.slot.extra.fetch_add(1, Ordering::Relaxed);
    }
}

/// A device mapping that is valid now: a fault inside it is a problem.
pub struct Window {
    base: AtomicUsize,
    len: AtomicUsize,
    first_page: AtomicUsize,
}

impl Window {
    const fn empty() -> Window {
        Window {
            base: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            first_page: AtomicUsize::new(0),
        }
    }
}

/// Windows a process can have at once: one per reader thread and a few.
pub const MAX_WINDOWS: usize = 72;
static WINDOWS: [Window; MAX_WINDOWS] = [const { Window::empty() }; MAX_WINDOWS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
static TALLY: AtomicPtr<Tally> = AtomicPtr::new(std::ptr::null_mut());

/// Window `slot` registered, until dropped.
pub struct WindowGuard(usize);

/// Registers `len` bytes from `base`, a mapping of the buffer from page
/// `first_page`, as valid. Each slot has one owner at a time.
pub fn register(slot: usize, base: usize, len: usize, first_page: usize) -> WindowGuard {
    let w = &WINDOWS[slot];
    w.len.store(0, Ordering::SeqCst);
    w.base.store(base, Ordering::SeqCst);
    w.first_page.store(first_page, Ordering::SeqCst);
    w.len.store(len, Ordering::SeqCst);
    WindowGuard(slot)
}

impl Drop for WindowGuard {
    fn drop(&mut self) {
        WINDOWS[self.0].len.store(0, Ordering::SeqCst);
    }
}

/// A line built without allocating, for the signal handler.
pub struct LineBuf {
    buf: [u8; 192],
    len: usize,
}

impl LineBuf {
    pub fn new() -> LineBuf {
        LineBuf {
            buf: [0; 192],
            len: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    fn push_radix(&mut self, mut v: u64, radix: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(v % radix) as usize];
            v /= radix;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    pub fn dec(&mut self, v: u64) -> &mut Self {
        self.push_radix(v, 10)
    }

    pub fn hex(&mut self, v: u64) -> &mut Self {
        self.push(b"0x").push_radix(v, 16)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The window holding `addr`: (page of the buffer, byte in that page).
fn locate(addr: usize) -> Option<(usize, usize)> {
    let ps = PAGE_SIZE.load(Ordering::Relaxed);
    WINDOWS.iter().find_map(|w| {
        let len = w.len.load(Ordering::SeqCst);
        let base = w.base.load(Ordering::SeqCst);
        (len > 0 && (base..base + len).contains(&addr)).then(|| {
            let at = addr - base;
            (w.first_page.load(Ordering::SeqCst) + at / ps, at % ps)
        })
    })
}

/// The `F` line for a fault: `F <sig> <si_code> <addr> <in a window: 0/1>
/// <page> <offset> <pid>`.
fn fault_line(sig: i32, code: i32, addr: usize, pid: i32) -> LineBuf {
    let mut line = LineBuf::new();
    let (inside, page, offset) = match locate(addr) {
        Some((p, o)) => (1, p, o),
        None => (0, 0, 0),
    };
    line.push(b"F ")
        .dec(sig as u64)
        .push(b" ")
        .dec(code as u64)
        .push(b" ")
        .hex(addr as u64)
        .push(b" ")
        .dec(inside)
        .push(b" ")
        .dec(page as u64)
        .push(b" ")
        .dec(offset as u64)
        .push(b" ")
        .dec(pid as u64)
        .push(b"\n");
    line
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // for SIGBUS and SIGSEGV si_addr is the faulting address.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    let tally = TALLY.load(Ordering::SeqCst);
    // SAFETY: the tally, when set, is a live shared mapping; atomics only.
    let n = (!tally.is_null()).then(|| unsafe { (*tally).problems.fetch_add(1, Ordering::SeqCst) });
    if n.is_none_or(|n| n < MAX_TOLD) {
        // SAFETY: getpid(2) is async-signal-safe.
        let pid = unsafe { libc::getpid() };
        child::write_all(
            REPORT_FD.load(Ordering::SeqCst),
            fault_line(sig, code, addr, pid).bytes(),
        );
    }
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(FAULT_EXIT) };
}

/// In the scenario's process: reports go to `fd`, problems are counted in
/// `tally`, and SIGBUS and SIGSEGV are caught.
pub fn install(fd: RawFd, tally: &Tally, page_size: usize) -> nix::Result<()> {
    REPORT_FD.store(fd, Ordering::SeqCst);
    TALLY.store(std::ptr::from_ref(tally).cast_mut(), Ordering::SeqCst);
    PAGE_SIZE.store(page_size, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::SigAction(on_fault),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for sig in [Signal::SIGBUS, Signal::SIGSEGV] {
        // SAFETY: the handler uses only atomics, write(2), getpid(2) and
        // _exit(2), all async-signal-safe; a fault inside it (the signal is
        // blocked there) kills the process, which the parent reports.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// A problem: counted, and told to the parent while there are few.
pub fn problem(text: impl AsRef<str>) {
    let tally = TALLY.load(Ordering::SeqCst);
    // SAFETY: as in on_fault.
    let n = (!tally.is_null()).then(|| unsafe { (*tally).problems.fetch_add(1, Ordering::SeqCst) });
    if n.is_none_or(|n| n < MAX_TOLD) {
        // One line, short enough to reach the pipe in one piece.
        let text: String = text
            .as_ref()
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .take(1000)
            .collect();
        child::write_all(
            REPORT_FD.load(Ordering::SeqCst),
            format!("P {text}\n").as_bytes(),
        );
    }
}

/// Tells the parent that the scenario is set up (for the setup time).
pub fn ready() {
    child::write_all(REPORT_FD.load(Ordering::SeqCst), b"R\n");
}

/// What the parent makes of an `F` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    pub sig: i32,
    pub code: i32,
    pub addr: usize,
    /// The buffer page and the byte in it, when the address was inside a
    /// valid device mapping.
    pub at: Option<(usize, usize)>,
    pub pid: i32,
}

impl FaultReport {
    /// Parses the line after its `F `.
    pub fn parse(rest: &str) -> Option<FaultReport> {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let [sig, code, addr, inside, page, offset, pid] = f.as_slice() else {
            return None;
        };
        let addr = usize::from_str_radix(addr.strip_prefix("0x")?, 16).ok()?;
        let at = match *inside {
            "1" => Some((page.parse().ok()?, offset.parse().ok()?)),
            "0" => None,
            _ => return None,
        };
        Some(FaultReport {
            sig: sig.parse().ok()?,
            code: code.parse::<u64>().ok()? as i32,
            addr,
            at,
            pid: pid.parse().ok()?,
        })
    }
}

/// The name of a SIGBUS/SIGSEGV si_code.
fn code_name(sig: i32, code: i32) -> Option<&'static str> {
    Some(match (sig, code) {
        (libc::SIGBUS, 1) => "BUS_ADRALN",
        (libc::SIGBUS, 2) => "BUS_ADRERR",
        (libc::SIGBUS, 3) => "BUS_OBJERR",
        (libc::SIGSEGV, 1) => "SEGV_MAPERR",
        (libc::SIGSEGV, 2) => "SEGV_ACCERR",
        _ => return None,
    })
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig =
            Signal::try_from(self.sig).map_or(format!("signal {}", self.sig), |s| s.to_string());
        write!(f, "{sig}")?;
        if let Some(c) = code_name(self.sig, self.code) {
            write!(f, " ({c})")?;
        }
        write!(f, " at {:#x}", self.addr)?;
        match self.at {
            Some((page, offset)) => write!(
                f,
                ", page {page} of the buffer (byte {offset:#x} of it), while the mapping was valid"
            )?,
            None => write!(f, ", outside every valid mapping of the device")?,
        }
        write!(f, " (process {})", self.pid)
    }
}

/// How reads and writes that may meet a hole are made: 0 not chosen yet,
/// 1 process_vm_readv/writev, 2 through a pipe.
static METHOD: AtomicU8 = AtomicU8::new(0);

/// Picks the way to read and write through holes and says which:
/// process_vm_readv/writev on this process (a hole is EFAULT), or, on a
/// kernel without them (CONFIG_CROSS_MEMORY_ATTACH off: ENOSYS), write(2)
/// from the address into a pipe and read(2) from the pipe to it, for
/// which the kernel's copy_from_user/copy_to_user also say EFAULT.
pub fn choose_method() -> &'static str {
    let mut probe = [0u8; 1];
    let local = [1u8];
    let m = match process_vm_readv(
        Pid::this(),
        &mut [IoSliceMut::new(&mut probe)],
        &[RemoteIoVec {
            base: local.as_ptr() as usize,
            len: 1,
        }],
    ) {
        Err(Errno::ENOSYS) => 2,
        _ => 1,
    };
    METHOD.store(m, Ordering::SeqCst);
    method_name()
}

/// Reads and writes through a pipe from now on (for the tests).
#[cfg(test)]
pub fn use_pipe() {
    METHOD.store(2, Ordering::SeqCst);
}

pub fn method_name() -> &'static str {
    match METHOD.load(Ordering::SeqCst) {
        2 => "a pipe (no process_vm_readv: ENOSYS)",
        _ => "process_vm_readv",
    }
}

fn via_pipe() -> bool {
    METHOD.load(Ordering::SeqCst) == 2
}

thread_local! {
    /// This thread's pipe (read end, write end), both non-blocking.
    static PIPE: Result<(OwnedFd, OwnedFd), Errno> =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC);
}

/// Empties the pipe after a copy that failed half way.
fn drain(r: &OwnedFd) {
    let mut junk = [0u8; 64];
    while nix::unistd::read(r, &mut junk).is_ok_and(|n| n > 0) {}
}

/// Copies `len` bytes from `from` to `to` through this thread's pipe; the
/// kernel reads `from` and writes `to` with fault handling (EFAULT).
///
/// # Safety
///
/// `to..to + len` must be memory the caller lets the kernel write (a local
/// buffer, or a scratch area of a device mapping that no Rust reference
/// points into) or memory the kernel cannot write.
unsafe fn copy_via_pipe(from: usize, to: usize, len: usize) -> Result<(), Errno> {
    PIPE.with(|p| {
        let (r, w) = p.as_ref().map_err(|e| *e)?;
        // SAFETY: the kernel only reads `from`, with fault handling.
        let n = unsafe { libc::write(w.as_raw_fd(), from as *const c_void, len) };
        if n < 0 {
            let e = Errno::last();
            drain(r);
            return Err(e);
        }
        // SAFETY: the caller's contract covers `to`.
        let m = unsafe { libc::read(r.as_raw_fd(), to as *mut c_void, len) };
        let e = Errno::last();
        if n as usize != len || m != n {
            drain(r);
            return Err(if m < 0 { e } else { Errno::EFAULT });
        }
        Ok(())
    })
}

/// Makes what a thread maps of its own on first use (its pipe, its heap
/// arena), so that it does so now and not into a hole a scenario made on
/// purpose (a new mapping goes to the highest gap that fits).
pub fn warm_up() {
    PIPE.with(|_| ());
    std::hint::black_box(format!("{}", std::hint::black_box(1)));
}

/// Reads `buf.len()` bytes at `addr` of this process, so that a hole or a
/// page that cannot be read is EFAULT, not a signal.
pub fn read_at(addr: usize, buf: &mut [u8]) -> Result<(), Errno> {
    let len = buf.len();
    if via_pipe() {
        // SAFETY: `buf` is ours to write.
        return unsafe { copy_via_pipe(addr, buf.as_mut_ptr() as usize, len) };
    }
    let n = process_vm_readv(
        Pid::this(),
        &mut [IoSliceMut::new(buf)],
        &[RemoteIoVec { base: addr, len }],
    )?;
    if n == len { Ok(()) } else { Err(Errno::EFAULT) }
}

/// Writes `data` at `addr` of this process: EFAULT where the memory is
/// not mapped writable.
///
/// # Safety
///
/// `addr..addr + data.len()` is memory no Rust reference points into (a
/// scratch area of a device mapping), or memory the kernel cannot write.
pub unsafe fn write_at(addr: usize, data: &[u8]) -> Result<(), Errno> {
    if via_pipe() {
        // SAFETY: the caller's contract covers `addr`.
        return unsafe { copy_via_pipe(data.as_ptr() as usize, addr, data.len()) };
    }
    let n = process_vm_writev(
        Pid::this(),
        &[IoSlice::new(data)],
        &[RemoteIoVec {
            base: addr,
            len: data.len(),
        }],
    )?;
    if n == data.len() {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Reads the first `N` bytes of page i from `base` into `out[i]`, for
/// every i (in one process_vm_readv when there is one). On a failure: the
/// first page not read.
pub fn read_page_starts<const N: usize>(
    base: usize,
    page_size: usize,
    out: &mut [[u8; N]],
) -> Result<(), (usize, Errno)> {
    if via_pipe() {
        for (p, b) in out.iter_mut().enumerate() {
            read_at(base + p * page_size, b).map_err(|e| (p, e))?;
        }
        return Ok(());
    }
    // IOV_MAX is 1024.
    for (c, chunk) in out.chunks_mut(512).enumerate() {
        let first = c * 512;
        let remote: Vec<RemoteIoVec> = (0..chunk.len())
            .map(|i| RemoteIoVec {
                base: base + (first + i) * page_size,
                len: N,
            })
            .collect();
        let mut local: Vec<IoSliceMut<'_>> = chunk.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        match process_vm_readv(Pid::this(), &mut local, &remote) {
            Ok(n) if n == chunk.len() * N => {}
            Ok(n) => return Err((first + n / N, Errno::EFAULT)),
            Err(e) => return Err((first, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_line_parses_back() {
        let _w = register(MAX_WINDOWS - 1, 0x7f00_0000_0000, 8 * 4096, 100);
        let line = fault_line(libc::SIGBUS, 2, 0x7f00_0000_3010, 42);
        let text = std::str::from_utf8(line.bytes()).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        let r = FaultReport::parse(text.strip_prefix("F ").unwrap()).unwrap();
        assert_eq!(
            r,
            FaultReport {
                sig: libc::SIGBUS,
                code: 2,
                addr: 0x7f00_0000_3010,
                at: Some((103, 0x10)),
                pid: 42
            }
        );
        assert_eq!(
            r.to_string(),
            "SIGBUS (BUS_ADRERR) at 0x7f0000003010, page 103 of the buffer (byte 0x10 of it), \
             while the mapping was valid (process 42)"
        );
        let out = fault_line(libc::SIGSEGV, 1, 0x10, 7);
        let r = FaultReport::parse(&std::str::from_utf8(out.bytes()).unwrap()[2..]).unwrap();
        assert_eq!(r.at, None);
        assert!(r.to_string().contains("outside every valid mapping"), "{r}");
        assert_eq!(FaultReport::parse("7 2 0x10"), None);
        assert_eq!(FaultReport::parse("7 2 10 1 1 1 1"), None);
    }

    #[test]
    fn line_buffers_print_numbers() {
        let mut l = LineBuf::new();
        l.dec(0)
            .push(b" ")
            .dec(18_446_744_073_709_551_615)
            .push(b" ")
            .hex(0xabc);
        assert_eq!(l.bytes(), b"0 18446744073709551615 0xabc");
        let mut full = LineBuf::new();
        for _ in 0..100 {
            full.push(b"abcd");
        }
        assert_eq!(full.bytes().len(), 192);
    }

    /// Both ways turn holes into EFAULT (the pipe one is tried directly:
    /// METHOD is process-wide).
    #[test]
    fn holes_are_efault_not_signals() {
        let data = *b"0123456789abcdef";
        let mut buf = [0u8; 16];
        choose_method();
        read_at(data.as_ptr() as usize, &mut buf).unwrap();
        assert_eq!(buf, data);
        assert_eq!(read_at(8, &mut buf), Err(Errno::EFAULT));
        let mut target = [0u8; 4];
        // SAFETY: a local buffer, and address 8, which is never mapped.
        unsafe {
            write_at(target.as_mut_ptr() as usize, b"wxyz").unwrap();
            assert_eq!(write_at(8, b"wxyz"), Err(Errno::EFAULT));
        }
        assert_eq!(std::hint::black_box(target), *b"wxyz");
        let pages = vec![7u8; 3 * 4096];
        let mut out = [[0u8; 2]; 3];
        read_page_starts(pages.as_ptr() as usize, 4096, &mut out).unwrap();
        assert_eq!(out, [[7, 7]; 3]);

        let mut buf = [0u8; 16];
        // SAFETY: `buf` is ours; address 8 is never mapped.
        unsafe {
            copy_via_pipe(data.as_ptr() as usize, buf.as_mut_ptr() as usize, 16).unwrap();
            assert_eq!(
                copy_via_pipe(8, buf.as_mut_ptr() as usize, 16),
                Err(Errno::EFAULT)
            );
            assert_eq!(
                copy_via_pipe(data.as_ptr() as usize, 8, 16),
                Err(Errno::EFAULT)
            );
            // Nothing was left in the pipe by the failures.
            copy_via_pipe(
                b"ABCDEFGHIJKLMNOP".as_ptr() as usize,
                buf.as_mut_ptr() as usize,
                16,
            )
            .unwrap();
        }
        assert_eq!(std::hint::black_box(buf), *b"ABCDEFGHIJKLMNOP");
    }

    #[test]
    fn counts_reach_the_tally() {
        let t = SharedTally::new().unwrap();
        let mut counts: Vec<Counts<'_>> = (0..SLOTS + 3).map(|_| Counts::new(&t)).collect();
        for c in &mut counts {
            c.read();
            c.read();
            c.mutation();
            c.hole();
        }
        counts[0].extra();
        let n = (SLOTS + 3) as u64;
        assert_eq!(
            t.totals(),
            Totals {
                reads: 2 * n,
                mutations: n,
                extra: 1,
                holes: n
            }
        );
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }
}
