//! Test support for the RC engine tests: a host (engine + arena + one RC
//! QP), connecting two hosts the way CM would, and a netsim node that
//! carries RoCE packets as UDP payloads with a real ICRC computed over a
//! synthesized IPv4 + UDP header (so every packet the engine emits is
//! checked to parse and seal like a wire frame).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netsim::{Datagram, Node, Transmit};
use roce::rc::*;
use roce::time::Instant;
use roce::wire::icrc;
use roce::wire::packet::{Packet, PacketRepr};

/// Virtual address of arena offset 0 (distinct from logical addresses).
pub const BASE_VA: u64 = 0x7F00_0000_0000;

pub const ALL_ACCESS: Access = Access::LOCAL_WRITE
    .union(Access::REMOTE_READ)
    .union(Access::REMOTE_WRITE);

/// Deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub arena: usize,
    pub sq_depth: u32,
    pub rq_depth: u32,
    pub cq_depth: u32,
    pub max_sge: u32,
    pub max_inline: u32,
    /// Receives come from an SRQ of (depth, limit).
    pub srq: Option<(u32, u32)>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            arena: 1 << 20,
            sq_depth: 256,
            rq_depth: 256,
            cq_depth: 1024,
            max_sge: 4,
            max_inline: 256,
            srq: None,
        }
    }
}

/// One side: an engine over an arena registered whole as one MR.
pub struct Host {
    pub engine: Engine<ArenaMemory>,
    pub pd: PdHandle,
    pub scq: CqHandle,
    pub rcq: CqHandle,
    pub qpn: u32,
    pub mr: MrHandle,
    pub key: u32,
    pub ip: Ipv4Addr,
    pub sport: u16,
    pub send_done: Vec<Completion>,
    pub recv_done: Vec<Completion>,
    pub events: Vec<Event>,
    pub bad_icrc: u64,
    pub srq: Option<SrqHandle>,
    /// Poll CQs and events after every call (off to let a CQ fill up).
    pub auto_drain: bool,
    buf: Vec<u8>,
}

