//! Resolving keys: SGEs and remote (key, address, length) triples checked
//! against the table (IBA Vol 1 §10.6.3), then bytes moved through the
//! resolved places, and the requester's gather and responder's scatter.

use super::*;

impl KeyTable {
    /// Check a local SGE for a QP in `pd` (IBA §10.6.3.1: key, PD, state,
    /// bounds, local write for sinks).
    pub(crate) fn resolve_local(
        &self,
        sge: &Sge,
        pd: u32,
        write: bool,
    ) -> Result<Place, AccessError> {
        let len = u64::from(sge.length);
        if sge.lkey == PRIVILEGED_LKEY {
            sge.addr.checked_add(len).ok_or(AccessError::OutOfBounds)?;
            return Ok(Place::Logical(sge.addr));
        }
        let index = sge.lkey >> 8;
        let mr = self.mr_at(index).ok_or(AccessError::BadKey)?;
        if mr.key != sge.lkey as u8 {
            return Err(AccessError::BadKey);
        }
        if mr.pd != pd {
            return Err(AccessError::WrongPd);
        }
        if !mr.valid {
            return Err(AccessError::NotValid);
        }
        let offset = mr.contains(sge.addr, len).ok_or(AccessError::OutOfBounds)?;
        if write && !mr.access.contains(Access::LOCAL_WRITE) {
            return Err(AccessError::NoPermission);
        }
        Ok(Place::Mr { index, offset })
    }

    /// Check a remote access of `len` bytes at `va` through `rkey` for a QP
    /// in `pd` (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c: key, PD, state, bounds, rights).
    pub(crate) fn resolve_remote(
        &self,
        rkey: u32,
        pd: u32,
        va: u64,
        len: u64,
        need: Access,
    ) -> Result<Place, AccessError> {
        let index = rkey >> 8;
        let byte = rkey as u8;
        let slot = self.slots.get(index as usize).ok_or(AccessError::BadKey)?;
        match &slot.obj {
            Obj::Mr(mr) => {
                if mr.key != byte {
                    return Err(AccessError::BadKey);
                }
                if mr.pd != pd {
                    return Err(AccessError::WrongPd);
                }
                if !mr.valid {
                    return Err(AccessError::NotValid);
                }
                let offset = mr.contains(va, len).ok_or(AccessError::OutOfBounds)?;
                if !mr.access.contains(need) {
                    return Err(AccessError::NoPermission);
                }
                Ok(Place::Mr { index, offset })
            }
            Obj::Mw(mw) => {
                if mw.key != byte {
                    return Err(AccessError::BadKey);
                }
                if mw.pd != pd {
                    return Err(AccessError::WrongPd);
                }
                let b = mw.binding.ok_or(AccessError::NotValid)?;
                let woff = va.checked_sub(b.iova).ok_or(AccessError::OutOfBounds)?;
                if woff.checked_add(len).ok_or(AccessError::OutOfBounds)? > b.length {
                    return Err(AccessError::OutOfBounds);
                }
                if !b.access.contains(need) {
                    return Err(AccessError::NoPermission);
                }
                let mr = self.mr_at(b.mr).ok_or(AccessError::NotValid)?;
                if !mr.valid {
                    return Err(AccessError::NotValid);
                }
                let offset = mr.contains(va, len).ok_or(AccessError::OutOfBounds)?;
                Ok(Place::Mr {
                    index: b.mr,
                    offset,
                })
            }
            _ => Err(AccessError::BadKey),
        }
    }

    /// Read `dst.len()` bytes at a resolved place.
    #[cfg(test)]
    pub(crate) fn read<M: Memory + ?Sized>(&self, mem: &M, place: Place, dst: &mut [u8]) -> bool {
        self.read_crc(mem, place, dst, 0).is_some()
    }

    /// Read `dst.len()` bytes at a resolved place, returning their CRC-32
    /// continuing from `crc` ([`Memory::read_crc`], piece by piece in
    /// order); `None` if a read failed.
    pub(crate) fn read_crc<M: Memory + ?Sized>(
        &self,
        mem: &M,
        place: Place,
        dst: &mut [u8],
        crc: u32,
    ) -> Option<u32> {
        match place {
            Place::Logical(a) => mem.read_crc(a, dst, crc),
            Place::Mr { index, offset } => {
                self.crc_pieces(index, offset, dst.len(), crc, |addr, pos, n, crc| {
                    mem.read_crc(addr, dst.get_mut(pos..pos + n)?, crc)
                })
            }
        }
    }

    /// Runs `f(logical address, position, bytes, crc so far)` over the
    /// pieces of MR `index` covering `len` bytes at `offset`, in order,
    /// threading the CRC-32 each returns into the next; `None` if the MR
    /// is gone or a piece failed.
    fn crc_pieces(
        &self,
        index: u32,
        offset: u64,
        len: usize,
        crc: u32,
        mut f: impl FnMut(u64, usize, usize, u32) -> Option<u32>,
    ) -> Option<u32> {
        let mr = self.mr_at(index)?;
        let mut crc = crc;
        mr.map
            .for_each_piece(offset, len, |addr, pos, n| match f(addr, pos, n, crc) {
                Some(c) => {
                    crc = c;
                    true
                }
                None => false,
            })
            .then_some(crc)
    }

