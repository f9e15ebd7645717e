//! Profiles: which gateway, which CA, which credential. One TOML file in the user's config
//! directory (`$COFFER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/coffer`, else `~/.config/coffer`),
//! the directory mode 0700 and the file 0600, written whole to a temporary file and renamed so a
//! crash never leaves half a file. The upload states of `coffer put` live beside it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The profile used when none is named.
pub const DEFAULT: &str = "default";

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Config {
    /// The profile `--profile` defaults to (`coffer login` of a new profile sets it when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Profile {
    /// The gateway's base URL, e.g. `https://vault.example.com`.
    pub gateway: String,
    /// A CA certificate (PEM) to trust besides the built-in roots, for self-signed gateways:
    /// copied in at login, so a file swapped later cannot change whom the profile trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// A browser-style session: the cookie and its CSRF token.
    Session {
        email: String,
        session: String,
        csrf: String,
    },
    /// An API key (`Authorization: Bearer`).
    ApiKey { key: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { email, .. } => write!(f, "Session({email}, <redacted>)"),
            Credential::ApiKey { .. } => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// The config directory.
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("COFFER_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("coffer"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no HOME: set COFFER_CONFIG_DIR to the directory for coffer's profiles")?;
    Ok(PathBuf::from(home).join(".config/coffer"))
}

fn file() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("config.toml"))
}

impl Config {
    pub fn load() -> anyhow::Result<Config> {
        let path = file()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let meta = std::fs::metadata(&path)?;
                anyhow::ensure!(
                    meta.permissions().mode() & 0o077 == 0,
                    "{} is readable by others (mode {:o}): it holds credentials; run chmod 600 on it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                );
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let path = file()?;
        let dir = path.parent().context("config path")?;
        create_private_dir(dir)?;
        let text = toml::to_string(self)?;
        write_private(&path, text.as_bytes())
    }

    /// The name `--profile` gave, else the current one (the last logged in), else `default`.
    pub fn name(&self, asked: Option<&str>) -> anyhow::Result<String> {
        let name = asked
            .map(str::to_owned)
            .or_else(|| self.current.clone())
            .unwrap_or_else(|| DEFAULT.to_owned());
        // It names a directory of upload states: letters, digits, `-` and `_` only.
        anyhow::ensure!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "profile names are 1 to 64 letters, digits, - or _ (got {name:?})"
        );
        Ok(name)
    }
}

/// Creates a directory (and its parents) that only the user can enter.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Writes a file of mode 0600 whole: a temporary file in the same directory, synced, renamed.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
