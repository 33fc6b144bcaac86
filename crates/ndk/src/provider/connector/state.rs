//! The NDK connector state machine: NdkConnect, NdkCompleteConnect,
//! NdkAccept, NdkReject and NdkDisconnect over the CM's events
//! (docs/disconnect.md and the NDKPI listeners, connectors and endpoints page; the CM's own machine is `roce::cm`).
//!
//! Pure, like the CM machine below it: [`ConnectorState::on`] takes an
//! [`Input`] (a consumer call, a CM event, a transport failure of the QP)
//! and returns the next state and the [`Actions`] the provider carries out:
//! the call's inline status, a pending request to complete and with what,
//! the consumer's disconnect event, a flush of the QP, and what to ask of
//! the CM. The provider runs the actions in that order, under its lock, and
//! makes the upcalls after releasing it.
//!
//! Decisions on what the documentation leaves open (docs/disconnect.md
//! D11, project decisions where the NDKPI pages are silent), each tested below:
//! * NdkDisconnect before the connection is established (never connected,
//!   still connecting, or refused) fails inline with
//!   STATUS_CONNECTION_INVALID; so does a second NdkDisconnect.
//! * NdkDisconnect after the peer disconnected (its DREQ was answered and
//!   the disconnect event delivered) flushes and succeeds inline: there is
//!   nothing left to exchange.
//! * NdkDisconnect after the connection failed at the transport level (RC
//!   retries or RNR retries exhausted, the peer gone) flushes and fails
//!   inline with STATUS_IO_TIMEOUT: the outcome is already known. A DREQ is
//!   still sent in the background so a peer that comes back learns of it.
//! * A transport failure of an established connection delivers the
//!   disconnect event (at most once per connection, like a peer's DREQ):
//!   the connection is gone and a consumer with nothing posted would
//!   otherwise not learn it. Any other QP error (remote access, local
//!   protection, ...) proves the peer alive: the connection stays up, no
//!   event fires, and NdkDisconnect does the handshake.
//! * A peer disconnect while NdkAccept is pending (the RTU was lost and the
//!   DREQ came first) completes the accept with STATUS_SUCCESS, then
//!   delivers the disconnect event.
//!
//! Every status and bound, with its sources: docs/disconnect.md.
//! * The implicit flush always happens before the disconnect's completion,
//!   also after a timeout (D6), so a consumer draining its CQs when the
//!   completion arrives sees every cancelled request.
//! * Crossed DREQs complete the local disconnect with STATUS_SUCCESS and
//!   deliver no disconnect event.

use ndkpi::{
    NTSTATUS, STATUS_CANCELLED, STATUS_CONNECTION_ABORTED, STATUS_CONNECTION_INVALID,
    STATUS_CONNECTION_REFUSED, STATUS_IO_TIMEOUT, STATUS_PENDING, STATUS_SUCCESS,
};

/// How a connection that never became established ended, or how an
/// established one broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The peer refused (REJ) before establishment.
    Refused,
    /// The peer abandoned a connection being set up (REJ after our REP, or
    /// its REJ of our reply).
    Aborted,
    /// Establishment timed out (REQ or REP retries exhausted).
    TimedOut,
    /// The local consumer rejected.
    Rejected,
    /// An established connection failed at the transport level (retry or
    /// RNR retry exhausted): a disconnect now fails inline with IO_TIMEOUT.
    Transport,
}

/// The states of one NDK connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorState {
    /// Created by NdkCreateConnector; nothing asked yet.
    Idle,
    /// NdkConnect pending: REQ sent, waiting for the peer's answer.
    Connecting,
    /// NdkConnect completed with success: waiting for NdkCompleteConnect
    /// or NdkReject.
    Replied,
    /// Delivered by a listener's connect event: waiting for NdkAccept or
    /// NdkReject.
    Incoming,
    /// NdkAccept pending: REP sent, waiting for the peer's RTU.
    Accepting,
    /// Established; data may flow.
    Connected,
    /// The peer disconnected (or the transport failed, see `Failed`); the
    /// disconnect event was delivered; NdkDisconnect will flush.
    PeerDisconnected,
    /// NdkDisconnect pending: DREQ sent, waiting for DREP.
    Disconnecting,
    /// Disconnected and flushed; the connector is done.
    Disconnected,
    /// The connection failed; `flushed` once NdkDisconnect (or close) ran
    /// the flush.
    Failed { why: Failure, flushed: bool },
}

