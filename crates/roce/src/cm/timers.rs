//! CM timing: the IBA 5-bit time codes, Linux ib_cm's conversions, and the
//! configuration that decides every CM timeout and retry count
//! (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c, Linux drivers/infiniband/core/cma.c).

use core::time::Duration;

/// `4.096 us * 2^code`, the IBA meaning of a 5-bit time code (local ACK
/// timeout, CM response timeout, packet lifetime). Codes above 31 are
/// clamped to 31.
pub fn iba_time(code: u8) -> Duration {
    let code = u32::from(code.min(31));
    Duration::from_nanos(4_096u64 << code)
}

/// ib_cm's approximation of [`iba_time`] that Linux uses for every CM timer:
/// `2^max(code - 8, 0)` milliseconds (cm.c `cm_convert_to_ms`; IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c).
/// Using the same rounding keeps retransmission schedules comparable with a
/// Linux peer (20 -> 4096 ms, 18 -> 1024 ms).
pub fn cm_time(code: u8) -> Duration {
    let exp = u32::from(code.min(31)).saturating_sub(8);
    Duration::from_millis(1u64 << exp)
}

/// The local ACK timeout a requester should use, from the responder's ACK
/// delay and the path's packet lifetime (cm.c `cm_ack_timeout`; IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c): roughly twice the packet lifetime plus the ACK delay, in 5-bit
/// code space, capped at 31. rxe's ACK delay 15 with packet lifetime 18 gives
/// 19, the value in the captured REQs.
pub fn ack_timeout(ca_ack_delay: u8, packet_life_time: u8) -> u8 {
    let ack_delay = ca_ack_delay.min(31);
    let mut t = packet_life_time.min(31) + 1;
    if t >= ack_delay {
        t += u8::from(ack_delay >= t - 1);
    } else {
        t = ack_delay + u8::from(t >= ack_delay - 1);
    }
    t.min(31)
}

/// CM timing and retry configuration of one endpoint.
///
/// The defaults are Linux rdma_cm's on RoCE (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c, Linux drivers/infiniband/core/cma.c), so a Linux
/// peer and ndkrs retransmit on the same schedule, except for the number of
/// DREQ retries: Linux sends 16 DREQs to a silent peer (about 98 s, the
/// fixtures' dreq-frozen-peer capture); a storage stack tearing down a
/// connection to a dead peer should not wait that long, so ndkrs sends 4
/// (see [`CmConfig::disconnect_bound`]). The peer never sees the difference
/// unless it is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmConfig {
    /// CM response timeout code this side advertises in REQ (both the remote
    /// and the local CM response timeout fields): rdma_cm's
    /// CMA_CM_RESPONSE_TIMEOUT, 20 (4096 ms).
    pub cm_response_timeout: u8,
    /// Max CM retries advertised in REQ and used for REQ and REP: rdma_cm's
    /// CMA_MAX_CM_RETRIES, 15.
    pub max_cm_retries: u8,
    /// DREQ retransmissions after the first DREQ before the disconnect is
    /// declared timed out.
    pub max_dreq_retries: u8,
    /// Path packet lifetime code: rdma_cm's CMA_IBOE_PACKET_LIFETIME, 18.
    pub packet_life_time: u8,
    /// This CA's ACK delay code, sent in REP as Target ACK Delay: rxe's 15.
    pub ca_ack_delay: u8,
    /// Service timeout sent in an MRA (rdma_cm's CMA_CM_MRA_SETTING 24,
    /// about 69 s): how long a peer should wait while the local consumer
    /// decides on a request.
    pub mra_service_timeout: u8,
    /// RC retry count put in REQ (3 bits; 7 = retry forever on rxe).
    pub retry_count: u8,
    /// RNR retry count put in REQ/REP (3 bits; 7 = infinite).
    pub rnr_retry_count: u8,
    /// The largest path MTU code (1 = 256 ... 5 = 4096) this side's link
    /// carries. A REQ asking for more is refused with REJ reason 26,
    /// Invalid MTU: the REP has no field to lower it (IBA Vol 1 §12.6.8),
    /// and the MTU must be the same both ways, since a requester counts the
    /// PSNs of a Read's responses by it (IBA Vol 1 §9.7.5.1.5).
    pub max_path_mtu: u8,
}

impl Default for CmConfig {
    fn default() -> Self {
        CmConfig {
            cm_response_timeout: 20,
            max_cm_retries: 15,
            max_dreq_retries: 3,
            packet_life_time: 18,
            ca_ack_delay: 15,
            mra_service_timeout: 24,
            retry_count: 7,
            rnr_retry_count: 7,
            max_path_mtu: 5,
        }
    }
}

