//! A consumer that drives two adapters only through the NDKPI dispatch
//! tables, as SMB Direct would: query, create, connect (accepting from
//! inside the connect event, completing from inside the connect
//! completion), Send/Receive, RDMA Write and Read with byte checks,
//! NdkDisconnect, close of everything, and no leaks. IPv4 and IPv6.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ndk::abi::{MdlRange, Platform, RawLock, close_adapter, io, open_adapter};
use ndk::provider::{Limits, ProviderConfig};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::EngineConfig;
use roce::time::Instant;

// ---- a host platform for the test ----

struct SpinLock(AtomicBool);

impl RawLock for SpinLock {
    fn lock(&self) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }
    fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What the test passes as an MDL: a virtually contiguous buffer.
#[repr(C)]
struct HostMdl {
    va: *mut u8,
    len: usize,
}

struct HostPlatform {
    clock: AtomicU64,
}

impl Platform for HostPlatform {
    fn new_lock(&self) -> Box<dyn RawLock> {
        Box::new(SpinLock(AtomicBool::new(false)))
    }
    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.load(Ordering::Relaxed))
    }
    fn wake(&self) {}
    unsafe fn mdl_range(&self, mdl: *mut MDL) -> Option<MdlRange> {
        let m = unsafe { mdl.cast::<HostMdl>().as_ref() }?;
        Some(MdlRange {
            virtual_address: m.va as u64,
            logical_address: m.va as u64,
            length: m.len as u64,
        })
    }
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        // SAFETY: the test only registers its own live buffers.
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        // SAFETY: as above.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }
}

// ---- callbacks: every upcall lands in one log ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Request(usize, NTSTATUS),
    Close(usize),
    Cq(usize, NTSTATUS),
    Connect(usize, usize),
    Disconnect(usize),
}

static LOG: Mutex<VecDeque<Ev>> = Mutex::new(VecDeque::new());
/// Serializes the tests of this file (the log is global).
static SERIAL: Mutex<()> = Mutex::new(());

fn log(e: Ev) {
    LOG.lock().unwrap().push_back(e);
}

unsafe extern "system" fn on_request(ctx: PVOID, st: NTSTATUS) {
    log(Ev::Request(ctx as usize, st));
}
unsafe extern "system" fn on_close(ctx: PVOID) {
    log(Ev::Close(ctx as usize));
}
unsafe extern "system" fn on_cq(ctx: PVOID, st: NTSTATUS) {
    log(Ev::Cq(ctx as usize, st));
}
unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    log(Ev::Disconnect(ctx as usize));
}

/// The passive consumer: accepts from inside the connect event (a
/// re-entrant call into the provider).
static PASSIVE_QP: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

unsafe extern "system" fn on_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    log(Ev::Connect(ctx as usize, conn as usize));
    unsafe {
        let d = &*(*conn).Dispatch;
        let mut irl = 0;
        let mut orl = 0;
        let mut len = 0;
        // Size query, then the data.
        let st =
            d.NdkGetConnectionData.unwrap()(conn, &mut irl, &mut orl, ptr::null_mut(), &mut len);
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(len, 56);
        let mut data = vec![0u8; len as usize];
        let st = d.NdkGetConnectionData.unwrap()(
            conn,
            &mut irl,
            &mut orl,
            data.as_mut_ptr().cast(),
            &mut len,
        );
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(&data[..4], b"ndk?");
        let qp = PASSIVE_QP.load(Ordering::SeqCst) as *mut NDK_QP;
        let st = d.NdkAccept.unwrap()(
            conn,
            qp,
            irl,
            orl,
            b"ndk!".as_ptr().cast(),
            4,
            Some(on_disconnect),
            2 as PVOID,
            Some(on_request),
            22 as PVOID,
        );
        assert_eq!(st, STATUS_PENDING);
        ACCEPTED.store(conn as u64, Ordering::SeqCst);
    }
}

fn take_log() -> Vec<Ev> {
    LOG.lock().unwrap().drain(..).collect()
}

// ---- the consumer ----

const SIZE: usize = 64 * 1024;

struct Side {
    adapter: *mut NDK_ADAPTER,
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    qp: *mut NDK_QP,
    mr: *mut NDK_MR,
    buf: Box<[u8]>,
    mdl: Box<HostMdl>,
    token: u32,
}

