//! Shared endpoints: NdkCreateSharedEndpoint, and the local-address query
//! that shared endpoints, listeners and connectors answer.

use alloc::vec::Vec;
use core::net::SocketAddr;

use ndkpi::*;
use roce::rc::Memory;

use super::{Object, Provider};
use crate::object::ObjectId;

impl<M: Memory> Provider<M> {
    /// NdkCreateSharedEndpoint: reserves a local address (port 0 picks an
    /// ephemeral port) that several connectors may connect from.
    pub fn create_shared_endpoint(&mut self, addr: SocketAddr) -> Result<ObjectId, NTSTATUS> {
        if !self.is_local(addr.ip()) {
            return Err(STATUS_INVALID_ADDRESS);
        }
        let port = self.reserve_port(addr.ip(), addr.port())?;
        Ok(self.insert(
            Object::SharedEndpoint {
                addr: SocketAddr::new(addr.ip(), port),
            },
            Vec::new(),
        ))
    }

    /// NdkGetSharedEndpointLocalAddress / NdkGetListenerLocalAddress.
    pub fn local_address(&self, id: ObjectId) -> Option<SocketAddr> {
        match &self.objects.get(id)?.object {
            Object::SharedEndpoint { addr } => Some(*addr),
            Object::Listener {
                port: Some((ip, port)),
                ..
            } => Some(SocketAddr::new(*ip, *port)),
            Object::Connector(c) => c.local,
            _ => None,
        }
    }

    /// A listener (OID_NDK_LOCAL_ENDPOINTS tells listeners from shared
    /// endpoints).
    pub fn is_listener(&self, id: ObjectId) -> bool {
        matches!(
            self.objects.get(id).map(|o| &o.object),
            Some(Object::Listener { .. })
        )
    }
}
