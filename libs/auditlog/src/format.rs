//! Events, their canonical encoding and chain hash, and the NDJSON lines of an export.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// One audit event, as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub org_id: Uuid,
    /// 1, 2, 3, … within the org.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    /// `user:<uuid>`, `apikey:<uuid>` or `service:<name>`.
    pub actor: String,
    /// API.md's action names, e.g. `file.download`.
    pub action: String,
    /// Ids only, e.g. `file:<uuid>`.
    pub target: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
}

/// Appends `s` length-prefixed (u32, big-endian): the string encoding of every signed layout.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The canonical encoding of an event: a domain tag, then every field in a fixed order, integers
/// big-endian, strings length-prefixed (u32), so no two events encode alike.
pub fn canonical(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"coffer.audit.event.v1\0");
    out.extend_from_slice(e.org_id.as_bytes());
    out.extend_from_slice(&e.seq.to_be_bytes());
    out.extend_from_slice(&e.at_us.to_be_bytes());
    for s in [
        &e.actor,
        &e.action,
        &e.target,
        &e.outcome,
        &e.request_id,
        &e.trace_id,
    ] {
        put_str(&mut out, s);
    }
    out
}

/// The `prev_hash` of an org's first event.
pub fn genesis(org_id: Uuid) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"coffer.audit.genesis.v1\0");
    h.update(org_id.as_bytes());
    h.finalize().into()
}

/// `SHA-256(prev ‖ canonical(e))`.
pub fn event_hash(prev: &[u8; 32], e: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(e));
    h.finalize().into()
}

/// Lowercase hex.
pub use crate::hex::encode as hex;

/// Parses 64 lowercase hex digits.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    crate::hex::decode(s)
}

/// An event line of an export: the event and its chain hashes (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    #[serde(flatten)]
    pub event: Event,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    pub org_id: Uuid,
    pub seq: u64,
    pub hash: String,
    pub at_us: i64,
    /// The seq of the checkpoint before this one; 0 for the first.
    pub prev_checkpoint_seq: u64,
    pub key_id: String,
    /// Base64 Ed25519 signature of [`crate::checkpoint_message`].
    pub signature: String,
}

/// The last line of an export: what it holds, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailerLine {
    pub org_id: Uuid,
    pub events: u64,
    pub head_hash: String,
    pub checkpoints: u64,
    pub last_checkpoint_seq: u64,
    pub at_us: i64,
    pub key_id: String,
    pub signature: String,
}

/// One NDJSON line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Event(EventLine),
    Checkpoint(CheckpointLine),
    Export(TrailerLine),
}
