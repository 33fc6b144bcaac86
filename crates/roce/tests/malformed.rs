//! Malformed input never panics and always gets a precise error: truncation
//! at every length of every captured frame, bad opcodes, bad transport
//! version, pad counts the payload cannot hold, inconsistent IP/UDP lengths,
//! and frames that are not RoCEv2 at all. Where a test corrupts a field it
//! re-seals the frame (IP checksum, ICRC) so the field itself is what gets
//! rejected.

mod support;

use roce::wire::frame::FrameRepr;
use roce::wire::opcode::Opcode;
use roce::wire::packet::{Packet, PacketRepr};
use roce::wire::{Error, icrc, ipv4};

const ETH: usize = 14;
const IP: usize = 20;
const UDP: usize = 8;
const ROCE: usize = ETH + IP + UDP;

/// Recompute the IPv4 checksum and the ICRC of an IPv4 frame in place,
/// using the lengths its headers claim (clamped to the buffer).
fn reseal(frame: &mut [u8]) {
    ipv4::Packet::new_unchecked(&mut frame[ETH..]).fill_checksum();
    let total = usize::from(u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]));
    let end = (ETH + total).min(frame.len());
    let (head, roce) = frame[..end].split_at_mut(ROCE);
    if roce.len() >= 16 {
        // Only fails when the IP version nibble itself was corrupted (the
        // garbage test); the targeted tests then see that error instead.
        let _ = icrc::fill(&head[ETH..ETH + IP], &head[ETH + IP..], roce);
    }
}

/// Set the IP total length and UDP length to match `roce_len` bytes of
/// transport packet, then reseal.
fn set_lengths(frame: &mut [u8], roce_len: usize) {
    let udp_len = (UDP + roce_len) as u16;
    let ip_len = (IP + UDP + roce_len) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_len.to_be_bytes());
    frame[ETH + IP + 4..ETH + IP + 6].copy_from_slice(&udp_len.to_be_bytes());
    reseal(frame);
}

fn first_frame_of(op: Opcode) -> Vec<u8> {
    support::all_frames()
        .into_iter()
        .map(|(_, _, b)| b)
        .find(|b| FrameRepr::parse(b).unwrap().datagram.packet.bth.opcode == op)
        .unwrap()
}

#[test]
fn truncating_any_captured_frame_anywhere_is_truncated() {
    // The IPv4 total length always promises more than a cut frame holds.
    for (stem, i, bytes) in support::all_frames() {
        for len in 0..bytes.len() {
            assert_eq!(
                FrameRepr::parse(&bytes[..len]).map(|_| ()),
                Err(Error::Truncated),
                "{stem}#{i} cut at {len}"
            );
        }
    }
}

#[test]
fn shortening_the_transport_packet_with_consistent_lengths_is_caught() {
    // Cut the RoCE packet, then make IP/UDP lengths, IP checksum and ICRC
    // agree with the cut: now only the transport parse can object. It must
    // return Err, or, where the format allows a shorter packet (an opcode
    // with payload, cut by whole words past its headers), a valid parse
    // with a correspondingly shorter payload.
    for (stem, i, bytes) in support::all_frames() {
        let full = FrameRepr::parse(&bytes).unwrap().datagram.packet;
        let roce_len = bytes.len() - ROCE;
        for cut in 1..roce_len {
            let new_len = roce_len - cut;
            let mut f = bytes[..ROCE + new_len].to_vec();
            set_lengths(&mut f, new_len);
            match FrameRepr::parse(&f) {
                Err(_) => {}
                Ok(r) => {
                    let p = r.datagram.packet;
                    assert!(full.bth.opcode.has_payload(), "{stem}#{i} cut {cut}");
                    assert_eq!(cut % 4, 0, "{stem}#{i} cut {cut}");
                    assert_eq!(
                        p.payload.len() + p.pad_len(),
                        full.payload.len() + full.pad_len() - cut
                    );
                    assert_eq!(p.bth.opcode, full.bth.opcode);
                }
            }
            // The transport parser alone (no ICRC) never panics either.
            let _ = PacketRepr::parse(&Packet::new_unchecked(&bytes[ROCE..ROCE + new_len]));
        }
    }
}

#[test]
fn every_unknown_opcode_is_rejected_as_such() {
    let base = first_frame_of(Opcode::RcSendOnly);
    let mut unknown = 0;
    for op in 0..=255u8 {
        if Opcode::from_u8(op).is_ok() {
            continue;
        }
        unknown += 1;
        let mut f = base.clone();
        f[ROCE] = op;
        reseal(&mut f);
        assert_eq!(
            FrameRepr::parse(&f).map(|_| ()),
            Err(Error::UnknownOpcode(op))
        );
    }
    assert_eq!(unknown, 256 - 37);
}

#[test]
fn a_known_opcode_whose_headers_do_not_fit_is_truncated() {
    // An ACK frame (BTH+AETH+ICRC = 20 bytes) relabelled as Compare & Swap
    // (BTH+AtomicETH = 40 bytes) cannot hold its headers.
    let mut f = first_frame_of(Opcode::RcAcknowledge);
    f[ROCE] = Opcode::RcCompareSwap.to_u8();
    reseal(&mut f);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::Truncated));
}

#[test]
fn nonzero_transport_version_is_bad_version() {
    for tver in 1..=15u8 {
        let mut f = first_frame_of(Opcode::UdSendOnly);
        f[ROCE + 1] = (f[ROCE + 1] & 0xF0) | tver;
        reseal(&mut f);
        assert_eq!(
            FrameRepr::parse(&f).map(|_| ()),
            Err(Error::BadVersion),
            "tver {tver}"
        );
    }
}

