// SPDX-License-Identifier: GPL-2.0

//! shared-write-pread, shared-write-second-mapping, shared-write-fork,
//! private-isolation, private-write-first-touch: where a write through a
//! mapping is (and is not) seen, and what a private write costs.
//!
//! Every changed byte is saved in the journal first; the new value is the
//! bitwise NOT of the old one, so it always differs.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::report::Check;
use super::{CheckFn, Ctx, RW};
use crate::child::{self, Ended};
use crate::device::Share;
use crate::fatal;
use crate::mapping::Mapping;

/// How long the parent waits for the forked child.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::SharedWritePread, |ctx| shared_write_pread(ctx)),
    (Check::SharedWriteSecondMapping, |ctx| second_mapping(ctx)),
    (Check::SharedWriteFork, |ctx| fork_check(ctx)),
    (Check::PrivateIsolation, |ctx| private_isolation(ctx)),
    (Check::PrivateWriteFirstTouch, |ctx| {
        private_write_first_touch(ctx)
    }),
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

/// The child: waits for the parent's go, reports the byte at `x` (one
/// decimal line), writes `child_value` at `y`. Only async-signal-safe calls
/// besides the formatting of one small number: it was forked from a
/// process with no other thread.
fn child(map: &Mapping, x: usize, y: usize, child_value: u8, mut go: impl Read, fd: RawFd) -> i32 {
    fatal::reset_in_child();
    let mut buf = [0u8; 1];
    match go.read(&mut buf) {
        Ok(1) => {
            let seen = map.read_u8(x);
            map.write_u8(y, child_value);
            child::write_all(fd, format!("{seen}\n").as_bytes());
            0
        }
        _ => 2,
    }
}

fn fork_check(ctx: &mut Ctx) -> Result<String> {
    let map = ctx.map_all(RW, Share::Shared)?;
    let (x, y) = (scratch(ctx, 0, 3), scratch(ctx, 0, 4));
    let parent_value = !ctx.save_byte(x)?;
    let child_value = !ctx.save_byte(y)?;
    let (go_r, mut go_w) = io::pipe().context("pipe")?;

    let deadline = Instant::now() + CHILD_TIMEOUT;
    let go_w_fd = go_w.as_raw_fd();
    let body = |fd| {
        // SAFETY: the child's copy of the go pipe's write end, closed so
        // that the child sees the end of the pipe if the parent gives up;
        // its owner (`go_w`) is never dropped in the child, which leaves
        // with _exit.
        unsafe { libc::close(go_w_fd) };
        child(&map, x, y, child_value, go_r, fd)
    };
    // SAFETY: verify is single-threaded here (the worker threads of
    // concurrent-faults run later and are scoped), so the child may format
    // its answer; it reads, writes, touches the mapping with atomics and
    // leaves with _exit (child::spawn).
    let kid = unsafe { child::spawn(body) }?;

    // The parent writes after the fork; the child must see it.
    map.write_u8(x, parent_value);
    let sent = go_w.write_all(&[1]);
    drop(go_w);

    let mut answer = None;
    let ended = kid.collect(Some(deadline), |line| {
        answer = line.trim().parse::<u8>().ok()
    })?;
    sent.context("telling the child to go")?;
    match ended {
        Ended::Exited(0) => {}
        Ended::Hung if answer.is_none() => bail!(
            "the child did not answer within {} ms (stuck in a page fault?)",
            CHILD_TIMEOUT.as_millis()
        ),
        Ended::Hung => bail!(
            "the child answered but did not end within {} ms",
            CHILD_TIMEOUT.as_millis()
        ),
        Ended::Signaled(sig) => bail!("the child was killed by {sig}"),
        Ended::Exited(code) => bail!("the child ended with exit status {code}"),
    }
    let Some(seen) = answer else {
        bail!("the child sent no answer");
    };
    ensure!(
        seen == parent_value,
        "parent wrote {parent_value:#04x} at byte {x} after fork(), the child read {seen:#04x}"
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

/// Pages written by `private-write-first-touch`.
const FIRST_WRITES: usize = 64;

/// Faults beyond one per page that `private-write-first-touch` tolerates
/// (a stack page of the loop, say); a fault and a second one for the copy
/// per page would be 2x.
const FIRST_WRITE_SLACK: u64 = 2;

/// A write to a page of a fresh MAP_PRIVATE mapping that was never read is
/// answered in one trap: the module hands the page to the core, which maps a
/// copy with the write in it. The copy holds the page's other bytes, and the
/// buffer is unchanged.
fn private_write_first_touch(ctx: &mut Ctx) -> Result<String> {
    let pages = ctx.geo.pages.min(FIRST_WRITES);
    let private = ctx.map_pages(0, pages, RW, Share::Private)?;
    let spots: Vec<usize> = (0..pages).map(|p| scratch(ctx, p, 7)).collect();
    let olds = spots
        .iter()
        .map(|&at| ctx.pread_byte(at))
        .collect::<Result<Vec<u8>>>()?;
    let before = crate::bench::mem::minor_faults();
    for (&at, &old) in spots.iter().zip(&olds) {
        private.write_u8(at, !old);
    }
    let faults = crate::bench::mem::minor_faults() - before;
    for (page, (&at, &old)) in spots.iter().zip(&olds).enumerate() {
        let copy = private.read_vec(ctx.geo.offset(page), ctx.geo.page_size);
        let mut buffer = ctx
            .dev
            .read_exact_at(ctx.geo.offset(page), ctx.geo.page_size)?;
        ensure!(
            buffer[at - ctx.geo.offset(page)] == old,
            "a MAP_PRIVATE write at byte {at} reached the buffer"
        );
        buffer[at - ctx.geo.offset(page)] = !old;
        ensure!(
            copy == buffer,
            "the private copy of page {page}, written first, is not the page with the write"
        );
    }
    ensure!(
        faults <= pages as u64 + FIRST_WRITE_SLACK,
        "writing {pages} untouched pages of a private mapping took {faults} faults, expected {pages} (one per page)"
    );
    Ok(format!("{pages} pages written first, {faults} faults"))
}
