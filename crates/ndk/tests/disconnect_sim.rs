//! NdkConnect / NdkAccept / data / NdkDisconnect between two providers over
//! the deterministic network simulator, under loss, duplication,
//! reordering and a frozen peer, over many seeds (NETSIM_SEEDS; a failing
//! seed prints and replays with NETSIM_SEED).
//!
//! Invariants checked on every seed (docs/disconnect.md):
//! * each NdkDisconnect that returned STATUS_PENDING completes exactly once,
//!   with STATUS_SUCCESS or STATUS_IO_TIMEOUT, within the configured bound
//!   of simulated time; an inline return is never followed by a completion;
//! * every work request posted successfully completes exactly once (flushed
//!   ones with STATUS_CANCELLED), all before the disconnect's completion;
//! * the disconnect event fires at most once per connection;
//! * bytes received equal bytes sent, in order, for every completed send;
//! * every object closes and nothing leaks.
//!
//! The `truth_*` sweeps (docs/disconnect.md) check the statuses themselves:
//! with both peers alive under fair loss (up to 30%), duplication and
//! reordering, no request ends in STATUS_IO_TIMEOUT and nothing hangs; with
//! one peer frozen or crashed at a random moment, the survivor's requests
//! end within their bounds. CI runs them with
//! `NETSIM_SEEDS=10000 cargo test --release -p ndk --test disconnect_sim truth_`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ndk::object::ObjectId;
use ndk::provider::{Limits, NdkCompletion, NdkSge, Provider, ProviderConfig};
use ndk::upcall::{Callback, Upcall, UpcallKind};
use ndkpi::*;
use netsim::{Config, Datagram, LinkConfig, Node, Simulator, Transmit};
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::{ArenaMemory, EngineConfig, Memory, SendOp};
use roce::time::Instant;

const PORT: u16 = 7000;
const MSG: usize = 3000;
const N_MSGS: usize = 8;
const MEM: usize = 1 << 20;
/// Virtual address of the registered buffer (the arena's offset 0).
const VA: u64 = 0x7000_0000;

// Callback tags: the test's own "function pointers".
const CONNECT_DONE: usize = 1;
const ACCEPT_DONE: usize = 2;
const DISCONNECT_DONE: usize = 3;
const DISCONNECT_EVENT: usize = 4;
const CONNECT_EVENT: usize = 5;
const CQ_NOTIFY: usize = 6;
const CLOSE_DONE: usize = 7;