/// Inputs to the connector state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// NdkConnect or NdkConnectWithSharedEndpoint (its arguments already
    /// validated).
    Connect,
    /// NdkCompleteConnect(Ex).
    CompleteConnect,
    /// NdkAccept(Ex).
    Accept,
    /// NdkReject.
    Reject,
    /// NdkDisconnect.
    Disconnect,
    /// NdkCloseConnector: the consumer is done with the connector.
    Close,
    /// CM: the peer accepted (REP).
    CmReplied,
    /// CM: the peer completed the connection (RTU or first data).
    CmEstablished,
    /// CM: the peer rejected or abandoned the connection.
    CmRejected,
    /// CM: establishment timed out.
    CmTimedOut,
    /// CM: the peer disconnected (its DREQ was answered).
    CmPeerDisconnected,
    /// CM: our disconnect finished; `timed_out` if the peer never answered.
    CmDisconnected { timed_out: bool },
    /// The QP entered the error state on its own; `peer_gone` when its
    /// transport or RNR retries ran out (the peer is unreachable), not for
    /// any other error (remote access, local protection, ...), after which
    /// the CM connection is still up.
    QpFatal { peer_gone: bool },
}

/// Which pending consumer request a completion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pending {
    Connect,
    Accept,
    Disconnect,
}

/// What the CM must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmAction {
    /// Send the REQ (NdkConnect).
    Connect,
    /// Send the REP (NdkAccept).
    Accept,
    /// Send a REJ with the consumer's private data.
    Reject,
    /// Send the RTU.
    CompleteConnect,
    /// Start the DREQ/DREP exchange.
    Disconnect,
    /// Abandon the connection being set up (REJ).
    Abort,
}

/// What the QP must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QpAction {
    /// Active side, on the REP: move to RTR then RTS with the connection's
    /// attributes (before the RTU goes out).
    Ready,
    /// Passive side, on NdkAccept: move to RTR (before the REP goes out),
    /// so the first packet from the peer can stand in for a lost RTU (IBA
    /// communication established).
    ReadyToReceive,
    /// Passive side, once established: move to RTS.
    ReadyToSend,
    /// Move to the error state: every outstanding request completes with
    /// STATUS_CANCELLED (the implicit flush).
    Flush,
}

/// Everything one transition asks of the provider, in the order to do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Actions {
    /// The status the consumer call returns (`None` for events).
    pub returns: Option<NTSTATUS>,
    /// Work on the QP, done before the completion below.
    pub qp: Option<QpAction>,
    /// Work for the CM.
    pub cm: Option<CmAction>,
    /// A pending request completes with this status (after the QP work, so
    /// a flush's CQ entries are queued before the completion runs).
    pub complete: Option<(Pending, NTSTATUS)>,
    /// Call the consumer's disconnect event callback.
    pub disconnect_event: bool,
}

impl Actions {
    const NONE: Actions = Actions {
        returns: None,
        qp: None,
        cm: None,
        complete: None,
        disconnect_event: false,
    };

    const fn returns(status: NTSTATUS) -> Actions {
        Actions {
            returns: Some(status),
            ..Actions::NONE
        }
    }
}

impl ConnectorState {
    /// Whether the connector's QP may carry initiator requests.
    pub const fn is_connected(&self) -> bool {
        matches!(self, ConnectorState::Connected)
    }

