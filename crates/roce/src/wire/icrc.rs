//! The RoCEv2 invariant CRC (IBA Annex A17 (ICRC); Linux rxe_icrc.c), computed and checked exactly as
//! Linux rxe does (rxe_icrc.c).
//!
//! Input: 8 bytes of 0xFF (the masked LRH RoCEv2 does not carry), then the
//! IP header, UDP header and BTH with their variant fields forced to ones
//! (IPv4 TOS/TTL/checksum; IPv6 traffic class/flow label/hop limit; UDP
//! checksum; BTH byte 4), then the rest of the transport headers, payload
//! and pad. The CRC is the IEEE 802.3 CRC-32 (zlib's `crc32`), stored
//! little-endian after the pad.
//!
//! The CRC-32 is [`super::crc32`]: carry-less multiply where the processor
//! has it (detected at run time, also in the kernel), else crc32fast's table.

use super::{Error, Result, bth, crc32, ipv4, ipv6, udp};

/// Length of the ICRC trailer.
pub const ICRC_LEN: usize = 4;

/// The 8 bytes of ones that stand in for the LRH, which RoCEv2 does not
/// carry (IBA Annex A17 (ICRC); Linux rxe_icrc.c step 1).
const LRH_LEN: usize = 8;

/// Largest masked prefix: the LRH's ones, IPv6 header, UDP header, BTH.
/// They are hashed as one input (48 bytes with IPv4: three whole 16-byte
/// lanes of the carry-less fold, no table bytes).
const MAX_PREFIX: usize = LRH_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + bth::HEADER_LEN;

/// Where a packet's payload sits and its CRC-32 (zlib's `crc32(0,
/// payload)`), computed while the payload was copied into the packet on
/// transmit ([`crc32::copy_update`]): the ICRC then reads only the headers
/// and the pad, and joins the payload's CRC in ([`crc32::combine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadCrc {
    /// Offset of the payload from the start of the BTH.
    pub offset: usize,
    /// Payload bytes (pad excluded).
    pub len: usize,
    /// CRC-32 of those bytes from 0.
    pub crc: u32,
}

/// Compute the ICRC of a RoCEv2 packet.
///
/// * `ip_header`: the raw IPv4 (exactly 20 bytes) or IPv6 (40 bytes) header;
///   the version nibble picks the masking.
/// * `udp_header`: the 8-byte UDP header.
/// * `transport`: the UDP payload from the BTH up to and including the pad,
///   without the ICRC.
///
/// Returns the CRC value; on the wire it is `to_le_bytes()`.
pub fn compute(ip_header: &[u8], udp_header: &[u8], transport: &[u8]) -> Result<u32> {
    let (crc, tail) = headers_crc(ip_header, udp_header, transport)?;
    Ok(crc32::update(crc, tail))
}

/// [`compute`] for a packet whose payload's CRC is already known: the
/// bytes at `payload` are not read. `BadLength` if `payload` does not lie
/// after the BTH inside `transport`.
pub fn compute_with_payload(
    ip_header: &[u8],
    udp_header: &[u8],
    transport: &[u8],
    payload: PayloadCrc,
) -> Result<u32> {
    let (crc, tail) = headers_crc(ip_header, udp_header, transport)?;
    let ext_len = payload
        .offset
        .checked_sub(bth::HEADER_LEN)
        .ok_or(Error::BadLength)?;
    let (ext, rest) = tail.split_at_checked(ext_len).ok_or(Error::BadLength)?;
    let pad = rest.get(payload.len..).ok_or(Error::BadLength)?;
    // Most packets have no extension header after the BTH and no pad:
    // no call for those.
    let crc = if ext.is_empty() {
        crc
    } else {
        crc32::update(crc, ext)
    };
    let crc = crc32::combine(crc, payload.crc, payload.len);
    Ok(if pad.is_empty() {
        crc
    } else {
        crc32::update(crc, pad)
    })
}

