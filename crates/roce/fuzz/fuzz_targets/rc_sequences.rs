// Run: cd crates/roce/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run rc_sequences corpus/rc_sequences
//
// Two RC QPs in RTS facing each other (IBA Vol 1 ch. 9; Linux rxe's
// requester, responder and completer are the interop reference). The
// fuzzer posts work requests of every kind (with good and bad keys,
// offsets and lengths), owns the wire (delivers, drops, duplicates,
// reorders) and injects packets made from any packet seen so far with
// its opcode, PSN, destination QP, RETH (address, rkey, length), AETH and
// length rewritten, and fires timers.
//
// Invariants, checked on every input:
// * no panic;
// * the engine writes only inside the one registered MR with local and
//   remote write rights (a read-only MR and unregistered memory sit next
//   to it, and every write is checked as it happens);
// * every posted work request (all signaled) completes exactly once, no
//   completion names a request that was not posted;
// * the end state is defined: after the wire settles and both QPs are
//   moved to Error, every request has completed and the QPs are in Error.
#![no_main]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use roce::rc::*;
use roce::time::Instant;
use roce::wire::packet::{Packet, PacketRepr};

const ARENA: usize = 0x1_0000;
/// The one MR the engine may write: [0, RW_END).
const RW_END: u64 = 0x4000;
/// A read-only MR (remote read): [RW_END, RO_END).
const RO_END: u64 = 0x8000;
const BASE_VA: u64 = 0x7F00_0000_0000;

/// An arena that refuses (and reports) any write outside the writable MR.
struct Guarded {
    arena: ArenaMemory,
    stray: Cell<Option<(u64, usize)>>,
}

impl Memory for Guarded {
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        self.arena.read(addr, dst)
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        let end = addr.checked_add(src.len() as u64);
        if end.is_none_or(|e| e > RW_END) {
            self.stray.set(Some((addr, src.len())));
            return false;
        }
        self.arena.write(addr, src)
    }
}

