//! NdkConnect, NdkAccept and NdkDisconnect rule by rule (docs/disconnect.md, the NDKPI listeners, connectors and endpoints page, the NDKPI object lifetime requirements page), two providers joined by a lossless in-process wire.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ndk::connector::ConnectorState;
use ndk::object::ObjectId;
use ndk::provider::{NdkCompletion, NdkSge};
use ndk::upcall::{Callback, UpcallKind};
use ndkpi::*;
use roce::cm::timeline::Entry;

mod support;

use support::*;

/// A's and B's link path MTUs.
fn with_mtus(a: u32, b: u32) -> Pair {
    Pair::build(
        SideConfig {
            path_mtu: a,
            ..SideConfig::new(1)
        },
        SideConfig {
            path_mtu: b,
            ..SideConfig::new(2)
        },
    )
}

#[test]
fn d3_d6_pending_disconnect_completes_once_after_the_flush() {
    let mut p = Pair::new();
    let (ca, _) = p.connect();
    p.a.post_receives(3);
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 7)), STATUS_PENDING);
    // Nothing completes before the handshake finishes.
    assert!(p.a.done(7).is_empty());
    let flushed_before: usize;
    {
        // When the completion runs, the flushed receives are already on
        // the CQ (D6): check from inside the upcall.
        let results = std::rc::Rc::new(std::cell::Cell::new(usize::MAX));
        let r = results.clone();
        let cq = p.a.cq;
        p.a.on_upcall = Some(Box::new(move |prov, u| {
            if u.callback == cb(DONE, 7) {
                let mut out = [NdkCompletion::EMPTY; 8];
                let n = prov.get_cq_results(cq, &mut out);
                assert!(out[..n].iter().all(|c| c.status == STATUS_CANCELLED));
                r.set(n);
            }
        }));
        p.pump();
        flushed_before = results.get();
    }
    assert_eq!(p.a.done(7), [STATUS_SUCCESS]);
    assert_eq!(flushed_before, 3);
    // B saw the peer disconnect once and flushed nothing (D7).
    assert_eq!(
        p.b.count(|u| matches!(u.kind, UpcallKind::DisconnectEvent { .. })),
        1
    );
    assert!(p.b.results().is_empty());
    // A second disconnect is refused inline, with no completion (D11).
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 8)), STATUS_CONNECTION_INVALID);
    p.pump();
    assert!(p.a.done(8).is_empty());
}

#[test]
fn d7_peer_disconnect_does_not_flush_and_the_later_disconnect_is_inline() {
    let mut p = Pair::new();
    let (ca, cb_conn) = p.connect();
    p.b.post_receives(2);
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 1)), STATUS_PENDING);
    p.pump();
    assert_eq!(p.b.count(|u| u.callback == cb(EVENT, 2)), 1);
    // Receives stay posted until B disconnects.
    assert!(p.b.results().is_empty());
    assert_eq!(
        p.b.p.connector(cb_conn).unwrap().state(),
        ConnectorState::PeerDisconnected
    );
    // Posting a send after the peer left is refused (D11).
    let st = p.b.p.post_send(p.b.qp, 5, &[], roce::rc::SendOp::Send, 0);
    assert_eq!(st, STATUS_CONNECTION_INVALID);
    // D2: inline success, the flush done, no completion callback.
    assert_eq!(p.b.p.disconnect(cb_conn, cb(DONE, 9)), STATUS_SUCCESS);
    let r = p.b.results();
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|c| c.status == STATUS_CANCELLED));
    p.pump();
    p.run_until(|p| !p.step_possible());
    assert!(p.b.done(9).is_empty());
    assert_eq!(p.b.count(|u| u.callback == cb(EVENT, 2)), 1);
}

impl Pair {
    fn step_possible(&self) -> bool {
        self.a.p.poll_timeout().is_some() || self.b.p.poll_timeout().is_some()
    }
}

