// SPDX-License-Identifier: GPL-2.0

//! `cond_resched()`, which Linux 7.3's kernel crate does not have.
//!
//! Loops that can run for milliseconds (mapping or walking a 1 GiB buffer,
//! 262,144 pages) call [`cond_resched`] now and then, so that on a kernel
//! without full preemption they do not keep the CPU from other tasks.

/// Lets the scheduler run another task if one is waiting, like C's
/// `cond_resched()`. Must be called where sleeping is allowed (which
/// `might_sleep` checks on kernels with `CONFIG_DEBUG_ATOMIC_SLEEP`).
///
/// With full preemption (`CONFIG_PREEMPTION` without `PREEMPT_DYNAMIC`, as
/// on our VM kernels) the C macro compiles to nothing but the check, and so
/// does this; `__cond_resched` exists only where it does something.
pub(crate) fn cond_resched() {
    kernel::task::might_sleep();
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: `__cond_resched` may be called from any context where sleeping
    // is allowed, which the caller guarantees (and `might_sleep` checks).
    unsafe {
        kernel::bindings::__cond_resched()
    };
}
