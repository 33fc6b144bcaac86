//! MS-SMBD message codecs (MS-SMBD 2.2): the Negotiate Request and
//! Response, the Data Transfer message, and the SMB_DIRECT_BUFFER_DESCRIPTOR_V1
//! list that SMB2 READ/WRITE carry for RDMA transfers (MS-SMBD 2.2.3.1).
//!
//! Parsers borrow from the input and check every length and offset against
//! it; encoders write into a caller's buffer and say how much they used.

use crate::bytes::{Reader, Truncated};

/// The only protocol version MS-SMBD defines (MS-SMBD 2.2.1).
pub const SMBD_VERSION_1: u16 = 0x0100;
/// Negotiate Request size (MS-SMBD 2.2.1).
pub const NEGOTIATE_REQUEST_LEN: usize = 20;
/// Negotiate Response size (MS-SMBD 2.2.2).
pub const NEGOTIATE_RESPONSE_LEN: usize = 32;
/// Data Transfer header up to and excluding Padding. A message without data
/// may stop here: Linux ksmbd sends its credit-only messages at this size.
pub const DATA_TRANSFER_MIN_LEN: usize = 20;
/// Data Transfer header with its 4-byte Padding; where data starts when it
/// follows the header directly (DataOffset must be 8-byte aligned).
pub const DATA_TRANSFER_HEADER_LEN: usize = 24;
/// SMB_DIRECT_BUFFER_DESCRIPTOR_V1 size (MS-SMBD 2.2.3.1).
pub const BUFFER_DESCRIPTOR_LEN: usize = 16;
/// Data Transfer flag: the peer asks for a prompt reply (MS-SMBD 2.2.3),
/// the keepalive mechanism.
pub const FLAG_RESPONSE_REQUESTED: u16 = 0x0001;
/// Smallest MaxReceiveSize a peer may advertise (MS-SMBD 3.1.5.6/3.1.5.7).
pub const MIN_RECEIVE_SIZE: u32 = 128;
/// Smallest MaxFragmentedSize a peer may advertise (MS-SMBD 3.1.5.6/3.1.5.7).
pub const MIN_FRAGMENTED_SIZE: u32 = 131_072;

/// Why a message could not be parsed or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The message is shorter than its fixed part.
    Truncated { need: usize, have: usize },
    /// The caller's output buffer is too small.
    BufferTooSmall { need: usize, have: usize },
    /// DataOffset is not a multiple of 8 (MS-SMBD 2.2.3).
    DataOffsetMisaligned(u32),
    /// DataOffset points into the header.
    DataOffsetInHeader(u32),
    /// DataOffset + DataLength runs past the end of the message.
    DataOutOfBounds {
        offset: u32,
        length: u32,
        have: usize,
    },
    /// A buffer descriptor list whose length is not a multiple of 16.
    DescriptorListLength(usize),
}

