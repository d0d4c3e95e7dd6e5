// SPDX-License-Identifier: GPL-2.0
//! `mapdrv stress`: several processes, each with several threads, fault,
//! map, remap and unmap the device at the same time for a while; then the
//! buffer is checked byte for byte.
//!
//! Each worker (one thread of one process) owns one 8-byte slot of the
//! buffer, in the second half of a page (page headers are at the start), and
//! only it writes there: through a shared mapping, with pwrite, or (never
//! reaching the buffer) through a private mapping. So every read a worker
//! makes has one right answer, whatever the others do: its own slot holds
//! the last value it wrote, every other byte what the buffer held at the
//! start (slots of others are skipped). At the end the parent checks every
//! slot and every other byte, by pread and through a fresh mapping, and puts
//! the buffer back as it was.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::mman::{MmapAdvise, ProtFlags};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::abi::Mode;
use crate::child::{self, Child, Ended};
use crate::debugfs::{Debugfs, ModeGuard};
use crate::device::{Access, Device, Geometry, Share, system_page_size};
use crate::mapping::Mapping;

pub const HELP: &str = "\
Runs PROCS processes of THREADS threads each for SECONDS seconds. Each
thread, over and over and in random order: maps a range of the device
shared and stores a new value into its own 8-byte slot, then checks it with
pread; pwrites its slot and reads it back through a new mapping; writes
through a private mapping and checks the buffer did not change; maps a range
read-only, faults it in, drops it (MADV_DONTNEED) and faults it in again;
shrinks and moves mappings with mremap; opens and closes the device. Every
read is checked. Meanwhile the driver's mode is switched every 50 ms through
debugfs (fault, faultaround, prefault, huge in turn; each switch read back from
the mode file and counted), so all four fault paths run at once. At the
end every byte of the buffer is checked and the buffer and mode are put
back. Exit status 1 on any wrong byte, failed call or failed mode switch.

Examples:
  mapdrv stress --threads 4 --procs 2 --seconds 30
  mapdrv stress --threads 8 --procs 4 --seconds 600 --seed 42
  mapdrv stress --seconds 10 --seed 1 --json";

/// Concurrent mapping, faulting and unmapping from processes and threads.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// Threads per process.
    #[arg(long, value_name = "T", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Processes.
    #[arg(long, value_name = "P", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    procs: u16,
    /// How long.
    #[arg(long, value_name = "N", default_value_t = 30)]
    seconds: u64,
    /// The seed of the workers' random choices [default: a random one].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Do not switch the driver's mode during the run.
    #[arg(long)]
    no_mode_switch: bool,
    /// The driver's debugfs directory.
    #[arg(long, value_name = "DIR", default_value = crate::debugfs::DEFAULT_DIR)]
    debugfs: PathBuf,
    /// Print only a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

/// How often the mode switches during a run.
const SWITCH_EVERY: Duration = Duration::from_millis(50);

/// The mode switches of a run: those the mode file confirmed, and the
/// ones that went wrong.
#[derive(Debug)]
pub(crate) struct Switches {
    /// The mode the driver is in, as last read back.
    current: Mode,
    pub(crate) done: u64,
    pub(crate) failed: u64,
    /// The first few failures.
    pub(crate) errors: Vec<String>,
}

impl Switches {
    pub(crate) fn new(start: Mode) -> Switches {
        Switches {
            current: start,
            done: 0,
            failed: 0,
            errors: Vec::new(),
        }
    }

    /// The mode to switch to next: the one after the current one in
    /// fault, faultaround, prefault, huge, so never the current one itself.
    pub(crate) fn next(&self) -> Mode {
        let i = Mode::ALL.iter().position(|&m| m == self.current);
        Mode::ALL[i.map_or(0, |i| (i + 1) % Mode::ALL.len())]
    }

    /// Records a switch to `to`: `read_back` is what the mode file said
    /// afterwards, or why writing or reading it failed. Only a change to
    /// `to` that the file confirms counts as a switch.
    pub(crate) fn record(&mut self, to: Mode, read_back: Result<Mode, String>) {
        let error = match read_back {
            Ok(m) if m == to && m != self.current => {
                self.current = m;
                self.done += 1;
                return;
            }
            Ok(m) => {
                let e = format!(
                    "switched the mode from {} to {to}, it reads {m}",
                    self.current
                );
                self.current = m;
                e
            }
            Err(e) => format!("switching the mode from {} to {to}: {e}", self.current),
        };
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error);
        }
    }
}

