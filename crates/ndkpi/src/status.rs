//! NTSTATUS and NDIS_STATUS values that NDK providers return or complete with
//! (ntstatus.h values; ntstatus.h, ndkpi.h).
//!
//! Each constant's doc says which NDKPI calls document it. Values outside the
//! documented lists are marked as such; their use is a provider decision.

use crate::base::{NDIS_STATUS, NTSTATUS};

/// Converts a status written as its unsigned hexadecimal code.
const fn st(code: u32) -> NTSTATUS {
    code as NTSTATUS
}

/// Success; every call.
pub const STATUS_SUCCESS: NTSTATUS = st(0x0000_0000);
/// A wait timed out (informational). Not named by the NDKPI pages.
pub const STATUS_TIMEOUT: NTSTATUS = st(0x0000_0102);
/// The call will complete through its completion callback.
pub const STATUS_PENDING: NTSTATUS = st(0x0000_0103);
/// CQ notification: the CQ overran and is broken.
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = st(0x8000_0005);
/// Generic failure. Not named by the NDKPI pages.
pub const STATUS_UNSUCCESSFUL: NTSTATUS = st(0xC000_0001);
/// Not implemented. Not named by the NDKPI pages.
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = st(0xC000_0002);
/// Bind, FastRegister: the range or rights are not allowed.
pub const STATUS_ACCESS_VIOLATION: NTSTATUS = st(0xC000_0005);
/// Invalid handle. Not named by the NDKPI pages.
pub const STATUS_INVALID_HANDLE: NTSTATUS = st(0xC000_0008);
/// BuildLam, CreateCq, CreateQp(WithSrq), CreateSrq, ModifySrq, RegisterMr, ResizeCq.
pub const STATUS_INVALID_PARAMETER: NTSTATUS = st(0xC000_000D);
/// Invalid device request. Not named by the NDKPI pages.
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = st(0xC000_0010);
/// Out of memory. Not named by the NDKPI pages.
pub const STATUS_NO_MEMORY: NTSTATUS = st(0xC000_0017);
/// QueryAdapterInfo, BuildLam, GetConnectionData, Get*Address.
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = st(0xC000_0023);
/// ControlCqInterruptModeration.
pub const STATUS_INVALID_PARAMETER_MIX: NTSTATUS = st(0xC000_0030);
/// Data overrun (a receive buffer too small for the incoming message). Not
/// named by the NDKPI pages.
pub const STATUS_DATA_OVERRUN: NTSTATUS = st(0xC000_003C);
/// Connect, CreateSharedEndpoint, Listen: the address is in use.
pub const STATUS_SHARING_VIOLATION: NTSTATUS = st(0xC000_0043);
/// Every Create*, Connect*, Listen, RegisterMr, ResizeCq, BuildLam,
/// ControlCqInterruptModeration.
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = st(0xC000_009A);
/// `STATUS_NO_MORE_ENTRIES` (ntstatus.h, a warning-severity status). Not in
/// ndk-semantics' status list: ndkrs returns it for a post to a full queue
/// (the NDKPI work request posting requirements and deferred processing scheme pages, the ND2 analog ND_NO_MORE_ENTRIES; ndkpi.h).
pub const STATUS_NO_MORE_ENTRIES: NTSTATUS = st(0x8000_001A);
/// Device not ready. Not named by the NDKPI pages.
pub const STATUS_DEVICE_NOT_READY: NTSTATUS = st(0xC000_00A3);
/// Connect*, CompleteConnect(Ex), Accept(Ex), Disconnect.
pub const STATUS_IO_TIMEOUT: NTSTATUS = st(0xC000_00B5);
/// QueryExtensionInterface, ControlCqInterruptModeration.
pub const STATUS_NOT_SUPPORTED: NTSTATUS = st(0xC000_00BB);
/// CQ and SRQ notification callbacks: fatal error.
pub const STATUS_INTERNAL_ERROR: NTSTATUS = st(0xC000_00E5);
/// Completion status of requests flushed by NdkFlush (and the implicit flush).
pub const STATUS_CANCELLED: NTSTATUS = st(0xC000_0120);
/// Read: the peer lacks resources.
pub const STATUS_REMOTE_RESOURCES: NTSTATUS = st(0xC000_013D);
/// Connect, CreateSharedEndpoint, Listen.
pub const STATUS_INVALID_ADDRESS: NTSTATUS = st(0xC000_0141);
/// Invalid device state. Not named by the NDKPI pages.
pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = st(0xC000_0184);
/// I/O device error. Not named by the NDKPI pages.
pub const STATUS_IO_DEVICE_ERROR: NTSTATUS = st(0xC000_0185);
/// Invalid buffer size. Not named by the NDKPI pages.
pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = st(0xC000_0206);
/// Connect, CreateSharedEndpoint, Listen.
pub const STATUS_TOO_MANY_ADDRESSES: NTSTATUS = st(0xC000_0209);
/// Connect, ConnectWithSharedEndpoint.
pub const STATUS_ADDRESS_ALREADY_EXISTS: NTSTATUS = st(0xC000_020A);
/// Address closed. Not named by the NDKPI pages.
pub const STATUS_ADDRESS_CLOSED: NTSTATUS = st(0xC000_020B);
/// Connection disconnected. Not named by the NDKPI pages.
pub const STATUS_CONNECTION_DISCONNECTED: NTSTATUS = st(0xC000_020C);
/// Connection reset. Not named by the NDKPI pages.
pub const STATUS_CONNECTION_RESET: NTSTATUS = st(0xC000_020D);
/// Not found. Not named by the NDKPI pages.
pub const STATUS_NOT_FOUND: NTSTATUS = st(0xC000_0225);
/// Connect, ConnectWithSharedEndpoint: the peer rejected.
pub const STATUS_CONNECTION_REFUSED: NTSTATUS = st(0xC000_0236);
/// Posts on an unconnected QP; CompleteConnect(Ex).
pub const STATUS_CONNECTION_INVALID: NTSTATUS = st(0xC000_023A);
/// Connection already active. Not named by the NDKPI pages.
pub const STATUS_CONNECTION_ACTIVE: NTSTATUS = st(0xC000_023B);
/// Connect, ConnectWithSharedEndpoint.
pub const STATUS_NETWORK_UNREACHABLE: NTSTATUS = st(0xC000_023C);
/// Connect, ConnectWithSharedEndpoint.
pub const STATUS_HOST_UNREACHABLE: NTSTATUS = st(0xC000_023D);
/// Protocol unreachable. Not named by the NDKPI pages.
pub const STATUS_PROTOCOL_UNREACHABLE: NTSTATUS = st(0xC000_023E);
/// Port unreachable. Not named by the NDKPI pages.
pub const STATUS_PORT_UNREACHABLE: NTSTATUS = st(0xC000_023F);
/// Request aborted. Not named by the NDKPI pages.
pub const STATUS_REQUEST_ABORTED: NTSTATUS = st(0xC000_0240);
/// CompleteConnect(Ex), Accept(Ex), Reject.
pub const STATUS_CONNECTION_ABORTED: NTSTATUS = st(0xC000_0241);
/// Device removed. Not named by the NDKPI pages.
pub const STATUS_DEVICE_REMOVED: NTSTATUS = st(0xC000_02B6);
/// InitializeFastRegisterMr.
pub const STATUS_IMPLEMENTATION_LIMIT: NTSTATUS = st(0xC000_042B);

