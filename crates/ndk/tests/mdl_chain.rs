//! MDL chains through the dispatch tables (NDK_FN_REGISTER_MR and
//! NDK_FN_BUILD_LAM take "an MDL or a chain of MDLs"): a memory region
//! registered over a chain of three separately allocated buffers of odd
//! sizes is sent from and received into across two adapters, and the bytes
//! land buffer by buffer in order; NdkBuildLAM over a chain lists each
//! MDL's pages. The platform maps only the test's buffers, so a byte the
//! engine places outside them is a failed access, not a wild write.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;
use std::sync::Arc;

use ndk::abi::{close_adapter, open_adapter};
use ndk::provider::Limits;
use ndk_consumer::{Adapter, HostMdl, HostPlatform, Pd, Qp, QpConfig, connect_pair, fixed_config};
use ndkpi::*;

/// A test MDL: one buffer and the next MDL of the chain (MDL->Next), as
/// the consumer kit's host platform reads them.
type ChainMdl = HostMdl;

/// The consumer kit's host platform: it maps only the buffers the test
/// allowed (its memory map).
type TestPlatform = HostPlatform;

/// Three buffers chained by their MDLs, with a guard byte after each that
/// the platform does not map.
struct Chain {
    bufs: Vec<Box<[u8]>>,
    mdls: Vec<ChainMdl>,
}

impl Chain {
    fn new(platform: &TestPlatform, sizes: &[usize]) -> Chain {
        let mut bufs: Vec<Box<[u8]>> = sizes
            .iter()
            .map(|&n| vec![0u8; n + 1].into_boxed_slice())
            .collect();
        let mut mdls: Vec<ChainMdl> = Vec::new();
        for (b, &n) in bufs.iter_mut().zip(sizes) {
            let map = platform.map().expect("a checked platform");
            map.allow(b.as_ptr() as u64, n as u64);
            mdls.push(ChainMdl {
                va: b.as_mut_ptr(),
                len: n,
                next: ptr::null_mut(),
            });
        }
        // The vector is not resized after this, so the links stay valid.
        let p = mdls.as_mut_ptr();
        for i in 1..mdls.len() {
            unsafe { (*p.add(i - 1)).next = p.add(i) };
        }
        Chain { bufs, mdls }
    }
    fn head(&mut self) -> *mut MDL {
        self.mdls.as_mut_ptr().cast()
    }
    fn len(&self) -> usize {
        self.mdls.iter().map(|m| m.len).sum()
    }
    /// The bytes the chain describes, in chain order.
    fn bytes(&self) -> Vec<u8> {
        self.bufs
            .iter()
            .zip(&self.mdls)
            .flat_map(|(b, m)| unsafe { std::slice::from_raw_parts(b.as_ptr(), m.len) }.to_vec())
            .collect()
    }
    fn fill(&mut self, seed: u8) {
        let mut k = 0u32;
        for (b, m) in self.bufs.iter_mut().zip(&self.mdls) {
            for x in &mut b[..m.len] {
                *x = (k.wrapping_mul(31) as u8) ^ seed;
                k += 1;
            }
        }
    }
    /// One SGE over the whole chain with MR token `token`, starting at the
    /// first MDL's virtual address (the region's tag).
    fn sge(&self, token: u32) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: self.mdls[0].va.cast(),
            },
            Length: self.len() as ULONG,
            MemoryRegionToken: token,
        }
    }
    fn guards(&self) -> Vec<u8> {
        self.bufs.iter().map(|b| b[b.len() - 1]).collect()
    }
}

unsafe extern "system" fn on_cq(_ctx: PVOID, _st: NTSTATUS) {}
struct Side {
    adapter: *mut NDK_ADAPTER,
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    qp: *mut NDK_QP,
}

unsafe fn open(platform: Arc<TestPlatform>, ip: Ipv4Addr, seed: u64) -> Side {
    let config = fixed_config(IpAddr::V4(ip), seed, Limits::default());
    let adapter = open_adapter(platform, config, NDK_VERSION_1_2).unwrap();
    // SAFETY: just opened; the test closes it after its objects.
    let a = unsafe { Adapter::from_raw(adapter) };
    let pd = a.create_pd().expect("NdkCreatePd");
    let cq = a
        .create_cq(64, Some(on_cq), ptr::null_mut())
        .expect("NdkCreateCq");
    let qp = pd
        .create_qp(&QpConfig {
            receive_depth: 16,
            initiator_depth: 16,
            receive_sges: 4,
            initiator_sges: 4,
            ..QpConfig::on(&cq, ptr::null_mut(), 16, 16)
        })
        .expect("NdkCreateQp");
    Side {
        adapter,
        pd: pd.into_raw(),
        cq: cq.into_raw(),
        qp: qp.into_raw(),
    }
}

