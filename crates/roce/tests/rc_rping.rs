//! Replaying the captured rping conversations (tests/data/rping-small and
//! rping-multi, Linux rxe <-> rxe, MTU 1024) between two engines: the same
//! operations (SEND, RDMA READ, RDMA WRITE with the captured lengths, in
//! the captured order, each waited for as rping does) must put the same
//! packets on the wire: opcodes, payload lengths, AckReq bits, PSNs, DMA
//! lengths, AETH syndromes and MSNs, in the same order (the Linux rxe captures in crates/roce/tests/data, IBA Vol 1 ch. 9 (RC transport); Linux rxe_req.c, rxe_resp.c, rxe_comp.c).

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use netsim::{Config, Verdict};
use roce::rc::*;
use roce::wire::aeth::Syndrome;
use roce::wire::frame::{FrameRepr, IpRepr};
use roce::wire::opcode::{Opcode, Transport};
use support::rc::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pkt {
    from_client: bool,
    opcode: Opcode,
    len: usize,
    ack_req: bool,
    psn: u32,
    dma_len: Option<u32>,
    syndrome: Option<Syndrome>,
    msn: Option<u32>,
}

fn pkt_of(from_client: bool, p: &roce::wire::packet::PacketRepr<'_>) -> Pkt {
    Pkt {
        from_client,
        opcode: p.bth.opcode,
        len: p.payload.len(),
        ack_req: p.bth.ack_req,
        psn: p.bth.psn,
        dma_len: p.reth.map(|r| r.dma_len),
        syndrome: p.aeth.map(|a| a.syndrome),
        msn: p.aeth.map(|a| a.msn),
    }
}

/// The RC packets of a capture (CM MADs on QP1 left out); the client is 10.9.0.3.
fn captured(stem: &str) -> Vec<Pkt> {
    support::frames(stem)
        .iter()
        .filter_map(|f| {
            let fr = FrameRepr::parse(f).unwrap();
            let d = fr.datagram;
            let IpRepr::Ipv4(ip) = d.ip else {
                panic!("IPv4 captures")
            };
            (d.packet.bth.opcode.transport() == Transport::Rc)
                .then(|| pkt_of(ip.src_addr == [10, 9, 0, 3], &d.packet))
        })
        .collect()
}

fn replay(stem: &str) {
    let want = captured(stem);
    assert!(want.len() > 20, "{stem}: {} RC packets", want.len());
    // Each side's first request PSN is its send PSN (the Linux rxe captures in crates/roce/tests/data).
    let first = |client: bool| {
        want.iter()
            .find(|p| p.from_client == client && p.opcode.is_request())
            .unwrap()
            .psn
    };
    let conn = Conn {
        mtu: 1024,
        a_psn: first(true),
        b_psn: first(false),
        rd_atomic: 1,
        ..Conn::default()
    };
    let (mut sim, client, server) = sim_pair(Config::new(0), Shape::default(), &conn);
    // rxe numbers the first RC QP 17 on both sides (the Linux rxe captures in crates/roce/tests/data).
    assert_eq!((sim.node(client).qpn, sim.node(server).qpn), (0x11, 0x11));
    let got: Rc<RefCell<Vec<Pkt>>> = Rc::default();
    let g = got.clone();
    sim.set_hook(move |ctx, d| {
        g.borrow_mut()
            .push(pkt_of(ctx.from == client, &parse(&d.payload)));
        Verdict::Pass
    });
    for id in [client, server] {
        for k in 0..64 {
            let r = [sim.node(id).sge(0x10000 + k * 64, 64)];
            sim.node_mut(id).post_recv(k as u64, &r);
        }
    }
    // The operations, read off the capture's requests.
    let mut posted = 0;
    for p in want
        .iter()
        .filter(|p| p.opcode.is_request() && p.opcode.is_start())
    {
        let (from, to) = if p.from_client {
            (client, server)
        } else {
            (server, client)
        };
        let rkey = sim.node(to).key;
        let op = match p.opcode {
            Opcode::RcSendOnly | Opcode::RcSendFirst => SendOp::Send,
            Opcode::RcRdmaReadRequest => SendOp::Read {
                remote_addr: BASE_VA + 0x40000,
                rkey,
            },
            Opcode::RcRdmaWriteOnly | Opcode::RcRdmaWriteFirst => SendOp::Write {
                remote_addr: BASE_VA + 0x40000,
                rkey,
            },
            other => panic!("{stem}: unexpected request {other:?}"),
        };
        let len = p.dma_len.map_or(p.len, |l| l as usize);
        let sge = [sim.node(from).sge(0x20000, len)];
        let wr = SendWr::new(posted, op)
            .payload(Payload::Sges(&sge))
            .flags(SendFlags::SIGNALED);
        sim.node_mut(from).post(wr);
        // rping waits for each completion before the next step.
        sim.run_until_idle();
        posted += 1;
    }
    let got = got.borrow();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{stem}: packet {i} differs");
    }
    assert_eq!(got.len(), want.len(), "{stem}: packet count");
    for id in [client, server] {
        let h = sim.node(id);
        assert!(h.send_done.iter().all(|c| c.status == WcStatus::Success));
    }
    let done = sim.node(client).send_done.len() + sim.node(server).send_done.len();
    assert_eq!(done as u64, posted);
}

#[test]
fn rping_small_replays_packet_for_packet() {
    replay("rping-small");
}

#[test]
fn rping_multi_replays_packet_for_packet() {
    replay("rping-multi");
}