impl Host {
    pub fn new(ip: [u8; 4], shape: Shape) -> Host {
        let mut engine = Engine::with_config(
            ArenaMemory::new(shape.arena),
            EngineConfig {
                first_qpn: 17,
                key_seed: u32::from(ip[3]) * 11,
                qpn_epoch: 0,
            },
        );
        let pd = engine.alloc_pd().unwrap();
        let scq = engine.create_cq(shape.cq_depth).unwrap();
        let rcq = engine.create_cq(shape.cq_depth).unwrap();
        let mr = engine
            .register_mr(
                pd,
                BASE_VA,
                shape.arena as u64,
                ALL_ACCESS,
                Translation::Contiguous { base: 0 },
            )
            .unwrap();
        let key = engine.mr_key(mr).unwrap();
        let srq = shape
            .srq
            .map(|(depth, limit)| engine.create_srq(pd, depth, shape.max_sge, limit).unwrap());
        let qpn = engine
            .create_qp(&QpInit {
                pd,
                send_cq: scq,
                recv_cq: rcq,
                srq,
                sq_depth: shape.sq_depth,
                rq_depth: shape.rq_depth,
                max_send_sge: shape.max_sge,
                max_recv_sge: shape.max_sge,
                max_inline: shape.max_inline,
            })
            .unwrap();
        Host {
            engine,
            pd,
            scq,
            rcq,
            qpn,
            mr,
            key,
            ip: Ipv4Addr::from(ip),
            sport: 0xC000 | u16::from(ip[3]),
            send_done: Vec::new(),
            recv_done: Vec::new(),
            events: Vec::new(),
            bad_icrc: 0,
            srq,
            auto_drain: true,
            buf: vec![0; MAX_PACKET_LEN],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), ROCE_UDP_PORT)
    }

    pub fn va(&self, off: usize) -> u64 {
        BASE_VA + off as u64
    }

    pub fn sge(&self, off: usize, len: usize) -> Sge {
        Sge {
            addr: self.va(off),
            length: len as u32,
            lkey: self.key,
        }
    }

    pub fn mem(&self) -> &ArenaMemory {
        self.engine.memory()
    }

    pub fn state(&self) -> QpState {
        self.engine.qp_state(self.qpn).unwrap()
    }

    /// Move completions and events out of the engine.
    pub fn drain(&mut self) {
        if self.auto_drain {
            self.drain_now();
        }
    }

    /// Poll CQs and events now.
    pub fn drain_now(&mut self) {
        let mut out = [Completion::default(); 32];
        loop {
            let n = self.engine.poll_cq(self.scq, &mut out);
            self.send_done.extend_from_slice(&out[..n]);
            if n == 0 {
                break;
            }
        }
        loop {
            let n = self.engine.poll_cq(self.rcq, &mut out);
            self.recv_done.extend_from_slice(&out[..n]);
            if n == 0 {
                break;
            }
        }
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    pub fn post_recv(&mut self, wr_id: u64, sges: &[Sge]) {
        match self.srq {
            Some(srq) => self.engine.post_srq_recv(srq, wr_id, sges).unwrap(),
            None => self.engine.post_recv(self.qpn, wr_id, sges).unwrap(),
        }
        self.drain();
    }

    pub fn post(&mut self, wr: SendWr<'_>) {
        self.engine.post_send(self.qpn, &wr).unwrap();
        self.drain();
    }

    pub fn modify(&mut self, attr: QpAttr) -> Result<(), Error> {
        let r = self.engine.modify_qp(self.qpn, &attr);
        self.drain();
        r
    }

    /// Next packet the engine sends, with the ICRC sealed; `None` if idle.
    pub fn transmit(&mut self, now: Instant) -> Option<(TxInfo, Vec<u8>)> {
        let info = self.engine.poll_transmit(now, &mut self.buf);
        // Local operations run (and complete) inside poll_transmit.
        self.drain();
        let info = info?;
        let mut payload = self.buf[..info.len].to_vec();
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (info.local_ip, info.remote_ip) else {
            panic!("IPv4 only in tests")
        };
        let (ip, udp) = headers(
            SocketAddr::new(IpAddr::V4(src), info.udp_src_port),
            SocketAddr::new(IpAddr::V4(dst), ROCE_UDP_PORT),
            payload.len(),
        );
        // The engine's payload CRC, taken while copying the payload in,
        // must seal the same bytes as the ICRC computed over all of them.
        let mut joined = payload.clone();
        icrc::fill(&ip, &udp, &mut payload).unwrap();
        icrc::fill_with_payload(&ip, &udp, &mut joined, info.payload_crc).unwrap();
        assert_eq!(joined, payload, "payload CRC {:?}", info.payload_crc);
        if let Some(p) = info.payload_crc {
            let bytes = &payload[p.offset..p.offset + p.len];
            assert_eq!(p.crc, roce::wire::crc32::table(0, bytes));
        }
        self.drain();
        Some((info, payload))
    }

    /// Hand a sealed packet to the engine (dropped on a bad ICRC, as rxe does).
    pub fn receive(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) {
        let (ip, udp) = headers(src, dst, bytes.len());
        if icrc::verify(&ip, &udp, bytes).is_err() {
            self.bad_icrc += 1;
            return;
        }
        let pkt = Packet::new_checked(bytes).expect("engine emitted a malformed packet");
        let repr = PacketRepr::parse(&pkt).expect("engine emitted an unparsable packet");
        let rx = RxInfo {
            src_ip: src.ip(),
            dst_ip: dst.ip(),
            udp_src_port: src.port(),
        };
        self.engine.handle_packet(now, &rx, &repr);
        self.drain();
    }
}

/// An IPv4 header and a UDP header around `len` bytes of RoCE packet,
/// as rxe builds them (the Linux rxe captures in crates/roce/tests/data): TTL 64, DF, UDP checksum 0.
pub fn headers(src: SocketAddr, dst: SocketAddr, len: usize) -> ([u8; 20], [u8; 8]) {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv4 only")
    };
    let total = (20 + 8 + len) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&s.octets());
    ip[16..20].copy_from_slice(&d.octets());
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    (ip, udp)
}