struct Host {
    engine: Engine<Guarded>,
    cq: CqHandle,
    qpn: u32,
    rw_key: u32,
    ro_key: u32,
    ip: Ipv4Addr,
    /// wr_id -> completions seen (sends and receives share one numbering).
    posted: BTreeMap<u64, u32>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Key {
    Rw,
    Ro,
    Other(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Send,
    SendImm(u32),
    SendInv(Key),
    Write,
    WriteImm(u32),
    Read,
    Inline,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Post {
        b: bool,
        kind: Kind,
        off: u16,
        len: u16,
        lkey: Key,
        remote_off: u16,
        rkey: Key,
        fence: bool,
    },
    Recv {
        b: bool,
        off: u16,
        len: u16,
        lkey: Key,
    },
    Deliver {
        to_b: bool,
    },
    Drop {
        to_b: bool,
    },
    Duplicate {
        to_b: bool,
    },
    Swap {
        to_b: bool,
    },
    Inject(Inject),
    Advance {
        micros: u32,
    },
    NextTimer,
    Error {
        b: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Inject {
    to_b: bool,
    from: u8,
    opcode: Option<u8>,
    psn_delta: Option<i16>,
    dest_qpn: Option<u32>,
    /// RETH (or AETH) at byte 12 of an RC packet.
    va: Option<u64>,
    rkey: Option<Key>,
    dma_len: Option<u32>,
    aeth: Option<u32>,
    truncate: Option<u16>,
    extend: Vec<u8>,
    edits: Vec<(u16, u8)>,
}

const ALL: Access = Access::LOCAL_WRITE
    .union(Access::REMOTE_READ)
    .union(Access::REMOTE_WRITE);

impl Host {
    fn new(last: u8) -> Host {
        let mem = Guarded {
            arena: ArenaMemory::new(ARENA),
            stray: Cell::new(None),
        };
        let mut engine = Engine::with_config(
            mem,
            EngineConfig {
                first_qpn: 17,
                key_seed: u32::from(last) * 11,
                qpn_epoch: 0,
            },
        );
        let pd = engine.alloc_pd().unwrap();
        let cq = engine.create_cq(4096).unwrap();
        let rw = engine
            .register_mr(
                pd,
                BASE_VA,
                RW_END,
                ALL,
                Translation::Contiguous { base: 0 },
            )
            .unwrap();
        let ro = engine
            .register_mr(
                pd,
                BASE_VA + RW_END,
                RO_END - RW_END,
                Access::REMOTE_READ,
                Translation::Contiguous { base: RW_END },
            )
            .unwrap();
        let qpn = engine
            .create_qp(&QpInit {
                pd,
                send_cq: cq,
                recv_cq: cq,
                srq: None,
                sq_depth: 64,
                rq_depth: 64,
                max_send_sge: 2,
                max_recv_sge: 2,
                max_inline: 64,
            })
            .unwrap();
        Host {
            rw_key: engine.mr_key(rw).unwrap(),
            ro_key: engine.mr_key(ro).unwrap(),
            engine,
            cq,
            qpn,
            ip: Ipv4Addr::new(10, 9, 0, last),
            posted: BTreeMap::new(),
        }
    }

    fn key(&self, k: Key) -> u32 {
        match k {
            Key::Rw => self.rw_key,
            Key::Ro => self.ro_key,
            Key::Other(v) => v,
        }
    }

    /// A local key: any but the privileged one, whose SGE addresses are
    /// logical addresses the kernel consumer vouches for (NDKPI
    /// NdkGetPrivilegedMemoryRegionToken), so no MR bounds apply to it.
    /// Remote keys may be anything, the privileged one included.
    fn lkey(&self, k: Key) -> u32 {
        match self.key(k) {
            PRIVILEGED_LKEY => 1,
            v => v,
        }
    }

    fn bring_up(&mut self, peer_qpn: u32, peer: Ipv4Addr, rq_psn: u32, sq_psn: u32) {
        let e = &mut self.engine;
        e.modify_qp(
            self.qpn,
            &QpAttr {
                state: Some(QpState::Init),
                access: Some(Access::REMOTE_READ | Access::REMOTE_WRITE),
                ..Default::default()
            },
        )
        .unwrap();
        e.modify_qp(
            self.qpn,
            &QpAttr {
                state: Some(QpState::Rtr),
                path_mtu: Some(256),
                dest_qpn: Some(peer_qpn),
                rq_psn: Some(rq_psn),
                max_dest_rd_atomic: Some(2),
                min_rnr_timer: Some(1),
                path: Some(Path {
                    local_ip: IpAddr::V4(self.ip),
                    remote_ip: IpAddr::V4(peer),
                    udp_src_port: 0xC000,
                    hop_limit: 64,
                    traffic_class: 0,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        e.modify_qp(
            self.qpn,
            &QpAttr {
                state: Some(QpState::Rts),
                sq_psn: Some(sq_psn),
                timeout: Some(8),
                retry_cnt: Some(3),
                rnr_retry: Some(3),
                max_rd_atomic: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    }

    /// Polls the CQ: each completion names a posted request, once.
    fn drain(&mut self) {
        let mut out = [Completion::default(); 32];
        loop {
            let n = self.engine.poll_cq(self.cq, &mut out);
            for c in &out[..n] {
                assert_eq!(c.qpn, self.qpn);
                let seen = self
                    .posted
                    .get_mut(&c.wr_id)
                    .unwrap_or_else(|| panic!("completion of a request never posted: {c:?}"));
                *seen += 1;
                assert_eq!(*seen, 1, "completed twice: {c:?}");
            }
            if n == 0 {
                break;
            }
        }
        while self.engine.poll_event().is_some() {}
        if let Some((addr, len)) = self.engine.memory().stray.get() {
            panic!("write of {len} bytes at logical {addr:#x}, outside the writable MR");
        }
    }
}

struct World {
    a: Host,
    b: Host,
    now: Instant,
    to_a: Vec<Vec<u8>>,
    to_b: Vec<Vec<u8>>,
    seen: Vec<Vec<u8>>,
    next_wr: u64,
    buf: Vec<u8>,
}

impl World {
    fn new() -> World {
        let mut a = Host::new(3);
        let mut b = Host::new(2);
        let (aq, bq, aip, bip) = (a.qpn, b.qpn, a.ip, b.ip);
        a.bring_up(bq, bip, 0x12_3456, 0xFF_FFF0);
        b.bring_up(aq, aip, 0xFF_FFF0, 0x12_3456);
        World {
            a,
            b,
            now: Instant::ZERO,
            to_a: Vec::new(),
            to_b: Vec::new(),
            seen: Vec::new(),
            next_wr: 1,
            buf: vec![0; MAX_PACKET_LEN],
        }
    }

    fn host(&mut self, b: bool) -> &mut Host {
        if b { &mut self.b } else { &mut self.a }
    }

    /// Collects what each side sends (bounded) and drains its CQ.
    fn collect(&mut self) {
        let now = self.now;
        for from_b in [false, true] {
            for _ in 0..256 {
                let h = if from_b { &mut self.b } else { &mut self.a };
                let Some(info) = h.engine.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let p = self.buf[..info.len].to_vec();
                self.seen.push(p.clone());
                if from_b {
                    self.to_a.push(p);
                } else {
                    self.to_b.push(p);
                }
            }
            self.host(from_b).drain();
        }
        for q in [&mut self.to_a, &mut self.to_b, &mut self.seen] {
            if q.len() > 128 {
                q.drain(..q.len() - 128);
            }
        }
    }

    fn deliver(&mut self, to_b: bool, bytes: &[u8]) {
        let Ok(pkt) = Packet::new_checked(bytes) else {
            return;
        };
        let Ok(repr) = PacketRepr::parse(&pkt) else {
            return;
        };
        let (from, to) = if to_b {
            (self.a.ip, &mut self.b)
        } else {
            (self.b.ip, &mut self.a)
        };
        let rx = RxInfo {
            src_ip: IpAddr::V4(from),
            dst_ip: IpAddr::V4(to.ip),
            udp_src_port: 0xC000,
        };
        to.engine.handle_packet(self.now, &rx, &repr);
        to.drain();
    }

    fn fire(&mut self) {
        let now = self.now;
        self.a.engine.handle_timeout(now);
        self.b.engine.handle_timeout(now);
    }

    fn next_timer(&mut self) -> bool {
        let Some(at) = [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        self.now = self.now.max(at);
        self.fire();
        true
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Post {
                b,
                kind,
                off,
                len,
                lkey,
                remote_off,
                rkey,
                fence,
            } => {
                let wr_id = self.next_wr;
                self.next_wr += 1;
                let h = self.host(b);
                let sge = [Sge {
                    addr: BASE_VA + u64::from(off),
                    length: u32::from(len),
                    lkey: h.lkey(lkey),
                }];
                let inline = [0x3Cu8; 80];
                // The peer's keys: the fuzzer names them by role.
                let peer = if b { &self.a } else { &self.b };
                let rkey = peer.key(rkey);
                let remote_addr = BASE_VA + u64::from(remote_off);
                let op = match kind {
                    Kind::Send | Kind::Inline => SendOp::Send,
                    Kind::SendImm(imm) => SendOp::SendWithImm(imm),
                    Kind::SendInv(k) => SendOp::SendWithInv(peer.key(k)),
                    Kind::Write => SendOp::Write { remote_addr, rkey },
                    Kind::WriteImm(imm) => SendOp::WriteWithImm {
                        remote_addr,
                        rkey,
                        imm,
                    },
                    Kind::Read => SendOp::Read { remote_addr, rkey },
                };
                let payload = match kind {
                    Kind::Inline => Payload::Inline(&inline[..usize::from(len % 80)]),
                    _ => Payload::Sges(&sge),
                };
                let mut flags = SendFlags::SIGNALED;
                if fence {
                    flags = flags | SendFlags::READ_FENCE;
                }
                let h = self.host(b);
                let wr = SendWr {
                    wr_id,
                    op,
                    payload,
                    flags,
                };
                if h.engine.post_send(h.qpn, &wr).is_ok() {
                    h.posted.insert(wr_id, 0);
                }
            }
            Op::Recv { b, off, len, lkey } => {
                let wr_id = self.next_wr;
                self.next_wr += 1;
                let h = self.host(b);
                let sge = [Sge {
                    addr: BASE_VA + u64::from(off),
                    length: u32::from(len),
                    lkey: h.lkey(lkey),
                }];
                if h.engine.post_recv(h.qpn, wr_id, &sge).is_ok() {
                    h.posted.insert(wr_id, 0);
                }
            }
            Op::Deliver { to_b } | Op::Drop { to_b } | Op::Duplicate { to_b } => {
                let q = if to_b { &mut self.to_b } else { &mut self.to_a };
                if q.is_empty() {
                    return;
                }
                let p = if matches!(op, Op::Duplicate { .. }) {
                    q[0].clone()
                } else {
                    q.remove(0)
                };
                if !matches!(op, Op::Drop { .. }) {
                    self.deliver(to_b, &p);
                }
            }
            Op::Swap { to_b } => {
                let q = if to_b { &mut self.to_b } else { &mut self.to_a };
                if q.len() >= 2 {
                    q.swap(0, 1);
                }
            }
            Op::Inject(i) => {
                if self.seen.is_empty() {
                    return;
                }
                let mut p = self.seen[usize::from(i.from) % self.seen.len()].clone();
                if let Some(op) = i.opcode {
                    p[0] = op;
                }
                if let Some(d) = i.psn_delta {
                    let psn = u32::from_be_bytes([0, p[9], p[10], p[11]]);
                    let psn = psn.wrapping_add(d as i32 as u32) & 0xFF_FFFF;
                    p[9..12].copy_from_slice(&psn.to_be_bytes()[1..]);
                }
                if let Some(q) = i.dest_qpn {
                    p[5..8].copy_from_slice(&q.to_be_bytes()[1..]);
                }
                if p.len() >= 28 {
                    if let Some(va) = i.va {
                        p[12..20].copy_from_slice(&va.to_be_bytes());
                    }
                    if let Some(k) = i.rkey {
                        let peer = if i.to_b { &self.b } else { &self.a };
                        p[20..24].copy_from_slice(&peer.key(k).to_be_bytes());
                    }
                    if let Some(l) = i.dma_len {
                        p[24..28].copy_from_slice(&l.to_be_bytes());
                    }
                }
                if let (Some(a), true) = (i.aeth, p.len() >= 16) {
                    p[12..16].copy_from_slice(&a.to_be_bytes());
                }
                if let Some(t) = i.truncate {
                    p.truncate(usize::from(t));
                }
                p.extend(i.extend.iter().take(4096));
                for (at, v) in i.edits.iter().take(16) {
                    if let Some(b) = p.get_mut(usize::from(*at)) {
                        *b ^= v;
                    }
                }
                self.deliver(i.to_b, &p);
            }
            Op::Advance { micros } => {
                self.now += Duration::from_micros(u64::from(micros));
                self.fire();
            }
            Op::NextTimer => {
                self.next_timer();
            }
            Op::Error { b } => {
                let h = self.host(b);
                let _ = h.engine.modify_qp(
                    h.qpn,
                    &QpAttr {
                        state: Some(QpState::Error),
                        ..Default::default()
                    },
                );
            }
        }
        self.collect();
    }

    /// A loss-free wire and the timers until both sides go quiet, then
    /// both QPs to Error: every request has completed exactly once.
    fn finish(&mut self) {
        for _ in 0..2_000 {
            let (qa, qb) = (
                std::mem::take(&mut self.to_a),
                std::mem::take(&mut self.to_b),
            );
            let idle = qa.is_empty() && qb.is_empty();
            for p in qb {
                self.deliver(true, &p);
            }
            for p in qa {
                self.deliver(false, &p);
            }
            self.collect();
            if idle && !self.next_timer() {
                break;
            }
            self.collect();
        }
        for b in [false, true] {
            let h = self.host(b);
            h.engine
                .modify_qp(
                    h.qpn,
                    &QpAttr {
                        state: Some(QpState::Error),
                        ..Default::default()
                    },
                )
                .expect("any state may move to Error");
        }
        self.collect();
        // Completions of the flush may need the timers once more.
        for _ in 0..1_000 {
            if !self.next_timer() {
                break;
            }
            self.collect();
        }
        self.collect();
        for h in [&self.a, &self.b] {
            assert_eq!(h.engine.qp_state(h.qpn), Some(QpState::Error));
            for (wr_id, n) in &h.posted {
                assert_eq!(*n, 1, "request {wr_id} completed {n} times");
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = World::new();
    for op in ops.into_iter().take(256) {
        w.run(op);
    }
    w.finish();
});
