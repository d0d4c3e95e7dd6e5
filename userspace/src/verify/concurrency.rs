// SPDX-License-Identifier: GPL-2.0

//! concurrent-faults: several threads fault in one fresh shared mapping at
//! the same time, each visiting the pages in its own order; every thread
//! must see every page as pread saw it.

use std::sync::Barrier;

use anyhow::{Result, anyhow, bail};

use super::content::page_hashes;
use super::report::Check;
use super::{CheckFn, Ctx, RO};
use crate::content::page_hash;
use crate::device::Share;
use crate::mapping::Mapping;

/// The checks of this module, in the order they run.
pub(super) const CHECKS: &[(Check, CheckFn)] =
    &[(Check::ConcurrentFaults, |ctx| concurrent_faults(ctx))];

/// The order in which thread `t` of `threads` visits `pages` pages: even
/// threads walk forward, odd ones backward, each from its own start page.
pub(super) fn visit_order(t: usize, threads: usize, pages: usize) -> Vec<usize> {
    let start = t * pages / threads;
    (0..pages)
        .map(|k| {
            if t.is_multiple_of(2) {
                (start + k) % pages
            } else {
                (start + pages - k) % pages
            }
        })
        .collect()
}

/// One thread: the fingerprint of every page (indexed by page).
fn worker(map: &Mapping, order: &[usize], page_size: usize, start: &Barrier) -> Vec<u64> {
    let mut hashes = vec![0u64; order.len()];
    let mut page = vec![0u8; page_size];
    start.wait();
    for &i in order {
        map.read_into(i * page_size, &mut page);
        hashes[i] = page_hash(&page);
    }
    hashes
}

fn concurrent_faults(ctx: &Ctx) -> Result<String> {
    // Now, not as found: earlier checks changed bytes they restore only at the end.
    let expected = page_hashes(&ctx.dev, &ctx.geo)?;
    let (pages, ps, threads) = (ctx.geo.pages, ctx.geo.page_size, ctx.threads);
    let map = ctx.map_all(RO, Share::Shared)?;
    let start = Barrier::new(threads);
    let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let order = visit_order(t, threads, pages);
                let (map, start) = (&map, &start);
                s.spawn(move || worker(map, &order, ps, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a faulting thread panicked")))
            .collect::<Result<_>>()
    })?;
    for (t, hashes) in seen.iter().enumerate() {
        let wrong: Vec<usize> = (0..pages).filter(|&i| hashes[i] != expected[i]).collect();
        if !wrong.is_empty() {
            bail!(
                "thread {t} of {threads} saw {} page(s) differ from pread: {}",
                wrong.len(),
                super::list(&wrong)
            );
        }
    }
    Ok(format!("{threads} threads x {pages} pages agree"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_is_a_permutation() {
        for (threads, pages) in [(4, 10), (4, 1), (3, 2), (8, crate::abi::MAX_PAGES as usize)] {
            for t in 0..threads {
                let mut o = visit_order(t, threads, pages);
                o.sort_unstable();
                assert_eq!(
                    o,
                    (0..pages).collect::<Vec<_>>(),
                    "t={t} of {threads}, {pages} pages"
                );
            }
        }
    }

    #[test]
    fn orders_differ_between_threads() {
        let orders: Vec<_> = (0..4).map(|t| visit_order(t, 4, 10)).collect();
        assert_eq!(orders[0][..3], [0, 1, 2]);
        assert_eq!(orders[1][..3], [2, 1, 0]);
        assert_eq!(orders[2][..3], [5, 6, 7]);
        assert_eq!(orders[3][..3], [7, 6, 5]);
    }
}
