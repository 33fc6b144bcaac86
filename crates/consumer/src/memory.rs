//! Memory a consumer hands to the provider: zeroed, page-aligned process
//! memory with the MDL that describes it.

use std::alloc::Layout;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use ndkpi::{MDL, NDK_SGE, NDK_SGE_ADDRESS, PVOID, ULONG};

use crate::platform::{HostMdl, MemoryMap};

/// How memory is described to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MdlKind {
    /// [`HostMdl`]s, for a provider on [`crate::HostPlatform`].
    #[default]
    Host,
    /// wdm.h MDLs, for a provider that is the Windows shell (whose platform
    /// reads kernel MDLs: crates/ndis-host runs it in this process).
    Kernel,
}

/// A single, mapped MDL as wdm.h lays it out on x64 (Next, Size, MdlFlags,
/// Process, MappedSystemVa, StartVa, ByteCount, ByteOffset).
#[repr(C)]
#[derive(Debug)]
struct KernelMdl {
    next: *mut KernelMdl,
    size: i16,
    flags: i16,
    process: usize,
    mapped_system_va: *mut u8,
    start_va: *mut u8,
    byte_count: u32,
    byte_offset: u32,
}

/// The page size memory is aligned to.
const PAGE: usize = 4096;

/// MDL_MAPPED_TO_SYSTEM_VA.
const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;

#[derive(Debug)]
enum MdlBox {
    Host(Box<HostMdl>),
    Kernel(Box<KernelMdl>),
}

/// Zeroed, page-aligned memory (as NdkBuildLAM's pages are) and the MDL
/// that describes it, both fixed in place while an MR maps them. Under a
/// [`MemoryMap`], the memory is reachable by the engine from creation
/// until drop.
#[derive(Debug)]
pub struct Memory {
    /// The allocation (`layout(len)`), and the page-aligned first byte in it.
    base: NonNull<u8>,
    ptr: NonNull<u8>,
    len: usize,
    mdl: MdlBox,
    map: Option<Arc<MemoryMap>>,
}

// SAFETY: the memory is shared with the provider by design; its owner
// reads it only after a completion ordered the engine's writes (through
// the adapter lock), and the allocation lives until drop.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

impl Memory {
    /// A page more than asked for, byte-aligned: the allocator's zeroed
    /// allocation of that layout is calloc, whose large blocks are fresh
    /// zero pages (a page-aligned layout would be memset byte by byte).
    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len.checked_add(PAGE)?, 1).ok()
    }

    /// `len` zeroed bytes described by `kind`, reachable under `map`; None
    /// if the host cannot give them. Zeroed memory from the allocator
    /// (large blocks come as fresh zero pages, nothing written here), so a
    /// 1 GiB buffer costs no time on the thread that makes it.
    pub fn try_new(len: usize, kind: MdlKind, map: Option<&Arc<MemoryMap>>) -> Option<Memory> {
        let layout = Self::layout(len)?;
        // SAFETY: `layout` has a non-zero size and a valid alignment.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        let skip = base.as_ptr().align_offset(PAGE);
        if skip >= PAGE {
            // SAFETY: allocated just above with this layout, freed once.
            unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
            return None;
        }
        // SAFETY: skip < PAGE, and the allocation has len + PAGE bytes.
        let ptr = unsafe { base.add(skip) };
        let va = ptr.as_ptr();
        let mdl = match kind {
            MdlKind::Host => MdlBox::Host(Box::new(HostMdl::new(va, len))),
            MdlKind::Kernel => MdlBox::Kernel(Box::new(KernelMdl {
                next: ptr::null_mut(),
                size: 0x30,
                flags: MDL_MAPPED_TO_SYSTEM_VA,
                process: 0,
                mapped_system_va: va,
                start_va: va,
                byte_count: len as u32,
                byte_offset: 0,
            })),
        };
        if let Some(m) = map {
            m.allow(va as u64, len as u64);
        }
        Some(Memory {
            base,
            ptr,
            len,
            mdl,
            map: map.cloned(),
        })
    }

    /// As [`Memory::try_new`], panicking if the host has no memory.
    pub fn new(len: usize, kind: MdlKind, map: Option<&Arc<MemoryMap>>) -> Memory {
        Self::try_new(len, kind, map).expect("out of memory")
    }

    /// Bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of byte `off` (clamped to the end).
    pub fn va(&self, off: usize) -> u64 {
        self.ptr.as_ptr() as u64 + off.min(self.len) as u64
    }

    /// The MDL to hand to the provider (NdkRegisterMr, NdkBuildLAM).
    pub fn mdl(&mut self) -> *mut MDL {
        match &mut self.mdl {
            MdlBox::Host(m) => (&mut **m as *mut HostMdl).cast::<MDL>(),
            MdlBox::Kernel(m) => (&mut **m as *mut KernelMdl).cast::<MDL>(),
        }
    }

    /// A [`HostMdl`] over `len` bytes at `off` (None if out of bounds).
    pub fn sub_mdl(&self, off: usize, len: usize) -> Option<Box<HostMdl>> {
        (off.checked_add(len)? <= self.len)
            .then(|| Box::new(HostMdl::new(self.ptr.as_ptr().wrapping_add(off), len)))
    }

    /// One SGE over `len` bytes at `off` (both clamped to the memory),
    /// accessed through `token`.
    pub fn sge(&self, off: usize, len: usize, token: u32) -> NDK_SGE {
        let off = off.min(self.len);
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: self.va(off) as PVOID,
            },
            Length: len.min(self.len - off) as ULONG,
            MemoryRegionToken: token,
        }
    }

    /// The bytes. Read them only after a completion ordered what the
    /// engine wrote into them.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of `len` bytes, initialized
        // (zeroed) at creation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, to fill: only where no RDMA is in flight.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`; `&mut self` makes the slice exclusive on
        // the consumer's side.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// `len` bytes at `off` (None if out of bounds), copied: the engine
    /// may write the memory behind a shared owner's back.
    pub fn read(&self, off: usize, len: usize) -> Option<Vec<u8>> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        let mut v = vec![0u8; len];
        // SAFETY: off + len <= self.len (checked) and `v` holds len bytes.
        unsafe { ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), v.as_mut_ptr(), len) };
        Some(v)
    }

    /// Copies `bytes` to `off`; false if out of bounds.
    pub fn write(&self, off: usize, bytes: &[u8]) -> bool {
        if off
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        // SAFETY: off + bytes.len() <= self.len, checked above.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(off), bytes.len())
        };
        true
    }

    /// # Safety
    /// No RDMA into `off..off + len` is in flight, and no other slice of
    /// those bytes is alive.
    #[allow(clippy::mut_from_ref)] // shared with the provider; see the contract
    pub unsafe fn slice_mut(&self, off: usize, len: usize) -> &mut [u8] {
        let off = off.min(self.len);
        let len = len.min(self.len - off);
        // SAFETY: inside the allocation; exclusivity per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Some(m) = &self.map {
            m.forbid(self.ptr.as_ptr() as u64);
        }
        if let Some(layout) = Self::layout(self.len) {
            // SAFETY: allocated in `try_new` with this layout, freed once;
            // the map no longer lets the engine reach it.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), layout) };
        }
    }
}
