//! Little-endian reading and writing helpers shared by the codecs. Reads are
//! bounds-checked and report how much was missing, so a truncated peer
//! message is an error value, never a panic.

/// A read ran past the end of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// Bytes the read needed, counted from the start of the input.
    pub need: usize,
    /// Bytes the input had.
    pub have: usize,
}

/// A bounds-checked little-endian reader over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(s)
    }
    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        self.take(n).map(|_| ())
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Returns `buf[offset..offset + len]`, or how far it would have reached.
pub fn slice_at(buf: &[u8], offset: usize, len: usize) -> Result<&[u8], Truncated> {
    let end = offset.checked_add(len).ok_or(Truncated {
        need: usize::MAX,
        have: buf.len(),
    })?;
    buf.get(offset..end).ok_or(Truncated {
        need: end,
        have: buf.len(),
    })
}

/// Little-endian appends to a `Vec<u8>`.
pub trait PutLe {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    /// Zero-pads to a multiple of `align` bytes, counted from `base`.
    fn pad_to(&mut self, base: usize, align: usize);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn pad_to(&mut self, base: usize, align: usize) {
        while !self.len().saturating_sub(base).is_multiple_of(align) {
            self.push(0);
        }
    }
}

/// Overwrites two little-endian bytes at `at` (a field whose value is only
/// known after the payload is laid out). Out-of-range positions are a bug in
/// the encoder, not peer input, and are ignored rather than panicking.
pub fn patch_u16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(d) = at.checked_add(2).and_then(|end| buf.get_mut(at..end)) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// As [`patch_u16`], four bytes.
pub fn patch_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(d) = at.checked_add(4).and_then(|end| buf.get_mut(at..end)) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// UTF-16LE encoding, as SMB2 and NTLM carry strings.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// Decodes UTF-16LE; an odd length or unpaired surrogate is `None`.
pub fn from_utf16le(b: &[u8]) -> Option<String> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0201));
        assert_eq!(r.u16(), Err(Truncated { need: 4, have: 3 }));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(slice_at(&[0; 4], 2, 3), Err(Truncated { need: 5, have: 4 }));
        assert_eq!(
            slice_at(&[0; 4], usize::MAX, 3).unwrap_err().need,
            usize::MAX
        );
    }

    #[test]
    fn utf16_round_trip() {
        let b = utf16le("\\\\srv\\share");
        assert_eq!(from_utf16le(&b).as_deref(), Some("\\\\srv\\share"));
        assert_eq!(from_utf16le(&[0x41]), None);
    }
}
