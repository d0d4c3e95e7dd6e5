// SPDX-License-Identifier: GPL-2.0

//! `mapdrv layout --self`: the user-space counterpart of the kernel's
//! layout (its report opens "below are addresses of types of process's
//! mem"): where this process's code, data, bss, heap and stack are, what
//! the kernel maps into every process (the vDSO and its data; on x86_64
//! the legacy vsyscall page too, which arm64 does not have), plus a
//! mapping of /dev/mapdrv, each address
//! looked up in /proc/self/maps; and, as root, the PFN behind each page of
//! the mapping next to the kernel's view of the same page (debugfs pages).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::sys::mman::ProtFlags;
use serde::Serialize;

use crate::debugfs::Debugfs;
use crate::device::{Access, Device, Share, system_page_size};
use crate::pagemap;

/// Initialised data: lives in the data segment.
static DATA_VAR: AtomicU32 = AtomicU32::new(1);
/// Zero-initialised: lives in the bss.
static BSS_VAR: AtomicU32 = AtomicU32::new(0);

/// A line of /proc/self/maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub name: String,
}

/// Parses /proc/self/maps text.
pub fn parse_maps(text: &str) -> Vec<MapsLine> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms) = (f.next()?, f.next()?);
            let name = f.nth(3).unwrap_or("").to_string();
            let (s, e) = range.split_once('-')?;
            Some(MapsLine {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms: perms.to_string(),
                name,
            })
        })
        .collect()
}

/// The mapping that holds `addr`, described as `perms name`.
pub fn where_is(maps: &[MapsLine], addr: u64) -> String {
    maps.iter()
        .find(|m| (m.start..m.end).contains(&addr))
        .map_or("(not mapped?)".to_string(), |m| {
            let name = if m.name.is_empty() {
                "(anonymous)"
            } else {
                &m.name
            };
            format!("{} {}", m.perms, name)
        })
}

#[derive(Debug, Serialize)]
struct Item {
    segment: &'static str,
    what: &'static str,
    addr: String,
    mapping: String,
}

#[derive(Debug, Serialize)]
struct MappedPage {
    index: usize,
    user_vaddr: String,
    pfn: Option<String>,
    kernel_vaddr: Option<String>,
    kernel_pfn: Option<String>,
}

#[derive(Debug, Serialize)]
struct SelfJson {
    items: Vec<Item>,
    mapdrv_pages: Vec<MappedPage>,
}

#[inline(never)]
fn stack_address() -> u64 {
    let local = std::hint::black_box(3u32);
    std::ptr::from_ref(&local) as u64
}

