//! The IB CM state machine of one connection: an enum of states and one
//! transition function (IBA Vol 1 ch. 12 (CM states); Linux drivers/infiniband/core/cm.c; Linux cm.c is the interop reference).
//!
//! Pure: no I/O, no clock, no ids. [`State::on`] takes an [`Input`] (a
//! consumer request, a received message that matched this connection, a
//! timer expiry) and returns the next state with the [`Actions`] the
//! connection manager must carry out: a message to send, what to do with the
//! connection's one timer, and an event for the consumer. The manager owns
//! addresses, ids, message contents and durations; the exhaustive model
//! check in the tests drives this same function.
//!
//! What each state does with every message, the statuses the NDK layer
//! makes of it, the bounds and their sources: docs/disconnect.md.
//!
//! Differences from Linux ib_cm, each a deliberate choice:
//! * A DREQ from the peer is answered at once with a DREP (Linux waits for
//!   its consumer to call rdma_disconnect). NDK has no call that could delay
//!   it: the consumer learns of the disconnect through its disconnect event,
//!   and its later NdkDisconnect only flushes (docs/disconnect.md).
//! * DREQs crossing (both sides disconnect at once): the peer's DREQ is
//!   answered and completes the local disconnect too, since both sides have
//!   now agreed the connection is over; no disconnect event fires for it
//!   (docs/disconnect.md: at most once).
//! * Every DREQ is answered with a DREP, in every state (Linux drops one
//!   for a record in IDLE).
//! * A duplicate REQ in REP-sent is answered with the REP, and a REP in
//!   DREQ-sent with the DREQ, at once and without spending a retry, so one
//!   side's retries cannot run out while the other's wait.
//! * An MRA's wait ending resends the REQ / REP while retries last.

/// Why a local request was refused: it is not valid in the current state
/// (the NDK layer turns this into STATUS_CONNECTION_INVALID or similar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidState;

/// Which message an MRA acknowledges (IBA Vol 1 ch. 12 (MRA); Linux include/rdma/ibta_vol1_c12.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MraOf {
    /// The REQ (the passive side needs time to accept).
    Req,
    /// The REP (the active side needs time to send its RTU).
    Rep,
}

/// Why this side sends a REJ (the manager picks the wire reason code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectWhy {
    /// The consumer refused the request or the reply (reason 28), or gave
    /// up on a connection being established.
    Consumer,
    /// The local side stopped waiting for a reply: Linux sends reason 4
    /// (timeout) when a connect in REQ_SENT is abandoned.
    Abandoned,
}

/// Inputs to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// Passive consumer accepts the request (NdkAccept): send REP.
    Accept,
    /// Consumer refuses the request (passive) or the reply (active)
    /// (NdkReject).
    Reject,
    /// Active consumer completes the connection (NdkCompleteConnect): send RTU.
    CompleteConnect,
    /// Consumer starts a graceful disconnect (NdkDisconnect): send DREQ.
    Disconnect,
    /// Consumer abandons a connection that is not established (connector
    /// closed while connecting or before accepting).
    Abort,
    /// A REQ for this connection arrived again (retransmission).
    Req,
    /// An MRA for this connection arrived.
    Mra(MraOf),
    /// A REJ for this connection arrived.
    Rej,
    /// A REP for this connection arrived (first or retransmitted).
    Rep,
    /// An RTU for this connection arrived.
    Rtu,
    /// A DREQ for this connection arrived.
    Dreq,
    /// A DREP for this connection arrived.
    Drep,
    /// The connection's timer expired.
    Timeout,
    /// The QP received a packet from the peer before the RTU (IBA COMM_EST):
    /// the peer is evidently established.
    CommEstablished,
}

/// The connection's single timer: what each state waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// REP after a REQ (active).
    ReqResponse,
    /// RTU after a REP (passive).
    RepResponse,
    /// The peer asked for more time with an MRA.
    MraWait,
    /// DREP after a DREQ.
    DreqResponse,
    /// Time-wait before the ids are released.
    TimeWait,
}

