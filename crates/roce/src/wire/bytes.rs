//! Bounds-checked big-endian field access shared by the header views.
//!
//! The crate may not index or panic (lib.rs), so every read goes through
//! `get` + `first_chunk`. A view that was built with `new_checked` never takes
//! the fallback branch; one built with `new_unchecked` over a short buffer
//! reads zero and drops writes instead of panicking.

/// `N` bytes at `off`, if the buffer holds them.
#[inline]
pub(crate) fn array<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    buf.get(off..)?.first_chunk::<N>().copied()
}

#[inline]
pub(crate) fn u8_at(buf: &[u8], off: usize) -> u8 {
    buf.get(off).copied().unwrap_or(0)
}

#[inline]
pub(crate) fn u16_at(buf: &[u8], off: usize) -> u16 {
    array::<2>(buf, off).map_or(0, u16::from_be_bytes)
}

/// A 24-bit big-endian field (QPNs, PSNs, MSN, EE context).
#[inline]
pub(crate) fn u24_at(buf: &[u8], off: usize) -> u32 {
    array::<3>(buf, off).map_or(0, |[a, b, c]| u32::from_be_bytes([0, a, b, c]))
}

#[inline]
pub(crate) fn u32_at(buf: &[u8], off: usize) -> u32 {
    array::<4>(buf, off).map_or(0, u32::from_be_bytes)
}

#[inline]
pub(crate) fn u64_at(buf: &[u8], off: usize) -> u64 {
    array::<8>(buf, off).map_or(0, u64::from_be_bytes)
}

/// Copy `src` into `buf` at `off`; silently dropped if it does not fit
/// (only reachable through an unchecked view).
#[inline]
pub(crate) fn put(buf: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = off
        .checked_add(src.len())
        .and_then(|end| buf.get_mut(off..end))
    {
        dst.copy_from_slice(src);
    }
}

#[inline]
pub(crate) fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    if let Some(b) = buf.get_mut(off) {
        *b = v;
    }
}

#[inline]
pub(crate) fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    put(buf, off, &v.to_be_bytes());
}

/// Writes the low 24 bits of `v`; the top byte is ignored by design.
#[inline]
pub(crate) fn put_u24(buf: &mut [u8], off: usize, v: u32) {
    let [_, a, b, c] = v.to_be_bytes();
    put(buf, off, &[a, b, c]);
}

#[inline]
pub(crate) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    put(buf, off, &v.to_be_bytes());
}

#[inline]
pub(crate) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    put(buf, off, &v.to_be_bytes());
}

/// Update a single bit-field inside byte `off`: clear `mask`, then OR in
/// `(v << shift) & mask`.
#[inline]
pub(crate) fn put_bits(buf: &mut [u8], off: usize, mask: u8, shift: u32, v: u8) {
    if let Some(b) = buf.get_mut(off) {
        *b = (*b & !mask) | (v.wrapping_shl(shift) & mask);
    }
}

/// The Internet checksum (RFC 1071) accumulator: one's-complement sum of
/// 16-bit big-endian words; an odd trailing byte is padded with zero.
#[inline]
pub(crate) fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
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

/// The constructor boilerplate of a fixed-length header view: a
/// `Packet<T: AsRef<[u8]>>` with `new_unchecked`, `new_checked` (length
/// validated once), `check_len` and `into_inner`.
macro_rules! fixed_view {
    ($len:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct Packet<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> Packet<T> {
            /// Wrap without checking; accessors on a short buffer read zero
            /// and setters do nothing.
            pub const fn new_unchecked(buffer: T) -> Self {
                Packet { buffer }
            }

            /// Wrap and check the buffer holds the whole header.
            pub fn new_checked(buffer: T) -> $crate::wire::Result<Self> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }

            /// `Err(Truncated)` if the header does not fit.
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                if self.buffer.as_ref().len() < $len {
                    return Err($crate::wire::Error::Truncated);
                }
                Ok(())
            }

            /// Give back the buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
pub(crate) use fixed_view;

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
        put_u32(&mut b, 1, 0xFFFF_FFFF);
        assert_eq!(b, [1, 2, 3]);
        put_u24(&mut b, 0, 0xAABB_CCDD);
        assert_eq!(b, [0xBB, 0xCC, 0xDD]);
        put_u32(&mut b, usize::MAX, 7);
        assert_eq!(b, [0xBB, 0xCC, 0xDD]);
    }

    #[test]
    fn internet_checksum_of_rfc1071_example() {
        // RFC 1071 §3 example bytes; their one's-complement sum is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_finish(ones_sum(0, &data)), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(ones_finish(ones_sum(0, &[0x12])), !0x1200);
    }
}
