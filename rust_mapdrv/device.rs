// SPDX-License-Identifier: GPL-2.0

//! The device state behind `/dev/mapdrv`: [`Mapdrv`] owns the vmalloc
//! buffer, the settings new mappings get (mode, `.map_pages`, faultaround
//! batch), the event counters ([`Stats`]) and the load's timing. It is made
//! at load by [`Mapdrv::new`], which allocates and fills the buffer, walks
//! every page and logs where the pages live.
//!
//! Lifetimes: the state is reference counted. The module holds one
//! reference, every open file one more, and the debugfs directory one. A
//! mapping refers to the state through its file, which the mapping keeps
//! open, so the buffer outlives every mapping. The file also pins the module
//! (the misc device's file operations name it as owner), so `rmmod` fails
//! while the device is open or mapped; the debugfs files pin it likewise
//! while open (see `owned_debugfs.rs`).

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    time::{Instant, Monotonic},
};

use crate::{
    arch, contract,
    contract::Mode,
    decimal::{div_u64, Decimal},
    highmem,
    vm_ops::InsertCounts,
    vmalloc_util,
    vmalloc_util::{Backing, VmallocBuffer, PMD_PAGES},
};

/// The checked module parameters the device is made with.
pub(crate) struct Params {
    /// The buffer's size in pages.
    pub(crate) pages: usize,
    /// The mode new mappings get at first.
    pub(crate) mode: Mode,
    /// Pages mapped per fault in faultaround mode.
    pub(crate) faultaround_pages: usize,
}

/// Event counters, shown in debugfs `stats`.
pub(crate) struct Stats {
    pub(crate) faults: Atomic<u64>,
    pub(crate) pages_inserted: Atomic<u64>,
    /// `vm_insert_pages` calls: one per batch, plus one per restart after
    /// an entry that was present; after two calls that map nothing, one
    /// look at the page table finds the present runs, and only the absent
    /// runs get a call each (see `vm_ops::insert_pages_counted`).
    pub(crate) insert_calls: Atomic<u64>,
    /// Private write faults answered with our page for the core to copy.
    pub(crate) pages_copied: Atomic<u64>,
    /// Faults answered with a 2 MiB PMD entry (huge mode; the entry may be
    /// a racing fault's).
    pub(crate) huge_faults: Atomic<u64>,
    pub(crate) mmaps: Atomic<u64>,
    pub(crate) bytes_read: Atomic<u64>,
    pub(crate) bytes_written: Atomic<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            faults: Atomic::new(0),
            pages_inserted: Atomic::new(0),
            insert_calls: Atomic::new(0),
            pages_copied: Atomic::new(0),
            huge_faults: Atomic::new(0),
            mmaps: Atomic::new(0),
            bytes_read: Atomic::new(0),
            bytes_written: Atomic::new(0),
        }
    }

    /// Counts what an insertion of pages did.
    pub(crate) fn count_inserted(&self, counts: InsertCounts) {
        self.pages_inserted.fetch_add(counts.pages as u64, Relaxed);
        self.insert_calls.fetch_add(counts.calls as u64, Relaxed);
    }

    /// The counters as (name, value) pairs, in the order they are shown.
    pub(crate) fn snapshot(&self) -> [(&'static str, u64); 8] {
        [
            ("faults", self.faults.load(Relaxed)),
            ("pages_inserted", self.pages_inserted.load(Relaxed)),
            ("insert_calls", self.insert_calls.load(Relaxed)),
            ("pages_copied", self.pages_copied.load(Relaxed)),
            ("huge_faults", self.huge_faults.load(Relaxed)),
            ("mmaps", self.mmaps.load(Relaxed)),
            ("bytes_read", self.bytes_read.load(Relaxed)),
            ("bytes_written", self.bytes_written.load(Relaxed)),
        ]
    }
}

/// The device: its buffer and settings, shared by the module, the open files
/// and (through their files) the mappings.
pub(crate) struct Mapdrv {
    pub(crate) buffer: VmallocBuffer,
    mode: Atomic<u32>,
    faultaround_pages: usize,
    /// Whether new mappings get the operations with `.map_pages`, under
    /// which faults are handled with the per-VMA lock (debugfs `map_pages`;
    /// see `vm_ops::VmOps`).
    pub(crate) map_pages: Atomic<bool>,
    pub(crate) stats: Stats,
    pub(crate) load: LoadTiming,
}

