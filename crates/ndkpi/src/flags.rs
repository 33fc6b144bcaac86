//! Flag values (ndkpi.h, ndkinfo.h; ndkpi.h NDK_OP_FLAG_*-ndkpi.h).

use crate::base::ULONG;

// NDK_OP_FLAG_*: the `Flags` of QP work requests (ndkpi.h NDK_OP_FLAG_*).

pub const NDK_OP_FLAG_SILENT_SUCCESS: ULONG = 0x0000_0001;
pub const NDK_OP_FLAG_READ_FENCE: ULONG = 0x0000_0002;
pub const NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT: ULONG = 0x0000_0004;
pub const NDK_OP_FLAG_ALLOW_REMOTE_READ: ULONG = 0x0000_0008;
/// Fast-register only ("FRMR" in the header).
pub const NDK_OP_FLAG_ALLOW_LOCAL_WRITE: ULONG = 0x0000_0010;
/// Includes [`NDK_OP_FLAG_ALLOW_LOCAL_WRITE`]: remote write implies local write.
pub const NDK_OP_FLAG_ALLOW_REMOTE_WRITE: ULONG = 0x0000_0030;
pub const NDK_OP_FLAG_INLINE: ULONG = 0x0000_0040;
pub const NDK_OP_FLAG_RDMA_READ_SINK: ULONG = 0x0000_0080;
/// NDKPI 1.2. The NdkRead documentation page gives 0x200 (the value of
/// DEFER); the header gives 0x100, which is what consumers compile against
/// (ndkpi.h NDK_OP_FLAG_*).
pub const NDK_OP_FLAG_RDMA_READ_LOCAL_INVALIDATE: ULONG = 0x0000_0100;
/// NDKPI 1.2: the provider may hold the request until a later request without
/// this flag (or a flush) rings the doorbell.
pub const NDK_OP_FLAG_DEFER: ULONG = 0x0000_0200;

// NDK_MR_FLAG_*: the `Flags` of NdkRegisterMr (ndkpi.h).

pub const NDK_MR_FLAG_ALLOW_LOCAL_READ: ULONG = 0x0000_0000;
pub const NDK_MR_FLAG_ALLOW_LOCAL_WRITE: ULONG = 0x0000_0001;
pub const NDK_MR_FLAG_ALLOW_REMOTE_READ: ULONG = 0x0000_0002;
/// Includes [`NDK_MR_FLAG_ALLOW_LOCAL_WRITE`].
pub const NDK_MR_FLAG_ALLOW_REMOTE_WRITE: ULONG = 0x0000_0005;
pub const NDK_MR_FLAG_RDMA_READ_SINK: ULONG = 0x0000_0008;

// NDK_CQ_NOTIFY_*: the `Type` of NdkArmCq (ndkpi.h).

pub const NDK_CQ_NOTIFY_ERRORS: ULONG = 0;
pub const NDK_CQ_NOTIFY_ANY: ULONG = 1;
pub const NDK_CQ_NOTIFY_SOLICITED: ULONG = 2;

// NDK_ADAPTER_FLAG_*: NDK_ADAPTER_INFO.AdapterFlags (ndkpi.h).

pub const NDK_ADAPTER_FLAG_IN_ORDER_DMA_SUPPORTED: ULONG = 0x0000_0001;
pub const NDK_ADAPTER_FLAG_RDMA_READ_SINK_NOT_REQUIRED: ULONG = 0x0000_0002;
pub const NDK_ADAPTER_FLAG_CQ_INTERRUPT_MODERATION_SUPPORTED: ULONG = 0x0000_0004;
pub const NDK_ADAPTER_FLAG_MULTI_ENGINE_SUPPORTED: ULONG = 0x0000_0008;
pub const NDK_ADAPTER_FLAG_RDMA_READ_LOCAL_INVALIDATE_SUPPORTED: ULONG = 0x0000_0010;
pub const NDK_ADAPTER_FLAG_CQ_RESIZE_SUPPORTED: ULONG = 0x0000_0100;
pub const NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED: ULONG = 0x0001_0000;

