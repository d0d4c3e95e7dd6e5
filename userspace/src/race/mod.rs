// SPDX-License-Identifier: GPL-2.0
//! `mapdrv race`: targeted races between faults on the device's mappings
//! and what changes those mappings under them (MADV_DONTNEED, munmap and
//! MAP_FIXED, mremap, mprotect, fork, close, the driver's mode), each for a
//! few seconds with several threads busy, every read checked.
//!
//! Each scenario runs in a forked process of its own, with counters in
//! memory shared with the parent ([`probe::Tally`]): a SIGBUS or SIGSEGV
//! there is caught by a handler that reports the address and its page and
//! ends the process, and the parent starts the scenario again for the time
//! left; a process that dies otherwise or hangs is a problem too. Where a
//! scenario makes holes in the range on purpose, reads go through
//! process_vm_readv (or, on a kernel without it, a pipe: see
//! [`probe::choose_method`]), which says EFAULT instead of raising a signal;
//! an EFAULT while nothing was changing and the page was mapped readable is
//! a problem ([`maps::Layout`] tells).

mod maps;
mod probe;
mod procs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::abi::{self, Mode};
use crate::child::{self, Ended};
use crate::debugfs::{Debugfs, ModeGuard, Saved};
use crate::device::{Access, Device, Geometry, system_page_size};
use probe::{SharedTally, Tally};

pub const HELP: &str = "\
Races faults on the device's mappings against what changes the mappings
under them, one scenario after the other, each for SECONDS with THREADS
reader threads and one thread that changes things:
  dontneed  MADV_DONTNEED over a 2 MiB-aligned mapping while readers fault
  remap     munmap and mmap again at the same address, and MAP_FIXED over it
  mremap    shrink and grow back, move away and back (MREMAP_FIXED)
  mprotect  PROT_READ, PROT_READ|PROT_WRITE and PROT_NONE on sub-ranges,
            while a writer writes a scratch area and checks it with pread
  fork      a MAP_PRIVATE mapping written by the process and by children it
            forks; the buffer must never see a private write
  close     the last descriptor closed while threads fault through a mapping
  modes     the driver's mode and map_pages switched through debugfs while
            readers map, fault and drop pages (restored at the end)
The first min(512, pages) pages are mapped. Every read is checked against
the buffer as it was at the start (on a fresh load page i starts with
`mapdrv page <i>`); only the last 16 bytes of pages are ever written, and
the buffer is put back. For each scenario, after its problems (at most 10
described): one line
  race <scenario>: <ops> operations (<reads> reads, <n> <mutations>), <n> problems
A problem is a SIGBUS or SIGSEGV inside a valid mapping (with its address and
page), wrong content, a call failing with an unexpected errno (EFAULT from a
read through a hole is expected, not while the page is mapped readable), or
a process that died or hung. Where holes are made on purpose, reads go
through process_vm_readv, or a pipe on kernels without it. Exit status 1 if
any scenario found a problem.

Examples:
  mapdrv race all
  mapdrv race dontneed --seconds 5 --threads 4
  mapdrv race remap mremap --seconds 0.5 --seed 7 --json";

/// The longest a scenario may run.
const MAX_SECONDS: f64 = 3600.0;
/// Pages mapped by the scenarios (2 MiB of 4 KiB pages).
const MAX_MAPPED: usize = 512;
/// How long after its end a scenario's process may take to finish.
const GRACE: Duration = Duration::from_secs(10);
/// Bytes checked at the start of each page.
pub(crate) const HEAD: usize = 16;
/// Bytes at the end of each page that the writing scenarios may write.
pub(crate) const SCRATCH: usize = 16;

/// A scenario, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    All,
    Dontneed,
    Remap,
    Mremap,
    Mprotect,
    Fork,
    Close,
    Modes,
}