#[test]
fn d4_timeout_is_async_within_the_bound_and_flushes() {
    let mut p = Pair::new();
    let (ca, _) = p.connect();
    p.a.post_receives(1);
    p.b.dead = true;
    let start = p.now;
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    p.run_until(|p| !p.a.done(3).is_empty());
    assert_eq!(p.a.done(3), [STATUS_IO_TIMEOUT]);
    let cm = *p.a.p.device_ref().cm_ref().config();
    assert_eq!(
        p.now - start,
        cm.disconnect_bound(cm.active_timeout(cm.cm_response_timeout))
    );
    assert_eq!(p.a.results().len(), 1);
    // The timeline explains the slow disconnect: the DREQs and the timeout.
    let conn = p.a.p.connector(ca).unwrap().conn().unwrap();
    let timeline =
        p.a.p
            .device_ref()
            .cm_ref()
            .connection(conn)
            .unwrap()
            .timeline();
    let dreqs = timeline
        .iter()
        .filter(|(_, e)| *e == Entry::Sent(roce::cm::state::Outgoing::Dreq))
        .count();
    assert_eq!(dreqs, usize::from(cm.max_dreq_retries) + 1);
    assert!(
        timeline
            .iter()
            .any(|(_, e)| *e == Entry::Note("QP flushed"))
    );
    assert!(
        timeline
            .iter()
            .any(|(_, e)| *e == Entry::Note("disconnect timed out"))
    );
}

#[test]
fn d11_disconnect_before_the_connection_is_invalid_inline() {
    let mut p = Pair::new();
    let c = p.a.p.create_connector();
    assert_eq!(p.a.p.disconnect(c, cb(DONE, 1)), STATUS_CONNECTION_INVALID);
    // While connecting.
    let st = p.a.p.connect(
        c,
        p.a.qp,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 9),
        1,
        1,
        b"",
        cb(DONE, 2),
    );
    assert_eq!(st, STATUS_PENDING);
    assert_eq!(p.a.p.disconnect(c, cb(DONE, 3)), STATUS_CONNECTION_INVALID);
    // No listener on port 9: refused.
    p.pump();
    assert_eq!(p.a.done(2), [STATUS_CONNECTION_REFUSED]);
    assert_eq!(p.a.p.disconnect(c, cb(DONE, 4)), STATUS_CONNECTION_INVALID);
    p.pump();
    assert!(p.a.done(1).is_empty());
    assert!(p.a.done(3).is_empty());
    assert!(p.a.done(4).is_empty());
}

#[test]
fn d8_d9_close_from_inside_the_completion_and_close_waits_for_it() {
    let mut p = Pair::new();
    let (ca, _) = p.connect();
    // Close the connector while its disconnect is pending: the close waits.
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 5)), STATUS_PENDING);
    assert_eq!(p.a.p.close(ca, cb(CLOSE, 1)), STATUS_PENDING);
    p.pump();
    // The disconnect completion came first, the close completion last.
    let order: Vec<_> =
        p.a.upcalls
            .iter()
            .filter(|u| u.owner == ca)
            .map(|u| u.kind)
            .collect();
    assert_eq!(
        order.last(),
        Some(&UpcallKind::Close),
        "close completion last: {order:?}"
    );
    assert_eq!(p.a.done(5), [STATUS_SUCCESS]);
    assert!(p.a.p.connector(ca).is_none());

    // B: close the connector from inside its disconnect completion (D8).
    let mut p = Pair::new();
    let (_, cb_conn) = p.connect();
    let closed = std::rc::Rc::new(std::cell::Cell::new(None));
    let c2 = closed.clone();
    p.b.on_upcall = Some(Box::new(move |prov, u| {
        if u.callback == cb(DONE, 6) {
            c2.set(Some(prov.close(u.owner, cb(CLOSE, 2))));
        }
    }));
    assert_eq!(p.b.p.disconnect(cb_conn, cb(DONE, 6)), STATUS_PENDING);
    p.pump();
    // The close was issued while its own completion was running: it
    // pends, and completes once that upcall returned.
    assert_eq!(closed.get(), Some(STATUS_PENDING));
    assert_eq!(p.b.count(|u| u.callback == cb(CLOSE, 2)), 1);
    assert!(p.b.p.connector(cb_conn).is_none());
}

#[test]
fn closing_the_qp_waits_for_its_connector() {
    let mut p = Pair::new();
    let (ca, _) = p.connect();
    p.a.post_receives(2);
    assert_eq!(p.a.p.close(p.a.qp, cb(CLOSE, 3)), STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.count(|u| u.callback == cb(CLOSE, 3)), 0);
    // The close flushed the QP at once: its receives are back, though the
    // close itself waits for the connector.
    let r = p.a.results();
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|c| c.status == STATUS_CANCELLED));
    // Closing the established connector tears the connection down; then
    // the QP's close completes, with nothing more in the CQ.
    let st = p.a.p.close(ca, cb(CLOSE, 4));
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.count(|u| u.callback == cb(CLOSE, 3)), 1);
    assert_eq!(p.a.results().len(), 0);
}

