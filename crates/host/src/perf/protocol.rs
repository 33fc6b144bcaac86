//! The wire formats of ndkperf's private data ([`Hello`]) and rping's
//! application protocol ([`RdmaInfo`], [`rping_pattern`]).

use super::*;

pub(super) const MAGIC: &[u8; 4] = b"NDKP";

/// The client's connect private data: which mode runs, with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The mode.
    pub mode: Mode,
    /// Message size.
    pub size: u32,
    /// Receives the server keeps posted (send modes).
    pub depth: u32,
    /// Distinct message buffers the server cycles through (targets of
    /// WRITE, sources of READ, receive buffers of SEND); at least 1.
    pub slots: u32,
}

impl Hello {
    pub(super) const LEN: usize = 16;
    pub(super) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = 1;
        b[5] = self.mode.code();
        // Bytes 6..8 were zero before `slots`: an older client asks for 1.
        let slots = u16::try_from(self.slots).unwrap_or(u16::MAX);
        b[6..8].copy_from_slice(&slots.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..16].copy_from_slice(&self.depth.to_be_bytes());
        b
    }
    pub(super) fn decode(b: &[u8]) -> Option<Hello> {
        if b.len() < Self::LEN || &b[..4] != MAGIC || b[4] != 1 {
            return None;
        }
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Hello {
            mode: Mode::from_code(b[5])?,
            size: u(8),
            depth: u(12),
            slots: u32::from(u16::from_be_bytes([b[6], b[7]])).max(1),
        })
    }
}

/// rping's `struct rping_rdma_info`: `__be64 buf; __be32 rkey; __be32 size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RdmaInfo {
    /// Remote address.
    pub buf: u64,
    /// Remote token.
    pub rkey: u32,
    /// Bytes.
    pub size: u32,
}

impl RdmaInfo {
    /// Encoded length.
    pub const LEN: usize = 16;
    /// Big-endian, as rping sends it.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.buf.to_be_bytes());
        b[8..12].copy_from_slice(&self.rkey.to_be_bytes());
        b[12..16].copy_from_slice(&self.size.to_be_bytes());
        b
    }
    /// Parses 16 bytes.
    pub fn decode(b: &[u8]) -> Option<RdmaInfo> {
        let b: &[u8; 16] = b.get(..16)?.try_into().ok()?;
        Some(RdmaInfo {
            buf: u64::from_be_bytes(b[..8].try_into().ok()?),
            rkey: u32::from_be_bytes(b[8..12].try_into().ok()?),
            size: u32::from_be_bytes(b[12..16].try_into().ok()?),
        })
    }
}

/// rping's source-buffer contents for iteration `ping` (0-based): the
/// text "rdma-ping-<ping>: ", then ASCII letters counting up from
/// `'A' + ping % 58` and wrapping from 'z' (122) back to 'A' (65), the
/// buffer's last byte NUL (rping's server Writes back `strlen + 1` bytes,
/// so the NUL ends the message where the buffer ends).
pub fn rping_pattern(ping: u64, out: &mut [u8]) {
    let mut prefix = [0u8; 40];
    let n = {
        use std::io::Write;
        let mut c = std::io::Cursor::new(&mut prefix[..]);
        let _ = write!(c, "rdma-ping-{ping}: ");
        c.position() as usize
    };
    let n = n.min(out.len());
    out[..n].copy_from_slice(&prefix[..n]);
    let mut c = 65 + (ping % 58) as u8;
    for b in out.iter_mut().skip(n) {
        *b = c;
        c = if c >= 122 { 65 } else { c + 1 };
    }
    if let Some(last) = out.last_mut() {
        *last = 0;
    }
}

/// How many bytes rping's server Writes back of what it Read: the
/// C-string length plus its NUL, at most what was Read.
pub fn rping_reply_len(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b == 0)
        .map_or(data.len(), |n| n + 1)
}

/// The largest buffer an rping server here will register for a peer's
/// advertised size.
pub(super) const RPING_MAX_SIZE: usize = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn wire_formats_round_trip() {
        let h = Hello {
            mode: Mode::Rping,
            size: 4096,
            depth: 8,
            slots: 3,
        };
        assert_eq!(Hello::decode(&h.encode()), Some(h));
        // A hello without slots (an older client's zeros) asks for one.
        let mut old = h.encode();
        old[6..8].fill(0);
        assert_eq!(Hello::decode(&old).map(|h| h.slots), Some(1));
        assert_eq!(Hello::decode(b"nope"), None);
        let i = RdmaInfo {
            buf: 0x1122_3344_5566_7788,
            rkey: 0xAABB_CCDD,
            size: 64,
        };
        let e = i.encode();
        assert_eq!(e[0], 0x11, "big-endian, as rping");
        assert_eq!(RdmaInfo::decode(&e), Some(i));
        let mut b = [0u8; 32];
        rping_pattern(3, &mut b);
        assert!(b.starts_with(b"rdma-ping-3: "));
        assert_eq!(b[13], 65 + 3);
        assert_eq!(b[31], 0, "NUL-terminated at the buffer's end");
        assert_eq!(rping_reply_len(&b), 32);
        assert!(b[..31].iter().all(|&c| c != 0));
        // The letters wrap from 'z' to 'A'; the first one cycles over 58.
        let mut b = [0u8; 200];
        rping_pattern(57, &mut b);
        assert_eq!(&b[..15], b"rdma-ping-57: z");
        assert_eq!(b[15], b'A');
        rping_pattern(58, &mut b);
        assert_eq!(b[14], b'A');
        let mut one = [7u8; 1];
        rping_pattern(0, &mut one);
        assert_eq!(one, [0]);
        assert_eq!(rping_reply_len(b"ab\0cd"), 3);
        assert_eq!(rping_reply_len(b"abc"), 3);
    }
}