impl Scenario {
    /// The scenarios of `all`, in order.
    pub const ORDER: [Scenario; 7] = [
        Scenario::Dontneed,
        Scenario::Remap,
        Scenario::Mremap,
        Scenario::Mprotect,
        Scenario::Fork,
        Scenario::Close,
        Scenario::Modes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::All => "all",
            Scenario::Dontneed => "dontneed",
            Scenario::Remap => "remap",
            Scenario::Mremap => "mremap",
            Scenario::Mprotect => "mprotect",
            Scenario::Fork => "fork",
            Scenario::Close => "close",
            Scenario::Modes => "modes",
        }
    }

    /// What its mutations are, and its second kind of operation if any.
    fn kinds(self) -> (&'static str, Option<&'static str>) {
        match self {
            Scenario::All => ("", None),
            Scenario::Dontneed => ("madvise calls", None),
            Scenario::Remap => ("munmap and mmap calls", None),
            Scenario::Mremap => ("mremap and mmap calls", Some("checks after a move")),
            Scenario::Mprotect => ("mprotect calls", Some("writes")),
            Scenario::Fork => ("forks", Some("private writes")),
            Scenario::Close => ("closes", None),
            Scenario::Modes => ("mode switches", Some("map_pages switches")),
        }
    }

    /// Whether it writes the scratch areas through a shared mapping.
    fn writes_buffer(self) -> bool {
        self == Scenario::Mprotect
    }
}

/// The scenarios to run: `all` expanded, each once, in the order given.
pub fn expand(picked: &[Scenario]) -> Vec<Scenario> {
    let mut out = Vec::new();
    for &p in picked {
        let more: &[Scenario] = if p == Scenario::All {
            &Scenario::ORDER
        } else {
            std::slice::from_ref(&p)
        };
        for &s in more {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// `--seconds`: a positive number, fractions allowed.
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("{s} s: a scenario must run for more than 0 s"));
    }
    if v > MAX_SECONDS {
        return Err(format!("{s} s: at most {MAX_SECONDS} s per scenario"));
    }
    Ok(v)
}

/// Faults raced against madvise, munmap, mremap, mprotect, fork, close, modes.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// The scenarios to run, in order (`all`: every one).
    #[arg(value_enum, required = true, value_name = "SCENARIO")]
    scenarios: Vec<Scenario>,
    /// How long each scenario runs (fractions allowed).
    #[arg(long, value_name = "N", default_value = "2", value_parser = parse_seconds)]
    seconds: f64,
    /// Reader threads (one more thread changes the mappings).
    #[arg(long, value_name = "T", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// The seed of the random choices [default: a random one].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// The driver's debugfs directory (for `modes`).
    #[arg(long, value_name = "DIR", default_value = crate::debugfs::DEFAULT_DIR)]
    debugfs: PathBuf,
    /// Print one JSON object at the end instead.
    #[arg(long)]
    pub json: bool,
}

/// The debugfs files `modes` switches, and their values at the start
/// (guarded: put back after the scenario, and at the latest when dropped).
pub(crate) struct ModeControl {
    pub debugfs: Debugfs,
    pub dir: PathBuf,
    pub mode: Mode,
    /// None when the module has no `map_pages` file.
    pub map_pages: Option<bool>,
    mode_at_start: ModeGuard,
    map_pages_at_start: Option<Saved>,
}

impl ModeControl {
    fn locate(dir: &Path) -> Result<ModeControl> {
        let debugfs = Debugfs::locate(dir)?;
        let mode_at_start = ModeGuard::save(&debugfs).context("reading the mode")?;
        let map_pages = read_map_pages(dir).ok();
        let map_pages_at_start = match map_pages {
            Some(_) => Some(Saved::read(&debugfs, "map_pages")?),
            None => None,
        };
        Ok(ModeControl {
            debugfs,
            dir: dir.to_path_buf(),
            mode: mode_at_start.at_start(),
            map_pages,
            mode_at_start,
            map_pages_at_start,
        })
    }

    /// Puts the mode and map_pages back as they were.
    fn restore(&self) -> Result<()> {
        self.mode_at_start
            .put_back()
            .with_context(|| format!("restoring mode {}", self.mode))?;
        if let Some(saved) = &self.map_pages_at_start {
            saved.put_back().context("restoring map_pages")?;
        }
        Ok(())
    }
}

