//! A whole RoCEv2 transport packet, i.e. the UDP payload (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c):
//! BTH, the extension headers its opcode dictates (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c), payload, pad
//! (IBA Vol 1 ch. 9 (PadCnt); Linux rxe_hdr.h) and ICRC (IBA Annex A17 (ICRC); Linux rxe_icrc.c). Plus the UDP source-port rules of IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c.
//!
//! [`PacketRepr::parse`] checks structure but not the ICRC, which covers
//! the IP and UDP headers too; [`frame`](super::frame) parses and emits
//! whole datagrams and frames with the ICRC checked and filled.

use super::aeth::{self, AethRepr};
use super::atomic_ack_eth::{self, AtomicAckEthRepr};
use super::atomic_eth::{self, AtomicEthRepr};
use super::bth::{self, BthRepr};
use super::bytes::view;
use super::deth::{self, DethRepr};
use super::icrc::ICRC_LEN;
use super::ieth::{self, IethRepr};
use super::immdt::{self, ImmDtRepr};
use super::opcode::{ExtHeader, Opcode};
use super::reth::{self, RethRepr};
use super::{Error, Result};

/// Pad count for a payload of `len` bytes: enough zero bytes to reach a
/// multiple of 4 (IBA Vol 1 ch. 9 (PadCnt); Linux rxe_hdr.h).
pub const fn pad_count(len: usize) -> u8 {
    // `len.wrapping_neg() & 3` is at most 3, so the cast is lossless.
    (len.wrapping_neg() & 3) as u8
}

/// The smallest RoCEv2 packet: a BTH and an ICRC.
pub const MIN_LEN: usize = bth::HEADER_LEN + ICRC_LEN;

view!(
    Packet,
    "A read-only view of a RoCEv2 packet (the UDP payload)."
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length checks of [`new_checked`](Self::new_checked): the buffer
    /// holds a BTH with a known opcode, the headers that opcode needs, the
    /// pad and an ICRC.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_LEN {
            return Err(Error::Truncated);
        }
        let op = Opcode::from_u8(self.bth().opcode())?;
        if len < op.header_len() + ICRC_LEN {
            return Err(Error::Truncated);
        }
        if usize::from(self.bth().pad_count()) > len - op.header_len() - ICRC_LEN {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The BTH.
    pub fn bth(&self) -> bth::Packet<&[u8]> {
        bth::Packet::new_unchecked(self.buffer.as_ref())
    }

    /// BTH + extension headers, from the opcode (0 for an unknown opcode).
    pub fn header_len(&self) -> usize {
        Opcode::from_u8(self.bth().opcode()).map_or(0, Opcode::header_len)
    }

    /// Bytes between the headers and the ICRC (payload + pad).
    fn body_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        self.header_len()..len.saturating_sub(ICRC_LEN)
    }

    /// The payload, without pad.
    pub fn payload(&self) -> &[u8] {
        let r = self.body_range();
        let end = r.end.saturating_sub(usize::from(self.bth().pad_count()));
        self.buffer.as_ref().get(r.start..end).unwrap_or_default()
    }

    /// The pad bytes.
    pub fn pad(&self) -> &[u8] {
        let r = self.body_range();
        let start = r.end.saturating_sub(usize::from(self.bth().pad_count()));
        self.buffer
            .as_ref()
            .get(start.max(r.start)..r.end)
            .unwrap_or_default()
    }

    /// The ICRC as stored (little-endian on the wire, IBA Annex A17 (ICRC); Linux rxe_icrc.c).
    pub fn icrc(&self) -> u32 {
        super::icrc::split_icrc(self.buffer.as_ref()).map_or(0, |(_, b)| u32::from_le_bytes(b))
    }

    /// Offset of extension header `h`, if the opcode carries it.
    pub fn ext_offset(&self, h: ExtHeader) -> Option<usize> {
        let op = Opcode::from_u8(self.bth().opcode()).ok()?;
        let mut off = bth::HEADER_LEN;
        for &x in op.ext_headers() {
            if x == h {
                return Some(off);
            }
            off += x.len();
        }
        None
    }

    /// The bytes of extension header `h`, if the opcode carries it.
    pub fn ext_bytes(&self, h: ExtHeader) -> Option<&[u8]> {
        let off = self.ext_offset(h)?;
        self.buffer.as_ref().get(off..off + h.len())
    }
}

