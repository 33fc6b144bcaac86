//! SMB2 message bodies (MS-SMB2 2.2.3 to 2.2.22): NEGOTIATE, SESSION_SETUP,
//! LOGOFF, TREE_CONNECT, CREATE, CLOSE, READ, WRITE, and the error body.
//!
//! `encode` appends a body to a buffer that already holds the 64-byte
//! header, so buffer offsets are the header-relative offsets the protocol
//! uses. `parse` takes the whole message (header included).

use super::header::HEADER_LEN;
use super::{Smb2Error, field};
use crate::bytes::{PutLe, Reader, from_utf16le, patch_u16, patch_u32, utf16le};
use crate::smbd::wire::BufferDescriptorV1;

/// Persistent + volatile file handle (MS-SMB2 2.2.14.1).
pub type FileId = [u8; 16];

/// SecurityMode bits (MS-SMB2 2.2.3).
pub mod security_mode {
    pub const SIGNING_ENABLED: u16 = 0x0001;
    pub const SIGNING_REQUIRED: u16 = 0x0002;
}

/// Global capabilities (MS-SMB2 2.2.3).
pub mod capabilities {
    pub const DFS: u32 = 0x0000_0001;
    pub const LEASING: u32 = 0x0000_0002;
    pub const LARGE_MTU: u32 = 0x0000_0004;
    pub const MULTI_CHANNEL: u32 = 0x0000_0008;
    pub const ENCRYPTION: u32 = 0x0000_0040;
}

/// Negotiate context types (MS-SMB2 2.2.3.1).
pub mod context {
    pub const PREAUTH_INTEGRITY: u16 = 0x0001;
    pub const ENCRYPTION: u16 = 0x0002;
    pub const SIGNING: u16 = 0x0008;
    /// Preauth hash algorithm SHA-512 (MS-SMB2 2.2.3.1.1).
    pub const HASH_SHA512: u16 = 0x0001;
}

/// Signing algorithm ids (MS-SMB2 2.2.3.1.7).
pub mod signing_alg {
    pub const HMAC_SHA256: u16 = 0x0000;
    pub const AES_CMAC: u16 = 0x0001;
    pub const AES_GMAC: u16 = 0x0002;
}

/// READ/WRITE Channel values (MS-SMB2 2.2.19, 2.2.21).
pub mod channel {
    pub const NONE: u32 = 0;
    pub const RDMA_V1: u32 = 1;
    /// As RDMA_V1, and the server invalidates the token with its response.
    pub const RDMA_V1_INVALIDATE: u32 = 2;
}

fn structure_size(r: &mut Reader<'_>, want: u16) -> Result<(), Smb2Error> {
    let got = r.u16()?;
    if got != want {
        return Err(Smb2Error::BadStructureSize { want, got });
    }
    Ok(())
}

fn body(msg: &[u8], want: u16) -> Result<Reader<'_>, Smb2Error> {
    let mut r = Reader::new(msg);
    r.skip(HEADER_LEN)?;
    structure_size(&mut r, want)?;
    Ok(r)
}

/// One negotiate context (MS-SMB2 2.2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegContext {
    pub ty: u16,
    pub data: Vec<u8>,
}

impl NegContext {
    /// SMB2_PREAUTH_INTEGRITY_CAPABILITIES with SHA-512 and a salt.
    pub fn preauth_sha512(salt: &[u8]) -> Self {
        let mut d = Vec::new();
        d.put_u16(1);
        d.put_u16(salt.len() as u16);
        d.put_u16(context::HASH_SHA512);
        d.extend_from_slice(salt);
        NegContext {
            ty: context::PREAUTH_INTEGRITY,
            data: d,
        }
    }

    /// SMB2_SIGNING_CAPABILITIES listing `algs` in preference order.
    pub fn signing(algs: &[u16]) -> Self {
        let mut d = Vec::new();
        d.put_u16(algs.len() as u16);
        for a in algs {
            d.put_u16(*a);
        }
        NegContext {
            ty: context::SIGNING,
            data: d,
        }
    }