// Statuses an SMB2 server completes commands with (MS-SMB2 section 2.2.1,
// values from ntstatus.h): named so that the tools (ndksmb, crates/smbd)
// can say which one a server sent. Not NDK statuses.

/// SMB2 SESSION_SETUP: another round of the authentication exchange.
pub const STATUS_MORE_PROCESSING_REQUIRED: NTSTATUS = st(0xC000_0016);
/// SMB2 READ at or past the end of the file.
pub const STATUS_END_OF_FILE: NTSTATUS = st(0xC000_0011);
/// SMB2 CREATE of a name that does not exist.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = st(0xC000_0034);
/// SMB2 CREATE of a name that exists (create-only disposition).
pub const STATUS_OBJECT_NAME_COLLISION: NTSTATUS = st(0xC000_0035);
/// SMB2 SESSION_SETUP: the user name or password was not accepted.
pub const STATUS_LOGON_FAILURE: NTSTATUS = st(0xC000_006D);
/// SMB2: the share was deleted (a tree connect that no longer exists).
pub const STATUS_NETWORK_NAME_DELETED: NTSTATUS = st(0xC000_00C9);
/// SMB2 TREE_CONNECT to a share the server does not have.
pub const STATUS_BAD_NETWORK_NAME: NTSTATUS = st(0xC000_00CC);
/// SMB2: a command on a file id that is not open.
pub const STATUS_FILE_CLOSED: NTSTATUS = st(0xC000_0128);
/// SMB2: a command in a session that does not exist.
pub const STATUS_USER_SESSION_DELETED: NTSTATUS = st(0xC000_0203);