/// Registers `mdl` (a chain) for `len` bytes; the MR's token.
unsafe fn register(side: &Side, mdl: *mut MDL, len: usize) -> Result<u32, NTSTATUS> {
    // SAFETY: the side's live PD (a view, not closed through).
    let pd = unsafe { Pd::from_raw(side.pd) };
    let mr = pd.create_mr(false).expect("NdkCreateMr");
    // SAFETY: the chain outlives the MR (both live until the test ends).
    let st = unsafe {
        mr.register(
            mdl,
            len,
            NDK_MR_FLAG_ALLOW_LOCAL_WRITE,
            None,
            ptr::null_mut(),
        )
    };
    if st != STATUS_SUCCESS {
        return Err(st);
    }
    let token = mr.local_token();
    let _ = mr.into_raw(); // closed with the adapter
    Ok(token)
}

fn pump(a: &Side, b: &Side) {
    // SAFETY: both adapters are open until the test ends.
    let (a, b) = unsafe { (Adapter::from_raw(a.adapter), Adapter::from_raw(b.adapter)) };
    for _ in 0..10_000 {
        if !(a.deliver_to(&b) | b.deliver_to(&a)) {
            return;
        }
    }
    panic!("the adapters never went quiet");
}

fn results(side: &Side) -> Vec<NDK_RESULT> {
    let mut out: Vec<NDK_RESULT> = Vec::with_capacity(16);
    unsafe {
        let n = (*(*side.cq).Dispatch).NdkGetCqResults.unwrap()(side.cq, out.as_mut_ptr(), 16);
        out.set_len(n as usize);
    }
    out
}

/// Returns the link, whose accept plan the listener's context points at:
/// keep it until the adapters are closed, then drop it (its handles close
/// with the adapters; dropping it frees only the plan).
unsafe fn connect(a: &Side, b: &Side) -> ndk_consumer::Link {
    // SAFETY: both adapters and A's QP are live until the test ends; the
    // listener and connector are closed with their adapters.
    let (aa, ba, qp, bqp) = unsafe {
        (
            Adapter::from_raw(a.adapter),
            Adapter::from_raw(b.adapter),
            Qp::from_raw(a.qp),
            Qp::from_raw(b.qp),
        )
    };
    let link = connect_pair(
        (&aa, &qp, SocketAddr::from(([10, 5, 0, 1], 0))),
        (&ba, &bqp, SocketAddr::from(([10, 5, 0, 2], 445))),
        || pump(a, b),
    )
    .expect("connected");
    let _ = (qp.into_raw(), bqp.into_raw());
    link
}

/// B posts a receive into the whole of `dst` (MR token `tb`, context 7),
/// A sends the whole of `src` (token `ta`, context 9), each as one SGE
/// ([`Chain::sge`]): each completes once with STATUS_SUCCESS, the receive with every byte.
unsafe fn send_whole_chain(a: &Side, b: &Side, src: &Chain, ta: u32, dst: &Chain, tb: u32) {
    let rsge = dst.sge(tb);
    // SAFETY: both QPs are live until the test ends; the SGEs' regions
    // are registered and outlive the requests.
    unsafe {
        assert_eq!(
            (*(*b.qp).Dispatch).NdkReceive.unwrap()(b.qp, 7 as PVOID, &rsge, 1),
            STATUS_SUCCESS
        );
    }
    let ssge = src.sge(ta);
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            (*(*a.qp).Dispatch).NdkSend.unwrap()(a.qp, 9 as PVOID, &ssge, 1, 0),
            STATUS_SUCCESS
        );
    }
    pump(a, b);
    let (ra, rb) = (results(a), results(b));
    assert_eq!(ra.len(), 1, "one send completion");
    assert_eq!(ra[0].Status, STATUS_SUCCESS);
    assert_eq!(ra[0].RequestContext as usize, 9);
    assert_eq!(rb.len(), 1, "one receive completion");
    assert_eq!(rb[0].Status, STATUS_SUCCESS);
    assert_eq!(rb[0].BytesTransferred as usize, src.len());
}

