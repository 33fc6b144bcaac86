//! The ICRC rejects every corrupted byte of captured packets except the
//! bytes it masks by definition (IBA Annex A17 (ICRC); Linux rxe_icrc.c), and those are exactly the
//! masked fields.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use roce::wire::frame::FrameRepr;
use roce::wire::{Error, crc32, icrc};

const ETH: usize = 14;
const IP: usize = 20;
const UDP: usize = 8;

/// Offsets, from the start of the IP header, that the ICRC masks for an
/// IPv4 packet: TOS, TTL, IP checksum (2), UDP checksum (2), BTH byte 4.
fn masked_offsets() -> BTreeSet<usize> {
    [1, 8, 10, 11, IP + 6, IP + 7, IP + UDP + 4]
        .into_iter()
        .collect()
}

/// ICRC check of a captured IPv4 frame with fixed header boundaries, so a
/// corrupted length field cannot move them.
fn verify(frame: &[u8]) -> Result<(), Error> {
    let ip = &frame[ETH..ETH + IP];
    let udp = &frame[ETH + IP..ETH + IP + UDP];
    icrc::verify(ip, udp, &frame[ETH + IP + UDP..])
}

/// For one frame: the set of offsets (from the IP header) where a flip with
/// `pattern` went unnoticed by the ICRC. Every other flip must be an error:
/// `BadIcrc`, or `BadVersion` when the IP version nibble itself changed.
fn undetected_flips(frame: &[u8], pattern: u8) -> BTreeSet<usize> {
    assert_eq!(verify(frame), Ok(()));
    let mut undetected = BTreeSet::new();
    let mut f = frame.to_vec();
    for off in ETH..frame.len() {
        f[off] ^= pattern;
        match verify(&f) {
            Ok(()) => {
                undetected.insert(off - ETH);
            }
            Err(Error::BadIcrc) => {}
            Err(Error::BadVersion) if off == ETH && pattern & 0xF0 != 0 => {}
            Err(e) => panic!("flip at {off}: unexpected {e:?}"),
        }
        f[off] ^= pattern;
    }
    undetected
}

#[test]
fn every_flip_of_one_frame_per_opcode_is_caught_except_masked_fields() {
    // The first frame of every opcode present: CM MAD (UD Send Only), Send
    // Only, ACK/NAK, RDMA Write First/Middle/Last/Only, Read request and
    // Read response First/Middle/Last/Only.
    let mut firsts: BTreeMap<u8, (&str, usize, Vec<u8>)> = BTreeMap::new();
    for (stem, i, bytes) in support::all_frames() {
        let op = FrameRepr::parse(&bytes)
            .unwrap()
            .datagram
            .packet
            .bth
            .opcode
            .to_u8();
        firsts.entry(op).or_insert((stem, i, bytes));
    }
    assert_eq!(firsts.len(), 12, "{:?}", firsts.keys());
    for (op, (stem, i, bytes)) in &firsts {
        for pattern in [0x01, 0x10, 0x80, 0xFF] {
            assert_eq!(
                undetected_flips(bytes, pattern),
                masked_offsets(),
                "{stem}#{i} opcode {op:#04x} pattern {pattern:#04x}"
            );
        }
    }
}

#[test]
fn every_byte_of_every_frame_is_covered_except_masked_fields() {
    for (stem, i, bytes) in support::all_frames() {
        assert_eq!(
            undetected_flips(&bytes, 0xFF),
            masked_offsets(),
            "{stem}#{i}"
        );
    }
}

#[test]
fn full_parse_rejects_every_flip_of_the_transport_packet_but_bth_byte_4() {
    // Through the whole receive path: flipping any byte from the BTH to the
    // ICRC makes the frame parse fail, except BTH byte 4 (FECN/BECN/reserved),
    // which the ICRC masks and the parse reports as changed bits.
    for (stem, i, bytes) in support::all_frames() {
        let start = ETH + IP + UDP;
        let mut f = bytes.clone();
        for off in start..bytes.len() {
            f[off] ^= 0xFF;
            let r = FrameRepr::parse(&f);
            if off == start + 4 {
                let bth = r
                    .unwrap_or_else(|e| panic!("{stem}#{i}: {e}"))
                    .datagram
                    .packet
                    .bth;
                assert!(bth.fecn && bth.becn && bth.reserved_6 == 0x3F, "{stem}#{i}");
            } else {
                assert_eq!(r.map(|_| ()), Err(Error::BadIcrc), "{stem}#{i} byte {off}");
            }
            f[off] ^= 0xFF;
        }
    }
}

#[test]
fn masked_ip_and_udp_fields_are_still_guarded_by_their_own_checksums() {
    // TOS/TTL flips escape the ICRC but not the IPv4 header checksum; a
    // non-zero UDP checksum is verified (and here wrong).
    let bytes = &support::frames("rping-small")[0];
    for off in [
        ETH + 1,
        ETH + 8,
        ETH + 10,
        ETH + 11,
        ETH + IP + 6,
        ETH + IP + 7,
    ] {
        let mut f = bytes.clone();
        f[off] ^= 0x5A;
        assert_eq!(
            FrameRepr::parse(&f).map(|_| ()),
            Err(Error::BadChecksum),
            "byte {off}"
        );
    }
}

/// The masked ICRC input of a captured IPv4 RoCEv2 frame, built by hand
/// (IBA Annex A17 (ICRC); Linux rxe_icrc.c): 8 bytes of ones, then IP, UDP
/// and the transport packet with the variant fields forced to ones, without
/// the stored ICRC. `None` for a frame that is not RoCEv2 over IPv4.
fn masked_input(frame: &[u8]) -> Option<(Vec<u8>, u32)> {
    let roce = frame.len() >= ETH + IP + UDP + 12 + 4
        && frame[12..14] == [0x08, 0x00]
        && frame[ETH] == 0x45
        && frame[ETH + 9] == 17
        && frame[ETH + IP + 2..ETH + IP + 4] == 4791u16.to_be_bytes();
    if !roce {
        return None;
    }
    let ip_len = usize::from(u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]));
    let end = ETH + ip_len;
    let mut m = vec![0xFF; 8];
    m.extend_from_slice(&frame[ETH..end - 4]);
    for off in masked_offsets() {
        m[8 + off] = 0xFF;
    }
    let stored = u32::from_le_bytes(frame[end - 4..end].try_into().unwrap());
    Some((m, stored))
}

#[test]
fn table_and_folded_crc_give_every_captured_icrc() {
    let folds = roce::wire::crc32::accelerated();
    if !folds {
        eprintln!("note: no carry-less multiply here; only the table CRC is checked");
    }
    let (mut n, mut long) = (0, 0);
    for (stem, i, bytes) in support::all_frames() {
        let Some((masked, stored)) = masked_input(&bytes) else {
            continue;
        };
        let table = crc32::table(0, &masked);
        assert_eq!(table, stored, "{stem} frame {i}: table CRC");
        assert_eq!(crc32::update(0, &masked), stored, "{stem} frame {i}");
        if folds {
            assert_eq!(crc32::folded(0, &masked), Some(stored), "{stem} frame {i}");
        }
        // Every split of the input chains to the same value.
        for cut in [1, 8, 44, masked.len() / 2] {
            let (a, b) = masked.split_at(cut.min(masked.len()));
            assert_eq!(crc32::update(crc32::update(0, a), b), stored);
        }
        n += 1;
        long += usize::from(masked.len() >= 64);
    }
    assert!(n > 50, "only {n} RoCEv2 frames in the captures");
    assert!(long > 10, "only {long} captured inputs reach the fold");
}
