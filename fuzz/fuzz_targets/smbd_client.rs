// Run: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run smbd_client corpus/smbd_client corpus-seed/smbd_client
//
// The SMB Direct client stack (crates/smbd: the MS-SMBD connection state
// machine under the SMB2/3 client) against the in-memory SMB2 server of the
// same crate. Every message from server to client passes through the
// fuzzer, which may deliver it, drop it, duplicate it, or corrupt it
// (flipped bytes, truncation, appended bytes, a rewritten MS-SMBD credit,
// flag, offset or length field; MS-SMBD 2.2.3, MS-SMB2 2.2.1), or send
// bytes of its own, at the MS-SMBD layer or straight into the SMB2 client.
// The client makes calls (create, open, inline write and read, close,
// logoff) and time moves on (keepalive and idle timers).
//
// Invariants: no panic; every bad message is a clean error (a Result, a
// failed phase, or a disconnect with its reason), a disconnect is reported
// at most once, and no output grows without bound.
#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smbd::ntlm::Credentials;
use smbd::smb2::client::{Client, ClientConfig, ClientEvent};
use smbd::smb2::server::{Action, Server, ServerConfig};
use smbd::smbd::conn::{Config, Connection, Event, Output, Role};

#[derive(Arbitrary, Debug)]
enum Op {
    /// Run the honest exchange until quiet.
    Settle,
    /// Deliver the next server message to the client.
    Deliver,
    Drop,
    Duplicate,
    /// Deliver a corrupted copy of the next server message.
    Corrupt(Corrupt),
    /// MS-SMBD bytes of the fuzzer's own.
    RawSmbd(Vec<u8>),
    /// An SMB2 message of the fuzzer's own, straight into the client.
    RawSmb2(Vec<u8>),
    Create,
    Open,
    Write {
        offset: u16,
        len: u8,
    },
    Read {
        offset: u16,
        len: u16,
    },
    Close,
    Logoff,
    Advance {
        secs: u8,
    },
    PeerDisconnected,
}

#[derive(Arbitrary, Debug)]
struct Corrupt {
    /// MS-SMBD data transfer header fields (MS-SMBD 2.2.3).
    credits_requested: Option<u16>,
    credits_granted: Option<u16>,
    flags: Option<u16>,
    remaining: Option<u32>,
    data_offset: Option<u32>,
    data_length: Option<u32>,
    truncate: Option<u16>,
    extend: Vec<u8>,
    edits: Vec<(u16, u8)>,
}

struct World {
    now: Instant,
    cc: Connection,
    sc: Connection,
    client: Client,
    server: Server,
    to_c: VecDeque<Vec<u8>>,
    to_s: VecDeque<Vec<u8>>,
    c_disconnects: u32,
    file: Option<[u8; 16]>,
}

fn client_config() -> ClientConfig {
    ClientConfig {
        server: "192.0.2.1".into(),
        share: "share".into(),
        credentials: Credentials {
            user: "tester".into(),
            domain: "WORKGROUP".into(),
            password: "Secret-123".into(),
            workstation: "NDKRS".into(),
        },
        dialects: vec![0x0311, 0x0302, 0x0300],
        signing_algorithms: vec![2, 1],
        require_signing: true,
        client_guid: [0xc1; 16],
        preauth_salt: [0x5a; 32],
        client_challenge: [0xcc; 8],
        random_session_key: [0x77; 16],
        filetime_now: 0,
    }
}

impl World {
    fn new() -> World {
        let now = Instant::now();
        let mut w = World {
            now,
            cc: Connection::new(Role::Client, Config::default()),
            sc: Connection::new(Role::Server, Config::default()),
            client: Client::new(client_config()),
            server: Server::new(ServerConfig {
                user: "tester".into(),
                password: "Secret-123".into(),
                tree_path: "\\\\192.0.2.1\\share".into(),
                ..ServerConfig::default()
            }),
            to_c: VecDeque::new(),
            to_s: VecDeque::new(),
            c_disconnects: 0,
            file: None,
        };
        w.sc.handle(now, Event::Connected).unwrap();
        w.cc.handle(now, Event::Connected).unwrap();
        w.outputs();
        // The negotiate request reaches the server; its answer waits for the fuzzer.
        while let Some(m) = w.to_s.pop_front() {
            let _ = w.sc.handle(now, Event::Received(&m));
        }
        w.outputs();
        let _ = w.client.start();
        w.outputs();
        w
    }

