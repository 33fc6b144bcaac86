//! Virtual time: nothing in the simulator reads the real clock.
//!
//! The simulator's instants are the RoCE core's own
//! ([`roce::time::Instant`]): a run starts at [`Instant::ZERO`], and a node
//! built on the core hands its deadlines over unchanged.

use std::time::Duration;

pub use roce::time::Instant;

/// A duration in nanoseconds, saturating (u64 nanoseconds cover about 584
/// years, far beyond any run).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let t = Instant::ZERO + Duration::from_micros(1_500);
        assert_eq!(t.as_nanos(), 1_500_000);
        assert_eq!(t, Instant::from_micros(1_500));
        assert_eq!(t - Instant::from_millis(1), Duration::from_micros(500));
        assert_eq!(Instant::from_millis(1) - t, Duration::ZERO);
        assert_eq!(t - Duration::from_secs(9), Instant::ZERO);
        assert_eq!(format!("{t}"), "0.001500000s");
        assert_eq!(format!("{:>14}", Instant::from_nanos(1)), "  0.000000001s");
        assert_eq!(
            Instant::from_nanos(u64::MAX) + Duration::from_secs(1),
            Instant::from_nanos(u64::MAX)
        );
        assert_eq!(
            Instant::from_nanos(u64::MAX).checked_add(Duration::from_nanos(1)),
            None
        );
        let mut u = Instant::ZERO;
        u += Duration::from_nanos(7);
        assert_eq!(u.as_nanos(), 7);
    }
}
