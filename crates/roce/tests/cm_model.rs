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

use stateright::{Checker, Model, Property};

use roce::cm::state::{Event, Input, MraOf, Retries, Send, State, Timer, TimerKind};

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
    fn of(send: Send) -> Msg {
        match send {
            Send::Req => Msg::Req,
            Send::Rep => Msg::Rep,
            Send::Rtu => Msg::Rtu,
            Send::Mra(MraOf::Req) => Msg::MraReq,
            Send::Mra(MraOf::Rep) => Msg::MraRep,
            Send::Rej(_) => Msg::Rej,
            Send::Dreq => Msg::Dreq,
            Send::Drep => Msg::Drep,
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
    released: u8,
}

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
    Timeout(Side),
    /// A data packet from the established active side reaches B's QP.
    Data,
}

struct CmModel {
    retries: Retries,
    max_cm_retries: u8,
    max_in_flight: usize,
}

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
                Event::Disconnected { .. } => ev.disconnected += 1,
                Event::Released => ev.released += 1,
            }
        }
        if let Some(send) = actions.send {
            if s.net.len() >= self.max_in_flight {
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
        }]
    }

    fn actions(&self, s: &Sys, actions: &mut Vec<Action>) {
        for (side, input) in CALLS {
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
            actions.push(Action::Drop(i));
        }
        for side in [Side::A, Side::B] {
            if s.peer(side).timer.is_some() {
                actions.push(Action::Timeout(side));
            }
        }
        if s.a.conn == Some(State::Established)
            && matches!(s.b.conn, Some(State::RepSent { .. } | State::MraRepRcvd))
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
            }
            Action::Deliver(i) => {
                let (to, msg) = s.net.remove(i);
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

#[test]
fn connect_disconnect_protocol_holds_in_every_reachable_state() {
    let model = CmModel {
        retries: Retries { rep: 3, dreq: 3 },
        max_cm_retries: 3,
        max_in_flight: 6,
    };
    let checker = model.checker().spawn_bfs().join();
    checker.assert_properties();
    let states = checker.unique_state_count();
    eprintln!("cm model: {states} unique states explored");
    // The bound explores a real space (guards against a model that stops
    // after a few steps).
    assert!(states > 50_000, "only {states} states");
}