/// `NDIS_STATUS_SUCCESS` (= STATUS_SUCCESS).
pub const NDIS_STATUS_SUCCESS: NDIS_STATUS = STATUS_SUCCESS;
/// `NDIS_STATUS_PENDING` (= STATUS_PENDING).
pub const NDIS_STATUS_PENDING: NDIS_STATUS = STATUS_PENDING;
/// `NDIS_STATUS_FAILURE` (= STATUS_UNSUCCESSFUL).
pub const NDIS_STATUS_FAILURE: NDIS_STATUS = STATUS_UNSUCCESSFUL;
/// `NDIS_STATUS_RESOURCES` (= STATUS_INSUFFICIENT_RESOURCES); OpenNDKAdapter.
pub const NDIS_STATUS_RESOURCES: NDIS_STATUS = STATUS_INSUFFICIENT_RESOURCES;
/// `NDIS_STATUS_NOT_SUPPORTED` (= STATUS_NOT_SUPPORTED).
pub const NDIS_STATUS_NOT_SUPPORTED: NDIS_STATUS = STATUS_NOT_SUPPORTED;
/// `NDIS_STATUS_BAD_VERSION`; OpenNDKAdapter with an unsupported version.
pub const NDIS_STATUS_BAD_VERSION: NDIS_STATUS = st(0xC001_0004);
/// `NDIS_STATUS_ADAPTER_NOT_READY`; OpenNDKAdapter while NDK is disabled.
pub const NDIS_STATUS_ADAPTER_NOT_READY: NDIS_STATUS = st(0xC001_0011);
/// `NDIS_STATUS_INVALID_LENGTH`: an OID information buffer of the wrong size.
pub const NDIS_STATUS_INVALID_LENGTH: NDIS_STATUS = st(0xC001_0014);
/// `NDIS_STATUS_BUFFER_TOO_SHORT`: an OID query buffer too small.
pub const NDIS_STATUS_BUFFER_TOO_SHORT: NDIS_STATUS = st(0xC001_0016);
/// `NDIS_STATUS_INVALID_DATA`: an OID set with malformed contents.
pub const NDIS_STATUS_INVALID_DATA: NDIS_STATUS = st(0xC001_0015);
/// `NDIS_STATUS_INVALID_OID`: an OID the miniport does not support.
pub const NDIS_STATUS_INVALID_OID: NDIS_STATUS = st(0xC001_0017);

