// SPDX-License-Identifier: GPL-2.0

//! content-pread, content-mmap, mode-residency.

use anyhow::{Result, bail};

use super::report::Check;
use super::{CheckFn, Ctx, RO, fail_on, list};
use crate::abi::Mode;
use crate::content::{check_page, page_hash};
use crate::device::{Device, Geometry, Share};
use crate::pagemap;

/// Pages read per pread.
const CHUNK_PAGES: usize = 64;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::ContentPread, |ctx| content_pread(ctx)),
    (Check::ContentMmap, |ctx| content_mmap(ctx)),
    (Check::ModeResidency, |ctx| mode_residency(ctx)),
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
pub(super) fn residency_problem(
    mode: Mode,
    pages: usize,
    touched: usize,
    before: &[usize],
    after: &[usize],
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
    }
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
    map.read_u8(ctx.geo.offset(touched));
    let after = pagemap::present_pages(&pagemap::read_self(map.addr(), pages, ps)?);
    if let Some(problem) = residency_problem(mode, pages, touched, &before, &after) {
        bail!("{problem}");
    }
    Ok(format!(
        "{mode}: {} present after mmap, {} after reading page {touched}",
        before.len(),
        after.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_mode_maps_one_page_per_fault() {
        assert_eq!(residency_problem(Mode::Fault, 10, 5, &[], &[5]), None);
        assert!(residency_problem(Mode::Fault, 10, 5, &[], &[4, 5]).is_some());
        assert!(residency_problem(Mode::Fault, 10, 5, &[0], &[5]).is_some());
        assert!(residency_problem(Mode::Fault, 10, 5, &[], &[]).is_some());
    }

    #[test]
    fn faultaround_maps_neighbours() {
        assert_eq!(
            residency_problem(Mode::Faultaround, 10, 5, &[], &[4, 5, 6]),
            None
        );
        assert_eq!(residency_problem(Mode::Faultaround, 1, 0, &[], &[0]), None);
        assert!(residency_problem(Mode::Faultaround, 10, 5, &[], &[5]).is_some());
        assert!(residency_problem(Mode::Faultaround, 10, 5, &[], &[0, 1]).is_some());
    }

    #[test]
    fn prefault_maps_everything_at_mmap() {
        let all: Vec<usize> = (0..4).collect();
        assert_eq!(residency_problem(Mode::Prefault, 4, 2, &all, &all), None);
        assert!(residency_problem(Mode::Prefault, 4, 2, &[], &[2]).is_some());
    }
}
