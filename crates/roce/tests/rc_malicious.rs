//! A malicious or broken peer (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c): crafted requests with bad
//! keys, wrong PDs, out-of-bounds and overflowing ranges, missing rights,
//! invalidated keys, opcode sequence errors, bad lengths and atomics each
//! get the right NAK, and no byte of memory changes: not outside the
//! target MR, and not inside it for the rejected request. Plus a fuzz of
//! random packets that must never panic nor touch memory no MR allows
//! a peer to write.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use roce::rc::*;
use roce::time::Instant;
use roce::wire::aeth::{AethRepr, NakCode, Syndrome};
use roce::wire::atomic_eth::AtomicEthRepr;
use roce::wire::bth::BthRepr;
use roce::wire::ieth::IethRepr;
use roce::wire::immdt::ImmDtRepr;
use roce::wire::opcode::{ExtHeader, Opcode};
use roce::wire::packet::{Packet, PacketRepr};
use roce::wire::reth::RethRepr;
use support::rc::Rng;

const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PSN0: u32 = 0xFF_FFFE;
const VA: u64 = 0x10_0000;
const MTU: usize = 1024;
const RECV_BUF: u64 = 0x9000;
/// One MTU: a SEND First fits, anything more does not.
const RECV_LEN: u32 = MTU as u32;

struct Victim {
    e: Engine<ArenaMemory>,
    qpn: u32,
    rw: u32,
    ro: u32,
    wo: u32,
    other_pd: u32,
    dead_fr: u32,
    rcq: CqHandle,
}

fn rx() -> RxInfo {
    RxInfo {
        src_ip: IpAddr::V4(PEER),
        dst_ip: IpAddr::V4(US),
        udp_src_port: 0xC001,
    }
}

