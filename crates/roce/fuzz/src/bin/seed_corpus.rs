//! Writes every frame of the reference captures (../tests/data/*.pcapng)
//! as one file under `seeds/`, the seed corpus for `parse_frame`:
//!   cd crates/roce/fuzz && cargo run --bin seed_corpus

use std::fs;
use std::path::Path;

use pcap_file::pcapng::{Block, PcapNgReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("seeds");
    fs::create_dir_all(&out)?;
    let mut n = 0;
    for entry in fs::read_dir(root.join("../tests/data"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pcapng") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("capture")
            .to_owned();
        let mut reader = PcapNgReader::new(fs::File::open(&path)?)?;
        let mut i = 0;
        while let Some(block) = reader.next_block() {
            let data = match block? {
                Block::EnhancedPacket(p) => p.data.into_owned(),
                Block::SimplePacket(p) => p.data.into_owned(),
                _ => continue,
            };
            fs::write(out.join(format!("{stem}-{i:03}")), data)?;
            i += 1;
            n += 1;
        }
    }
    println!("wrote {n} seeds to {}", out.display());
    Ok(())
}
