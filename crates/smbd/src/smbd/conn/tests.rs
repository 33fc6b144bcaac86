use super::*;

/// Two connections joined in memory: sends become the other side's
/// receives, limited by the receives it has posted, like an RC QP with
/// RNR retry 0 (ksmbd's setting): a send without a posted receive is a
/// fatal error, which the credit rules must prevent.
struct Pair {
    now: Instant,
    c: Connection,
    s: Connection,
    c_posted: usize,
    s_posted: usize,
    c_wire: VecDeque<Vec<u8>>,
    s_wire: VecDeque<Vec<u8>>,
    c_got: Vec<Vec<u8>>,
    s_got: Vec<Vec<u8>>,
    c_sent: Vec<Vec<u8>>,
    s_sent: Vec<Vec<u8>>,
    disconnects: Vec<(Role, DisconnectReason)>,
}

impl Pair {
    fn new(cc: Config, sc: Config) -> Pair {
        let mut p = Pair {
            now: Instant::now(),
            c: Connection::new(Role::Client, cc),
            s: Connection::new(Role::Server, sc),
            c_posted: 0,
            s_posted: 0,
            c_wire: VecDeque::new(),
            s_wire: VecDeque::new(),
            c_got: vec![],
            s_got: vec![],
            c_sent: vec![],
            s_sent: vec![],
            disconnects: vec![],
        };
        p.s.handle(p.now, Event::Connected).unwrap();
        p.c.handle(p.now, Event::Connected).unwrap();
        p.run();
        p
    }

