//! The audit log's format (DESIGN.md §5 "Audit"), shared by the audit service, which writes it,
//! and `coffer audit verify`, which checks an export offline with nothing but the public key.
//!
//! - **Events** of one org form a hash chain: `hash = SHA-256(prev_hash ‖ canonical(event))`,
//!   where the first `prev_hash` is `SHA-256("coffer.audit.genesis.v1\0" ‖ org id)`, so chains of
//!   different orgs cannot be spliced. [`canonical`] is a fixed, length-prefixed binary layout.
//! - **Checkpoints** sign a chain head (org, seq, hash, time) with Ed25519, and name the seq of
//!   the checkpoint before them, so checkpoints form a chain of their own.
//! - **Exports** are NDJSON: every event, then every checkpoint, then one signed **trailer** that
//!   counts both and names the head. The trailer is what makes a dropped checkpoint or a truncated
//!   tail detectable: without it, removing the last lines of an export would leave a valid prefix.
//!
//! Nothing here holds a file name or file bytes: targets are ids.

mod format;
pub mod hex;
mod sign;
#[cfg(feature = "testing")]
pub mod tamper;
mod verify;

pub use format::{
    CheckpointLine, Event, EventLine, Line, TrailerLine, canonical, event_hash, genesis, hex, unhex,
};
pub use sign::{Signer, SignerError, checkpoint_message, public_key_from_text, trailer_message};
pub use verify::{Summary, VerifyError, verify_export};
