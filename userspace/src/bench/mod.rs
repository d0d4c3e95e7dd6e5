// SPDX-License-Identifier: GPL-2.0

//! `mapdrv bench`: the device's modes against the kernel's own paths (a
//! pre-filled memfd mapped `MAP_SHARED`, the same with `MAP_POPULATE`, a
//! memfd with transparent huge pages, anonymous memory), at sizes from 10
//! pages to 1 GiB, in one run.
//!
//! For each size, after one unrecorded warm-up round, every path runs once
//! per round, the order rotated from round to round, so that drift of the
//! machine (under TCG absolute figures move by up to 2x between runs) hits
//! every path alike; each round's value is divided by the reference path's
//! value of the same round, and the report gives the median, min and max of
//! both the values and those ratios. A round's value is the median of a few
//! fresh mappings for small sizes (so that each round does at least 4096
//! pages of work). Time is CLOCK_MONOTONIC; the report names the kernel's
//! clock source and the accelerator (TCG numbers are emulator numbers: only
//! ratios within one run mean anything).
//!
//! Mappings are of sub-ranges (from offset 0) of the loaded buffer, the
//! device being loaded once with the largest size: the fault path's cost
//! per page does not depend on the buffer's size (a page's lookup is a
//! page-table walk of fixed depth), while loading the module once per size
//! would move memory around between sizes. The load itself is measured
//! separately per size (`--module`).

mod load;
pub(crate) mod mem;
pub mod model;
mod plot;
mod report;

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::abi::{self, Mode};
use crate::debugfs::{self, Debugfs, ModeGuard, Saved};
use crate::device::{Access, Device};
use crate::mapping::Mapping;
use mem::Kind;
use model::{Env, MetricInfo, PathInfo, Report, SizeRounds, Skipped};

/// The sizes measured unless --sizes says otherwise (those that fit).
const DEFAULT_SIZES: [usize; 8] = [10, 64, 256, 1024, 4096, 16384, 65536, 262_144];
/// The sizes of the load timing unless --load-sizes says otherwise.
const DEFAULT_LOAD_SIZES: [usize; 6] = [256, 1024, 4096, 16384, 65536, 262_144];
/// The module's largest buffer.
/// Pages of work each round does at least, in fresh mappings.
const ROUND_PAGES: usize = 4096;
/// Memory left free besides what a size needs.
const SLACK_BYTES: u64 = 96 << 20;

