//! The SPNEGO (RFC 4178) wrapping SMB2 SESSION_SETUP uses for NTLM
//! (MS-SPNG): a NegTokenInit around NEGOTIATE_MESSAGE, NegTokenResp around
//! CHALLENGE_MESSAGE and AUTHENTICATE_MESSAGE. Only the DER this needs.

use crate::bytes::Reader;

/// 1.3.6.1.5.5.2, the SPNEGO mechanism.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// 1.3.6.1.4.1.311.2.2.10, NTLMSSP.
pub const NTLMSSP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// NegState values (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    AcceptCompleted,
    AcceptIncomplete,
    Reject,
    RequestMic,
}

/// Malformed or unexpected DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpnegoError {
    Truncated,
    /// A tag other than the one the structure requires.
    UnexpectedTag(u8),
    /// A length form this parser does not take (indefinite, > 4 bytes).
    BadLength,
    BadNegState(u8),
}

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n <= 0xff {
        v.extend_from_slice(&[0x81, n as u8]);
    } else if n <= 0xffff {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        v.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// The first SESSION_SETUP token: GSS-API InitialContextToken around a
/// NegTokenInit offering NTLMSSP with `mech_token` (MS-SPNG 3.1.5.1).
pub fn neg_token_init(mech_token: &[u8]) -> Vec<u8> {
    let mech_types = tlv(0xa0, &tlv(0x30, &tlv(0x06, NTLMSSP_OID)));
    let token = tlv(0xa2, &tlv(0x04, mech_token));
    let mut seq = mech_types;
    seq.extend_from_slice(&token);
    let init = tlv(0xa0, &tlv(0x30, &seq));
    let mut inner = tlv(0x06, SPNEGO_OID);
    inner.extend_from_slice(&init);
    tlv(0x60, &inner)
}

/// A later client token: NegTokenResp with only a responseToken.
pub fn neg_token_resp(response_token: &[u8]) -> Vec<u8> {
    tlv(0xa1, &tlv(0x30, &tlv(0xa2, &tlv(0x04, response_token))))
}

/// What a server NegTokenResp says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp {
    pub state: Option<NegState>,
    pub supported_mech: Option<Vec<u8>>,
    pub response_token: Option<Vec<u8>>,
    pub mech_list_mic: Option<Vec<u8>>,
}

fn read_tlv<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), SpnegoError> {
    let tag = r.u8().map_err(|_| SpnegoError::Truncated)?;
    let first = r.u8().map_err(|_| SpnegoError::Truncated)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(SpnegoError::BadLength);
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | r.u8().map_err(|_| SpnegoError::Truncated)? as usize;
        }
        len
    };
    let body = r.take(len).map_err(|_| SpnegoError::Truncated)?;
    Ok((tag, body))
}

fn expect(r: &mut Reader<'_>, want: u8) -> Result<Vec<u8>, SpnegoError> {
    let (tag, body) = read_tlv(r)?;
    if tag != want {
        return Err(SpnegoError::UnexpectedTag(tag));
    }
    Ok(body.to_vec())
}

/// Parses the server's NegTokenResp ([1] SEQUENCE { [0] negState,
/// [1] supportedMech, [2] responseToken, [3] mechListMIC }).
pub fn parse_neg_token_resp(b: &[u8]) -> Result<NegTokenResp, SpnegoError> {
    let outer = expect(&mut Reader::new(b), 0xa1)?;
    let seq = expect(&mut Reader::new(&outer), 0x30)?;
    let mut r = Reader::new(&seq);
    let mut out = NegTokenResp::default();
    while r.remaining() > 0 {
        let (tag, body) = read_tlv(&mut r)?;
        let mut inner = Reader::new(body);
        match tag {
            0xa0 => {
                let v = expect(&mut inner, 0x0a)?;
                out.state = Some(match v.as_slice() {
                    [0] => NegState::AcceptCompleted,
                    [1] => NegState::AcceptIncomplete,
                    [2] => NegState::Reject,
                    [3] => NegState::RequestMic,
                    [x, ..] => return Err(SpnegoError::BadNegState(*x)),
                    [] => return Err(SpnegoError::Truncated),
                });
            }
            0xa1 => out.supported_mech = Some(expect(&mut inner, 0x06)?),
            0xa2 => out.response_token = Some(expect(&mut inner, 0x04)?),
            0xa3 => out.mech_list_mic = Some(expect(&mut inner, 0x04)?),
            t => return Err(SpnegoError::UnexpectedTag(t)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_token_layout() {
        let t = neg_token_init(b"NTLMSSP\0\x01");
        // Application 0, then the SPNEGO OID.
        assert_eq!(t[0], 0x60);
        assert_eq!(&t[2..10], &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
        assert_eq!(t[1] as usize, t.len() - 2);
        // The mechanism list holds exactly NTLMSSP.
        let w = t.windows(NTLMSSP_OID.len()).any(|w| w == NTLMSSP_OID);
        assert!(w);
        assert!(t.ends_with(b"NTLMSSP\0\x01"));
    }

    #[test]
    fn resp_round_trip_and_long_lengths() {
        let token = vec![0x5a; 300];
        let b = neg_token_resp(&token);
        assert_eq!(&b[..4], &[0xa1, 0x82, 0x01, 0x38]);
        let r = parse_neg_token_resp(&b).unwrap();
        assert_eq!(r.response_token, Some(token));
        assert_eq!(r.state, None);
    }

    #[test]
    fn server_resp_fields() {
        let mut seq = tlv(0xa0, &tlv(0x0a, &[1]));
        seq.extend(tlv(0xa1, &tlv(0x06, NTLMSSP_OID)));
        seq.extend(tlv(0xa2, &tlv(0x04, b"challenge")));
        let b = tlv(0xa1, &tlv(0x30, &seq));
        let r = parse_neg_token_resp(&b).unwrap();
        assert_eq!(r.state, Some(NegState::AcceptIncomplete));
        assert_eq!(r.supported_mech.as_deref(), Some(NTLMSSP_OID));
        assert_eq!(r.response_token.as_deref(), Some(&b"challenge"[..]));
        // Every truncation is an error, never a panic.
        for n in 0..b.len() {
            assert!(parse_neg_token_resp(&b[..n]).is_err());
        }
        assert_eq!(
            parse_neg_token_resp(&[0xa1, 0x80]),
            Err(SpnegoError::BadLength)
        );
        assert_eq!(
            parse_neg_token_resp(&[0x30, 0x00]),
            Err(SpnegoError::UnexpectedTag(0x30))
        );
        let bad = tlv(0xa1, &tlv(0x30, &tlv(0xa0, &tlv(0x0a, &[9]))));
        assert_eq!(parse_neg_token_resp(&bad), Err(SpnegoError::BadNegState(9)));
    }
}
