// SPDX-License-Identifier: GPL-2.0

//! The allocation demo: where `kmalloc`, `kzalloc`, `kcalloc`, a slab cache,
//! `vmalloc` and the page allocator put memory, with the classic claims about
//! each (physically contiguous or not, in the direct map or not, what
//! `virt_to_phys` gives) checked on the spot.
//!
//! The classic allocation demo, a small module, printed the addresses that `get_free_page`,
//! `kmalloc(100)` and `vmalloc` returned. This one does each allocation,
//! prints one line per allocation, `demo: alloc <name> key=value ...`
//! (address, region, physical address, contiguity, GFP flags), one line per
//! page of the vmalloc allocation (`demo: page vmalloc ...`), one line per
//! claim checked (`demo: check ok|FAIL <name> <claim>: <detail>`) and a
//! summary (`demo: done ...`), then frees everything before it returns.
//!
//! The physical addresses are not taken on trust: for direct-map memory the
//! demo computes `__pa(virt)` (`virt - PAGE_OFFSET` on x86_64, plus
//! `memstart_addr` on arm64: what `virt_to_phys` does for the direct map)
//! and compares it with our own walk of the page tables the CPU uses; for
//! vmalloc memory it walks every page (cross-checked against
//! `vmalloc_to_pfn` and the architecture's second opinion) and reads each
//! page back through its direct-map alias.
//!
//! It runs at load (parameter `demo`, default on) and on each write of
//! `run` to debugfs `mapdrv/demo`; reading that file gives the last report.
//! Debugfs `mapdrv/layout` gives the address-space layout as `key value`
//! lines, and `mapdrv/hold` keeps one block of 2^order pages allocated
//! until `release` is written, so that user space can watch
//! `/proc/buddyinfo` change.
//!
//! The folder splits the demo by job: `alloc.rs` is the one unsafe
//! boundary (the C allocators and reads by address, behind owned types),
//! `gfp.rs` names GFP flags, `report.rs` keeps the report and reports an
//! allocation, and each of `kmalloc.rs`, `slab.rs`, `vmalloc.rs`,
//! `pages.rs` and `highmem.rs` is one demo. This file holds the demo's state and the safe
//! methods that debugfs (`debugfs.rs`, which makes the files) calls.

use core::fmt;
use kernel::{
    alloc::flags,
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

use crate::{
    arch::{Extra, Layout},
    decimal::Decimal,
    vmalloc_util::VmallocBuffer,
};

mod alloc;
mod gfp;
mod highmem;
mod kmalloc;
mod pages;
mod report;
mod slab;
mod vmalloc;

use self::alloc::{PageBlock, MAX_ORDER};
use self::gfp::{GfpNames, RAW_TRY_ONCE};
use self::report::{LineBuf, Report};

/// The demo's state: the last report and the block `hold` keeps.
#[pin_data]
pub(crate) struct Demo {
    #[pin]
    state: Mutex<State>,
}

struct State {
    report: KVec<u8>,
    runs: u64,
    held: Option<PageBlock>,
}

impl Demo {
    /// A demo that has not run yet.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                state <- new_mutex!(State {
                    report: KVec::new(),
                    runs: 0,
                    held: None,
                }),
            }),
            flags::GFP_KERNEL,
        )
    }

    /// At load: log the layout, then run the demo if `run` (the parameter).
    pub(crate) fn at_load(&self, run: bool, buffer: &VmallocBuffer) {
        let mut text = LineBuf::new();
        let _ = write_layout(&mut LayoutLines { line: &mut text });
        if run {
            self.run("load", buffer);
        }
    }

    /// Runs the demo once and keeps its report; runs are serialised.
    pub(crate) fn run(&self, trigger: &str, buffer: &VmallocBuffer) {
        let mut state = self.state.lock();
        state.runs += 1;
        let run = Decimal(state.runs);
        let mut r = Report::new();
        r.line(format_args!("run {} trigger={}", run, trigger));
        let layout = Layout::current();
        kmalloc::demo_kmalloc(&mut r, &layout);
        slab::demo_slab(&mut r, &layout);
        vmalloc::demo_vmalloc(&mut r, &layout);
        pages::demo_pages(&mut r, &layout);
        highmem::demo_highmem(&mut r, &layout);
        r.line(format_args!(
            "buffer vaddr={:#x} region={} pages={} (the /dev/mapdrv buffer, for comparison)",
            buffer.vaddr(),
            layout.region_of(buffer.vaddr()),
            buffer.pages()
        ));
        let (allocations, checks, failed) = (r.allocations, r.checks, r.failed);
        let truncated = if r.truncated { " truncated=yes" } else { "" };
        r.line(format_args!(
            "done run={run} allocations={allocations} checks={checks} failed={failed} freed=yes{truncated}"
        ));
        state.report = r.text;
    }

    /// Calls `f` with the last report's text (empty before the first run).
    pub(crate) fn with_report<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.state.lock().report)
    }

    /// Allocates a block of 2^`order` pages and keeps it until
    /// [`Demo::release`]: `EINVAL` past `MAX_PAGE_ORDER`, `EBUSY` if one is
    /// kept already, `ENOMEM` if none can be had now.
    pub(crate) fn hold(&self, order: u32) -> Result {
        if order > MAX_ORDER {
            return Err(EINVAL);
        }
        let mut state = self.state.lock();
        if state.held.is_some() {
            return Err(EBUSY);
        }
        let block = PageBlock::alloc(RAW_TRY_ONCE, order)?;
        pr_info!(
            "{}\n",
            format_args!(
                "demo: hold order={} pages={} pfn={:#x} gfp={}",
                order,
                block.pages(),
                block.pfn(),
                GfpNames(RAW_TRY_ONCE)
            )
        );
        state.held = Some(block);
        Ok(())
    }

    /// Frees the block [`Demo::hold`] keeps, if any.
    pub(crate) fn release(&self) {
        if let Some(b) = self.state.lock().held.take() {
            pr_info!("demo: release order={} pfn={:#x}\n", b.order(), b.pfn());
        }
    }

    /// The block [`Demo::hold`] keeps, if any.
    pub(crate) fn hold_status(&self) -> Option<HoldStatus> {
        self.state.lock().held.as_ref().map(|b| HoldStatus {
            order: b.order(),
            pages: b.pages(),
            pfn: b.pfn(),
            vaddr: b.vaddr(),
        })
    }
}