/// The name of a status this crate defines (as ntstatus.h spells it), for
/// messages a person reads; `None` for any other value.
pub const fn status_name(status: NTSTATUS) -> Option<&'static str> {
    Some(match status {
        STATUS_SUCCESS => "STATUS_SUCCESS",
        STATUS_TIMEOUT => "STATUS_TIMEOUT",
        STATUS_PENDING => "STATUS_PENDING",
        STATUS_BUFFER_OVERFLOW => "STATUS_BUFFER_OVERFLOW",
        STATUS_UNSUCCESSFUL => "STATUS_UNSUCCESSFUL",
        STATUS_NOT_IMPLEMENTED => "STATUS_NOT_IMPLEMENTED",
        STATUS_ACCESS_VIOLATION => "STATUS_ACCESS_VIOLATION",
        STATUS_INVALID_HANDLE => "STATUS_INVALID_HANDLE",
        STATUS_INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
        STATUS_INVALID_DEVICE_REQUEST => "STATUS_INVALID_DEVICE_REQUEST",
        STATUS_NO_MEMORY => "STATUS_NO_MEMORY",
        STATUS_BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL",
        STATUS_INVALID_PARAMETER_MIX => "STATUS_INVALID_PARAMETER_MIX",
        STATUS_DATA_OVERRUN => "STATUS_DATA_OVERRUN",
        STATUS_SHARING_VIOLATION => "STATUS_SHARING_VIOLATION",
        STATUS_INSUFFICIENT_RESOURCES => "STATUS_INSUFFICIENT_RESOURCES",
        STATUS_NO_MORE_ENTRIES => "STATUS_NO_MORE_ENTRIES",
        STATUS_DEVICE_NOT_READY => "STATUS_DEVICE_NOT_READY",
        STATUS_IO_TIMEOUT => "STATUS_IO_TIMEOUT",
        STATUS_NOT_SUPPORTED => "STATUS_NOT_SUPPORTED",
        STATUS_INTERNAL_ERROR => "STATUS_INTERNAL_ERROR",
        STATUS_CANCELLED => "STATUS_CANCELLED",
        STATUS_REMOTE_RESOURCES => "STATUS_REMOTE_RESOURCES",
        STATUS_INVALID_ADDRESS => "STATUS_INVALID_ADDRESS",
        STATUS_INVALID_DEVICE_STATE => "STATUS_INVALID_DEVICE_STATE",
        STATUS_IO_DEVICE_ERROR => "STATUS_IO_DEVICE_ERROR",
        STATUS_INVALID_BUFFER_SIZE => "STATUS_INVALID_BUFFER_SIZE",
        STATUS_TOO_MANY_ADDRESSES => "STATUS_TOO_MANY_ADDRESSES",
        STATUS_ADDRESS_ALREADY_EXISTS => "STATUS_ADDRESS_ALREADY_EXISTS",
        STATUS_ADDRESS_CLOSED => "STATUS_ADDRESS_CLOSED",
        STATUS_CONNECTION_DISCONNECTED => "STATUS_CONNECTION_DISCONNECTED",
        STATUS_CONNECTION_RESET => "STATUS_CONNECTION_RESET",
        STATUS_NOT_FOUND => "STATUS_NOT_FOUND",
        STATUS_CONNECTION_REFUSED => "STATUS_CONNECTION_REFUSED",
        STATUS_CONNECTION_INVALID => "STATUS_CONNECTION_INVALID",
        STATUS_CONNECTION_ACTIVE => "STATUS_CONNECTION_ACTIVE",
        STATUS_NETWORK_UNREACHABLE => "STATUS_NETWORK_UNREACHABLE",
        STATUS_HOST_UNREACHABLE => "STATUS_HOST_UNREACHABLE",
        STATUS_PROTOCOL_UNREACHABLE => "STATUS_PROTOCOL_UNREACHABLE",
        STATUS_PORT_UNREACHABLE => "STATUS_PORT_UNREACHABLE",
        STATUS_REQUEST_ABORTED => "STATUS_REQUEST_ABORTED",
        STATUS_CONNECTION_ABORTED => "STATUS_CONNECTION_ABORTED",
        STATUS_DEVICE_REMOVED => "STATUS_DEVICE_REMOVED",
        STATUS_IMPLEMENTATION_LIMIT => "STATUS_IMPLEMENTATION_LIMIT",
        STATUS_MORE_PROCESSING_REQUIRED => "STATUS_MORE_PROCESSING_REQUIRED",
        STATUS_END_OF_FILE => "STATUS_END_OF_FILE",
        STATUS_OBJECT_NAME_NOT_FOUND => "STATUS_OBJECT_NAME_NOT_FOUND",
        STATUS_OBJECT_NAME_COLLISION => "STATUS_OBJECT_NAME_COLLISION",
        STATUS_LOGON_FAILURE => "STATUS_LOGON_FAILURE",
        STATUS_NETWORK_NAME_DELETED => "STATUS_NETWORK_NAME_DELETED",
        STATUS_BAD_NETWORK_NAME => "STATUS_BAD_NETWORK_NAME",
        STATUS_FILE_CLOSED => "STATUS_FILE_CLOSED",
        STATUS_USER_SESSION_DELETED => "STATUS_USER_SESSION_DELETED",
        _ => return None,
    })
}

