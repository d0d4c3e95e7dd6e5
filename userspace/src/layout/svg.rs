// SPDX-License-Identifier: GPL-2.0

//! `mapdrv layout --svg`: the kernel address space as a picture (plotters,
//! SVG backend).
//!
//! The regions differ in size by fifteen orders of magnitude (the 2.5 MiB
//! fixmap next to the 32 PiB direct map), so one linear axis cannot show
//! them all. The picture has several bands, each to scale on its own axis,
//! the finer ones zooming into a piece of a coarser one (a broken axis):
//!
//! 1. the kernel half of the address space, from the lowest kernel region
//!    to the top (linear); on a 32-bit kernel its top part (1 GiB with
//!    ARM's 3G/1G split, from the modules below PAGE_OFFSET);
//! 2. the top 4 GiB (linear): on x86_64 the kernel image, modules and
//!    fixmap; on arm64 the end of vmemmap, the PCI I/O window and the fixmap
//!    (its kernel image and modules are at the middle of the kernel half);
//!    of a 32-bit address space, the top 16 MiB: the end of vmalloc, the
//!    fixmap and ARM's vectors page;
//! 3. the RAM part of the direct map, `[PAGE_OFFSET, high_memory)` (on
//!    32-bit ARM only the low memory), with the demo's direct-map
//!    allocations (linear);
//! 4. the start of the vmalloc area with the demo's vmalloc allocation and
//!    the /dev/mapdrv buffer, and what lies inside the area there (arm64's
//!    kernel image, without KASLR) (linear);
//! 5. every region's size on a log scale.
//!
//! Which regions there are is the architecture's: each is drawn by its
//! name, a region inside another (arm64's kernel image in vmalloc) over it.
//! How wide the address space is (64 or 32 bits) is read from the regions.
//!
//! Below, a second panel plots the pages of the vmalloc allocations against
//! their page frame numbers: virtually contiguous pages, physically
//! scattered.

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::model::{Layout, Report, hex};

const WIDTH: u32 = 1200;
const BANDS_HEIGHT: u32 = 800;
const PAGES_HEIGHT: u32 = 420;
const LEFT: i32 = 40;
const RIGHT: i32 = WIDTH as i32 - 40;
const BAR_HEIGHT: i32 = 26;
const RED_MARK: RGBColor = RGBColor(200, 30, 30);

/// The width a label of 11 px text takes, roughly.
fn label_width(label: &str) -> i32 {
    7 * label.len() as i32 + 8
}

/// Labels below a bar, in rows: each goes into the first row where it does
/// not overlap the previous label, with a leader line up to the bar.
struct LabelRows {
    ends: Vec<i32>,
}

impl LabelRows {
    fn new(rows: usize) -> Self {
        Self {
            ends: vec![i32::MIN; rows],
        }
    }

    fn label(
        &mut self,
        area: &Area<'_>,
        label: &str,
        x: i32,
        bar_bottom: i32,
        c: RGBColor,
    ) -> Result<()> {
        let width = label_width(label);
        // Near the right edge the label extends to the left of its mark.
        let (left, pos) = if x + width > RIGHT + 30 {
            (x - width, Pos::new(HPos::Right, VPos::Top))
        } else {
            (x, top_left())
        };
        let row = self
            .ends
            .iter()
            .position(|&e| e < left)
            .unwrap_or(self.ends.len() - 1);
        self.ends[row] = left + width;
        let y = bar_bottom + 4 + 14 * row as i32;
        area.draw(&PathElement::new(
            vec![(x, bar_bottom), (x, y + 6)],
            c.stroke_width(1),
        ))
        .map_err(err)?;
        text(area, label, (x + if left < x { -2 } else { 2 }, y), 11, pos)
    }
}