pub const HELP: &str = "\
Measures, for each size, every path in the same run: the device in its modes
(fault, faultaround, prefault, huge; fault and faultaround also without
.map_pages, where each fault is retried under mmap_lock), a pre-filled memfd
MAP_SHARED (the kernel's page-cache fault path with its fault-around), the
same with MAP_POPULATE, a memfd with transparent huge pages (memfd-thp; the
bench sets shmem_enabled to advise for the run), and anonymous memory:
  touch       first touch of a fresh mapping, one byte per page (ns/page)
  faults      minor faults per page during that touch (getrusage)
  mmap        the mmap call (ns/page; prefault and MAP_POPULATE pay here)
  mmap_touch  both together
  read        sequential read of the mapped, touched buffer, after one
              untimed pass (ns/page; for anon: an anonymous buffer written
              once per size)
  pread       pread(2) of the whole size into a user buffer (ns/page)
  pfn_runs    runs of physically consecutive pages per 1000 pages of the
              buffer read (pagemap; not timed): the layout the read met
  private_write, private_write_faults
              first write of a fresh MAP_PRIVATE mapping, one byte per page
              (a copy each; fault, faultaround, prefault and the memfd
              only), and its minor faults per page
  private_write_over_read
              the same write of a MAP_PRIVATE mapping read once before
              (untimed): its read-only entries present, as prefault's mmap
              leaves them, so each write replaces one
Paths are interleaved round by round (order rotated, one warm-up round);
cells are `median [min-max]` of the rounds, and ratios are taken per round
against the reference path of the same round. With --module the tool loads
the module itself, first at each --load-sizes (the module times its own
allocation, fill and page walk), then once with the largest size and mode=3
(the buffer in 2 MiB blocks, for huge; the other modes map it page by page). Needs root
and debugfs. Switches debugfs mapdrv/mode and mapdrv/map_pages for its own
mappings and sets them back at the end.

Examples:
  mapdrv bench                               the loaded device, default sizes
  mapdrv bench --module rust_mapdrv.ko --json-out bench.json --svg bench.svg
  mapdrv bench --sizes 16 --rounds 2 --json  a quick smoke run
  mapdrv bench --from-json bench.json --svg bench.svg";

/// Measure the device's modes against the kernel's own paths.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// Sizes in pages, comma separated [default: 10,64,256,1024,4096,16384,65536,262144, those that fit].
    #[arg(long, value_delimiter = ',', value_name = "PAGES")]
    pub sizes: Vec<usize>,
    /// Measured rounds per size, after one warm-up round.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub rounds: u16,
    /// Load this rust_mapdrv.ko (it must not be loaded): time its load at
    /// each --load-sizes, then load it with the largest size for the rest;
    /// it is unloaded at the end. Without it the loaded device is used.
    #[arg(long, value_name = "KO")]
    pub module: Option<PathBuf>,
    /// Sizes of the load timing, in pages [default: 256,1024,4096,16384,65536,262144, those that fit].
    #[arg(long, value_delimiter = ',', value_name = "PAGES", requires = "module")]
    pub load_sizes: Vec<usize>,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Print the tables as Markdown.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Write a plot (SVG) of ns/page against size, per path, to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Measure nothing: print the report saved in FILE (and --svg), its
    /// targets judged again from its rounds by this build.
    #[arg(long, value_name = "FILE",
          conflicts_with_all = ["module", "sizes", "load_sizes", "json_out"])]
    pub from_json: Option<PathBuf>,
    /// Record in the report the source commit the module and tool were
    /// built from (scripts/bench.sh passes `git describe --always --dirty`).
    #[arg(long, value_name = "COMMIT", conflicts_with = "from_json")]
    pub source_commit: Option<String>,
    /// Record in the report the command that ran the bench, to re-run it
    /// (scripts/bench.sh passes its own, or make bench's).
    #[arg(long, value_name = "TEXT", conflicts_with = "from_json")]
    pub command: Option<String>,
    /// The driver's debugfs directory.
    #[arg(long, value_name = "DIR", default_value = debugfs::DEFAULT_DIR)]
    pub debugfs: PathBuf,
    /// No progress (bar or lines) on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `mapdrv bench`; true (an error is the only failure).
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    let report = match &args.from_json {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut report = serde_json::from_str::<Report>(&text)
                .with_context(|| format!("{} is not a mapdrv bench report", file.display()))?;
            // The tables are computed by this build; so are the verdicts,
            // or the two could disagree (a fit changed since the run).
            report.targets = model::judge_targets(&report);
            report
        }
        None => measure(device, args)?,
    };
    if let Some(file) = &args.json_out {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(file, text + "\n")
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    if let Some(file) = &args.svg {
        plot::write_svg(&report, file)?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        report::write_report(&report, out, args.markdown)?;
    }
    Ok(true)
}

/// What the bench is doing: on a terminal a bar over the rounds to run, else
/// one line per stage on standard error (for logs); nothing with --quiet.
pub(crate) struct Status {
    bar: indicatif::ProgressBar,
    lines: bool,
}