/// Writes `to` to the mode file and reads it back.
pub(crate) fn switch_mode(d: &Debugfs, to: Mode) -> Result<Mode, String> {
    d.write_mode(to.name())
        .map_err(|e| format!("writing the mode file: {e}"))?;
    d.mode().map_err(|e| format!("{e:#}"))
}

/// Where the slots start in a page: after the header line.
const SLOT_BASE_FRACTION: usize = 2;
/// Most errors a worker reports in detail.
const MAX_ERRORS: usize = 5;

/// The byte offset of worker `w`'s slot.
fn slot_offset(w: usize, geo: &Geometry) -> usize {
    let base = geo.page_size / SLOT_BASE_FRACTION;
    (w % geo.pages) * geo.page_size + base + (w / geo.pages) * 8
}

/// How many slots the buffer has room for.
fn slot_capacity(geo: &Geometry) -> usize {
    geo.pages * (geo.page_size - geo.page_size / SLOT_BASE_FRACTION) / 8
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WorkerReport {
    id: usize,
    /// The value the slot must hold now.
    last: u64,
    ops: BTreeMap<String, u64>,
    errors: Vec<String>,
    error_count: u64,
}

/// What every worker needs.
struct Shared<'a> {
    dev: &'a Device,
    geo: Geometry,
    initial: &'a [u8],
    /// Slot offsets of all workers, to skip them when comparing.
    slots: Vec<usize>,
    until: Instant,
}

impl Shared<'_> {
    /// Compares `got` (buffer bytes from `offset`) with the initial content,
    /// except at the workers' slots (each checked by its owner).
    fn check_unchanged(&self, offset: usize, got: &[u8]) -> Result<(), String> {
        for (i, b) in got.iter().enumerate() {
            let at = offset + i;
            if *b != self.initial[at] && !self.in_a_slot(at) {
                return Err(format!(
                    "byte {at:#x} is {b:#04x}, it was {:#04x} and nobody writes there",
                    self.initial[at]
                ));
            }
        }
        Ok(())
    }

    fn in_a_slot(&self, at: usize) -> bool {
        self.slots.iter().any(|&s| (s..s + 8).contains(&at))
    }
}

struct Worker<'a> {
    sh: &'a Shared<'a>,
    id: usize,
    slot: usize,
    rng: ChaCha8Rng,
    counter: u64,
    report: WorkerReport,
}

const RW: ProtFlags = ProtFlags::PROT_READ.union(ProtFlags::PROT_WRITE);
const RO: ProtFlags = ProtFlags::PROT_READ;