/// What [`Demo::hold_status`] tells of the block kept.
pub(crate) struct HoldStatus {
    pub(crate) order: u32,
    pub(crate) pages: usize,
    pub(crate) pfn: u64,
    /// Its direct-map address (`None` for a highmem block).
    pub(crate) vaddr: Option<usize>,
}

/// Writes the kernel's address-space layout as `key value` lines (debugfs
/// `mapdrv/layout`, and the `layout:` lines logged at load).
pub(crate) fn write_layout(f: &mut impl fmt::Write) -> fmt::Result {
    crate::arch::write_layout(f, &Layout::current(), &Extra::current())
}

/// Logs the layout's `key value` lines one by one as `layout: key value`.
struct LayoutLines<'a> {
    line: &'a mut LineBuf,
}

impl fmt::Write for LayoutLines<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                pr_info!("layout: {}\n", self.line.as_str());
                self.line.clear();
            }
            self.line.write_str(part)?;
        }
        Ok(())
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_demo)]
mod tests {
    use super::{
        gfp::{Gfp, GfpNames, RAW_KERNEL, RAW_TRY_ONCE, RAW_ZERO},
        report::LineBuf,
        vmalloc::contiguous_runs,
    };
    use core::fmt;
    use kernel::{alloc::flags, bindings, prelude::*};

    fn name(gfp: Gfp) -> KVec<u8> {
        let mut line = LineBuf::new();
        let _ = fmt::Write::write_fmt(&mut line, format_args!("{}", GfpNames(gfp)));
        let mut v = KVec::new();
        let _ = v.extend_from_slice(line.as_str().as_bytes(), flags::GFP_KERNEL);
        v
    }

    #[test]
    fn gfp_names() {
        assert_eq!(&name(RAW_KERNEL)[..], b"GFP_KERNEL");
        assert_eq!(&name(RAW_KERNEL | RAW_ZERO)[..], b"GFP_KERNEL|__GFP_ZERO");
        assert_eq!(
            &name(RAW_TRY_ONCE)[..],
            b"GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY"
        );
        assert_eq!(&name(bindings::GFP_ATOMIC)[..], b"GFP_ATOMIC");
        assert_eq!(&name(0)[..], b"0");
        assert_eq!(&name(1 << 30)[..], b"0x40000000");
        assert_eq!(&name(bindings::__GFP_HIGHMEM)[..], b"__GFP_HIGHMEM");
    }

    #[test]
    fn runs() {
        assert_eq!(contiguous_runs([5, 6, 7]), 1);
        assert_eq!(contiguous_runs([5, 7, 8, 2]), 3);
        assert_eq!(contiguous_runs([9, 8, 7]), 3);
        assert_eq!(contiguous_runs(core::iter::empty()), 0);
        assert_eq!(contiguous_runs([u64::MAX, 0]), 2);
    }

    #[test]
    fn line_buffer_cuts_long_lines() {
        let mut line = LineBuf::new();
        for _ in 0..100 {
            let _ = fmt::Write::write_str(&mut line, "abcdefgh");
        }
        assert_eq!(line.as_str().len(), 320);
    }
}