/// The arm type that results from arming twice before a notification fires
/// (ndkpi-completion-handling-requirements: ANY wins over everything; ERRORS
/// and SOLICITED combine to SOLICITED, since error completions satisfy a
/// SOLICITED arm; equal arms stay as they are). Returns `None` when either
/// value is not an `NDK_CQ_NOTIFY_*` value.
pub const fn combine_cq_arm(first: ULONG, second: ULONG) -> Option<ULONG> {
    match (first, second) {
        (NDK_CQ_NOTIFY_ANY, NDK_CQ_NOTIFY_ERRORS | NDK_CQ_NOTIFY_ANY | NDK_CQ_NOTIFY_SOLICITED)
        | (NDK_CQ_NOTIFY_ERRORS | NDK_CQ_NOTIFY_SOLICITED, NDK_CQ_NOTIFY_ANY) => {
            Some(NDK_CQ_NOTIFY_ANY)
        }
        (NDK_CQ_NOTIFY_ERRORS, NDK_CQ_NOTIFY_ERRORS) => Some(NDK_CQ_NOTIFY_ERRORS),
        (
            NDK_CQ_NOTIFY_ERRORS | NDK_CQ_NOTIFY_SOLICITED,
            NDK_CQ_NOTIFY_ERRORS | NDK_CQ_NOTIFY_SOLICITED,
        ) => Some(NDK_CQ_NOTIFY_SOLICITED),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_flags_include_their_parts() {
        assert_eq!(
            NDK_OP_FLAG_ALLOW_REMOTE_WRITE & NDK_OP_FLAG_ALLOW_LOCAL_WRITE,
            NDK_OP_FLAG_ALLOW_LOCAL_WRITE
        );
        assert_eq!(
            NDK_MR_FLAG_ALLOW_REMOTE_WRITE & NDK_MR_FLAG_ALLOW_LOCAL_WRITE,
            NDK_MR_FLAG_ALLOW_LOCAL_WRITE
        );
    }

    #[test]
    fn op_flags_are_distinct_bits_apart_from_the_composite() {
        let singles = [
            NDK_OP_FLAG_SILENT_SUCCESS,
            NDK_OP_FLAG_READ_FENCE,
            NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT,
            NDK_OP_FLAG_ALLOW_REMOTE_READ,
            NDK_OP_FLAG_ALLOW_LOCAL_WRITE,
            NDK_OP_FLAG_ALLOW_REMOTE_WRITE & !NDK_OP_FLAG_ALLOW_LOCAL_WRITE,
            NDK_OP_FLAG_INLINE,
            NDK_OP_FLAG_RDMA_READ_SINK,
            NDK_OP_FLAG_RDMA_READ_LOCAL_INVALIDATE,
            NDK_OP_FLAG_DEFER,
        ];
        let mut seen = 0;
        for f in singles {
            assert_eq!(f.count_ones(), 1, "{f:#x}");
            assert_eq!(seen & f, 0, "{f:#x} overlaps");
            seen |= f;
        }
        assert_eq!(seen, 0x3FF);
    }

    #[test]
    fn arm_combination_table() {
        use NDK_CQ_NOTIFY_ANY as A;
        use NDK_CQ_NOTIFY_ERRORS as E;
        use NDK_CQ_NOTIFY_SOLICITED as S;
        let table = [
            (E, E, E),
            (E, S, S),
            (E, A, A),
            (S, E, S),
            (S, S, S),
            (S, A, A),
            (A, E, A),
            (A, S, A),
            (A, A, A),
        ];
        for (a, b, want) in table {
            assert_eq!(combine_cq_arm(a, b), Some(want), "{a} then {b}");
        }
        assert_eq!(combine_cq_arm(3, A), None);
        assert_eq!(combine_cq_arm(A, 7), None);
    }
}