    /// The algorithm ids of a preauth or signing context (its first list).
    pub fn id_list(&self) -> Option<Vec<u16>> {
        let mut r = Reader::new(&self.data);
        let n = r.u16().ok()?;
        if self.ty == context::PREAUTH_INTEGRITY {
            r.skip(2).ok()?; // SaltLength
        }
        (0..n).map(|_| r.u16().ok()).collect()
    }
}

fn encode_contexts(out: &mut Vec<u8>, ctxs: &[NegContext]) {
    for (i, c) in ctxs.iter().enumerate() {
        if i > 0 {
            out.pad_to(0, 8);
        }
        out.put_u16(c.ty);
        out.put_u16(c.data.len() as u16);
        out.put_u32(0);
        out.extend_from_slice(&c.data);
    }
}

fn parse_contexts(msg: &[u8], offset: usize, count: usize) -> Result<Vec<NegContext>, Smb2Error> {
    let mut v = Vec::with_capacity(count.min(16));
    let mut at = offset;
    for _ in 0..count {
        at = at.div_ceil(8) * 8;
        let mut r = Reader::new(msg);
        r.skip(at).map_err(|_| Smb2Error::BadNegotiateContext)?;
        let ty = r.u16().map_err(|_| Smb2Error::BadNegotiateContext)?;
        let len = r.u16().map_err(|_| Smb2Error::BadNegotiateContext)? as usize;
        r.skip(4).map_err(|_| Smb2Error::BadNegotiateContext)?;
        let data = r.take(len).map_err(|_| Smb2Error::BadNegotiateContext)?;
        v.push(NegContext {
            ty,
            data: data.to_vec(),
        });
        at = r.pos();
    }
    Ok(v)
}

/// SMB2 NEGOTIATE Request (MS-SMB2 2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub security_mode: u16,
    pub capabilities: u32,
    pub client_guid: [u8; 16],
    pub dialects: Vec<u16>,
    /// Sent only when 3.1.1 is offered.
    pub contexts: Vec<NegContext>,
}

impl NegotiateRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_u16(36);
        out.put_u16(self.dialects.len() as u16);
        out.put_u16(self.security_mode);
        out.put_u16(0);
        out.put_u32(self.capabilities);
        out.extend_from_slice(&self.client_guid);
        let ctx_field = out.len();
        out.put_u64(0); // NegotiateContextOffset/Count or ClientStartTime
        for d in &self.dialects {
            out.put_u16(*d);
        }
        if !self.contexts.is_empty() {
            out.pad_to(0, 8);
            let off = out.len();
            encode_contexts(out, &self.contexts);
            patch_u32(out, ctx_field, off as u32);
            patch_u16(out, ctx_field + 4, self.contexts.len() as u16);
        }
        let _ = base;
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 36)?;
        let count = r.u16()? as usize;
        let security_mode = r.u16()?;
        r.skip(2)?;
        let capabilities = r.u32()?;
        let client_guid = r.array()?;
        let ctx_off = r.u32()? as usize;
        let ctx_count = r.u16()? as usize;
        r.skip(2)?;
        let dialects = (0..count).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
        let contexts = if dialects.contains(&super::dialect::SMB311) {
            parse_contexts(msg, ctx_off, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            security_mode,
            capabilities,
            client_guid,
            dialects,
            contexts,
        })
    }
}

/// SMB2 NEGOTIATE Response (MS-SMB2 2.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub security_mode: u16,
    pub dialect: u16,
    pub server_guid: [u8; 16],
    pub capabilities: u32,
    pub max_transact_size: u32,
    pub max_read_size: u32,
    pub max_write_size: u32,
    pub system_time: u64,
    pub security_buffer: Vec<u8>,
    pub contexts: Vec<NegContext>,
}

