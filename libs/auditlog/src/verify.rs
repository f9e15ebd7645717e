//! Offline verification of an export: the chain, the checkpoints' signatures and order, and the
//! signed trailer, with nothing but the public key.

use uuid::Uuid;

use crate::format::{Line, event_hash, genesis, hex, unhex};
use crate::sign::{checkpoint_message, trailer_message, verify_signature};

/// What a sound export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub org_id: Uuid,
    pub events: u64,
    pub checkpoints: u64,
    pub head_hash: String,
}

/// Why an export does not verify. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("line {0}: not an audit export line")]
    Malformed(usize),
    #[error("line {0}: belongs to another org")]
    OtherOrg(usize),
    #[error(
        "line {line}: expected event {expected}, found {found} (a gap, a duplicate or a reordering)"
    )]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("line {0}: prev_hash does not match the event before it")]
    Chain(usize),
    #[error("line {0}: the event's hash does not match its content")]
    Hash(usize),
    #[error("line {0}: an event after the checkpoints")]
    EventAfterCheckpoint(usize),
    #[error("line {0}: the checkpoint's signature does not verify with this key")]
    CheckpointSignature(usize),
    #[error("line {0}: the checkpoint names a head that is not in the chain")]
    CheckpointHead(usize),
    #[error("line {0}: the checkpoint does not follow the one before it")]
    CheckpointOrder(usize),
    #[error("line {0}: a line after the trailer")]
    AfterTrailer(usize),
    #[error("the export has no trailer (truncated?)")]
    NoTrailer,
    #[error("the trailer's signature does not verify with this key")]
    TrailerSignature,
    #[error("the trailer does not match the export: {0}")]
    TrailerMismatch(&'static str),
}

/// Verifies an NDJSON export against `public_key`.
pub fn verify_export(export: &str, public_key: &[u8; 32]) -> Result<Summary, VerifyError> {
    let mut org: Option<Uuid> = None;
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    let mut prev_checkpoint_seq = 0u64;
    let mut checkpoints = 0u64;
    let mut in_checkpoints = false;
    let mut trailer_seen = false;
    let mut same_org = |line: usize, id: Uuid| -> Result<(), VerifyError> {
        match org {
            None => {
                org = Some(id);
                Ok(())
            }
            Some(o) if o == id => Ok(()),
            Some(_) => Err(VerifyError::OtherOrg(line)),
        }
    };
    for (i, text) in export.lines().enumerate() {
        let line = i + 1;
        if text.trim().is_empty() {
            return Err(VerifyError::Malformed(line));
        }
        if trailer_seen {
            return Err(VerifyError::AfterTrailer(line));
        }
        let parsed: Line = serde_json::from_str(text).map_err(|_| VerifyError::Malformed(line))?;
        match parsed {
            Line::Event(e) => {
                if in_checkpoints {
                    return Err(VerifyError::EventAfterCheckpoint(line));
                }
                same_org(line, e.event.org_id)?;
                let expected = hashes.len() as u64 + 1;
                if e.event.seq != expected {
                    return Err(VerifyError::Sequence {
                        line,
                        expected,
                        found: e.event.seq,
                    });
                }
                let prev = hashes
                    .last()
                    .copied()
                    .unwrap_or_else(|| genesis(e.event.org_id));
                if unhex(&e.prev_hash) != Some(prev) {
                    return Err(VerifyError::Chain(line));
                }
                let hash = event_hash(&prev, &e.event);
                if unhex(&e.hash) != Some(hash) {
                    return Err(VerifyError::Hash(line));
                }
                hashes.push(hash);
            }
            Line::Checkpoint(c) => {
                in_checkpoints = true;
                same_org(line, c.org_id)?;
                let head = unhex(&c.hash).ok_or(VerifyError::Malformed(line))?;
                let msg = checkpoint_message(
                    c.org_id,
                    c.seq,
                    &head,
                    c.at_us,
                    c.prev_checkpoint_seq,
                    &c.key_id,
                );
                if !verify_signature(public_key, &msg, &c.signature) {
                    return Err(VerifyError::CheckpointSignature(line));
                }
                let at = usize::try_from(c.seq).unwrap_or(usize::MAX);
                if c.seq == 0 || hashes.get(at - 1) != Some(&head) {
                    return Err(VerifyError::CheckpointHead(line));
                }
                if c.prev_checkpoint_seq != prev_checkpoint_seq || c.seq <= prev_checkpoint_seq {
                    return Err(VerifyError::CheckpointOrder(line));
                }
                prev_checkpoint_seq = c.seq;
                checkpoints += 1;
            }
            Line::Export(t) => {
                trailer_seen = true;
                same_org(line, t.org_id)?;
                let head = unhex(&t.head_hash).ok_or(VerifyError::Malformed(line))?;
                let msg = trailer_message(
                    t.org_id,
                    t.events,
                    &head,
                    t.checkpoints,
                    t.last_checkpoint_seq,
                    t.at_us,
                    &t.key_id,
                );
                if !verify_signature(public_key, &msg, &t.signature) {
                    return Err(VerifyError::TrailerSignature);
                }
                if t.events != hashes.len() as u64 {
                    return Err(VerifyError::TrailerMismatch("event count"));
                }
                let expected_head = hashes.last().copied().unwrap_or_else(|| genesis(t.org_id));
                if head != expected_head {
                    return Err(VerifyError::TrailerMismatch("head hash"));
                }
                if t.checkpoints != checkpoints {
                    return Err(VerifyError::TrailerMismatch("checkpoint count"));
                }
                if t.last_checkpoint_seq != prev_checkpoint_seq {
                    return Err(VerifyError::TrailerMismatch("last checkpoint"));
                }
            }
        }
    }
    if !trailer_seen {
        return Err(VerifyError::NoTrailer);
    }
    let org_id = org.ok_or(VerifyError::NoTrailer)?;
    Ok(Summary {
        org_id,
        events: hashes.len() as u64,
        checkpoints,
        head_hash: hex(hashes.last().unwrap_or(&genesis(org_id))),
    })
}
