// SPDX-License-Identifier: GPL-2.0

//! Which mmap/mprotect/mremap calls the driver accepts and which it refuses.

use anyhow::{Result, anyhow, ensure};
use nix::errno::Errno;
use nix::sys::mman::ProtFlags;

use super::report::Check;
use super::{CheckFn, Ctx, RO, expect_all, expect_errno};
use crate::device::{Share, ULONG_MAX};
use crate::mapping::Mapping;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::MmapWholeBuffer, |ctx| whole_buffer(ctx)),
    (Check::MmapLastPage, |ctx| last_page(ctx)),
    (Check::MmapOffsetPastEnd, |ctx| offset_past_end(ctx)),
    (Check::MmapLengthPastEnd, |ctx| length_past_end(ctx)),
    (Check::MmapHugeOffset, |ctx| huge_offset(ctx)),
    (Check::MmapWrappingOffset, |ctx| wrapping_offset(ctx)),
    (Check::MmapUnalignedOffset, |ctx| unaligned_offset(ctx)),
    (Check::MmapZeroLength, |ctx| zero_length(ctx)),
    (Check::MmapProtExec, |ctx| prot_exec(ctx)),
    (Check::MprotectExec, |ctx| mprotect_exec(ctx)),
    (Check::MremapGrow, |ctx| mremap_grow(ctx)),
    (Check::MremapShrink, |ctx| mremap_shrink(ctx)),
    (Check::MremapMove, |ctx| mremap_move(ctx)),
];

/// mmap(offset, len) of the device, read-only and shared.
fn try_map(ctx: &Ctx, offset: u64, len: usize) -> nix::Result<()> {
    ctx.dev.map(offset, len, RO, Share::Shared).map(drop)
}

fn whole_buffer(ctx: &Ctx) -> Result<String> {
    let map = ctx.map_all(RO, Share::Shared)?;
    map.read_u8(ctx.geo.size - 1);
    Ok(format!("{} bytes", ctx.geo.size))
}

/// Maps just the last page and compares it with pread: the fault handler
/// must add the mapping's page offset.
fn last_page(ctx: &Ctx) -> Result<String> {
    let last = ctx.geo.pages - 1;
    let map = ctx.map_pages(last, 1, RO, Share::Shared)?;
    let via_map = map.read_vec(0, ctx.geo.page_size);
    let via_pread = ctx
        .dev
        .read_exact_at(ctx.geo.offset(last), ctx.geo.page_size)?;
    ensure!(
        via_map == via_pread,
        "a mapping of page {last} alone shows other bytes than pread of page {last} \
         (starts with \"{}\")",
        crate::content::page_text(&via_map).escape_ascii()
    );
    Ok(format!("page {last}"))
}

fn offset_past_end(ctx: &Ctx) -> Result<String> {
    let (size, ps) = (ctx.geo.size as u64, ctx.geo.page_size);
    expect_all([
        expect_errno("offset = size", try_map(ctx, size, ps), &[Errno::EINVAL]),
        expect_errno(
            "offset = size + 1 page",
            try_map(ctx, size + ps as u64, ps),
            &[Errno::EINVAL],
        ),
    ])
}

fn length_past_end(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    let last = ctx.geo.offset(ctx.geo.pages - 1) as u64;
    expect_all([
        expect_errno(
            "offset 0, length = size + 1 page",
            try_map(ctx, 0, ctx.geo.size + ps),
            &[Errno::EINVAL],
        ),
        expect_errno(
            "last page, length 2 pages",
            try_map(ctx, last, 2 * ps),
            &[Errno::EINVAL],
        ),
    ])
}

/// The largest page-aligned offset the kernel core passes on to the driver
/// for a `len`-byte mapping: file_mmap_ok() wants offset + len <= ULONG_MAX
/// (2^64 - 1, or 2^32 - 1 on 32-bit ARM, whose mmap64 passes the offset
/// on as a page number).
pub(super) fn largest_offset(len: u64, page_size: u64) -> u64 {
    (ULONG_MAX - len) & !(page_size - 1)
}

/// The core (file_mmap_ok) only checks that offset + length does not wrap,
/// so this offset reaches the driver, which must say EINVAL.
fn huge_offset(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    let offset = largest_offset(ps as u64, ps as u64);
    expect_errno(
        &format!("offset {offset:#x}"),
        try_map(ctx, offset, ps),
        &[Errno::EINVAL],
    )
}

/// offset + length wraps past ULONG_MAX. The 7.3 core refuses this with
/// EOVERFLOW before the driver is called; EINVAL (a driver check) is fine
/// as well.
fn wrapping_offset(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    let offset = largest_offset(ps as u64, ps as u64);
    expect_errno(
        &format!("offset {offset:#x}, length 2 pages"),
        try_map(ctx, offset, 2 * ps),
        &[Errno::EINVAL, Errno::EOVERFLOW],
    )
}

