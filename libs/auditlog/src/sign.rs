//! Ed25519 signing of checkpoints and export trailers (ring), and the exact signed messages.

use base64::Engine as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use uuid::Uuid;

use crate::format::{CheckpointLine, TrailerLine, hex, put_str};

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the signing key must be 32 bytes, base64")]
    BadKey,
}

/// What a checkpoint's signature covers.
pub fn checkpoint_message(
    org_id: Uuid,
    seq: u64,
    hash: &[u8; 32],
    at_us: i64,
    prev_checkpoint_seq: u64,
    key_id: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"coffer.audit.checkpoint.v1\0");
    m.extend_from_slice(org_id.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at_us.to_be_bytes());
    m.extend_from_slice(&prev_checkpoint_seq.to_be_bytes());
    put_str(&mut m, key_id);
    m
}

/// What an export trailer's signature covers.
#[allow(clippy::too_many_arguments)]
pub fn trailer_message(
    org_id: Uuid,
    events: u64,
    head_hash: &[u8; 32],
    checkpoints: u64,
    last_checkpoint_seq: u64,
    at_us: i64,
    key_id: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"coffer.audit.export.v1\0");
    m.extend_from_slice(org_id.as_bytes());
    m.extend_from_slice(&events.to_be_bytes());
    m.extend_from_slice(head_hash);
    m.extend_from_slice(&checkpoints.to_be_bytes());
    m.extend_from_slice(&last_checkpoint_seq.to_be_bytes());
    m.extend_from_slice(&at_us.to_be_bytes());
    put_str(&mut m, key_id);
    m
}

/// Parses a public key file: the 32-byte Ed25519 key in base64 (whitespace ignored).
pub fn public_key_from_text(text: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    bytes.try_into().ok()
}

pub(crate) fn verify_signature(public_key: &[u8; 32], message: &[u8], signature_b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, &sig)
        .is_ok()
}

/// The audit service's signing key, with its id.
pub struct Signer {
    key_id: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a 32-byte seed.
    pub fn from_seed(key_id: &str, seed: &[u8]) -> Result<Self, SignerError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| SignerError::BadKey)?;
        Ok(Signer {
            key_id: key_id.to_owned(),
            pair,
        })
    }

    /// A signer from a secret file's text: the 32-byte seed in base64.
    pub fn from_text(key_id: &str, text: &str) -> Result<Self, SignerError> {
        let seed = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SignerError::BadKey)?;
        if seed.len() != 32 {
            return Err(SignerError::BadKey);
        }
        Self::from_seed(key_id, &seed)
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key, raw.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The public key as `coffer audit verify --public-key` reads it (base64).
    pub fn public_key_text(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.public_key())
    }

    fn sign(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(message).as_ref())
    }

    /// Signs a chain head.
    pub fn checkpoint(
        &self,
        org_id: Uuid,
        seq: u64,
        hash: &[u8; 32],
        at_us: i64,
        prev_checkpoint_seq: u64,
    ) -> CheckpointLine {
        let m = checkpoint_message(org_id, seq, hash, at_us, prev_checkpoint_seq, &self.key_id);
        CheckpointLine {
            org_id,
            seq,
            hash: hex(hash),
            at_us,
            prev_checkpoint_seq,
            key_id: self.key_id.clone(),
            signature: self.sign(&m),
        }
    }

    /// Signs an export's trailer.
    pub fn trailer(
        &self,
        org_id: Uuid,
        events: u64,
        head_hash: &[u8; 32],
        checkpoints: u64,
        last_checkpoint_seq: u64,
        at_us: i64,
    ) -> TrailerLine {
        let m = trailer_message(
            org_id,
            events,
            head_hash,
            checkpoints,
            last_checkpoint_seq,
            at_us,
            &self.key_id,
        );
        TrailerLine {
            org_id,
            events,
            head_hash: hex(head_hash),
            checkpoints,
            last_checkpoint_seq,
            at_us,
            key_id: self.key_id.clone(),
            signature: self.sign(&m),
        }
    }
}
