// SPDX-License-Identifier: GPL-2.0

//! content-pread, content-mmap, mode-residency, refault-gap, table-ahead.

use std::ops::Range;

use anyhow::{Result, anyhow, bail, ensure};

use super::report::Check;
use super::{CheckFn, Ctx, RO, fail_on, list};
use crate::abi::Mode;
use crate::content::{check_page, page_hash};
use crate::debugfs::stat;
use crate::device::{Device, Geometry, Share};
use crate::mapping::{HUGE_BLOCK, Mapping, free_address_congruent};
use crate::pagemap;
use nix::sys::mman::MmapAdvise;

/// Pages read per pread.
const CHUNK_PAGES: usize = 64;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::ContentPread, |ctx| content_pread(ctx)),
    (Check::ContentMmap, |ctx| content_mmap(ctx)),
    (Check::ModeResidency, |ctx| mode_residency(ctx)),
    (Check::RefaultGap, |ctx| refault_gap(ctx)),
    (Check::TableAhead, |ctx| table_ahead(ctx)),
];

/// Calls `f(index, page)` for every page, read with pread in chunks.
fn for_each_page_pread(
    dev: &Device,
    geo: &Geometry,
    mut f: impl FnMut(usize, &[u8]),
) -> Result<()> {
    let mut first = 0;
    while first < geo.pages {
        let n = CHUNK_PAGES.min(geo.pages - first);
        let chunk = dev.read_exact_at(geo.offset(first), n * geo.page_size)?;
        for (i, page) in chunk.chunks_exact(geo.page_size).enumerate() {
            f(first + i, page);
        }
        first += n;
    }
    Ok(())
}

/// The fingerprint of every page, by pread.
pub(super) fn page_hashes(dev: &Device, geo: &Geometry) -> Result<Vec<u64>> {
    let mut hashes = Vec::with_capacity(geo.pages);
    for_each_page_pread(dev, geo, |_, page| hashes.push(page_hash(page)))?;
    Ok(hashes)
}

/// Checks the pattern by pread and records the fingerprints as found.
fn content_pread(ctx: &mut Ctx) -> Result<String> {
    let mut hashes = Vec::with_capacity(ctx.geo.pages);
    let mut problems = Vec::new();
    for_each_page_pread(&ctx.dev, &ctx.geo, |i, page| {
        hashes.push(page_hash(page));
        if let Err(e) = check_page(i, page) {
            problems.push(e);
        }
    })?;
    ctx.baseline = Some(hashes);
    fail_on(problems, ctx.geo.pages)?;
    Ok(format!("{} pages", ctx.geo.pages))
}

/// Checks the pattern through a shared mapping, and that it shows the same
/// bytes as pread.
fn content_mmap(ctx: &mut Ctx) -> Result<String> {
    let baseline = ctx.baseline()?;
    let map = ctx.map_all(RO, Share::Shared)?;
    let mut page = vec![0u8; ctx.geo.page_size];
    let mut problems = Vec::new();
    for (i, expected) in baseline.iter().enumerate() {
        map.read_into(ctx.geo.offset(i), &mut page);
        if let Err(e) = check_page(i, &page) {
            problems.push(e);
        } else if page_hash(&page) != *expected {
            problems.push(format!("page {i} differs from what pread returned"));
        }
    }
    fail_on(problems, ctx.geo.pages)?;
    Ok(format!("{} pages", ctx.geo.pages))
}

/// What a fresh mapping must have present before and after touching one page.
/// In huge mode, `huge_block` is the 2 MiB block of pages that one PMD entry
/// must map whole on that touch, or `None` where the mode maps one page per
/// fault (see [`huge_block_expected`]).
pub(super) fn residency_problem(
    mode: Mode,
    pages: usize,
    touched: usize,
    before: &[usize],
    after: &[usize],
    huge_block: Option<Range<usize>>,
) -> Option<String> {
    match mode {
        Mode::Prefault if before.len() != pages => Some(format!(
            "prefault: {} of {pages} pages present right after mmap, expected all",
            before.len()
        )),
        Mode::Prefault => None,
        _ if !before.is_empty() => Some(format!(
            "{mode}: pages {} present before any access, expected none",
            list(before)
        )),
        Mode::Fault if after != [touched] => Some(format!(
            "fault: touching page {touched} made pages [{}] present, expected only {touched}",
            list(after)
        )),
        Mode::Fault => None,
        Mode::Faultaround if !after.contains(&touched) => Some(format!(
            "faultaround: touched page {touched} is not present (present: [{}])",
            list(after)
        )),
        Mode::Faultaround if pages > 1 && after.len() < 2 => Some(format!(
            "faultaround: touching page {touched} mapped no neighbouring page"
        )),
        Mode::Faultaround => None,
        Mode::Huge => {
            let expected: Vec<usize> = huge_block.clone().unwrap_or(touched..touched + 1).collect();
            (after != expected).then(|| {
                format!(
                    "huge: touching page {touched} made pages [{}] present, expected [{}] ({})",
                    list(after),
                    list(&expected),
                    if huge_block.is_some() {
                        "its whole 2 MiB block, one PMD entry"
                    } else {
                        "only that page: no PMD entry can map it here"
                    }
                )
            })
        }
    }
}