impl From<Truncated> for WireError {
    fn from(t: Truncated) -> Self {
        WireError::Truncated {
            need: t.need,
            have: t.have,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for WireError {}

fn out_slot(out: &mut [u8], need: usize) -> Result<&mut [u8], WireError> {
    let have = out.len();
    out.get_mut(..need)
        .ok_or(WireError::BufferTooSmall { need, have })
}

/// SMB Direct Negotiate Request (MS-SMBD 2.2.1), sent by the client first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub min_version: u16,
    pub max_version: u16,
    pub credits_requested: u16,
    pub preferred_send_size: u32,
    pub max_receive_size: u32,
    pub max_fragmented_size: u32,
}

impl NegotiateRequest {
    pub fn parse(b: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(b);
        let min_version = r.u16()?;
        let max_version = r.u16()?;
        r.skip(2)?; // Reserved
        Ok(NegotiateRequest {
            min_version,
            max_version,
            credits_requested: r.u16()?,
            preferred_send_size: r.u32()?,
            max_receive_size: r.u32()?,
            max_fragmented_size: r.u32()?,
        })
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let o = out_slot(out, NEGOTIATE_REQUEST_LEN)?;
        let mut v = Vec::with_capacity(NEGOTIATE_REQUEST_LEN);
        v.extend_from_slice(&self.min_version.to_le_bytes());
        v.extend_from_slice(&self.max_version.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&self.credits_requested.to_le_bytes());
        v.extend_from_slice(&self.preferred_send_size.to_le_bytes());
        v.extend_from_slice(&self.max_receive_size.to_le_bytes());
        v.extend_from_slice(&self.max_fragmented_size.to_le_bytes());
        o.copy_from_slice(&v);
        Ok(NEGOTIATE_REQUEST_LEN)
    }
}

/// SMB Direct Negotiate Response (MS-SMBD 2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub min_version: u16,
    pub max_version: u16,
    pub negotiated_version: u16,
    pub credits_requested: u16,
    pub credits_granted: u16,
    /// An NTSTATUS: 0 on success, STATUS_NOT_SUPPORTED when no version fits.
    pub status: u32,
    pub max_read_write_size: u32,
    pub preferred_send_size: u32,
    pub max_receive_size: u32,
    pub max_fragmented_size: u32,
}

impl NegotiateResponse {
    pub fn parse(b: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(b);
        let min_version = r.u16()?;
        let max_version = r.u16()?;
        let negotiated_version = r.u16()?;
        r.skip(2)?; // Reserved
        Ok(NegotiateResponse {
            min_version,
            max_version,
            negotiated_version,
            credits_requested: r.u16()?,
            credits_granted: r.u16()?,
            status: r.u32()?,
            max_read_write_size: r.u32()?,
            preferred_send_size: r.u32()?,
            max_receive_size: r.u32()?,
            max_fragmented_size: r.u32()?,
        })
    }

    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let o = out_slot(out, NEGOTIATE_RESPONSE_LEN)?;
        let mut v = Vec::with_capacity(NEGOTIATE_RESPONSE_LEN);
        for x in [
            self.min_version,
            self.max_version,
            self.negotiated_version,
            0,
            self.credits_requested,
            self.credits_granted,
        ] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for x in [
            self.status,
            self.max_read_write_size,
            self.preferred_send_size,
            self.max_receive_size,
            self.max_fragmented_size,
        ] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        o.copy_from_slice(&v);
        Ok(NEGOTIATE_RESPONSE_LEN)
    }
}

/// The fixed fields of a Data Transfer message (MS-SMBD 2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataTransferHeader {
    /// Total send credits the sender wants to hold (a target, not a delta).
    pub credits_requested: u16,
    /// New send credits granted to the receiver (a delta).
    pub credits_granted: u16,
    pub flags: u16,
    /// Bytes of the upper-layer message still to come after this fragment.
    pub remaining_data_length: u32,
}

/// A parsed Data Transfer message: header plus a view of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataTransfer<'a> {
    pub header: DataTransferHeader,
    pub data: &'a [u8],
}

impl<'a> DataTransfer<'a> {
    /// Parses a received message. Reserved and Padding are ignored; data
    /// bounds are checked against the message itself (MS-SMBD 3.1.5.8 says
    /// a malformed message terminates the connection; the caller decides).
    pub fn parse(b: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(b);
        let credits_requested = r.u16()?;
        let credits_granted = r.u16()?;
        let flags = r.u16()?;
        r.skip(2)?; // Reserved
        let remaining_data_length = r.u32()?;
        let data_offset = r.u32()?;
        let data_length = r.u32()?;
        let header = DataTransferHeader {
            credits_requested,
            credits_granted,
            flags,
            remaining_data_length,
        };
        if data_length == 0 {
            // DataOffset is meaningless without data (senders put 0 there).
            return Ok(DataTransfer { header, data: &[] });
        }
        if !data_offset.is_multiple_of(8) {
            return Err(WireError::DataOffsetMisaligned(data_offset));
        }
        if (data_offset as usize) < DATA_TRANSFER_HEADER_LEN {
            return Err(WireError::DataOffsetInHeader(data_offset));
        }
        let data = crate::bytes::slice_at(b, data_offset as usize, data_length as usize).map_err(
            |_| WireError::DataOutOfBounds {
                offset: data_offset,
                length: data_length,
                have: b.len(),
            },
        )?;
        Ok(DataTransfer { header, data })
    }
}

/// Bytes [`encode_data_transfer`] needs for `data_len` bytes of data.
pub fn data_transfer_len(data_len: usize) -> usize {
    if data_len == 0 {
        DATA_TRANSFER_MIN_LEN
    } else {
        DATA_TRANSFER_HEADER_LEN + data_len
    }
}

