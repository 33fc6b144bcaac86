//! NdkDisconnect reports STATUS_IO_TIMEOUT only when the peer is really
//! gone (docs/disconnect.md). Two providers joined by an in-process wire
//! that can drop chosen CM MADs or silence one side; one test per case of
//! issue 14, each stating the status and the bound it must meet.

use std::net::SocketAddr;
use std::time::Duration;

use ndk::connector::ConnectorState;
use ndk::provider::NdkSge;
use ndk::upcall::UpcallKind;
use ndkpi::*;
use roce::cm::CmConfig;
use roce::rc::SendOp;

mod support;

use support::*;

/// Sides as these tests build them: MRs open to remote writes.
fn side(seed: u64, cm: CmConfig) -> SideConfig {
    SideConfig {
        cm,
        mr_flags: NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_WRITE,
        ..SideConfig::new(seed)
    }
}

fn pair() -> Pair {
    pair_with(cm_config(), cm_config())
}

fn pair_with(a: CmConfig, b: CmConfig) -> Pair {
    Pair::build(side(0x11, a), side(0x22, b))
}

/// Case 1: the RTU is lost and the active side disconnects at once. The
/// passive CM in REP-sent takes the DREQ as proof that the peer was
/// established (its RTU was lost), answers it, and the passive NdkAccept
/// completes with STATUS_SUCCESS followed by one disconnect event; the
/// active NdkDisconnect succeeds after one round trip.
#[test]
fn lost_rtu_then_disconnect_completes_accept_and_delivers_the_event() {
    let mut p = pair();
    p.listen();
    let ca = p.start_connect(p.a.qp);
    let cbc = p.incoming();
    p.drop_next(true, RTU, 1);
    assert_eq!(p.accept(cbc, p.b.qp), STATUS_PENDING);
    assert_eq!(
        p.a.p.complete_connect(ca, cb(EVENT, 1), false),
        STATUS_SUCCESS
    );
    p.pump();
    assert!(p.b.done(2).is_empty(), "the RTU was dropped");
    let start = p.now;
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    // Well before B's first REP retransmission (4 s).
    assert!(p.run_for(Duration::from_secs(1), |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert!(p.now - start < Duration::from_secs(1));
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
    assert_eq!(p.a.events(), 0);
    // The accept's completion comes before the disconnect event.
    let order: Vec<usize> =
        p.b.upcalls
            .iter()
            .filter_map(|u| match u.kind {
                UpcallKind::Request { .. } => Some(0),
                UpcallKind::DisconnectEvent { .. } => Some(1),
                _ => None,
            })
            .collect();
    assert_eq!(order, [0, 1]);
    assert_eq!(
        p.b.p.connector(cbc).unwrap().state(),
        ConnectorState::PeerDisconnected
    );
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    // Nothing more happens later: no timeout, no second event.
    p.run_for(Duration::from_secs(120), |_| false);
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
}

/// Case 1, closing the connector instead of NdkDisconnect: the DREQ the
/// close sends also completes the passive accept at once.
#[test]
fn lost_rtu_then_active_close_completes_accept_and_delivers_the_event() {
    let mut p = pair();
    p.listen();
    let ca = p.start_connect(p.a.qp);
    let cbc = p.incoming();
    p.drop_next(true, RTU, 1);
    assert_eq!(p.accept(cbc, p.b.qp), STATUS_PENDING);
    assert_eq!(
        p.a.p.complete_connect(ca, cb(EVENT, 1), false),
        STATUS_SUCCESS
    );
    p.pump();
    let st = p.a.p.close(ca, cb(CLOSE, 1));
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING);
    assert!(p.run_for(Duration::from_secs(1), |p| !p.b.done(2).is_empty()));
    assert_eq!(p.b.done(2), [STATUS_SUCCESS]);
    assert_eq!(p.b.events(), 1);
}

/// Case 2: the DREP is lost and the passive consumer keeps its connector
/// open past time-wait; the retried DREQ finds the record closed and is
/// still answered, so the active disconnect succeeds on its first retry.
#[test]
fn lost_drep_is_answered_again_after_time_wait() {
    let mut p = pair();
    let (ca, cbc) = p.connect();
    p.drop_next(false, DREP, 1);
    let start = p.now;
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    let cm = cm_config();
    let per_try = cm.active_timeout(cm.cm_response_timeout);
    // B's record leaves time-wait (2 s) before A's first retry (6.1 s).
    assert!(cm.timewait(cm.local_ack_timeout()) < per_try);
    assert!(p.run_for(per_try * 2, |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert!(p.now - start <= per_try + Duration::from_millis(10));
    assert_eq!(p.b.events(), 1);
    assert!(p.b.p.connector(cbc).is_some());
}

/// Case 3: a remote access error (NdkWrite with a bad token) fails the
/// request and the QPs, but the peer is alive: no disconnect event on
/// either side, and NdkDisconnect does the handshake and succeeds.
#[test]
fn remote_access_error_is_not_a_dead_peer() {
    let mut p = pair();
    let (ca, cbc) = p.connect();
    let st = p.a.p.post_send(
        p.a.qp,
        77,
        &[NdkSge {
            address: VA,
            length: 64,
            token: p.a.token,
        }],
        SendOp::Write {
            remote_addr: VA,
            rkey: p.b.token ^ 0x5A5A_0000,
        },
        0,
    );
    assert_eq!(st, STATUS_SUCCESS);
    p.pump();
    p.run_for(Duration::from_secs(1), |_| false);
    let r = p.a.results();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, STATUS_REMOTE_RESOURCES);
    assert_eq!(p.a.events(), 0, "A: no disconnect event for a live peer");
    assert_eq!(p.b.events(), 0, "B: no disconnect event for a live peer");
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    assert!(p.run_for(Duration::from_secs(1), |p| !p.a.done(3).is_empty()));
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    // B learns of A's disconnect (the peer did disconnect) exactly once.
    assert_eq!(p.b.events(), 1);
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    assert_eq!(p.a.events(), 0);
}

/// Case 4: the passive side's disconnect bound is its own, whatever the
/// requester advertised: a REQ with LocalCMResponseTimeout 31 (2^23 ms per
/// try) does not stretch B's NdkDisconnect beyond B's configured bound.
#[test]
fn passive_disconnect_bound_is_ours_not_the_peers() {
    let slow = CmConfig {
        cm_response_timeout: 31,
        ..cm_config()
    };
    let mut p = pair_with(slow, cm_config());
    let (_, cbc) = p.connect();
    p.a.dead = true;
    let start = p.now;
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_PENDING);
    let b_cm = cm_config();
    let bound = b_cm.passive_disconnect_bound();
    assert!(bound <= b_cm.active_disconnect_bound());
    assert!(p.run_for(bound + Duration::from_secs(1), |p| !p.b.done(4).is_empty()));
    assert_eq!(p.b.done(4), [STATUS_IO_TIMEOUT]);
    assert_eq!(p.now - start, bound);
}

/// Case 5: a QP that was connected and disconnected is in the error state;
/// NdkConnect and NdkAccept refuse it with STATUS_INVALID_DEVICE_STATE
/// instead of binding it to a connection that could never carry data.
#[test]
fn disconnected_qp_is_refused_by_connect_and_accept() {
    let mut p = pair();
    let (ca, cbc) = p.connect();
    assert_eq!(p.a.p.disconnect(ca, cb(DONE, 3)), STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.done(3), [STATUS_SUCCESS]);
    assert_eq!(p.b.p.disconnect(cbc, cb(DONE, 4)), STATUS_SUCCESS);
    for (side, c) in [(&mut p.a, ca), (&mut p.b, cbc)] {
        let st = side.p.close(c, cb(CLOSE, 1));
        assert!(st == STATUS_SUCCESS || st == STATUS_PENDING);
    }
    p.pump();
    // Active: the old QP is refused inline, and nothing goes on the wire.
    let c2 = p.a.p.create_connector();
    let st = p.a.p.connect(
        c2,
        p.a.qp,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 445),
        2,
        2,
        b"",
        cb(DONE, 5),
    );
    assert_eq!(st, STATUS_INVALID_DEVICE_STATE);
    assert!(p.a.p.poll_transmit(p.now, &mut p.buf).is_none());
    // The connector is still usable with a fresh QP.
    let fresh =
        p.a.p
            .create_qp(p.a.pd, p.a.cq, p.a.cq, 0x9, 16, 16, 2, 2, 0)
            .unwrap();
    let st = p.a.p.connect(
        c2,
        fresh,
        SocketAddr::new(A_IP, 0),
        SocketAddr::new(B_IP, 445),
        2,
        2,
        b"",
        cb(DONE, 5),
    );
    assert_eq!(st, STATUS_PENDING);
    p.pump();
    // Passive: the old QP is refused; the request stays open for another.
    let incoming = p.incoming();
    assert_ne!(incoming, cbc);
    let st = p.b.p.accept(
        incoming,
        p.b.qp,
        2,
        2,
        b"",
        cb(EVENT, 2),
        false,
        cb(DONE, 6),
    );
    assert_eq!(st, STATUS_INVALID_DEVICE_STATE);
    let fresh_b =
        p.b.p
            .create_qp(p.b.pd, p.b.cq, p.b.cq, 0x9, 16, 16, 2, 2, 0)
            .unwrap();
    let st = p.b.p.accept(
        incoming,
        fresh_b,
        2,
        2,
        b"",
        cb(EVENT, 2),
        false,
        cb(DONE, 6),
    );
    assert_eq!(st, STATUS_PENDING);
    p.pump();
    assert_eq!(p.a.done(5), [STATUS_SUCCESS]);
}