fn cb(func: usize) -> Callback {
    Callback { func, context: 0 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

/// What happened to a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disc {
    NotYet,
    Inline(NTSTATUS),
    Pending {
        at: Instant,
    },
    Completed {
        status: NTSTATUS,
        at: Instant,
        start: Instant,
    },
}

struct Peer {
    role: Role,
    p: Provider<ArenaMemory>,
    addr: SocketAddr,
    peer: SocketAddr,
    cq: ObjectId,
    qp: ObjectId,
    mr_token: u32,
    connector: Option<ObjectId>,
    listener: Option<ObjectId>,
    connected: bool,
    /// Who disconnects, and when (simulated ms after connecting).
    disconnects: bool,
    disconnect_after: Duration,
    connected_at: Option<Instant>,
    disc: Disc,
    disconnect_events: u32,
    /// request context -> completion count
    completions: BTreeMap<usize, Vec<NTSTATUS>>,
    /// contexts posted successfully
    posted: Vec<usize>,
    /// bytes received, by receive context
    received: BTreeMap<usize, u32>,
    /// completions seen after the disconnect completion ran
    late_completions: u32,
    connect_failed: Option<NTSTATUS>,
    accept_status: Option<NTSTATUS>,
    upcall_log: Vec<UpcallKind>,
    /// The callback and time of each upcall in `upcall_log`.
    upcall_funcs: Vec<(usize, Instant)>,
    closes_pending: u32,
    /// The simulated time of the call being handled.
    last_now: Instant,
    /// Disconnect soon after connecting rather than after the data.
    early_disconnect: bool,
    data_done_at: Option<Instant>,
}

impl Peer {
    fn new(role: Role, addr: SocketAddr, peer: SocketAddr, seed: u64, cm: CmConfig) -> Self {
        let config = ProviderConfig {
            device: DeviceConfig {
                ip_mode: IpMode::Udp,
                udp_source_port: addr.port(),
                ca_guid: 0x0200_00FF_FE00_0000 | u64::from(role == Role::Server),
                cm,
                rc: EngineConfig {
                    first_qpn: 17,
                    key_seed: seed as u32,
                    qpn_epoch: 0,
                },
                seed,
            },
            addresses: vec![addr.ip()],
            path_mtu: 1024,
            version: NDK_VERSION_1_2,
            limits: Limits::default(),
        };
        let mut p = Provider::new(config, ArenaMemory::new(MEM));
        let pd = p.create_pd().unwrap();
        let cq = p.create_cq(256, cb(CQ_NOTIFY)).unwrap();
        let qp = p.create_qp(pd, cq, cq, 0xC0FFEE, 64, 64, 4, 4, 0).unwrap();
        let mr = p
            .register_mr(
                pd,
                VA,
                MEM as u64,
                0,
                NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_READ,
            )
            .unwrap();
        let mr_token = p.mr_token(mr).unwrap();
        Peer {
            role,
            p,
            addr,
            peer,
            cq,
            qp,
            mr_token,
            connector: None,
            listener: None,
            connected: false,
            disconnects: false,
            disconnect_after: Duration::ZERO,
            connected_at: None,
            disc: Disc::NotYet,
            disconnect_events: 0,
            completions: BTreeMap::new(),
            posted: Vec::new(),
            received: BTreeMap::new(),
            late_completions: 0,
            connect_failed: None,
            accept_status: None,
            upcall_log: Vec::new(),
            upcall_funcs: Vec::new(),
            closes_pending: 0,
            last_now: Instant::ZERO,
            early_disconnect: false,
            data_done_at: None,
        }
    }

    fn start(&mut self, now: Instant) {
        self.p.arm_cq(self.cq, NDK_CQ_NOTIFY_ANY);
        match self.role {
            Role::Server => {
                let l = self.p.create_listener(cb(CONNECT_EVENT));
                self.p
                    .listen(l, SocketAddr::new(self.addr.ip(), PORT))
                    .unwrap();
                self.listener = Some(l);
                // Receives before the connection exists (the NDKPI work request posting requirements and deferred processing scheme pages), four more
                // than the client sends: those only a flush completes.
                for i in 0..N_MSGS + 4 {
                    self.post_receive(1000 + i);
                }
            }
            Role::Client => {
                let c = self.p.create_connector();
                self.connector = Some(c);
                // Receives the server never fills: only a flush completes
                // them.
                for i in 0..4 {
                    self.post_receive(3000 + i);
                }
                // Client data: message i filled with byte i+1.
                for i in 0..N_MSGS {
                    let fill = vec![(i + 1) as u8; MSG];
                    assert!(self.p.device().rc().memory().write((i * MSG) as u64, &fill));
                }
                let st = self.p.connect(
                    c,
                    self.qp,
                    SocketAddr::new(self.addr.ip(), 0),
                    SocketAddr::new(self.peer.ip(), PORT),
                    4,
                    4,
                    b"hello",
                    cb(CONNECT_DONE),
                );
                assert_eq!(st, STATUS_PENDING);
            }
        }
        let _ = now;
        self.drain();
    }

    fn post_receive(&mut self, ctx: usize) {
        let off = (N_MSGS + ctx % 1000) * MSG;
        let st = self.p.post_receive(
            self.qp,
            ctx,
            &[NdkSge {
                address: VA + off as u64,
                length: MSG as u32,
                token: self.mr_token,
            }],
        );
        if st == STATUS_SUCCESS {
            self.posted.push(ctx);
        }
    }

    fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        self.connected_at = Some(now);
        if self.role == Role::Client {
            for i in 0..N_MSGS {
                let ctx = 2000 + i;
                let st = self.p.post_send(
                    self.qp,
                    ctx,
                    &[NdkSge {
                        address: VA + (i * MSG) as u64,
                        length: MSG as u32,
                        token: self.mr_token,
                    }],
                    SendOp::Send,
                    0,
                );
                assert_eq!(st, STATUS_SUCCESS);
                self.posted.push(ctx);
            }
        }
    }

    /// Makes every queued upcall, reacting as a consumer would.
    fn drain(&mut self) {
        while let Some(u) = self.p.poll_upcall() {
            self.react(&u);
            self.p.upcall_done(&u);
        }
    }

    fn now(&self) -> Instant {
        self.last_now
    }

    fn react(&mut self, u: &Upcall) {
        self.upcall_log.push(u.kind);
        self.upcall_funcs.push((u.callback.func, self.last_now));
        match (u.callback.func, u.kind) {
            (CONNECT_DONE, UpcallKind::Request { status }) => {
                if status == STATUS_SUCCESS {
                    let c = self.connector.unwrap();
                    assert!(self.p.connection_data(c).is_some());
                    let st = self.p.complete_connect(c, cb(DISCONNECT_EVENT), false);
                    assert_eq!(st, STATUS_SUCCESS);
                    let now = self.now();
                    self.on_connected(now);
                } else {
                    self.connect_failed = Some(status);
                }
            }
            (CONNECT_EVENT, UpcallKind::ConnectEvent { connector }) => {
                assert!(self.connector.is_none(), "one connection only");
                self.connector = Some(connector);
                let (irl, orl, data) = self.p.connection_data(connector).unwrap();
                assert_eq!(&data[..5], b"hello");
                assert!(irl <= 4 && orl <= 4);
                let st = self.p.accept(
                    connector,
                    self.qp,
                    4,
                    4,
                    b"welcome",
                    cb(DISCONNECT_EVENT),
                    false,
                    cb(ACCEPT_DONE),
                );
                assert_eq!(st, STATUS_PENDING);
            }
            (ACCEPT_DONE, UpcallKind::Request { status }) => {
                self.accept_status = Some(status);
                if status == STATUS_SUCCESS {
                    let now = self.now();
                    self.on_connected(now);
                }
            }
            (DISCONNECT_EVENT, UpcallKind::DisconnectEvent { .. }) => {
                self.disconnect_events += 1;
                // As a storage consumer does: the peer is gone, so
                // disconnect too, which flushes (docs/disconnect.md).
                if self.disc == Disc::NotYet {
                    self.start_disconnect(self.last_now);
                }
            }
            (DISCONNECT_DONE, UpcallKind::Request { status }) => {
                let Disc::Pending { at } = self.disc else {
                    panic!(
                        "disconnect completion without a pending disconnect: {:?}",
                        self.disc
                    );
                };
                // D6: every flushed request is on the CQ before this runs.
                self.poll_cq();
                self.disc = Disc::Completed {
                    status,
                    at: self.last_now,
                    start: at,
                };
            }
            (CQ_NOTIFY, UpcallKind::CqNotify { .. }) => {
                self.poll_cq();
                self.p.arm_cq(self.cq, NDK_CQ_NOTIFY_ANY);
            }
            (CLOSE_DONE, UpcallKind::Close) => {
                self.closes_pending -= 1;
            }
            (f, k) => panic!("unexpected upcall {f} {k:?}"),
        }
    }

    fn poll_cq(&mut self) {
        let mut out = [NdkCompletion::EMPTY; 16];
        loop {
            let n = self.p.get_cq_results(self.cq, &mut out);
            for c in &out[..n] {
                assert_eq!(c.qp_context, 0xC0FFEE);
                if matches!(self.disc, Disc::Completed { .. }) {
                    self.late_completions += 1;
                }
                self.completions
                    .entry(c.request_context)
                    .or_default()
                    .push(c.status);
                if c.status == STATUS_SUCCESS && c.op_type == NdkOperationTypeReceive {
                    self.received.insert(c.request_context, c.bytes_transferred);
                }
            }
            if n < out.len() {
                break;
            }
        }
        self.note_data_progress();
    }
}

