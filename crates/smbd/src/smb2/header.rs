//! The 64-byte SMB2 header (MS-SMB2 2.2.1).

use super::Smb2Error;
use crate::bytes::{PutLe, Reader};

pub const HEADER_LEN: usize = 64;
pub const PROTOCOL_ID: [u8; 4] = [0xfe, b'S', b'M', b'B'];
/// Where the 16-byte Signature sits in the header.
pub const SIGNATURE_OFFSET: usize = 48;

/// Command codes (MS-SMB2 2.2.1.2).
pub mod command {
    pub const NEGOTIATE: u16 = 0x0000;
    pub const SESSION_SETUP: u16 = 0x0001;
    pub const LOGOFF: u16 = 0x0002;
    pub const TREE_CONNECT: u16 = 0x0003;
    pub const TREE_DISCONNECT: u16 = 0x0004;
    pub const CREATE: u16 = 0x0005;
    pub const CLOSE: u16 = 0x0006;
    pub const READ: u16 = 0x0008;
    pub const WRITE: u16 = 0x0009;
}

/// Header flags (MS-SMB2 2.2.1.2).
pub mod flags {
    pub const SERVER_TO_REDIR: u32 = 0x0000_0001;
    pub const ASYNC_COMMAND: u32 = 0x0000_0002;
    pub const RELATED_OPERATIONS: u32 = 0x0000_0004;
    pub const SIGNED: u32 = 0x0000_0008;
}

/// An SMB2 header, sync or async form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub credit_charge: u16,
    /// Status in responses; ChannelSequence/Reserved in requests.
    pub status: u32,
    pub command: u16,
    /// CreditRequest in requests, CreditResponse in responses.
    pub credits: u16,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    /// Sync form: TreeId (ProcessId is Reserved). Async form: unused.
    pub tree_id: u32,
    /// Async form only.
    pub async_id: u64,
    pub session_id: u64,
    pub signature: [u8; 16],
}

impl Header {
    pub fn parse(b: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = Reader::new(b);
        let pid = r.array::<4>()?;
        if pid != PROTOCOL_ID {
            return Err(Smb2Error::BadProtocolId(pid));
        }
        let size = r.u16()?;
        if size != 64 {
            return Err(Smb2Error::BadStructureSize {
                want: 64,
                got: size,
            });
        }
        let credit_charge = r.u16()?;
        let status = r.u32()?;
        let command = r.u16()?;
        let credits = r.u16()?;
        let flags = r.u32()?;
        let next_command = r.u32()?;
        let message_id = r.u64()?;
        let (tree_id, async_id) = if flags & flags::ASYNC_COMMAND != 0 {
            (0, r.u64()?)
        } else {
            r.skip(4)?; // Reserved (ProcessId)
            (r.u32()?, 0)
        };
        Ok(Header {
            credit_charge,
            status,
            command,
            credits,
            flags,
            next_command,
            message_id,
            tree_id,
            async_id,
            session_id: r.u64()?,
            signature: r.array()?,
        })
    }

    /// Appends the header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_ID);
        out.put_u16(64);
        out.put_u16(self.credit_charge);
        out.put_u32(self.status);
        out.put_u16(self.command);
        out.put_u16(self.credits);
        out.put_u32(self.flags);
        out.put_u32(self.next_command);
        out.put_u64(self.message_id);
        if self.flags & flags::ASYNC_COMMAND != 0 {
            out.put_u64(self.async_id);
        } else {
            out.put_u32(0);
            out.put_u32(self.tree_id);
        }
        out.put_u64(self.session_id);
        out.extend_from_slice(&self.signature);
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::SERVER_TO_REDIR != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sync_and_async() {
        let h = Header {
            credit_charge: 1,
            status: 0xC000_0016,
            command: command::SESSION_SETUP,
            credits: 31,
            flags: flags::SERVER_TO_REDIR | flags::SIGNED,
            next_command: 0,
            message_id: 0x0102_0304_0506_0708,
            tree_id: 7,
            async_id: 0,
            session_id: 0xdead_beef_0000_0001,
            signature: [9; 16],
        };
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v.len(), 64);
        assert_eq!(&v[..6], &[0xfe, b'S', b'M', b'B', 64, 0]);
        assert_eq!(&v[36..40], &7u32.to_le_bytes());
        assert_eq!(&v[48..64], &[9; 16]);
        assert_eq!(Header::parse(&v), Ok(h));
        let a = Header {
            flags: flags::SERVER_TO_REDIR | flags::ASYNC_COMMAND,
            tree_id: 0,
            async_id: 0x55,
            ..h
        };
        let mut v = Vec::new();
        a.encode(&mut v);
        assert_eq!(&v[32..40], &0x55u64.to_le_bytes());
        assert_eq!(Header::parse(&v), Ok(a));
    }

    #[test]
    fn rejects_bad_headers() {
        let mut v = Vec::new();
        Header::default().encode(&mut v);
        for n in 0..64 {
            assert!(Header::parse(&v[..n]).is_err());
        }
        let mut b = v.clone();
        b[0] = 0xff;
        assert_eq!(
            Header::parse(&b),
            Err(Smb2Error::BadProtocolId([0xff, b'S', b'M', b'B']))
        );
        let mut b = v.clone();
        b[4] = 65;
        assert_eq!(
            Header::parse(&b),
            Err(Smb2Error::BadStructureSize { want: 64, got: 65 })
        );
    }
}
