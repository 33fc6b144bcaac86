//! Single operations between two engines over a perfect simulated link:
//! segmentation at every MTU and the edge lengths (IBA Vol 1 ch. 9 (segmentation at the path MTU); Linux rxe_req.c), the
//! packets on the wire (opcodes, AckReq, PSNs), and the completions.

mod support;

use netsim::Config;
use roce::rc::*;
use roce::time::Instant;
use roce::wire::opcode::Opcode;
use std::cell::RefCell;
use std::rc::Rc;
use support::rc::*;

type Wire = Rc<RefCell<Vec<(bool, Opcode, usize, bool, u32)>>>;

/// A pair that records (from_a, opcode, payload len, ack_req, psn) of every packet.
fn recorded(
    conn: &Conn,
) -> (
    netsim::Simulator<Host>,
    netsim::NodeId,
    netsim::NodeId,
    Wire,
) {
    let (mut sim, a, b) = sim_pair(Config::new(1), Shape::default(), conn);
    let wire: Wire = Rc::default();
    let w = wire.clone();
    sim.set_hook(move |ctx, d| {
        let p = parse(&d.payload);
        w.borrow_mut().push((
            ctx.from == a,
            p.bth.opcode,
            p.payload.len(),
            p.bth.ack_req,
            p.bth.psn,
        ));
        netsim::Verdict::Pass
    });
    (sim, a, b, wire)
}

fn lengths(mtu: usize) -> Vec<usize> {
    vec![0, 1, mtu - 1, mtu, mtu + 1, 2 * mtu, 3 * mtu + 17]
}

#[test]
fn write_segmentation_every_mtu() {
    for mtu in [256usize, 512, 1024, 2048, 4096] {
        for len in lengths(mtu) {
            let conn = Conn {
                mtu: mtu as u32,
                ..Conn::default()
            };
            let (mut sim, a, b, wire) = recorded(&conn);
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            sim.node(a).mem().write(0, &data);
            let rkey = sim.node(b).key;
            let sge = [sim.node(a).sge(0, len)];
            sim.node_mut(a).post(
                SendWr::new(
                    7,
                    SendOp::Write {
                        remote_addr: BASE_VA + 4096,
                        rkey,
                    },
                )
                .payload(Payload::Sges(&sge))
                .flags(SendFlags::SIGNALED),
            );
            sim.run_until_idle();
            assert_eq!(
                sim.node(b).mem().snapshot(4096, len),
                data,
                "mtu {mtu} len {len}"
            );
            let done = &sim.node(a).send_done;
            assert_eq!(done.len(), 1);
            assert_eq!((done[0].wr_id, done[0].status), (7, WcStatus::Success));
            let w = wire.borrow();
            let npkts = len.div_ceil(mtu).max(1);
            let reqs: Vec<_> = w.iter().filter(|p| p.0).collect();
            assert_eq!(reqs.len(), npkts, "mtu {mtu} len {len}");
            for (i, p) in reqs.iter().enumerate() {
                let want = match (npkts, i) {
                    (1, _) => Opcode::RcRdmaWriteOnly,
                    (_, 0) => Opcode::RcRdmaWriteFirst,
                    (n, i) if i + 1 == n => Opcode::RcRdmaWriteLast,
                    _ => Opcode::RcRdmaWriteMiddle,
                };
                assert_eq!(p.1, want, "mtu {mtu} len {len} pkt {i}");
                let plen = if i + 1 == npkts { len - i * mtu } else { mtu };
                assert_eq!(p.2, plen);
                assert_eq!(p.3, i + 1 == npkts, "AckReq only on the last");
                assert_eq!(p.4, (conn.a_psn + i as u32) & 0xFF_FFFF, "PSNs wrap");
            }
            // One coalesced ACK, for the last PSN.
            let acks: Vec<_> = w.iter().filter(|p| !p.0).collect();
            assert_eq!(acks.len(), 1);
            assert_eq!(acks[0].1, Opcode::RcAcknowledge);
            assert_eq!(acks[0].4, (conn.a_psn + npkts as u32 - 1) & 0xFF_FFFF);
        }
    }
}

/// Hands `from`'s next packet to `to`; returns its opcode.
fn hand_over(from: &mut Host, to: &mut Host) -> Option<Opcode> {
    let now = Instant::ZERO;
    let (info, bytes) = from.transmit(now)?;
    let src = std::net::SocketAddr::new(info.local_ip, info.udp_src_port);
    let dst = std::net::SocketAddr::new(info.remote_ip, info.udp_dst_port);
    to.receive(now, src, dst, &bytes);
    Some(parse(&bytes).bth.opcode)
}

#[test]
fn a_request_goes_before_the_ack_of_the_message_that_prompted_it() {
    // A ping-pong: B answers A's SEND with a SEND of its own. B's first
    // packet is that SEND (what A waits for), the ACK of A's after it.
    let mut a = Host::new([10, 9, 0, 3], Shape::default());
    let mut b = Host::new([10, 9, 0, 2], Shape::default());
    connect(&mut a, &mut b, &Conn::default());
    for round in 0..4u64 {
        a.post_recv(round, &[a.sge(0, 64)]);
        b.post_recv(round, &[b.sge(0, 64)]);
        let sge = [a.sge(64, 64)];
        a.post(SendWr::new(round, SendOp::Send).payload(Payload::Sges(&sge)));
        assert_eq!(hand_over(&mut a, &mut b), Some(Opcode::RcSendOnly));
        let sge = [b.sge(64, 64)];
        b.post(SendWr::new(round, SendOp::Send).payload(Payload::Sges(&sge)));
        assert_eq!(
            hand_over(&mut b, &mut a),
            Some(Opcode::RcSendOnly),
            "round {round}: B's SEND first"
        );
        assert_eq!(hand_over(&mut b, &mut a), Some(Opcode::RcAcknowledge));
        assert_eq!(hand_over(&mut a, &mut b), Some(Opcode::RcAcknowledge));
        assert_eq!(b.transmit(Instant::ZERO).map(|_| ()), None);
        assert_eq!(a.transmit(Instant::ZERO).map(|_| ()), None);
    }
}

#[test]
fn a_due_response_goes_between_two_requests() {
    // B has three SENDs queued and an ACK due: SEND, ACK, SEND, SEND.
    let mut a = Host::new([10, 9, 0, 3], Shape::default());
    let mut b = Host::new([10, 9, 0, 2], Shape::default());
    connect(&mut a, &mut b, &Conn::default());
    for i in 0..3 {
        a.post_recv(i, &[a.sge(64 * i as usize, 64)]);
    }
    b.post_recv(0, &[b.sge(0, 64)]);
    let sge = [a.sge(512, 64)];
    a.post(SendWr::new(9, SendOp::Send).payload(Payload::Sges(&sge)));
    assert_eq!(hand_over(&mut a, &mut b), Some(Opcode::RcSendOnly));
    let sge = [b.sge(512, 64)];
    for i in 0..3 {
        b.post(SendWr::new(i, SendOp::Send).payload(Payload::Sges(&sge)));
    }
    let order: Vec<_> = std::iter::from_fn(|| hand_over(&mut b, &mut a)).collect();
    assert_eq!(
        order,
        [
            Opcode::RcSendOnly,
            Opcode::RcAcknowledge,
            Opcode::RcSendOnly,
            Opcode::RcSendOnly
        ]
    );
}
