// SPDX-License-Identifier: GPL-2.0

//! rust_mapdrv: kernel memory mapped into user space, the classic way.
//!
//! A rebuild in Rust of the 2.4-era `map_driver.c` teaching driver. At load
//! the module allocates a buffer with vmalloc, fills page `i` with the line
//! `mapdrv page <i>\n`, resolves every page through the kernel page tables
//! with its own walk (`vmalloc_util.rs`) and logs where each page lives. The
//! misc device `/dev/mapdrv` then serves the buffer:
//!
//! - `mmap` (shared or private) maps it into a process; pages are inserted by
//!   a page-fault handler one at a time (`mode=0`, like the old `nopage`
//!   method), a batch per fault (`mode=1`) or all at `mmap` time (`mode=2`);
//! - `read`/`write`/`pread`/`pwrite` copy bytes in and out;
//! - the `MAPDRV_IOC_INFO` ioctl tells the size and mode;
//! - debugfs `mapdrv/{pages,stats,mode}` lists the pages, counts events and
//!   switches the mode for new mappings;
//! - the allocation demo (`rust_mapdrv/demo/`, parameter `demo`) shows where
//!   kmalloc, vmalloc and the page allocator put memory, at load and through
//!   debugfs `mapdrv/{demo,layout,hold}`.
//!
//! Lifetimes: the device state ([`Mapdrv`]) is reference counted. The module
//! holds one reference, every open file one more. A mapping refers to the
//! state through its file, which the mapping keeps open, so the buffer
//! outlives every mapping. The file also pins the module (the misc device's
//! file operations name it as owner), so `rmmod` fails while the device is
//! open or mapped.

use kernel::{
    fs::{File, Kiocb},
    ioctl::_IOR,
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::virt::VmaNew,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow,
    },
    time::{Instant, Monotonic},
    uaccess::{UserPtr, UserSlice},
};

#[path = "rust_mapdrv/contract.rs"]
mod contract;
#[path = "rust_mapdrv/debugfs.rs"]
mod debugfs;
#[path = "rust_mapdrv/demo/mod.rs"]
mod demo;
#[path = "rust_mapdrv/layout.rs"]
mod layout;
#[path = "rust_mapdrv/owned_debugfs.rs"]
mod owned_debugfs;
#[path = "rust_mapdrv/sched.rs"]
mod sched;
#[path = "rust_mapdrv/vm_ops.rs"]
mod vm_ops;
mod vmalloc_util;

use contract::Mode;
use vm_ops::{Fault, FaultHandler, FaultOutcome, VmOps};
use vmalloc_util::VmallocBuffer;

module! {
    type: MapdrvModule,
    name: "rust_mapdrv",
    authors: ["rust-mapdrv developers"],
    description: "A vmalloc buffer served to user mmap by a page-fault handler (map_driver in Rust)",
    license: "GPL",
    params: {
        pages: i64 {
            default: 10,
            description: "Buffer size in pages, 1..=262144 (default 10)",
        },
        mode: u32 {
            default: 0,
            description: "How mappings get pages: 0 fault (one per fault), 1 faultaround, 2 prefault",
        },
        faultaround_pages: u32 {
            default: 16,
            description: "Pages mapped per fault in faultaround mode, 1..=512 (default 16)",
        },
        demo: bool {
            default: true,
            description: "Run the allocation demo at load (default on); write run to debugfs mapdrv/demo to run it again",
        },
    },
}

/// The answer of `MAPDRV_IOC_INFO`; see `userspace/include/mapdrv.h`.
#[repr(C)]
struct MapdrvInfo {
    size: u64,
    pages: u64,
    page_size: u32,
    mode: u32,
}

/// `_IOR('M', 1, struct mapdrv_info)`.
const MAPDRV_IOC_INFO: u32 = _IOR::<MapdrvInfo>('M' as u32, 1);

