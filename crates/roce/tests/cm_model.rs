//! Exhaustive model check of the two-peer connect / disconnect protocol.
//!
//! The model is two peers whose connections are driven by the real
//! transition function (`roce::cm::State::on`), a network that may lose,
//! duplicate (through retransmission) and reorder any message, both
//! consumers calling accept / reject / complete / disconnect / abort at any
//! point, timers firing at any point, and data reaching the passive QP once
//! the active side is established (IBA communication-established). Every
//! reachable state is explored (breadth first) for small retry budgets, and
//! the invariants the NDK disconnect rules need are checked in each:
//!
//! * each disconnect completes exactly once (a terminal state has one
//!   `Disconnected` per local disconnect, none without one);
//! * the disconnect event fires at most once per connection, and never on
//!   a side whose own disconnect completed;
//! * every connection event fires at most once;
//! * the passive side is established only if the active consumer completed
//!   the connection;
//! * no timer is left running in a terminal state (nothing hangs).
//!
//! A second, fair model proves liveness (docs/disconnect.md): both peers
//! alive and cooperative (the passive consumer accepts, the active one
//! completes, either may disconnect at any point), the network loses,
//! duplicates and reorders a bounded number of messages, and a response
//! timer fires only once the exchange it guards has gone quiet (nothing in
//! flight, no consumer decision pending): a retransmission happens only
//! after a loss, never because the peer is slow. Under those rules every
//! connect and accept completes with success, every started disconnect
//! completes with success (never a timeout), and the side that did not
//! disconnect gets exactly one disconnect event (none when the DREQs
//! cross). Both models record which message arrived in which state; the
//! test checks that DREQ, DREP, REJ, RTU, REP and MRA each reach every
//! state they can reach, duplicates of old ones included.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use stateright::{Checker, Model, Property};

use roce::cm::state::{Event, Input, MraOf, Outgoing, Retries, State, Timer, TimerKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A message in flight, by what the receiver's state machine will see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Msg {
    Req,
    Rep,
    Rtu,
    MraReq,
    MraRep,
    Rej,
    Dreq,
    Drep,
}

impl Msg {
    fn of(send: Outgoing) -> Msg {
        match send {
            Outgoing::Req => Msg::Req,
            Outgoing::Rep => Msg::Rep,
            Outgoing::Rtu => Msg::Rtu,
            Outgoing::Mra(MraOf::Req) => Msg::MraReq,
            Outgoing::Mra(MraOf::Rep) => Msg::MraRep,
            Outgoing::Rej(_) => Msg::Rej,
            Outgoing::Dreq => Msg::Dreq,
            Outgoing::Drep => Msg::Drep,
        }
    }

    fn input(self) -> Input {
        match self {
            Msg::Req => Input::Req,
            Msg::Rep => Input::Rep,
            Msg::Rtu => Input::Rtu,
            Msg::MraReq => Input::Mra(MraOf::Req),
            Msg::MraRep => Input::Mra(MraOf::Rep),
            Msg::Rej => Input::Rej,
            Msg::Dreq => Input::Dreq,
            Msg::Drep => Input::Drep,
        }
    }
}

/// Counts of each event one peer reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Events {
    replied: u8,
    established: u8,
    rejected: u8,
    timed_out: u8,
    peer_disconnected: u8,
    disconnected: u8,
    /// Disconnects that ended with the peer never answering.
    disconnect_timed_out: u8,
    released: u8,
}

/// The state's name without its counters, for the coverage record.
fn state_name(s: Option<State>) -> &'static str {
    match s {
        None => "none",
        Some(State::ReqSent { .. }) => "ReqSent",
        Some(State::MraReqRcvd { .. }) => "MraReqRcvd",
        Some(State::RepRcvd { .. }) => "RepRcvd",
        Some(State::ReqRcvd { .. }) => "ReqRcvd",
        Some(State::RepSent { .. }) => "RepSent",
        Some(State::MraRepRcvd { .. }) => "MraRepRcvd",
        Some(State::Established) => "Established",
        Some(State::DreqSent { .. }) => "DreqSent",
        Some(State::TimeWait) => "TimeWait",
        Some(State::Closed) => "Closed",
    }
}

