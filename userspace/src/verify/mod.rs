// SPDX-License-Identifier: GPL-2.0

//! `mapdrv verify`: the device contract checked from user space.
//!
//! Every check prints `PASS: <name>` or `FAIL: <name>: <why>` (names in
//! [`report::Check`]); bytes verify changes are saved first and restored at
//! the end (check `restore-content`).

mod concurrency;
mod content;
mod edges;
mod journal;
mod kernel_view;
mod mmap_rules;
pub mod report;
mod sharing;
mod stats;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use nix::errno::Errno;
use nix::sys::mman::ProtFlags;

use crate::abi::{MapdrvInfo, Mode, mode_name};
use crate::debugfs::Debugfs;
use crate::device::{Access, Device, Geometry, Share, system_page_size};
use crate::fatal;
use crate::mapping::Mapping;
use journal::Journal;
use report::{Check, Report};

const HELP: &str = "\
Checks the device contract from user space and prints one line per check:
  PASS: <name>
  FAIL: <name>: <why>
then `SUMMARY: <n> passed, <m> failed`. The exit status is 1 if any check
failed. Needs root (pagemap PFNs and debugfs are root-only) and debugfs at
/sys/kernel/debug. Bytes verify writes are saved first and written back at
the end, so the buffer is left as found.

Checks, in order:
{checks}

Examples:
  mapdrv verify
  mapdrv verify --threads 8 --verbose
  mapdrv verify --json";

/// The help text after the options, with the check names filled in, a few
/// per indented line.
pub fn help() -> String {
    let names: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
    let lines: Vec<String> = names
        .chunks(4)
        .map(|c| format!("  {}", c.join(" ")))
        .collect();
    HELP.replace("{checks}", &lines.join("\n"))
}

/// Check the device contract; PASS/FAIL line per check.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = help())]
pub struct Args {
    /// Print one JSON object {"checks":[{"name","ok","detail"}],"passed","failed"}.
    #[arg(long)]
    pub json: bool,
    /// Threads of the concurrent-faults check.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// The driver's debugfs directory.
    #[arg(long, value_name = "DIR", default_value = crate::debugfs::DEFAULT_DIR)]
    pub debugfs: PathBuf,
    /// Add each check's detail to its PASS line.
    #[arg(long, short)]
    pub verbose: bool,
}

/// What the checks share.
pub(crate) struct Ctx {
    dev: Device,
    info: MapdrvInfo,
    geo: Geometry,
    debugfs: Result<Debugfs, String>,
    /// Fingerprint of every page as verify found it (see `content-pread`).
    baseline: Option<Vec<u64>>,
    journal: Journal,
    threads: usize,
}

impl Ctx {
    fn mode(&self) -> Option<Mode> {
        Mode::from_raw(self.info.mode)
    }

    fn debugfs(&self) -> Result<&Debugfs> {
        self.debugfs.as_ref().map_err(|why| anyhow!("{why}"))
    }

    /// Maps `pages` pages from page `first`.
    fn map_pages(
        &self,
        first: usize,
        pages: usize,
        prot: ProtFlags,
        share: Share,
    ) -> Result<Mapping> {
        let (offset, len) = (self.geo.offset(first), pages * self.geo.page_size);
        self.dev.map(offset as u64, len, prot, share).map_err(|e| {
            anyhow!("mmap of {len} bytes at offset {offset} ({share:?}, {prot:?}) failed: {e}")
        })
    }

    /// Maps the whole buffer.
    fn map_all(&self, prot: ProtFlags, share: Share) -> Result<Mapping> {
        self.map_pages(0, self.geo.pages, prot, share)
    }

    /// The page fingerprints as found, computed now if `content-pread` could
    /// not record them.
    fn baseline(&mut self) -> Result<Vec<u64>> {
        if self.baseline.is_none() {
            self.baseline = Some(content::page_hashes(&self.dev, &self.geo)?);
        }
        Ok(self.baseline.clone().unwrap_or_default())
    }

    /// Saves one byte before a check changes it; returns its value.
    fn save_byte(&mut self, offset: usize) -> Result<u8> {
        Ok(self.journal.save(&self.dev, offset, 1)?[0])
    }

    /// The current value of one byte, by pread.
    fn pread_byte(&self, offset: usize) -> Result<u8> {
        Ok(self.dev.read_exact_at(offset, 1)?[0])
    }
}

/// A check: `Ok(detail)` passes, `Err(why)` fails.
type CheckFn = fn(&mut Ctx) -> Result<String>;

/// The checks after ioctl-info, in order; then come the four stats checks
/// (one measurement) and restore-content.
const TABLES: [&[(Check, CheckFn)]; 6] = [
    content::CHECKS,
    kernel_view::CHECKS,
    sharing::CHECKS,
    mmap_rules::CHECKS,
    concurrency::CHECKS,
    edges::CHECKS,
];

const RO: ProtFlags = ProtFlags::PROT_READ;
const RW: ProtFlags = ProtFlags::PROT_READ.union(ProtFlags::PROT_WRITE);

/// At most this many problems are spelled out in a FAIL line.
const SHOWN: usize = 3;

/// Short list of page indices: `1, 2, 3 and 7 more`.
fn list(items: &[usize]) -> String {
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// Fails with the first few problems, if there are any, out of `pages`.
fn fail_on(problems: Vec<String>, pages: usize) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let more = if problems.len() > SHOWN {
        format!(" (and {} more)", problems.len() - SHOWN)
    } else {
        String::new()
    };
    bail!(
        "{} of {pages} pages wrong: {}{more}",
        problems.len(),
        problems[..SHOWN.min(problems.len())].join("; ")
    )
}

