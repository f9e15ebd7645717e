//! Minting: only auth holds a [`Minter`].

use hmac::Mac;

use crate::claims::{Audience, Claims, Credential, Subject};
use crate::codec::{self, MAX_LIFETIME_SECS, TAG_LEN};
use crate::error::TokenError;
use crate::keyring::{HmacSha256, MasterKeyRing, tag};

/// Mints tokens with the active key of a master ring.
pub struct Minter {
    key_id: String,
    /// Keyed HMAC states per audience, derived once so that minting does no HKDF work.
    macs: Vec<(Audience, HmacSha256)>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// Builds a minter over the ring's active key.
    pub fn new(ring: &MasterKeyRing) -> Self {
        let key_id = ring.active_key_id().to_owned();
        let macs = Audience::ALL
            .into_iter()
            .map(|a| {
                let mac = ring
                    .audience_macs(&key_id, a)
                    .expect("the active key is always listed");
                (a, mac)
            })
            .collect();
        Minter { key_id, macs }
    }

    /// Returns the key id new tokens carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Mints a token for `subject`, valid from `issued_at` for `ttl_secs` seconds, with one tag for
    /// each of `audiences`. Refuses an invalid request id, a service credential with a user (or a
    /// user credential without one), no audience, or a lifetime outside 1..=60 seconds.
    pub fn mint(
        &self,
        subject: &Subject,
        audiences: &[Audience],
        issued_at: i64,
        ttl_secs: i64,
    ) -> Result<String, TokenError> {
        if !codec::is_valid_request_id(&subject.request_id)
            || (subject.credential == Credential::Service) != subject.user_id.is_nil()
        {
            return Err(TokenError::Malformed);
        }
        if audiences.is_empty() {
            return Err(TokenError::WrongAudience);
        }
        if !(1..=MAX_LIFETIME_SECS).contains(&ttl_secs) {
            return Err(TokenError::LifetimeTooLong);
        }
        let claims = Claims {
            version: crate::TOKEN_VERSION,
            key_id: self.key_id.clone(),
            user_id: subject.user_id,
            org_id: subject.org_id,
            role: subject.role,
            scopes: subject.scopes,
            credential: subject.credential,
            issued_at,
            expires_at: issued_at.saturating_add(ttl_secs),
            request_id: subject.request_id.clone(),
        };
        let body = codec::encode_body(&claims);
        let mut tags = Vec::with_capacity(self.macs.len() * (1 + TAG_LEN));
        // `self.macs` is in wire order, so tags come out strictly increasing by audience id.
        for (audience, mac) in &self.macs {
            if audiences.contains(audience) {
                tags.push(audience.wire_id());
                tags.extend_from_slice(&tag(mac, *audience, &body).finalize().into_bytes());
            }
        }
        Ok(codec::assemble(&body, &tags))
    }
}
