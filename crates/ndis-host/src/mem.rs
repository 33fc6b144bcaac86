//! Memory NDIS and the kernel hand out and take back: pool blocks, MDLs,
//! NET_BUFFER_LIST pools and their NBLs. Each allocation is recorded, so a
//! double free, a free of something never allocated, and anything left at
//! unload are caught; freed memory is poisoned.
//!
//! Every NBL also carries where it is: with its owner, or lent to another
//! driver (sent down, indicated up). The NDIS entry points move NBLs
//! between these places and refuse (record a breach for) any move the
//! contract does not allow: sending an NBL the caller does not own,
//! completing or returning one twice, or one that was never lent.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::layout::{CANARY_NDIS, Mdl, Nb, Nbl};

/// Where an NBL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// With the driver that allocated it (or the host driver that made it).
    Owner,
    /// A shell NBL sent with NdisFSendNetBufferLists, not yet completed.
    SentDown,
    /// A shell NBL indicated with NdisMIndicateReceiveNetBufferLists, not
    /// yet returned.
    IndicatedUp,
    /// A NIC NBL given to FilterReceiveNetBufferLists.
    WithFilterRx { resources: bool },
    /// A NIC NBL the filter passed up to the protocol on the NIC.
    WithProtocol,
    /// A protocol's send NBL given to FilterSendNetBufferLists.
    WithFilterTx,
    /// A protocol's send NBL below the filter (at the NIC).
    BelowFilter,
    /// A protocol's send NBL the NIC completed, given to
    /// FilterSendNetBufferListsComplete.
    CompletingThroughFilter,
    /// A send NBL of the protocol bound to the shell's adapter, given to
    /// MiniportSendNetBufferLists.
    WithMiniport,
}

/// Who made an NBL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a pool the shell allocated (pool handle).
    Pool(usize),
    /// The emulated NIC's receive NBLs.
    Nic,
    /// The protocol bound to the NIC (TCP/IP), sending.
    PhysProtocol,
    /// The protocol bound to the shell's adapter, sending.
    VirtProtocol,
}

#[derive(Debug, Clone, Copy)]
pub struct Rec {
    pub origin: Origin,
    pub at: At,
}

#[derive(Debug)]
pub struct PoolRec {
    pub owner: usize,
    pub alloc_nb: bool,
    pub live: usize,
}

#[derive(Debug, Default)]
pub struct Mem {
    pub blocks: HashMap<usize, (usize, u32)>,
    pub mdls: HashMap<usize, usize>,
    pub pools: HashMap<usize, PoolRec>,
    pub nbls: HashMap<usize, Rec>,
    pub mib_tables: HashMap<usize, usize>,
    next_pool: usize,
}

static MEM: Mutex<Option<Mem>> = Mutex::new(None);

/// The registry.
pub fn mem() -> MutexGuard<'static, Option<Mem>> {
    let mut g = MEM.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        *g = Some(Mem {
            next_pool: 0x5000_0000,
            ..Mem::default()
        });
    }
    g
}

/// Runs `f` on the registry.
pub fn with<R>(f: impl FnOnce(&mut Mem) -> R) -> R {
    let mut g = mem();
    match g.as_mut() {
        Some(m) => f(m),
        None => unreachable!("initialised above"),
    }
}

