// SPDX-License-Identifier: GPL-2.0
//! `mapdrv fuzz`: a bounded, reproducible syscall fuzzer for /dev/mapdrv.
//!
//! A seeded generator ([`ops::generate`], ChaCha8) picks operations: open and
//! close, mmap (shared, private, fixed over what is there, edge offsets and
//! lengths, refused flags), munmap, mremap, mprotect, madvise, fork, loads
//! and stores through mappings, read/write/pread/pwrite with odd offsets,
//! lengths and buffers, ioctls with random commands and pointers, and mode
//! switches. A shadow model ([`model::Model`]) and the rules of
//! [`predict`] give every outcome before the call is made; the first
//! difference is a divergence.
//!
//! The operations run in a child process that sends each one to the parent
//! before it runs it, so that a crash (a SIGBUS from a fault handler, a
//! SIGSEGV) is reported like any divergence, with the operation that caused
//! it. The parent then shrinks the sequence (ddmin: drop chunks while the
//! same divergence still happens) and prints the shortest it found, and
//! saves it as JSON for `mapdrv fuzz --replay FILE`. The buffer's content and
//! the driver's mode are restored before every replay and at the end.

mod exec;
mod model;
mod ops;
mod predict;
pub(crate) mod sys;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::abi;
use crate::child::{self, Ended};
use crate::debugfs::{Debugfs, ModeGuard};
use crate::device::{Access, Device, system_page_size};
use exec::{Applied, Env, World};
use ops::Op;

pub const HELP: &str = "\
Runs random sequences of open/close, mmap (shared, private, MAP_FIXED over
existing mappings, edge offsets and lengths), munmap, mremap, mprotect,
madvise, fork, loads and stores through mappings, read/write/pread/pwrite and
ioctl against the device, and checks every outcome against a model of the
buffer and of the mappings. The same seed gives the same operations. On a
divergence it prints the operation and the shortest sequence it finds that
still diverges, saved as JSON for --replay. The buffer's content and the
driver's mode are put back at the end. Exit status 1 on a divergence.

Examples:
  mapdrv fuzz --seconds 30 --seed 1
  mapdrv fuzz --seconds 600              a new random seed
  mapdrv fuzz --seed 7 --ops 5000        exactly 5000 operations
  mapdrv fuzz --replay /tmp/mapdrv-fuzz-7.json
  mapdrv fuzz --seconds 10 --seed 1 --json  a summary for scripts";

/// Random syscalls against the device, checked against a model.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// Run for this long.
    #[arg(long, value_name = "N", default_value_t = 30)]
    seconds: u64,
    /// The seed [default: a random one, printed].
    #[arg(long, value_name = "S", conflicts_with = "replay")]
    seed: Option<u64>,
    /// Stop after this many generated operations, executed or skipped
    /// (with --seed: an exact rerun).
    #[arg(long = "ops", value_name = "N")]
    max_ops: Option<u64>,
    /// Run a saved sequence instead of generating one.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Where to save a failing sequence [default: $TMPDIR/mapdrv-fuzz-<seed>.json].
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Time allowed for shrinking a failing sequence.
    #[arg(long, value_name = "N", default_value_t = 120)]
    shrink_seconds: u64,
    /// The driver's debugfs directory (for mode switches).
    #[arg(long, value_name = "DIR", default_value = crate::debugfs::DEFAULT_DIR)]
    debugfs: PathBuf,
    /// Print only a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

/// What a run found: `mapdrv fuzz --json` prints it.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The seed (none when replaying a file saved without one).
    pub seed: Option<u64>,
    /// The file replayed, if any.
    pub replay: Option<PathBuf>,
    /// Operations executed (up to and including a diverging one); skipped
    /// ones are not.
    pub operations: u64,
    /// The same as `operations` (JSON fields are only ever added; this one
    /// was the executed count when `operations` still counted skipped ones).
    pub run: u64,
    /// Calls among them that failed as the model predicted.
    pub refused: u64,
    /// Operations generated (or given) but not executed: not applicable in
    /// the state they met, nothing was called.
    pub skipped: u64,
    pub seconds: f64,
    /// Operations executed, by kind (empty when the fuzzing process was
    /// killed).
    pub by_kind: BTreeMap<String, u64>,
    pub divergence: Option<Divergence>,
    /// True when no divergence was found.
    pub ok: bool,
}

