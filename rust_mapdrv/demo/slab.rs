// SPDX-License-Identifier: GPL-2.0

//! The demo's slab cache: a cache of its own (`kmem_cache_create`) and two
//! objects from it, reported like `kmalloc` memory, and whether they share a
//! slab page.

use kernel::page::PAGE_SHIFT;

use super::{
    alloc::SlabCache,
    gfp::RAW_KERNEL,
    report::{report_direct, Alloc, Report},
};
use crate::arch::{Layout, YesNo};

/// The object size of the demo's own slab cache.
const SLAB_OBJECT_SIZE: u32 = 100;

/// A slab cache of our own and two objects from it.
pub(super) fn demo_slab(r: &mut Report, l: &Layout) {
    let cache = match SlabCache::new(c"rust_mapdrv_demo", SLAB_OBJECT_SIZE) {
        Ok(c) => c,
        Err(_) => {
            r.check(
                false,
                "kmem_cache",
                "created",
                format_args!("kmem_cache_create failed"),
            );
            return;
        }
    };
    let objsize = cache.object_size();
    let (a, b) = match (cache.alloc(RAW_KERNEL), cache.alloc(RAW_KERNEL)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            r.check(
                false,
                "kmem_cache",
                "allocated",
                format_args!("kmem_cache_alloc failed"),
            );
            return;
        }
    };
    for (name, obj) in [("kmem_cache_a", &a), ("kmem_cache_b", &b)] {
        let al = Alloc {
            name,
            api: "kmem_cache_alloc",
            via: "bindings",
            size: SLAB_OBJECT_SIZE as usize,
            mem: obj.held(),
            gfp: RAW_KERNEL,
        };
        report_direct(
            r,
            l,
            &al,
            format_args!(
                " cache=rust_mapdrv_demo object_size={} slab_pfn={:#x}",
                objsize,
                l.direct_map().pfn_of(obj.addr())
            ),
        );
    }
    let same_slab = (a.addr() >> PAGE_SHIFT) == (b.addr() >> PAGE_SHIFT);
    r.line(format_args!(
        "note kmem_cache objects {:#x} and {:#x}: {} bytes apart, same slab page {}",
        a.addr(),
        b.addr(),
        a.addr().abs_diff(b.addr()),
        YesNo(same_slab)
    ));
    // `b`, `a`, then the cache are freed here, in that order.
}