/// What to do with the connection's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Leave it as it is.
    Keep,
    /// Cancel it.
    Stop,
    /// (Re)start it for this purpose.
    Start(TimerKind),
}

/// A message the manager must send for this connection (named so, not
/// `Send`, to leave the marker trait its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outgoing {
    /// ConnectRequest.
    Req,
    /// ConnectReply.
    Rep,
    /// ReadyToUse.
    Rtu,
    /// MessageReceiptAcknowledgement of the given message.
    Mra(MraOf),
    /// ConnectReject, for the given reason.
    Rej(RejectWhy),
    /// DisconnectRequest.
    Dreq,
    /// DisconnectReply.
    Drep,
}

/// What the consumer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Active: the peer accepted (REP): NdkConnect completes with success.
    Replied,
    /// Passive: the peer completed the connection (RTU or first data):
    /// NdkAccept completes with success.
    Established,
    /// The peer rejected or abandoned the connection before it was
    /// established.
    Rejected,
    /// Establishment timed out (REQ or REP retries exhausted, or an MRA
    /// wait ran out).
    EstablishTimedOut,
    /// The peer disconnected an established connection (its DREQ, or a REJ
    /// after establishment).
    PeerDisconnected,
    /// A local disconnect finished: the peer answered, or (`timed_out`) it
    /// never did.
    Disconnected {
        /// The DREQ's retries ran out with no DREP (IBA Vol 1 ch. 12: the
        /// side moves to time-wait all the same).
        timed_out: bool,
    },
    /// Time-wait is over; the connection's ids can be reused.
    Released,
}

/// Everything one transition asks of the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Actions {
    /// The message to send, if any.
    pub send: Option<Outgoing>,
    /// What to do with the connection's one timer.
    pub timer: Timer,
    /// What to tell the consumer, if anything.
    pub event: Option<Event>,
}

impl Actions {
    /// Nothing to do.
    pub const NONE: Actions = Actions {
        send: None,
        timer: Timer::Keep,
        event: None,
    };

    const fn send(send: Outgoing, timer: Timer) -> Actions {
        Actions {
            send: Some(send),
            timer,
            event: None,
        }
    }

    const fn event(event: Event, timer: Timer) -> Actions {
        Actions {
            send: None,
            timer,
            event: Some(event),
        }
    }
}

/// Retry budgets, taken from the configuration and the REQ (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retries {
    /// REP retransmissions after the first (passive; REQ's Max CM Retries).
    pub rep: u8,
    /// DREQ retransmissions after the first.
    pub dreq: u8,
}

/// The states of one connection (IBA Vol 1 ch. 12 (CM states); Linux drivers/infiniband/core/cm.c, with ib_cm's names in the
/// docs). `retries` counts the retransmissions still allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Active, REQ_SENT: waiting for REP.
    ReqSent {
        /// REQ retransmissions still allowed.
        retries: u8,
    },
    /// Active, MRA_REQ_RCVD: the peer asked for time; when it runs out the
    /// REQ is sent again while `retries` last (Linux extends the REQ MAD's
    /// timeout on an MRA and keeps retrying, cm.c cm_mra_handler).
    MraReqRcvd {
        /// REQ retransmissions still allowed.
        retries: u8,
    },
    /// Active, REP_RCVD / MRA_REP_SENT: waiting for the local consumer to
    /// complete or reject; `mra_sent` once a duplicate REP was answered
    /// with an MRA.
    RepRcvd {
        /// A duplicate REP was answered with an MRA.
        mra_sent: bool,
    },
    /// Passive, REQ_RCVD / MRA_REQ_SENT: waiting for the local consumer to
    /// accept or reject.
    ReqRcvd {
        /// A duplicate REQ was answered with an MRA.
        mra_sent: bool,
    },
    /// Passive, REP_SENT: waiting for RTU.
    RepSent {
        /// REP retransmissions still allowed.
        retries: u8,
    },
    /// Passive, MRA_REP_RCVD: the peer asked for time before its RTU; when
    /// it runs out the REP is sent again while `retries` last.
    MraRepRcvd {
        /// REP retransmissions still allowed.
        retries: u8,
    },
    /// ESTABLISHED.
    Established,
    /// DREQ_SENT: waiting for DREP.
    DreqSent {
        /// DREQ retransmissions still allowed.
        retries: u8,
    },
    /// TIMEWAIT: disconnected; late DREQs are answered until the ids are
    /// released.
    TimeWait,
    /// The connection is over (never established, or released).
    Closed,
}