fn sockaddr(a: SocketAddr) -> (Vec<u8>, ULONG) {
    match a {
        SocketAddr::V4(v4) => {
            let s = SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: v4.port().to_be(),
                sin_addr: IN_ADDR {
                    s_addr: v4.ip().octets(),
                },
                sin_zero: [0; 8],
            };
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&s as *const SOCKADDR_IN).cast::<u8>(),
                    size_of::<SOCKADDR_IN>(),
                )
            };
            (bytes.to_vec(), size_of::<SOCKADDR_IN>() as ULONG)
        }
        SocketAddr::V6(v6) => {
            let s = SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: IN6_ADDR {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&s as *const SOCKADDR_IN6).cast::<u8>(),
                    size_of::<SOCKADDR_IN6>(),
                )
            };
            (bytes.to_vec(), size_of::<SOCKADDR_IN6>() as ULONG)
        }
    }
}

unsafe fn adapter_dispatch<'a>(a: *mut NDK_ADAPTER) -> &'a NDK_ADAPTER_DISPATCH {
    unsafe { &*(*a).Dispatch }
}

impl Side {
    unsafe fn open(ip: IpAddr, platform: &std::sync::Arc<HostPlatform>, seed: u64) -> Side {
        let config = ProviderConfig {
            device: DeviceConfig {
                ip_mode: IpMode::Udp,
                udp_source_port: 4791,
                ca_guid: seed,
                cm: CmConfig::default(),
                rc: EngineConfig {
                    first_qpn: 17,
                    key_seed: seed as u32,
                },
                seed,
            },
            addresses: vec![ip],
            path_mtu: 1024,
            version: NDK_VERSION_1_2,
            limits: Limits::default(),
        };
        let adapter = open_adapter(platform.clone(), config, NDK_VERSION_1_1).expect("open");
        unsafe {
            let d = adapter_dispatch(adapter);
            // Query info: size first, then the struct.
            let mut size = 0;
            assert_eq!(
                d.NdkQueryAdapterInfo.unwrap()(adapter, ptr::null_mut(), &mut size),
                STATUS_BUFFER_TOO_SMALL
            );
            assert_eq!(size as usize, size_of::<NDK_ADAPTER_INFO>());
            let mut info: NDK_ADAPTER_INFO = std::mem::zeroed();
            assert_eq!(
                d.NdkQueryAdapterInfo.unwrap()(adapter, &mut info, &mut size),
                STATUS_SUCCESS
            );
            assert_eq!(info.Version, NDK_VERSION_1_2);
            assert_eq!(info.RdmaTechnology, NdkRoCEv2);
            assert_eq!(info.MaxSrqDepth, 0);
            let mut pd = ptr::null_mut();
            assert_eq!(
                d.NdkCreatePd.unwrap()(adapter, None, ptr::null_mut(), &mut pd),
                STATUS_SUCCESS
            );
            assert_eq!((*pd).Header.ObjectType, NdkObjectTypePd);
            let mut cq = ptr::null_mut();
            assert_eq!(
                d.NdkCreateCq.unwrap()(
                    adapter,
                    64,
                    Some(on_cq),
                    7 as PVOID,
                    ptr::null_mut(),
                    None,
                    ptr::null_mut(),
                    &mut cq
                ),
                STATUS_SUCCESS
            );
            let pdd = &*(*pd).Dispatch;
            let mut qp = ptr::null_mut();
            assert_eq!(
                pdd.NdkCreateQp.unwrap()(
                    pd,
                    cq,
                    cq,
                    0x51 as PVOID,
                    16,
                    16,
                    2,
                    2,
                    0,
                    None,
                    ptr::null_mut(),
                    &mut qp
                ),
                STATUS_SUCCESS
            );
            let mut mr = ptr::null_mut();
            assert_eq!(
                pdd.NdkCreateMr.unwrap()(pd, FALSE, None, ptr::null_mut(), &mut mr),
                STATUS_SUCCESS
            );
            let mut buf = vec![0u8; SIZE].into_boxed_slice();
            let mut mdl = Box::new(HostMdl {
                va: buf.as_mut_ptr(),
                len: SIZE,
            });
            let mrd = &*(*mr).Dispatch;
            let st = mrd.NdkRegisterMr.unwrap()(
                mr,
                (&mut *mdl as *mut HostMdl).cast(),
                SIZE,
                NDK_MR_FLAG_ALLOW_LOCAL_WRITE
                    | NDK_MR_FLAG_ALLOW_REMOTE_READ
                    | NDK_MR_FLAG_ALLOW_REMOTE_WRITE,
                None,
                ptr::null_mut(),
            );
            assert_eq!(st, STATUS_SUCCESS);
            let token = mrd.NdkGetLocalTokenFromMr.unwrap()(mr);
            assert_eq!(token, mrd.NdkGetRemoteTokenFromMr.unwrap()(mr));
            Side {
                adapter,
                pd,
                cq,
                qp,
                mr,
                buf,
                mdl,
                token,
            }
        }
    }