    /// Drains both sides' outputs; the server side answers honestly.
    fn outputs(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(m) = self.client.poll_transmit() {
                moved = true;
                let _ = self.cc.handle(self.now, Event::Send(&m));
            }
            while let Some(e) = self.client.poll_event() {
                if let ClientEvent::Created { response, .. } = e {
                    self.file = Some(response.file_id);
                }
            }
            while let Some(o) = self.cc.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => self.to_s.push_back(b),
                    Output::PostReceives(_) => {}
                    Output::Deliver(m) => {
                        let _ = self.client.handle_message(&m);
                    }
                    Output::Disconnect(_) => {
                        self.c_disconnects += 1;
                        assert_eq!(self.c_disconnects, 1, "the client disconnected twice");
                    }
                }
            }
            while let Some(o) = self.sc.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => self.to_c.push_back(b),
                    Output::PostReceives(_) | Output::Disconnect(_) => {}
                    Output::Deliver(m) => {
                        let resp = match self.server.handle(&m) {
                            Ok(Action::Respond(r)) => Some(r),
                            Ok(Action::Pull(p)) => {
                                let d = vec![0u8; p.length as usize];
                                self.server.finish_pull(p, &d).ok()
                            }
                            Ok(Action::Push(p)) => self.server.finish_push(p).ok(),
                            Err(_) => None,
                        };
                        if let Some(r) = resp {
                            let _ = self.sc.handle(self.now, Event::Send(&r.message));
                        }
                    }
                }
            }
            while let Some(m) = self.to_s.pop_front() {
                moved = true;
                let _ = self.sc.handle(self.now, Event::Received(&m));
            }
            assert!(self.to_c.len() < 4096, "unbounded output");
            if !moved {
                break;
            }
        }
    }

    fn deliver(&mut self, m: &[u8]) {
        let _ = self.cc.handle(self.now, Event::Received(m));
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Settle => {
                for _ in 0..64 {
                    let Some(m) = self.to_c.pop_front() else {
                        break;
                    };
                    self.deliver(&m);
                    self.outputs();
                }
            }
            Op::Deliver => {
                if let Some(m) = self.to_c.pop_front() {
                    self.deliver(&m);
                }
            }
            Op::Drop => {
                self.to_c.pop_front();
            }
            Op::Duplicate => {
                if let Some(m) = self.to_c.front().cloned() {
                    self.deliver(&m);
                }
            }
            Op::Corrupt(c) => {
                let Some(mut m) = self.to_c.pop_front() else {
                    return;
                };
                let mut put = |at: usize, b: &[u8]| {
                    if let Some(d) = m.get_mut(at..at + b.len()) {
                        d.copy_from_slice(b);
                    }
                };
                // Data transfer header: credits requested at 0, granted at 2,
                // flags at 4, remaining at 8, offset at 12, length at 16.
                if let Some(v) = c.credits_requested {
                    put(0, &v.to_le_bytes());
                }
                if let Some(v) = c.credits_granted {
                    put(2, &v.to_le_bytes());
                }
                if let Some(v) = c.flags {
                    put(4, &v.to_le_bytes());
                }
                if let Some(v) = c.remaining {
                    put(8, &v.to_le_bytes());
                }
                if let Some(v) = c.data_offset {
                    put(12, &v.to_le_bytes());
                }
                if let Some(v) = c.data_length {
                    put(16, &v.to_le_bytes());
                }
                if let Some(t) = c.truncate {
                    m.truncate(usize::from(t));
                }
                m.extend(c.extend.iter().take(2048));
                for (at, v) in c.edits.iter().take(16) {
                    if let Some(b) = m.get_mut(usize::from(*at)) {
                        *b ^= v;
                    }
                }
                self.deliver(&m);
            }
            Op::RawSmbd(b) => self.deliver(&b),
            Op::RawSmb2(b) => {
                let _ = self.client.handle_message(&b);
            }
            Op::Create => {
                let _ = self.client.create("f.bin");
            }
            Op::Open => {
                let _ = self.client.open("f.bin");
            }
            Op::Write { offset, len } => {
                if let Some(f) = self.file {
                    let data = vec![0xD7; usize::from(len)];
                    let _ = self.client.write_inline(f, u64::from(offset), &data);
                }
            }
            Op::Read { offset, len } => {
                if let Some(f) = self.file {
                    let _ = self
                        .client
                        .read_inline(f, u64::from(offset), u32::from(len));
                }
            }
            Op::Close => {
                if let Some(f) = self.file.take() {
                    let _ = self.client.close(f);
                }
            }
            Op::Logoff => {
                let _ = self.client.logoff();
            }
            Op::Advance { secs } => {
                self.now += Duration::from_secs(u64::from(secs));
                self.cc.handle_timeout(self.now);
                self.sc.handle_timeout(self.now);
            }
            Op::PeerDisconnected => {
                let _ = self.cc.handle(self.now, Event::PeerDisconnected);
            }
        }
        self.outputs();
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = World::new();
    for op in ops.into_iter().take(128) {
        w.run(op);
    }
    // Closing always ends the connection, once.
    let _ = w.cc.handle(w.now, Event::Close);
    w.outputs();
    assert!(w.cc.closed().is_some(), "Close left the connection open");
    assert!(w.c_disconnects <= 1);
});
