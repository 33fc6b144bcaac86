//! Bounds-checked big-endian field access shared by every view of the wire
//! module (transport headers, MADs, CM messages, `cma_hdr`), and the
//! macros that declare those views.
//!
//! The crate may not index or panic (lib.rs; a panic in a driver is a blue
//! screen: docs/design.md, rules of the house), so every access goes through
//! `get` and `first_chunk`. A view built with `new_checked` never takes the
//! fallback branch; one built with `new_unchecked` over a short buffer reads
//! zeros and drops writes instead of panicking.
//!
//! Bit fields are given as `(byte offset, mask)`: the mask selects the bits
//! and its lowest set bit gives the shift.

use super::{Error, Result};

/// `N` bytes at `at`, or zeros if the buffer is too short.
#[inline]
pub(crate) fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..)
        .and_then(|s| s.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

#[inline]
pub(crate) fn u8_at(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

#[inline]
pub(crate) fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(buf, at))
}

/// A 24-bit field occupying three whole bytes (QPNs, PSNs, MSN, EECNs).
#[inline]
pub(crate) fn u24_at(buf: &[u8], at: usize) -> u32 {
    let [a, b, c] = array(buf, at);
    u32::from_be_bytes([0, a, b, c])
}

#[inline]
pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(buf, at))
}

#[inline]
pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(buf, at))
}

/// Copies `src` into `buf` at `at`; does nothing if it does not fit (only
/// reachable through an unchecked view).
#[inline]
pub(crate) fn put(buf: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = buf.get_mut(at..).and_then(|s| s.get_mut(..src.len())) {
        dst.copy_from_slice(src);
    }
}

#[inline]
pub(crate) fn set_u8(buf: &mut [u8], at: usize, v: u8) {
    if let Some(b) = buf.get_mut(at) {
        *b = v;
    }
}

#[inline]
pub(crate) fn set_u16(buf: &mut [u8], at: usize, v: u16) {
    put(buf, at, &v.to_be_bytes());
}

/// Writes the low 24 bits of `v` into three whole bytes; the top byte is
/// ignored by design.
#[inline]
pub(crate) fn set_u24(buf: &mut [u8], at: usize, v: u32) {
    let [_, a, b, c] = v.to_be_bytes();
    put(buf, at, &[a, b, c]);
}

#[inline]
pub(crate) fn set_u32(buf: &mut [u8], at: usize, v: u32) {
    put(buf, at, &v.to_be_bytes());
}

#[inline]
pub(crate) fn set_u64(buf: &mut [u8], at: usize, v: u64) {
    put(buf, at, &v.to_be_bytes());
}

/// The bits of byte `at` selected by `mask`, shifted down.
#[inline]
pub(crate) fn bits(buf: &[u8], at: usize, mask: u8) -> u8 {
    (u8_at(buf, at) & mask)
        .checked_shr(mask.trailing_zeros())
        .unwrap_or(0)
}

/// Replaces the bits of byte `at` selected by `mask`, keeping the others.
/// Bits of `v` that do not fit the mask are dropped.
#[inline]
pub(crate) fn set_bits(buf: &mut [u8], at: usize, mask: u8, v: u8) {
    let shifted = v.checked_shl(mask.trailing_zeros()).unwrap_or(0) & mask;
    set_u8(buf, at, (u8_at(buf, at) & !mask) | shifted);
}

/// A single bit as a flag.
#[inline]
pub(crate) fn flag(buf: &[u8], at: usize, mask: u8) -> bool {
    u8_at(buf, at) & mask != 0
}

#[inline]
pub(crate) fn set_flag(buf: &mut [u8], at: usize, mask: u8, v: bool) {
    set_bits(buf, at, mask, u8::from(v));
}

/// A 20-bit flow label in the top bits of the 32-bit word at `at`
/// (IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h: MSB-aligned, bytes at..at+2 and the high nibble of at+2).
#[inline]
pub(crate) fn flow_label(buf: &[u8], at: usize) -> u32 {
    u32_at(buf, at) >> 12
}

