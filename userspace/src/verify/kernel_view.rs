// SPDX-License-Identifier: GPL-2.0

//! debugfs-mode, debugfs-pages, pagemap-pfns: what the kernel says about the
//! buffer, against what this process sees.

use anyhow::{Context, Result, bail, ensure};

use super::report::Check;
use super::{CheckFn, Ctx, RO, fail_on, list};
use crate::abi::{Mode, mode_name};
use crate::debugfs::PageLine;
use crate::device::Share;
use crate::pagemap::{self, Entry};

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] = &[
    (Check::DebugfsMode, |ctx| debugfs_mode(ctx)),
    (Check::DebugfsModeSwitch, |ctx| debugfs_mode_switch(ctx)),
    (Check::DebugfsPages, |ctx| debugfs_pages(ctx)),
    (Check::PagemapPfns, |ctx| pagemap_pfns(ctx)),
];

fn debugfs_mode(ctx: &Ctx) -> Result<String> {
    let mode = ctx.debugfs()?.mode()?;
    let info = ctx.dev.query_info()?;
    ensure!(
        mode.raw() == info.mode,
        "debugfs mode says {mode} but MAPDRV_IOC_INFO says {}",
        mode_name(info.mode)
    );
    Ok(format!("{mode}"))
}

/// Writes each mode (by name and by number) and a bad name to debugfs
/// `mode`, checking debugfs and MAPDRV_IOC_INFO agree; then puts the
/// original mode back, whatever happened.
fn debugfs_mode_switch(ctx: &Ctx) -> Result<String> {
    let debugfs = ctx.debugfs()?;
    let original = debugfs.mode()?;
    let switch = |value: &str, want: Mode| -> Result<()> {
        debugfs
            .write_mode(value)
            .with_context(|| format!("writing {value:?} to debugfs mode"))?;
        let (read, info) = (debugfs.mode()?, ctx.dev.query_info()?.mode);
        ensure!(
            read == want && info == want.raw(),
            "after writing {value:?}, debugfs mode says {read} and MAPDRV_IOC_INFO says {}, \
             expected {want}",
            mode_name(info)
        );
        Ok(())
    };
    let outcome = (|| -> Result<String> {
        for mode in Mode::ALL {
            switch(mode.name(), mode)?;
            switch(&mode.raw().to_string(), mode)?;
        }
        match debugfs.write_mode("turbo") {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => bail!("writing \"turbo\" to debugfs mode failed with {e}, expected EINVAL"),
            Ok(()) => bail!("writing \"turbo\" to debugfs mode succeeded, expected EINVAL"),
        }
        Ok(format!(
            "fault, faultaround, prefault by name and number; back to {original}"
        ))
    })();
    let restored = switch(original.name(), original).context("restoring the original mode");
    let detail = outcome?;
    restored?;
    Ok(detail)
}

/// Problems of a `pages` listing: one line per page, nonzero PFNs, and the
/// virtually contiguous addresses of one vmalloc area.
pub(super) fn pages_problem(lines: &[PageLine], pages: usize, page_size: usize) -> Option<String> {
    if lines.len() != pages {
        return Some(format!(
            "lists {} pages, the buffer has {pages}",
            lines.len()
        ));
    }
    let zero: Vec<usize> = (0..pages).filter(|&i| lines[i].pfn == 0).collect();
    if !zero.is_empty() {
        return Some(format!("pfn 0 for pages {}", list(&zero)));
    }
    let base = lines[0].vaddr;
    if !base.is_multiple_of(page_size as u64) {
        return Some(format!("vaddr {base:#x} of page 0 is not page aligned"));
    }
    let off: Vec<usize> = (0..pages)
        .filter(|&i| lines[i].vaddr != base + (i * page_size) as u64)
        .collect();
    if !off.is_empty() {
        return Some(format!(
            "vaddr of pages {} is not {base:#x} + index * {page_size} (vmalloc memory is virtually contiguous)",
            list(&off)
        ));
    }
    None
}

fn debugfs_pages(ctx: &Ctx) -> Result<String> {
    let lines = ctx.debugfs()?.pages()?;
    if let Some(problem) = pages_problem(&lines, ctx.geo.pages, ctx.geo.page_size) {
        bail!("debugfs pages {problem}");
    }
    Ok(format!("{} pages from {:#x}", lines.len(), lines[0].vaddr))
}

/// Differences between pagemap entries and the `pages` listing.
pub(super) fn pfn_mismatches(entries: &[Entry], lines: &[PageLine]) -> Vec<String> {
    entries
        .iter()
        .zip(lines)
        .enumerate()
        .filter_map(|(i, (e, l))| match e.pfn() {
            None => Some(format!("page {i} not present after touching it")),
            Some(pfn) if pfn != l.pfn => Some(format!(
                "page {i}: pagemap pfn {pfn:#x}, debugfs pfn {:#x}",
                l.pfn
            )),
            Some(_) => None,
        })
        .collect()
}

fn pagemap_pfns(ctx: &Ctx) -> Result<String> {
    if !nix::unistd::geteuid().is_root() {
        bail!("pagemap shows PFNs only with CAP_SYS_ADMIN: run as root");
    }
    let lines = ctx.debugfs()?.pages()?;
    ensure!(
        lines.len() == ctx.geo.pages,
        "debugfs pages lists {} pages, the buffer has {}",
        lines.len(),
        ctx.geo.pages
    );
    let map = ctx.map_all(RO, Share::Shared)?;
    for i in 0..ctx.geo.pages {
        map.read_u8(ctx.geo.offset(i));
    }
    let entries = pagemap::read_self(map.addr(), ctx.geo.pages, ctx.geo.page_size)?;
    if entries.iter().all(|e| e.pfn() == Some(0)) {
        bail!(
            "pagemap reports PFN 0 for every page: no CAP_SYS_ADMIN (run as root, not in a user namespace)"
        );
    }
    fail_on(pfn_mismatches(&entries, &lines), entries.len())?;
    Ok(format!("{} pages, PFNs match", entries.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pfns: &[u64]) -> Vec<PageLine> {
        pfns.iter()
            .enumerate()
            .map(|(i, &pfn)| PageLine {
                index: i as u64,
                vaddr: 0xffff_c900_0010_0000 + (i as u64) * 4096,
                pfn,
            })
            .collect()
    }

    #[test]
    fn good_listing_has_no_problem() {
        assert_eq!(pages_problem(&lines(&[0x10, 0x99, 0x11]), 3, 4096), None);
    }

    #[test]
    fn listing_problems() {
        assert!(
            pages_problem(&lines(&[0x10, 0x11]), 3, 4096)
                .unwrap()
                .contains("lists 2 pages")
        );
        assert!(
            pages_problem(&lines(&[0x10, 0]), 2, 4096)
                .unwrap()
                .contains("pfn 0")
        );
        let mut l = lines(&[1, 2, 3]);
        l[2].vaddr += 4096;
        assert!(pages_problem(&l, 3, 4096).unwrap().contains("pages 2 "));
    }

    #[test]
    fn pfns_are_compared_page_by_page() {
        let present = |pfn: u64| Entry((1 << 63) | pfn);
        let l = lines(&[0x10, 0x20, 0x30]);
        assert!(pfn_mismatches(&[present(0x10), present(0x20), present(0x30)], &l).is_empty());
        let bad = pfn_mismatches(&[present(0x10), Entry(0), present(0x31)], &l);
        assert_eq!(
            bad,
            vec![
                "page 1 not present after touching it".to_string(),
                "page 2: pagemap pfn 0x31, debugfs pfn 0x30".to_string()
            ]
        );
    }
}