// `now` for reactions: the node records the simulated time of the call it
// is handling.
impl Peer {
    fn set_now(&mut self, now: Instant) {
        self.last_now = now;
    }
}

struct NodeState {
    peer: Peer,
    buf: Vec<u8>,
}

impl Node for NodeState {
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.peer.set_now(now);
        self.peer.p.handle_udp(now, d.src, d.dst, &d.payload);
        self.peer.drain();
        self.peer.tick(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.peer.set_now(now);
        let t = self.peer.p.poll_transmit(now, &mut self.buf)?;
        self.peer.drain();
        Some(Transmit::new(t.dst, t.udp_payload(&self.buf).to_vec()).with_source(t.src))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let own = self.peer.p.poll_timeout();
        let disc = self.peer.disconnect_due();
        [own, disc].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.peer.set_now(now);
        self.peer.p.handle_timeout(now);
        self.peer.drain();
        self.peer.tick(now);
    }
}

impl Peer {
    /// When this side disconnects: a while after its part of the data
    /// exchange is done (all sends completed, or all receives arrived), or
    /// after connecting when the data may never finish (frozen peer).
    fn disconnect_due(&self) -> Option<Instant> {
        if !self.disconnects || self.disc != Disc::NotYet {
            return None;
        }
        let base = if self.early_disconnect {
            self.connected_at?
        } else {
            self.data_done_at?
        };
        Some(base + self.disconnect_after)
    }

    fn note_data_progress(&mut self) {
        if self.data_done_at.is_some() {
            return;
        }
        let ok = |ctxs: std::ops::Range<usize>| {
            ctxs.clone().all(|c| {
                self.completions
                    .get(&c)
                    .is_some_and(|v| v == &[STATUS_SUCCESS])
            })
        };
        let done = match self.role {
            Role::Client => ok(2000..2000 + N_MSGS),
            Role::Server => ok(1000..1000 + N_MSGS),
        };
        if done {
            self.data_done_at = Some(self.last_now);
        }
    }

    /// Starts the disconnect when it is due.
    fn tick(&mut self, now: Instant) {
        if let Some(due) = self.disconnect_due()
            && now >= due
        {
            self.start_disconnect(now);
            self.drain();
        }
    }

    fn start_disconnect(&mut self, now: Instant) {
        let c = self.connector.unwrap();
        let st = self.p.disconnect(c, cb(DISCONNECT_DONE));
        self.disc = if st == STATUS_PENDING {
            Disc::Pending { at: now }
        } else {
            // Inline (D2/D4): the flush entries are already queued.
            self.poll_cq();
            Disc::Inline(st)
        };
    }
}

fn addrs(v6: bool) -> (SocketAddr, SocketAddr) {
    if v6 {
        (
            SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 4791),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)), 4791),
        )
    } else {
        (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4791),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4791),
        )
    }
}

struct Scenario {
    /// How long after connecting the client disconnects when the server
    /// is frozen (0..20 ms random if `None`).
    client_delay: Option<Duration>,
    /// What the client's disconnect must end as, if decided.
    client_expect: Option<fn(Disc) -> bool>,
    v6: bool,
    link: LinkConfig,
    client_disconnects: bool,
    server_disconnects: bool,
    freeze_server_after_connect: bool,
    /// Freeze the server at a random moment of the handshake (a peer that
    /// dies mid-handshake) instead.
    freeze_server_mid_handshake: bool,
}