/// Encodes a Data Transfer message with `data` right after the header
/// (DataOffset 24, already 8-byte aligned). A message without data is the
/// 20-byte form, DataOffset 0.
pub fn encode_data_transfer(
    h: &DataTransferHeader,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let need = data_transfer_len(data.len());
    let data_length = u32::try_from(data.len()).map_err(|_| WireError::BufferTooSmall {
        need,
        have: out.len(),
    })?;
    let o = out_slot(out, need)?;
    let data_offset: u32 = if data.is_empty() {
        0
    } else {
        DATA_TRANSFER_HEADER_LEN as u32
    };
    let mut v = Vec::with_capacity(DATA_TRANSFER_HEADER_LEN);
    v.extend_from_slice(&h.credits_requested.to_le_bytes());
    v.extend_from_slice(&h.credits_granted.to_le_bytes());
    v.extend_from_slice(&h.flags.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&h.remaining_data_length.to_le_bytes());
    v.extend_from_slice(&data_offset.to_le_bytes());
    v.extend_from_slice(&data_length.to_le_bytes());
    if !data.is_empty() {
        v.extend_from_slice(&0u32.to_le_bytes()); // Padding
        v.extend_from_slice(data);
    }
    o.copy_from_slice(&v);
    Ok(need)
}

/// SMB_DIRECT_BUFFER_DESCRIPTOR_V1 (MS-SMBD 2.2.3.1): one registered memory
/// range the peer may RDMA-read or -write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferDescriptorV1 {
    /// Remote address (or offset within the registration) of the range.
    pub offset: u64,
    /// The steering tag / remote key of the registration.
    pub token: u32,
    pub length: u32,
}

impl BufferDescriptorV1 {
    /// Parses a list of descriptors; the list must be an exact multiple of
    /// 16 bytes (MS-SMB2 2.2.19/2.2.21 channel info).
    pub fn parse_list(b: &[u8]) -> Result<Vec<Self>, WireError> {
        if !b.len().is_multiple_of(BUFFER_DESCRIPTOR_LEN) {
            return Err(WireError::DescriptorListLength(b.len()));
        }
        let mut r = Reader::new(b);
        let mut v = Vec::with_capacity(b.len() / BUFFER_DESCRIPTOR_LEN);
        while r.remaining() > 0 {
            v.push(BufferDescriptorV1 {
                offset: r.u64()?,
                token: r.u32()?,
                length: r.u32()?,
            });
        }
        Ok(v)
    }

