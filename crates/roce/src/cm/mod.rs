//! IB connection management over QP1 (IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c, Linux drivers/infiniband/core/cma.c): the per-connection
//! state machine ([`state`]), its timing ([`timers`]), a bounded record of
//! what happened ([`timeline`]), and the manager that runs every connection
//! of a device and speaks rdma_cm's dialect of CM MADs ([`manager`]). The
//! disconnect decisions and bounds are in docs/disconnect.md.

pub mod manager;
pub mod state;
pub mod timeline;
pub mod timers;

pub use manager::{
    AcceptParams, CmError, CmEvent, CmManager, ConnId, ConnectParams, Connection, ListenerId,
    OutMad, PeerParams, Role,
};
pub use state::{Event, State};
pub use timers::CmConfig;