impl NegotiateResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(65);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect);
        out.put_u16(self.contexts.len() as u16);
        out.extend_from_slice(&self.server_guid);
        out.put_u32(self.capabilities);
        out.put_u32(self.max_transact_size);
        out.put_u32(self.max_read_size);
        out.put_u32(self.max_write_size);
        out.put_u64(self.system_time);
        out.put_u64(0); // ServerStartTime
        let sec_field = out.len();
        out.put_u16(0);
        out.put_u16(self.security_buffer.len() as u16);
        let ctx_field = out.len();
        out.put_u32(0);
        let sec_off = out.len();
        out.extend_from_slice(&self.security_buffer);
        patch_u16(out, sec_field, sec_off as u16);
        if !self.contexts.is_empty() {
            out.pad_to(0, 8);
            let off = out.len();
            encode_contexts(out, &self.contexts);
            patch_u32(out, ctx_field, off as u32);
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 65)?;
        let security_mode = r.u16()?;
        let dialect = r.u16()?;
        let ctx_count = r.u16()? as usize;
        let server_guid = r.array()?;
        let capabilities = r.u32()?;
        let max_transact_size = r.u32()?;
        let max_read_size = r.u32()?;
        let max_write_size = r.u32()?;
        let system_time = r.u64()?;
        r.skip(8)?;
        let sec_off = r.u16()? as usize;
        let sec_len = r.u16()? as usize;
        let ctx_off = r.u32()? as usize;
        let security_buffer = field(msg, sec_off, sec_len)?.to_vec();
        let contexts = if dialect == super::dialect::SMB311 {
            parse_contexts(msg, ctx_off, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode,
            dialect,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            security_buffer,
            contexts,
        })
    }

    pub fn context(&self, ty: u16) -> Option<&NegContext> {
        self.contexts.iter().find(|c| c.ty == ty)
    }
}

/// SMB2 SESSION_SETUP Request (MS-SMB2 2.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetupRequest {
    pub flags: u8,
    pub security_mode: u8,
    pub capabilities: u32,
    pub previous_session_id: u64,
    pub token: Vec<u8>,
}

impl SessionSetupRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(25);
        out.put_u8(self.flags);
        out.put_u8(self.security_mode);
        out.put_u32(self.capabilities);
        out.put_u32(0); // Channel
        out.put_u16((HEADER_LEN + 24) as u16);
        out.put_u16(self.token.len() as u16);
        out.put_u64(self.previous_session_id);
        out.extend_from_slice(&self.token);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 25)?;
        let flags = r.u8()?;
        let security_mode = r.u8()?;
        let capabilities = r.u32()?;
        r.skip(4)?;
        let off = r.u16()? as usize;
        let len = r.u16()? as usize;
        let previous_session_id = r.u64()?;
        Ok(SessionSetupRequest {
            flags,
            security_mode,
            capabilities,
            previous_session_id,
            token: field(msg, off, len)?.to_vec(),
        })
    }
}

/// SMB2 SESSION_SETUP Response (MS-SMB2 2.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetupResponse {
    pub session_flags: u16,
    pub token: Vec<u8>,
}

impl SessionSetupResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(9);
        out.put_u16(self.session_flags);
        out.put_u16((HEADER_LEN + 8) as u16);
        out.put_u16(self.token.len() as u16);
        out.extend_from_slice(&self.token);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 9)?;
        let session_flags = r.u16()?;
        let off = r.u16()? as usize;
        let len = r.u16()? as usize;
        Ok(SessionSetupResponse {
            session_flags,
            token: field(msg, off, len)?.to_vec(),
        })
    }
}

/// LOGOFF and TREE_DISCONNECT requests and responses share this 4-byte
/// body (MS-SMB2 2.2.7, 2.2.8, 2.2.11, 2.2.12).
pub fn encode_empty4(out: &mut Vec<u8>) {
    out.put_u16(4);
    out.put_u16(0);
}

pub fn parse_empty4(msg: &[u8]) -> Result<(), Smb2Error> {
    body(msg, 4).map(|_| ())
}

/// SMB2 TREE_CONNECT Request (MS-SMB2 2.2.9): `\\server\share`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConnectRequest {
    pub path: String,
}

impl TreeConnectRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let p = utf16le(&self.path);
        out.put_u16(9);
        out.put_u16(0);
        out.put_u16((HEADER_LEN + 8) as u16);
        out.put_u16(p.len() as u16);
        out.extend_from_slice(&p);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 9)?;
        r.skip(2)?;
        let off = r.u16()? as usize;
        let len = r.u16()? as usize;
        let path = from_utf16le(field(msg, off, len)?).ok_or(Smb2Error::OutOfBounds {
            offset: off,
            length: len,
        })?;
        Ok(TreeConnectRequest { path })
    }
}