#[test]
fn pad_count_beyond_the_payload_is_bad_length() {
    // ACK and READ request carry no payload: any pad count is too much.
    for op in [Opcode::RcAcknowledge, Opcode::RcRdmaReadRequest] {
        for pad in 1..=3u8 {
            let mut f = first_frame_of(op);
            f[ROCE + 1] |= pad << 4;
            reseal(&mut f);
            assert_eq!(
                FrameRepr::parse(&f).map(|_| ()),
                Err(Error::BadLength),
                "{op:?} pad {pad}"
            );
        }
    }
    // A Send Only whose payload is cut to nothing, but with pad count 3.
    let mut f = first_frame_of(Opcode::RcSendOnly)[..ROCE + 12 + 4].to_vec();
    f[ROCE + 1] |= 0x30;
    set_lengths(&mut f, 16);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::BadLength));
}

#[test]
fn inconsistent_ip_and_udp_lengths_are_bad_length() {
    let base = first_frame_of(Opcode::RcSendOnly);
    let udp_len = u16::from_be_bytes([base[ETH + IP + 4], base[ETH + IP + 5]]);
    for delta in [-5i32, -4, -1, 1, 4, 1000] {
        let mut f = base.clone();
        let v = (i32::from(udp_len) + delta) as u16;
        f[ETH + IP + 4..ETH + IP + 6].copy_from_slice(&v.to_be_bytes());
        reseal(&mut f);
        assert_eq!(
            FrameRepr::parse(&f).map(|_| ()),
            Err(Error::BadLength),
            "udp len {delta:+}"
        );
    }
    // UDP length below its own header.
    let mut f = base.clone();
    f[ETH + IP + 4..ETH + IP + 6].copy_from_slice(&7u16.to_be_bytes());
    reseal(&mut f);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::BadLength));
    // IP total length shorter than the datagram: the tail looks like link
    // padding, so the UDP length now exceeds the IP payload.
    let mut f = base.clone();
    let ip_len = u16::from_be_bytes([f[ETH + 2], f[ETH + 3]]) - 4;
    f[ETH + 2..ETH + 4].copy_from_slice(&ip_len.to_be_bytes());
    reseal(&mut f);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::BadLength));
    // IP total length below the IP header, and longer than the frame.
    for (len, want) in [
        (19u16, Error::BadLength),
        (base.len() as u16, Error::Truncated),
    ] {
        let mut f = base.clone();
        f[ETH + 2..ETH + 4].copy_from_slice(&len.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(want), "ip len {len}");
    }
}

#[test]
fn link_padding_after_the_datagram_is_ignored() {
    let base = first_frame_of(Opcode::RcAcknowledge);
    let mut f = base.clone();
    f.extend_from_slice(&[0; 6]);
    let r = FrameRepr::parse(&f).unwrap();
    assert_eq!(r.buffer_len(), base.len());
}

#[test]
fn frames_that_are_not_rocev2() {
    let base = first_frame_of(Opcode::RcAcknowledge);
    // Ethertype ARP, VLAN.
    for et in [0x0806u16, 0x8100] {
        let mut f = base.clone();
        f[12..14].copy_from_slice(&et.to_be_bytes());
        assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::NotRoce));
    }
    // IP protocol TCP.
    let mut f = base.clone();
    f[ETH + 9] = 6;
    reseal(&mut f);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::NotRoce));
    // UDP destination port other than 4791.
    let mut f = base.clone();
    f[ETH + IP + 2..ETH + IP + 4].copy_from_slice(&4790u16.to_be_bytes());
    reseal(&mut f);
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::NotRoce));
    // IPv4 options (IHL 6), fragments and the reserved flag: not RoCEv2.
    for (off, val) in [
        (ETH, 0x46u8),
        (ETH + 6, 0x60),
        (ETH + 7, 0x01),
        (ETH + 6, 0xC0),
    ] {
        let mut f = base.clone();
        f[off] = val;
        reseal(&mut f);
        assert_eq!(
            FrameRepr::parse(&f).map(|_| ()),
            Err(Error::Malformed),
            "byte {off} = {val:#x}"
        );
    }
    // IP version 5, and a bad IPv4 header checksum.
    let mut f = base.clone();
    f[ETH] = 0x55;
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::BadVersion));
    let mut f = base.clone();
    f[ETH + 10] ^= 1;
    assert_eq!(FrameRepr::parse(&f).map(|_| ()), Err(Error::BadChecksum));
}

#[test]
fn arbitrary_garbage_never_panics() {
    // A cheap deterministic stand-in for the fuzz target, run on every
    // `cargo test`: xorshift bytes, with real headers spliced in so the
    // parse gets deep.
    let seed_frames = support::frames("rping-multi");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut parsed = 0;
    for n in 0..20_000 {
        let base = &seed_frames[n % seed_frames.len()];
        let mut f = base.clone();
        let len = (next() as usize) % (base.len() + 1);
        f.truncate(len);
        for _ in 0..(next() % 4) {
            if !f.is_empty() {
                let k = (next() as usize) % f.len();
                f[k] = next() as u8;
            }
        }
        if n % 2 == 0 && f.len() > ROCE {
            let roce_len = f.len() - ROCE;
            set_lengths(&mut f, roce_len);
        }
        if let Ok(r) = FrameRepr::parse(&f) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out).unwrap();
            assert_eq!(out, f[..r.buffer_len()]);
            parsed += 1;
        }
    }
    // Uncut, unmutated draws still parse, so the loop did reach emit.
    assert!(parsed > 100, "{parsed}");
}
