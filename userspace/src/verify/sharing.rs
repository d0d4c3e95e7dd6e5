// SPDX-License-Identifier: GPL-2.0

//! shared-write-pread, shared-write-second-mapping, shared-write-fork,
//! private-isolation: where a write through a mapping is (and is not) seen.
//!
//! Every changed byte is saved in the journal first; the new value is the
//! bitwise NOT of the old one, so it always differs.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail, ensure};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

use super::report::Check;
use super::{CheckFn, Ctx, RW};
use crate::device::Share;
use crate::fatal;
use crate::mapping::Mapping;

/// How long the parent waits for the forked child.
const CHILD_TIMEOUT_MS: u16 = 10_000;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::SharedWritePread, |ctx| shared_write_pread(ctx)),
    (Check::SharedWriteSecondMapping, |ctx| second_mapping(ctx)),
    (Check::SharedWriteFork, |ctx| fork_check(ctx)),
    (Check::PrivateIsolation, |ctx| private_isolation(ctx)),
];

/// The last byte of page `page`, minus `back`: in the zero tail of the page.
fn scratch(ctx: &Ctx, page: usize, back: usize) -> usize {
    ctx.geo.offset(page) + ctx.geo.page_size - 1 - back
}

/// Writes the NOT of a byte through `map` (saving it first); returns the new
/// value.
fn flip_via(ctx: &mut Ctx, map: &Mapping, offset: usize) -> Result<u8> {
    let new = !ctx.save_byte(offset)?;
    map.write_u8(offset, new);
    Ok(new)
}

fn shared_write_pread(ctx: &mut Ctx) -> Result<String> {
    let map = ctx.map_all(RW, Share::Shared)?;
    let at = ctx.geo.size - 1;
    let new = flip_via(ctx, &map, at)?;
    let seen = ctx.pread_byte(at)?;
    ensure!(
        seen == new,
        "wrote {new:#04x} at byte {at} through the mapping, pread reads {seen:#04x}"
    );
    Ok(format!("byte {at} (last of the buffer)"))
}

fn second_mapping(ctx: &mut Ctx) -> Result<String> {
    let a = ctx.map_all(RW, Share::Shared)?;
    let b = ctx.map_all(RW, Share::Shared)?;
    let page = ctx.geo.pages / 2;
    let (x, y) = (scratch(ctx, page, 1), scratch(ctx, page, 2));
    let new = flip_via(ctx, &a, x)?;
    let seen = b.read_u8(x);
    ensure!(
        seen == new,
        "wrote {new:#04x} at byte {x} via mapping A, mapping B reads {seen:#04x}"
    );
    let new = flip_via(ctx, &b, y)?;
    let seen = a.read_u8(y);
    ensure!(
        seen == new,
        "wrote {new:#04x} at byte {y} via mapping B, mapping A reads {seen:#04x}"
    );
    Ok(format!("bytes {x} and {y} of page {page}, both directions"))
}

/// The child: waits for the parent's go, reports the byte at `x`, writes
/// `child_value` at `y`. Only async-signal-safe calls: it was forked.
fn child(
    map: &Mapping,
    x: usize,
    y: usize,
    child_value: u8,
    mut go: impl Read,
    mut answer: impl Write,
) -> ! {
    fatal::reset_in_child();
    let mut buf = [0u8; 1];
    let code = match go.read(&mut buf) {
        Ok(1) => {
            let seen = map.read_u8(x);
            map.write_u8(y, child_value);
            if answer.write_all(&[seen]).is_ok() {
                0
            } else {
                3
            }
        }
        _ => 2,
    };
    // SAFETY: _exit ends the forked child without running the parent's
    // atexit handlers or flushing its copy of stdio buffers.
    unsafe { libc::_exit(code) }
}

fn fork_check(ctx: &mut Ctx) -> Result<String> {
    let map = ctx.map_all(RW, Share::Shared)?;
    let (x, y) = (scratch(ctx, 0, 3), scratch(ctx, 0, 4));
    let parent_value = !ctx.save_byte(x)?;
    let child_value = !ctx.save_byte(y)?;
    let (go_r, mut go_w) = io::pipe().context("pipe")?;
    let (mut answer_r, answer_w) = io::pipe().context("pipe")?;

    // SAFETY: verify is single-threaded here (the worker threads of
    // concurrent-faults run later and are scoped); the child only uses
    // async-signal-safe calls (read, write, atomics on the mapping, _exit).
    let pid = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_w);
            drop(answer_r);
            child(&map, x, y, child_value, go_r, answer_w)
        }
        ForkResult::Parent { child } => child,
    };
    drop(go_r);
    drop(answer_w);

    // The parent writes after the fork; the child must see it.
    map.write_u8(x, parent_value);
    let sent = go_w.write_all(&[1]);
    drop(go_w);

    let mut fds = [PollFd::new(answer_r.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(CHILD_TIMEOUT_MS)).context("poll")?;
    if ready == 0 {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        bail!("the child did not answer within {CHILD_TIMEOUT_MS} ms (stuck in a page fault?)");
    }
    let mut seen = [0u8; 1];
    let got = answer_r.read(&mut seen);
    let status = waitpid(pid, None).context("waitpid")?;
    sent.context("telling the child to go")?;
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Signaled(_, sig, _) => bail!("the child was killed by {sig}"),
        other => bail!("the child ended with {other:?}"),
    }
    ensure!(matches!(got, Ok(1)), "the child sent no answer");
    ensure!(
        seen[0] == parent_value,
        "parent wrote {parent_value:#04x} at byte {x} after fork(), the child read {:#04x}",
        seen[0]
    );
    let in_parent = map.read_u8(y);
    ensure!(
        in_parent == child_value,
        "the child wrote {child_value:#04x} at byte {y}, the parent's mapping reads {in_parent:#04x}"
    );
    let by_pread = ctx.pread_byte(y)?;
    ensure!(
        by_pread == child_value,
        "the child wrote {child_value:#04x} at byte {y}, pread reads {by_pread:#04x}"
    );
    Ok(format!(
        "parent -> child at byte {x}, child -> parent at byte {y}"
    ))
}

fn private_isolation(ctx: &mut Ctx) -> Result<String> {
    let shared = ctx.map_all(RW, Share::Shared)?;
    let private = ctx.map_all(RW, Share::Private)?;
    let page = ctx.geo.pages / 2;
    let at = scratch(ctx, page, 5);
    // Saved although it must not change: a leak would be undone at the end.
    let old = ctx.save_byte(at)?;
    let before = private.read_vec(ctx.geo.offset(page), ctx.geo.page_size);
    private.write_u8(at, !old);

    let mine = private.read_u8(at);
    ensure!(
        mine == !old,
        "the private mapping reads {mine:#04x} after writing {:#04x}",
        !old
    );
    let by_pread = ctx.pread_byte(at)?;
    ensure!(
        by_pread == old,
        "a MAP_PRIVATE write of {:#04x} at byte {at} reached the buffer: pread reads it",
        !old
    );
    let by_shared = shared.read_u8(at);
    ensure!(
        by_shared == old,
        "a MAP_PRIVATE write of {:#04x} at byte {at} is visible in a MAP_SHARED mapping",
        !old
    );
    let mut after = private.read_vec(ctx.geo.offset(page), ctx.geo.page_size);
    after[at - ctx.geo.offset(page)] = old;
    ensure!(
        after == before,
        "the private copy of page {page} lost the page's other bytes"
    );
    Ok(format!("byte {at} of page {page}"))
}
