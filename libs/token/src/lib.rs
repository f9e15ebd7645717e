//! HMAC-signed user tokens (DESIGN.md §3).
//!
//! Auth mints one token per authenticated edge request; it travels unchanged down the call chain in
//! gRPC metadata. The claims are encoded in a fixed binary layout and signed once per audience with
//! HMAC-SHA256 under a key derived by HKDF-SHA256 from a master key, so a service that holds only its
//! own audience key can verify its own tag but cannot forge a tag for any other service.
//!
//! This crate never logs and never prints key material: key types implement `Debug` by hand.

mod claims;
mod codec;
mod error;
mod keyring;
mod mint;
mod verify;

pub use claims::{Audience, Claims, Credential, Role, Scope, Scopes, Service, Subject, identity};
pub use codec::is_valid_key_id;
pub use error::{KeyRingError, TokenError};
pub use keyring::{AudienceKeyRing, KeyId, MasterKeyRing};
pub use mint::Minter;
pub use verify::{Verifier, VerifyOptions};

/// The token wire format version this crate mints and accepts.
pub const TOKEN_VERSION: u8 = 2;

/// The gRPC metadata key that carries the token between services.
pub const METADATA_KEY: &str = "x-coffer-user-token";

/// Returns the current time as whole seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
