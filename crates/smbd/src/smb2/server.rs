//! A small sans-IO SMB 3.x server session, the peer the client is tested
//! against (behind the `server` feature).
//!
//! It is written from MS-SMB2 and MS-NLMP, independently of the client:
//! NEGOTIATE (3.0, 3.0.2, 3.1.1 with SHA-512 preauth integrity and a
//! signing context), SESSION_SETUP with NTLMv2 in SPNEGO verified by
//! recomputing the proof from the password, TREE_CONNECT of one share,
//! then CREATE/WRITE/READ/CLOSE on an in-memory file store, and LOGOFF.
//! Once the session key exists every request must carry a valid
//! signature and every response is signed.
//!
//! RDMA channels (MS-SMB2 3.3.5.12, 3.3.5.13): a WRITE whose data is in the
//! client's registered memory comes out of [`Server::handle`] as
//! [`Action::Pull`] and a READ answered by RDMA Write as [`Action::Push`];
//! the shell moves the bytes (NdkRead / NdkWrite, or a simulation) and
//! hands the result to [`Server::finish_pull`] / [`Server::finish_push`]
//! for the response. For `SMB2_CHANNEL_RDMA_V1_INVALIDATE` the response
//! names the token the shell must invalidate with its send
//! ([`Response::invalidate`]).
//!
//! Requests a correct client never sends (bad signatures, malformed
//! messages, RDMA data inline) are [`ServerError`]s: the shell ends the
//! connection. Ordinary failures (unknown file, wrong share) are answered
//! with an error status.

use std::collections::BTreeMap;

use super::header::{Header, SIGNATURE_OFFSET, command, flags};
use super::msg::{
    self, CloseRequest, CreateRequest, CreateResponse, FileId, NegContext, NegotiateRequest,
    NegotiateResponse, ReadRequest, ReadResponse, SessionSetupRequest, SessionSetupResponse,
    TreeConnectRequest, TreeConnectResponse, WriteRequest, WriteResponse, capabilities, channel,
    context, signing_alg,
};
use super::signing::{PreauthHash, SignError, Signer, signing_key};
use super::{Smb2Error, dialect, status};
use crate::bytes::{Reader, from_utf16le, utf16le};
use crate::ntlm::{self, spnego};
use crate::smbd::wire::BufferDescriptorV1;

/// Statuses only the server sends (MS-ERREF 2.3).
pub mod server_status {
    pub const INVALID_PARAMETER: u32 = 0xC000_000D;
    pub const OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
    pub const OBJECT_NAME_COLLISION: u32 = 0xC000_0035;
    pub const NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
    pub const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
    pub const FILE_CLOSED: u32 = 0xC000_0128;
    pub const USER_SESSION_DELETED: u32 = 0xC000_0203;
    pub const NOT_SUPPORTED: u32 = 0xC000_00BB;
}
use server_status as st;

/// Server parameters.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The one account: its user name (compared case-insensitively, as
    /// NTOWFv2 upper-cases it) and password.
    pub user: String,
    pub password: String,
    /// The NTLM server challenge.
    pub challenge: [u8; 8],
    /// The 3.1.1 signing algorithm; the client must offer it.
    pub signing_algorithm: u16,
    /// The one share, as TREE_CONNECT names it (`\\server\share`).
    pub tree_path: String,
    pub tree_id: u32,
    pub session_id: u64,
    /// MaxReadSize, MaxWriteSize and MaxTransactSize offered.
    pub max_io: u32,
    /// Fault injection: the signed responses to this command carry a
    /// corrupted signature (a client must refuse them).
    pub corrupt_signature: Option<u16>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            user: String::new(),
            password: String::new(),
            challenge: [9, 8, 7, 6, 5, 4, 3, 2],
            signing_algorithm: signing_alg::AES_GMAC,
            tree_path: String::new(),
            tree_id: 5,
            session_id: 0x0000_1234_0000_0001,
            max_io: 8 << 20,
            corrupt_signature: None,
        }
    }
}

