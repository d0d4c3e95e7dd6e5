// SPDX-License-Identifier: GPL-2.0

//! The edges of read/write/ioctl/lseek.

use anyhow::{Result, anyhow, ensure};
use nix::errno::Errno;

use super::report::Check;
use super::{CheckFn, Ctx, expect_all, expect_errno};
use crate::abi::{MAPDRV_IOC_MAGIC, MapdrvInfo};
use crate::device::BadPointer;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::PreadAtEnd, |ctx| pread_at_end(ctx)),
    (Check::PreadCrossingEnd, |ctx| pread_crossing_end(ctx)),
    (Check::PwriteAtEnd, |ctx| pwrite_at_end(ctx)),
    (Check::PwriteCrossingEnd, |ctx| pwrite_crossing_end(ctx)),
    (Check::IoctlUnknown, |ctx| ioctl_unknown(ctx)),
    (Check::IoctlInfoBadPointer, |ctx| ioctl_bad_pointer(ctx)),
    (Check::LseekEspipe, |ctx| lseek(ctx)),
];

/// A pread of `len` bytes at `at` must return `want` bytes.
fn expect_pread(ctx: &Ctx, at: u64, len: usize, want: usize) -> Result<String> {
    let mut buf = vec![0u8; len];
    let what = format!("pread of {len} bytes at {at} (size {})", ctx.geo.size);
    let n = ctx
        .dev
        .pread(&mut buf, at)
        .map_err(|e| anyhow!("{what} failed with {e}, expected {want}"))?;
    ensure!(n == want, "{what} returned {n}, expected {want}");
    Ok(format!("{len} at {at} -> {n}"))
}

fn pread_at_end(ctx: &Ctx) -> Result<String> {
    let size = ctx.geo.size as u64;
    expect_all([size, size + 1000].map(|at| expect_pread(ctx, at, 16, 0)))
}

fn pread_crossing_end(ctx: &Ctx) -> Result<String> {
    expect_pread(ctx, ctx.geo.size as u64 - 1, 2, 1)
}

fn pwrite_at_end(ctx: &Ctx) -> Result<String> {
    let size = ctx.geo.size as u64;
    expect_all([size, size + 1000].map(|at| {
        expect_errno(
            &format!("pwrite at {at}"),
            ctx.dev.pwrite(&[0x5a], at),
            &[Errno::ENOSPC],
        )
    }))
}

fn pwrite_crossing_end(ctx: &mut Ctx) -> Result<String> {
    let at = ctx.geo.size - 1;
    let new = !ctx.save_byte(at)?;
    let n = ctx.dev.pwrite(&[new, 0x5a, 0x5a], at as u64).map_err(|e| {
        anyhow!("pwrite of 3 bytes at {at} (last byte) failed with {e}, expected 1")
    })?;
    ensure!(
        n == 1,
        "pwrite of 3 bytes at {at} (last byte) returned {n}, expected 1"
    );
    let seen = ctx.pread_byte(at)?;
    ensure!(
        seen == new,
        "the short pwrite did not write the last byte (reads {seen:#04x})"
    );
    Ok("3 bytes at the last byte -> 1".to_string())
}

fn ioctl_unknown(ctx: &Ctx) -> Result<String> {
    let size = std::mem::size_of::<MapdrvInfo>();
    #[allow(
        clippy::unnecessary_cast,
        reason = "the request codes are c_ulong: u64, but u32 already on 32-bit ARM"
    )]
    let cmds: [(&str, u32); 4] = [
        (
            "_IOR('M', 2, info)",
            nix::request_code_read!(MAPDRV_IOC_MAGIC, 2, size) as u32,
        ),
        (
            "_IO('M', 0)",
            nix::request_code_none!(MAPDRV_IOC_MAGIC, 0) as u32,
        ),
        (
            "_IOWR('M', 1, info)",
            nix::request_code_readwrite!(MAPDRV_IOC_MAGIC, 1, size) as u32,
        ),
        (
            "_IOR('M', 1, u32)",
            nix::request_code_read!(MAPDRV_IOC_MAGIC, 1, 4) as u32,
        ),
    ];
    expect_all(cmds.map(|(name, cmd)| {
        expect_errno(
            &format!("{name} = {cmd:#x}"),
            ctx.dev.ioctl_null_arg(cmd),
            &[Errno::ENOTTY],
        )
    }))
}

fn ioctl_bad_pointer(ctx: &Ctx) -> Result<String> {
    expect_all([BadPointer::Null, BadPointer::KernelSpace].map(|p| {
        expect_errno(
            &format!("INFO to {p:?}"),
            ctx.dev.info_to_bad_pointer(p),
            &[Errno::EFAULT],
        )
    }))
}

fn lseek(ctx: &Ctx) -> Result<String> {
    expect_errno("lseek(0, SEEK_SET)", ctx.dev.seek_start(), &[Errno::ESPIPE])
}