/// The CRC of the masked prefix (LRH ones, IP, UDP, BTH) and the bytes of
/// `transport` after the BTH, for the caller to continue over.
fn headers_crc<'t>(
    ip_header: &[u8],
    udp_header: &[u8],
    transport: &'t [u8],
) -> Result<(u32, &'t [u8])> {
    let mut buf = [0xFFu8; MAX_PREFIX];
    let (_, prefix) = buf.split_at_mut(LRH_LEN);
    let ip_len = ip_header.len();
    let (masked_ip, rest) = prefix.split_at_mut(ip_len.min(ipv6::HEADER_LEN));
    match (ip_header.first().map(|b| b >> 4), ip_len) {
        (Some(4), ipv4::HEADER_LEN) => {
            masked_ip.copy_from_slice(ip_header);
            for off in ipv4::ICRC_MASKED {
                if let Some(b) = masked_ip.get_mut(off) {
                    *b = 0xFF;
                }
            }
        }
        (Some(6), ipv6::HEADER_LEN) => {
            masked_ip.copy_from_slice(ip_header);
            if let Some(b) = masked_ip.first_mut() {
                *b |= ipv6::ICRC_BYTE0_MASK;
            }
            for off in ipv6::ICRC_MASKED {
                if let Some(b) = masked_ip.get_mut(off) {
                    *b = 0xFF;
                }
            }
        }
        (Some(4 | 6), _) => return Err(Error::BadLength),
        (Some(_), _) => return Err(Error::BadVersion),
        (None, _) => return Err(Error::Truncated),
    }

    let (masked_udp, rest) = rest.split_at_mut(udp::HEADER_LEN);
    let udp_bytes = udp_header
        .first_chunk::<{ udp::HEADER_LEN }>()
        .filter(|_| udp_header.len() == udp::HEADER_LEN)
        .ok_or(Error::BadLength)?;
    masked_udp.copy_from_slice(udp_bytes);
    for off in udp::ICRC_MASKED {
        if let Some(b) = masked_udp.get_mut(off) {
            *b = 0xFF;
        }
    }

    let (bth_bytes, tail) = transport
        .split_at_checked(bth::HEADER_LEN)
        .ok_or(Error::Truncated)?;
    let masked_bth = rest.get_mut(..bth::HEADER_LEN).ok_or(Error::Truncated)?;
    masked_bth.copy_from_slice(bth_bytes);
    if let Some(b) = masked_bth.get_mut(bth::ICRC_MASKED) {
        *b = 0xFF;
    }

    let used = LRH_LEN + ip_len + udp::HEADER_LEN + bth::HEADER_LEN;
    let crc = crc32::update(0, buf.get(..used).ok_or(Error::Truncated)?);
    Ok((crc, tail))
}

/// Check the ICRC of `transport_with_icrc` (the whole UDP payload):
/// `Truncated` if it cannot hold a BTH and an ICRC, `BadIcrc` on mismatch.
pub fn verify(ip_header: &[u8], udp_header: &[u8], transport_with_icrc: &[u8]) -> Result<()> {
    let (body, icrc) = split_icrc(transport_with_icrc)?;
    if compute(ip_header, udp_header, body)? == u32::from_le_bytes(icrc) {
        Ok(())
    } else {
        Err(Error::BadIcrc)
    }
}

/// Compute the ICRC over all but the last 4 bytes of
/// `transport_with_icrc` and store it there.
pub fn fill(ip_header: &[u8], udp_header: &[u8], transport_with_icrc: &mut [u8]) -> Result<()> {
    fill_with_payload(ip_header, udp_header, transport_with_icrc, None)
}

/// [`fill`], with the payload's CRC when the caller has it
/// ([`compute_with_payload`]).
pub fn fill_with_payload(
    ip_header: &[u8],
    udp_header: &[u8],
    transport_with_icrc: &mut [u8],
    payload: Option<PayloadCrc>,
) -> Result<()> {
    let at = transport_with_icrc
        .len()
        .checked_sub(ICRC_LEN)
        .ok_or(Error::Truncated)?;
    let (body, icrc) = transport_with_icrc.split_at_mut(at);
    let crc = match payload {
        Some(p) => compute_with_payload(ip_header, udp_header, body, p)?,
        None => compute(ip_header, udp_header, body)?,
    };
    icrc.copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A received packet's ICRC whose check waits for its payload: the CRC of
/// everything before the payload, the pad, and the ICRC the packet carries.
/// The receive path checks it while copying the payload to where it goes
/// ([`crc32::copy_update`] continuing from [`head`](Self::head)), one pass
/// over the bytes instead of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deferred {
    head: u32,
    pad: [u8; 3],
    pad_len: u8,
    carried: u32,
}