    /// Whether a consumer request is pending on the connector (a close then
    /// waits for its completion).
    pub const fn pending(&self) -> Option<Pending> {
        match self {
            ConnectorState::Connecting => Some(Pending::Connect),
            ConnectorState::Accepting => Some(Pending::Accept),
            ConnectorState::Disconnecting => Some(Pending::Disconnect),
            _ => None,
        }
    }

    /// The transition function. Consumer calls in the wrong state return a
    /// failure status and change nothing; events that do not apply are
    /// ignored.
    pub fn on(self, input: Input) -> (ConnectorState, Actions) {
        use ConnectorState as S;
        use Input as I;
        let invalid = |s| (s, Actions::returns(STATUS_CONNECTION_INVALID));
        let fail_pending = |pending, status, why| {
            (
                S::Failed {
                    why,
                    flushed: false,
                },
                Actions {
                    complete: Some((pending, status)),
                    ..Actions::NONE
                },
            )
        };
        match (self, input) {
            // Active side.
            (S::Idle, I::Connect) => (
                S::Connecting,
                Actions {
                    returns: Some(STATUS_PENDING),
                    cm: Some(CmAction::Connect),
                    ..Actions::NONE
                },
            ),
            (S::Connecting, I::CmReplied) => (
                S::Replied,
                Actions {
                    qp: Some(QpAction::Ready),
                    complete: Some((Pending::Connect, STATUS_SUCCESS)),
                    ..Actions::NONE
                },
            ),
            (S::Connecting, I::CmRejected) => fail_pending(
                Pending::Connect,
                STATUS_CONNECTION_REFUSED,
                Failure::Refused,
            ),
            (S::Connecting, I::CmTimedOut) => {
                fail_pending(Pending::Connect, STATUS_IO_TIMEOUT, Failure::TimedOut)
            }
            // Closing the connector cancels the connect (the close then
            // completes after this completion has returned).
            (S::Connecting, I::Close) => (
                S::Failed {
                    why: Failure::Aborted,
                    flushed: false,
                },
                Actions {
                    cm: Some(CmAction::Abort),
                    complete: Some((Pending::Connect, STATUS_CANCELLED)),
                    ..Actions::NONE
                },
            ),
            (S::Replied, I::CompleteConnect) => (
                S::Connected,
                Actions {
                    returns: Some(STATUS_SUCCESS),
                    cm: Some(CmAction::CompleteConnect),
                    ..Actions::NONE
                },
            ),
            (S::Replied, I::Reject) => (
                S::Failed {
                    why: Failure::Rejected,
                    flushed: false,
                },
                Actions {
                    returns: Some(STATUS_SUCCESS),
                    cm: Some(CmAction::Reject),
                    ..Actions::NONE
                },
            ),
            (S::Replied, I::CmRejected) => (
                S::Failed {
                    why: Failure::Aborted,
                    flushed: false,
                },
                Actions::NONE,
            ),
            (S::Replied, I::Close) => (
                S::Failed {
                    why: Failure::Aborted,
                    flushed: false,
                },
                Actions {
                    cm: Some(CmAction::Abort),
                    ..Actions::NONE
                },
            ),
            // The peer gave up before the consumer completed (or accepted):
            // NdkCompleteConnect / NdkAccept / NdkReject report it.
            (
                S::Failed {
                    why: Failure::Aborted,
                    ..
                },
                I::CompleteConnect | I::Accept | I::Reject,
            ) => (self, Actions::returns(STATUS_CONNECTION_ABORTED)),

            // Passive side.
            (S::Incoming, I::Accept) => (
                S::Accepting,
                Actions {
                    returns: Some(STATUS_PENDING),
                    qp: Some(QpAction::ReadyToReceive),
                    cm: Some(CmAction::Accept),
                    ..Actions::NONE
                },
            ),
            (S::Incoming, I::Reject) => (
                S::Failed {
                    why: Failure::Rejected,
                    flushed: false,
                },
                Actions {
                    returns: Some(STATUS_SUCCESS),
                    cm: Some(CmAction::Reject),
                    ..Actions::NONE
                },
            ),
            (S::Incoming, I::CmRejected) => (
                S::Failed {
                    why: Failure::Aborted,
                    flushed: false,
                },
                Actions::NONE,
            ),
            (S::Incoming, I::Close) => (
                S::Failed {
                    why: Failure::Rejected,
                    flushed: false,
                },
                Actions {
                    cm: Some(CmAction::Reject),
                    ..Actions::NONE
                },
            ),
            (S::Accepting, I::CmEstablished) => (
                S::Connected,
                Actions {
                    qp: Some(QpAction::ReadyToSend),
                    complete: Some((Pending::Accept, STATUS_SUCCESS)),
                    ..Actions::NONE
                },
            ),
            (S::Accepting, I::CmRejected) => {
                fail_pending(Pending::Accept, STATUS_CONNECTION_ABORTED, Failure::Aborted)
            }
            (S::Accepting, I::CmTimedOut) => {
                fail_pending(Pending::Accept, STATUS_IO_TIMEOUT, Failure::TimedOut)
            }
            // The peer's DREQ reached us before its RTU (lost): the peer
            // was established, so the accept succeeded, and the peer has
            // since disconnected. Complete the accept, then deliver the
            // disconnect event, as if RTU and DREQ had both arrived.
            (S::Accepting, I::CmPeerDisconnected) => (
                S::PeerDisconnected,
                Actions {
                    complete: Some((Pending::Accept, STATUS_SUCCESS)),
                    disconnect_event: true,
                    ..Actions::NONE
                },
            ),
            (S::Accepting, I::Close) => (
                S::Failed {
                    why: Failure::Aborted,
                    flushed: true,
                },
                Actions {
                    qp: Some(QpAction::Flush),
                    cm: Some(CmAction::Abort),
                    complete: Some((Pending::Accept, STATUS_CANCELLED)),
                    ..Actions::NONE
                },
            ),

            // Established.
            (S::Connected, I::Disconnect) => (
                S::Disconnecting,
                Actions {
                    returns: Some(STATUS_PENDING),
                    cm: Some(CmAction::Disconnect),
                    ..Actions::NONE
                },
            ),
            // D7: the peer disconnected: tell the consumer once; no flush.
            (S::Connected, I::CmPeerDisconnected) => (
                S::PeerDisconnected,
                Actions {
                    disconnect_event: true,
                    ..Actions::NONE
                },
            ),
            (S::Connected, I::QpFatal { peer_gone: true }) => (
                S::Failed {
                    why: Failure::Transport,
                    flushed: false,
                },
                Actions {
                    disconnect_event: true,
                    ..Actions::NONE
                },
            ),
            // Closing an established connector without a disconnect: tear
            // the connection down in the background and flush now.
            (S::Connected | S::PeerDisconnected, I::Close) => (
                S::Disconnected,
                Actions {
                    qp: Some(QpAction::Flush),
                    cm: matches!(self, S::Connected).then_some(CmAction::Disconnect),
                    ..Actions::NONE
                },
            ),

            // After the peer disconnected: the consumer's disconnect only
            // flushes, and succeeds at once.
            (S::PeerDisconnected, I::Disconnect) => (
                S::Disconnected,
                Actions {
                    returns: Some(STATUS_SUCCESS),
                    qp: Some(QpAction::Flush),
                    ..Actions::NONE
                },
            ),

            // Local disconnect in progress: flush, then complete.
            (S::Disconnecting, I::CmDisconnected { timed_out }) => (
                S::Disconnected,
                Actions {
                    qp: Some(QpAction::Flush),
                    complete: Some((
                        Pending::Disconnect,
                        if timed_out {
                            STATUS_IO_TIMEOUT
                        } else {
                            STATUS_SUCCESS
                        },
                    )),
                    ..Actions::NONE
                },
            ),

            // A failed connection: the first disconnect (or close) flushes;
            // after a transport failure the disconnect reports the known
            // outcome inline.
            (
                S::Failed {
                    why: Failure::Transport,
                    flushed: false,
                },
                I::Disconnect,
            ) => (
                S::Failed {
                    why: Failure::Transport,
                    flushed: true,
                },
                Actions {
                    returns: Some(STATUS_IO_TIMEOUT),
                    qp: Some(QpAction::Flush),
                    cm: Some(CmAction::Disconnect),
                    ..Actions::NONE
                },
            ),
            (
                S::Failed {
                    why,
                    flushed: false,
                },
                I::Close,
            ) if why == Failure::Transport => (
                S::Failed { why, flushed: true },
                Actions {
                    qp: Some(QpAction::Flush),
                    cm: Some(CmAction::Disconnect),
                    ..Actions::NONE
                },
            ),

            // Everything else: consumer calls are invalid here, events are
            // stale.
            (s, I::Connect | I::CompleteConnect | I::Accept | I::Reject | I::Disconnect) => {
                invalid(s)
            }
            (s, _) => (s, Actions::NONE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectorState as S;

    fn run(mut s: S, inputs: &[Input]) -> (S, alloc::vec::Vec<Actions>) {
        let mut out = alloc::vec::Vec::new();
        for &i in inputs {
            let (next, a) = s.on(i);
            s = next;
            out.push(a);
        }
        (s, out)
    }

    #[test]
    fn active_connect_and_disconnect() {
        let (s, a) = run(
            S::Idle,
            &[
                Input::Connect,
                Input::CmReplied,
                Input::CompleteConnect,
                Input::Disconnect,
                Input::CmDisconnected { timed_out: false },
            ],
        );
        assert_eq!(s, S::Disconnected);
        assert_eq!(a[0].returns, Some(STATUS_PENDING));
        assert_eq!(a[1].qp, Some(QpAction::Ready));
        assert_eq!(a[1].complete, Some((Pending::Connect, STATUS_SUCCESS)));
        assert_eq!(a[2].returns, Some(STATUS_SUCCESS));
        assert_eq!(a[2].cm, Some(CmAction::CompleteConnect));
        assert_eq!(a[3].returns, Some(STATUS_PENDING));
        assert_eq!(a[3].cm, Some(CmAction::Disconnect));
        // D6: flush, then the completion.
        assert_eq!(a[4].qp, Some(QpAction::Flush));
        assert_eq!(a[4].complete, Some((Pending::Disconnect, STATUS_SUCCESS)));
        assert!(!a.iter().any(|x| x.disconnect_event));
    }

    #[test]
    fn disconnect_timeout_completes_async_with_io_timeout_after_flushing() {
        let (s, a) = run(
            S::Connected,
            &[Input::Disconnect, Input::CmDisconnected { timed_out: true }],
        );
        assert_eq!(s, S::Disconnected);
        assert_eq!(a[1].qp, Some(QpAction::Flush));
        assert_eq!(
            a[1].complete,
            Some((Pending::Disconnect, STATUS_IO_TIMEOUT))
        );
    }

    #[test]
    fn transport_failure_then_disconnect_fails_inline_with_io_timeout() {
        let (s, a) = run(
            S::Connected,
            &[
                Input::QpFatal { peer_gone: true },
                Input::Disconnect,
                Input::Disconnect,
            ],
        );
        assert_eq!(
            s,
            S::Failed {
                why: Failure::Transport,
                flushed: true
            }
        );
        assert!(a[0].disconnect_event);
        assert_eq!(a[1].returns, Some(STATUS_IO_TIMEOUT));
        assert_eq!(a[1].qp, Some(QpAction::Flush));
        assert_eq!(a[1].complete, None);
        // A second disconnect is invalid.
        assert_eq!(a[2].returns, Some(STATUS_CONNECTION_INVALID));
        assert_eq!(a[2].qp, None);
    }

    #[test]
    fn peer_disconnect_event_once_then_local_disconnect_flushes_inline() {
        let (s, a) = run(
            S::Connected,
            &[
                Input::CmPeerDisconnected,
                Input::CmPeerDisconnected,
                Input::QpFatal { peer_gone: true },
                Input::Disconnect,
            ],
        );
        assert_eq!(s, S::Disconnected);
        assert_eq!(a.iter().filter(|x| x.disconnect_event).count(), 1);
        // No flush on a peer disconnect (D7).
        assert_eq!(a[0].qp, None);
        assert_eq!(a[3].returns, Some(STATUS_SUCCESS));
        assert_eq!(a[3].qp, Some(QpAction::Flush));
    }

    #[test]
    fn disconnect_before_connection_is_invalid() {
        for s in [
            S::Idle,
            S::Connecting,
            S::Replied,
            S::Incoming,
            S::Accepting,
        ] {
            let (next, a) = s.on(Input::Disconnect);
            assert_eq!(next, s);
            assert_eq!(a.returns, Some(STATUS_CONNECTION_INVALID), "{s:?}");
            assert_eq!(a.qp, None);
            assert_eq!(a.cm, None);
        }
        let (_, a) = run(
            S::Idle,
            &[Input::Connect, Input::CmRejected, Input::Disconnect],
        );
        assert_eq!(
            a[1].complete,
            Some((Pending::Connect, STATUS_CONNECTION_REFUSED))
        );
        assert_eq!(a[2].returns, Some(STATUS_CONNECTION_INVALID));
    }

    #[test]
    fn second_disconnect_is_invalid() {
        let (_, a) = run(S::Connected, &[Input::Disconnect, Input::Disconnect]);
        assert_eq!(a[1].returns, Some(STATUS_CONNECTION_INVALID));
        let (_, a) = run(
            S::Connected,
            &[
                Input::Disconnect,
                Input::CmDisconnected { timed_out: false },
                Input::Disconnect,
            ],
        );
        assert_eq!(a[2].returns, Some(STATUS_CONNECTION_INVALID));
    }

    #[test]
    fn passive_accept_paths() {
        let (s, a) = run(S::Incoming, &[Input::Accept, Input::CmEstablished]);
        assert_eq!(s, S::Connected);
        assert_eq!(a[0].returns, Some(STATUS_PENDING));
        assert_eq!(a[0].qp, Some(QpAction::ReadyToReceive));
        assert_eq!(a[1].qp, Some(QpAction::ReadyToSend));
        assert_eq!(a[1].complete, Some((Pending::Accept, STATUS_SUCCESS)));
        let (_, a) = run(S::Incoming, &[Input::Accept, Input::CmTimedOut]);
        assert_eq!(a[1].complete, Some((Pending::Accept, STATUS_IO_TIMEOUT)));
        let (_, a) = run(S::Incoming, &[Input::Accept, Input::CmRejected]);
        assert_eq!(
            a[1].complete,
            Some((Pending::Accept, STATUS_CONNECTION_ABORTED))
        );
        // The peer abandoned before the accept: the accept says so inline.
        let (_, a) = run(S::Incoming, &[Input::CmRejected, Input::Accept]);
        assert_eq!(a[1].returns, Some(STATUS_CONNECTION_ABORTED));
        let (_, a) = run(S::Incoming, &[Input::Reject]);
        assert_eq!(a[0].returns, Some(STATUS_SUCCESS));
        assert_eq!(a[0].cm, Some(CmAction::Reject));
    }

    #[test]
    fn peer_disconnect_while_accepting_completes_the_accept_then_the_event() {
        let (s, a) = run(
            S::Incoming,
            &[
                Input::Accept,
                Input::CmPeerDisconnected,
                Input::CmPeerDisconnected,
                Input::Disconnect,
            ],
        );
        assert_eq!(s, S::Disconnected);
        assert_eq!(a[1].complete, Some((Pending::Accept, STATUS_SUCCESS)));
        assert!(a[1].disconnect_event);
        assert!(!a[2].disconnect_event);
        assert_eq!(a[3].returns, Some(STATUS_SUCCESS));
        assert_eq!(a[3].qp, Some(QpAction::Flush));
    }

    #[test]
    fn a_qp_error_with_the_peer_alive_keeps_the_connection() {
        let (s, a) = run(
            S::Connected,
            &[
                Input::QpFatal { peer_gone: false },
                Input::Disconnect,
                Input::CmDisconnected { timed_out: false },
            ],
        );
        assert_eq!(s, S::Disconnected);
        assert!(!a[0].disconnect_event);
        assert_eq!(a[1].returns, Some(STATUS_PENDING));
        assert_eq!(a[1].cm, Some(CmAction::Disconnect));
        assert_eq!(a[2].complete, Some((Pending::Disconnect, STATUS_SUCCESS)));
    }

    #[test]
    fn closing_with_a_pending_request_cancels_it_exactly_once() {
        let (s, a) = run(S::Idle, &[Input::Connect, Input::Close, Input::CmRejected]);
        assert!(matches!(s, S::Failed { .. }));
        assert_eq!(a[1].complete, Some((Pending::Connect, STATUS_CANCELLED)));
        assert_eq!(a[1].cm, Some(CmAction::Abort));
        assert_eq!(a[2].complete, None);
        let (_, a) = run(
            S::Incoming,
            &[Input::Accept, Input::Close, Input::CmEstablished],
        );
        assert_eq!(a[1].complete, Some((Pending::Accept, STATUS_CANCELLED)));
        assert_eq!(a[2].complete, None);
        // A pending disconnect is not cancelled by the close: the close
        // waits for it (the provider checks `pending()`).
        assert_eq!(S::Disconnecting.pending(), Some(Pending::Disconnect));
        let (s, a) = S::Disconnecting.on(Input::Close);
        assert_eq!((s, a), (S::Disconnecting, Actions::NONE));
    }

    #[test]
    fn close_of_an_established_connector_disconnects_and_flushes() {
        let (s, a) = S::Connected.on(Input::Close);
        assert_eq!(s, S::Disconnected);
        assert_eq!(a.qp, Some(QpAction::Flush));
        assert_eq!(a.cm, Some(CmAction::Disconnect));
    }

    #[test]
    fn every_pending_request_completes_exactly_once_on_any_event_sequence() {
        // Exhaustive over all input sequences up to length 6 from every
        // state: a request that was returned PENDING completes exactly once,
        // never twice, and nothing completes that was not pending.
        let inputs = [
            Input::Connect,
            Input::CompleteConnect,
            Input::Accept,
            Input::Reject,
            Input::Disconnect,
            Input::Close,
            Input::CmReplied,
            Input::CmEstablished,
            Input::CmRejected,
            Input::CmTimedOut,
            Input::CmPeerDisconnected,
            Input::CmDisconnected { timed_out: false },
            Input::CmDisconnected { timed_out: true },
            Input::QpFatal { peer_gone: true },
            Input::QpFatal { peer_gone: false },
        ];
        fn walk(s: S, depth: usize, pending: Option<Pending>, events: u8, inputs: &[Input]) {
            assert!(events <= 1, "disconnect event twice");
            assert_eq!(s.pending(), pending, "{s:?}");
            if depth == 0 {
                return;
            }
            for &i in inputs {
                let (next, a) = s.on(i);
                let mut p = pending;
                if let Some((which, _)) = a.complete {
                    assert_eq!(
                        Some(which),
                        p,
                        "{s:?} --{i:?}--> completes {which:?} not pending"
                    );
                    p = None;
                }
                if a.returns == Some(STATUS_PENDING) {
                    assert_eq!(p, None, "second pending request");
                    p = next.pending();
                    assert!(p.is_some());
                }
                walk(
                    next,
                    depth - 1,
                    p,
                    events + u8::from(a.disconnect_event),
                    inputs,
                );
            }
        }
        walk(S::Idle, 6, None, 0, &inputs);
        walk(S::Incoming, 6, None, 0, &inputs);
    }
}