fn run(seed: u64, s: &Scenario) -> Result<(), String> {
    let (ca, sa) = addrs(s.v6);
    let cm = CmConfig {
        // A finite transport retry count: a dead peer is detected.
        retry_count: 6,
        ..CmConfig::default()
    };
    let mut sim: Simulator<NodeState> = Simulator::with_config(
        Config::new(seed)
            .with_link(s.link)
            .with_describer(roce::wire::pretty::packet_summary),
    );
    let mut client = Peer::new(Role::Client, ca, sa, sim.derive_seed(1), cm);
    let mut server = Peer::new(Role::Server, sa, ca, sim.derive_seed(2), cm);
    let mut rng = sim.derive_seed(3);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    client.disconnects = s.client_disconnects;
    server.disconnects = s.server_disconnects;
    client.early_disconnect = s.freeze_server_after_connect || s.freeze_server_mid_handshake;
    client.disconnect_after = s
        .client_delay
        .unwrap_or(Duration::from_micros(next() % 20_000));
    server.disconnect_after = Duration::from_micros(next() % 20_000);
    client.start(Instant::ZERO);
    server.start(Instant::ZERO);
    let c = sim.add_node(
        ca,
        NodeState {
            peer: client,
            buf: vec![0; MAX_DATAGRAM],
        },
    );
    let sv = sim.add_node(
        sa,
        NodeState {
            peer: server,
            buf: vec![0; MAX_DATAGRAM],
        },
    );

    if s.freeze_server_mid_handshake {
        // The handshake takes a few link delays (REQ, REP, RTU ~ 150 us).
        let at = Instant::from_nanos(next() % 300_000);
        sim.schedule(at, netsim::Fault::Freeze(sv));
    }
    if s.freeze_server_after_connect {
        sim.run_until_condition(|sim| sim.node(c).peer.connected && sim.node(sv).peer.connected);
        if !(sim.node(c).peer.connected) {
            return Ok(()); // the connect itself failed under loss; checked below
        }
        sim.freeze(sv);
    }
    sim.run_for(Duration::from_secs(200));

    let bound = cm.disconnect_bound(cm.active_timeout(cm.cm_response_timeout));
    let checked = if s.freeze_server_after_connect || s.freeze_server_mid_handshake {
        vec![c]
    } else {
        vec![c, sv]
    };
    for id in checked {
        let peer = &sim.node(id).peer;
        let who = format!("{:?}", peer.role);
        if peer.connect_failed.is_some()
            || (peer.role == Role::Server && peer.accept_status.is_none())
        {
            // Establishment itself failed (possible under heavy loss):
            // nothing may have completed twice.
        }
        // Exactly-once completion of every posted request.
        for ctx in &peer.posted {
            let n = peer.completions.get(ctx).map_or(0, Vec::len);
            if n != 1 && peer.connected {
                return Err(format!(
                    "{who}: request {ctx} completed {n} times: {:?}",
                    peer.completions.get(ctx)
                ));
            }
        }
        for (ctx, v) in &peer.completions {
            if !peer.posted.contains(ctx) {
                return Err(format!("{who}: completion for unposted {ctx}"));
            }
            if v.len() > 1 {
                return Err(format!("{who}: {ctx} completed {} times", v.len()));
            }
        }
        if peer.disconnect_events > 1 {
            return Err(format!(
                "{who}: {} disconnect events",
                peer.disconnect_events
            ));
        }
        if peer.late_completions > 0 {
            return Err(format!(
                "{who}: completions after the disconnect completion"
            ));
        }
        match peer.disc {
            Disc::NotYet if peer.disconnects && peer.connected => {
                return Err(format!("{who}: disconnect never started"));
            }
            Disc::Pending { .. } => return Err(format!("{who}: disconnect never completed")),
            Disc::Completed { status, at, start } => {
                if status != STATUS_SUCCESS && status != STATUS_IO_TIMEOUT {
                    return Err(format!("{who}: disconnect completed with {status:#x}"));
                }
                if at - start > bound {
                    return Err(format!(
                        "{who}: disconnect took {:?} > {:?}",
                        at - start,
                        bound
                    ));
                }
            }
            Disc::Inline(status) => {
                if status != STATUS_SUCCESS && status != STATUS_IO_TIMEOUT {
                    return Err(format!("{who}: inline disconnect {status:#x}"));
                }
            }
            Disc::NotYet => {}
        }
        if peer
            .upcall_log
            .iter()
            .filter(|k| matches!(k, UpcallKind::Request { .. }))
            .count()
            > 3
        {
            return Err(format!("{who}: too many request completions"));
        }
    }
    if std::env::var_os("NDK_SIM_DEBUG").is_some() {
        for id in [c, sv] {
            let p = &sim.node(id).peer;
            eprintln!(
                "{:?}: connected {} disc {:?} events {} completions {:?} received {:?} upcalls {:?}",
                p.role,
                p.connected,
                p.disc,
                p.disconnect_events,
                p.completions,
                p.received,
                p.upcall_log
            );
        }
        eprintln!("{:?}", sim.stats());
        for id in [c, sv] {
            let p = &sim.node(id).peer;
            eprintln!("drops {:?}", p.p.device_ref().drops());
            for qpn in 17..19 {
                eprintln!("qp {qpn}: {:?}", p.p.device_ref().rc_ref().query_qp(qpn));
            }
        }
        let t: Vec<String> = sim
            .trace_text()
            .lines()
            .take(60)
            .map(String::from)
            .collect();
        eprintln!("{}", t.join("\n"));
    }
    if let Some(expect) = s.client_expect {
        let d = sim.node(c).peer.disc;
        if !expect(d) {
            return Err(format!("client disconnect ended as {d:?}"));
        }
    }
    if s.freeze_server_mid_handshake {
        // The client either never connected (its connect failed once, with
        // IO_TIMEOUT) or connected and its disconnect ended within the
        // bound (checked above).
        let p = &sim.node(c).peer;
        match (p.connected, p.connect_failed) {
            (false, Some(st)) if st == STATUS_IO_TIMEOUT => {}
            (true, None) => {}
            other => return Err(format!("client after a mid-handshake death: {other:?}")),
        }
    }
    if !s.freeze_server_after_connect && !s.freeze_server_mid_handshake {
        // A live peer: the connection comes up, all data arrives, and the
        // disconnects complete.
        for id in [c, sv] {
            let p = &sim.node(id).peer;
            // A server that disconnects once its receives are in may cancel
            // sends whose ACKs were still on the way: the data arrived,
            // the client's completions say CANCELLED.
            let data_expected = p.role == Role::Server || !s.server_disconnects;
            if !p.connected || (data_expected && p.data_done_at.is_none()) {
                return Err(format!(
                    "{:?}: connected {} data done {:?}",
                    p.role, p.connected, p.data_done_at
                ));
            }
            if matches!(p.disc, Disc::NotYet | Disc::Pending { .. }) {
                return Err(format!("{:?}: disconnect {:?}", p.role, p.disc));
            }
        }
    }
    // Data: every receive that succeeded holds the bytes of the send in
    // the same position.
    let server = &sim.node(sv).peer;
    for (ctx, bytes) in &server.received {
        let i = ctx - 1000;
        if *bytes as usize != MSG {
            return Err(format!("receive {ctx}: {bytes} bytes"));
        }
        let got = server
            .p
            .device_ref()
            .rc_ref()
            .memory()
            .snapshot(((N_MSGS + i) * MSG) as u64, MSG);
        if got.iter().any(|&b| b != (i + 1) as u8) {
            return Err(format!("receive {ctx}: wrong bytes"));
        }
    }
    Ok(())
}

