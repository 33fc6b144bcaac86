// Run (no nightly toolchain here, so unlock nightly flags on stable):
//   cd crates/roce/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parse_frame -- -max_total_time=60
// With the captures as seed corpus (one frame per file):
//   cd crates/roce/fuzz && cargo run --bin seed_corpus && \
//   RUSTC_BOOTSTRAP=1 cargo fuzz run parse_frame corpus/parse_frame seeds -- -max_total_time=60
//
// Feeds arbitrary bytes to the full receive path a remote peer can reach:
// Ethernet -> IPv4/IPv6 -> UDP -> ICRC -> BTH -> extension headers -> payload,
// and for a UD SEND to QP1 on to the MAD header, the CM message and the
// rdma_cm `cma_hdr` of a REQ (docs/design.md "Proof" 5). It must never panic, and
// whatever parses must re-emit to exactly the bytes it came from (up to link
// padding). A MAD re-emits to 256 bytes that re-parse to the same value and
// differ from the input only in reserved bits, which the CM codec clears.
// Each input is also decoded as a bare MAD, so the CM decoder is fuzzed
// directly as well as behind a valid frame.
//
// Random bytes almost never carry a valid IPv4 checksum and ICRC, so each
// input is also tried "resealed": lengths, IPv4 checksum and ICRC fixed up
// first, so the fuzzer reaches the transport-header parsing behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roce::wire::cm::{CmMad, CmMessage};
use roce::wire::frame::FrameRepr;
use roce::wire::{cma, icrc, ipv4, mad};

fn round_trip(data: &[u8]) {
    if let Ok(repr) = FrameRepr::parse(data) {
        let len = repr.buffer_len();
        assert!(len <= data.len());
        let mut out = vec![0u8; len];
        assert_eq!(repr.emit(&mut out), Ok(len));
        assert_eq!(&out[..], &data[..len]);
        if let Some(bytes) = repr.datagram.packet.qp1_mad() {
            decode_mad(bytes);
        }
    }
}

/// `out` holds no bit that `input` does not: a re-emit may only clear
/// (reserved) bits, never invent any.
fn only_clears_bits(input: &[u8], out: &[u8]) {
    assert_eq!(input.len(), out.len());
    for (i, (a, b)) in input.iter().zip(out).enumerate() {
        assert_eq!(b & !a, 0, "byte {i}: {a:#04x} re-emitted as {b:#04x}");
    }
}

/// The MAD header of any class, then the CM message and the `cma_hdr` of
/// a REQ: whatever parses re-emits to 256 bytes that re-parse to the same
/// value and differ from the input only by cleared reserved bits.
fn decode_mad(bytes: &[u8]) {
    if let Ok(packet) = mad::Packet::new_checked(bytes)
        && let Ok(header) = mad::Repr::parse(&packet)
    {
        let mut out = bytes.to_vec();
        header
            .emit(&mut mad::Packet::new_unchecked(&mut out[..]))
            .unwrap();
        // Only the reserved bytes 18-19 may change.
        assert_eq!(out[..18], bytes[..18]);
        assert_eq!(out[20..], bytes[20..]);
        assert_eq!(
            mad::Repr::parse(&mad::Packet::new_unchecked(&out[..])),
            Ok(header)
        );
    }
    let Ok(parsed) = CmMad::parse(bytes) else {
        return;
    };
    let mut out = [0u8; mad::MAD_LEN];
    assert_eq!(parsed.buffer_len(), mad::MAD_LEN);
    parsed.emit(&mut out).unwrap();
    assert_eq!(CmMad::parse(&out), Ok(parsed));
    only_clears_bits(bytes, &out);
    let mut again = [0u8; mad::MAD_LEN];
    parsed.emit(&mut again).unwrap();
    assert_eq!(again, out);
    if let CmMessage::Req(req) = parsed.message {
        let data = req.private_data.as_slice();
        if let Ok(hdr) = cma::Repr::parse(&cma::Packet::new_unchecked(data)) {
            let mut out = data.to_vec();
            hdr.emit(&mut cma::Packet::new_unchecked(&mut out[..]))
                .unwrap();
            assert_eq!(
                cma::Repr::parse(&cma::Packet::new_unchecked(&out[..])),
                Ok(hdr)
            );
            only_clears_bits(data, &out);
        }
    }
}

/// Make an Ethernet+IPv4 or Ethernet+IPv6 frame's lengths, IPv4 checksum
/// and ICRC agree with its bytes, leaving every other field as fuzzed.
fn reseal(f: &mut [u8]) {
    const ETH: usize = 14;
    let Some(&vihl) = f.get(ETH) else { return };
    let (ip_len, v4) = match vihl >> 4 {
        4 => (20, true),
        6 => (40, false),
        _ => return,
    };
    let udp_at = ETH + ip_len;
    if f.len() < udp_at + 8 + 16 || f.len() > 0xFFFF {
        return;
    }
    let udp_len = (f.len() - udp_at) as u16;
    if v4 {
        f[ETH] = 0x45;
        let total = (f.len() - ETH) as u16;
        f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
    } else {
        f[ETH + 4..ETH + 6].copy_from_slice(&udp_len.to_be_bytes());
    }
    f[udp_at + 4..udp_at + 6].copy_from_slice(&udp_len.to_be_bytes());
    let (head, roce) = f.split_at_mut(udp_at + 8);
    let _ = icrc::fill(&head[ETH..udp_at], &head[udp_at..], roce);
    if v4 {
        ipv4::Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
    }
}

fuzz_target!(|data: &[u8]| {
    decode_mad(data);
    round_trip(data);
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    round_trip(&sealed);
});
