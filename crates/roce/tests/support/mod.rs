//! Test support: the reference captures (real Linux rxe traffic, see
//! tests/data/README.md) as lists of Ethernet frames.
#![allow(dead_code)]

use std::path::PathBuf;

/// Every capture in tests/data, by file stem.
pub const CAPTURES: &[&str] = &[
    "dreq-frozen-peer",
    "reject",
    "rnr",
    "rping-multi",
    "rping-small",
    "server-disconnect",
    "ucmatose",
];

/// Path of a capture in tests/data.
pub fn capture_path(stem: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("{stem}.pcapng"))
}

/// The Ethernet frames of one capture, in capture order.
pub fn frames(stem: &str) -> Vec<Vec<u8>> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let file = std::fs::File::open(capture_path(stem)).expect("open capture");
    let mut reader = PcapNgReader::new(file).expect("pcapng header");
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.expect("pcapng block") {
            Block::EnhancedPacket(p) => out.push(p.data.into_owned()),
            Block::SimplePacket(p) => out.push(p.data.into_owned()),
            Block::Packet(p) => out.push(p.data.into_owned()),
            _ => {}
        }
    }
    out
}

/// Every frame of every capture, tagged with capture stem and frame index.
pub fn all_frames() -> Vec<(&'static str, usize, Vec<u8>)> {
    CAPTURES
        .iter()
        .flat_map(|stem| {
            frames(stem)
                .into_iter()
                .enumerate()
                .map(move |(i, f)| (*stem, i, f))
        })
        .collect()
}

pub mod rc;
