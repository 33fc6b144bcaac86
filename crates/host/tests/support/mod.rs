//! Two RoCE devices, each on its own event loop and socket, and helpers to
//! wait for their events (every wait bounded).
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use host::clock::Clock;
use host::endpoint::{EventLoop, Hook, LoopConfig, LoopStats, Routing};
use host::io::Transport;
use roce::cm::state::Event;
use roce::cm::{AcceptParams, CmConfig, CmEvent, ConnId, ConnectParams};
use roce::device::{Device, DeviceConfig, DeviceEvent, DropCounters};
use roce::framing::IpMode;
use roce::rc::{ArenaMemory, EngineConfig};

pub type Dev = Device<ArenaMemory>;

/// Longest any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Node {
    pub el: EventLoop<Mutex<Dev>>,
    pub events: Receiver<DeviceEvent>,
    pub seen: Vec<DeviceEvent>,
    pub ip: IpAddr,
}

pub fn device(ip_mode: IpMode, udp_source_port: u16, seed: u64) -> Dev {
    Device::new(
        DeviceConfig {
            ip_mode,
            udp_source_port,
            ca_guid: 0x5054_00FF_FE00_0000 | seed,
            cm: CmConfig::default(),
            rc: EngineConfig {
                first_qpn: 17,
                key_seed: seed as u32,
                qpn_epoch: 0,
            },
            seed,
        },
        ArenaMemory::new(1 << 12),
    )
}

/// Starts a node on `transport`: its hook drains the device's events
/// after the loop released the lock and forwards them.
pub fn node(
    transport: Box<dyn Transport>,
    ip_mode: IpMode,
    routing: Routing,
    seed: u64,
    pcap: Option<&Path>,
) -> Node {
    let local = transport.local_addr();
    let dev = Arc::new(Mutex::new(device(ip_mode, local.port(), seed)));
    let (tx, rx) = mpsc::channel();
    let clock = Clock::new();
    let hook: Hook<Mutex<Dev>> = Box::new(move |m: &Mutex<Dev>| {
        let mut got = Vec::new();
        {
            let mut d = m.lock().unwrap();
            let now = clock.now();
            while let Some(e) = d.poll_event(now) {
                got.push(e);
            }
        }
        // Upcalls outside the lock.
        for e in got {
            let _ = tx.send(e);
        }
    });
    let config = LoopConfig {
        name: format!("io-{local}"),
        routing,
        pcap: pcap.map(|p| host::pcap::create(p).expect("create the pcap")),
        ..LoopConfig::default()
    };
    let el = EventLoop::spawn(dev, transport, clock, config, Some(hook)).expect("spawn");
    Node {
        el,
        events: rx,
        seen: Vec::new(),
        ip: local.ip(),
    }
}

impl Node {
    /// Waits (bounded) for an event matching `f`; returns what `f` made of it.
    pub fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(&DeviceEvent) -> Option<T>) -> T {
        if let Some(t) = self.seen.iter().find_map(&mut f) {
            return t;
        }
        let end = StdInstant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(StdInstant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    self.seen.push(e);
                    if let Some(t) = f(&e) {
                        return t;
                    }
                }
                Err(_) => panic!("no {what} within {WAIT:?}; saw {:?}", self.seen),
            }
        }
    }

    pub fn wait_conn_event(&mut self, conn: ConnId, event: Event) {
        self.wait_for(&format!("{event:?}"), |e| {
            (*e == DeviceEvent::Cm(CmEvent::Conn { conn, event })).then_some(())
        })
    }

    pub fn drops(&self) -> DropCounters {
        self.el.with(|d, _| d.drops())
    }

    pub fn stop(self) -> LoopStats {
        self.el.stop()
    }
}

/// Connects `a` to `b` through the CM over the real sockets, then
/// disconnects from `a`; returns the two connection ids.
pub fn connect_and_disconnect(a: &mut Node, b: &mut Node) -> (ConnId, ConnId) {
    let (a_ip, b_ip) = (a.ip, b.ip);
    b.el.with(|d, _| d.cm().listen(SocketAddr::new(b_ip, 7174)))
        .expect("listen");
    let ca =
        a.el.with(|d, now| {
            d.cm().connect(
                now,
                &ConnectParams {
                    local: SocketAddr::new(a_ip, 0xE93D),
                    remote: SocketAddr::new(b_ip, 7174),
                    local_qpn: 0x11,
                    starting_psn: 0x73FEFE,
                    responder_resources: 1,
                    initiator_depth: 1,
                    path_mtu: 3,
                    srq: false,
                    private_data: b"hello",
                },
            )
        })
        .expect("connect");
    let cb = b.wait_for("a connection request", |e| match e {
        DeviceEvent::Cm(CmEvent::Request { conn, .. }) => Some(*conn),
        _ => None,
    });
    b.el.with(|d, now| {
        d.cm().accept(
            now,
            cb,
            &AcceptParams {
                local_qpn: 0x11,
                starting_psn: 0xB55B8D,
                responder_resources: 1,
                initiator_depth: 1,
                srq: false,
                private_data: b"welcome",
            },
        )
    })
    .expect("accept");
    a.wait_conn_event(ca, Event::Replied);
    a.el.with(|d, now| d.cm().complete_connect(now, ca))
        .expect("complete");
    b.wait_conn_event(cb, Event::Established);
    let peer_data = a.el.with(|d, _| {
        d.cm_ref()
            .connection(ca)
            .map(|c| c.peer_private_data()[..7].to_vec())
    });
    assert_eq!(peer_data.as_deref(), Some(&b"welcome"[..]));
    a.el.with(|d, now| d.cm().disconnect(now, ca))
        .expect("disconnect");
    a.wait_conn_event(ca, Event::Disconnected { timed_out: false });
    b.wait_conn_event(cb, Event::PeerDisconnected);
    (ca, cb)
}