impl CmConfig {
    /// Wait for a REP after each REQ, and for a DREP after each DREQ the
    /// active side sends: two packet lifetimes plus the peer's response
    /// timeout (cm.c; 6144 ms with the defaults).
    pub fn active_timeout(&self, remote_cm_response_timeout: u8) -> Duration {
        cm_time(self.packet_life_time) * 2 + cm_time(remote_cm_response_timeout)
    }

    /// Wait for an RTU after each REP, and for a DREP after each DREQ the
    /// passive side sends: the requester's advertised local CM response
    /// timeout (cm.c; 4096 ms for 20).
    pub fn passive_timeout(&self, req_local_cm_response_timeout: u8) -> Duration {
        cm_time(req_local_cm_response_timeout)
    }

    /// The local ACK timeout this side puts in REQ (19 with the defaults).
    pub fn local_ack_timeout(&self) -> u8 {
        ack_timeout(self.ca_ack_delay, self.packet_life_time)
    }

    /// Time-wait after a disconnect: the QP's local ACK timeout in ib_cm's
    /// rounding (2048 ms for 19), so stray packets of the old connection die
    /// before its QPN and comm ID are reused.
    pub fn timewait(&self, qp_ack_timeout: u8) -> Duration {
        cm_time(qp_ack_timeout)
    }

    /// Longest an NdkDisconnect can take when the peer never answers: every
    /// DREQ transmission waits its full timeout. With the defaults, 4 x 6144
    /// ms = 24.6 s on the active side and 4 x 4096 ms = 16.4 s on the passive
    /// side. `per_try` is [`Self::active_timeout`] or
    /// [`Self::passive_timeout`] for the connection.
    pub fn disconnect_bound(&self, per_try: Duration) -> Duration {
        per_try * (u32::from(self.max_dreq_retries) + 1)
    }

    /// Longest an active side's NdkDisconnect waits for a silent peer
    /// (24.6 s with the defaults).
    pub fn active_disconnect_bound(&self) -> Duration {
        self.disconnect_bound(self.active_timeout(self.cm_response_timeout))
    }

    /// Longest a passive side's NdkDisconnect waits for a silent peer: from
    /// this side's own configuration, never from the requester's advertised
    /// LocalCMResponseTimeout, so a peer cannot stretch it (16.4 s with the
    /// defaults, never longer than [`Self::active_disconnect_bound`];
    /// docs/disconnect.md).
    pub fn passive_disconnect_bound(&self) -> Duration {
        self.disconnect_bound(self.passive_timeout(self.cm_response_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cm_rounding_matches_linux() {
        assert_eq!(cm_time(20), Duration::from_millis(4096));
        assert_eq!(cm_time(19), Duration::from_millis(2048));
        assert_eq!(cm_time(18), Duration::from_millis(1024));
        assert_eq!(cm_time(8), Duration::from_millis(1));
        assert_eq!(cm_time(0), Duration::from_millis(1));
        assert_eq!(cm_time(24), Duration::from_millis(65_536));
        assert_eq!(cm_time(200), Duration::from_millis(1 << 23));
    }

    #[test]
    fn iba_time_is_4096ns_doublings() {
        assert_eq!(iba_time(0), Duration::from_nanos(4096));
        assert_eq!(iba_time(19), Duration::from_nanos(4096 << 19));
        assert_eq!(iba_time(31), iba_time(99));
    }

    #[test]
    fn ack_timeout_matches_the_captures_and_linux() {
        // rxe: ACK delay 15, packet lifetime 18 -> 19 (captured REQ).
        assert_eq!(ack_timeout(15, 18), 19);
        // Packet lifetime 16 (newer rdma_cm) -> 17 (Linux drivers/infiniband/core/cma.c).
        assert_eq!(ack_timeout(15, 16), 17);
        // ACK delay dominating.
        assert_eq!(ack_timeout(20, 3), 20);
        assert_eq!(ack_timeout(20, 18), 21);
        assert_eq!(ack_timeout(31, 31), 31);
        assert_eq!(ack_timeout(0, 0), 2);
    }

    #[test]
    fn default_schedule_and_bounds() {
        let c = CmConfig::default();
        assert_eq!(c.active_timeout(20), Duration::from_millis(6144));
        assert_eq!(c.passive_timeout(20), Duration::from_millis(4096));
        assert_eq!(c.local_ack_timeout(), 19);
        assert_eq!(c.timewait(19), Duration::from_millis(2048));
        assert_eq!(
            c.disconnect_bound(c.active_timeout(20)),
            Duration::from_millis(4 * 6144)
        );
    }
}
