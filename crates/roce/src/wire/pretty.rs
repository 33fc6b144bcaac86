//! Packets that print themselves: one line per packet, in the spirit of a
//! capture tool's summary, for simulation traces and failing-test output.
//!
//! `Display` on the parsed forms ([`PacketRepr`], [`CmMad`],
//! [`DatagramRepr`], [`FrameRepr`]) prints what they hold; [`Pretty`] takes
//! raw bytes, parses them as far as they go and prints either the summary or
//! the layer and error at which parsing stopped, so a malformed packet still
//! reads as a line rather than as a panic or a hex dump.
//!
//! Field names follow IBA Vol 1 ch. 9 (BTH and extension headers), ch. 12
//! (CM messages) and ch. 13 (MAD header).

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::aeth::{NakCode, Syndrome};
use super::cm::{CmMad, CmMessage};
use super::frame::{DatagramRepr, FrameRepr, IpRepr};
use super::mad::MAD_LEN;
use super::opcode::{Opcode, Transport};
use super::packet::{self, PacketRepr};
use super::{Error, Result};

/// Writes a CamelCase identifier as SNAKE_CASE capitals
/// (`RdmaWriteFirst` → `RDMA_WRITE_FIRST`).
struct ShoutingSnake<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Write for ShoutingSnake<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c.is_ascii_uppercase() && !self.first {
                self.out.write_char('_')?;
            }
            self.first = false;
            self.out.write_char(c.to_ascii_uppercase())?;
        }
        Ok(())
    }
}

impl fmt::Display for Opcode {
    /// `RC RDMA_WRITE_FIRST`, `UD SEND_ONLY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, skip) = match self.transport() {
            Transport::Rc => ("RC", 2),
            Transport::Uc => ("UC", 2),
            Transport::Ud => ("UD", 2),
        };
        write!(f, "{transport} ")?;
        let mut name = ShoutingSnake {
            out: f,
            first: true,
        };
        // The Debug name is the variant's name: the transport prefix, then
        // the operation in CamelCase.
        let mut tail = TailWriter {
            inner: &mut name,
            skip,
        };
        write!(tail, "{self:?}")
    }
}

/// Drops the first `skip` characters written through it.
struct TailWriter<'a, W: Write> {
    inner: &'a mut W,
    skip: usize,
}

impl<W: Write> Write for TailWriter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.skip > 0 {
                self.skip -= 1;
            } else {
                self.inner.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for NakCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NakCode::PsnSequenceError => f.write_str("PSN_SEQUENCE_ERROR"),
            NakCode::InvalidRequest => f.write_str("INVALID_REQUEST"),
            NakCode::RemoteAccessError => f.write_str("REMOTE_ACCESS_ERROR"),
            NakCode::RemoteOperationalError => f.write_str("REMOTE_OPERATIONAL_ERROR"),
            NakCode::InvalidRdRequest => f.write_str("INVALID_RD_REQUEST"),
            NakCode::Reserved(v) => write!(f, "RESERVED({v})"),
        }
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Syndrome::Ack { credits } => write!(f, "ACK credits={credits}"),
            Syndrome::RnrNak { timer } => write!(f, "RNR_NAK timer={timer}"),
            Syndrome::Nak(code) => write!(f, "NAK {code}"),
            Syndrome::Reserved(v) => write!(f, "RESERVED(0x{v:02x})"),
        }
    }
}