/// How long each phase of the module's load took, in nanoseconds.
pub(crate) struct LoadTiming {
    /// `vmalloc` of the zeroed buffer.
    pub(crate) alloc_ns: u64,
    /// Writing each page's line.
    pub(crate) fill_ns: u64,
    /// Our page-table walk of every page and its cross-check against
    /// `vmalloc_to_pfn` and the architecture's second opinion
    /// (`arch::KERNEL_LOOKUP`), without the logging.
    pub(crate) walk_ns: u64,
}

impl Mapdrv {
    /// The mode new mappings get.
    pub(crate) fn mode(&self) -> Mode {
        Mode::from_number(self.mode.load(Relaxed)).unwrap_or(Mode::Fault)
    }

    /// Sets the mode for new mappings; existing ones keep theirs.
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u32, Relaxed);
    }

    /// Pages mapped per fault in faultaround mode.
    pub(crate) fn faultaround_pages(&self) -> usize {
        self.faultaround_pages
    }

    /// Makes the device: allocates the zeroed buffer, writes each page's
    /// line, checks our walk of every page against the kernel's and logs
    /// where the pages live. Each phase is timed, to show that it grows
    /// linearly with the size (debugfs `stats`, `mapdrv bench`).
    ///
    /// Loaded in huge mode, the buffer is allocated in 2 MiB blocks
    /// ([`Backing::Huge`]), so that huge-mode mappings can map a block with
    /// one PMD entry; in the other modes page by page, as the classic driver
    /// did. Switching the mode later (debugfs) does not change the buffer:
    /// huge mode over a page-by-page buffer maps one page per fault.
    pub(crate) fn new(params: Params) -> Result<Arc<Self>> {
        let Params {
            pages,
            mode,
            faultaround_pages,
        } = params;
        let start = Instant::<Monotonic>::now();
        let backing = if mode == Mode::Huge {
            Backing::Huge
        } else {
            Backing::Pages
        };
        let mut buffer = VmallocBuffer::new_zeroed(pages, backing).inspect_err(|_| {
            pr_err!(
                "cannot allocate {} pages ({} KiB)\n",
                pages,
                pages * PAGE_SIZE / 1024
            );
        })?;
        let alloc_ns = ns_since(start);
        let start = Instant::<Monotonic>::now();
        buffer.fill_pages(|index, page| {
            contract::fill_page(index, page);
        });
        let fill_ns = ns_since(start);
        // Our walk reads the tables as the CPU does; if the CPU's paging mode
        // is not the one the kernel set up its tables for, no walk can agree.
        let paging = arch::paging().map_err(|mismatch| {
            pr_err!("{}\n", mismatch);
            EIO
        })?;
        let start = Instant::<Monotonic>::now();
        let runs = check_pages(&buffer)?;
        let load = LoadTiming {
            alloc_ns,
            fill_ns,
            walk_ns: ns_since(start),
        };
        log_pages(&buffer, paging, runs);
        pr_info!(
            "load timing: {} pages: alloc {} ns, fill {} ns, walk+check {} ns ({} ns/page in all)\n",
            pages,
            Decimal(load.alloc_ns),
            Decimal(load.fill_ns),
            Decimal(load.walk_ns),
            Decimal(div_u64(load.alloc_ns + load.fill_ns + load.walk_ns, pages as u64))
        );
        Ok(Arc::new(
            Self {
                buffer,
                mode: Atomic::new(mode as u32),
                faultaround_pages,
                map_pages: Atomic::new(true),
                stats: Stats::new(),
                load,
            },
            GFP_KERNEL,
        )?)
    }
}