fn sweep(default: u64, s: Scenario) {
    netsim::sweep(default, |seed| run(seed, &s));
}

fn lossy() -> LinkConfig {
    LinkConfig::default()
        .delay(Duration::from_micros(50))
        .jitter(Duration::from_micros(30))
        .loss(0.05)
        .duplicate(0.02)
        .reorder(0.05, Duration::from_micros(200))
}

#[test]
fn client_disconnects_under_faults_ipv4() {
    sweep(
        60,
        Scenario {
            client_delay: None,
            client_expect: None,
            v6: false,
            link: lossy(),
            client_disconnects: true,
            server_disconnects: false,
            freeze_server_after_connect: false,
            freeze_server_mid_handshake: false,
        },
    );
}

#[test]
fn server_disconnects_under_faults_ipv6() {
    sweep(
        60,
        Scenario {
            client_delay: None,
            client_expect: None,
            v6: true,
            link: lossy(),
            client_disconnects: false,
            server_disconnects: true,
            freeze_server_after_connect: false,
            freeze_server_mid_handshake: false,
        },
    );
}

#[test]
fn both_disconnect_under_faults() {
    sweep(
        60,
        Scenario {
            client_delay: None,
            client_expect: None,
            v6: false,
            link: lossy(),
            client_disconnects: true,
            server_disconnects: true,
            freeze_server_after_connect: false,
            freeze_server_mid_handshake: false,
        },
    );
}

#[test]
fn frozen_peer_disconnect_times_out_within_the_bound() {
    sweep(
        10,
        Scenario {
            client_delay: None,
            // The DREQ retries run out before the QP's transport retries.
            client_expect: Some(
                |d| matches!(d, Disc::Completed { status, .. } if status == STATUS_IO_TIMEOUT),
            ),
            v6: false,
            link: LinkConfig::default().delay(Duration::from_micros(50)),
            client_disconnects: true,
            server_disconnects: false,
            freeze_server_after_connect: true,
            freeze_server_mid_handshake: false,
        },
    );
}