impl Worker<'_> {
    fn next_value(&mut self) -> u64 {
        self.counter += 1;
        ((self.id as u64 + 1) << 40) | self.counter
    }

    fn fail(&mut self, what: &str, why: String) {
        self.report.error_count += 1;
        if self.report.errors.len() < MAX_ERRORS {
            self.report
                .errors
                .push(format!("worker {}: {what}: {why}", self.id));
        }
    }

    fn count(&mut self, what: &str) {
        *self.report.ops.entry(what.to_string()).or_default() += 1;
    }

    /// A range of pages that holds page `must` (if any), up to 8 pages.
    fn range(&mut self, must: Option<usize>) -> (usize, usize) {
        let pages = self.sh.geo.pages;
        let n = self.rng.random_range(1..=pages.min(8));
        let first = match must {
            Some(p) => {
                let lo = (p + 1).saturating_sub(n);
                let hi = p.min(pages - n);
                self.rng.random_range(lo..=hi)
            }
            None => self.rng.random_range(0..=pages - n),
        };
        (first, n)
    }

    fn map(
        &mut self,
        first: usize,
        n: usize,
        prot: ProtFlags,
        share: Share,
    ) -> Result<Mapping, String> {
        let ps = self.sh.geo.page_size;
        self.count("mmap");
        self.sh
            .dev
            .map((first * ps) as u64, n * ps, prot, share)
            .map_err(|e| format!("mmap of pages {first}+{n} ({share:?}): {e}"))
    }

    fn slot_via_pread(&mut self) -> Result<u64, String> {
        self.count("pread");
        let b = self
            .sh
            .dev
            .read_exact_at(self.slot, 8)
            .map_err(|e| format!("{e:#}"))?;
        Ok(u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    }

    fn read_u64(map: &Mapping, at: usize) -> u64 {
        u64::from_ne_bytes(map.read_vec(at, 8).try_into().unwrap_or_default())
    }

    fn write_u64(map: &Mapping, at: usize, v: u64) {
        for (i, b) in v.to_ne_bytes().iter().enumerate() {
            map.write_u8(at + i, *b);
        }
    }

    /// Shared mapping, store, check by pread.
    fn map_store(&mut self) -> Result<(), String> {
        let ps = self.sh.geo.page_size;
        let (first, n) = self.range(Some(self.slot / ps));
        let map = self.map(first, n, RW, Share::Shared)?;
        let v = self.next_value();
        let at = self.slot - first * ps;
        Self::write_u64(&map, at, v);
        self.count("store");
        self.report.last = v;
        let seen = self.slot_via_pread()?;
        if seen != v {
            return Err(format!(
                "stored {v:#x} through a mapping, pread reads {seen:#x}"
            ));
        }
        let back = Self::read_u64(&map, at);
        if back != v {
            return Err(format!("stored {v:#x}, the mapping reads back {back:#x}"));
        }
        Ok(())
    }

    /// pwrite, then read through a new read-only mapping.
    fn pwrite_load(&mut self) -> Result<(), String> {
        let ps = self.sh.geo.page_size;
        let v = self.next_value();
        self.count("pwrite");
        self.sh
            .dev
            .write_all_at(self.slot, &v.to_ne_bytes())
            .map_err(|e| format!("{e:#}"))?;
        self.report.last = v;
        let (first, n) = self.range(Some(self.slot / ps));
        let map = self.map(first, n, RO, Share::Shared)?;
        self.count("load");
        let seen = Self::read_u64(&map, self.slot - first * ps);
        if seen != v {
            return Err(format!("pwrote {v:#x}, a new mapping reads {seen:#x}"));
        }
        Ok(())
    }

    /// Private mapping: the store stays private.
    fn private_store(&mut self) -> Result<(), String> {
        let ps = self.sh.geo.page_size;
        let (first, n) = self.range(Some(self.slot / ps));
        let map = self.map(first, n, RW, Share::Private)?;
        let at = self.slot - first * ps;
        let junk = self.rng.random::<u64>() | 1;
        Self::write_u64(&map, at, junk);
        self.count("private-store");
        let seen = self.slot_via_pread()?;
        if seen != self.report.last {
            return Err(format!(
                "a MAP_PRIVATE store of {junk:#x} reached the buffer: pread reads {seen:#x}, expected {:#x}",
                self.report.last
            ));
        }
        Ok(())
    }

    /// Read-only mapping of any pages: fault, compare, drop, fault again.
    fn fault_range(&mut self) -> Result<(), String> {
        let ps = self.sh.geo.page_size;
        let (first, n) = self.range(None);
        let map = self.map(first, n, RO, Share::Shared)?;
        for round in 0..2 {
            for p in 0..n {
                let header = map.read_vec(p * ps, 64);
                self.count("fault");
                self.sh
                    .check_unchanged((first + p) * ps, &header)
                    .map_err(|e| format!("page {} through a mapping: {e}", first + p))?;
            }
            if round == 0 {
                // Drops the page table entries only: the pages are faulted
                // in again from the device on the next round.
                map.advise(MmapAdvise::MADV_DONTNEED)
                    .map_err(|e| format!("madvise DONTNEED: {e}"))?;
                self.count("madvise");
            }
        }
        Ok(())
    }

    /// mremap: shrink in place or move.
    fn remap(&mut self) -> Result<(), String> {
        let ps = self.sh.geo.page_size;
        if self.sh.geo.pages < 2 {
            return Ok(());
        }
        let (first, n) = self.range(None);
        let n = n.max(2).min(self.sh.geo.pages - first);
        if n < 2 {
            return Ok(());
        }
        let mut map = self.map(first, n, RO, Share::Shared)?;
        let keep = self.rng.random_range(1..n);
        self.count("mremap");
        if self.rng.random_ratio(1, 2) {
            map.remap(keep * ps, false)
                .map_err(|e| format!("mremap shrink {n} -> {keep} pages: {e}"))?;
        } else {
            let target = Mapping::reserve(n * ps).map_err(|e| format!("reservation: {e}"))?;
            map.move_onto(target)
                .map_err(|e| format!("mremap move: {e}"))?;
        }
        let len = map.len() / ps;
        for p in 0..len {
            let header = map.read_vec(p * ps, 64);
            self.count("fault");
            self.sh
                .check_unchanged((first + p) * ps, &header)
                .map_err(|e| format!("page {} after mremap: {e}", first + p))?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.count("open");
        let dev =
            Device::open(self.sh.dev.path(), Access::ReadOnly).map_err(|e| format!("{e:#}"))?;
        let ps = self.sh.geo.page_size;
        let map = dev
            .map((self.slot / ps * ps) as u64, ps, RO, Share::Shared)
            .map_err(|e| format!("mmap of a new file: {e}"))?;
        // The mapping outlives the file: close first, then read.
        drop(dev);
        self.count("load");
        let seen = Self::read_u64(&map, self.slot % ps);
        if seen != self.report.last {
            return Err(format!(
                "a mapping of a closed file reads {seen:#x} at my slot, expected {:#x}",
                self.report.last
            ));
        }
        Ok(())
    }

    fn run(mut self) -> WorkerReport {
        while Instant::now() < self.sh.until {
            let (what, r) = match self.rng.random_range(0..12) {
                0..=2 => ("map-store", self.map_store()),
                3..=4 => ("pwrite-load", self.pwrite_load()),
                5..=6 => ("private-store", self.private_store()),
                7..=9 => ("fault-range", self.fault_range()),
                10 => ("remap", self.remap()),
                _ => ("reopen", self.reopen()),
            };
            if let Err(e) = r {
                self.fail(what, e);
            }
        }
        self.report
    }
}

/// One process: `threads` workers from `first_id`.
fn child(sh: &Shared<'_>, first_id: usize, threads: usize, seed: u64) -> Vec<WorkerReport> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (first_id..first_id + threads)
            .map(|id| {
                let w = Worker {
                    sh,
                    id,
                    slot: sh.slots[id],
                    rng: ChaCha8Rng::seed_from_u64(
                        seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ),
                    counter: 0,
                    report: WorkerReport {
                        id,
                        last: u64::from_ne_bytes(
                            sh.initial[sh.slots[id]..sh.slots[id] + 8]
                                .try_into()
                                .unwrap_or_default(),
                        ),
                        ..WorkerReport::default()
                    },
                };
                s.spawn(move || w.run())
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join().unwrap_or_else(|_| WorkerReport {
                    id: first_id + i,
                    errors: vec![format!("worker {} panicked", first_id + i)],
                    error_count: 1,
                    ..WorkerReport::default()
                })
            })
            .collect()
    })
}