    /// Moves outputs to the wire and wire bytes into posted receives
    /// until nothing moves.
    fn run(&mut self) {
        for round in 0.. {
            assert!(round < 1_000_000, "the pair never settles (livelock)");
            let mut moved = false;
            while let Some(o) = self.c.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => {
                        self.c_sent.push(b.clone());
                        self.s_wire.push_back(b)
                    }
                    Output::PostReceives(n) => self.c_posted += n as usize,
                    Output::Deliver(m) => self.c_got.push(m),
                    Output::Disconnect(r) => self.disconnects.push((Role::Client, r)),
                }
            }
            while let Some(o) = self.s.poll_output() {
                moved = true;
                match o {
                    Output::Send(b) => {
                        self.s_sent.push(b.clone());
                        self.c_wire.push_back(b)
                    }
                    Output::PostReceives(n) => self.s_posted += n as usize,
                    Output::Deliver(m) => self.s_got.push(m),
                    Output::Disconnect(r) => self.disconnects.push((Role::Server, r)),
                }
            }
            if let Some(b) = self.s_wire.pop_front() {
                assert!(
                    self.s_posted > 0,
                    "client sent with no server receive posted"
                );
                self.s_posted -= 1;
                self.s.handle(self.now, Event::Received(&b)).unwrap();
                moved = true;
            }
            if let Some(b) = self.c_wire.pop_front() {
                assert!(
                    self.c_posted > 0,
                    "server sent with no client receive posted"
                );
                self.c_posted -= 1;
                self.c.handle(self.now, Event::Received(&b)).unwrap();
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
}

fn small() -> Config {
    Config {
        receive_credit_max: 4,
        send_credit_target: 4,
        preferred_send_size: 256,
        max_receive_size: 256,
        max_fragmented_size: 200_000,
        ..Config::default()
    }
}

#[test]
fn negotiate_sets_credits_and_sizes() {
    let p = Pair::new(Config::default(), small());
    assert!(p.c.is_established() && p.s.is_established());
    // Server granted min(255 requested, its max 4); client holds them.
    assert_eq!(p.c.send_credits(), 4);
    let n = p.c.negotiated().unwrap();
    assert_eq!(n.max_send_size, 256);
    assert_eq!(n.max_fragmented_send_size, 200_000);
    // Client posted the server's CreditsRequested (4) receives, not yet granted.
    assert_eq!(p.c_posted, 4);
    assert_eq!(p.c.granted_credits(), 0);
    assert_eq!(p.s.send_credits(), 0);
    assert_eq!(p.c_sent.len(), 1);
    assert_eq!(p.c_sent[0].len(), 20);
}

#[test]
fn fragmentation_and_reassembly_both_ways() {
    let mut p = Pair::new(small(), small());
    let msg: Vec<u8> = (0..150_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    p.c.handle(p.now, Event::Send(&msg)).unwrap();
    p.run();
    assert!(
        p.s_got == vec![msg.clone()],
        "server did not reassemble the message"
    );
    // 232 data bytes per 256-byte message.
    let frags = p.c_sent.len() - 1;
    assert_eq!(frags, 150_000usize.div_ceil(232));
    assert!(p.c_sent.iter().all(|m| m.len() <= 256));
    let reply: Vec<u8> = msg.iter().rev().copied().collect();
    p.s.handle(p.now, Event::Send(&reply)).unwrap();
    p.run();
    assert!(
        p.c_got == vec![reply],
        "client did not reassemble the reply"
    );
    assert!(p.disconnects.is_empty());
    // Credits only ever as many as posted receives (checked by Pair).
    assert!(p.c.send_credits() <= 4 && p.s.send_credits() <= 4);
}

#[test]
fn last_credit_only_spent_when_granting() {
    let mut p = Pair::new(small(), small());
    // The client's first message grants the server its 4 credits.
    p.c.handle(p.now, Event::Send(b"a")).unwrap();
    p.run();
    assert_eq!(p.s.send_credits(), 4);
    assert_eq!(p.s.granted_credits(), 3);
    // Four messages from the server before the client answers: the
    // first grants back the receive the client's message used, the
    // next two grant nothing, and the fourth would spend the last
    // credit without granting, so it waits (MS-SMBD 3.1.5.1).
    for _ in 0..4 {
        p.s.handle(p.now, Event::Send(b"x")).unwrap();
    }
    let mut grants = vec![];
    while let Some(o) = p.s.poll_output() {
        if let Output::Send(b) = &o {
            grants.push(DataTransfer::parse(b).unwrap().header.credits_granted);
        }
        // Hand it on to the client as the wire would.
        if let Output::Send(b) = o {
            p.s_sent.push(b.clone());
            p.c_wire.push_back(b);
        }
    }
    assert_eq!(grants, vec![1, 0, 0]);
    assert_eq!(p.s.send_credits(), 1);
    assert_eq!(p.s.queued_sends(), 1);
    // The client sees its credits on the server run low and grants
    // more with an empty message, which frees the queued one.
    p.run();
    assert_eq!(p.s.queued_sends(), 0);
    assert_eq!(p.c_got.len(), 4);
    assert!(p.disconnects.is_empty());
    let empty_grant = p
        .c_sent
        .iter()
        .skip(2)
        .map(|b| DataTransfer::parse(b).unwrap())
        .find(|m| m.data.is_empty())
        .expect("client granted credits with an empty message");
    assert!(empty_grant.header.credits_granted >= 1);
}

#[test]
fn credit_starvation_resolves_with_grants() {
    // Many small messages one way: the receiver must grant back on its
    // own (empty messages) or the sender stalls for good.
    let mut p = Pair::new(small(), small());
    for i in 0..200u32 {
        p.c.handle(p.now, Event::Send(&i.to_le_bytes())).unwrap();
        p.run();
    }
    assert_eq!(p.s_got.len(), 200);
    assert_eq!(p.c.queued_sends(), 0);
    for (i, m) in p.s_got.iter().enumerate() {
        assert_eq!(m.as_slice(), &(i as u32).to_le_bytes());
    }
    assert!(p.disconnects.is_empty());
}

#[test]
fn keepalive_answered_then_timeout() {
    let mut p = Pair::new(small(), small());
    p.c.handle(p.now, Event::Send(b"hi")).unwrap();
    p.run();
    let idle = p.c.poll_timeout().unwrap();
    assert_eq!(idle, p.now + Config::default().idle_timeout);
    // Idle: the client sends an empty message asking for a response;
    // the server answers, which resets the client's timer.
    p.now = idle;
    p.c.handle_timeout(p.now);
    let sent_before = p.c_sent.len();
    p.run();
    let ka = DataTransfer::parse(&p.c_sent[sent_before]).unwrap();
    assert_eq!(ka.header.flags, FLAG_RESPONSE_REQUESTED);
    assert!(ka.data.is_empty());
    assert!(p.disconnects.is_empty());
    assert_eq!(
        p.c.poll_timeout(),
        Some(p.now + Config::default().idle_timeout)
    );

    // Now the server goes silent: the keepalive times out.
    p.now += Config::default().idle_timeout;
    p.c.handle_timeout(p.now);
    while let Some(o) = p.c.poll_output() {
        assert!(matches!(o, Output::Send(_)));
    }
    assert_eq!(
        p.c.poll_timeout(),
        Some(p.now + Config::default().keepalive_timeout)
    );
    p.now += Config::default().keepalive_timeout;
    p.c.handle_timeout(p.now);
    assert_eq!(
        p.c.poll_output(),
        Some(Output::Disconnect(DisconnectReason::KeepaliveTimeout))
    );
    assert_eq!(p.c.closed(), Some(DisconnectReason::KeepaliveTimeout));
    assert_eq!(
        p.c.handle(p.now, Event::Send(b"x")),
        Err(UsageError::NotEstablished)
    );
}

#[test]
fn negotiate_timeout_and_rejections() {
    let t = Instant::now();
    let mut c = Connection::new(Role::Client, Config::default());
    c.handle(t, Event::Connected).unwrap();
    assert_eq!(
        c.handle(t, Event::Connected),
        Err(UsageError::AlreadyStarted)
    );
    c.handle_timeout(t + Duration::from_secs(1));
    assert!(c.closed().is_none());
    c.handle_timeout(c.poll_timeout().unwrap());
    assert_eq!(c.closed(), Some(DisconnectReason::NegotiateTimeout));

    let good = NegotiateResponse {
        min_version: 0x100,
        max_version: 0x100,
        negotiated_version: 0x100,
        credits_requested: 255,
        credits_granted: 255,
        status: 0,
        max_read_write_size: 1 << 20,
        preferred_send_size: 1364,
        max_receive_size: 1364,
        max_fragmented_size: 1 << 20,
    };
    let cases: [(NegotiateResponse, NegotiateError); 6] = [
        (
            NegotiateResponse {
                status: STATUS_NOT_SUPPORTED,
                ..good
            },
            NegotiateError::Status(STATUS_NOT_SUPPORTED),
        ),
        (
            NegotiateResponse {
                negotiated_version: 0x200,
                ..good
            },
            NegotiateError::Version {
                min: 0x100,
                max: 0x100,
                negotiated: 0x200,
            },
        ),
        (
            NegotiateResponse {
                credits_granted: 0,
                ..good
            },
            NegotiateError::NoCreditsGranted,
        ),
        (
            NegotiateResponse {
                max_receive_size: 127,
                ..good
            },
            NegotiateError::MaxReceiveSizeTooSmall(127),
        ),
        (
            NegotiateResponse {
                max_fragmented_size: 1000,
                ..good
            },
            NegotiateError::MaxFragmentedSizeTooSmall(1000),
        ),
        (
            NegotiateResponse {
                preferred_send_size: 9000,
                ..good
            },
            NegotiateError::PreferredSendSizeTooLarge(9000),
        ),
    ];
    for (resp, err) in cases {
        let mut c = Connection::new(Role::Client, Config::default());
        c.handle(t, Event::Connected).unwrap();
        let mut b = [0u8; 32];
        resp.encode(&mut b).unwrap();
        c.handle(t, Event::Received(&b)).unwrap();
        assert_eq!(c.closed(), Some(DisconnectReason::NegotiateFailed(err)));
    }
    let mut c = Connection::new(Role::Client, Config::default());
    c.handle(t, Event::Connected).unwrap();
    c.handle(t, Event::Received(&[0; 31])).unwrap();
    assert!(matches!(
        c.closed(),
        Some(DisconnectReason::NegotiateFailed(
            NegotiateError::Malformed(_)
        ))
    ));
}

#[test]
fn server_rejects_bad_request_with_status() {
    let t = Instant::now();
    let mut s = Connection::new(Role::Server, Config::default());
    s.handle(t, Event::Connected).unwrap();
    let req = NegotiateRequest {
        min_version: 0x200,
        max_version: 0x200,
        credits_requested: 10,
        preferred_send_size: 1364,
        max_receive_size: 1364,
        max_fragmented_size: 1 << 20,
    };
    let mut b = [0u8; 20];
    req.encode(&mut b).unwrap();
    s.handle(t, Event::Received(&b)).unwrap();
    assert_eq!(s.poll_output(), Some(Output::PostReceives(1)));
    let Some(Output::Send(r)) = s.poll_output() else {
        panic!("no response")
    };
    assert_eq!(
        NegotiateResponse::parse(&r).unwrap().status,
        STATUS_NOT_SUPPORTED
    );
    assert!(matches!(s.poll_output(), Some(Output::Disconnect(_))));
}

#[test]
fn peer_protocol_violations_disconnect() {
    let mk = || {
        let mut p = Pair::new(small(), small());
        p.c.handle(p.now, Event::Send(b"grant")).unwrap();
        p.run();
        p
    };
    let h = DataTransferHeader {
        credits_requested: 4,
        credits_granted: 0,
        flags: 0,
        remaining_data_length: 0,
    };
    let enc = |h: DataTransferHeader, d: &[u8]| {
        let mut b = vec![0u8; wire::data_transfer_len(d.len())];
        wire::encode_data_transfer(&h, d, &mut b).unwrap();
        b
    };
    // Too big for the posted receive buffer.
    let mut p = mk();
    p.c.handle(p.now, Event::Received(&vec![0u8; 300])).unwrap();
    assert_eq!(
        p.c.closed(),
        Some(DisconnectReason::Protocol(ProtocolError::MessageTooLarge(
            300
        )))
    );
    // A message claiming more than MaxFragmentedSize.
    let mut p = mk();
    let b = enc(
        DataTransferHeader {
            remaining_data_length: 300_000,
            ..h
        },
        b"abc",
    );
    p.c.handle(p.now, Event::Received(&b)).unwrap();
    assert_eq!(
        p.c.closed(),
        Some(DisconnectReason::Protocol(
            ProtocolError::FragmentedTooLarge(300_003)
        ))
    );
    // A continuation whose RemainingDataLength does not add up.
    let mut p = mk();
    let b = enc(
        DataTransferHeader {
            remaining_data_length: 10,
            ..h
        },
        b"abc",
    );
    p.c.handle(p.now, Event::Received(&b)).unwrap();
    let b = enc(
        DataTransferHeader {
            remaining_data_length: 5,
            ..h
        },
        b"abc",
    );
    p.c.handle(p.now, Event::Received(&b)).unwrap();
    assert_eq!(
        p.c.closed(),
        Some(DisconnectReason::Protocol(
            ProtocolError::FragmentMismatch {
                expected: 7,
                got: 5
            }
        ))
    );
    // CreditsRequested 0.
    let mut p = mk();
    let b = enc(
        DataTransferHeader {
            credits_requested: 0,
            ..h
        },
        b"abc",
    );
    p.c.handle(p.now, Event::Received(&b)).unwrap();
    assert_eq!(
        p.c.closed(),
        Some(DisconnectReason::Protocol(
            ProtocolError::NoCreditsRequested
        ))
    );
    // A message before the client granted any credit.
    let mut p = Pair::new(small(), small());
    assert_eq!(p.c.granted_credits(), 0);
    p.c.handle(p.now, Event::Received(&enc(h, b"q"))).unwrap();
    assert_eq!(
        p.c.closed(),
        Some(DisconnectReason::Protocol(
            ProtocolError::NoCreditForReceive
        ))
    );
}

#[test]
fn close_and_peer_disconnect() {
    let mut p = Pair::new(small(), small());
    p.c.handle(p.now, Event::Close).unwrap();
    assert_eq!(
        p.c.poll_output(),
        Some(Output::Disconnect(DisconnectReason::Local))
    );
    p.c.handle(p.now, Event::Close).unwrap();
    assert_eq!(p.c.poll_output(), None);
    p.s.handle(p.now, Event::PeerDisconnected).unwrap();
    assert_eq!(p.s.closed(), Some(DisconnectReason::PeerDisconnected));
    assert_eq!(p.s.poll_output(), None);
    assert_eq!(p.s.poll_timeout(), None);
    // Late completions after close are ignored.
    p.s.handle(p.now, Event::Received(&[1, 2, 3])).unwrap();
    assert_eq!(p.s.poll_output(), None);
}

#[test]
fn send_limits() {
    let mut p = Pair::new(small(), small());
    assert_eq!(
        p.c.handle(p.now, Event::Send(&vec![0u8; 200_001])),
        Err(UsageError::MessageTooLarge {
            len: 200_001,
            max: 200_000
        })
    );
    let mut c = Connection::new(Role::Client, small());
    assert_eq!(
        c.handle(p.now, Event::Send(b"x")),
        Err(UsageError::NotEstablished)
    );
}
