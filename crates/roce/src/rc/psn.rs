//! 24-bit packet sequence numbers (IBA Vol 1 ch. 9 (PSN arithmetic); Linux rxe_hdr.h psn_compare).
//!
//! PSNs wrap modulo 2^24, so they have no total order: `a` is before `b`
//! when the 24-bit difference `b - a`, read as a signed number in
//! [-2^23, 2^23), is positive. That is what rxe's `psn_compare` computes by
//! shifting the difference into the top of an `i32`.

use core::cmp::Ordering;
use core::fmt;

/// The PSN space: 24 bits.
pub const PSN_MASK: u32 = 0x00FF_FFFF;

/// A 24-bit PSN. Construction masks to 24 bits, so every value is valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Psn(u32);

impl Psn {
    /// Zero.
    pub const ZERO: Psn = Psn(0);

    /// The low 24 bits of `v`.
    pub const fn new(v: u32) -> Psn {
        Psn(v & PSN_MASK)
    }

    /// The value, below 2^24.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// `self + n` modulo 2^24.
    pub const fn add(self, n: u32) -> Psn {
        Psn(self.0.wrapping_add(n) & PSN_MASK)
    }

    /// `self - n` modulo 2^24.
    pub const fn sub(self, n: u32) -> Psn {
        Psn(self.0.wrapping_sub(n) & PSN_MASK)
    }

    /// Signed distance `self - other` in [-2^23, 2^23) (IBA Vol 1 ch. 9 (PSN arithmetic); Linux rxe_hdr.h psn_compare).
    pub const fn diff(self, other: Psn) -> i32 {
        // Shift the 24-bit difference into the top of an i32 and back, so
        // its bit 23 becomes the sign.
        ((self.0.wrapping_sub(other.0) << 8) as i32) >> 8
    }

    /// Order by signed distance: `Less` when `self` comes before `other`.
    pub const fn compare(self, other: Psn) -> Ordering {
        let d = self.diff(other);
        if d < 0 {
            Ordering::Less
        } else if d > 0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }

    /// `self` strictly before `other`.
    pub const fn before(self, other: Psn) -> bool {
        self.diff(other) < 0
    }

    /// `self` before or equal to `other`.
    pub const fn before_eq(self, other: Psn) -> bool {
        self.diff(other) <= 0
    }

    /// `self` in the half-open window `[start, end)`.
    pub const fn in_range(self, start: Psn, end: Psn) -> bool {
        start.before_eq(self) && self.before(end)
    }
}

impl fmt::Debug for Psn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Psn({})", self.0)
    }
}

impl fmt::Display for Psn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Psn> for u32 {
    fn from(p: Psn) -> u32 {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_masks_to_24_bits() {
        assert_eq!(Psn::new(0x1FF_FFFF).value(), 0xFF_FFFF);
        assert_eq!(Psn::new(0x100_0000).value(), 0);
    }

    #[test]
    fn add_and_sub_wrap() {
        let top = Psn::new(PSN_MASK);
        assert_eq!(top.add(1), Psn::ZERO);
        assert_eq!(top.add(5), Psn::new(4));
        assert_eq!(Psn::ZERO.sub(1), top);
        assert_eq!(Psn::new(3).sub(10), Psn::new(PSN_MASK - 6));
        assert_eq!(Psn::new(7).add(u32::MAX), Psn::new(6));
    }

    #[test]
    fn diff_is_signed_24_bit() {
        assert_eq!(Psn::new(5).diff(Psn::new(3)), 2);
        assert_eq!(Psn::new(3).diff(Psn::new(5)), -2);
        // Across the wrap.
        assert_eq!(Psn::new(1).diff(Psn::new(PSN_MASK)), 2);
        assert_eq!(Psn::new(PSN_MASK).diff(Psn::new(1)), -2);
        // The extremes of the window: +2^23 - 1 and -2^23.
        assert_eq!(Psn::new(0x7F_FFFF).diff(Psn::ZERO), 0x7F_FFFF);
        assert_eq!(Psn::new(0x80_0000).diff(Psn::ZERO), -0x80_0000);
    }

    #[test]
    fn ordering_across_wrap() {
        let a = Psn::new(PSN_MASK - 1);
        let b = Psn::new(2);
        assert!(a.before(b));
        assert!(!b.before(a));
        assert!(a.before_eq(a));
        assert_eq!(a.compare(b), Ordering::Less);
        assert_eq!(b.compare(a), Ordering::Greater);
        assert_eq!(b.compare(b), Ordering::Equal);
        assert!(Psn::ZERO.in_range(a, b));
        assert!(!b.in_range(a, b));
        assert!(a.in_range(a, b));
    }

    #[test]
    fn every_distance_round_trips() {
        for base in [0u32, 1, 0x7F_FFFF, 0x80_0000, PSN_MASK] {
            for d in [-0x80_0000i32, -1000, -1, 0, 1, 1000, 0x7F_FFFF] {
                let p = Psn::new(base);
                let q = if d >= 0 {
                    p.add(d as u32)
                } else {
                    p.sub(d.unsigned_abs())
                };
                assert_eq!(q.diff(p), d, "base {base} d {d}");
            }
        }
    }
}
