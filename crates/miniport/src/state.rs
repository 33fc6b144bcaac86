//! The NDK state of the miniport adapter (portable): the `*NetworkDirect`
//! keyword, OID_NDK_SET_STATE, and NDK adapter opens.
//!
//! One NDK_ADAPTER may be open at a time. `ndk::abi::open_adapter` gives
//! every open its own provider core (its own QPNs, CM and listeners), and
//! the datagram path cannot tell which core a received CM REQ is for: a
//! second core would answer another core's REQs with a REJ (invalid service
//! ID). Until the core shares one NIC between opens, a second concurrent
//! open fails with NDIS_STATUS_RESOURCES, and its consumer (e.g. SMB)
//! falls back to TCP.

use ndis_sys::{
    NDIS_STATUS, NDIS_STATUS_ADAPTER_NOT_READY, NDIS_STATUS_RESOURCES, NDIS_STATUS_SUCCESS,
};

/// A NetPnP event the shell must signal (from a work item, never from
/// inside MiniportOidRequest: the NDKPI enabling and disabling NDK functionality page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PnpEvent {
    Enable,
    Disable,
}

/// The state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdkState {
    /// `*NetworkDirect` != 0.
    keyword: bool,
    enabled: bool,
    opens: u32,
}

/// Concurrent NDK opens of one adapter (consumers are few: SMB client and
/// server, perhaps a test tool).
pub const MAX_OPENS: u32 = 8;

impl NdkState {
    /// At MiniportInitializeEx: NDK starts enabled when the keyword allows.
    pub const fn new(keyword: bool) -> NdkState {
        NdkState {
            keyword,
            enabled: keyword,
            opens: 0,
        }
    }

    /// What NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES.Enabled reports.
    pub const fn enabled(&self) -> bool {
        self.enabled
    }

    /// OID_NDK_SET_STATE: completes synchronously with the status, and
    /// names the event to signal afterwards, if the state changed.
    pub fn set(&mut self, enable: bool) -> (NDIS_STATUS, Option<PnpEvent>) {
        let target = enable && self.keyword;
        if target == self.enabled {
            return (NDIS_STATUS_SUCCESS, None);
        }
        self.enabled = target;
        (
            NDIS_STATUS_SUCCESS,
            Some(if target {
                PnpEvent::Enable
            } else {
                PnpEvent::Disable
            }),
        )
    }

    /// OpenNDKAdapterHandler's admission. Every consumer (SMB client,
    /// SMB server, ...) gets its own NDK_ADAPTER over the one engine, up to
    /// [`MAX_OPENS`] at once.
    pub fn open(&mut self) -> NDIS_STATUS {
        if !self.enabled {
            NDIS_STATUS_ADAPTER_NOT_READY
        } else if self.opens >= MAX_OPENS {
            NDIS_STATUS_RESOURCES
        } else {
            self.opens += 1;
            NDIS_STATUS_SUCCESS
        }
    }

    /// The open failed after admission, or CloseNDKAdapterHandler ran: true
    /// when it was the last open (the engine may go).
    pub fn closed(&mut self) -> bool {
        self.opens = self.opens.saturating_sub(1);
        self.opens == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_gates_enable() {
        let mut s = NdkState::new(false);
        assert!(!s.enabled());
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, None));
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
    }

    #[test]
    fn set_state_signals_changes_only() {
        let mut s = NdkState::new(true);
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, None));
        assert_eq!(s.set(false), (NDIS_STATUS_SUCCESS, Some(PnpEvent::Disable)));
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, Some(PnpEvent::Enable)));
    }

    #[test]
    fn several_opens_up_to_the_cap_and_the_last_close_is_told() {
        let mut s = NdkState::new(true);
        for _ in 0..MAX_OPENS {
            assert_eq!(s.open(), NDIS_STATUS_SUCCESS);
        }
        assert_eq!(s.open(), NDIS_STATUS_RESOURCES);
        for _ in 1..MAX_OPENS {
            assert!(!s.closed());
        }
        assert!(s.closed());
        assert_eq!(s.open(), NDIS_STATUS_SUCCESS);
    }
}