/// A RoCEv2 packet, owned headers and borrowed payload. Exactly the
/// extension headers the opcode dictates must be `Some` (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketRepr<'a> {
    /// Base transport header.
    pub bth: BthRepr,
    /// UD only.
    pub deth: Option<DethRepr>,
    /// RDMA WRITE First/Only, READ request.
    pub reth: Option<RethRepr>,
    /// Compare & Swap, Fetch & Add.
    pub atomic_eth: Option<AtomicEthRepr>,
    /// ACK, ATOMIC ACK, READ Response First/Last/Only.
    pub aeth: Option<AethRepr>,
    /// ATOMIC ACK.
    pub atomic_ack_eth: Option<AtomicAckEthRepr>,
    /// ... with Immediate.
    pub immdt: Option<ImmDtRepr>,
    /// SEND ... with Invalidate.
    pub ieth: Option<IethRepr>,
    /// The payload, without pad (for QP1: the 256-byte MAD, opaque here).
    pub payload: &'a [u8],
}

impl<'a> PacketRepr<'a> {
    /// A packet with only a BTH and payload; add extension headers by
    /// setting the fields.
    pub const fn new(bth: BthRepr, payload: &'a [u8]) -> Self {
        PacketRepr {
            bth,
            deth: None,
            reth: None,
            atomic_eth: None,
            aeth: None,
            atomic_ack_eth: None,
            immdt: None,
            ieth: None,
            payload,
        }
    }

    /// Parse a RoCEv2 packet (the UDP payload, ICRC included; the ICRC is
    /// not checked here). Errors: `Truncated` for a short buffer,
    /// `UnknownOpcode`, `BadVersion` (TVer != 0), `BadLength` when the pad
    /// count exceeds the payload, a payload-less opcode carries bytes, or
    /// the payload + pad is not a multiple of 4; `Malformed` for non-zero pad
    /// bytes.
    // Inlined into its caller, the repr is built where the caller keeps
    // it (not built, then copied out: 50 instructions a packet).
    #[inline]
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        if buf.len() < MIN_LEN {
            return Err(Error::Truncated);
        }
        let bth_view = bth::Packet::new_checked(buf)?;
        let bth = BthRepr::parse(&bth_view)?;
        let op = bth.opcode;
        let (headers, rest) = buf
            .split_at_checked(op.header_len())
            .ok_or(Error::Truncated)?;
        let body_len = rest.len().checked_sub(ICRC_LEN).ok_or(Error::Truncated)?;
        let body = rest.get(..body_len).ok_or(Error::Truncated)?;
        let pad = usize::from(bth_view.pad_count());
        let payload_len = body_len.checked_sub(pad).ok_or(Error::BadLength)?;
        let (payload, pad_bytes) = body.split_at_checked(payload_len).ok_or(Error::BadLength)?;
        if !op.has_payload() && body_len != 0 {
            return Err(Error::BadLength);
        }
        // IBA: the transport packet is a whole number of 4-byte words, so
        // the pad is exactly what the payload needs (IBA Vol 1 ch. 9 (PadCnt); Linux rxe_hdr.h).
        if usize::from(pad_count(payload_len)) != pad {
            return Err(Error::BadLength);
        }
        if pad_bytes.iter().any(|&b| b != 0) {
            return Err(Error::Malformed);
        }