/// The pages a touch of page `touched` must map in huge mode: its whole
/// 2 MiB block when one PMD entry can map it, else `None` (one page).
/// That needs the buffer's blocks to be aligned physical blocks (debugfs
/// `huge_blocks`: vmalloc_huge got them, which is all or none), a mapping at
/// a 2 MiB-aligned address from offset 0 whose block around `touched` is
/// whole, and transparent huge pages in the kernel, not switched off.
pub(super) fn huge_block_expected(
    huge_blocks: u64,
    thp_enabled: &str,
    map_addr: usize,
    pages: usize,
    page_size: usize,
    touched: usize,
) -> Option<Range<usize>> {
    let block_pages = HUGE_BLOCK / page_size;
    let start = touched / block_pages * block_pages;
    let thp_on = !thp_enabled.is_empty() && !thp_enabled.contains("[never]");
    (huge_blocks > 0
        && thp_on
        && map_addr.is_multiple_of(HUGE_BLOCK)
        && start + block_pages <= pages)
        .then_some(start..start + block_pages)
}

/// The kernel's THP setting (`always [madvise] never`), empty without THP.
fn thp_enabled() -> String {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default()
}

/// Maps the buffer afresh and checks with pagemap which pages are present
/// before and after one read, as the mode promises.
fn mode_residency(ctx: &mut Ctx) -> Result<String> {
    let Some(mode) = ctx.mode() else {
        bail!("unknown mode {}", ctx.info.mode);
    };
    let (pages, ps) = (ctx.geo.pages, ctx.geo.page_size);
    let map = ctx.map_all(RO, Share::Shared)?;
    let before = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
    let touched = pages / 2;
    let huge_block = if mode == Mode::Huge {
        let huge_blocks = stat(&ctx.debugfs()?.stats()?, "huge_blocks")?;
        huge_block_expected(huge_blocks, &thp_enabled(), map.addr(), pages, ps, touched)
    } else {
        None
    };
    map.read_u8(ctx.geo.offset(touched));
    let after = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
    if let Some(problem) = residency_problem(mode, pages, touched, &before, &after, huge_block) {
        bail!("{problem}");
    }
    Ok(format!(
        "{mode}: {} present after mmap, {} after reading page {touched}",
        before.len(),
        after.len()
    ))
}

/// Pages `refault-gap` maps: within one batch of the module's
/// `vm_insert_pages` calls (64 pages), and more than the default
/// fault-around window of 16.
const GAP_PAGES: usize = 64;

/// `vm_insert_pages` calls a fault may make for one missing page among
/// present ones: one that stops at the first present entry, one more that
/// stops at once too, and one for the missing page after one look at the
/// page table. Restarting after each present entry, as the module did
/// before, takes up to a window's worth (16 by default).
const GAP_CALLS: u64 = 3;

/// Maps up to 64 pages, reads them all (present), zaps the middle page with
/// `MADV_DONTNEED` and reads it again: that fault must map exactly that page
/// (its neighbours are present: a fault-around window is all present runs
/// but one page), with the buffer's bytes, and in at most [`GAP_CALLS`]
/// `vm_insert_pages` calls (debugfs `insert_calls`).
fn refault_gap(ctx: &mut Ctx) -> Result<String> {
    let (pages, ps) = (ctx.geo.pages.min(GAP_PAGES), ctx.geo.page_size);
    let map = ctx.map_pages(0, pages, RO, Share::Shared)?;
    map.touch_read(ps);
    let gap = pages / 2;
    map.advise_range(ctx.geo.offset(gap), ps, MmapAdvise::MADV_DONTNEED)
        .map_err(|e| anyhow!("madvise(MADV_DONTNEED) of page {gap}: {e}"))?;
    let present = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
    ensure!(
        !present.contains(&gap) && present.len() == pages - 1,
        "after reading every page and zapping page {gap}, pages [{}] are present, expected all but {gap}",
        list(&present)
    );
    let before = ctx.debugfs()?.stats()?;
    let page = map.read_vec(ctx.geo.offset(gap), ps);
    let after = ctx.debugfs()?.stats()?;
    let grew =
        |name: &str| -> Result<u64> { Ok(stat(&after, name)?.wrapping_sub(stat(&before, name)?)) };
    let (inserted, calls) = (grew("pages_inserted")?, grew("insert_calls")?);
    let present = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
    ensure!(
        present.len() == pages,
        "reading the zapped page {gap} left pages [{}] present, expected all {pages}",
        list(&present)
    );
    ensure!(
        page == ctx.dev.read_exact_at(ctx.geo.offset(gap), ps)?,
        "page {gap}, faulted again, does not hold the buffer's bytes"
    );
    ensure!(
        inserted == 1,
        "the fault on page {gap} inserted {inserted} pages, expected 1 (the others were present)"
    );
    ensure!(
        calls <= GAP_CALLS,
        "the fault on page {gap} among {} present pages took {calls} vm_insert_pages calls, expected at most {GAP_CALLS}",
        pages - 1
    );
    Ok(format!(
        "page {gap} of {pages}: 1 page inserted in {calls} vm_insert_pages calls"
    ))
}

