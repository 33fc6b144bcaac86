//! Two providers joined by an in-process wire, for the provider-level tests
//! (connector_rules, disconnect_truth): each side a provider with one PD,
//! CQ, QP and MR; the wire can drop chosen CM MADs or silence a side (a
//! frozen or dead peer); time moves only from one deadline to the next.
//! State lives in the [`Pair`], nothing is global, so tests run in
//! parallel.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ndk::object::ObjectId;
use ndk::provider::{Limits, NdkCompletion, NdkSge, Provider, ProviderConfig};
use ndk::upcall::{Callback, Upcall, UpcallKind};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::{ArenaMemory, EngineConfig};
use roce::time::Instant;

pub const A_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1));
pub const B_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2));
/// Virtual address of each side's registered buffer.
pub const VA: u64 = 0x4000_0000;
/// Bytes of each side's registered buffer.
pub const MEM: usize = 1 << 16;

// Callback tags: the tests' own "function pointers".
pub const DONE: usize = 10;
pub const EVENT: usize = 11;
pub const CONNECT_EVENT: usize = 12;
pub const CLOSE: usize = 13;

// CM attribute IDs (IBA Vol 1 table 12.6.1; Linux include/rdma/ib_cm.h).
pub const RTU: u16 = 0x14;
pub const DREQ: u16 = 0x15;
pub const DREP: u16 = 0x16;

pub fn cb(func: usize, context: usize) -> Callback {
    Callback { func, context }
}

/// The CM settings of the tests: a finite transport retry count, so a dead
/// peer is detected.
pub fn cm_config() -> CmConfig {
    CmConfig {
        retry_count: 6,
        ..CmConfig::default()
    }
}

/// How one side is built.
#[derive(Debug, Clone, Copy)]
pub struct SideConfig {
    /// Decides the side's keys, QPNs, comm IDs and PSNs.
    pub seed: u64,
    pub cm: CmConfig,
    /// The largest RoCE path MTU of the side's link.
    pub path_mtu: u32,
    /// NDK_MR_FLAG_* of the side's MR.
    pub mr_flags: u32,
}

impl SideConfig {
    pub fn new(seed: u64) -> Self {
        SideConfig {
            seed,
            cm: cm_config(),
            path_mtu: 4096,
            mr_flags: NDK_MR_FLAG_ALLOW_LOCAL_WRITE,
        }
    }
}

/// A provider at `ip` over an arena of `mem` bytes, in UDP mode.
pub fn provider(
    ip: IpAddr,
    seed: u64,
    cm: CmConfig,
    path_mtu: u32,
    mem: usize,
) -> Provider<ArenaMemory> {
    Provider::new(
        ProviderConfig {
            device: DeviceConfig {
                ip_mode: IpMode::Udp,
                udp_source_port: 4791,
                ca_guid: seed,
                cm,
                rc: EngineConfig {
                    first_qpn: 17,
                    key_seed: seed as u32,
                    qpn_epoch: 0,
                },
                seed,
            },
            addresses: vec![ip],
            path_mtu,
            version: NDK_VERSION_1_2,
            limits: Limits::default(),
        },
        ArenaMemory::new(mem),
    )
}

/// The CM attribute ID of a QP1 datagram (BTH 12 + DETH 8, then the MAD
/// whose attribute ID is at offset 16), or `None` for RC traffic.
pub fn cm_attr(payload: &[u8]) -> Option<u16> {
    let dest_qp = u32::from_be_bytes([0, *payload.get(5)?, *payload.get(6)?, *payload.get(7)?]);
    if dest_qp != 1 {
        return None;
    }
    let mad = payload.get(20..)?;
    Some(u16::from_be_bytes([*mad.get(16)?, *mad.get(17)?]))
}

/// What a consumer does from inside an upcall.
pub type Reaction = Box<dyn FnMut(&mut Provider<ArenaMemory>, &Upcall)>;