/// The `map_pages` file: `0` or `1`.
pub(crate) fn read_map_pages(dir: &Path) -> Result<bool> {
    let path = dir.join("map_pages");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    match text.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        t => anyhow::bail!("{} reads {t:?}, not 0 or 1", path.display()),
    }
}

pub(crate) fn write_map_pages(dir: &Path, on: bool) -> std::io::Result<()> {
    std::fs::write(dir.join("map_pages"), if on { "1\n" } else { "0\n" })
}

/// What the scenarios race against.
pub(crate) struct Target<'a> {
    pub dev: &'a Device,
    pub geo: Geometry,
    /// Pages mapped: the first min(512, pages).
    pub pages: usize,
    /// The first `pages` pages as they were at the start.
    pub snapshot: Vec<u8>,
    /// Whether mremap must refuse to grow a mapping (VM_DONTEXPAND).
    pub dontexpand: bool,
    /// What `modes` switches, or why it cannot.
    pub modes: Result<ModeControl, String>,
}

impl Target<'_> {
    pub fn ps(&self) -> usize {
        self.geo.page_size
    }

    /// The first bytes of page `p`, as at the start.
    pub fn head(&self, p: usize) -> &[u8] {
        let at = p * self.ps();
        &self.snapshot[at..at + HEAD]
    }

    /// Byte offset of page `p`'s scratch area in the buffer.
    pub fn scratch_offset(&self, p: usize) -> usize {
        (p + 1) * self.ps() - SCRATCH
    }

    /// Page `p`'s scratch area, as at the start.
    pub fn scratch(&self, p: usize) -> &[u8] {
        let at = self.scratch_offset(p);
        &self.snapshot[at..at + SCRATCH]
    }

    /// Checks what a read of page `p`'s start returned.
    pub fn check_head(&self, p: usize, got: &[u8], via: &str) -> Result<(), String> {
        check_bytes(p, got, self.head(p), via)
    }
}

/// Compares the bytes read from page `page` with what the buffer held.
pub(crate) fn check_bytes(page: usize, got: &[u8], want: &[u8], via: &str) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    Err(format!(
        "page {page} {via} reads \"{}\", the buffer held \"{}\"",
        got.escape_ascii(),
        want.escape_ascii()
    ))
}

/// Whether `head`, the first bytes of page `p`, are those of a fresh load.
fn fresh_head(p: usize, head: &[u8]) -> bool {
    let h = crate::content::header(p);
    let n = h.len().min(head.len());
    head[..n] == h.as_bytes()[..n]
}

/// What a scenario's process gets.
pub(crate) struct Ctx<'a> {
    pub t: &'a Target<'a>,
    pub threads: usize,
    pub until: Instant,
    pub seed: u64,
    pub tally: &'a Tally,
}

impl Ctx<'_> {
    pub fn running(&self) -> bool {
        Instant::now() < self.until
    }

    /// A random generator for thread `k` of this process.
    pub fn rng(&self, k: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ (k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn counts(&self) -> probe::Counts<'_> {
        probe::Counts::new(self.tally)
    }
}

/// What one scenario found.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub name: &'static str,
    pub operations: u64,
    pub reads: u64,
    /// Reads that met a hole where one was allowed (EFAULT).
    pub holes: u64,
    pub mutations: u64,
    pub mutation_kind: &'static str,
    pub extra: u64,
    pub extra_kind: Option<&'static str>,
    /// Processes the scenario ran in (more than 1 after faults).
    pub processes: u64,
    /// From the first fork to the scenario being set up.
    pub setup_ms: f64,
    /// From the end of the race to the scenario's process gone and the
    /// buffer checked and put back.
    pub teardown_ms: f64,
    pub problem_count: u64,
    /// The first problems, described.
    pub problems: Vec<String>,
    pub ok: bool,
}

