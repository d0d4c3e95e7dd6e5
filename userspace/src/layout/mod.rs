// SPDX-License-Identifier: GPL-2.0

//! `mapdrv layout`: the kernel's address space and where the module's
//! allocation demo put its memory, as a table, JSON or an SVG picture; with
//! `--self`, the user half next to it: where this process's own code, data,
//! heap, stack and a mapping of the device lie.

pub mod model;
mod selfmap;
pub mod svg;

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::debugfs::{self, Debugfs};
use model::{Layout, Region, Report, hex};

pub const HELP: &str = "\
Reads debugfs mapdrv/layout (the regions of the kernel's address space, as
`key value` lines; every _end is exclusive) and mapdrv/demo (the last report
of the module's allocation demo: one `demo: alloc` line per allocation,
`demo: check ok|FAIL` per claim checked, a `demo: done` summary), and prints
them as tables. The exit status is 1 when a check of the demo failed. Needs
root (debugfs).

The demo runs when the module is loaded (parameter demo=1, the default) and
on each `echo run > /sys/kernel/debug/mapdrv/demo`; --run does that first.

Examples:
  mapdrv layout
  mapdrv layout --run --json
  mapdrv layout --svg layout.svg
  mapdrv layout --self";

/// The kernel's address space and the allocation demo: table, JSON, SVG.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// Print one JSON object: {"layout":{..},"regions":[..],"demo":{..},"buffer_pfns":[..]}.
    #[arg(long)]
    pub json: bool,
    /// Also write the picture of the address space to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Show this process's own text, data, bss, heap, stack and /dev/mapdrv
    /// mapping instead.
    #[arg(long = "self", conflicts_with_all = ["svg", "run"])]
    pub own: bool,
    /// Run the demo once more first (write `run` to debugfs mapdrv/demo).
    #[arg(long)]
    pub run: bool,
    /// The driver's debugfs directory.
    #[arg(long, value_name = "DIR", default_value = debugfs::DEFAULT_DIR)]
    pub debugfs: PathBuf,
}

fn read(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (a rust_mapdrv with the allocation demo must be loaded)",
            path.display()
        )
    })
}

/// The JSON form.
#[derive(Debug, Serialize)]
struct LayoutJson<'a> {
    layout: &'a std::collections::BTreeMap<String, String>,
    regions: &'a [Region],
    demo: &'a Report,
    buffer_pfns: Vec<String>,
    checks_passed: usize,
    checks_failed: usize,
}