/// Fill colours per region, and for allocations.
fn colour(region: &str) -> RGBColor {
    match region {
        "user" => RGBColor(200, 200, 200),
        "ldt_remap" => RGBColor(180, 160, 220),
        "direct_map" => RGBColor(120, 180, 240),
        "vmalloc" => RGBColor(250, 190, 110),
        "vmemmap" => RGBColor(150, 210, 150),
        "cpu_entry_area" => RGBColor(230, 140, 140),
        "espfix" => RGBColor(220, 120, 200),
        "kernel_image" => RGBColor(240, 110, 90),
        "modules" => RGBColor(250, 220, 90),
        "fixmap" => RGBColor(100, 200, 200),
        "pci_io" => RGBColor(200, 170, 120),
        "kasan_shadow" => RGBColor(160, 160, 210),
        "pkmap" => RGBColor(190, 150, 230),
        "vectors" => RGBColor(230, 140, 140),
        _ => RGBColor(170, 170, 170),
    }
}

/// A region's name in a sentence: `kernel image`, `PCI I/O`.
fn spoken(region: &str) -> String {
    match region {
        "pci_io" => "PCI I/O".into(),
        _ => region.replace('_', " "),
    }
}

/// A human size: `32 PiB`, `1.5 GiB`, `100 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round() as u64, UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The address space the layout's regions lie in, as it is drawn: 32-bit
/// when every region ends at or below 4 GiB, and PAGE_OFFSET and
/// high_memory are below it (a 32-bit kernel's), else 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Space {
    bits: u32,
}

impl Space {
    fn of(layout: &Layout) -> Space {
        let bounds = ["page_offset", "high_memory"].map(|k| layout.num(k).unwrap_or(0));
        let ends = layout.regions.iter().map(|r| r.end);
        let top = ends.chain(bounds).max().unwrap_or(0);
        Space {
            bits: if top <= 1 << 32 { 32 } else { 64 },
        }
    }

    /// The (exclusive) end of the address space, for an [`Axis`]: 2^32, or
    /// `u64::MAX` standing for 2^64.
    fn end(self) -> u64 {
        if self.bits < 64 {
            1 << self.bits
        } else {
            u64::MAX
        }
    }

    /// The size of band 2, the top of the address space where the small
    /// regions are: 4 GiB of 2^64, 16 MiB of 2^32.
    fn top_window(self) -> u64 {
        if self.bits < 64 { 16 << 20 } else { 1 << 32 }
    }

    /// Where band 2 starts: [`Space::top_window`] below 2^bits.
    fn top_start(self) -> u64 {
        ((1u128 << self.bits) - u128::from(self.top_window())) as u64
    }

    /// The log2 range of band 5 and its tick step: 1 MiB to 2^64 every 10,
    /// or from a 4 KiB page to 2^32 every 4.
    fn log_scale(self) -> (u32, u32, u32) {
        if self.bits < 64 {
            (12, 32, 4)
        } else {
            (20, 64, 10)
        }
    }
}

/// A linear axis: addresses `[lo, hi)` onto pixels `[LEFT, RIGHT]`.
#[derive(Clone, Copy)]
struct Axis {
    lo: u64,
    hi: u64,
}

