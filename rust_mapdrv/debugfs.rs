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
//! - `demo`, `layout`, `hold`: the allocation demo's files (see `demo.rs`).

//!
//! All of them are made here, in one directory that the module owns; the
//! files pin the module while open (see `owned_debugfs`), so `rmmod` fails
//! while one is open instead of leaving it pointing at unloaded code.

use core::fmt;
use kernel::{
    module::this_module, page::PAGE_SHIFT, prelude::*, sync::atomic::Relaxed, sync::Arc,
    uaccess::UserSliceReader,
};

use crate::{
    contract::Mode,
    demo::Demo,
    owned_debugfs::{self, FileSpec, Operations},
    vmalloc_util, Mapdrv,
};

/// What every file shows: the device and the allocation demo.
pub(crate) struct FileData {
    pub(crate) device: Arc<Mapdrv>,
    pub(crate) demo: Arc<Demo>,
}

/// The operations of our files, owned by this module.
static OPERATIONS: Operations<FileData> = Operations::new(this_module::<crate::MapdrvModule>());

/// The debugfs directory `mapdrv/` and its files; removed when dropped.
pub(crate) struct DebugFs {
    _dir: owned_debugfs::Dir<FileData, 7>,
}

impl DebugFs {
    /// Creates `mapdrv/` and its files for `device` and `demo`.
    pub(crate) fn new(device: Arc<Mapdrv>, demo: Arc<Demo>) -> Result<Self> {
        let [demo_file, layout, hold] = crate::demo::files();
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
            demo_file,
            layout,
            hold,
        ];
        let data = FileData { device, demo };
        let _dir = owned_debugfs::Dir::new(c"mapdrv", data, files, &OPERATIONS)?;
        Ok(Self { _dir })
    }
}

fn show_pages(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    let buffer = &dev.buffer;
    writeln!(f, "# index kernel_vaddr pfn direct_map_addr")?;
    for index in 0..buffer.pages() {
        let vaddr = buffer.page_vaddr(index).unwrap_or(0);
        let pfn = buffer.kernel_pfn(index).unwrap_or(0);
        let direct = vmalloc_util::page_offset_base() + ((pfn as usize) << PAGE_SHIFT);
        writeln!(f, "{index} {vaddr:#x} {pfn:#x} {direct:#x}")?;
    }
    Ok(())
}

fn show_stats(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    for (name, value) in dev.stats.snapshot() {
        writeln!(f, "{name} {value}")?;
    }
    writeln!(f, "pages {}", dev.buffer.pages())?;
    let load = &dev.load;
    writeln!(f, "load_alloc_ns {}", load.alloc_ns)?;
    writeln!(f, "load_fill_ns {}", load.fill_ns)?;
    writeln!(f, "load_walk_ns {}", load.walk_ns)
}

fn show_mode(data: &FileData, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let dev = &data.device;
    writeln!(f, "{}", dev.mode().name())
}

fn store_mode(data: &FileData, reader: &mut UserSliceReader) -> Result {
    let dev = &data.device;
    let mut text = [0u8; 16];
    let len = reader.len();
    let text = text.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(text)?;
    let mode = Mode::parse(text).ok_or(EINVAL)?;
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
    let mut text = [0u8; 4];
    let len = reader.len();
    let text = text.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(text)?;
    let on = match core::str::from_utf8(text).map_err(|_| EINVAL)?.trim() {
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