/// A victim QP in RTS. Memory 0..0x10000 holds a pattern; MRs:
/// rw = [0x1000, 0x2000) all rights, ro = [0x3000, 0x4000) remote read,
/// wo = [0x5000, 0x6000) remote write, other_pd = [0xA000, 0xB000) all
/// rights in another PD, dead_fr = a fast-register MR at 0x7000,
/// invalidated. One receive of one MTU at 0x9000.
fn victim(qp_access: Access) -> Victim {
    let mut e = Engine::new(ArenaMemory::new(0x10000));
    e.memory().write(0, &PATTERN);
    let pd = e.alloc_pd().unwrap();
    let pd2 = e.alloc_pd().unwrap();
    let all = Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE;
    let mut reg = |pd, off: u64, access| {
        let h = e
            .register_mr(
                pd,
                VA + off,
                0x1000,
                access,
                Translation::Contiguous { base: off },
            )
            .unwrap();
        e.mr_key(h).unwrap()
    };
    let rw = reg(pd, 0x1000, all);
    let ro = reg(pd, 0x3000, Access::REMOTE_READ);
    let wo = reg(pd, 0x5000, Access::LOCAL_WRITE | Access::REMOTE_WRITE);
    let other_pd = reg(pd2, 0xA000, all);
    let recv = reg(pd, 0x9000, Access::LOCAL_WRITE);
    let cq = e.create_cq(64).unwrap();
    let rcq = e.create_cq(64).unwrap();
    let qpn = e
        .create_qp(&QpInit {
            pd,
            send_cq: cq,
            recv_cq: rcq,
            srq: None,
            sq_depth: 8,
            rq_depth: 8,
            max_send_sge: 2,
            max_recv_sge: 2,
            max_inline: 0,
        })
        .unwrap();
    let path = Path {
        local_ip: IpAddr::V4(US),
        remote_ip: IpAddr::V4(PEER),
        udp_src_port: 0xC002,
        hop_limit: 64,
        traffic_class: 0,
    };
    for attr in [
        QpAttr {
            state: Some(QpState::Init),
            access: Some(qp_access),
            ..Default::default()
        },
        QpAttr {
            state: Some(QpState::Rtr),
            path_mtu: Some(MTU as u32),
            dest_qpn: Some(0x99),
            rq_psn: Some(PSN0),
            max_dest_rd_atomic: Some(4),
            path: Some(path),
            ..Default::default()
        },
        QpAttr {
            state: Some(QpState::Rts),
            sq_psn: Some(5),
            timeout: Some(14),
            retry_cnt: Some(3),
            ..Default::default()
        },
    ] {
        e.modify_qp(qpn, &attr).unwrap();
    }
    // A fast-register MR, registered then invalidated by local operations.
    let fr = e.alloc_fast_reg_mr(pd, 1, true).unwrap();
    let pages = [0x7000u64];
    e.post_send(
        qpn,
        &SendWr::new(
            1,
            SendOp::FastRegister {
                mr: fr,
                pages: &pages,
                page_size: 4096,
                first_byte_offset: 0,
                length: 4096,
                iova: VA + 0x7000,
                access: all,
            },
        ),
    )
    .unwrap();
    e.post_send(
        qpn,
        &SendWr::new(2, SendOp::LocalInvalidate(InvalidateTarget::Mr(fr))),
    )
    .unwrap();
    let dead_fr = e.mr_key(fr).unwrap();
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    assert!(e.poll_transmit(Instant::ZERO, &mut buf).is_none());
    e.post_recv(
        qpn,
        77,
        &[Sge {
            addr: VA + RECV_BUF,
            length: RECV_LEN,
            lkey: recv,
        }],
    )
    .unwrap();
    Victim {
        e,
        qpn,
        rw,
        ro,
        wo,
        other_pd,
        dead_fr,
        rcq,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Out {
    opcode: Opcode,
    syndrome: Option<Syndrome>,
    psn: u32,
}

impl Victim {
    fn feed(&mut self, pkts: &[PacketRepr<'_>]) -> Vec<Out> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; MAX_PACKET_LEN];
        for p in pkts {
            self.e.handle_packet(Instant::ZERO, &rx(), p);
            while let Some(info) = self.e.poll_transmit(Instant::ZERO, &mut buf) {
                let r = PacketRepr::parse(&Packet::new_checked(&buf[..info.len]).unwrap()).unwrap();
                assert_eq!(r.bth.dest_qp, 0x99);
                out.push(Out {
                    opcode: r.bth.opcode,
                    syndrome: r.aeth.map(|a| a.syndrome),
                    psn: r.bth.psn,
                });
            }
        }
        out
    }
    fn mem(&self) -> Vec<u8> {
        self.e.memory().to_vec()
    }
    fn state(&self) -> QpState {
        self.e.qp_state(self.qpn).unwrap()
    }
}

fn pkt(op: Opcode, qpn: u32, psn: u32, payload: &[u8]) -> PacketRepr<'_> {
    let mut b = BthRepr::new(op, qpn, psn);
    b.ack_req = op.is_end();
    let mut r = PacketRepr::new(b, payload);
    if op.has(ExtHeader::ImmDt) {
        r.immdt = Some(ImmDtRepr { imm_data: 5 });
    }
    r
}

fn write(qpn: u32, psn: u32, va: u64, rkey: u32, len: u32, payload: &[u8]) -> PacketRepr<'_> {
    let op = if payload.len() as u32 == len && payload.len() <= MTU {
        Opcode::RcRdmaWriteOnly
    } else {
        Opcode::RcRdmaWriteFirst
    };
    let mut r = pkt(op, qpn, psn, payload);
    r.reth = Some(RethRepr {
        virtual_addr: va,
        rkey,
        dma_len: len,
    });
    r
}

fn read(qpn: u32, psn: u32, va: u64, rkey: u32, len: u32) -> PacketRepr<'static> {
    let mut r = pkt(Opcode::RcRdmaReadRequest, qpn, psn, &[]);
    r.reth = Some(RethRepr {
        virtual_addr: va,
        rkey,
        dma_len: len,
    });
    r
}