/// The page tables of this process, in KiB (`VmPTE` of /proc/self/status).
fn page_table_kib() -> Result<u64> {
    vm_pte_kib(&std::fs::read_to_string("/proc/self/status")?)
        .ok_or_else(|| anyhow!("no VmPTE line in /proc/self/status"))
}

/// The `VmPTE:` line of a /proc/PID/status text, in KiB.
fn vm_pte_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmPTE:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// Maps `pages` pages from offset 0 so that a 2 MiB boundary (a multiple of
/// [`HUGE_BLOCK`]) falls at page `boundary` of the mapping, in a range this
/// process had free ([`free_address_congruent`]: the address is a hint, so
/// it is checked).
fn map_across_boundary(ctx: &Ctx, pages: usize, boundary: usize) -> Result<Mapping> {
    let (ps, len) = (ctx.geo.page_size, pages * ctx.geo.page_size);
    let skew = boundary * ps % HUGE_BLOCK;
    let hint = free_address_congruent(len, HUGE_BLOCK - skew)?;
    let map = ctx.dev.map_at_hint(0, len, RO, Share::Shared, hint)?;
    ensure!(
        map.addr() == hint,
        "asked for a mapping of {pages} pages at {hint:#x}, the kernel placed it at {:#x}",
        map.addr()
    );
    Ok(map)
}