impl fmt::Display for PacketRepr<'_> {
    /// `RC RDMA_WRITE_FIRST qp=0x000011 psn=1234 A reth(va=0x1000
    /// rkey=0x00000102 len=65536) payload=1024`; a CM MAD on QP1 is decoded
    /// after the headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.bth;
        write!(f, "{} qp=0x{:06x} psn={}", b.opcode, b.dest_qp, b.psn)?;
        if b.ack_req {
            f.write_str(" A")?;
        }
        if b.solicited {
            f.write_str(" S")?;
        }
        if b.fecn || b.becn {
            write!(
                f,
                " ecn({}{})",
                if b.fecn { "F" } else { "" },
                if b.becn { "B" } else { "" }
            )?;
        }
        if let Some(d) = &self.deth {
            write!(f, " deth(qkey=0x{:08x} src_qp=0x{:06x})", d.qkey, d.src_qp)?;
        }
        if let Some(r) = &self.reth {
            write!(
                f,
                " reth(va=0x{:x} rkey=0x{:08x} len={})",
                r.virtual_addr, r.rkey, r.dma_len
            )?;
        }
        if let Some(a) = &self.atomic_eth {
            write!(
                f,
                " atomic(va=0x{:x} rkey=0x{:08x} swap_add=0x{:x} compare=0x{:x})",
                a.virtual_addr, a.rkey, a.swap_add, a.compare
            )?;
        }
        if let Some(a) = &self.aeth {
            write!(f, " aeth({} msn={})", a.syndrome, a.msn)?;
        }
        if let Some(a) = &self.atomic_ack_eth {
            write!(f, " orig=0x{:x}", a.orig_value)?;
        }
        if let Some(i) = &self.immdt {
            write!(f, " imm=0x{:08x}", i.imm_data)?;
        }
        if let Some(i) = &self.ieth {
            write!(f, " inv_rkey=0x{:08x}", i.rkey)?;
        }
        // QP1 carries the GSI's MADs (IBA Vol 1 ch. 13.5): decode a CM one.
        if b.dest_qp == 1 && self.deth.is_some() && self.payload.len() == MAD_LEN {
            return match CmMad::parse(self.payload) {
                Ok(mad) => write!(f, " {mad}"),
                Err(e) => write!(f, " MAD ({e})"),
            };
        }
        if b.opcode.has_payload() {
            write!(f, " payload={}", self.payload.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for CmMad {
    /// `CM REQ tid=0x… comm=0x… qpn=0x… psn=… mtu=…`, with each message's
    /// identifying fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CM {} tid=0x{:x}", self.message, self.transaction_id)?;
        if self.status != 0 {
            write!(f, " status=0x{:04x}", self.status)?;
        }
        Ok(())
    }
}

impl fmt::Display for CmMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmMessage::Req(r) => write!(
                f,
                "REQ comm=0x{:08x} sid=0x{:x} qpn=0x{:06x} psn={} mtu={} retry={} rnr={}",
                r.local_comm_id,
                r.service_id,
                r.local_qpn,
                r.starting_psn,
                r.path_mtu,
                r.retry_count,
                r.rnr_retry_count
            ),
            CmMessage::Mra(r) => write!(
                f,
                "MRA comm=0x{:08x} remote=0x{:08x} of={} timeout={}",
                r.local_comm_id, r.remote_comm_id, r.message_mraed.0, r.service_timeout
            ),
            CmMessage::Rej(r) => write!(
                f,
                "REJ comm=0x{:08x} remote=0x{:08x} of={} reason={}",
                r.local_comm_id, r.remote_comm_id, r.message_rejected.0, r.reason.0
            ),
            CmMessage::Rep(r) => write!(
                f,
                "REP comm=0x{:08x} remote=0x{:08x} qpn=0x{:06x} psn={}",
                r.local_comm_id, r.remote_comm_id, r.local_qpn, r.starting_psn
            ),
            CmMessage::Rtu(r) => write!(
                f,
                "RTU comm=0x{:08x} remote=0x{:08x}",
                r.local_comm_id, r.remote_comm_id
            ),
            CmMessage::Dreq(r) => write!(
                f,
                "DREQ comm=0x{:08x} remote=0x{:08x} qpn=0x{:06x}",
                r.local_comm_id, r.remote_comm_id, r.remote_qpn
            ),
            CmMessage::Drep(r) => write!(
                f,
                "DREP comm=0x{:08x} remote=0x{:08x}",
                r.local_comm_id, r.remote_comm_id
            ),
            CmMessage::SidrReq(r) => write!(
                f,
                "SIDR_REQ id=0x{:08x} sid=0x{:x}",
                r.request_id, r.service_id
            ),
            CmMessage::SidrRep(r) => write!(
                f,
                "SIDR_REP id=0x{:08x} status={} qpn=0x{:06x}",
                r.request_id, r.status.0, r.qpn
            ),
            CmMessage::Lap(r) => write!(
                f,
                "LAP comm=0x{:08x} remote=0x{:08x}",
                r.local_comm_id, r.remote_comm_id
            ),
            CmMessage::Apr(r) => write!(
                f,
                "APR comm=0x{:08x} remote=0x{:08x} status={}",
                r.local_comm_id, r.remote_comm_id, r.ap_status.0
            ),
        }
    }
}

fn ip_addrs(ip: &IpRepr) -> (IpAddr, IpAddr) {
    match ip {
        IpRepr::Ipv4(r) => (
            IpAddr::V4(Ipv4Addr::from(r.src_addr)),
            IpAddr::V4(Ipv4Addr::from(r.dst_addr)),
        ),
        IpRepr::Ipv6(r) => (
            IpAddr::V6(Ipv6Addr::from(r.src_addr)),
            IpAddr::V6(Ipv6Addr::from(r.dst_addr)),
        ),
    }
}