/// The first divergence of a run and its shrunk replay.
#[derive(Debug, Serialize)]
pub struct Divergence {
    pub index: usize,
    pub operation: String,
    pub message: String,
    /// The shortest sequence found that still diverges, and how.
    pub minimal: Vec<String>,
    pub minimal_message: String,
    /// False when the shrinking time budget ran out first.
    pub shrink_complete: bool,
    /// The saved sequence, for --replay.
    pub saved: PathBuf,
}

/// What a sequence did: operations executed (by kind) and skipped, counted
/// apart. A skipped operation called nothing, so it is not one that ran.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Tally {
    /// Operations executed, a diverging one included.
    executed: u64,
    skipped: u64,
    /// Executed operations by kind.
    by_kind: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts operation `name`, which `applied` says ran or was skipped.
    fn record(&mut self, name: &str, applied: Applied) {
        match applied {
            Applied::Done => {
                self.executed += 1;
                *self.by_kind.entry(name.to_string()).or_default() += 1;
            }
            Applied::Skipped => self.skipped += 1,
        }
    }

    /// A sequence that the fuzzing process died in at operation `i`, when
    /// `skipped` of the ones before it had been skipped: the others before
    /// it ran, and so did operation `i` (by kind is not known).
    fn killed_at(i: usize, skipped: u64) -> Tally {
        Tally {
            executed: (i as u64 + 1).saturating_sub(skipped),
            skipped,
            by_kind: BTreeMap::new(),
        }
    }
}

/// What the worker tells the parent, one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Msg {
    /// Operation `i` is about to run (the op itself only when generated);
    /// `skipped` of the ones before it were skipped.
    Op {
        i: usize,
        op: Option<Op>,
        skipped: u64,
    },
    /// Operation `i` diverged (or, with `i` past the last one, the last full
    /// comparison did), after `tally`.
    Divergence {
        i: usize,
        message: String,
        tally: Tally,
    },
    End {
        tally: Tally,
        refused: u64,
    },
}

/// How a sequence ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    index: usize,
    /// The operation's name and what went wrong, for "is it the same bug?".
    signature: String,
    message: String,
}

#[derive(Debug, Default)]
struct RunResult {
    ops: Vec<Op>,
    tally: Tally,
    refused: u64,
    failure: Option<Failure>,
}

/// Where the operations come from.
enum Source<'a> {
    Generate {
        seed: u64,
        until: Instant,
        max_ops: u64,
    },
    Given(&'a [Op]),
}

/// The saved form of a failing sequence.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    seed: Option<u64>,
    pages: usize,
    message: Option<String>,
    ops: Vec<Op>,
}

/// The state to put back before every run and at the end.
struct Baseline {
    dev: Device,
    content: Vec<u8>,
    /// The driver's mode as found, when debugfs has it (also set back if
    /// the fuzzer stops on an error).
    mode: Option<ModeGuard>,
}

impl Baseline {
    fn restore_content(&self) -> Result<()> {
        self.dev
            .write_all_at(0, &self.content)
            .context("restoring the buffer's content")
    }

    /// Puts the content and the mode back before a run.
    fn restore(&self) -> Result<()> {
        self.restore_content()?;
        if let Some(guard) = &self.mode {
            let mode = guard.at_start();
            guard
                .put_back()
                .with_context(|| format!("restoring mode {mode}"))?;
        }
        Ok(())
    }

    /// Puts the content and the mode back at the end; the mode is then no
    /// longer guarded.
    fn finish(self) -> Result<()> {
        self.restore_content()?;
        if let Some(guard) = self.mode {
            let mode = guard.at_start();
            guard
                .restore()
                .with_context(|| format!("restoring mode {mode}"))?;
        }
        Ok(())
    }
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_ne_bytes(b) >> 1
}

