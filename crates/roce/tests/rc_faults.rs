//! Transport failures (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c): retries exhausted against a
//! partitioned or frozen peer, RNR retries exhausted, RNR retry 7 waiting
//! until a receive is posted, and the flush rules: the failing request
//! gets its real status, everything else on the QP exactly one
//! WrFlushErr, in order.

mod support;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use netsim::{Config, Verdict};
use roce::rc::*;
use roce::wire::aeth::Syndrome;
use roce::wire::opcode::Opcode;
use roce::wire::packet::{Packet, PacketRepr};
use support::rc::*;

/// Post `n` sends from `h` (every other one unsignaled) and 2 receives.
fn post_sends(h: &mut Host, n: u64) {
    h.post_recv(900, &[h.sge(0x8000, 64)]);
    h.post_recv(901, &[h.sge(0x9000, 64)]);
    for i in 0..n {
        let flags = if i % 2 == 0 {
            SendFlags::SIGNALED
        } else {
            SendFlags::NONE
        };
        let sge = [h.sge(0, 100 + i as usize * 700)];
        h.post(
            SendWr::new(i, SendOp::Send)
                .payload(Payload::Sges(&sge))
                .flags(flags),
        );
    }
}

/// First request `first` status, all others flushed, each exactly once,
/// in post order; both receives flushed; QP in Error with one fatal event.
fn assert_failed_with(h: &Host, n: u64, first: WcStatus) {
    let ids: Vec<u64> = h.send_done.iter().map(|c| c.wr_id).collect();
    assert_eq!(ids, (0..n).collect::<Vec<_>>(), "{:?}", h.send_done);
    assert_eq!(h.send_done[0].status, first);
    for c in &h.send_done[1..] {
        assert_eq!(c.status, WcStatus::WrFlushErr, "{c:?}");
        assert_eq!(c.opcode, WcOpcode::Send);
    }
    let rids: Vec<u64> = h.recv_done.iter().map(|c| c.wr_id).collect();
    assert_eq!(rids, [900, 901]);
    assert!(h.recv_done.iter().all(|c| c.status == WcStatus::WrFlushErr));
    assert_eq!(h.state(), QpState::Error);
    let fatal: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::QpFatal { .. }))
        .collect();
    assert_eq!(
        fatal,
        [&Event::QpFatal {
            qpn: h.qpn,
            status: first
        }]
    );
    assert!(h.engine.poll_timeout().is_none(), "no timer after Error");
}

fn retry_exhaustion(freeze: bool) {
    let conn = Conn {
        retry_cnt: 3,
        timeout: 10,
        ..Conn::default()
    };
    let (mut sim, a, b) = sim_pair(Config::new(7), Shape::default(), &conn);
    if freeze {
        sim.freeze(b);
    } else {
        sim.partition(&[a], &[b]);
    }
    post_sends(sim.node_mut(a), 5);
    sim.run_until_idle();
    assert_failed_with(sim.node(a), 5, WcStatus::RetryExcErr);
    // 1 first try + 3 retries, each a timeout of 4.096 us * 2^10.
    let t = Duration::from_nanos(4096 << 10);
    assert!(
        sim.now().as_nanos() >= (4 * t).as_nanos() as u64,
        "{}",
        sim.now()
    );
    assert!(
        sim.now().as_nanos() < (6 * t).as_nanos() as u64,
        "{}",
        sim.now()
    );
}

#[test]
fn retry_exhausted_against_a_partition() {
    retry_exhaustion(false);
}

#[test]
fn retry_exhausted_against_a_frozen_peer() {
    retry_exhaustion(true);
}

#[test]
fn retry_count_seven_never_gives_up() {
    let conn = Conn {
        retry_cnt: 7,
        timeout: 10,
        ..Conn::default()
    };
    let (mut sim, a, b) = sim_pair(Config::new(7), Shape::default(), &conn);
    let r = [sim.node(b).sge(0, 4096)];
    sim.node_mut(b).post_recv(1, &r);
    sim.partition(&[a], &[b]);
    let sge = [sim.node(a).sge(0, 100)];
    sim.node_mut(a).post(
        SendWr::new(5, SendOp::Send)
            .payload(Payload::Sges(&sge))
            .flags(SendFlags::SIGNALED),
    );
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.node(a).state(), QpState::Rts);
    assert!(sim.node(a).send_done.is_empty());
    sim.heal();
    sim.run_until_idle();
    assert_eq!(sim.node(a).send_done[0].status, WcStatus::Success);
    assert_eq!(sim.node(b).recv_done.len(), 1);
}

