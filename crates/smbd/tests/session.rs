//! The whole client stack against an in-memory server: the SMB2 client
//! flow over an MS-SMBD client connection, joined in memory to an MS-SMBD
//! server connection in front of a small SMB2 server written here from the
//! spec. The server authenticates NTLMv2 on its own (recomputing the proof
//! from the password), keeps its own preauth hash, signs and verifies, and
//! moves RDMA data by reading and writing a simulated registered memory.
//!
//! It moves a 1 MiB file out with one RDMA-channel WRITE and back with one
//! RDMA-channel READ, byte-exact.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use smbd::bytes::from_utf16le;
use smbd::ntlm::{self, Credentials, spnego};
use smbd::smb2::client::{Client, ClientConfig, ClientError, ClientEvent, Phase};
use smbd::smb2::header::{Header, command, flags};
use smbd::smb2::msg::{self, *};
use smbd::smb2::signing::{PreauthHash, SignError, Signer, signing_key};
use smbd::smb2::{dialect, status};
use smbd::smbd::conn::{Config, Connection, Event, Output, Role};
use smbd::smbd::wire::BufferDescriptorV1;

const PASSWORD: &str = "Secret-123";
const SERVER_CHALLENGE: [u8; 8] = [9, 8, 7, 6, 5, 4, 3, 2];
/// Where the simulated registration of each token starts.
const BASE: u64 = 0x7f00_0000_0000;

/// The client's registered memory, by token: what an NDK fast-register
/// would expose to the server.
type Memory = HashMap<u32, Vec<u8>>;

struct Server {
    algorithm: u16,
    dialect: u16,
    preauth: PreauthHash,
    signer: Option<Signer>,
    challenge_msg: Vec<u8>,
    session_id: u64,
    files: HashMap<FileId, Vec<u8>>,
    next_file: u8,
    /// Tamper with the final SESSION_SETUP signature.
    corrupt_session_signature: bool,
    invalidated: Vec<u32>,
}

impl Server {
    fn new(algorithm: u16) -> Self {
        Server {
            algorithm,
            dialect: 0,
            preauth: PreauthHash::default(),
            signer: None,
            challenge_msg: Vec::new(),
            session_id: 0x0000_1234_0000_0001,
            files: HashMap::new(),
            next_file: 1,
            corrupt_session_signature: false,
            invalidated: Vec::new(),
        }
    }

