// SPDX-License-Identifier: GPL-2.0

//! The debugfs view of the device, `/sys/kernel/debug/mapdrv/`:
//!
//! - `pages`: one line per page, `<index> 0x<kernel vaddr> 0x<pfn>
//!   0x<direct-map address>` after a `#` header, from the kernel's
//!   `vmalloc_to_pfn()` (the load already checked our walk against it);
//! - `stats`: `key value` lines of the event counters, the size in pages and
//!   how long each phase of the load took (`load_*_ns`), all decimal numbers;
//! - `mode`: the mode new mappings get; write a name or number to switch;
//! - `map_pages`: `1` when new mappings get operations with a (no-op)
//!   `.map_pages`, so that their faults are handled under the per-VMA lock
//!   (the default), `0` when each fault is retried under `mmap_lock`; write
//!   `0` or `1` to switch (see `vm_ops::VmOps`);
//! - `demo`: the allocation demo's last report; write `run` (or `1`) to run
//!   it again (see `demo/mod.rs`);
//! - `layout`: the kernel's address-space layout as `key value` lines;
//! - `hold`: the block of 2^order pages the demo keeps, or `none`; write an
//!   order (0..=MAX_PAGE_ORDER) to allocate and keep one (`EBUSY` if one is
//!   kept already, `ENOMEM` if none can be had), `release` to free it.
//!
//! All of them are made here, in one directory that the module owns; the
//! files pin the module while open (see `owned_debugfs`), so `rmmod` fails
//! while one is open instead of leaving it pointing at unloaded code.

use core::fmt;
use kernel::{
    module::this_module, prelude::*, sync::atomic::Relaxed, sync::Arc, uaccess::UserSliceReader,
};

use crate::{
    arch,
    contract::Mode,
    decimal::Decimal,
    demo::{self, Demo},
    device::Mapdrv,
    highmem,
    owned_debugfs::{self, FileSpec, Operations},
};

/// What every file shows: the device and the allocation demo.
pub(crate) struct FileData {
    pub(crate) device: Arc<Mapdrv>,
    pub(crate) demo: Arc<Demo>,
}

/// The operations of our files, owned by this module. `this_module` needs
/// the type that `module!` implements `ModuleMetadata` for, so this is the
/// one place outside the crate root that names the module type.
static OPERATIONS: Operations<FileData> = Operations::new(this_module::<crate::MapdrvModule>());

/// The debugfs directory `mapdrv/` and its files; removed when dropped.
pub(crate) struct DebugFs {
    _dir: owned_debugfs::Dir<FileData, 7>,
}

impl DebugFs {
    /// Creates `mapdrv/` and its files for `device` and `demo`.
    pub(crate) fn new(device: Arc<Mapdrv>, demo: Arc<Demo>) -> Result<Self> {
        let files = [
            FileSpec {
                name: c"pages",
                show: show_pages,
                store: None,
            },
            FileSpec {
                name: c"stats",
                show: show_stats,
                store: None,
            },
            FileSpec {
                name: c"mode",
                show: show_mode,
                store: Some(store_mode),
            },
            FileSpec {
                name: c"map_pages",
                show: show_map_pages,
                store: Some(store_map_pages),
            },
            FileSpec {
                name: c"demo",
                show: show_report,
                store: Some(store_run),
            },
            FileSpec {
                name: c"layout",
                show: show_layout,
                store: None,
            },
            FileSpec {
                name: c"hold",
                show: show_hold,
                store: Some(store_hold),
            },
        ];
        let data = FileData { device, demo };
        let _dir = owned_debugfs::Dir::new(c"mapdrv", data, files, &OPERATIONS)?;
        Ok(Self { _dir })
    }
}