/// (receiver's state, message) pairs delivered in any explored transition.
static COVERAGE: Mutex<BTreeSet<(&str, Msg)>> = Mutex::new(BTreeSet::new());

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Peer {
    /// `None` until the passive side receives the REQ.
    conn: Option<State>,
    timer: Option<TimerKind>,
    events: Events,
    /// Consumer calls made (each at most once).
    calls: Vec<Input>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Sys {
    a: Peer,
    b: Peer,
    /// Messages in flight, kept sorted so equal states compare equal.
    net: Vec<(Side, Msg)>,
    /// Messages the fair network lost and duplicated so far.
    lost: u8,
    duplicated: u8,
}

impl Sys {
    fn peer(&self, side: Side) -> &Peer {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
    fn peer_mut(&mut self, side: Side) -> &mut Peer {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Call(Side, Input),
    Deliver(usize),
    Drop(usize),
    /// The network delivers a copy of this message as well.
    Duplicate(usize),
    Timeout(Side),
    /// A data packet from the established active side reaches B's QP.
    Data,
}

struct CmModel {
    retries: Retries,
    max_cm_retries: u8,
    max_in_flight: usize,
    /// `Some` for the fair (liveness) model.
    fair: Option<Fairness>,
    /// Transitions cut because the network bound would be exceeded.
    pruned: AtomicU64,
}

/// What the fair network may do over a whole run.
#[derive(Clone, Copy)]
struct Fairness {
    /// Messages lost in total (fewer than any retry budget).
    losses: u8,
    /// Messages duplicated in total.
    duplicates: u8,
}

/// Consumer calls of the fair model: cooperative peers.
const FAIR_CALLS: [(Side, Input); 4] = [
    (Side::A, Input::CompleteConnect),
    (Side::A, Input::Disconnect),
    (Side::B, Input::Accept),
    (Side::B, Input::Disconnect),
];

const CALLS: [(Side, Input); 8] = [
    (Side::A, Input::CompleteConnect),
    (Side::A, Input::Reject),
    (Side::A, Input::Abort),
    (Side::A, Input::Disconnect),
    (Side::B, Input::Accept),
    (Side::B, Input::Reject),
    (Side::B, Input::Abort),
    (Side::B, Input::Disconnect),
];

impl CmModel {
    /// Feeds `input` to `side`'s real state machine and applies the
    /// resulting actions. `None` if the input is refused or the network
    /// bound would be exceeded (the state is then not explored).
    fn step(&self, s: &mut Sys, side: Side, input: Input) -> Option<()> {
        let state = s.peer(side).conn?;
        let (next_state, actions) = state.on(input, self.retries).ok()?;
        let p = s.peer_mut(side);
        p.conn = Some(next_state);
        match actions.timer {
            Timer::Keep => {}
            Timer::Stop => p.timer = None,
            Timer::Start(k) => p.timer = Some(k),
        }
        if let Some(e) = actions.event {
            let ev = &mut p.events;
            match e {
                Event::Replied => ev.replied += 1,
                Event::Established => ev.established += 1,
                Event::Rejected => ev.rejected += 1,
                Event::EstablishTimedOut => ev.timed_out += 1,
                Event::PeerDisconnected => ev.peer_disconnected += 1,
                Event::Disconnected { timed_out } => {
                    ev.disconnected += 1;
                    ev.disconnect_timed_out += u8::from(timed_out);
                }
                Event::Released => ev.released += 1,
            }
        }
        if let Some(send) = actions.send {
            if s.net.len() >= self.max_in_flight {
                self.pruned.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            s.net.push((side.other(), Msg::of(send)));
            s.net.sort();
        }
        Some(())
    }
}

impl Model for CmModel {
    type State = Sys;
    type Action = Action;

    fn init_states(&self) -> Vec<Sys> {
        // The active side has just sent its REQ.
        let a = Peer {
            conn: Some(State::connecting(self.max_cm_retries)),
            timer: Some(TimerKind::ReqResponse),
            events: Events::default(),
            calls: Vec::new(),
        };
        let b = Peer {
            conn: None,
            timer: None,
            events: Events::default(),
            calls: Vec::new(),
        };
        vec![Sys {
            a,
            b,
            net: vec![(Side::B, Msg::Req)],
            lost: 0,
            duplicated: 0,
        }]
    }

    fn actions(&self, s: &Sys, actions: &mut Vec<Action>) {
        let calls: &[(Side, Input)] = match self.fair {
            Some(_) => &FAIR_CALLS,
            None => &CALLS,
        };
        for &(side, input) in calls {
            let p = s.peer(side);
            if p.calls.contains(&input) {
                continue;
            }
            if let Some(state) = p.conn
                && state.on(input, self.retries).is_ok()
            {
                actions.push(Action::Call(side, input));
            }
        }
        for i in 0..s.net.len() {
            actions.push(Action::Deliver(i));
            match self.fair {
                None => actions.push(Action::Drop(i)),
                Some(f) => {
                    if s.lost < f.losses {
                        actions.push(Action::Drop(i));
                    }
                    if s.duplicated < f.duplicates {
                        actions.push(Action::Duplicate(i));
                    }
                }
            }
        }
        for side in [Side::A, Side::B] {
            let Some(kind) = s.peer(side).timer else {
                continue;
            };
            // Fair timing: a response timer runs out only once its
            // exchange went quiet (lost, not slow) and no consumer decision
            // is pending (consumers answer within the MRA service timeout);
            // time-wait is local and may end at any point.
            let quiet = s.net.is_empty() && !self.decision_pending(s);
            if self.fair.is_none() || kind == TimerKind::TimeWait || quiet {
                actions.push(Action::Timeout(side));
            }
        }
        if s.a.conn == Some(State::Established)
            && matches!(
                s.b.conn,
                Some(State::RepSent { .. } | State::MraRepRcvd { .. })
            )
        {
            actions.push(Action::Data);
        }
    }

    fn next_state(&self, last: &Sys, action: Action) -> Option<Sys> {
        let mut s = last.clone();
        match action {
            Action::Call(side, input) => {
                s.peer_mut(side).calls.push(input);
                self.step(&mut s, side, input)?;
            }
            Action::Drop(i) => {
                s.net.remove(i);
                s.lost += 1;
            }
            Action::Duplicate(i) => {
                if s.net.len() >= self.max_in_flight {
                    self.pruned.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let m = s.net[i];
                s.net.push(m);
                s.net.sort();
                s.duplicated += 1;
            }
            Action::Deliver(i) => {
                let (to, msg) = s.net.remove(i);
                if let Ok(mut c) = COVERAGE.lock() {
                    c.insert((state_name(s.peer(to).conn), msg));
                }
                if to == Side::B && s.b.conn.is_none() {
                    // The REQ creates the passive connection.
                    if msg == Msg::Req {
                        s.b.conn = Some(State::requested());
                    }
                } else {
                    // Received messages are never refused.
                    self.step(&mut s, to, msg.input())?;
                }
            }
            Action::Timeout(side) => {
                s.peer_mut(side).timer = None;
                self.step(&mut s, side, Input::Timeout)?;
            }
            Action::Data => {
                self.step(&mut s, Side::B, Input::CommEstablished)?;
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        if self.fair.is_some() {
            return fair_properties();
        }
        vec![
            Property::always("every event at most once", |_, s: &Sys| {
                [&s.a, &s.b].iter().all(|p| {
                    let e = &p.events;
                    [
                        e.replied,
                        e.established,
                        e.rejected,
                        e.timed_out,
                        e.peer_disconnected,
                        e.disconnected,
                        e.released,
                    ]
                    .iter()
                    .all(|&n| n <= 1)
                })
            }),
            Property::always(
                "disconnect event only without a local disconnect",
                |_, s: &Sys| {
                    [&s.a, &s.b].iter().all(|p| {
                        p.events.peer_disconnected + p.events.disconnected <= 1
                            && (p.events.disconnected == 0 || p.calls.contains(&Input::Disconnect))
                    })
                },
            ),
            Property::always(
                "passive established only after the active completed",
                |_, s: &Sys| {
                    s.b.events.established == 0 || s.a.calls.contains(&Input::CompleteConnect)
                },
            ),
            Property::always(
                "terminal: each local disconnect completed once",
                |m: &CmModel, s: &Sys| {
                    let mut next = Vec::new();
                    m.actions(s, &mut next);
                    // Drops alone do not count as progress for this check: a
                    // state whose only moves are delivering or dropping messages
                    // is not terminal.
                    !next.is_empty()
                        || [&s.a, &s.b].iter().all(|p| {
                            let asked = p.calls.contains(&Input::Disconnect);
                            // A disconnect refused by the state machine was never
                            // started, so only started ones must complete.
                            !asked || p.events.disconnected == 1
                        })
                },
            ),
            Property::always("terminal: no timer left running", |m: &CmModel, s: &Sys| {
                let mut next = Vec::new();
                m.actions(s, &mut next);
                !next.is_empty() || (s.a.timer.is_none() && s.b.timer.is_none())
            }),
            Property::sometimes(
                "a connection is established and disconnected",
                |_, s: &Sys| {
                    s.b.events.established == 1
                        && s.a.events.disconnected == 1
                        && s.b.events.peer_disconnected == 1
                },
            ),
            Property::sometimes("crossed DREQs", |_, s: &Sys| {
                s.a.events.disconnected == 1 && s.b.events.disconnected == 1
            }),
            Property::sometimes("a disconnect times out", |_, s: &Sys| {
                s.a.events.disconnected == 1 && s.b.events.peer_disconnected == 0
            }),
        ]
    }
}

impl CmModel {
    /// A consumer decision the protocol waits for: the passive accept or
    /// the active complete.
    fn decision_pending(&self, s: &Sys) -> bool {
        [(Side::A, Input::CompleteConnect), (Side::B, Input::Accept)]
            .iter()
            .any(|&(side, input)| {
                let p = s.peer(side);
                !p.calls.contains(&input)
                    && p.conn.is_some_and(|st| st.on(input, self.retries).is_ok())
            })
    }

    fn terminal(&self, s: &Sys) -> bool {
        let mut next = Vec::new();
        self.actions(s, &mut next);
        next.is_empty()
    }
}

fn fair_properties() -> Vec<Property<CmModel>> {
    vec![
        Property::always("fair: no failure while both peers live", |_, s: &Sys| {
            [&s.a, &s.b].iter().all(|p| {
                let e = &p.events;
                e.rejected == 0 && e.timed_out == 0 && e.disconnect_timed_out == 0
            })
        }),
        Property::always("fair: every event at most once", |_, s: &Sys| {
            [&s.a, &s.b].iter().all(|p| {
                let e = &p.events;
                e.replied <= 1
                    && e.established <= 1
                    && e.peer_disconnected + e.disconnected <= 1
                    && e.released <= 1
            })
        }),
        Property::always(
            "fair terminal: connect, accept and every disconnect succeeded",
            |m: &CmModel, s: &Sys| {
                // The passive accept completes on Established, or on a
                // DREQ that overtook (or replaced a lost) RTU: the NDK
                // connector completes NdkAccept with success then.
                let accepted = s.b.events.established == 1 || s.b.events.peer_disconnected == 1;
                !m.terminal(s)
                    || (s.a.events.replied == 1
                        && accepted
                        && [&s.a, &s.b].iter().all(|p| {
                            !p.calls.contains(&Input::Disconnect)
                                || (p.events.disconnected == 1
                                    && p.events.disconnect_timed_out == 0)
                        }))
            },
        ),
        Property::always(
            "fair terminal: the other side's disconnect event exactly once, none when crossed",
            |m: &CmModel, s: &Sys| {
                if !m.terminal(s) {
                    return true;
                }
                let a = s.a.calls.contains(&Input::Disconnect);
                let b = s.b.calls.contains(&Input::Disconnect);
                match (a, b) {
                    (true, true) => {
                        s.a.events.peer_disconnected == 0 && s.b.events.peer_disconnected == 0
                    }
                    (true, false) => {
                        s.b.events.peer_disconnected == 1 && s.a.events.peer_disconnected == 0
                    }
                    (false, true) => {
                        s.a.events.peer_disconnected == 1 && s.b.events.peer_disconnected == 0
                    }
                    // Someone always disconnects: the call stays enabled
                    // while established.
                    (false, false) => false,
                }
            },
        ),
        Property::always(
            "fair terminal: no timer left running",
            |m: &CmModel, s: &Sys| !m.terminal(s) || (s.a.timer.is_none() && s.b.timer.is_none()),
        ),
        Property::sometimes("fair: crossed DREQs", |_, s: &Sys| {
            s.a.events.disconnected == 1 && s.b.events.disconnected == 1
        }),
        Property::sometimes("fair: passive disconnects first", |_, s: &Sys| {
            s.b.events.disconnected == 1 && s.a.events.peer_disconnected == 1
        }),
        Property::sometimes("fair: a DREQ completes a passive accept", |_, s: &Sys| {
            s.b.events.established == 0 && s.b.events.peer_disconnected == 1
        }),
    ]
}

#[test]
fn connect_disconnect_protocol_holds_in_every_reachable_state() {
    let start = std::time::Instant::now();
    let model = CmModel {
        retries: Retries { rep: 2, dreq: 2 },
        max_cm_retries: 2,
        max_in_flight: 5,
        fair: None,
        pruned: AtomicU64::new(0),
    };
    let checker = model.checker().spawn_bfs().join();
    checker.assert_properties();
    let states = checker.unique_state_count();
    eprintln!(
        "cm safety model: {states} unique states, {} generated, in {:?}",
        checker.state_count(),
        start.elapsed()
    );
    // The bound explores a real space (guards against a model that stops
    // after a few steps).
    assert!(states > 50_000, "only {states} states");
}

/// Liveness under fair delivery (module docs), then the coverage of both
/// models together: every (state, message) pair below was explored.
#[test]
fn fair_delivery_every_request_succeeds_and_every_message_meets_every_state() {
    let start = std::time::Instant::now();
    let model = CmModel {
        retries: Retries { rep: 3, dreq: 3 },
        max_cm_retries: 3,
        max_in_flight: 8,
        fair: Some(Fairness {
            losses: 3,
            duplicates: 2,
        }),
        pruned: AtomicU64::new(0),
    };
    let checker = model.checker().spawn_bfs().join();
    checker.assert_properties();
    let states = checker.unique_state_count();
    eprintln!(
        "cm fair model: {states} unique states, {} generated, in {:?}",
        checker.state_count(),
        start.elapsed()
    );
    assert!(states > 20_000, "only {states} states");
    // The network bound never cut a fair run short, so the liveness
    // properties hold on every run, not only on the ones that fit.
    assert_eq!(checker.model().pruned.load(Ordering::Relaxed), 0);

    // Coverage: run the safety model too (it adds REJ and the consumer
    // aborts), then check the union.
    CmModel {
        retries: Retries { rep: 1, dreq: 1 },
        max_cm_retries: 1,
        max_in_flight: 4,
        fair: None,
        pruned: AtomicU64::new(0),
    }
    .checker()
    .spawn_bfs()
    .join();
    let seen = COVERAGE.lock().unwrap().clone();
    use Msg::*;
    let required: &[(&str, Msg)] = &[
        // DREQ: first, retransmitted, crossed, before the RTU, after
        // time-wait, and out of nowhere on the active side.
        ("Established", Dreq),
        ("DreqSent", Dreq),
        ("TimeWait", Dreq),
        ("Closed", Dreq),
        ("RepSent", Dreq),
        ("MraRepRcvd", Dreq),
        // DREP: the answer, duplicates and late ones.
        ("DreqSent", Drep),
        ("TimeWait", Drep),
        ("Closed", Drep),
        // REJ wherever a consumer can refuse or abandon.
        ("ReqSent", Rej),
        ("RepRcvd", Rej),
        ("ReqRcvd", Rej),
        ("RepSent", Rej),
        ("MraRepRcvd", Rej),
        ("Established", Rej),
        ("DreqSent", Rej),
        ("TimeWait", Rej),
        ("Closed", Rej),
        // RTU: first, duplicate, late.
        ("RepSent", Rtu),
        ("MraRepRcvd", Rtu),
        ("Established", Rtu),
        ("DreqSent", Rtu),
        ("TimeWait", Rtu),
        ("Closed", Rtu),
        // REP: first, duplicates in every later active state.
        ("ReqSent", Rep),
        ("MraReqRcvd", Rep),
        ("RepRcvd", Rep),
        ("Established", Rep),
        ("DreqSent", Rep),
        ("TimeWait", Rep),
        ("Closed", Rep),
        // MRA of REQ and of REP, first and late.
        ("ReqSent", MraReq),
        ("MraReqRcvd", MraReq),
        ("RepRcvd", MraReq),
        ("RepSent", MraRep),
        ("MraRepRcvd", MraRep),
        ("Established", MraRep),
        // Duplicate REQs.
        ("ReqRcvd", Req),
        ("RepSent", Req),
        ("Established", Req),
    ];
    let missing: Vec<_> = required.iter().filter(|r| !seen.contains(r)).collect();
    eprintln!("cm models: {} (state, message) pairs explored", seen.len());
    assert!(missing.is_empty(), "never explored: {missing:?}");
}
