// SPDX-License-Identifier: GPL-2.0

//! rust_mapdrv: kernel memory mapped into user space, the classic way.
//!
//! A rebuild in Rust of the 2.4-era `map_driver.c` teaching driver. At load
//! the module allocates a buffer with vmalloc, fills page `i` with the line
//! `mapdrv page <i>\n`, resolves every page through the kernel page tables
//! with its own walk (`rust_mapdrv/arch/`) and logs where each page lives. The
//! misc device `/dev/mapdrv` then serves the buffer:
//!
//! - `mmap` (shared or private) maps it into a process; pages are inserted by
//!   a page-fault handler one at a time (`mode=0`, like the old `nopage`
//!   method), a batch per fault (`mode=1`), all at `mmap` time (`mode=2`),
//!   or a whole 2 MiB block per fault with one PMD entry (`mode=3`, from a
//!   buffer allocated in 2 MiB blocks);
//! - `read`/`write`/`pread`/`pwrite` copy bytes in and out;
//! - the `MAPDRV_IOC_INFO` ioctl tells the size and mode;
//! - debugfs `mapdrv/` (`rust_mapdrv/debugfs.rs`) lists the pages, counts
//!   events and switches settings for new mappings;
//! - the allocation demo (`rust_mapdrv/demo/`, parameter `demo`) shows where
//!   kmalloc, vmalloc and the page allocator put memory, at load and through
//!   debugfs.
//!
//! This file is the module: its parameters, the misc device's file
//! operations and fault handlers, and the load (`init`), which makes the
//! device state (`rust_mapdrv/device.rs`, which also tells the lifetime
//! rules), the demo and the debugfs files in that order, then registers the
//! device.

use kernel::{
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    mm::virt::VmaNew,
    prelude::*,
    sync::{atomic::Relaxed, Arc, ArcBorrow},
    uaccess::{UserPtr, UserSlice},
};

#[path = "rust_mapdrv/arch/mod.rs"]
mod arch;
#[path = "rust_mapdrv/contract.rs"]
mod contract;
#[path = "rust_mapdrv/debugfs.rs"]
mod debugfs;
#[path = "rust_mapdrv/decimal.rs"]
mod decimal;
#[path = "rust_mapdrv/demo/mod.rs"]
mod demo;
#[path = "rust_mapdrv/device.rs"]
mod device;
#[path = "rust_mapdrv/highmem.rs"]
mod highmem;
#[path = "rust_mapdrv/owned_debugfs.rs"]
mod owned_debugfs;
#[path = "rust_mapdrv/registration.rs"]
mod registration;
#[path = "rust_mapdrv/sched.rs"]
mod sched;
#[path = "rust_mapdrv/uapi.rs"]
mod uapi;
#[path = "rust_mapdrv/vm_ops.rs"]
mod vm_ops;
mod vmalloc_util;

use contract::Mode;
use decimal::SignedDecimal;
use device::{Mapdrv, Params};
use registration::Registration;
use uapi::{MapdrvInfo, MAPDRV_IOC_INFO};
use vm_ops::{Fault, FaultHandler, FaultOutcome, HugeOutcome, PmdFault, VmOps};
use vmalloc_util::PMD_PAGES;

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
            description: "How mappings get pages: 0 fault (one per fault), 1 faultaround, 2 prefault, 3 huge (2 MiB blocks)",
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
            dev.faultaround_pages(),
        );
        map_window(dev, fault, window)
    }
}

/// Faults in `huge` mode: a whole 2 MiB block with one PMD entry where the
/// core asks for one (`.huge_fault`: THP enabled, the block of user addresses
/// empty) and the block can be mapped whole: the mapping is shared, the block
/// of user addresses lies inside it, its file offset is 2 MiB-aligned and
/// the buffer's pages there are one aligned physical block. Everything else
/// falls back to one page per fault (`PerPage`): private mappings, whose
/// writes the core copies page by page, unaligned addresses or offsets, the
/// tail of the buffer, and blocks vmalloc did not get whole.
///
/// A PMD entry that `munmap`, `mprotect`, `mremap` or `MADV_DONTNEED` cuts
/// through is zapped whole by the core (a special entry of a `VM_MIXEDMAP`
/// VMA is never split into page entries); the range faults again, page by
/// page where the block is no longer whole in the VMA.
struct Huge;

impl FaultHandler for Huge {
    type Data = Mapdrv;
    const HUGE: bool = true;

    fn fault(dev: &Mapdrv, fault: &Fault<'_>) -> FaultOutcome {
        PerPage::fault(dev, fault)
    }

    fn huge_fault<'d>(dev: &'d Mapdrv, fault: &PmdFault<'_, 'd>) -> HugeOutcome {
        if !fault.is_shared() {
            return HugeOutcome::Fallback;
        }
        let Some(first) = fault.block_index() else {
            return HugeOutcome::Fallback;
        };
        let pgoff = vm_ops::vma_pgoff(&fault.vma()) + first;
        if pgoff % PMD_PAGES != 0 {
            return HugeOutcome::Fallback;
        }
        let Some(block) = dev.buffer.huge_block(pgoff / PMD_PAGES) else {
            return HugeOutcome::Fallback;
        };
        // `block` is borrowed from `dev`, the data the mapping was installed
        // with, which lives until its file is closed: longer than the entry.
        let outcome = fault.map_block(block);
        if outcome != HugeOutcome::Fallback {
            dev.stats.faults.fetch_add(1, Relaxed);
        }
        if outcome == HugeOutcome::Mapped {
            dev.stats.huge_faults.fetch_add(1, Relaxed);
        }
        outcome
    }
}

