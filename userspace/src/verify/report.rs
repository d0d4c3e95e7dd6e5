// SPDX-License-Identifier: GPL-2.0

//! The names of the checks and the report: one `PASS: <name>` or
//! `FAIL: <name>: <why>` line per check, or one JSON object at the end.

use std::io::{self, Write};

use anyhow::Result;
use serde::Serialize;

use crate::fatal;

macro_rules! checks {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Every check of `mapdrv verify`, in the order they run. The names
        /// are part of the interface: tests grep for them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Check {
            $($(#[$doc])* $variant,)*
        }

        impl Check {
            pub const ALL: &[Check] = &[$(Check::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Check::$variant => $name,)*
                }
            }
        }
    };
}

checks! {
    /// MAPDRV_IOC_INFO answers and is self-consistent.
    IoctlInfo = "ioctl-info",
    /// Every page has the initial pattern, read with pread.
    ContentPread = "content-pread",
    /// Every page has the initial pattern, read through a shared mapping.
    ContentMmap = "content-mmap",
    /// Which pages a fresh mapping has present, for the current mode.
    ModeResidency = "mode-residency",
    /// A fault among present pages maps only the missing page, in at most
    /// three vm_insert_pages calls (present runs are skipped in one look).
    RefaultGap = "refault-gap",
    /// A fault that maps up to a 2 MiB boundary gives the next block its page
    /// table (none past a mapping's end, none ahead in huge mode).
    TableAhead = "table-ahead",
    /// debugfs `mode` names the mode MAPDRV_IOC_INFO reports.
    DebugfsMode = "debugfs-mode",
    /// Writing debugfs `mode` switches the mode; a bad name is EINVAL.
    DebugfsModeSwitch = "debugfs-mode-switch",
    /// debugfs `pages` lists every page, virtually contiguous.
    DebugfsPages = "debugfs-pages",
    /// /proc/self/pagemap PFNs equal the PFNs in debugfs `pages`.
    PagemapPfns = "pagemap-pfns",
    /// A MAP_SHARED write is visible to pread.
    SharedWritePread = "shared-write-pread",
    /// A MAP_SHARED write is visible in a second mapping, both ways.
    SharedWriteSecondMapping = "shared-write-second-mapping",
    /// MAP_SHARED writes cross fork() both ways.
    SharedWriteFork = "shared-write-fork",
    /// A MAP_PRIVATE write stays in that mapping.
    PrivateIsolation = "private-isolation",
    /// A first write to a fresh MAP_PRIVATE mapping takes one fault per
    /// page and gets a full copy of the page.
    PrivateWriteFirstTouch = "private-write-first-touch",
    /// Mapping exactly the whole buffer works.
    MmapWholeBuffer = "mmap-whole-buffer",
    /// Mapping exactly the last page works and shows that page.
    MmapLastPage = "mmap-last-page",
    /// An offset at or past the end: EINVAL.
    MmapOffsetPastEnd = "mmap-offset-past-end",
    /// An offset + length past the end: EINVAL.
    MmapLengthPastEnd = "mmap-length-past-end",
    /// The largest offset the core lets through to the driver: EINVAL.
    MmapHugeOffset = "mmap-huge-offset",
    /// An offset whose end wraps past 2^64: refused.
    MmapWrappingOffset = "mmap-wrapping-offset",
    /// An offset that is not page aligned: EINVAL.
    MmapUnalignedOffset = "mmap-unaligned-offset",
    /// A length of 0: EINVAL.
    MmapZeroLength = "mmap-zero-length",
    /// mmap with PROT_EXEC: EPERM.
    MmapProtExec = "mmap-prot-exec",
    /// mprotect(PROT_EXEC) of a mapping: EACCES.
    MprotectExec = "mprotect-exec",
    /// mremap growing a mapping: EFAULT.
    MremapGrow = "mremap-grow",
    /// mremap shrinking a mapping works.
    MremapShrink = "mremap-shrink",
    /// mremap moving a mapping works.
    MremapMove = "mremap-move",
    /// Threads faulting one mapping in different orders all see the same.
    ConcurrentFaults = "concurrent-faults",
    /// pread at or past the end returns 0.
    PreadAtEnd = "pread-at-end",
    /// pread crossing the end is short.
    PreadCrossingEnd = "pread-crossing-end",
    /// pwrite at or past the end: ENOSPC.
    PwriteAtEnd = "pwrite-at-end",
    /// pwrite crossing the end is short.
    PwriteCrossingEnd = "pwrite-crossing-end",
    /// Unknown ioctl commands: ENOTTY.
    IoctlUnknown = "ioctl-unknown",
    /// MAPDRV_IOC_INFO with a NULL or kernel pointer: EFAULT.
    IoctlInfoBadPointer = "ioctl-info-bad-pointer",
    /// lseek: ESPIPE (no llseek hook).
    LseekEspipe = "lseek-espipe",
    /// debugfs `stats` mmaps grows after an mmap.
    StatsMmaps = "stats-mmaps",
    /// debugfs `stats` faults grows after a fault.
    StatsFaults = "stats-faults",
    /// debugfs `stats` bytes_read grows after a pread.
    StatsBytesRead = "stats-bytes-read",
    /// debugfs `stats` bytes_written grows after a pwrite.
    StatsBytesWritten = "stats-bytes-written",
    /// Every byte verify changed is restored; the buffer is as found.
    RestoreContent = "restore-content",
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    checks: &'a [CheckResult],
    passed: usize,
    failed: usize,
}

