// SPDX-License-Identifier: GPL-2.0

//! The SVG plot: ns/page against size (both logarithmic), one line per path,
//! one panel per metric.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::model::{Report, metric};

/// The metrics plotted, one panel each.
const PANELS: [&str; 4] = ["touch", "mmap_touch", "read", "pread"];

pub fn write_svg(r: &Report, file: &Path) -> Result<()> {
    draw(r, file).map_err(|e| anyhow!("cannot draw {}: {e}", file.display()))
}

fn draw(r: &Report, file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(file, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "mapdrv bench: ns/page against size ({}, clock source {}, median of {} rounds)",
        r.env.accelerator, r.env.clocksource, r.rounds
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let xmin = r.sizes.iter().copied().min().unwrap_or(1) as f64;
    let xmax = r.sizes.iter().copied().max().unwrap_or(2) as f64;
    let (xmin, xmax) = (xmin / 1.5, xmax * 1.5);
    for (area, name) in root.split_evenly((2, 2)).iter().zip(PANELS) {
        let Some(def) = metric(name) else { continue };
        let paths: Vec<&str> = if def.pread {
            r.pread_paths.iter().map(|p| p.name.as_str()).collect()
        } else {
            r.paths.iter().map(|p| p.name.as_str()).collect()
        };
        let lines: Vec<(&str, Vec<(f64, f64)>)> = paths
            .iter()
            .map(|&path| {
                let points = r
                    .sizes
                    .iter()
                    .filter_map(|&pages| {
                        let y = r.series(name, path, pages)?.value.median;
                        (y.is_finite() && y > 0.0).then_some((pages as f64, y))
                    })
                    .collect();
                (path, points)
            })
            .collect();
        let ys = lines.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
        let ymin = ys.clone().fold(f64::INFINITY, f64::min);
        let ymax = ys.fold(0.0, f64::max);
        if !ymin.is_finite() || ymax <= 0.0 {
            continue;
        }
        let mut chart = ChartBuilder::on(area)
            .caption(def.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (xmin..xmax).log_scale(),
                // Headroom above the lines for the legend.
                (ymin / 1.5..ymax * 8.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("size, pages")
            .y_desc(def.unit)
            .y_labels(12)
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 10.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.2}")
                }
            })
            .draw()?;
        for (i, (path, points)) in lines.into_iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(path)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
