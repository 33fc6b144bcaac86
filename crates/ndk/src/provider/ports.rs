//! The adapter's local addresses and the ND ports reserved on them by
//! listeners, connectors and shared endpoints.

use alloc::collections::BTreeMap;
use core::net::IpAddr;

use ndkpi::*;
use roce::rc::Memory;

use super::Provider;

/// First ephemeral ND port (the range NdkConnect/NdkListen pick from when
/// given port 0).
const EPHEMERAL_FIRST: u16 = 49152;

impl<M: Memory> Provider<M> {
    /// One of the adapter's own addresses.
    pub(super) fn is_local(&self, ip: IpAddr) -> bool {
        self.config.addresses.contains(&ip)
    }

    /// Reserves `(ip, port)`; port 0 picks an ephemeral one.
    pub(super) fn reserve_port(&mut self, ip: IpAddr, port: u16) -> Result<u16, NTSTATUS> {
        // In use: the same address and port, or the wildcard address of
        // the family on that port, or (for a wildcard request) any address
        // of the family on that port. Direct lookups first: the wildcard
        // scan is the rare case.
        let wildcard = if ip.is_ipv4() {
            IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
        };
        let in_use = |ports: &BTreeMap<(IpAddr, u16), u32>, p: u16| {
            ports.contains_key(&(ip, p))
                || ports.contains_key(&(wildcard, p))
                || (ip.is_unspecified()
                    && ports
                        .keys()
                        .any(|(i, q)| *q == p && i.is_ipv4() == ip.is_ipv4()))
        };
        let port = if port == 0 {
            let start = EPHEMERAL_FIRST + (self.rng.next_u32() % 16384) as u16;
            (0..16384u32)
                .map(|i| {
                    EPHEMERAL_FIRST + ((u32::from(start - EPHEMERAL_FIRST) + i) % 16384) as u16
                })
                .find(|p| !in_use(&self.ports, *p))
                .ok_or(STATUS_TOO_MANY_ADDRESSES)?
        } else if in_use(&self.ports, port) {
            return Err(STATUS_SHARING_VIOLATION);
        } else {
            port
        };
        self.ports.insert((ip, port), 1);
        Ok(port)
    }

    /// One more holder of a reservation that exists.
    pub(super) fn hold_port(&mut self, key: (IpAddr, u16)) {
        if let Some(n) = self.ports.get_mut(&key) {
            *n += 1;
        }
    }

    pub(super) fn release_port(&mut self, key: (IpAddr, u16)) {
        if let Some(n) = self.ports.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.ports.remove(&key);
            }
        }
    }
}
