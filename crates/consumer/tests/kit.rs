//! The kit against the provider, through the dispatch tables only: two
//! adapters on one host platform, a connection made with the typed
//! handles, a send that lands in registered memory, completions polled
//! and notified, and closes that pend until their children are gone,
//! each observed through the kit's completions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ndk::abi::{close_adapter, io, open_adapter};
use ndk::provider::Limits;
use ndk_consumer::*;
use ndkpi::*;
use roce::device::MAX_DATAGRAM;

const NO_WAIT: Duration = Duration::ZERO;

fn open(platform: &Arc<HostPlatform>, ip: IpAddr, seed: u64) -> Adapter {
    let config = fixed_config(ip, seed, Limits::default());
    let a = open_adapter(platform.clone(), config, NDK_VERSION_1_2).expect("open");
    // SAFETY: just opened; closed at the end of the test, after its objects.
    unsafe { Adapter::from_raw(a) }
}

fn pump(adapters: &[(IpAddr, Adapter)]) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let mut moved = false;
        for (_, from) in adapters {
            while let Some(t) = io::poll_transmit(from.as_ptr(), &mut buf) {
                moved = true;
                let payload = t.udp_payload(&buf).to_vec();
                if let Some((_, to)) = adapters.iter().find(|(ip, _)| *ip == t.dst.ip()) {
                    io::handle_udp(to.as_ptr(), t.src, t.dst, &payload);
                }
            }
        }
        if !moved {
            break;
        }
    }
}

static CONNECTS: AtomicUsize = AtomicUsize::new(0);
static PASSIVE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn on_connect(_ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    CONNECTS.fetch_add(1, Ordering::SeqCst);
    PASSIVE.store(conn as usize, Ordering::SeqCst);
}