/// Found by the ndk_api fuzz target: receives posted, the connect refused
/// (no listener), the QP closed before its connector. The QP's close waits
/// for the connector (still bound to it); its receives must not wait with
/// it, or a consumer that closes the connector only once its buffers came
/// back never gets either.
#[test]
fn a_qp_closed_after_a_refused_connect_gives_its_receives_back_at_once() {
    let mut p = Pair::new();
    p.a.post_receives(3);
    let ca = p.a.p.create_connector();
    let st = p.a.p.connect(
        ca,
        p.a.qp,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 9),
        1,
        1,
        b"",
        cb(DONE, 1),
    );
    assert_eq!(st, STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.done(1), [STATUS_CONNECTION_REFUSED]);
    assert_eq!(p.a.p.close(p.a.qp, cb(CLOSE, 2)), STATUS_PENDING);
    let r = p.a.results();
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r.iter().all(|c| c.status == STATUS_CANCELLED), "{r:?}");
    let mut ctx: Vec<usize> = r.iter().map(|c| c.request_context).collect();
    ctx.sort_unstable();
    assert_eq!(ctx, [100, 101, 102]);
    let st = p.a.p.close(ca, cb(CLOSE, 3));
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING, "{st:#x}");
    p.pump();
    assert_eq!(p.a.count(|u| u.callback == cb(CLOSE, 2)), 1);
    assert_eq!(p.a.results().len(), 0);
}

/// Closing a connected connector without NdkDisconnect still ends the
/// connection on the wire (a DREQ, as ib_cm does for a destroyed cm_id):
/// the peer's disconnect event fires once, at once, instead of the peer
/// learning only from its transport timeouts or keepalives.
#[test]
fn closing_a_connected_connector_tells_the_peer() {
    let mut p = Pair::new();
    let (ca, cbc) = p.connect();
    let st = p.a.p.close(ca, cb(CLOSE, 4));
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING, "{st:#x}");
    p.pump();
    assert_eq!(p.b.count(|u| u.callback == cb(EVENT, 2)), 1);
    assert_eq!(
        p.b.p.connector(cbc).unwrap().state(),
        ConnectorState::PeerDisconnected
    );
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 5)), STATUS_SUCCESS);
}

#[test]
fn everything_closes_and_nothing_leaks() {
    let mut p = Pair::new();
    let (ca, cbc) = p.connect();
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 1)), STATUS_PENDING);
    p.pump();
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 2)), STATUS_SUCCESS);
    // Close everything, antecedents first: each close waits for its
    // successors and completes exactly once, the last upcall of its object.
    let mut closes = 0;
    for side in [&mut p.a, &mut p.b] {
        let ids: Vec<ObjectId> = side.p.object_ids();
        for (i, id) in ids.iter().enumerate() {
            let st = side.p.close(*id, cb(CLOSE, 1000 + i));
            assert!(st == STATUS_SUCCESS || st == STATUS_PENDING, "{st:#x}");
            if st == STATUS_PENDING {
                closes += 1;
            }
        }
    }
    p.pump();
    p.run_until(|p| !p.step_possible());
    assert_eq!(p.a.p.object_count(), 0);
    assert_eq!(p.b.p.object_count(), 0);
    let completed =
        p.a.count(|u| u.kind == UpcallKind::Close) + p.b.count(|u| u.kind == UpcallKind::Close);
    assert_eq!(completed, closes);
    // No upcall of any object after its close completion.
    for side in [&p.a, &p.b] {
        for (i, u) in side.upcalls.iter().enumerate() {
            if u.kind == UpcallKind::Close {
                assert!(side.upcalls[i + 1..].iter().all(|v| v.owner != u.owner));
            }
        }
    }
    let _ = Duration::ZERO;
}

