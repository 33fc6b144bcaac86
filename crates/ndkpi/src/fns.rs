//! Every `NDK_FN_*` function type of ndkpi.h, in the order of shared spec
//! ndkpi.h NDK_FN_* types
//!
//! The header's typedefs carry no calling-convention keyword; on x86_64
//! Windows there is one C convention, which `extern "system"` names
//! (ndkpi.h NDK_FN_* types). Each type is an `Option` of a function pointer: C
//! function pointers are nullable, and `Option<fn>` has the same layout.
//!
//! IRQL: every function may be called at IRQL <= DISPATCH_LEVEL, except
//! NdkQueryAdapterInfo(Ex) (PASSIVE_LEVEL only).

use crate::base::{
    BOOLEAN, GROUP_AFFINITY, GUID, MDL, NTSTATUS, PVOID, SIZE_T, SOCKADDR, UINT32, UINT64, ULONG,
};
use crate::object::*;
use crate::types::{
    NDK_ADAPTER_INFO, NDK_EXTENSION_INTERFACE, NDK_LOGICAL_ADDRESS, NDK_LOGICAL_ADDRESS_MAPPING,
    NDK_RESULT, NDK_RESULT_EX, NDK_SGE,
};
use crate::version::NDK_VERSION;

// ndkpi.h NDK_FN_* types Callbacks implemented by the consumer and called by the provider.

/// Completes an asynchronous close.
pub type NDK_FN_CLOSE_COMPLETION = Option<unsafe extern "system" fn(Context: PVOID)>;
/// Completes an asynchronous request (connect, disconnect, register, ...).
pub type NDK_FN_REQUEST_COMPLETION =
    Option<unsafe extern "system" fn(Context: PVOID, Status: NTSTATUS)>;
/// Completes an asynchronous create; `pNdkObject` is the new object's header.
pub type NDK_FN_CREATE_COMPLETION = Option<
    unsafe extern "system" fn(Context: PVOID, Status: NTSTATUS, pNdkObject: *mut NDK_OBJECT_HEADER),
>;
/// An armed CQ has a completion (or failed: STATUS_BUFFER_OVERFLOW,
/// STATUS_INTERNAL_ERROR).
pub type NDK_FN_CQ_NOTIFICATION_CALLBACK =
    Option<unsafe extern "system" fn(CqNotificationContext: PVOID, CqStatus: NTSTATUS)>;
/// An SRQ fell below its notify threshold (or failed: STATUS_INTERNAL_ERROR).
pub type NDK_FN_SRQ_NOTIFICATION_CALLBACK =
    Option<unsafe extern "system" fn(SrqNotificationContext: PVOID, SrqStatus: NTSTATUS)>;
/// A listener received a connection request, carried by the new connector.
pub type NDK_FN_CONNECT_EVENT_CALLBACK = Option<
    unsafe extern "system" fn(ConnectEventContext: PVOID, pNdkConnector: *mut NDK_CONNECTOR),
>;
/// The peer disconnected (or the connection failed) after establishment.
pub type NDK_FN_DISCONNECT_EVENT_CALLBACK =
    Option<unsafe extern "system" fn(DisconnectEventContext: PVOID)>;
/// NDKPI 2.1: as [`NDK_FN_DISCONNECT_EVENT_CALLBACK`], with a
/// provider-specific reason (0 = none supplied).
pub type NDK_FN_DISCONNECT_EVENT_CALLBACK_EX = Option<
    unsafe extern "system" fn(DisconnectEventContext: PVOID, ProviderDisconnectReason: ULONG),
>;

// ndkpi.h NDK_FN_* types Generic object functions.

/// Closes any object but the adapter. STATUS_SUCCESS (done, completion not
/// called) or STATUS_PENDING (CloseCompletion will be called).
pub type NDK_FN_CLOSE_OBJECT = Option<
    unsafe extern "system" fn(
        pNdkObject: *mut NDK_OBJECT_HEADER,
        CloseCompletion: NDK_FN_CLOSE_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
/// Looks up an extension interface. The version is passed by value.
pub type NDK_FN_QUERY_EXTENSION_INTERFACE = Option<
    unsafe extern "system" fn(
        pNdkObject: *mut NDK_OBJECT_HEADER,
        ExtensionInterfaceID: *mut GUID,
        ExtensionInterfaceVersion: NDK_VERSION,
        pExtensionInterface: *mut NDK_EXTENSION_INTERFACE,
    ) -> NTSTATUS,
>;

// ndkpi.h NDK_FN_* types Adapter functions.

/// PASSIVE_LEVEL. Writes up to `*pBufferSize` bytes; STATUS_BUFFER_TOO_SMALL
/// with the needed size in `*pBufferSize`.
pub type NDK_FN_QUERY_ADAPTER_INFO = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        pInfo: *mut NDK_ADAPTER_INFO,
        pBufferSize: *mut ULONG,
    ) -> NTSTATUS,