/// The sizes of user address spaces the 64-bit kernels we know give a
/// process, in bits, largest first: x86_64 with 5-level paging (56) or 4
/// (47); arm64 with 52-bit, 48-bit, 47-bit (16 KiB pages), 42-bit (64 KiB
/// pages, 2 levels) or 39-bit addresses.
#[cfg(target_pointer_width = "64")]
const USER_SPACE_BITS: [u32; 6] = [56, 52, 48, 47, 42, 39];

/// The top of this process's user address space (`TASK_SIZE`), as the
/// running kernel has it: the largest of [`USER_SPACE_BITS`] whose last
/// pages below the top it lets us map. (x86_64 keeps the very last page
/// unmapped, so the page below it is the one asked for.)
#[cfg(target_pointer_width = "64")]
fn user_space_top(page_size: usize) -> usize {
    USER_SPACE_BITS
        .iter()
        .map(|&bits| 1usize << bits)
        .find(|&top| sys::is_user_page(top - 2 * page_size, page_size))
        .unwrap_or(1 << 47)
}

/// The top of this process's user address space (`TASK_SIZE`) on a 32-bit
/// kernel, found by bisection. 32-bit ARM's is no power of two: it is
/// `PAGE_OFFSET` less the 16 MiB of the modules area, `0xbf00_0000` with
/// the 3G/1G split and lower with the others (`CONFIG_VMSPLIT_*`). Every
/// page from our own stack up to the top is a user page, none above it is.
#[cfg(target_pointer_width = "32")]
fn user_space_top(page_size: usize) -> usize {
    let mask = !(page_size - 1);
    let local = 0u8;
    // `lo` is a user page, `hi` is not (the last page of the address space:
    // ARM's vectors page, or the kernel's).
    let mut lo = std::ptr::from_ref(&local) as usize & mask;
    let mut hi = usize::MAX & mask;
    while hi - lo > page_size {
        let mid = (lo + (hi - lo) / 2) & mask;
        if sys::is_user_page(mid, page_size) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The highest address `access_ok` accepts as the end of a user range
/// (`TASK_SIZE_MAX`): x86_64's is a page below the top of user space (the
/// last page stays unmapped, a guard for SYSRET's canonical-address fault),
/// arm64's and 32-bit ARM's (the generic `access_ok`) is the top itself.
fn user_ptr_max(page_size: usize) -> usize {
    let top = user_space_top(page_size);
    if cfg!(target_arch = "x86_64") {
        top - page_size
    } else {
        top
    }
}

/// The top of the default mmap window (`DEFAULT_MAP_WINDOW`), below which
/// mmap places a mapping without an address hint above it: 128 TiB on
/// x86_64 even with 5-level paging, 256 TiB on arm64 even with 52-bit
/// addresses, less with smaller address spaces. The main thread's stack
/// starts at its top, less a random gap of a few GiB at most (or just
/// below it: x86_64's top page stays unmapped), so the window is the power
/// of two at or above the end of the stack. 32-bit ARM has no window apart
/// from user space: the power of two above its stack is 4 GiB, and the
/// window is the top of user space.
fn map_window(maps: &str, user_top: usize) -> u64 {
    maps.lines()
        .filter(|l| l.ends_with("[stack]"))
        .find_map(|l| {
            let (_, end) = l.split_whitespace().next()?.split_once('-')?;
            u64::from_str_radix(end, 16).ok()
        })
        .map_or(user_top as u64, |end| {
            end.next_power_of_two().min(user_top as u64)
        })
}

/// The worker's end of the pipe to the parent.
struct Report(std::io::BufWriter<std::fs::File>);

impl Report {
    /// Sends `m`, flushed at once: if the next op crashes the worker, the
    /// parent knows which.
    fn send(&mut self, m: &Msg) {
        let _ = serde_json::to_writer(&mut self.0, m);
        let _ = self.0.write_all(b"\n");
        let _ = self.0.flush();
    }

    /// Sends a divergence at operation `i`; returns the worker's status.
    fn diverged(&mut self, i: usize, message: String, tally: Tally) -> i32 {
        self.send(&Msg::Divergence { i, message, tally });
        1
    }
}

/// The worker: runs the sequence, reporting on `out`; returns the exit
/// status of the fuzzing process.
fn worker(
    env: Env,
    shadow: Vec<u8>,
    page_size: usize,
    arena_pages: usize,
    source: &Source<'_>,
    out: RawFd,
) -> i32 {
    // SAFETY: `out` is the write end of the pipe, which this process owns.
    let file = unsafe { std::fs::File::from_raw_fd(out) };
    let mut report = Report(std::io::BufWriter::new(file));
    let mut world = match World::new(env, shadow, page_size, arena_pages) {
        Ok(w) => w,
        Err(e) => return report.diverged(0, format!("setting up: {e:#}"), Tally::default()),
    };
    let mut rng = match source {
        Source::Generate { seed, .. } => Some(ChaCha8Rng::seed_from_u64(*seed)),
        Source::Given(_) => None,
    };
    let generated = matches!(source, Source::Generate { .. });
    let mut tally = Tally::default();
    let mut i = 0usize;
    while let Some(op) = next_op(source, rng.as_mut(), i, &world) {
        let skipped = tally.skipped;
        let announced = generated.then(|| op.clone());
        report.send(&Msg::Op {
            i,
            op: announced,
            skipped,
        });
        match world.apply(&op) {
            Ok(applied) => tally.record(op.name(), applied),
            Err(message) => {
                // It ran, and diverged.
                tally.record(op.name(), Applied::Done);
                return report.diverged(i, message, tally);
            }
        }
        i += 1;
    }
    // A last full comparison after the last operation.
    if let Err(message) = world.apply(&Op::CheckAll) {
        return report.diverged(i, message, tally);
    }
    world.teardown();
    let refused = exec::REFUSED.load(std::sync::atomic::Ordering::Relaxed);
    report.send(&Msg::End { tally, refused });
    0
}

/// Operation `i` of the sequence, `None` past its end (for a generated
/// one: its time or its number of operations used up).
fn next_op(
    source: &Source<'_>,
    rng: Option<&mut ChaCha8Rng>,
    i: usize,
    world: &World,
) -> Option<Op> {
    match (source, rng) {
        (Source::Generate { until, max_ops, .. }, Some(rng)) => {
            if i as u64 >= *max_ops || Instant::now() >= *until {
                return None;
            }
            // Every so often, compare everything.
            Some(if i % 64 == 63 {
                Op::CheckAll
            } else {
                ops::generate(rng, &world.gen_state())
            })
        }
        (Source::Given(list), _) => list.get(i).cloned(),
        _ => None,
    }
}

fn signature(op: Option<&Op>, message: &str) -> String {
    let head = message.split(':').next().unwrap_or("");
    format!("{} / {head}", op.map_or("?", Op::name))
}

/// What the parent gathers from the worker's messages.
struct Gathered<'a> {
    result: RunResult,
    given: &'a [Op],
    /// The last operation announced, and how many before it were skipped.
    last: Option<(usize, u64)>,
    ended: bool,
    /// The first message that could not be read.
    bad: Option<anyhow::Error>,
}

impl Gathered<'_> {
    fn line(&mut self, line: &str, bar: Option<&crate::progress::Timed>) {
        let msg = match serde_json::from_str::<Msg>(line) {
            Ok(m) => m,
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("bad message {line:?}"));
                self.bad.get_or_insert(e);
                return;
            }
        };
        let result = &mut self.result;
        match msg {
            Msg::Op { i, op, skipped } => {
                if let Some(op) = op {
                    result.ops.push(op);
                }
                self.last = Some((i, skipped));
                if let Some(bar) = bar.filter(|_| i % 1024 == 0) {
                    bar.set_message(format!("fuzz: {} operations", i as u64 - skipped));
                }
            }
            Msg::Divergence { i, message, tally } => {
                let op = result.ops.get(i).or_else(|| self.given.get(i));
                result.failure = Some(Failure {
                    index: i,
                    signature: signature(op, &message),
                    message,
                });
                result.tally = tally;
            }
            Msg::End { tally, refused } => {
                result.tally = tally;
                result.refused = refused;
                self.ended = true;
            }
        }
    }

    /// The failure of a worker that ended (`how`) without saying why.
    fn died(&mut self, how: Ended) {
        let (i, skipped) = self.last.unwrap_or((0, 0));
        self.result.tally = Tally::killed_at(i, skipped);
        let what = match how {
            Ended::Signaled(sig) => {
                format!("{sig}: the fuzzing process was killed while running this operation")
            }
            Ended::Exited(code) => {
                format!("the fuzzing process exited (status {code}) without a word")
            }
            Ended::Hung => "the fuzzing process hung while running this operation".to_string(),
        };
        let op = self.result.ops.get(i).or_else(|| self.given.get(i));
        self.result.failure = Some(Failure {
            index: i,
            signature: signature(op, &what),
            message: what,
        });
    }
}