/// SMB2 TREE_CONNECT Response (MS-SMB2 2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConnectResponse {
    pub share_type: u8,
    pub share_flags: u32,
    pub capabilities: u32,
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(16);
        out.put_u8(self.share_type);
        out.put_u8(0);
        out.put_u32(self.share_flags);
        out.put_u32(self.capabilities);
        out.put_u32(self.maximal_access);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 16)?;
        let share_type = r.u8()?;
        r.skip(1)?;
        Ok(TreeConnectResponse {
            share_type,
            share_flags: r.u32()?,
            capabilities: r.u32()?,
            maximal_access: r.u32()?,
        })
    }
}

/// Access, share and disposition values for CREATE (MS-SMB2 2.2.13).
pub mod create {
    pub const GENERIC_READ: u32 = 0x8000_0000;
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    pub const SHARE_READ: u32 = 0x1;
    pub const SHARE_WRITE: u32 = 0x2;
    pub const FILE_OPEN: u32 = 1;
    pub const FILE_CREATE: u32 = 2;
    pub const FILE_OPEN_IF: u32 = 3;
    pub const FILE_OVERWRITE_IF: u32 = 5;
    pub const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
    pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
    pub const IMPERSONATION: u32 = 2;
}

/// SMB2 CREATE Request (MS-SMB2 2.2.13), without create contexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub desired_access: u32,
    pub file_attributes: u32,
    pub share_access: u32,
    pub create_disposition: u32,
    pub create_options: u32,
    /// Share-relative path, no leading backslash.
    pub name: String,
}

impl CreateRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.name);
        out.put_u16(57);
        out.put_u8(0); // SecurityFlags
        out.put_u8(0); // RequestedOplockLevel: none
        out.put_u32(create::IMPERSONATION);
        out.put_u64(0); // SmbCreateFlags
        out.put_u64(0); // Reserved
        out.put_u32(self.desired_access);
        out.put_u32(self.file_attributes);
        out.put_u32(self.share_access);
        out.put_u32(self.create_disposition);
        out.put_u32(self.create_options);
        out.put_u16((HEADER_LEN + 56) as u16);
        out.put_u16(name.len() as u16);
        out.put_u32(0);
        out.put_u32(0);
        out.extend_from_slice(&name);
        if name.is_empty() {
            // The Buffer is at least one byte (MS-SMB2 2.2.13).
            out.put_u8(0);
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 57)?;
        r.skip(2 + 4 + 16)?;
        let desired_access = r.u32()?;
        let file_attributes = r.u32()?;
        let share_access = r.u32()?;
        let create_disposition = r.u32()?;
        let create_options = r.u32()?;
        let off = r.u16()? as usize;
        let len = r.u16()? as usize;
        let name = from_utf16le(field(msg, off, len)?).ok_or(Smb2Error::OutOfBounds {
            offset: off,
            length: len,
        })?;
        Ok(CreateRequest {
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
        })
    }
}

/// SMB2 CREATE Response (MS-SMB2 2.2.14), the fields the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateResponse {
    pub create_action: u32,
    pub end_of_file: u64,
    pub file_attributes: u32,
    pub file_id: FileId,
}

impl CreateResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(89);
        out.put_u8(0);
        out.put_u8(0);
        out.put_u32(self.create_action);
        for _ in 0..4 {
            out.put_u64(0); // the four timestamps
        }
        out.put_u64(self.end_of_file.div_ceil(4096) * 4096); // AllocationSize
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
        out.extend_from_slice(&self.file_id);
        out.put_u32(0);
        out.put_u32(0);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 89)?;
        r.skip(2)?;
        let create_action = r.u32()?;
        r.skip(32 + 8)?;
        let end_of_file = r.u64()?;
        let file_attributes = r.u32()?;
        r.skip(4)?;
        Ok(CreateResponse {
            create_action,
            end_of_file,
            file_attributes,
            file_id: r.array()?,
        })
    }
}

/// SMB2 CLOSE Request (MS-SMB2 2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub file_id: FileId,
}

