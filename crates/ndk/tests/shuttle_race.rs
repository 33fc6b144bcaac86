//! Concurrency of the shared adapter state, explored with shuttle: threads
//! posting sends and receives, polling and arming CQs, flushing the QP and
//! pumping datagrams race through the dispatch tables, under many random
//! schedules (SHUTTLE_ITERATIONS, default 60). The adapter lock is a spin
//! lock on shuttle's instrumented atomic, so every acquisition is a point
//! where shuttle may switch threads, and the upcalls the provider makes
//! after releasing it interleave with everything else.
//!
//! Checked on every schedule: every request posted with STATUS_SUCCESS
//! completes exactly once (success, or STATUS_CANCELLED after the flush);
//! no completion appears for a request that was refused inline; CQ
//! notifications never overlap for one CQ.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::Ordering as StdOrdering;

use ndk::abi::{RawLock, close_adapter, open_adapter};
use ndk::provider::Limits;
use ndk_consumer::{
    Access, Adapter, HostMdl, HostPlatform, ManualClock, Qp, QpConfig, connect_pair, fixed_config,
};
use ndkpi::*;
use shuttle::sync::atomic::{AtomicBool, Ordering};

struct ShuttleLock(AtomicBool);

impl RawLock for ShuttleLock {
    fn lock(&self) {
        while self
            .0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            shuttle::thread::yield_now();
        }
    }
    fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

fn shuttle_lock() -> Box<dyn RawLock> {
    Box::new(ShuttleLock(AtomicBool::new(false)))
}

/// The consumer kit's host platform with the shuttle lock: the one thing
/// this test changes, so that every lock acquisition is a point where
/// shuttle may switch threads.
fn test_platform() -> std::sync::Arc<HostPlatform> {
    std::sync::Arc::new(
        HostPlatform::new(ManualClock::default(), Access::Trusted).with_lock(shuttle_lock),
    )
}

/// Notifications in progress per CQ context (must never exceed 1).
static IN_NOTIFY: Mutex<BTreeMap<usize, u32>> = Mutex::new(BTreeMap::new());
static OVERLAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

unsafe extern "system" fn on_cq(ctx: PVOID, _st: NTSTATUS) {
    let c = ctx as usize;
    {
        let mut m = IN_NOTIFY.lock().unwrap();
        let n = m.entry(c).or_insert(0);
        *n += 1;
        if *n > 1 {
            OVERLAP.store(true, StdOrdering::SeqCst);
        }
    }
    shuttle::thread::yield_now();
    *IN_NOTIFY.lock().unwrap().get_mut(&c).unwrap() -= 1;
}

struct Side {
    adapter: *mut NDK_ADAPTER,
    cq: *mut NDK_CQ,
    qp: *mut NDK_QP,
    token: u32,
    buf: Box<[u8]>,
    _mdl: Box<HostMdl>,
}

// The raw pointers are the adapter's objects, used only through the
// dispatch tables, which the provider synchronizes.
unsafe impl Send for Side {}
unsafe impl Sync for Side {}

