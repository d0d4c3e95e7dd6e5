// SPDX-License-Identifier: GPL-2.0

//! The allocation demo's data: parsers for debugfs `mapdrv/layout` (`key
//! value` lines) and for the demo report (debugfs `mapdrv/demo`, or the
//! `rust_mapdrv: demo: ...` lines of dmesg), and the JSON shapes built
//! from them.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Serialize;

/// Reads `0x...` hex or a decimal number.
pub fn parse_num(text: &str) -> Result<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    }
    .map_err(|e| anyhow!("{text:?} is not a number: {e}"))
}

/// Formats an address the way the kernel prints it.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// The running kernel's architecture, as the project names it (`x86_64`,
/// `arm64`, `arm`; another machine's `uname -m` as it is).
pub fn running_arch() -> String {
    nix::sys::utsname::uname()
        .map(|u| arch_name(&u.machine().to_string_lossy()))
        .unwrap_or_else(|_| arch_name(std::env::consts::ARCH))
}

/// `uname -m`'s or Rust's name of an architecture as the project names it.
pub fn arch_name(machine: &str) -> String {
    match machine {
        "aarch64" | "arm64" => "arm64".into(),
        // 32-bit ARM: `uname -m` on an ARMv7 kernel, Debian's and Rust's names.
        "armv7l" | "armhf" | "arm" => "arm".into(),
        other => other.into(),
    }
}

/// What each region of debugfs `layout` is, for people: the regions every
/// architecture has, then each one's own. 32-bit ARM's come first: its
/// modules and vmalloc areas are bounded by names of its own, and its
/// direct map holds only the low memory.
pub fn describe(arch: &str, region: &str) -> &'static str {
    match (arch, region) {
        (_, "user") => "user space (per process)",
        ("arm", "modules") => "modules (MODULES_VADDR..MODULES_END, below PAGE_OFFSET)",
        ("arm", "pkmap") => "persistent kmap window (PKMAP_BASE): kmap of highmem",
        ("arm", "direct_map") => "lowmem direct map (PAGE_OFFSET..high_memory)",
        ("arm", "vmalloc") => "vmalloc/ioremap area (VMALLOC_START..VMALLOC_END)",
        ("arm", "fixmap") => "fixmap (FIXADDR_START): kmap_local mappings land here",
        ("arm", "vectors") => "exception vectors page (0xffff0000, with the kuser helpers)",
        (_, "vmalloc") => "vmalloc/ioremap area",
        (_, "vmemmap") => "struct page array (vmemmap)",
        (_, "modules") => "modules",
        (_, "kasan_shadow") => "KASAN shadow memory",
        ("arm64", "direct_map") => "linear map of all RAM (PAGE_OFFSET)",
        ("arm64", "kernel_image") => "kernel image (KIMAGE_VADDR, inside vmalloc)",
        ("arm64", "pci_io") => "PCI I/O space window",
        ("arm64", "fixmap") => "fixmap",
        (_, "direct_map") => "direct map of all RAM (PAGE_OFFSET)",
        (_, "ldt_remap") => "LDT remap for PTI",
        (_, "cpu_entry_area") => "cpu_entry_area",
        (_, "espfix") => "%esp fixup stacks",
        (_, "kernel_image") => "kernel image (__START_KERNEL_map)",
        (_, "fixmap") => "fixmap (incl. vsyscall page)",
        _ => "",
    }
}

/// A region `[start, end)` of the kernel's address space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub name: String,
    #[serde(serialize_with = "ser_hex")]
    pub start: u64,
    #[serde(serialize_with = "ser_hex")]
    pub end: u64,
    pub size: u64,
    pub description: &'static str,
}

fn ser_hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(*v))
}

/// debugfs `layout`: every `key value` line, and the regions made of the
/// `<name>_start` / `<name>_end` pairs, in address order (a region inside
/// another right after it, like arm64's kernel image inside vmalloc).
/// Which regions and facts there are is the architecture's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The architecture: the file's `arch` value if it has one, else the
    /// running kernel's.
    pub arch: String,
    pub values: BTreeMap<String, String>,
    pub regions: Vec<Region>,
}

impl Layout {
    /// A number from the file.
    pub fn num(&self, key: &str) -> Result<u64> {
        let v = self
            .values
            .get(key)
            .ok_or_else(|| anyhow!("layout has no {key}"))?;
        parse_num(v).with_context(|| format!("layout {key}"))
    }

