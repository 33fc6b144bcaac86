//! The seeded random source behind every fault decision.

use core::fmt;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::time::duration_nanos;

/// A deterministic random stream derived from a run's seed.
///
/// ChaCha8 keyed by the seed; independent purposes use independent ChaCha
/// streams of the same key, so that drawing more numbers for one purpose
/// (say, a node's PSNs) never shifts the network's fault decisions.
/// The mappings from raw words to ranges and probabilities are written here
/// rather than taken from `rand`, so that a recorded seed keeps replaying
/// the same run for as long as the pinned generator is unchanged.
pub struct SimRng(ChaCha8Rng);

/// The stream the network's own fault decisions use.
const NETWORK_STREAM: u64 = 0;

impl SimRng {
    pub(crate) fn network(seed: u64) -> Self {
        Self::with_stream(seed, NETWORK_STREAM)
    }

    fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        SimRng(rng)
    }

    /// The stream `label` of `seed`, independent of the network's stream and
    /// of every other label. `label` `u64::MAX` aliases the network's stream.
    pub fn derived(seed: u64, label: u64) -> Self {
        Self::with_stream(seed, label.wrapping_add(1))
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniformly random `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// Fills `dest` with random bytes.
    pub fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    /// A number in `0..n` (`0` when `n` is `0`).
    ///
    /// Multiply-high mapping: the bias is below 2^-64 * n, far under anything
    /// a test can observe, and it always draws exactly one word.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`. Probabilities of 0 and 1 (and outside
    /// `0..=1`) draw nothing, so a fault-free link consumes no randomness.
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits give every representable f64 in [0, 1) a fair share.
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }

    /// A duration uniformly in `0..=max` at nanosecond resolution; draws
    /// nothing when `max` is zero.
    pub fn duration_upto(&mut self, max: Duration) -> Duration {
        let max = duration_nanos(max);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.below(max.saturating_add(1)))
    }
}

impl fmt::Debug for SimRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRng")
            .field("stream", &self.0.get_stream())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SimRng::network(7);
        let mut b = SimRng::network(7);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(SimRng::network(8).next_u64(), xs[0]);
        assert_ne!(SimRng::derived(7, 0).next_u64(), xs[0]);
        assert_ne!(
            SimRng::derived(7, 1).next_u64(),
            SimRng::derived(7, 0).next_u64()
        );
    }

    #[test]
    fn ranges_and_probabilities() {
        let mut r = SimRng::network(1);
        assert_eq!(r.below(0), 0);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert!(
            (0..1000).all(|_| r.duration_upto(Duration::from_nanos(5)) <= Duration::from_nanos(5))
        );
        assert_eq!(r.duration_upto(Duration::ZERO), Duration::ZERO);
        assert!(!(0..1000).any(|_| r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        // Every value of a small range shows up.
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[r.below(4) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