impl State {
    /// The state of a new active connection, whose REQ the manager sends
    /// with a [`TimerKind::ReqResponse`] timer.
    pub const fn connecting(max_cm_retries: u8) -> State {
        State::ReqSent {
            retries: max_cm_retries,
        }
    }

    /// The state of a new passive connection, created for a REQ that matched
    /// a listener.
    pub const fn requested() -> State {
        State::ReqRcvd { mra_sent: false }
    }

    /// Whether the connection is established (data may flow).
    pub const fn is_established(&self) -> bool {
        matches!(self, State::Established)
    }

    /// Whether the connection is still being set up.
    pub const fn is_connecting(&self) -> bool {
        matches!(
            self,
            State::ReqSent { .. }
                | State::MraReqRcvd { .. }
                | State::RepRcvd { .. }
                | State::ReqRcvd { .. }
                | State::RepSent { .. }
                | State::MraRepRcvd { .. }
        )
    }

    /// The transition function. Received messages that make no sense in
    /// the current state are ignored (`Ok` with no actions), as ib_cm drops
    /// them; local requests that make no sense are refused.
    pub fn on(self, input: Input, retries: Retries) -> Result<(State, Actions), InvalidState> {
        use Input as I;
        use State as S;
        let closed_rej = |why| (S::Closed, Actions::send(Outgoing::Rej(why), Timer::Stop));
        let timewait = |send, event| {
            (
                S::TimeWait,
                Actions {
                    send,
                    timer: Timer::Start(TimerKind::TimeWait),
                    event: Some(event),
                },
            )
        };
        let ignore = |s| Ok((s, Actions::NONE));
        Ok(match (self, input) {
            // Active side, waiting for the reply.
            (S::ReqSent { retries: 0 } | S::MraReqRcvd { retries: 0 }, I::Timeout) => (
                S::Closed,
                Actions::event(Event::EstablishTimedOut, Timer::Stop),
            ),
            (S::ReqSent { retries: r } | S::MraReqRcvd { retries: r }, I::Timeout) => (
                S::ReqSent { retries: r - 1 },
                Actions::send(Outgoing::Req, Timer::Start(TimerKind::ReqResponse)),
            ),
            (S::ReqSent { retries: r } | S::MraReqRcvd { retries: r }, I::Mra(MraOf::Req)) => (
                S::MraReqRcvd { retries: r },
                Actions {
                    send: None,
                    timer: Timer::Start(TimerKind::MraWait),
                    event: None,
                },
            ),
            (S::ReqSent { .. } | S::MraReqRcvd { .. }, I::Rep) => (
                S::RepRcvd { mra_sent: false },
                Actions::event(Event::Replied, Timer::Stop),
            ),
            (S::ReqSent { .. } | S::MraReqRcvd { .. }, I::Rej) => {
                (S::Closed, Actions::event(Event::Rejected, Timer::Stop))
            }
            (S::ReqSent { .. } | S::MraReqRcvd { .. }, I::Abort) => {
                closed_rej(RejectWhy::Abandoned)
            }

            // Active side, reply received, consumer deciding.
            (S::RepRcvd { .. }, I::CompleteConnect) => {
                (S::Established, Actions::send(Outgoing::Rtu, Timer::Stop))
            }
            (S::RepRcvd { .. }, I::Reject | I::Abort) => closed_rej(RejectWhy::Consumer),
            // The peer retransmits its REP while the consumer decides: ask it
            // to wait (ib_cm sends an MRA on a duplicate REP).
            (S::RepRcvd { .. }, I::Rep) => (
                S::RepRcvd { mra_sent: true },
                Actions::send(Outgoing::Mra(MraOf::Rep), Timer::Keep),
            ),
            (S::RepRcvd { .. }, I::Rej) => {
                (S::Closed, Actions::event(Event::Rejected, Timer::Stop))
            }

            // Passive side, consumer deciding.
            (S::ReqRcvd { .. }, I::Accept) => (
                S::RepSent {
                    retries: retries.rep,
                },
                Actions::send(Outgoing::Rep, Timer::Start(TimerKind::RepResponse)),
            ),
            (S::ReqRcvd { .. }, I::Reject | I::Abort) => closed_rej(RejectWhy::Consumer),
            (S::ReqRcvd { .. }, I::Req) => (
                S::ReqRcvd { mra_sent: true },
                Actions::send(Outgoing::Mra(MraOf::Req), Timer::Keep),
            ),
            (S::ReqRcvd { .. }, I::Rej) => {
                (S::Closed, Actions::event(Event::Rejected, Timer::Stop))
            }

            // Passive side, REP sent.
            (S::RepSent { retries: 0 } | S::MraRepRcvd { retries: 0 }, I::Timeout) => (
                S::Closed,
                Actions::event(Event::EstablishTimedOut, Timer::Stop),
            ),
            (S::RepSent { retries: r } | S::MraRepRcvd { retries: r }, I::Timeout) => (
                S::RepSent { retries: r - 1 },
                Actions::send(Outgoing::Rep, Timer::Start(TimerKind::RepResponse)),
            ),
            (S::RepSent { .. } | S::MraRepRcvd { .. }, I::Rtu | I::CommEstablished) => (
                S::Established,
                Actions::event(Event::Established, Timer::Stop),
            ),
            (S::RepSent { retries: r } | S::MraRepRcvd { retries: r }, I::Mra(MraOf::Rep)) => (
                S::MraRepRcvd { retries: r },
                Actions {
                    send: None,
                    timer: Timer::Start(TimerKind::MraWait),
                    event: None,
                },
            ),
            // A REQ retransmitted by a peer that has not seen our REP: send
            // the REP again at once (no retry spent), so the peer's REQ
            // retries cannot run out while ours wait (Linux leaves this to
            // the REP timer; answering is harmless, a duplicate REP is
            // ignored or MRAed).
            (S::RepSent { .. } | S::MraRepRcvd { .. }, I::Req) => {
                (self, Actions::send(Outgoing::Rep, Timer::Keep))
            }
            (S::RepSent { .. } | S::MraRepRcvd { .. }, I::Rej) => {
                (S::Closed, Actions::event(Event::Rejected, Timer::Stop))
            }
            (S::RepSent { .. } | S::MraRepRcvd { .. }, I::Abort) => closed_rej(RejectWhy::Consumer),
            // A DREQ in REP-sent: the peer got our REP, became established
            // and disconnected, and its RTU was lost (a peer sends DREQ only
            // once established). It stands for the RTU and the disconnect
            // both, as Linux cm.c cm_dreq_handler accepts a DREQ in REP_SENT
            // and MRA_REP_RCVD: answer it and report a peer disconnect,
            // which the NDK layer turns into a successful NdkAccept followed
            // by the disconnect event (docs/disconnect.md).
            (S::RepSent { .. } | S::MraRepRcvd { .. }, I::Dreq) => {
                timewait(Some(Outgoing::Drep), Event::PeerDisconnected)
            }

            // Established.
            (S::Established, I::Disconnect) => (
                S::DreqSent {
                    retries: retries.dreq,
                },
                Actions::send(Outgoing::Dreq, Timer::Start(TimerKind::DreqResponse)),
            ),
            (S::Established, I::Dreq) => timewait(Some(Outgoing::Drep), Event::PeerDisconnected),
            (S::Established, I::Rej) => timewait(None, Event::PeerDisconnected),
            // Our RTU was lost and the peer retransmits its REP: resend RTU.
            (S::Established, I::Rep) => (S::Established, Actions::send(Outgoing::Rtu, Timer::Keep)),

            // Local disconnect in progress.
            (S::DreqSent { retries: 0 }, I::Timeout) => {
                timewait(None, Event::Disconnected { timed_out: true })
            }
            (S::DreqSent { retries: r }, I::Timeout) => (
                S::DreqSent { retries: r - 1 },
                Actions::send(Outgoing::Dreq, Timer::Start(TimerKind::DreqResponse)),
            ),
            (S::DreqSent { .. }, I::Drep) => {
                timewait(None, Event::Disconnected { timed_out: false })
            }
            (S::DreqSent { .. }, I::Dreq) => timewait(
                Some(Outgoing::Drep),
                Event::Disconnected { timed_out: false },
            ),
            (S::DreqSent { .. }, I::Rej) => {
                timewait(None, Event::Disconnected { timed_out: false })
            }
            // The peer still retransmits its REP: it missed our RTU and our
            // DREQ. Answer with the DREQ at once (no retry spent); a peer in
            // REP-sent takes it as RTU and disconnect both.
            (S::DreqSent { .. }, I::Rep) => (self, Actions::send(Outgoing::Dreq, Timer::Keep)),

            // Time-wait: keep answering a peer that missed our DREP.
            (S::TimeWait, I::Dreq) => (S::TimeWait, Actions::send(Outgoing::Drep, Timer::Keep)),
            (S::TimeWait, I::Timeout) => (S::Closed, Actions::event(Event::Released, Timer::Stop)),
            // Every other DREQ for a connection we know or knew is answered
            // with a DREP and changes nothing: a peer whose DREP was lost
            // after our time-wait must still finish its disconnect
            // (docs/disconnect.md; Linux answers in TIMEWAIT and for
            // unknown ids, and drops it elsewhere; we answer everywhere).
            (s, I::Dreq) => (s, Actions::send(Outgoing::Drep, Timer::Keep)),

            // Local requests anywhere else are refused.
            (_, I::Accept | I::Reject | I::CompleteConnect | I::Disconnect | I::Abort) => {
                return Err(InvalidState);
            }
            // Anything else received (duplicates, strays, late timers) is
            // dropped, as ib_cm does.
            (s, _) => return ignore(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Retries = Retries { rep: 2, dreq: 1 };

    fn run(mut s: State, inputs: &[Input]) -> (State, [Option<Actions>; 8]) {
        let mut out = [None; 8];
        for (i, &input) in inputs.iter().enumerate() {
            let (next, a) = s.on(input, R).expect("valid");
            s = next;
            out[i] = Some(a);
        }
        (s, out)
    }

    #[test]
    fn active_happy_path() {
        let (s, a) = run(
            State::connecting(3),
            &[
                Input::Rep,
                Input::CompleteConnect,
                Input::Disconnect,
                Input::Drep,
                Input::Timeout,
            ],
        );
        assert_eq!(s, State::Closed);
        assert_eq!(a[0].unwrap().event, Some(Event::Replied));
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Rtu));
        assert_eq!(a[2].unwrap().send, Some(Outgoing::Dreq));
        assert_eq!(a[2].unwrap().timer, Timer::Start(TimerKind::DreqResponse));
        assert_eq!(
            a[3].unwrap().event,
            Some(Event::Disconnected { timed_out: false })
        );
        assert_eq!(a[3].unwrap().timer, Timer::Start(TimerKind::TimeWait));
        assert_eq!(a[4].unwrap().event, Some(Event::Released));
    }

    #[test]
    fn passive_happy_path_and_peer_disconnect() {
        let (s, a) = run(
            State::requested(),
            &[Input::Accept, Input::Rtu, Input::Dreq, Input::Dreq],
        );
        assert_eq!(s, State::TimeWait);
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Rep));
        assert_eq!(a[1].unwrap().event, Some(Event::Established));
        assert_eq!(a[2].unwrap().send, Some(Outgoing::Drep));
        assert_eq!(a[2].unwrap().event, Some(Event::PeerDisconnected));
        // A retransmitted DREQ is answered again, with no second event.
        assert_eq!(a[3].unwrap().send, Some(Outgoing::Drep));
        assert_eq!(a[3].unwrap().event, None);
    }