    fn sge(&mut self, off: usize, len: usize) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: unsafe { self.buf.as_mut_ptr().add(off) }.cast(),
            },
            Length: len as ULONG,
            MemoryRegionToken: self.token,
        }
    }

    unsafe fn qp(&self) -> &NDK_QP_DISPATCH {
        unsafe { &*(*self.qp).Dispatch }
    }

    fn results(&self) -> Vec<NDK_RESULT_EX> {
        let mut out: Vec<NDK_RESULT_EX> = Vec::with_capacity(64);
        unsafe {
            let d = &*(*self.cq).Dispatch;
            let n = d.NdkGetCqResultsEx.unwrap()(self.cq, out.as_mut_ptr(), 64);
            out.set_len(n as usize);
        }
        out
    }
}

fn pump(a: &Side, b: &Side) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let mut moved = false;
        for (from, to) in [(a.adapter, b.adapter), (b.adapter, a.adapter)] {
            while let Some(t) = io::poll_transmit(from, &mut buf) {
                moved = true;
                let payload = t.udp_payload(&buf).to_vec();
                io::handle_udp(to, t.src, t.dst, &payload);
            }
        }
        if !moved {
            break;
        }
    }
}

fn run(a_ip: IpAddr, b_ip: IpAddr) {
    let _serial = SERIAL.lock().unwrap();
    take_log();
    let platform = std::sync::Arc::new(HostPlatform {
        clock: AtomicU64::new(1),
    });
    let mut a = unsafe { Side::open(a_ip, &platform, 1) };
    let mut b = unsafe { Side::open(b_ip, &platform, 2) };
    PASSIVE_QP.store(b.qp as u64, Ordering::SeqCst);
    unsafe {
        // B listens; A connects.
        let bd = adapter_dispatch(b.adapter);
        let mut listener = ptr::null_mut();
        assert_eq!(
            bd.NdkCreateListener.unwrap()(
                b.adapter,
                Some(on_connect),
                3 as PVOID,
                None,
                ptr::null_mut(),
                &mut listener
            ),
            STATUS_SUCCESS
        );
        let ld = &*(*listener).Dispatch;
        let (la, la_len) = sockaddr(SocketAddr::new(b_ip, 0));
        assert_eq!(
            ld.NdkListen.unwrap()(listener, la.as_ptr().cast(), la_len, None, ptr::null_mut()),
            STATUS_SUCCESS
        );
        // Port 0: the provider chose one; read it back.
        let mut bound = [0u8; 28];
        let mut blen = 28;
        assert_eq!(
            ld.NdkGetLocalAddress.unwrap()(listener, bound.as_mut_ptr().cast(), &mut blen),
            STATUS_SUCCESS
        );
        let port = u16::from_be_bytes([bound[2], bound[3]]);
        assert!(port >= 49152);

        let ad = adapter_dispatch(a.adapter);
        let mut conn = ptr::null_mut();
        assert_eq!(
            ad.NdkCreateConnector.unwrap()(a.adapter, None, ptr::null_mut(), &mut conn),
            STATUS_SUCCESS
        );
        let cd = &*(*conn).Dispatch;
        let (src, src_len) = sockaddr(SocketAddr::new(a_ip, 0));
        let (dst, dst_len) = sockaddr(SocketAddr::new(b_ip, port));
        // Receives before the connection exists.
        for i in 0..4 {
            let sge = b.sge(i * 1024, 1024);
            assert_eq!(
                b.qp().NdkReceive.unwrap()(b.qp, (100 + i) as PVOID, &sge, 1),
                STATUS_SUCCESS
            );
        }
        let st = cd.NdkConnect.unwrap()(
            conn,
            a.qp,
            src.as_ptr().cast(),
            src_len,
            dst.as_ptr().cast(),
            dst_len,
            4,
            4,
            b"ndk?".as_ptr().cast(),
            4,
            Some(on_request),
            11 as PVOID,
        );
        assert_eq!(st, STATUS_PENDING);
        // Before the connection is up, sends are refused inline.
        let sge = a.sge(0, 8);
        assert_eq!(
            a.qp().NdkSend.unwrap()(a.qp, 1 as PVOID, &sge, 1, 0),
            STATUS_CONNECTION_INVALID
        );
        pump(&a, &b);
        let log = take_log();
        assert!(log.contains(&Ev::Request(11, STATUS_SUCCESS)), "{log:?}");
        assert!(log.iter().any(|e| matches!(e, Ev::Connect(3, _))));
        // A reads B's reply, then completes.
        let mut len = 196;
        let mut data = vec![0u8; 196];
        let mut irl = 0;
        let mut orl = 0;
        assert_eq!(
            cd.NdkGetConnectionData.unwrap()(
                conn,
                &mut irl,
                &mut orl,
                data.as_mut_ptr().cast(),
                &mut len
            ),
            STATUS_SUCCESS
        );
        assert_eq!(&data[..4], b"ndk!");
        assert_eq!((irl, orl), (4, 4));
        assert_eq!(
            cd.NdkCompleteConnect.unwrap()(
                conn,
                Some(on_disconnect),
                1 as PVOID,
                None,
                ptr::null_mut()
            ),
            STATUS_SUCCESS
        );
        pump(&a, &b);
        assert!(take_log().contains(&Ev::Request(22, STATUS_SUCCESS)));
        // Addresses of both ends.
        let mut peer = [0u8; 28];
        let mut plen = 28;
        assert_eq!(
            cd.NdkGetPeerAddress.unwrap()(conn, peer.as_mut_ptr().cast(), &mut plen),
            STATUS_SUCCESS
        );
        assert_eq!(u16::from_be_bytes([peer[2], peer[3]]), port);
        let mut small = 1;
        assert_eq!(
            cd.NdkGetLocalAddress.unwrap()(conn, peer.as_mut_ptr().cast(), &mut small),
            STATUS_BUFFER_TOO_SMALL
        );
        assert_eq!(small, plen);

        // Send/Receive: 3000 bytes in three receive-sized SGEs? One SGE here.
        for (i, byte) in a.buf[..1000].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let sge = a.sge(0, 1000);
        assert_eq!(
            a.qp().NdkSend.unwrap()(
                a.qp,
                31 as PVOID,
                &sge,
                1,
                NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT
            ),
            STATUS_SUCCESS
        );
        // RDMA Write into B's buffer at 8192, then Read it back into A at 16384.
        for (i, byte) in a.buf[4096..8096].iter_mut().enumerate() {
            *byte = (i % 241) as u8 ^ 0x5A;
        }
        let remote = b.buf.as_ptr() as u64 + 8192;
        let sge = a.sge(4096, 4000);
        assert_eq!(
            a.qp().NdkWrite.unwrap()(a.qp, 32 as PVOID, &sge, 1, remote, b.token, 0),
            STATUS_SUCCESS
        );
        let sge = a.sge(16384, 4000);
        assert_eq!(
            a.qp().NdkRead.unwrap()(
                a.qp,
                33 as PVOID,
                &sge,
                1,
                remote,
                b.token,
                NDK_OP_FLAG_READ_FENCE
            ),
            STATUS_SUCCESS
        );
        // A silent write: no completion on success.
        let sge = a.sge(4096, 16);
        assert_eq!(
            a.qp().NdkWrite.unwrap()(
                a.qp,
                34 as PVOID,
                &sge,
                1,
                remote + 4000,
                b.token,
                NDK_OP_FLAG_SILENT_SUCCESS
            ),
            STATUS_SUCCESS
        );
        pump(&a, &b);
        let ra = a.results();
        let ctxs: Vec<usize> = ra.iter().map(|r| r.RequestContext as usize).collect();
        assert_eq!(ctxs, [31, 32, 33], "{ra:?}");
        assert!(
            ra.iter()
                .all(|r| r.Status == STATUS_SUCCESS && r.QPContext as usize == 0x51)
        );
        assert_eq!(ra[0].Type, NdkOperationTypeSend);
        assert_eq!(ra[1].Type, NdkOperationTypeWrite);
        assert_eq!(ra[2].Type, NdkOperationTypeRead);
        let rb = b.results();
        assert_eq!(rb.len(), 1);
        assert_eq!(rb[0].RequestContext as usize, 100);
        assert_eq!(rb[0].BytesTransferred, 1000);
        assert_eq!(rb[0].Type, NdkOperationTypeReceive);
        assert_eq!(&b.buf[..1000], &a.buf[..1000]);
        assert_eq!(&b.buf[8192..12192], &a.buf[4096..8096]);
        assert_eq!(&a.buf[16384..20384], &a.buf[4096..8096]);

        // Disconnect from A: pending, then one completion; B gets its event
        // once and its remaining receives stay posted until it disconnects.
        let st = cd.NdkDisconnect.unwrap()(conn, Some(on_request), 41 as PVOID);
        assert_eq!(st, STATUS_PENDING);
        pump(&a, &b);
        let log = take_log();
        assert_eq!(
            log.iter()
                .filter(|e| **e == Ev::Request(41, STATUS_SUCCESS))
                .count(),
            1
        );
        assert_eq!(log.iter().filter(|e| **e == Ev::Disconnect(2)).count(), 1);
        assert!(b.results().is_empty());
        let bconn = ACCEPTED.load(Ordering::SeqCst) as *mut NDK_CONNECTOR;
        let bcd = &*(*bconn).Dispatch;
        assert_eq!(
            bcd.NdkDisconnect.unwrap()(bconn, Some(on_request), 42 as PVOID),
            STATUS_SUCCESS
        );
        let rb = b.results();
        assert_eq!(rb.len(), 3);
        assert!(rb.iter().all(|r| r.Status == STATUS_CANCELLED));
        // After the disconnect, posts are refused inline.
        let sge = a.sge(0, 8);
        assert_eq!(
            a.qp().NdkSend.unwrap()(a.qp, 1 as PVOID, &sge, 1, 0),
            STATUS_CONNECTION_INVALID
        );

        // Close everything, parents first where the rules allow it: those
        // closes pend until their children are gone.
        for (i, side) in [&a, &b].into_iter().enumerate() {
            let pdd = &*(*side.pd).Dispatch;
            let st = pdd.NdkClosePd.unwrap()(side.pd.cast(), Some(on_close), (900 + i) as PVOID);
            // Its QP and MR are still open: the close waits for them.
            assert_eq!(st, STATUS_PENDING);
        }
        let close = |obj: *mut NDK_OBJECT_HEADER, f: NDK_FN_CLOSE_OBJECT, ctx: usize| {
            f.unwrap()(obj, Some(on_close), ctx as PVOID)
        };
        for (i, side) in [&a, &b].into_iter().enumerate() {
            let _ = close(side.mr.cast(), (*(*side.mr).Dispatch).NdkCloseMr, 910 + i);
        }
        let _ = close(conn.cast(), cd.NdkCloseConnector, 920);
        let _ = close(bconn.cast(), bcd.NdkCloseConnector, 921);
        let _ = close(listener.cast(), ld.NdkCloseListener, 922);
        for (i, side) in [&a, &b].into_iter().enumerate() {
            let _ = close(side.qp.cast(), side.qp().NdkCloseQp, 930 + i);
            let _ = close(side.cq.cast(), (*(*side.cq).Dispatch).NdkCloseCq, 940 + i);
        }
        pump(&a, &b);
        assert_eq!(io::object_count(a.adapter), 0);
        assert_eq!(io::object_count(b.adapter), 0);
        let log = take_log();
        // The pending PD closes completed exactly once each, after their
        // children's.
        for ctx in [900usize, 901] {
            assert_eq!(
                log.iter().filter(|e| **e == Ev::Close(ctx)).count(),
                1,
                "{log:?}"
            );
        }
        let _ = (&a.mdl, &b.mdl);
        close_adapter(a.adapter);
        close_adapter(b.adapter);
    }
}

