//! The neighbor cache of the datagram path (portable): IP -> MAC for the
//! RoCE engine's destinations.
//!
//! Resolution itself is the OS's: a miss queues the address, and the
//! kernel shell resolves it at PASSIVE_LEVEL with ResolveIpNetEntry2 on the
//! virtual adapter's interface (whose ARP/ND traffic the filter bridges to
//! the wire), then reports the result here. Frames to an unresolved
//! address are dropped; the RC transport and the CM retransmit. Fixed
//! size, no allocation after creation: safe at DISPATCH_LEVEL.

use core::net::IpAddr;

use roce::time::Instant;

/// Entries kept (least recently resolved is replaced).
pub const ENTRIES: usize = 32;
/// A resolved entry is trusted this long, then resolved again.
pub const REACHABLE_NS: u64 = 30_000_000_000;
/// A failed resolution is retried after this long.
pub const RETRY_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Queued for (or being) resolved since the instant.
    Resolving(Instant),
    /// Resolved at the instant.
    Reachable([u8; 6], Instant),
    /// Failed at the instant.
    Failed(Instant),
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this MAC.
    Hit([u8; 6]),
    /// Unknown: drop the frame; the shell must resolve (a work item).
    Resolve,
    /// A resolution is under way or recently failed: drop the frame.
    Wait,
}

/// The cache.
#[derive(Debug, Clone)]
pub struct Neighbors {
    entries: [(Option<IpAddr>, State); ENTRIES],
}

impl Default for Neighbors {
    fn default() -> Self {
        Neighbors::new_const()
    }
}

fn at(i: Instant) -> u64 {
    i.as_nanos()
}

impl Neighbors {
    /// An empty cache (usable in a `static`).
    pub const fn new_const() -> Neighbors {
        Neighbors {
            entries: [(None, State::Free); ENTRIES],
        }
    }

    /// The MAC of `ip`, or what to do.
    pub fn lookup(&mut self, ip: IpAddr, now: Instant) -> Lookup {
        let n = at(now);
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == Some(ip)) {
            return match e.1 {
                State::Reachable(mac, t) if n.saturating_sub(at(t)) < REACHABLE_NS => {
                    Lookup::Hit(mac)
                }
                State::Resolving(t) | State::Failed(t) if n.saturating_sub(at(t)) < RETRY_NS => {
                    Lookup::Wait
                }
                _ => {
                    e.1 = State::Resolving(now);
                    Lookup::Resolve
                }
            };
        }
        let slot = self.victim();
        if let Some(e) = self.entries.get_mut(slot) {
            *e = (Some(ip), State::Resolving(now));
        }
        Lookup::Resolve
    }

    fn victim(&self) -> usize {
        let age = |s: &State| match *s {
            State::Free => 0,
            State::Failed(t) => 1 + at(t),
            State::Reachable(_, t) => (1 << 62) + at(t) / 4,
            State::Resolving(t) => (1 << 63) + at(t) / 4,
        };
        self.entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| age(&e.1))
            .map_or(0, |(i, _)| i)
    }

    /// The OS resolved `ip`.
    pub fn resolved(&mut self, ip: IpAddr, mac: [u8; 6], now: Instant) {
        match self.entries.iter_mut().find(|e| e.0 == Some(ip)) {
            Some(e) => e.1 = State::Reachable(mac, now),
            None => {
                let slot = self.victim();
                if let Some(e) = self.entries.get_mut(slot) {
                    *e = (Some(ip), State::Reachable(mac, now));
                }
            }
        }
    }

    /// The OS could not resolve `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == Some(ip)) {
            e.1 = State::Failed(now);
        }
    }

    /// Forgets everything (address or link change).
    pub fn clear(&mut self) {
        *self = Neighbors::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: u64) -> Instant {
        Instant::from_nanos(ns)
    }

    #[test]
    fn miss_resolve_hit_expire() {
        let mut n = Neighbors::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(n.lookup(ip, t(0)), Lookup::Resolve);
        assert_eq!(
            n.lookup(ip, t(10)),
            Lookup::Wait,
            "one resolution at a time"
        );
        n.resolved(ip, [1; 6], t(20));
        assert_eq!(n.lookup(ip, t(30)), Lookup::Hit([1; 6]));
        assert_eq!(
            n.lookup(ip, t(20 + REACHABLE_NS)),
            Lookup::Resolve,
            "stale: resolve again"
        );
    }

    #[test]
    fn failure_backs_off() {
        let mut n = Neighbors::default();
        let ip: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(n.lookup(ip, t(0)), Lookup::Resolve);
        n.failed(ip, t(5));
        assert_eq!(n.lookup(ip, t(6)), Lookup::Wait);
        assert_eq!(n.lookup(ip, t(5 + RETRY_NS)), Lookup::Resolve);
    }

    #[test]
    fn full_cache_replaces_oldest_failure_first() {
        let mut n = Neighbors::default();
        for i in 0..ENTRIES as u8 {
            let ip = IpAddr::from([10, 0, 1, i]);
            n.lookup(ip, t(1));
            n.resolved(ip, [i; 6], t(2 + u64::from(i)));
        }
        let dead = IpAddr::from([10, 0, 1, 7]);
        n.failed(dead, t(100));
        let new = IpAddr::from([10, 0, 2, 1]);
        assert_eq!(n.lookup(new, t(200)), Lookup::Resolve);
        assert_eq!(
            n.lookup(dead, t(201)),
            Lookup::Resolve,
            "the failed entry was replaced"
        );
        assert_eq!(
            n.lookup(IpAddr::from([10, 0, 1, 3]), t(202)),
            Lookup::Hit([3; 6])
        );
        n.clear();
        assert_eq!(n.lookup(new, t(300)), Lookup::Resolve);
    }
}