impl CloseRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(24);
        out.put_u16(0);
        out.put_u32(0);
        out.extend_from_slice(&self.file_id);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 24)?;
        r.skip(6)?;
        Ok(CloseRequest {
            file_id: r.array()?,
        })
    }
}

/// SMB2 CLOSE Response (MS-SMB2 2.2.16): nothing the client needs beyond
/// success, so only the size is checked.
pub fn encode_close_response(out: &mut Vec<u8>) {
    out.put_u16(60);
    out.extend_from_slice(&[0u8; 58]);
}

pub fn parse_close_response(msg: &[u8]) -> Result<(), Smb2Error> {
    let mut r = body(msg, 60)?;
    r.skip(58)?;
    Ok(())
}

/// Where READ and WRITE put their Buffer: right after the 48-byte fixed
/// part (MS-SMB2 2.2.19, 2.2.21).
pub const RW_BUFFER_OFFSET: usize = HEADER_LEN + 48;

/// SMB2 WRITE Request (MS-SMB2 2.2.21). Inline data, or (RDMA channels)
/// buffer descriptors the server RDMA-reads `remaining_bytes` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    pub offset: u64,
    pub file_id: FileId,
    pub channel: u32,
    /// Inline data; empty for RDMA.
    pub data: Vec<u8>,
    /// RDMA: total bytes the server reads through the descriptors.
    pub remaining_bytes: u32,
    pub channel_info: Vec<BufferDescriptorV1>,
}

impl WriteRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let rdma = self.channel != channel::NONE;
        let mut desc = Vec::new();
        BufferDescriptorV1::encode_list(&self.channel_info, &mut desc);
        out.put_u16(49);
        // RDMA writes carry Length 0 and DataOffset 0: the data travels by
        // RDMA Read, its size in RemainingBytes (ksmbd rejects otherwise).
        out.put_u16(if rdma { 0 } else { RW_BUFFER_OFFSET as u16 });
        out.put_u32(if rdma { 0 } else { self.data.len() as u32 });
        out.put_u64(self.offset);
        out.extend_from_slice(&self.file_id);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        out.put_u16(if rdma { RW_BUFFER_OFFSET as u16 } else { 0 });
        out.put_u16(if rdma { desc.len() as u16 } else { 0 });
        out.put_u32(0); // Flags
        if rdma {
            out.extend_from_slice(&desc);
        } else if self.data.is_empty() {
            out.put_u8(0);
        } else {
            out.extend_from_slice(&self.data);
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 49)?;
        let data_off = r.u16()? as usize;
        let len = r.u32()? as usize;
        let offset = r.u64()?;
        let file_id = r.array()?;
        let channel = r.u32()?;
        let remaining_bytes = r.u32()?;
        let ch_off = r.u16()? as usize;
        let ch_len = r.u16()? as usize;
        let channel_info = if channel != channel::NONE {
            BufferDescriptorV1::parse_list(field(msg, ch_off, ch_len)?).map_err(|_| {
                Smb2Error::OutOfBounds {
                    offset: ch_off,
                    length: ch_len,
                }
            })?
        } else {
            Vec::new()
        };
        Ok(WriteRequest {
            offset,
            file_id,
            channel,
            data: field(msg, data_off, len)?.to_vec(),
            remaining_bytes,
            channel_info,
        })
    }
}

/// SMB2 WRITE Response (MS-SMB2 2.2.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResponse {
    pub count: u32,
}

impl WriteResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(17);
        out.put_u16(0);
        out.put_u32(self.count);
        out.put_u32(0);
        out.put_u32(0);
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 17)?;
        r.skip(2)?;
        Ok(WriteResponse { count: r.u32()? })
    }
}

/// SMB2 READ Request (MS-SMB2 2.2.19). With an RDMA channel the server
/// RDMA-writes the data into the described buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub length: u32,
    pub offset: u64,
    pub file_id: FileId,
    pub minimum_count: u32,
    pub channel: u32,
    pub channel_info: Vec<BufferDescriptorV1>,
}