        let mut repr = PacketRepr::new(bth, payload);
        let mut off = bth::HEADER_LEN;
        for &h in op.ext_headers() {
            let bytes = headers.get(off..off + h.len()).ok_or(Error::Truncated)?;
            match h {
                ExtHeader::Deth => {
                    repr.deth = Some(DethRepr::parse(&deth::Packet::new_checked(bytes)?)?)
                }
                ExtHeader::Reth => {
                    repr.reth = Some(RethRepr::parse(&reth::Packet::new_checked(bytes)?)?)
                }
                ExtHeader::AtomicEth => {
                    repr.atomic_eth = Some(AtomicEthRepr::parse(&atomic_eth::Packet::new_checked(
                        bytes,
                    )?)?)
                }
                ExtHeader::Aeth => {
                    repr.aeth = Some(AethRepr::parse(&aeth::Packet::new_checked(bytes)?)?)
                }
                ExtHeader::AtomicAckEth => {
                    repr.atomic_ack_eth = Some(AtomicAckEthRepr::parse(
                        &atomic_ack_eth::Packet::new_checked(bytes)?,
                    )?)
                }
                ExtHeader::ImmDt => {
                    repr.immdt = Some(ImmDtRepr::parse(&immdt::Packet::new_checked(bytes)?)?)
                }
                ExtHeader::Ieth => {
                    repr.ieth = Some(IethRepr::parse(&ieth::Packet::new_checked(bytes)?)?)
                }
            }
            off += h.len();
        }
        Ok(repr)
    }

    /// The MAD this packet carries if it is a QP1 datagram: a UD SEND Only
    /// to the GSI ([`bth::GSI_QPN`]), whose whole payload is one MAD
    /// (the Linux rxe captures in crates/roce/tests/data, IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h); `None` for any other packet. The MAD is not
    /// checked here: [`CmMad::parse`](super::cm::CmMad::parse) decodes a CM
    /// MAD, [`mad::Packet`](super::mad::Packet) any other.
    pub const fn qp1_mad(&self) -> Option<&'a [u8]> {
        if self.bth.dest_qp == bth::GSI_QPN && matches!(self.bth.opcode, Opcode::UdSendOnly) {
            Some(self.payload)
        } else {
            None
        }
    }

    /// The extension headers set in this repr, as [`Opcode::ext_mask`]
    /// has them.
    fn ext_mask(&self) -> u8 {
        let bit = |set: bool, h: ExtHeader| if set { h.bit() } else { 0 };
        bit(self.deth.is_some(), ExtHeader::Deth)
            | bit(self.reth.is_some(), ExtHeader::Reth)
            | bit(self.atomic_eth.is_some(), ExtHeader::AtomicEth)
            | bit(self.aeth.is_some(), ExtHeader::Aeth)
            | bit(self.atomic_ack_eth.is_some(), ExtHeader::AtomicAckEth)
            | bit(self.immdt.is_some(), ExtHeader::ImmDt)
            | bit(self.ieth.is_some(), ExtHeader::Ieth)
    }

    /// `Malformed` unless exactly the opcode's extension headers are set;
    /// `BadLength` if a payload-less opcode has a payload.
    pub fn check(&self) -> Result<()> {
        let op = self.bth.opcode;
        if self.ext_mask() != op.ext_mask() {
            return Err(Error::Malformed);
        }
        if !op.has_payload() && !self.payload.is_empty() {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Pad bytes this packet carries.
    pub const fn pad_len(&self) -> usize {
        pad_count(self.payload.len()) as usize
    }

    /// Headers + payload + pad + ICRC.
    pub const fn buffer_len(&self) -> usize {
        self.bth.opcode.header_len() + self.payload.len() + self.pad_len() + ICRC_LEN
    }

    /// Write the packet into the front of `buf` and return its length. The
    /// ICRC bytes are written as zero: the ICRC covers the IP and UDP
    /// headers, so fill it with [`icrc::fill`](super::icrc::fill) or emit
    /// through [`frame`](super::frame), which does.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_parts(buf, true)
    }

    /// [`Self::emit`] without the payload: the headers, pad and a zero
    /// ICRC are written and the payload's bytes in `buf` are left as they
    /// are, for a caller that writes the payload there itself (so that a
    /// payload read from memory is copied once, not twice).
    pub fn emit_around_payload(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_parts(buf, false)
    }

    fn emit_parts(&self, buf: &mut [u8], with_payload: bool) -> Result<usize> {
        self.check()?;
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let op = self.bth.opcode;
        let (headers, rest) = out
            .split_at_mut_checked(op.header_len())
            .ok_or(Error::BufferTooSmall)?;
        self.bth.emit(
            &mut bth::Packet::new_unchecked(&mut *headers),
            pad_count(self.payload.len()),
        )?;
        let mut off = bth::HEADER_LEN;
        for &h in op.ext_headers() {
            let b = headers
                .get_mut(off..off + h.len())
                .ok_or(Error::BufferTooSmall)?;
            match h {
                ExtHeader::Deth => {
                    emit_opt(&self.deth, |r| r.emit(&mut deth::Packet::new_unchecked(b)))?
                }
                ExtHeader::Reth => {
                    emit_opt(&self.reth, |r| r.emit(&mut reth::Packet::new_unchecked(b)))?
                }
                ExtHeader::AtomicEth => emit_opt(&self.atomic_eth, |r| {
                    r.emit(&mut atomic_eth::Packet::new_unchecked(b))
                })?,
                ExtHeader::Aeth => {
                    emit_opt(&self.aeth, |r| r.emit(&mut aeth::Packet::new_unchecked(b)))?
                }
                ExtHeader::AtomicAckEth => emit_opt(&self.atomic_ack_eth, |r| {
                    r.emit(&mut atomic_ack_eth::Packet::new_unchecked(b))
                })?,
                ExtHeader::ImmDt => emit_opt(&self.immdt, |r| {
                    r.emit(&mut immdt::Packet::new_unchecked(b))
                })?,
                ExtHeader::Ieth => {
                    emit_opt(&self.ieth, |r| r.emit(&mut ieth::Packet::new_unchecked(b)))?
                }
            }
            off += h.len();
        }
        let (payload, tail) = rest
            .split_at_mut_checked(self.payload.len())
            .ok_or(Error::BufferTooSmall)?;
        if with_payload {
            payload.copy_from_slice(self.payload);
        }
        // Pad and ICRC start as zero (pad bytes are zero by definition).
        tail.fill(0);
        Ok(len)
    }
}