/// Feed `make(victim)`'s packets; expect exactly one NAK with `code` for
/// the PSN of the last packet, the QP in Error, and no byte changed.
fn expect_nak(
    what: &str,
    access: Access,
    code: NakCode,
    make: impl Fn(&Victim) -> Vec<PacketRepr<'static>>,
) {
    let mut v = victim(access);
    let before = v.mem();
    let pkts = make(&v);
    let last_psn = pkts.last().unwrap().bth.psn;
    let out = v.feed(&pkts);
    assert_eq!(
        out,
        [Out {
            opcode: Opcode::RcAcknowledge,
            syndrome: Some(Syndrome::Nak(code)),
            psn: last_psn
        }],
        "{what}"
    );
    assert_eq!(v.state(), QpState::Error, "{what}");
    assert!(v.mem() == before, "{what}: memory changed");
    // The posted receive completes exactly once (error or flush).
    let mut c = [Completion::default(); 4];
    assert_eq!(v.e.poll_cq(v.rcq, &mut c), 1, "{what}");
    assert_eq!(c[0].wr_id, 77);
    assert!(c[0].status.is_error());
    // Nothing more is accepted.
    let later = v.feed(&[pkt(Opcode::RcSendOnly, v.qpn, PSN0, b"x")]);
    assert!(later.is_empty(), "{what}: QP in Error answered {later:?}");
}

/// Builds a case's packets for a victim.
type Make = Box<dyn Fn(&Victim) -> Vec<PacketRepr<'static>>>;

static DATA: [u8; 2048] = [0xAB; 2048];

/// The victim's initial memory.
static PATTERN: [u8; 0x10000] = {
    let mut p = [0u8; 0x10000];
    let mut i = 0;
    while i < p.len() {
        p[i] = (i % 253) as u8 | 1;
        i += 1;
    }
    p
};

/// A first packet of a SEND whose bytes equal what the receive buffer
/// already holds: accepted, it leaves memory as it was, so the rejection
/// of the next packet can be checked byte for byte.
fn same_bytes() -> &'static [u8] {
    &PATTERN[RECV_BUF as usize..RECV_BUF as usize + MTU]
}
const RW: Access = Access::REMOTE_READ.union(Access::REMOTE_WRITE);

#[test]
fn remote_access_violations_are_nak_remote_access_and_touch_nothing() {
    use NakCode::RemoteAccessError as RA;
    let cases: Vec<(&str, Make)> = vec![
        (
            "unknown key index",
            Box::new(|v| {
                vec![write(
                    v.qpn,
                    PSN0,
                    VA + 0x1000,
                    0x7700 | (v.rw & 0xFF),
                    16,
                    &DATA[..16],
                )]
            }),
        ),
        (
            "stale key byte",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x1000, v.rw ^ 1, 16, &DATA[..16])]),
        ),
        (
            "other PD's key",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0xA000, v.other_pd, 16, &DATA[..16])]),
        ),
        (
            "past the end",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x1FF8, v.rw, 16, &DATA[..16])]),
        ),
        (
            "before the start",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x0FF8, v.rw, 16, &DATA[..16])]),
        ),
        (
            "address overflow",
            Box::new(|v| vec![write(v.qpn, PSN0, u64::MAX - 7, v.rw, 16, &DATA[..16])]),
        ),
        (
            "length overflow",
            Box::new(|v| {
                vec![write(
                    v.qpn,
                    PSN0,
                    VA + 0x1800,
                    v.rw,
                    0x8000_0000,
                    &DATA[..MTU],
                )]
            }),
        ),
        (
            "write to read-only",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x3000, v.ro, 16, &DATA[..16])]),
        ),
        (
            "read from write-only",
            Box::new(|v| vec![read(v.qpn, PSN0, VA + 0x5000, v.wo, 16)]),
        ),
        (
            "read past the end",
            Box::new(|v| vec![read(v.qpn, PSN0, VA + 0x1001, v.rw, 0x1000)]),
        ),
        (
            "invalidated key",
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x7000, v.dead_fr, 16, &DATA[..16])]),
        ),
        (
            "privileged key remotely",
            Box::new(|v| vec![write(v.qpn, PSN0, 0x1000, 0, 16, &DATA[..16])]),
        ),
    ];
    for (what, make) in cases {
        expect_nak(what, RW, RA, make);
    }
}

