// SPDX-License-Identifier: GPL-2.0

//! The kernel globals that every architecture reads alike: `high_memory`
//! (the end of the direct map of RAM) and the count of RAM pages. Each is
//! read here, once, behind a safe function; an architecture's own globals
//! are in its `globals.rs`.

use kernel::bindings;

/// The end of the direct map of RAM (`high_memory`).
pub(crate) fn high_memory() -> usize {
    // SAFETY: `high_memory` is set once during early boot, before any module
    // can be loaded (memory hot-add may raise it later with a single aligned
    // store, which a racing read sees whole).
    unsafe { bindings::high_memory as usize }
}

/// The address of `high_memory` itself: a variable in the kernel image's
/// `.bss` (arm64's layout finds the end of the image from it).
#[cfg_attr(not(CONFIG_ARM64), allow(dead_code))]
pub(crate) fn high_memory_addr() -> usize {
    core::ptr::addr_of!(bindings::high_memory) as usize
}

/// `totalram_pages()`.
pub(crate) fn totalram_pages() -> u64 {
    // `atomic_long_t` is the atomic of the word's size.
    #[cfg(CONFIG_64BIT)]
    use bindings::atomic64_read as atomic_long_read;
    #[cfg(not(CONFIG_64BIT))]
    use bindings::atomic_read as atomic_long_read;
    // SAFETY: `_totalram_pages` is an `atomic_long_t`, which
    // `atomic_long_read` reads (what `totalram_pages()` does in C); the
    // pointer is to a kernel global, valid for the module's whole life.
    unsafe { atomic_long_read(core::ptr::addr_of_mut!(bindings::_totalram_pages)) as u64 }
}
