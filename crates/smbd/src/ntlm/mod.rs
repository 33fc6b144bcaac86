//! NTLMv2 client authentication (MS-NLMP), as SMB2 SESSION_SETUP carries
//! it inside SPNEGO ([`spnego`]).
//!
//! The exchange: the client sends NEGOTIATE_MESSAGE, the server answers
//! with CHALLENGE_MESSAGE, the client proves knowledge of the password in
//! AUTHENTICATE_MESSAGE and both sides end up with the same exported
//! session key, from which SMB 3.x derives its signing key.
//!
//! Randomness (client challenge, exported session key) and the time are
//! inputs, so the computation is deterministic and testable against the
//! MS-NLMP 4.2.4 vectors. The NTLMv2 client is a page of HMAC-MD5 over
//! well-kept RustCrypto primitives; a general NTLM crate such as `sspi`
//! would bring a whole SSPI emulation for it.

pub mod spnego;

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use rc4::{KeyInit, Rc4, StreamCipher, consts::U16};

use crate::bytes::{PutLe, Reader, slice_at, utf16le};

type HmacMd5 = Hmac<Md5>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NEGOTIATE flags (MS-NLMP 2.2.2.5).
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids used here (MS-NLMP 2.2.2.1).
pub mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x0000_0002;
}

/// What the client asks for: Unicode, NTLMv2 session security, 128-bit
/// keys with key exchange, and signing (SMB signs with the session key).
pub const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::TARGET_INFO
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

/// Why a CHALLENGE_MESSAGE could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtlmError {
    Truncated {
        need: usize,
        have: usize,
    },
    BadSignature,
    /// Not message type 2.
    WrongMessageType(u32),
    /// A payload field points outside the message.
    FieldOutOfBounds,
    /// The target info AV_PAIR list has no MsvAvEOL or overruns.
    BadTargetInfo,
}

impl From<crate::bytes::Truncated> for NtlmError {
    fn from(t: crate::bytes::Truncated) -> Self {
        NtlmError::Truncated {
            need: t.need,
            have: t.have,
        }
    }
}

/// The user's credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub domain: String,
    pub password: String,
    pub workstation: String,
}

/// MS-NLMP 3.3.1 NTOWFv1: MD4 of the UTF-16LE password (the "NT hash").
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // Any key length is valid for HMAC, so new_from_slice cannot fail.
    let Ok(mut m) = <HmacMd5 as Mac>::new_from_slice(key) else {
        return [0; 16];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// MS-NLMP 3.3.2 NTOWFv2 (= LMOWFv2): keyed by the NT hash over the
/// upper-cased user name and the domain as given.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let mut ud = utf16le(&user.to_uppercase());
    ud.extend_from_slice(&utf16le(domain));
    hmac_md5(&nt_hash(password), &[&ud])
}

/// The NTLMv2 responses and keys for one challenge (MS-NLMP 3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Response {
    /// NTProofStr followed by the client blob ("temp").
    pub nt_response: Vec<u8>,
    /// LMv2: HMAC over the challenges, then the client challenge; all zero
    /// when the server sent a timestamp (MS-NLMP 3.1.5.1.2).
    pub lm_response: [u8; 24],
    pub session_base_key: [u8; 16],
}

/// Computes the NTLMv2 response. `target_info` is the AV_PAIR list as the
/// client will send it inside the blob; `time` is FILETIME (100 ns since
/// 1601), taken from the server's MsvAvTimestamp when it sent one.
pub fn v2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    time: u64,
    target_info: &[u8],
    zero_lm: bool,
) -> V2Response {
    let mut temp = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    temp.put_u64(time);
    temp.extend_from_slice(client_challenge);
    temp.put_u32(0);
    temp.extend_from_slice(target_info);
    temp.put_u32(0);
    let proof = hmac_md5(response_key, &[server_challenge, &temp]);
    let mut nt_response = proof.to_vec();
    nt_response.extend_from_slice(&temp);
    let mut lm_response = [0u8; 24];
    if !zero_lm {
        let lm = hmac_md5(response_key, &[server_challenge, client_challenge]);
        let mut v = lm.to_vec();
        v.extend_from_slice(client_challenge);
        lm_response.copy_from_slice(&v);
    }
    V2Response {
        nt_response,
        lm_response,
        session_base_key: hmac_md5(response_key, &[&proof]),
    }
}

