//! Protection domains: NdkCreatePd, and the open-PD check every child
//! object's create makes.

use alloc::vec::Vec;

use ndkpi::*;
use roce::rc::{Memory, PdHandle};

use super::{Object, Provider};
use crate::object::ObjectId;

impl<M: Memory> Provider<M> {
    /// NdkCreatePd.
    pub fn create_pd(&mut self) -> Result<ObjectId, NTSTATUS> {
        let pd = self
            .device
            .rc()
            .alloc_pd()
            .map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
        Ok(self.insert(Object::Pd { pd }, Vec::new()))
    }

    pub(super) fn open_pd(&self, pd: ObjectId) -> Result<PdHandle, NTSTATUS> {
        match self.open_object(pd)? {
            Object::Pd { pd } => Ok(*pd),
            _ => Err(STATUS_INVALID_HANDLE),
        }
    }
}