impl ReadRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let rdma = self.channel != channel::NONE;
        let mut desc = Vec::new();
        BufferDescriptorV1::encode_list(&self.channel_info, &mut desc);
        out.put_u16(49);
        // Padding: where the client wants inline data in the response
        // (header + 16-byte response body), as Windows asks.
        out.put_u8(0x50);
        out.put_u8(0); // Flags
        out.put_u32(self.length);
        out.put_u64(self.offset);
        out.extend_from_slice(&self.file_id);
        out.put_u32(self.minimum_count);
        out.put_u32(self.channel);
        out.put_u32(0); // RemainingBytes
        out.put_u16(if rdma { RW_BUFFER_OFFSET as u16 } else { 0 });
        out.put_u16(if rdma { desc.len() as u16 } else { 0 });
        if rdma {
            out.extend_from_slice(&desc);
        } else {
            out.put_u8(0);
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 49)?;
        r.skip(2)?;
        let length = r.u32()?;
        let offset = r.u64()?;
        let file_id = r.array()?;
        let minimum_count = r.u32()?;
        let channel = r.u32()?;
        r.skip(4)?;
        let ch_off = r.u16()? as usize;
        let ch_len = r.u16()? as usize;
        let channel_info = if channel != channel::NONE {
            BufferDescriptorV1::parse_list(field(msg, ch_off, ch_len)?).map_err(|_| {
                Smb2Error::OutOfBounds {
                    offset: ch_off,
                    length: ch_len,
                }
            })?
        } else {
            Vec::new()
        };
        Ok(ReadRequest {
            length,
            offset,
            file_id,
            minimum_count,
            channel,
            channel_info,
        })
    }
}

/// SMB2 READ Response (MS-SMB2 2.2.20). Over RDMA the data is already in
/// the client's buffers: DataLength is 0 and DataRemaining says how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResponse {
    pub data: Vec<u8>,
    pub data_remaining: u32,
}

impl ReadResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(17);
        out.put_u8(if self.data.is_empty() { 0 } else { 0x50 });
        out.put_u8(0);
        out.put_u32(self.data.len() as u32);
        out.put_u32(self.data_remaining);
        out.put_u32(0);
        if self.data.is_empty() {
            out.put_u8(0);
        } else {
            out.extend_from_slice(&self.data);
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self, Smb2Error> {
        let mut r = body(msg, 17)?;
        let off = r.u8()? as usize;
        r.skip(1)?;
        let len = r.u32()? as usize;
        let data_remaining = r.u32()?;
        Ok(ReadResponse {
            data: field(msg, off, len)?.to_vec(),
            data_remaining,
        })
    }
}

/// SMB2 ERROR Response (MS-SMB2 2.2.2): the error data, if any.
pub fn encode_error(out: &mut Vec<u8>) {
    out.put_u16(9);
    out.put_u8(0);
    out.put_u8(0);
    out.put_u32(0);
    out.put_u8(0);
}