/// RC4 under the key-exchange key: how the client sends its random
/// exported session key with NTLMSSP_NEGOTIATE_KEY_EXCH (MS-NLMP 3.1.5.1.2).
pub fn rc4_16(key: &[u8; 16], data: &[u8; 16]) -> [u8; 16] {
    let mut out = *data;
    let mut c = Rc4::<U16>::new(key.into());
    c.apply_keystream(&mut out);
    out
}

/// A parsed CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: Vec<u8>,
}

fn field(b: &[u8], r: &mut Reader<'_>) -> Result<Vec<u8>, NtlmError> {
    let len = r.u16()? as usize;
    r.skip(2)?; // MaxLen
    let off = r.u32()? as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    slice_at(b, off, len)
        .map(|s| s.to_vec())
        .map_err(|_| NtlmError::FieldOutOfBounds)
}

impl Challenge {
    pub fn parse(b: &[u8]) -> Result<Self, NtlmError> {
        let mut r = Reader::new(b);
        if &r.array::<8>()? != SIGNATURE {
            return Err(NtlmError::BadSignature);
        }
        let ty = r.u32()?;
        if ty != 2 {
            return Err(NtlmError::WrongMessageType(ty));
        }
        let _target_name = field(b, &mut r)?;
        let flags = r.u32()?;
        let server_challenge = r.array::<8>()?;
        r.skip(8)?; // Reserved
        let target_info = field(b, &mut r)?;
        av_pairs(&target_info)?;
        Ok(Challenge {
            flags,
            server_challenge,
            target_info,
        })
    }
}

/// Splits an AV_PAIR list into (id, value) up to MsvAvEOL.
pub fn av_pairs(b: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, NtlmError> {
    let mut r = Reader::new(b);
    let mut v = Vec::new();
    loop {
        let id = r.u16().map_err(|_| NtlmError::BadTargetInfo)?;
        let len = r.u16().map_err(|_| NtlmError::BadTargetInfo)? as usize;
        let val = r.take(len).map_err(|_| NtlmError::BadTargetInfo)?;
        if id == av::EOL {
            return Ok(v);
        }
        v.push((id, val.to_vec()));
    }
}

fn encode_av_pairs(pairs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (id, val) in pairs {
        v.put_u16(*id);
        v.put_u16(val.len() as u16);
        v.extend_from_slice(val);
    }
    v.put_u16(av::EOL);
    v.put_u16(0);
    v
}

/// The VERSION structure (MS-NLMP 2.2.2.10): informational only; this
/// reports 10.0 build 0, NTLM revision 15.
const VERSION: [u8; 8] = [10, 0, 0, 0, 0, 0, 0, 15];

/// Builds NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) with no domain/workstation.
pub fn negotiate_message() -> Vec<u8> {
    let mut v = SIGNATURE.to_vec();
    v.put_u32(1);
    v.put_u32(CLIENT_FLAGS);
    v.extend_from_slice(&[0; 16]); // DomainNameFields, WorkstationFields
    v.extend_from_slice(&VERSION);
    v
}

/// The client's result: the AUTHENTICATE_MESSAGE and the session key.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub message: Vec<u8>,
    /// ExportedSessionKey: the SMB2 Session.SessionKey (MS-SMB2 3.2.5.3.1).
    pub session_key: [u8; 16],
}