    #[test]
    fn req_retries_then_timeout() {
        let (s, a) = run(
            State::connecting(2),
            &[Input::Timeout, Input::Timeout, Input::Timeout],
        );
        assert_eq!(s, State::Closed);
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Req));
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Req));
        assert_eq!(a[2].unwrap().event, Some(Event::EstablishTimedOut));
        assert_eq!(a[2].unwrap().send, None);
    }

    #[test]
    fn dreq_retries_then_timeout() {
        let (s, a) = run(
            State::Established,
            &[Input::Disconnect, Input::Timeout, Input::Timeout],
        );
        assert_eq!(s, State::TimeWait);
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Dreq));
        assert_eq!(
            a[2].unwrap().event,
            Some(Event::Disconnected { timed_out: true })
        );
    }

    #[test]
    fn crossed_dreqs_complete_without_a_peer_event() {
        let (s, a) = run(State::Established, &[Input::Disconnect, Input::Dreq]);
        assert_eq!(s, State::TimeWait);
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Drep));
        assert_eq!(
            a[1].unwrap().event,
            Some(Event::Disconnected { timed_out: false })
        );
    }

    #[test]
    fn dreq_before_rtu_answers_and_reports_the_peer_disconnect() {
        for s in [
            State::RepSent { retries: 1 },
            State::MraRepRcvd { retries: 1 },
        ] {
            let (next, a) = s.on(Input::Dreq, R).unwrap();
            assert_eq!(next, State::TimeWait);
            assert_eq!(a.send, Some(Outgoing::Drep));
            assert_eq!(a.event, Some(Event::PeerDisconnected));
            assert_eq!(a.timer, Timer::Start(TimerKind::TimeWait));
        }
    }

    #[test]
    fn an_mra_wait_that_runs_out_retries_while_retries_last() {
        let (s, a) = run(
            State::connecting(1),
            &[Input::Mra(MraOf::Req), Input::Timeout],
        );
        assert_eq!(s, State::ReqSent { retries: 0 });
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Req));
        let (s, a) = run(
            State::RepSent { retries: 0 },
            &[Input::Mra(MraOf::Rep), Input::Timeout],
        );
        assert_eq!(s, State::Closed);
        assert_eq!(a[1].unwrap().event, Some(Event::EstablishTimedOut));
        let (s, _) = run(
            State::RepSent { retries: 2 },
            &[Input::Mra(MraOf::Rep), Input::Timeout],
        );
        assert_eq!(s, State::RepSent { retries: 1 });
    }

    #[test]
    fn a_peer_that_missed_our_answer_gets_it_again_at_once() {
        // A duplicate REQ in REP-sent: the REP again, no retry spent.
        let (s, a) = run(State::RepSent { retries: 2 }, &[Input::Req]);
        assert_eq!(s, State::RepSent { retries: 2 });
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Rep));
        assert_eq!(a[0].unwrap().timer, Timer::Keep);
        // A REP while our DREQ is out: the DREQ again, no retry spent.
        let (s, a) = run(State::DreqSent { retries: 1 }, &[Input::Rep]);
        assert_eq!(s, State::DreqSent { retries: 1 });
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Dreq));
    }

    #[test]
    fn every_dreq_is_answered() {
        let states = [
            State::connecting(1),
            State::MraReqRcvd { retries: 1 },
            State::RepRcvd { mra_sent: false },
            State::requested(),
            State::RepSent { retries: 1 },
            State::MraRepRcvd { retries: 1 },
            State::Established,
            State::DreqSent { retries: 1 },
            State::TimeWait,
            State::Closed,
        ];
        for s in states {
            let (_, a) = s.on(Input::Dreq, R).unwrap();
            assert_eq!(a.send, Some(Outgoing::Drep), "{s:?}");
        }
        // Closed stays closed, with no event.
        let (next, a) = State::Closed.on(Input::Dreq, R).unwrap();
        assert_eq!((next, a.event, a.timer), (State::Closed, None, Timer::Keep));
    }

    #[test]
    fn comm_established_stands_in_for_a_lost_rtu() {
        let (s, a) = run(
            State::requested(),
            &[Input::Accept, Input::CommEstablished, Input::Rtu],
        );
        assert_eq!(s, State::Established);
        assert_eq!(a[1].unwrap().event, Some(Event::Established));
        assert_eq!(a[2].unwrap(), Actions::NONE);
    }

    #[test]
    fn duplicates_get_mra_or_rtu() {
        let (_, a) = run(State::requested(), &[Input::Req, Input::Req]);
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Mra(MraOf::Req)));
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Mra(MraOf::Req)));
        let (_, a) = run(State::connecting(1), &[Input::Rep, Input::Rep]);
        assert_eq!(a[1].unwrap().send, Some(Outgoing::Mra(MraOf::Rep)));
        let (_, a) = run(State::Established, &[Input::Rep]);
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Rtu));
    }

    #[test]
    fn local_requests_out_of_state_are_refused() {
        let r = R;
        assert_eq!(
            State::connecting(1).on(Input::Disconnect, r),
            Err(InvalidState)
        );
        assert_eq!(State::connecting(1).on(Input::Accept, r), Err(InvalidState));
        assert_eq!(
            State::requested().on(Input::CompleteConnect, r),
            Err(InvalidState)
        );
        assert_eq!(State::Established.on(Input::Accept, r), Err(InvalidState));
        assert_eq!(State::Established.on(Input::Abort, r), Err(InvalidState));
        assert_eq!(
            State::DreqSent { retries: 1 }.on(Input::Disconnect, r),
            Err(InvalidState)
        );
        assert_eq!(State::TimeWait.on(Input::Disconnect, r), Err(InvalidState));
        assert_eq!(State::Closed.on(Input::Reject, r), Err(InvalidState));
    }

    #[test]
    fn abandoning_a_connect_sends_a_rej() {
        let (s, a) = run(State::connecting(1), &[Input::Abort]);
        assert_eq!(s, State::Closed);
        assert_eq!(
            a[0].unwrap().send,
            Some(Outgoing::Rej(RejectWhy::Abandoned))
        );
        let (_, a) = run(State::requested(), &[Input::Reject]);
        assert_eq!(a[0].unwrap().send, Some(Outgoing::Rej(RejectWhy::Consumer)));
    }

    #[test]
    fn strays_are_ignored_everywhere() {
        let states = [
            State::connecting(1),
            State::MraReqRcvd { retries: 1 },
            State::RepRcvd { mra_sent: false },
            State::requested(),
            State::RepSent { retries: 1 },
            State::MraRepRcvd { retries: 1 },
            State::Established,
            State::DreqSent { retries: 1 },
            State::TimeWait,
            State::Closed,
        ];
        for s in states {
            // A DREP outside DREQ_SENT, an RTU on the active side and a
            // received REQ duplicate never change an established state.
            for input in [Input::Drep, Input::Rtu, Input::Mra(MraOf::Rep)] {
                let (next, _) = s.on(input, R).expect("received messages are never refused");
                if !matches!(
                    s,
                    State::DreqSent { .. } | State::RepSent { .. } | State::MraRepRcvd { .. }
                ) {
                    assert_eq!(next, s, "{s:?} on {input:?}");
                }
            }
        }
    }
}