/// Runs a sequence in a child process and collects what happened.
fn run_child(t: &Target, source: Source<'_>) -> Result<RunResult> {
    t.base.restore()?;
    let _ = std::io::stdout().flush();
    let work = |fd| {
        let shadow = t.base.content.clone();
        worker(
            t.env.clone(),
            shadow,
            t.page_size,
            t.arena_pages,
            &source,
            fd,
        )
    };
    // SAFETY: the tool is single-threaded here; the child runs the worker
    // and ends with _exit (child::spawn).
    let proc = unsafe { child::spawn(work) }?;
    // A bar for the timed run (not for the shrinker's replays); started
    // after the fork, so the child never inherits its thread's locks.
    let bar = match &source {
        Source::Generate { until, .. } => Some(crate::progress::Timed::start(
            until
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .ceil() as u64,
            "fuzz",
        )),
        Source::Given(_) => None,
    };
    let mut got = Gathered {
        result: RunResult::default(),
        given: match &source {
            Source::Given(list) => list,
            Source::Generate { .. } => &[],
        },
        last: None,
        ended: false,
        bad: None,
    };
    // No deadline: the fuzzing process ends by itself, and a hang stays for
    // whatever runs the fuzzer (the guest suite's VM timeout) to see.
    let ended = proc
        .collect(None, |line| got.line(line, bar.as_ref()))
        .context("waiting for the fuzzing process")?;
    drop(bar);
    if let Some(e) = got.bad {
        return Err(e);
    }
    if got.result.failure.is_none() && !got.ended {
        got.died(ended);
    }
    Ok(got.result)
}

