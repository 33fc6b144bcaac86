//! The verbs around the data path, end to end between two engines:
//! fast register over a page list, remote and local invalidate, memory
//! windows, SRQ with its limit event, CQ arming, SQD, DEFER, READ fence,
//! read credits and the every-64-packets AckReq (IBA Vol 1 ch. 9 (RC transport); Linux rxe_req.c, rxe_resp.c, rxe_comp.c, the NDKPI completion handling requirements page-Linux drivers/infiniband/core/cma.c).

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use netsim::{Config, Verdict};
use roce::rc::*;
use roce::wire::opcode::Opcode;
use support::rc::*;

type Wire = Rc<RefCell<Vec<(bool, Opcode, bool, u32)>>>;

fn pair_with(
    shape_b: Shape,
    conn: &Conn,
) -> (
    netsim::Simulator<Host>,
    netsim::NodeId,
    netsim::NodeId,
    Wire,
) {
    let mut ha = Host::new([10, 9, 0, 3], Shape::default());
    let mut hb = Host::new([10, 9, 0, 2], shape_b);
    connect(&mut ha, &mut hb, conn);
    let mut sim = netsim::Simulator::with_config(Config::new(5));
    let (aa, ba) = (ha.addr(), hb.addr());
    let a = sim.add_node(aa, ha);
    let b = sim.add_node(ba, hb);
    let wire: Wire = Rc::default();
    let w = wire.clone();
    sim.set_hook(move |ctx, d| {
        let p = parse(&d.payload);
        w.borrow_mut()
            .push((ctx.from == a, p.bth.opcode, p.bth.ack_req, p.bth.psn));
        Verdict::Pass
    });
    (sim, a, b, wire)
}

fn pair() -> (
    netsim::Simulator<Host>,
    netsim::NodeId,
    netsim::NodeId,
    Wire,
) {
    pair_with(Shape::default(), &Conn::default())
}