#[test]
fn invalid_requests_are_nak_invalid_request_and_touch_nothing() {
    use NakCode::InvalidRequest as IR;
    let cases: Vec<(&str, Access, Make)> = vec![
        (
            "WRITE Middle without First",
            RW,
            Box::new(|v| vec![pkt(Opcode::RcRdmaWriteMiddle, v.qpn, PSN0, &DATA[..MTU])]),
        ),
        (
            "WRITE Last without First",
            RW,
            Box::new(|v| vec![pkt(Opcode::RcRdmaWriteLast, v.qpn, PSN0, &DATA[..8])]),
        ),
        (
            "SEND Last without First",
            RW,
            Box::new(|v| vec![pkt(Opcode::RcSendLast, v.qpn, PSN0, &DATA[..8])]),
        ),
        (
            "SEND First then WRITE Middle",
            RW,
            Box::new(|v| {
                vec![
                    pkt(Opcode::RcSendFirst, v.qpn, PSN0, same_bytes()),
                    pkt(
                        Opcode::RcRdmaWriteMiddle,
                        v.qpn,
                        (PSN0 + 1) & 0xFF_FFFF,
                        &DATA[..MTU],
                    ),
                ]
            }),
        ),
        (
            "SEND First then SEND Only",
            RW,
            Box::new(|v| {
                vec![
                    pkt(Opcode::RcSendFirst, v.qpn, PSN0, same_bytes()),
                    pkt(
                        Opcode::RcSendOnly,
                        v.qpn,
                        (PSN0 + 1) & 0xFF_FFFF,
                        &DATA[..8],
                    ),
                ]
            }),
        ),
        (
            "Compare & Swap",
            RW,
            Box::new(|v| {
                let mut p = pkt(Opcode::RcCompareSwap, v.qpn, PSN0, &[]);
                p.atomic_eth = Some(AtomicEthRepr {
                    virtual_addr: VA + 0x1000,
                    rkey: v.rw,
                    swap_add: 1,
                    compare: 0,
                });
                vec![p]
            }),
        ),
        (
            "Fetch & Add",
            RW,
            Box::new(|v| {
                let mut p = pkt(Opcode::RcFetchAdd, v.qpn, PSN0, &[]);
                p.atomic_eth = Some(AtomicEthRepr {
                    virtual_addr: VA + 0x1000,
                    rkey: v.rw,
                    swap_add: 1,
                    compare: 0,
                });
                vec![p]
            }),
        ),
        (
            "WRITE Only shorter than its DMA length",
            RW,
            Box::new(|v| {
                let mut p = write(v.qpn, PSN0, VA + 0x1000, v.rw, 20, &DATA[..10]);
                p.bth.opcode = Opcode::RcRdmaWriteOnly;
                vec![p]
            }),
        ),
        (
            "SEND First shorter than the MTU",
            RW,
            Box::new(|v| vec![pkt(Opcode::RcSendFirst, v.qpn, PSN0, &same_bytes()[..100])]),
        ),
        (
            "payload above the MTU",
            RW,
            Box::new(|v| vec![pkt(Opcode::RcSendOnly, v.qpn, PSN0, &DATA[..MTU + 4])]),
        ),
        (
            "SEND larger than the receive",
            RW,
            Box::new(|v| {
                vec![
                    pkt(Opcode::RcSendFirst, v.qpn, PSN0, same_bytes()),
                    pkt(
                        Opcode::RcSendLast,
                        v.qpn,
                        (PSN0 + 1) & 0xFF_FFFF,
                        &DATA[..1],
                    ),
                ]
            }),
        ),
        (
            "SEND with invalidate of a registered MR",
            RW,
            Box::new(|v| {
                let mut p = pkt(Opcode::RcSendOnlyWithInvalidate, v.qpn, PSN0, &DATA[..8]);
                p.ieth = Some(IethRepr { rkey: v.rw });
                vec![p]
            }),
        ),
        (
            "READ longer than 2^31",
            RW,
            Box::new(|v| vec![read(v.qpn, PSN0, VA + 0x1000, v.rw, 0x8000_0001)]),
        ),
        (
            "READ without remote read enabled",
            Access::REMOTE_WRITE,
            Box::new(|v| vec![read(v.qpn, PSN0, VA + 0x1000, v.rw, 16)]),
        ),
        (
            "WRITE without remote write enabled",
            Access::REMOTE_READ,
            Box::new(|v| vec![write(v.qpn, PSN0, VA + 0x1000, v.rw, 16, &DATA[..16])]),
        ),
    ];
    for (what, access, make) in cases {
        expect_nak(what, access, IR, make);
    }
}