type Log = Rc<RefCell<Vec<(u64, bool, Opcode, Option<Syndrome>, u32)>>>;

/// Record (time ns, from a, opcode, AETH syndrome, PSN) of every packet.
fn log(sim: &mut netsim::Simulator<Host>, a: netsim::NodeId) -> Log {
    let l: Log = Rc::default();
    let w = l.clone();
    sim.set_hook(move |ctx, d| {
        let p = parse(&d.payload);
        w.borrow_mut().push((
            ctx.now.as_nanos(),
            ctx.from == a,
            p.bth.opcode,
            p.aeth.map(|x| x.syndrome),
            p.bth.psn,
        ));
        Verdict::Pass
    });
    l
}

#[test]
fn rnr_retries_exhausted() {
    // No receive at B; rnr_retry 2; min RNR timer code 1 (10 us).
    let conn = Conn {
        rnr_retry: 2,
        min_rnr_timer: 1,
        ..Conn::default()
    };
    let (mut sim, a, b) = sim_pair(Config::new(3), Shape::default(), &conn);
    let l = log(&mut sim, a);
    post_sends(sim.node_mut(a), 3);
    sim.run_until_idle();
    assert_failed_with(sim.node(a), 3, WcStatus::RnrRetryExcErr);
    // The responder stays up (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c) and sent 3 RNR NAKs (first
    // try + 2 retries), all with our timer code and the first PSN.
    assert_eq!(sim.node(b).state(), QpState::Rts);
    let rnrs: Vec<_> = l
        .borrow()
        .iter()
        .filter(|p| matches!(p.3, Some(Syndrome::RnrNak { .. })))
        .cloned()
        .collect();
    assert_eq!(rnrs.len(), 3, "{:?}", l.borrow());
    for r in &rnrs {
        assert_eq!(r.3, Some(Syndrome::RnrNak { timer: 1 }));
        assert_eq!(r.4, conn.a_psn);
    }
}

#[test]
fn rnr_retry_seven_waits_for_a_receive() {
    // Timer code 14 = 1.28 ms (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c table).
    let conn = Conn {
        rnr_retry: 7,
        min_rnr_timer: 14,
        ..Conn::default()
    };
    let (mut sim, a, b) = sim_pair(Config::new(3), Shape::default(), &conn);
    let l = log(&mut sim, a);
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    sim.node(a).mem().write(0, &data);
    let sge = [sim.node(a).sge(0, 3000)];
    sim.node_mut(a).post(
        SendWr::new(1, SendOp::Send)
            .payload(Payload::Sges(&sge))
            .flags(SendFlags::SIGNALED),
    );
    sim.run_for(Duration::from_millis(30));
    assert_eq!(sim.node(a).state(), QpState::Rts);
    assert!(sim.node(a).send_done.is_empty());
    let log_now = l.borrow().clone();
    let rnr_times: Vec<u64> = log_now
        .iter()
        .filter(|p| matches!(p.3, Some(Syndrome::RnrNak { .. })))
        .map(|p| p.0)
        .collect();
    assert!(rnr_times.len() >= 10, "only {} RNR NAKs", rnr_times.len());
    // Every retry waits out the RNR time after the NAK.
    let first_sends: Vec<u64> = log_now
        .iter()
        .filter(|p| p.1 && p.2 == Opcode::RcSendFirst)
        .map(|p| p.0)
        .collect();
    for w in first_sends.windows(2) {
        assert!(w[1] - w[0] >= 1_280_000, "retry after {} ns", w[1] - w[0]);
    }
    let r = [sim.node(b).sge(0x1000, 4000)];
    sim.node_mut(b).post_recv(77, &r);
    sim.run_until_idle();
    let ha = sim.node(a);
    assert_eq!(ha.send_done.len(), 1);
    assert_eq!(ha.send_done[0].status, WcStatus::Success);
    let hb = sim.node(b);
    assert_eq!(hb.recv_done.len(), 1);
    assert_eq!(
        (hb.recv_done[0].wr_id, hb.recv_done[0].byte_len),
        (77, 3000)
    );
    assert_eq!(hb.mem().snapshot(0x1000, 3000), data);
}

