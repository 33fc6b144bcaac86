//! The listener object: NdkListen, NdkControlConnectEvents, and the
//! connect event that hands each incoming request to a new connector.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use ndkpi::*;
use roce::cm::{ConnId, ListenerId};
use roce::rc::Memory;

use super::{Connector, Object, Provider};
use crate::object::ObjectId;
use crate::upcall::{Callback, UpcallKind};

impl<M: Memory> Provider<M> {
    /// NdkCreateListener.
    pub fn create_listener(&mut self, connect_event: Callback) -> ObjectId {
        self.insert(
            Object::Listener {
                cm: None,
                event: connect_event,
                port: None,
            },
            Vec::new(),
        )
    }

    /// NdkListen. Completes inline.
    pub fn listen(&mut self, listener: ObjectId, addr: SocketAddr) -> Result<SocketAddr, NTSTATUS> {
        if !self.is_open(listener) {
            return Err(STATUS_INVALID_HANDLE);
        }
        if !addr.ip().is_unspecified() && !self.is_local(addr.ip()) {
            return Err(STATUS_INVALID_ADDRESS);
        }
        match self.objects.get(listener).map(|e| &e.object) {
            Some(Object::Listener { cm: None, .. }) => {}
            _ => return Err(STATUS_INVALID_DEVICE_STATE),
        }
        let port = self.reserve_port(addr.ip(), addr.port())?;
        let bound = SocketAddr::new(addr.ip(), port);
        let cm = match self.device.cm().listen(bound) {
            Ok(l) => l,
            Err(_) => {
                self.release_port((addr.ip(), port));
                return Err(STATUS_SHARING_VIOLATION);
            }
        };
        if let Some(Object::Listener { cm: c, port: p, .. }) =
            self.objects.get_mut(listener).map(|e| &mut e.object)
        {
            *c = Some(cm);
            *p = Some((addr.ip(), port));
        }
        self.by_listener.insert(cm, listener);
        Ok(bound)
    }

    /// NdkControlConnectEvents.
    pub fn pause_listener(&mut self, listener: ObjectId, paused: bool) {
        if let Some(Object::Listener { cm: Some(cm), .. }) =
            self.objects.get(listener).map(|e| &e.object)
        {
            let cm = *cm;
            let _ = self.device.cm().pause_listener(cm, paused);
        }
    }

    /// A connection request reached `listener`: a new passive connector
    /// and a connect event, or a REJ if no open listener takes it.
    pub(super) fn incoming(&mut self, conn: ConnId, listener: ListenerId) {
        let Some(&lid) = self.by_listener.get(&listener) else {
            let _ = self.device.cm().reject(self.now, conn, &[]);
            self.device.cm().release(self.now, conn);
            return;
        };
        let (Some(event), true) = (
            match self.objects.get(lid).map(|e| &e.object) {
                Some(Object::Listener { event, .. }) => Some(*event),
                _ => None,
            },
            self.is_open(lid),
        ) else {
            let _ = self.device.cm().reject(self.now, conn, &[]);
            self.device.cm().release(self.now, conn);
            return;
        };
        let (local, remote) = match self.device.cm_ref().connection(conn) {
            Some(c) => (c.local(), c.remote()),
            None => return,
        };
        let id = self.insert(
            Object::Connector(Box::new(Connector::incoming(conn, lid, local, remote))),
            vec![lid],
        );
        self.by_conn.insert(conn, id);
        self.device.cm().note(self.now, conn, "connect event");
        self.queue(lid, event, UpcallKind::ConnectEvent { connector: id });
    }
}
