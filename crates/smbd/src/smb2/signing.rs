//! SMB 3.x message integrity: the SP800-108 key derivation (MS-SMB2
//! 3.1.4.2), the 3.1.1 preauth integrity hash (MS-SMB2 3.2.5.2), and
//! AES-128-CMAC / AES-128-GMAC signing (MS-SMB2 3.1.4.1).

use aes::Aes128;
use aes_gcm::{AeadInPlace, Aes128Gcm, KeyInit as _, Nonce};
use cmac::{Cmac, Mac};
use hmac::Hmac;
use sha2::{Digest, Sha256, Sha512};

use super::header::{HEADER_LEN, SIGNATURE_OFFSET, flags};
use super::msg::signing_alg;

/// SP800-108 counter-mode KDF with HMAC-SHA256, one block, L = 128:
/// HMAC(Ki, i=1 || Label || 0x00 || Context || L) truncated to 16 bytes.
/// `label` and `context` include their terminating NULs as MS-SMB2 lists
/// them.
pub fn kdf(key: &[u8], label: &[u8], context: &[u8]) -> [u8; 16] {
    let Ok(mut m) = <Hmac<Sha256> as hmac::Mac>::new_from_slice(key) else {
        return [0; 16];
    };
    hmac::Mac::update(&mut m, &1u32.to_be_bytes());
    hmac::Mac::update(&mut m, label);
    hmac::Mac::update(&mut m, &[0]);
    hmac::Mac::update(&mut m, context);
    hmac::Mac::update(&mut m, &128u32.to_be_bytes());
    let out = hmac::Mac::finalize(m).into_bytes();
    let mut k = [0u8; 16];
    k.copy_from_slice(out.get(..16).unwrap_or(&[0; 16]));
    k
}

/// Session.SigningKey (MS-SMB2 3.2.5.3.1): 3.0/3.0.2 use fixed label and
/// context; 3.1.1 binds the key to the preauth integrity hash.
pub fn signing_key(dialect: u16, session_key: &[u8; 16], preauth_hash: &[u8; 64]) -> [u8; 16] {
    if dialect >= super::dialect::SMB311 {
        kdf(session_key, b"SMBSigningKey\0", preauth_hash)
    } else {
        kdf(session_key, b"SMB2AESCMAC\0", b"SmbSign\0")
    }
}

/// The running SHA-512 preauth integrity hash (MS-SMB2 3.2.5.2): starts at
/// zero and absorbs each NEGOTIATE and SESSION_SETUP message in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreauthHash(pub [u8; 64]);

impl Default for PreauthHash {
    fn default() -> Self {
        PreauthHash([0; 64])
    }
}

impl PreauthHash {
    pub fn update(&mut self, message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.0);
        h.update(message);
        self.0.copy_from_slice(&h.finalize());
    }
}

/// A session's signer: key and negotiated algorithm.
#[derive(Clone)]
pub struct Signer {
    pub key: [u8; 16],
    pub algorithm: u16,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignError {
    TooShort,
    NotSigned,
    Mismatch,
    /// HMAC-SHA256 is SMB 2.x signing, not offered here.
    UnsupportedAlgorithm(u16),
}

impl Signer {
    fn mac(&self, msg: &[u8]) -> Result<[u8; 16], SignError> {
        if msg.len() < HEADER_LEN {
            return Err(SignError::TooShort);
        }
        let mut zeroed = msg.to_vec();
        if let Some(s) = zeroed.get_mut(SIGNATURE_OFFSET..HEADER_LEN) {
            s.fill(0);
        }
        match self.algorithm {
            signing_alg::AES_CMAC => {
                let Ok(mut m) = <Cmac<Aes128> as Mac>::new_from_slice(&self.key) else {
                    return Err(SignError::Mismatch);
                };
                m.update(&zeroed);
                Ok(m.finalize().into_bytes().into())
            }
            signing_alg::AES_GMAC => {
                // Nonce: MessageId, then a word whose bit 0 marks a
                // server-originated message and bit 1 a CANCEL (MS-SMB2
                // 3.1.4.1); the message is all AAD, the plaintext empty.
                let hdr_flags = zeroed
                    .get(16..20)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                let command = zeroed
                    .get(12..14)
                    .and_then(|b| b.try_into().ok())
                    .map(u16::from_le_bytes)
                    .unwrap_or(0);
                let mut nonce = [0u8; 12];
                if let (Some(n), Some(id)) = (nonce.get_mut(..8), zeroed.get(24..32)) {
                    n.copy_from_slice(id);
                }
                let mut word = 0u32;
                if hdr_flags & flags::SERVER_TO_REDIR != 0 {
                    word |= 1;
                }
                if command == 0x000C {
                    word |= 2;
                }
                if let Some(n) = nonce.get_mut(8..12) {
                    n.copy_from_slice(&word.to_le_bytes());
                }
                let Ok(g) = Aes128Gcm::new_from_slice(&self.key) else {
                    return Err(SignError::Mismatch);
                };
                let tag = g
                    .encrypt_in_place_detached(Nonce::from_slice(&nonce), &zeroed, &mut [])
                    .map_err(|_| SignError::Mismatch)?;
                Ok(tag.into())
            }
            a => Err(SignError::UnsupportedAlgorithm(a)),
        }
    }

