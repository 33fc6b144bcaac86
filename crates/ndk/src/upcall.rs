//! Calls the provider makes into the consumer, queued by the core and made
//! by the shell after it has released its lock (the IRQL rules of the NDKPI pages: no
//! upcall while a lock is held; a callback may re-enter the provider).

use ndkpi::NTSTATUS;

use crate::object::ObjectId;

/// A consumer callback as the core sees it: the function and context
/// pointers the consumer passed, kept as opaque values. Only the ABI layer
/// turns them back into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Callback {
    /// The function pointer (0 = none).
    pub func: usize,
    /// The context pointer passed back to it.
    pub context: usize,
}

impl Callback {
    /// No callback.
    pub const NONE: Callback = Callback {
        func: 0,
        context: 0,
    };

    /// Whether there is a function to call.
    pub const fn is_some(&self) -> bool {
        self.func != 0
    }
}

/// What kind of call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpcallKind {
    /// `NDK_FN_REQUEST_COMPLETION(context, status)`: an asynchronous request
    /// (connect, accept, disconnect, listen, register, ...) finished.
    Request { status: NTSTATUS },
    /// `NDK_FN_CREATE_COMPLETION(context, status, object)`.
    Create { status: NTSTATUS, object: ObjectId },
    /// `NDK_FN_CLOSE_COMPLETION(context)`: the last callback of the object.
    Close,
    /// `NDK_FN_CQ_NOTIFICATION_CALLBACK(context, status)`.
    CqNotify { status: NTSTATUS },
    /// `NDK_FN_SRQ_NOTIFICATION_CALLBACK(context, status)`.
    SrqNotify { status: NTSTATUS },
    /// `NDK_FN_CONNECT_EVENT_CALLBACK(context, connector)`: a listener
    /// delivers a new incoming connector.
    ConnectEvent { connector: ObjectId },
    /// `NDK_FN_DISCONNECT_EVENT_CALLBACK(context)`, or with `ex` the 2.1
    /// form with a provider-specific reason.
    DisconnectEvent { ex: bool, reason: u32 },
}

/// One call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Upcall {
    /// Whose callback it is: the object whose close must wait for it.
    pub owner: ObjectId,
    /// What to call.
    pub callback: Callback,
    /// How.
    pub kind: UpcallKind,
}
