//! The NDK state of the miniport adapter (portable): the `*NetworkDirect`
//! keyword, OID_NDK_SET_STATE, the datagram path, and NDK adapter opens.
//!
//! NDK is enabled when all three allow it: the keyword is nonzero, NDIS
//! asked for it (OID_NDK_SET_STATE; enabled until told otherwise), and the
//! shell has a datagram path (its filter is attached to a physical NIC).
//! Without the path no RoCEv2 datagram can leave or arrive, so NDK is
//! reported disabled: at MiniportInitializeEx (the NDK attributes'
//! `Enabled`) when the adapter starts before the filter attaches, and by a
//! NetEventNDKDisable when the filter detaches (surprise removal of the
//! NIC, the binding disabled). The NDKPI page "Enabling and Disabling NDK
//! Functionality" lets the state change "by a success or failure in the
//! adapter itself", with the same NetEventNDKEnable / NetEventNDKDisable
//! PnP events as for OID_NDK_SET_STATE; on a disable NDIS has every NDK
//! consumer close its objects and its NDK adapter, and opens no adapter
//! until an enable. A filter that attaches (again) brings NetEventNDKEnable.
//!
//! The events are signalled from a work item, never from inside
//! MiniportOidRequest (the OID_NDK_SET_STATE page), and one event reports
//! the state the work item finds ([`NdkState::take_event`]), so a detach
//! and a re-attach before it runs signal nothing, and NDIS never hears an
//! enable it already heard.
//!
//! Every open gets its own NDK_ADAPTER over one shared engine (see
//! `ndk::abi::open_adapter_shared`), up to [`MAX_OPENS`] at once.

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
    /// What NDIS last asked with OID_NDK_SET_STATE (true until asked).
    requested: bool,
    /// The filter is attached: datagrams can move.
    path: bool,
    /// What NDIS was last told (the NDK attributes, then PnP events).
    reported: bool,
    opens: u32,
}

/// Concurrent NDK opens of one adapter (consumers are few: SMB client and
/// server, perhaps a test tool).
pub const MAX_OPENS: u32 = 8;

impl NdkState {
    /// Before MiniportInitializeEx: no keyword read, no path.
    pub const fn new(keyword: bool) -> NdkState {
        NdkState {
            keyword,
            requested: true,
            path: false,
            reported: false,
            opens: 0,
        }
    }

    /// At MiniportInitializeEx: the keyword read; the path as it is (the
    /// filter may have attached first). Returns what
    /// NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES.Enabled reports, which is
    /// what NDIS now knows.
    pub fn initialize(&mut self, keyword: bool) -> bool {
        self.keyword = keyword;
        self.requested = true;
        self.reported = self.enabled();
        self.reported
    }

    /// Whether NDK is enabled now.
    pub const fn enabled(&self) -> bool {
        self.keyword && self.requested && self.path
    }

    /// OID_NDK_SET_STATE: completes synchronously with the status (the
    /// OID_NDK_SET_STATE page: never NDIS_STATUS_PENDING); the change, if
    /// any, is signalled by [`NdkState::take_event`] from a work item.
    /// Returns whether there is an event to signal.
    pub fn set(&mut self, enable: bool) -> (NDIS_STATUS, bool) {
        self.requested = enable;
        (NDIS_STATUS_SUCCESS, self.enabled() != self.reported)
    }

    /// The filter attached (`true`) or detached: whether there is an event
    /// to signal.
    pub fn set_path(&mut self, up: bool) -> bool {
        self.path = up;
        self.enabled() != self.reported
    }

    /// Whether a datagram path exists.
    pub const fn has_path(&self) -> bool {
        self.path
    }

    /// Whether [`NdkState::take_event`] has an event to give.
    pub const fn event_pending(&self) -> bool {
        self.enabled() != self.reported
    }

    /// From the work item: the event that brings NDIS to the current
    /// state, if it differs from what NDIS was last told (which it now is).
    pub fn take_event(&mut self) -> Option<PnpEvent> {
        let now = self.enabled();
        if now == self.reported {
            return None;
        }
        self.reported = now;
        Some(if now {
            PnpEvent::Enable
        } else {
            PnpEvent::Disable
        })
    }

    /// OpenNDKAdapterHandler's admission: NDIS_STATUS_ADAPTER_NOT_READY
    /// while NDK is disabled (no datagram path included), resources beyond
    /// [`MAX_OPENS`].
    pub fn open(&mut self) -> NDIS_STATUS {
        if !self.enabled() {
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

    fn ready() -> NdkState {
        let mut s = NdkState::new(false);
        assert!(!s.set_path(true));
        assert!(s.initialize(true));
        s
    }

    #[test]
    fn keyword_gates_enable() {
        let mut s = NdkState::new(false);
        s.set_path(true);
        assert!(!s.initialize(false));
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, false));
        assert_eq!(s.take_event(), None);
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
    }

    #[test]
    fn set_state_signals_changes_only() {
        let mut s = ready();
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, false));
        assert_eq!(s.take_event(), None);
        assert_eq!(s.set(false), (NDIS_STATUS_SUCCESS, true));
        assert_eq!(s.take_event(), Some(PnpEvent::Disable));
        assert_eq!(s.take_event(), None, "signalled once");
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, true));
        assert_eq!(s.take_event(), Some(PnpEvent::Enable));
        assert_eq!(s.open(), NDIS_STATUS_SUCCESS);
    }

    #[test]
    fn without_a_datagram_path_ndk_is_reported_disabled_and_opens_fail() {
        let mut s = NdkState::new(false);
        assert!(
            !s.initialize(true),
            "attributes: disabled before the filter"
        );
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
        // NDIS enabling it changes nothing without a path.
        assert_eq!(s.set(true), (NDIS_STATUS_SUCCESS, false));
        assert_eq!(s.take_event(), None);
        // The filter attaches: enable.
        assert!(s.set_path(true));
        assert_eq!(s.take_event(), Some(PnpEvent::Enable));
        assert_eq!(s.open(), NDIS_STATUS_SUCCESS);
        // It detaches with an adapter open: disable, and no new opens.
        assert!(s.set_path(false));
        assert_eq!(s.take_event(), Some(PnpEvent::Disable));
        assert_eq!(s.open(), NDIS_STATUS_ADAPTER_NOT_READY);
        assert!(s.closed());
    }

    #[test]
    fn a_detach_and_reattach_before_the_work_item_signal_nothing() {
        let mut s = ready();
        assert!(s.set_path(false));
        assert!(!s.set_path(true));
        assert_eq!(s.take_event(), None);
        // NDIS disabled while the path was away: one disable, no enable.
        assert!(s.set_path(false));
        s.set(false);
        assert!(s.set_path(true));
        assert!(s.has_path());
        assert!(s.event_pending());
        assert_eq!(s.take_event(), Some(PnpEvent::Disable));
        assert!(!s.event_pending());
        assert_eq!(s.take_event(), None);
    }

    #[test]
    fn several_opens_up_to_the_cap_and_the_last_close_is_told() {
        let mut s = ready();
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
