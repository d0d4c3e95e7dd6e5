// SPDX-License-Identifier: GPL-2.0

//! What the benchmark measures and reports: the paths, the metrics, the
//! JSON report (also read back by `--from-json`), round summaries, per-round
//! ratios and the targets the device's modes are held to: each mode should
//! cost no more than the kernel's own path it stands in for (a memfd's page
//! cache, MAP_POPULATE, anonymous memory), and the module's load should
//! scale linearly with the buffer.

use serde::{Deserialize, Serialize};

/// One way to get memory into a process.
#[derive(Debug, Clone, Copy)]
pub struct PathDef {
    pub name: &'static str,
    pub what: &'static str,
    /// Whether the path is also written first through a fresh MAP_PRIVATE
    /// mapping (the `private_write` metrics): the device in the modes that
    /// fault, and its peer, the memfd.
    pub private_write: bool,
}

/// The mapping paths, in table order.
pub const MAP_PATHS: [PathDef; 10] = [
    PathDef {
        name: "fault",
        what: "mapdrv mode=fault: one page per fault (with .map_pages: faults under the per-VMA lock)",
        private_write: true,
    },
    PathDef {
        name: "faultaround",
        what: "mapdrv mode=faultaround: the aligned batch of faultaround_pages (16) per fault, one vm_insert_pages",
        private_write: true,
    },
    PathDef {
        name: "prefault",
        what: "mapdrv mode=prefault: every page inserted by mmap",
        private_write: true,
    },
    PathDef {
        name: "huge",
        what: "mapdrv mode=huge: a whole 2 MiB block per fault with one PMD entry (from 512 pages; one page per fault below), the buffer allocated in 2 MiB blocks",
        private_write: false,
    },
    PathDef {
        name: "fault-mmaplock",
        what: "mapdrv mode=fault without .map_pages: each fault retried under mmap_lock",
        private_write: false,
    },
    PathDef {
        name: "faultaround-mmaplock",
        what: "mapdrv mode=faultaround without .map_pages",
        private_write: false,
    },
    PathDef {
        name: "memfd",
        what: "memfd_create file of the same size, pre-filled, MAP_SHARED: the page-cache fault path with the kernel's fault-around",
        private_write: true,
    },
    PathDef {
        name: "memfd-populate",
        what: "the same memfd mapped with MAP_POPULATE",
        private_write: false,
    },
    PathDef {
        name: "memfd-thp",
        what: "a memfd on shmem with transparent huge pages (shmem_enabled=advise and MADV_HUGEPAGE while it is filled), pre-filled, MAP_SHARED: the kernel's own 2 MiB page-cache mapping",
        private_write: false,
    },
    PathDef {
        name: "anon",
        what: "anonymous MAP_PRIVATE memory; its first touch writes (allocate and zero a page); its read is of an anonymous buffer written once per size",
        private_write: false,
    },
];

/// The pread(2) paths.
pub const PREAD_PATHS: [PathDef; 2] = [
    PathDef {
        name: "mapdrv",
        what: "pread(2) of /dev/mapdrv: a copy from the vmalloc buffer",
        private_write: false,
    },
    PathDef {
        name: "memfd",
        what: "pread(2) of the pre-filled memfd: a copy from the page cache",
        private_write: false,
    },
];

/// Something measured per path and size.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    /// The path each round's value is divided by, if any.
    pub reference: Option<&'static str>,
    /// Whether it is measured on the pread paths (else the mapping paths).
    pub pread: bool,
}