/// What a run found: `mapdrv stress --json` prints it.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub procs: usize,
    pub threads: usize,
    pub seconds: u64,
    /// Workers that sent their report (procs x threads when all went well).
    pub workers_reported: usize,
    pub operations: u64,
    /// Operations by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Mode switches the mode file confirmed (0 with --no-mode-switch).
    pub mode_switches: u64,
    /// Checks that failed during the run.
    pub failed_checks: u64,
    /// What went wrong (at most a few per worker), then the end checks.
    pub problems: Vec<String>,
    /// True when every check held.
    pub ok: bool,
}

/// How long a process may still run after the end of the run before it
/// counts as hung and is killed: its workers only finish the operation in
/// hand, which takes far less even on an emulated machine.
const GRACE: Duration = Duration::from_secs(60);

/// What a run starts from: the device, its content, the seed and, unless
/// the mode stays put, the mode to switch from (set back when dropped).
struct Setup {
    dev: Device,
    geo: Geometry,
    initial: Vec<u8>,
    seed: u64,
    modes: Option<(Debugfs, ModeGuard)>,
}

/// Opens the device, checks the run fits in its buffer, and reads what
/// the end checks compare with.
fn prepare(args: &Args, device: &Path, workers: usize) -> Result<Setup> {
    let dev = Device::open(device, Access::ReadWrite)?;
    let (_info, geo) = dev.geometry()?;
    ensure!(
        geo.page_size == system_page_size()?,
        "the device's page size is not ours"
    );
    if workers > slot_capacity(&geo) {
        bail!(
            "{workers} workers need {workers} slots of 8 bytes; a {}-page buffer has room for {}",
            geo.pages,
            slot_capacity(&geo)
        );
    }
    let initial = dev.read_exact_at(0, geo.size)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // A run that claims to switch modes must be able to.
    let modes = if args.no_mode_switch {
        None
    } else {
        let d = Debugfs::locate(&args.debugfs)
            .context("cannot switch the mode (--no-mode-switch runs without)")?;
        let guard = ModeGuard::save(&d).context("reading the mode")?;
        Some((d, guard))
    };
    Ok(Setup {
        dev,
        geo,
        initial,
        seed,
        modes,
    })
}

