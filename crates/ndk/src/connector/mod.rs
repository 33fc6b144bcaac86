//! NDK connectors: the state machine ([`state`]) that maps NdkConnect,
//! NdkAccept, NdkCompleteConnect, NdkReject and NdkDisconnect onto IB CM
//! and the QP. Which status for which case, and the bounds: docs/disconnect.md.

pub mod state;

pub use state::{Actions, CmAction, ConnectorState, Failure, Input, Pending, QpAction};