    /// A `yes`/`no` value of the file.
    pub fn flag(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|v| v == "yes")
    }

    /// The page size (`page_size`; 4 KiB if the file does not say).
    pub fn page_size(&self) -> u64 {
        self.num("page_size")
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    }

    /// The physical address of `PAGE_OFFSET` (`memstart_addr`, arm64's
    /// `PHYS_OFFSET`, or `phys_offset`): 0 where the file has neither, as
    /// on x86_64, whose direct map starts at physical 0.
    pub fn phys_offset(&self) -> u64 {
        ["phys_offset", "memstart_addr"]
            .iter()
            .find_map(|k| self.num(k).ok())
            .unwrap_or(0)
    }

    /// The innermost region `addr` lies in (arm64's `kernel_image` rather
    /// than the `vmalloc` around it).
    pub fn region_of(&self, addr: u64) -> Option<&Region> {
        self.regions
            .iter()
            .filter(|r| (r.start..r.end).contains(&addr))
            .min_by_key(|r| r.size)
    }
}

/// Parses debugfs `layout` of the running kernel. Every line is `key
/// value`; `_end` values are exclusive; two regions either do not overlap
/// or one lies inside the other.
pub fn parse_layout(text: &str) -> Result<Layout> {
    parse_layout_as(text, &running_arch())
}

/// [`parse_layout`] for a kernel of `arch`, unless the text names its own
/// (`arch` line).
pub fn parse_layout_as(text: &str, arch: &str) -> Result<Layout> {
    let mut values = BTreeMap::new();
    let mut order = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(key), Some(value), None) = (f.next(), f.next(), f.next()) else {
            bail!("layout line {}: {line:?} is not `key value`", n + 1);
        };
        if let Some(name) = key.strip_suffix("_start") {
            order.push(name.to_string());
        }
        ensure!(
            values.insert(key.to_string(), value.to_string()).is_none(),
            "layout line {}: {key} appears twice",
            n + 1
        );
    }
    let arch = values
        .get("arch")
        .map_or_else(|| arch_name(arch), |a| arch_name(a));
    let mut regions = Vec::new();
    for name in order {
        let get = |suffix: &str| -> Result<u64> {
            let key = format!("{name}_{suffix}");
            let v = values
                .get(&key)
                .ok_or_else(|| anyhow!("layout has {name}_start but no {key}"))?;
            parse_num(v).with_context(|| format!("layout {key}"))
        };
        let (start, end) = (get("start")?, get("end")?);
        ensure!(
            start < end,
            "layout region {name}: start {start:#x} is not below end {end:#x}"
        );
        regions.push(Region {
            description: describe(&arch, &name),
            name,
            start,
            end,
            size: end - start,
        });
    }
    // By start; of two with the same start, the outer one first.
    regions.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            let disjoint = a.end <= b.start;
            let nested = b.end <= a.end;
            ensure!(
                disjoint || nested,
                "layout regions {} and {} overlap",
                a.name,
                b.name
            );
        }
    }
    let layout = Layout {
        arch,
        values,
        regions,
    };
    for key in ["page_offset", "high_memory", "vmalloc_start", "vmalloc_end"] {
        layout.num(key)?;
    }
    Ok(layout)
}

/// One `demo: alloc <name> key=value ...` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub name: String,
    pub api: String,
    #[serde(serialize_with = "ser_hex")]
    pub vaddr: u64,
    pub region: String,
    #[serde(serialize_with = "ser_hex")]
    pub phys: u64,
    pub size: u64,
    pub pages: u64,
    pub contiguous: bool,
    pub gfp: String,
    /// Every field of the line, as written.
    pub fields: BTreeMap<String, String>,
}

/// One `demo: page vmalloc index=.. vaddr=.. pfn=..` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PageLine {
    pub index: u64,
    #[serde(serialize_with = "ser_hex")]
    pub vaddr: u64,
    #[serde(serialize_with = "ser_hex")]
    pub pfn: u64,
}

/// One `demo: check ok|FAIL <alloc> <claim>: <detail>` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub ok: bool,
    pub allocation: String,
    pub claim: String,
    pub detail: String,
}

/// The summary: `demo: done run=.. allocations=.. checks=.. failed=..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Done {
    pub run: u64,
    pub allocations: u64,
    pub checks: u64,
    pub failed: u64,
}

/// The `demo: buffer vaddr=.. pages=..` line: the /dev/mapdrv buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Buffer {
    #[serde(serialize_with = "ser_hex")]
    pub vaddr: u64,
    pub pages: u64,
}