/// Sets a 20-bit flow label, keeping the low 12 bits of the word.
#[inline]
pub(crate) fn set_flow_label(buf: &mut [u8], at: usize, v: u32) {
    let old = u32_at(buf, at);
    set_u32(buf, at, (old & 0xFFF) | ((v & 0xF_FFFF) << 12));
}

/// `Ok` if `v` fits in `width` bits, else [`Error::Malformed`]: `emit`
/// refuses values that would be silently truncated on the wire.
#[inline]
pub(crate) fn check_width(v: u32, width: u32) -> Result<()> {
    if v.checked_shr(width).unwrap_or(0) == 0 {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// Length check of a view that must be exactly `want` bytes (a MAD, a CM
/// body): shorter is [`Error::Truncated`], longer [`Error::BadLength`].
#[inline]
pub(crate) fn check_exact(len: usize, want: usize) -> Result<()> {
    match len.cmp(&want) {
        core::cmp::Ordering::Less => Err(Error::Truncated),
        core::cmp::Ordering::Greater => Err(Error::BadLength),
        core::cmp::Ordering::Equal => Ok(()),
    }
}

/// The Internet checksum (RFC 1071) accumulator: one's-complement sum of
/// 16-bit big-endian words; an odd trailing byte is padded with zero.
#[inline]
pub(crate) fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    // An IPv4 header without options, summed on every datagram sent and
    // received: five 32-bit words, no loop (RFC 1071 §2(B): the sum does
    // not depend on the word size, as 2^16 = 1 mod 0xFFFF).
    if let Ok(h) = <&[u8; 20]>::try_from(data) {
        let [a, b, c, d, e] = match h.as_chunks::<4>().0 {
            [a, b, c, d, e] => [a, b, c, d, e].map(|w| u64::from(u32::from_be_bytes(*w))),
            // 20 bytes are always five 4-byte words.
            _ => [0; 5],
        };
        let s = u64::from(acc) + a + b + c + d + e;
        // Below 2^35: two folds bring it under 2^17, as the loop's does.
        let s = (s & 0xFFFF_FFFF) + (s >> 32);
        let s = (s & 0xFFFF) + (s >> 16);
        return s as u32;
    }
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let Some(w) = c.first_chunk::<2>() {
            acc = acc.wrapping_add(u32::from(u16::from_be_bytes(*w)));
        }
    }
    if let Some(&last) = chunks.remainder().first() {
        acc = acc.wrapping_add(u32::from(last) << 8);
    }
    // Fold often enough that even a 64 KiB datagram cannot overflow.
    fold_partial(acc)
}

#[inline]
fn fold_partial(acc: u32) -> u32 {
    (acc & 0xFFFF) + (acc >> 16)
}

/// Fold the accumulator to 16 bits and complement it.
#[inline]
pub(crate) fn ones_finish(acc: u32) -> u16 {
    let mut s = acc;
    while s > 0xFFFF {
        s = fold_partial(s);
    }
    // `s` is at most 0xFFFF here, so the cast is lossless.
    !(s as u16)
}