/// Event counters, shown in debugfs `stats`.
pub(crate) struct Stats {
    pub(crate) faults: Atomic<u64>,
    pub(crate) pages_inserted: Atomic<u64>,
    pub(crate) mmaps: Atomic<u64>,
    pub(crate) bytes_read: Atomic<u64>,
    pub(crate) bytes_written: Atomic<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            faults: Atomic::new(0),
            pages_inserted: Atomic::new(0),
            mmaps: Atomic::new(0),
            bytes_read: Atomic::new(0),
            bytes_written: Atomic::new(0),
        }
    }

    /// The counters as (name, value) pairs, in the order they are shown.
    pub(crate) fn snapshot(&self) -> [(&'static str, u64); 5] {
        [
            ("faults", self.faults.load(Relaxed)),
            ("pages_inserted", self.pages_inserted.load(Relaxed)),
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
    /// `vmalloc_to_pfn` and `lookup_address` (without the logging).
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
}

/// Faults in `fault` mode: map the faulting page only.
struct PerPage;

impl FaultHandler for PerPage {
    type Data = Mapdrv;

    fn fault(dev: &Mapdrv, fault: &Fault<'_>) -> FaultOutcome {
        let index = fault.index();
        map_window(dev, fault, index..index + 1)
    }
}

/// Faults in `faultaround` mode: map the aligned batch of pages around the
/// faulting one in one `vm_insert_pages` call.
struct FaultAround;

impl FaultHandler for FaultAround {
    type Data = Mapdrv;

    fn fault(dev: &Mapdrv, fault: &Fault<'_>) -> FaultOutcome {
        let window = contract::faultaround_window(
            fault.index(),
            vm_ops::vma_pages(&fault.vma()),
            dev.faultaround_pages,
        );
        map_window(dev, fault, window)
    }
}

/// Maps the pages `window` (indices into the VMA) of a faulting VMA and
/// counts the fault and the pages inserted. `mmap` checked the range, and a
/// VMA cannot grow (`VM_DONTEXPAND`), but a fault past the buffer must never
/// map anything: there `page` finds no page and the fault gets `SIGBUS`.
fn map_window(dev: &Mapdrv, fault: &Fault<'_>, window: core::ops::Range<usize>) -> FaultOutcome {
    dev.stats.faults.fetch_add(1, Relaxed);
    let first_pgoff = vm_ops::vma_pgoff(&fault.vma());
    // No allocation here: `insert_pages` passes the pages on through an
    // array on the stack.
    let (outcome, inserted) = fault.map(window, |i| dev.buffer.page(first_pgoff + i));
    dev.stats.pages_inserted.fetch_add(inserted as u64, Relaxed);
    outcome
}

/// Maps every page of a new mapping now (`prefault` mode).
fn prefault(dev: &Mapdrv, vma: &kernel::mm::virt::VmaMixedMap) -> Result {
    let first_pgoff = vm_ops::vma_pgoff(vma);
    let count = vm_ops::vma_pages(vma);
    // One pass; `insert_pages` feeds `vm_insert_pages` from an array on the
    // stack, so a 1 GiB mapping needs no 2 MiB array of page pointers.
    let inserted = vm_ops::insert_pages(vma.into(), vma.start(), count, |i| {
        dev.buffer.page(first_pgoff + i)
    });
    dev.stats
        .pages_inserted
        .fetch_add(inserted.pages as u64, Relaxed);
    inserted.stopped
}

/// The VMA operations of each fault handler.
static PER_PAGE_OPS: VmOps<PerPage> = VmOps::new();
static FAULT_AROUND_OPS: VmOps<FaultAround> = VmOps::new();

#[vtable]
impl MiscDevice for Mapdrv {
    type Ptr = Arc<Mapdrv>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Mapdrv>> {
        let module = core::ptr::from_ref(misc);
        // SAFETY: A `MiscDeviceRegistration<Mapdrv>` only ever exists as the
        // `misc` field of `MapdrvModule` (this file is the only user of the
        // type), and `misc_open` keeps the registration, and so the module
        // struct around it, alive during this call.
        let module = unsafe { &*kernel::container_of!(module, MapdrvModule, misc) };
        Ok(module.device.clone())
    }

    fn mmap(dev: ArcBorrow<'_, Mapdrv>, _file: &File, vma: &VmaNew) -> Result {
        // Kernel memory is data: no executable mappings, now or by mprotect.
        if vma.executable() {
            return Err(EPERM);
        }
        vma.try_clear_mayexec()?;
        let pgoff = vm_ops::vma_pgoff(vma);
        if !contract::mmap_in_bounds(pgoff, vm_ops::vma_pages(vma), dev.buffer.pages()) {
            return Err(EINVAL);
        }
        // mremap must not grow a mapping past what was checked here.
        vma.set_dontexpand();
        let mode = dev.mode();
        let map_pages = dev.map_pages.load(Relaxed);
        let dev: &Mapdrv = &dev;
        // SAFETY: `dev` is the private data of the file being mapped (an
        // `Arc<Mapdrv>` dropped only in `release`); the VMA and every VMA
        // made from it hold a reference to that file, so `dev` outlives them.
        let vma = unsafe {
            match mode {
                Mode::FaultAround => FAULT_AROUND_OPS.install(vma, dev, map_pages),
                Mode::Fault | Mode::Prefault => PER_PAGE_OPS.install(vma, dev, map_pages),
            }
        };
        if mode == Mode::Prefault {
            prefault(dev, vma)?;
        }
        dev.stats.mmaps.fetch_add(1, Relaxed);
        Ok(())
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let dev = kiocb.file();
        let pos = usize::try_from(kiocb.ki_pos()).map_err(|_| EINVAL)?;
        let wanted = iov.len();
        let n = dev.buffer.read_at(pos, iov);
        if n == 0 && wanted > 0 && pos < dev.buffer.size() {
            return Err(EFAULT);
        }
        dev.stats.bytes_read.fetch_add(n as u64, Relaxed);
        *kiocb.ki_pos_mut() += n as i64;
        Ok(n)
    }

    fn write_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let dev = kiocb.file();
        let pos = usize::try_from(kiocb.ki_pos()).map_err(|_| EINVAL)?;
        let wanted = iov.len();
        if wanted == 0 {
            return Ok(0);
        }
        if pos >= dev.buffer.size() {
            return Err(ENOSPC);
        }
        let n = dev.buffer.write_at(pos, iov);
        if n == 0 {
            return Err(EFAULT);
        }
        dev.stats.bytes_written.fetch_add(n as u64, Relaxed);
        *kiocb.ki_pos_mut() += n as i64;
        Ok(n)
    }

    fn ioctl(dev: ArcBorrow<'_, Mapdrv>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            MAPDRV_IOC_INFO => {
                let info = MapdrvInfo {
                    size: dev.buffer.size() as u64,
                    pages: dev.buffer.pages() as u64,
                    page_size: contract::PAGE_SIZE_U32,
                    mode: dev.mode() as u32,
                };
                let mut out =
                    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<MapdrvInfo>())
                        .writer();
                // Field by field, in the header's order: the struct has no padding.
                out.write(&info.size)?;
                out.write(&info.pages)?;
                out.write(&info.page_size)?;
                out.write(&info.mode)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The loaded module.
#[pin_data(PinnedDrop)]
struct MapdrvModule {
    // Declared first so that it is dropped first: no new opens once the
    // module starts to go away.
    #[pin]
    misc: MiscDeviceRegistration<Mapdrv>,
    _debugfs: debugfs::DebugFs,
    device: Arc<Mapdrv>,
}

/// Reads and checks the module parameters.
fn parameters() -> Result<(usize, Mode, usize)> {
    let pages_param = module_parameters::pages.value();
    let Some(pages) = contract::check_pages(pages_param) else {
        pr_err!(
            "pages={} is out of range 1..={}\n",
            pages_param,
            vmalloc_util::MAX_PAGES
        );
        return Err(EINVAL);
    };
    let mode_param = module_parameters::mode.value();
    let Some(mode) = Mode::from_number(mode_param) else {
        pr_err!(
            "mode={} is not 0 (fault), 1 (faultaround) or 2 (prefault)\n",
            mode_param
        );
        return Err(EINVAL);
    };
    let around_param = module_parameters::faultaround_pages.value();
    let Some(around) = contract::check_faultaround_pages(around_param) else {
        pr_err!(
            "faultaround_pages={} is out of range 1..={}\n",
            around_param,
            contract::MAX_FAULTAROUND_PAGES
        );
        return Err(EINVAL);
    };
    Ok((pages, mode, around))
}

/// Walks every page of `buffer` with our page-table walk and checks it
/// against the kernel's answers. Fails on the first disagreement; returns the
/// number of physically contiguous runs of pages.
fn check_pages(buffer: &VmallocBuffer) -> Result<usize> {
    let five_level = vmalloc_util::five_level_paging();
    if vmalloc_util::Level::Pgd.shift(five_level) != vmalloc_util::kernel_pgdir_shift() {
        pr_err!(
            "CR4.LA57 says {}-level paging but the kernel's pgdir_shift is {}\n",
            if five_level { 5 } else { 4 },
            vmalloc_util::kernel_pgdir_shift()
        );
        return Err(EIO);
    }
    let mut runs = 0usize;
    let mut previous: Option<u64> = None;
    for index in 0..buffer.pages() {
        let walk = buffer.walk_page(index).map_err(|m| {
            pr_err!("page {}: page-table walks disagree: {}\n", index, m);
            EIO
        })?;
        if previous.map(|p| p + 1) != Some(walk.pfn) {
            runs += 1;
        }
        previous = Some(walk.pfn);
        vmalloc_util::resched_every(index);
    }
    Ok(runs)
}

/// Logs where the buffer's pages live: every page of a small buffer, else
/// the first and last few (walked again; [`check_pages`] checked them all).
fn log_pages(buffer: &VmallocBuffer, runs: usize) {
    const SHOW_ALL_UP_TO: usize = 64;
    const SHOW_EACH_END: usize = 8;
    let pages = buffer.pages();
    let five_level = vmalloc_util::five_level_paging();
    pr_info!(
        "buffer: vaddr {:#x}, {} pages ({} bytes), {}-level paging, direct map at {:#x}\n",
        buffer.vaddr(),
        pages,
        buffer.size(),
        if five_level { 5 } else { 4 },
        vmalloc_util::page_offset_base()
    );
    let shown = |index: usize| {
        pages <= SHOW_ALL_UP_TO || index < SHOW_EACH_END || index >= pages - SHOW_EACH_END
    };
    for index in (0..pages).filter(|&i| shown(i)) {
        let Ok(walk) = buffer.walk_page(index) else {
            continue;
        };
        if index == 0 {
            // The whole walk once, level by level, as the documents' steps.
            for step in walk.steps.iter().flatten() {
                pr_info!(
                    "page 0 walk: {}[{}] = {:#018x}\n",
                    step.level.name(),
                    step.index,
                    step.entry
                );
            }
        }
        let phys = walk.pfn << PAGE_SHIFT;
        pr_info!(
            "page {}: vaddr {:#x} -> {} entry {:#x} -> pfn {:#x} phys {:#x} -> direct map {:#x}\n",
            index,
            buffer.page_vaddr(index).unwrap_or(0),
            walk.leaf.name(),
            walk.steps.iter().flatten().last().map_or(0, |s| s.entry),
            walk.pfn,
            phys,
            vmalloc_util::page_offset_base() + phys as usize
        );
        if pages > SHOW_ALL_UP_TO && index == SHOW_EACH_END - 1 {
            pr_info!("... ({} more pages)\n", pages - 2 * SHOW_EACH_END);
        }
    }
    pr_info!(
        "{} pages walked, all agree with vmalloc_to_pfn and lookup_address; {} physically contiguous runs\n",
        pages,
        runs
    );
}

/// Nanoseconds since `start`, on the monotonic clock.
fn ns_since(start: Instant<Monotonic>) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(0)
}

impl kernel::InPlaceModule for MapdrvModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let setup = || -> Result<Arc<Mapdrv>> {
            let (pages, mode, faultaround_pages) = parameters()?;
            // Each phase of the load is timed, to show that it grows
            // linearly with `pages` (debugfs `stats`, `mapdrv bench`).
            let start = Instant::<Monotonic>::now();
            let mut buffer = VmallocBuffer::new_zeroed(pages).inspect_err(|_| {
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
            let start = Instant::<Monotonic>::now();
            let runs = check_pages(&buffer)?;
            let load = LoadTiming {
                alloc_ns,
                fill_ns,
                walk_ns: ns_since(start),
            };
            log_pages(&buffer, runs);
            pr_info!(
                "load timing: {} pages: alloc {} ns, fill {} ns, walk+check {} ns ({} ns/page in all)\n",
                pages,
                load.alloc_ns,
                load.fill_ns,
                load.walk_ns,
                (load.alloc_ns + load.fill_ns + load.walk_ns)
                    .checked_div(pages as u64)
                    .unwrap_or(0)
            );
            Ok(Arc::new(
                Mapdrv {
                    buffer,
                    mode: Atomic::new(mode as u32),
                    faultaround_pages,
                    map_pages: Atomic::new(true),
                    stats: Stats::new(),
                    load,
                },
                GFP_KERNEL,
            )?)
        };
        pin_init::pin_init_scope(move || {
            let device = setup()?;
            let demo = demo::Demo::new()?;
            demo.at_load(module_parameters::demo.value(), &device.buffer);
            Ok(try_pin_init!(Self {
                _debugfs: debugfs::DebugFs::new(device.clone(), demo)?,
                device,
                // Last: the device can be opened from here on, and `open`
                // uses the fields above.
                misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"mapdrv" }),
            }))
        })
        .pin_chain(|this| {
            pr_info!(
                "loaded: /dev/mapdrv, {} pages, mode {}\n",
                this.device.buffer.pages(),
                this.device.mode().name()
            );
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for MapdrvModule {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}
