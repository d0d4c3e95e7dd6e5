// SPDX-License-Identifier: GPL-2.0

//! The demo's `kmalloc` family: `kmalloc`, `kzalloc` (often served with the
//! object `kmalloc` just freed, which shows whether it really zeroes),
//! `kcalloc`, and a `kcalloc` whose size overflows, which must be refused.

use kernel::{alloc::flags, prelude::*};

use super::{
    alloc::Held,
    gfp::{RAW_KERNEL, RAW_ZERO},
    report::{report_direct, Alloc, Report},
};
use crate::arch::{Layout, YesNo};

/// The size the classic allocation demo passed to `kmalloc`.
const KMALLOC_SIZE: usize = 100;
/// `kcalloc(KCALLOC_N, KCALLOC_SIZE)`: 25 `u32`s, 100 bytes again.
const KCALLOC_N: usize = 25;
/// A byte that `kzalloc` must not return: `kmalloc`'s object is filled with
/// it before it is freed, so a recycled object that was not zeroed shows.
const DIRT: u8 = 0x5a;

/// `kmalloc(100)`, then `kzalloc(100)` (which the slab usually serves with
/// the object `kmalloc` just freed, dirty), then `kcalloc(25, 4)` and a
/// `kcalloc` whose size overflows.
pub(super) fn demo_kmalloc(r: &mut Report, l: &Layout) {
    let kmalloc_addr = match KBox::new([DIRT; KMALLOC_SIZE], flags::GFP_KERNEL) {
        Ok(obj) => {
            let a = Alloc {
                name: "kmalloc",
                api: "kmalloc",
                via: "KBox",
                size: KMALLOC_SIZE,
                mem: Held::kbox(&obj),
                gfp: RAW_KERNEL,
            };
            report_direct(r, l, &a, format_args!(""));
            a.mem.vaddr()
            // `obj` is freed here, full of DIRT.
        }
        Err(_) => {
            r.check(
                false,
                "kmalloc",
                "allocated",
                format_args!("kmalloc(100) failed"),
            );
            0
        }
    };
    match KVec::<u8>::zeroed(KMALLOC_SIZE, flags::GFP_KERNEL) {
        Ok(obj) => {
            let vaddr = obj.as_ptr() as usize;
            let a = Alloc {
                name: "kzalloc",
                api: "kzalloc",
                via: "KVec::zeroed",
                size: KMALLOC_SIZE,
                mem: Held::kvec(&obj),
                gfp: RAW_KERNEL | RAW_ZERO,
            };
            let reused = vaddr == kmalloc_addr;
            report_direct(r, l, &a, format_args!(" reused_kmalloc={}", YesNo(reused)));
            let dirty = obj.iter().filter(|&&b| b != 0).count();
            r.check(
                dirty == 0,
                "kzalloc",
                "zeroed",
                format_args!(
                    "{} of {} bytes are not zero{}",
                    dirty,
                    KMALLOC_SIZE,
                    if reused {
                        " (the same object kmalloc filled with 0x5a and freed)"
                    } else {
                        ""
                    }
                ),
            );
        }
        Err(_) => r.check(
            false,
            "kzalloc",
            "allocated",
            format_args!("kzalloc(100) failed"),
        ),
    }
    match KVec::<u32>::zeroed(KCALLOC_N, flags::GFP_KERNEL) {
        Ok(obj) => {
            let a = Alloc {
                name: "kcalloc",
                api: "kcalloc",
                via: "KVec::zeroed",
                size: KCALLOC_N * core::mem::size_of::<u32>(),
                mem: Held::kvec(&obj),
                gfp: RAW_KERNEL | RAW_ZERO,
            };
            report_direct(
                r,
                l,
                &a,
                format_args!(" n={} elem_size={}", KCALLOC_N, core::mem::size_of::<u32>()),
            );
            let dirty = obj.iter().filter(|&&x| x != 0).count();
            r.check(
                dirty == 0,
                "kcalloc",
                "zeroed",
                format_args!("{} of {} elements are not zero", dirty, KCALLOC_N),
            );
        }
        Err(_) => r.check(
            false,
            "kcalloc",
            "allocated",
            format_args!("kcalloc(25, 4) failed"),
        ),
    }
    // kcalloc(n, size) refuses n * size that overflows before allocating;
    // so does the array layout of a `KVec`.
    let huge = usize::MAX / 2;
    let refused = KVec::<u32>::zeroed(huge, flags::GFP_KERNEL | flags::__GFP_NOWARN).is_err();
    r.check(
        refused,
        "kcalloc",
        "overflow-refused",
        format_args!("kcalloc({:#x}, 4): {} * 4 overflows, refused", huge, huge),
    );
}
