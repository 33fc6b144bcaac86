//! Golden captures (docs/design.md "Proof" 2): every frame of every reference
//! capture (real Linux rxe traffic, 248 frames) parses from Ethernet down
//! to the payload with IP checksum and ICRC verified, and re-emitting its
//! Repr reproduces the captured bytes exactly.

mod support;

use std::collections::BTreeMap;

use roce::wire::aeth::Syndrome;
use roce::wire::deth::GSI_QKEY;
use roce::wire::frame::{FrameRepr, IpRepr};
use roce::wire::opcode::Opcode;
use roce::wire::packet::{qp_default_udp_sport, udp_sport_from_flow_label};
use roce::wire::udp::ROCE_PORT;

#[test]
fn every_captured_frame_parses_and_re_emits_byte_for_byte() {
    let frames = support::all_frames();
    assert_eq!(frames.len(), 248);
    let mut by_opcode: BTreeMap<u8, usize> = BTreeMap::new();
    for (stem, i, bytes) in &frames {
        let repr = FrameRepr::parse(bytes).unwrap_or_else(|e| panic!("{stem}#{i}: {e}"));
        // rxe frames are never short enough to need link padding.
        assert_eq!(repr.buffer_len(), bytes.len(), "{stem}#{i}");
        let mut out = vec![0u8; repr.buffer_len()];
        let n = repr
            .emit(&mut out)
            .unwrap_or_else(|e| panic!("{stem}#{i}: {e}"));
        assert_eq!(n, bytes.len(), "{stem}#{i}");
        assert_eq!(&out, bytes, "{stem}#{i}: re-emit differs");
        *by_opcode
            .entry(repr.datagram.packet.bth.opcode.to_u8())
            .or_default() += 1;
    }
    // The opcode mix the captures are known to hold (the Linux rxe captures in crates/roce/tests/data and the
    // capture README): CM MADs, Send Only, ACK/NAK, RDMA Write F/M/L,
    // RDMA Write Only, RDMA Read request and response F/M/L/Only.
    for op in [
        0x64, 0x04, 0x11, 0x06, 0x07, 0x08, 0x0A, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
    ] {
        assert!(
            by_opcode.contains_key(&op),
            "no opcode {op:#04x} in captures: {by_opcode:?}"
        );
    }
}

#[test]
fn captured_fields_match_the_capture_facts() {
    for (stem, i, bytes) in support::all_frames() {
        let f = FrameRepr::parse(&bytes).unwrap();
        let d = f.datagram;
        let IpRepr::Ipv4(ip) = d.ip else {
            panic!("{stem}#{i}: captures are IPv4 only")
        };
        // the Linux rxe captures in crates/roce/tests/data: TOS 0, TTL 64, DF, UDP checksum 0, dst port 4791.
        assert_eq!((ip.tos, ip.ttl, ip.dont_frag), (0, 64, true), "{stem}#{i}");
        assert!(!d.udp.checksum, "{stem}#{i}");
        assert_eq!(d.udp.dst_port, ROCE_PORT);
        let bth = d.packet.bth;
        assert_eq!(bth.pkey, 0xFFFF, "{stem}#{i}");
        assert!(!bth.fecn && !bth.becn && !bth.mig_req, "{stem}#{i}");
        assert_eq!((bth.reserved_6, bth.reserved_7), (0, 0), "{stem}#{i}");
        if bth.opcode == Opcode::UdSendOnly {
            // QP1 CM MAD: 256-byte opaque payload, GSI Q_Key, SrcQP 1, fixed sport.
            assert_eq!(bth.dest_qp, 1, "{stem}#{i}");
            assert!(bth.ack_req, "{stem}#{i}");
            let deth = d.packet.deth.unwrap();
            assert_eq!((deth.qkey, deth.src_qp), (GSI_QKEY, 1), "{stem}#{i}");
            assert_eq!(d.packet.payload.len(), 256, "{stem}#{i}");
            assert_eq!(d.udp.src_port, qp_default_udp_sport(1), "{stem}#{i}");
            assert_eq!(bytes.len(), 322, "{stem}#{i}");
        } else {
            assert!(d.udp.src_port >= 0xC000, "{stem}#{i}");
            if bth.opcode.is_end() {
                // rxe asks for an ACK on every message end (Linux rxe_req.c (AckReq)).
                assert!(bth.ack_req || !bth.opcode.is_request(), "{stem}#{i}");
            }
        }
        if let Some(aeth) = d.packet.aeth {
            assert!(
                matches!(
                    aeth.syndrome,
                    Syndrome::Ack { credits: 0x1F }
                        | Syndrome::RnrNak { .. }
                        | Syndrome::Nak(roce::wire::aeth::NakCode::PsnSequenceError)
                ),
                "{stem}#{i}: {:?}",
                aeth.syndrome
            );
        }
    }
}

