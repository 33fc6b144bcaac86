//! Each dispatch table's member count and order against the lists of shared
//! spec ndkpi.h dispatch tables (transcribed here from the digest, which took them
//! from ndkpi.h and the ndis.sys PDB layouts). Consumers index the tables by
//! position, so a reordered or missing member is an ABI break.

use ndkpi::*;

fn check(table: &str, members: &[&str], offsets: &[usize], size: usize, expected: &[&str]) {
    assert_eq!(
        members, expected,
        "{table}: members or order differ from ndkpi.h"
    );
    assert_eq!(members.len(), offsets.len(), "{table}");
    for (i, (name, off)) in members.iter().zip(offsets).enumerate() {
        assert_eq!(
            *off,
            i * size_of::<usize>(),
            "{table}.{name} is not at index {i}"
        );
    }
    assert_eq!(size, expected.len() * size_of::<usize>(), "{table}: size");
}

macro_rules! check_table {
    ($ty:ident, [$($name:literal),* $(,)?]) => {
        check(
            stringify!($ty),
            $ty::MEMBERS,
            $ty::OFFSETS,
            size_of::<$ty>(),
            &[$($name),*],
        )
    };
}

#[test]
fn adapter_dispatch() {
    check_table!(
        NDK_ADAPTER_DISPATCH,
        [
            "NdkQueryExtension",
            "NdkQueryAdapterInfo",
            "NdkCreateCq",
            "NdkCreatePd",
            "NdkCreateSharedEndpoint",
            "NdkCreateConnector",
            "NdkCreateListener",
            "NdkBuildLAM",
            "NdkReleaseLAM",
        ]
    );
}

#[test]
fn cq_dispatch() {
    check_table!(
        NDK_CQ_DISPATCH,
        [
            "NdkCloseCq",
            "NdkQueryExtension",
            "NdkResizeCq",
            "NdkArmCq",
            "NdkGetCqResults",
            "NdkControlCqInterruptModeration",
            "NdkGetCqResultsEx",
        ]
    );
}

#[test]
fn mr_dispatch() {
    check_table!(
        NDK_MR_DISPATCH,
        [
            "NdkCloseMr",
            "NdkQueryExtension",
            "NdkRegisterMr",
            "NdkDeregisterMr",
            "NdkInitializeFastRegisterMr",
            "NdkGetRemoteTokenFromMr",
            "NdkGetLocalTokenFromMr",
        ]
    );
}

#[test]
fn mw_dispatch() {
    check_table!(
        NDK_MW_DISPATCH,
        ["NdkCloseMw", "NdkQueryExtension", "NdkGetRemoteTokenFromMw"]
    );
}

#[test]
fn srq_dispatch() {
    check_table!(
        NDK_SRQ_DISPATCH,
        [
            "NdkCloseSrq",
            "NdkQueryExtension",
            "NdkModifySrq",
            "NdkSrqReceive"
        ]
    );
}

#[test]
fn qp_dispatch() {
    check_table!(
        NDK_QP_DISPATCH,
        [
            "NdkCloseQp",
            "NdkQueryExtension",
            "NdkFlush",
            "NdkSend",
            "NdkReceive",
            "NdkBind",
            "NdkFastRegister",
            "NdkInvalidate",
            "NdkRead",
            "NdkWrite",
            "NdkSendAndInvalidate",
        ]
    );
}

#[test]
fn pd_dispatch() {
    check_table!(
        NDK_PD_DISPATCH,
        [
            "NdkClosePd",
            "NdkQueryExtension",
            "NdkCreateMr",
            "NdkCreateMw",
            "NdkCreateSrq",
            "NdkCreateQp",
            "NdkCreateQpWithSrq",
            "NdkGetPrivilegedMemoryRegionToken",
        ]
    );
}

const CONNECTOR_V1: [&str; 11] = [
    "NdkCloseConnector",
    "NdkQueryExtension",
    "NdkConnect",
    "NdkConnectWithSharedEndpoint",
    "NdkCompleteConnect",
    "NdkAccept",
    "NdkReject",
    "NdkGetConnectionData",
    "NdkGetLocalAddress",
    "NdkGetPeerAddress",
    "NdkDisconnect",
];

#[test]
fn connector_dispatch_1x() {
    check(
        "NDK_CONNECTOR_DISPATCH_V1",
        NDK_CONNECTOR_DISPATCH_V1::MEMBERS,
        NDK_CONNECTOR_DISPATCH_V1::OFFSETS,
        size_of::<NDK_CONNECTOR_DISPATCH_V1>(),
        &CONNECTOR_V1,
    );
    // The PDB-confirmed x64 size of the 1.1/1.2 table.
    assert_eq!(size_of::<NDK_CONNECTOR_DISPATCH_V1>(), 0x58);
}

