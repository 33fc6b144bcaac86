//! The NDKPI ABI: every type, dispatch table, function type and constant a
//! Windows kernel NDK provider exchanges with NDK consumers (ndkpi.h,
//! ndkinfo.h) and with NDIS (ndisndk.h, the NDK parts of ndis.h and
//! ntddndis.h).
//!
//! Names are exactly the headers' so that the header and this crate can be
//! read side by side; everything above this crate uses idiomatic Rust names.
//! Facts and their sources: the project's ABI digest (shared spec
//! ndkpi.h). Layouts are checked at compile time for x86_64
//! ([`layout`](self::layout) module and the dispatch-table declarations).
//!
//! `no_std`, no dependencies, no code that can panic: the crate is linked into
//! the kernel driver.
//!
//! What could not be confirmed from a primary source is marked UNCONFIRMED in
//! the item's documentation: the NDKPI 2.1 version encoding
//! ([`NDK_VERSION_2_1`]) and the value of
//! [`NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1`].
#![no_std]
#![allow(non_snake_case, non_camel_case_types, non_upper_case_globals)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod base;
mod dispatch;
mod flags;
mod fns;
#[cfg(target_arch = "x86_64")]
mod layout;
mod ndis;
mod object;
mod status;
mod types;
mod version;

pub use base::*;
pub use dispatch::*;
pub use flags::*;
pub use fns::*;
pub use ndis::*;
pub use object::*;
pub use status::*;
pub use types::*;
pub use version::*;