fn show_pages(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    let buffer = &dev.buffer;
    // direct_map_addr is 0 and page_address "none" for a highmem page
    // (32-bit ARM) that no kmap() maps now: it has no permanent kernel
    // address.
    writeln!(
        f,
        "# index kernel_vaddr pfn direct_map_addr zone page_address"
    )?;
    for index in 0..buffer.pages() {
        let vaddr = buffer.page_vaddr(index).unwrap_or(0);
        let pfn = buffer.kernel_pfn(index).unwrap_or(0);
        let direct = arch::DirectMap::current().addr_of_pfn(pfn).unwrap_or(0);
        let zone = highmem::zone_name(pfn);
        write!(
            f,
            "{index} {vaddr:#x} {pfn:#x} {direct:#x} {}",
            zone.to_str().unwrap_or("?")
        )?;
        match buffer
            .page(index)
            .and_then(|p| highmem::page_address(p.as_ptr()))
        {
            Some(addr) => writeln!(f, " {addr:#x}")?,
            None => writeln!(f, " none")?,
        }
    }
    Ok(())
}

fn show_stats(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    for (name, value) in dev.stats.snapshot() {
        writeln!(f, "{name} {}", Decimal(value))?;
    }
    writeln!(f, "pages {}", dev.buffer.pages())?;
    writeln!(f, "huge_blocks {}", dev.buffer.mappable_blocks())?;
    let load = &dev.load;
    writeln!(f, "load_alloc_ns {}", Decimal(load.alloc_ns))?;
    writeln!(f, "load_fill_ns {}", Decimal(load.fill_ns))?;
    writeln!(f, "load_walk_ns {}", Decimal(load.walk_ns))
}

fn show_mode(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    writeln!(f, "{}", dev.mode().name())
}

fn store_mode(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let dev = &data.device;
    let mut buf = [0u8; 16];
    let mode = Mode::parse(read_text(reader, &mut buf)?).ok_or(EINVAL)?;
    dev.set_mode(mode);
    pr_info!("mode for new mappings: {}\n", mode.name());
    Ok(())
}

fn show_map_pages(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    writeln!(f, "{}", u8::from(dev.map_pages.load(Relaxed)))
}

fn store_map_pages(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let dev = &data.device;
    let mut buf = [0u8; 4];
    let on = match read_word(reader, &mut buf)? {
        "1" => true,
        "0" => false,
        _ => return Err(EINVAL),
    };
    dev.map_pages.store(on, Relaxed);
    pr_info!(
        "new mappings: faults under the {}\n",
        if on {
            "per-VMA lock (.map_pages)"
        } else {
            "mmap_lock (no .map_pages)"
        }
    );
    Ok(())
}

/// Reads what was written to a file, all of it (`EINVAL` if it does not fit
/// in `buf`).
fn read_text<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a [u8]> {
    let len = reader.len();
    let text = buf.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(text)?;
    Ok(text)
}

/// Reads what was written to a file as text, trimmed.
fn read_word<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a str> {
    let text = read_text(reader, buf)?;
    Ok(core::str::from_utf8(text).map_err(|_| EINVAL)?.trim())
}

fn show_report(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    data.demo.with_report(|report| {
        if report.is_empty() {
            return writeln!(f, "# no demo run yet: write `run` to this file");
        }
        f.write_str(core::str::from_utf8(report).unwrap_or("# (report is not text)\n"))
    })
}

fn store_run(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    match read_word(reader, &mut buf)? {
        "run" | "1" => {
            data.demo.run("debugfs", &data.device.buffer);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

fn show_layout(_data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    demo::write_layout(f)
}

fn show_hold(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match data.demo.hold_status() {
        None => writeln!(f, "none"),
        Some(b) => writeln!(
            f,
            "order {} pages {} pfn {:#x} vaddr {:#x}",
            b.order,
            b.pages,
            b.pfn,
            b.vaddr.unwrap_or(0)
        ),
    }
}

/// `hold`: an order allocates a block and keeps it, `release` frees it.
fn store_hold(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let word = read_word(reader, &mut buf)?;
    if word == "release" {
        data.demo.release();
        return Ok(());
    }
    data.demo.hold(word.parse::<u32>().map_err(|_| EINVAL)?)
}