pub const METRICS: [MetricDef; 10] = [
    MetricDef {
        name: "touch",
        title: "first touch of a fresh mapping (one byte per page)",
        unit: "ns/page",
        reference: Some("memfd"),
        pread: false,
    },
    MetricDef {
        name: "faults",
        title: "minor faults per page during the first touch (getrusage)",
        unit: "faults/page",
        reference: None,
        pread: false,
    },
    MetricDef {
        name: "private_write",
        title: "first write of a fresh MAP_PRIVATE mapping (one byte per page: a copy per page)",
        unit: "ns/page",
        reference: Some("memfd"),
        pread: false,
    },
    MetricDef {
        name: "private_write_faults",
        title: "minor faults per page during that first private write (getrusage)",
        unit: "faults/page",
        reference: None,
        pread: false,
    },
    MetricDef {
        name: "private_write_over_read",
        title: "first write of a MAP_PRIVATE mapping read once before (read-only entries present, as prefault's mmap leaves them: a write-protect fault, a copy and a TLB flush per page)",
        unit: "ns/page",
        reference: Some("memfd"),
        pread: false,
    },
    MetricDef {
        name: "mmap",
        title: "mmap call",
        unit: "ns/page",
        reference: Some("memfd"),
        pread: false,
    },
    MetricDef {
        name: "mmap_touch",
        title: "mmap call + first touch",
        unit: "ns/page",
        reference: Some("memfd-populate"),
        pread: false,
    },
    MetricDef {
        name: "read",
        title: "sequential read of the mapped, touched buffer",
        unit: "ns/page",
        reference: Some("anon"),
        pread: false,
    },
    MetricDef {
        name: "pfn_runs",
        title: "layout of the buffer read: runs of physically consecutive pages (pagemap)",
        unit: "runs/1000 pages",
        reference: None,
        pread: false,
    },
    MetricDef {
        name: "pread",
        title: "pread(2) of the whole size into a user buffer",
        unit: "ns/page",
        reference: Some("memfd"),
        pread: true,
    },
];

pub fn metric(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

/// Median, min and max of some rounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub rounds: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `values` (NaN for all three when there are none).
    pub fn of(values: Vec<f64>) -> Summary {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        Summary {
            median: median_of_sorted(&sorted),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            rounds: values,
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even
/// count); NaN for none.
pub fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The median of unsorted values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    median_of_sorted(&sorted)
}

/// One metric of one path at one size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Series {
    pub metric: String,
    pub path: String,
    pub pages: usize,
    pub unit: String,
    #[serde(flatten)]
    pub value: Summary,
    /// Each round's value divided by the reference path's in the same round.
    pub ratio: Option<Ratio>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    pub vs: String,
    #[serde(flatten)]
    pub value: Summary,
}

/// The module's load at one size: its own timing of each phase and the
/// finit_module(2) call timed from user space, all in ns per page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadSeries {
    pub pages: usize,
    pub alloc_ns_per_page: Summary,
    pub fill_ns_per_page: Summary,
    pub walk_ns_per_page: Summary,
    /// alloc + fill + walk.
    pub total_ns_per_page: Summary,
    pub insmod_ns_per_page: Summary,
}

/// Where and how the benchmark ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Env {
    /// /sys/devices/system/clocksource/clocksource0/current_clocksource.
    pub clocksource: String,
    pub clock: String,
    pub clock_resolution_ns: Option<u64>,
    /// "TCG", "KVM", another name, "none" on bare metal, or "unknown"
    /// (x86_64: from the CPUID hypervisor leaf; arm64: from the device tree
    /// and the CPU's MIDR).
    pub accelerator: String,
    pub kernel: String,
    pub cpus: usize,
    /// The CPU the timed thread was pinned to (reports before pinning have
    /// none).
    #[serde(default)]
    pub pinned_cpu: Option<usize>,
    pub mem_total_kib: u64,
    pub page_size: usize,
    pub device_pages: usize,
    pub device_mode_at_start: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathInfo {
    pub name: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricInfo {
    pub name: String,
    pub title: String,
    pub unit: String,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub pages: usize,
    pub reason: String,
}

/// One of the targets of the device's modes (see the module doc), judged on
/// the medians of per-round ratios.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub name: String,
    /// None when the run did not measure what it needs.
    pub met: Option<bool>,
    pub detail: String,
}

