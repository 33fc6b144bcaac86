// Run (no nightly toolchain here, so unlock nightly flags on stable):
//   cd crates/roce/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parse_frame -- -max_total_time=60
// With the captures as seed corpus (one frame per file):
//   cd crates/roce/fuzz && cargo run --bin seed_corpus && \
//   RUSTC_BOOTSTRAP=1 cargo fuzz run parse_frame corpus/parse_frame seeds -- -max_total_time=60
//
// Feeds arbitrary bytes to the full receive path a remote peer can reach:
// Ethernet -> IPv4/IPv6 -> UDP -> ICRC -> BTH -> extension headers -> payload
// (DESIGN.md "Proof" 5). It must never panic, and whatever parses must
// re-emit to exactly the bytes it came from (up to link padding).
//
// Random bytes almost never carry a valid IPv4 checksum and ICRC, so each
// input is also tried "resealed": lengths, IPv4 checksum and ICRC fixed up
// first, so the fuzzer reaches the transport-header parsing behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roce::wire::frame::FrameRepr;
use roce::wire::{icrc, ipv4};

fn round_trip(data: &[u8]) {
    if let Ok(repr) = FrameRepr::parse(data) {
        let len = repr.buffer_len();
        assert!(len <= data.len());
        let mut out = vec![0u8; len];
        assert_eq!(repr.emit(&mut out), Ok(len));
        assert_eq!(&out[..], &data[..len]);
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
    round_trip(data);
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    round_trip(&sealed);
});
