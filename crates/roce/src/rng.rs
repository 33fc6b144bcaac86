//! The one source of randomness in the core: a seeded SplitMix64.
//!
//! Comm IDs, transaction IDs, starting PSNs and keys must be unpredictable
//! on the wire but reproducible in a simulation, so the caller passes the
//! seed in (the shells seed it from the platform's entropy; tests from the
//! simulation seed). SplitMix64 is small, allocation-free and passes
//! BigCrush; nothing here is cryptographic, as nothing in RoCE relies on
//! these values for security.

/// A seeded pseudo-random generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose whole output is decided by `seed`.
    pub const fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A random 24-bit value (a starting PSN).
    pub fn next_u24(&mut self) -> u32 {
        self.next_u32() & 0x00FF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SeededRng::new(42);
        let mut b = SeededRng::new(42);
        let mut c = SeededRng::new(43);
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        assert_eq!(xs, ys);
        assert_ne!(xs[0], c.next_u64());
        assert!(SeededRng::new(7).next_u24() <= 0xFF_FFFF);
    }

    #[test]
    fn first_output_of_seed_zero_is_the_reference_value() {
        // SplitMix64's published first output for seed 0.
        assert_eq!(SeededRng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
