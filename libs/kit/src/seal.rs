//! Column sealing: AES-256-GCM (through `aes-gcm`) with a random 96-bit nonce per value and the
//! owning org's or user's id as associated data, so a sealed value moved to another row does not
//! open. Stored as `nonce || ciphertext || tag`.

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use rand::RngCore as _;
use uuid::Uuid;

const NONCE: usize = 12;

/// Why a value did not seal or open. Says nothing of the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the column key must be 32 bytes")]
    KeyLength,
    #[error("the sealed value is truncated")]
    Truncated,
    #[error("the sealed value does not open under this key and owner")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// Seals and opens one kind of column value under one key.
#[derive(Clone)]
pub struct Sealer(Aes256Gcm);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer for a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        Aes256Gcm::new_from_slice(key)
            .map(Sealer)
            .map_err(|_| SealError::KeyLength)
    }

    /// Seals `value` for the row owned by `owner`.
    pub fn seal(&self, owner: Uuid, value: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    /// Opens a value sealed for `owner`.
    pub fn open(&self, owner: Uuid, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() <= NONCE {
            return Err(SealError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SealError::Truncated)?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_owner_and_key() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = sealer.seal(alice, b"seed").unwrap();
        assert_ne!(
            sealer.seal(alice, b"seed").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(alice, &sealed).unwrap(), b"seed");
        assert_eq!(sealer.open(bob, &sealed), Err(SealError::Open));
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(alice, &sealed), Err(SealError::Open));
        assert_eq!(sealer.open(alice, &sealed[..12]), Err(SealError::Truncated));
        let mut flipped = sealed;
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(alice, &flipped), Err(SealError::Open));
        assert_eq!(Sealer::new(&[0u8; 16]).unwrap_err(), SealError::KeyLength);
    }
}