>;
/// PASSIVE_LEVEL. Typedef present in ndkpi.h but referenced by no dispatch
/// table and no documentation page (no public header confirms it: a project decision).
pub type NDK_FN_QUERY_ADAPTER_INFO_EX = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        Version: NDK_VERSION,
        pInfo: *mut NDK_ADAPTER_INFO,
        pBufferSize: *mut ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_CQ = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        CqDepth: ULONG,
        CqNotification: NDK_FN_CQ_NOTIFICATION_CALLBACK,
        CqNotificationContext: PVOID,
        Affinity: *mut GROUP_AFFINITY,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkCq: *mut *mut NDK_CQ,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_PD = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkPd: *mut *mut NDK_PD,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_SHARED_ENDPOINT = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        pAddress: *const SOCKADDR,
        AddressLength: ULONG,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkSharedEndpoint: *mut *mut NDK_SHARED_ENDPOINT,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_CONNECTOR = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkConnector: *mut *mut NDK_CONNECTOR,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_LISTENER = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        ConnectEvent: NDK_FN_CONNECT_EVENT_CALLBACK,
        ConnectEventContext: PVOID,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkListener: *mut *mut NDK_LISTENER,
    ) -> NTSTATUS,
>;
/// Maps a virtually contiguous MDL to adapter logical pages; `RequestCompletion`
/// is optional here.
pub type NDK_FN_BUILD_LAM = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        Mdl: *mut MDL,
        Length: SIZE_T,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
        pNdkLAM: *mut NDK_LOGICAL_ADDRESS_MAPPING,
        pLAMSize: *mut ULONG,
        pFBO: *mut ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_RELEASE_LAM = Option<
    unsafe extern "system" fn(
        pNdkAdapter: *mut NDK_ADAPTER,
        pNdkLAM: *mut NDK_LOGICAL_ADDRESS_MAPPING,
    ),
>;

// ndkpi.h NDK_FN_* types CQ functions.

