//! The NDK adapter a consumer runs on: its own ([`host::adapter::Adapter`]
//! over a socket), or one a Windows shell opened through its NDK provider
//! characteristics (crates/ndis-host runs the real shell on Linux), which
//! the opener closes.

use std::time::Duration;

use host::adapter::Adapter;
use ndkpi::NDK_ADAPTER;

/// An adapter opened elsewhere, and how to close it.
#[derive(Debug, Clone, Copy)]
pub struct ExternalAdapter {
    /// The NDK_ADAPTER (as a number, so configurations stay `Copy`).
    pub ptr: usize,
    /// Closes it (CloseNDKAdapterHandler through NDIS).
    pub close: fn(usize),
}

/// The same adapter (the closing function is not compared).
impl PartialEq for ExternalAdapter {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for ExternalAdapter {}

/// A consumer's adapter.
#[derive(Debug)]
pub(crate) enum ConsumerAdapter {
    Own(Adapter),
    External(ExternalAdapter),
}

impl ConsumerAdapter {
    pub(crate) fn ptr(&self) -> *mut NDK_ADAPTER {
        match self {
            ConsumerAdapter::Own(a) => a.ptr(),
            ConsumerAdapter::External(e) => e.ptr as *mut NDK_ADAPTER,
        }
    }

    pub(crate) fn object_count(&self) -> usize {
        ndk::abi::io::object_count(self.ptr())
    }

    /// As [`::ndk_consumer::Adapter::object_count_settled`].
    pub(crate) fn object_count_settled(&self, want: usize, t: Duration) -> usize {
        // SAFETY: open until `close` (which consumes `self`).
        unsafe { ::ndk_consumer::Adapter::from_raw(self.ptr()) }.object_count_settled(want, t)
    }

    /// Closes the adapter.
    ///
    /// # Safety
    /// As [`Adapter::close`]: nothing calls into the adapter afterwards.
    pub(crate) unsafe fn close(self) {
        match self {
            // SAFETY: per the contract.
            ConsumerAdapter::Own(a) => drop(unsafe { a.close() }),
            ConsumerAdapter::External(e) => (e.close)(e.ptr),
        }
    }
}