pub fn run(device: &Path, debugfs_dir: &Path, json: bool, out: &mut dyn Write) -> Result<bool> {
    let stack_var0 = std::hint::black_box(2u32);
    let heap_box = std::hint::black_box(Box::new([0u8; 64]));
    // SAFETY: sbrk(0) only reads the current program break.
    let brk = unsafe { libc::sbrk(0) } as u64;
    DATA_VAR.fetch_add(0, Ordering::Relaxed);
    BSS_VAR.fetch_add(0, Ordering::Relaxed);

    let dev = Device::open(device, Access::ReadOnly)?;
    let (_, geometry) = dev.geometry()?;
    let page_size = system_page_size()?;
    let mapping = dev
        .map(0, geometry.size, ProtFlags::PROT_READ, Share::Shared)
        .context("cannot mmap /dev/mapdrv")?;
    // Touch every page, so that the fault handler maps it.
    let first_bytes: Vec<u8> = (0..geometry.pages)
        .map(|i| mapping.read_u8(i * page_size))
        .collect();
    let maps = parse_maps(
        &std::fs::read_to_string("/proc/self/maps").context("cannot read /proc/self/maps")?,
    );

    let mut items_raw: Vec<(&'static str, &'static str, u64)> = vec![
        (
            "text",
            "address of main (code segment)",
            crate::main as *const () as u64,
        ),
        ("text", "address of layout::run", run as *const () as u64),
        (
            "data",
            "address of DATA_VAR = 1 (data segment)",
            std::ptr::from_ref(&DATA_VAR) as u64,
        ),
        (
            "bss",
            "address of BSS_VAR = 0 (bss)",
            std::ptr::from_ref(&BSS_VAR) as u64,
        ),
        (
            "heap",
            "a Box<[u8; 64]> (malloc)",
            std::ptr::from_ref(&*heap_box) as u64,
        ),
        ("heap", "end of heap: sbrk(0)", brk),
        (
            "stack",
            "a local variable of run",
            std::ptr::from_ref(&stack_var0) as u64,
        ),
        ("stack", "a local variable one call deeper", stack_address()),
    ];
    items_raw.extend(kernel_provided(&maps));
    let mut items: Vec<Item> = items_raw
        .iter()
        .map(|&(segment, what, addr)| Item {
            segment,
            what,
            addr: format!("{addr:#x}"),
            // sbrk(0) is the first byte past the heap.
            mapping: where_is(
                &maps,
                if segment == "heap" && what.starts_with("end") {
                    addr - 1
                } else {
                    addr
                },
            ),
        })
        .collect();
    let base = mapping.addr() as u64;
    items.push(Item {
        segment: "mmap",
        what: "mmap of /dev/mapdrv",
        addr: format!("{base:#x}"),
        mapping: where_is(&maps, base),
    });

    // PFNs need root; the kernel side from debugfs `pages`.
    let pfns = pagemap::read_self(mapping.addr(), geometry.pages, page_size).ok();
    let kernel = Debugfs::locate(debugfs_dir).and_then(|d| d.pages()).ok();
    let pages: Vec<MappedPage> = (0..geometry.pages)
        .map(|i| MappedPage {
            index: i,
            user_vaddr: format!("{:#x}", base + (i * page_size) as u64),
            pfn: pfns
                .as_ref()
                .and_then(|p| p[i].pfn())
                .filter(|&p| p != 0)
                .map(|p| format!("{p:#x}")),
            kernel_vaddr: kernel
                .as_ref()
                .and_then(|k| k.get(i))
                .map(|k| format!("{:#x}", k.vaddr)),
            kernel_pfn: kernel
                .as_ref()
                .and_then(|k| k.get(i))
                .map(|k| format!("{:#x}", k.pfn)),
        })
        .collect();
    let _ = first_bytes;

    if json {
        let j = SelfJson {
            items,
            mapdrv_pages: pages,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(true);
    }
    writeln!(
        out,
        "below are addresses of types of process's mem (pid {})",
        std::process::id()
    )?;
    let mut last = "";
    for it in &items {
        if it.segment != last {
            writeln!(out, "{} location:", title(it.segment))?;
            last = it.segment;
        }
        writeln!(out, "\t{}: {}\t[{}]", it.what, it.addr, it.mapping)?;
    }
    writeln!(
        out,
        "/dev/mapdrv pages: user address -> pfn (our pagemap) = pfn (kernel's debugfs pages) <- kernel vmalloc address"
    )?;
    let mut same = true;
    for p in &pages {
        same &= p.pfn.is_some() && p.pfn == p.kernel_pfn;
        writeln!(
            out,
            "\tpage {}: {} -> {} = {} <- {}",
            p.index,
            p.user_vaddr,
            p.pfn.as_deref().unwrap_or("? (root only)"),
            p.kernel_pfn.as_deref().unwrap_or("?"),
            p.kernel_vaddr.as_deref().unwrap_or("? (debugfs)")
        )?;
    }
    writeln!(
        out,
        "{}",
        if same {
            "the same physical pages, one mapped in user space, one in the vmalloc area"
        } else {
            "could not compare every page (root and debugfs needed)"
        }
    )?;
    Ok(true)
}

/// What the kernel maps into every process, as far as this one has it: the
/// vDSO (the auxiliary vector says where), its data pages, the legacy
/// vsyscall page, which only x86_64 has (at a fixed address in the kernel
/// half), and 32-bit ARM's vectors page (0xffff0000, above user space:
/// the kuser helpers) and signal-return page; by /proc/self/maps, so
/// whatever the architecture.
fn kernel_provided(maps: &[MapsLine]) -> Vec<(&'static str, &'static str, u64)> {
    let mut items = Vec::new();
    // SAFETY: getauxval only reads this process's auxiliary vector.
    let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    if vdso != 0 {
        items.push(("vdso", "the vDSO (AT_SYSINFO_EHDR)", vdso as u64));
    }
    for (name, what) in [
        ("[vvar]", "the vDSO's data ([vvar])"),
        ("[vsyscall]", "the legacy vsyscall page"),
        ("[vectors]", "the vectors page ([vectors], kuser helpers)"),
        ("[sigpage]", "the signal return page ([sigpage])"),
    ] {
        if let Some(m) = maps.iter().find(|m| m.name == name) {
            items.push(("vdso", what, m.start));
        }
    }
    items
}

fn title(segment: &str) -> &'static str {
    match segment {
        "text" => "Text",
        "data" => "Data",
        "bss" => "BSS",
        "heap" => "Heap",
        "stack" => "Stack",
        "vdso" => "Kernel-provided",
        _ => "Mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_and_find() {
        let maps = parse_maps(
            "00400000-00401000 r--p 00000000 00:03 9   /bin/mapdrv\n\
             12c61000-12c83000 rw-p 00000000 00:00 0   [heap]\n\
             7fcbed6bc000-7fcbed6cc000 rw-p 00000000 00:00 0 \n\
             7ffd7239e000-7ffd723bf000 rw-p 00000000 00:00 0   [stack]\n",
        );
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].name, "/bin/mapdrv");
        assert_eq!(maps[2].name, "");
        assert_eq!(where_is(&maps, 0x12c61000), "rw-p [heap]");
        assert_eq!(where_is(&maps, 0x12c83000), "(not mapped?)");
        assert_eq!(where_is(&maps, 0x7fcbed6bc000), "rw-p (anonymous)");
        assert_eq!(where_is(&maps, 0x7ffd7239f000), "rw-p [stack]");
    }

    #[test]
    fn own_statics_and_stack_are_where_maps_says() {
        let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        assert!(
            where_is(&maps, stack_address()).contains("[stack]")
                || where_is(&maps, stack_address()).contains("anonymous")
        );
        assert!(!where_is(&maps, std::ptr::from_ref(&DATA_VAR) as u64).contains("not mapped"));
        assert!(where_is(&maps, run as *const () as u64).starts_with("r-x"));
    }

    #[test]
    fn the_vdso_is_where_maps_says() {
        let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let items = kernel_provided(&maps);
        // A vDSO unless the kernel has none (vdso=0) or an emulator none.
        let vdso = items.iter().find(|i| i.1.starts_with("the vDSO ("));
        assert_eq!(
            vdso.is_some(),
            maps.iter().any(|m| m.name == "[vdso]"),
            "{items:?}"
        );
        if let Some(&(_, _, addr)) = vdso {
            assert!(where_is(&maps, addr).ends_with("[vdso]"), "{items:?}");
        }
        // vsyscall only where maps lists it, which only x86_64 can.
        let vsyscall = items.iter().find(|i| i.1.contains("vsyscall"));
        if cfg!(target_arch = "x86_64") {
            assert!(vsyscall.is_none_or(|v| v.2 == 0xffff_ffff_ff60_0000));
        } else {
            assert!(vsyscall.is_none(), "{vsyscall:?}");
        }
    }
}