/// A request the server will not serve: the shell ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerError {
    Malformed(Smb2Error),
    /// A request without a valid signature once signing is on.
    Signature {
        command: u16,
        error: SignError,
    },
    /// Signing a response failed (no key, or an unsupported algorithm).
    Sign(SignError),
    /// Something a correct client does not send.
    Protocol {
        command: u16,
        what: &'static str,
    },
    UnknownCommand(u16),
}

impl From<Smb2Error> for ServerError {
    fn from(e: Smb2Error) -> Self {
        ServerError::Malformed(e)
    }
}

/// A response for the shell to send as one upper-layer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub message: Vec<u8>,
    /// RDMA_V1_INVALIDATE: the token the send carrying this response must
    /// invalidate at the client (Send with Invalidate).
    pub invalidate: Option<u32>,
}

/// What one request asks of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this.
    Respond(Response),
    /// RDMA-read the client's buffers, then [`Server::finish_pull`].
    Pull(Pull),
    /// RDMA-write into the client's buffers, then [`Server::finish_push`].
    Push(Push),
}

/// An RDMA-channel WRITE waiting for its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    header: Header,
    file_id: FileId,
    offset: u64,
    /// Where the data is, in order.
    pub descriptors: Vec<BufferDescriptorV1>,
    /// Bytes in all (RemainingBytes, the descriptors' sum).
    pub length: u32,
    invalidate: Option<u32>,
}

impl Pull {
    /// Each descriptor with where its bytes go in the data.
    pub fn segments(&self) -> Vec<(BufferDescriptorV1, usize)> {
        let mut at = 0usize;
        self.descriptors
            .iter()
            .map(|d| {
                let s = (*d, at);
                at += d.length as usize;
                s
            })
            .collect()
    }
}

/// An RDMA-channel READ whose data must reach the client first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    header: Header,
    /// Where the data goes, in order (it may fill them only in part).
    pub descriptors: Vec<BufferDescriptorV1>,
    /// The bytes read from the file.
    pub data: Vec<u8>,
    invalidate: Option<u32>,
}

impl Push {
    /// Each descriptor cut to the bytes it receives, with where they start
    /// in the data; descriptors past the end of the data are left out.
    pub fn segments(&self) -> Vec<(BufferDescriptorV1, usize)> {
        let mut at = 0usize;
        let mut out = Vec::new();
        for d in &self.descriptors {
            let n = (d.length as usize).min(self.data.len().saturating_sub(at));
            if n == 0 {
                break;
            }
            out.push((
                BufferDescriptorV1 {
                    length: n as u32,
                    ..*d
                },
                at,
            ));
            at += n;
        }
        out
    }
}

/// One client connection's SMB2 server state over a file store.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    dialect: u16,
    algorithm: u16,
    preauth: PreauthHash,
    signer: Option<Signer>,
    /// The CHALLENGE_MESSAGE sent (its bytes enter nothing here, but a
    /// second AUTHENTICATE without one is refused).
    challenged: bool,
    authenticated: bool,
    tree_connected: bool,
    files: BTreeMap<String, Vec<u8>>,
    /// Ordered, not hashed (as the client's pending requests).
    opens: BTreeMap<FileId, String>,
    next_file: u64,
    invalidated: Vec<u32>,
}

impl Server {
    /// A server with no files.
    pub fn new(cfg: ServerConfig) -> Self {
        Server::with_files(cfg, BTreeMap::new())
    }

    /// A server over an existing store (files outlive connections).
    pub fn with_files(cfg: ServerConfig, files: BTreeMap<String, Vec<u8>>) -> Self {
        Server {
            cfg,
            dialect: 0,
            algorithm: signing_alg::AES_CMAC,
            preauth: PreauthHash::default(),
            signer: None,
            challenged: false,
            authenticated: false,
            tree_connected: false,
            files,
            opens: BTreeMap::new(),
            next_file: 1,
            invalidated: Vec::new(),
        }
    }

    /// The dialect negotiated (0 before NEGOTIATE).
    pub fn dialect(&self) -> u16 {
        self.dialect
    }

    /// The signing algorithm in use.
    pub fn signing_algorithm(&self) -> u16 {
        self.algorithm
    }