/// The whole report (`--json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub tool: String,
    pub env: Env,
    pub rounds: usize,
    pub sizes: Vec<usize>,
    pub skipped: Vec<Skipped>,
    pub paths: Vec<PathInfo>,
    pub pread_paths: Vec<PathInfo>,
    pub metrics: Vec<MetricInfo>,
    pub results: Vec<Series>,
    pub load: Vec<LoadSeries>,
    /// The commit the module and tool were built from, if the runner said
    /// (`--source-commit`; `-dirty` when the tree had changes).
    #[serde(default)]
    pub source_commit: Option<String>,
    /// The command that ran the bench, if the runner said (`--command`).
    #[serde(default)]
    pub command: Option<String>,
    pub targets: Vec<Target>,
    pub seconds: f64,
}

impl Report {
    pub fn series(&self, metric: &str, path: &str, pages: usize) -> Option<&Series> {
        self.results
            .iter()
            .find(|s| s.metric == metric && s.path == path && s.pages == pages)
    }
}

/// Round values of each (metric, path) at one size, as measured.
#[derive(Debug, Default)]
pub struct SizeRounds {
    /// (metric, path) -> one value per round.
    pub values: std::collections::BTreeMap<(&'static str, &'static str), Vec<f64>>,
}

impl SizeRounds {
    pub fn push(&mut self, metric: &'static str, path: &'static str, value: f64) {
        self.values.entry((metric, path)).or_default().push(value);
    }

    /// The series of this size: summaries, and ratios to each metric's
    /// reference path round by round.
    pub fn into_series(self, pages: usize) -> Vec<Series> {
        let mut out = Vec::new();
        for (&(metric, path), rounds) in &self.values {
            let def = self::metric(metric);
            let ratio = def.and_then(|d| d.reference).and_then(|reference| {
                let refs = self.values.get(&(metric, reference))?;
                let ratios: Vec<f64> = rounds.iter().zip(refs).map(|(v, r)| v / r).collect();
                Some(Ratio {
                    vs: reference.to_string(),
                    value: Summary::of(ratios),
                })
            });
            out.push(Series {
                metric: metric.to_string(),
                path: path.to_string(),
                pages,
                unit: def.map_or("", |d| d.unit).to_string(),
                value: Summary::of(rounds.clone()),
                ratio,
            });
        }
        out
    }
}

/// The faults per page `faultaround` may take: 1/16 per page, plus at most
/// one partial window per mapping.
pub fn faultaround_fault_limit(pages: usize, batch: usize) -> f64 {
    1.0 / batch as f64 + 1.0 / pages as f64
}

