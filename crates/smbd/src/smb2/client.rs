//! A sans-IO SMB 3.x client session: NEGOTIATE, SESSION_SETUP with NTLMv2
//! in SPNEGO, TREE_CONNECT, then CREATE/WRITE/READ/CLOSE on request, and
//! LOGOFF.
//!
//! Messages to send come out of [`Client::poll_transmit`] (hand them to
//! the MS-SMBD connection as upper-layer messages); messages received go
//! into [`Client::handle_message`]; results come out of
//! [`Client::poll_event`]. Random values (GUID, salt, NTLM challenge and
//! session key) and the time are configuration, so runs are reproducible.
//!
//! RDMA transfers: the caller registers its buffer (through NDK), passes
//! the descriptors here, and the server moves the data by RDMA Read
//! (WRITE) or RDMA Write (READ) before it answers.

use std::collections::{BTreeMap, VecDeque};

use super::header::{HEADER_LEN, Header, command, flags};
use super::msg::{
    self, CloseRequest, CreateRequest, CreateResponse, FileId, NegContext, NegotiateRequest,
    NegotiateResponse, ReadRequest, ReadResponse, SessionSetupRequest, SessionSetupResponse,
    TreeConnectRequest, TreeConnectResponse, WriteRequest, WriteResponse, capabilities, channel,
    context, security_mode, signing_alg,
};
use super::signing::{PreauthHash, SignError, Signer, signing_key};
use super::{Smb2Error, dialect, status};
use crate::ntlm::{self, Credentials, spnego};
use crate::smbd::wire::BufferDescriptorV1;

/// Client parameters, random inputs included.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server name or address, for the tree path `\\server\share`.
    pub server: String,
    pub share: String,
    pub credentials: Credentials,
    /// Dialects offered; SMB Direct needs 3.0 or later.
    pub dialects: Vec<u16>,
    /// Signing algorithms offered for 3.1.1, in preference order.
    pub signing_algorithms: Vec<u16>,
    /// Ask the server to sign everything (SESSION_SETUP SecurityMode).
    pub require_signing: bool,
    pub client_guid: [u8; 16],
    pub preauth_salt: [u8; 32],
    pub client_challenge: [u8; 8],
    pub random_session_key: [u8; 16],
    /// FILETIME for the NTLMv2 blob when the server sends no timestamp.
    pub filetime_now: u64,
}

/// How the client failed; after one of these it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    Malformed(Smb2Error),
    /// A response with a failure status.
    Status {
        command: u16,
        status: u32,
    },
    /// The server chose a dialect not offered, or an SMB2 2.x one.
    Dialect(u16),
    /// A 3.1.1 negotiate without SHA-512 preauth integrity.
    NoPreauthIntegrity,
    Ntlm(ntlm::NtlmError),
    Spnego(spnego::SpnegoError),
    /// The server rejected authentication in SPNEGO.
    Rejected,
    Signature(SignError),
    /// A response to no outstanding request.
    UnknownMessageId(u64),
    /// A request the current phase does not allow.
    NotReady,
    /// Not enough SMB2 credits for the request; wait for responses.
    NoCredits {
        need: u16,
        have: u16,
    },
}

/// Session progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Negotiating,
    Authenticating,
    TreeConnecting,
    /// Tree connected: file operations allowed.
    Ready,
    LoggingOff,
    LoggedOff,
    Failed(ClientError),
}

/// Results for the caller, tagged with the request's MessageId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Negotiated, authenticated and tree connected.
    Ready {
        dialect: u16,
        signing_algorithm: Option<u16>,
        max_read_size: u32,
        max_write_size: u32,
    },
    Created {
        id: u64,
        response: CreateResponse,
    },
    Written {
        id: u64,
        count: u32,
    },
    /// `data` is empty for RDMA reads; `data_remaining` is the byte count
    /// the server wrote into the caller's buffers.
    Read {
        id: u64,
        data: Vec<u8>,
        data_remaining: u32,
    },
    /// A file operation that failed with a status; the session continues.
    OperationFailed {
        id: u64,
        command: u16,
        status: u32,
    },
    Closed {
        id: u64,
    },
    LoggedOff,
    Failed(ClientError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Negotiate,
    SessionSetup,
    TreeConnect,
    Create,
    Write,
    Read,
    Close,
    Logoff,
}

