//! Key rings read from mounted secret files.
//!
//! Auth holds the **master** ring (several key ids, one active) and derives every audience's key
//! from it. Every other service holds an **audience** ring: the same key ids, but only its own
//! derived keys, so it can verify its own tag and forge none. Rotation is add → activate → retire:
//! add a key id to every ring, make it active on the master ring, and drop the old id once no token
//! minted under it can still be alive (tokens live at most a minute).
//!
//! ```toml
//! # master ring (auth)                 # audience ring (e.g. metadata)
//! kind = "master"                      kind = "audience"
//! active = "k2"                        audience = "metadata"
//! [[keys]]                             [[keys]]
//! id = "k1"                            id = "k1"
//! secret = "<base64, ≥ 32 bytes>"      secret = "<base64 of the derived 32-byte key>"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use serde::Deserialize;
use sha2::Sha256;

use crate::claims::Audience;
use crate::codec::is_valid_key_id;
use crate::error::KeyRingError;

/// A key id as it appears in tokens and rings.
pub type KeyId = String;

const HKDF_SALT: &[u8] = b"coffer.user-token.v1.hkdf";
const MIN_MASTER_LEN: usize = 32;
const AUDIENCE_KEY_LEN: usize = 32;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Derives the 32-byte key of one audience under one master key.
fn derive(master: &[u8], key_id: &str, audience: Audience) -> [u8; AUDIENCE_KEY_LEN] {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), master);
    let mut info = Vec::with_capacity(32 + key_id.len());
    info.extend_from_slice(b"audience:");
    info.extend_from_slice(audience.name().as_bytes());
    info.extend_from_slice(b"\x00key:");
    info.extend_from_slice(key_id.as_bytes());
    let mut okm = [0u8; AUDIENCE_KEY_LEN];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    hk.expand(&info, &mut okm)
        .expect("hkdf output length is valid");
    okm
}

/// The tag of `body` for `audience` under `mac`'s key: the mac input of the wire layout (`codec`).
pub(crate) fn tag(mac: &HmacSha256, audience: crate::claims::Audience, body: &[u8]) -> HmacSha256 {
    use hmac::Mac as _;
    let mut mac = mac.clone();
    mac.update(crate::codec::DOMAIN);
    mac.update(audience.name().as_bytes());
    mac.update(&[0]);
    mac.update(body);
    mac
}

fn hmac_for(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("hmac accepts keys of any length")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    kind: String,
    active: Option<String>,
    audience: Option<String>,
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    secret: String,
}

fn read_ring(path: &Path) -> Result<RingFile, KeyRingError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyRingError::Read {
        path: path.to_owned(),
        source,
    })?;
    // The TOML error may quote the file's content, which holds secrets: keep only its position.
    toml::from_str(&text).map_err(|e| KeyRingError::Invalid {
        path: path.to_owned(),
        reason: format!(
            "not a key ring (toml error at byte {:?})",
            e.span().map(|s| s.start)
        ),
    })
}

