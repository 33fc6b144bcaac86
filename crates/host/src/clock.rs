//! Time for the sans-IO core: a monotonic clock read as nanoseconds since
//! an origin chosen when the clock is made.

use std::time::{Duration, Instant as StdInstant};

use roce::time::Instant;

/// A monotonic clock mapping [`std::time::Instant`] to
/// [`roce::time::Instant`]. Copies share the origin, so every thread of one
/// shell reads the same timeline.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: StdInstant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: StdInstant::now(),
        }
    }

    /// A clock with the given origin.
    pub fn with_origin(origin: StdInstant) -> Self {
        Clock { origin }
    }

    /// The origin as a std instant.
    pub fn origin(&self) -> StdInstant {
        self.origin
    }

    /// Now, as the core sees it.
    pub fn now(&self) -> Instant {
        self.from_std(StdInstant::now())
    }

    /// A std instant on this clock's timeline (instants before the origin
    /// map to the origin; past about 584 years it saturates).
    pub fn from_std(&self, t: StdInstant) -> Instant {
        let nanos = t.saturating_duration_since(self.origin).as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The std instant of a core instant (saturating at the far future
    /// std can represent).
    pub fn to_std(&self, t: Instant) -> StdInstant {
        let d = Duration::from_nanos(t.as_nanos());
        self.origin
            .checked_add(d)
            .unwrap_or_else(|| self.origin + Duration::from_secs(u64::from(u32::MAX)))
    }

    /// How long from now until `deadline` (zero if it has passed).
    pub fn until(&self, deadline: Instant) -> Duration {
        deadline.saturating_duration_since(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_round_trips() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let later = c.origin() + Duration::from_millis(1500);
        let t = c.from_std(later);
        assert_eq!(t.as_nanos(), 1_500_000_000);
        assert_eq!(c.to_std(t), later);
        // Before the origin maps to the origin.
        let early = Clock::with_origin(later);
        assert_eq!(early.from_std(c.origin()), Instant::ZERO);
        // Far future does not panic.
        let _ = c.to_std(Instant::from_nanos(u64::MAX));
        assert_eq!(c.until(Instant::ZERO), Duration::ZERO);
    }
}