#[test]
fn a_three_mdl_chain_registers_and_moves_data_in_order() {
    let platform = TestPlatform::manual();
    // Odd sizes so pieces end mid-page and mid-packet (path MTU 1024).
    let mut src = Chain::new(&platform, &[1000, 3001, 2500]);
    let mut dst = Chain::new(&platform, &[4097, 7, 2397]);
    assert_eq!(src.len(), dst.len());
    src.fill(0x5A);
    let want = src.bytes();
    let a = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 1), 1) };
    let b = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 2), 2) };
    unsafe {
        let link = connect(&a, &b);
        let ta = register(&a, src.head(), src.len()).expect("register the source chain");
        let tb = register(&b, dst.head(), dst.len()).expect("register the sink chain");
        // One SGE per side spanning the whole chain, starting at the first
        // MDL's virtual address (the region's tag).
        send_whole_chain(&a, &b, &src, ta, &dst, tb);
        assert_eq!(dst.bytes(), want, "bytes land MDL by MDL in chain order");
        assert_eq!(dst.guards(), [0, 0, 0], "nothing past any MDL");
        close_adapter(a.adapter);
        close_adapter(b.adapter);
        drop(link);
    }
}

#[test]
fn registration_refuses_a_chain_shorter_than_the_length() {
    let platform = TestPlatform::manual();
    let mut c = Chain::new(&platform, &[100, 200, 300]);
    let a = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 1), 1) };
    unsafe {
        assert_eq!(register(&a, c.head(), 601), Err(STATUS_INVALID_PARAMETER));
        assert!(register(&a, c.head(), 600).is_ok());
        close_adapter(a.adapter);
    }
}

/// Every NdkRegisterMr failure the host platform can produce, on one MR:
/// each returns its status inline and leaves nothing registered
/// (NdkDeregisterMr: STATUS_INVALID_DEVICE_STATE); an MR closed right
/// after a failure closes (STATUS_SUCCESS); the MR that failed every way
/// then registers a valid chain and a send from it delivers its bytes.
#[test]
fn a_failed_registration_leaves_the_mr_closable_and_reusable() {
    let platform = TestPlatform::manual();
    let mut src = Chain::new(&platform, &[1000, 3001, 2500]);
    let mut dst = Chain::new(&platform, &[6501]);
    src.fill(0xA5);
    let want = src.bytes();
    let a = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 1), 1) };
    let b = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 2), 2) };
    unsafe {
        let link = connect(&a, &b);
        let pd = Pd::from_raw(a.pd);
        let mr = pd.create_mr(false).expect("NdkCreateMr");
        let f = NDK_MR_FLAG_ALLOW_LOCAL_WRITE;
        let reg = |mdl: *mut MDL, len: usize, flags: ULONG| {
            mr.register(mdl, len, flags, None, ptr::null_mut())
        };
        let unregistered = |case: &str| {
            let dereg = (*(*mr.as_ptr()).Dispatch).NdkDeregisterMr.unwrap();
            assert_eq!(
                dereg(mr.as_ptr(), None, ptr::null_mut()),
                STATUS_INVALID_DEVICE_STATE,
                "{case}: left registered"
            );
        };
        let n = src.len();
        assert_eq!(reg(src.head(), n, 0x100), STATUS_INVALID_PARAMETER);
        unregistered("unknown flags");
        assert_eq!(reg(src.head(), 0, f), STATUS_INVALID_PARAMETER);
        unregistered("length 0");
        assert_eq!(reg(src.head(), n + 1, f), STATUS_INVALID_PARAMETER);
        unregistered("length past the chain");
        // The third MDL cannot be resolved (no address), after the walk
        // built the piece list of the first two.
        let mut broken = Chain::new(&platform, &[10, 20, 30]);
        broken.mdls[2].va = ptr::null_mut();
        assert_eq!(reg(broken.head(), 60, f), STATUS_INVALID_PARAMETER);
        unregistered("unresolvable third MDL");
        // A cycle longer than the walk's bound.
        let mut cycle = Chain::new(&platform, &[8]);
        let me: *mut ChainMdl = &mut cycle.mdls[0];
        cycle.mdls[0].next = me;
        assert_eq!(reg(cycle.head(), 8 * 1000, f), STATUS_INVALID_PARAMETER);
        unregistered("cyclic chain");
        // The engine refuses a piece whose range wraps, after the NDK
        // layer built the piece list.
        let mut wraps = Chain::new(&platform, &[10, 20]);
        wraps.mdls[1].va = (u64::MAX - 5) as *mut u8;
        assert_eq!(reg(wraps.head(), 30, f), STATUS_INVALID_PARAMETER);
        unregistered("wrapping piece");
        // Closed right after a failure.
        let once = pd.create_mr(false).expect("NdkCreateMr");
        let st = once.register(broken.head(), 60, f, None, ptr::null_mut());
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        assert_eq!(once.close(None, ptr::null_mut()), STATUS_SUCCESS);
        // A fast-register MR refuses NdkRegisterMr and closes.
        let fr = pd.create_mr(true).expect("NdkCreateMr(FastRegister)");
        let st = fr.register(src.head(), n, f, None, ptr::null_mut());
        assert_eq!(st, STATUS_INVALID_DEVICE_REQUEST);
        assert_eq!(fr.close(None, ptr::null_mut()), STATUS_SUCCESS);

        // The MR that failed every way now registers and sends.
        assert_eq!(reg(src.head(), n, f), STATUS_SUCCESS);
        assert_eq!(reg(src.head(), n, f), STATUS_INVALID_DEVICE_STATE);
        let ta = mr.local_token();
        let tb = register(&b, dst.head(), dst.len()).expect("register the sink");
        send_whole_chain(&a, &b, &src, ta, &dst, tb);
        assert_eq!(dst.bytes(), want, "the bytes sent from the reused MR");
        assert_eq!(mr.close(None, ptr::null_mut()), STATUS_SUCCESS);
        let _ = pd.into_raw();
        close_adapter(a.adapter);
        close_adapter(b.adapter);
        drop(link);
    }
}