/// Shrinks `ops` while the failure keeps its signature (ddmin by chunks).
fn shrink(
    t: &Target,
    ops: Vec<Op>,
    want: &Failure,
    budget: Duration,
) -> Result<(Vec<Op>, Failure, usize, bool)> {
    let start = Instant::now();
    let mut cur: Vec<Op> = ops[..=want.index.min(ops.len() - 1)].to_vec();
    let mut failure = want.clone();
    let mut runs = 0;
    let mut chunk = cur.len().div_ceil(2).max(1);
    let mut complete = true;
    'outer: loop {
        let mut i = 0;
        let mut removed = false;
        while i < cur.len() {
            if start.elapsed() > budget {
                complete = false;
                break 'outer;
            }
            let candidate: Vec<Op> = cur[..i]
                .iter()
                .chain(cur[(i + chunk).min(cur.len())..].iter())
                .cloned()
                .collect();
            if candidate.is_empty() {
                i += chunk;
                continue;
            }
            runs += 1;
            let r = run_child(t, Source::Given(&candidate))?;
            match r.failure {
                Some(f) if f.signature == want.signature => {
                    cur = candidate[..=f.index.min(candidate.len() - 1)].to_vec();
                    failure = f;
                    removed = true;
                }
                _ => i += chunk,
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed {
            chunk = chunk.div_ceil(2);
        } else {
            chunk = chunk.min(cur.len().div_ceil(2)).max(1);
        }
    }
    Ok((cur, failure, runs, complete))
}

/// The device under test and what every run of a sequence starts from.
struct Target {
    base: Baseline,
    env: Env,
    page_size: usize,
    arena_pages: usize,
    /// The buffer's size in pages.
    pages: usize,
}

impl Target {
    fn open(device: &Path, args: &Args) -> Result<Target> {
        let dev = Device::open(device, Access::ReadWrite)?;
        let (info, geo) = dev.geometry()?;
        let page_size = system_page_size()?;
        anyhow::ensure!(
            geo.page_size == page_size,
            "the device's page size {} is not ours ({page_size})",
            geo.page_size
        );
        let content = dev.read_exact_at(0, geo.size)?;
        let debugfs = Debugfs::locate(&args.debugfs).ok();
        let mode = debugfs.as_ref().and_then(|d| ModeGuard::save(d).ok());
        let mode_file = debugfs.as_ref().map(|_| args.debugfs.join("mode"));
        let noexec = nix::sys::statvfs::statvfs(device)
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC));
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let env = Env {
            device: device.to_path_buf(),
            noexec,
            swap: Path::new("/proc/swaps").exists(),
            user_ptr_max: user_ptr_max(page_size),
            map_window: map_window(&maps, user_space_top(page_size)),
            exact_uaccess: cfg!(target_arch = "x86_64"),
            copy_nothing_below: if cfg!(target_arch = "arm") { 64 } else { 0 },
            mode_file,
            info_cmd: abi::MAPDRV_IOC_INFO,
            info,
        };
        let base = Baseline { dev, content, mode };
        Ok(Target {
            base,
            env,
            page_size,
            arena_pages: (2 * geo.pages + 8).clamp(16, 256),
            pages: geo.pages,
        })
    }
}