impl fmt::Display for DatagramRepr<'_> {
    /// `10.0.0.1.49152 > 10.0.0.2.4791: <packet>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (src, dst) = ip_addrs(&self.ip);
        write!(
            f,
            "{src}.{} > {dst}.{}: {}",
            self.udp.src_port, self.udp.dst_port, self.packet
        )
    }
}

impl fmt::Display for FrameRepr<'_> {
    /// The datagram's line (the Ethernet addresses add nothing a reader of
    /// a RoCE trace needs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.datagram.fmt(f)
    }
}

/// Which layer a byte string starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Frame,
    Datagram,
    Packet,
}

/// Raw bytes that print as a one-line summary, or as the layer and error
/// at which they stop parsing: `Pretty::packet(udp_payload)` in a trace.
#[derive(Debug, Clone, Copy)]
pub struct Pretty<'a> {
    layer: Layer,
    bytes: &'a [u8],
}

impl<'a> Pretty<'a> {
    /// An Ethernet frame.
    pub const fn frame(bytes: &'a [u8]) -> Self {
        Pretty {
            layer: Layer::Frame,
            bytes,
        }
    }

    /// An IP datagram.
    pub const fn datagram(bytes: &'a [u8]) -> Self {
        Pretty {
            layer: Layer::Datagram,
            bytes,
        }
    }

    /// A transport packet (a UDP payload to port 4791, ICRC included and
    /// not checked: whoever prints it may not know the IP header the ICRC
    /// covers).
    pub const fn packet(bytes: &'a [u8]) -> Self {
        Pretty {
            layer: Layer::Packet,
            bytes,
        }
    }
}

/// A transport packet's one-line summary, as a `String` (the shape a
/// simulator's trace describer takes).
pub fn packet_summary(bytes: &[u8]) -> alloc::string::String {
    use alloc::string::ToString;
    Pretty::packet(bytes).to_string()
}

fn parse_packet(bytes: &[u8]) -> Result<PacketRepr<'_>> {
    PacketRepr::parse(&packet::Packet::new_checked(bytes)?)
}

impl fmt::Display for Pretty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = |f: &mut fmt::Formatter<'_>, what: &str, e: Error| {
            write!(f, "malformed {what} ({e}, {} bytes)", self.bytes.len())
        };
        match self.layer {
            Layer::Frame => match FrameRepr::parse(self.bytes) {
                Ok(r) => r.fmt(f),
                Err(e) => err(f, "frame", e),
            },
            Layer::Datagram => match DatagramRepr::parse(self.bytes) {
                Ok(r) => r.fmt(f),
                Err(e) => err(f, "datagram", e),
            },
            Layer::Packet => match parse_packet(self.bytes) {
                Ok(r) => r.fmt(f),
                Err(e) => err(f, "packet", e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::aeth::AethRepr;
    use crate::wire::bth::BthRepr;
    use crate::wire::reth::RethRepr;
    use alloc::string::ToString;

    #[test]
    fn opcodes_print_in_capitals_with_their_transport() {
        assert_eq!(Opcode::RcRdmaWriteFirst.to_string(), "RC RDMA_WRITE_FIRST");
        assert_eq!(Opcode::UdSendOnly.to_string(), "UD SEND_ONLY");
        assert_eq!(Opcode::RcAcknowledge.to_string(), "RC ACKNOWLEDGE");
    }

    #[test]
    fn a_write_prints_its_headers_and_payload_length() {
        let mut bth = BthRepr::new(Opcode::RcRdmaWriteOnly, 0x11, 7);
        bth.ack_req = true;
        let mut p = PacketRepr::new(bth, &[0u8; 64]);
        p.reth = Some(RethRepr {
            virtual_addr: 0x1000,
            rkey: 0x102,
            dma_len: 64,
        });
        assert_eq!(
            p.to_string(),
            "RC RDMA_WRITE_ONLY qp=0x000011 psn=7 A reth(va=0x1000 rkey=0x00000102 len=64) payload=64"
        );
    }

    #[test]
    fn a_nak_names_its_code() {
        let mut p = PacketRepr::new(BthRepr::new(Opcode::RcAcknowledge, 0x12, 9), &[]);
        p.aeth = Some(AethRepr {
            syndrome: Syndrome::Nak(NakCode::PsnSequenceError),
            msn: 3,
        });
        assert_eq!(
            p.to_string(),
            "RC ACKNOWLEDGE qp=0x000012 psn=9 aeth(NAK PSN_SEQUENCE_ERROR msn=3)"
        );
    }

    #[test]
    fn bytes_that_do_not_parse_say_where_they_stop() {
        assert_eq!(
            Pretty::packet(&[0u8; 3]).to_string(),
            "malformed packet (buffer truncated, 3 bytes)"
        );
    }
}