fn invalid(path: &Path, reason: impl Into<String>) -> KeyRingError {
    KeyRingError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn decode_keys(
    path: &Path,
    entries: Vec<KeyEntry>,
    min_len: usize,
) -> Result<BTreeMap<KeyId, SecretBox<[u8]>>, KeyRingError> {
    if entries.is_empty() {
        return Err(invalid(path, "no keys"));
    }
    let mut keys = BTreeMap::new();
    for entry in entries {
        if !is_valid_key_id(&entry.id) {
            return Err(invalid(
                path,
                "a key id is not 1-32 characters of [A-Za-z0-9._-]",
            ));
        }
        let bytes = STANDARD
            .decode(entry.secret.trim())
            .map_err(|_| invalid(path, format!("key {} is not base64", entry.id)))?;
        if bytes.len() < min_len {
            return Err(invalid(
                path,
                format!("key {} is shorter than {min_len} bytes", entry.id),
            ));
        }
        if keys
            .insert(entry.id.clone(), SecretBox::new(bytes.into_boxed_slice()))
            .is_some()
        {
            return Err(invalid(
                path,
                format!("key id {} is listed twice", entry.id),
            ));
        }
    }
    Ok(keys)
}

/// Renders the `[[keys]]` entries of a ring file.
fn render_keys(out: &mut String, keys: &BTreeMap<KeyId, SecretBox<[u8]>>) {
    for (id, key) in keys {
        out.push_str(&format!(
            "\n[[keys]]\nid = \"{id}\"\nsecret = \"{}\"\n",
            STANDARD.encode(key.expose_secret())
        ));
    }
}

// === impl MasterKeyRing ===

/// The master key ring auth mints with.
pub struct MasterKeyRing {
    pub(crate) active: KeyId,
    keys: BTreeMap<KeyId, SecretBox<[u8]>>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyRing")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MasterKeyRing {
    /// Reads a master ring from a file.
    pub fn from_file(path: &Path) -> Result<Self, KeyRingError> {
        let file = read_ring(path)?;
        if file.kind != "master" || file.audience.is_some() {
            return Err(invalid(path, "kind must be \"master\" with no audience"));
        }
        let active = file
            .active
            .ok_or_else(|| invalid(path, "no active key id"))?;
        let keys = decode_keys(path, file.keys, MIN_MASTER_LEN)?;
        if !keys.contains_key(&active) {
            return Err(invalid(path, "the active key id is not listed"));
        }
        Ok(MasterKeyRing { active, keys })
    }

    /// Generates a ring with one fresh random key, for development and tests.
    pub fn generate(key_id: &str) -> Self {
        let mut ring = MasterKeyRing {
            active: key_id.to_owned(),
            keys: BTreeMap::new(),
        };
        ring.add_random_key(key_id);
        ring
    }

    /// Adds a fresh random key under `key_id` without activating it.
    pub fn add_random_key(&mut self, key_id: &str) {
        assert!(is_valid_key_id(key_id), "invalid key id");
        let mut bytes = vec![0u8; MIN_MASTER_LEN];
        rand::rng().fill_bytes(&mut bytes);
        self.keys
            .insert(key_id.to_owned(), SecretBox::new(bytes.into_boxed_slice()));
    }

    /// Makes `key_id` the key new tokens are minted with. Returns false if it is not listed.
    pub fn activate(&mut self, key_id: &str) -> bool {
        if self.keys.contains_key(key_id) {
            self.active = key_id.to_owned();
            true
        } else {
            false
        }
    }

    /// Removes `key_id`; tokens minted under it stop verifying once the audience rings drop it too.
    pub fn retire(&mut self, key_id: &str) {
        if key_id != self.active {
            self.keys.remove(key_id);
        }
    }

    /// Returns the active key id.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Derives the ring one audience holds: the same key ids, only that audience's keys.
    pub fn derive_audience_ring(&self, audience: Audience) -> AudienceKeyRing {
        let keys = self
            .keys
            .iter()
            .map(|(id, master)| {
                let key = derive(master.expose_secret(), id, audience);
                (id.clone(), SecretBox::new(Box::<[u8]>::from(&key[..])))
            })
            .collect();
        AudienceKeyRing { audience, keys }
    }

    pub(crate) fn audience_macs(&self, key_id: &str, audience: Audience) -> Option<HmacSha256> {
        self.keys
            .get(key_id)
            .map(|master| hmac_for(&derive(master.expose_secret(), key_id, audience)))
    }

    /// Returns the listed key ids.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Derives a 32-byte key for another purpose than tokens (for example the gateway's cookie
    /// signatures), under `key_id`. Purposes are domain-separated from every token audience.
    pub fn derive_purpose_key(&self, purpose: &str, key_id: &str) -> Option<[u8; 32]> {
        let master = self.keys.get(key_id)?;
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), master.expose_secret());
        let mut info = Vec::with_capacity(32 + purpose.len() + key_id.len());
        info.extend_from_slice(b"purpose:");
        info.extend_from_slice(purpose.as_bytes());
        info.extend_from_slice(b"\x00key:");
        info.extend_from_slice(key_id.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(&info, &mut okm).ok()?;
        Some(okm)
    }

    /// Renders the ring in its file format (for `coffer-dev` and key tooling).
    pub fn to_toml(&self) -> String {
        let mut out = format!("kind = \"master\"\nactive = \"{}\"\n", self.active);
        render_keys(&mut out, &self.keys);
        out
    }
}

// === impl AudienceKeyRing ===

/// The keys one audience verifies with.
pub struct AudienceKeyRing {
    pub(crate) audience: Audience,
    keys: BTreeMap<KeyId, SecretBox<[u8]>>,
}

impl std::fmt::Debug for AudienceKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceKeyRing")
            .field("audience", &self.audience)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AudienceKeyRing {
    /// Reads an audience ring from a file.
    pub fn from_file(path: &Path) -> Result<Self, KeyRingError> {
        let file = read_ring(path)?;
        if file.kind != "audience" || file.active.is_some() {
            return Err(invalid(
                path,
                "kind must be \"audience\" with no active key",
            ));
        }
        let audience = file
            .audience
            .as_deref()
            .and_then(Audience::from_name)
            .ok_or_else(|| invalid(path, "audience is missing or unknown"))?;
        let keys = decode_keys(path, file.keys, AUDIENCE_KEY_LEN)?;
        Ok(AudienceKeyRing { audience, keys })
    }

    /// Returns the audience this ring verifies for.
    pub fn audience(&self) -> Audience {
        self.audience
    }

    /// Returns the key ids this ring holds.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub(crate) fn macs(&self) -> BTreeMap<KeyId, HmacSha256> {
        self.keys
            .iter()
            .map(|(id, key)| (id.clone(), hmac_for(key.expose_secret())))
            .collect()
    }

    /// Renders the ring in its file format.
    pub fn to_toml(&self) -> String {
        let mut out = format!("kind = \"audience\"\naudience = \"{}\"\n", self.audience);
        render_keys(&mut out, &self.keys);
        out
    }
}
