//! Fault settings of one direction of a link.

use std::time::Duration;

/// How the network treats datagrams from one node to another.
///
/// Each datagram is decided independently, in this order: lost with
/// probability `loss`; otherwise duplicated with probability `duplicate`
/// (each copy then travels on its own); each copy is delivered after
/// `delay` + uniform `0..=jitter` + (with probability `reorder`) uniform
/// `0..=reorder_delay`. Jitter alone already reorders datagrams sent close
/// together; `reorder` makes rare, large overtakes.
///
/// With a `rate` (off by default), the direction is also a serial line of
/// that many bits per second with an unbounded queue in front of it: a
/// datagram of `n` bytes (counted with the 28 bytes of its IPv4 and UDP
/// headers) occupies the line for `8 * (n + 28) / rate` seconds after the
/// previous one leaves it, and its delay starts when its last bit has gone.
/// The line is taken before the loss decision, as a frame lost on the way
/// still used the sender's link.
///
/// ```
/// use netsim::LinkConfig;
/// use std::time::Duration;
/// let lossy = LinkConfig::default()
///     .loss(0.1)
///     .duplicate(0.05)
///     .jitter(Duration::from_micros(20))
///     .reorder(0.1, Duration::from_micros(500));
/// assert_eq!(lossy.loss, 0.1);
/// ```
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct LinkConfig {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Maximum extra delay, uniform, on every datagram.
    pub jitter: Duration,
    /// Probability of an extra reordering delay.
    pub reorder: f64,
    /// Maximum of that extra delay, uniform.
    pub reorder_delay: Duration,
    /// Serialization rate in bits per second (`None`: infinitely fast).
    pub rate: Option<u64>,
}

impl Default for LinkConfig {
    /// A perfect link with a 10 µs one-way delay (a datacenter hop).
    fn default() -> Self {
        LinkConfig {
            loss: 0.0,
            duplicate: 0.0,
            delay: Duration::from_micros(10),
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            rate: None,
        }
    }
}

fn check_probability(what: &str, p: f64) -> f64 {
    assert!(
        (0.0..=1.0).contains(&p),
        "netsim: {what} probability {p} is outside 0..=1"
    );
    p
}

impl LinkConfig {
    /// Sets the loss probability (panics outside `0..=1`).
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = check_probability("loss", p);
        self
    }

    /// Sets the duplication probability (panics outside `0..=1`).
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = check_probability("duplicate", p);
        self
    }

    /// Sets the fixed one-way delay.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Sets the maximum uniform jitter.
    pub fn jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// Sets the reordering probability (panics outside `0..=1`) and the
    /// maximum extra delay of a reordered datagram.
    pub fn reorder(mut self, p: f64, max_extra: Duration) -> Self {
        self.reorder = check_probability("reorder", p);
        self.reorder_delay = max_extra;
        self
    }

    /// Sets the serialization rate in bits per second (panics on 0).
    pub fn rate(mut self, bits_per_second: u64) -> Self {
        assert!(bits_per_second > 0, "netsim: a link rate must be positive");
        self.rate = Some(bits_per_second);
        self
    }

    /// How long `len` payload bytes (plus IPv4 and UDP headers) occupy the
    /// line; zero without a rate.
    pub(crate) fn serialization(&self, len: usize) -> Duration {
        match self.rate {
            Some(r) if r > 0 => {
                let bits = (len as u128 + 28) * 8;
                let ns = bits * 1_000_000_000 / u128::from(r);
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn validate(&self) {
        check_probability("loss", self.loss);
        check_probability("duplicate", self.duplicate);
        check_probability("reorder", self.reorder);
    }
}