impl Deferred {
    /// For `transport_with_icrc` (the whole UDP payload) whose payload is
    /// the `payload_len` bytes at `payload_offset` from the start of the
    /// BTH, followed by at most 3 pad bytes and the ICRC. `BadLength` if
    /// the payload does not lie there.
    pub fn new(
        ip_header: &[u8],
        udp_header: &[u8],
        transport_with_icrc: &[u8],
        payload_offset: usize,
        payload_len: usize,
    ) -> Result<Self> {
        let (body, carried) = split_icrc(transport_with_icrc)?;
        let (crc, tail) = headers_crc(ip_header, udp_header, body)?;
        let ext_len = payload_offset
            .checked_sub(bth::HEADER_LEN)
            .ok_or(Error::BadLength)?;
        let (ext, rest) = tail.split_at_checked(ext_len).ok_or(Error::BadLength)?;
        let pad_bytes = rest.get(payload_len..).ok_or(Error::BadLength)?;
        if pad_bytes.len() > 3 {
            return Err(Error::BadLength);
        }
        // Byte by byte: at most 3, not worth a memcpy call per packet.
        let mut pad = [0u8; 3];
        for (d, s) in pad.iter_mut().zip(pad_bytes) {
            *d = *s;
        }
        Ok(Deferred {
            head: if ext.is_empty() {
                crc
            } else {
                crc32::update(crc, ext)
            },
            pad,
            pad_len: pad_bytes.len() as u8,
            carried: u32::from_le_bytes(carried),
        })
    }

    /// The CRC of everything before the payload, for the payload's bytes
    /// to continue from.
    pub fn head(&self) -> u32 {
        self.head
    }

    /// Whether the ICRC holds, given the CRC continued from
    /// [`head`](Self::head) over the whole payload.
    pub fn matches(&self, through_payload: u32) -> bool {
        let pad = self.pad.get(..usize::from(self.pad_len)).unwrap_or(&[]);
        let crc = if pad.is_empty() {
            through_payload
        } else {
            crc32::update(through_payload, pad)
        };
        crc == self.carried
    }

    /// Whether the ICRC holds over `payload` (read again: the path that
    /// did not copy it).
    pub fn check(&self, payload: &[u8]) -> bool {
        self.matches(crc32::update(self.head, payload))
    }
}