    fn response(
        &self,
        req: &Header,
        st: u32,
        sign: bool,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<u8> {
        let mut m = Vec::new();
        Header {
            credit_charge: req.credit_charge,
            status: st,
            command: req.command,
            credits: req.credits.max(1),
            flags: flags::SERVER_TO_REDIR,
            message_id: req.message_id,
            tree_id: req.tree_id,
            session_id: if req.command == command::NEGOTIATE {
                0
            } else {
                self.session_id
            },
            ..Header::default()
        }
        .encode(&mut m);
        body(&mut m);
        if sign && let Some(s) = &self.signer {
            s.sign(&mut m).unwrap();
        }
        m
    }

    fn handle(&mut self, m: &[u8], mem: &mut Memory) -> Vec<u8> {
        let h = Header::parse(m).unwrap();
        if let Some(s) = &self.signer {
            // Everything after authentication is signed by this client.
            assert_eq!(
                s.verify(m),
                Ok(()),
                "request {} not signed right",
                h.command
            );
        }
        match h.command {
            command::NEGOTIATE => {
                let req = NegotiateRequest::parse(m).unwrap();
                assert_eq!(req.capabilities & capabilities::ENCRYPTION, 0);
                self.dialect = *req.dialects.iter().max().unwrap();
                let mut contexts = vec![];
                if self.dialect == dialect::SMB311 {
                    self.preauth.update(m);
                    contexts.push(NegContext::preauth_sha512(&[0x33; 32]));
                    let offered = req
                        .contexts
                        .iter()
                        .find(|c| c.ty == context::SIGNING)
                        .unwrap()
                        .id_list()
                        .unwrap();
                    assert!(offered.contains(&self.algorithm));
                    contexts.push(NegContext::signing(&[self.algorithm]));
                } else {
                    self.algorithm = signing_alg::AES_CMAC;
                }
                let resp = NegotiateResponse {
                    security_mode: 1,
                    dialect: self.dialect,
                    server_guid: [0x5e; 16],
                    capabilities: capabilities::LARGE_MTU,
                    max_transact_size: 8 << 20,
                    max_read_size: 8 << 20,
                    max_write_size: 8 << 20,
                    system_time: 0,
                    security_buffer: vec![],
                    contexts,
                };
                let out = self.response(&h, 0, false, |o| resp.encode(o));
                if self.dialect == dialect::SMB311 {
                    self.preauth.update(&out);
                }
                out
            }
            command::SESSION_SETUP => {
                let req = SessionSetupRequest::parse(m).unwrap();
                assert_eq!(req.security_mode & 2, 2, "client asks for signing");
                if self.dialect == dialect::SMB311 {
                    self.preauth.update(m);
                }
                if h.session_id == 0 {
                    // NegTokenInit with NTLM NEGOTIATE inside.
                    assert_eq!(req.token[0], 0x60);
                    assert!(req.token.windows(8).any(|w| w == b"NTLMSSP\0"));
                    self.challenge_msg = challenge_message();
                    let mut seq = tlv(0xa0, &tlv(0x0a, &[1]));
                    seq.extend(tlv(0xa1, &tlv(0x06, spnego::NTLMSSP_OID)));
                    seq.extend(tlv(0xa2, &tlv(0x04, &self.challenge_msg)));
                    let token = tlv(0xa1, &tlv(0x30, &seq));
                    let resp = SessionSetupResponse {
                        session_flags: 0,
                        token,
                    };
                    let out = self.response(&h, status::MORE_PROCESSING_REQUIRED, false, |o| {
                        resp.encode(o)
                    });
                    if self.dialect == dialect::SMB311 {
                        self.preauth.update(&out);
                    }
                    return out;
                }
                assert_eq!(h.session_id, self.session_id);
                let auth = spnego::parse_neg_token_resp(&req.token)
                    .unwrap()
                    .response_token
                    .unwrap();
                match self.verify_ntlm(&auth) {
                    Some(session_key) => {
                        let key = signing_key(self.dialect, &session_key, &self.preauth.0);
                        self.signer = Some(Signer {
                            key,
                            algorithm: self.algorithm,
                        });
                        let resp = SessionSetupResponse {
                            session_flags: 0,
                            token: vec![],
                        };
                        let mut out = self.response(&h, 0, true, |o| resp.encode(o));
                        if self.corrupt_session_signature {
                            out[50] ^= 0xff;
                        }
                        out
                    }
                    None => self.response(&h, status::LOGON_FAILURE, false, msg::encode_error),
                }
            }
            command::TREE_CONNECT => {
                assert_ne!(
                    h.flags & flags::SIGNED,
                    0,
                    "3.1.1 TREE_CONNECT must be signed"
                );
                let req = TreeConnectRequest::parse(m).unwrap();
                assert_eq!(req.path, "\\\\192.0.2.1\\share");
                let mut hh = h;
                hh.tree_id = 5;
                let resp = TreeConnectResponse {
                    share_type: 1,
                    share_flags: 0,
                    capabilities: 0,
                    maximal_access: 0x001f_01ff,
                };
                self.response(&hh, 0, true, |o| resp.encode(o))
            }
            command::CREATE => {
                assert_eq!(h.tree_id, 5);
                let req = CreateRequest::parse(m).unwrap();
                assert_eq!(req.name, "big.bin");
                let id = [self.next_file; 16];
                self.next_file += 1;
                self.files.insert(id, Vec::new());
                let resp = CreateResponse {
                    create_action: 2,
                    end_of_file: 0,
                    file_attributes: 0x80,
                    file_id: id,
                };
                self.response(&h, 0, true, |o| resp.encode(o))
            }
            command::WRITE => {
                let req = WriteRequest::parse(m).unwrap();
                let data = if req.channel == channel::NONE {
                    req.data.clone()
                } else {
                    // The server RDMA-reads RemainingBytes from the descriptors.
                    assert!(req.data.is_empty());
                    let mut d = Vec::new();
                    for desc in &req.channel_info {
                        let buf = &mem[&desc.token];
                        let at = (desc.offset - BASE) as usize;
                        d.extend_from_slice(&buf[at..at + desc.length as usize]);
                    }
                    assert_eq!(d.len(), req.remaining_bytes as usize);
                    if req.channel == channel::RDMA_V1_INVALIDATE {
                        self.invalidated
                            .extend(req.channel_info.iter().map(|d| d.token));
                    }
                    d
                };
                // CreditCharge must cover the payload (64 KiB per credit).
                assert!(u32::from(h.credit_charge) * 65536 >= data.len() as u32);
                let f = self.files.get_mut(&req.file_id).unwrap();
                let end = req.offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[req.offset as usize..end].copy_from_slice(&data);
                let resp = WriteResponse {
                    count: data.len() as u32,
                };
                self.response(&h, 0, true, |o| resp.encode(o))
            }
            command::READ => {
                let req = ReadRequest::parse(m).unwrap();
                let f = &self.files[&req.file_id];
                let start = (req.offset as usize).min(f.len());
                let end = (start + req.length as usize).min(f.len());
                let data = f[start..end].to_vec();
                let resp = if req.channel == channel::NONE {
                    ReadResponse {
                        data,
                        data_remaining: 0,
                    }
                } else {
                    // RDMA Write into the client's buffers, then report
                    // the count in DataRemaining.
                    let mut left = &data[..];
                    for desc in &req.channel_info {
                        let n = left.len().min(desc.length as usize);
                        let at = (desc.offset - BASE) as usize;
                        mem.get_mut(&desc.token).unwrap()[at..at + n].copy_from_slice(&left[..n]);
                        left = &left[n..];
                    }
                    ReadResponse {
                        data: vec![],
                        data_remaining: data.len() as u32,
                    }
                };
                self.response(&h, 0, true, |o| resp.encode(o))
            }
            command::CLOSE => {
                CloseRequest::parse(m).unwrap();
                self.response(&h, 0, true, msg::encode_close_response)
            }
            command::LOGOFF => {
                let out = self.response(&h, 0, true, msg::encode_empty4);
                self.signer = None;
                out
            }
            c => panic!("unexpected command {c}"),
        }
    }

    /// MS-NLMP 3.3.2 from the server side: recompute NTProofStr from the
    /// password and the client's blob; on success, recover the exported
    /// session key sent under KEY_EXCH.
    fn verify_ntlm(&self, m: &[u8]) -> Option<[u8; 16]> {
        let f = |at: usize| {
            let len = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
            let off = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap()) as usize;
            m[off..off + len].to_vec()
        };
        let nt = f(20);
        let domain = from_utf16le(&f(28)).unwrap();
        let user = from_utf16le(&f(36)).unwrap();
        let enc_key: [u8; 16] = f(52).try_into().unwrap();
        let blob = &nt[16..];
        let time = u64::from_le_bytes(blob[8..16].try_into().unwrap());
        let cc: [u8; 8] = blob[16..24].try_into().unwrap();
        let ti = &blob[28..blob.len() - 4];
        let key = ntlm::ntowf_v2(PASSWORD, &user, &domain);
        let r = ntlm::v2_response(&key, &SERVER_CHALLENGE, &cc, time, ti, true);
        if r.nt_response != nt {
            return None;
        }
        Some(ntlm::rc4_16(&r.session_base_key, &enc_key))
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// A CHALLENGE_MESSAGE as ksmbd builds one: NetBIOS names and a timestamp.
fn challenge_message() -> Vec<u8> {
    let mut ti = Vec::new();
    for (id, val) in [
        (2u16, smbd::bytes::utf16le("KSMBD")),
        (1, smbd::bytes::utf16le("VM")),
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
    m.extend_from_slice(&SERVER_CHALLENGE);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(&ti);
    m
}

/// Both MS-SMBD ends, the SMB2 client and the server, in one loop.
struct World {
    now: Instant,
    cc: Connection,
    sc: Connection,
    client: Client,
    server: Server,
    mem: Memory,
    c_posted: usize,
    s_posted: usize,
    to_s: VecDeque<Vec<u8>>,
    to_c: VecDeque<Vec<u8>>,
    events: Vec<ClientEvent>,
    smbd_messages: usize,
}

fn config(password: &str, dialects: Vec<u16>, algs: Vec<u16>) -> ClientConfig {
    ClientConfig {
        server: "192.0.2.1".into(),
        share: "share".into(),
        credentials: Credentials {
            user: "tester".into(),
            domain: "WORKGROUP".into(),
            password: password.into(),
            workstation: "NDKRS".into(),
        },
        dialects,
        signing_algorithms: algs,
        require_signing: true,
        client_guid: [0xc1; 16],
        preauth_salt: [0x5a; 32],
        client_challenge: [0xcc; 8],
        random_session_key: [0x77; 16],
        filetime_now: 0,
    }
}

impl World {
    fn new(cfg: ClientConfig, server_alg: u16) -> World {
        World::with_server(cfg, Server::new(server_alg))
    }

    fn with_server(cfg: ClientConfig, server: Server) -> World {
        let now = Instant::now();
        let mut w = World {
            now,
            cc: Connection::new(Role::Client, Config::default()),
            // ksmbd's defaults: 255 credits, 1364-byte messages.
            sc: Connection::new(Role::Server, Config::default()),
            client: Client::new(cfg),
            server,
            mem: Memory::new(),
            c_posted: 0,
            s_posted: 0,
            to_s: VecDeque::new(),
            to_c: VecDeque::new(),
            events: Vec::new(),
            smbd_messages: 0,
        };
        w.sc.handle(now, Event::Connected).unwrap();
        w.cc.handle(now, Event::Connected).unwrap();
        w.run();
        assert!(w.cc.is_established());
        w.client.start().unwrap();
        w.run();
        w
    }

    fn run(&mut self) {
        loop {
            let mut moved = false;
            while let Some(m) = self.client.poll_transmit() {
                self.cc.handle(self.now, Event::Send(&m)).unwrap();
                moved = true;
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            while let Some(o) = self.cc.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => self.to_s.push_back(b),
                    Output::PostReceives(n) => self.c_posted += n as usize,
                    Output::Deliver(m) => {
                        let _ = self.client.handle_message(&m);
                    }
                    Output::Disconnect(r) => panic!("client disconnect {r:?}"),
                }
            }
            while let Some(o) = self.sc.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => self.to_c.push_back(b),
                    Output::PostReceives(n) => self.s_posted += n as usize,
                    Output::Deliver(m) => {
                        let resp = self.server.handle(&m, &mut self.mem);
                        self.sc.handle(self.now, Event::Send(&resp)).unwrap();
                    }
                    Output::Disconnect(r) => panic!("server disconnect {r:?}"),
                }
            }
            if let Some(b) = self.to_s.pop_front() {
                assert!(self.s_posted > 0);
                self.s_posted -= 1;
                self.smbd_messages += 1;
                self.sc.handle(self.now, Event::Received(&b)).unwrap();
                moved = true;
            }
            if let Some(b) = self.to_c.pop_front() {
                assert!(self.c_posted > 0);
                self.c_posted -= 1;
                self.smbd_messages += 1;
                self.cc.handle(self.now, Event::Received(&b)).unwrap();
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }
}

fn transfer_1mib(cfg: ClientConfig, server_alg: u16, want_dialect: u16) {
    let mut w = World::new(cfg, server_alg);
    let ev = w.take_events();
    assert_eq!(
        ev,
        vec![ClientEvent::Ready {
            dialect: want_dialect,
            signing_algorithm: Some(server_alg),
            max_read_size: 8 << 20,
            max_write_size: 8 << 20,
        }]
    );
    assert_eq!(*w.client.phase(), Phase::Ready);

    let id = w.client.create("big.bin").unwrap();
    w.run();
    let ev = w.take_events();
    let ClientEvent::Created { id: got, response } = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(got, id);
    let fid = response.file_id;

    // 1 MiB of data in a "registered" buffer; WRITE over the RDMA channel.
    const LEN: usize = 1 << 20;
    let data: Vec<u8> = (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8 ^ (i >> 12) as u8)
        .collect();
    w.mem.insert(0x1111, data.clone());
    let desc = vec![BufferDescriptorV1 {
        offset: BASE,
        token: 0x1111,
        length: LEN as u32,
    }];
    w.client.write_rdma(fid, 0, LEN as u32, desc, true).unwrap();
    w.run();
    assert!(
        matches!(w.take_events()[..], [ClientEvent::Written { count, .. }] if count == LEN as u32)
    );
    assert_eq!(w.server.invalidated, vec![0x1111]);
    assert!(w.server.files[&fid] == data, "server copy differs");

    // Read it back into a second registration over the RDMA channel.
    w.mem.insert(0x2222, vec![0; LEN]);
    let desc = vec![
        BufferDescriptorV1 {
            offset: BASE,
            token: 0x2222,
            length: (LEN / 2) as u32,
        },
        BufferDescriptorV1 {
            offset: BASE + (LEN / 2) as u64,
            token: 0x2222,
            length: (LEN / 2) as u32,
        },
    ];
    w.client.read_rdma(fid, 0, LEN as u32, desc, false).unwrap();
    w.run();
    let ev = w.take_events();
    assert!(
        matches!(&ev[..], [ClientEvent::Read { data, data_remaining, .. }] if data.is_empty() && *data_remaining == LEN as u32)
    );
    assert!(w.mem[&0x2222] == data, "read-back differs");

    // Inline operations still work next to RDMA ones.
    w.client.write_inline(fid, 10, b"inline!").unwrap();
    w.client.read_inline(fid, 8, 12).unwrap();
    w.run();
    let ev = w.take_events();
    let mut want = data[8..10].to_vec();
    want.extend_from_slice(b"inline!");
    want.extend_from_slice(&data[17..20]);
    assert!(matches!(&ev[0], ClientEvent::Written { count: 7, .. }));
    assert!(matches!(&ev[1], ClientEvent::Read { data, .. } if *data == want));

    w.client.close(fid).unwrap();
    w.client.logoff().unwrap();
    w.run();
    let ev = w.take_events();
    assert!(matches!(
        ev[..],
        [ClientEvent::Closed { .. }, ClientEvent::LoggedOff]
    ));
    assert_eq!(*w.client.phase(), Phase::LoggedOff);
    // Every SMB2 message here was small: the bulk moved by "RDMA".
    assert!(w.smbd_messages < 40, "{} MS-SMBD messages", w.smbd_messages);
}

#[test]
fn smb311_gmac_rdma_round_trip_1mib() {
    transfer_1mib(
        config(
            PASSWORD,
            vec![0x0302, 0x0311],
            vec![signing_alg::AES_GMAC, signing_alg::AES_CMAC],
        ),
        signing_alg::AES_GMAC,
        0x0311,
    );
}

#[test]
fn smb311_cmac_rdma_round_trip_1mib() {
    // What a ksmbd that predates GMAC answers.
    transfer_1mib(
        config(
            PASSWORD,
            vec![0x0302, 0x0311],
            vec![signing_alg::AES_GMAC, signing_alg::AES_CMAC],
        ),
        signing_alg::AES_CMAC,
        0x0311,
    );
}

#[test]
fn smb302_rdma_round_trip_1mib() {
    transfer_1mib(
        config(PASSWORD, vec![0x0300, 0x0302], vec![]),
        signing_alg::AES_CMAC,
        0x0302,
    );
}

#[test]
fn wrong_password_is_logon_failure() {
    let mut w = World::new(
        config("not-it", vec![0x0311], vec![signing_alg::AES_CMAC]),
        signing_alg::AES_CMAC,
    );
    let err = ClientError::Status {
        command: command::SESSION_SETUP,
        status: status::LOGON_FAILURE,
    };
    assert_eq!(w.take_events(), vec![ClientEvent::Failed(err.clone())]);
    assert_eq!(*w.client.phase(), Phase::Failed(err));
    assert_eq!(w.client.create("x"), Err(ClientError::NotReady));
}

#[test]
fn tampered_session_signature_is_refused() {
    let mut server = Server::new(signing_alg::AES_CMAC);
    server.corrupt_session_signature = true;
    let mut w = World::with_server(
        config(PASSWORD, vec![0x0311], vec![signing_alg::AES_CMAC]),
        server,
    );
    assert_eq!(
        w.take_events(),
        vec![ClientEvent::Failed(ClientError::Signature(
            SignError::Mismatch
        ))]
    );
    assert_eq!(w.client.create("x"), Err(ClientError::NotReady));
}

#[test]
fn credits_limit_requests() {
    let mut w = World::new(
        config(PASSWORD, vec![0x0311], vec![signing_alg::AES_CMAC]),
        signing_alg::AES_CMAC,
    );
    w.take_events();
    let have = w.client.credits();
    assert!(have >= 16);
    // A READ of more than 64 KiB per credit held is refused locally.
    let too_big = u32::from(have + 1) * 65536;
    assert_eq!(
        w.client.read_inline([0; 16], 0, too_big),
        Err(ClientError::NoCredits {
            need: have + 1,
            have
        })
    );
}
