//! Transmit side helpers: the round-robin ring of QPs with something to
//! send, and writing a packet whose payload comes straight from memory.

use alloc::collections::VecDeque;
use core::net::IpAddr;

use crate::wire::icrc::PayloadCrc;
use crate::wire::packet::PacketRepr;

/// The largest payload: path MTU 4096 (IBA Vol 1 ch. 9 (segmentation at the path MTU); Linux rxe_req.c).
pub const MAX_PAYLOAD: usize = 4096;

/// A buffer of this many bytes holds any packet the engine emits: the
/// longest RC header (BTH + RETH + ImmDt, 32), 4096 bytes of payload, and
/// the ICRC (pad is 0 for a full MTU).
pub const MAX_PACKET_LEN: usize = 32 + MAX_PAYLOAD + 4;

/// The destination UDP port of RoCEv2.
pub const ROCE_UDP_PORT: u16 = 4791;

/// Addressing of a packet from [`Engine::poll_transmit`](super::Engine::poll_transmit):
/// the caller wraps `len` bytes of the buffer in IP/UDP, then fills the ICRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxInfo {
    /// Bytes written (BTH .. payload, pad, 4 zero ICRC bytes).
    pub len: usize,
    /// Sending QP.
    pub qpn: u32,
    /// Destination QP (also in the BTH).
    pub dest_qpn: u32,
    /// IP source.
    pub local_ip: IpAddr,
    /// IP destination.
    pub remote_ip: IpAddr,
    /// UDP source port (one per QP, IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
    pub udp_src_port: u16,
    /// UDP destination port (4791).
    pub udp_dst_port: u16,
    /// IP TTL / hop limit.
    pub hop_limit: u8,
    /// IP TOS / traffic class.
    pub traffic_class: u8,
    /// The payload's place and CRC-32, computed while it was copied in:
    /// pass it to [`crate::framing::seal_with_payload`] so the ICRC does
    /// not read the payload again. `None` for a packet without payload.
    pub payload_crc: Option<PayloadCrc>,
}

/// Addressing of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxInfo {
    /// IP source.
    pub src_ip: IpAddr,
    /// IP destination.
    pub dst_ip: IpAddr,
    /// UDP source port (not checked, as rxe does not: IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
    pub udp_src_port: u16,
}

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmitError {
    /// The caller's buffer is too small; nothing changed.
    BufferTooSmall,
    /// The payload could not be read from memory.
    Memory,
}

static ZEROS: [u8; MAX_PAYLOAD] = [0; MAX_PAYLOAD];

/// Write `repr`'s headers, then `payload_len` bytes produced by `fill`
/// directly into the output (no intermediate copy), pad and a zero ICRC.
/// `fill` returns the CRC-32 (from 0) of the bytes it wrote, or `None` if
/// it could not read them; `crc` receives the payload's place and CRC
/// (`None` without payload) for the ICRC.
pub(crate) fn emit_packet(
    mut repr: PacketRepr<'_>,
    payload_len: usize,
    buf: &mut [u8],
    crc: &mut Option<PayloadCrc>,
    fill: impl FnOnce(&mut [u8]) -> Option<u32>,
) -> Result<usize, EmitError> {
    *crc = None;
    // The codec derives pad and length from the payload slice; a zero
    // slice of the right length stands in (never copied: `fill` writes
    // the payload's bytes).
    repr.payload = ZEROS.get(..payload_len).ok_or(EmitError::BufferTooSmall)?;
    let len = repr
        .emit_around_payload(buf)
        .map_err(|_| EmitError::BufferTooSmall)?;
    let hl = repr.bth.opcode.header_len();
    let dst = buf
        .get_mut(hl..hl + payload_len)
        .ok_or(EmitError::BufferTooSmall)?;
    if payload_len > 0 {
        let payload = fill(dst).ok_or(EmitError::Memory)?;
        *crc = Some(PayloadCrc {
            offset: hl,
            len: payload_len,
            crc: payload,
        });
    }
    Ok(len)
}

/// QPs waiting to transmit, served round robin. Capacity is the number of
/// QP slots (each QP is in the ring at most once), grown on QP creation.
#[derive(Debug, Default)]
pub(crate) struct TxRing {
    ring: VecDeque<u32>,
}

impl TxRing {
    pub(crate) fn grow_to(&mut self, slots: usize) {
        let want = slots.saturating_sub(self.ring.len());
        self.ring.reserve(want);
    }
    pub(crate) fn push(&mut self, slot: u32) -> bool {
        if self.ring.len() >= self.ring.capacity() {
            return false;
        }
        self.ring.push_back(slot);
        true
    }
    pub(crate) fn pop(&mut self) -> Option<u32> {
        self.ring.pop_front()
    }
    pub(crate) fn push_front(&mut self, slot: u32) -> bool {
        if self.ring.len() >= self.ring.capacity() {
            return false;
        }
        self.ring.push_front(slot);
        true
    }
    pub(crate) fn remove(&mut self, slot: u32) {
        self.ring.retain(|&s| s != slot);
    }
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }
}