fn emit_opt<R>(r: &Option<R>, f: impl FnOnce(&R) -> Result<()>) -> Result<()> {
    // `check` ran first, so a missing header here would be a logic error;
    // report it as Malformed rather than panic.
    r.as_ref().ok_or(Error::Malformed).and_then(f)
}

/// UDP source port derived from a flow label the way Linux does it
/// (rdma_flow_label_to_udp_sport, IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c): the low 14 bits XOR the
/// top 6 bits of the 20-bit label, in the 0xC000-0xFFFF range.
pub const fn udp_sport_from_flow_label(flow_label: u32) -> u16 {
    let fl = flow_label & 0x000F_FFFF;
    let folded = (fl & 0x3FFF) ^ ((fl & 0x000F_C000) >> 14);
    // At most 0x3FFF, so the cast is lossless.
    0xC000 | folded as u16
}

/// The flow label Linux derives from a QP pair when the path has none
/// (rdma_calc_flow_label): symmetric, so both ends pick the same port.
pub const fn flow_label_from_qpns(local_qpn: u32, remote_qpn: u32) -> u32 {
    let mut v = (local_qpn as u64) * (remote_qpn as u64);
    v ^= v >> 20;
    v ^= v >> 40;
    (v & 0x000F_FFFF) as u32
}

/// UDP source port of a connected QP (rdma_get_udp_sport): from the path's
/// flow label, or from the QP numbers if the label is 0.
pub const fn udp_sport(flow_label: u32, local_qpn: u32, remote_qpn: u32) -> u16 {
    let fl = if flow_label & 0x000F_FFFF == 0 {
        flow_label_from_qpns(local_qpn, remote_qpn)
    } else {
        flow_label
    };
    udp_sport_from_flow_label(fl)
}