#[test]
fn a_whole_conversation_through_the_dispatch_tables_ipv4() {
    run(
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2)),
    );
}

#[test]
fn a_whole_conversation_through_the_dispatch_tables_ipv6() {
    run(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 2)),
    );
}

#[test]
fn version_negotiation_at_open() {
    let platform = std::sync::Arc::new(HostPlatform {
        clock: AtomicU64::new(0),
    });
    let config = |ip| ProviderConfig {
        device: DeviceConfig {
            ip_mode: IpMode::Udp,
            udp_source_port: 4791,
            ca_guid: 1,
            cm: CmConfig::default(),
            rc: EngineConfig::default(),
            seed: 1,
        },
        addresses: vec![ip],
        path_mtu: 1024,
        version: NDK_VERSION_1_2,
        limits: Limits::default(),
    };
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(
        open_adapter(platform.clone(), config(ip), NDK_VERSION::new(1, 3)).err(),
        Some(NDIS_STATUS_BAD_VERSION)
    );
    assert_eq!(
        open_adapter(platform.clone(), config(ip), NDK_VERSION_2_1).err(),
        Some(NDIS_STATUS_BAD_VERSION)
    );
    let a = open_adapter(platform, config(ip), NDK_VERSION::new(1, 0)).unwrap();
    unsafe {
        assert_eq!((*a).Header.Version, NDK_VERSION_1_2);
        close_adapter(a);
    }
}