pub type NDK_FN_RESIZE_CQ = Option<
    unsafe extern "system" fn(
        pNdkCq: *mut NDK_CQ,
        CqDepth: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
/// `Type` is one of the `NDK_CQ_NOTIFY_*` values.
pub type NDK_FN_ARM_CQ = Option<unsafe extern "system" fn(pNdkCq: *mut NDK_CQ, Type: ULONG)>;
/// Returns the number of results written (0 = the CQ is empty).
pub type NDK_FN_GET_CQ_RESULTS = Option<
    unsafe extern "system" fn(
        pNdkCq: *mut NDK_CQ,
        Results: *mut NDK_RESULT,
        nResults: ULONG,
    ) -> ULONG,
>;
pub type NDK_FN_CONTROL_CQ_INTERRUPT_MODERATION = Option<
    unsafe extern "system" fn(
        pNdkCq: *mut NDK_CQ,
        ModerationInterval: ULONG,
        ModerationCount: ULONG,
    ) -> NTSTATUS,
>;
/// NDKPI 1.2.
pub type NDK_FN_GET_CQ_RESULTS_EX = Option<
    unsafe extern "system" fn(
        pNdkCq: *mut NDK_CQ,
        Results: *mut NDK_RESULT_EX,
        nResults: ULONG,
    ) -> ULONG,
>;

// ndkpi.h NDK_FN_* types MR functions.

pub type NDK_FN_REGISTER_MR = Option<
    unsafe extern "system" fn(
        pNdkMr: *mut NDK_MR,
        Mdl: *mut MDL,
        Length: SIZE_T,
        Flags: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_DEREGISTER_MR = Option<
    unsafe extern "system" fn(
        pNdkMr: *mut NDK_MR,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_INITIALIZE_FAST_REGISTER_MR = Option<
    unsafe extern "system" fn(
        pNdkMr: *mut NDK_MR,
        AdapterPageCount: ULONG,
        RemoteAccess: BOOLEAN,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_REMOTE_TOKEN_FROM_MR =
    Option<unsafe extern "system" fn(pNdkMr: *mut NDK_MR) -> UINT32>;
pub type NDK_FN_GET_LOCAL_TOKEN_FROM_MR =
    Option<unsafe extern "system" fn(pNdkMr: *mut NDK_MR) -> UINT32>;

// ndkpi.h NDK_FN_* types MW functions.

pub type NDK_FN_GET_REMOTE_TOKEN_FROM_MW =
    Option<unsafe extern "system" fn(pNdkMw: *mut NDK_MW) -> UINT32>;

// ndkpi.h NDK_FN_* types SRQ functions.

pub type NDK_FN_MODIFY_SRQ = Option<
    unsafe extern "system" fn(
        pNdkSrq: *mut NDK_SRQ,
        SrqDepth: ULONG,
        NotifyThreshold: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_SRQ_RECEIVE = Option<
    unsafe extern "system" fn(
        pNdkSrq: *mut NDK_SRQ,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
    ) -> NTSTATUS,
>;

// ndkpi.h NDK_FN_* types QP functions: results go to the CQs, never through a callback.

/// Every pending request completes with STATUS_CANCELLED.
pub type NDK_FN_FLUSH = Option<unsafe extern "system" fn(pNdkQp: *mut NDK_QP)>;
pub type NDK_FN_SEND = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_RECEIVE = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_BIND = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pMr: *mut NDK_MR,
        pMw: *mut NDK_MW,
        VirtualAddress: PVOID,
        Length: SIZE_T,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_FAST_REGISTER = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pMr: *mut NDK_MR,
        AdapterPageCount: ULONG,
        AdapterPageArray: *const NDK_LOGICAL_ADDRESS,
        FBO: ULONG,
        Length: SIZE_T,
        BaseVirtualAddress: PVOID,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
/// `pNdkMrOrMw` is the header of an MR or an MW.
pub type NDK_FN_INVALIDATE = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pNdkMrOrMw: *mut NDK_OBJECT_HEADER,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_READ = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
        RemoteAddress: UINT64,
        RemoteToken: UINT32,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_WRITE = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
        RemoteAddress: UINT64,
        RemoteToken: UINT32,
        Flags: ULONG,
    ) -> NTSTATUS,
>;
/// NDKPI 1.2. Note the order: `Flags` comes before `RemoteToken`.
pub type NDK_FN_SEND_AND_INVALIDATE = Option<
    unsafe extern "system" fn(
        pNdkQp: *mut NDK_QP,
        RequestContext: PVOID,
        pSgl: *const NDK_SGE,
        nSge: ULONG,
        Flags: ULONG,
        RemoteToken: UINT32,
    ) -> NTSTATUS,
>;

// ndkpi.h NDK_FN_* types PD functions.

pub type NDK_FN_CREATE_MR = Option<
    unsafe extern "system" fn(
        pNdkPd: *mut NDK_PD,
        FastRegister: BOOLEAN,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkMr: *mut *mut NDK_MR,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_MW = Option<
    unsafe extern "system" fn(
        pNdkPd: *mut NDK_PD,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkMw: *mut *mut NDK_MW,
    ) -> NTSTATUS,
>;
/// `SrqNotification` is optional.
pub type NDK_FN_CREATE_SRQ = Option<
    unsafe extern "system" fn(
        pNdkPd: *mut NDK_PD,
        SrqDepth: ULONG,
        MaxReceiveRequestSge: ULONG,
        NotifyThreshold: ULONG,
        SrqNotification: NDK_FN_SRQ_NOTIFICATION_CALLBACK,
        SrqNotificationContext: PVOID,
        Affinity: *mut GROUP_AFFINITY,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkSrq: *mut *mut NDK_SRQ,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_QP = Option<
    unsafe extern "system" fn(
        pNdkPd: *mut NDK_PD,
        pReceiveCq: *mut NDK_CQ,
        pInitiatorCq: *mut NDK_CQ,
        QPContext: PVOID,
        ReceiveQueueDepth: ULONG,
        InitiatorQueueDepth: ULONG,
        MaxReceiveRequestSge: ULONG,
        MaxInitiatorRequestSge: ULONG,
        InlineDataSize: ULONG,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkQp: *mut *mut NDK_QP,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CREATE_QP_WITH_SRQ = Option<
    unsafe extern "system" fn(
        pNdkPd: *mut NDK_PD,
        pReceiveCq: *mut NDK_CQ,
        pInitiatorCq: *mut NDK_CQ,
        pSrq: *mut NDK_SRQ,
        QPContext: PVOID,
        InitiatorQueueDepth: ULONG,
        MaxInitiatorRequestSge: ULONG,
        InlineDataSize: ULONG,
        CreateCompletion: NDK_FN_CREATE_COMPLETION,
        RequestContext: PVOID,
        ppNdkQp: *mut *mut NDK_QP,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_PRIVILEGED_MEMORY_REGION_TOKEN =
    Option<unsafe extern "system" fn(pNdkPd: *mut NDK_PD, pToken: *mut UINT32)>;

// ndkpi.h NDK_FN_* types Connector functions.

pub type NDK_FN_CONNECT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pNdkQp: *mut NDK_QP,
        pSrcAddress: *const SOCKADDR,
        SrcAddressLength: ULONG,
        pDestAddress: *const SOCKADDR,
        DestAddressLength: ULONG,
        InboundReadLimit: ULONG,
        OutboundReadLimit: ULONG,
        pPrivateData: *const core::ffi::c_void,
        PrivateDataLength: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CONNECT_WITH_SHARED_ENDPOINT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pNdkQp: *mut NDK_QP,
        pNdkSharedEndpoint: *mut NDK_SHARED_ENDPOINT,
        pDestAddress: *const SOCKADDR,
        DestAddressLength: ULONG,
        InboundReadLimit: ULONG,
        OutboundReadLimit: ULONG,
        pPrivateData: *const core::ffi::c_void,
        PrivateDataLength: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_COMPLETE_CONNECT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        DisconnectEvent: NDK_FN_DISCONNECT_EVENT_CALLBACK,
        DisconnectEventContext: PVOID,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_ACCEPT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pNdkQp: *mut NDK_QP,
        InboundReadLimit: ULONG,
        OutboundReadLimit: ULONG,
        pPrivateData: *const core::ffi::c_void,
        PrivateDataLength: ULONG,
        DisconnectEvent: NDK_FN_DISCONNECT_EVENT_CALLBACK,
        DisconnectEventContext: PVOID,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_REJECT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pPrivateData: *const core::ffi::c_void,
        PrivateDataLength: ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_CONNECTION_DATA = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pInboundReadLimit: *mut ULONG,
        pOutboundReadLimit: *mut ULONG,
        pPrivateData: PVOID,
        pPrivateDataLength: *mut ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_LOCAL_ADDRESS = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pAddress: *mut SOCKADDR,
        pAddressLength: *mut ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_PEER_ADDRESS = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pAddress: *mut SOCKADDR,
        pAddressLength: *mut ULONG,
    ) -> NTSTATUS,
>;
/// Graceful disconnect, then the implicit flush (docs/disconnect.md).
pub type NDK_FN_DISCONNECT = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
/// Typedef present in ndkpi.h but referenced by no dispatch table and no
/// documentation page (ndkpi.h NDK_FN_* types, no public header confirms it: a project decision).
pub type NDK_FN_DISCONNECT_EX = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        Abortive: BOOLEAN,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
/// NDKPI 2.1.
pub type NDK_FN_COMPLETE_CONNECT_EX = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        DisconnectEvent: NDK_FN_DISCONNECT_EVENT_CALLBACK_EX,
        DisconnectEventContext: PVOID,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
/// NDKPI 2.1: [`NDK_FN_ACCEPT`] with the disconnect-event-ex callback.
pub type NDK_FN_ACCEPT_EX = Option<
    unsafe extern "system" fn(
        pNdkConnector: *mut NDK_CONNECTOR,
        pNdkQp: *mut NDK_QP,
        InboundReadLimit: ULONG,
        OutboundReadLimit: ULONG,
        pPrivateData: *const core::ffi::c_void,
        PrivateDataLength: ULONG,
        DisconnectEvent: NDK_FN_DISCONNECT_EVENT_CALLBACK_EX,
        DisconnectEventContext: PVOID,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;

// ndkpi.h NDK_FN_* types Listener functions.

pub type NDK_FN_LISTEN = Option<
    unsafe extern "system" fn(
        pNdkListener: *mut NDK_LISTENER,
        pAddress: *const SOCKADDR,
        AddressLength: ULONG,
        RequestCompletion: NDK_FN_REQUEST_COMPLETION,
        RequestContext: PVOID,
    ) -> NTSTATUS,
>;
pub type NDK_FN_GET_LISTENER_LOCAL_ADDRESS = Option<
    unsafe extern "system" fn(
        pNdkListener: *mut NDK_LISTENER,
        pAddress: *mut SOCKADDR,
        pAddressLength: *mut ULONG,
    ) -> NTSTATUS,
>;
pub type NDK_FN_CONTROL_CONNECT_EVENTS =
    Option<unsafe extern "system" fn(pNdkListener: *mut NDK_LISTENER, Pause: BOOLEAN)>;

// ndkpi.h NDK_FN_* types Shared-endpoint functions.

pub type NDK_FN_GET_SHARED_ENDPOINT_LOCAL_ADDRESS = Option<
    unsafe extern "system" fn(
        pNdkSharedEndpoint: *mut NDK_SHARED_ENDPOINT,
        pAddress: *mut SOCKADDR,
        pAddressLength: *mut ULONG,
    ) -> NTSTATUS,
>;