/// The seed, and the operations to replay (`None`: generate them).
fn sequence(
    args: &Args,
    pages: usize,
    out: &mut dyn Write,
) -> Result<(Option<u64>, Option<Vec<Op>>)> {
    let Some(path) = &args.replay else {
        return Ok((Some(args.seed.unwrap_or_else(random_seed)), None));
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let saved: Saved =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if saved.pages != pages {
        writeln!(
            out,
            "note: {} was saved with a {}-page buffer; this one has {pages}",
            path.display(),
            saved.pages,
        )?;
    }
    Ok((saved.seed, Some(saved.ops)))
}

/// The first line of a run: what it replays, or its seed and limits.
fn announce(
    args: &Args,
    t: &Target,
    seed: Option<u64>,
    saved_ops: Option<&[Op]>,
    out: &mut dyn Write,
) -> Result<()> {
    match (saved_ops, seed) {
        (Some(ops), _) => writeln!(
            out,
            "fuzz: replaying {} operations from {}",
            ops.len(),
            args.replay.as_deref().unwrap_or(Path::new("?")).display()
        )?,
        (None, Some(seed)) => writeln!(
            out,
            "fuzz: seed {seed}, up to {} s{}, buffer of {} pages, arena of {} pages, mode {}",
            args.seconds,
            args.max_ops
                .map(|n| format!(" or {n} operations"))
                .unwrap_or_default(),
            t.pages,
            t.arena_pages,
            abi::mode_name(t.env.info.mode)
        )?,
        (None, None) => {}
    }
    out.flush()?;
    Ok(())
}

/// Prints the lines of a run with no divergence.
fn report_clean(s: &Summary, out: &mut dyn Write) -> Result<()> {
    let counts: Vec<String> = s.by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        out,
        "fuzz: {} operations executed in {:.1} s, {} calls refused as the model \
         predicted; {} more skipped as not applicable: no divergence",
        s.operations, s.seconds, s.refused, s.skipped,
    )?;
    writeln!(out, "fuzz: by kind: {}", counts.join(", "))?;
    Ok(())
}