#[test]
fn transport_failure_first_then_disconnect_fails_inline_with_io_timeout() {
    // The client stays idle long enough for its QP's retries (6 x 2.1 s)
    // to run out against the frozen server: the disconnect event fires, and
    // the consumer's NdkDisconnect then fails inline with IO_TIMEOUT (D4).
    sweep(
        10,
        Scenario {
            client_delay: Some(Duration::from_secs(60)),
            client_expect: Some(|d| d == Disc::Inline(STATUS_IO_TIMEOUT)),
            v6: true,
            link: LinkConfig::default().delay(Duration::from_micros(50)),
            client_disconnects: true,
            server_disconnects: false,
            freeze_server_after_connect: true,
            freeze_server_mid_handshake: false,
        },
    );
}

#[test]
fn server_dies_mid_handshake() {
    sweep(
        30,
        Scenario {
            client_delay: None,
            client_expect: None,
            v6: false,
            link: LinkConfig::default().delay(Duration::from_micros(50)),
            client_disconnects: true,
            server_disconnects: false,
            freeze_server_after_connect: false,
            freeze_server_mid_handshake: true,
        },
    );
}

// ---------------------------------------------------------------------------
// The truth sweeps (docs/disconnect.md): with both peers alive, no request
// ever ends in STATUS_IO_TIMEOUT; with one peer frozen or crashed, the
// survivor's requests end within their documented bounds. Each prints the
// status distribution it saw. NETSIM_SEEDS sets the seed count (CI:
// 10,000, release); the seeds run on two threads.

/// Whether a datagram is a CM MAD (to QP1): the first 3 bytes of the BTH's
/// destination QP field.
fn is_cm(payload: &[u8]) -> bool {
    payload.get(5..8) == Some(&[0, 0, 1][..])
}

/// Statuses seen, by what they completed.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add(&mut self, what: &str, status: Option<NTSTATUS>) {
        let name = match status {
            None => "none".to_string(),
            Some(STATUS_SUCCESS) => "SUCCESS".into(),
            Some(STATUS_IO_TIMEOUT) => "IO_TIMEOUT".into(),
            Some(STATUS_CANCELLED) => "CANCELLED".into(),
            Some(STATUS_CONNECTION_ABORTED) => "CONNECTION_ABORTED".into(),
            Some(STATUS_CONNECTION_REFUSED) => "CONNECTION_REFUSED".into(),
            Some(s) => format!("{s:#x}"),
        };
        *self.0.entry(format!("{what}: {name}")).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    fn print(&self, title: &str, seeds: u64) {
        eprintln!("{title}: status distribution over {seeds} seeds");
        for (k, v) in &self.0 {
            eprintln!("  {k:<44} {v:>7}");
        }
    }
}

fn request_statuses(p: &Peer, func: usize) -> Vec<NTSTATUS> {
    request_times(p, func).into_iter().map(|(s, _)| s).collect()
}

fn request_times(p: &Peer, func: usize) -> Vec<(NTSTATUS, Instant)> {
    p.upcall_log
        .iter()
        .zip(p.upcall_funcs.iter())
        .filter(|(_, (f, _))| *f == func)
        .filter_map(|(k, (_, at))| match k {
            UpcallKind::Request { status } => Some((*status, *at)),
            _ => None,
        })
        .collect()
}

/// Every work request posted successfully completed exactly once (at most
/// once while the QP was never flushed: a QP that never got connected, or
/// whose establishment failed, holds its receives until it is closed).
fn exactly_once(p: &Peer) -> Result<(), String> {
    let flushed = matches!(p.disc, Disc::Completed { .. } | Disc::Inline(_));
    for ctx in &p.posted {
        let n = p.completions.get(ctx).map_or(0, Vec::len);
        if n > 1 || (n == 0 && flushed) {
            return Err(format!("{:?}: request {ctx} completed {n} times", p.role));
        }
    }
    if let Some(ctx) = p.completions.keys().find(|c| !p.posted.contains(c)) {
        return Err(format!("{:?}: completion for unposted {ctx}", p.role));
    }
    Ok(())
}

/// One seed's network: delay, jitter, reordering and duplication from the
/// link, loss from a hook. Loss is fair: each datagram is lost with the
/// seed's probability (up to 30%), but at most `cm_losses` CM MADs in the
/// whole run, fewer than any CM retry budget, so every exchange gets
/// through in the end (IBA RC with retry count 7 retries forever, so RC
/// packets need no cap).
fn fair_network(seed: u64, cm_losses: u32) -> (Simulator<NodeState>, f64) {
    let mut pick = netsim::SimRng::derived(seed, 100);
    let loss = pick.below(301) as f64 / 1000.0;
    let link = LinkConfig::default()
        .delay(Duration::from_micros(50))
        .jitter(Duration::from_micros(pick.below(40)))
        .duplicate(pick.below(51) as f64 / 1000.0)
        .reorder(pick.below(101) as f64 / 1000.0, Duration::from_micros(300));
    let mut config = Config::new(seed)
        .with_link(link)
        .with_describer(roce::wire::pretty::packet_summary);
    // Without a trace in the sweep; with one in a replay (NETSIM_SEED).
    config.record_trace = std::env::var_os(netsim::SEED_VAR).is_some();
    let mut sim: Simulator<NodeState> = Simulator::with_config(config);
    let mut rng = sim.derived_rng(101);
    let mut cm_left = cm_losses;
    sim.set_hook(move |_, d| {
        if !rng.chance(loss) {
            return netsim::Verdict::Pass;
        }
        if is_cm(&d.payload) {
            if cm_left == 0 {
                return netsim::Verdict::Pass;
            }
            cm_left -= 1;
        }
        netsim::Verdict::Drop
    });
    (sim, loss)
}