/// Judges the targets of the device's modes on a finished report.
pub fn judge_targets(r: &Report) -> Vec<Target> {
    let mut targets = Vec::new();
    let ratio_at = |metric: &str, path: &str, pages: usize| {
        r.series(metric, path, pages)
            .and_then(|s| s.ratio.as_ref())
            .map(|x| x.value.clone())
    };
    // Worst (largest |ratio - ideal|) median ratio over some sizes.
    let judge_ratio =
        |name: String, metric: &str, paths: &[&str], min_pages: usize, ok: &dyn Fn(f64) -> bool| {
            let mut seen = Vec::new();
            for &pages in r.sizes.iter().filter(|&&p| p >= min_pages) {
                for &path in paths {
                    if let Some(s) = ratio_at(metric, path, pages) {
                        seen.push((path, pages, s));
                    }
                }
            }
            if seen.is_empty() {
                return Target::not_measured(name, "");
            }
            let failed: Vec<String> = seen
                .iter()
                .filter(|(_, _, s)| !ok(s.median))
                .map(|(path, pages, s)| {
                    format!(
                        "{path} {pages} pages: {:.3} [{:.3}..{:.3}]",
                        s.median, s.min, s.max
                    )
                })
                .collect();
            let all: Vec<String> = seen
                .iter()
                .map(|(path, pages, s)| format!("{path}@{pages} {:.3}", s.median))
                .collect();
            Target {
                name,
                met: Some(failed.is_empty()),
                detail: if failed.is_empty() {
                    format!("median ratios: {}", all.join(", "))
                } else {
                    format!("missed at {}", failed.join("; "))
                },
            }
        };
    targets.push(judge_ratio(
        "faultaround first touch <= 1.0x memfd MAP_SHARED at every size >= 64 pages".into(),
        "touch",
        &["faultaround"],
        64,
        &|x| x <= 1.0,
    ));
    targets.push(judge_ratio(
        "prefault mmap+touch <= 1.0x memfd MAP_POPULATE".into(),
        "mmap_touch",
        &["prefault"],
        0,
        &|x| x <= 1.0,
    ));
    targets.push(judge_ratio(
        "sequential read of a mapped buffer within 10% of anonymous memory".into(),
        "read",
        &["fault", "faultaround", "prefault"],
        0,
        &|x| (x - 1.0).abs() <= 0.10,
    ));
    targets.push(judge_ratio(
        "private write first touch <= 1.0x memfd MAP_PRIVATE write first touch".into(),
        "private_write",
        &["fault", "faultaround", "prefault"],
        0,
        &|x| x <= 1.0,
    ));
    targets.push(judge_ratio(
        "huge first touch <= 0.1x memfd MAP_SHARED at every size >= 512 pages".into(),
        "touch",
        &["huge"],
        HUGE_PAGES,
        &|x| x <= 0.1,
    ));
    targets.push(judge_huge_vs_thp(r));
    targets.push(judge_faults(r));
    targets.push(judge_load(r));
    targets
}

impl Target {
    /// A target the run did not measure; `why` follows "not measured in
    /// this run".
    fn not_measured(name: String, why: &str) -> Target {
        Target {
            name,
            met: None,
            detail: format!("not measured in this run{why}"),
        }
    }
}

/// Pages in a 2 MiB block, what one PMD entry maps (4 KiB pages).
pub const HUGE_PAGES: usize = 512;

/// The faults per page huge mode takes on the first touch of `pages` pages
/// from offset 0 at an aligned address: one per whole 2 MiB block, one per
/// page of the rest.
pub fn huge_faults_per_page(pages: usize) -> f64 {
    (pages / HUGE_PAGES + pages % HUGE_PAGES) as f64 / pages as f64
}

/// huge against memfd-thp, both 2 MiB mappings: median of the per-round
/// ratios of their first touch, at sizes of whole blocks.
fn judge_huge_vs_thp(r: &Report) -> Target {
    let name =
        "huge first touch <= 1.0x memfd-thp (shmem with THP) at every size >= 512 pages".into();
    let mut seen = Vec::new();
    for &pages in r.sizes.iter().filter(|&&p| p >= HUGE_PAGES) {
        let (Some(h), Some(t)) = (
            r.series("touch", "huge", pages),
            r.series("touch", "memfd-thp", pages),
        ) else {
            continue;
        };
        let ratios: Vec<f64> = h
            .value
            .rounds
            .iter()
            .zip(&t.value.rounds)
            .map(|(a, b)| a / b)
            .collect();
        seen.push((pages, median(&ratios)));
    }
    if seen.is_empty() {
        return Target::not_measured(name, " (sizes >= 512 pages)");
    }
    let list: Vec<String> = seen
        .iter()
        .map(|(p, x)| format!("huge@{p} {x:.3}"))
        .collect();
    Target {
        name,
        met: Some(seen.iter().all(|(_, x)| *x <= 1.0)),
        detail: format!("median ratios: {}", list.join(", ")),
    }
}