impl ScenarioReport {
    /// `race <scenario>: <ops> operations (<reads> reads, <n> <what>), <n> problems`.
    pub fn line(&self) -> String {
        let extra = self
            .extra_kind
            .map(|k| format!(", {} {k}", self.extra))
            .unwrap_or_default();
        format!(
            "race {}: {} operations ({} reads, {} {}{extra}), {} problems",
            self.name,
            self.operations,
            self.reads,
            self.mutations,
            self.mutation_kind,
            self.problem_count
        )
    }
}

/// What a run found: `mapdrv race --json` prints it.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub seconds: f64,
    pub threads: usize,
    pub pages: usize,
    pub mapped_pages: usize,
    pub mode: String,
    /// How reads that may meet a hole are made.
    pub hole_reads: &'static str,
    pub scenarios: Vec<ScenarioReport>,
    pub problems: u64,
    /// True when no scenario found a problem.
    pub ok: bool,
}

fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
}

/// The body of a scenario's process: sets up, calls probe::ready, races
/// until ctx.until. An error: it could not be set up.
fn body(s: Scenario) -> fn(&Ctx<'_>) -> Result<(), String> {
    match s {
        Scenario::Dontneed => maps::dontneed,
        Scenario::Remap => maps::remap,
        Scenario::Mremap => maps::mremap,
        Scenario::Mprotect => maps::mprotect,
        Scenario::Fork => procs::fork,
        Scenario::Close => procs::close,
        Scenario::Modes | Scenario::All => procs::modes,
    }
}

/// The scenario's process: `_exit` status 0, SETUP_FAILED or (from the
/// handler) FAULT_EXIT.
fn scenario_process(s: Scenario, ctx: &Ctx<'_>, fd: std::os::fd::RawFd) -> i32 {
    crate::fatal::reset_in_child();
    if let Err(e) = probe::install(fd, ctx.tally, ctx.t.ps()) {
        probe::problem(format!("installing the SIGBUS/SIGSEGV handler: {e}"));
        return probe::SETUP_FAILED;
    }
    match body(s)(ctx) {
        Ok(()) => 0,
        Err(e) => {
            probe::problem(format!("setting up: {e}"));
            probe::SETUP_FAILED
        }
    }
}