/// Builds AUTHENTICATE_MESSAGE (MS-NLMP 3.1.5.1.2) for `challenge`.
///
/// `negotiate` and `challenge_bytes` are the two earlier messages as sent,
/// for the MIC. `client_challenge` and `random_session_key` must be fresh
/// random values; `now` is used when the server sent no timestamp.
pub fn authenticate(
    creds: &Credentials,
    negotiate: &[u8],
    challenge_bytes: &[u8],
    challenge: &Challenge,
    client_challenge: [u8; 8],
    random_session_key: [u8; 16],
    now: u64,
) -> Result<Authenticated, NtlmError> {
    let mut pairs = av_pairs(&challenge.target_info)?;
    let server_time = pairs
        .iter()
        .find(|(id, v)| *id == av::TIMESTAMP && v.len() == 8)
        .and_then(|(_, v)| v.as_slice().try_into().ok())
        .map(u64::from_le_bytes);
    // With a server timestamp the MIC is expected (MS-NLMP 3.1.5.1.2).
    let with_mic = server_time.is_some();
    if with_mic {
        match pairs.iter_mut().find(|(id, _)| *id == av::FLAGS) {
            Some((_, v)) if v.len() == 4 => {
                let mut f = [0u8; 4];
                f.copy_from_slice(v);
                let f = u32::from_le_bytes(f) | av::FLAG_MIC_PRESENT;
                *v = f.to_le_bytes().to_vec();
            }
            _ => pairs.push((av::FLAGS, av::FLAG_MIC_PRESENT.to_le_bytes().to_vec())),
        }
    }
    let target_info = encode_av_pairs(&pairs);
    let key = ntowf_v2(&creds.password, &creds.user, &creds.domain);
    let r = v2_response(
        &key,
        &challenge.server_challenge,
        &client_challenge,
        server_time.unwrap_or(now),
        &target_info,
        with_mic,
    );
    // KXKEY is the session base key for NTLMv2 (MS-NLMP 3.4.5.1).
    let flags = CLIENT_FLAGS & challenge.flags | flags::UNICODE;
    let (session_key, encrypted_key) = if flags & flags::KEY_EXCH != 0 {
        (
            random_session_key,
            rc4_16(&r.session_base_key, &random_session_key).to_vec(),
        )
    } else {
        (r.session_base_key, Vec::new())
    };

    let domain = utf16le(&creds.domain);
    let user = utf16le(&creds.user);
    let ws = utf16le(&creds.workstation);
    let payload: [&[u8]; 6] = [
        &r.lm_response,
        &r.nt_response,
        &domain,
        &user,
        &ws,
        &encrypted_key,
    ];
    const HEADER: usize = 88; // fixed fields + VERSION + MIC
    let mut m = SIGNATURE.to_vec();
    m.put_u32(3);
    let mut off = HEADER;
    for p in payload {
        m.put_u16(p.len() as u16);
        m.put_u16(p.len() as u16);
        m.put_u32(off as u32);
        off += p.len();
    }
    m.put_u32(flags);
    m.extend_from_slice(&VERSION);
    m.extend_from_slice(&[0; 16]); // MIC, filled below
    for p in payload {
        m.extend_from_slice(p);
    }
    if with_mic {
        let mic = hmac_md5(&session_key, &[negotiate, challenge_bytes, &m]);
        if let Some(slot) = m.get_mut(72..88) {
            slot.copy_from_slice(&mic);
        }
    }
    Ok(Authenticated {
        message: m,
        session_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // MS-NLMP 4.2.1 common values and 4.2.4 NTLMv2 results.
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];
    const RANDOM_SESSION_KEY: [u8; 16] = [0x55; 16];

    fn vector_target_info() -> Vec<u8> {
        // MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", EOL.
        encode_av_pairs(&[
            (av::NB_DOMAIN_NAME, utf16le("Domain")),
            (av::NB_COMPUTER_NAME, utf16le("Server")),
        ])
    }

    #[test]
    fn ms_nlmp_4_2_4_ntlmv2_vectors() {
        assert_eq!(
            nt_hash("Password").to_vec(),
            hex("a4f49c406510bdcab6824ee7c30fd852")
        );
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let r = v2_response(
            &key,
            &SERVER_CHALLENGE,
            &CLIENT_CHALLENGE,
            0,
            &vector_target_info(),
            false,
        );
        assert_eq!(
            r.lm_response.to_vec(),
            hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            r.nt_response[..16].to_vec(),
            hex("68cd0ab851e51c96aabc927bebef6a1c")
        );
        assert_eq!(
            r.nt_response[16..].to_vec(),
            hex("01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000
                 02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000")
        );
        assert_eq!(
            r.session_base_key.to_vec(),
            hex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );
        assert_eq!(
            rc4_16(&r.session_base_key, &RANDOM_SESSION_KEY).to_vec(),
            hex("c5dad2544fc9799094ce1ce90bc9d03e")
        );
    }

    fn challenge_message(flags: u32, target_info: &[u8]) -> Vec<u8> {
        let mut m = SIGNATURE.to_vec();
        m.put_u32(2);
        let name = utf16le("Server");
        m.put_u16(name.len() as u16);
        m.put_u16(name.len() as u16);
        m.put_u32(56);
        m.put_u32(flags);
        m.extend_from_slice(&SERVER_CHALLENGE);
        m.extend_from_slice(&[0; 8]);
        m.put_u16(target_info.len() as u16);
        m.put_u16(target_info.len() as u16);
        m.put_u32(56 + name.len() as u32);
        m.extend_from_slice(&VERSION);
        m.extend_from_slice(&name);
        m.extend_from_slice(target_info);
        m
    }

    fn creds() -> Credentials {
        Credentials {
            user: "User".into(),
            domain: "Domain".into(),
            password: "Password".into(),
            workstation: "COMPUTER".into(),
        }
    }

    #[test]
    fn authenticate_message_carries_the_vector_responses() {
        // The 4.2.4 CHALLENGE_MESSAGE flags: key exchange, 128-bit, NTLM,
        // extended session security, target info.
        let cm = challenge_message(0xe28a_8233, &vector_target_info());
        let ch = Challenge::parse(&cm).unwrap();
        assert_eq!(ch.server_challenge, SERVER_CHALLENGE);
        let neg = negotiate_message();
        let a = authenticate(
            &creds(),
            &neg,
            &cm,
            &ch,
            CLIENT_CHALLENGE,
            RANDOM_SESSION_KEY,
            0,
        )
        .unwrap();
        let m = &a.message;
        let f = |at: usize| {
            let len = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
            let off = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap()) as usize;
            m[off..off + len].to_vec()
        };
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(
            f(12),
            hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            f(20)[..16].to_vec(),
            hex("68cd0ab851e51c96aabc927bebef6a1c")
        );
        assert_eq!(f(28), utf16le("Domain"));
        assert_eq!(f(36), utf16le("User"));
        assert_eq!(f(44), utf16le("COMPUTER"));
        assert_eq!(f(52), hex("c5dad2544fc9799094ce1ce90bc9d03e"));
        assert_eq!(a.session_key, RANDOM_SESSION_KEY);
        // No server timestamp: no MIC.
        assert_eq!(&m[72..88], &[0; 16]);
    }

    #[test]
    fn timestamp_means_mic_and_zero_lm() {
        let ti = encode_av_pairs(&[
            (av::NB_DOMAIN_NAME, utf16le("Domain")),
            (
                av::TIMESTAMP,
                0x01d0_0000_0000_0000u64.to_le_bytes().to_vec(),
            ),
        ]);
        let cm = challenge_message(0xe28a_8233, &ti);
        let ch = Challenge::parse(&cm).unwrap();
        let neg = negotiate_message();
        let a = authenticate(
            &creds(),
            &neg,
            &cm,
            &ch,
            CLIENT_CHALLENGE,
            RANDOM_SESSION_KEY,
            5,
        )
        .unwrap();
        let m = &a.message;
        let lm_off = u32::from_le_bytes(m[16..20].try_into().unwrap()) as usize;
        assert_eq!(&m[lm_off..lm_off + 24], &[0; 24]);
        // The MIC verifies: HMAC over the three messages with the MIC zeroed.
        let mut zeroed = m.clone();
        zeroed[72..88].fill(0);
        let mic = hmac_md5(&RANDOM_SESSION_KEY, &[&neg, &cm, &zeroed]);
        assert_eq!(&m[72..88], &mic);
        // The blob carries the server's time and MsvAvFlags with MIC set.
        let nt_off = u32::from_le_bytes(m[24..28].try_into().unwrap()) as usize;
        assert_eq!(
            &m[nt_off + 24..nt_off + 32],
            &0x01d0_0000_0000_0000u64.to_le_bytes()
        );
        let nt_len = u16::from_le_bytes([m[20], m[21]]) as usize;
        let blob_ti = &m[nt_off + 44..nt_off + nt_len - 4];
        let pairs = av_pairs(blob_ti).unwrap();
        assert!(pairs.contains(&(av::FLAGS, av::FLAG_MIC_PRESENT.to_le_bytes().to_vec())));
    }

    #[test]
    fn challenge_parse_errors() {
        let cm = challenge_message(0xe28a_8233, &vector_target_info());
        for n in 0..cm.len() {
            assert!(Challenge::parse(&cm[..n]).is_err(), "prefix {n} accepted");
        }
        let mut bad = cm.clone();
        bad[0] = b'X';
        assert_eq!(Challenge::parse(&bad), Err(NtlmError::BadSignature));
        let mut bad = cm.clone();
        bad[8] = 3;
        assert_eq!(Challenge::parse(&bad), Err(NtlmError::WrongMessageType(3)));
        let mut bad = cm.clone();
        bad[44..48].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert_eq!(Challenge::parse(&bad), Err(NtlmError::FieldOutOfBounds));
        // Target info without EOL.
        let cm = challenge_message(0, &[2, 0, 2, 0, b'a', 0]);
        assert_eq!(Challenge::parse(&cm), Err(NtlmError::BadTargetInfo));
    }
}