pub struct Side {
    pub p: Provider<ArenaMemory>,
    pub qp: ObjectId,
    pub pd: ObjectId,
    pub cq: ObjectId,
    pub token: u32,
    pub upcalls: Vec<Upcall>,
    /// Called from inside an upcall: what the consumer does there.
    pub on_upcall: Option<Reaction>,
    /// While set the side neither sends, receives nor runs its timers.
    pub dead: bool,
}

impl Side {
    pub fn new(ip: IpAddr, c: SideConfig) -> Self {
        let mut p = provider(ip, c.seed, c.cm, c.path_mtu, MEM);
        let pd = p.create_pd().unwrap();
        let cq = p.create_cq(64, Callback::NONE).unwrap();
        let qp = p.create_qp(pd, cq, cq, 0x9, 16, 16, 2, 2, 0).unwrap();
        let mr = p.register_mr(pd, VA, MEM as u64, 0, c.mr_flags).unwrap();
        let token = p.mr_token(mr).unwrap();
        Side {
            p,
            qp,
            pd,
            cq,
            token,
            upcalls: Vec::new(),
            on_upcall: None,
            dead: false,
        }
    }

    /// Takes every queued upcall, running [`Self::on_upcall`] on each.
    pub fn drain(&mut self) {
        while let Some(u) = self.p.poll_upcall() {
            if let Some(f) = self.on_upcall.as_mut() {
                f(&mut self.p, &u);
            }
            self.upcalls.push(u);
            self.p.upcall_done(&u);
        }
    }

    pub fn count(&self, pred: impl Fn(&Upcall) -> bool) -> usize {
        self.upcalls.iter().filter(|u| pred(u)).count()
    }

    /// Disconnect events so far.
    pub fn events(&self) -> usize {
        self.count(|u| matches!(u.kind, UpcallKind::DisconnectEvent { .. }))
    }

    /// The statuses of the request completions with context `context`.
    pub fn done(&self, context: usize) -> Vec<NTSTATUS> {
        self.upcalls
            .iter()
            .filter(|u| u.callback == cb(DONE, context))
            .filter_map(|u| match u.kind {
                UpcallKind::Request { status } => Some(status),
                _ => None,
            })
            .collect()
    }

    /// What the CQ holds now.
    pub fn results(&mut self) -> Vec<NdkCompletion> {
        let mut out = [NdkCompletion::EMPTY; 64];
        let n = self.p.get_cq_results(self.cq, &mut out);
        out[..n].to_vec()
    }

    /// Posts `n` receives of 64 bytes (request contexts 100, 101, ...).
    pub fn post_receives(&mut self, n: usize) {
        for i in 0..n {
            let st = self.p.post_receive(
                self.qp,
                100 + i,
                &[NdkSge {
                    address: VA + (i * 64) as u64,
                    length: 64,
                    token: self.token,
                }],
            );
            assert_eq!(st, STATUS_SUCCESS);
        }
    }
}

/// A drop rule: (from A?, CM attribute, how many more to drop).
type DropRule = (bool, u16, u32);

pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub now: Instant,
    pub buf: Vec<u8>,
    drops: Vec<DropRule>,
}

impl Pair {
    pub fn new() -> Self {
        Self::build(SideConfig::new(1), SideConfig::new(2))
    }

    pub fn build(a: SideConfig, b: SideConfig) -> Self {
        Pair {
            a: Side::new(A_IP, a),
            b: Side::new(B_IP, b),
            now: Instant::ZERO,
            buf: vec![0; MAX_DATAGRAM],
            drops: Vec::new(),
        }
    }

    /// Drops the next `n` CM MADs with attribute `attr` sent by A
    /// (`from_a`) or B.
    pub fn drop_next(&mut self, from_a: bool, attr: u16, n: u32) {
        self.drops.push((from_a, attr, n));
    }

    fn dropped(&mut self, from_a: bool, payload: &[u8]) -> bool {
        let Some(attr) = cm_attr(payload) else {
            return false;
        };
        for r in &mut self.drops {
            if r.0 == from_a && r.1 == attr && r.2 > 0 {
                r.2 -= 1;
                return true;
            }
        }
        false
    }