fn unaligned_offset(ctx: &Ctx) -> Result<String> {
    expect_errno(
        "offset 1",
        try_map(ctx, 1, ctx.geo.page_size),
        &[Errno::EINVAL],
    )
}

fn zero_length(ctx: &Ctx) -> Result<String> {
    expect_errno("length 0", try_map(ctx, 0, 0), &[Errno::EINVAL])
}

/// A note for the PROT_EXEC checks: on a noexec mount the core refuses
/// exec mappings itself, so the driver's own refusal is not what is tested.
fn noexec_note(ctx: &Ctx) -> String {
    use nix::sys::statvfs::{FsFlags, statvfs};
    match statvfs(ctx.dev.path()) {
        Ok(s) if s.flags().contains(FsFlags::ST_NOEXEC) => format!(
            " (note: {} is on a noexec mount, so the kernel core refuses exec first)",
            ctx.dev.path().display()
        ),
        _ => String::new(),
    }
}

fn prot_exec(ctx: &Ctx) -> Result<String> {
    let rx = ProtFlags::PROT_READ | ProtFlags::PROT_EXEC;
    let ps = ctx.geo.page_size;
    let detail = expect_all([
        expect_errno(
            "MAP_SHARED PROT_READ|PROT_EXEC",
            ctx.dev.map(0, ps, rx, Share::Shared).map(drop),
            &[Errno::EPERM],
        ),
        expect_errno(
            "MAP_PRIVATE PROT_READ|PROT_EXEC",
            ctx.dev.map(0, ps, rx, Share::Private).map(drop),
            &[Errno::EPERM],
        ),
    ])?;
    Ok(detail + &noexec_note(ctx))
}

fn mprotect_exec(ctx: &Ctx) -> Result<String> {
    let mut map = ctx.map_pages(0, 1, RO, Share::Shared)?;
    let detail = expect_errno(
        "mprotect(PROT_READ|PROT_EXEC)",
        map.protect(ProtFlags::PROT_READ | ProtFlags::PROT_EXEC),
        &[Errno::EACCES],
    )?;
    Ok(detail + &noexec_note(ctx))
}

fn mremap_grow(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    let mut map = ctx.map_pages(0, 1, RO, Share::Shared)?;
    let detail = expect_errno(
        "mremap 1 -> 2 pages (MREMAP_MAYMOVE)",
        map.remap(2 * ps, true),
        &[Errno::EFAULT],
    )?;
    ensure!(map.len() == ps, "the failed mremap changed the mapping");
    Ok(detail)
}

fn mremap_shrink(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    if ctx.geo.pages < 2 {
        return Ok("not applicable: a one-page buffer cannot be shrunk".to_string());
    }
    let mut map = ctx.map_pages(0, 2, RO, Share::Shared)?;
    map.remap(ps, false)
        .map_err(|e| anyhow!("mremap 2 -> 1 page failed: {e}"))?;
    let via_map = map.read_vec(0, ps);
    ensure!(
        via_map == ctx.dev.read_exact_at(0, ps)?,
        "after shrinking, page 0 differs from pread"
    );
    Ok("2 -> 1 page".to_string())
}

/// Moves a mapping (touched page 0, untouched last page) to a new address;
/// both pages must still show the buffer.
fn mremap_move(ctx: &Ctx) -> Result<String> {
    let ps = ctx.geo.page_size;
    let n = ctx.geo.pages.min(2);
    let mut map = ctx.map_pages(0, n, RO, Share::Shared)?;
    map.read_u8(0);
    let target = Mapping::reserve(n * ps).map_err(|e| anyhow!("reserving a target: {e}"))?;
    let to = target.addr();
    map.move_onto(target)
        .map_err(|e| anyhow!("mremap MREMAP_FIXED to {to:#x} failed: {e}"))?;
    ensure!(
        map.addr() == to,
        "mremap returned {:#x}, not {to:#x}",
        map.addr()
    );
    let via_map = map.read_vec(0, n * ps);
    ensure!(
        via_map == ctx.dev.read_exact_at(0, n * ps)?,
        "after moving, the mapping differs from pread"
    );
    Ok(format!("{n} page(s) moved to {to:#x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_offset_stays_below_ulong_max() {
        assert_eq!(largest_offset(4096, 4096), 0xffff_ffff_ffff_e000);
        assert_eq!(largest_offset(8192, 4096), 0xffff_ffff_ffff_d000);
        let off = largest_offset(4096, 4096);
        // Passes file_mmap_ok: pgoff <= (ULONG_MAX - len) >> PAGE_SHIFT.
        assert!(off >> 12 <= (u64::MAX - 4096) >> 12);
        // One page more and offset + length wraps past 2^64.
        assert!(off.checked_add(2 * 4096).is_none());
    }
}