    /// The store, by name.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    pub fn into_files(self) -> BTreeMap<String, Vec<u8>> {
        self.files
    }

    /// The contents of an open file.
    pub fn file(&self, id: &FileId) -> Option<&[u8]> {
        let name = self.opens.get(id)?;
        self.files.get(name).map(Vec::as_slice)
    }

    /// Tokens the responses asked the shell to invalidate, in order.
    pub fn invalidated(&self) -> &[u32] {
        &self.invalidated
    }

    /// Takes one SMB2 request (a reassembled MS-SMBD message).
    pub fn handle(&mut self, m: &[u8]) -> Result<Action, ServerError> {
        let h = Header::parse(m)?;
        if h.is_response() {
            return Err(protocol(&h, "a response sent to the server"));
        }
        if let Some(s) = &self.signer {
            s.verify(m).map_err(|error| ServerError::Signature {
                command: h.command,
                error,
            })?;
        }
        let respond = |r: Vec<u8>| {
            Ok(Action::Respond(Response {
                message: r,
                invalidate: None,
            }))
        };
        match h.command {
            command::NEGOTIATE => respond(self.negotiate(&h, m)?),
            command::SESSION_SETUP => respond(self.session_setup(&h, m)?),
            command::TREE_CONNECT => respond(self.tree_connect(&h, m)?),
            command::LOGOFF => {
                if !self.authenticated || h.session_id != self.cfg.session_id {
                    return respond(self.error(&h, st::USER_SESSION_DELETED)?);
                }
                msg::parse_empty4(m)?;
                let out = self.response(&h, status::SUCCESS, msg::encode_empty4)?;
                self.signer = None;
                self.authenticated = false;
                self.tree_connected = false;
                self.opens.clear();
                respond(out)
            }
            command::CREATE | command::CLOSE | command::WRITE | command::READ => {
                if !self.authenticated || h.session_id != self.cfg.session_id {
                    return respond(self.error(&h, st::USER_SESSION_DELETED)?);
                }
                if !self.tree_connected || h.tree_id != self.cfg.tree_id {
                    return respond(self.error(&h, st::NETWORK_NAME_DELETED)?);
                }
                match h.command {
                    command::CREATE => respond(self.create(&h, m)?),
                    command::CLOSE => {
                        let req = CloseRequest::parse(m)?;
                        if self.opens.remove(&req.file_id).is_none() {
                            return respond(self.error(&h, st::FILE_CLOSED)?);
                        }
                        respond(self.response(&h, status::SUCCESS, msg::encode_close_response)?)
                    }
                    command::WRITE => self.write(&h, m),
                    _ => self.read(&h, m),
                }
            }
            c => Err(ServerError::UnknownCommand(c)),
        }
    }

    /// The data of a [`Action::Pull`] arrived: store it and answer.
    pub fn finish_pull(&mut self, p: Pull, data: &[u8]) -> Result<Response, ServerError> {
        if data.len() != p.length as usize {
            return Err(protocol(&p.header, "pulled data of another length"));
        }
        let Some(name) = self.opens.get(&p.file_id) else {
            return Ok(Response {
                message: self.error(&p.header, st::FILE_CLOSED)?,
                invalidate: p.invalidate,
            });
        };
        let f = self.files.entry(name.clone()).or_default();
        store(f, p.offset, data);
        let message = self.response(&p.header, status::SUCCESS, |o| {
            WriteResponse { count: p.length }.encode(o)
        })?;
        self.invalidated.extend(p.invalidate);
        Ok(Response {
            message,
            invalidate: p.invalidate,
        })
    }

    /// The data of a [`Action::Push`] is in the client's buffers: answer
    /// with the count in DataRemaining.
    pub fn finish_push(&mut self, p: Push) -> Result<Response, ServerError> {
        let message = self.response(&p.header, status::SUCCESS, |o| {
            ReadResponse {
                data: Vec::new(),
                data_remaining: p.data.len() as u32,
            }
            .encode(o)
        })?;
        self.invalidated.extend(p.invalidate);
        Ok(Response {
            message,
            invalidate: p.invalidate,
        })
    }

    // -----------------------------------------------------------------

    /// A response header for `req` with `body`, signed once a key exists.
    fn response(
        &self,
        req: &Header,
        status: u32,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Vec<u8>, ServerError> {
        let mut m = Vec::new();
        Header {
            credit_charge: req.credit_charge,
            status,
            command: req.command,
            credits: req.credits.max(1),
            flags: flags::SERVER_TO_REDIR,
            message_id: req.message_id,
            tree_id: req.tree_id,
            session_id: if req.command == command::NEGOTIATE {
                0
            } else {
                self.cfg.session_id
            },
            ..Header::default()
        }
        .encode(&mut m);
        body(&mut m);
        if let Some(s) = &self.signer {
            s.sign(&mut m).map_err(ServerError::Sign)?;
            if self.cfg.corrupt_signature == Some(req.command)
                && let Some(b) = m.get_mut(SIGNATURE_OFFSET + 2)
            {
                *b ^= 0xff;
            }
        }
        Ok(m)
    }

    fn error(&self, req: &Header, status: u32) -> Result<Vec<u8>, ServerError> {
        self.response(req, status, msg::encode_error)
    }

    fn negotiate(&mut self, h: &Header, m: &[u8]) -> Result<Vec<u8>, ServerError> {
        if self.dialect != 0 {
            return Err(protocol(h, "a second NEGOTIATE"));
        }
        let req = NegotiateRequest::parse(m)?;
        if req.capabilities & capabilities::ENCRYPTION != 0 {
            return Err(protocol(h, "encryption asked for (not offered here)"));
        }
        let Some(d) = req
            .dialects
            .iter()
            .copied()
            .filter(|d| [dialect::SMB300, dialect::SMB302, dialect::SMB311].contains(d))
            .max()
        else {
            return self.error(h, st::NOT_SUPPORTED);
        };
        self.dialect = d;
        let mut contexts = vec![];
        if d == dialect::SMB311 {
            self.preauth.update(m);
            let preauth_ok = req
                .contexts
                .iter()
                .find(|c| c.ty == context::PREAUTH_INTEGRITY)
                .and_then(NegContext::id_list)
                .is_some_and(|ids| ids.contains(&context::HASH_SHA512));
            if !preauth_ok {
                return Err(protocol(h, "3.1.1 without SHA-512 preauth integrity"));
            }
            let offered = req
                .contexts
                .iter()
                .find(|c| c.ty == context::SIGNING)
                .and_then(NegContext::id_list)
                .unwrap_or_default();
            if !offered.contains(&self.cfg.signing_algorithm) {
                return Err(protocol(h, "the signing algorithm is not offered"));
            }
            self.algorithm = self.cfg.signing_algorithm;
            contexts.push(NegContext::preauth_sha512(&[0x33; 32]));
            contexts.push(NegContext::signing(&[self.algorithm]));
        } else {
            // 3.0 and 3.0.2 sign with AES-CMAC (MS-SMB2 3.1.4.1).
            self.algorithm = signing_alg::AES_CMAC;
        }
        let resp = NegotiateResponse {
            security_mode: msg::security_mode::SIGNING_ENABLED,
            dialect: d,
            server_guid: [0x5e; 16],
            capabilities: capabilities::LARGE_MTU,
            max_transact_size: self.cfg.max_io,
            max_read_size: self.cfg.max_io,
            max_write_size: self.cfg.max_io,
            system_time: 0,
            security_buffer: vec![],
            contexts,
        };
        let out = self.response(h, status::SUCCESS, |o| resp.encode(o))?;
        if d == dialect::SMB311 {
            self.preauth.update(&out);
        }
        Ok(out)
    }

    fn session_setup(&mut self, h: &Header, m: &[u8]) -> Result<Vec<u8>, ServerError> {
        if self.dialect == 0 {
            return Err(protocol(h, "SESSION_SETUP before NEGOTIATE"));
        }
        if self.authenticated {
            return Err(protocol(h, "a second SESSION_SETUP (no re-authentication)"));
        }
        let req = SessionSetupRequest::parse(m)?;
        if req.security_mode & 2 == 0 {
            return Err(protocol(h, "the client does not require signing"));
        }
        if self.dialect == dialect::SMB311 {
            self.preauth.update(m);
        }
        if h.session_id == 0 {
            // NegTokenInit carrying NTLM NEGOTIATE_MESSAGE.
            let ntlm_inside =
                req.token.first() == Some(&0x60) && req.token.windows(8).any(|w| w == b"NTLMSSP\0");
            if !ntlm_inside {
                return Err(protocol(h, "no NTLMSSP in the first token"));
            }
            self.challenged = true;
            let mut seq = spnego::tlv(0xa0, &spnego::tlv(0x0a, &[1])); // accept-incomplete
            seq.extend(spnego::tlv(0xa1, &spnego::tlv(0x06, spnego::NTLMSSP_OID)));
            seq.extend(spnego::tlv(
                0xa2,
                &spnego::tlv(0x04, &challenge_message(&self.cfg.challenge)),
            ));
            let token = spnego::tlv(0xa1, &spnego::tlv(0x30, &seq));
            let resp = SessionSetupResponse {
                session_flags: 0,
                token,
            };
            let out = self.response(h, status::MORE_PROCESSING_REQUIRED, |o| resp.encode(o))?;
            if self.dialect == dialect::SMB311 {
                self.preauth.update(&out);
            }
            return Ok(out);
        }
        if h.session_id != self.cfg.session_id || !self.challenged {
            return self.error(h, st::USER_SESSION_DELETED);
        }
        let auth = spnego::parse_neg_token_resp(&req.token)
            .ok()
            .and_then(|t| t.response_token);
        let key = auth.and_then(|a| self.verify_ntlm(&a));
        let Some(session_key) = key else {
            return self.error(h, status::LOGON_FAILURE);
        };
        // The preauth hash now ends with the final request: the 3.1.1 key
        // context (MS-SMB2 3.3.5.5.3).
        let key = signing_key(self.dialect, &session_key, &self.preauth.0);
        self.signer = Some(Signer {
            key,
            algorithm: self.algorithm,
        });
        self.authenticated = true;
        let resp = SessionSetupResponse {
            session_flags: 0,
            token: vec![],
        };
        self.response(h, status::SUCCESS, |o| resp.encode(o))
    }

    /// MS-NLMP 3.3.2 from the server side: the NTProofStr recomputed from
    /// the password and the client's blob must match; then the exported
    /// session key (sent RC4-encrypted under KEY_EXCH) is recovered.
    fn verify_ntlm(&self, m: &[u8]) -> Option<[u8; 16]> {
        let field = |at: usize| -> Option<&[u8]> {
            let mut r = Reader::new(m);
            r.skip(at).ok()?;
            let len = r.u16().ok()? as usize;
            r.skip(2).ok()?;
            let off = r.u32().ok()? as usize;
            crate::bytes::slice_at(m, off, len).ok()
        };
        if m.get(..12)? != b"NTLMSSP\0\x03\0\0\0" {
            return None;
        }
        let nt = field(20)?;
        let domain = from_utf16le(field(28)?)?;
        let user = from_utf16le(field(36)?)?;
        let enc_key: [u8; 16] = field(52)?.try_into().ok()?;
        if !self.cfg.user.is_empty() && !user.eq_ignore_ascii_case(&self.cfg.user) {
            return None;
        }
        // NTProofStr (16), then the blob: version (2), reserved (6), time
        // (8), client challenge (8), reserved (4), AV pairs, 4 zero bytes.
        let blob = nt.get(16..)?;
        let time = u64::from_le_bytes(blob.get(8..16)?.try_into().ok()?);
        let cc: [u8; 8] = blob.get(16..24)?.try_into().ok()?;
        let ti = blob.get(28..blob.len().checked_sub(4)?)?;
        let key = ntlm::ntowf_v2(&self.cfg.password, &user, &domain);
        let r = ntlm::v2_response(&key, &self.cfg.challenge, &cc, time, ti, true);
        if r.nt_response != nt {
            return None;
        }
        Some(ntlm::rc4_16(&r.session_base_key, &enc_key))
    }

    fn tree_connect(&mut self, h: &Header, m: &[u8]) -> Result<Vec<u8>, ServerError> {
        if !self.authenticated || h.session_id != self.cfg.session_id {
            return self.error(h, st::USER_SESSION_DELETED);
        }
        let req = TreeConnectRequest::parse(m)?;
        if !req.path.eq_ignore_ascii_case(&self.cfg.tree_path) {
            return self.error(h, st::BAD_NETWORK_NAME);
        }
        self.tree_connected = true;
        let mut hh = *h;
        hh.tree_id = self.cfg.tree_id;
        let resp = TreeConnectResponse {
            share_type: 1,
            share_flags: 0,
            capabilities: 0,
            maximal_access: 0x001f_01ff,
        };
        self.response(&hh, status::SUCCESS, |o| resp.encode(o))
    }

    fn create(&mut self, h: &Header, m: &[u8]) -> Result<Vec<u8>, ServerError> {
        let req = CreateRequest::parse(m)?;
        let exists = self.files.contains_key(&req.name);
        // CreateAction: 1 opened, 2 created, 3 overwritten (MS-SMB2 2.2.14).
        let action = match req.create_disposition {
            msg::create::FILE_OPEN if !exists => {
                return self.error(h, st::OBJECT_NAME_NOT_FOUND);
            }
            msg::create::FILE_CREATE if exists => {
                return self.error(h, st::OBJECT_NAME_COLLISION);
            }
            msg::create::FILE_OPEN | msg::create::FILE_OPEN_IF if exists => 1,
            _ if exists => 3,
            _ => 2,
        };
        if action != 1 {
            self.files.insert(req.name.clone(), Vec::new());
        }
        // Persistent and volatile halves, both unique per open.
        let mut id = [0u8; 16];
        let halves = self.next_file.to_le_bytes().into_iter();
        for (d, s) in id
            .iter_mut()
            .zip(halves.chain((!self.next_file).to_le_bytes()))
        {
            *d = s;
        }
        self.next_file += 1;
        let end_of_file = self.files.get(&req.name).map_or(0, Vec::len) as u64;
        self.opens.insert(id, req.name);
        let resp = CreateResponse {
            create_action: action,
            end_of_file,
            file_attributes: msg::create::FILE_ATTRIBUTE_NORMAL,
            file_id: id,
        };
        self.response(h, status::SUCCESS, |o| resp.encode(o))
    }

    fn write(&mut self, h: &Header, m: &[u8]) -> Result<Action, ServerError> {
        let req = WriteRequest::parse(m)?;
        let respond = |message| {
            Ok(Action::Respond(Response {
                message,
                invalidate: None,
            }))
        };
        let Some(name) = self.opens.get(&req.file_id).cloned() else {
            return respond(self.error(h, st::FILE_CLOSED)?);
        };
        let rdma = req.channel != channel::NONE;
        let len = if rdma {
            req.remaining_bytes
        } else {
            req.data.len() as u32
        };
        // CreditCharge must cover the payload, 64 KiB per credit
        // (MS-SMB2 3.3.5.2.5).
        if u64::from(h.credit_charge.max(1)) * 65536 < u64::from(len) {
            return Err(protocol(h, "CreditCharge too small for the WRITE"));
        }
        if len > self.cfg.max_io {
            return respond(self.error(h, st::INVALID_PARAMETER)?);
        }
        match req.channel {
            channel::NONE => {
                let f = self.files.entry(name).or_default();
                store(f, req.offset, &req.data);
                let message = self.response(h, status::SUCCESS, |o| {
                    WriteResponse { count: len }.encode(o)
                })?;
                respond(message)
            }
            channel::RDMA_V1 | channel::RDMA_V1_INVALIDATE => {
                if !req.data.is_empty() {
                    return Err(protocol(h, "an RDMA-channel WRITE with inline data"));
                }
                let sum: u64 = req.channel_info.iter().map(|d| u64::from(d.length)).sum();
                if req.channel_info.is_empty() || sum != u64::from(len) {
                    return respond(self.error(h, st::INVALID_PARAMETER)?);
                }
                let invalidate = invalidation(req.channel, &req.channel_info);
                Ok(Action::Pull(Pull {
                    header: *h,
                    file_id: req.file_id,
                    offset: req.offset,
                    descriptors: req.channel_info,
                    length: len,
                    invalidate,
                }))
            }
            _ => respond(self.error(h, st::INVALID_PARAMETER)?),
        }
    }

    fn read(&mut self, h: &Header, m: &[u8]) -> Result<Action, ServerError> {
        let req = ReadRequest::parse(m)?;
        let respond = |message| {
            Ok(Action::Respond(Response {
                message,
                invalidate: None,
            }))
        };
        if u64::from(h.credit_charge.max(1)) * 65536 < u64::from(req.length) {
            return Err(protocol(h, "CreditCharge too small for the READ"));
        }
        if req.length > self.cfg.max_io {
            return respond(self.error(h, st::INVALID_PARAMETER)?);
        }
        let Some(f) = self.file(&req.file_id) else {
            return respond(self.error(h, st::FILE_CLOSED)?);
        };
        let start = usize::try_from(req.offset)
            .unwrap_or(usize::MAX)
            .min(f.len());
        let end = start.saturating_add(req.length as usize).min(f.len());
        let data = f.get(start..end).unwrap_or_default().to_vec();
        match req.channel {
            channel::NONE => {
                let message = self.response(h, status::SUCCESS, |o| {
                    ReadResponse {
                        data,
                        data_remaining: 0,
                    }
                    .encode(o)
                })?;
                respond(message)
            }
            channel::RDMA_V1 | channel::RDMA_V1_INVALIDATE => {
                let room: u64 = req.channel_info.iter().map(|d| u64::from(d.length)).sum();
                if req.channel_info.is_empty() || room < data.len() as u64 {
                    return respond(self.error(h, st::INVALID_PARAMETER)?);
                }
                let invalidate = invalidation(req.channel, &req.channel_info);
                Ok(Action::Push(Push {
                    header: *h,
                    descriptors: req.channel_info,
                    data,
                    invalidate,
                }))
            }
            _ => respond(self.error(h, st::INVALID_PARAMETER)?),
        }
    }
}