#[test]
fn a_connection_a_send_and_pending_closes_through_the_kit() {
    let platform = HostPlatform::manual();
    let (a_ip, b_ip) = (
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
    );
    let nodes = [
        (a_ip, open(&platform, a_ip, 1)),
        (b_ip, open(&platform, b_ip, 2)),
    ];
    let (a, b) = (&nodes[0].1, &nodes[1].1);
    assert!(a.info().expect("info").MaxRegistrationSize > 0);

    let kicks = Kicks::default();
    let (apd, bpd) = (a.create_pd().unwrap(), b.create_pd().unwrap());
    let acq = a.create_cq(16, Some(kicks_notify), kicks.ctx()).unwrap();
    let bcq = b.create_cq(16, Some(kicks_notify), kicks.ctx()).unwrap();
    let aqp = apd
        .create_qp(&QpConfig::on(&acq, 0xA as PVOID, 4, 4))
        .unwrap();
    let bqp = bpd
        .create_qp(&QpConfig::on(&bcq, 0xB as PVOID, 4, 4))
        .unwrap();

    // Memory under the platform's map: reachable while it lives.
    let map = platform.map().expect("checked");
    let mut amem = Memory::new(4096, MdlKind::Host, Some(map));
    let mut bmem = Memory::new(4096, MdlKind::Host, Some(map));
    assert_eq!(amem.va(0) % 4096, 0, "page aligned");
    assert!(map.contains(amem.va(0), 4096) && !map.contains(amem.va(0), 4097));
    let (amr, bmr) = (apd.create_mr(false).unwrap(), bpd.create_mr(false).unwrap());
    // SAFETY: the memories and their MDLs outlive the MRs (closed below).
    let st = unsafe { amr.register(amem.mdl(), 4096, MR_RW, None, ptr::null_mut()) };
    assert_eq!(st, STATUS_SUCCESS);
    // SAFETY: as above.
    let st = unsafe { bmr.register(bmem.mdl(), 4096, MR_RW, None, ptr::null_mut()) };
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(amr.local_token(), amr.remote_token());

    // Connect: A's NdkConnect pends; B's listener sees the request.
    let listener = b
        .create_listener(Some(on_connect), ptr::null_mut())
        .unwrap();
    assert_eq!(listener.listen(SocketAddr::new(b_ip, 0)), STATUS_SUCCESS);
    let port = listener.local_port().unwrap();
    let active = a.create_connector().unwrap();
    let connected = Arc::new(Waiter::default());
    let st = active.connect(
        &aqp,
        SocketAddr::new(a_ip, 0),
        SocketAddr::new(b_ip, port),
        (1, 1),
        b"kit?",
        Some(waiter_done),
        connected.ctx(),
    );
    assert_eq!(st, STATUS_PENDING);
    pump(&nodes);
    assert_eq!(CONNECTS.load(Ordering::SeqCst), 1);
    // SAFETY: the connector the connect event handed over; closed below.
    let passive = unsafe { Connector::from_raw(PASSIVE.load(Ordering::SeqCst) as *mut _) };
    let data = passive.connection_data().unwrap();
    assert!(data.private_data.starts_with(b"kit?"), "{data:?}");
    let accepted = Arc::new(Waiter::default());
    let st = passive.accept(
        &bqp,
        (1, 1),
        b"kit!",
        None,
        ptr::null_mut(),
        Some(waiter_done),
        accepted.ctx(),
    );
    assert_eq!(st, STATUS_PENDING);
    pump(&nodes);
    assert_eq!(connected.wait(NO_WAIT), Some(STATUS_SUCCESS));
    assert!(
        active
            .connection_data()
            .unwrap()
            .private_data
            .starts_with(b"kit!")
    );
    assert_eq!(
        active.complete_connect(None, ptr::null_mut(), None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    pump(&nodes);
    assert_eq!(accepted.wait(NO_WAIT), Some(STATUS_SUCCESS));
    assert_eq!((connected.completions(), accepted.completions()), (1, 1));

    // A send lands in B's receive; both CQs report it, notified when armed.
    assert_eq!(
        bqp.receive(7, &[bmem.sge(0, 4096, bmr.local_token())]),
        STATUS_SUCCESS
    );
    amem.bytes_mut()[..5].copy_from_slice(b"hello");
    bcq.arm(NDK_CQ_NOTIFY_ANY);
    let seen = kicks.seen();
    assert_eq!(
        aqp.send(8, &[amem.sge(0, 5, amr.local_token())], 0),
        STATUS_SUCCESS
    );
    pump(&nodes);
    assert!(kicks.seen() > seen, "the armed CQ notified");
    let rb = bcq.results(8);
    assert_eq!(rb.len(), 1);
    assert_eq!(
        (rb[0].Status, rb[0].RequestContext as usize),
        (STATUS_SUCCESS, 7)
    );
    assert_eq!(rb[0].BytesTransferred, 5);
    assert_eq!(bmem.read(0, 5).unwrap(), b"hello");
    let ra = acq.results(8);
    assert_eq!((ra.len(), ra[0].RequestContext as usize), (1, 8));

    // Disconnect; a PD closed while its children live pends until they go.
    let disconnected = Waiter::default();
    let st = active.disconnect(Some(waiter_done), disconnected.ctx());
    pump(&nodes);
    assert!(st == STATUS_SUCCESS || disconnected.status() == Some(STATUS_SUCCESS));
    let pd_closed = Waiter::default();
    assert_eq!(
        apd.close(Some(waiter_closed), pd_closed.ctx()),
        STATUS_PENDING
    );
    let others = Waiter::default();
    let mut pended = 0;
    for st in [
        active.close(Some(waiter_closed), others.ctx()),
        passive.close(Some(waiter_closed), others.ctx()),
        listener.close(Some(waiter_closed), others.ctx()),
        aqp.close(None, ptr::null_mut()),
    ] {
        assert!(st == STATUS_SUCCESS || st == STATUS_PENDING, "{st:#x}");
        pended += usize::from(st == STATUS_PENDING);
    }
    pump(&nodes);
    assert_eq!(
        others.completions(),
        pended,
        "each pending close completed once"
    );
    assert_eq!(pd_closed.completions(), 0, "the MR still holds the PD");
    assert_eq!(amr.close(None, ptr::null_mut()), STATUS_SUCCESS);
    pump(&nodes);
    assert_eq!(pd_closed.completions(), 1, "the PD's close completed once");
    let rest: [*mut NDK_OBJECT_HEADER; 5] = [
        bqp.into_raw().cast(),
        bmr.into_raw().cast(),
        bpd.into_raw().cast(),
        acq.into_raw().cast(),
        bcq.into_raw().cast(),
    ];
    for o in rest {
        // SAFETY: live objects of B (and A's CQ), children first, closed once.
        assert_eq!(
            unsafe { close_raw(o, None, ptr::null_mut()) },
            STATUS_SUCCESS
        );
    }
    assert_eq!(a.object_count_settled(0, Duration::from_secs(1)), 0);
    assert_eq!(b.object_count(), 0);
    for (_, n) in nodes {
        // SAFETY: every object is closed; nothing calls in any more.
        unsafe { close_adapter(n.as_ptr()) };
    }
    let va = amem.va(0);
    drop(amem);
    assert!(!map.contains(va, 1), "a dropped Memory leaves the map");
}

#[test]
fn a_request_that_does_not_pend_completes_inline_and_once() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let r = Req::new(move |st| {
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(r.finish(STATUS_INVALID_PARAMETER), STATUS_INVALID_PARAMETER);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        request(NO_WAIT, |_, _| STATUS_SUCCESS),
        Some(STATUS_SUCCESS)
    );
    // A pending request whose completion has not come: None after the
    // bound, and the completion still owns its context: a late one runs
    // safely (and frees it).
    let mut late = std::ptr::null_mut();
    assert_eq!(
        request(Duration::from_millis(5), |_, ctx| {
            late = ctx;
            STATUS_PENDING
        }),
        None
    );
    assert!(!late.is_null());
    // SAFETY: the context of the request above, which pended and has not
    // completed: this is its one completion.
    unsafe { ndk_consumer::req_done(late, STATUS_CANCELLED) };
}