#[test]
fn a_write_rejected_midway_keeps_what_was_accepted_and_nothing_else() {
    let mut v = victim(RW);
    let mut expect = v.mem();
    let first = write(v.qpn, PSN0, VA + 0x1000, v.rw, 1500, &DATA[..MTU]);
    // The Last claims 600 bytes where 476 remain.
    let last = pkt(
        Opcode::RcRdmaWriteLast,
        v.qpn,
        (PSN0 + 1) & 0xFF_FFFF,
        &DATA[..600],
    );
    let out = v.feed(&[first, last]);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].syndrome,
        Some(Syndrome::Nak(NakCode::InvalidRequest))
    );
    expect[0x1000..0x1000 + MTU].copy_from_slice(&DATA[..MTU]);
    assert!(v.mem() == expect);
}

#[test]
fn a_valid_write_changes_exactly_its_range() {
    let mut v = victim(RW);
    let mut expect = v.mem();
    let out = v.feed(&[write(v.qpn, PSN0, VA + 0x1234, v.rw, 100, &DATA[..100])]);
    assert_eq!(
        out,
        [Out {
            opcode: Opcode::RcAcknowledge,
            syndrome: Some(Syndrome::Ack { credits: 31 }),
            psn: PSN0
        }]
    );
    expect[0x1234..0x1234 + 100].copy_from_slice(&DATA[..100]);
    assert!(v.mem() == expect);
    assert_eq!(v.state(), QpState::Rts);
}

#[test]
fn duplicates_are_re_acked_not_re_executed_and_gaps_nak_once() {
    let mut v = victim(RW);
    let w = write(v.qpn, PSN0, VA + 0x1000, v.rw, 16, &DATA[..16]);
    assert_eq!(v.feed(&[w]).len(), 1);
    // The consumer reuses the buffer; a duplicate must not write again.
    v.e.memory().write(0x1000, &[7; 16]);
    let out = v.feed(&[w]);
    assert_eq!(
        out,
        [Out {
            opcode: Opcode::RcAcknowledge,
            syndrome: Some(Syndrome::Ack { credits: 31 }),
            psn: PSN0
        }]
    );
    assert_eq!(v.e.memory().snapshot(0x1000, 16), [7; 16]);
    // A gap: one sequence NAK naming the expected PSN, then silence.
    let expected = (PSN0 + 1) & 0xFF_FFFF;
    let before = v.mem();
    let out = v.feed(&[
        write(
            v.qpn,
            (PSN0 + 3) & 0xFF_FFFF,
            VA + 0x1000,
            v.rw,
            16,
            &DATA[..16],
        ),
        write(
            v.qpn,
            (PSN0 + 4) & 0xFF_FFFF,
            VA + 0x1000,
            v.rw,
            16,
            &DATA[..16],
        ),
    ]);
    assert_eq!(
        out,
        [Out {
            opcode: Opcode::RcAcknowledge,
            syndrome: Some(Syndrome::Nak(NakCode::PsnSequenceError)),
            psn: expected
        }]
    );
    assert!(v.mem() == before);
    assert_eq!(v.state(), QpState::Rts);
}