/// Split a transport packet into body and the stored ICRC bytes.
pub fn split_icrc(transport_with_icrc: &[u8]) -> Result<(&[u8], [u8; ICRC_LEN])> {
    let at = transport_with_icrc
        .len()
        .checked_sub(ICRC_LEN)
        .ok_or(Error::Truncated)?;
    let (body, icrc) = transport_with_icrc
        .split_at_checked(at)
        .ok_or(Error::Truncated)?;
    let icrc = icrc.first_chunk::<ICRC_LEN>().ok_or(Error::Truncated)?;
    Ok((body, *icrc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    // IBA Annex A17 (ICRC); Linux rxe_icrc.c worked example: rping-small frame 5, RC ACK 10.9.0.2 -> 10.9.0.3.
    const IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x30, 0x90, 0x79, 0x40, 0x00, 0x40, 0x11, 0x96, 0x2d, 0x0a, 0x09, 0x00,
        0x02, 0x0a, 0x09, 0x00, 0x03,
    ];
    const UDP: [u8; 8] = [0xda, 0x58, 0x12, 0xb7, 0x00, 0x1c, 0x00, 0x00];
    const ROCE: [u8; 20] = [
        0x11, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x11, 0x00, 0xb5, 0x5b, 0x8d, 0x1f, 0x00, 0x00,
        0x01, 0xeb, 0x3f, 0x6d, 0x3b,
    ];

    #[test]
    fn worked_example_from_roce_md_2() {
        assert_eq!(compute(&IP, &UDP, &ROCE[..16]), Ok(0x3B6D_3FEB));
        assert_eq!(verify(&IP, &UDP, &ROCE), Ok(()));
        let mut out = ROCE;
        out[16..].fill(0);
        fill(&IP, &UDP, &mut out).unwrap();
        assert_eq!(out, ROCE);
    }

    #[test]
    fn worked_example_masked_input_by_hand() {
        // The masked byte string IBA Annex A17 (ICRC); Linux rxe_icrc.c lists, hashed directly.
        let masked: [u8; 44] = [
            0x45, 0xff, 0x00, 0x30, 0x90, 0x79, 0x40, 0x00, 0xff, 0x11, 0xff, 0xff, 0x0a, 0x09,
            0x00, 0x02, 0x0a, 0x09, 0x00, 0x03, 0xda, 0x58, 0x12, 0xb7, 0x00, 0x1c, 0xff, 0xff,
            0x11, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x11, 0x00, 0xb5, 0x5b, 0x8d, 0x1f, 0x00,
            0x00, 0x01,
        ];
        let mut h = crc32fast::Hasher::new();
        h.update(&[0xFF; 8]);
        h.update(&masked);
        assert_eq!(h.finalize(), 0x3B6D_3FEB);
    }

    #[test]
    fn masked_fields_do_not_change_the_crc_and_others_do() {
        let base = compute(&IP, &UDP, &ROCE[..16]).unwrap();
        for i in 0..IP.len() {
            let mut ip = IP;
            ip[i] ^= 0x5A;
            let same = compute(&ip, &UDP, &ROCE[..16]) == Ok(base);
            assert_eq!(same, [1, 8, 10, 11].contains(&i), "ip byte {i}");
        }
        let mut udp = UDP;
        udp[6] = 0x12;
        udp[7] = 0x34;
        assert_eq!(compute(&IP, &udp, &ROCE[..16]), Ok(base));
        let mut roce = ROCE;
        roce[4] = 0xC0; // FECN + BECN
        assert_eq!(compute(&IP, &UDP, &roce[..16]), Ok(base));
    }

    #[test]
    fn ipv6_masks_traffic_class_flow_label_and_hop_limit() {
        let mut ip6 = [0u8; 40];
        ip6[0] = 0x60;
        ip6[4..8].copy_from_slice(&[0, 28, 17, 64]);
        ip6[8] = 0xfe;
        ip6[39] = 1;
        let base = compute(&ip6, &UDP, &ROCE[..16]).unwrap();
        for i in 0..40 {
            for flip in [0x01u8, 0x10, 0x80] {
                let mut v = ip6;
                v[i] ^= flip;
                let same = compute(&v, &UDP, &ROCE[..16]) == Ok(base);
                let masked = (i == 0 && flip == 0x01) || matches!(i, 1..=3 | 7);
                if i == 0 && flip != 0x01 {
                    // Changing the version nibble is no longer IPv6.
                    assert!(compute(&v, &UDP, &ROCE[..16]).is_err() || !same);
                    continue;
                }
                assert_eq!(same, masked, "ipv6 byte {i} flip {flip:#x}");
            }
        }
    }

    #[test]
    fn a_deferred_check_agrees_with_verify_for_every_payload_length_and_corruption() {
        // A WRITE Last (BTH only) and a READ response First (BTH + AETH),
        // payloads of 1..=9 bytes (every pad count), checked whole, then
        // with one payload bit flipped, then with a flipped header bit.
        for (opcode, ext) in [(0x08u8, 0usize), (0x0D, 4)] {
            for len in 1..=9usize {
                let pad = usize::from(super::super::packet::pad_count(len));
                let mut roce = vec![0u8; bth::HEADER_LEN + ext + len + pad + ICRC_LEN];
                roce[0] = opcode;
                roce[1] = (pad as u8) << 4;
                roce[2..4].copy_from_slice(&[0xFF, 0xFF]);
                for (i, b) in roce[bth::HEADER_LEN..bth::HEADER_LEN + ext + len]
                    .iter_mut()
                    .enumerate()
                {
                    *b = (i as u8).wrapping_mul(37).wrapping_add(len as u8);
                }
                fill(&IP, &UDP, &mut roce).unwrap();
                let at = bth::HEADER_LEN + ext;
                let d = Deferred::new(&IP, &UDP, &roce, at, len).unwrap();
                let payload = &roce[at..at + len];
                assert!(d.check(payload), "opcode {opcode:#x} len {len}");
                let mut copy = vec![0u8; len];
                let through = crc32::copy_update(d.head(), &mut copy, payload).unwrap();
                assert!(d.matches(through));
                assert_eq!(copy, payload);
                let mut bad = payload.to_vec();
                bad[len / 2] ^= 0x10;
                assert!(!d.check(&bad));
                let mut hdr = roce.clone();
                hdr[7] ^= 1; // destination QP
                assert!(
                    !Deferred::new(&IP, &UDP, &hdr, at, len)
                        .unwrap()
                        .check(payload)
                );
                assert_eq!(
                    Deferred::new(&IP, &UDP, &roce, at, len + pad + 1),
                    Err(Error::BadLength)
                );
            }
        }
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(compute(&IP[..19], &UDP, &ROCE[..16]), Err(Error::BadLength));
        assert_eq!(compute(&[], &UDP, &ROCE[..16]), Err(Error::Truncated));
        let mut v5 = IP;
        v5[0] = 0x55;
        assert_eq!(compute(&v5, &UDP, &ROCE[..16]), Err(Error::BadVersion));
        assert_eq!(compute(&IP, &UDP[..7], &ROCE[..16]), Err(Error::BadLength));
        assert_eq!(compute(&IP, &UDP, &ROCE[..11]), Err(Error::Truncated));
        assert_eq!(verify(&IP, &UDP, &ROCE[..3]), Err(Error::Truncated));
        let mut bad = ROCE;
        bad[19] ^= 1;
        assert_eq!(verify(&IP, &UDP, &bad), Err(Error::BadIcrc));
        let mut tiny = [0u8; 3];
        assert_eq!(fill(&IP, &UDP, &mut tiny), Err(Error::Truncated));
    }
}
