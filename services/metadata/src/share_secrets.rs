//! Share-link secrets: 256 random bits, base64url, stored only as their SHA-256; optional
//! passwords hashed with Argon2id (off the async threads, one hash per core at a time: anyone
//! holding a link can ask for one).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::error::MetadataError;

/// A new share token and its hash.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a presented token. Tokens of any shape hash; unknown ones match no row.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hashes a share password with Argon2id (the crate's defaults: 19 MiB, 2 passes).
pub async fn hash_password(password: String) -> Result<String, MetadataError> {
    coffer_mesh::cpu::bounded(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| MetadataError::Internal(format!("salt: {e}")))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| MetadataError::Internal(format!("hashing: {e}")))
    })
    .await?
}

/// Checks a presented share password against the stored hash (constant time inside argon2); an
/// error when it could not be checked (too busy), never a wrong password.
pub async fn verify_password(password: String, stored: String) -> Result<bool, MetadataError> {
    coffer_mesh::cpu::bounded(move || {
        PasswordHash::new(&stored).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(MetadataError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a), ha);
    }

    #[tokio::test]
    async fn passwords_verify() {
        let h = hash_password("hunter2hunter2".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify_password("hunter2hunter2".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("hunter2hunter3".into(), h).await.unwrap());
    }
}
