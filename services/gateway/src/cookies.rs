//! The `coffer_session` cookie and the CSRF token, both signed with keys derived from a rotating
//! ring (`cookie-keys.toml`, master-ring format): sign with the active key, accept any listed key,
//! so retiring a key id logs out the sessions it signed. Comparisons are constant time.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_token::MasterKeyRing;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

pub const COOKIE_NAME: &str = "coffer_session";

type HmacSha256 = Hmac<Sha256>;

struct Keys {
    active: String,
    keys: BTreeMap<String, [u8; 32]>,
}

impl Keys {
    fn from_ring(ring: &MasterKeyRing, purpose: &str) -> Self {
        let keys = ring
            .key_ids()
            .filter_map(|id| Some((id.to_owned(), ring.derive_purpose_key(purpose, id)?)))
            .collect();
        Keys {
            active: ring.active_key_id().to_owned(),
            keys,
        }
    }

    fn tag(&self, kid: &str, value: &str) -> Option<[u8; 32]> {
        let key = self.keys.get(kid)?;
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        mac.update(value.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    fn sign(&self, value: &str) -> String {
        let tag = self
            .tag(&self.active, value)
            .expect("the active key is listed");
        format!("{}.{}", self.active, URL_SAFE_NO_PAD.encode(tag))
    }

    fn verify(&self, value: &str, signature: &str) -> bool {
        let Some((kid, tag)) = signature.split_once('.') else {
            return false;
        };
        let (Some(expected), Ok(presented)) = (self.tag(kid, value), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        expected.ct_eq(&presented[..]).into()
    }
}

/// Signs and checks session cookies and CSRF tokens.
pub struct CookieSigner {
    cookie: Keys,
    csrf: Keys,
}

impl std::fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSigner")
            .field("active", &self.cookie.active)
            .finish_non_exhaustive()
    }
}

impl CookieSigner {
    pub fn new(ring: &MasterKeyRing) -> Self {
        CookieSigner {
            cookie: Keys::from_ring(ring, "gateway-session-cookie"),
            csrf: Keys::from_ring(ring, "gateway-csrf"),
        }
    }

    /// Returns the cookie value for a session id: `<session id>.<key id>.<tag>`.
    pub fn cookie_value(&self, session_id: &str) -> String {
        format!("{session_id}.{}", self.cookie.sign(session_id))
    }

    /// Returns the session id of a well-signed cookie value.
    pub fn session_id<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (session_id, signature) = value.split_once('.')?;
        self.cookie
            .verify(session_id, signature)
            .then_some(session_id)
    }

    /// Returns the CSRF token bound to a session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        self.csrf.sign(session_id)
    }

    /// Checks a presented CSRF token against the session.
    pub fn csrf_ok(&self, session_id: &str, presented: &str) -> bool {
        self.csrf.verify(session_id, presented)
    }

    /// Returns the full `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, session_id: &str) -> String {
        format!(
            "{COOKIE_NAME}={}; HttpOnly; Secure; SameSite=Lax; Path=/",
            self.cookie_value(session_id)
        )
    }

    /// Returns the `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie() -> String {
        format!("{COOKIE_NAME}=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_verify_until_their_key_is_retired() {
        let mut ring = MasterKeyRing::generate("c1");
        let old = CookieSigner::new(&ring);
        let value = old.cookie_value("session-abc");
        assert_eq!(old.session_id(&value), Some("session-abc"));
        let mut forged = value.clone();
        forged.replace_range(0..1, "x");
        assert_eq!(old.session_id(&forged), None);
        assert_eq!(old.session_id("session-abc.c1.AAAA"), None);
        assert_eq!(old.session_id("no-dots"), None);

        ring.add_random_key("c2");
        ring.activate("c2");
        let rotated = CookieSigner::new(&ring);
        assert_eq!(
            rotated.session_id(&value),
            Some("session-abc"),
            "old cookies still verify"
        );
        assert!(rotated.cookie_value("s").contains(".c2."));
        ring.retire("c1");
        assert_eq!(
            CookieSigner::new(&ring).session_id(&value),
            None,
            "retired key: logged out"
        );

        let csrf = rotated.csrf_token("session-abc");
        assert!(rotated.csrf_ok("session-abc", &csrf));
        assert!(!rotated.csrf_ok("session-xyz", &csrf));
        assert!(!rotated.csrf_ok("session-abc", ""));
        // The CSRF token is not the cookie signature: different purposes, different keys.
        assert!(!value.ends_with(&csrf));
    }
}