/// An NTSTATUS as a person reads it: its ntstatus.h name and its value
/// (`STATUS_IO_TIMEOUT (0xc00000b5)`), or the value alone for a status
/// this crate does not name (`NTSTATUS 0xc0000999`). Shared by the tools
/// (ndkperf, ndksmb) so their errors read alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusText(pub NTSTATUS);

impl core::fmt::Display for StatusText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match status_name(self.0) {
            Some(name) => write!(f, "{name} ({:#010x})", self.0 as u32),
            None => write!(f, "NTSTATUS {:#010x}", self.0 as u32),
        }
    }
}

/// `NT_SUCCESS(Status)`: success and informational codes (severity bits 00
/// and 01) count as success.
pub const fn NT_SUCCESS(status: NTSTATUS) -> bool {
    status >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_classes() {
        assert!(NT_SUCCESS(STATUS_SUCCESS));
        assert!(NT_SUCCESS(STATUS_PENDING));
        assert!(NT_SUCCESS(STATUS_TIMEOUT));
        // Warnings (0x8...) and errors (0xC...) are failures.
        assert!(!NT_SUCCESS(STATUS_BUFFER_OVERFLOW));
        assert!(!NT_SUCCESS(STATUS_CANCELLED));
        assert!(!NT_SUCCESS(STATUS_IO_TIMEOUT));
        assert!(!NT_SUCCESS(NDIS_STATUS_BAD_VERSION));
    }

    #[test]
    fn codes_keep_their_bit_pattern() {
        assert_eq!(STATUS_CANCELLED as u32, 0xC000_0120);
        assert_eq!(STATUS_IO_TIMEOUT as u32, 0xC000_00B5);
        assert_eq!(STATUS_PENDING as u32, 0x103);
        assert_eq!(NDIS_STATUS_BAD_VERSION as u32, 0xC001_0004);
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn every_status_has_its_name() {
        assert_eq!(
            status_name(STATUS_DATA_OVERRUN),
            Some("STATUS_DATA_OVERRUN")
        );
        assert_eq!(status_name(STATUS_IO_TIMEOUT), Some("STATUS_IO_TIMEOUT"));
        assert_eq!(status_name(st(0xC000_0999)), None);
    }

    #[test]
    fn status_text_names_and_shows_the_value() {
        extern crate alloc;
        use alloc::format;
        assert_eq!(
            format!("{}", StatusText(STATUS_IO_TIMEOUT)),
            "STATUS_IO_TIMEOUT (0xc00000b5)"
        );
        assert_eq!(
            format!("{}", StatusText(STATUS_CONNECTION_REFUSED)),
            "STATUS_CONNECTION_REFUSED (0xc0000236)"
        );
        // What an SMB2 server answers a bad password with (ndksmb).
        assert_eq!(
            format!("{}", StatusText(st(0xC000_006D))),
            "STATUS_LOGON_FAILURE (0xc000006d)"
        );
        assert_eq!(
            format!("{}", StatusText(st(0xC000_0999))),
            "NTSTATUS 0xc0000999"
        );
    }
}