/// Connection parameters (what CM hands each side, Linux drivers/infiniband/core/cma.c).
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub mtu: u32,
    pub timeout: u8,
    pub retry_cnt: u8,
    pub rnr_retry: u8,
    pub min_rnr_timer: u8,
    pub rd_atomic: u32,
    pub a_psn: u32,
    pub b_psn: u32,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            mtu: 1024,
            // 4.096 us * 2^8 = 1.05 ms: well above the simulated RTT.
            timeout: 8,
            retry_cnt: 7,
            rnr_retry: 7,
            min_rnr_timer: 1,
            rd_atomic: 4,
            a_psn: 0xFF_FFF0,
            b_psn: 0x12_3456,
        }
    }
}

fn bring_up(h: &mut Host, peer_qpn: u32, peer_ip: Ipv4Addr, rq_psn: u32, sq_psn: u32, c: &Conn) {
    let e = &mut h.engine;
    e.modify_qp(
        h.qpn,
        &QpAttr {
            state: Some(QpState::Init),
            access: Some(Access::REMOTE_READ | Access::REMOTE_WRITE),
            ..Default::default()
        },
    )
    .unwrap();
    e.modify_qp(
        h.qpn,
        &QpAttr {
            state: Some(QpState::Rtr),
            path_mtu: Some(c.mtu),
            dest_qpn: Some(peer_qpn),
            rq_psn: Some(rq_psn),
            max_dest_rd_atomic: Some(c.rd_atomic),
            min_rnr_timer: Some(c.min_rnr_timer),
            path: Some(Path {
                local_ip: IpAddr::V4(h.ip),
                remote_ip: IpAddr::V4(peer_ip),
                udp_src_port: h.sport,
                hop_limit: 64,
                traffic_class: 0,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    e.modify_qp(
        h.qpn,
        &QpAttr {
            state: Some(QpState::Rts),
            sq_psn: Some(sq_psn),
            timeout: Some(c.timeout),
            retry_cnt: Some(c.retry_cnt),
            rnr_retry: Some(c.rnr_retry),
            max_rd_atomic: Some(c.rd_atomic),
            ..Default::default()
        },
    )
    .unwrap();
}

/// Bring both QPs to RTS facing each other.
pub fn connect(a: &mut Host, b: &mut Host, c: &Conn) {
    let (aq, bq, aip, bip) = (a.qpn, b.qpn, a.ip, b.ip);
    bring_up(a, bq, bip, c.b_psn, c.a_psn, c);
    bring_up(b, aq, aip, c.a_psn, c.b_psn, c);
}

impl Node for Host {
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.receive(now, d.src, d.dst, &d.payload);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let (info, payload) = self.transmit(now)?;
        let dst = SocketAddr::new(info.remote_ip, info.udp_dst_port);
        let src = SocketAddr::new(info.local_ip, info.udp_src_port);
        Some(Transmit::new(dst, payload).with_source(src))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        self.drain();
    }
}

/// A pair of connected hosts in a simulator.
pub fn sim_pair(
    config: netsim::Config,
    shape: Shape,
    conn: &Conn,
) -> (netsim::Simulator<Host>, netsim::NodeId, netsim::NodeId) {
    let mut a = Host::new([10, 9, 0, 3], shape);
    let mut b = Host::new([10, 9, 0, 2], shape);
    connect(&mut a, &mut b, conn);
    let mut sim = netsim::Simulator::with_config(netsim::Config {
        describe: config.describe.or(Some(roce::wire::pretty::packet_summary)),
        ..config
    });
    let aaddr = a.addr();
    let baddr = b.addr();
    let ia = sim.add_node(aaddr, a);
    let ib = sim.add_node(baddr, b);
    (sim, ia, ib)
}

/// The RoCE packet inside a datagram (for hooks and traces).
pub fn parse(bytes: &[u8]) -> PacketRepr<'_> {
    PacketRepr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}