    /// Write `src` at a resolved place.
    pub(crate) fn write<M: Memory + ?Sized>(&self, mem: &M, place: Place, src: &[u8]) -> bool {
        match place {
            Place::Logical(a) => mem.write(a, src),
            Place::Mr { index, offset } => {
                let Some(mr) = self.mr_at(index) else {
                    return false;
                };
                mr.map.for_each_piece(offset, src.len(), |addr, pos, n| {
                    src.get(pos..pos + n).is_some_and(|s| mem.write(addr, s))
                })
            }
        }
    }

    /// [`write`](Self::write), returning the CRC-32 of `src` continuing
    /// from `crc` ([`Memory::write_crc`], piece by piece in order); `None`
    /// if a write failed.
    pub(crate) fn write_crc<M: Memory + ?Sized>(
        &self,
        mem: &M,
        place: Place,
        src: &[u8],
        crc: u32,
    ) -> Option<u32> {
        match place {
            Place::Logical(a) => mem.write_crc(a, src, crc),
            Place::Mr { index, offset } => {
                self.crc_pieces(index, offset, src.len(), crc, |addr, pos, n, crc| {
                    mem.write_crc(addr, src.get(pos..pos + n)?, crc)
                })
            }
        }
    }
}

impl KeyTable {
    /// Copy message bytes `offset..offset + dst.len()` out of an SGE list
    /// into `dst` (requester gather), returning their CRC-32 (from 0, for
    /// the ICRC). Errors are the completion status of the work request: a
    /// failed check is a local protection error, a failed memory read a
    /// local access error, a short list a length error.
    pub(crate) fn gather<M: Memory + ?Sized>(
        &self,
        mem: &M,
        pd: u32,
        sges: &[Sge],
        offset: u32,
        dst: &mut [u8],
    ) -> Result<u32, WcStatus> {
        let mut done = 0usize;
        let mut crc = 0;
        self.walk(sges, offset, dst.len(), |sge, within, pos, n| {
            let place = self
                .resolve_local(sge, pd, false)
                .map_err(|_| WcStatus::LocProtErr)?;
            let d = dst.get_mut(pos..pos + n).ok_or(WcStatus::LocLenErr)?;
            crc = self
                .read_crc(mem, place.advance(within), d, crc)
                .ok_or(WcStatus::LocAccessErr)?;
            done += n;
            Ok(())
        })?;
        if done == dst.len() {
            Ok(crc)
        } else {
            Err(WcStatus::LocLenErr)
        }
    }

    /// Copy `src` into an SGE list at message offset `offset` (responder
    /// receive placement, requester read-response placement). The SGEs
    /// need local write. Given a `crc`, also returns the CRC-32 of `src` continuing from it
    /// ([`write_crc`](Self::write_crc)).
    pub(crate) fn scatter_crc<M: Memory + ?Sized>(
        &self,
        mem: &M,
        pd: u32,
        sges: &[Sge],
        offset: u32,
        src: &[u8],
        crc: Option<u32>,
    ) -> Result<Option<u32>, WcStatus> {
        let mut done = 0usize;
        let mut crc = crc;
        self.walk(sges, offset, src.len(), |sge, within, pos, n| {
            let place = self
                .resolve_local(sge, pd, true)
                .map_err(|_| WcStatus::LocProtErr)?;
            let place = place.advance(within);
            let s = src.get(pos..pos + n).ok_or(WcStatus::LocLenErr)?;
            let written = match crc {
                Some(c) => self.write_crc(mem, place, s, c).map(|c| crc = Some(c)),
                None => self.write(mem, place, s).then_some(()),
            };
            written.ok_or(WcStatus::LocAccessErr)?;
            done += n;
            Ok(())
        })?;
        if done == src.len() {
            Ok(crc)
        } else {
            Err(WcStatus::LocLenErr)
        }
    }

    /// Visit the SGE pieces covering message bytes `offset..offset+len`:
    /// `f(sge, offset within the SGE, position in the buffer, bytes)`.
    fn walk(
        &self,
        sges: &[Sge],
        offset: u32,
        len: usize,
        mut f: impl FnMut(&Sge, u64, usize, usize) -> Result<(), WcStatus>,
    ) -> Result<(), WcStatus> {
        let offset = u64::from(offset);
        let mut start = 0u64;
        let mut pos = 0usize;
        for sge in sges {
            if pos >= len {
                break;
            }
            let end = start + u64::from(sge.length);
            if end > offset {
                let within = offset.saturating_sub(start);
                let avail = usize::try_from(end - start - within).unwrap_or(usize::MAX);
                let n = avail.min(len - pos);
                if n > 0 {
                    f(sge, within, pos, n)?;
                    pos += n;
                }
            }
            start = end;
        }
        Ok(())
    }
}
