//! Verification: every service but auth holds only a [`Verifier`] for its own audience.

use std::collections::BTreeMap;

use hmac::Mac;

use crate::claims::{Audience, Claims};
use crate::codec;
use crate::error::TokenError;
use crate::keyring::{AudienceKeyRing, HmacSha256, KeyId, tag};

pub use crate::codec::MAX_LIFETIME_SECS;

/// Tolerances a verifier applies.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Allowed clock difference between minter and verifier, in seconds.
    pub skew_secs: i64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { skew_secs: 5 }
    }
}

/// Verifies tokens for one audience.
pub struct Verifier {
    audience: Audience,
    macs: BTreeMap<KeyId, HmacSha256>,
    options: VerifyOptions,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("audience", &self.audience)
            .field("key_ids", &self.macs.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}

impl Verifier {
    /// Builds a verifier over an audience ring.
    pub fn new(ring: &AudienceKeyRing, options: VerifyOptions) -> Self {
        Verifier {
            audience: ring.audience,
            macs: ring.macs(),
            options,
        }
    }

    /// Returns the audience this verifier checks.
    pub fn audience(&self) -> Audience {
        self.audience
    }

    /// Verifies `token` at time `now` (seconds since the epoch) and returns its claims.
    ///
    /// The tag is checked (in constant time) before any claim is trusted; times are checked last,
    /// so an unauthenticated token learns nothing from which time check it would have failed.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let parsed = codec::parse(token)?;
        let claims = codec::decode_body(&parsed.body)?;
        let mac = self
            .macs
            .get(&claims.key_id)
            .ok_or(TokenError::UnknownKey)?;
        let presented = parsed
            .tag_for(self.audience)
            .ok_or(TokenError::WrongAudience)?;
        // `verify_slice` compares in constant time.
        tag(mac, self.audience, &parsed.body)
            .verify_slice(presented)
            .map_err(|_| TokenError::BadTag)?;
        let lifetime = claims.expires_at.checked_sub(claims.issued_at);
        if !matches!(lifetime, Some(l) if (1..=MAX_LIFETIME_SECS).contains(&l)) {
            return Err(TokenError::LifetimeTooLong);
        }
        if claims.issued_at > now.saturating_add(self.options.skew_secs) {
            return Err(TokenError::NotYetValid);
        }
        if now > claims.expires_at.saturating_add(self.options.skew_secs) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}