/// Runs one scenario until `seconds` are over: in a process, and again in
/// a new one after a fault ended it.
fn run_scenario(s: Scenario, t: &Target<'_>, args: &Args, seed: u64) -> Result<ScenarioReport> {
    let tally = SharedTally::new().context("the shared counters")?;
    let mut told: Vec<String> = Vec::new();
    // Problems the parent finds itself (always described).
    let own = |told: &mut Vec<String>, text: String| {
        tally.problems.fetch_add(1, Ordering::SeqCst);
        told.push(text);
    };
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.seconds);
    let mut setup: Option<Duration> = None;
    let mut processes = 0u64;
    let mut modes_guard = RestoreOnDrop(None);
    if s == Scenario::Modes {
        match &t.modes {
            Ok(m) => modes_guard = RestoreOnDrop(Some(m)),
            Err(why) => own(&mut told, format!("cannot switch modes: {why}")),
        }
    }
    let can_run = s != Scenario::Modes || modes_guard.0.is_some();
    while can_run && Instant::now() < until {
        let ctx = Ctx {
            t,
            threads: usize::from(args.threads),
            until,
            seed: seed ^ processes.wrapping_mul(0x2545_f491_4f6c_dd1d),
            tally: &tally,
        };
        processes += 1;
        let forked = Instant::now();
        // SAFETY: the tool is single-threaded here; the child ends with
        // _exit (child::spawn).
        let proc = unsafe { child::spawn(|fd| scenario_process(s, &ctx, fd)) }?;
        let pid = proc.pid();
        let ended = proc.collect(Some(until + GRACE), |line| {
            if line == "R" {
                setup.get_or_insert_with(|| forked.elapsed());
            } else if let Some(p) = line.strip_prefix("P ") {
                told.push(p.to_string());
            } else if let Some(f) = line.strip_prefix("F ") {
                told.push(
                    probe::FaultReport::parse(f).map_or(format!("a fault: {f}"), |r| r.to_string()),
                );
            } else {
                tally.problems.fetch_add(1, Ordering::SeqCst);
                told.push(format!("process {pid} said {line:?}"));
            }
        })?;
        match ended {
            Ended::Exited(0) | Ended::Exited(probe::SETUP_FAILED) => break,
            // Reported by the handler; go on for the time left.
            Ended::Exited(probe::FAULT_EXIT) => {}
            Ended::Exited(child::PANICKED) => {
                own(&mut told, format!("process {pid} panicked"));
                break;
            }
            Ended::Exited(code) => {
                own(
                    &mut told,
                    format!("process {pid} exited with status {code}"),
                );
                break;
            }
            Ended::Signaled(sig) => own(&mut told, format!("process {pid} was killed by {sig}")),
            Ended::Hung => {
                own(
                    &mut told,
                    format!(
                        "process {pid} still ran {} s after the end of the race: killed (a hang?)",
                        GRACE.as_secs()
                    ),
                );
                break;
            }
        }
    }
    if let Err(e) = modes_guard.restore() {
        own(&mut told, format!("{e:#}"));
    }
    if s == Scenario::Modes && can_run && tally.totals().mutations == 0 {
        own(&mut told, "the mode was never switched".to_string());
    }
    for p in end_check(s, t)? {
        own(&mut told, p);
    }
    let teardown = Instant::now().saturating_duration_since(until);

    let probe::Totals {
        reads,
        mutations,
        extra,
        holes,
    } = tally.totals();
    let (mutation_kind, extra_kind) = s.kinds();
    let problem_count = tally.problems.load(Ordering::SeqCst);
    Ok(ScenarioReport {
        name: s.name(),
        operations: reads + mutations + extra,
        reads,
        holes,
        mutations,
        mutation_kind,
        extra,
        extra_kind,
        processes,
        setup_ms: setup.unwrap_or_default().as_secs_f64() * 1e3,
        teardown_ms: teardown.as_secs_f64() * 1e3,
        problem_count,
        problems: told,
        ok: problem_count == 0,
    })
}

/// Puts the mode back, also when a scenario's run ends early (an error).
struct RestoreOnDrop<'a>(Option<&'a ModeControl>);

impl RestoreOnDrop<'_> {
    fn restore(mut self) -> Result<()> {
        self.0.take().map_or(Ok(()), ModeControl::restore)
    }
}

impl Drop for RestoreOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            let _ = m.restore();
        }
    }
}

/// After a scenario: the mapped pages hold what they held at the start
/// (but the scratch areas of a scenario that writes them); then they are
/// put back as they were.
fn end_check(s: Scenario, t: &Target<'_>) -> Result<Vec<String>> {
    let now = match t.dev.read_exact_at(0, t.snapshot.len()) {
        Ok(now) => now,
        Err(e) => {
            return Ok(vec![format!(
                "reading the buffer back after the race: {e:#}"
            )]);
        }
    };
    let mut problems = Vec::new();
    let ps = t.ps();
    let differ: Vec<usize> = (0..now.len())
        .filter(|&i| now[i] != t.snapshot[i])
        .filter(|&i| !(s.writes_buffer() && i % ps >= ps - SCRATCH))
        .collect();
    if let Some(&i) = differ.first() {
        problems.push(format!(
            "after the race {} bytes of the buffer differ; the first, byte {:#x} of page {}, is {:#04x}, it was {:#04x}",
            differ.len(),
            i % ps,
            i / ps,
            now[i],
            t.snapshot[i]
        ));
    }
    if now != t.snapshot {
        t.dev
            .write_all_at(0, &t.snapshot)
            .context("putting the buffer back")?;
    }
    Ok(problems)
}

/// Runs `mapdrv race`, telling `out` as it goes (or, with --json, printing
/// only the summary); false when a check failed.
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    let summary = crate::summary::summarised(args.json, out, |w| race(device, args, w))?;
    Ok(summary.ok)
}

