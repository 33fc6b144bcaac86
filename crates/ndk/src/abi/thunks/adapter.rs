//! NDK_ADAPTER_DISPATCH: opening the adapter, its queries, the objects it
//! creates, logical address mappings; and the shells' I/O entry points.

use super::*;

/// OPEN_NDK_ADAPTER_HANDLER's work: negotiates the version and opens an
/// adapter over `platform`. The returned pointer stays valid until
/// [`close_adapter`].
pub fn open_adapter(
    platform: Arc<dyn Platform>,
    config: ProviderConfig,
    requested: NDK_VERSION,
) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    negotiate_version(requested, &[NDK_VERSION_1_2])?;
    let lock = platform.new_lock();
    let provider = Provider::new(config, PlatformMemory(platform.clone()));
    let shared = Arc::new(Shared {
        platform,
        lock,
        core: UnsafeCell::new(Core {
            provider,
            wrappers: BTreeMap::new(),
            draining: false,
        }),
    });
    let adapter = Box::new(AdapterObj {
        ndk: NDK_ADAPTER {
            Header: header(NdkObjectTypeAdapter),
            Dispatch: &ADAPTER,
        },
        shared,
    });
    Ok(Box::into_raw(adapter).cast())
}

/// A further OPEN_NDK_ADAPTER_HANDLER on the miniport adapter whose engine
/// `existing` runs: a new NDK_ADAPTER object over the same provider core,
/// so every consumer of one miniport adapter (SMB client and server, say)
/// shares its addresses, ports and listeners, and a connection between two
/// of them is a loopback connection of one engine. The shell may pass any
/// open adapter of the engine to [`io`].
///
/// # Safety
/// `existing` came from [`open_adapter`] or this function and is not being
/// closed.
pub unsafe fn open_adapter_shared(
    existing: *mut NDK_ADAPTER,
    requested: NDK_VERSION,
) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    negotiate_version(requested, &[NDK_VERSION_1_2])?;
    // SAFETY: per the contract, a live adapter of this module.
    let e = unsafe { existing.cast::<AdapterObj>().as_ref() }.ok_or(NDIS_STATUS_FAILURE)?;
    let adapter = Box::new(AdapterObj {
        ndk: NDK_ADAPTER {
            Header: header(NdkObjectTypeAdapter),
            Dispatch: &ADAPTER,
        },
        shared: e.shared.clone(),
    });
    Ok(Box::into_raw(adapter).cast())
}

/// CLOSE_NDK_ADAPTER_HANDLER's work: frees the adapter object; with the
/// engine's last open adapter, the engine and any object a consumer left
/// open (see `Drop for Core`).
///
/// # Safety
/// `adapter` came from [`open_adapter`] or [`open_adapter_shared`], no call
/// on it or its objects is running or will run, and no upcall is in
/// progress.
pub unsafe fn close_adapter(adapter: *mut NDK_ADAPTER) {
    if adapter.is_null() {
        return;
    }
    // SAFETY: per the contract.
    drop(unsafe { Box::from_raw(adapter.cast::<AdapterObj>()) });
}

/// Runs the adapter's I/O: shells call these from their I/O path.
pub mod io {
    use super::*;
    use roce::device::Transmit;
    use roce::time::Instant;

    fn shared<'a>(adapter: *mut NDK_ADAPTER) -> Option<&'a Shared> {
        // SAFETY: the shell passes the adapter it opened.
        let a = unsafe { adapter.cast::<AdapterObj>().as_ref() }?;
        Some(&a.shared)
    }

