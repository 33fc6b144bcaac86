//! What the NDIS miniport shell needs from the core to answer the NDK OIDs
//! (ntddndis.h NDK OIDs–8.6, the NDKPI enabling and disabling NDK functionality page): a snapshot of one
//! adapter's connections and local endpoints, the counters behind Windows'
//! "RDMA Activity" performance counters, and the byte-exact encoding of
//! OID_NDK_STATISTICS, OID_NDK_CONNECTIONS and OID_NDK_LOCAL_ENDPOINTS
//! answers and of the OID_NDK_SET_STATE argument.
//!
//! The encoders write into the OID's InformationBuffer as bytes (little
//! endian, the x64 offsets of the ndkpi structs), so they never assume the
//! buffer's alignment, and report the size needed when it is too small
//! (NDIS_STATUS_BUFFER_TOO_SHORT with BytesNeeded).

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};
use core::net::SocketAddr;

use ndkpi::*;
use roce::rc::Memory;

use crate::connector::ConnectorState;
use crate::provider::Provider;

/// One adapter's connection-level view, taken under its lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// (local, remote) of every connector whose connection is established.
    pub connections: Vec<(SocketAddr, SocketAddr)>,
    /// Bound listeners and shared endpoints (OID_NDK_LOCAL_ENDPOINTS lists
    /// these two kinds; connectors appear as connections once established).
    pub endpoints: Vec<LocalEndpoint>,
}

/// One entry of OID_NDK_LOCAL_ENDPOINTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub addr: SocketAddr,
    /// NDIS_NDK_LOCAL_ENDPOINT_ENTRY.Listener: TRUE for a listener, FALSE
    /// for a shared endpoint (the NDIS_NDK_LOCAL_ENDPOINT_ENTRY reference
    /// page).
    pub listener: bool,
}

impl Snapshot {
    /// Takes the snapshot of `p`. Allocates: call it from the OID path,
    /// never from the data path.
    pub fn of<M: Memory>(p: &Provider<M>) -> Snapshot {
        let mut s = Snapshot::default();
        for id in p.object_ids() {
            if let Some(c) = p.connector(id) {
                if c.state() == ConnectorState::Connected
                    && let Some(pair) = p.connector_addresses(id)
                {
                    s.connections.push(pair);
                }
            } else if let Some(addr) = p.local_address(id) {
                s.endpoints.push(LocalEndpoint {
                    addr,
                    listener: p.is_listener(id),
                });
            }
        }
        s
    }
}

/// The counters a miniport accumulates for OID_NDK_STATISTICS: connection
/// events from the core, frames and octets from the datagram path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub connect: u64,
    pub accept: u64,
    pub connect_failure: u64,
    pub connection_error: u64,
    pub cq_error: u64,
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_frames: u64,
    pub out_frames: u64,
}

impl Counters {
    /// A RoCEv2 frame of `len` bytes arrived.
    pub fn received(&mut self, len: usize) {
        self.in_frames = self.in_frames.wrapping_add(1);
        self.in_octets = self.in_octets.wrapping_add(len as u64);
    }

    /// A RoCEv2 frame of `len` bytes left.
    pub fn sent(&mut self, len: usize) {
        self.out_frames = self.out_frames.wrapping_add(1);
        self.out_octets = self.out_octets.wrapping_add(len as u64);
    }

    /// The NDIS counter set; `active` is the number of established
    /// connections now (from the snapshots).
    pub fn counter_set(&self, active: u64) -> NDIS_NDK_PERFORMANCE_COUNTERS {
        NDIS_NDK_PERFORMANCE_COUNTERS {
            Connect: self.connect,
            Accept: self.accept,
            ConnectFailure: self.connect_failure,
            ConnectionError: self.connection_error,
            ActiveConnection: active,
            CQError: self.cq_error,
            RDMAInOctets: self.in_octets,
            RDMAOutOctets: self.out_octets,
            RDMAInFrames: self.in_frames,
            RDMAOutFrames: self.out_frames,
            ..Default::default()
        }
    }
}

/// `NDIS_NDK_CAPABILITIES.MissingCounterMask`: the counters ndkrs does not
/// maintain (the core does not report connection events to the shell yet,
/// so Connect, Accept, ConnectFailure, ConnectionError and CQError stay 0
/// and are declared missing; ActiveConnection comes from the snapshots and
/// the four traffic counters from the datagram path).
pub const MISSING_COUNTERS: u64 = {
    type C = NDIS_NDK_PERFORMANCE_COUNTERS;
    let mut mask = 0;
    mask |= NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, Connect));
    mask |= NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, Accept));
    mask |= NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, ConnectFailure));
    mask |= NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, ConnectionError));
    mask |= NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, CQError));
    // Reserved01..Reserved20 (bits 5..=24).
    mask | (((1u64 << 20) - 1) << 5)
};

