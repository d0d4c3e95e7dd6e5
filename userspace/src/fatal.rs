// SPDX-License-Identifier: GPL-2.0

//! A SIGBUS/SIGSEGV while touching a mapping (say, a fault handler that
//! returns VM_FAULT_SIGBUS) would kill the tool with a bare "Bus error". This
//! handler says what was running first, through the [`Reporter`] the
//! subcommand installed: by default a `mapdrv: <what>: ...` error on stderr;
//! a subcommand with a line format of its own (verify) brings its own.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};

static NAME_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);
/// The installed [`Reporter`] (null: [`to_stderr`]).
static REPORTER: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Reports a fatal signal: `name` is what was running (a check name, a
/// subcommand), `what` the sentence that says what happened, ending in a
/// newline. Runs in a signal handler, so it may only make
/// async-signal-safe calls (such as [`write_raw`]): no allocation, no locks.
pub type Reporter = fn(name: &[u8], what: &[u8]);

/// The default report: `mapdrv: <name>: <what>` on stderr.
pub fn to_stderr(name: &[u8], what: &[u8]) {
    let fd = libc::STDERR_FILENO;
    write_raw(fd, b"mapdrv: ");
    write_raw(fd, name);
    write_raw(fd, b": ");
    write_raw(fd, what);
}

/// Names what is running (a check name, or a subcommand).
pub fn set_current(name: &'static str) {
    NAME_LEN.store(0, Ordering::SeqCst);
    NAME_PTR.store(name.as_ptr().cast_mut(), Ordering::SeqCst);
    NAME_LEN.store(name.len(), Ordering::SeqCst);
}

/// One write(2) of `bytes` to `fd`; async-signal-safe, for reporters.
pub fn write_raw(fd: libc::c_int, bytes: &[u8]) {
    // SAFETY: write(2) from a valid buffer; async-signal-safe.
    let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    let what: &[u8] = if sig == libc::SIGBUS {
        b"killed by SIGBUS while touching a mapping (did the fault handler return VM_FAULT_SIGBUS?)\n"
    } else {
        b"killed by SIGSEGV while touching a mapping (a page the kernel refused to map?)\n"
    };
    let ptr = NAME_PTR.load(Ordering::SeqCst);
    let len = NAME_LEN.load(Ordering::SeqCst);
    let name: &[u8] = if ptr.is_null() || len == 0 {
        b"mapdrv"
    } else {
        // SAFETY: ptr/len always describe a &'static str (set_current clears
        // the length before it changes the pointer).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let reporter = REPORTER.load(Ordering::SeqCst);
    if reporter.is_null() {
        to_stderr(name, what);
    } else {
        // SAFETY: REPORTER only ever holds null or a `Reporter` stored by
        // `install`, and a fn pointer survives the round trip through a
        // data pointer unchanged on the platforms Linux runs on.
        let reporter: Reporter = unsafe { std::mem::transmute::<*mut (), Reporter>(reporter) };
        reporter(name, what);
    }
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(1) };
}

/// Installs the handler for SIGBUS and SIGSEGV, reporting with `report`
/// (which must keep to the rules of [`Reporter`]).
pub fn install(report: Reporter) -> Result<()> {
    REPORTER.store(report as *mut (), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_fatal_signal),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for sig in [Signal::SIGBUS, Signal::SIGSEGV] {
        // SAFETY: the handler only uses async-signal-safe calls (write,
        // _exit) and atomics.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("sigaction({sig})"))?;
    }
    Ok(())
}

/// In a forked child: default handling again, so a crash of the child shows
/// up as a signal in the parent's waitpid instead of a second FAIL line.
pub fn reset_in_child() {
    for sig in [Signal::SIGBUS, Signal::SIGSEGV] {
        // SAFETY: signal(2) with SIG_DFL is async-signal-safe and installs
        // no Rust code.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}