/// Walks every page of `buffer` with our page-table walk and checks it
/// against the kernel's answers. Fails on the first disagreement; returns the
/// number of physically contiguous runs of pages.
fn check_pages(buffer: &VmallocBuffer) -> Result<usize> {
    let mut runs = vmalloc_util::PfnRuns::default();
    for index in 0..buffer.pages() {
        let walk = buffer.walk_page(index).map_err(|m| {
            pr_err!("page {}: page-table walks disagree: {}\n", index, m);
            EIO
        })?;
        runs.push(walk.pfn);
        vmalloc_util::resched_every(index);
    }
    Ok(runs.runs())
}

/// Logs where the buffer's pages live: every page of a small buffer, else
/// the first and last few (walked again; [`check_pages`] checked them all).
fn log_pages(buffer: &VmallocBuffer, paging: arch::Paging, runs: usize) {
    const SHOW_ALL_UP_TO: usize = 64;
    const SHOW_EACH_END: usize = 8;
    let pages = buffer.pages();
    let direct_map = arch::DirectMap::current();
    pr_info!(
        "buffer: vaddr {:#x}, {} pages ({} bytes), {}-level paging, direct map at {:#x}\n",
        buffer.vaddr(),
        pages,
        buffer.size(),
        paging.levels,
        direct_map.base
    );
    let shown = |index: usize| {
        pages <= SHOW_ALL_UP_TO || index < SHOW_EACH_END || index >= pages - SHOW_EACH_END
    };
    for index in (0..pages).filter(|&i| shown(i)) {
        let Ok(walk) = buffer.walk_page(index) else {
            continue;
        };
        if index == 0 {
            // The whole walk once, level by level, as map_driver.c did it by hand.
            for step in walk.steps.iter().flatten() {
                pr_info!(
                    "page 0 walk: {}[{}] = {:#018x}{}\n",
                    step.level.name(),
                    step.index,
                    step.entry,
                    arch::entry_bits(step)
                );
            }
        }
        let phys = arch::pfn_phys(walk.pfn);
        let zone = highmem::zone_name(walk.pfn);
        let zone = zone.to_str().unwrap_or("?");
        let permanent = buffer
            .page(index)
            .and_then(|p| highmem::page_address(p.as_ptr()));
        let vaddr = buffer.page_vaddr(index).unwrap_or(0);
        let entry = walk.steps.iter().flatten().last().map_or(0, |s| s.entry);
        match (direct_map.addr_of_pfn(walk.pfn), permanent) {
            (Some(direct), _) => pr_info!(
                "page {}: vaddr {:#x} -> {} entry {:#x} -> pfn {:#x} phys {:#x} zone {} -> direct map {:#x}\n",
                index, vaddr, walk.leaf.name(), entry, walk.pfn, phys, zone, direct
            ),
            // A highmem page: what map_driver.c's page_address() would
            // have returned for it.
            (None, None) => pr_info!(
                "page {}: vaddr {:#x} -> {} entry {:#x} -> pfn {:#x} phys {:#x} zone {} -> no permanent kernel address (page_address() is NULL)\n",
                index, vaddr, walk.leaf.name(), entry, walk.pfn, phys, zone
            ),
            (None, Some(kmapped)) => pr_info!(
                "page {}: vaddr {:#x} -> {} entry {:#x} -> pfn {:#x} phys {:#x} zone {} -> kmapped at {:#x}\n",
                index, vaddr, walk.leaf.name(), entry, walk.pfn, phys, zone, kmapped
            ),
        }
        if pages > SHOW_ALL_UP_TO && index == SHOW_EACH_END - 1 {
            pr_info!("... ({} more pages)\n", pages - 2 * SHOW_EACH_END);
        }
    }
    pr_info!(
        "{} pages walked, all agree with vmalloc_to_pfn and {}; {} physically contiguous runs\n",
        pages,
        arch::KERNEL_LOOKUP,
        runs
    );
    if buffer.backing() == Backing::Huge {
        pr_info!(
            "huge backing (vmalloc_huge): {} of {} whole 2 MiB blocks are aligned physical blocks that one PMD entry can map; {} pages outside them are mapped one by one\n",
            buffer.mappable_blocks(),
            pages / PMD_PAGES,
            pages - buffer.mappable_blocks() * PMD_PAGES
        );
    }
}

/// Nanoseconds since `start`, on the monotonic clock.
fn ns_since(start: Instant<Monotonic>) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(0)
}
