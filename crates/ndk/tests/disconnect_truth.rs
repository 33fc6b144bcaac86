//! NdkDisconnect reports STATUS_IO_TIMEOUT only when the peer is really
//! gone (docs/disconnect.md). Two providers joined by an in-process wire
//! that can drop chosen CM MADs or silence one side; one test per case of
//! issue 14, each stating the status and the bound it must meet.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ndk::connector::ConnectorState;
use ndk::object::ObjectId;
use ndk::provider::{Limits, NdkCompletion, NdkSge, Provider, ProviderConfig};
use ndk::upcall::{Callback, Upcall, UpcallKind};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::{ArenaMemory, EngineConfig, SendOp};
use roce::time::Instant;

const A_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1));
const B_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2));
const VA: u64 = 0x4000_0000;
const MEM: usize = 1 << 16;

const DONE: usize = 10;
const EVENT: usize = 11;
const CONNECT_EVENT: usize = 12;
const CLOSE: usize = 13;

// CM attribute IDs (IBA Vol 1 table 12.6.1 / Linux ib_cm.h).
const RTU: u16 = 0x14;
const DREP: u16 = 0x16;

fn cb(func: usize, context: usize) -> Callback {
    Callback { func, context }
}

fn provider(ip: IpAddr, seed: u64, cm: CmConfig) -> Provider<ArenaMemory> {
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
            path_mtu: 4096,
            version: NDK_VERSION_1_2,
            limits: Limits::default(),
        },
        ArenaMemory::new(MEM),
    )
}

fn cm_config() -> CmConfig {
    CmConfig {
        retry_count: 6,
        ..CmConfig::default()
    }
}

/// The CM attribute ID of a QP1 datagram (BTH 12 + DETH 8, then the MAD
/// whose attribute ID is at offset 16), or `None` for RC traffic.
fn cm_attr(payload: &[u8]) -> Option<u16> {
    let dest_qp = u32::from_be_bytes([0, *payload.get(5)?, payload[6], payload[7]]);
    if dest_qp != 1 {
        return None;
    }
    let mad = payload.get(20..)?;
    Some(u16::from_be_bytes([*mad.get(16)?, *mad.get(17)?]))
}

struct Side {
    p: Provider<ArenaMemory>,
    qp: ObjectId,
    pd: ObjectId,
    cq: ObjectId,
    token: u32,
    upcalls: Vec<Upcall>,
    dead: bool,
}

impl Side {
    fn new(ip: IpAddr, seed: u64, cm: CmConfig) -> Self {
        let mut p = provider(ip, seed, cm);
        let pd = p.create_pd().unwrap();
        let cq = p.create_cq(64, Callback::NONE).unwrap();
        let qp = p.create_qp(pd, cq, cq, 0x9, 16, 16, 2, 2, 0).unwrap();
        let mr = p
            .register_mr(
                pd,
                VA,
                MEM as u64,
                0,
                NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_WRITE,
            )
            .unwrap();
        let token = p.mr_token(mr).unwrap();
        Side {
            p,
            qp,
            pd,
            cq,
            token,
            upcalls: Vec::new(),
            dead: false,
        }
    }

    fn drain(&mut self) {
        while let Some(u) = self.p.poll_upcall() {
            self.upcalls.push(u);
            self.p.upcall_done(&u);
        }
    }

    fn count(&self, pred: impl Fn(&Upcall) -> bool) -> usize {
        self.upcalls.iter().filter(|u| pred(u)).count()
    }

    fn events(&self) -> usize {
        self.count(|u| matches!(u.kind, UpcallKind::DisconnectEvent { .. }))
    }

    fn done(&self, context: usize) -> Vec<NTSTATUS> {
        self.upcalls
            .iter()
            .filter(|u| u.callback == cb(DONE, context))
            .filter_map(|u| match u.kind {
                UpcallKind::Request { status } => Some(status),
                _ => None,
            })
            .collect()
    }

    fn results(&mut self) -> Vec<NdkCompletion> {
        let mut out = [NdkCompletion::EMPTY; 64];
        let n = self.p.get_cq_results(self.cq, &mut out);
        out[..n].to_vec()
    }
}

/// A drop rule: (from A?, CM attribute, how many more to drop).
type DropRule = (bool, u16, u32);

struct Pair {
    a: Side,
    b: Side,
    now: Instant,
    buf: Vec<u8>,
    drops: Vec<DropRule>,
}

impl Pair {
    fn new() -> Self {
        Self::with(cm_config(), cm_config())
    }

    fn with(a: CmConfig, b: CmConfig) -> Self {
        Pair {
            a: Side::new(A_IP, 0x11, a),
            b: Side::new(B_IP, 0x22, b),
            now: Instant::ZERO,
            buf: vec![0; MAX_DATAGRAM],
            drops: Vec::new(),
        }
    }

