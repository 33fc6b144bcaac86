//! The whole client stack against an in-memory server: the SMB2 client
//! flow over an MS-SMBD client connection, joined in memory to an MS-SMBD
//! server connection in front of the SMB2 server session written from the
//! spec (`smbd::smb2::server`, also what crates/interop serves over
//! ndkrs). The server authenticates NTLMv2 on its own (recomputing the
//! proof from the password), keeps its own preauth hash, signs and
//! verifies; here its RDMA transfers read and write a simulated registered
//! memory.
//!
//! It moves a 1 MiB file out with one RDMA-channel WRITE and back with one
//! RDMA-channel READ, byte-exact.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use smbd::ntlm::Credentials;
use smbd::smb2::client::{Client, ClientConfig, ClientError, ClientEvent, Phase};
use smbd::smb2::header::command;
use smbd::smb2::msg::signing_alg;
use smbd::smb2::server::{Action, Response, Server, ServerConfig};
use smbd::smb2::signing::SignError;
use smbd::smb2::status;
use smbd::smbd::conn::{Config, Connection, Event, Output, Role};
use smbd::smbd::wire::BufferDescriptorV1;

const PASSWORD: &str = "Secret-123";
/// Where the simulated registration of each token starts.
const BASE: u64 = 0x7f00_0000_0000;

/// The client's registered memory, by token: what an NDK fast-register
/// would expose to the server.
type Memory = HashMap<u32, Vec<u8>>;

/// The server (crates/smbd's `server` feature) as ksmbd is set up in the
/// interop harness: one user, one share, the given 3.1.1 signing algorithm.
fn server_config(algorithm: u16) -> ServerConfig {
    ServerConfig {
        user: "tester".into(),
        password: PASSWORD.into(),
        signing_algorithm: algorithm,
        tree_path: "\\\\192.0.2.1\\share".into(),
        ..ServerConfig::default()
    }
}

fn server(algorithm: u16) -> Server {
    Server::new(server_config(algorithm))
}

/// Moves the data of an RDMA-channel request through the simulated
/// memory, as NdkRead / NdkWrite would, and returns the response.
fn serve(server: &mut Server, m: &[u8], mem: &mut Memory) -> Response {
    match server.handle(m).unwrap() {
        Action::Respond(r) => r,
        Action::Pull(p) => {
            // The server RDMA-reads RemainingBytes from the descriptors.
            let mut d = vec![0; p.length as usize];
            for (desc, at) in p.segments() {
                let buf = &mem[&desc.token];
                let from = (desc.offset - BASE) as usize;
                d[at..at + desc.length as usize]
                    .copy_from_slice(&buf[from..from + desc.length as usize]);
            }
            server.finish_pull(p, &d).unwrap()
        }
        Action::Push(p) => {
            // RDMA Write into the client's buffers, then the count in
            // DataRemaining.
            for (desc, at) in p.segments() {
                let n = desc.length as usize;
                let to = (desc.offset - BASE) as usize;
                mem.get_mut(&desc.token).unwrap()[to..to + n].copy_from_slice(&p.data[at..at + n]);
            }
            server.finish_push(p).unwrap()
        }
    }
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
        World::with_server(cfg, server(server_alg))
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
                        let resp = serve(&mut self.server, &m, &mut self.mem);
                        self.sc
                            .handle(self.now, Event::Send(&resp.message))
                            .unwrap();
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
    assert_eq!(w.server.invalidated(), [0x1111]);
    assert!(
        w.server.file(&fid) == Some(&data[..]),
        "server copy differs"
    );
    assert!(w.server.files().contains_key("big.bin"));

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
    let server = Server::new(ServerConfig {
        corrupt_signature: Some(command::SESSION_SETUP),
        ..server_config(signing_alg::AES_CMAC)
    });
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
