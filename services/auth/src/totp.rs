//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, ±1 step) through `totp-rs`, and the
//! encryption of seeds at rest (AES-256-GCM through `aes-gcm`, random 96-bit nonces, the user id as
//! associated data so a ciphertext cannot be moved to another user).

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use rand::RngCore as _;
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;

use crate::error::AuthError;

const NONCE: usize = 12;
pub const SEED_BYTES: usize = 20;

/// Encrypts and decrypts TOTP seeds.
#[derive(Clone)]
pub struct SeedCipher(Aes256Gcm);

impl std::fmt::Debug for SeedCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeedCipher")
    }
}

impl SeedCipher {
    pub fn new(key: &[u8]) -> Result<Self, AuthError> {
        Aes256Gcm::new_from_slice(key)
            .map(SeedCipher)
            .map_err(|_| AuthError::Internal("the totp key must be 32 bytes".into()))
    }

    pub fn encrypt(&self, user_id: Uuid, seed: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: seed,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("seed encryption failed".into()))?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    pub fn decrypt(&self, user_id: Uuid, stored: &[u8]) -> Result<Vec<u8>, AuthError> {
        if stored.len() <= NONCE {
            return Err(AuthError::Internal("stored seed is truncated".into()));
        }
        let (nonce, ct) = stored.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().expect("split at the nonce length");
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("stored seed does not decrypt".into()))
    }
}

/// Returns a fresh random seed.
pub fn new_seed() -> Vec<u8> {
    let mut seed = vec![0u8; SEED_BYTES];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// Builds the TOTP of a seed for `account` (the email, shown in authenticator apps).
pub fn totp(seed: &[u8], account: &str) -> Result<Totp, AuthError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(seed.to_vec())
        .with_issuer(Some("Coffer"))
        .with_account_name(account)
        .build()
        .map_err(|e| AuthError::Internal(format!("totp: {e}")))
}

/// Returns the step a code matches now (±1 step), if any.
pub fn check(totp: &Totp, code: &str) -> Option<i64> {
    let now = u64::try_from(coffer_token::unix_now()).ok()?;
    totp.check(code.trim(), now)
        .and_then(|s| i64::try_from(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_round_trip_only_for_their_user() {
        let cipher = SeedCipher::new(&[7u8; 32]).unwrap();
        let seed = new_seed();
        let user = Uuid::new_v4();
        let stored = cipher.encrypt(user, &seed).unwrap();
        assert_eq!(cipher.decrypt(user, &stored).unwrap(), seed);
        assert!(
            cipher.decrypt(Uuid::new_v4(), &stored).is_err(),
            "moved to another user"
        );
        let mut tampered = stored.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher.decrypt(user, &tampered).is_err());
        assert!(
            SeedCipher::new(&[7u8; 32])
                .unwrap()
                .encrypt(user, &seed)
                .unwrap()
                != stored,
            "nonces are fresh"
        );
    }

    #[test]
    fn codes_match_the_current_step_only() {
        let t = totp(&new_seed(), "a@b.example").unwrap();
        let now = coffer_token::unix_now() as u64;
        let code = t.generate(now).to_string();
        assert!(check(&t, &code).is_some());
        assert!(check(&t, "000000").is_none() || t.generate(now).to_string() == "000000");
        let stale = t.generate(now - 300).to_string();
        assert!(check(&t, &stale).is_none() || stale == code);
        assert!(t.to_url().unwrap().starts_with("otpauth://totp/Coffer:"));
    }
}