#[test]
fn packets_from_the_wrong_address_or_partition_are_dropped() {
    let mut v = victim(RW);
    let before = v.mem();
    let w = write(v.qpn, PSN0, VA + 0x1000, v.rw, 16, &DATA[..16]);
    let spoofed = RxInfo {
        src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)),
        ..rx()
    };
    v.e.handle_packet(Instant::ZERO, &spoofed, &w);
    let mut bad_pkey = w;
    bad_pkey.bth.pkey = 0x1234;
    let mut other_qp = w;
    other_qp.bth.dest_qp = v.qpn + 1;
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    for p in [bad_pkey, other_qp] {
        v.e.handle_packet(Instant::ZERO, &rx(), &p);
    }
    assert!(v.e.poll_transmit(Instant::ZERO, &mut buf).is_none());
    assert!(v.mem() == before);
}

/// Random packets (every opcode, random fields and lengths, a mix of
/// right and wrong keys and PSNs) never panic the engine, and never change
/// memory outside what an MR lets a peer write (rw, wo) and the receive buffer.
#[test]
fn random_packets_never_panic_nor_write_outside_writable_memory() {
    let seeds = std::env::var("NETSIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u64);
    for seed in 0..seeds {
        let mut rng = Rng::new(seed);
        let mut v = victim(RW);
        let before = v.mem();
        let keys = [
            v.rw,
            v.ro,
            v.wo,
            v.other_pd,
            v.dead_fr,
            0,
            rng.next() as u32,
        ];
        let mut psn = PSN0;
        let payload: Vec<u8> = (0..MTU + 8).map(|_| rng.next() as u8).collect();
        for _ in 0..60 {
            let op = Opcode::ALL[rng.below(Opcode::ALL.len() as u64) as usize];
            let len = match rng.below(4) {
                0 => 0,
                1 => MTU,
                2 => rng.below(MTU as u64 + 8) as usize,
                _ => rng.below(64) as usize,
            };
            let p_psn = if rng.chance(70) {
                psn
            } else {
                rng.next() as u32 & 0xFF_FFFF
            };
            let mut p = pkt(
                op,
                v.qpn,
                p_psn,
                if op.has_payload() {
                    &payload[..len]
                } else {
                    &[]
                },
            );
            p.bth.solicited = rng.chance(20);
            let key = keys[rng.below(keys.len() as u64) as usize];
            let va = match rng.below(4) {
                0 => VA + rng.below(0x10000),
                1 => rng.next(),
                2 => u64::MAX - rng.below(0x100),
                _ => VA + 0x1000 + rng.below(0x1000),
            };
            let dma = match rng.below(3) {
                0 => len as u32,
                1 => rng.below(0x3000) as u32,
                _ => rng.next() as u32,
            };
            if op.has(ExtHeader::Reth) {
                p.reth = Some(RethRepr {
                    virtual_addr: va,
                    rkey: key,
                    dma_len: dma,
                });
            }
            if op.has(ExtHeader::AtomicEth) {
                p.atomic_eth = Some(AtomicEthRepr {
                    virtual_addr: va,
                    rkey: key,
                    swap_add: 1,
                    compare: 2,
                });
            }
            if op.has(ExtHeader::Ieth) {
                p.ieth = Some(IethRepr { rkey: key });
            }
            if op.has(ExtHeader::Aeth) {
                p.aeth = Some(AethRepr {
                    syndrome: Syndrome::from_u8(rng.next() as u8),
                    msn: 0,
                });
            }
            if op.has(ExtHeader::AtomicAckEth) {
                p.atomic_ack_eth =
                    Some(roce::wire::atomic_ack_eth::AtomicAckEthRepr { orig_value: 0 });
            }
            if op.has(ExtHeader::Deth) {
                p.deth = Some(roce::wire::deth::DethRepr {
                    qkey: 0,
                    reserved: 0,
                    src_qp: 1,
                });
            }
            v.feed(&[p]);
            if rng.chance(50) {
                psn = (psn + 1) & 0xFF_FFFF;
            }
            if rng.chance(5) {
                v.e.handle_timeout(Instant::from_nanos(rng.next() >> 20));
            }
        }
        let after = v.mem();
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            let writable = (0x1000..0x2000).contains(&i)
                || (0x5000..0x6000).contains(&i)
                || (0x9000..0x9000 + MTU).contains(&i);
            assert!(
                a == b || writable,
                "seed {seed}: byte {i:#x} changed outside writable memory"
            );
        }
    }
}
