//! Session ids and API keys: generation, parsing and the hashes that are all the database keeps.
//!
//! Both carry 256 bits from the OS RNG, so a plain SHA-256 is the right stored form (a slow hash
//! protects low-entropy secrets, which these are not). Comparisons of stored hashes are constant
//! time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

const SECRET_BYTES: usize = 32;
/// Length of 32 bytes in unpadded base64url.
const SECRET_CHARS: usize = 43;
const PREFIX_CHARS: usize = 8;

fn random_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn is_secret(s: &str) -> bool {
    s.len() == SECRET_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Returns a new session id and the hash to store.
pub fn new_session() -> (String, [u8; 32]) {
    let id = random_secret();
    let hash = sha256(&id);
    (id, hash)
}

/// Returns the stored hash of a well-formed session id.
pub fn session_hash(id: &str) -> Option<[u8; 32]> {
    is_secret(id).then(|| sha256(id))
}

/// A new API key: the full key to show once, its public prefix, and the hash to store.
pub struct NewApiKey {
    pub key: String,
    pub prefix: String,
    pub secret_hash: [u8; 32],
}

/// Returns a new API key `coffer_<prefix>_<secret>`.
pub fn new_api_key() -> NewApiKey {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let prefix: String = (0..PREFIX_CHARS)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect();
    let secret = random_secret();
    NewApiKey {
        key: format!("coffer_{prefix}_{secret}"),
        secret_hash: sha256(&secret),
        prefix,
    }
}

/// Splits a presented API key into its prefix and the hash of its secret.
pub fn parse_api_key(key: &str) -> Option<(String, [u8; 32])> {
    let rest = key.strip_prefix("coffer_")?;
    let (prefix, secret) = rest.split_at_checked(PREFIX_CHARS)?;
    let secret = secret.strip_prefix('_')?;
    let prefix_ok = prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (prefix_ok && is_secret(secret)).then(|| (prefix.to_owned(), sha256(secret)))
}

/// Compares two stored hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_round_trip_and_reject_lookalikes() {
        let k = new_api_key();
        assert!(k.key.starts_with("coffer_"));
        let (prefix, hash) = parse_api_key(&k.key).unwrap();
        assert_eq!(prefix, k.prefix);
        assert!(hashes_equal(&hash, &k.secret_hash));
        let mut wrong = k.key.clone();
        wrong.pop();
        wrong.push(if k.key.ends_with('A') { 'B' } else { 'A' });
        let (_, other) = parse_api_key(&wrong).unwrap();
        assert!(!hashes_equal(&other, &k.secret_hash));
        for bad in [
            "",
            "coffer_",
            "coffer_abc_def",
            &k.key[..k.key.len() - 1],
            &k.key.to_uppercase(),
            &format!("x{}", k.key),
        ] {
            assert!(parse_api_key(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn session_ids_are_distinct_and_only_well_formed_ones_hash() {
        let (a, ha) = new_session();
        let (b, _) = new_session();
        assert_ne!(a, b);
        assert_eq!(session_hash(&a), Some(ha));
        assert_eq!(session_hash("short"), None);
        assert_eq!(session_hash(&format!("{}!", &a[..42])), None);
    }
}
