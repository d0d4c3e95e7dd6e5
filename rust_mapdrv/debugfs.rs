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

use core::fmt;
use kernel::{
    debugfs::{Dir, File},
    page::PAGE_SHIFT,
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    uaccess::UserSliceReader,
};

use crate::{contract::Mode, vmalloc_util, Mapdrv};

/// The debugfs directory and its files; removed when dropped.
#[pin_data]
pub(crate) struct DebugFs {
    #[pin]
    pages: File<Arc<Mapdrv>>,
    #[pin]
    stats: File<Arc<Mapdrv>>,
    #[pin]
    mode: File<Arc<Mapdrv>>,
    #[pin]
    map_pages: File<Arc<Mapdrv>>,
    #[pin]
    demo: crate::demo::DemoFiles,
    dir: Dir,
}

impl DebugFs {
    /// Creates `mapdrv/` and its files for `dev` and `demo`.
    pub(crate) fn new(dev: Arc<Mapdrv>, demo: Arc<crate::demo::Demo>) -> impl PinInit<Self, Error> {
        let dir = Dir::new(c"mapdrv");
        try_pin_init!(Self {
            pages <- dir.read_callback_file(c"pages", dev.clone(), &show_pages),
            stats <- dir.read_callback_file(c"stats", dev.clone(), &show_stats),
            demo <- crate::demo::DemoFiles::new(&dir, demo, dev.clone()),
            mode <- dir.read_write_callback_file(c"mode", dev.clone(), &show_mode, &store_mode),
            map_pages <- dir.read_write_callback_file(
                c"map_pages",
                dev,
                &show_map_pages,
                &store_map_pages
            ),
            dir,
        })
    }
}

fn show_pages(dev: &Arc<Mapdrv>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

fn show_stats(dev: &Arc<Mapdrv>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, value) in dev.stats.snapshot() {
        writeln!(f, "{name} {value}")?;
    }
    writeln!(f, "pages {}", dev.buffer.pages())?;
    let load = &dev.load;
    writeln!(f, "load_alloc_ns {}", load.alloc_ns)?;
    writeln!(f, "load_fill_ns {}", load.fill_ns)?;
    writeln!(f, "load_walk_ns {}", load.walk_ns)
}

fn show_mode(dev: &Arc<Mapdrv>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", dev.mode().name())
}

fn store_mode(dev: &Arc<Mapdrv>, reader: &mut UserSliceReader) -> Result {
    let mut text = [0u8; 16];
    let len = reader.len();
    let text = text.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(text)?;
    let mode = Mode::parse(text).ok_or(EINVAL)?;
    dev.set_mode(mode);
    pr_info!("mode for new mappings: {}\n", mode.name());
    Ok(())
}

fn show_map_pages(dev: &Arc<Mapdrv>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", u8::from(dev.map_pages.load(Relaxed)))
}

fn store_map_pages(dev: &Arc<Mapdrv>, reader: &mut UserSliceReader) -> Result {
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
