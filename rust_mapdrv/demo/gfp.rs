// SPDX-License-Identifier: GPL-2.0

//! GFP flags as the demo prints them: the raw `gfp_t` values its
//! allocations pass, and [`GfpNames`], which writes a value the way
//! `include/linux/gfp_types.h` spells it (`GFP_KERNEL|__GFP_ZERO`).

use core::fmt;
use kernel::bindings;

/// A raw `gfp_t` value.
pub(crate) type Gfp = u32;
pub(crate) const RAW_KERNEL: Gfp = bindings::GFP_KERNEL;
pub(crate) const RAW_ZERO: Gfp = bindings::__GFP_ZERO;
pub(crate) const RAW_NOWARN: Gfp = bindings::__GFP_NOWARN;
pub(crate) const RAW_NORETRY: Gfp = 1 << bindings::___GFP_NORETRY_BIT;
/// For the largest block: give up at once and quietly when it cannot be had.
pub(crate) const RAW_TRY_ONCE: Gfp = RAW_KERNEL | RAW_NOWARN | RAW_NORETRY;

/// The names of single GFP bits, lowest first (`include/linux/gfp_types.h`).
const GFP_BITS: [(&str, u32); 24] = [
    ("__GFP_DMA", bindings::___GFP_DMA_BIT),
    ("__GFP_HIGHMEM", bindings::___GFP_HIGHMEM_BIT),
    ("__GFP_DMA32", bindings::___GFP_DMA32_BIT),
    ("__GFP_MOVABLE", bindings::___GFP_MOVABLE_BIT),
    ("__GFP_RECLAIMABLE", bindings::___GFP_RECLAIMABLE_BIT),
    ("__GFP_HIGH", bindings::___GFP_HIGH_BIT),
    ("__GFP_IO", bindings::___GFP_IO_BIT),
    ("__GFP_FS", bindings::___GFP_FS_BIT),
    ("__GFP_ZERO", bindings::___GFP_ZERO_BIT),
    ("__GFP_UNUSED", bindings::___GFP_UNUSED_BIT),
    ("__GFP_DIRECT_RECLAIM", bindings::___GFP_DIRECT_RECLAIM_BIT),
    ("__GFP_KSWAPD_RECLAIM", bindings::___GFP_KSWAPD_RECLAIM_BIT),
    ("__GFP_WRITE", bindings::___GFP_WRITE_BIT),
    ("__GFP_NOWARN", bindings::___GFP_NOWARN_BIT),
    ("__GFP_RETRY_MAYFAIL", bindings::___GFP_RETRY_MAYFAIL_BIT),
    ("__GFP_NOFAIL", bindings::___GFP_NOFAIL_BIT),
    ("__GFP_NORETRY", bindings::___GFP_NORETRY_BIT),
    ("__GFP_MEMALLOC", bindings::___GFP_MEMALLOC_BIT),
    ("__GFP_COMP", bindings::___GFP_COMP_BIT),
    ("__GFP_NOMEMALLOC", bindings::___GFP_NOMEMALLOC_BIT),
    ("__GFP_HARDWALL", bindings::___GFP_HARDWALL_BIT),
    ("__GFP_THISNODE", bindings::___GFP_THISNODE_BIT),
    ("__GFP_ACCOUNT", bindings::___GFP_ACCOUNT_BIT),
    ("__GFP_ZEROTAGS", bindings::___GFP_ZEROTAGS_BIT),
];

/// The usual combinations, tried first (largest first).
const GFP_COMBOS: [(&str, Gfp); 3] = [
    ("GFP_KERNEL", bindings::GFP_KERNEL),
    ("GFP_NOWAIT", bindings::GFP_NOWAIT),
    ("GFP_ATOMIC", bindings::GFP_ATOMIC),
];

/// Writes `gfp` as names joined by `|`: a combination such as `GFP_KERNEL`
/// when all its bits are set, then the remaining single bits.
pub(crate) struct GfpNames(pub(crate) Gfp);

impl fmt::Display for GfpNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut sep = "";
        for (name, bits) in GFP_COMBOS {
            if bits != 0 && rest & bits == bits {
                write!(f, "{sep}{name}")?;
                sep = "|";
                rest &= !bits;
            }
        }
        for (name, bit) in GFP_BITS {
            if rest & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
                rest &= !(1 << bit);
            }
        }
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        } else if sep.is_empty() {
            f.write_str("0")?;
        }
        Ok(())
    }
}
