// SPDX-License-Identifier: GPL-2.0

//! `mapdrv buddy`: watch /proc/buddyinfo while the module holds one block of
//! 2^order pages (debugfs mapdrv/hold), to see the buddy allocator at work:
//! the count of free blocks of that order drops by one while the block is
//! held and comes back when it is released.
//!
//! Why the largest order by default: an allocation of order n takes a free
//! block of order n if there is one, else splits a larger one (so the count
//! at order n can *rise*); and orders up to 3 (PAGE_ALLOC_COSTLY_ORDER) are
//! usually served from per-CPU lists without touching the free lists at
//! all. At MAX_PAGE_ORDER there is nothing larger to split and no per-CPU
//! list, so only the block we hold changes the count (on a quiet system).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Serialize;

use crate::debugfs::{self, Debugfs};

pub const HELP: &str = "\
Reads the free blocks of one order from /proc/buddyinfo (summed over all
zones) three times: before, while the module holds one block of that order
(written to debugfs mapdrv/hold), and after releasing it; then checks that
the count dropped while the block was held and rose again after. The
default order is MAX_PAGE_ORDER from debugfs mapdrv/layout. Exit status 1
when the check fails. Needs root.

Examples:
  mapdrv buddy
  mapdrv buddy --order 9 --json";

/// Reads the free count of `order` before, while and after holding a block
/// of that order through debugfs `hold`; also what `hold` said of it.
fn hold_once(hold: &Path, order: u32) -> Result<(u64, u64, u64, String)> {
    let before = sample(order)?;
    let (while_held, held) = {
        match std::fs::write(hold, format!("{order}\n")) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                bail!(
                    "{} already holds a block: write `release` to it first",
                    hold.display()
                )
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                bail!(
                    "order {order} is refused by {} (valid: 0..=MAX_PAGE_ORDER)",
                    hold.display()
                )
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot hold an order-{order} block"))
                );
            }
        }
        let guard = Held(hold);
        let count = sample(order)?;
        let held = std::fs::read_to_string(hold)
            .unwrap_or_default()
            .trim()
            .to_string();
        drop(guard);
        (count, held)
    };
    let after = sample(order)?;
    Ok((before, while_held, after, held))
}

/// Watch /proc/buddyinfo while the module holds a block of 2^order pages.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// The order of the block to hold [default: MAX_PAGE_ORDER].
    #[arg(long, value_name = "N")]
    pub order: Option<u32>,
    /// Print one JSON object {"order","before","while_held","after","held","attempts","ok"}.
    #[arg(long)]
    pub json: bool,
    /// Hold and release up to N times until the count drops and comes back
    /// in one attempt (other CPUs move the system-wide count too).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// The driver's debugfs directory.
    #[arg(long, value_name = "DIR", default_value = debugfs::DEFAULT_DIR)]
    pub debugfs: PathBuf,
}

/// Free blocks per order of each zone: `Node 0, zone DMA32 1 2 ...`.
pub fn parse_buddyinfo(text: &str) -> Result<Vec<(String, Vec<u64>)>> {
    let mut zones = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (head, counts) = line
            .split_once("zone")
            .ok_or_else(|| anyhow!("buddyinfo line {line:?} has no `zone`"))?;
        let mut f = counts.split_whitespace();
        let zone = f
            .next()
            .ok_or_else(|| anyhow!("buddyinfo line {line:?} has no zone name"))?;
        let counts = f
            .map(|c| {
                c.parse::<u64>()
                    .map_err(|e| anyhow!("buddyinfo count {c:?}: {e}"))
            })
            .collect::<Result<Vec<u64>>>()?;
        ensure!(!counts.is_empty(), "buddyinfo line {line:?} has no counts");
        zones.push((
            format!("{} {}", head.trim().trim_end_matches(','), zone),
            counts,
        ));
    }
    ensure!(!zones.is_empty(), "buddyinfo is empty");
    Ok(zones)
}

/// The free blocks of `order`, summed over the zones.
pub fn free_blocks(text: &str, order: u32) -> Result<u64> {
    let zones = parse_buddyinfo(text)?;
    let order = order as usize;
    ensure!(
        zones.iter().any(|(_, c)| c.len() > order),
        "buddyinfo has no column for order {order}"
    );
    Ok(zones.iter().filter_map(|(_, c)| c.get(order)).sum())
}

fn sample(order: u32) -> Result<u64> {
    free_blocks(
        &std::fs::read_to_string("/proc/buddyinfo").context("cannot read /proc/buddyinfo")?,
        order,
    )
}

/// Releases the held block when dropped, also on an error path.
struct Held<'a>(&'a Path);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, "release\n");
    }
}

#[derive(Debug, Serialize)]
struct BuddyJson {
    order: u32,
    before: u64,
    while_held: u64,
    after: u64,
    held: String,
    /// Hold-and-release attempts made (the last one is reported).
    attempts: u32,
    ok: bool,
}

/// Runs `mapdrv buddy`; false when the count did not behave.
/// (The device is not used: the module's debugfs files are.)
pub fn run(_device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    Debugfs::locate(&args.debugfs)?;
    let order = match args.order {
        Some(o) => o,
        None => {
            let path = args.debugfs.join("layout");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let layout = crate::layout::model::parse_layout(&text)?;
            u32::try_from(layout.num("max_page_order")?).context("max_page_order")?
        }
    };
    let hold = args.debugfs.join("hold");
    // The counts are the whole system's: another CPU may split or free a
    // block of this order between two reads. A held block must show as a
    // drop and its release as a rise in one attempt; a few tries tell that
    // apart from the noise.
    let mut attempts = 0;
    let (before, while_held, after, held, ok) = loop {
        attempts += 1;
        let (before, while_held, after, held) = hold_once(&hold, order)?;
        let ok = while_held < before && after > while_held;
        if ok || attempts >= args.attempts {
            break (before, while_held, after, held, ok);
        }
    };
    if args.json {
        let j = BuddyJson {
            order,
            before,
            while_held,
            after,
            held,
            attempts,
            ok,
        };
        writeln!(out, "{}", serde_json::to_string(&j)?)?;
    } else {
        writeln!(out, "holding: {held}")?;
        writeln!(
            out,
            "free blocks of order {order} in /proc/buddyinfo: before {before}, while held {while_held}, after release {after} (attempt {attempts} of at most {})",
            args.attempts
        )?;
        writeln!(
            out,
            "{}: the count dropped while the block was held and came back after",
            if ok { "PASS" } else { "FAIL" }
        )?;
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
Node 0, zone    DMA32      1      1      1      0      2      1      1      1      1      2    245 
Node 0, zone   Normal      0      1      2      3      4      5      6      7      8      9     10 
";

    #[test]
    fn buddyinfo_parses() {
        let zones = parse_buddyinfo(INFO).unwrap();
        assert_eq!(zones.len(), 2);
        assert_eq!(zones[0].0, "Node 0 DMA32");
        assert_eq!(zones[0].1.len(), 11);
        assert_eq!(free_blocks(INFO, 10).unwrap(), 255);
        assert_eq!(free_blocks(INFO, 0).unwrap(), 1);
        assert!(free_blocks(INFO, 11).is_err());
        assert!(parse_buddyinfo("").is_err());
        assert!(parse_buddyinfo("Node 0, zone DMA32 1 x\n").is_err());
        assert!(parse_buddyinfo("garbage\n").is_err());
    }
}