#[test]
fn shared_endpoint_connects_to_distinct_destinations_and_outlives_its_connectors() {
    let mut p = Pair::new();
    for port in [445u16, 446] {
        let l = p.b.p.create_listener(cb(CONNECT_EVENT, usize::from(port)));
        p.b.p.listen(l, SocketAddr::new(B_IP, port)).unwrap();
    }
    let sep =
        p.a.p
            .create_shared_endpoint(SocketAddr::new(A_IP, 0))
            .unwrap();
    let local = p.a.p.local_address(sep).unwrap();
    assert!(local.port() >= 49152);
    // The endpoint's address is taken: a listener there is refused.
    let l = p.a.p.create_listener(Callback::NONE);
    assert_eq!(p.a.p.listen(l, local), Err(STATUS_SHARING_VIOLATION));
    // A second QP for the second connection.
    let pd = p.a.p.create_pd().unwrap();
    let qp2 =
        p.a.p
            .create_qp(pd, p.a.cq, p.a.cq, 0, 4, 4, 1, 1, 0)
            .unwrap();
    let c1 = p.a.p.create_connector();
    let c2 = p.a.p.create_connector();
    let c3 = p.a.p.create_connector();
    let dst = SocketAddr::new(B_IP, 445);
    assert_eq!(
        p.a.p
            .connect_with_shared_endpoint(c1, p.a.qp, sep, dst, 1, 1, b"", cb(DONE, 1)),
        STATUS_PENDING
    );
    // Same 4-tuple again: refused inline.
    assert_eq!(
        p.a.p
            .connect_with_shared_endpoint(c3, qp2, sep, dst, 1, 1, b"", cb(DONE, 3)),
        STATUS_ADDRESS_ALREADY_EXISTS
    );
    assert_eq!(
        p.a.p.connect_with_shared_endpoint(
            c2,
            qp2,
            sep,
            SocketAddr::new(B_IP, 446),
            1,
            1,
            b"",
            cb(DONE, 2)
        ),
        STATUS_PENDING
    );
    p.pump();
    // B sees both requests from the same address and port.
    let requests: Vec<_> =
        p.b.upcalls
            .iter()
            .filter_map(|u| match u.kind {
                UpcallKind::ConnectEvent { connector } => Some(connector),
                _ => None,
            })
            .collect();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let (_, peer) = p.b.p.connector_addresses(*r).unwrap();
        assert_eq!(peer, local);
    }
    // The endpoint closes only after its connectors.
    assert_eq!(p.a.p.close(sep, cb(CLOSE, 9)), STATUS_PENDING);
    for c in [c1, c2, c3] {
        let _ = p.a.p.close(c, Callback::NONE);
    }
    p.pump();
    assert_eq!(p.a.done(1), [STATUS_CANCELLED]);
    assert_eq!(p.a.done(2), [STATUS_CANCELLED]);
    assert!(p.a.done(3).is_empty());
    assert_eq!(p.a.count(|u| u.callback == cb(CLOSE, 9)), 1);
    // The address is free again.
    assert!(p.a.p.listen(l, local).is_ok());
}

/// Sends a 3000-byte message each way and returns the largest RoCE payload
/// (BTH to ICRC) each side put on the wire.
fn largest_packets(pair: &mut Pair) -> (usize, usize) {
    let (_, _) = pair.connect();
    // One receive of 4 KiB each.
    for side in [&mut pair.a, &mut pair.b] {
        let st = side.p.post_receive(
            side.qp,
            7,
            &[NdkSge {
                address: VA + 0x4000,
                length: 4096,
                token: side.token,
            }],
        );
        assert_eq!(st, STATUS_SUCCESS);
    }
    let mut largest = (0, 0);
    for from_a in [true, false] {
        let side = if from_a { &mut pair.a } else { &mut pair.b };
        let st = side.p.post_send(
            side.qp,
            9,
            &[NdkSge {
                address: VA + 0x8000,
                length: 3000,
                token: side.token,
            }],
            roce::rc::SendOp::Send,
            0,
        );
        assert_eq!(st, STATUS_SUCCESS);
        // Move datagrams by hand, measuring each side's.
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = pair.a.p.poll_transmit(pair.now, &mut pair.buf) {
                moved = true;
                let payload = t.udp_payload(&pair.buf).to_vec();
                largest.0 = largest.0.max(payload.len());
                pair.b.p.handle_udp(pair.now, t.src, t.dst, &payload);
            }
            while let Some(t) = pair.b.p.poll_transmit(pair.now, &mut pair.buf) {
                moved = true;
                let payload = t.udp_payload(&pair.buf).to_vec();
                largest.1 = largest.1.max(payload.len());
                pair.a.p.handle_udp(pair.now, t.src, t.dst, &payload);
            }
            pair.a.drain();
            pair.b.drain();
            if !moved && !pair.step() {
                break;
            }
        }
    }
    let ok = |side: &mut Side| {
        side.results()
            .iter()
            .filter(|c| c.status == STATUS_SUCCESS)
            .count()
    };
    // Each side's send and its 3000-byte receive.
    assert_eq!(ok(&mut pair.a), 2, "A's send and receive completed");
    assert_eq!(ok(&mut pair.b), 2, "B's send and receive completed");
    largest
}