/// Forks the processes, each running `threads` workers that send their
/// reports back as one JSON line. Called before this process has any
/// other thread.
fn fork_processes(sh: &Shared<'_>, procs: usize, threads: usize, seed: u64) -> Result<Vec<Child>> {
    (0..procs)
        .map(|p| {
            // SAFETY: still single-threaded (the mode switcher starts after
            // the forks), so the child may allocate; it runs its workers,
            // writes to the pipe and leaves with _exit (child::spawn).
            unsafe {
                child::spawn(|fd| {
                    crate::fatal::reset_in_child();
                    let reports = child(sh, p * threads, threads, seed);
                    match serde_json::to_vec(&reports) {
                        Ok(mut line) => {
                            line.push(b'\n');
                            child::write_all(fd, &line);
                            0
                        }
                        Err(_) => 1,
                    }
                })
            }
        })
        .collect()
}

/// Switches the mode every SWITCH_EVERY, at once first (so that even a
/// run of 0 s switches once), until `stop`.
fn switch_modes(d: &Debugfs, start: Mode, stop: &AtomicBool) -> Switches {
    let mut sw = Switches::new(start);
    loop {
        let to = sw.next();
        sw.record(to, switch_mode(d, to));
        if stop.load(Ordering::Relaxed) {
            return sw;
        }
        std::thread::sleep(SWITCH_EVERY);
    }
}

/// Waits for one process and takes its workers' reports; what went wrong
/// goes to `problems`.
fn collect_process(
    kid: Child,
    kill_at: Instant,
    reports: &mut Vec<WorkerReport>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let pid = kid.pid();
    let mut text = String::new();
    match kid.collect(Some(kill_at), |line| text.push_str(line))? {
        Ended::Signaled(sig) => problems.push(format!(
            "process {pid} was killed by signal {} (a SIGBUS or SIGSEGV touching a mapping?)",
            sig as i32
        )),
        Ended::Hung => problems.push(format!(
            "process {pid} still ran {} s after the end of the run: killed (a hang?)",
            GRACE.as_secs()
        )),
        Ended::Exited(_) => {}
    }
    match serde_json::from_str::<Vec<WorkerReport>>(&text) {
        Ok(r) => reports.extend(r),
        Err(_) => problems.push(format!("process {pid} sent no report")),
    }
    Ok(())
}

/// What the processes did while the mode switched under them.
struct Outcome {
    reports: Vec<WorkerReport>,
    problems: Vec<String>,
    switches: Option<Switches>,
}

/// Collects every process, switching the mode meanwhile (if `modes`).
fn run_processes(
    kids: Vec<Child>,
    kill_at: Instant,
    modes: Option<&(Debugfs, ModeGuard)>,
) -> Result<Outcome> {
    let stop = AtomicBool::new(false);
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    let switches = std::thread::scope(|s| -> Result<Option<Switches>> {
        let switcher = modes.map(|(d, guard)| {
            let stop = &stop;
            s.spawn(move || switch_modes(d, guard.at_start(), stop))
        });
        let collected = kids
            .into_iter()
            .try_for_each(|kid| collect_process(kid, kill_at, &mut reports, &mut problems));
        stop.store(true, Ordering::Relaxed);
        let joined = switcher.map(|h| h.join());
        collected?;
        Ok(joined.and_then(|r| {
            r.map_err(|_| problems.push("the mode switching thread panicked".into()))
                .ok()
        }))
    })?;
    Ok(Outcome {
        reports,
        problems,
        switches,
    })
}

