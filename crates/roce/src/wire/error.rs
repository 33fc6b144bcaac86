//! The one error type of the wire codecs.

use core::fmt;

/// Why a buffer could not be parsed or emitted.
///
/// Parsing never panics and never reads outside the buffer: every failure is
/// one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header or message needs.
    Truncated,
    /// A length field disagrees with the buffer or with another length field.
    BadLength,
    /// An opcode that is not defined for RoCEv2 (or not supported here).
    UnknownOpcode(u8),
    /// A version field (IP version, BTH transport version, MAD base or class
    /// version) has a value this codec does not speak.
    BadVersion,
    /// The invariant CRC does not match the packet.
    BadIcrc,
    /// An IP or UDP checksum does not match.
    BadChecksum,
    /// A field holds a value the specification forbids.
    Malformed,
    /// The frame is not RoCEv2 (wrong ethertype, IP protocol or UDP port).
    NotRoce,
    /// The output buffer is too small for `emit`.
    BufferTooSmall,
    /// A MAD of a management class this codec was not asked to decode
    /// (e.g. a non-CM MAD given to the CM parser).
    UnknownMgmtClass(u8),
    /// A MAD attribute ID that is not defined for its class (or not
    /// supported here), e.g. an unknown CM message.
    UnknownAttribute(u16),
}

/// Result of a wire operation.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("buffer truncated"),
            Error::BadLength => f.write_str("inconsistent length"),
            Error::UnknownOpcode(op) => write!(f, "unknown opcode {op:#04x}"),
            Error::BadVersion => f.write_str("unsupported version"),
            Error::BadIcrc => f.write_str("ICRC mismatch"),
            Error::BadChecksum => f.write_str("checksum mismatch"),
            Error::Malformed => f.write_str("malformed field"),
            Error::NotRoce => f.write_str("not a RoCEv2 frame"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::UnknownMgmtClass(c) => write!(f, "unknown MAD management class {c:#04x}"),
            Error::UnknownAttribute(a) => write!(f, "unknown MAD attribute ID {a:#06x}"),
        }
    }
}

impl core::error::Error for Error {}