impl Status {
    fn new(quiet: bool) -> Self {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            crate::progress::bar(0, "bench")
        };
        Self {
            bar,
            lines: !quiet && !crate::progress::visible(),
        }
    }

    /// Names the stage now running.
    pub(crate) fn say(&self, line: &str) {
        if self.lines {
            eprintln!("mapdrv bench: {line}");
        } else {
            self.bar.set_message(format!("bench: {line}"));
        }
    }

    /// `n` more rounds to run.
    pub(crate) fn plan(&self, n: usize) {
        self.bar.inc_length(n as u64);
    }

    /// One round done (or skipped).
    pub(crate) fn step(&self, n: usize) {
        self.bar.inc(n as u64);
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> u64 {
    meminfo("MemAvailable:").unwrap_or(u64::MAX)
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn check_sizes(sizes: &[usize], what: &str) -> Result<()> {
    for &s in sizes {
        ensure!(
            (1..=abi::MAX_PAGES).contains(&(s as u64)),
            "{what} {s} is out of range 1..={}",
            abi::MAX_PAGES
        );
    }
    Ok(())
}

/// Takes the measurements and builds the report.
fn measure(device: &Path, args: &Args) -> Result<Report> {
    let started = Instant::now();
    let status = Status::new(args.quiet);
    let pinned_cpu = pin_to_this_cpu()?;
    let page_size = crate::device::system_page_size()?;
    let rounds = usize::from(args.rounds);
    check_sizes(&args.sizes, "--sizes")?;
    check_sizes(&args.load_sizes, "--load-sizes")?;
    let mut skipped = Vec::new();

    // The module's load, and the device the rest runs on.
    let mut loaded_here = false;
    let mut load_series = Vec::new();
    if let Some(ko_path) = &args.module {
        let ko = load::open(ko_path)?;
        let wanted = if args.load_sizes.is_empty() {
            DEFAULT_LOAD_SIZES.to_vec()
        } else {
            args.load_sizes.clone()
        };
        let mut sizes = Vec::new();
        for pages in wanted {
            let need = (pages * page_size) as u64 + SLACK_BYTES;
            if need > mem_available() {
                skipped.push(Skipped {
                    pages,
                    reason: format!("load timing: needs {} MiB free", need >> 20),
                });
            } else {
                sizes.push(pages);
            }
        }
        load_series = load::measure(&ko, &sizes, rounds, &args.debugfs, &status)?;
        let pages = if args.sizes.is_empty() {
            largest_fitting(page_size)
        } else {
            args.sizes.iter().copied().max().unwrap_or(10)
        };
        // mode=3: the buffer in 2 MiB blocks, which huge mode maps with PMD
        // entries; the other modes map the same buffer page by page.
        status.say(&format!(
            "loading {} with pages={pages} mode=3",
            load::MODULE_NAME
        ));
        load::load(&ko, &format!("pages={pages} mode=3"))?;
        loaded_here = true;
    }
    // The memfd-thp peer needs shmem to allocate huge pages for it:
    // shmem_enabled=advise (with MADV_HUGEPAGE) for the run, then as found.
    let shmem_thp = allow_shmem_thp()?;
    let result = measure_device(device, args, page_size, &mut skipped, &status);
    if let Some(saved) = shmem_thp {
        saved.restore().context("cannot set shmem_enabled back")?;
    }
    if loaded_here {
        load::unload()?;
    }
    let (mut env, sizes, results) = result?;
    env.pinned_cpu = Some(pinned_cpu);
    let mut report = Report {
        tool: format!("mapdrv bench {}", env!("CARGO_PKG_VERSION")),
        env,
        rounds,
        sizes,
        skipped,
        paths: model::MAP_PATHS.iter().map(path_info).collect(),
        pread_paths: model::PREAD_PATHS.iter().map(path_info).collect(),
        metrics: model::METRICS
            .iter()
            .map(|m| MetricInfo {
                name: m.name.into(),
                title: m.title.into(),
                unit: m.unit.into(),
                reference: m.reference.map(Into::into),
            })
            .collect(),
        results,
        load: load_series,
        source_commit: args.source_commit.clone(),
        command: args.command.clone(),
        targets: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
    };
    report.targets = model::judge_targets(&report);
    Ok(report)
}

fn path_info(p: &model::PathDef) -> PathInfo {
    PathInfo {
        name: p.name.into(),
        what: p.what.into(),
    }
}

/// The largest default size whose peers ([`PEERS`]) fit next to a buffer of
/// the same size.
fn largest_fitting(page_size: usize) -> usize {
    let available = mem_available();
    DEFAULT_SIZES
        .iter()
        .copied()
        .filter(|&p| (PEERS + 1) * (p * page_size) as u64 + SLACK_BYTES <= available)
        .max()
        .unwrap_or(DEFAULT_SIZES[0])
}

/// Regions of a size's length that its peers hold at once: the memfd, the
/// memfd on THP, the anonymous peer of the read and the anonymous path's
/// fresh mapping (page tables come out of `SLACK_BYTES`).
const PEERS: u64 = 4;

type Measured = (Env, Vec<usize>, Vec<model::Series>);

/// The loaded device: every size, every path.
fn measure_device(
    path: &Path,
    args: &Args,
    page_size: usize,
    skipped: &mut Vec<Skipped>,
    status: &Status,
) -> Result<Measured> {
    let (info, _) = Device::open(path, Access::ReadOnly)?.geometry()?;
    let device_pages = info.pages as usize;
    // Mapped and read through a plain file: the same open file description
    // the kernel sees for any user.
    let dev = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let dbg = Debugfs::locate(&args.debugfs)?;
    // Whatever happens from here, the device is left as it was found.
    let mode_at_start = ModeGuard::save(&dbg)?;
    let map_pages_file = args.debugfs.join("map_pages");
    let map_pages_at_start = Saved::read(&dbg, "map_pages").with_context(|| {
        format!(
            "cannot read {}: is the module too old for this tool?",
            map_pages_file.display()
        )
    })?;
    let env = environment(page_size, device_pages, mode_at_start.at_start().name());
    status.say(&format!(
        "clock source {}, accelerator {}, {} CPUs, device {} pages",
        env.clocksource, env.accelerator, env.cpus, device_pages
    ));

    let wanted = if args.sizes.is_empty() {
        DEFAULT_SIZES.to_vec()
    } else {
        args.sizes.clone()
    };
    let mut sizes = Vec::new();
    let mut results = Vec::new();
    // Each size: one warm-up round and the recorded ones.
    let per_size = usize::from(args.rounds) + 1;
    status.plan(wanted.len() * per_size);
    let ctx = Ctx {
        dev: &dev,
        dbg: &dbg,
        map_pages_file: &map_pages_file,
        page_size,
    };
    let outcome = (|| -> Result<()> {
        for pages in wanted {
            if pages > device_pages {
                skipped.push(Skipped {
                    pages,
                    reason: format!("larger than the device ({device_pages} pages)"),
                });
                status.step(per_size);
                continue;
            }
            let need = PEERS * (pages * page_size) as u64 + SLACK_BYTES;
            if need > mem_available() {
                skipped.push(Skipped {
                    pages,
                    reason: format!("needs {} MiB free for its peers", need >> 20),
                });
                status.step(per_size);
                continue;
            }
            status.say(&format!("{pages} pages: {} rounds", args.rounds));
            results.extend(measure_size(&ctx, pages, usize::from(args.rounds), status)?);
            sizes.push(pages);
        }
        Ok(())
    })();
    // Leave the device as it was found.
    let restore_mode = mode_at_start.restore();
    let restore_map_pages = map_pages_at_start.restore();
    if outcome.is_err() {
        // The measurement's error is the one returned; say these too.
        for (what, r) in [("mode", &restore_mode), ("map_pages", &restore_map_pages)] {
            if let Err(e) = r {
                eprintln!("mapdrv: warning: cannot set debugfs {what} back: {e}");
            }
        }
    }
    outcome?;
    restore_mode.context("cannot set debugfs mode back")?;
    restore_map_pages.context("cannot set debugfs map_pages back")?;
    if sizes.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{} pages: {}", s.pages, s.reason))
            .collect();
        bail!(
            "no size could be measured ({}); pass --sizes that fit, or load the module with a \
             larger pages=",
            why.join("; ")
        );
    }
    Ok((env, sizes, results))
}

/// What the jobs of one size share.
struct Ctx<'a> {
    dev: &'a File,
    dbg: &'a Debugfs,
    map_pages_file: &'a Path,
    page_size: usize,
}