#[test]
fn connector_dispatch_2_1() {
    let mut expected = CONNECTOR_V1.to_vec();
    expected.extend(["NdkCompleteConnectEx", "NdkAcceptEx"]);
    check(
        "NDK_CONNECTOR_DISPATCH",
        NDK_CONNECTOR_DISPATCH::MEMBERS,
        NDK_CONNECTOR_DISPATCH::OFFSETS,
        size_of::<NDK_CONNECTOR_DISPATCH>(),
        &expected,
    );
    // The 2.1 table starts with the 1.x table, member for member, so a 1.x
    // consumer can be handed the 2.1 table.
    assert_eq!(
        &NDK_CONNECTOR_DISPATCH::OFFSETS[..11],
        NDK_CONNECTOR_DISPATCH_V1::OFFSETS
    );
}

#[test]
fn listener_dispatch() {
    check_table!(
        NDK_LISTENER_DISPATCH,
        [
            "NdkCloseListener",
            "NdkQueryExtension",
            "NdkListen",
            "NdkGetLocalAddress",
            "NdkControlConnectEvents",
        ]
    );
}

#[test]
fn shared_endpoint_dispatch() {
    check_table!(
        NDK_SHARED_ENDPOINT_DISPATCH,
        [
            "NdkCloseSharedEndpoint",
            "NdkQueryExtension",
            "NdkGetLocalAddress"
        ]
    );
}

#[test]
fn v1_view_keeps_every_member() {
    unsafe extern "system" fn disconnect(
        _: *mut NDK_CONNECTOR,
        _: NDK_FN_REQUEST_COMPLETION,
        _: PVOID,
    ) -> NTSTATUS {
        STATUS_SUCCESS
    }
    unsafe extern "system" fn reject(
        _: *mut NDK_CONNECTOR,
        _: *const core::ffi::c_void,
        _: ULONG,
    ) -> NTSTATUS {
        STATUS_CONNECTION_ABORTED
    }
    let full = NDK_CONNECTOR_DISPATCH {
        NdkCloseConnector: None,
        NdkQueryExtension: None,
        NdkConnect: None,
        NdkConnectWithSharedEndpoint: None,
        NdkCompleteConnect: None,
        NdkAccept: None,
        NdkReject: Some(reject),
        NdkGetConnectionData: None,
        NdkGetLocalAddress: None,
        NdkGetPeerAddress: None,
        NdkDisconnect: Some(disconnect),
        NdkCompleteConnectEx: None,
        NdkAcceptEx: None,
    };
    let v1 = full.v1();
    // Read back through the 1.x view, as a 1.x consumer indexes the table.
    let d = v1.NdkDisconnect.expect("disconnect member");
    let r = v1.NdkReject.expect("reject member");
    // SAFETY: both are the functions defined above; they ignore their arguments.
    unsafe {
        assert_eq!(
            d(core::ptr::null_mut(), None, core::ptr::null_mut()),
            STATUS_SUCCESS
        );
        assert_eq!(
            r(core::ptr::null_mut(), core::ptr::null(), 0),
            STATUS_CONNECTION_ABORTED
        );
    }
    assert!(v1.NdkConnect.is_none());
}

#[test]
fn object_types_match_their_headers() {
    assert_eq!(NDK_ADAPTER::OBJECT_TYPE, 1);
    assert_eq!(NDK_QP::OBJECT_TYPE, 2);
    assert_eq!(NDK_CQ::OBJECT_TYPE, 3);
    assert_eq!(NDK_MR::OBJECT_TYPE, 4);
    assert_eq!(NDK_MW::OBJECT_TYPE, 5);
    assert_eq!(NDK_PD::OBJECT_TYPE, 6);
    assert_eq!(NDK_SHARED_ENDPOINT::OBJECT_TYPE, 7);
    assert_eq!(NDK_CONNECTOR::OBJECT_TYPE, 8);
    assert_eq!(NDK_LISTENER::OBJECT_TYPE, 9);
    assert_eq!(NDK_SRQ::OBJECT_TYPE, 10);
    assert_eq!(NdkObjectTypeMax, 11);
    let h = NDK_OBJECT_HEADER::new(NDK_VERSION_1_2, NdkObjectTypeQp);
    assert!(h.NdkReserved.rf.iter().all(|p| p.is_null()));
}