/// Declares a view `$name<T: AsRef<[u8]>>` over a buffer with
/// `new_unchecked`, `new_checked` and `into_inner`. The caller writes the
/// `check_len` that `new_checked` runs (or uses [`fixed_view!`]).
macro_rules! view {
    ($name:ident, $doc:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wrap without checking; accessors on a short buffer read
            /// zero and setters do nothing (they never panic).
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wrap and run [`check_len`](Self::check_len) once.
            pub fn new_checked(buffer: T) -> $crate::wire::Result<Self> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// Give back the buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
pub(crate) use view;

/// A [`view!`] of a header of fixed length `$len`, whose `check_len` is
/// `Err(Truncated)` when the buffer is shorter (longer is fine).
macro_rules! fixed_view {
    ($name:ident, $len:expr, $doc:expr) => {
        $crate::wire::bytes::view!($name, $doc);

        impl<T: AsRef<[u8]>> $name<T> {
            /// `Err(Truncated)` if the header does not fit.
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                if self.buffer.as_ref().len() < $len {
                    return Err($crate::wire::Error::Truncated);
                }
                Ok(())
            }
        }
    };
}
pub(crate) use fixed_view;

/// Declares getters and setters of a view from a table of
/// `getter, setter: kind(offset);` lines. Kinds: `u8`, `u16`, `u32`, `u64`
/// (whole big-endian fields), `u24` (three whole bytes), `[u8; N]` (N raw
/// bytes), `gid` (16 bytes as an `Ipv6Addr`), `flow_label` (the top 20 bits
/// of a 32-bit word), and `bits` / `flag` whose offset is a `(byte, mask)`
/// pair. Setters drop the bits of a value that do not fit its field and
/// keep the neighbouring bits.
macro_rules! fields {
    ($view:ident; $( $(#[$meta:meta])* $get:ident, $set:ident : $kind:tt ($at:expr); )*) => {
        impl<T: AsRef<[u8]>> $view<T> {
            $(
                $(#[$meta])*
                pub fn $get(&self) -> $crate::wire::bytes::field_ty!($kind) {
                    $crate::wire::bytes::field_get!($kind, self.buffer.as_ref(), $at)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            $(
                #[doc = concat!("Sets the field read by [`Self::", stringify!($get), "`].")]
                pub fn $set(&mut self, value: $crate::wire::bytes::field_ty!($kind)) {
                    $crate::wire::bytes::field_set!($kind, self.buffer.as_mut(), value, $at)
                }
            )*
        }
    };
}
pub(crate) use fields;

macro_rules! field_ty {
    (u8) => {
        u8
    };
    (u16) => {
        u16
    };
    (u24) => {
        u32
    };
    (u32) => {
        u32
    };
    (u64) => {
        u64
    };
    ([u8; $n:literal]) => {
        [u8; $n]
    };
    (gid) => {
        ::core::net::Ipv6Addr
    };
    (flow_label) => {
        u32
    };
    (bits) => {
        u8
    };
    (flag) => {
        bool
    };
}
pub(crate) use field_ty;

macro_rules! field_get {
    (u8, $b:expr, $at:expr) => {
        $crate::wire::bytes::u8_at($b, $at)
    };
    (u16, $b:expr, $at:expr) => {
        $crate::wire::bytes::u16_at($b, $at)
    };
    (u24, $b:expr, $at:expr) => {
        $crate::wire::bytes::u24_at($b, $at)
    };
    (u32, $b:expr, $at:expr) => {
        $crate::wire::bytes::u32_at($b, $at)
    };
    (u64, $b:expr, $at:expr) => {
        $crate::wire::bytes::u64_at($b, $at)
    };
    ([u8; $n:literal], $b:expr, $at:expr) => {
        $crate::wire::bytes::array::<$n>($b, $at)
    };
    (gid, $b:expr, $at:expr) => {
        ::core::net::Ipv6Addr::from($crate::wire::bytes::array::<16>($b, $at))
    };
    (flow_label, $b:expr, $at:expr) => {
        $crate::wire::bytes::flow_label($b, $at)
    };
    (bits, $b:expr, $at:expr) => {{
        let (at, mask) = $at;
        $crate::wire::bytes::bits($b, at, mask)
    }};
    (flag, $b:expr, $at:expr) => {{
        let (at, mask) = $at;
        $crate::wire::bytes::flag($b, at, mask)
    }};
}
pub(crate) use field_get;

macro_rules! field_set {
    (u8, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_u8($b, $at, $v)
    };
    (u16, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_u16($b, $at, $v)
    };
    (u24, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_u24($b, $at, $v)
    };
    (u32, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_u32($b, $at, $v)
    };
    (u64, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_u64($b, $at, $v)
    };
    ([u8; $n:literal], $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::put($b, $at, &$v)
    };
    (gid, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::put($b, $at, &$v.octets())
    };
    (flow_label, $b:expr, $v:expr, $at:expr) => {
        $crate::wire::bytes::set_flow_label($b, $at, $v)
    };
    (bits, $b:expr, $v:expr, $at:expr) => {{
        let (at, mask) = $at;
        $crate::wire::bytes::set_bits($b, at, mask, $v)
    }};
    (flag, $b:expr, $v:expr, $at:expr) => {{
        let (at, mask) = $at;
        $crate::wire::bytes::set_flag($b, at, mask, $v)
    }};
}
pub(crate) use field_set;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_read_zero_and_drop_writes() {
        let mut b = [1u8, 2, 3];
        assert_eq!(u32_at(&b, 0), 0);
        assert_eq!(u24_at(&b, 0), 0x010203);
        assert_eq!(u16_at(&b, 2), 0);
        assert_eq!(u8_at(&b, 3), 0);
        assert_eq!(array::<4>(&b, 0), [0; 4]);
        set_u32(&mut b, 1, 0xFFFF_FFFF);
        assert_eq!(b, [1, 2, 3]);
        set_u24(&mut b, 0, 0xAABB_CCDD);
        assert_eq!(b, [0xBB, 0xCC, 0xDD]);
        set_u32(&mut b, usize::MAX, 7);
        set_u8(&mut b, 3, 7);
        put(&mut b, usize::MAX, &[1]);
        assert_eq!(b, [0xBB, 0xCC, 0xDD]);
    }

    #[test]
    fn bit_fields_and_widths() {
        let mut b = [0b1010_0101u8];
        assert_eq!(bits(&b, 0, 0x30), 0b10);
        assert!(flag(&b, 0, 0x80));
        assert!(!flag(&b, 0, 0x40));
        set_bits(&mut b, 0, 0x30, 0b111); // the bit above the mask is dropped
        assert_eq!(b, [0b1011_0101]);
        set_flag(&mut b, 0, 0x80, false);
        assert_eq!(b, [0b0011_0101]);
        assert_eq!(bits(&b, 0, 0), 0);
        assert_eq!(check_width(0xFF_FFFF, 24), Ok(()));
        assert_eq!(check_width(0x100_0000, 24), Err(Error::Malformed));
        assert_eq!(check_width(u32::MAX, 32), Ok(()));
        let mut w = [0xFFu8; 4];
        set_flow_label(&mut w, 0, 0xC5A69);
        assert_eq!(w, [0xC5, 0xA6, 0x9F, 0xFF]);
        assert_eq!(flow_label(&w, 0), 0xC5A69);
    }

    #[test]
    fn exact_lengths() {
        assert_eq!(check_exact(3, 4), Err(Error::Truncated));
        assert_eq!(check_exact(5, 4), Err(Error::BadLength));
        assert_eq!(check_exact(4, 4), Ok(()));
    }

    #[test]
    fn internet_checksum_of_rfc1071_example() {
        // RFC 1071 §3 example bytes; their one's-complement sum is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_finish(ones_sum(0, &data)), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(ones_finish(ones_sum(0, &[0x12])), !0x1200);
    }

    #[test]
    fn a_20_byte_header_sums_as_the_16_bit_words_do() {
        // The RFC 1071 definition, a 16-bit word at a time.
        fn by_16(acc: u32, data: &[u8]) -> u16 {
            let mut s = u64::from(acc);
            for c in data.chunks(2) {
                s += (u64::from(c[0]) << 8) | c.get(1).map_or(0, |&b| u64::from(b));
            }
            while s > 0xFFFF {
                s = (s & 0xFFFF) + (s >> 16);
            }
            !(s as u16)
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..2000 {
            let mut h = [0u8; 20];
            for b in &mut h {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if round == 0 {
                h = [0xFF; 20];
            } else if round == 1 {
                h = [0; 20];
            }
            let acc = (x >> 40) as u32 & 0x3_FFFF;
            for a in [0, acc] {
                assert_eq!(
                    ones_finish(ones_sum(a, &h)),
                    by_16(a, &h),
                    "{h:02x?} acc {a:#x}"
                );
            }
        }
    }
}