/// The end: every slot holds its worker's last value, every other byte is
/// as it was; by pread and through a fresh mapping. Then the buffer is put
/// back as it was.
fn check_buffer(setup: &Setup, slots: &[usize], reports: &[WorkerReport]) -> Result<Vec<String>> {
    let (dev, size) = (&setup.dev, setup.geo.size);
    let now = dev.read_exact_at(0, size)?;
    let map = dev
        .map(0, size, RO, Share::Shared)
        .map_err(|e| anyhow::anyhow!("mapping the whole buffer: {e}"))?;
    let mapped = map.read_vec(0, size);
    drop(map);
    let mut want = setup.initial.clone();
    for r in reports {
        let s = slots[r.id];
        want[s..s + 8].copy_from_slice(&r.last.to_ne_bytes());
    }
    let mut problems = Vec::new();
    for (what, got) in [("pread", &now), ("a mapping", &mapped)] {
        let wrong: Vec<usize> = (0..size).filter(|&i| got[i] != want[i]).collect();
        if let Some(&i) = wrong.first() {
            problems.push(format!(
                "at the end, {} bytes differ ({what}); the first at {i:#x}: {:#04x}, expected {:#04x}",
                wrong.len(),
                got[i],
                want[i]
            ));
        }
    }
    dev.write_all_at(0, &setup.initial)
        .context("restoring the buffer")?;
    Ok(problems)
}

/// Prints the totals and the problems, and makes the summary.
fn summarise(
    args: &Args,
    setup: &Setup,
    workers: usize,
    switching: bool,
    outcome: Outcome,
    out: &mut dyn Write,
) -> Result<Summary> {
    let Outcome {
        reports,
        mut problems,
        switches,
    } = outcome;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = 0;
    for r in &reports {
        for (k, v) in &r.ops {
            *totals.entry(k.clone()).or_default() += v;
        }
        errors += r.error_count;
        problems.extend(r.errors.iter().cloned());
    }
    let (mode_switches, failed_switches) =
        switches.as_ref().map_or((0, 0), |sw| (sw.done, sw.failed));
    let total: u64 = totals.values().sum();
    let by_kind: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        out,
        "stress: {total} operations by {} workers ({}), {mode_switches} mode switches{}",
        reports.len(),
        by_kind.join(", "),
        match (switching, failed_switches) {
            (false, _) => " (--no-mode-switch)".to_string(),
            (true, 0) => String::new(),
            (true, n) => format!(", {n} failed"),
        }
    )?;
    if reports.len() != workers {
        problems.push(format!("{} of {workers} workers reported", reports.len()));
    }
    for p in &problems {
        writeln!(out, "stress: FAILED: {p}")?;
    }
    let ok = problems.is_empty() && errors == 0;
    if ok {
        writeln!(
            out,
            "stress: every slot and every other byte checked at the end: all as expected; buffer restored"
        )?;
    } else {
        writeln!(out, "stress: {errors} failed checks during the run")?;
    }
    Ok(Summary {
        seed: setup.seed,
        procs: usize::from(args.procs),
        threads: usize::from(args.threads),
        seconds: args.seconds,
        workers_reported: reports.len(),
        operations: total,
        by_kind: totals,
        mode_switches,
        failed_checks: errors,
        problems,
        ok,
    })
}

/// Runs `mapdrv stress`, telling `out` as it goes (or, with --json,
/// printing only the summary); false when a check failed.
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    let summary = crate::summary::summarised(args.json, out, |w| stress(device, args, w))?;
    Ok(summary.ok)
}