/// Credits asked for with each request: enough to keep several 1 MiB
/// RDMA reads and writes (16 credits each) in flight.
const CREDIT_TARGET: u16 = 256;

/// The client state machine.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    phase: Phase,
    next_id: u64,
    credits: u16,
    session_id: u64,
    tree_id: u32,
    dialect: u16,
    signing_algorithm: u16,
    signer: Option<Signer>,
    /// The key made from the AUTHENTICATE exchange, until the final
    /// SESSION_SETUP response verifies with it.
    pending_signer: Option<Signer>,
    preauth: PreauthHash,
    ntlm_negotiate: Vec<u8>,
    max_read_size: u32,
    max_write_size: u32,
    /// Ordered, not hashed: no per-process random state, so a replayed
    /// message sequence runs the same code (the fuzz targets' runs are
    /// reproducible from their seed, .ci/fuzz.sh).
    pending: BTreeMap<u64, Pending>,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Self {
        Client {
            cfg,
            phase: Phase::Idle,
            next_id: 0,
            // The server's first grant arrives with the NEGOTIATE response;
            // one credit is implied for the NEGOTIATE itself.
            credits: 1,
            session_id: 0,
            tree_id: 0,
            dialect: 0,
            signing_algorithm: signing_alg::AES_CMAC,
            signer: None,
            pending_signer: None,
            preauth: PreauthHash::default(),
            ntlm_negotiate: Vec::new(),
            max_read_size: 0,
            max_write_size: 0,
            pending: BTreeMap::new(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn credits(&self) -> u16 {
        self.credits
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Starts the session with NEGOTIATE (MS-SMB2 3.2.4.2.2.2).
    pub fn start(&mut self) -> Result<(), ClientError> {
        if self.phase != Phase::Idle {
            return Err(ClientError::NotReady);
        }
        let offers_311 = self.cfg.dialects.contains(&dialect::SMB311);
        let req = NegotiateRequest {
            security_mode: self.security_mode(),
            // No ENCRYPTION capability: ksmbd then encrypts the session
            // instead of signing it, and this client does not encrypt.
            capabilities: capabilities::LARGE_MTU,
            client_guid: self.cfg.client_guid,
            dialects: self.cfg.dialects.clone(),
            contexts: if offers_311 {
                vec![
                    NegContext::preauth_sha512(&self.cfg.preauth_salt),
                    NegContext::signing(&self.cfg.signing_algorithms),
                ]
            } else {
                Vec::new()
            },
        };
        let m = self.request(command::NEGOTIATE, 1, Pending::Negotiate, |o| req.encode(o))?;
        self.preauth.update(&m);
        self.tx.push_back(m);
        self.phase = Phase::Negotiating;
        Ok(())
    }

    fn security_mode(&self) -> u16 {
        if self.cfg.require_signing {
            security_mode::SIGNING_ENABLED | security_mode::SIGNING_REQUIRED
        } else {
            security_mode::SIGNING_ENABLED
        }
    }

    /// Builds a request with the next MessageId(s); signs it once the
    /// session has a signing key.
    fn request(
        &mut self,
        cmd: u16,
        charge: u16,
        what: Pending,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Vec<u8>, ClientError> {
        if self.credits < charge {
            return Err(ClientError::NoCredits {
                need: charge,
                have: self.credits,
            });
        }
        let id = self.next_id;
        let want = CREDIT_TARGET
            .saturating_sub(self.credits - charge)
            .max(charge);
        let h = Header {
            credit_charge: if self.dialect == 0 { 0 } else { charge },
            command: cmd,
            credits: want,
            message_id: id,
            tree_id: self.tree_id,
            session_id: self.session_id,
            ..Header::default()
        };
        let mut m = Vec::with_capacity(128);
        h.encode(&mut m);
        body(&mut m);
        if let Some(s) = &self.signer {
            s.sign(&mut m).map_err(ClientError::Signature)?;
        }
        self.credits -= charge;
        self.next_id += u64::from(charge.max(1));
        self.pending.insert(id, what);
        Ok(m)
    }

    fn fail(&mut self, e: ClientError) -> ClientError {
        self.phase = Phase::Failed(e.clone());
        self.events.push_back(ClientEvent::Failed(e.clone()));
        e
    }

    /// Takes one received SMB2 message (a reassembled MS-SMBD message).
    /// A compounded message is split and each response handled in turn
    /// (MS-SMB2 3.2.5.1.9): a part ends NextCommand bytes after its start,
    /// padding included (it is signed with it, 3.1.5.1), and the last part
    /// (NextCommand 0) is everything left, trailing bytes included.
    pub fn handle_message(&mut self, m: &[u8]) -> Result<(), ClientError> {
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        let mut rest = m;
        loop {
            let next = match Header::parse(rest) {
                Ok(h) => h.next_command,
                Err(e) => return Err(self.fail(ClientError::Malformed(e))),
            };
            let n = next as usize;
            let (part, tail) = match next {
                0 => (rest, &[][..]),
                _ if !n.is_multiple_of(8) || n < HEADER_LEN || n > rest.len() => {
                    let e = ClientError::Malformed(Smb2Error::BadNextCommand(next));
                    return Err(self.fail(e));
                }
                _ => rest.split_at(n),
            };
            if let Err(e) = self.on_message(part) {
                return Err(self.fail(e));
            }
            if tail.is_empty() {
                return Ok(());
            }
            rest = tail;
        }
    }

    fn on_message(&mut self, m: &[u8]) -> Result<(), ClientError> {
        let h = Header::parse(m).map_err(ClientError::Malformed)?;
        // Interim responses grant credits and promise a final one
        // (MS-SMB2 3.2.5.1.5).
        self.credits = self.credits.saturating_add(h.credits);
        if h.flags & flags::ASYNC_COMMAND != 0 && h.status == status::PENDING {
            return Ok(());
        }
        let Some(what) = self.pending.remove(&h.message_id) else {
            return Err(ClientError::UnknownMessageId(h.message_id));
        };
        // Once signing is on, responses must verify; the final
        // SESSION_SETUP response is checked where the key is made.
        if let Some(s) = &self.signer
            && (h.flags & flags::SIGNED != 0 || self.cfg.require_signing)
        {
            s.verify(m).map_err(ClientError::Signature)?;
        }
        match what {
            Pending::Negotiate => self.on_negotiate(&h, m),
            Pending::SessionSetup => self.on_session_setup(&h, m),
            Pending::TreeConnect => {
                check(&h)?;
                TreeConnectResponse::parse(m).map_err(ClientError::Malformed)?;
                self.tree_id = h.tree_id;
                self.phase = Phase::Ready;
                self.events.push_back(ClientEvent::Ready {
                    dialect: self.dialect,
                    signing_algorithm: self.signer.as_ref().map(|s| s.algorithm),
                    max_read_size: self.max_read_size,
                    max_write_size: self.max_write_size,
                });
                Ok(())
            }
            Pending::Create | Pending::Write | Pending::Read | Pending::Close => {
                self.on_file_response(what, &h, m)
            }
            Pending::Logoff => {
                check(&h)?;
                msg::parse_empty4(m).map_err(ClientError::Malformed)?;
                self.phase = Phase::LoggedOff;
                self.signer = None;
                self.events.push_back(ClientEvent::LoggedOff);
                Ok(())
            }
        }
    }

    fn on_negotiate(&mut self, h: &Header, m: &[u8]) -> Result<(), ClientError> {
        check(h)?;
        let r = NegotiateResponse::parse(m).map_err(ClientError::Malformed)?;
        if !self.cfg.dialects.contains(&r.dialect) || r.dialect < dialect::SMB300 {
            return Err(ClientError::Dialect(r.dialect));
        }
        self.dialect = r.dialect;
        self.max_read_size = r.max_read_size;
        self.max_write_size = r.max_write_size;
        if r.dialect == dialect::SMB311 {
            // MS-SMB2 3.2.5.2: exactly SHA-512 preauth; the response joins
            // the connection's hash.
            let ok = r
                .context(context::PREAUTH_INTEGRITY)
                .and_then(|c| c.id_list())
                .is_some_and(|ids| ids == [context::HASH_SHA512]);
            if !ok {
                return Err(ClientError::NoPreauthIntegrity);
            }
            self.preauth.update(m);
            // Without a signing context the algorithm is AES-CMAC
            // (MS-SMB2 3.2.5.2); older ksmbd never sends GMAC.
            if let Some(alg) = r
                .context(context::SIGNING)
                .and_then(|c| c.id_list())
                .and_then(|ids| ids.first().copied())
            {
                if !self.cfg.signing_algorithms.contains(&alg) {
                    return Err(ClientError::Malformed(Smb2Error::BadNegotiateContext));
                }
                self.signing_algorithm = alg;
            }
        }
        // First SESSION_SETUP: NTLM NEGOTIATE in a SPNEGO NegTokenInit.
        self.ntlm_negotiate = ntlm::negotiate_message();
        let token = spnego::neg_token_init(&self.ntlm_negotiate);
        self.session_setup(token)?;
        self.phase = Phase::Authenticating;
        Ok(())
    }

    fn session_setup(&mut self, token: Vec<u8>) -> Result<(), ClientError> {
        let req = SessionSetupRequest {
            flags: 0,
            security_mode: self.security_mode() as u8,
            capabilities: 0,
            previous_session_id: 0,
            token,
        };
        let m = self.request(command::SESSION_SETUP, 1, Pending::SessionSetup, |o| {
            req.encode(o)
        })?;
        if self.dialect == dialect::SMB311 {
            self.preauth.update(&m);
        }
        self.tx.push_back(m);
        Ok(())
    }

    fn on_session_setup(&mut self, h: &Header, m: &[u8]) -> Result<(), ClientError> {
        let r = SessionSetupResponse::parse(m).map_err(ClientError::Malformed)?;
        if h.status == status::MORE_PROCESSING_REQUIRED {
            if self.session_id != 0 {
                // NTLM is one round trip; a second challenge is wrong.
                return Err(ClientError::Status {
                    command: command::SESSION_SETUP,
                    status: h.status,
                });
            }
            self.session_id = h.session_id;
            if self.dialect == dialect::SMB311 {
                self.preauth.update(m);
            }
            let resp = spnego::parse_neg_token_resp(&r.token).map_err(ClientError::Spnego)?;
            if resp.state == Some(spnego::NegState::Reject) {
                return Err(ClientError::Rejected);
            }
            let challenge_bytes = resp.response_token.unwrap_or_default();
            let challenge = ntlm::Challenge::parse(&challenge_bytes).map_err(ClientError::Ntlm)?;
            let auth = ntlm::authenticate(
                &self.cfg.credentials,
                &self.ntlm_negotiate,
                &challenge_bytes,
                &challenge,
                self.cfg.client_challenge,
                self.cfg.random_session_key,
                self.cfg.filetime_now,
            )
            .map_err(ClientError::Ntlm)?;
            // The hash now covers the final request: that is the context
            // for the 3.1.1 keys (MS-SMB2 3.2.5.3.1).
            self.session_setup(spnego::neg_token_resp(&auth.message))?;
            let key = signing_key(self.dialect, &auth.session_key, &self.preauth.0);
            // Held until the final response verifies with it.
            self.signer = None;
            self.pending_signer = Some(Signer {
                key,
                algorithm: self.signing_algorithm,
            });
            return Ok(());
        }
        check(h)?;
        let signer = self.pending_signer.take().ok_or(ClientError::NotReady)?;
        // MS-SMB2 3.2.5.3.1: for 3.1.1 the final response is signed and
        // proves both sides hold the same key; otherwise verify if signed.
        if self.dialect == dialect::SMB311 || h.flags & flags::SIGNED != 0 {
            signer.verify(m).map_err(ClientError::Signature)?;
        }
        self.signer = Some(signer);
        let path = format!("\\\\{}\\{}", self.cfg.server, self.cfg.share);
        let req = TreeConnectRequest { path };
        // 3.1.1 requires TREE_CONNECT to be signed; the signer is set.
        let m = self.request(command::TREE_CONNECT, 1, Pending::TreeConnect, |o| {
            req.encode(o)
        })?;
        self.tx.push_back(m);
        self.phase = Phase::TreeConnecting;
        Ok(())
    }

    fn on_file_response(&mut self, what: Pending, h: &Header, m: &[u8]) -> Result<(), ClientError> {
        let id = h.message_id;
        if h.status != status::SUCCESS {
            self.events.push_back(ClientEvent::OperationFailed {
                id,
                command: h.command,
                status: h.status,
            });
            return Ok(());
        }
        let ev = match what {
            Pending::Create => ClientEvent::Created {
                id,
                response: CreateResponse::parse(m).map_err(ClientError::Malformed)?,
            },
            Pending::Write => ClientEvent::Written {
                id,
                count: WriteResponse::parse(m)
                    .map_err(ClientError::Malformed)?
                    .count,
            },
            Pending::Read => {
                let r = ReadResponse::parse(m).map_err(ClientError::Malformed)?;
                ClientEvent::Read {
                    id,
                    data: r.data,
                    data_remaining: r.data_remaining,
                }
            }
            _ => {
                msg::parse_close_response(m).map_err(ClientError::Malformed)?;
                ClientEvent::Closed { id }
            }
        };
        self.events.push_back(ev);
        Ok(())
    }

    fn ready(&self) -> Result<(), ClientError> {
        if self.phase == Phase::Ready {
            Ok(())
        } else {
            Err(ClientError::NotReady)
        }
    }

    fn send(
        &mut self,
        cmd: u16,
        charge: u16,
        what: Pending,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<u64, ClientError> {
        self.ready()?;
        let id = self.next_id;
        let m = self.request(cmd, charge, what, body)?;
        self.tx.push_back(m);
        Ok(id)
    }

    /// Opens (creating or truncating) `name` for reading and writing.
    pub fn create(&mut self, name: &str) -> Result<u64, ClientError> {
        let req = CreateRequest {
            desired_access: msg::create::GENERIC_READ | msg::create::GENERIC_WRITE,
            file_attributes: msg::create::FILE_ATTRIBUTE_NORMAL,
            share_access: msg::create::SHARE_READ,
            create_disposition: msg::create::FILE_OVERWRITE_IF,
            create_options: msg::create::FILE_NON_DIRECTORY_FILE,
            name: name.to_string(),
        };
        self.send(command::CREATE, 1, Pending::Create, |o| req.encode(o))
    }

    /// CREATE that opens an existing file for reading (FILE_OPEN: fails
    /// with STATUS_OBJECT_NAME_NOT_FOUND rather than creating it).
    pub fn open(&mut self, name: &str) -> Result<u64, ClientError> {
        let req = CreateRequest {
            desired_access: msg::create::GENERIC_READ,
            file_attributes: msg::create::FILE_ATTRIBUTE_NORMAL,
            share_access: msg::create::SHARE_READ,
            create_disposition: msg::create::FILE_OPEN,
            create_options: msg::create::FILE_NON_DIRECTORY_FILE,
            name: name.to_string(),
        };
        self.send(command::CREATE, 1, Pending::Create, |o| req.encode(o))
    }

    /// WRITE whose data the server RDMA-reads from `descriptors`
    /// (MS-SMB2 3.2.4.7 with an RDMA channel). `invalidate` asks the server
    /// to invalidate the token when it answers.
    pub fn write_rdma(
        &mut self,
        file_id: FileId,
        offset: u64,
        length: u32,
        descriptors: Vec<BufferDescriptorV1>,
        invalidate: bool,
    ) -> Result<u64, ClientError> {
        let req = WriteRequest {
            offset,
            file_id,
            channel: if invalidate {
                channel::RDMA_V1_INVALIDATE
            } else {
                channel::RDMA_V1
            },
            data: Vec::new(),
            remaining_bytes: length,
            channel_info: descriptors,
        };
        self.send(command::WRITE, charge(length), Pending::Write, |o| {
            req.encode(o)
        })
    }

    /// WRITE with the data inline in the message.
    pub fn write_inline(
        &mut self,
        file_id: FileId,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ClientError> {
        let req = WriteRequest {
            offset,
            file_id,
            channel: channel::NONE,
            data: data.to_vec(),
            remaining_bytes: 0,
            channel_info: Vec::new(),
        };
        self.send(
            command::WRITE,
            charge(data.len() as u32),
            Pending::Write,
            |o| req.encode(o),
        )
    }

    /// READ that the server RDMA-writes into `descriptors`.
    pub fn read_rdma(
        &mut self,
        file_id: FileId,
        offset: u64,
        length: u32,
        descriptors: Vec<BufferDescriptorV1>,
        invalidate: bool,
    ) -> Result<u64, ClientError> {
        let req = ReadRequest {
            length,
            offset,
            file_id,
            minimum_count: 0,
            channel: if invalidate {
                channel::RDMA_V1_INVALIDATE
            } else {
                channel::RDMA_V1
            },
            channel_info: descriptors,
        };
        self.send(command::READ, charge(length), Pending::Read, |o| {
            req.encode(o)
        })
    }

    /// READ with the data returned inline.
    pub fn read_inline(
        &mut self,
        file_id: FileId,
        offset: u64,
        length: u32,
    ) -> Result<u64, ClientError> {
        let req = ReadRequest {
            length,
            offset,
            file_id,
            minimum_count: 0,
            channel: channel::NONE,
            channel_info: Vec::new(),
        };
        self.send(command::READ, charge(length), Pending::Read, |o| {
            req.encode(o)
        })
    }

    pub fn close(&mut self, file_id: FileId) -> Result<u64, ClientError> {
        let req = CloseRequest { file_id };
        self.send(command::CLOSE, 1, Pending::Close, |o| req.encode(o))
    }

    /// Ends the session (MS-SMB2 3.2.4.25).
    pub fn logoff(&mut self) -> Result<u64, ClientError> {
        self.ready()?;
        let id = self.next_id;
        let m = self.request(command::LOGOFF, 1, Pending::Logoff, msg::encode_empty4)?;
        self.tx.push_back(m);
        self.phase = Phase::LoggingOff;
        Ok(id)
    }
}

/// CreditCharge for a READ/WRITE payload: one credit per 64 KiB
/// (MS-SMB2 3.1.5.2).
fn charge(len: u32) -> u16 {
    (len.max(1).div_ceil(65536)).min(u32::from(u16::MAX)) as u16
}

fn check(h: &Header) -> Result<(), ClientError> {
    if h.status == status::SUCCESS {
        Ok(())
    } else {
        Err(ClientError::Status {
            command: h.command,
            status: h.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client past TREE_CONNECT with a signing key, without the exchange
    /// that would make one (the session tests run that).
    fn ready_client(signer: Option<Signer>) -> Client {
        let mut c = Client::new(ClientConfig {
            server: "s".into(),
            share: "share".into(),
            credentials: Credentials {
                user: "u".into(),
                domain: String::new(),
                password: "p".into(),
                workstation: "w".into(),
            },
            dialects: vec![dialect::SMB311],
            signing_algorithms: vec![signing_alg::AES_CMAC],
            require_signing: signer.is_some(),
            client_guid: [0; 16],
            preauth_salt: [0; 32],
            client_challenge: [0; 8],
            random_session_key: [0; 16],
            filetime_now: 0,
        });
        c.phase = Phase::Ready;
        c.signer = signer;
        c
    }

    /// One response: header for `id` with `status`, then `body`, padded to
    /// `pad_to` bytes, with NextCommand `next`, signed if `signer` is set.
    fn response(
        cmd: u16,
        id: u64,
        status: u32,
        body: impl Fn(&mut Vec<u8>),
        next: u32,
        pad_to: usize,
        signer: Option<&Signer>,
    ) -> Vec<u8> {
        let h = Header {
            command: cmd,
            status,
            credits: 1,
            flags: flags::SERVER_TO_REDIR | if signer.is_some() { flags::SIGNED } else { 0 },
            next_command: next,
            message_id: id,
            ..Header::default()
        };
        let mut m = Vec::new();
        h.encode(&mut m);
        body(&mut m);
        m.resize(m.len().max(pad_to), 0);
        if let Some(s) = signer {
            s.sign(&mut m).unwrap();
        }
        m
    }

    fn signer() -> Signer {
        Signer {
            key: [7; 16],
            algorithm: signing_alg::AES_CMAC,
        }
    }

    #[test]
    fn a_compounded_response_is_split_and_each_part_verified() {
        let s = signer();
        let mut c = ready_client(Some(s.clone()));
        c.pending.insert(4, Pending::Close);
        c.pending.insert(5, Pending::Close);
        // 64 + 60 = 124 bytes, padded to 128: NextCommand 128, and the
        // padding is part of what the first signature covers.
        let mut m = response(
            command::CLOSE,
            4,
            status::SUCCESS,
            msg::encode_close_response,
            128,
            128,
            Some(&s),
        );
        m.extend(response(
            command::CLOSE,
            5,
            status::SUCCESS,
            msg::encode_close_response,
            0,
            0,
            Some(&s),
        ));
        c.handle_message(&m).unwrap();
        assert_eq!(c.poll_event(), Some(ClientEvent::Closed { id: 4 }));
        assert_eq!(c.poll_event(), Some(ClientEvent::Closed { id: 5 }));
        assert_eq!(c.poll_event(), None);
        assert!(c.pending.is_empty());
    }

    #[test]
    fn a_part_signed_without_its_padding_fails_verification() {
        let s = signer();
        let mut c = ready_client(Some(s.clone()));
        c.pending.insert(4, Pending::Close);
        c.pending.insert(5, Pending::Close);
        let mut m = response(
            command::CLOSE,
            4,
            status::SUCCESS,
            msg::encode_close_response,
            128,
            0,
            Some(&s),
        );
        m.resize(128, 0);
        m.extend(response(
            command::CLOSE,
            5,
            status::SUCCESS,
            msg::encode_close_response,
            0,
            0,
            Some(&s),
        ));
        assert_eq!(
            c.handle_message(&m),
            Err(ClientError::Signature(SignError::Mismatch))
        );
    }

    #[test]
    fn bad_next_command_offsets_are_malformed() {
        for next in [4u32, 60, 100, 4096] {
            let mut c = ready_client(None);
            c.pending.insert(4, Pending::Close);
            c.pending.insert(5, Pending::Close);
            let mut m = response(
                command::CLOSE,
                4,
                status::SUCCESS,
                msg::encode_close_response,
                next,
                128,
                None,
            );
            m.extend(response(
                command::CLOSE,
                5,
                status::SUCCESS,
                msg::encode_close_response,
                0,
                0,
                None,
            ));
            assert_eq!(
                c.handle_message(&m),
                Err(ClientError::Malformed(Smb2Error::BadNextCommand(next))),
                "NextCommand {next}"
            );
        }
    }

    /// Linux ksmbd 6.1 answers a failed TREE_CONNECT with the error header
    /// and body, the 7 leftover bytes of the success body, then the same
    /// header and error body again, NextCommand 0 in both (a server bug).
    /// That is one message (MS-SMB2 3.2.5.1.9): its status is reported and
    /// the second header is not taken for a second response.
    #[test]
    fn trailing_bytes_after_a_final_response_are_not_a_second_response() {
        let mut c = ready_client(None);
        c.phase = Phase::TreeConnecting;
        c.pending.insert(3, Pending::TreeConnect);
        let bad_network_name = 0xC000_00CC;
        let first = response(
            command::TREE_CONNECT,
            3,
            bad_network_name,
            msg::encode_error,
            0,
            80,
            None,
        );
        let second = response(
            command::TREE_CONNECT,
            3,
            bad_network_name,
            msg::encode_error,
            0,
            0,
            None,
        );
        let m = [first, second].concat();
        assert_eq!(m.len(), 153);
        assert_eq!(
            c.handle_message(&m),
            Err(ClientError::Status {
                command: command::TREE_CONNECT,
                status: bad_network_name
            })
        );
    }
}