/// Prints divergence `f` of `ops`, shrinks it, prints and saves the
/// shortest sequence found.
fn report_divergence(
    args: &Args,
    t: &Target,
    ops: Vec<Op>,
    f: &Failure,
    s: &Summary,
    out: &mut dyn Write,
) -> Result<Divergence> {
    let operation = ops.get(f.index).map(Op::to_string).unwrap_or_default();
    writeln!(
        out,
        "DIVERGENCE at operation {} ({operation}): {}",
        f.index, f.message
    )?;
    writeln!(
        out,
        "fuzz: seed {}, {} operations executed up to it, {} skipped",
        s.seed.map_or("-".into(), |s| s.to_string()),
        s.operations,
        s.skipped,
    )?;
    out.flush()?;
    let budget = Duration::from_secs(args.shrink_seconds);
    let (min, mf, runs, complete) = shrink(t, ops, f, budget)?;
    writeln!(
        out,
        "minimal replay ({} operations, {runs} trial runs{}): {}",
        min.len(),
        if complete {
            ""
        } else {
            ", time budget used up"
        },
        mf.message
    )?;
    for (i, op) in min.iter().enumerate() {
        writeln!(out, "  #{i}: {op}")?;
    }
    let path = args.save.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("mapdrv-fuzz-{}.json", s.seed.unwrap_or(0)))
    });
    let saved = Saved {
        seed: s.seed,
        pages: t.pages,
        message: Some(mf.message.clone()),
        ops: min.clone(),
    };
    std::fs::write(&path, serde_json::to_string_pretty(&saved)?)
        .with_context(|| format!("saving {}", path.display()))?;
    writeln!(
        out,
        "replay it with: mapdrv fuzz --replay {}",
        path.display()
    )?;
    Ok(Divergence {
        index: f.index,
        operation,
        message: f.message.clone(),
        minimal: min.iter().map(Op::to_string).collect(),
        minimal_message: mf.message,
        shrink_complete: complete,
        saved: path,
    })
}

/// Runs `mapdrv fuzz`, telling `out` as it goes (or, with --json, printing
/// only the summary); false on a divergence.
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    let summary = crate::summary::summarised(args.json, out, |w| fuzz(device, args, w))?;
    Ok(summary.ok)
}