/// One thing measured per round: a mapping path or a pread path.
#[derive(Debug, Clone, Copy)]
enum Job {
    Map(&'static str),
    Pread(&'static str),
}

fn measure_size(
    ctx: &Ctx<'_>,
    pages: usize,
    rounds: usize,
    status: &Status,
) -> Result<Vec<model::Series>> {
    let len = pages * ctx.page_size;
    let memfd = mem::filled_memfd(len, ctx.page_size)?;
    let memfd_thp = mem::filled_thp_memfd(len, ctx.page_size)?;
    // The anonymous peer of the sequential read: allocated and written once
    // per size, like the device's buffer (once per load) and the memfd, so
    // that every round reads the same physical pages. Fresh anonymous pages
    // come off the allocator's per-CPU free lists, last freed first, so
    // their physical order flips from one round to the next; under TCG the
    // rounds that read pages in descending physical order were 50% slower,
    // which measured the allocator, not the mapping.
    let anon = mem::map(Kind::Anonymous, None, len).context("anonymous peer")?;
    anon.touch_write(ctx.page_size, 1);
    let mut buf = vec![1u8; len.min(1 << 20)];
    let jobs: Vec<Job> = model::MAP_PATHS
        .iter()
        .map(|p| Job::Map(p.name))
        .chain(model::PREAD_PATHS.iter().map(|p| Job::Pread(p.name)))
        .collect();
    let samples = (ROUND_PAGES / pages).clamp(1, 64);
    let passes = (ROUND_PAGES / pages).clamp(1, 16);
    let mut rounds_of = SizeRounds::default();
    // Round 0 warms up and is not recorded.
    for round in 0..=rounds {
        for k in 0..jobs.len() {
            let job = jobs[(k + round) % jobs.len()];
            match job {
                Job::Map(path) => {
                    let v = map_job(ctx, &memfd, &memfd_thp, &anon, path, pages, samples, passes)?;
                    if round > 0 {
                        for (metric, value) in v {
                            rounds_of.push(metric, path, value);
                        }
                    }
                }
                Job::Pread(path) => {
                    let fd = if path == "mapdrv" {
                        ctx.dev.as_fd()
                    } else {
                        memfd.as_fd()
                    };
                    let mut per_page = Vec::with_capacity(samples);
                    for _ in 0..samples {
                        let (ns, n) = mem::time_ns(|| -> Result<usize> {
                            let mut n = 0;
                            for _ in 0..passes {
                                n += mem::pread_all(fd, len, &mut buf)?;
                            }
                            Ok(n)
                        });
                        ensure!(n? == passes * len, "{path}: short pread");
                        per_page.push(ns / (passes * pages) as f64);
                    }
                    if round > 0 {
                        rounds_of.push("pread", path, model::median(&per_page));
                    }
                }
            }
        }
        status.step(1);
    }
    Ok(rounds_of.into_series(pages))
}

/// The kernel's shmem THP setting.
const SHMEM_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// Lets shmem allocate huge pages where asked (`advise`), when its setting
/// (`always within_size advise [never] deny force`) refuses them; returns
/// the setting to put back. None without THP (32-bit ARM), where the
/// memfd-thp peer is a plain memfd, or when the setting allows already.
fn allow_shmem_thp() -> Result<Option<Saved>> {
    let Ok(now) = std::fs::read_to_string(SHMEM_ENABLED) else {
        return Ok(None);
    };
    if ["[always]", "[within_size]", "[advise]", "[force]"]
        .iter()
        .any(|s| now.contains(s))
    {
        return Ok(None);
    }
    let saved = Saved::of_file(Path::new(SHMEM_ENABLED))?;
    std::fs::write(SHMEM_ENABLED, "advise")
        .with_context(|| format!("cannot write {SHMEM_ENABLED}"))?;
    Ok(Some(saved))
}

/// Sets up the device for a path; the peers need nothing.
fn select(ctx: &Ctx<'_>, path: &str) -> Result<Option<Kind>> {
    let (mode, map_pages) = match path {
        "fault" => (Mode::Fault, "1"),
        "faultaround" => (Mode::Faultaround, "1"),
        "prefault" => (Mode::Prefault, "1"),
        "huge" => (Mode::Huge, "1"),
        "fault-mmaplock" => (Mode::Fault, "0"),
        "faultaround-mmaplock" => (Mode::Faultaround, "0"),
        _ => return Ok(None),
    };
    ctx.dbg
        .write_mode(mode.name())
        .context("cannot write debugfs mode")?;
    std::fs::write(ctx.map_pages_file, map_pages).context("cannot write debugfs map_pages")?;
    Ok(Some(Kind::SharedFile))
}

/// One round of a mapping path: `samples` fresh mappings, each mapped,
/// touched and read `passes` times (`anon` reads `anon_read` instead: see
/// [`measure_size`]); the median of each metric.
#[allow(clippy::too_many_arguments)]
fn map_job(
    ctx: &Ctx<'_>,
    memfd: &File,
    memfd_thp: &File,
    anon_read: &Mapping,
    path: &'static str,
    pages: usize,
    samples: usize,
    passes: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let len = pages * ctx.page_size;
    let device_kind = select(ctx, path)?;
    let (kind, fd) = match (device_kind, path) {
        (Some(kind), _) => (kind, Some(ctx.dev.as_fd())),
        (None, "memfd") => (Kind::SharedFile, Some(memfd.as_fd())),
        (None, "memfd-thp") => (Kind::SharedFile, Some(memfd_thp.as_fd())),
        (None, "memfd-populate") => (Kind::SharedFilePopulate, Some(memfd.as_fd())),
        (None, _) => (Kind::Anonymous, None),
    };
    let private_write = model::MAP_PATHS
        .iter()
        .any(|p| p.name == path && p.private_write);
    let mut cols: [Vec<f64>; 9] = Default::default();
    let per_page = |ns: f64| ns / pages as f64;
    for _ in 0..samples {
        let (mmap_ns, region) = mem::time_ns(|| mem::map(kind, fd, len));
        let region = region.with_context(|| format!("{path}: mmap of {pages} pages"))?;
        let faults_before = mem::minor_faults();
        let (touch_ns, ()) = mem::time_ns(|| {
            if kind == Kind::Anonymous {
                region.touch_write(ctx.page_size, 1);
            } else {
                black_box(region.touch_read(ctx.page_size));
            }
        });
        let faults = mem::minor_faults() - faults_before;
        let read_from: &Mapping = if kind == Kind::Anonymous {
            anon_read
        } else {
            &region
        };
        // One untimed pass first, so that every path's timed read starts
        // from the same state: the pages just read once, their TLB entries
        // (under TCG: QEMU's software TLB) as warm as they can be. Without
        // it the reads depended on what came before them: the anonymous
        // buffer, last touched a round earlier, read 25% slower from 4096
        // pages on, which measured a cold TLB, not the memory.
        black_box(read_from.read_words());
        let (read_ns, ()) = mem::time_ns(|| {
            for _ in 0..passes {
                black_box(read_from.read_words());
            }
        });
        cols[0].push(per_page(touch_ns));
        cols[1].push(faults as f64 / pages as f64);
        cols[2].push(per_page(mmap_ns));
        cols[3].push(per_page(mmap_ns + touch_ns));
        cols[4].push(read_ns / (passes * pages) as f64);
        // Outside the timed parts: how the pages just read lie in memory.
        if let Some(runs) = mem::pfn_runs_per_1000(read_from, ctx.page_size) {
            cols[5].push(runs);
        }
        drop(region);
        if private_write {
            let map_private = || {
                mem::map(Kind::PrivateFile, fd, len)
                    .with_context(|| format!("{path}: MAP_PRIVATE mmap of {pages} pages"))
            };
            // A second fresh mapping, MAP_PRIVATE, written first: each page's
            // fault copies it (do_cow_fault).
            let private = map_private()?;
            let faults_before = mem::minor_faults();
            let (write_ns, ()) = mem::time_ns(|| private.touch_write(ctx.page_size, 2));
            let faults = mem::minor_faults() - faults_before;
            cols[6].push(per_page(write_ns));
            cols[7].push(faults as f64 / pages as f64);
            drop(private);
            // And a third, read once (untimed) before it is written: every
            // path's write then starts from the state prefault's mmap leaves,
            // read-only entries that each write replaces (do_wp_page), which
            // is the fair peer of prefault's private write.
            let read_first = map_private()?;
            black_box(read_first.touch_read(ctx.page_size));
            let (write_ns, ()) = mem::time_ns(|| read_first.touch_write(ctx.page_size, 2));
            cols[8].push(per_page(write_ns));
        }
    }
    // (pfn_runs is left out when pagemap hides the PFNs, the private_write
    // pair on the paths that are not written privately.)
    Ok([
        "touch",
        "faults",
        "mmap",
        "mmap_touch",
        "read",
        "pfn_runs",
        "private_write",
        "private_write_faults",
        "private_write_over_read",
    ]
    .into_iter()
    .zip(&cols)
    .filter(|(_, c)| !c.is_empty())
    .map(|(name, c)| (name, model::median(c)))
    .collect())
}

/// Pins the calling thread, which does all the timed work, to the CPU it is
/// running on, and returns that CPU: the scheduler must not move it between
/// the CPUs of the guest (two by default) in the middle of a measurement,
/// which would time a migration and a cold cache.
fn pin_to_this_cpu() -> Result<usize> {
    use nix::sched::{CpuSet, sched_getcpu, sched_setaffinity};
    let cpu = sched_getcpu().context("sched_getcpu")?;
    let mut set = CpuSet::new();
    set.set(cpu)
        .context("CPU number out of range of a cpu_set_t")?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("cannot pin the benchmark to CPU {cpu}"))?;
    Ok(cpu)
}

/// Where the benchmark runs.
fn environment(page_size: usize, device_pages: usize, mode: &str) -> Env {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    };
    Env {
        clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        clock: "CLOCK_MONOTONIC".into(),
        clock_resolution_ns: mem::clock_resolution_ns(),
        accelerator: with_icount(accelerator(), &read("/proc/cmdline")),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into()),
        // Online CPUs, not this thread's affinity (it is pinned to one).
        cpus: nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1),
        pinned_cpu: None,
        mem_total_kib: meminfo("MemTotal:").unwrap_or(0) / 1024,
        page_size,
        device_pages,
        device_mode_at_start: mode.into(),
    }
}