/// The outcome of a call that must fail with one of `expected`.
fn expect_errno<T>(what: &str, result: nix::Result<T>, expected: &[Errno]) -> Result<String> {
    let names = expected
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(" or ");
    match result {
        Ok(_) => bail!("{what} succeeded, expected {names}"),
        Err(e) if expected.contains(&e) => Ok(format!("{what}: {e:?}")),
        Err(e) => bail!("{what} failed with {e}, expected {names}"),
    }
}

/// Several `expect_errno` cases: all must hold; details joined with "; ".
fn expect_all(cases: impl IntoIterator<Item = Result<String>>) -> Result<String> {
    let details = cases.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(details.join("; "))
}

/// `ioctl-info`: the geometry every other check relies on.
fn check_info(dev: &Device) -> Result<(MapdrvInfo, Geometry)> {
    let (info, geo) = dev.geometry()?;
    let sys = system_page_size()?;
    if geo.page_size != sys {
        bail!(
            "page_size {} differs from this process's page size {sys}",
            geo.page_size
        );
    }
    if Mode::from_raw(info.mode).is_none() {
        bail!(
            "mode {} is not 0 (fault), 1 (faultaround), 2 (prefault) or 3 (huge)",
            info.mode
        );
    }
    Ok((info, geo))
}

/// Runs every check; true when all passed.
pub fn run(device: &Path, opts: &Args, out: &mut dyn Write) -> Result<bool> {
    let dev = Device::open(device, Access::ReadWrite)?;
    fatal::install(if opts.json {
        fatal::to_stderr
    } else {
        report::fatal_lines
    })?;
    let mut report = Report::new(opts.json, opts.verbose, out);

    let (info, geo) = match check_info(&dev) {
        Ok(ok) => ok,
        Err(e) => {
            report.record(Check::IoctlInfo, Err(e))?;
            return report.finish();
        }
    };
    report.record(
        Check::IoctlInfo,
        Ok(format!(
            "{} pages of {} bytes, mode {}",
            geo.pages,
            geo.page_size,
            mode_name(info.mode)
        )),
    )?;

    let mut ctx = Ctx {
        dev,
        info,
        geo,
        debugfs: Debugfs::locate(&opts.debugfs).map_err(|e| format!("{e:#}")),
        baseline: None,
        journal: Journal::default(),
        threads: usize::from(opts.threads),
    };

    // One step per check; the stats checks and the restore are the last two.
    let steps = TABLES.iter().map(|t| t.len()).sum::<usize>() + 2;
    let bar = crate::progress::bar(steps as u64, "verify");
    for &(check, f) in TABLES.into_iter().flatten() {
        bar.set_message(format!("verify: {}", check.name()));
        // The PASS/FAIL line goes to stdout; keep the bar off it meanwhile.
        bar.suspend(|| report.run(check, || f(&mut ctx)))?;
        bar.inc(1);
    }
    stats::run(&mut ctx, &mut report)?;
    bar.inc(1);
    report.run(Check::RestoreContent, || restore(&mut ctx))?;
    bar.finish_and_clear();
    report.finish()
}

/// `restore-content`: write back what verify changed, then compare every
/// page with what verify found.
fn restore(ctx: &mut Ctx) -> Result<String> {
    let bytes = ctx.journal.restore(&ctx.dev)?;
    let Some(before) = ctx.baseline.clone() else {
        return Ok(format!(
            "{bytes} bytes restored (no initial fingerprint to compare)"
        ));
    };
    let after = content::page_hashes(&ctx.dev, &ctx.geo)?;
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    if !changed.is_empty() {
        bail!(
            "{} page(s) differ from how verify found them after restoring {bytes} bytes: {}",
            changed.len(),
            list(&changed)
        );
    }
    Ok(format!(
        "{bytes} bytes restored, all {} pages as found",
        before.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_run_in_the_documented_order() {
        let mut order = vec![Check::IoctlInfo];
        order.extend(TABLES.into_iter().flatten().map(|&(c, _)| c));
        order.extend(stats::COUNTERS.map(|(c, _)| c));
        order.push(Check::RestoreContent);
        assert_eq!(order, Check::ALL);
    }

    #[test]
    fn help_lists_every_check() {
        let help = help();
        for c in Check::ALL {
            assert!(help.contains(c.name()), "{}", c.name());
        }
    }

    #[test]
    fn lists_are_short() {
        assert_eq!(list(&[1, 2]), "1, 2");
        assert_eq!(list(&[1, 2, 3, 4, 5]), "1, 2, 3 and 2 more");
    }

    #[test]
    fn problems_are_summarised() {
        assert!(fail_on(vec![], 10).is_ok());
        let five = (0..5).map(|i| format!("p{i}")).collect();
        assert_eq!(
            fail_on(five, 10).unwrap_err().to_string(),
            "5 of 10 pages wrong: p0; p1; p2 (and 2 more)"
        );
    }

    #[test]
    fn expect_errno_cases() {
        assert_eq!(
            expect_errno("mmap", Err::<(), _>(Errno::EINVAL), &[Errno::EINVAL]).unwrap(),
            "mmap: EINVAL"
        );
        let err = expect_errno("mmap", Ok(()), &[Errno::EINVAL, Errno::EOVERFLOW]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mmap succeeded, expected EINVAL or EOVERFLOW"
        );
        let err = expect_errno("mmap", Err::<(), _>(Errno::ENOMEM), &[Errno::EINVAL]).unwrap_err();
        assert!(
            err.to_string().starts_with("mmap failed with ENOMEM"),
            "{err}"
        );
    }

    #[test]
    fn expect_all_joins_or_fails() {
        assert_eq!(
            expect_all([Ok("a".into()), Ok("b".into())]).unwrap(),
            "a; b"
        );
        assert!(expect_all([Ok("a".into()), Err(anyhow!("no"))]).is_err());
    }
}
