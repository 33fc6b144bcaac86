//! The rdma_cm layer on top of IB CM (Linux drivers/infiniband/core/cma.c): the service-ID
//! mapping of port spaces and ports, the `cma_hdr` that opens the REQ private
//! data, and the RoCE flow label rdma_cm derives from the ports.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bytes::{fields, fixed_view, put};
use super::{Error, Result};

/// rdma_cm port space (rdma_cm.h `enum rdma_ucm_port_space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpace(pub u16);

impl PortSpace {
    /// IPoIB.
    pub const IPOIB: Self = Self(0x0002);
    /// TCP: the space rping, ucmatose and SMB Direct-style users use.
    pub const TCP: Self = Self(0x0106);
    /// UDP (resolved with SIDR).
    pub const UDP: Self = Self(0x0111);
    /// Native IB.
    pub const IB: Self = Self(0x013F);
}

/// Service IDs owned by rdma_cm: 0x00000000_01xxxxxx (ib_cm.h
/// `IB_CMA_SERVICE_ID` and its mask).
pub const SERVICE_ID_PREFIX: u64 = 0x0000_0000_0100_0000;
/// Mask selecting the rdma_cm prefix of a service ID.
pub const SERVICE_ID_PREFIX_MASK: u64 = 0xFFFF_FFFF_FF00_0000;

/// The service ID rdma_cm listens on and connects to for `port` in `space`:
/// `space << 16 | port` (Linux drivers/infiniband/core/cma.c; e.g. TCP port 7174 ->
/// 0x0000000001061C06).
pub const fn service_id(space: PortSpace, port: u16) -> u64 {
    ((space.0 as u64) << 16) | port as u64
}

/// The port space and port of an rdma_cm service ID, or `None` for a
/// service ID outside the rdma_cm range (the 0x0000000001 prefix).
pub const fn port_of_service_id(service_id: u64) -> Option<(PortSpace, u16)> {
    if service_id & SERVICE_ID_PREFIX_MASK != SERVICE_ID_PREFIX {
        return None;
    }
    Some((PortSpace((service_id >> 16) as u16), service_id as u16))
}

/// The RoCE flow label rdma_cm puts in the REQ primary path when the
/// address gives none (IPv4 always): `(src_port * 31 + dst_port) & 0xFFFFF`
/// (the Linux rxe captures in crates/roce/tests/data and Linux drivers/infiniband/core/cma.c; cma.c `cma_get_roce_udp_flow_label`). Both peers then
/// derive their UDP source port from it (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
pub const fn roce_flow_label(src_port: u16, dst_port: u16) -> u32 {
    (src_port as u32)
        .wrapping_mul(31)
        .wrapping_add(dst_port as u32)
        & 0xF_FFFF
}

/// Size of `cma_hdr`.
pub const HEADER_LEN: usize = 36;
/// The only `cma_version` defined.
pub const CMA_VERSION: u8 = 0x00;

/// Byte offsets in `cma_hdr` (Linux drivers/infiniband/core/cma.c).
mod field {
    pub const CMA_VERSION: usize = 0;
    /// IP version in the high nibble; the low nibble is reserved.
    pub const IP_VERSION: (usize, u8) = (1, 0xF0);
    pub const PORT: usize = 2;
    pub const SRC_ADDR: usize = 4;
    pub const DST_ADDR: usize = 20;
    /// An IPv4 address sits in the last 4 bytes of its 16-byte field.
    pub const IPV4_IN_FIELD: usize = 12;
}

fixed_view!(
    Packet,
    HEADER_LEN,
    "A read/write view of a `cma_hdr` at the start of REQ private data (the \
     REQ private data is 92 bytes; the user's data follows the header)."
);

fields! { Packet;
    /// `cma_version` (0).
    cma_version, set_cma_version: u8(field::CMA_VERSION);
    /// IP version from the high nibble (4 or 6); the setter keeps the low
    /// nibble.
    ip_version, set_ip_version: bits(field::IP_VERSION);
    /// The active side's rdma_cm port (its "source port").
    port, set_port: u16(field::PORT);
    /// The raw 16-byte source address field.
    src_addr_field, set_src_addr_field: [u8; 16](field::SRC_ADDR);
    /// The raw 16-byte destination address field.
    dst_addr_field, set_dst_addr_field: [u8; 16](field::DST_ADDR);
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The user's private data after the header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The user's private data after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// A `cma_hdr`, decoded. Both addresses have the family the header's IP
/// version names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The active side's rdma_cm port.
    pub src_port: u16,
    /// The active side's address.
    pub src_addr: IpAddr,
    /// The address the active side connects to; the passive side checks it
    /// against its listener (Linux drivers/infiniband/core/cma.c).
    pub dst_addr: IpAddr,
}