    /// Moves datagrams (A's first) until both are quiet, draining upcalls.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            for from_a in [true, false] {
                loop {
                    let (tx, rx) = if from_a {
                        (&mut self.a, &mut self.b)
                    } else {
                        (&mut self.b, &mut self.a)
                    };
                    if tx.dead {
                        break;
                    }
                    let Some(t) = tx.p.poll_transmit(self.now, &mut self.buf) else {
                        break;
                    };
                    moved = true;
                    let payload = t.udp_payload(&self.buf).to_vec();
                    let rx_dead = rx.dead;
                    if !rx_dead && !self.dropped(from_a, &payload) {
                        let rx = if from_a { &mut self.b } else { &mut self.a };
                        rx.p.handle_udp(self.now, t.src, t.dst, &payload);
                    }
                }
            }
            self.a.drain();
            self.b.drain();
            if !moved {
                break;
            }
        }
    }

    /// The earliest deadline of a live side.
    pub fn next_deadline(&self) -> Option<Instant> {
        [&self.a, &self.b]
            .into_iter()
            .filter(|s| !s.dead)
            .filter_map(|s| s.p.poll_timeout())
            .min()
    }

    /// Advances to the next deadline and fires it; false if none.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(at);
        for s in [&mut self.a, &mut self.b] {
            if !s.dead {
                s.p.handle_timeout(self.now);
            }
        }
        self.pump();
        true
    }

    /// Steps until `pred` holds; fails the test if it never does (10,000
    /// deadlines at most).
    pub fn run_until(&mut self, mut pred: impl FnMut(&Pair) -> bool) {
        for _ in 0..10_000 {
            if pred(self) {
                return;
            }
            if !self.step() {
                break;
            }
        }
        assert!(pred(self), "condition never held");
    }

    /// Runs until `pred` holds or `limit` of simulated time passed.
    pub fn run_for(&mut self, limit: Duration, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        self.pump();
        loop {
            if pred(self) {
                return true;
            }
            match self.next_deadline() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return pred(self);
                }
            }
        }
    }

    /// B listens on port 445.
    pub fn listen(&mut self) {
        let l = self.b.p.create_listener(cb(CONNECT_EVENT, 0));
        self.b.p.listen(l, SocketAddr::new(B_IP, 445)).unwrap();
    }

    /// NdkConnect from A's `qp` (request context 1): returns A's connector
    /// (pending).
    pub fn start_connect(&mut self, qp: ObjectId) -> ObjectId {
        let ca = self.a.p.create_connector();
        let st = self.a.p.connect(
            ca,
            qp,
            SocketAddr::new(A_IP, 0),
            SocketAddr::new(B_IP, 445),
            2,
            2,
            b"",
            cb(DONE, 1),
        );
        assert_eq!(st, STATUS_PENDING);
        self.pump();
        ca
    }

    /// The connector of B's latest connect event.
    pub fn incoming(&self) -> ObjectId {
        self.b
            .upcalls
            .iter()
            .rev()
            .find_map(|u| match u.kind {
                UpcallKind::ConnectEvent { connector } => Some(connector),
                _ => None,
            })
            .expect("connect event")
    }

    /// NdkAccept on B (request context 2, disconnect events to context 2).
    pub fn accept(&mut self, conn: ObjectId, qp: ObjectId) -> NTSTATUS {
        let st = self
            .b
            .p
            .accept(conn, qp, 2, 2, b"", cb(EVENT, 2), false, cb(DONE, 2));
        self.pump();
        st
    }

    /// A full connect; returns (A's, B's) connector.
    pub fn connect(&mut self) -> (ObjectId, ObjectId) {
        self.listen();
        let ca = self.start_connect(self.a.qp);
        let cbc = self.incoming();
        assert_eq!(self.accept(cbc, self.b.qp), STATUS_PENDING);
        assert_eq!(self.a.done(1), [STATUS_SUCCESS]);
        assert_eq!(
            self.a.p.complete_connect(ca, cb(EVENT, 1), false),
            STATUS_SUCCESS
        );
        self.pump();
        assert_eq!(self.b.done(2), [STATUS_SUCCESS]);
        (ca, cbc)
    }
}