#[test]
fn rc_source_ports_follow_the_req_flow_label() {
    // the Linux rxe captures in crates/roce/tests/data: one sport per connection, same both ways, = f(REQ flow label).
    let expect = [
        ("rping-small", udp_sport_from_flow_label(0xC5A69), 55896),
        ("rping-multi", udp_sport_from_flow_label(0x3E123), 57644),
    ];
    for (stem, computed, port) in expect {
        assert_eq!(computed, port);
        let mut seen = 0;
        for bytes in support::frames(stem) {
            let d = FrameRepr::parse(&bytes).unwrap().datagram;
            if d.packet.bth.dest_qp != 1 {
                assert_eq!(d.udp.src_port, port, "{stem}");
                seen += 1;
            }
        }
        assert!(seen > 0, "{stem} has RC traffic");
    }
}

#[test]
fn rnr_capture_holds_the_documented_naks() {
    // tests/data/README.md: 4 plain ACKs, 9 RNR NAKs (timer 0), 6 PSN
    // sequence error NAKs, 22 Send Only.
    let (mut acks, mut rnr, mut seq, mut sends) = (0, 0, 0, 0);
    for bytes in support::frames("rnr") {
        let p = FrameRepr::parse(&bytes).unwrap().datagram.packet;
        match (p.bth.opcode, p.aeth.map(|a| a.syndrome)) {
            (Opcode::RcSendOnly, None) => sends += 1,
            (Opcode::RcAcknowledge, Some(Syndrome::Ack { .. })) => acks += 1,
            (Opcode::RcAcknowledge, Some(Syndrome::RnrNak { timer })) => {
                assert_eq!(timer, 0);
                rnr += 1;
            }
            (Opcode::RcAcknowledge, Some(Syndrome::Nak(_))) => seq += 1,
            _ => {}
        }
    }
    assert_eq!((acks, rnr, seq, sends), (4, 9, 6, 22));
}

#[test]
fn rping_multi_read_and_write_segmentation() {
    // the Linux rxe captures in crates/roce/tests/data: READ 5000 B at MTU 1024 -> response F, M x3, L with
    // 1024 x4 + 904; WRITE 5000 B -> F (RETH len 5000), M x3, L.
    let mut read_resp = Vec::new();
    let mut write = Vec::new();
    for bytes in support::frames("rping-multi") {
        let p = FrameRepr::parse(&bytes).unwrap().datagram.packet;
        match p.bth.opcode {
            Opcode::RcRdmaReadRequest => assert_eq!(p.reth.unwrap().dma_len, 5000),
            Opcode::RcRdmaReadResponseFirst
            | Opcode::RcRdmaReadResponseMiddle
            | Opcode::RcRdmaReadResponseLast => read_resp.push((p.bth.opcode, p.payload.len())),
            Opcode::RcRdmaWriteFirst => {
                assert_eq!(p.reth.unwrap().dma_len, 5000);
                assert!(!p.bth.ack_req);
                write.push(p.payload.len());
            }
            Opcode::RcRdmaWriteMiddle | Opcode::RcRdmaWriteLast => write.push(p.payload.len()),
            _ => {}
        }
    }
    let first_read: Vec<usize> = read_resp.iter().take(5).map(|x| x.1).collect();
    assert_eq!(first_read, [1024, 1024, 1024, 1024, 904]);
    assert_eq!(&write[..5], &[1024, 1024, 1024, 1024, 904]);
}