impl Axis {
    fn x(&self, addr: u64) -> i32 {
        let addr = addr.clamp(self.lo, self.hi);
        let frac = (addr - self.lo) as f64 / (self.hi - self.lo) as f64;
        LEFT + (frac * f64::from(RIGHT - LEFT)).round() as i32
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the SVG: {e:?}")
}

fn text(area: &Area<'_>, s: &str, (x, y): (i32, i32), size: u32, pos: Pos) -> Result<()> {
    let style = ("sans-serif", size).into_font().color(&BLACK).pos(pos);
    area.draw(&Text::new(s.to_string(), (x, y), style))
        .map_err(err)
}

fn top_left() -> Pos {
    Pos::new(HPos::Left, VPos::Top)
}

fn top_center() -> Pos {
    Pos::new(HPos::Center, VPos::Top)
}

/// One band: a title, a bar of regions `[lo, hi)` to scale, labels below.
/// Regions narrower than 3 px are drawn 3 px wide and labelled anyway.
/// With `squeeze`, regions crushed into the last pixels share one label
/// that points to the next band.
fn band(
    area: &Area<'_>,
    y: i32,
    title: &str,
    axis: Axis,
    layout: &Layout,
    squeeze: bool,
) -> Result<()> {
    text(area, title, (LEFT, y), 15, top_left())?;
    let top = y + 20;
    area.draw(&Rectangle::new(
        [(LEFT, top), (RIGHT, top + BAR_HEIGHT)],
        ShapeStyle::from(&RGBColor(245, 245, 245)).filled(),
    ))
    .map_err(err)?;
    let mut rows = LabelRows::new(3);
    let mut tiny: Vec<&str> = Vec::new();
    let mut tiny_x = RIGHT;
    for r in &layout.regions {
        if r.end <= axis.lo || r.start >= axis.hi {
            continue;
        }
        let (x0, mut x1) = (axis.x(r.start), axis.x(r.end));
        if x1 - x0 < 3 {
            x1 = x0 + 3;
        }
        area.draw(&Rectangle::new(
            [(x0, top), (x1, top + BAR_HEIGHT)],
            ShapeStyle::from(&colour(&r.name)).filled(),
        ))
        .map_err(err)?;
        area.draw(&Rectangle::new(
            [(x0, top), (x1, top + BAR_HEIGHT)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        let label = format!("{} ({})", r.name, human(r.size));
        if x1 - x0 > label_width(&label) {
            // Wide regions get their label inside.
            text(area, &label, ((x0 + x1) / 2, top + 7), 12, top_center())?;
        } else if squeeze && x1 - x0 <= 3 && x0 > RIGHT - 40 {
            // Regions squeezed into the last pixels: one label for all.
            tiny.push(&r.name);
            tiny_x = tiny_x.min(x0);
        } else {
            rows.label(area, &label, x0, top + BAR_HEIGHT, BLACK)?;
        }
    }
    if !tiny.is_empty() {
        let label = format!("{} (next band)", tiny.join(", "));
        rows.label(area, &label, tiny_x, top + BAR_HEIGHT, BLACK)?;
    }
    axis_ends(area, axis, top + BAR_HEIGHT + 48)
}

/// The first and last address of `axis`, under its bar at height `y`.
fn axis_ends(area: &Area<'_>, axis: Axis, y: i32) -> Result<()> {
    text(area, &hex(axis.lo), (LEFT, y), 11, top_left())?;
    text(
        area,
        &hex(axis.hi.wrapping_sub(1)),
        (RIGHT, y),
        11,
        Pos::new(HPos::Right, VPos::Top),
    )
}

/// A band zooming into `[lo, hi)` of region `zoomed`, with the regions
/// inside it there drawn in their colours, and `marks` (name, address,
/// size) drawn as ticks or spans, labelled in staggered rows.
fn zoom_band(
    area: &Area<'_>,
    y: i32,
    title: &str,
    axis: Axis,
    (layout, zoomed): (&Layout, &str),
    marks: &[(String, u64, u64)],
) -> Result<()> {
    text(area, title, (LEFT, y), 15, top_left())?;
    let top = y + 20;
    area.draw(&Rectangle::new(
        [(LEFT, top), (RIGHT, top + BAR_HEIGHT)],
        ShapeStyle::from(&colour(zoomed)).filled(),
    ))
    .map_err(err)?;
    let outer = layout.regions.iter().find(|r| r.name == zoomed);
    let inner = layout.regions.iter().filter(|r| {
        outer.is_some_and(|o| r.name != o.name && o.start <= r.start && r.end <= o.end)
            && r.start < axis.hi
            && r.end > axis.lo
    });
    for r in inner {
        let (x0, x1) = (axis.x(r.start), axis.x(r.end).max(axis.x(r.start) + 3));
        area.draw(&Rectangle::new(
            [(x0, top), (x1, top + BAR_HEIGHT)],
            ShapeStyle::from(&colour(&r.name)).filled(),
        ))
        .map_err(err)?;
        let label = format!("{} ({})", r.name, human(r.size));
        if x1 - x0 > label_width(&label) {
            text(area, &label, ((x0 + x1) / 2, top + 7), 12, top_center())?;
        }
    }
    area.draw(&Rectangle::new(
        [(LEFT, top), (RIGHT, top + BAR_HEIGHT)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    let mut rows = LabelRows::new(4);
    let mut i = 0;
    while i < marks.len() {
        // Allocations at the same address (a recycled slab object) share
        // one label.
        let (_, addr, _) = &marks[i];
        let mut names = Vec::new();
        let mut end = *addr;
        while i < marks.len() && marks[i].1 == *addr {
            names.push(marks[i].0.as_str());
            end = end.max(marks[i].1.saturating_add(marks[i].2));
            i += 1;
        }
        let x0 = axis.x(*addr);
        let x1 = axis.x(end).max(x0 + 2);
        area.draw(&Rectangle::new(
            [(x0, top + 2), (x1, top + BAR_HEIGHT - 2)],
            ShapeStyle::from(&RED_MARK).filled(),
        ))
        .map_err(err)?;
        rows.label(
            area,
            &format!("{} {}", names.join(", "), hex(*addr)),
            x0,
            top + BAR_HEIGHT,
            RED_MARK,
        )?;
    }
    axis_ends(area, axis, top + BAR_HEIGHT + 58)
}

/// Region sizes on a log2 axis ([`Space::log_scale`]).
fn log_band(area: &Area<'_>, y: i32, layout: &Layout, space: Space) -> Result<()> {
    text(
        area,
        "5. Region sizes, log scale (each step: x2)",
        (LEFT, y),
        15,
        top_left(),
    )?;
    let (lo_bits, hi_bits, step) = space.log_scale();
    let (lo, hi) = (f64::from(lo_bits), f64::from(hi_bits));
    let x =
        |bits: f64| LEFT + 260 + ((bits - lo) / (hi - lo) * f64::from(RIGHT - LEFT - 260)) as i32;
    for (i, r) in layout.regions.iter().enumerate() {
        let row = y + 22 + i as i32 * 15;
        text(
            area,
            &format!("{} {}", r.name, human(r.size)),
            (LEFT, row),
            11,
            top_left(),
        )?;
        let bits = (r.size as f64).log2().max(lo);
        area.draw(&Rectangle::new(
            [(x(lo), row + 1), (x(bits), row + 12)],
            ShapeStyle::from(&colour(&r.name)).filled(),
        ))
        .map_err(err)?;
    }
    for bits in (lo_bits..=hi_bits).step_by(step as usize).map(f64::from) {
        let label = human(2f64.powf(bits) as u64);
        let bottom = y + 22 + layout.regions.len() as i32 * 15;
        area.draw(&PathElement::new(
            vec![(x(bits), y + 20), (x(bits), bottom)],
            BLACK.mix(0.3).stroke_width(1),
        ))
        .map_err(err)?;
        text(area, &label, (x(bits), bottom + 2), 10, top_center())?;
    }
    Ok(())
}

/// Draws the picture; `buffer_pages` are the /dev/mapdrv buffer's PFNs in
/// page order (from debugfs `pages`), possibly empty.
pub fn render(layout: &Layout, report: &Report, buffer_pages: &[u64]) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, BANDS_HEIGHT + PAGES_HEIGHT))
            .into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (bands, pages) = root.split_vertically(BANDS_HEIGHT);
        let levels = layout
            .values
            .get("paging_levels")
            .map_or("?", String::as_str);
        let va_bits = layout
            .values
            .get("va_bits")
            .map_or(String::new(), |b| format!(", {b}-bit addresses"));
        text(
            &bands,
            &format!(
                "{} kernel address space ({levels}-level paging{va_bits}, KASLR: image {}, memory {}); to scale within each band",
                layout.arch,
                if layout.flag("kaslr_text") {
                    "on"
                } else {
                    "off"
                },
                if layout.flag("kaslr_memory") {
                    "on"
                } else {
                    "off"
                },
            ),
            (LEFT, 8),
            17,
            top_left(),
        )?;
        let space = Space::of(layout);
        let kernel_lo = layout
            .regions
            .iter()
            .filter(|r| r.name != "user")
            .map(|r| r.start)
            .min()
            .unwrap_or(0);
        let kernel_title = if space.bits < 64 {
            format!(
                "1. Kernel space: the top {} (user space is below, at 0)",
                human(space.end() - kernel_lo)
            )
        } else {
            "1. Kernel half (user space is below, at 0)".to_string()
        };
        band(
            &bands,
            40,
            &kernel_title,
            Axis {
                lo: kernel_lo,
                hi: space.end(),
            },
            layout,
            true,
        )?;
        let top = Axis {
            lo: space.top_start(),
            hi: space.end(),
        };
        let in_top: Vec<String> = layout
            .regions
            .iter()
            .filter(|r| r.end > top.lo)
            .map(|r| spoken(&r.name))
            .collect();
        band(
            &bands,
            170,
            &format!(
                "2. Top {}: {}",
                human(space.top_window()),
                in_top.join(", ")
            ),
            top,
            layout,
            false,
        )?;
        let page_offset = layout.num("page_offset")?;
        let high_memory = layout.num("high_memory")?;
        let mut direct: Vec<(String, u64, u64)> = report
            .allocations
            .iter()
            .filter(|a| a.region == "direct_map")
            .map(|a| (a.name.clone(), a.vaddr, a.size))
            .collect();
        direct.sort_by_key(|m| m.1);
        let ram = high_memory.saturating_sub(page_offset);
        let direct_hi = page_offset
            + nice_bound(
                direct
                    .iter()
                    .map(|m| m.1 + m.2 - page_offset)
                    .max()
                    .unwrap_or(ram),
            )
            .min(ram);
        // With high memory (32-bit ARM), the direct map holds the low part.
        let ram_kind = match layout.num("highmem_pages") {
            Ok(pages) if pages > 0 => "low memory",
            _ => "RAM",
        };
        let phys_offset = match layout.phys_offset() {
            0 => String::new(),
            p => format!(" + PHYS_OFFSET ({})", hex(p)),
        };
        zoom_band(
            &bands,
            300,
            &format!(
                "3. Direct map: first {} of the {} of {ram_kind} [PAGE_OFFSET, high_memory); here phys = virt - PAGE_OFFSET{phys_offset}",
                human(direct_hi - page_offset),
                human(ram)
            ),
            Axis {
                lo: page_offset,
                hi: direct_hi,
            },
            (layout, "direct_map"),
            &direct,
        )?;
        let vmalloc_start = layout.num("vmalloc_start")?;
        let page_size = layout.page_size();
        let mut vm: Vec<(String, u64, u64)> = report
            .allocations
            .iter()
            .filter(|a| a.region == "vmalloc")
            .map(|a| (a.name.clone(), a.vaddr, a.pages * page_size))
            .collect();
        if let Some(first) = layout_buffer(report, page_size) {
            vm.push(first);
        }
        vm.sort_by_key(|m| m.1);
        let vm_hi = vmalloc_start
            + nice_bound(
                vm.iter()
                    .map(|m| m.1 + m.2 - vmalloc_start)
                    .max()
                    .unwrap_or(1 << 20),
            );
        zoom_band(
            &bands,
            440,
            &format!(
                "4. Start of the vmalloc area: first {} of {}",
                human(vm_hi - vmalloc_start),
                human(layout.num("vmalloc_end")? - vmalloc_start)
            ),
            Axis {
                lo: vmalloc_start,
                hi: vm_hi,
            },
            (layout, "vmalloc"),
            &vm,
        )?;
        log_band(&bands, 580, layout, space)?;
        pages_panel(&pages, report, buffer_pages, page_size)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The /dev/mapdrv buffer from the report's `buffer` line, if any.
fn layout_buffer(report: &Report, page_size: u64) -> Option<(String, u64, u64)> {
    let b = report.buffer?;
    Some((
        "/dev/mapdrv buffer".to_string(),
        b.vaddr,
        b.pages * page_size,
    ))
}

/// A round bound at or above `v` (at least 4 KiB): `v` rounded up to an
/// eighth of its power of two, so that a zoomed band is mostly used.
fn nice_bound(v: u64) -> u64 {
    let v = v.max(4096);
    let step = 1u64 << (63 - v.leading_zeros()).saturating_sub(3);
    v.div_ceil(step).saturating_mul(step)
}

/// Page index (virtual order) against PFN for the demo's vmalloc
/// allocation and the /dev/mapdrv buffer.
fn pages_panel(
    area: &Area<'_>,
    report: &Report,
    buffer_pages: &[u64],
    page_size: u64,
) -> Result<()> {
    let demo: Vec<(u64, u64)> = report
        .vmalloc_pages
        .iter()
        .map(|p| (p.index, p.pfn))
        .collect();
    let buffer: Vec<(u64, u64)> = buffer_pages
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u64, p))
        .collect();
    let all = demo.iter().chain(buffer.iter());
    let max_index = all.clone().map(|p| p.0).max().unwrap_or(0) + 1;
    let (min_pfn, max_pfn) = all.fold((u64::MAX, 0), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (min_pfn, max_pfn) = if min_pfn > max_pfn {
        (0, 1)
    } else {
        (min_pfn, max_pfn)
    };
    let pad = ((max_pfn - min_pfn) / 10).max(4);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "vmalloc pages: virtually contiguous (x), physically scattered (y)",
            ("sans-serif", 17),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0u64..max_index, min_pfn.saturating_sub(pad)..max_pfn + pad)
        .map_err(err)?;
    let x_desc = format!(
        "page index in the allocation (virtual address order, {} apart)",
        human(page_size)
    );
    let y_desc = format!("page frame number (phys >> {})", page_size.trailing_zeros());
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:#x}"))
        .draw()
        .map_err(err)?;
    let series = [
        ("demo vmalloc(60000), 15 pages", demo, RGBColor(200, 30, 30)),
        ("/dev/mapdrv buffer", buffer, RGBColor(30, 90, 200)),
    ];
    for (label, points, c) in series {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), c.mix(0.5).stroke_width(1)))
            .map_err(err)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::model::{
        parse_report,
        tests::{ARM_REPORT, ARM64_REPORT, REPORT, arm_layout, arm64_layout, x86_layout},
    };
    use super::*;

    /// The texts of an SVG document.
    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(1 << 55), "32 PiB");
        assert_eq!(human(0x6000_0000), "1.5 GiB");
        assert_eq!(human(u64::MAX), "16 EiB");
    }

    #[test]
    fn zoom_bounds_are_round_and_cover() {
        assert_eq!(nice_bound(0), 4096);
        assert_eq!(nice_bound(0x142000), 0x160000);
        assert_eq!(nice_bound(0x1c00000), 0x1c00000);
        for v in [1u64, 4097, 123_456_789, 1 << 40] {
            assert!(nice_bound(v) >= v);
            assert!(nice_bound(v) < 2 * v.max(4096));
        }
    }

    #[test]
    fn axis_maps_to_pixels() {
        let a = Axis { lo: 1000, hi: 2000 };
        assert_eq!(a.x(1000), LEFT);
        assert_eq!(a.x(2000), RIGHT);
        assert_eq!(a.x(0), LEFT);
        assert_eq!(a.x(1500), (LEFT + RIGHT) / 2);
    }

    #[test]
    fn svg_is_well_formed_and_labelled() {
        let layout = x86_layout();
        let report = parse_report(REPORT).unwrap();
        let svg = render(&layout, &report, &[0x2d8, 0x2d9, 0x4ec]).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let texts: Vec<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_string))
            .collect();
        for want in [
            "direct_map (32 PiB)",
            "vmalloc",
            "kernel_image",
            "modules",
            "fixmap",
            "kmalloc, kzalloc 0xff1100000045f980",
            "vmalloc 0xffa0000000133000",
        ] {
            assert!(
                texts.iter().any(|t| t.contains(want)),
                "no text with {want:?} in {texts:?}"
            );
        }
        // One circle per plotted page (3 + 3) plus the two legend markers.
        let circles = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count();
        assert_eq!(circles, 3 + 3 + 2);
    }

    #[test]
    fn svg_names_the_architecture() {
        let x86 = texts(&render(&x86_layout(), &Report::default(), &[]).unwrap());
        for want in [
            "x86_64 kernel address space (5-level paging, KASLR: image off, memory off); to scale within each band",
            "2. Top 4 GiB: kernel image, modules, fixmap",
            "page frame number (phys >> 12)",
        ] {
            assert!(x86.iter().any(|t| t == want), "no {want:?} in {x86:?}");
        }
        assert!(!x86.iter().any(|t| t.contains("PHYS_OFFSET (")), "{x86:?}");
        let report = parse_report(ARM64_REPORT).unwrap();
        let arm64 = texts(&render(&arm64_layout(), &report, &[0x4100, 0x4101]).unwrap());
        for want in [
            "arm64 kernel address space (4-level paging, 48-bit addresses, KASLR: image off, memory off); to scale within each band",
            "2. Top 4 GiB: vmemmap, PCI I/O, fixmap",
        ] {
            assert!(arm64.iter().any(|t| t == want), "no {want:?} in {arm64:?}");
        }
        for want in [
            "kernel_image (42 MiB)",
            "modules (2 GiB)",
            "vmalloc (",
            "pci_io",
            "here phys = virt - PAGE_OFFSET + PHYS_OFFSET (0x40000000)",
            "kmalloc 0xffff00000125f980",
            "vmalloc 0xffff800082b33000",
            "/dev/mapdrv buffer 0xffff800082b28000",
        ] {
            assert!(
                arm64.iter().any(|t| t.contains(want)),
                "no text with {want:?} in {arm64:?}"
            );
        }
        assert!(!arm64.iter().any(|t| t.contains("x86")), "{arm64:?}");
    }

    #[test]
    fn svg_of_a_32_bit_address_space() {
        let report = parse_report(ARM_REPORT).unwrap();
        let layout = arm_layout();
        assert_eq!(Space::of(&layout).bits, 32);
        assert_eq!(Space::of(&x86_layout()).bits, 64);
        assert_eq!(Space::of(&layout).top_start(), 0xff00_0000);
        assert_eq!(Space::of(&x86_layout()).top_start(), 0xffff_ffff_0000_0000);
        let arm = texts(&render(&layout, &report, &[0x7fe0, 0x7fe1]).unwrap());
        for want in [
            "arm kernel address space (2-level paging, KASLR: image off, memory off); to scale within each band",
            "1. Kernel space: the top 1 GiB (user space is below, at 0)",
            "2. Top 16 MiB: vmalloc, fixmap, vectors",
            "0xffffffff",
            "4 GiB",
        ] {
            assert!(arm.iter().any(|t| t == want), "no {want:?} in {arm:?}");
        }
        for want in [
            "direct_map (768 MiB)",
            "vmalloc (240 MiB)",
            "modules (14 MiB)",
            "pkmap (2 MiB)",
            "fixmap (2.5 MiB)",
            "vectors (4 KiB)",
            "of the 768 MiB of low memory [PAGE_OFFSET, high_memory); here phys = virt - PAGE_OFFSET + PHYS_OFFSET (0x40000000)",
            "kmalloc 0xc2a5f980",
            "vmalloc 0xf0a33000",
            "/dev/mapdrv buffer 0xf0a28000",
        ] {
            assert!(
                arm.iter().any(|t| t.contains(want)),
                "no text with {want:?} in {arm:?}"
            );
        }
        // No 64-bit scale: no 16 EiB end, no 1 PiB tick.
        assert!(
            !arm.iter()
                .any(|t| t.contains("0xfffffffffff") || t.contains("PiB")),
            "{arm:?}"
        );
    }

    #[test]
    fn svg_without_demo_report() {
        let layout = x86_layout();
        let svg = render(&layout, &Report::default(), &[]).unwrap();
        roxmltree::Document::parse(&svg).expect("well-formed XML");
    }
}