    fn drop_next(&mut self, from_a: bool, attr: u16, n: u32) {
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

    fn pump(&mut self) {
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

    fn step(&mut self) -> bool {
        let next = [&self.a, &self.b]
            .into_iter()
            .filter(|s| !s.dead)
            .filter_map(|s| s.p.poll_timeout())
            .min();
        let Some(at) = next else { return false };
        self.now = self.now.max(at);
        for s in [&mut self.a, &mut self.b] {
            if !s.dead {
                s.p.handle_timeout(self.now);
            }
        }
        self.pump();
        true
    }

    /// Runs until `pred` holds or `limit` of simulated time passed.
    fn run_for(&mut self, limit: Duration, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        self.pump();
        loop {
            if pred(self) {
                return true;
            }
            let next = [&self.a, &self.b]
                .into_iter()
                .filter(|s| !s.dead)
                .filter_map(|s| s.p.poll_timeout())
                .min();
            match next {
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

    fn listen(&mut self) {
        let l = self.b.p.create_listener(cb(CONNECT_EVENT, 0));
        self.b.p.listen(l, SocketAddr::new(B_IP, 445)).unwrap();
    }

    /// NdkConnect from A's `qp`: returns A's connector (pending).
    fn start_connect(&mut self, qp: ObjectId) -> ObjectId {
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
    fn incoming(&self) -> ObjectId {
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

    fn accept(&mut self, conn: ObjectId, qp: ObjectId) -> NTSTATUS {
        let st = self
            .b
            .p
            .accept(conn, qp, 2, 2, b"", cb(EVENT, 2), false, cb(DONE, 2));
        self.pump();
        st
    }

    /// A full connect; returns (A's, B's) connector.
    fn connect(&mut self) -> (ObjectId, ObjectId) {
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
        (ca, cbc)
    }
}

/// Case 1: the RTU is lost and the active side disconnects at once. The
/// passive CM in REP-sent takes the DREQ as proof that the peer was
/// established (its RTU was lost), answers it, and the passive NdkAccept
/// completes with STATUS_SUCCESS followed by one disconnect event; the
/// active NdkDisconnect succeeds after one round trip.
#[test]
fn lost_rtu_then_disconnect_completes_accept_and_delivers_the_event() {
    let mut p = Pair::new();
    p.listen();
    let ca = p.start_connect(p.a.qp);
    let cbc = p.incoming();
    p.drop_next(true, RTU, 1);
    assert_eq!(p.accept(cbc, p.b.qp), STATUS_PENDING);
    assert_eq!(
        p.a.p.complete_connect(ca, cb(EVENT, 1), false),
        STATUS_SUCCESS
    );
    p.pump();
    assert!(p.b.done(2).is_empty(), "the RTU was dropped");
    let start = p.now;
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    // Well before B's first REP retransmission (4 s).
    assert!(p.run_for(Duration::from_secs(1), |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert!(p.now - start < Duration::from_secs(1));
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
    assert_eq!(p.a.events(), 0);
    // The accept's completion comes before the disconnect event.
    let order: Vec<usize> =
        p.b.upcalls
            .iter()
            .filter_map(|u| match u.kind {
                UpcallKind::Request { .. } => Some(0),
                UpcallKind::DisconnectEvent { .. } => Some(1),
                _ => None,
            })
            .collect();
    assert_eq!(order, [0, 1]);
    assert_eq!(
        p.b.p.connector(cbc).unwrap().state(),
        ConnectorState::PeerDisconnected
    );
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    // Nothing more happens later: no timeout, no second event.
    p.run_for(Duration::from_secs(120), |_| false);
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
}

/// Case 1, closing the connector instead of NdkDisconnect: the DREQ the
/// close sends also completes the passive accept at once.
#[test]
fn lost_rtu_then_active_close_completes_accept_and_delivers_the_event() {
    let mut p = Pair::new();
    p.listen();
    let ca = p.start_connect(p.a.qp);
    let cbc = p.incoming();
    p.drop_next(true, RTU, 1);
    assert_eq!(p.accept(cbc, p.b.qp), STATUS_PENDING);
    assert_eq!(
        p.a.p.complete_connect(ca, cb(EVENT, 1), false),
        STATUS_SUCCESS
    );
    p.pump();
    let st = p.a.p.close(ca, cb(CLOSE, 1));
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING);
    assert!(p.run_for(Duration::from_secs(1), |p| !p.b.done(2).is_empty()));
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
}

/// Case 2: the DREP is lost and the passive consumer keeps its connector
/// open past time-wait; the retried DREQ finds the record closed and is
/// still answered, so the active disconnect succeeds on its first retry.
#[test]
fn lost_drep_is_answered_again_after_time_wait() {
    let mut p = Pair::new();
    let (ca, cbc) = p.connect();
    p.drop_next(false, DREP, 1);
    let start = p.now;
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    let cm = cm_config();
    let per_try = cm.active_timeout(cm.cm_response_timeout);
    // B's record leaves time-wait (2 s) before A's first retry (6.1 s).
    assert!(cm.timewait(cm.local_ack_timeout()) < per_try);
    assert!(p.run_for(per_try * 2, |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert!(p.now - start <= per_try + Duration::from_millis(10));
    assert_eq!(p.b.events(), 1);
    assert!(p.b.p.connector(cbc).is_some());
}

/// Case 3: a remote access error (NdkWrite with a bad token) fails the
/// request and the QPs, but the peer is alive: no disconnect event on
/// either side, and NdkDisconnect does the handshake and succeeds.
#[test]
fn remote_access_error_is_not_a_dead_peer() {
    let mut p = Pair::new();
    let (ca, cbc) = p.connect();
    let st = p.a.p.post_send(
        p.a.qp,
        77,
        &[NdkSge {
            address: VA,
            length: 64,
            token: p.a.token,
        }],
        SendOp::Write {
            remote_addr: VA,
            rkey: p.b.token ^ 0x5A5A_0000,
        },
        0,
    );
    assert_eq!(st, STATUS_SUCCESS);
    p.pump();
    p.run_for(Duration::from_secs(1), |_| false);
    let r = p.a.results();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, STATUS_REMOTE_RESOURCES);
    assert_eq!(p.a.events(), 0, "A: no disconnect event for a live peer");
    assert_eq!(p.b.events(), 0, "B: no disconnect event for a live peer");
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    assert!(p.run_for(Duration::from_secs(1), |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    // B learns of A's disconnect (the peer did disconnect) exactly once.
    assert_eq!(p.b.events(), 1);
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    assert_eq!(p.a.events(), 0);
}

/// Case 4: the passive side's disconnect bound is its own, whatever the
/// requester advertised: a REQ with LocalCMResponseTimeout 31 (2^23 ms per
/// try) does not stretch B's NdkDisconnect beyond B's configured bound.
#[test]
fn passive_disconnect_bound_is_ours_not_the_peers() {
    let slow = CmConfig {
        cm_response_timeout: 31,
        ..cm_config()
    };
    let mut p = Pair::with(slow, cm_config());
    let (_, cbc) = p.connect();
    p.a.dead = true;
    let start = p.now;
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_PENDING);
    let b_cm = cm_config();
    let bound = b_cm.passive_disconnect_bound();
    assert!(bound <= b_cm.active_disconnect_bound());
    assert!(p.run_for(bound + Duration::from_secs(1), |p| !p.b.done(4).is_empty()));
    assert_eq!(p.b.done(4), [STATUS_IO_TIMEOUT]);
    assert_eq!(p.now - start, bound);
}

/// Case 5: a QP that was connected and disconnected is in the error state;
/// NdkConnect and NdkAccept refuse it with STATUS_INVALID_DEVICE_STATE
/// instead of binding it to a connection that could never carry data.
#[test]
fn disconnected_qp_is_refused_by_connect_and_accept() {
    let mut p = Pair::new();
    let (ca, cbc) = p.connect();
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    for (side, c) in [(&mut p.a, ca), (&mut p.b, cbc)] {
        let st = side.p.close(c, cb(CLOSE, 1));
        assert!(st == STATUS_SUCCESS || st == STATUS_PENDING);
    }
    p.pump();
    // Active: the old QP is refused inline, and nothing goes on the wire.
    let c2 = p.a.p.create_connector();
    let st = p.a.p.connect(
        c2,
        p.a.qp,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 445),
        2,
        2,
        b"",
        cb(DONE, 5),
    );
    assert_eq!(st, STATUS_INVALID_DEVICE_STATE);
    assert!(p.a.p.poll_transmit(p.now, &mut p.buf).is_none());
    // The connector is still usable with a fresh QP.
    let fresh =
        p.a.p
            .create_qp(p.a.pd, p.a.cq, p.a.cq, 0x9, 16, 16, 2, 2, 0)
            .unwrap();
    let st = p.a.p.connect(
        c2,
        fresh,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 445),
        2,
        2,
        b"",
        cb(DONE, 5),
    );
    assert_eq!(st, STATUS_PENDING);
    p.pump();
    // Passive: the old QP is refused; the request stays open for another.
    let incoming = p.incoming();
    assert_ne!(incoming, cbc);
    let st = p.b.p.accept(
        incoming,
        p.b.qp,
        2,
        2,
        b"",
        cb(EVENT, 2),
        false,
        cb(DONE, 6),
    );
    assert_eq!(st, STATUS_INVALID_DEVICE_STATE);
    let fresh_b =
        p.b.p
            .create_qp(p.b.pd, p.b.cq, p.b.cq, 0x9, 16, 16, 2, 2, 0)
            .unwrap();
    let st = p.b.p.accept(
        incoming,
        fresh_b,
        2,
        2,
        b"",
        cb(EVENT, 2),
        false,
        cb(DONE, 6),
    );
    assert_eq!(st, STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.done(5), [STATUS_SUCCESS]);
}