fn judge_faults(r: &Report) -> Target {
    let name = "faults per page: fault exactly 1.0, faultaround <= 1/16 + 1/pages, prefault 0, \
        huge one per 2 MiB block (1/512) and one per page of the rest; \
        a first private write exactly 1.0 in every mode"
        .into();
    let mut problems = Vec::new();
    let mut measured = 0;
    let one = |x: f64| x == 1.0;
    for &pages in &r.sizes {
        for (metric, path, ok) in [
            ("faults", "fault", &one as &dyn Fn(f64) -> bool),
            ("faults", "faultaround", &|x| {
                x <= faultaround_fault_limit(pages, 16)
            }),
            ("faults", "prefault", &|x| x == 0.0),
            ("faults", "huge", &|x| x == huge_faults_per_page(pages)),
            ("private_write_faults", "fault", &one),
            ("private_write_faults", "faultaround", &one),
            ("private_write_faults", "prefault", &one),
        ] {
            if let Some(s) = r.series(metric, path, pages) {
                measured += 1;
                if let Some(bad) = s.value.rounds.iter().find(|&&x| !ok(x)) {
                    problems.push(format!("{metric} {path} {pages} pages: {bad:.4}"));
                }
            }
        }
    }
    Target {
        name,
        met: (measured > 0).then_some(problems.is_empty()),
        detail: if measured == 0 {
            "not measured in this run".into()
        } else if problems.is_empty() {
            "every round of every size".into()
        } else {
            format!("missed at {}", problems.join("; "))
        },
    }
}

/// The finit_module(2) call's cost split into a fixed part (the module's ELF
/// loading, relocation, its KUnit tests: the same at every size) and a part
/// per page, fitted to the fastest round of each size.
///
/// Why the fastest and not the median: the rounds of one size differ by a
/// disturbance that only ever adds. Under TCG a quarter to over half of the
/// loads take 20 to 110 ms more, nearly all of it CPU time of the loading
/// thread itself (getrusage), along the same kernel path (a fresh execmem
/// block at every load, no more IPIs than the fast loads): the same code
/// running slower, which leaves the emulator, not the module. The median of
/// seven rounds lands in either mode, and at 1024 pages (10 ms of per-page
/// work beside 33-40 ms of fixed cost) that alone put the per-page figure
/// 268% off. The fastest round is the least disturbed one, and the per-page
/// work is in every round. See docs/performance.md, "finit_module's two
/// modes".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinitFit {
    pub fixed_ns: f64,
    pub ns_per_page: f64,
}

impl FinitFit {
    /// Fits `total = fixed + ns_per_page * pages` to the fastest round of
    /// each load size, by least squares of the errors relative to each total
    /// (a plain fit would let the largest size's noise, milliseconds, set the
    /// fixed cost). `None` with fewer than two sizes.
    pub fn of(load: &[LoadSeries]) -> Option<FinitFit> {
        let points: Vec<(f64, f64)> = load
            .iter()
            .map(|l| (l.pages as f64, l.insmod_ns_per_page.min * l.pages as f64))
            .filter(|&(_, y)| y.is_finite() && y > 0.0)
            .collect();
        if points.len() < 2 {
            return None;
        }
        let (mut s, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, y) in &points {
            let w = 1.0 / (y * y);
            s += w;
            sx += w * x;
            sy += w * y;
            sxx += w * x * x;
            sxy += w * x * y;
        }
        let det = s * sxx - sx * sx;
        (det > 0.0).then(|| FinitFit {
            fixed_ns: (sxx * sy - sx * sxy) / det,
            ns_per_page: (s * sxy - sx * sy) / det,
        })
    }

    /// finit_module's ns per page at `l`'s size (its fastest round) without
    /// the fixed cost.
    pub fn variable_ns_per_page(&self, l: &LoadSeries) -> f64 {
        l.insmod_ns_per_page.min - self.fixed_ns / l.pages as f64
    }
}