/// The run itself, reporting to `out`.
fn fuzz(device: &Path, args: &Args, out: &mut dyn Write) -> Result<Summary> {
    let t = Target::open(device, args)?;
    let (seed, saved_ops) = sequence(args, t.pages, out)?;
    announce(args, &t, seed, saved_ops.as_deref(), out)?;
    let started = Instant::now();
    let result = match &saved_ops {
        Some(ops) => run_child(&t, Source::Given(ops))?,
        None => run_child(
            &t,
            Source::Generate {
                seed: seed.unwrap_or(0),
                until: started + Duration::from_secs(args.seconds),
                max_ops: args.max_ops.unwrap_or(u64::MAX),
            },
        )?,
    };
    let elapsed = started.elapsed();
    let ops: Vec<Op> = saved_ops.clone().unwrap_or(result.ops);
    let Tally {
        executed,
        skipped,
        by_kind,
    } = result.tally;
    let mut summary = Summary {
        seed,
        replay: args.replay.clone(),
        operations: executed,
        run: executed,
        refused: result.refused,
        skipped,
        seconds: elapsed.as_secs_f64(),
        by_kind,
        divergence: None,
        ok: result.failure.is_none(),
    };
    match &result.failure {
        None => report_clean(&summary, out)?,
        Some(f) => {
            summary.divergence = Some(report_divergence(args, &t, ops, f, &summary, out)?);
        }
    }
    t.base
        .finish()
        .context("restoring the buffer and mode at the end")?;
    if summary.ok {
        writeln!(out, "fuzz: buffer content and mode restored")?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = Msg::Op {
            i: 3,
            op: Some(Op::Close { slot: 1 }),
            skipped: 2,
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(matches!(
            serde_json::from_str::<Msg>(&s).unwrap(),
            Msg::Op {
                i: 3,
                op: Some(Op::Close { slot: 1 }),
                skipped: 2
            }
        ));
        let mut tally = Tally::default();
        tally.record("close", Applied::Done);
        let m = Msg::End { tally, refused: 1 };
        let s = serde_json::to_string(&m).unwrap();
        match serde_json::from_str::<Msg>(&s).unwrap() {
            Msg::End { tally, refused: 1 } => assert_eq!(tally.executed, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn skipped_operations_are_not_counted_as_executed() {
        let mut t = Tally::default();
        for (name, applied) in [
            ("mmap", Applied::Done),
            ("munmap", Applied::Skipped),
            ("mmap", Applied::Done),
            ("touch", Applied::Skipped),
            ("close", Applied::Done),
        ] {
            t.record(name, applied);
        }
        assert_eq!((t.executed, t.skipped), (3, 2));
        assert_eq!(t.by_kind.values().sum::<u64>(), t.executed);
        assert_eq!(t.by_kind["mmap"], 2);
        assert!(!t.by_kind.contains_key("munmap"));
    }

    #[test]
    fn a_killed_run_counts_the_operation_it_died_in() {
        // Operations 0..=9 announced, 4 of 0..=8 skipped: 5 ran before
        // operation 9, which ran too.
        let t = Tally::killed_at(9, 4);
        assert_eq!((t.executed, t.skipped), (6, 4));
        assert_eq!(Tally::killed_at(0, 0).executed, 1);
    }

    #[test]
    fn signatures_name_the_operation_and_the_check() {
        let op = Op::Touch {
            at: 0,
            len: 1,
            write: Some(1),
        };
        assert_eq!(
            signature(Some(&op), "store: buffer (pread): byte 0x3 is 0x01"),
            "store / store"
        );
        assert_eq!(signature(None, "SIGBUS: killed"), "? / SIGBUS");
    }

    #[test]
    fn user_space_ends_below_the_kernel_half() {
        let max = user_ptr_max(4096);
        assert!(max < crate::device::KERNEL_HALF_START);
        #[cfg(target_arch = "x86_64")]
        assert!(max == (1 << 47) - 4096 || max == (1 << 56) - 4096);
        #[cfg(target_arch = "aarch64")]
        assert!([52, 48, 47, 42, 39].iter().any(|&bits| max == 1 << bits));
        // PAGE_OFFSET (a multiple of 256 MiB) less the 16 MiB of modules.
        #[cfg(target_arch = "arm")]
        assert!((max + (16 << 20)).is_multiple_of(256 << 20), "{max:#x}");
        // Our own stack is in user space, and below the top.
        let local = 0u8;
        assert!((std::ptr::from_ref(&local) as usize) < max);
    }

    #[test]
    fn the_mmap_window_is_read_from_the_stack() {
        let maps = "00400000-00401000 r-xp 00000000 00:03 9 /bin/mapdrv\n\
                    7ffd7239e000-7ffd723bf000 rw-p 00000000 00:00 0   [stack]\n";
        assert_eq!(map_window(maps, 1 << 47), 1 << 47);
        assert_eq!(map_window(maps, 1 << 56), 1 << 47);
        let arm64 = "ffffd5a1c000-ffffd5a3d000 rw-p 00000000 00:00 0  [stack]\n";
        assert_eq!(map_window(arm64, 1 << 48), 1 << 48);
        assert_eq!(map_window(arm64, 1 << 52), 1 << 48);
        // Not randomised: x86_64's stack ends a page below the window.
        let top = "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(map_window(top, 1 << 47), 1 << 47);
        assert_eq!(map_window("", 1 << 47), 1 << 47);
        // And this process's own.
        let own = std::fs::read_to_string("/proc/self/maps").unwrap();
        let top = user_space_top(4096);
        let w = map_window(&own, top);
        // (32-bit ARM's window is its TASK_SIZE, no power of two.)
        assert!(
            (w.is_power_of_two() || w == top as u64) && w <= top as u64,
            "{w:#x}"
        );
    }
}