/// One run of the demo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub run: Option<u64>,
    pub buffer: Option<Buffer>,
    pub allocations: Vec<Allocation>,
    pub vmalloc_pages: Vec<PageLine>,
    pub checks: Vec<Check>,
    pub done: Option<Done>,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// Whether the run ended, all checks passed, and the counts agree.
    pub fn complete_and_clean(&self) -> Result<()> {
        let done = self
            .done
            .ok_or_else(|| anyhow!("the demo report has no `done` line (cut short?)"))?;
        ensure!(
            done.checks == self.checks.len() as u64
                && done.allocations == self.allocations.len() as u64,
            "the `done` line counts {} checks and {} allocations, the report has {} and {}",
            done.checks,
            done.allocations,
            self.checks.len(),
            self.allocations.len()
        );
        if let Some(c) = self.failures().next() {
            bail!(
                "demo check failed: {} {}: {}",
                c.allocation,
                c.claim,
                c.detail
            );
        }
        ensure!(
            done.failed == 0,
            "the demo counts {} failed checks",
            done.failed
        );
        Ok(())
    }
}

/// `key=value` fields of a line (tokens without `=` are skipped).
fn fields(tokens: &[&str]) -> BTreeMap<String, String> {
    tokens
        .iter()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(f: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    f.get(key)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("no {key}= field"))
}

fn yes_no(text: &str) -> Result<bool> {
    match text {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => bail!("{text:?} is neither yes nor no"),
    }
}

/// The part of a line after `demo: `, for report lines as debugfs shows
/// them (`demo: ...`) or as dmesg does (`[  1.2] rust_mapdrv: demo: ...`).
fn demo_part(line: &str) -> Option<&str> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("demo: ") {
        return Some(rest);
    }
    line.split_once("rust_mapdrv: demo: ").map(|(_, rest)| rest)
}

