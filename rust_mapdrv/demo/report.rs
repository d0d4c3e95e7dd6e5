// SPDX-License-Identifier: GPL-2.0

//! The demo's report: each line is formatted into a [`LineBuf`], logged as
//! `demo: ...` and kept in a [`Report`], whose text debugfs `mapdrv/demo`
//! shows after the run. [`report_direct`] and [`report_block`] report one
//! allocation: its `alloc` line and the checks of the classic claims about
//! it.

use core::fmt;
use kernel::{
    alloc::flags,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
};

use super::{
    alloc::Held,
    gfp::{Gfp, GfpNames},
};
use crate::arch::{pfn_phys, Layout, YesNo};

/// A fixed-size line buffer: one report line is formatted here, then logged
/// and appended to the report. Longer lines are cut.
pub(super) struct LineBuf {
    buf: [u8; 320],
    len: usize,
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl LineBuf {
    /// An empty line.
    pub(super) fn new() -> Self {
        Self {
            buf: [0; 320],
            len: 0,
        }
    }

    /// Empties the line, to format the next one.
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    pub(super) fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            // Cut inside a character: keep the valid part.
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// The report of one run: its lines go to the kernel log as they are made
/// and are kept for debugfs `demo`.
pub(super) struct Report {
    pub(super) text: KVec<u8>,
    pub(super) allocations: u32,
    pub(super) checks: u32,
    pub(super) failed: u32,
    /// Set when a line could not be kept (no memory); the log has it.
    pub(super) truncated: bool,
}

impl Report {
    pub(super) fn new() -> Self {
        Self {
            text: KVec::new(),
            allocations: 0,
            checks: 0,
            failed: 0,
            truncated: false,
        }
    }

    /// Logs `demo: <args>` and keeps it.
    pub(super) fn line(&mut self, args: fmt::Arguments<'_>) {
        self.line_at(false, args)
    }

    /// Logs `demo: <args>` (as an error if `error`) and keeps it.
    fn line_at(&mut self, error: bool, args: fmt::Arguments<'_>) {
        let mut line = LineBuf::new();
        let _ = fmt::Write::write_fmt(&mut line, format_args!("demo: {args}"));
        let text = line.as_str();
        if error {
            pr_err!("{}\n", text);
        } else {
            pr_info!("{}\n", text);
        }
        if self
            .text
            .extend_from_slice(text.as_bytes(), flags::GFP_KERNEL)
            .is_err()
            || self.text.push(b'\n', flags::GFP_KERNEL).is_err()
        {
            self.truncated = true;
        }
    }

    /// Reports a claim about allocation `name`, checked: `ok` or `FAIL`.
    pub(super) fn check(&mut self, ok: bool, name: &str, claim: &str, detail: fmt::Arguments<'_>) {
        self.checks += 1;
        if !ok {
            self.failed += 1;
        }
        self.line_at(
            !ok,
            format_args!(
                "check {} {} {}: {}",
                if ok { "ok" } else { "FAIL" },
                name,
                claim,
                detail
            ),
        );
    }
}

/// What an allocation line says besides the common fields.
pub(super) struct Alloc<'a> {
    pub(super) name: &'a str,
    pub(super) api: &'a str,
    pub(super) via: &'a str,
    /// The size the allocation asked for.
    pub(super) size: usize,
    /// The memory, which the caller holds while it is reported.
    pub(super) mem: Held<'a>,
    pub(super) gfp: Gfp,
}

/// Reports the direct-map memory `a.mem` that the caller holds, `a.size`
/// bytes of it: one `alloc` line, then the checks: it is in the direct map, the
/// CPU's page tables map it to `virt - PAGE_OFFSET`, and its pages are
/// physically contiguous. `more` adds fields to the line.
pub(super) fn report_direct(r: &mut Report, l: &Layout, a: &Alloc<'_>, more: fmt::Arguments<'_>) {
    r.allocations += 1;
    let vaddr = a.mem.vaddr();
    let in_direct = l.in_direct_map_ram(vaddr) && l.region_of(vaddr) == "direct_map";
    let phys = l.direct_map().phys_of(vaddr);
    let first = vaddr >> PAGE_SHIFT;
    let last = (vaddr + a.size.max(1) - 1) >> PAGE_SHIFT;
    let pages = last - first + 1;
    let mut walked_first = None;
    let mut all_walked = true;
    let mut pfns_ok = true;
    for i in 0..pages {
        let addr = (first + i) << PAGE_SHIFT;
        let addr = addr.max(vaddr);
        match a.mem.walk(addr) {
            Some(w) => {
                if i == 0 {
                    walked_first = Some(w.pfn);
                }
                pfns_ok &= Some(w.pfn) == walked_first.map(|p| p + i as u64);
            }
            None => all_walked = false,
        }
    }
    let contiguous = all_walked && pfns_ok;
    r.line(format_args!(
        "alloc {} api={} via={} size={} vaddr={:#x} region={} phys={:#x} pages={} contiguous={} gfp={} gfp_raw={:#x}{}",
        a.name,
        a.api,
        a.via,
        a.size,
        vaddr,
        l.region_of(vaddr),
        phys,
        pages,
        YesNo(contiguous),
        GfpNames(a.gfp),
        a.gfp,
        more
    ));
    r.check(
        in_direct,
        a.name,
        "direct-map",
        format_args!(
            "{:#x} is in [PAGE_OFFSET {:#x}, high_memory {:#x})",
            vaddr, l.page_offset, l.high_memory
        ),
    );
    let walked_phys =
        walked_first.map(|pfn| pfn_phys(pfn) | (vaddr as u64 & (PAGE_SIZE as u64 - 1)));
    r.check(
        walked_phys == Some(phys),
        a.name,
        "virt-to-phys",
        format_args!(
            "virt - PAGE_OFFSET = {:#x}, the page tables map it to {:#x}",
            phys,
            walked_phys.unwrap_or(0)
        ),
    );
    if pages > 1 {
        r.check(
            contiguous,
            a.name,
            "contiguous",
            format_args!("its {} pages follow each other physically", pages),
        );
    }
}

/// Reports a block of 2^order pages that the caller holds (`a.mem`), at
/// PFN `pfn`: the `alloc` line, then the checks: in the
/// direct map, `virt - PAGE_OFFSET` is where the page tables map every one
/// of its pages (so the block is 2^order physically contiguous pages), and
/// the block is aligned to its size, as buddies are.
pub(super) fn report_block(
    r: &mut Report,
    l: &Layout,
    a: &Alloc<'_>,
    pfn: u64,
    order: u32,
    more: fmt::Arguments<'_>,
) {
    r.allocations += 1;
    let vaddr = a.mem.vaddr();
    let pages = 1usize << order;
    let phys = l.direct_map().phys_of(vaddr);
    let mut mismatch: Option<(usize, u64)> = None;
    for i in 0..pages {
        let walked = a
            .mem
            .walk(vaddr + i * PAGE_SIZE)
            .map_or(u64::MAX, |w| w.pfn);
        if walked != pfn + i as u64 && mismatch.is_none() {
            mismatch = Some((i, walked));
        }
    }
    r.line(format_args!(
        "alloc {} api={} via={} order={} size={} vaddr={:#x} region={} phys={:#x} pfn={:#x} pages={} contiguous={} gfp={} gfp_raw={:#x}{}",
        a.name,
        a.api,
        a.via,
        order,
        a.size,
        vaddr,
        l.region_of(vaddr),
        phys,
        pfn,
        pages,
        YesNo(mismatch.is_none()),
        GfpNames(a.gfp),
        a.gfp,
        more
    ));
    r.check(
        l.in_direct_map_ram(vaddr) && l.region_of(vaddr) == "direct_map",
        a.name,
        "direct-map",
        format_args!(
            "{:#x} is in [PAGE_OFFSET {:#x}, high_memory {:#x})",
            vaddr, l.page_offset, l.high_memory
        ),
    );
    r.check(
        phys == pfn_phys(pfn),
        a.name,
        "virt-to-phys",
        format_args!(
            "virt - PAGE_OFFSET = {:#x}, the struct page says pfn {:#x}",
            phys, pfn
        ),
    );
    match mismatch {
        None => r.check(
            true,
            a.name,
            "contiguous",
            format_args!(
                "all {} pages walked: pfn {:#x}..={:#x} in order",
                pages,
                pfn,
                pfn + pages as u64 - 1
            ),
        ),
        Some((i, got)) => r.check(
            false,
            a.name,
            "contiguous",
            format_args!(
                "page {} maps to pfn {:#x}, not {:#x}",
                i,
                got,
                pfn + i as u64
            ),
        ),
    }
    r.check(
        pfn % pages as u64 == 0,
        a.name,
        "aligned",
        format_args!("pfn {:#x} is a multiple of 2^{} = {}", pfn, order, pages),
    );
}