    /// A UDP payload arrived (UDP mode).
    pub fn handle_udp(adapter: *mut NDK_ADAPTER, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_udp(now, src, dst, payload));
        }
    }

    /// [`handle_udp`] at a clock reading the shell already took (one per
    /// batch of datagrams, say). A reading older than one the adapter
    /// already saw counts as that one: time never runs backwards inside.
    pub fn handle_udp_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_udp(now, src, dst, payload)
            });
        }
    }

    /// The link refused a datagram the adapter sent, at a clock reading
    /// the shell took (see [`handle_udp_at`]; the provider's
    /// `handle_refused` says what follows).
    pub fn handle_refused_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        dst: IpAddr,
        datagram: &[u8],
    ) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_refused(now, dst, datagram)
            });
        }
    }

    /// An IP datagram arrived (raw mode).
    pub fn handle_ip(adapter: *mut NDK_ADAPTER, datagram: &[u8]) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_ip(now, datagram));
        }
    }

    /// The next datagram to send, written into `buf`.
    pub fn poll_transmit(adapter: *mut NDK_ADAPTER, buf: &mut [u8]) -> Option<Transmit> {
        let s = shared(adapter)?;
        let now = s.platform.now();
        s.call_at(now, |c| c.provider.poll_transmit(now, buf))
    }

    /// [`poll_transmit`] at a clock reading the shell already took (see
    /// [`handle_udp_at`]).
    pub fn poll_transmit_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        shared(adapter)?.call_at(now, |c| {
            let now = c.provider.now();
            c.provider.poll_transmit(now, buf)
        })
    }

    /// The next deadline (reads no clock).
    pub fn poll_timeout(adapter: *mut NDK_ADAPTER) -> Option<Instant> {
        shared(adapter)?.with_locked(|c| c.provider.poll_timeout())
    }

    /// Runs due timers.
    pub fn handle_timeout(adapter: *mut NDK_ADAPTER) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_timeout(now));
        }
    }

    /// [`handle_timeout`] at a clock reading the shell already took (see
    /// [`handle_udp_at`]).
    pub fn handle_timeout_at(adapter: *mut NDK_ADAPTER, now: Instant) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_timeout(now)
            });
        }
    }

    /// The adapter's established connections and bound endpoints (for
    /// OID_NDK_CONNECTIONS and OID_NDK_LOCAL_ENDPOINTS).
    pub fn snapshot(adapter: *mut NDK_ADAPTER) -> Option<crate::oids::Snapshot> {
        shared(adapter).map(|s| s.with(|c| crate::oids::Snapshot::of(&c.provider)))
    }

    /// Live objects of the adapter (for leak checks).
    pub fn object_count(adapter: *mut NDK_ADAPTER) -> usize {
        shared(adapter).map_or(0, |s| s.with(|c| c.provider.object_count()))
    }
}

pub(super) unsafe extern "system" fn query_extension(
    _obj: *mut NDK_OBJECT_HEADER,
    _id: *mut GUID,
    _version: NDK_VERSION,
    _out: *mut NDK_EXTENSION_INTERFACE,
) -> NTSTATUS {
    // ndkrs defines no extension interfaces.
    STATUS_NOT_SUPPORTED
}

pub(super) unsafe fn adapter_shared<'a>(a: *mut NDK_ADAPTER) -> Option<&'a Shared> {
    // SAFETY: NDKPI: the consumer passes the NDK_ADAPTER this provider returned from open and has not closed; it is an `AdapterObj`.
    let a = unsafe { a.cast::<AdapterObj>().as_ref() }?;
    Some(&a.shared)
}

