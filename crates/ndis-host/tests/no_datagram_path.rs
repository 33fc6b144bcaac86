//! The adapter loads without the filter (its INF not installed:
//! NdisFRegisterFilterDriver fails) and must say it has no datagram path.
//!
//! What must happen: DriverEntry succeeds anyway; MiniportInitializeEx
//! succeeds and reports NDK disabled in NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES
//! (so NDIS opens no NDK adapter and SMB Direct does not list the
//! interface as RDMA capable); the shell's OpenNDKAdapterHandler, called
//! anyway, fails with NDIS_STATUS_ADAPTER_NOT_READY; OID_NDK_SET_STATE(TRUE)
//! completes with NDIS_STATUS_SUCCESS (the OID_NDK_SET_STATE page: the
//! OID succeeds unless an error occurs) and signals no NetEventNDKEnable
//! while no path exists (checked after the work queues drained); the
//! adapter's own IP traffic still works; halt and unload leave nothing.
//! DriverEntry writes exactly one System event log entry saying so
//! (NdisWriteEventLogEntry on its driver object, at PASSIVE_LEVEL):
//! EVENT_NDIS_UNSUPPORTED_CONFIGURATION, the driver and the missing
//! ndkrsflt.inf as strings, NdisFRegisterFilterDriver's status as data
//! (docs/windows.md, "Event log"); nothing more is logged later.

mod support;

use std::net::Ipv4Addr;

use ndis_host::{contract, machine, stack};
use ndis_sys::*;
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 2);

#[test]
fn without_the_filter_the_adapter_loads_and_reports_no_ndk() {
    let cfg = config(IP, NIC_IP, PEER);
    machine::set_filter_install_missing(true);
    assert_eq!(machine::boot(&cfg), 0, "DriverEntry without the filter");
    assert!(!stack::stack().filter_registered);
    let log = stack::stack().seen.event_log.clone();
    assert_eq!(
        log,
        [stack::EventLogEntry {
            code: EVENT_NDIS_UNSUPPORTED_CONFIGURATION,
            unique: 1,
            strings: vec!["ndkrs".into(), "ndkrsflt.inf".into()],
            data: NDIS_STATUS_FAILURE.to_le_bytes().to_vec(),
        }],
        "one event log entry: no datagram path"
    );
    assert_eq!(machine::initialize(cfg.luid), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);
    assert_eq!(
        stack::stack().ndk_attrs,
        Some(false),
        "NDK attributes: disabled"
    );
    ndk_opens_refused("the shell refuses an NDK open without a datagram path");
    let mut on = [1u8];
    let (st, _, _) = machine::oid(
        false,
        NdisRequestSetInformation,
        ndkpi::OID_NDK_SET_STATE,
        &mut on,
    );
    assert_eq!(st, NDIS_STATUS_SUCCESS, "OID_NDK_SET_STATE(TRUE)");
    machine::settle();
    assert!(
        stack::stack().seen.pnp.is_empty(),
        "no NDK event without a path"
    );
    assert_eq!(
        machine::open_ndk_unchecked().err(),
        Some(NDIS_STATUS_ADAPTER_NOT_READY),
        "still no NDK after NDIS asked for it"
    );
    // The adapter's statistics still answer.
    let (st, _) = machine::query_with(true, ndkpi::OID_NDK_STATISTICS);
    assert_eq!(st, NDIS_STATUS_SUCCESS);

    assert_eq!(
        stack::stack().seen.event_log.len(),
        1,
        "logged once, at DriverEntry"
    );
    machine::pause(false);
    machine::halt();
    let leaks = machine::unload();
    assert!(leaks.is_empty(), "left at unload: {leaks:?}");
    let breaches = contract::breaches();
    assert!(breaches.is_empty(), "NDIS contract breaches: {breaches:#?}");
}