unsafe fn open(ip: IpAddr, cq_ctx: usize) -> Side {
    let config = fixed_config(ip, cq_ctx as u64, Limits::default());
    let adapter = open_adapter(test_platform(), config, NDK_VERSION_1_2).unwrap();
    // SAFETY: just opened; the scenario closes it after its objects.
    let a = unsafe { Adapter::from_raw(adapter) };
    let pd = a.create_pd().expect("NdkCreatePd");
    let cq = a
        .create_cq(256, Some(on_cq), cq_ctx as PVOID)
        .expect("NdkCreateCq");
    let qp = pd
        .create_qp(&QpConfig::on(&cq, ptr::null_mut(), 64, 64))
        .expect("NdkCreateQp");
    let mr = pd.create_mr(false).expect("NdkCreateMr");
    let mut buf = vec![0u8; 65536].into_boxed_slice();
    let mut mdl = Box::new(HostMdl::new(buf.as_mut_ptr(), buf.len()));
    // SAFETY: `Side` keeps the buffer and its MDL until the adapter closes.
    let st = unsafe {
        mr.register(
            (&mut *mdl as *mut HostMdl).cast(),
            65536,
            NDK_MR_FLAG_ALLOW_LOCAL_WRITE,
            None,
            ptr::null_mut(),
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    let token = mr.local_token();
    let _ = (pd.into_raw(), mr.into_raw()); // closed with the adapter
    Side {
        adapter,
        cq: cq.into_raw(),
        qp: qp.into_raw(),
        token,
        buf,
        _mdl: mdl,
    }
}

fn pump_once(a: &Side, b: &Side) -> bool {
    // SAFETY: both adapters are open until the scenario closes them.
    let (a, b) = unsafe { (Adapter::from_raw(a.adapter), Adapter::from_raw(b.adapter)) };
    a.deliver_to(&b) | b.deliver_to(&a)
}

fn poll(side: &Side, seen: &Mutex<BTreeMap<usize, Vec<NTSTATUS>>>) {
    let mut out: Vec<NDK_RESULT> = Vec::with_capacity(32);
    unsafe {
        let d = &*(*side.cq).Dispatch;
        let n = d.NdkGetCqResults.unwrap()(side.cq, out.as_mut_ptr(), 32);
        out.set_len(n as usize);
        d.NdkArmCq.unwrap()(side.cq, NDK_CQ_NOTIFY_ANY);
    }
    let mut s = seen.lock().unwrap();
    for r in out {
        s.entry(r.RequestContext as usize)
            .or_default()
            .push(r.Status);
    }
}

fn scenario() {
    let a = unsafe { open(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)), 1) };
    let b = unsafe { open(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 2)), 2) };
    let seen: std::sync::Arc<Mutex<BTreeMap<usize, Vec<NTSTATUS>>>> = Default::default();
    let posted: std::sync::Arc<Mutex<Vec<usize>>> = Default::default();
    unsafe {
        // Connect A -> B (single-threaded setup).
        let link = connect_pair(
            (
                &Adapter::from_raw(a.adapter),
                &Qp::from_raw(a.qp),
                SocketAddr::from(([10, 3, 0, 1], 0)),
            ),
            (
                &Adapter::from_raw(b.adapter),
                &Qp::from_raw(b.qp),
                SocketAddr::from(([10, 3, 0, 2], 445)),
            ),
            || while pump_once(&a, &b) {},
        )
        .expect("connected");
        // Kept until the adapters are closed (the listener's context is its
        // accept plan), then dropped: its handles close with the adapters.
        // Receives for every send, posted up front.
        for i in 0..6usize {
            let sge = NDK_SGE {
                Address: NDK_SGE_ADDRESS {
                    VirtualAddress: b.buf.as_ptr().add(i * 64) as PVOID,
                },
                Length: 64,
                MemoryRegionToken: b.token,
            };
            assert_eq!(
                (*(*b.qp).Dispatch).NdkReceive.unwrap()(b.qp, (1000 + i) as PVOID, &sge, 1),
                STATUS_SUCCESS
            );
        }
        let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
        let mut threads = Vec::new();
        {
            let (a, posted) = (a.clone(), posted.clone());
            threads.push(shuttle::thread::spawn(move || {
                for i in 0..6usize {
                    let sge = NDK_SGE {
                        Address: NDK_SGE_ADDRESS {
                            VirtualAddress: a.buf.as_ptr().add(i * 64) as PVOID,
                        },
                        Length: 64,
                        MemoryRegionToken: a.token,
                    };
                    let st =
                        (*(*a.qp).Dispatch).NdkSend.unwrap()(a.qp, (2000 + i) as PVOID, &sge, 1, 0);
                    if st == STATUS_SUCCESS {
                        posted.lock().unwrap().push(2000 + i);
                    }
                }
            }));
        }
        {
            let (a, b) = (a.clone(), b.clone());
            threads.push(shuttle::thread::spawn(move || {
                for _ in 0..4 {
                    pump_once(&a, &b);
                }
            }));
        }
        {
            let (a, b, seen) = (a.clone(), b.clone(), seen.clone());
            threads.push(shuttle::thread::spawn(move || {
                for _ in 0..3 {
                    poll(&a, &seen);
                    poll(&b, &seen);
                }
            }));
        }
        {
            let a = a.clone();
            threads.push(shuttle::thread::spawn(move || {
                // NdkFlush races the posts (the NDKPI work request posting requirements and deferred processing scheme pages).
                (*(*a.qp).Dispatch).NdkFlush.unwrap()(a.qp);
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        // Quiesce: deliver everything, flush both QPs, drain both CQs.
        while pump_once(&a, &b) {}
        (*(*a.qp).Dispatch).NdkFlush.unwrap()(a.qp);
        (*(*b.qp).Dispatch).NdkFlush.unwrap()(b.qp);
        while pump_once(&a, &b) {}
        for _ in 0..4 {
            poll(&a, &seen);
            poll(&b, &seen);
        }
        let seen = seen.lock().unwrap();
        let posted = posted.lock().unwrap();
        for ctx in posted.iter().copied().chain(1000..1006) {
            let v = seen.get(&ctx).cloned().unwrap_or_default();
            assert_eq!(v.len(), 1, "request {ctx} completed {v:?}");
            assert!(
                v[0] == STATUS_SUCCESS || v[0] == STATUS_CANCELLED,
                "{ctx}: {:#x}",
                v[0]
            );
        }
        for ctx in seen.keys() {
            assert!(
                *ctx >= 1000 && *ctx < 1006 || posted.contains(ctx),
                "completion for unposted {ctx}"
            );
        }
        assert!(
            !OVERLAP.load(StdOrdering::SeqCst),
            "two notifications of one CQ at once"
        );
        let (a, b) = (
            std::sync::Arc::try_unwrap(a).ok().unwrap(),
            std::sync::Arc::try_unwrap(b).ok().unwrap(),
        );
        close_adapter(a.adapter);
        close_adapter(b.adapter);
        drop(link);
    }
}

#[test]
fn posts_polls_flushes_and_io_race_with_nothing_lost() {
    let iterations = std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    shuttle::check_random(scenario, iterations);
}