    /// Appends the list's wire form to `out`.
    pub fn encode_list(list: &[Self], out: &mut Vec<u8>) {
        for d in list {
            out.extend_from_slice(&d.offset.to_le_bytes());
            out.extend_from_slice(&d.token.to_le_bytes());
            out.extend_from_slice(&d.length.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_request_bytes() {
        // The parameters a Windows client sends (MS-SMBD 4.1), laid out by hand.
        let req = NegotiateRequest {
            min_version: 0x0100,
            max_version: 0x0100,
            credits_requested: 255,
            preferred_send_size: 1364,
            max_receive_size: 8192,
            max_fragmented_size: 1_048_576,
        };
        let mut out = [0u8; 20];
        assert_eq!(req.encode(&mut out), Ok(20));
        assert_eq!(
            out,
            [
                0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0x00, 0x54, 0x05, 0x00, 0x00, 0x00, 0x20,
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00
            ]
        );
        assert_eq!(NegotiateRequest::parse(&out), Ok(req));
        assert_eq!(
            NegotiateRequest::parse(&out[..19]),
            Err(WireError::Truncated { need: 20, have: 19 })
        );
        assert_eq!(
            req.encode(&mut [0u8; 19]),
            Err(WireError::BufferTooSmall { need: 20, have: 19 })
        );
    }

    #[test]
    fn negotiate_response_round_trip() {
        let resp = NegotiateResponse {
            min_version: 0x0100,
            max_version: 0x0100,
            negotiated_version: 0x0100,
            credits_requested: 255,
            credits_granted: 255,
            status: 0,
            max_read_write_size: 8 << 20,
            preferred_send_size: 1364,
            max_receive_size: 1364,
            max_fragmented_size: 173_910,
        };
        let mut out = [0u8; 40];
        assert_eq!(resp.encode(&mut out), Ok(32));
        // Status sits at byte 12, MaxReadWriteSize at 16.
        assert_eq!(&out[16..20], &(8u32 << 20).to_le_bytes());
        assert_eq!(NegotiateResponse::parse(&out[..32]), Ok(resp));
        assert!(matches!(
            NegotiateResponse::parse(&out[..31]),
            Err(WireError::Truncated { need: 32, .. })
        ));
    }

    #[test]
    fn data_transfer_round_trip_and_empty_form() {
        let h = DataTransferHeader {
            credits_requested: 255,
            credits_granted: 10,
            flags: FLAG_RESPONSE_REQUESTED,
            remaining_data_length: 1000,
        };
        let mut out = [0u8; 64];
        let n = encode_data_transfer(&h, b"hello", &mut out).unwrap();
        assert_eq!(n, 29);
        assert_eq!(&out[12..16], &24u32.to_le_bytes());
        let m = DataTransfer::parse(&out[..n]).unwrap();
        assert_eq!(m.header, h);
        assert_eq!(m.data, b"hello");

        let n = encode_data_transfer(&h, &[], &mut out).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&out[12..16], &[0; 4]);
        let m = DataTransfer::parse(&out[..n]).unwrap();
        assert_eq!(m.data, b"");
        assert_eq!(
            encode_data_transfer(&h, b"x", &mut [0u8; 24]),
            Err(WireError::BufferTooSmall { need: 25, have: 24 })
        );
    }

    fn raw(offset: u32, length: u32, total: usize) -> Vec<u8> {
        let mut v = vec![0u8; total];
        v[12..16].copy_from_slice(&offset.to_le_bytes());
        v[16..20].copy_from_slice(&length.to_le_bytes());
        v
    }

    #[test]
    fn data_transfer_rejects_bad_offsets() {
        assert_eq!(
            DataTransfer::parse(&raw(28, 4, 40)),
            Err(WireError::DataOffsetMisaligned(28))
        );
        assert_eq!(
            DataTransfer::parse(&raw(16, 4, 40)),
            Err(WireError::DataOffsetInHeader(16))
        );
        assert_eq!(
            DataTransfer::parse(&raw(24, 17, 40)),
            Err(WireError::DataOutOfBounds {
                offset: 24,
                length: 17,
                have: 40
            })
        );
        assert_eq!(
            DataTransfer::parse(&raw(0xffff_fff8, 0xffff_ffff, 40)),
            Err(WireError::DataOutOfBounds {
                offset: 0xffff_fff8,
                length: 0xffff_ffff,
                have: 40
            })
        );
        // Data at a later aligned offset is legal.
        let mut v = raw(32, 2, 34);
        v[32..34].copy_from_slice(b"ok");
        assert_eq!(DataTransfer::parse(&v).unwrap().data, b"ok");
        assert!(matches!(
            DataTransfer::parse(&v[..19]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn buffer_descriptors() {
        let list = [
            BufferDescriptorV1 {
                offset: 0x1122_3344_5566_7788,
                token: 0xdead_beef,
                length: 65536,
            },
            BufferDescriptorV1 {
                offset: 0,
                token: 1,
                length: 2,
            },
        ];
        let mut v = Vec::new();
        BufferDescriptorV1::encode_list(&list, &mut v);
        assert_eq!(v.len(), 32);
        assert_eq!(&v[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&v[8..12], &0xdead_beefu32.to_le_bytes());
        assert_eq!(BufferDescriptorV1::parse_list(&v).unwrap(), list);
        assert_eq!(
            BufferDescriptorV1::parse_list(&v[..17]),
            Err(WireError::DescriptorListLength(17))
        );
        assert_eq!(BufferDescriptorV1::parse_list(&[]).unwrap(), vec![]);
    }

    #[test]
    fn no_panic_on_any_short_input() {
        let full = [0xffu8; 64];
        for n in 0..full.len() {
            let _ = NegotiateRequest::parse(&full[..n]);
            let _ = NegotiateResponse::parse(&full[..n]);
            let _ = DataTransfer::parse(&full[..n]);
            let _ = BufferDescriptorV1::parse_list(&full[..n]);
        }
    }
}