/// Why an encoder did not write: the buffer holds fewer than `needed` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooShort {
    pub needed: usize,
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn put_header(buf: &mut [u8], revision: u8, size: usize) {
    let size = size.min(0xFFFF) as u16;
    put(buf, 0, &[NDIS_OBJECT_TYPE_DEFAULT, revision]);
    put(buf, 2, &size.to_le_bytes());
}

/// `SOCKADDR_INET` as its 28 bytes (family little endian, port and address
/// in network order, AF_INET6 = 23).
pub fn sockaddr_inet_bytes(a: SocketAddr) -> [u8; 28] {
    let mut b = [0u8; 28];
    match a {
        SocketAddr::V4(v4) => {
            b[..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            b[..2].copy_from_slice(&AF_INET6.to_le_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_le_bytes());
        }
    }
    b
}

/// Writes NDIS_NDK_STATISTICS_INFO; returns the bytes written.
pub fn write_statistics(
    counters: &NDIS_NDK_PERFORMANCE_COUNTERS,
    buf: &mut [u8],
) -> Result<usize, TooShort> {
    let size = size_of::<NDIS_NDK_STATISTICS_INFO>();
    let Some(out) = buf.get_mut(..size) else {
        return Err(TooShort { needed: size });
    };
    out.fill(0);
    put_header(
        buf,
        NDIS_NDK_STATISTICS_INFO_REVISION_1,
        NDIS_SIZEOF_NDK_STATISTICS_INFO_REVISION_1 as usize,
    );
    let base = offset_of!(NDIS_NDK_STATISTICS_INFO, CounterSet);
    let c = counters;
    let values = [
        c.Connect,
        c.Accept,
        c.ConnectFailure,
        c.ConnectionError,
        c.ActiveConnection,
        c.Reserved01,
        c.Reserved02,
        c.Reserved03,
        c.Reserved04,
        c.Reserved05,
        c.Reserved06,
        c.Reserved07,
        c.Reserved08,
        c.Reserved09,
        c.Reserved10,
        c.Reserved11,
        c.Reserved12,
        c.Reserved13,
        c.Reserved14,
        c.Reserved15,
        c.Reserved16,
        c.Reserved17,
        c.Reserved18,
        c.Reserved19,
        c.Reserved20,
        c.CQError,
        c.RDMAInOctets,
        c.RDMAOutOctets,
        c.RDMAInFrames,
        c.RDMAOutFrames,
    ];
    for (i, v) in values.iter().enumerate() {
        put(buf, base + 8 * i, &v.to_le_bytes());
    }
    Ok(size)
}

/// Writes NDIS_NDK_CONNECTIONS for `connections` (kernel consumers:
/// UserModeOwner FALSE, no TCP mapping); returns the bytes written.
pub fn write_connections(
    connections: &[(SocketAddr, SocketAddr)],
    buf: &mut [u8],
) -> Result<usize, TooShort> {
    let n = u32::try_from(connections.len()).unwrap_or(u32::MAX);
    let size = NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1(n).unwrap_or(usize::MAX);
    let Some(out) = buf.get_mut(..size) else {
        return Err(TooShort { needed: size });
    };
    out.fill(0);
    put_header(buf, NDIS_NDK_CONNECTIONS_REVISION_1, size);
    put(
        buf,
        offset_of!(NDIS_NDK_CONNECTIONS, Count),
        &n.to_le_bytes(),
    );
    let base = offset_of!(NDIS_NDK_CONNECTIONS, Connections);
    let entry = size_of::<NDIS_NDK_CONNECTION_ENTRY>();
    for (i, (local, remote)) in connections.iter().enumerate() {
        let at = base + i * entry;
        put(
            buf,
            at + offset_of!(NDIS_NDK_CONNECTION_ENTRY, Local),
            &sockaddr_inet_bytes(*local),
        );
        put(
            buf,
            at + offset_of!(NDIS_NDK_CONNECTION_ENTRY, Remote),
            &sockaddr_inet_bytes(*remote),
        );
    }
    Ok(size)
}

/// Writes NDIS_NDK_LOCAL_ENDPOINTS for `endpoints` (kernel consumers:
/// UserModeOwner FALSE, no TCP mapping); returns the bytes written.
pub fn write_local_endpoints(
    endpoints: &[LocalEndpoint],
    buf: &mut [u8],
) -> Result<usize, TooShort> {
    let n = u32::try_from(endpoints.len()).unwrap_or(u32::MAX);
    let size = NDIS_SIZEOF_NDK_LOCAL_ENDPOINTS_REVISION_1(n).unwrap_or(usize::MAX);
    let Some(out) = buf.get_mut(..size) else {
        return Err(TooShort { needed: size });
    };
    out.fill(0);
    put_header(buf, NDIS_NDK_LOCAL_ENDPOINTS_REVISION_1, size);
    put(
        buf,
        offset_of!(NDIS_NDK_LOCAL_ENDPOINTS, Count),
        &n.to_le_bytes(),
    );
    let base = offset_of!(NDIS_NDK_LOCAL_ENDPOINTS, LocalEndpoints);
    let entry = size_of::<NDIS_NDK_LOCAL_ENDPOINT_ENTRY>();
    for (i, e) in endpoints.iter().enumerate() {
        let at = base + i * entry;
        put(
            buf,
            at + offset_of!(NDIS_NDK_LOCAL_ENDPOINT_ENTRY, Local),
            &sockaddr_inet_bytes(e.addr),
        );
        put(
            buf,
            at + offset_of!(NDIS_NDK_LOCAL_ENDPOINT_ENTRY, Listener),
            &[if e.listener { TRUE } else { FALSE }],
        );
    }
    Ok(size)
}

/// OID_NDK_SET_STATE's argument: one BOOLEAN.
pub fn read_set_state(buf: &[u8]) -> Result<bool, TooShort> {
    match buf.first() {
        Some(b) => Ok(*b != 0),
        None => Err(TooShort { needed: 1 }),
    }
}

/// NDIS_NDK_CAPABILITIES for the adapter-wide limits of `info` (one
/// provider per open NDK adapter: the adapter-wide limits are the
/// per-adapter ones; read limits 0 = no adapter-wide limit).
pub fn capabilities(
    info: *mut NDK_ADAPTER_INFO,
    limits: &crate::provider::Limits,
) -> NDIS_NDK_CAPABILITIES {
    NDIS_NDK_CAPABILITIES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NDIS_NDK_CAPABILITIES_REVISION_1,
            Size: NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1,
        },
        Flags: 0,
        MaxQpCount: limits.max_qp_depth.max(1),
        MaxCqCount: limits.max_qp_depth.max(1),
        MaxMrCount: limits.max_qp_depth.max(1),
        MaxPdCount: limits.max_qp_depth.max(1),
        MaxInboundReadLimit: 0,
        MaxOutboundReadLimit: 0,
        MaxMwCount: 0,
        MaxSrqCount: 0,
        MissingCounterMask: MISSING_COUNTERS,
        NdkInfo: info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::from(a).into(), port)
    }

    #[test]
    fn statistics_layout() {
        let mut c = Counters::default();
        c.received(100);
        c.sent(60);
        c.sent(40);
        let set = c.counter_set(3);
        let mut buf = [0xAAu8; 0x100];
        assert_eq!(
            write_statistics(&set, &mut buf[..0xF7]),
            Err(TooShort { needed: 0xF8 })
        );
        assert_eq!(write_statistics(&set, &mut buf), Ok(0xF8));
        assert_eq!(&buf[..4], &[0x80, 1, 0xF8, 0]);
        let at = |i: usize| u64::from_le_bytes(buf[8 + 8 * i..16 + 8 * i].try_into().unwrap());
        assert_eq!(at(4), 3); // ActiveConnection
        assert_eq!(at(26), 100); // RDMAInOctets
        assert_eq!(at(27), 100); // RDMAOutOctets
        assert_eq!(at(28), 1);
        assert_eq!(at(29), 2);
        assert_eq!(buf[0xF8], 0xAA, "nothing written past the struct");
    }

    #[test]
    fn connections_layout() {
        let pairs = [
            (v4([10, 0, 0, 1], 445), v4([10, 0, 0, 2], 50000)),
            (
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 445, 0, 7)),
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 7)),
            ),
        ];
        let mut small = [0u8; 0x50];
        assert_eq!(
            write_connections(&pairs, &mut small),
            Err(TooShort { needed: 0x90 })
        );
        let mut buf = [0u8; 0x90];
        assert_eq!(write_connections(&pairs, &mut buf), Ok(0x90));
        assert_eq!(&buf[..4], &[0x80, 1, 0x90, 0]);
        assert_eq!(u32::from_le_bytes(buf[8..12].try_into().unwrap()), 2);
        // Entry 0, Local: AF_INET, port 445 big endian, 10.0.0.1.
        assert_eq!(&buf[0x10..0x18], &[2, 0, 0x01, 0xBD, 10, 0, 0, 1]);
        // Entry 0, Remote at 0x1C.
        assert_eq!(
            &buf[0x10 + 0x1C..0x10 + 0x24],
            &[2, 0, 0xC3, 0x50, 10, 0, 0, 2]
        );
        // Entry 1, Local: AF_INET6 = 23, ::1, scope 7.
        assert_eq!(&buf[0x50..0x52], &[23, 0]);
        assert_eq!(buf[0x50 + 8 + 15], 1);
        assert_eq!(&buf[0x50 + 24..0x50 + 28], &[7, 0, 0, 0]);
        assert_eq!(write_connections(&[], &mut buf), Ok(0x10));
    }

    #[test]
    fn local_endpoints_layout() {
        let eps = [
            LocalEndpoint {
                addr: v4([192, 168, 1, 5], 445),
                listener: true,
            },
            LocalEndpoint {
                addr: v4([192, 168, 1, 5], 50001),
                listener: false,
            },
        ];
        let mut small = [0xAAu8; 0x34];
        assert_eq!(
            write_local_endpoints(&eps, &mut small),
            Err(TooShort { needed: 0x58 })
        );
        let mut buf = [0xAAu8; 0x60];
        assert_eq!(write_local_endpoints(&eps, &mut buf), Ok(0x58));
        assert_eq!(&buf[..4], &[0x80, 1, 0x58, 0]);
        assert_eq!(u32::from_le_bytes(buf[8..12].try_into().unwrap()), 2);
        assert_eq!(buf[12], 0, "not mapped to TCP endpoints");
        assert_eq!(&buf[0x10..0x18], &[2, 0, 0x01, 0xBD, 192, 168, 1, 5]);
        assert_eq!(buf[0x10 + 0x1C], 0, "kernel owner");
        assert_eq!(buf[0x10 + 0x1D], 1, "listener");
        // Entry 1 at 0x10 + 0x24: a shared endpoint.
        assert_eq!(&buf[0x34..0x3C], &[2, 0, 0xC3, 0x51, 192, 168, 1, 5]);
        assert_eq!(buf[0x34 + 0x1C], 0, "kernel owner");
        assert_eq!(buf[0x34 + 0x1D], 0, "shared endpoint: not a listener");
        assert_eq!(buf[0x58], 0xAA, "nothing written past the entries");
    }

    #[test]
    fn set_state_and_mask() {
        assert_eq!(read_set_state(&[1]), Ok(true));
        assert_eq!(read_set_state(&[0, 9]), Ok(false));
        assert_eq!(read_set_state(&[]), Err(TooShort { needed: 1 }));
        // The four traffic counters and ActiveConnection are reported.
        assert_eq!(MISSING_COUNTERS & (0b1111 << 26), 0);
        assert_eq!(MISSING_COUNTERS & (1 << 4), 0);
        assert_eq!(MISSING_COUNTERS & (1 << 25), 1 << 25);
        assert_eq!(MISSING_COUNTERS.count_ones(), 25);
    }

    #[test]
    fn snapshot_lists_listeners_shared_endpoints_and_established_connections() {
        use crate::provider::{Limits, ProviderConfig};
        use roce::device::DeviceConfig;
        #[derive(Debug)]
        struct NoMem;
        impl Memory for NoMem {
            fn read(&self, _: u64, _: &mut [u8]) -> bool {
                false
            }
            fn write(&self, _: u64, _: &[u8]) -> bool {
                false
            }
        }
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = Provider::new(
            ProviderConfig {
                device: DeviceConfig {
                    ip_mode: roce::framing::IpMode::Raw,
                    udp_source_port: 4791,
                    ca_guid: 1,
                    cm: Default::default(),
                    rc: Default::default(),
                    seed: 1,
                },
                addresses: alloc::vec![ip.into()],
                path_mtu: 1024,
                version: NDK_VERSION_1_2,
                limits: Limits::default(),
            },
            NoMem,
        );
        assert_eq!(Snapshot::of(&p), Snapshot::default());
        let l = p.create_listener(crate::upcall::Callback::NONE);
        let bound = p.listen(l, v4([10, 0, 0, 1], 445)).unwrap();
        let _idle = p.create_connector();
        let shared = p
            .create_shared_endpoint(v4([10, 0, 0, 1], 0))
            .expect("shared endpoint");
        let shared_at = p.local_address(shared).expect("bound");
        let s = Snapshot::of(&p);
        assert_eq!(
            s.endpoints,
            alloc::vec![
                LocalEndpoint {
                    addr: bound,
                    listener: true
                },
                LocalEndpoint {
                    addr: shared_at,
                    listener: false
                },
            ]
        );
        assert!(
            s.connections.is_empty(),
            "an idle connector is no connection"
        );
    }
}
