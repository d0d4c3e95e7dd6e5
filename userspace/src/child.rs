// SPDX-License-Identifier: GPL-2.0
//! Forked worker processes: [`spawn`] runs a closure in a child that reports
//! on a pipe and ends with `_exit`; [`Child::collect`] reads the report line
//! by line as it comes, waits for the child, and kills it when it hangs past
//! a deadline (if it was given one).
//!
//! A child's crash (a SIGBUS from a fault handler, a SIGSEGV) or hang is
//! then something the parent reports, not something that takes the tool
//! down with it.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Exit status of a child whose closure panicked.
pub const PANICKED: i32 = 125;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(Signal),
    /// Still running at the deadline: killed with SIGKILL.
    Hung,
}

/// A running child and the read end of its pipe.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    pipe: OwnedFd,
}

/// Forks a child that runs `body` with the write end of a pipe and leaves
/// with `_exit` and the status `body` returns ([`PANICKED`] if it panics).
///
/// # Safety
///
/// If the calling process has other threads, `body` must only make
/// async-signal-safe calls (no allocation, no locks): the child has a copy
/// of their memory but not the threads, so a lock one of them held stays
/// held in the child.
pub unsafe fn spawn(body: impl FnOnce(RawFd) -> i32) -> Result<Child> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", Errno::last());
    }
    // SAFETY: the caller's contract covers what the child runs; the child
    // ends with _exit, never returning into the parent's code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = Errno::last();
        // SAFETY: closing the two descriptors just made.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        bail!("fork: {e}");
    }
    if pid == 0 {
        // SAFETY: the child's copy of the read end, which it does not use.
        unsafe { libc::close(fds[0]) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(fds[1])))
            .unwrap_or(PANICKED);
        // SAFETY: ends the child without running the parent's destructors
        // (they would unmap and close the parent's copies).
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent's copy of the write end; the read end is ours.
    let pipe = unsafe {
        libc::close(fds[1]);
        OwnedFd::from_raw_fd(fds[0])
    };
    // Non-blocking, so that a grandchild holding the write end open cannot
    // keep the parent reading after the child is gone.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    Ok(Child {
        pid: Pid::from_raw(pid),
        pipe,
    })
}

/// Writes all of `bytes` to `fd`, retrying after EINTR; async-signal-safe.
/// A line of at most PIPE_BUF (4096) bytes reaches a pipe in one piece.
pub fn write_all(fd: RawFd, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: write(2) from a live buffer.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if n > 0 {
            done += n as usize;
        } else if n == 0 || Errno::last() != Errno::EINTR {
            return;
        }
    }
}

/// Splits what arrives into lines.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8], on_line: &mut impl FnMut(&str)) {
        self.partial.extend_from_slice(bytes);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            on_line(&String::from_utf8_lossy(&line[..i]));
        }
    }

    fn finish(&mut self, on_line: &mut impl FnMut(&str)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            on_line(&String::from_utf8_lossy(&rest));
        }
    }
}

impl Child {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Reads what is in the pipe now; false at end of file.
    fn drain(&self, lines: &mut Lines, on_line: &mut impl FnMut(&str)) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.pipe, &mut buf) {
                Ok(0) => return false,
                Ok(n) => lines.feed(&buf[..n], on_line),
                Err(Errno::EINTR) => {}
                Err(_) => return true,
            }
        }
    }

    /// Hands each line the child writes to `on_line` as it arrives, until
    /// the child ends; kills it if it still runs at `kill_at` (with `None`,
    /// waits for as long as it runs).
    pub fn collect(self, kill_at: Option<Instant>, mut on_line: impl FnMut(&str)) -> Result<Ended> {
        let mut lines = Lines::default();
        let mut open = true;
        let ended = loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG))? {
                WaitStatus::Exited(_, code) => break Ended::Exited(code),
                WaitStatus::Signaled(_, sig, _) => break Ended::Signaled(sig),
                _ => {}
            }
            let now = Instant::now();
            if kill_at.is_some_and(|at| now >= at) {
                let _ = kill(self.pid, Signal::SIGKILL);
                let _ = waitpid(self.pid, None);
                break Ended::Hung;
            }
            // Wake up now and then to look at the child, or at once when
            // there is something to read.
            let tick = Duration::from_millis(10);
            let wait = kill_at.map_or(tick, |at| (at - now).min(tick));
            if open {
                let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
                let ms = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
                if poll(&mut fds, ms).is_ok_and(|n| n > 0) {
                    open = self.drain(&mut lines, &mut on_line);
                }
            } else {
                // The pipe is closed: the child is on its way out.
                std::thread::sleep(wait.min(Duration::from_millis(1)));
            }
        };
        if open {
            self.drain(&mut lines, &mut on_line);
        }
        lines.finish(&mut on_line);
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks() {
        let mut got = Vec::new();
        let mut l = Lines::default();
        let mut push = |s: &str| got.push(s.to_string());
        l.feed(b"one\ntw", &mut push);
        l.feed(b"o\n\nthr", &mut push);
        l.finish(&mut push);
        assert_eq!(got, ["one", "two", "", "thr"]);
    }

    #[test]
    fn a_child_reports_and_exits() {
        // SAFETY: the closure only writes to the pipe.
        let child = unsafe {
            spawn(|fd| {
                write_all(fd, b"hello\nworld\n");
                7
            })
        }
        .unwrap();
        let mut got = Vec::new();
        let ended = child
            .collect(Some(Instant::now() + Duration::from_secs(10)), |l| {
                got.push(l.to_string())
            })
            .unwrap();
        assert_eq!(ended, Ended::Exited(7));
        assert_eq!(got, ["hello", "world"]);
    }

    #[test]
    fn without_a_deadline_the_child_is_waited_for() {
        // SAFETY: the closure only sleeps (nanosleep, async-signal-safe)
        // and writes to the pipe.
        let child = unsafe {
            spawn(|fd| {
                std::thread::sleep(Duration::from_millis(50));
                write_all(fd, b"done");
                3
            })
        }
        .unwrap();
        let mut got = Vec::new();
        let ended = child.collect(None, |l| got.push(l.to_string())).unwrap();
        assert_eq!(ended, Ended::Exited(3));
        assert_eq!(got, ["done"]);
    }

    #[test]
    fn a_hanging_child_is_killed() {
        // SAFETY: the closure only waits in pause(2), async-signal-safe.
        let child = unsafe {
            spawn(|_| {
                libc::pause();
                0
            })
        }
        .unwrap();
        let ended = child
            .collect(Some(Instant::now() + Duration::from_millis(100)), |_| {})
            .unwrap();
        assert_eq!(ended, Ended::Hung);
    }
}
