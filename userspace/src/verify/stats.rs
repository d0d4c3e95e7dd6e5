// SPDX-License-Identifier: GPL-2.0

//! stats-mmaps, stats-faults, stats-bytes-read, stats-bytes-written: the
//! debugfs counters grow after the operations they count.

use std::io;

use anyhow::{Result, anyhow, bail};

use super::report::{Check, Report};
use super::{Ctx, RO};
use crate::abi::Mode;
use crate::debugfs::{Stats, stat};
use crate::device::Share;

/// The operations done between the two readings of `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Done {
    pub mmaps: u64,
    pub faults: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Each check and the counter it watches.
pub(super) const COUNTERS: [(Check, &str); 4] = [
    (Check::StatsMmaps, "mmaps"),
    (Check::StatsFaults, "faults"),
    (Check::StatsBytesRead, "bytes_read"),
    (Check::StatsBytesWritten, "bytes_written"),
];

/// Judges each counter: it must have grown by at least what was done (other
/// users of the device may add more). In prefault mode a touch of a new
/// mapping need not fault, so `faults` only must not go backwards.
pub(super) fn evaluate(
    before: &Stats,
    after: &Stats,
    done: Done,
    mode: Option<Mode>,
) -> Vec<(Check, Result<String>)> {
    let judge = |key: &str, at_least: u64| -> Result<String> {
        let get = |s: &Stats, when: &str| stat(s, key).map_err(|e| anyhow!("{e} ({when})"));
        let (b, a) = (get(before, "before")?, get(after, "after")?);
        if a < b.saturating_add(at_least) {
            bail!("{key} went from {b} to {a}, expected at least +{at_least}");
        }
        Ok(format!("{key} {b} -> {a}"))
    };
    COUNTERS
        .iter()
        .map(|&(check, key)| {
            let at_least = match check {
                Check::StatsMmaps => done.mmaps,
                Check::StatsFaults if mode == Some(Mode::Prefault) => 0,
                Check::StatsFaults => done.faults,
                Check::StatsBytesRead => done.bytes_read,
                _ => done.bytes_written,
            };
            (check, judge(key, at_least))
        })
        .collect()
}

/// One mmap with one touched page, one page pread, the same page written
/// back unchanged.
fn exercise(ctx: &mut Ctx) -> Result<Done> {
    let ps = ctx.geo.page_size;
    {
        let map = ctx.map_pages(0, 1, RO, Share::Shared)?;
        map.read_u8(0);
    }
    let page = ctx.journal.save(&ctx.dev, 0, ps)?;
    ctx.dev.write_all_at(0, &page)?;
    Ok(Done {
        mmaps: 1,
        faults: 1,
        bytes_read: ps as u64,
        bytes_written: ps as u64,
    })
}

pub(super) fn run(ctx: &mut Ctx, report: &mut Report) -> io::Result<()> {
    crate::fatal::set_current(Check::StatsFaults.name());
    let results: Result<Vec<(Check, Result<String>)>> = (|| {
        let debugfs = ctx.debugfs()?.clone();
        let before = debugfs.stats()?;
        let done = exercise(ctx)?;
        let after = debugfs.stats()?;
        Ok(evaluate(&before, &after, done, ctx.mode()))
    })();
    match results {
        Ok(results) => {
            for (check, outcome) in results {
                report.record(check, outcome)?;
            }
        }
        Err(e) => {
            for (check, _) in COUNTERS {
                report.record(check, Err(anyhow!("{e:#}")))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debugfs::parse_stats;

    const DONE: Done = Done {
        mmaps: 1,
        faults: 1,
        bytes_read: 4096,
        bytes_written: 4096,
    };

    fn all_pass(after: &str, mode: Mode) -> bool {
        outcomes(BEFORE, after, mode).iter().all(|(_, ok)| *ok)
    }

    fn outcomes(before: &str, after: &str, mode: Mode) -> Vec<(&'static str, bool)> {
        let (b, a) = (parse_stats(before).unwrap(), parse_stats(after).unwrap());
        evaluate(&b, &a, DONE, Some(mode))
            .into_iter()
            .map(|(c, r)| (c.name(), r.is_ok()))
            .collect()
    }

    const BEFORE: &str = "faults 5\nmmaps 2\nbytes_read 100\nbytes_written 0\n";

    #[test]
    fn grown_counters_pass() {
        let after = "faults 6\nmmaps 3\nbytes_read 4196\nbytes_written 5000\n";
        assert!(all_pass(after, Mode::Fault));
    }

    #[test]
    fn stuck_counters_fail() {
        let after = "faults 5\nmmaps 3\nbytes_read 4195\nbytes_written 4096\n";
        assert_eq!(
            outcomes(BEFORE, after, Mode::Fault),
            vec![
                ("stats-mmaps", true),
                ("stats-faults", false),
                ("stats-bytes-read", false),
                ("stats-bytes-written", true)
            ]
        );
    }

    #[test]
    fn prefault_needs_no_fault() {
        let after = "faults 5\nmmaps 3\nbytes_read 4196\nbytes_written 4096\n";
        assert!(all_pass(after, Mode::Prefault));
        assert!(!all_pass(after, Mode::Fault));
    }

    #[test]
    fn missing_counter_is_named() {
        let b = parse_stats("mmaps 1\n").unwrap();
        let a = parse_stats("mmaps 2\n").unwrap();
        let r = evaluate(&b, &a, DONE, Some(Mode::Fault));
        let err = r[1].1.as_ref().unwrap_err().to_string();
        assert_eq!(err, "no `faults` line in debugfs stats (before)");
    }
}
