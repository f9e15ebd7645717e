//! The wire layout, written by hand because it is small and must be exact.
//!
//! ```text
//! token  = "ct1." base64url(body) "." base64url(tags)
//! body   = version:u8 | key_id_len:u8 key_id | user_id:16 | org_id:16 | role:u8
//!          | scopes:u16be | credential | issued_at:i64be | expires_at:i64be
//!          | request_id_len:u8 request_id
//! credential = 0x01 (session) | 0x02 api_key_id:16 | 0x03 (service: the nil user only)
//! tags   = 1*(audience:u8 tag:32), audiences strictly increasing
//! mac input (per audience) = DOMAIN audience_name 0x00 body
//! ```
//!
//! The body is parsed strictly: no trailing bytes, no unknown role or scope bits, ids from a
//! small alphabet. Base64 is unpadded URL-safe and canonical (no stray bits).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::claims::{Audience, Claims, Credential, Role, Scopes};
use crate::error::TokenError;

pub(crate) const PREFIX: &str = "ct1.";
pub(crate) const DOMAIN: &[u8] = b"coffer.user-token.v1\x00";
pub(crate) const TAG_LEN: usize = 32;
const MAX_KEY_ID: usize = 32;
const MAX_REQUEST_ID: usize = 64;
/// Upper bound on an encoded token; anything longer is refused before decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 1024;
/// The longest lifetime a token may claim, in seconds (DESIGN.md §3: ≤ 60 s).
pub const MAX_LIFETIME_SECS: i64 = 60;

/// Returns true if `s` is a valid key id or request id: non-empty, short, `[A-Za-z0-9._-]`.
pub(crate) fn is_valid_ident(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` may name a key in a ring (and so in a token).
pub fn is_valid_key_id(s: &str) -> bool {
    is_valid_ident(s, MAX_KEY_ID)
}

pub(crate) fn is_valid_request_id(s: &str) -> bool {
    is_valid_ident(s, MAX_REQUEST_ID)
}

pub(crate) fn encode_body(c: &Claims) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + c.key_id.len() + c.request_id.len());
    out.push(c.version);
    out.push(c.key_id.len() as u8);
    out.extend_from_slice(c.key_id.as_bytes());
    out.extend_from_slice(c.user_id.as_bytes());
    out.extend_from_slice(c.org_id.as_bytes());
    out.push(c.role.wire_id());
    out.extend_from_slice(&c.scopes.bits().to_be_bytes());
    out.push(c.credential.wire_id());
    if let Credential::ApiKey(id) = c.credential {
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(&c.issued_at.to_be_bytes());
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    out.push(c.request_id.len() as u8);
    out.extend_from_slice(c.request_id.as_bytes());
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.0.len() < n {
            return Err(TokenError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TokenError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TokenError> {
        self.take(N)?.try_into().map_err(|_| TokenError::Malformed)
    }

    fn ident(&mut self, max: usize) -> Result<String, TokenError> {
        let len = usize::from(self.u8()?);
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| TokenError::Malformed)?;
        if !is_valid_ident(s, max) {
            return Err(TokenError::Malformed);
        }
        Ok(s.to_owned())
    }
}

pub(crate) fn decode_body(body: &[u8]) -> Result<Claims, TokenError> {
    let mut r = Reader(body);
    let version = r.u8()?;
    if version != crate::TOKEN_VERSION {
        return Err(TokenError::UnsupportedVersion);
    }
    let key_id = r.ident(MAX_KEY_ID)?;
    let user_id = Uuid::from_bytes(r.array()?);
    let org_id = Uuid::from_bytes(r.array()?);
    let role = Role::from_wire_id(r.u8()?).ok_or(TokenError::Malformed)?;
    let scopes = Scopes::from_bits(u16::from_be_bytes(r.array()?)).ok_or(TokenError::Malformed)?;
    let credential = match r.u8()? {
        1 => Credential::Session,
        2 => Credential::ApiKey(Uuid::from_bytes(r.array()?)),
        3 => Credential::Service,
        _ => return Err(TokenError::Malformed),
    };
    // The nil user is system work and nothing else.
    if (credential == Credential::Service) != user_id.is_nil() {
        return Err(TokenError::Malformed);
    }
    let issued_at = i64::from_be_bytes(r.array()?);
    let expires_at = i64::from_be_bytes(r.array()?);
    let request_id = r.ident(MAX_REQUEST_ID)?;
    if !r.0.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Claims {
        version,
        key_id,
        user_id,
        org_id,
        role,
        scopes,
        credential,
        issued_at,
        expires_at,
        request_id,
    })
}

/// A token split into its decoded parts, before any verification.
pub(crate) struct Parsed {
    pub body: Vec<u8>,
    pub tags: Vec<u8>,
}

impl Parsed {
    /// Returns the tag for `audience`, if the token carries one.
    pub fn tag_for(&self, audience: Audience) -> Option<&[u8]> {
        self.tags
            .chunks_exact(1 + TAG_LEN)
            .find(|chunk| chunk[0] == audience.wire_id())
            .map(|chunk| &chunk[1..])
    }
}

pub(crate) fn parse(token: &str) -> Result<Parsed, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (body_b64, tags_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let body = URL_SAFE_NO_PAD
        .decode(body_b64)
        .map_err(|_| TokenError::Malformed)?;
    let tags = URL_SAFE_NO_PAD
        .decode(tags_b64)
        .map_err(|_| TokenError::Malformed)?;
    if tags.is_empty() || tags.len() % (1 + TAG_LEN) != 0 {
        return Err(TokenError::Malformed);
    }
    // Audience ids must be known and strictly increasing, so a token has one tag per audience.
    let mut last = 0u8;
    for chunk in tags.chunks_exact(1 + TAG_LEN) {
        let id = chunk[0];
        if Audience::from_wire_id(id).is_none() || id <= last {
            return Err(TokenError::Malformed);
        }
        last = id;
    }
    Ok(Parsed { body, tags })
}

pub(crate) fn assemble(body: &[u8], tags: &[u8]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 1 + (body.len() + tags.len()) * 4 / 3 + 4);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(body, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tags, &mut out);
    out
}
