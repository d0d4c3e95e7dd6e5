// SPDX-License-Identifier: GPL-2.0

//! `u64` division, and `u64` in decimal, on every architecture. On a
//! 32-bit kernel, core's
//! formatting of a `u64` divides it by powers of ten with a 64-bit division
//! the kernel's runtime does not provide: on 32-bit ARM the compiler's
//! `__aeabi_uldivmod` is a stub that traps (`rust/compiler_builtins.rs`),
//! so `pr_info!("{}", x)` of a `u64` is an oops. Every `u64` the module
//! writes in decimal goes through [`Decimal`], and every `u64` division
//! through [`div_u64`]: they divide with the kernel's `div64_u64_rem()` and
//! `div64_u64()` there.

use core::fmt;

/// `a / b`, or 0 when `b` is 0. A 32-bit kernel has no 64-bit division in
/// its runtime (no `__aeabi_uldivmod` on ARM): `div64_u64()` does it there.
pub(crate) fn div_u64(a: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    #[cfg(CONFIG_64BIT)]
    let q = a / b;
    // SAFETY: `div64_u64()` is a pure function; `b` is not 0.
    #[cfg(not(CONFIG_64BIT))]
    let q = unsafe { kernel::bindings::div64_u64(a, b) };
    q
}

/// Writes a `u64` in decimal (without the formatter's width or fill).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decimal(pub(crate) u64);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(CONFIG_64BIT)]
        {
            write!(f, "{}", self.0)
        }
        #[cfg(not(CONFIG_64BIT))]
        {
            // A `u32` is formatted with 32-bit divisions; a larger value is
            // split into a prefix and nine digits (the prefix is split
            // again while it is larger than a `u32`).
            if let Ok(small) = u32::try_from(self.0) {
                return write!(f, "{small}");
            }
            const BILLION: u64 = 1_000_000_000;
            let mut rest = 0u64;
            // SAFETY: `div64_u64_rem()` is a pure function of its
            // arguments; the divisor is not 0 and `rest` is a valid place
            // for the remainder.
            let prefix = unsafe { kernel::bindings::div64_u64_rem(self.0, BILLION, &mut rest) };
            write!(f, "{}{:09}", Decimal(prefix), rest as u32)
        }
    }
}

// `pr_*!` take the kernel's own `Display`.
impl kernel::fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Writes an `i64` in decimal, as [`Decimal`] does a `u64`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignedDecimal(pub(crate) i64);

impl fmt::Display for SignedDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            f.write_str("-")?;
        }
        fmt::Display::fmt(&Decimal(self.0.unsigned_abs()), f)
    }
}

impl kernel::fmt::Display for SignedDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[kernel::macros::kunit_tests(rust_mapdrv_decimal)]
mod tests {
    use super::*;
    use kernel::{alloc::KVec, prelude::*};

    /// Text written into a vector.
    struct Buf<'a>(&'a mut KVec<u8>);

    impl fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0
                .extend_from_slice(s.as_bytes(), GFP_KERNEL)
                .map_err(|_| fmt::Error)
        }
    }

    /// `Decimal(v)` as text.
    fn text(v: u64) -> KVec<u8> {
        let mut buf = KVec::new();
        let _ = fmt::Write::write_fmt(&mut Buf(&mut buf), format_args!("{}", Decimal(v)));
        buf
    }

    #[test]
    fn small_and_large() {
        assert_eq!(&text(0)[..], b"0");
        assert_eq!(&text(4_294_967_295)[..], b"4294967295");
        assert_eq!(&text(4_294_967_296)[..], b"4294967296");
        assert_eq!(&text(1_000_000_000_007)[..], b"1000000000007");
        assert_eq!(&text(u64::MAX)[..], b"18446744073709551615");
    }

    #[test]
    fn signed() {
        let mut buf = KVec::<u8>::new();
        for (v, want) in [
            (i64::MIN, &b"-9223372036854775808"[..]),
            (-1, b"-1"),
            (0, b"0"),
            (i64::MAX, b"9223372036854775807"),
        ] {
            buf.clear();
            let mut w = Buf(&mut buf);
            let _ = fmt::Write::write_fmt(&mut w, format_args!("{}", SignedDecimal(v)));
            assert_eq!(&buf[..], want);
        }
    }
}