/// A fault that maps pages up to a 2 MiB boundary inside the mapping gives
/// the block after it its page table (the module's `prepare_next_table`),
/// so the first read in that block makes none; a mapping that ends at a
/// boundary gets no table past its end; a huge-mode mapping gets none ahead
/// (a table there would keep the block from one PMD entry). Page tables are
/// counted with `VmPTE`; pages with pagemap.
fn table_ahead(ctx: &mut Ctx) -> Result<String> {
    let Some(mode) = ctx.mode() else {
        bail!("unknown mode {}", ctx.info.mode);
    };
    let ps = ctx.geo.page_size;
    let block = HUGE_BLOCK / ps;
    // A mapping that ends at a boundary: reading all of it makes no table
    // for the block after its end.
    let ending = ctx.geo.pages.min(block);
    let map = map_across_boundary(ctx, ending, ending)?;
    map.read_u8(0);
    let first = page_table_kib()?;
    map.touch_read(ps);
    let after = page_table_kib()?;
    ensure!(
        after == first,
        "{mode}: reading all {ending} pages of a mapping that ends at a 2 MiB boundary took {} KiB more page tables after its first page, expected none (no table past the end)",
        after - first
    );
    drop(map);
    if ctx.geo.pages <= block {
        return Ok(format!(
            "{mode}: no table past the end of a {ending}-page mapping that ends at a 2 MiB boundary (a {}-page buffer has no boundary inside a mapping)",
            ctx.geo.pages
        ));
    }
    // A mapping with a boundary inside, from a boundary: read the block
    // before it, then the first page after it.
    let pages = ctx.geo.pages.min(2 * block);
    let map = map_across_boundary(ctx, pages, block)?;
    let before = page_table_kib()?;
    map.read_u8(0);
    for page in 1..block {
        map.read_u8(ctx.geo.offset(page));
    }
    let ahead = page_table_kib()?;
    map.read_u8(ctx.geo.offset(block));
    let next = page_table_kib()?;
    let made_at_boundary = next - ahead;
    match mode {
        Mode::Fault | Mode::Faultaround => ensure!(
            made_at_boundary == 0,
            "{mode}: the first read after the 2 MiB boundary made {made_at_boundary} KiB of page tables, expected none (the fault before it makes the table)"
        ),
        Mode::Prefault => ensure!(
            ahead == before && next == before,
            "prefault: reads took page tables ({before} KiB after mmap, {ahead} and {next} KiB after), expected all made by mmap"
        ),
        Mode::Huge => {
            let huge_blocks = stat(&ctx.debugfs()?.stats()?, "huge_blocks")?;
            let want =
                huge_block_expected(huge_blocks, &thp_enabled(), map.addr(), pages, ps, block);
            let present = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
            let in_block: Vec<usize> = present.into_iter().filter(|&p| p >= block).collect();
            let expected: Vec<usize> = want.unwrap_or(block..block + 1).collect();
            ensure!(
                in_block == expected,
                "huge: after reading the first block, reading page {block} made pages [{}] present, expected [{}]",
                list(&in_block),
                list(&expected)
            );
        }
    }
    Ok(format!(
        "{mode}: a read after a 2 MiB boundary made {made_at_boundary} KiB of page tables; none past the end of a mapping"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_pte() {
        let status =
            "Name:\tmapdrv\nVmLib:\t       8 kB\nVmPTE:\t      56 kB\nVmSwap:\t       0 kB\n";
        assert_eq!(vm_pte_kib(status), Some(56));
        assert_eq!(vm_pte_kib("VmPTE:\t  x kB\n"), None);
        assert_eq!(vm_pte_kib("Name:\tmapdrv\n"), None);
    }

    #[test]
    fn fault_mode_maps_one_page_per_fault() {
        assert_eq!(residency_problem(Mode::Fault, 10, 5, &[], &[5], None), None);
        assert!(residency_problem(Mode::Fault, 10, 5, &[], &[4, 5], None).is_some());
        assert!(residency_problem(Mode::Fault, 10, 5, &[0], &[5], None).is_some());
        assert!(residency_problem(Mode::Fault, 10, 5, &[], &[], None).is_some());
    }

    #[test]
    fn faultaround_maps_neighbours() {
        assert_eq!(
            residency_problem(Mode::Faultaround, 10, 5, &[], &[4, 5, 6], None),
            None
        );
        assert_eq!(
            residency_problem(Mode::Faultaround, 1, 0, &[], &[0], None),
            None
        );
        assert!(residency_problem(Mode::Faultaround, 10, 5, &[], &[5], None).is_some());
        assert!(residency_problem(Mode::Faultaround, 10, 5, &[], &[0, 1], None).is_some());
    }

    #[test]
    fn prefault_maps_everything_at_mmap() {
        let all: Vec<usize> = (0..4).collect();
        assert_eq!(
            residency_problem(Mode::Prefault, 4, 2, &all, &all, None),
            None
        );
        assert!(residency_problem(Mode::Prefault, 4, 2, &[], &[2], None).is_some());
    }

    #[test]
    fn huge_maps_a_whole_block_or_one_page() {
        let block: Vec<usize> = (512..1024).collect();
        assert_eq!(
            residency_problem(Mode::Huge, 1024, 600, &[], &block, Some(512..1024)),
            None
        );
        assert!(residency_problem(Mode::Huge, 1024, 600, &[], &[600], Some(512..1024)).is_some());
        assert_eq!(
            residency_problem(Mode::Huge, 1024, 600, &[], &[600], None),
            None
        );
        assert!(residency_problem(Mode::Huge, 1024, 600, &[], &block, None).is_some());
        assert!(residency_problem(Mode::Huge, 1024, 600, &[1], &block, Some(512..1024)).is_some());
    }

    #[test]
    fn huge_block_needs_blocks_thp_alignment_and_room() {
        let on = "always [madvise] never\n";
        let aligned = 4 * HUGE_BLOCK;
        assert_eq!(
            huge_block_expected(2, on, aligned, 1024, 4096, 600),
            Some(512..1024)
        );
        assert_eq!(
            huge_block_expected(2, on, aligned, 1024, 4096, 5),
            Some(0..512)
        );
        assert_eq!(huge_block_expected(0, on, aligned, 1024, 4096, 600), None);
        assert_eq!(
            huge_block_expected(2, "always madvise [never]\n", aligned, 1024, 4096, 600),
            None
        );
        assert_eq!(huge_block_expected(2, "", aligned, 1024, 4096, 600), None);
        assert_eq!(
            huge_block_expected(2, on, aligned + 4096, 1024, 4096, 600),
            None
        );
        // The block around page 600 of a 1000-page buffer is not whole.
        assert_eq!(huge_block_expected(1, on, aligned, 1000, 4096, 600), None);
    }
}