fn sweep_cm() -> CmConfig {
    // rdma_cm's defaults, retry count 7 included (retry forever: only the
    // CM decides a peer is gone, within the disconnect bound).
    CmConfig::default()
}

fn add_pair(
    sim: &mut Simulator<NodeState>,
    seed: u64,
    cm: CmConfig,
    setup: impl FnOnce(&mut Peer, &mut Peer),
) -> (netsim::NodeId, netsim::NodeId) {
    let (ca, sa) = addrs(seed % 2 == 1);
    let mut client = Peer::new(Role::Client, ca, sa, sim.derive_seed(1), cm);
    let mut server = Peer::new(Role::Server, sa, ca, sim.derive_seed(2), cm);
    setup(&mut client, &mut server);
    client.start(Instant::ZERO);
    server.start(Instant::ZERO);
    let c = sim.add_node(
        ca,
        NodeState {
            peer: client,
            buf: vec![0; MAX_DATAGRAM],
        },
    );
    let s = sim.add_node(
        sa,
        NodeState {
            peer: server,
            buf: vec![0; MAX_DATAGRAM],
        },
    );
    (c, s)
}

/// Both peers alive under fair loss, duplication and reordering.
fn live_seed(seed: u64, tally: &mut Tally) -> Result<(), String> {
    let cm = sweep_cm();
    let (mut sim, loss) = fair_network(seed, u32::from(cm.max_dreq_retries));
    let mut pick = netsim::SimRng::derived(seed, 102);
    // Who disconnects: the client, the server, or both (DREQs may cross).
    let who = pick.below(3);
    let delays = [pick.below(20_000), pick.below(20_000)];
    let (c, s) = add_pair(&mut sim, seed, cm, |client, server| {
        client.disconnects = who != 1;
        server.disconnects = who != 0;
        client.disconnect_after = Duration::from_micros(delays[0]);
        server.disconnect_after = Duration::from_micros(delays[1]);
    });
    sim.run_for(Duration::from_secs(200));
    for id in [c, s] {
        let p = &sim.node(id).peer;
        let who_ = format!("{:?} (loss {loss:.3})", p.role);
        let (func, what) = match p.role {
            Role::Client => (CONNECT_DONE, "connect"),
            Role::Server => (ACCEPT_DONE, "accept"),
        };
        let done = request_statuses(p, func);
        tally.add(what, done.first().copied());
        if done != [STATUS_SUCCESS] {
            return Err(format!("{who_}: {what} completed {done:?}"));
        }
        exactly_once(p).map_err(|e| format!("{e} (loss {loss:.3})"))?;
        let role = format!("{:?}", p.role).to_lowercase();
        let (status, took) = match p.disc {
            Disc::Completed { status, at, start } => (status, Some(at - start)),
            Disc::Inline(status) => (status, None),
            d => return Err(format!("{who_}: disconnect {d:?} (a hang)")),
        };
        let how = if took.is_some() { "async" } else { "inline" };
        tally.add(&format!("{role} disconnect ({how})"), Some(status));
        if status != STATUS_SUCCESS {
            return Err(format!("{who_}: disconnect ended {status:#x}"));
        }
        let async_done = request_statuses(p, DISCONNECT_DONE);
        if async_done.len() != usize::from(took.is_some()) {
            return Err(format!("{who_}: disconnect completions {async_done:?}"));
        }
        // The side that did not start the disconnect hears of it once; a
        // side whose DREQ crossed the peer's hears nothing.
        let expect = if who == 2 {
            0..=1
        } else {
            u32::from(!p.disconnects)..=u32::from(!p.disconnects)
        };
        tally.add(
            &format!("{role} disconnect events = {}", p.disconnect_events),
            None,
        );
        if !expect.contains(&p.disconnect_events) {
            return Err(format!(
                "{who_}: {} disconnect events, expected {expect:?}",
                p.disconnect_events
            ));
        }
    }
    Ok(())
}