pub(super) unsafe extern "system" fn query_adapter_info(
    a: *mut NDK_ADAPTER,
    info: *mut NDK_ADAPTER_INFO,
    size: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI: `size` is null or points to a ULONG (NdkQueryAdapterInfo).
    let Some(size) = (unsafe { size.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let full = core::mem::size_of::<NDK_ADAPTER_INFO>() as ULONG;
    // Consumers built before NDIS 6.50 pass the shorter struct.
    let short = NDK_ADAPTER_INFO::SIZE_THROUGH_ADAPTER_FLAGS as ULONG;
    if info.is_null() || *size < short {
        *size = full;
        return STATUS_BUFFER_TOO_SMALL;
    }
    let value = s.with(|c| adapter_info(c.provider.config()));
    let n = (*size).min(full);
    // SAFETY: the consumer's buffer holds `*size` bytes; copy what fits.
    unsafe {
        ptr::copy_nonoverlapping(
            (&value as *const NDK_ADAPTER_INFO).cast::<u8>(),
            info.cast::<u8>(),
            n as usize,
        );
    }
    *size = n;
    STATUS_SUCCESS
}

/// NDK_ADAPTER_INFO of an adapter (ndkinfo.h NDK_ADAPTER_INFO).
pub fn adapter_info(config: &ProviderConfig) -> NDK_ADAPTER_INFO {
    let l = config.limits;
    NDK_ADAPTER_INFO {
        Version: config.version,
        VendorId: 0,
        DeviceId: 0,
        MaxRegistrationSize: l.max_registration as usize,
        MaxWindowSize: l.max_registration as usize,
        FRMRPageCount: l.max_fr_pages,
        MaxInitiatorRequestSge: l.max_sge,
        MaxReceiveRequestSge: l.max_sge,
        MaxReadRequestSge: l.max_read_sge,
        MaxTransferLength: l.max_transfer,
        MaxInlineDataSize: l.inline_cap(),
        MaxInboundReadLimit: l.max_read_limit,
        MaxOutboundReadLimit: l.max_read_limit,
        MaxReceiveQueueDepth: l.max_qp_depth,
        MaxInitiatorQueueDepth: l.max_qp_depth,
        MaxSrqDepth: l.max_srq_depth,
        MaxCqDepth: l.max_cq_depth,
        LargeRequestThreshold: 16 * 1024,
        MaxCallerData: roce::cm::manager::MAX_REQ_PRIVATE_DATA as ULONG,
        // Accept carries 196 bytes, reject 148: advertise what both hold.
        MaxCalleeData: roce::cm::manager::MAX_REJ_PRIVATE_DATA as ULONG,
        // Not RDMA_READ_LOCAL_INVALIDATE_SUPPORTED: NdkRead ignores that
        // flag (ndkpi.h NDK_OP_FLAG_*); not CQ_INTERRUPT_MODERATION_SUPPORTED (the NDKPI completion handling requirements page).
        AdapterFlags: NDK_ADAPTER_FLAG_RDMA_READ_SINK_NOT_REQUIRED
            | NDK_ADAPTER_FLAG_CQ_RESIZE_SUPPORTED
            | NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED,
        RdmaTechnology: NdkRoCEv2,
    }
}

/// Runs a create: `make` under the lock, then the object pointer goes
/// out (an inline completion: the create callback is not called,
/// the NDK_FN_REQUEST_COMPLETION page). A null out-pointer is STATUS_INVALID_PARAMETER
/// before anything is created, so nothing leaks.
///
/// # Safety
/// `out` is null or valid for a write.
pub(super) unsafe fn created<T>(
    s: &Shared,
    kind: Kind,
    object_type: NDK_OBJECT_TYPE,
    dispatch: &'static impl Sized,
    out: *mut *mut T,
    make: impl FnOnce(&mut Core) -> Result<ObjectId, NTSTATUS>,
) -> NTSTATUS {
    // SAFETY: `out` is null or points to the consumer's out-pointer (this function's contract).
    let Some(o) = (unsafe { out.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let r = s.call(|c| {
        let id = make(c)?;
        let p = new_obj(object_type, dispatch, s, id);
        c.wrappers.insert(id, (p, kind));
        Ok(p)
    });
    match r {
        Ok(p) => {
            *o = p.cast();
            STATUS_SUCCESS
        }
        Err(st) => st,
    }
}

/// Whether two objects belong to the same adapter (an object of another
/// adapter is STATUS_INVALID_PARAMETER, project decision).
pub(super) fn same(a: &Shared, b: &Shared) -> bool {
    ptr::eq(a, b)
}

pub(super) unsafe extern "system" fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: ULONG,
    notify: NDK_FN_CQ_NOTIFICATION_CALLBACK,
    notify_ctx: PVOID,
    _affinity: *mut GROUP_AFFINITY,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_CQ,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateCq).
    unsafe {
        created(s, Kind::Cq, NdkObjectTypeCq, &CQ, out, |c| {
            c.provider.create_cq(depth, callback(notify, notify_ctx))
        })
    }
}

pub(super) unsafe extern "system" fn create_pd(
    a: *mut NDK_ADAPTER,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_PD,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreatePd).
    unsafe {
        created(s, Kind::Pd, NdkObjectTypePd, &PD, out, |c| {
            c.provider.create_pd()
        })
    }
}

pub(super) unsafe extern "system" fn create_shared_endpoint(
    a: *mut NDK_ADAPTER,
    addr: *const SOCKADDR,
    len: ULONG,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_SHARED_ENDPOINT,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI: `addr` is null or points to `len` readable bytes.
    let Some(addr) = (unsafe { read_sockaddr(addr, len) }) else {
        return STATUS_INVALID_ADDRESS;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable.
    unsafe {
        created(
            s,
            Kind::SharedEndpoint,
            NdkObjectTypeSharedEndpoint,
            &SHARED_ENDPOINT,
            out,
            |c| c.provider.create_shared_endpoint(addr),
        )
    }
}

pub(super) unsafe extern "system" fn create_connector(
    a: *mut NDK_ADAPTER,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_CONNECTOR,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateConnector).
    unsafe {
        created(
            s,
            Kind::Connector,
            NdkObjectTypeConnector,
            &CONNECTOR,
            out,
            |c| Ok(c.provider.create_connector()),
        )
    }
}

pub(super) unsafe extern "system" fn create_listener(
    a: *mut NDK_ADAPTER,
    event: NDK_FN_CONNECT_EVENT_CALLBACK,
    event_ctx: PVOID,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_LISTENER,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateListener).
    unsafe {
        created(
            s,
            Kind::Listener,
            NdkObjectTypeListener,
            &LISTENER,
            out,
            |c| Ok(c.provider.create_listener(callback(event, event_ctx))),
        )
    }
}