/// The largest relative deviation of `points` (pages, ns/page) from their
/// median, with its size, and the points as text.
fn flatness(points: &[(usize, f64)]) -> ((usize, f64), String) {
    let mid = median(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let worst = points
        .iter()
        .map(|&(pages, v)| (pages, v / mid - 1.0))
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap_or((0, 0.0));
    let list: Vec<String> = points.iter().map(|(p, v)| format!("{p}: {v:.0}")).collect();
    (worst, list.join(", "))
}

fn judge_load(r: &Report) -> Target {
    let name = "module load time per page flat (+-20%) from 1024 to 262144 pages, \
        as the module times it and as finit_module takes it less its fixed cost"
        .into();
    let in_range = |l: &&LoadSeries| (1024..=262_144).contains(&l.pages);
    let module: Vec<(usize, f64)> = r
        .load
        .iter()
        .filter(in_range)
        .map(|l| (l.pages, l.total_ns_per_page.median))
        .collect();
    let fit = FinitFit::of(&r.load);
    if module.len() < 2 {
        return Target::not_measured(name, " (mapdrv bench --module)");
    }
    let (m_worst, m_list) = flatness(&module);
    let mut met = m_worst.1.abs() <= 0.20;
    let mut detail = format!(
        "module-timed ns/page {m_list}; largest deviation from their median {:+.1}% at {} pages",
        m_worst.1 * 100.0,
        m_worst.0
    );
    if let Some(fit) = fit {
        let finit: Vec<(usize, f64)> = r
            .load
            .iter()
            .filter(in_range)
            .map(|l| (l.pages, fit.variable_ns_per_page(l)))
            .collect();
        let (f_worst, f_list) = flatness(&finit);
        met &= f_worst.1.abs() <= 0.20;
        detail += &format!(
            "; finit_module less its fixed cost ({:.1} ms, fitted to each size's fastest round) ns/page {f_list}; \
             largest deviation {:+.1}% at {} pages",
            fit.fixed_ns / 1e6,
            f_worst.1 * 100.0,
            f_worst.0
        );
    }
    Target {
        name,
        met: Some(met),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with no results, to hang load series on.
    fn sample_report() -> Report {
        Report {
            tool: "mapdrv bench test".into(),
            env: Env {
                clocksource: "tsc".into(),
                clock: "CLOCK_MONOTONIC".into(),
                clock_resolution_ns: Some(1),
                accelerator: "TCG".into(),
                kernel: "7.3.4".into(),
                cpus: 2,
                pinned_cpu: Some(1),
                mem_total_kib: 1 << 20,
                page_size: 4096,
                device_pages: 262_144,
                device_mode_at_start: "fault".into(),
            },
            rounds: 1,
            sizes: Vec::new(),
            skipped: Vec::new(),
            paths: Vec::new(),
            pread_paths: Vec::new(),
            metrics: Vec::new(),
            results: Vec::new(),
            load: Vec::new(),
            source_commit: None,
            command: None,
            targets: Vec::new(),
            seconds: 0.0,
        }
    }

    fn load_at(pages: usize, insmod_ns_per_page: f64) -> LoadSeries {
        let one = |x: f64| Summary::of(vec![x]);
        LoadSeries {
            pages,
            alloc_ns_per_page: one(1.0),
            fill_ns_per_page: one(1.0),
            walk_ns_per_page: one(1.0),
            total_ns_per_page: one(3.0),
            insmod_ns_per_page: one(insmod_ns_per_page),
        }
    }

    #[test]
    fn finit_fit_separates_the_fixed_cost() {
        // 15 ms fixed plus 5000 ns per page.
        let load: Vec<LoadSeries> = [256, 1024, 4096, 65536]
            .map(|p| load_at(p, 5000.0 + 15e6 / p as f64))
            .to_vec();
        let fit = FinitFit::of(&load).expect("two sizes or more");
        assert!((fit.fixed_ns - 15e6).abs() < 1.0, "{fit:?}");
        assert!((fit.ns_per_page - 5000.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.variable_ns_per_page(&load[0]) - 5000.0).abs() < 1e-3);
        assert_eq!(FinitFit::of(&load[..1]), None);
    }

    #[test]
    fn load_target_judges_finit_less_its_fixed_cost() {
        let flat = |p: usize| load_at(p, 5000.0 + 15e6 / p as f64);
        let mut r = sample_report();
        r.load = [1024, 4096, 65536].map(flat).to_vec();
        let t = judge_load(&r);
        assert_eq!(t.met, Some(true), "{}", t.detail);
        assert!(t.detail.contains("15.0 ms"), "{}", t.detail);
        // Per page 2x at the largest size: not linear, whatever the fit.
        r.load[2] = load_at(65536, 10000.0 + 15e6 / 65536.0);
        assert_eq!(judge_load(&r).met, Some(false));
    }

    #[test]
    fn finit_fit_is_not_moved_by_slow_rounds() {
        // 33 ms fixed plus 10000 ns per page in the fast rounds; at the two
        // small sizes four of seven rounds also took 60 ms more, so their
        // medians are in the slow mode (measured under TCG at 1024 pages).
        let load: Vec<LoadSeries> = [256, 1024, 4096, 65536]
            .map(|pages| {
                let fast = 10000.0 + 33e6 / pages as f64;
                let slow = fast + 60e6 / pages as f64;
                let rounds = if pages <= 1024 {
                    vec![slow, fast, slow, fast, slow, fast, slow]
                } else {
                    vec![fast; 7]
                };
                LoadSeries {
                    insmod_ns_per_page: Summary::of(rounds),
                    ..load_at(pages, 0.0)
                }
            })
            .to_vec();
        let fit = FinitFit::of(&load).expect("two sizes or more");
        assert!((fit.fixed_ns - 33e6).abs() < 1.0, "{fit:?}");
        assert!((fit.ns_per_page - 10000.0).abs() < 1e-6, "{fit:?}");
        let mut r = sample_report();
        r.load = load[1..].to_vec();
        let t = judge_load(&r);
        assert_eq!(t.met, Some(true), "{}", t.detail);
        assert!(t.detail.contains("33.0 ms"), "{}", t.detail);
    }

    #[test]
    fn summaries() {
        let s = Summary::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.rounds, vec![3.0, 1.0, 2.0]);
        assert_eq!(Summary::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert!(Summary::of(vec![]).median.is_nan());
    }

    #[test]
    fn ratios_are_per_round() {
        let mut s = SizeRounds::default();
        for (v, r) in [(10.0, 20.0), (30.0, 30.0), (8.0, 4.0)] {
            s.push("touch", "faultaround", v);
            s.push("touch", "memfd", r);
        }
        let series = s.into_series(64);
        let fa = series.iter().find(|x| x.path == "faultaround").unwrap();
        let ratio = fa.ratio.as_ref().unwrap();
        assert_eq!(ratio.vs, "memfd");
        assert_eq!(ratio.value.rounds, vec![0.5, 1.0, 2.0]);
        assert_eq!(ratio.value.median, 1.0);
        // Not the ratio of the medians (16/20 = 0.8).
        assert_eq!(fa.value.median, 10.0);
    }

    #[test]
    fn huge_fault_counts() {
        assert_eq!(huge_faults_per_page(16), 1.0);
        assert_eq!(huge_faults_per_page(512), 1.0 / 512.0);
        assert_eq!(huge_faults_per_page(4096), 8.0 / 4096.0);
        assert_eq!(huge_faults_per_page(600), 89.0 / 600.0);
    }

    #[test]
    fn fault_limit() {
        assert_eq!(faultaround_fault_limit(16, 16), 1.0 / 16.0 + 1.0 / 16.0);
        // 10 pages: one fault for all, 0.1 per page, inside the limit.
        assert!(0.1 <= faultaround_fault_limit(10, 16));
    }
}