fn field_to_addr(ip_version: u8, field: [u8; 16]) -> Result<IpAddr> {
    match ip_version {
        4 => {
            let [.., a, b, c, d] = field;
            Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        6 => Ok(IpAddr::V6(Ipv6Addr::from(field))),
        _ => Err(Error::BadVersion),
    }
}

fn addr_to_field(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => {
            let mut field = [0; 16];
            put(&mut field, field::IPV4_IN_FIELD, &v4.octets());
            field
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl Repr {
    /// Decodes a checked header.
    ///
    /// [`Error::BadVersion`] unless `cma_version` is 0 and the IP version 4
    /// or 6. As Linux does, the 12 bytes before an IPv4 address and the low
    /// nibble of the IP version byte are not examined.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.cma_version() != CMA_VERSION {
            return Err(Error::BadVersion);
        }
        let ip_version = packet.ip_version();
        Ok(Repr {
            src_port: packet.port(),
            src_addr: field_to_addr(ip_version, packet.src_addr_field())?,
            dst_addr: field_to_addr(ip_version, packet.dst_addr_field())?,
        })
    }

    /// The IP version the header will carry; [`Error::Malformed`] when the
    /// two addresses are of different families.
    pub fn ip_version(&self) -> Result<u8> {
        match (self.src_addr, self.dst_addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(4),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(6),
            _ => Err(Error::Malformed),
        }
    }

    /// Bytes `emit` writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 36-byte header (padding zero); the payload after it is
    /// left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let ip_version = self.ip_version()?;
        packet
            .buffer
            .as_mut()
            .get_mut(..HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?
            .fill(0);
        packet.set_cma_version(CMA_VERSION);
        packet.set_ip_version(ip_version);
        packet.set_port(self.src_port);
        packet.set_src_addr_field(addr_to_field(self.src_addr));
        packet.set_dst_addr_field(addr_to_field(self.dst_addr));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_id_both_ways() {
        // the Linux rxe captures in crates/roce/tests/data: rping on TCP port 7174, reject on port 9999.
        assert_eq!(service_id(PortSpace::TCP, 7174), 0x0000_0000_0106_1C06);
        assert_eq!(service_id(PortSpace::TCP, 9999), 0x0000_0000_0106_270F);
        assert_eq!(
            port_of_service_id(0x0000_0000_0106_1C06),
            Some((PortSpace::TCP, 7174))
        );
        for space in [PortSpace::TCP, PortSpace::UDP, PortSpace::IB] {
            for port in [0, 1, 4791, 0xFFFF] {
                assert_eq!(
                    port_of_service_id(service_id(space, port)),
                    Some((space, port))
                );
            }
        }
        // Outside the rdma_cm range.
        assert_eq!(port_of_service_id(0x0200_0000_0000_0001), None);
        assert_eq!(port_of_service_id(0x0000_0001_0106_1C06), None);
        assert_eq!(port_of_service_id(0x0000_0000_0000_1C06), None);
    }

    #[test]
    fn flow_label_from_ports() {
        // the Linux rxe captures in crates/roce/tests/data, both rping captures.
        assert_eq!(roce_flow_label(0xE93D, 7174), 0xC5A69);
        assert_eq!(roce_flow_label(0xA343, 7174), 0x3E123);
        assert_eq!(roce_flow_label(0xFFFF, 0xFFFF), (0xFFFF * 32) & 0xF_FFFF);
    }

    #[test]
    fn ipv4_header_round_trip_and_layout() {
        let repr = Repr {
            src_port: 0xE93D,
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 3)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2)),
        };
        let mut buf = [0xEEu8; 92];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        let mut expected = [0u8; HEADER_LEN];
        expected[..4].copy_from_slice(&[0x00, 0x40, 0xE9, 0x3D]);
        expected[16..20].copy_from_slice(&[10, 9, 0, 3]);
        expected[32..36].copy_from_slice(&[10, 9, 0, 2]);
        assert_eq!(buf[..HEADER_LEN], expected);
        assert!(buf[HEADER_LEN..].iter().all(|&b| b == 0xEE));
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Ok(repr));
        assert_eq!(packet.payload().len(), 92 - HEADER_LEN);
    }

    #[test]
    fn ipv6_header_round_trip() {
        let repr = Repr {
            src_port: 1,
            src_addr: IpAddr::V6(Ipv6Addr::new(0xFE80, 0, 0, 0, 1, 2, 3, 4)),
            dst_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xDB8, 0, 0, 0, 0, 0, 9)),
        };
        let mut buf = [0u8; HEADER_LEN];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(buf[1], 0x60);
        assert_eq!(buf[4..6], [0xFE, 0x80]);
        assert_eq!(buf[20..22], [0x20, 0x01]);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn bad_headers() {
        let mut buf = [0u8; HEADER_LEN];
        assert_eq!(Packet::new_checked(&buf[..35]), Err(Error::Truncated));
        buf[1] = 0x40;
        buf[0] = 1;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::BadVersion)
        );
        buf[0] = 0;
        buf[1] = 0x50;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::BadVersion)
        );
        let mixed = Repr {
            src_port: 1,
            src_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        assert_eq!(
            mixed.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
        let fine = Repr {
            dst_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..mixed
        };
        assert_eq!(
            fine.emit(&mut Packet::new_unchecked(&mut buf[..35])),
            Err(Error::BufferTooSmall)
        );
    }
}