/// The races themselves, reporting to `out`.
fn race(device: &Path, args: &Args, out: &mut dyn Write) -> Result<Summary> {
    let scenarios = expand(&args.scenarios);
    let dev = Device::open(device, Access::ReadWrite)?;
    let (info, geo) = dev.geometry()?;
    let ps = system_page_size()?;
    ensure!(
        geo.page_size == ps,
        "the device's page size {} is not ours ({ps})",
        geo.page_size
    );
    let pages = geo.pages.min(MAX_MAPPED);
    let snapshot = dev.read_exact_at(0, pages * ps)?;
    let modes = if scenarios.contains(&Scenario::Modes) {
        ModeControl::locate(&args.debugfs).map_err(|e| format!("{e:#}"))
    } else {
        Err("not needed".to_string())
    };
    let t = Target {
        dev: &dev,
        geo,
        pages,
        snapshot,
        dontexpand: true,
        modes,
    };
    let seed = args.seed.unwrap_or_else(random_seed);
    let hole_reads = probe::choose_method();
    writeln!(
        out,
        "race: seed {seed}, {} reader threads, {} s per scenario, mode {}, {pages} of {} pages mapped, \
         reads through holes by {hole_reads}",
        args.threads,
        args.seconds,
        abi::mode_name(info.mode),
        geo.pages
    )?;
    if let Some(p) = (0..pages).find(|&p| !fresh_head(p, t.head(p))) {
        writeln!(
            out,
            "race: note: page {p} does not start with \"mapdrv page {p}\" (not a fresh load): \
             reads are checked against what the buffer holds now"
        )?;
    }
    out.flush()?;
    let mut reports = Vec::new();
    for (i, &s) in scenarios.iter().enumerate() {
        let r = run_scenario(s, &t, args, seed ^ ((i as u64 + 1) << 56))?;
        // The processes describe the first few of their problems, the
        // parent all of its own: a short list either way.
        for p in &r.problems {
            writeln!(out, "race {}: problem: {p}", r.name)?;
        }
        let untold = r.problem_count.saturating_sub(r.problems.len() as u64);
        if untold > 0 {
            writeln!(out, "race {}: ... and {untold} more problems", r.name)?;
        }
        writeln!(out, "{}", r.line())?;
        out.flush()?;
        reports.push(r);
    }
    let problems = reports.iter().map(|r| r.problem_count).sum();
    Ok(Summary {
        seed,
        seconds: args.seconds,
        threads: usize::from(args.threads),
        pages: geo.pages,
        mapped_pages: pages,
        mode: abi::mode_name(info.mode),
        hole_reads,
        scenarios: reports,
        problems,
        ok: problems == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        race: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("race").chain(args.iter().copied())).map(|c| c.race)
    }

    #[test]
    fn defaults_and_fractions() {
        let a = parse(&["all"]).unwrap();
        assert_eq!(
            (a.seconds, a.threads, a.seed, a.json),
            (2.0, 3, None, false)
        );
        let a = parse(&[
            "dontneed",
            "remap",
            "--seconds",
            "0.5",
            "--threads",
            "8",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(a.scenarios, [Scenario::Dontneed, Scenario::Remap]);
        assert_eq!((a.seconds, a.threads, a.seed), (0.5, 8, Some(7)));
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            &["all", "--seconds", "0"][..],
            &["all", "--seconds", "-1"],
            &["all", "--seconds", "nan"],
            &["all", "--seconds", "inf"],
            &["all", "--seconds", "1e9"],
            &["all", "--seconds", "soon"],
            &["all", "--threads", "0"],
            &["all", "--threads", "65"],
            &["all", "--threads", "100000"],
            &["sideways"],
            &[],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let e = parse(&["all", "--seconds", "0"]).unwrap_err().to_string();
        assert!(e.contains("more than 0 s"), "{e}");
        let e = parse(&["sideways"]).unwrap_err().to_string();
        assert!(e.contains("dontneed") && e.contains("modes"), "{e}");
    }

    #[test]
    fn all_is_every_scenario_in_order_once() {
        let names: Vec<&str> = expand(&[Scenario::All]).iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "dontneed", "remap", "mremap", "mprotect", "fork", "close", "modes"
            ]
        );
        assert_eq!(
            expand(&[Scenario::Fork, Scenario::All, Scenario::Fork]).len(),
            Scenario::ORDER.len()
        );
        assert_eq!(expand(&[Scenario::Fork, Scenario::All])[0], Scenario::Fork);
        for s in Scenario::ORDER {
            let v = clap::ValueEnum::to_possible_value(&s).unwrap();
            assert_eq!(v.get_name(), s.name());
            assert!(!s.kinds().0.is_empty());
        }
    }

    #[test]
    fn the_summary_line_reads_as_documented() {
        let r = ScenarioReport {
            name: "mprotect",
            operations: 130,
            reads: 100,
            holes: 3,
            mutations: 20,
            mutation_kind: "mprotect calls",
            extra: 10,
            extra_kind: Some("writes"),
            processes: 1,
            setup_ms: 1.0,
            teardown_ms: 1.0,
            problem_count: 0,
            problems: vec![],
            ok: true,
        };
        assert_eq!(
            r.line(),
            "race mprotect: 130 operations (100 reads, 20 mprotect calls, 10 writes), 0 problems"
        );
    }

    #[test]
    fn heads_are_checked() {
        assert!(fresh_head(12, b"mapdrv page 12\n\0"));
        assert!(fresh_head(1234, b"mapdrv page 1234"));
        assert!(!fresh_head(13, b"mapdrv page 12\n\0"));
        assert_eq!(check_bytes(3, b"ab", b"ab", "via x"), Ok(()));
        assert_eq!(
            check_bytes(3, b"a\0", b"ab", "through the mapping").unwrap_err(),
            "page 3 through the mapping reads \"a\\x00\", the buffer held \"ab\""
        );
    }

    /// An ordinary file laid out like the buffer, and a target for it.
    fn file_target(pages: usize) -> (tempfile::NamedTempFile, Device, Vec<u8>) {
        let ps = system_page_size().unwrap();
        let mut content = vec![0u8; pages * ps];
        for p in 0..pages {
            let h = crate::content::header(p);
            content[p * ps..p * ps + h.len()].copy_from_slice(h.as_bytes());
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &content).unwrap();
        let dev = Device::open(file.path(), Access::ReadWrite).unwrap();
        (file, dev, content)
    }

    fn target<'a>(dev: &'a Device, snapshot: &[u8]) -> Target<'a> {
        let ps = system_page_size().unwrap();
        let pages = snapshot.len() / ps;
        Target {
            dev,
            geo: Geometry {
                pages,
                page_size: ps,
                size: pages * ps,
            },
            pages,
            snapshot: snapshot.to_vec(),
            dontexpand: false,
            modes: Err("no debugfs here".into()),
        }
    }

    /// Runs `s` until a run is `done`, at most 50 times, `each` checking
    /// every run. How much a short run does depends on scheduling: on a
    /// loaded machine (a make test runs the tool's tests beside two guests)
    /// a process may start only when its time is nearly over and read
    /// nothing, which says nothing about the code under test.
    fn run_until(
        s: Scenario,
        t: &Target<'_>,
        args: &Args,
        mut each: impl FnMut(&ScenarioReport),
        done: impl Fn(&ScenarioReport) -> bool,
    ) -> ScenarioReport {
        let mut last = None;
        for _ in 0..50 {
            let r = run_scenario(s, t, args, 1).unwrap();
            each(&r);
            if done(&r) {
                return r;
            }
            last = Some(r);
        }
        let last = last.map(|r| format!("{}: {:?}", r.line(), r.problems));
        panic!("{s:?}: no run in 50 was done; the last: {last:?}");
    }

    /// Every scenario but `modes` against an ordinary file: no problem,
    /// some of everything, the file as it was.
    #[test]
    fn scenarios_run_clean_on_an_ordinary_file() {
        let (file, dev, content) = file_target(40);
        let t = target(&dev, &content);
        let args = parse(&["all", "--seconds", "0.2", "--threads", "2"]).unwrap();
        for s in &Scenario::ORDER[..6] {
            let each = |r: &ScenarioReport| {
                assert!(r.ok, "{}: {:?}", r.line(), r.problems);
                assert_eq!(r.processes, 1, "{}", r.line());
            };
            run_until(*s, &t, &args, each, |r| r.reads > 0 && r.mutations > 0);
        }
        assert_eq!(std::fs::read(file.path()).unwrap(), content);
        let r = run_scenario(Scenario::Modes, &t, &args, 1).unwrap();
        assert!(
            !r.ok && r.problems[0].contains("cannot switch modes"),
            "{:?}",
            r.problems
        );
    }

    /// The scenarios with holes, reading and writing through a pipe.
    #[test]
    fn scenarios_run_clean_through_a_pipe() {
        let (_file, dev, content) = file_target(40);
        let t = target(&dev, &content);
        let args = parse(&["all", "--seconds", "0.2", "--threads", "2"]).unwrap();
        probe::use_pipe();
        for s in [Scenario::Remap, Scenario::Mremap, Scenario::Mprotect] {
            // Whether a reader meets a hole within one short run depends on
            // scheduling too (a loaded machine may run the readers only after
            // the mutator is done); every run must be clean.
            let each = |r: &ScenarioReport| assert!(r.ok, "{}: {:?}", r.line(), r.problems);
            run_until(s, &t, &args, each, |r| r.holes > 0 && r.mutations > 0);
        }
    }

    /// Content that is not what the buffer held is a problem in every
    /// scenario.
    #[test]
    fn wrong_content_is_found_by_every_scenario() {
        let (file, dev, content) = file_target(40);
        let ps = system_page_size().unwrap();
        let mut wrong = content.clone();
        wrong[3 * ps + 2] = b'X';
        let t = target(&dev, &wrong);
        let args = parse(&["all", "--seconds", "0.1", "--threads", "2"]).unwrap();
        let names_page_3 = |r: &ScenarioReport| {
            r.problems
                .iter()
                .any(|p| p.contains("page 3 ") || p.contains("page 3:"))
        };
        for s in &Scenario::ORDER[..6] {
            // The end check put the "snapshot" back: undo it.
            let each = |_: &ScenarioReport| std::fs::write(file.path(), &content).unwrap();
            run_until(*s, &t, &args, each, |r| {
                r.problem_count > 0 && names_page_3(r)
            });
        }
    }

    /// Pages past the end of a file raise SIGBUS: reported with the page,
    /// and the scenario goes on in a new process.
    #[test]
    fn a_sigbus_is_reported_with_its_page() {
        let (file, dev, content) = file_target(40);
        let t = target(&dev, &content);
        let ps = system_page_size().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(file.path())
            .unwrap();
        f.set_len(20 * ps as u64).unwrap();
        let args = parse(&["dontneed", "--seconds", "0.2", "--threads", "2"]).unwrap();
        let sigbus = |r: &ScenarioReport| -> Vec<String> {
            let p = r.problems.iter();
            p.filter(|p| p.starts_with("SIGBUS (BUS_ADRERR) at 0x"))
                .cloned()
                .collect()
        };
        // Every SIGBUS of every run names a page past the end of the file.
        let each = |r: &ScenarioReport| {
            for p in sigbus(r) {
                let page: usize = p
                    .split("page ")
                    .nth(1)
                    .and_then(|s| s.split(' ').next())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((20..40).contains(&page), "{p}");
                assert!(p.contains("while the mapping was valid"), "{p}");
            }
        };
        run_until(Scenario::Dontneed, &t, &args, each, |r| {
            !sigbus(r).is_empty() && r.processes > 1
        });
    }
}