fn protocol(h: &Header, what: &'static str) -> ServerError {
    ServerError::Protocol {
        command: h.command,
        what,
    }
}

/// The token a RDMA_V1_INVALIDATE response invalidates: the first
/// descriptor's (MS-SMB2 3.3.5.12: the client registers one region).
fn invalidation(ch: u32, d: &[BufferDescriptorV1]) -> Option<u32> {
    if ch == channel::RDMA_V1_INVALIDATE {
        d.first().map(|d| d.token)
    } else {
        None
    }
}

/// Writes `data` at `offset`, growing the file with zeros as needed.
fn store(f: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let at = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = at.saturating_add(data.len());
    if f.len() < end {
        f.resize(end, 0);
    }
    if let Some(d) = f.get_mut(at..end) {
        d.copy_from_slice(data);
    }
}

/// A CHALLENGE_MESSAGE as ksmbd builds one (MS-NLMP 2.2.1.2): no target
/// name, NetBIOS names and a timestamp in the target info.
pub fn challenge_message(challenge: &[u8; 8]) -> Vec<u8> {
    let mut ti = Vec::new();
    for (id, val) in [
        (2u16, utf16le("KSMBD")),
        (1, utf16le("VM")),
        (7, 0x01da_0000_0000_0000u64.to_le_bytes().to_vec()),
    ] {
        ti.extend_from_slice(&id.to_le_bytes());
        ti.extend_from_slice(&(val.len() as u16).to_le_bytes());
        ti.extend_from_slice(&val);
    }
    ti.extend_from_slice(&[0; 4]);
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]); // empty TargetName
    m.extend_from_slice(&0xe28a_8235u32.to_le_bytes());
    m.extend_from_slice(challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(&ti);
    m
}