/// One peer frozen or crashed at a random moment; the survivor's requests
/// end within their bounds, with IO_TIMEOUT where the peer was gone.
fn dead_seed(seed: u64, tally: &mut Tally) -> Result<(), String> {
    let cm = sweep_cm();
    let (mut sim, loss) = fair_network(seed, u32::from(cm.max_dreq_retries));
    let mut pick = netsim::SimRng::derived(seed, 103);
    let victim_is_client = pick.below(2) == 0;
    let crash = pick.below(2) == 0;
    // Handshake (~0.2 ms), data (a few ms), disconnects (0-30 ms later).
    let at = Instant::from_nanos(pick.below(40_000_000));
    let delays = [pick.below(30_000), pick.below(30_000)];
    let (c, s) = add_pair(&mut sim, seed, cm, |client, server| {
        for (p, d) in [(client, delays[0]), (server, delays[1])] {
            p.disconnects = true;
            p.early_disconnect = true;
            p.disconnect_after = Duration::from_micros(d);
        }
    });
    let (victim, survivor) = if victim_is_client { (c, s) } else { (s, c) };
    sim.schedule(
        at,
        if crash {
            netsim::Fault::Crash(victim)
        } else {
            netsim::Fault::Freeze(victim)
        },
    );
    sim.run_for(Duration::from_secs(200));
    let fault = at;
    let p = &sim.node(survivor).peer;
    let who = format!(
        "{:?} survivor ({} at {:?}, loss {loss:.3})",
        p.role,
        if crash { "crash" } else { "freeze" },
        Duration::from_nanos(at.as_nanos())
    );
    let role = format!("{:?}", p.role).to_lowercase();
    let (func, what, bound) = match p.role {
        Role::Client => (
            CONNECT_DONE,
            "connect",
            cm.active_timeout(cm.cm_response_timeout) * (u32::from(cm.max_cm_retries) + 1),
        ),
        Role::Server => (
            ACCEPT_DONE,
            "accept",
            cm.passive_timeout(cm.cm_response_timeout) * (u32::from(cm.max_cm_retries) + 1),
        ),
    };
    let done = request_times(p, func);
    // A server that never saw the REQ has no connection to report on.
    let asked = p.role == Role::Client || p.connector.is_some();
    if asked {
        tally.add(&format!("{role} {what}"), done.first().map(|d| d.0));
        match done.as_slice() {
            [(STATUS_SUCCESS, _)] => {}
            // Both start within a millisecond of time zero.
            [(STATUS_IO_TIMEOUT, t)] if *t - Instant::ZERO <= bound + Duration::from_millis(1) => {}
            other => {
                return Err(format!(
                    "{who}: {what} completed {other:?} (bound {bound:?})"
                ));
            }
        }
    }
    exactly_once(p)?;
    if p.disconnect_events > 1 {
        return Err(format!("{who}: {} disconnect events", p.disconnect_events));
    }
    if p.connected {
        let per_role = match p.role {
            Role::Client => cm.active_disconnect_bound(),
            Role::Server => cm.passive_disconnect_bound(),
        };
        let (status, start, took) = match p.disc {
            Disc::Completed { status, at, start } => (status, Some(start), Some(at - start)),
            Disc::Inline(status) => (status, None, None),
            d => return Err(format!("{who}: disconnect {d:?} (a hang)")),
        };
        let how = if took.is_some() { "async" } else { "inline" };
        tally.add(&format!("{role} disconnect ({how})"), Some(status));
        if let Some(t) = took
            && t > per_role
        {
            return Err(format!("{who}: disconnect took {t:?} > {per_role:?}"));
        }
        // Started after the peer died, and no word from the peer before:
        // the handshake cannot succeed.
        let dead_first = start.is_some_and(|st| st >= fault) && p.disconnect_events == 0;
        match status {
            STATUS_IO_TIMEOUT => {}
            STATUS_SUCCESS if !dead_first => {}
            other => return Err(format!("{who}: disconnect ended {other:#x}")),
        }
        if let Some(t) = took {
            let ms = t.as_millis() as u64;
            let bucket = match ms {
                0..=999 => "< 1 s",
                1000..=9999 => "1-10 s",
                _ => ">= 10 s",
            };
            tally.add(&format!("{role} disconnect took {bucket}"), None);
        }
    }
    Ok(())
}

/// Runs `body` over the sweep's seeds on two threads and prints the tally.
fn truth_sweep(title: &str, default: u64, body: fn(u64, &mut Tally) -> Result<(), String>) {
    let seeds: Vec<u64> = netsim::Seeds::from_env(default).iter().collect();
    let start = std::time::Instant::now();
    let halves: Vec<&[u64]> = seeds.chunks(seeds.len().div_ceil(2).max(1)).collect();
    let results: Vec<(Tally, Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter()
            .map(|chunk| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    for &seed in *chunk {
                        if let Err(e) = body(seed, &mut tally) {
                            return (
                                tally,
                                Err(format!(
                                    "seed {seed}: {e}\nreplay: NETSIM_SEED={seed} cargo test -p ndk --test disconnect_sim {title}"
                                )),
                            );
                        }
                    }
                    (tally, Ok(()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tally = Tally::default();
    let mut failure = None;
    for (t, r) in results {
        tally.merge(t);
        if let Err(e) = r {
            failure.get_or_insert(e);
        }
    }
    tally.print(title, seeds.len() as u64);
    eprintln!("{title}: {} seeds in {:?}", seeds.len(), start.elapsed());
    if let Some(e) = failure {
        panic!("{e}");
    }
}

#[test]
fn truth_live_peers_never_time_out() {
    truth_sweep("truth_live_peers_never_time_out", 200, live_seed);
}

#[test]
fn truth_dead_peer_times_out_within_the_bound() {
    truth_sweep("truth_dead_peer_times_out_within_the_bound", 200, dead_seed);
}