/// Maps the pages `window` (indices into the VMA) of a faulting VMA and
/// counts the fault and the pages inserted. `mmap` checked the range, and a
/// VMA cannot grow (`VM_DONTEXPAND`), but a fault past the buffer must never
/// map anything: there `page` finds no page and the fault gets `SIGBUS`.
///
/// A write fault on a private mapping maps nothing: the faulting page is
/// handed to the core, which writes a copy into the process in the same
/// fault (one trap per written page; mapping our page read-only first would
/// make the write fault again to be copied). The window is not used then:
/// its other pages would be read-only entries each written page faults on
/// anyway.
fn map_window(dev: &Mapdrv, fault: &Fault<'_>, window: core::ops::Range<usize>) -> FaultOutcome {
    dev.stats.faults.fetch_add(1, Relaxed);
    let first_pgoff = vm_ops::vma_pgoff(&fault.vma());
    if fault.is_private_write() {
        return match dev.buffer.page(first_pgoff + fault.index()) {
            Some(page) => {
                dev.stats.pages_copied.fetch_add(1, Relaxed);
                fault.copy_on_write(page)
            }
            None => FaultOutcome::SigBus,
        };
    }
    // No allocation and no copy here: `vm_insert_pages` reads the window's
    // pages from the buffer's own array of them.
    let (outcome, counts) = fault.map(window, |pages| {
        dev.buffer
            .page_run(first_pgoff + pages.start..first_pgoff + pages.end)
    });
    dev.stats.count_inserted(counts);
    outcome
}

/// Maps every page of a new mapping now (`prefault` mode).
fn prefault(dev: &Mapdrv, vma: &kernel::mm::virt::VmaMixedMap) -> Result {
    let first_pgoff = vm_ops::vma_pgoff(vma);
    let count = vm_ops::vma_pages(vma);
    // One pass over the buffer's own array of its pages: a 1 GiB mapping
    // needs no copy of it. `mmap` checked that the range is in the buffer.
    let run = dev
        .buffer
        .page_run(first_pgoff..first_pgoff + count)
        .ok_or(EINVAL)?;
    let inserted = vm_ops::insert_pages(vma.into(), vma.start(), run);
    dev.stats.count_inserted(inserted.counts);
    inserted.stopped
}

/// The VMA operations of each fault handler.
static PER_PAGE_OPS: VmOps<PerPage> = VmOps::new();
static FAULT_AROUND_OPS: VmOps<FaultAround> = VmOps::new();
static HUGE_OPS: VmOps<Huge> = VmOps::new();

#[vtable]
impl MiscDevice for Mapdrv {
    type Ptr = Arc<Mapdrv>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Mapdrv>> {
        Ok(Registration::device_of(misc).clone())
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
        let vma = match mode {
            Mode::FaultAround => FAULT_AROUND_OPS.install(vma, dev, map_pages)?,
            Mode::Fault | Mode::Prefault => PER_PAGE_OPS.install(vma, dev, map_pages)?,
            Mode::Huge => HUGE_OPS.install(vma, dev, map_pages)?,
        };
        let dev: &Mapdrv = &dev;
        if mode == Mode::Prefault {
            prefault(dev, vma)?;
        }
        dev.stats.mmaps.fetch_add(1, Relaxed);
        Ok(())
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let dev = kiocb.file();
        let pos = contract::file_offset(kiocb.ki_pos());
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
        let pos = contract::file_offset(kiocb.ki_pos());
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
    misc: Registration,
    _debugfs: debugfs::DebugFs,
}

/// Reads and checks the module parameters.
fn parameters() -> Result<Params> {
    let pages_param = module_parameters::pages.value();
    let Some(pages) = contract::check_pages(pages_param) else {
        pr_err!(
            "pages={} is out of range 1..={}\n",
            SignedDecimal(pages_param),
            contract::MAX_PAGES
        );
        return Err(EINVAL);
    };
    let mode_param = module_parameters::mode.value();
    let Some(mode) = Mode::from_number(mode_param) else {
        pr_err!(
            "mode={} is not 0 (fault), 1 (faultaround), 2 (prefault) or 3 (huge)\n",
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
    Ok(Params {
        pages,
        mode,
        faultaround_pages: around,
    })
}

impl kernel::InPlaceModule for MapdrvModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(move || {
            let device = Mapdrv::new(parameters()?)?;
            let demo = demo::Demo::new()?;
            demo.at_load(module_parameters::demo.value(), &device.buffer);
            Ok(try_pin_init!(Self {
                _debugfs: debugfs::DebugFs::new(device.clone(), demo)?,
                // Last: the device can be opened from here on.
                misc <- Registration::new(device),
            }))
        })
        .pin_chain(|this| {
            pr_info!(
                "loaded: /dev/mapdrv, {} pages, mode {}\n",
                this.misc.device().buffer.pages(),
                this.misc.device().mode().name()
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