#[test]
fn build_lam_lists_every_mdls_pages() {
    // Page-aligned 3-page buffers, each MDL a page-aligned piece of one
    // (the LAM has one first byte offset, so inner MDLs must meet on page
    // boundaries).
    const P: usize = 4096;
    let platform = TestPlatform::manual();
    let mut store: Vec<Vec<u8>> = (0..3).map(|_| vec![0u8; 4 * P]).collect();
    let base: Vec<*mut u8> = store
        .iter_mut()
        .map(|v| {
            let p = v.as_mut_ptr();
            unsafe { p.add(p.align_offset(P)) }
        })
        .collect();
    let mut mdls = [
        ChainMdl {
            va: unsafe { base[0].add(P - 0x100) },
            len: 0x100,
            next: ptr::null_mut(),
        },
        ChainMdl {
            va: base[1],
            len: 2 * P,
            next: ptr::null_mut(),
        },
        ChainMdl {
            va: base[2],
            len: 0x80,
            next: ptr::null_mut(),
        },
    ];
    let [m0, m1, m2] = &mut mdls;
    m1.next = &mut *m2;
    m0.next = &mut *m1;
    let last: *mut ChainMdl = m0.next;
    let last: *mut ChainMdl = unsafe { (*last).next };
    let a = unsafe { open(platform.clone(), Ipv4Addr::new(10, 5, 0, 1), 1) };
    unsafe {
        let build = (*(*a.adapter).Dispatch).NdkBuildLAM.unwrap();
        let total = 0x100 + 2 * P + 0x80;
        let mut size: ULONG = 0;
        let mut fbo: ULONG = 0;
        let head: *mut MDL = (&mut mdls[0] as *mut ChainMdl).cast();
        // NdkBuildLAM over the whole chain, into `lam` (null: the size only).
        let lam_of = |lam: *mut NDK_LOGICAL_ADDRESS_MAPPING, size: &mut ULONG, fbo: &mut ULONG| {
            build(
                a.adapter,
                head,
                total,
                None,
                ptr::null_mut(),
                lam,
                size,
                fbo,
            )
        };
        let st = lam_of(ptr::null_mut(), &mut size, &mut fbo);
        assert_eq!(st, STATUS_BUFFER_TOO_SMALL);
        assert_eq!(
            size as usize,
            NDK_LOGICAL_ADDRESS_MAPPING::size_for(4).unwrap()
        );
        let mut mem = vec![0u64; size as usize / 8 + 1];
        let lam = mem.as_mut_ptr().cast::<NDK_LOGICAL_ADDRESS_MAPPING>();
        let st = lam_of(lam, &mut size, &mut fbo);
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(fbo, 0xF00);
        assert_eq!((*lam).AdapterPageCount, 4);
        let pages = std::slice::from_raw_parts(
            ptr::addr_of!((*lam).AdapterPageArray).cast::<NDK_LOGICAL_ADDRESS>(),
            4,
        );
        let want = [
            base[0] as u64,
            base[1] as u64,
            base[1] as u64 + P as u64,
            base[2] as u64,
        ];
        let got: Vec<u64> = pages.iter().map(|&p| p as u64).collect();
        assert_eq!(got, want);
        // An inner MDL that starts mid-page cannot be one LAM.
        (*last).va = base[2].add(8);
        let st = lam_of(lam, &mut size, &mut fbo);
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        close_adapter(a.adapter);
    }
}