/// RoCE payload of a full SEND Middle/Last at path MTU `mtu`: BTH 12, the
/// payload, ICRC 4 (a SEND First adds nothing, an Only with immediate 4).
const fn send_packet(mtu: usize) -> usize {
    12 + mtu + 4
}

#[test]
fn the_active_side_offers_its_links_path_mtu_rounded_down() {
    // A's link carries 1500-byte RoCE payloads: its REQ offers 1024, and
    // both sides keep to it although B's link carries 4096.
    let mut pair = with_mtus(1500, 4096);
    let (a, b) = largest_packets(&mut pair);
    assert!(a <= send_packet(1024), "A sent a {a}-byte packet");
    assert!(b <= send_packet(1024), "B sent a {b}-byte packet");
    assert!(a > send_packet(512), "A used 1024-byte segments ({a})");
}

#[test]
fn a_req_asking_for_more_than_the_passive_link_carries_is_refused() {
    // A offers 4096; B's link carries 1024. The REP cannot lower the MTU
    // and both directions must use one, so B refuses with REJ reason 26
    // (Invalid MTU) and A's NdkConnect fails with the refusal.
    let mut pair = with_mtus(4096, 1024);
    let l = pair.b.p.create_listener(cb(CONNECT_EVENT, 0));
    pair.b.p.listen(l, SocketAddr::new(B_IP, 445)).unwrap();
    let ca = pair.a.p.create_connector();
    let st = pair.a.p.connect(
        ca,
        pair.a.qp,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 445),
        2,
        2,
        b"",
        cb(DONE, 1),
    );
    assert_eq!(st, STATUS_PENDING);
    pair.pump();
    assert_eq!(
        pair.b
            .count(|u| matches!(u.kind, UpcallKind::ConnectEvent { .. })),
        0,
        "B's listener never sees the request"
    );
    assert_eq!(pair.a.done(1), vec![STATUS_CONNECTION_REFUSED]);
    // A peer asking for what B carries connects (B's link: 1024).
    let mut pair = with_mtus(1024, 1024);
    let (a, b) = largest_packets(&mut pair);
    assert!(a <= send_packet(1024) && b <= send_packet(1024), "{a} {b}");
}

#[test]
fn a_datagram_the_link_refuses_fails_its_request_not_silently() {
    // The link under A stops carrying A's packets (its MTU fell below the
    // connection's path MTU): the shell's send fails with EMSGSIZE and it
    // hands the datagram back. The Send it belonged to completes with an
    // error, and A's QP enters Error (its receive flushed), at once: the
    // consumer is told, nothing waits on retries of a packet that cannot
    // leave.
    let mut pair = Pair::new();
    pair.connect();
    pair.a.post_receives(1);
    let st = pair.a.p.post_send(
        pair.a.qp,
        9,
        &[NdkSge {
            address: VA + 0x8000,
            length: 3000,
            token: pair.a.token,
        }],
        roce::rc::SendOp::Send,
        0,
    );
    assert_eq!(st, STATUS_SUCCESS);
    let t = pair
        .a
        .p
        .poll_transmit(pair.now, &mut pair.buf)
        .expect("A's first Send packet");
    let payload = t.udp_payload(&pair.buf).to_vec();
    assert!(payload.len() > 1000, "a data packet ({} B)", payload.len());
    pair.a.p.handle_refused(pair.now, B_IP, &payload);
    pair.a.drain();
    let results = pair.a.results();
    let send: Vec<_> = results.iter().filter(|c| c.request_context == 9).collect();
    assert_eq!(send.len(), 1, "{results:?}");
    assert_eq!(send[0].status, STATUS_DATA_OVERRUN, "a local length error");
    assert!(
        results
            .iter()
            .any(|c| c.request_context == 100 && c.status == STATUS_CANCELLED),
        "the receive flushed: {results:?}"
    );
    // A datagram to a peer no QP of ours is connected to changes nothing.
    let mut other = Pair::new();
    other.connect();
    other.a.post_receives(1);
    other
        .a
        .p
        .handle_refused(other.now, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 9)), &payload);
    other.a.drain();
    assert!(other.a.results().is_empty());
    // The same datagram for the QP it names fails it (the receive flushed).
    other.a.p.handle_refused(other.now, B_IP, &payload);
    other.a.drain();
    assert_eq!(other.a.results().len(), 1);
}
