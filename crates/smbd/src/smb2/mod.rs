//! SMB2/3 (MS-SMB2): the header, the messages needed to move a file, SMB
//! 3.x signing and key derivation, a sans-IO client session flow, and
//! (feature `server`) the server session the tests run it against.

pub mod client;
pub mod header;
pub mod msg;
#[cfg(feature = "server")]
pub mod server;
pub mod signing;

use crate::bytes::Truncated;

/// Dialect revisions (MS-SMB2 2.2.3).
pub mod dialect {
    pub const SMB300: u16 = 0x0300;
    pub const SMB302: u16 = 0x0302;
    pub const SMB311: u16 = 0x0311;
}

/// NTSTATUS values the client acts on (MS-ERREF 2.3).
pub mod status {
    pub const SUCCESS: u32 = 0x0000_0000;
    pub const PENDING: u32 = 0x0000_0103;
    pub const MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
    pub const LOGON_FAILURE: u32 = 0xC000_006D;
    pub const END_OF_FILE: u32 = 0xC000_0011;
}

/// Why an SMB2 message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smb2Error {
    Truncated {
        need: usize,
        have: usize,
    },
    /// Not 0xFE 'S' 'M' 'B'.
    BadProtocolId([u8; 4]),
    /// A header or body StructureSize other than the one defined.
    BadStructureSize {
        want: u16,
        got: u16,
    },
    /// An offset/length pair points outside the message.
    OutOfBounds {
        offset: usize,
        length: usize,
    },
    /// A response to a different command than expected.
    WrongCommand {
        want: u16,
        got: u16,
    },
    /// A negotiate context list that does not parse.
    BadNegotiateContext,
    /// A compound's NextCommand that is not 8-aligned, is shorter than a
    /// header, or runs past the received message (MS-SMB2 3.2.5.1.9).
    BadNextCommand(u32),
}

impl From<Truncated> for Smb2Error {
    fn from(t: Truncated) -> Self {
        Smb2Error::Truncated {
            need: t.need,
            have: t.have,
        }
    }
}

impl std::fmt::Display for Smb2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for Smb2Error {}

/// Borrowing `msg[offset..offset+length]` with a precise error.
pub(crate) fn field(msg: &[u8], offset: usize, length: usize) -> Result<&[u8], Smb2Error> {
    if length == 0 {
        return Ok(&[]);
    }
    crate::bytes::slice_at(msg, offset, length)
        .map_err(|_| Smb2Error::OutOfBounds { offset, length })
}