fn raw_alloc(size: usize) -> *mut u8 {
    match Layout::from_size_align(size.max(1), 16) {
        // SAFETY: non-zero size.
        Ok(l) => unsafe { alloc_zeroed(l) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Poisons and frees a block from `raw_alloc`.
///
/// # Safety
/// `p` came from `raw_alloc(size)` and is not used again.
unsafe fn raw_free(p: *mut u8, size: usize) {
    // SAFETY: per the contract.
    unsafe {
        std::ptr::write_bytes(p, 0xDD, size);
        dealloc(p, Layout::from_size_align_unchecked(size.max(1), 16));
    }
}

// ------------------------------------------------------------------ pool

pub fn pool_alloc(size: usize, tag: u32) -> *mut u8 {
    let p = raw_alloc(size);
    if !p.is_null() {
        with(|m| m.blocks.insert(p as usize, (size, tag)));
    }
    p
}

pub fn pool_free(p: *mut u8) {
    let Some((size, _)) = with(|m| m.blocks.remove(&(p as usize))) else {
        crate::breach!("ExFreePool({p:p}): not an allocated pool block (double free?)");
        return;
    };
    for live in crate::ke::live_in(p as usize, size) {
        crate::breach!("ExFreePool({p:p}) frees {live}");
    }
    // SAFETY: allocated above with this size, now forgotten.
    unsafe { raw_free(p, size) };
}

// ------------------------------------------------------------------ MDLs

pub fn mdl_alloc(va: *mut u8, len: u32) -> *mut Mdl {
    let p = raw_alloc(size_of::<Mdl>()).cast::<Mdl>();
    if !p.is_null() {
        // SAFETY: a fresh block of the right size.
        unsafe { p.write(Mdl::over(va, len as usize)) };
        with(|m| m.mdls.insert(p as usize, len as usize));
    }
    p
}

pub fn mdl_free(p: *mut Mdl) {
    if with(|m| m.mdls.remove(&(p as usize))).is_none() {
        crate::breach!("NdisFreeMdl({p:p}): not an MDL from NdisAllocateMdl (double free?)");
        return;
    }
    // SAFETY: allocated above.
    unsafe { raw_free(p.cast(), size_of::<Mdl>()) };
}

// ------------------------------------------------------------ NBL pools

pub fn nbl_pool_alloc(owner: usize, alloc_nb: bool) -> usize {
    with(|m| {
        m.next_pool += 0x100;
        let h = m.next_pool;
        m.pools.insert(
            h,
            PoolRec {
                owner,
                alloc_nb,
                live: 0,
            },
        );
        h
    })
}

pub fn nbl_pool_free(pool: usize) {
    match with(|m| m.pools.remove(&pool)) {
        None => crate::breach!("NdisFreeNetBufferListPool({pool:#x}): not a pool (double free?)"),
        Some(p) if p.live > 0 => crate::breach!(
            "NdisFreeNetBufferListPool({pool:#x}) with {} NBL(s) from it still allocated",
            p.live
        ),
        Some(_) => {}
    }
}

/// A fresh NBL with one NET_BUFFER over `mdl` (any origin).
pub fn nbl_new(origin: Origin, mdl: *mut Mdl, offset: u32, len: usize) -> *mut Nbl {
    let nbl = raw_alloc(size_of::<Nbl>()).cast::<Nbl>();
    let nb = raw_alloc(size_of::<Nb>()).cast::<Nb>();
    if nbl.is_null() || nb.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: fresh, zeroed, correctly sized blocks.
    unsafe {
        (*nb).current_mdl = mdl;
        (*nb).mdl_chain = mdl;
        (*nb).current_mdl_offset = offset;
        (*nb).data_offset = offset;
        (*nb).data_length = len;
        (*nbl).first_nb = nb;
        (*nbl).ndis_reserved = [CANARY_NDIS; 2];
        (*nbl).ndis_reserved2 = CANARY_NDIS;
        if let Origin::Pool(p) = origin {
            (*nbl).ndis_pool_handle = p;
        }
    }
    with(|m| {
        if let Origin::Pool(p) = origin
            && let Some(pool) = m.pools.get_mut(&p)
        {
            pool.live += 1;
        }
        m.nbls.insert(
            nbl as usize,
            Rec {
                origin,
                at: At::Owner,
            },
        )
    });
    nbl
}

/// Frees an NBL and its NET_BUFFER (not the MDL).
pub fn nbl_free(nbl: *mut Nbl, who: &str) {
    let rec = with(|m| {
        let rec = m.nbls.get(&(nbl as usize)).copied();
        if let Some(r) = rec
            && r.at == At::Owner
        {
            m.nbls.remove(&(nbl as usize));
            if let Origin::Pool(p) = r.origin
                && let Some(pool) = m.pools.get_mut(&p)
            {
                pool.live -= 1;
            }
        }
        rec
    });
    match rec {
        None => crate::breach!("{who}({nbl:p}): not an allocated NBL (double free?)"),
        Some(r) if r.at != At::Owner => {
            crate::breach!("{who}({nbl:p}) while the NBL is lent out ({:?})", r.at)
        }
        Some(_) => {
            check_canaries(nbl, who);
            // SAFETY: allocated by `nbl_new`, now forgotten.
            unsafe {
                raw_free((*nbl).first_nb.cast(), size_of::<Nb>());
                raw_free(nbl.cast(), size_of::<Nbl>());
            }
        }
    }
}

/// NDIS's words of an NBL must be as NDIS left them.
pub fn check_canaries(nbl: *mut Nbl, who: &str) {
    // SAFETY: a live NBL (the caller checked the registry).
    let (r, r2) = unsafe { ((*nbl).ndis_reserved, (*nbl).ndis_reserved2) };
    if r != [CANARY_NDIS; 2] || r2 != CANARY_NDIS {
        crate::breach!(
            "{who}: NBL {nbl:p}'s NDIS-reserved fields were overwritten \
             ({:#x} {:#x} {:#x}): a driver wrote through a wrong NET_BUFFER_LIST layout",
            r[0],
            r[1],
            r2
        );
        // SAFETY: as above; restored so that one fault is reported once.
        unsafe {
            (*nbl).ndis_reserved = [CANARY_NDIS; 2];
            (*nbl).ndis_reserved2 = CANARY_NDIS;
        }
    }
}

/// Moves each NBL of a chain from `from` (any of them) to `to`; a breach
/// names `who` for each NBL not in an allowed place. Returns the chain as
/// a vector (the `Next` links as the caller passed them).
pub fn move_chain(
    head: *mut Nbl,
    who: &str,
    from: &[At],
    to: At,
    origin_ok: impl Fn(Origin) -> bool,
) -> Vec<*mut Nbl> {
    let mut out = Vec::new();
    let mut n = head;
    while !n.is_null() {
        if out.len() > 100_000 {
            crate::breach!("{who}: NBL chain does not end (a cycle)");
            break;
        }
        let rec = with(|m| {
            let r = m.nbls.get_mut(&(n as usize));
            match r {
                Some(r) if from.contains(&r.at) && origin_ok(r.origin) => {
                    let old = *r;
                    r.at = to;
                    Ok(old)
                }
                Some(r) => Err(Some(*r)),
                None => Err(None),
            }
        });
        match rec {
            Ok(_) => check_canaries(n, who),
            Err(None) => crate::breach!("{who}: {n:p} is not an NBL NDIS knows"),
            Err(Some(r)) => crate::breach!(
                "{who}: NBL {n:p} (from {:?}) is {:?}, not where this call may take it from \
                 ({from:?}): completed/returned twice, or not owned by the caller",
                r.origin,
                r.at
            ),
        }
        out.push(n);
        // SAFETY: a live NBL.
        n = unsafe { (*n).next };
    }
    out
}

/// Moves one NBL from `from` to `to` (the host's own moves: a mismatch is
/// a host bug or a driver that took an NBL it did not own).
pub fn move_chain_one(nbl: *mut Nbl, from: At, to: At) {
    let r = with(|m| match m.nbls.get_mut(&(nbl as usize)) {
        Some(r) if r.at == from => {
            r.at = to;
            Ok(())
        }
        r => Err(r.map(|r| r.at)),
    });
    if let Err(at) = r {
        crate::breach!("NBL {nbl:p} expected {from:?}, found {at:?}");
    }
}

/// Where an NBL is now.
pub fn rec(nbl: *mut Nbl) -> Option<Rec> {
    with(|m| m.nbls.get(&(nbl as usize)).copied())
}

/// NBLs of `origin` not with their owner.
pub fn outstanding(origin: impl Fn(Origin) -> bool) -> Vec<(usize, Rec)> {
    with(|m| {
        m.nbls
            .iter()
            .filter(|(_, r)| origin(r.origin) && r.at != At::Owner)
            .map(|(a, r)| (*a, *r))
            .collect()
    })
}

/// Everything still allocated: (pool blocks, MDLs, NBL pools, shell NBLs,
/// MIB tables).
pub fn leaks() -> Vec<String> {
    with(|m| {
        let mut out = Vec::new();
        if !m.blocks.is_empty() {
            out.push(format!("{} pool block(s) not freed", m.blocks.len()));
        }
        if !m.mdls.is_empty() {
            out.push(format!("{} MDL(s) not freed", m.mdls.len()));
        }
        if !m.pools.is_empty() {
            out.push(format!("{} NBL pool(s) not freed", m.pools.len()));
        }
        let shell = m
            .nbls
            .values()
            .filter(|r| matches!(r.origin, Origin::Pool(_)))
            .count();
        if shell > 0 {
            out.push(format!("{shell} NBL(s) from the shell's pools not freed"));
        }
        if !m.mib_tables.is_empty() {
            out.push(format!("{} MIB table(s) not freed", m.mib_tables.len()));
        }
        out
    })
}