pub fn parse_error(msg: &[u8]) -> Result<Vec<u8>, Smb2Error> {
    let mut r = body(msg, 9)?;
    r.skip(2)?;
    let n = r.u32()? as usize;
    Ok(field(msg, HEADER_LEN + 8, n)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb2::header::{Header, command};

    fn with_header(cmd: u16, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        Header {
            command: cmd,
            ..Header::default()
        }
        .encode(&mut v);
        f(&mut v);
        v
    }

    #[test]
    fn negotiate_311_with_contexts() {
        let req = NegotiateRequest {
            security_mode: security_mode::SIGNING_ENABLED,
            capabilities: capabilities::LARGE_MTU,
            client_guid: [7; 16],
            dialects: vec![0x0300, 0x0302, 0x0311],
            contexts: vec![
                NegContext::preauth_sha512(&[0xab; 32]),
                NegContext::signing(&[signing_alg::AES_GMAC, signing_alg::AES_CMAC]),
            ],
        };
        let m = with_header(command::NEGOTIATE, |o| req.encode(o));
        // Contexts start 8-aligned after the dialects (64+36+6 -> 112).
        assert_eq!(&m[64 + 28..64 + 32], &112u32.to_le_bytes());
        assert_eq!(&m[64 + 32..64 + 34], &2u16.to_le_bytes());
        assert_eq!(&m[112..114], &1u16.to_le_bytes());
        // The preauth context is 8 + 38 bytes; the next starts at 160.
        assert_eq!(&m[160..162], &8u16.to_le_bytes());
        assert_eq!(NegotiateRequest::parse(&m).unwrap(), req);
        assert_eq!(req.contexts[0].id_list(), Some(vec![context::HASH_SHA512]));
        assert_eq!(req.contexts[1].id_list(), Some(vec![2, 1]));

        let resp = NegotiateResponse {
            security_mode: 1,
            dialect: 0x0311,
            server_guid: [3; 16],
            capabilities: capabilities::LARGE_MTU,
            max_transact_size: 8 << 20,
            max_read_size: 8 << 20,
            max_write_size: 8 << 20,
            system_time: 1,
            security_buffer: vec![0x60, 0x00],
            contexts: vec![
                NegContext::preauth_sha512(&[1; 32]),
                NegContext::signing(&[signing_alg::AES_CMAC]),
            ],
        };
        let m = with_header(command::NEGOTIATE, |o| resp.encode(o));
        assert_eq!(NegotiateResponse::parse(&m).unwrap(), resp);
        let mut bad = m.clone();
        // Context offset past the end.
        bad[64 + 60..64 + 64].copy_from_slice(&9999u32.to_le_bytes());
        assert_eq!(
            NegotiateResponse::parse(&bad),
            Err(Smb2Error::BadNegotiateContext)
        );
        for n in 0..m.len() {
            assert!(NegotiateResponse::parse(&m[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn session_tree_create_close_round_trips() {
        let ss = SessionSetupRequest {
            flags: 0,
            security_mode: 2,
            capabilities: 0,
            previous_session_id: 0,
            token: b"token".to_vec(),
        };
        let m = with_header(command::SESSION_SETUP, |o| ss.encode(o));
        assert_eq!(&m[64 + 12..64 + 14], &88u16.to_le_bytes());
        assert_eq!(SessionSetupRequest::parse(&m).unwrap(), ss);
        let sr = SessionSetupResponse {
            session_flags: 0,
            token: vec![1, 2, 3],
        };
        let m = with_header(command::SESSION_SETUP, |o| sr.encode(o));
        assert_eq!(SessionSetupResponse::parse(&m).unwrap(), sr);
        let mut bad = m.clone();
        bad[64 + 6..64 + 8].copy_from_slice(&100u16.to_le_bytes());
        assert_eq!(
            SessionSetupResponse::parse(&bad),
            Err(Smb2Error::OutOfBounds {
                offset: 72,
                length: 100
            })
        );

        let tc = TreeConnectRequest {
            path: "\\\\10.0.0.2\\share".into(),
        };
        let m = with_header(command::TREE_CONNECT, |o| tc.encode(o));
        assert_eq!(TreeConnectRequest::parse(&m).unwrap(), tc);
        let tr = TreeConnectResponse {
            share_type: 1,
            share_flags: 0,
            capabilities: 0,
            maximal_access: 0x1f01ff,
        };
        let m = with_header(command::TREE_CONNECT, |o| tr.encode(o));
        assert_eq!(TreeConnectResponse::parse(&m).unwrap(), tr);

        let cr = CreateRequest {
            desired_access: create::GENERIC_READ | create::GENERIC_WRITE,
            file_attributes: create::FILE_ATTRIBUTE_NORMAL,
            share_access: create::SHARE_READ,
            create_disposition: create::FILE_OVERWRITE_IF,
            create_options: create::FILE_NON_DIRECTORY_FILE,
            name: "dir\\file.bin".into(),
        };
        let m = with_header(command::CREATE, |o| cr.encode(o));
        assert_eq!(&m[64 + 44..64 + 46], &120u16.to_le_bytes());
        assert_eq!(CreateRequest::parse(&m).unwrap(), cr);
        let cresp = CreateResponse {
            create_action: 2,
            end_of_file: 5000,
            file_attributes: 0x20,
            file_id: [0x11; 16],
        };
        let m = with_header(command::CREATE, |o| cresp.encode(o));
        assert_eq!(m.len(), 64 + 88);
        assert_eq!(CreateResponse::parse(&m).unwrap(), cresp);

        let cl = CloseRequest { file_id: [5; 16] };
        let m = with_header(command::CLOSE, |o| cl.encode(o));
        assert_eq!(CloseRequest::parse(&m).unwrap(), cl);
        let m = with_header(command::CLOSE, encode_close_response);
        assert_eq!(parse_close_response(&m), Ok(()));
        let m = with_header(command::LOGOFF, encode_empty4);
        assert_eq!(parse_empty4(&m), Ok(()));
        assert_eq!(
            parse_close_response(&m),
            Err(Smb2Error::BadStructureSize { want: 60, got: 4 })
        );
    }

    #[test]
    fn rdma_write_and_read_requests() {
        let desc = vec![BufferDescriptorV1 {
            offset: 0x7f00_0000_1000,
            token: 0x1234,
            length: 1 << 20,
        }];
        let w = WriteRequest {
            offset: 0,
            file_id: [9; 16],
            channel: channel::RDMA_V1_INVALIDATE,
            data: vec![],
            remaining_bytes: 1 << 20,
            channel_info: desc.clone(),
        };
        let m = with_header(command::WRITE, |o| w.encode(o));
        // DataOffset 0, Length 0, RemainingBytes, channel info at 112.
        assert_eq!(&m[66..72], &[0; 6]);
        assert_eq!(&m[64 + 32..64 + 36], &2u32.to_le_bytes());
        assert_eq!(&m[64 + 36..64 + 40], &(1u32 << 20).to_le_bytes());
        assert_eq!(&m[64 + 40..64 + 44], &[112, 0, 16, 0]);
        assert_eq!(m.len(), 112 + 16);
        assert_eq!(WriteRequest::parse(&m).unwrap(), w);

        let inline = WriteRequest {
            channel: channel::NONE,
            data: b"abc".to_vec(),
            remaining_bytes: 0,
            channel_info: vec![],
            ..w.clone()
        };
        let m = with_header(command::WRITE, |o| inline.encode(o));
        assert_eq!(WriteRequest::parse(&m).unwrap(), inline);

        let r = ReadRequest {
            length: 1 << 20,
            offset: 4096,
            file_id: [9; 16],
            minimum_count: 0,
            channel: channel::RDMA_V1,
            channel_info: desc.clone(),
        };
        let m = with_header(command::READ, |o| r.encode(o));
        assert_eq!(&m[64 + 44..64 + 48], &[112, 0, 16, 0]);
        assert_eq!(ReadRequest::parse(&m).unwrap(), r);
        // A descriptor list that is not a multiple of 16 is rejected.
        let mut bad = m.clone();
        bad[64 + 46] = 15;
        assert!(ReadRequest::parse(&bad).is_err());

        let rr = ReadResponse {
            data: vec![],
            data_remaining: 1 << 20,
        };
        let m = with_header(command::READ, |o| rr.encode(o));
        assert_eq!(ReadResponse::parse(&m).unwrap(), rr);
        let rr = ReadResponse {
            data: b"inline".to_vec(),
            data_remaining: 0,
        };
        let m = with_header(command::READ, |o| rr.encode(o));
        assert_eq!(ReadResponse::parse(&m).unwrap(), rr);
        let wr = WriteResponse { count: 77 };
        let m = with_header(command::WRITE, |o| wr.encode(o));
        assert_eq!(WriteResponse::parse(&m).unwrap(), wr);
        let m = with_header(command::WRITE, encode_error);
        assert_eq!(parse_error(&m).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn truncations_never_panic() {
        let w = WriteRequest {
            offset: 0,
            file_id: [0; 16],
            channel: channel::RDMA_V1,
            data: vec![],
            remaining_bytes: 1,
            channel_info: vec![BufferDescriptorV1 {
                offset: 0,
                token: 0,
                length: 1,
            }],
        };
        let m = with_header(command::WRITE, |o| w.encode(o));
        for n in 0..m.len() {
            assert!(WriteRequest::parse(&m[..n]).is_err());
            let _ = ReadRequest::parse(&m[..n]);
            let _ = CreateResponse::parse(&m[..n]);
            let _ = NegotiateRequest::parse(&m[..n]);
            let _ = SessionSetupResponse::parse(&m[..n]);
            let _ = parse_error(&m[..n]);
        }
    }
}