/// Page size of logical address mappings.
pub(super) const PAGE: u64 = 4096;

pub(super) unsafe extern "system" fn build_lam(
    a: *mut NDK_ADAPTER,
    mdl: *mut MDL,
    length: SIZE_T,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
    lam: *mut NDK_LOGICAL_ADDRESS_MAPPING,
    lam_size: *mut ULONG,
    fbo: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI NdkBuildLAM: each out-parameter is null or points to a ULONG.
    let (Some(lam_size), Some(fbo)) = (unsafe { lam_size.as_mut() }, unsafe { fbo.as_mut() })
    else {
        return STATUS_INVALID_PARAMETER;
    };
    // The logical pages of each MDL of the chain, in order: the engine
    // reaches them through the privileged token (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).
    let room = if lam.is_null() {
        0
    } else {
        (*lam_size as usize).saturating_sub(NDK_LOGICAL_ADDRESS_MAPPING::size_for(0).unwrap_or(0))
            / size_of::<NDK_LOGICAL_ADDRESS>()
    };
    let array = if lam.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: `lam` is the consumer's non-null mapping buffer; only the
        // address of its page array is taken, nothing is read.
        unsafe { ptr::addr_of_mut!((*lam).AdapterPageArray).cast::<NDK_LOGICAL_ADDRESS>() }
    };
    // SAFETY: the consumer's MDL chain, valid for this call; `put` writes
    // only below `room`, which the consumer's `lam_size` covers.
    let walk = unsafe { Walk::new(&*s.platform, mdl) };
    let got = lam_pages(walk, length as u64, PAGE, room as u64, |i, page| {
        // SAFETY: `lam_pages` calls with `i < room`, inside the consumer's
        // buffer of `lam_size` bytes.
        unsafe { array.add(i as usize).write(page as NDK_LOGICAL_ADDRESS) }
    });
    let (pages, offset) = match got {
        Ok(x) => x,
        Err(st) => return st,
    };
    let Some(need) = ULONG::try_from(pages)
        .ok()
        .and_then(NDK_LOGICAL_ADDRESS_MAPPING::size_for)
    else {
        return STATUS_INVALID_PARAMETER;
    };
    if lam.is_null() || (*lam_size as usize) < need {
        *lam_size = need as ULONG;
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: NDKPI NdkBuildLAM: `lam` points to `*lam_size` writable bytes, checked above to hold the header and `pages` entries.
    unsafe {
        (*lam).AdapterContext = ptr::null_mut();
        (*lam).AdapterPageCount = pages as ULONG;
    }
    *lam_size = need as ULONG;
    *fbo = offset as ULONG;
    STATUS_SUCCESS
}

pub(super) unsafe extern "system" fn release_lam(
    _a: *mut NDK_ADAPTER,
    _lam: *mut NDK_LOGICAL_ADDRESS_MAPPING,
) {
    // A mapping holds no provider resources.
}

pub(super) static ADAPTER: NDK_ADAPTER_DISPATCH = NDK_ADAPTER_DISPATCH {
    NdkQueryExtension: Some(query_extension),
    NdkQueryAdapterInfo: Some(query_adapter_info),
    NdkCreateCq: Some(create_cq),
    NdkCreatePd: Some(create_pd),
    NdkCreateSharedEndpoint: Some(create_shared_endpoint),
    NdkCreateConnector: Some(create_connector),
    NdkCreateListener: Some(create_listener),
    NdkBuildLAM: Some(build_lam),
    NdkReleaseLAM: Some(release_lam),
};