/// The accelerator, with " icount" when the VM runs under QEMU's
/// instruction counter (scripts/run-vm.sh --icount puts `mapdrv.icount=1` on
/// the kernel command line; nothing inside the guest can tell otherwise).
/// There the clock advances one nanosecond per guest instruction, so the
/// report must say that its times count instructions.
fn with_icount(accelerator: String, cmdline: &str) -> String {
    if cmdline.split_whitespace().any(|w| w == "mapdrv.icount=1") {
        format!("{accelerator} icount")
    } else {
        accelerator
    }
}

/// x86_64: the hypervisor CPUID leaf's vendor: "TCG" under QEMU's emulator,
/// "KVM", another vendor's name, or "none" without a hypervisor.
#[cfg(target_arch = "x86_64")]
fn accelerator() -> String {
    use std::arch::x86_64::__cpuid;
    // CPUID.1:ECX bit 31 says a hypervisor is present.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU and only reads.
    let leaf1 = unsafe { __cpuid(1) };
    if leaf1.ecx & (1 << 31) == 0 {
        return "none".into();
    }
    #[allow(unused_unsafe)]
    // SAFETY: as above; leaf 0x40000000 is the hypervisor's vendor leaf.
    let vendor = unsafe { __cpuid(0x4000_0000) };
    let mut sig = Vec::with_capacity(12);
    for reg in [vendor.ebx, vendor.ecx, vendor.edx] {
        sig.extend_from_slice(&reg.to_le_bytes());
    }
    let sig = String::from_utf8_lossy(&sig)
        .trim_end_matches('\0')
        .to_string();
    match sig.as_str() {
        "TCGTCGTCGTCG" => "TCG".into(),
        "KVMKVMKVM" => "KVM".into(),
        "" => "unknown hypervisor".into(),
        other => other.into(),
    }
}