    /// Sets SMB2_FLAGS_SIGNED and writes the signature in place.
    pub fn sign(&self, msg: &mut [u8]) -> Result<(), SignError> {
        let f = msg
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(SignError::TooShort)?;
        crate::bytes::patch_u32(msg, 16, f | flags::SIGNED);
        let sig = self.mac(msg)?;
        if let Some(s) = msg.get_mut(SIGNATURE_OFFSET..HEADER_LEN) {
            s.copy_from_slice(&sig);
        }
        Ok(())
    }

    /// Checks a received message's signature (MS-SMB2 3.2.5.1.3).
    pub fn verify(&self, msg: &[u8]) -> Result<(), SignError> {
        let f = msg
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(SignError::TooShort)?;
        if f & flags::SIGNED == 0 {
            return Err(SignError::NotSigned);
        }
        let want = self.mac(msg)?;
        // Constant-time compare: a signature oracle must not leak timing.
        let got = msg
            .get(SIGNATURE_OFFSET..HEADER_LEN)
            .ok_or(SignError::TooShort)?;
        let diff = got
            .iter()
            .zip(want.iter())
            .fold(0u8, |a, (x, y)| a | (x ^ y));
        if diff == 0 {
            Ok(())
        } else {
            Err(SignError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb2::header::{Header, command};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn k16(s: &str) -> [u8; 16] {
        hex(s).try_into().unwrap()
    }

    // Key derivation examples published with MS-SMB2 ("SMB 2 and SMB 3
    // security in Windows 10", Microsoft Open Specifications blog).
    #[test]
    fn smb30_key_derivation_vector() {
        let sk = k16("7CD451825D0450D235424E44BA6E78CC");
        assert_eq!(
            signing_key(0x0300, &sk, &[0; 64]),
            k16("0B7E9C5CAC36C0F6EA9AB275298CEDCE")
        );
        // The other 3.0 keys come from the same KDF.
        assert_eq!(
            kdf(&sk, b"SMB2APP\0", b"SmbRpc\0"),
            k16("BB23A4575AA26C721AF525AF15A87B4F")
        );
        assert_eq!(
            kdf(&sk, b"SMB2AESCCM\0", b"ServerIn \0"),
            k16("FAD27796665B313EBB578F388632B4F7")
        );
    }

    #[test]
    fn smb311_key_derivation_vector() {
        let sk = k16("270E1BA896585EEB7AF3472D3B4C75A7");
        let h: [u8; 64] = hex(
            "0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB79\
             28622DDDAD522D9751640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01",
        )
        .try_into()
        .unwrap();
        assert_eq!(
            signing_key(0x0311, &sk, &h),
            k16("73FE7A9A77BEF0BDE49C650D8CCB5F76")
        );
    }

    #[test]
    fn cmac_rfc4493_vector_through_signer_primitive() {
        // RFC 4493 example 2 (16-byte message), checking the CMAC wiring.
        let mut m = <Cmac<Aes128> as Mac>::new_from_slice(&hex("2b7e151628aed2a6abf7158809cf4f3c"))
            .unwrap();
        m.update(&hex("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(
            m.finalize().into_bytes().to_vec(),
            hex("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }

    fn message(cmd: u16, flags: u32, id: u64) -> Vec<u8> {
        let mut v = Vec::new();
        Header {
            command: cmd,
            flags,
            message_id: id,
            session_id: 0x1000_0000_0001,
            ..Header::default()
        }
        .encode(&mut v);
        v.extend_from_slice(b"\x09\x00body bytes");
        v
    }

    #[test]
    fn sign_verify_tamper_both_algorithms() {
        for alg in [signing_alg::AES_CMAC, signing_alg::AES_GMAC] {
            let s = Signer {
                key: [0x42; 16],
                algorithm: alg,
            };
            let mut m = message(command::TREE_CONNECT, 0, 3);
            assert_eq!(s.verify(&m), Err(SignError::NotSigned));
            s.sign(&mut m).unwrap();
            assert_ne!(&m[48..64], &[0; 16]);
            assert_eq!(s.verify(&m), Ok(()));
            let mut t = m.clone();
            *t.last_mut().unwrap() ^= 1;
            assert_eq!(s.verify(&t), Err(SignError::Mismatch));
            let other = Signer {
                key: [0x43; 16],
                algorithm: alg,
            };
            assert_eq!(other.verify(&m), Err(SignError::Mismatch));
            assert_eq!(s.verify(&m[..40]), Err(SignError::TooShort));
        }
        // GMAC binds the direction: the same bytes as a response differ.
        let s = Signer {
            key: [0x42; 16],
            algorithm: signing_alg::AES_GMAC,
        };
        let mut a = message(command::READ, 0, 9);
        let mut b = message(command::READ, flags::SERVER_TO_REDIR, 9);
        s.sign(&mut a).unwrap();
        s.sign(&mut b).unwrap();
        assert_ne!(&a[48..64], &b[48..64]);
        let hmac = Signer {
            key: [0; 16],
            algorithm: signing_alg::HMAC_SHA256,
        };
        assert_eq!(
            hmac.sign(&mut a),
            Err(SignError::UnsupportedAlgorithm(signing_alg::HMAC_SHA256))
        );
    }

    #[test]
    fn preauth_hash_chains() {
        let mut h = PreauthHash::default();
        h.update(b"a");
        let mut want = Sha512::new();
        want.update([0u8; 64]);
        want.update(b"a");
        assert_eq!(h.0.as_slice(), want.finalize().as_slice());
        let first = h;
        h.update(b"b");
        assert_ne!(h, first);
    }
}