/// The run itself, reporting to `out`.
fn stress(device: &Path, args: &Args, out: &mut dyn Write) -> Result<Summary> {
    let (procs, threads) = (usize::from(args.procs), usize::from(args.threads));
    let workers = procs * threads;
    let mut setup = prepare(args, device, workers)?;
    writeln!(
        out,
        "stress: {procs} processes x {threads} threads for {} s, seed {}, buffer of {} pages{}",
        args.seconds,
        setup.seed,
        setup.geo.pages,
        if setup.modes.is_some() {
            ", switching modes"
        } else {
            ""
        }
    )?;
    out.flush()?;
    let geo = setup.geo;
    let slots: Vec<usize> = (0..workers).map(|w| slot_offset(w, &geo)).collect();
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let sh = Shared {
        dev: &setup.dev,
        geo,
        initial: &setup.initial,
        slots: slots.clone(),
        until,
    };
    let kids = fork_processes(&sh, procs, threads, setup.seed)?;
    // The bar starts once every fork is done (see progress::Timed::start).
    let bar = crate::progress::Timed::start(args.seconds, "stress");
    let mut outcome = run_processes(kids, until + GRACE, setup.modes.as_ref())?;
    drop(bar);
    let switching = setup.modes.is_some();
    if let Some((_, guard)) = setup.modes.take() {
        guard.restore().context("restoring the mode")?;
    }
    // Failed mode switches come before what the workers found.
    if let Some(sw) = &outcome.switches {
        outcome.problems.extend(sw.errors.iter().cloned());
    }
    let end = check_buffer(&setup, &slots, &outcome.reports)?;
    outcome.problems.extend(end);
    summarise(args, &setup, workers, switching, outcome, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_after_the_headers() {
        let geo = Geometry {
            pages: 3,
            page_size: 4096,
            size: 3 * 4096,
        };
        let slots: Vec<usize> = (0..40).map(|w| slot_offset(w, &geo)).collect();
        for (i, a) in slots.iter().enumerate() {
            assert!(a % 4096 >= 2048 && a % 8 == 0 && a + 8 <= geo.size);
            assert!(slots[i + 1..].iter().all(|b| b.abs_diff(*a) >= 8));
        }
        assert_eq!(slot_capacity(&geo), 3 * 256);
    }

    #[test]
    fn a_process_that_dies_or_sends_nothing_is_a_problem() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut reports, mut problems) = (Vec::new(), Vec::new());
        // SAFETY: the closure only writes a constant to the pipe.
        let kid = unsafe {
            child::spawn(|fd| {
                child::write_all(
                    fd,
                    b"[{\"id\":3,\"last\":7,\"ops\":{},\"errors\":[],\"error_count\":0}]\n",
                );
                0
            })
        }
        .unwrap();
        collect_process(kid, deadline, &mut reports, &mut problems).unwrap();
        assert_eq!((reports.len(), reports[0].id, reports[0].last), (1, 3, 7));
        assert!(problems.is_empty(), "{problems:?}");

        // SAFETY: raise(3) is async-signal-safe.
        let kid = unsafe {
            child::spawn(|_| {
                libc::raise(libc::SIGKILL);
                0
            })
        }
        .unwrap();
        collect_process(kid, deadline, &mut reports, &mut problems).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("killed by signal 9"),
            "{}",
            problems[0]
        );
        assert!(problems[1].ends_with("sent no report"), "{}", problems[1]);
    }

    #[test]
    fn switches_go_round_the_modes_and_count_each_change() {
        let mut sw = Switches::new(Mode::Faultaround);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let to = sw.next();
            assert_ne!(to, sw.current, "a switch to the mode it is in");
            seen.push(to);
            sw.record(to, Ok(to));
        }
        use Mode::*;
        assert_eq!(
            seen,
            [
                Prefault,
                Huge,
                Fault,
                Faultaround,
                Prefault,
                Huge,
                Fault,
                Faultaround
            ]
        );
        assert_eq!((sw.done, sw.failed), (8, 0));
        assert!(sw.errors.is_empty());
    }

    #[test]
    fn switches_that_do_not_happen_are_failures_not_switches() {
        let mut sw = Switches::new(Mode::Fault);
        // The write failed.
        sw.record(
            Mode::Faultaround,
            Err("writing the mode file: EINVAL".into()),
        );
        // The file still reads the old mode.
        sw.record(Mode::Faultaround, Ok(Mode::Fault));
        // A "switch" to the mode it is in.
        sw.record(Mode::Fault, Ok(Mode::Fault));
        assert_eq!((sw.done, sw.failed), (0, 3));
        assert_eq!(sw.current, Mode::Fault);
        assert!(sw.errors[1].contains("from fault to faultaround, it reads fault"));
        // Then one that works.
        sw.record(sw.next(), Ok(Mode::Faultaround));
        assert_eq!((sw.done, sw.failed), (1, 3));
        for _ in 0..10 {
            sw.record(Mode::Prefault, Err("x".into()));
        }
        assert_eq!(sw.failed, 13);
        assert_eq!(sw.errors.len(), MAX_ERRORS);
    }
}