/// Parses a demo report. Lines that are not the demo's are skipped; a
/// `run` line starts a new report, so for a whole dmesg the last run is
/// returned.
pub fn parse_report(text: &str) -> Result<Report> {
    let mut report = Report::default();
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = demo_part(line) else {
            continue;
        };
        let parse = |report: &mut Report| -> Result<()> {
            let tokens: Vec<&str> = rest.split_whitespace().collect();
            match tokens.first().copied() {
                Some("run") => {
                    let run = tokens
                        .get(1)
                        .ok_or_else(|| anyhow!("run without a number"))?;
                    *report = Report {
                        run: Some(parse_num(run)?),
                        ..Report::default()
                    };
                }
                Some("alloc") => {
                    let name = tokens
                        .get(1)
                        .ok_or_else(|| anyhow!("alloc without a name"))?;
                    let f = fields(&tokens[2..]);
                    report.allocations.push(Allocation {
                        name: name.to_string(),
                        api: field(&f, "api")?.to_string(),
                        vaddr: parse_num(field(&f, "vaddr")?)?,
                        region: field(&f, "region")?.to_string(),
                        phys: parse_num(field(&f, "phys")?)?,
                        size: parse_num(field(&f, "size")?)?,
                        pages: parse_num(field(&f, "pages")?)?,
                        contiguous: yes_no(field(&f, "contiguous")?)?,
                        gfp: field(&f, "gfp")?.to_string(),
                        fields: f,
                    });
                }
                Some("page") => {
                    let f = fields(&tokens[1..]);
                    report.vmalloc_pages.push(PageLine {
                        index: parse_num(field(&f, "index")?)?,
                        vaddr: parse_num(field(&f, "vaddr")?)?,
                        pfn: parse_num(field(&f, "pfn")?)?,
                    });
                }
                Some("check") => {
                    let (head, detail) = rest
                        .split_once(": ")
                        .ok_or_else(|| anyhow!("check line without `: `"))?;
                    let h: Vec<&str> = head.split_whitespace().collect();
                    let [_, result, allocation, claim] = h[..] else {
                        bail!("check line head {head:?} is not `check <ok|FAIL> <alloc> <claim>`");
                    };
                    let ok = match result {
                        "ok" => true,
                        "FAIL" => false,
                        _ => bail!("check result {result:?} is neither ok nor FAIL"),
                    };
                    report.checks.push(Check {
                        ok,
                        allocation: allocation.to_string(),
                        claim: claim.to_string(),
                        detail: detail.to_string(),
                    });
                }
                Some("done") => {
                    let f = fields(&tokens[1..]);
                    report.done = Some(Done {
                        run: parse_num(field(&f, "run")?)?,
                        allocations: parse_num(field(&f, "allocations")?)?,
                        checks: parse_num(field(&f, "checks")?)?,
                        failed: parse_num(field(&f, "failed")?)?,
                    });
                }
                Some("buffer") => {
                    let f = fields(&tokens[1..]);
                    report.buffer = Some(Buffer {
                        vaddr: parse_num(field(&f, "vaddr")?)?,
                        pages: parse_num(field(&f, "pages")?)?,
                    });
                }
                // `note` lines are for people.
                _ => {}
            }
            Ok(())
        };
        parse(&mut report).with_context(|| format!("demo report line {}: {line:?}", n + 1))?;
    }
    Ok(report)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// debugfs `layout` from a real run (5-level paging, 1 GiB, no KASLR).
    pub const LAYOUT: &str = "\
paging_levels 5
page_size 4096
page_offset 0xff11000000000000
page_offset_default 0xff11000000000000
high_memory 0xff1100003ffe0000
user_start 0x0
user_end 0xfffffffffff000
ldt_remap_start 0xff10000000000000
ldt_remap_end 0xff11000000000000
direct_map_start 0xff11000000000000
direct_map_end 0xff91000000000000
vmalloc_start 0xffa0000000000000
vmalloc_end 0xffd2000000000000
vmemmap_start 0xffd4000000000000
vmemmap_end 0xffd6000000000000
cpu_entry_area_start 0xfffffe0000000000
cpu_entry_area_end 0xfffffe8000000000
espfix_start 0xffffff0000000000
espfix_end 0xffffff8000000000
kernel_image_start 0xffffffff80000000
kernel_image_end 0xffffffffa0000000
modules_start 0xffffffffa0000000
modules_end 0xffffffffff000000
fixmap_start 0xffffffffff57c000
fixmap_end 0xffffffffff800000
vsyscall_page 0xffffffffff600000
fixaddr_top 0xffffffffff7ff000
kernel_text_kfree 0xffffffff81137660
module_data 0xffffffffa0212e15
phys_base 0x0
ram_pages 255684
struct_page_size 64
max_page_order 10
kaslr_text no
kaslr_memory no
page_offset_randomized no
";

    /// The x86_64 [`LAYOUT`], parsed.
    pub fn x86_layout() -> Layout {
        parse_layout_as(LAYOUT, "x86_64").unwrap()
    }

    /// debugfs `layout` of an arm64 kernel (48-bit addresses, 4 levels, 1
    /// GiB of RAM at physical 1 GiB on QEMU's virt machine, no KASLR): the
    /// kernel image at the start of vmalloc, inside it.
    pub const ARM64_LAYOUT: &str = "\
paging_levels 4
va_bits 48
page_size 4096
page_offset 0xffff000000000000
page_end 0xffff800000000000
high_memory 0xffff000040000000
user_start 0x0
user_end 0x1000000000000
direct_map_start 0xffff000000000000
direct_map_end 0xffff800000000000
modules_start 0xffff800000000000
modules_end 0xffff800080000000
vmalloc_start 0xffff800080000000
vmalloc_end 0xfffffdffbf800000
kernel_image_start 0xffff800080000000
kernel_image_end 0xffff800082a00000
vmemmap_start 0xfffffdffc0000000
vmemmap_end 0xffffffffc0000000
pci_io_start 0xffffffffc0800000
pci_io_end 0xffffffffc1800000
fixmap_start 0xffffffffff42f000
fixmap_end 0xffffffffff800000
fixaddr_top 0xffffffffff800000
kernel_text_kfree 0xffff8000802f1a40
module_data 0xffff80007a0d2e15
kimage_voffset 0xffff80003fe00000
memstart_addr 0x40000000
ram_pages 251231
struct_page_size 64
max_page_order 10
kaslr_text no
kaslr_memory no
";

    /// The arm64 [`ARM64_LAYOUT`], parsed.
    pub fn arm64_layout() -> Layout {
        parse_layout_as(ARM64_LAYOUT, "arm64").unwrap()
    }

    /// debugfs `layout` of a 32-bit ARM kernel (ARMv7, 2-level tables, the
    /// 3G/1G split, 1 GiB of RAM at physical 1 GiB on QEMU's virt machine):
    /// 768 MiB of it in the lowmem direct map, the rest high memory that
    /// only kmap reaches; the kernel image at the start of the direct map,
    /// the modules and the pkmap window below PAGE_OFFSET.
    pub const ARM_LAYOUT: &str = "\
arch armv7l
paging_levels 2
page_size 4096
vmsplit 3G/1G
page_offset 0xc0000000
high_memory 0xf0000000
lowmem_bytes 805306368
highmem_pages 65536
user_start 0x0
user_end 0xbf000000
modules_start 0xbf000000
modules_end 0xbfe00000
pkmap_start 0xbfe00000
pkmap_end 0xc0000000
direct_map_start 0xc0000000
direct_map_end 0xf0000000
vmalloc_start 0xf0800000
vmalloc_end 0xff800000
fixmap_start 0xffc80000
fixmap_end 0xfff00000
vectors_start 0xffff0000
vectors_end 0xffff1000
kernel_text_kfree 0xc03a1b2c
module_data 0xbf0a2e15
phys_offset 0x40000000
ram_pages 262144
struct_page_size 32
max_page_order 10
kaslr_text no
kaslr_memory no
";

    /// The 32-bit ARM [`ARM_LAYOUT`], parsed (by a 64-bit reader: its
    /// `arch` line names the architecture).
    pub fn arm_layout() -> Layout {
        parse_layout_as(ARM_LAYOUT, "x86_64").unwrap()
    }

    /// A demo report on that ARM kernel, shortened like [`REPORT`]: lowmem's
    /// phys is virt - PAGE_OFFSET + PHYS_OFFSET; a high-memory page has no
    /// address until kmap (pkmap) or kmap_local (fixmap) gives it one.
    pub const ARM_REPORT: &str = "\
demo: run 1 trigger=load
demo: alloc kmalloc api=kmalloc via=KBox size=100 vaddr=0xc2a5f980 region=direct_map phys=0x42a5f980 pages=1 contiguous=yes gfp=GFP_KERNEL gfp_raw=0xcc0
demo: check ok kmalloc direct-map: 0xc2a5f980 is in [PAGE_OFFSET 0xc0000000, high_memory 0xf0000000)
demo: alloc vmalloc api=vmalloc via=VVec size=60000 vaddr=0xf0a33000 region=vmalloc phys=0x7e8000 pages=15 contiguous=no runs=4 gfp=GFP_KERNEL gfp_raw=0xcc0
demo: page vmalloc index=0 vaddr=0xf0a33000 pfn=0x7fe8 phys=0x7fe8000
demo: page vmalloc index=1 vaddr=0xf0a34000 pfn=0x7fe9 phys=0x7fe9000
demo: check ok vmalloc vmalloc-range: [0xf0a33000, 0xf0a42000) is in [VMALLOC_START 0xf0800000, VMALLOC_END 0xff800000)
demo: alloc highmem_kmap api=alloc_pages via=bindings size=4096 vaddr=0xbfe01000 region=pkmap phys=0x7ff00000 pages=1 contiguous=yes gfp=GFP_HIGHUSER gfp_raw=0x100cc2
demo: alloc highmem_kmap_local api=alloc_pages via=bindings size=4096 vaddr=0xffcf7000 region=fixmap phys=0x7ff01000 pages=1 contiguous=yes gfp=GFP_HIGHUSER gfp_raw=0x100cc2
demo: buffer vaddr=0xf0a28000 region=vmalloc pages=10 (the /dev/mapdrv buffer, for comparison)
demo: done run=1 allocations=4 checks=2 failed=0 freed=yes
";

    /// A demo report on that arm64 kernel, shortened like [`REPORT`]: the
    /// linear map's phys is virt - PAGE_OFFSET + PHYS_OFFSET, and vmalloc
    /// hands out addresses above the kernel image.
    pub const ARM64_REPORT: &str = "\
demo: run 1 trigger=load
demo: alloc kmalloc api=kmalloc via=KBox size=100 vaddr=0xffff00000125f980 region=direct_map phys=0x4125f980 pages=1 contiguous=yes gfp=GFP_KERNEL gfp_raw=0xcc0
demo: check ok kmalloc direct-map: 0xffff00000125f980 is in [PAGE_OFFSET 0xffff000000000000, high_memory 0xffff000040000000)
demo: alloc vmalloc api=vmalloc via=VVec size=60000 vaddr=0xffff800082b33000 region=vmalloc phys=0x7e8000 pages=15 contiguous=no runs=4 gfp=GFP_KERNEL gfp_raw=0xcc0
demo: page vmalloc index=0 vaddr=0xffff800082b33000 pfn=0x47e8 phys=0x47e8000
demo: page vmalloc index=1 vaddr=0xffff800082b34000 pfn=0x47e9 phys=0x47e9000
demo: check ok vmalloc vmalloc-range: [0xffff800082b33000, 0xffff800082b42000) is in [VMALLOC_START 0xffff800080000000, VMALLOC_END 0xfffffdffbf800000)
demo: buffer vaddr=0xffff800082b28000 region=vmalloc pages=10 (the /dev/mapdrv buffer, for comparison)
demo: done run=1 allocations=2 checks=2 failed=0 freed=yes
";

    /// A demo report from the same run, shortened (3 of 15 vmalloc pages).
    pub const REPORT: &str = "\
demo: run 1 trigger=load
demo: alloc kmalloc api=kmalloc via=KBox size=100 vaddr=0xff1100000045f980 region=direct_map phys=0x45f980 pages=1 contiguous=yes gfp=GFP_KERNEL gfp_raw=0xcc0
demo: check ok kmalloc direct-map: 0xff1100000045f980 is in [PAGE_OFFSET 0xff11000000000000, high_memory 0xff1100003ffe0000)
demo: check ok kmalloc virt-to-phys: virt - PAGE_OFFSET = 0x45f980, the page tables map it to 0x45f980
demo: alloc kzalloc api=kzalloc via=KVec::zeroed size=100 vaddr=0xff1100000045f980 region=direct_map phys=0x45f980 pages=1 contiguous=yes gfp=GFP_KERNEL|__GFP_ZERO gfp_raw=0xdc0 reused_kmalloc=yes
demo: check ok kzalloc zeroed: 0 of 100 bytes are not zero (the same object kmalloc filled with 0x5a and freed)
demo: alloc vmalloc api=vmalloc via=VVec size=60000 vaddr=0xffa0000000133000 region=vmalloc phys=0x2e8000 pages=15 contiguous=no runs=4 gfp=GFP_KERNEL gfp_raw=0xcc0
demo: page vmalloc index=0 vaddr=0xffa0000000133000 pfn=0x2e8 phys=0x2e8000
demo: page vmalloc index=1 vaddr=0xffa0000000134000 pfn=0x2e9 phys=0x2e9000
demo: page vmalloc index=2 vaddr=0xffa0000000135000 pfn=0x240 phys=0x240000
demo: check ok vmalloc vmalloc-range: [0xffa0000000133000, 0xffa0000000142000) is in [VMALLOC_START 0xffa0000000000000, VMALLOC_END 0xffd2000000000000)
demo: alloc alloc_pages_max api=alloc_pages via=bindings order=10 size=4194304 vaddr=0xff11000000c00000 region=direct_map phys=0xc00000 pfn=0xc00 pages=1024 contiguous=yes gfp=GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY gfp_raw=0x12cc0 max_page_order=10 failed_orders=0
demo: check ok alloc_pages_max aligned: pfn 0xc00 is a multiple of 2^10 = 1024
demo: buffer vaddr=0xffa0000000128000 region=vmalloc pages=10 (the /dev/mapdrv buffer, for comparison)
demo: done run=1 allocations=4 checks=5 failed=0 freed=yes
";

    #[test]
    fn layout_parses_into_ordered_regions() {
        let l = x86_layout();
        assert_eq!(l.arch, "x86_64");
        assert_eq!(
            l.regions[2].description,
            "direct map of all RAM (PAGE_OFFSET)"
        );
        assert_eq!(l.page_size(), 4096);
        assert_eq!(l.phys_offset(), 0);
        let names: Vec<&str> = l.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "user",
                "ldt_remap",
                "direct_map",
                "vmalloc",
                "vmemmap",
                "cpu_entry_area",
                "espfix",
                "kernel_image",
                "modules",
                "fixmap"
            ]
        );
        assert_eq!(l.num("page_offset").unwrap(), 0xff11_0000_0000_0000);
        assert_eq!(l.num("max_page_order").unwrap(), 10);
        assert!(!l.flag("kaslr_memory"));
        assert_eq!(l.region_of(0xffa0_0000_0013_3000).unwrap().name, "vmalloc");
        assert_eq!(
            l.region_of(0xffff_ffff_8113_7660).unwrap().name,
            "kernel_image"
        );
        assert!(l.region_of(0x8000_0000_0000_0000).is_none());
    }

    #[test]
    fn arm64_layout_nests_the_kernel_image_in_vmalloc() {
        let l = arm64_layout();
        assert_eq!(l.arch, "arm64");
        let names: Vec<&str> = l.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "user",
                "direct_map",
                "modules",
                "vmalloc",
                "kernel_image",
                "vmemmap",
                "pci_io",
                "fixmap"
            ]
        );
        assert_eq!(l.num("va_bits").unwrap(), 48);
        assert_eq!(l.phys_offset(), 0x4000_0000);
        assert_eq!(
            l.region_of(0xffff_8000_802f_1a40).unwrap().name,
            "kernel_image"
        );
        assert_eq!(l.region_of(0xffff_8000_82b3_3000).unwrap().name, "vmalloc");
        assert_eq!(l.region_of(0xffff_8000_7a0d_2e15).unwrap().name, "modules");
        assert_eq!(l.region_of(0xffff_ffff_c080_0000).unwrap().name, "pci_io");
        assert_eq!(l.region_of(0xaaaa_0000_0000).unwrap().name, "user");
        assert!(l.region_of(0x8000_0000_0000_0000).is_none());
        let fixmap = l.regions.iter().find(|r| r.name == "fixmap").unwrap();
        assert_eq!(fixmap.description, "fixmap");
        // The same image at the very start of vmalloc, and the outer one
        // first, whatever the order of the lines.
        let swapped = ARM64_LAYOUT
            .replace("kernel_image_start 0xffff800080000000\n", "")
            .replace(
                "vmalloc_start 0xffff800080000000\n",
                "kernel_image_start 0xffff800080000000\nvmalloc_start 0xffff800080000000\n",
            );
        let s = parse_layout_as(&swapped, "arm64").unwrap();
        assert_eq!(s.regions, l.regions);
        // Inside is fine, across the edge is not.
        let across = ARM64_LAYOUT.replace(
            "kernel_image_start 0xffff800080000000",
            "kernel_image_start 0xffff80007f000000",
        );
        let err = parse_layout_as(&across, "arm64").unwrap_err();
        assert!(format!("{err:#}").contains("overlap"), "{err:#}");
        // An `arch` line names the architecture whoever reads it.
        let named = format!("arch aarch64\n{ARM64_LAYOUT}");
        assert_eq!(parse_layout_as(&named, "x86_64").unwrap().arch, "arm64");
        let r = parse_report(ARM64_REPORT).unwrap();
        r.complete_and_clean().unwrap();
        for a in &r.allocations {
            assert_eq!(l.region_of(a.vaddr).unwrap().name, a.region);
        }
        assert_eq!(
            r.allocations[0].vaddr - l.num("page_offset").unwrap() + l.phys_offset(),
            r.allocations[0].phys
        );
    }

    #[test]
    fn arm_layout_has_lowmem_highmem_and_the_regions_below_page_offset() {
        let l = arm_layout();
        assert_eq!(l.arch, "arm");
        let names: Vec<&str> = l.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "user",
                "modules",
                "pkmap",
                "direct_map",
                "vmalloc",
                "fixmap",
                "vectors"
            ]
        );
        let described = |name: &str| {
            l.regions
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.description)
                .unwrap()
        };
        assert_eq!(
            described("direct_map"),
            "lowmem direct map (PAGE_OFFSET..high_memory)"
        );
        assert!(described("pkmap").starts_with("persistent kmap window (PKMAP_BASE)"));
        assert!(described("fixmap").contains("kmap_local"));
        assert!(described("modules").contains("MODULES_VADDR"));
        assert!(described("vectors").contains("0xffff0000"));
        assert_eq!(described("user"), "user space (per process)");
        // 32-bit addresses, as u64, and the facts only ARM reports.
        assert_eq!(l.regions[0].size, 0xbf00_0000);
        assert_eq!(l.num("page_offset").unwrap(), 0xc000_0000);
        assert_eq!(l.phys_offset(), 0x4000_0000);
        assert_eq!(l.num("highmem_pages").unwrap(), 65536);
        assert_eq!(
            l.num("lowmem_bytes").unwrap(),
            l.num("high_memory").unwrap() - l.num("page_offset").unwrap()
        );
        assert_eq!(l.values["vmsplit"], "3G/1G");
        // The kernel's text is in lowmem; the gap below vmalloc and the
        // top of the address space are nobody's.
        assert_eq!(l.region_of(0xc03a_1b2c).unwrap().name, "direct_map");
        assert_eq!(l.region_of(0xbf0a_2e15).unwrap().name, "modules");
        assert_eq!(l.region_of(0xbfff_ffff).unwrap().name, "pkmap");
        assert_eq!(l.region_of(0xffff_0fa0).unwrap().name, "vectors");
        assert_eq!(l.region_of(0x0001_0000).unwrap().name, "user");
        assert!(l.region_of(0xf040_0000).is_none());
        assert!(l.region_of(0xffff_ffff).is_none());
        assert!(l.region_of(0x1_0000_0000).is_none());
        let r = parse_report(ARM_REPORT).unwrap();
        r.complete_and_clean().unwrap();
        for a in &r.allocations {
            assert_eq!(l.region_of(a.vaddr).unwrap().name, a.region, "{}", a.name);
        }
        assert_eq!(
            r.allocations[0].vaddr - l.num("page_offset").unwrap() + l.phys_offset(),
            r.allocations[0].phys
        );
        // High memory lies above what the direct map reaches.
        let lowmem_end = l.phys_offset() + l.num("lowmem_bytes").unwrap();
        assert!(r.allocations[2..].iter().all(|a| a.phys >= lowmem_end));
    }

    #[test]
    fn architecture_names() {
        assert_eq!(arch_name("aarch64"), "arm64");
        assert_eq!(arch_name("armv7l"), "arm");
        assert_eq!(arch_name("arm"), "arm");
        assert_eq!(arch_name("x86_64"), "x86_64");
        assert_eq!(arch_name("riscv64"), "riscv64");
        let running = running_arch();
        assert_eq!(running, arch_name(std::env::consts::ARCH));
    }

    #[test]
    fn layout_errors() {
        assert!(parse_layout("page_offset\n").is_err());
        assert!(parse_layout("a 1\na 2\n").is_err());
        let overlap = LAYOUT.replace(
            "vmalloc_start 0xffa0000000000000",
            "vmalloc_start 0xff90000000000000",
        );
        let err = parse_layout(&overlap).unwrap_err();
        assert!(format!("{err:#}").contains("overlap"), "{err:#}");
        let inverted = LAYOUT.replace("fixmap_end 0xffffffffff800000", "fixmap_end 0x1");
        assert!(parse_layout(&inverted).is_err());
        let missing = LAYOUT.replace("espfix_end 0xffffff8000000000\n", "");
        assert!(format!("{:#}", parse_layout(&missing).unwrap_err()).contains("espfix_end"));
    }

    #[test]
    fn report_parses() {
        let r = parse_report(REPORT).unwrap();
        assert_eq!(r.run, Some(1));
        assert_eq!(
            r.buffer,
            Some(Buffer {
                vaddr: 0xffa0_0000_0012_8000,
                pages: 10
            })
        );
        assert_eq!(r.allocations.len(), 4);
        let k = &r.allocations[0];
        assert_eq!((k.name.as_str(), k.api.as_str()), ("kmalloc", "kmalloc"));
        assert_eq!(k.vaddr, 0xff11_0000_0045_f980);
        assert_eq!(k.phys, 0x45_f980);
        assert!(k.contiguous);
        assert_eq!(r.allocations[1].gfp, "GFP_KERNEL|__GFP_ZERO");
        assert_eq!(r.allocations[1].fields["reused_kmalloc"], "yes");
        assert!(!r.allocations[2].contiguous);
        assert_eq!(r.allocations[3].fields["order"], "10");
        assert_eq!(r.vmalloc_pages.len(), 3);
        assert_eq!(r.vmalloc_pages[2].pfn, 0x240);
        assert_eq!(r.checks.len(), 5);
        assert!(r.checks.iter().all(|c| c.ok));
        assert_eq!(r.checks[1].claim, "virt-to-phys");
        assert!(r.checks[1].detail.starts_with("virt - PAGE_OFFSET"));
        r.complete_and_clean().unwrap();
    }

    #[test]
    fn report_from_dmesg_keeps_the_last_run() {
        let dmesg: String = REPORT
            .lines()
            .map(|l| format!("[    0.604574] rust_mapdrv: {l}\n"))
            .collect::<String>()
            + "[    1.0] rust_mapdrv: demo: run 2 trigger=debugfs\n[    1.1] other: line\n";
        let r = parse_report(&dmesg).unwrap();
        assert_eq!(r.run, Some(2));
        assert!(r.allocations.is_empty());
        assert!(r.complete_and_clean().is_err());
    }

    #[test]
    fn failed_and_short_reports_are_caught() {
        let failed = REPORT.replace(
            "check ok kzalloc zeroed: 0 of",
            "check FAIL kzalloc zeroed: 7 of",
        );
        let r = parse_report(&failed).unwrap();
        assert_eq!(r.failures().count(), 1);
        let err = r.complete_and_clean().unwrap_err();
        assert!(format!("{err}").contains("kzalloc zeroed"), "{err}");
        let short: String = REPORT.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert!(parse_report(&short).unwrap().complete_and_clean().is_err());
        let miscounted = REPORT.replace("checks=5", "checks=7");
        assert!(
            parse_report(&miscounted)
                .unwrap()
                .complete_and_clean()
                .is_err()
        );
        assert!(parse_report("demo: alloc x api=y\n").is_err());
        assert!(parse_report("demo: check maybe x y: z\n").is_err());
        assert!(parse_report("demo: alloc x api=a vaddr=1 region=r phys=2 size=3 pages=1 contiguous=perhaps gfp=0\n").is_err());
    }
}