/// Collects results; in text mode prints each line as soon as it is known
/// (so a crash still leaves the earlier lines).
pub struct Report<'a> {
    results: Vec<CheckResult>,
    json: bool,
    verbose: bool,
    out: &'a mut dyn Write,
}

/// The text line of a result.
pub fn line(r: &CheckResult, verbose: bool) -> String {
    match (r.ok, verbose && !r.detail.is_empty()) {
        (true, false) => format!("PASS: {}", r.name),
        (true, true) => format!("PASS: {}: {}", r.name, r.detail),
        (false, _) => format!("FAIL: {}: {}", r.name, r.detail),
    }
}

/// What verify prints when a fatal signal ends it (see [`fatal`]): a last
/// `FAIL: <check>: <what>` line for the check that was running and a
/// `SUMMARY:` line, on stdout like every other result line, so a reader of
/// the output sees which check it was.
pub fn fatal_lines(name: &[u8], what: &[u8]) {
    let fd = libc::STDOUT_FILENO;
    fatal::write_raw(fd, b"FAIL: ");
    fatal::write_raw(fd, name);
    fatal::write_raw(fd, b": ");
    fatal::write_raw(fd, what);
    fatal::write_raw(fd, b"SUMMARY: aborted by a fatal signal in ");
    fatal::write_raw(fd, name);
    fatal::write_raw(fd, b"\n");
}

/// The summary line.
pub fn summary(results: &[CheckResult]) -> String {
    let failed: Vec<&str> = results.iter().filter(|r| !r.ok).map(|r| r.name).collect();
    let passed = results.len() - failed.len();
    if failed.is_empty() {
        format!("SUMMARY: {passed} passed, 0 failed")
    } else {
        format!(
            "SUMMARY: {passed} passed, {} failed ({})",
            failed.len(),
            failed.join(", ")
        )
    }
}

impl<'a> Report<'a> {
    pub fn new(json: bool, verbose: bool, out: &'a mut dyn Write) -> Report<'a> {
        Report {
            results: Vec::new(),
            json,
            verbose,
            out,
        }
    }

    /// Records an outcome: `Ok(detail)` passes, `Err(why)` fails.
    pub fn record(&mut self, check: Check, outcome: Result<String>) -> io::Result<bool> {
        let result = match outcome {
            Ok(detail) => CheckResult {
                name: check.name(),
                ok: true,
                detail,
            },
            Err(e) => CheckResult {
                name: check.name(),
                ok: false,
                detail: format!("{e:#}").replace('\n', " "),
            },
        };
        if !self.json {
            writeln!(self.out, "{}", line(&result, self.verbose))?;
            self.out.flush()?;
        }
        let ok = result.ok;
        self.results.push(result);
        Ok(ok)
    }

    /// Runs one check, naming it for the fatal-signal handler meanwhile.
    pub fn run(&mut self, check: Check, f: impl FnOnce() -> Result<String>) -> io::Result<bool> {
        fatal::set_current(check.name());
        let outcome = f();
        fatal::set_current("");
        self.record(check, outcome)
    }

    /// Prints the summary (or the JSON object); true when all passed.
    pub fn finish(self) -> Result<bool> {
        let failed = self.results.iter().filter(|r| !r.ok).count();
        if self.json {
            let j = JsonReport {
                checks: &self.results,
                passed: self.results.len() - failed,
                failed,
            };
            writeln!(self.out, "{}", serde_json::to_string(&j)?)?;
        } else {
            writeln!(self.out, "{}", summary(&self.results))?;
        }
        self.out.flush()?;
        Ok(failed == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

    #[test]
    fn names_are_unique_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Check::ALL {
            let n = c.name();
            assert!(seen.insert(n), "duplicate check name {n}");
            assert!(
                n.split('-').all(|w| !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{n} is not kebab-case"
            );
        }
    }

    #[test]
    fn text_lines_and_summary() {
        let mut out = Vec::new();
        let mut r = Report::new(false, false, &mut out);
        r.record(Check::ContentPread, Ok("10 pages".into()))
            .unwrap();
        r.record(
            Check::MmapZeroLength,
            Err(anyhow!("mmap succeeded").context("length 0")),
        )
        .unwrap();
        assert!(!r.finish().unwrap());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "PASS: content-pread\n\
             FAIL: mmap-zero-length: length 0: mmap succeeded\n\
             SUMMARY: 1 passed, 1 failed (mmap-zero-length)\n"
        );
    }

    #[test]
    fn verbose_pass_lines_carry_the_detail() {
        let r = CheckResult {
            name: "content-pread",
            ok: true,
            detail: "10 pages".into(),
        };
        assert_eq!(line(&r, true), "PASS: content-pread: 10 pages");
        assert_eq!(line(&r, false), "PASS: content-pread");
    }

    #[test]
    fn json_report_is_one_object() {
        let mut out = Vec::new();
        let mut r = Report::new(true, false, &mut out);
        r.record(Check::IoctlInfo, Ok("ok".into())).unwrap();
        r.record(Check::LseekEspipe, Err(anyhow!("multi\nline")))
            .unwrap();
        assert!(!r.finish().unwrap());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["passed"], 1);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["checks"][0]["name"], "ioctl-info");
        assert_eq!(v["checks"][0]["ok"], true);
        assert_eq!(v["checks"][1]["detail"], "multi line");
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }
}
