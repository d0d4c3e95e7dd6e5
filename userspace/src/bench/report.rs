// SPDX-License-Identifier: GPL-2.0

//! The report as text tables, or as Markdown tables (`--markdown`: a run's
//! `bench.md`, the form docs/performance.md keeps the figures in).

use std::io::{self, Write};

use super::model::{FinitFit, METRICS, Report, Summary};

/// A number with the precision its size needs.
fn num(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// `median [min-max]`, or the median alone when all rounds agree.
fn cell(s: &Summary) -> String {
    if s.min == s.max {
        num(s.median)
    } else {
        format!("{} [{}-{}]", num(s.median), num(s.min), num(s.max))
    }
}

/// A table: a header row and rows of cells.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn write(&self, out: &mut dyn Write, markdown: bool) -> io::Result<()> {
        if markdown {
            writeln!(out, "| {} |", self.header.join(" | "))?;
            let rule: Vec<&str> = self.header.iter().map(|_| "---").collect();
            writeln!(out, "| {} |", rule.join(" | "))?;
            for row in &self.rows {
                writeln!(out, "| {} |", row.join(" | "))?;
            }
            return Ok(());
        }
        let cols = self.header.len();
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{s:>w$}", w = width[c]))
                .collect();
            writeln!(out, "  {}", cells.join("  ").trim_end())?;
        }
        Ok(())
    }
}

/// Writes the whole report; `markdown` for Markdown tables.
pub fn write_report(r: &Report, out: &mut dyn Write, markdown: bool) -> io::Result<()> {
    let e = &r.env;
    writeln!(
        out,
        "{}: accelerator {}, clock source {} ({}, resolution {} ns), kernel {}, {} CPUs, {} MiB, page {} B",
        r.tool,
        e.accelerator,
        e.clocksource,
        e.clock,
        e.clock_resolution_ns
            .map_or("unknown".into(), |n| n.to_string()),
        e.kernel,
        e.cpus,
        e.mem_total_kib / 1024,
        e.page_size
    )?;
    if let Some(commit) = &r.source_commit {
        writeln!(out, "built from commit {commit}")?;
    }
    if let Some(command) = &r.command {
        writeln!(out, "command: {command}")?;
    }
    if let Some(cpu) = e.pinned_cpu {
        writeln!(out, "timed thread pinned to CPU {cpu}")?;
    }
    if e.accelerator == "TCG" {
        writeln!(
            out,
            "(TCG: emulator figures; only ratios within this run mean anything)"
        )?;
    } else if e.accelerator.ends_with(" icount") {
        writeln!(
            out,
            "(icount: the clock counts guest instructions, 1 ns each: \"ns\" are instructions, \
             the same from run to run, without memory, cache or TLB cost)"
        )?;
    }
    writeln!(
        out,
        "{} rounds per size after a warm-up round, paths interleaved; cells: median [min-max] of the rounds; {:.0} s",
        r.rounds, r.seconds
    )?;
    for s in &r.skipped {
        writeln!(out, "skipped {} pages: {}", s.pages, s.reason)?;
    }
    // A report saved before a metric was added does not list it.
    for m in METRICS
        .iter()
        .filter(|m| r.metrics.iter().any(|info| info.name == m.name))
    {
        let paths: Vec<&str> = if m.pread {
            r.pread_paths.iter().map(|p| p.name.as_str()).collect()
        } else {
            r.paths.iter().map(|p| p.name.as_str()).collect()
        };
        let header = || {
            std::iter::once("pages".to_string())
                .chain(paths.iter().map(|p| p.to_string()))
                .collect::<Vec<_>>()
        };
        let mut values = Table {
            header: header(),
            rows: Vec::new(),
        };
        let mut ratios = Table {
            header: header(),
            rows: Vec::new(),
        };
        for &pages in &r.sizes {
            let mut vrow = vec![pages.to_string()];
            let mut rrow = vec![pages.to_string()];
            for path in &paths {
                let s = r.series(m.name, path, pages);
                vrow.push(s.map_or("-".into(), |s| cell(&s.value)));
                rrow.push(
                    s.and_then(|s| s.ratio.as_ref())
                        .map_or("-".into(), |x| cell(&x.value)),
                );
            }
            values.rows.push(vrow);
            ratios.rows.push(rrow);
        }
        writeln!(out)?;
        writeln!(out, "{}, {}:", m.title, m.unit)?;
        values.write(out, markdown)?;
        if let Some(reference) = m.reference {
            writeln!(out)?;
            writeln!(out, "{}: ratio to {reference}, round by round:", m.title)?;
            ratios.write(out, markdown)?;
        }
    }
    if !r.load.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "module load, ns/page (the module's own timing of each phase; finit_module timed from user space):"
        )?;
        let mut t = Table {
            header: [
                "pages",
                "alloc",
                "fill",
                "walk+check",
                "total",
                "finit_module",
                "finit - fixed",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let fit = FinitFit::of(&r.load);
        for l in &r.load {
            t.rows.push(vec![
                l.pages.to_string(),
                cell(&l.alloc_ns_per_page),
                cell(&l.fill_ns_per_page),
                cell(&l.walk_ns_per_page),
                cell(&l.total_ns_per_page),
                cell(&l.insmod_ns_per_page),
                fit.map_or("-".into(), |f| format!("{:.0}", f.variable_ns_per_page(l))),
            ]);
        }
        t.write(out, markdown)?;
        if let Some(f) = fit {
            writeln!(out)?;
            writeln!(
                out,
                "finit_module = {:.1} ms fixed + {:.0} ns/page (fitted to each size's fastest round, errors relative to \
                 each size's total; see docs/performance.md for why the fastest); \"finit - fixed\" is the \
                 fastest round less the fixed cost, per page",
                f.fixed_ns / 1e6,
                f.ns_per_page
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "targets:")?;
    for t in &r.targets {
        let verdict = match t.met {
            Some(true) => "MET",
            Some(false) => "MISSED",
            None => "NOT MEASURED",
        };
        let bullet = if markdown { "- " } else { "  " };
        writeln!(out, "{bullet}{verdict}: {}: {}", t.name, t.detail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_cells() {
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.0625), "0.0625");
        assert_eq!(num(0.0), "0");
        assert_eq!(cell(&Summary::of(vec![1.0, 1.0])), "1.00");
        assert_eq!(cell(&Summary::of(vec![2.0, 1.0, 3.0])), "2.00 [1.00-3.00]");
    }
}