#[test]
fn remote_nak_fails_the_request_and_flushes_the_rest() {
    let (mut sim, a, b) = sim_pair(Config::new(1), Shape::default(), &Conn::default());
    let h = sim.node_mut(a);
    h.post_recv(900, &[h.sge(0x8000, 64)]);
    h.post_recv(901, &[h.sge(0x9000, 64)]);
    let sge = [h.sge(0, 10)];
    let good = sim.node(b).key;
    let h = sim.node_mut(a);
    h.post(
        SendWr::new(
            0,
            SendOp::Write {
                remote_addr: BASE_VA,
                rkey: good,
            },
        )
        .payload(Payload::Sges(&sge)),
    );
    // Bad rkey: remote access error.
    h.post(
        SendWr::new(
            1,
            SendOp::Write {
                remote_addr: BASE_VA,
                rkey: good ^ 0x100,
            },
        )
        .payload(Payload::Sges(&sge)),
    );
    h.post(
        SendWr::new(2, SendOp::Send)
            .payload(Payload::Sges(&sge))
            .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    let ha = sim.node(a);
    // 0 succeeded unsignaled: no entry. 1 failed, 2 flushed.
    let got: Vec<_> = ha.send_done.iter().map(|c| (c.wr_id, c.status)).collect();
    assert_eq!(
        got,
        [(1, WcStatus::RemAccessErr), (2, WcStatus::WrFlushErr)]
    );
    assert_eq!(ha.recv_done.len(), 2);
    assert_eq!(ha.state(), QpState::Error);
    assert_eq!(sim.node(b).state(), QpState::Error);
    assert!(sim.node(b).events.contains(&Event::QpFatal {
        qpn: sim.node(b).qpn,
        status: WcStatus::RemAccessErr
    }));
}

#[test]
fn modify_to_error_flushes_everything_once_and_later_posts_flush_at_once() {
    let (mut sim, a, _b) = sim_pair(Config::new(1), Shape::default(), &Conn::default());
    let h = sim.node_mut(a);
    post_sends(h, 4);
    h.modify(QpAttr {
        state: Some(QpState::Error),
        ..Default::default()
    })
    .unwrap();
    let ids: Vec<_> = h.send_done.iter().map(|c| (c.wr_id, c.status)).collect();
    assert_eq!(
        ids,
        (0..4)
            .map(|i| (i, WcStatus::WrFlushErr))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.recv_done.len(), 2);
    // A modify is not a transport failure: no fatal event.
    assert!(!h.events.iter().any(|e| matches!(e, Event::QpFatal { .. })));
    // Posting to a QP in Error completes flushed (IBA), exactly once.
    let sge = [h.sge(0, 1)];
    h.post(SendWr::new(9, SendOp::Send).payload(Payload::Sges(&sge)));
    h.post_recv(10, &sge);
    assert_eq!(
        h.send_done.last().map(|c| (c.wr_id, c.status)),
        Some((9, WcStatus::WrFlushErr))
    );
    assert_eq!(
        h.recv_done.last().map(|c| (c.wr_id, c.status)),
        Some((10, WcStatus::WrFlushErr))
    );
    assert_eq!(h.send_done.len(), 5);
    // Nothing goes on the wire.
    sim.run_until_idle();
    assert_eq!(sim.stats().sent, 0);
    // Error -> Rts is illegal; Reset then works.
    let h = sim.node_mut(a);
    assert!(matches!(
        h.modify(QpAttr {
            state: Some(QpState::Rts),
            ..Default::default()
        }),
        Err(Error::IllegalTransition(_))
    ));
    h.modify(QpAttr {
        state: Some(QpState::Reset),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(h.state(), QpState::Reset);
}

#[test]
fn cq_overflow_is_a_cq_error_and_kills_its_qps() {
    let shape = Shape {
        cq_depth: 2,
        ..Shape::default()
    };
    let (mut sim, a, _b) = sim_pair(Config::new(1), shape, &Conn::default());
    let h = sim.node_mut(a);
    h.auto_drain = false;
    h.engine.arm_cq(h.scq, NotifyType::Errors).unwrap();
    h.modify(QpAttr {
        state: Some(QpState::Error),
        ..Default::default()
    })
    .ok();
    // 3 flushes into a CQ of 2: overflow.
    let sge = [h.sge(0, 1)];
    for i in 0..3 {
        h.engine
            .post_send(
                h.qpn,
                &SendWr::new(i, SendOp::Send).payload(Payload::Sges(&sge)),
            )
            .unwrap();
    }
    h.drain_now();
    assert!(h.send_done.is_empty(), "an overflowed CQ returns nothing");
    // The first error completion satisfied the ERRORS arm (one
    // notification); the overflow came unarmed, so it is reported at the
    // next arm (the NDKPI pages leave an unarmed CQ's overrun unspecified project choice), once.
    assert_eq!(h.events, [Event::CqNotify(h.scq)]);
    h.engine.arm_cq(h.scq, NotifyType::Any).unwrap();
    h.engine.arm_cq(h.scq, NotifyType::Any).unwrap();
    h.drain_now();
    assert_eq!(h.events, [Event::CqNotify(h.scq), Event::CqError(h.scq)]);
}

/// The responder's fatal event waits for its NAK: a layer that reacts to
/// the event (a consumer disconnecting: its DREQ leaves before any queued
/// RC packet) would otherwise overtake the NAK, and the requester would
/// see a flush instead of the remote access error (found with an SMB
/// Direct server reading a wrong R_Key over loopback).
#[test]
fn the_fatal_event_follows_the_nak_out() {
    let mut a = Host::new([10, 9, 0, 3], Shape::default());
    let mut b = Host::new([10, 9, 0, 2], Shape::default());
    connect(&mut a, &mut b, &Conn::default());
    let now = roce::time::Instant::ZERO;
    let sge = [a.sge(0, 64)];
    let bad = b.key ^ 0x100;
    a.post(
        SendWr::new(
            1,
            SendOp::Write {
                remote_addr: BASE_VA,
                rkey: bad,
            },
        )
        .payload(Payload::Sges(&sge))
        .flags(SendFlags::SIGNALED),
    );
    let (info, write) = a.transmit(now).expect("the WRITE");
    let from = SocketAddr::new(info.local_ip, info.udp_src_port);
    let to = SocketAddr::new(info.remote_ip, ROCE_UDP_PORT);
    b.receive(now, from, to, &write);
    // B's QP is in Error, but nobody hears of it before the NAK leaves.
    assert_eq!(b.state(), QpState::Error);
    assert!(b.events.is_empty(), "{:?}", b.events);
    let (binfo, nak) = b.transmit(now).expect("the NAK");
    let pkt = Packet::new_checked(&nak[..]).unwrap();
    let repr = PacketRepr::parse(&pkt).unwrap();
    assert_eq!(repr.bth.opcode, Opcode::RcAcknowledge);
    assert!(matches!(
        repr.aeth.map(|a| a.syndrome),
        Some(Syndrome::Nak(_))
    ));
    assert_eq!(
        b.events,
        [Event::QpFatal {
            qpn: b.qpn,
            status: WcStatus::RemAccessErr
        }]
    );
    let b_from = SocketAddr::new(binfo.local_ip, binfo.udp_src_port);
    a.receive(now, b_from, a.addr(), &nak);
    assert_eq!(a.bad_icrc, 0);
    assert_eq!(a.send_done[0].status, WcStatus::RemAccessErr);
}

/// An ACK for a request that a go-back-N is resending: the requester
/// resumes at the oldest unacknowledged PSN, with the next request's
/// first packet at that request's own PSN (IBA Vol 1 ch. 9 (requester
/// retry); Linux rxe_comp.c). Found as `ndkperf write_bw -q 20` failing
/// under load with STATUS_REMOTE_RESOURCES: the original ACK of the
/// request being resent arrived mid-resend, the requester went on with
/// the next WRITE's First packet at the resent one's PSN, and the
/// responder, already inside that WRITE, answered its Last packet (too
/// short for what was left) with an Invalid Request NAK.
#[test]
fn an_ack_overtaking_a_go_back_n_resumes_at_the_right_psn() {
    let mut a = Host::new([10, 9, 0, 3], Shape::default());
    let mut b = Host::new([10, 9, 0, 2], Shape::default());
    let conn = Conn::default();
    connect(&mut a, &mut b, &conn);
    let mtu = conn.mtu as usize;
    // Two 4-packet WRITEs: PSNs p..p+3 and p+4..p+7.
    let mut rng = Rng::new(17);
    let mut data = vec![0u8; 8 * mtu];
    rng.fill(&mut data);
    a.mem().write(0, &data);
    for i in 0..2u64 {
        let sge = [a.sge(i as usize * 4 * mtu, 4 * mtu)];
        a.post(
            SendWr::new(
                i,
                SendOp::Write {
                    remote_addr: b.va(0x4_0000 + i as usize * 4 * mtu),
                    rkey: b.key,
                },
            )
            .payload(Payload::Sges(&sge))
            .flags(SendFlags::SIGNALED),
        );
    }
    let mut now = roce::time::Instant::ZERO;
    let mut first = Vec::new();
    while let Some((info, bytes)) = a.transmit(now) {
        first.push((info, bytes));
    }
    assert_eq!(first.len(), 8);
    let from = SocketAddr::new(first[0].0.local_ip, first[0].0.udp_src_port);
    let to = SocketAddr::new(first[0].0.remote_ip, ROCE_UDP_PORT);
    // B gets the first WRITE and the second's First packet; the rest is
    // lost. B's ACK of the first WRITE is held back.
    for (_, p) in &first[..5] {
        b.receive(now, from, to, p);
    }
    let b_from = SocketAddr::new(b.ip.into(), b.sport);
    let mut held = Vec::new();
    while let Some((_, ack)) = b.transmit(now) {
        held.push(ack);
    }
    assert!(!held.is_empty());
    // A's retransmit timer fires: it resends from the first WRITE's
    // first packet; B sees two duplicates.
    now = a.engine.poll_timeout().expect("the retransmit timer");
    a.engine.handle_timeout(now);
    for _ in 0..2 {
        let (_, p) = a.transmit(now).expect("a resent packet");
        b.receive(now, from, to, &p);
    }
    // The held ACK arrives now, completing the WRITE being resent.
    for ack in &held {
        a.receive(now, b_from, a.addr(), ack);
    }
    assert_eq!(a.send_done.len(), 1, "{:?}", a.send_done);
    // From here on every packet is delivered both ways.
    let base = parse(&first[0].1).bth.psn;
    for _ in 0..1000 {
        let mut moved = false;
        while let Some((_, p)) = a.transmit(now) {
            let r = parse(&p);
            // Every packet of the second WRITE carries its own PSN: the
            // First packet (with its RETH) only at p+4.
            let k = Psn::new(r.bth.psn).diff(Psn::new(base));
            if r.reth.is_some() {
                assert_eq!(k, 4, "a First packet at PSN p+{k}: {:?}", r.bth);
            }
            b.receive(now, from, to, &p);
            moved = true;
        }
        while let Some((_, p)) = b.transmit(now) {
            a.receive(now, b_from, a.addr(), &p);
            moved = true;
        }
        if a.send_done.len() == 2 {
            break;
        }
        if !moved {
            now = a
                .engine
                .poll_timeout()
                .expect("a timer while requests are open");
            a.engine.handle_timeout(now);
        }
    }
    let st: Vec<_> = a.send_done.iter().map(|c| (c.wr_id, c.status)).collect();
    assert_eq!(st, [(0, WcStatus::Success), (1, WcStatus::Success)]);
    assert_eq!(b.state(), QpState::Rts);
    assert!(
        b.events.iter().all(|e| !matches!(e, Event::QpFatal { .. })),
        "{:?}",
        b.events
    );
    assert_eq!(b.mem().snapshot(0x4_0000, data.len()), data);
}