#[test]
fn fast_register_page_list_then_remote_invalidate() {
    let (mut sim, a, b, _) = pair();
    // B: a fast-register MR over two non-adjacent pages, first byte 100
    // bytes into the first page.
    let hb = sim.node_mut(b);
    let fr = hb.engine.alloc_fast_reg_mr(hb.pd, 4, true).unwrap();
    let pages = [0x40000u64, 0x10000];
    let iova = 0x5000_0064u64;
    hb.post(
        SendWr::new(
            1,
            SendOp::FastRegister {
                mr: fr,
                pages: &pages,
                page_size: 4096,
                first_byte_offset: 100,
                length: 5000,
                iova,
                access: ALL_ACCESS,
            },
        )
        .flags(SendFlags::SIGNALED),
    );
    // The key of this registration is known as soon as it is posted.
    let key = hb.engine.mr_key(fr).unwrap();
    sim.run_until_idle();
    assert_eq!(sim.node(b).send_done[0].opcode, WcOpcode::FastRegister);
    assert_eq!(sim.node(b).send_done[0].status, WcStatus::Success);
    // A writes 5000 bytes through it: 3996 land in page 0, 1004 in page 1.
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
    sim.node(a).mem().write(0, &data);
    let sge = [sim.node(a).sge(0, 5000)];
    let ha = sim.node_mut(a);
    ha.post(
        SendWr::new(
            2,
            SendOp::Write {
                remote_addr: iova,
                rkey: key,
            },
        )
        .payload(Payload::Sges(&sge))
        .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    assert_eq!(sim.node(a).send_done[0].status, WcStatus::Success);
    let mb = sim.node(b).mem();
    assert_eq!(mb.snapshot(0x40000 + 100, 3996), data[..3996]);
    assert_eq!(mb.snapshot(0x10000, 1004), data[3996..]);
    // SEND with invalidate: the receive reports the key; the key is dead.
    let r = [sim.node(b).sge(0x80000, 64)];
    sim.node_mut(b).post_recv(3, &r);
    let s = [sim.node(a).sge(0, 8)];
    sim.node_mut(a).post(
        SendWr::new(4, SendOp::SendWithInv(key))
            .payload(Payload::Sges(&s))
            .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    let rc = sim.node(b).recv_done[0];
    assert_eq!(
        (rc.wr_id, rc.status, rc.invalidated_rkey, rc.byte_len),
        (3, WcStatus::Success, Some(key), 8)
    );
    let before = sim.node(b).mem().to_vec();
    let s1 = [sim.node(a).sge(0, 1)];
    sim.node_mut(a).post(
        SendWr::new(
            5,
            SendOp::Write {
                remote_addr: iova,
                rkey: key,
            },
        )
        .payload(Payload::Sges(&s1)),
    );
    sim.run_until_idle();
    assert_eq!(
        sim.node(a).send_done.last().map(|c| c.status),
        Some(WcStatus::RemAccessErr)
    );
    assert!(
        sim.node(b).mem().to_vec() == before,
        "write through an invalidated key changed memory"
    );
}

#[test]
fn fast_register_on_a_valid_mr_fails_and_local_invalidate_allows_again() {
    let (mut sim, _a, b, _) = pair();
    let hb = sim.node_mut(b);
    let fr = hb.engine.alloc_fast_reg_mr(hb.pd, 1, false).unwrap();
    let pages = [0x2000u64];
    let reg = |id| {
        SendWr::new(
            id,
            SendOp::FastRegister {
                mr: fr,
                pages: &pages,
                page_size: 4096,
                first_byte_offset: 0,
                length: 4096,
                iova: 0x9000,
                access: Access::LOCAL_WRITE,
            },
        )
        .flags(SendFlags::SIGNALED)
    };
    // Remote access on an MR initialised without it: refused at post.
    let remote = SendWr::new(
        9,
        SendOp::FastRegister {
            mr: fr,
            pages: &pages,
            page_size: 4096,
            first_byte_offset: 0,
            length: 4096,
            iova: 0x9000,
            access: ALL_ACCESS,
        },
    );
    assert_eq!(
        hb.engine.post_send(hb.qpn, &remote),
        Err(Error::AccessDenied)
    );
    hb.post(reg(1));
    sim.run_until_idle();
    let hb = sim.node_mut(b);
    hb.post(
        SendWr::new(2, SendOp::LocalInvalidate(InvalidateTarget::Mr(fr)))
            .flags(SendFlags::SIGNALED),
    );
    hb.post(reg(3));
    sim.run_until_idle();
    let got: Vec<_> = sim
        .node(b)
        .send_done
        .iter()
        .map(|c| (c.wr_id, c.opcode, c.status))
        .collect();
    assert_eq!(
        got,
        [
            (1, WcOpcode::FastRegister, WcStatus::Success),
            (2, WcOpcode::LocalInvalidate, WcStatus::Success),
            (3, WcOpcode::FastRegister, WcStatus::Success),
        ]
    );
    // Registering again without invalidating: a local QP operation error,
    // fatal to the QP (the failing request gets its status).
    let hb = sim.node_mut(b);
    hb.post(reg(4));
    sim.run_until_idle();
    let last = *sim.node(b).send_done.last().unwrap();
    assert_eq!((last.wr_id, last.status), (4, WcStatus::LocQpOpErr));
    assert_eq!(sim.node(b).state(), QpState::Error);
}

#[test]
fn memory_window_bind_read_and_bounds() {
    let (mut sim, a, b, _) = pair();
    let data: Vec<u8> = (0..200u8).collect();
    sim.node(b).mem().write(0x3000, &data);
    let hb = sim.node_mut(b);
    let mw = hb.engine.alloc_mw(hb.pd).unwrap();
    let (mr, va) = (hb.mr, hb.va(0x3000));
    hb.post(
        SendWr::new(
            1,
            SendOp::BindMw {
                mw,
                mr,
                iova: va,
                length: 200,
                access: Access::REMOTE_READ,
            },
        )
        .flags(SendFlags::SIGNALED),
    );
    let rkey = hb.engine.mw_rkey(mw).unwrap();
    assert_ne!(rkey, hb.key);
    sim.run_until_idle();
    assert_eq!(sim.node(b).send_done[0].opcode, WcOpcode::BindMw);
    let sink = [sim.node(a).sge(0x100, 200)];
    sim.node_mut(a).post(
        SendWr::new(
            2,
            SendOp::Read {
                remote_addr: va,
                rkey,
            },
        )
        .payload(Payload::Sges(&sink))
        .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    assert_eq!(sim.node(a).send_done[0].status, WcStatus::Success);
    assert_eq!(sim.node(a).mem().snapshot(0x100, 200), data);
    // One byte past the window: remote access error.
    let sink = [sim.node(a).sge(0x100, 2)];
    sim.node_mut(a).post(
        SendWr::new(
            3,
            SendOp::Read {
                remote_addr: va + 199,
                rkey,
            },
        )
        .payload(Payload::Sges(&sink))
        .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    assert_eq!(sim.node(a).send_done[1].status, WcStatus::RemAccessErr);
}

#[test]
fn srq_receives_and_limit_event_and_no_flush_on_qp_error() {
    let shape = Shape {
        srq: Some((8, 0)),
        ..Shape::default()
    };
    let (mut sim, a, b, _) = pair_with(shape, &Conn::default());
    let hb = sim.node_mut(b);
    for i in 0..4 {
        let r = [hb.sge(0x1000 * (i + 1), 100)];
        hb.post_recv(i as u64, &r);
    }
    let srq = hb.srq.unwrap();
    // Arm: fires once the count drops below 2.
    hb.engine.modify_srq(srq, 2).unwrap();
    hb.drain_now();
    assert!(hb.events.is_empty());
    for i in 0..3u8 {
        sim.node(a).mem().write(u64::from(i) * 16, &[i + 1; 16]);
        let s = [sim.node(a).sge(usize::from(i) * 16, 16)];
        sim.node_mut(a)
            .post(SendWr::new(u64::from(i), SendOp::Send).payload(Payload::Sges(&s)));
    }
    sim.run_until_idle();
    let hb = sim.node(b);
    let ids: Vec<u64> = hb.recv_done.iter().map(|c| c.wr_id).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!(hb.mem().snapshot(0x3000, 16), [3; 16]);
    let limits = hb
        .events
        .iter()
        .filter(|e| matches!(e, Event::SrqLimit(_)))
        .count();
    assert_eq!(limits, 1);
    // Arming while below fires at once.
    let hb = sim.node_mut(b);
    hb.engine.modify_srq(srq, 5).unwrap();
    hb.drain_now();
    assert_eq!(
        hb.events
            .iter()
            .filter(|e| matches!(e, Event::SrqLimit(_)))
            .count(),
        2
    );
    // A QP error does not flush the SRQ's receives.
    hb.modify(QpAttr {
        state: Some(QpState::Error),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(hb.recv_done.len(), 3);
    assert_eq!(hb.engine.srq_len(srq), 1);
    // And a QP on an SRQ takes no receives of its own.
    let r = [hb.sge(0, 1)];
    assert_eq!(hb.engine.post_recv(hb.qpn, 1, &r), Err(Error::InvalidState));
}

#[test]
fn cq_notifications_once_per_arm_and_solicited() {
    let (mut sim, a, b, _) = pair();
    for i in 0..4 {
        let r = [sim.node(b).sge(0x1000 * (i + 1), 100)];
        sim.node_mut(b).post_recv(i as u64, &r);
    }
    let hb = sim.node_mut(b);
    hb.engine.arm_cq(hb.rcq, NotifyType::Solicited).unwrap();
    let s = [sim.node(a).sge(0, 4)];
    sim.node_mut(a)
        .post(SendWr::new(0, SendOp::Send).payload(Payload::Sges(&s)));
    sim.run_until_idle();
    assert!(
        !sim.node(b)
            .events
            .iter()
            .any(|e| matches!(e, Event::CqNotify(_))),
        "unsolicited must not satisfy SOLICITED"
    );
    sim.node_mut(a).post(
        SendWr::new(1, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::SOLICITED),
    );
    sim.node_mut(a).post(
        SendWr::new(2, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::SOLICITED),
    );
    sim.run_until_idle();
    let hb = sim.node(b);
    assert_eq!(hb.recv_done.len(), 3);
    assert!(hb.recv_done[1].solicited && !hb.recv_done[0].solicited);
    // One notification for the one arm, though two solicited arrived.
    assert_eq!(
        hb.events
            .iter()
            .filter(|e| **e == Event::CqNotify(hb.rcq))
            .count(),
        1
    );
}

#[test]
fn sqd_holds_new_requests_and_reports_drained() {
    let (mut sim, a, b, wire) = pair();
    let r = [sim.node(b).sge(0, 100)];
    sim.node_mut(b).post_recv(0, &r);
    let ha = sim.node_mut(a);
    ha.modify(QpAttr {
        state: Some(QpState::Sqd),
        ..Default::default()
    })
    .unwrap();
    assert!(ha.events.contains(&Event::SqDrained { qpn: ha.qpn }));
    let s = [ha.sge(0, 10)];
    ha.post(
        SendWr::new(1, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    assert!(wire.borrow().is_empty(), "SQD started a new request");
    sim.node_mut(a)
        .modify(QpAttr {
            state: Some(QpState::Rts),
            ..Default::default()
        })
        .unwrap();
    sim.run_until_idle();
    assert_eq!(sim.node(a).send_done.len(), 1);
}

#[test]
fn defer_waits_for_a_doorbell_or_a_later_post() {
    let (mut sim, a, b, wire) = pair();
    for i in 0..3 {
        let r = [sim.node(b).sge(0x100 * i, 100)];
        sim.node_mut(b).post_recv(i as u64, &r);
    }
    let s = [sim.node(a).sge(0, 10)];
    sim.node_mut(a).post(
        SendWr::new(1, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::DEFER),
    );
    sim.run_until_idle();
    assert!(wire.borrow().is_empty());
    let qpn = sim.node(a).qpn;
    sim.node_mut(a).engine.doorbell(qpn).unwrap();
    sim.run_until_idle();
    assert_eq!(wire.borrow().iter().filter(|p| p.0).count(), 1);
    // A failed post hands deferred requests on (the NDKPI work request posting requirements page).
    sim.node_mut(a).post(
        SendWr::new(2, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::DEFER),
    );
    let too_many = [sim.node(a).sge(0, 1); 5];
    let e = sim.node_mut(a).engine.post_send(
        qpn,
        &SendWr::new(3, SendOp::Send).payload(Payload::Sges(&too_many)),
    );
    assert_eq!(e, Err(Error::TooManySges));
    sim.run_until_idle();
    assert_eq!(wire.borrow().iter().filter(|p| p.0).count(), 2);
}

#[test]
fn read_fence_and_read_credits() {
    // One outstanding READ at a time (max_rd_atomic 1).
    let conn = Conn {
        rd_atomic: 1,
        ..Conn::default()
    };
    let (mut sim, a, b, wire) = pair_with(Shape::default(), &conn);
    let r = [sim.node(b).sge(0, 100)];
    sim.node_mut(b).post_recv(0, &r);
    let rkey = sim.node(b).key;
    for i in 0..3u64 {
        let sink = [sim.node(a).sge(0x1000 * (i as usize + 1), 3000)];
        sim.node_mut(a).post(
            SendWr::new(
                i,
                SendOp::Read {
                    remote_addr: BASE_VA,
                    rkey,
                },
            )
            .payload(Payload::Sges(&sink)),
        );
    }
    let s = [sim.node(a).sge(0, 10)];
    sim.node_mut(a).post(
        SendWr::new(9, SendOp::Send)
            .payload(Payload::Sges(&s))
            .flags(SendFlags::READ_FENCE | SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    let w = wire.borrow();
    // Never a READ request while a response is still missing; the fenced
    // SEND only after the last READ's last response.
    let mut outstanding = 0;
    for p in w.iter() {
        match (p.0, p.1) {
            (true, Opcode::RcRdmaReadRequest) => {
                assert_eq!(outstanding, 0, "second READ while one outstanding: {w:?}");
                outstanding += 1;
            }
            (false, Opcode::RcRdmaReadResponseLast | Opcode::RcRdmaReadResponseOnly) => {
                outstanding -= 1
            }
            (true, Opcode::RcSendOnly) => assert_eq!(outstanding, 0, "fence broken: {w:?}"),
            _ => {}
        }
    }
    assert_eq!(sim.node(a).send_done.len(), 1);
}

#[test]
fn ack_request_every_64_packets_and_coalesced_acks() {
    let conn = Conn {
        mtu: 256,
        ..Conn::default()
    };
    let (mut sim, a, b, wire) = pair_with(Shape::default(), &conn);
    let rkey = sim.node(b).key;
    let s = [sim.node(a).sge(0, 100 * 256)];
    sim.node_mut(a).post(
        SendWr::new(
            1,
            SendOp::Write {
                remote_addr: BASE_VA,
                rkey,
            },
        )
        .payload(Payload::Sges(&s))
        .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    let w = wire.borrow();
    let reqs: Vec<_> = w.iter().filter(|p| p.0).collect();
    assert_eq!(reqs.len(), 100);
    let acked: Vec<usize> = reqs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.2)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        acked,
        [63, 99],
        "AckReq on the 64th and the last packet (Linux rxe_req.c (AckReq))"
    );
    let acks: Vec<u32> = w.iter().filter(|p| !p.0).map(|p| p.3).collect();
    assert_eq!(
        acks,
        [reqs[63].3, reqs[99].3],
        "one ACK per AckReq (IBA Vol 1 ch. 9 (ACKs); Linux rxe_resp.c)"
    );
}

#[test]
fn zero_length_operations() {
    let (mut sim, a, b, _) = pair();
    let r = [sim.node(b).sge(0, 10)];
    sim.node_mut(b).post_recv(0, &r);
    sim.node_mut(b).post_recv(1, &r);
    // Zero-length RDMA needs no valid rkey (IBA).
    let ha = sim.node_mut(a);
    ha.post(
        SendWr::new(
            1,
            SendOp::Write {
                remote_addr: 0,
                rkey: 0xDEAD,
            },
        )
        .flags(SendFlags::SIGNALED),
    );
    ha.post(
        SendWr::new(
            2,
            SendOp::Read {
                remote_addr: 0,
                rkey: 0xBEEF,
            },
        )
        .flags(SendFlags::SIGNALED),
    );
    ha.post(SendWr::new(3, SendOp::Send).flags(SendFlags::SIGNALED));
    ha.post(
        SendWr::new(
            4,
            SendOp::WriteWithImm {
                remote_addr: 0,
                rkey: 0,
                imm: 42,
            },
        )
        .flags(SendFlags::SIGNALED),
    );
    sim.run_until_idle();
    let st: Vec<_> = sim
        .node(a)
        .send_done
        .iter()
        .map(|c| (c.wr_id, c.status))
        .collect();
    assert_eq!(
        st,
        (1..=4).map(|i| (i, WcStatus::Success)).collect::<Vec<_>>()
    );
    let rc: Vec<_> = sim
        .node(b)
        .recv_done
        .iter()
        .map(|c| (c.wr_id, c.byte_len, c.imm))
        .collect();
    assert_eq!(rc, [(0, 0, None), (1, 0, Some(42))]);
}

#[test]
fn a_reused_qp_slot_gets_a_new_qpn_and_the_old_one_is_dead() {
    let mut h = Host::new([10, 9, 0, 7], Shape::default());
    let init = |h: &Host| QpInit {
        pd: h.pd,
        send_cq: h.scq,
        recv_cq: h.rcq,
        srq: None,
        sq_depth: 8,
        rq_depth: 8,
        max_send_sge: 1,
        max_recv_sge: 1,
        max_inline: 0,
    };
    let old = h.qpn;
    assert_eq!(old, 17);
    h.engine.destroy_qp(old).unwrap();
    let new = h.engine.create_qp(&init(&h)).unwrap();
    // Same slot, next epoch: a late packet or CM retry naming `old` must
    // not reach the new QP.
    assert_eq!(new & 0xFFFF, old & 0xFFFF);
    assert_ne!(new, old);
    assert!(new <= 0xFF_FFFF);
    assert_eq!(h.engine.qp_state(old), None);
    assert!(h.engine.qp_state(new).is_some());
    assert!(h.engine.destroy_qp(old).is_err());
    // A second, concurrent QP takes the next slot in its first epoch.
    let other = h.engine.create_qp(&init(&h)).unwrap();
    assert_eq!(other, 18);
    // Many reuses stay inside the 24-bit QPN space.
    let mut q = new;
    for _ in 0..600 {
        h.engine.destroy_qp(q).unwrap();
        q = h.engine.create_qp(&init(&h)).unwrap();
        assert!(q <= 0xFF_FFFF && q & 0xFFFF == 17, "{q:#x}");
    }
}