/// rxe's UDP source port for a QP before any path is set:
/// 0xC000 + hash_32(qpn, 14), the golden-ratio hash (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c). QP1
/// keeps it for good: 55410 (0xD872) in every captured CM MAD.
pub const fn qp_default_udp_sport(qpn: u32) -> u16 {
    let hash = qpn.wrapping_mul(0x61C8_8647) >> (32 - 14);
    // A 14-bit value, so the cast is lossless.
    0xC000 + hash as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::aeth::Syndrome;
    use crate::wire::bth::GSI_QPN;

    #[test]
    fn sport_from_flow_label_matches_captures() {
        // the Linux rxe captures in crates/roce/tests/data: 0xC5A69 -> 55896 (rping-small), 0x3E123 -> 57644 (rping-multi).
        assert_eq!(udp_sport_from_flow_label(0xC5A69), 55896);
        assert_eq!(udp_sport_from_flow_label(0x3E123), 57644);
        assert_eq!(udp_sport(0xC5A69, 0x11, 0x11), 55896);
        // Only the 20 label bits count.
        assert_eq!(udp_sport_from_flow_label(0xFFF0_0000 | 0xC5A69), 55896);
    }

    #[test]
    fn qp1_default_port_is_55410() {
        assert_eq!(qp_default_udp_sport(1), 55410);
        for qpn in [0u32, 2, 17, 0xFF_FFFF] {
            assert!(qp_default_udp_sport(qpn) >= 0xC000);
        }
    }

    #[test]
    fn zero_flow_label_falls_back_to_qpns_symmetrically() {
        let a = udp_sport(0, 0x11, 0x12);
        assert_eq!(a, udp_sport(0, 0x12, 0x11));
        assert_eq!(
            a,
            udp_sport_from_flow_label(flow_label_from_qpns(0x11, 0x12))
        );
        // 0x11 * 0x12 = 0x132 fits in 20 bits, so the fold leaves it.
        assert_eq!(flow_label_from_qpns(0x11, 0x12), 0x132);
        assert_eq!(flow_label_from_qpns(0xFF_FFFF, 0xFF_FFFF) >> 20, 0);
    }

    #[test]
    fn pad_counts() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 904, 1023].map(pad_count),
            [0, 3, 2, 1, 0, 3, 0, 1]
        );
    }

    fn send_only(payload: &[u8]) -> PacketRepr<'_> {
        let mut b = BthRepr::new(Opcode::RcSendOnly, 0x11, 7);
        b.ack_req = true;
        PacketRepr::new(b, payload)
    }

    #[test]
    fn round_trip_with_pad() {
        let data = [1u8, 2, 3, 4, 5];
        let r = send_only(&data);
        assert_eq!(r.buffer_len(), 12 + 5 + 3 + 4);
        let mut buf = [0xEEu8; 64];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, 24);
        assert_eq!(buf[1] & 0x30, 0x30);
        assert_eq!(&buf[17..24], &[0; 7]);
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.payload(), &data);
        assert_eq!(p.pad(), &[0, 0, 0]);
        assert_eq!(PacketRepr::parse(&p).unwrap(), r);
    }

    #[test]
    fn every_opcode_round_trips() {
        let data = [9u8; 6];
        for &op in Opcode::ALL {
            let mut r = PacketRepr::new(BthRepr::new(op, 0xABCDE, 0x123456), &[]);
            if op.has_payload() {
                r.payload = &data;
            }
            for &h in op.ext_headers() {
                match h {
                    ExtHeader::Deth => {
                        r.deth = Some(DethRepr {
                            qkey: 1,
                            reserved: 0,
                            src_qp: 2,
                        })
                    }
                    ExtHeader::Reth => {
                        r.reth = Some(RethRepr {
                            virtual_addr: 3,
                            rkey: 4,
                            dma_len: 5,
                        })
                    }
                    ExtHeader::AtomicEth => {
                        r.atomic_eth = Some(AtomicEthRepr {
                            virtual_addr: 6,
                            rkey: 7,
                            swap_add: 8,
                            compare: 9,
                        })
                    }
                    ExtHeader::Aeth => {
                        r.aeth = Some(AethRepr {
                            syndrome: Syndrome::Ack { credits: 31 },
                            msn: 10,
                        })
                    }
                    ExtHeader::AtomicAckEth => {
                        r.atomic_ack_eth = Some(AtomicAckEthRepr { orig_value: 11 })
                    }
                    ExtHeader::ImmDt => r.immdt = Some(ImmDtRepr { imm_data: 12 }),
                    ExtHeader::Ieth => r.ieth = Some(IethRepr { rkey: 13 }),
                }
            }
            let mut buf = [0u8; 128];
            let n = r.emit(&mut buf).unwrap();
            assert_eq!(n, r.buffer_len(), "{op:?}");
            let parsed = PacketRepr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
            assert_eq!(parsed, r, "{op:?}");
            assert_eq!(
                Packet::new_unchecked(&buf[..n])
                    .ext_offset(ExtHeader::ImmDt)
                    .is_some(),
                op.has_immediate()
            );
            assert!(
                Packet::new_unchecked(&buf[..n])
                    .ext_bytes(ExtHeader::ImmDt)
                    .is_some()
                    == op.has_immediate()
            );
        }
    }

    #[test]
    fn qp1_mad_is_the_payload_of_a_ud_send_to_qp1_only() {
        let mad = [0x01u8; 256];
        let mut r = PacketRepr::new(BthRepr::new(Opcode::UdSendOnly, GSI_QPN, 0), &mad);
        r.deth = Some(DethRepr {
            qkey: crate::wire::deth::GSI_QKEY,
            reserved: 0,
            src_qp: GSI_QPN,
        });
        let mut buf = [0u8; 300];
        let n = r.emit(&mut buf).unwrap();
        let parsed = PacketRepr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
        assert_eq!(parsed.qp1_mad(), Some(&mad[..]));
        // Another QP, or another opcode to QP1, carries no MAD.
        let mut other_qp = r;
        other_qp.bth.dest_qp = 2;
        assert_eq!(other_qp.qp1_mad(), None);
        let mut rc = send_only(&mad);
        rc.bth.dest_qp = GSI_QPN;
        assert_eq!(rc.qp1_mad(), None);
    }

    #[test]
    fn emit_rejects_inconsistent_reprs() {
        let mut buf = [0u8; 64];
        // Send Only with a RETH it must not have.
        let mut r = send_only(&[]);
        r.reth = Some(RethRepr {
            virtual_addr: 0,
            rkey: 0,
            dma_len: 0,
        });
        assert_eq!(r.emit(&mut buf), Err(Error::Malformed));
        // ACK without AETH.
        let ack = PacketRepr::new(BthRepr::new(Opcode::RcAcknowledge, 1, 1), &[]);
        assert_eq!(ack.emit(&mut buf), Err(Error::Malformed));
        // ACK with payload.
        let mut ack = PacketRepr::new(BthRepr::new(Opcode::RcAcknowledge, 1, 1), &[1]);
        ack.aeth = Some(AethRepr {
            syndrome: Syndrome::Ack { credits: 31 },
            msn: 0,
        });
        assert_eq!(ack.emit(&mut buf), Err(Error::BadLength));
        // Too small a buffer.
        assert_eq!(
            send_only(&[1, 2, 3, 4]).emit(&mut buf[..19]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn parse_rejects_bad_pad_and_lengths() {
        let mut buf = [0u8; 64];
        let n = send_only(&[1, 2, 3, 4]).emit(&mut buf).unwrap();
        let ok = &buf[..n];
        assert!(PacketRepr::parse(&Packet::new_unchecked(ok)).is_ok());

        // One extra byte: payload + pad is no longer a whole number of words.
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&buf[..n + 1])),
            Err(Error::BadLength)
        );
        // Pad count 1 on that 4-byte body: a 3-byte payload whose pad byte
        // (the old payload's last byte, 4) is not zero.
        let mut b = buf;
        b[1] |= 0x10;
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&b[..n])),
            Err(Error::Malformed)
        );
        // Pad count exceeding the payload.
        let mut e = [0u8; 16];
        e[..12].copy_from_slice(&buf[..12]);
        e[1] |= 0x30;
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&e[..])),
            Err(Error::BadLength)
        );
        assert_eq!(Packet::new_checked(&e[..]).unwrap_err(), Error::BadLength);
        // Non-zero pad byte.
        let mut p = [0u8; 64];
        let n3 = send_only(&[1, 2, 3]).emit(&mut p).unwrap();
        p[15] = 1;
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&p[..n3])),
            Err(Error::Malformed)
        );
        // ACK with trailing bytes where no payload may be.
        let mut ack = PacketRepr::new(BthRepr::new(Opcode::RcAcknowledge, 1, 1), &[]);
        ack.aeth = Some(AethRepr {
            syndrome: Syndrome::Ack { credits: 31 },
            msn: 0,
        });
        let mut a = [0u8; 24];
        let na = ack.emit(&mut a).unwrap();
        assert_eq!(na, 20);
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&a[..24])),
            Err(Error::BadLength)
        );
        // Too short for the opcode's headers.
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&a[..19])),
            Err(Error::Truncated)
        );
        assert_eq!(
            PacketRepr::parse(&Packet::new_unchecked(&a[..15])),
            Err(Error::Truncated)
        );
    }
}
