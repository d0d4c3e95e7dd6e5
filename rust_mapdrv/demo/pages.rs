// SPDX-License-Identifier: GPL-2.0

//! The demo's page allocator: one page (`alloc_page`), a fixed-order block
//! (`__get_free_pages`) and the largest block that can be had now
//! (`alloc_pages`, highest order first), each checked to be physically
//! contiguous and aligned to its size, as buddies are.

use kernel::{
    alloc::flags,
    page::{Page, PAGE_SIZE},
};

use super::{
    alloc::{page_pfn, FreePages, Held, PageBlock, MAX_ORDER},
    gfp::{RAW_KERNEL, RAW_TRY_ONCE},
    report::{report_block, Alloc, Report},
};
use crate::arch::Layout;

/// The fixed-order block of the page-allocator demo.
const HIGHER_ORDER: u32 = 3;

/// The page allocator: one page (`alloc_page`), an order-3 block
/// (`__get_free_pages`) and the largest block that can be had now.
pub(super) fn demo_pages(r: &mut Report, l: &Layout) {
    match Page::alloc_page(flags::GFP_KERNEL) {
        Ok(page) => match Held::page(&page) {
            Some(mem) => {
                let a = Alloc {
                    name: "alloc_page",
                    api: "alloc_page",
                    via: "Page",
                    size: PAGE_SIZE,
                    mem,
                    gfp: RAW_KERNEL,
                };
                report_block(r, l, &a, page_pfn(&page), 0, format_args!(""));
            }
            None => r.check(
                false,
                "alloc_page",
                "direct-map",
                format_args!(
                    "a GFP_KERNEL page came from highmem: pfn {:#x}",
                    page_pfn(&page)
                ),
            ),
        },
        Err(_) => r.check(
            false,
            "alloc_page",
            "allocated",
            format_args!("alloc_page failed"),
        ),
    }
    match FreePages::get(RAW_KERNEL, HIGHER_ORDER) {
        Ok(block) => {
            let pfn = l.direct_map().pfn_of(block.addr());
            let a = Alloc {
                name: "get_free_pages",
                api: "__get_free_pages",
                via: "bindings",
                size: PAGE_SIZE << block.order(),
                mem: block.held(),
                gfp: RAW_KERNEL,
            };
            report_block(r, l, &a, pfn, block.order(), format_args!(""));
        }
        Err(_) => r.check(
            false,
            "get_free_pages",
            "allocated",
            format_args!("order 3 failed"),
        ),
    }
    let mut failed_orders = 0;
    for order in (0..=MAX_ORDER).rev() {
        let Ok(block) = PageBlock::alloc(RAW_TRY_ONCE, order) else {
            failed_orders += 1;
            continue;
        };
        let pfn = block.pfn();
        let Some(mem) = block.held() else {
            r.check(
                false,
                "alloc_pages_max",
                "direct-map",
                format_args!("a block without __GFP_HIGHMEM came from highmem: pfn {pfn:#x}"),
            );
            return;
        };
        let a = Alloc {
            name: "alloc_pages_max",
            api: "alloc_pages",
            via: "bindings",
            size: PAGE_SIZE * block.pages(),
            mem,
            gfp: RAW_TRY_ONCE,
        };
        report_block(
            r,
            l,
            &a,
            pfn,
            order,
            format_args!(
                " max_page_order={} failed_orders={}",
                MAX_ORDER, failed_orders
            ),
        );
        return;
    }
    r.check(
        false,
        "alloc_pages_max",
        "allocated",
        format_args!("no order up to {} could be had", MAX_ORDER),
    );
}