/// Runs `mapdrv layout`; false when a check of the demo failed.
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    if args.own {
        return selfmap::run(device, &args.debugfs, args.json, out);
    }
    let dfs = Debugfs::locate(&args.debugfs)?;
    if args.run {
        let path = args.debugfs.join("demo");
        std::fs::write(&path, "run\n")
            .with_context(|| format!("cannot write `run` to {}", path.display()))?;
    }
    let layout = model::parse_layout(&read(&args.debugfs, "layout")?)?;
    let report = model::parse_report(&read(&args.debugfs, "demo")?)?;
    let buffer_pfns: Vec<u64> = dfs
        .pages()
        .map(|p| p.iter().map(|l| l.pfn).collect())
        .unwrap_or_default();
    if let Some(file) = &args.svg {
        let picture = svg::render(&layout, &report, &buffer_pfns)?;
        std::fs::write(file, picture)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    // The tool's own checks of the report: it is complete, no claim failed,
    // and every allocation lies in the region the module named, by the
    // layout's bounds.
    let mut problems = Vec::new();
    if report.run.is_some() {
        if let Err(e) = report.complete_and_clean() {
            problems.push(format!("{e:#}"));
        }
    }
    for a in &report.allocations {
        let found = layout
            .region_of(a.vaddr)
            .map_or("unknown", |r| r.name.as_str());
        if found != a.region {
            problems.push(format!(
                "{} at {} is in {found} by the layout, but the demo says {}",
                a.name,
                hex(a.vaddr),
                a.region
            ));
        }
    }
    let failed = report.failures().count();
    if args.json {
        let j = LayoutJson {
            layout: &layout.values,
            regions: &layout.regions,
            demo: &report,
            buffer_pfns: buffer_pfns.iter().map(|&p| hex(p)).collect(),
            checks_passed: report.checks.len() - failed,
            checks_failed: failed,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        write!(out, "{}", text(&layout, &report))?;
        if let Some(file) = &args.svg {
            writeln!(out, "picture written to {}", file.display())?;
        }
    }
    for p in &problems {
        eprintln!("mapdrv layout: {p}");
    }
    Ok(problems.is_empty())
}

/// Compresses PFNs into runs: `0x2e8-0x2ef 0x240-0x243 0x4f6`.
pub fn runs(pfns: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < pfns.len() {
        let mut j = i;
        while j + 1 < pfns.len() && pfns[j].checked_add(1) == Some(pfns[j + 1]) {
            j += 1;
        }
        parts.push(if i == j {
            hex(pfns[i])
        } else {
            format!("{}-{}", hex(pfns[i]), hex(pfns[j]))
        });
        i = j + 1;
    }
    parts.join(" ")
}

/// The table form.
pub fn text(layout: &Layout, report: &Report) -> String {
    let mut s = String::new();
    let v = |k: &str| layout.values.get(k).map_or("?", String::as_str);
    // Facts that only some architectures report (arm64's va_bits,
    // memstart_addr...; x86_64's vsyscall_page, phys_base...) are shown
    // where they are there.
    let has = |k: &str| layout.values.contains_key(k);
    let va_bits = if has("va_bits") {
        format!(", {}-bit addresses", v("va_bits"))
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "Kernel address space ({}-level paging{va_bits}; KASLR: image {}, memory {})",
        v("paging_levels"),
        v("kaslr_text"),
        v("kaslr_memory")
    );
    let _ = writeln!(
        s,
        "  {:<15} {:<20} {:<20} {:>10}  what",
        "region", "start", "end (exclusive)", "size"
    );
    for r in &layout.regions {
        let _ = writeln!(
            s,
            "  {:<15} {:<20} {:<20} {:>10}  {}",
            r.name,
            hex(r.start),
            hex(r.end),
            svg::human(r.size),
            r.description
        );
    }
    if let (Ok(po), Ok(hm)) = (layout.num("page_offset"), layout.num("high_memory")) {
        let randomised = if has("page_offset_randomized") {
            format!(" (randomised: {})", v("page_offset_randomized"))
        } else {
            String::new()
        };
        // 32-bit ARM's direct map holds the low memory only; the rest
        // (`highmem_pages`) has no kernel address until kmap gives it one.
        let highmem = match layout.num("highmem_pages") {
            Ok(pages) if pages > 0 => format!(
                "; {} of high memory outside it (kmap)",
                svg::human(pages.saturating_mul(layout.page_size()))
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  PAGE_OFFSET {}{randomised}; high_memory {}: {} of RAM in the direct map{highmem}",
            hex(po),
            hex(hm),
            svg::human(hm.saturating_sub(po))
        );
    }
    let mut facts = vec![
        format!("kfree (kernel text) {}", v("kernel_text_kfree")),
        format!("this module's data {}", v("module_data")),
    ];
    for (key, what) in [
        ("vsyscall_page", "vsyscall page"),
        ("phys_base", "phys_base"),
        ("kimage_voffset", "kimage_voffset"),
        ("memstart_addr", "memstart_addr (PHYS_OFFSET)"),
        ("phys_offset", "PHYS_OFFSET"),
        ("vmsplit", "user/kernel split"),
    ] {
        if has(key) {
            facts.push(format!("{what} {}", v(key)));
        }
    }
    let _ = writeln!(s, "  {}", facts.join("; "));
    let _ = writeln!(s);
    match report.run {
        None => {
            let _ = writeln!(
                s,
                "No demo report yet: load with demo=1, or run `mapdrv layout --run`."
            );
            return s;
        }
        Some(run) => {
            let _ = writeln!(s, "Demo allocations (run {run})");
        }
    }
    let _ = writeln!(
        s,
        "  {:<16} {:<17} {:<20} {:<11} {:<12} {:>6} {:>5} {:<6} gfp",
        "name", "api", "vaddr", "region", "phys", "size", "pages", "contig"
    );
    for a in &report.allocations {
        let _ = writeln!(
            s,
            "  {:<16} {:<17} {:<20} {:<11} {:<12} {:>6} {:>5} {:<6} {}",
            a.name,
            a.api,
            hex(a.vaddr),
            a.region,
            hex(a.phys),
            a.size,
            a.pages,
            if a.contiguous { "yes" } else { "no" },
            a.gfp
        );
    }
    if !report.vmalloc_pages.is_empty() {
        let pfns: Vec<u64> = report.vmalloc_pages.iter().map(|p| p.pfn).collect();
        let _ = writeln!(
            s,
            "  vmalloc pages in virtual order, by PFN: {}",
            runs(&pfns)
        );
    }
    let failed = report.failures().count();
    for c in report.failures() {
        let _ = writeln!(s, "  FAIL {} {}: {}", c.allocation, c.claim, c.detail);
    }
    let _ = writeln!(
        s,
        "Checks: {} passed, {} failed",
        report.checks.len() - failed,
        failed
    );
    s
}

#[cfg(test)]
mod tests {
    use super::model::{
        parse_report,
        tests::{ARM_REPORT, ARM64_REPORT, REPORT, arm_layout, arm64_layout, x86_layout},
    };
    use super::*;

    #[test]
    fn pfn_runs() {
        assert_eq!(
            runs(&[0x2e8, 0x2e9, 0x2ea, 0x240, 0x4f6, 0x4f7]),
            "0x2e8-0x2ea 0x240 0x4f6-0x4f7"
        );
        assert_eq!(runs(&[]), "");
        assert_eq!(runs(&[u64::MAX, 0]), "0xffffffffffffffff 0x0");
    }

    #[test]
    fn table_has_regions_allocations_and_checks() {
        let t = text(&x86_layout(), &parse_report(REPORT).unwrap());
        assert!(t.contains("5-level paging"), "{t}");
        assert!(
            t.contains("  direct_map      0xff11000000000000   0xff91000000000000       32 PiB"),
            "{t}"
        );
        assert!(
            t.contains("  kmalloc          kmalloc           0xff1100000045f980   direct_map"),
            "{t}"
        );
        assert!(t.contains("by PFN: 0x2e8-0x2e9 0x240"), "{t}");
        assert!(t.contains("Checks: 5 passed, 0 failed"), "{t}");
        let failing = REPORT.replace(
            "check ok kmalloc virt-to-phys",
            "check FAIL kmalloc virt-to-phys",
        );
        let t = text(&x86_layout(), &parse_report(&failing).unwrap());
        assert!(
            t.contains("FAIL kmalloc virt-to-phys: virt - PAGE_OFFSET"),
            "{t}"
        );
        assert!(t.contains("Checks: 4 passed, 1 failed"), "{t}");
        let t = text(&x86_layout(), &Report::default());
        assert!(t.contains("No demo report yet"), "{t}");
    }

    #[test]
    fn arm64_table_shows_its_own_facts() {
        let t = text(&arm64_layout(), &parse_report(ARM64_REPORT).unwrap());
        assert!(
            t.contains("(4-level paging, 48-bit addresses; KASLR: image no, memory no)"),
            "{t}"
        );
        assert!(
            t.contains("  kernel_image    0xffff800080000000   0xffff800082a00000       42 MiB  kernel image (KIMAGE_VADDR, inside vmalloc)"),
            "{t}"
        );
        assert!(t.contains("  pci_io          0xffffffffc0800000"), "{t}");
        assert!(
            t.contains(
                "PAGE_OFFSET 0xffff000000000000; high_memory 0xffff000040000000: 1 GiB of RAM"
            ),
            "{t}"
        );
        assert!(
            t.contains("kimage_voffset 0xffff80003fe00000; memstart_addr (PHYS_OFFSET) 0x40000000"),
            "{t}"
        );
        assert!(!t.contains("vsyscall") && !t.contains("randomised"), "{t}");
        assert!(t.contains("Checks: 2 passed, 0 failed"), "{t}");
        // x86_64's facts stay where they were.
        let t = text(&x86_layout(), &Report::default());
        assert!(
            t.contains("; vsyscall page 0xffffffffff600000; phys_base 0x0\n"),
            "{t}"
        );
        assert!(t.contains("(randomised: no)"), "{t}");
    }

    #[test]
    fn arm_table_shows_lowmem_and_highmem() {
        let t = text(&arm_layout(), &parse_report(ARM_REPORT).unwrap());
        assert!(
            t.contains("(2-level paging; KASLR: image no, memory no)"),
            "{t}"
        );
        assert!(
            t.contains("  user            0x0                  0xbf000000                3 GiB  user space (per process)"),
            "{t}"
        );
        assert!(
            t.contains("  pkmap           0xbfe00000           0xc0000000                2 MiB  persistent kmap window (PKMAP_BASE)"),
            "{t}"
        );
        assert!(
            t.contains("  vectors         0xffff0000           0xffff1000                4 KiB  exception vectors page"),
            "{t}"
        );
        assert!(
            t.contains(
                "PAGE_OFFSET 0xc0000000; high_memory 0xf0000000: 768 MiB of RAM in the direct map; 256 MiB of high memory outside it (kmap)\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("; PHYS_OFFSET 0x40000000; user/kernel split 3G/1G\n"),
            "{t}"
        );
        assert!(
            t.contains("  highmem_kmap_local alloc_pages       0xffcf7000           fixmap"),
            "{t}"
        );
        assert!(t.contains("Checks: 2 passed, 0 failed"), "{t}");
        // Nothing of it elsewhere.
        let t = text(&arm64_layout(), &Report::default());
        assert!(!t.contains("high memory") && !t.contains("split"), "{t}");
    }

    #[test]
    fn json_regions_serialise_as_hex() {
        let layout = x86_layout();
        let report = parse_report(REPORT).unwrap();
        let j = LayoutJson {
            layout: &layout.values,
            regions: &layout.regions,
            demo: &report,
            buffer_pfns: vec![hex(0x2d8)],
            checks_passed: 5,
            checks_failed: 0,
        };
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(v["regions"][2]["name"], "direct_map");
        assert_eq!(v["regions"][2]["start"], "0xff11000000000000");
        assert_eq!(v["demo"]["allocations"][0]["vaddr"], "0xff1100000045f980");
        assert_eq!(v["demo"]["vmalloc_pages"][2]["pfn"], "0x240");
        assert_eq!(v["layout"]["max_page_order"], "10");
    }
}