/// arm64 has no CPUID hypervisor leaf for user space. What it can read:
/// QEMU's virt machine names itself in the device tree
/// (`linux,dummy-virt`), and the CPU QEMU's emulator runs there for
/// `-cpu max` (how scripts/run-vm.sh boots a TCG guest) is QEMU's own, with
/// MIDR implementer 0x00 ("reserved for software use"), which KVM never
/// shows: with `-cpu host` the guest sees the host CPU's MIDR. So "TCG",
/// "KVM" on a virt machine with a real CPU, or "unknown" elsewhere (bare
/// metal looks like any other machine).
#[cfg(target_arch = "aarch64")]
fn accelerator() -> String {
    let compatible = std::fs::read("/proc/device-tree/compatible").unwrap_or_default();
    let qemu_virt = compatible
        .split(|&b| b == 0)
        .any(|c| c == b"linux,dummy-virt");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    aarch64_accelerator(qemu_virt, &cpuinfo).into()
}

/// The accelerator of an arm64 machine from whether it is QEMU's virt
/// machine and its /proc/cpuinfo.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
fn aarch64_accelerator(qemu_virt: bool, cpuinfo: &str) -> &'static str {
    let implementer = cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "CPU implementer").then(|| value.trim())
    });
    match (qemu_virt, implementer) {
        (true, Some("0x00")) => "TCG",
        (true, Some(_)) => "KVM",
        _ => "unknown",
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn accelerator() -> String {
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icount_is_read_from_the_kernel_command_line() {
        let cmdline = "console=ttyS0 tsc_early_khz=1000000 mapdrv.icount=1 quiet";
        assert_eq!(with_icount("TCG".into(), cmdline), "TCG icount");
        assert_eq!(with_icount("TCG".into(), "console=ttyS0 quiet"), "TCG");
        // Only the whole word: another value or a longer name is not it.
        assert_eq!(with_icount("TCG".into(), "mapdrv.icount=10"), "TCG");
        assert_eq!(with_icount("TCG".into(), "xmapdrv.icount=1"), "TCG");
    }

    #[test]
    fn arm64_accelerator_from_the_machine_and_cpu() {
        // QEMU's `-cpu max` under TCG, a host CPU under KVM (Neoverse N1).
        let tcg =
            "processor\t: 0\nBogoMIPS\t: 125.00\nCPU implementer\t: 0x00\nCPU part\t: 0x051\n";
        let kvm = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n";
        assert_eq!(aarch64_accelerator(true, tcg), "TCG");
        assert_eq!(aarch64_accelerator(true, kvm), "KVM");
        assert_eq!(aarch64_accelerator(false, kvm), "unknown");
        assert_eq!(aarch64_accelerator(true, ""), "unknown");
    }
}
