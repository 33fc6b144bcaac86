//! Reading the consumer's arguments: socket addresses, SGE lists, byte ranges
//! (NDKPI passes them as raw pointers and lengths).

use super::*;

/// # Safety
/// `p` is null or points to `len` readable bytes.
pub(super) unsafe fn read_sockaddr(p: *const SOCKADDR, len: ULONG) -> Option<SocketAddr> {
    // The family is read only when the length covers it: a shorter
    // buffer is refused, not read past.
    if p.is_null() || (len as usize) < core::mem::size_of::<ADDRESS_FAMILY>() {
        return None;
    }
    // SAFETY: `len` covers the family (checked above) and `p` points to `len` readable bytes (this function's contract).
    let family = unsafe { p.cast::<ADDRESS_FAMILY>().read_unaligned() };
    match family {
        AF_INET if len as usize >= core::mem::size_of::<SOCKADDR_IN>() => {
            // SAFETY: `len` covers a SOCKADDR_IN; unaligned, as the consumer's buffer may be.
            let a = unsafe { p.cast::<SOCKADDR_IN>().read_unaligned() };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        AF_INET6 if len as usize >= core::mem::size_of::<SOCKADDR_IN6>() => {
            // SAFETY: `len` covers a SOCKADDR_IN6; unaligned, as the consumer's buffer may be.
            let a = unsafe { p.cast::<SOCKADDR_IN6>().read_unaligned() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a SOCKADDR_IN / SOCKADDR_IN6; STATUS_BUFFER_TOO_SMALL
/// with the needed size in `*len` if it does not fit.
///
/// # Safety
/// `len` is valid; `p` is null or points to `*len` writable bytes.
pub(super) unsafe fn write_sockaddr(
    addr: SocketAddr,
    p: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: `len` is null or valid (this function's contract).
    let Some(len) = (unsafe { len.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let need = match addr {
        SocketAddr::V4(_) => core::mem::size_of::<SOCKADDR_IN>(),
        SocketAddr::V6(_) => core::mem::size_of::<SOCKADDR_IN6>(),
    } as ULONG;
    if p.is_null() || *len < need {
        *len = need;
        return STATUS_BUFFER_TOO_SMALL;
    }
    *len = need;
    // SAFETY: `p` points to `*len` writable bytes (the contract), and `*len` was at least `need` (checked above).
    unsafe {
        match addr {
            SocketAddr::V4(a) => p.cast::<SOCKADDR_IN>().write_unaligned(SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: IN_ADDR {
                    s_addr: a.ip().octets(),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => p.cast::<SOCKADDR_IN6>().write_unaligned(SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: IN6_ADDR {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }
    STATUS_SUCCESS
}

/// # Safety
/// `sgl` is null (with `n` 0) or points to `n` readable NDK_SGEs.
pub(super) unsafe fn sges(
    sgl: *const NDK_SGE,
    n: ULONG,
    buf: &mut [NdkSge; 32],
) -> Result<&[NdkSge], NTSTATUS> {
    if n == 0 {
        return Ok(&[]);
    }
    if sgl.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let n = n as usize;
    if n > buf.len() {
        return Err(STATUS_DATA_OVERRUN);
    }
    // SAFETY: `sgl` is non-null and points to `n` readable NDK_SGEs (this function's contract).
    let src = unsafe { core::slice::from_raw_parts(sgl, n) };
    for (o, s) in buf.iter_mut().zip(src) {
        // SAFETY: both union members are 8 plain bytes.
        let address = unsafe { s.Address.LogicalAddress } as u64;
        *o = NdkSge {
            address,
            length: s.Length,
            token: s.MemoryRegionToken,
        };
    }
    Ok(buf.get(..n).unwrap_or(&[]))
}

/// # Safety
/// `p` is null (with `len` 0) or points to `len` readable bytes.
pub(super) unsafe fn bytes<'a>(p: *const c_void, len: ULONG) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is non-null and points to `len` readable bytes (this function's contract).
    Some(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len as usize) })
}
