//! Configuration for every Coffer binary, loaded one way everywhere:
//! defaults → TOML file → `COFFER_` environment variables (`__` separates nesting, so
//! `COFFER_TELEMETRY__LOG_FILTER=debug` sets `telemetry.log_filter`).
//!
//! Secrets are never configuration values: a config names a secrets directory, and [`Secrets`]
//! reads each secret from its own file there (Kubernetes mounts them so). Environment variables
//! never carry a secret. A missing or malformed secret stops start-up with the file's path, never
//! its content.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use secrecy::{SecretBox, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use coffer_telemetry::TelemetryConfig;

/// Why configuration could not be loaded. The message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("secret {path}: {reason}")]
    Secret { path: PathBuf, reason: String },
}

/// What kind of secret a file (or a set of files) is: how it is made and rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The service's mesh certificate and key, and the mesh CA (`tls.crt`, `tls.key`, `ca.crt`).
    MeshIdentity,
    /// Auth's master token key ring (every audience's keys derive from it).
    TokenMasterRing,
    /// The service's own audience key ring, derived from the master ring.
    AudienceRing,
    /// The gateway's cookie and CSRF key ring.
    CookieRing,
    /// 32 random bytes (base64) that seal a column (AES-256-GCM).
    ColumnKey,
    /// An Ed25519 seed (base64) that signs audit checkpoints and exports.
    SigningKey,
    /// The passwords of the schema's owner and runtime roles, and the CA the database server's
    /// certificate must chain to (every connection is TLS, `verify-full`).
    DatabaseRoles,
    /// The object store's access key id and secret key.
    StoreCredentials,
    /// The public HTTPS certificate and key.
    PublicTls,
}

/// One secret a service reads from its secrets directory.
#[derive(Debug, Clone, Copy)]
pub struct SecretFile {
    pub kind: SecretKind,
    /// The file names (one unless the kind is a set), when the kind has no fixed ones.
    pub files: &'static [&'static str],
    /// What it is for, in a few words (the README's table).
    pub purpose: &'static str,
}

impl SecretFile {
    /// The mesh identity every gRPC service has.
    pub const MESH_IDENTITY: SecretFile = SecretFile {
        kind: SecretKind::MeshIdentity,
        files: &["tls.crt", "tls.key", "ca.crt"],
        purpose: "mTLS identity and the mesh CA",
    };
    /// The verifying key ring of a service that takes user tokens.
    pub const AUDIENCE_RING: SecretFile = SecretFile {
        kind: SecretKind::AudienceRing,
        files: &["token-ring.toml"],
        purpose: "verifies user tokens (the service's audience)",
    };
    /// The two role passwords of a service with a schema, and the database's CA.
    pub const DATABASE_ROLES: SecretFile = SecretFile {
        kind: SecretKind::DatabaseRoles,
        files: &["db-owner-password", "db-runtime-password", "db-ca.crt"],
        purpose: "the schema's owner (migrations) and runtime roles; the database server's CA",
    };
}

impl Secrets {
    /// Checks that every file of `spec` is present, naming the first one missing.
    pub fn check(&self, spec: &[SecretFile]) -> Result<(), ConfigError> {
        for file in spec.iter().flat_map(|s| s.files) {
            self.require(file)?;
        }
        Ok(())
    }
}

/// One README row's list of files: `` `tls.crt`, `tls.key` `` … for a service's secrets.
pub fn describe_secrets(spec: &[SecretFile]) -> String {
    spec.iter()
        .flat_map(|s| s.files)
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A configuration section that refuses values that cannot work. Every service's section
/// implements it; [`load_service`] checks both the section and [`ServiceConfig`] as it loads, so
/// a bad value stops start-up naming its key (and builders check again, for configs made in
/// code). Code then uses values as they are: no silent clamps.
pub trait Validate {
    /// The section's name in the file (`metadata`), or empty for the top level.
    const SECTION: &'static str;

    /// Records every problem with this section in `check`.
    fn check(&self, check: &mut Check);

    /// Ok, or every problem found, each naming its key (`metadata.share_url_secs`).
    fn validate(&self) -> Result<(), ConfigError> {
        let mut check = Check {
            section: Self::SECTION,
            problems: Vec::new(),
        };
        self.check(&mut check);
        if check.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(check.problems.join("; ")))
        }
    }
}

/// The problems a [`Validate::check`] found.
#[derive(Debug)]
pub struct Check {
    section: &'static str,
    problems: Vec<String>,
}

impl Check {
    fn key(&self, key: &str) -> String {
        if self.section.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.section)
        }
    }

    /// `key` must be `min` or more.
    pub fn at_least<V: PartialOrd + std::fmt::Display>(&mut self, key: &str, value: V, min: V) {
        if value < min {
            let key = self.key(key);
            self.problems
                .push(format!("{key} must be at least {min}, not {value}"));
        }
    }

    /// `key` must be within `min..=max`.
    pub fn between<V: PartialOrd + std::fmt::Display>(
        &mut self,
        key: &str,
        value: V,
        min: V,
        max: V,
    ) {
        if value < min || value > max {
            let key = self.key(key);
            self.problems.push(format!(
                "{key} must be between {min} and {max}, not {value}"
            ));
        }
    }

    /// `key` must satisfy a rule stated in `must` ("must be an https URL").
    pub fn that(&mut self, key: &str, ok: bool, must: &str) {
        if !ok {
            let key = self.key(key);
            self.problems.push(format!("{key} {must}"));
        }
    }
}

impl Validate for ServiceConfig {
    const SECTION: &'static str = "";

    fn check(&self, check: &mut Check) {
        check.at_least("request_timeout_ms", self.request_timeout_ms, 1);
        check.between(
            "limits.max_in_flight",
            self.limits.max_in_flight,
            1,
            100_000,
        );
        check.between("limits.max_queued", self.limits.max_queued, 0, 1_000_000);
        check.between(
            "limits.queue_deadline_ms",
            self.limits.queue_deadline_ms,
            1,
            60_000,
        );
        check.between(
            "limits.max_connections",
            self.limits.max_connections,
            1,
            1_000_000,
        );
        if let Some(db) = &self.database {
            check.between("database.pool_size", db.pool_size, 1, 1000);
        }
    }
}

/// `COFFER_` variables of Coffer's other tools, not of any binary's configuration: the CLI's
/// (`COFFER_API_KEY`, `_URL`, `_PROFILE`, `_CONFIG_DIR`), the scripts' and the test kit's
/// (`_FUZZ_TARGET`, `_NSFW_MODEL`, `_PG_BIN`, `_TOOLS_VENV`, `_WEED`, `_SHOTS`,
/// `_OTLP_TEST_ENDPOINT`, `_LOG_TEST_FACTS`) and the build's (`_GIT_SHA`). The loader passes
/// over them, so a shell that sets one for its tool does not stop a service started from it;
/// any other unknown `COFFER_` key still does.
const OTHER_TOOLS: &[&str] = &[
    "API_KEY",
    "URL",
    "PROFILE",
    "CONFIG_DIR",
    "FUZZ_TARGET",
    "NSFW_MODEL",
    "PG_BIN",
    "TOOLS_VENV",
    "WEED",
    "SHOTS",
    "OTLP_TEST_ENDPOINT",
    "LOG_TEST_FACTS",
    "GIT_SHA",
];

/// The environment's keys under `prefix`, `__` separating nesting, without [`OTHER_TOOLS`].
fn environment(prefix: &str) -> Env {
    Env::prefixed(prefix).ignore(OTHER_TOOLS).split("__")
}

/// Loads `T` from its defaults, then `file` (if given; it must exist), then the environment.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    load_with_env(file, "COFFER_")
}

/// Like [`load`] with another environment prefix (tests use one of their own).
pub fn load_with_env<T>(file: Option<&Path>, env_prefix: &str) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::MissingFile(file.to_owned()));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(environment(env_prefix))
        .extract()
        .map_err(|e| ConfigError::Invalid(e.to_string()))
}

/// Loads a service's configuration: the shared [`ServiceConfig`] from the top level of the file,
/// and the service's own `T` from its `[section]` (environment: `COFFER_<SECTION>__<KEY>`). Unknown
/// keys are refused in both.
pub fn load_service<T>(
    file: Option<&Path>,
    section: &str,
) -> Result<(ServiceConfig, T), ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    load_service_with_env(file, section, "COFFER_")
}

/// Like [`load_service`] with another environment prefix.
pub fn load_service_with_env<T>(
    file: Option<&Path>,
    section: &str,
    env_prefix: &str,
) -> Result<(ServiceConfig, T), ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let invalid = |e: figment::Error| ConfigError::Invalid(e.to_string());
    let mut figment = Figment::from(Serialized::defaults(ServiceConfig::default()))
        .merge(Serialized::default(section, T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::MissingFile(file.to_owned()));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    let figment = figment.merge(environment(env_prefix));
    let own: T = figment.extract_inner(section).map_err(invalid)?;
    let mut rest: figment::value::Dict = figment.extract().map_err(invalid)?;
    rest.remove(section);
    let service: ServiceConfig = Figment::from(Serialized::defaults(rest))
        .extract()
        .map_err(invalid)?;
    service.validate()?;
    own.validate()?;
    Ok((service, own))
}

/// Where a service's schema lives. Passwords are secret files: `db-owner-password` and
/// `db-runtime-password` in the service's secrets directory. Every connection speaks TLS and
/// checks the server's certificate as `verify-full` does: it must carry `host` and chain to
/// `db-ca.crt` there (or to one of the public web roots sqlx carries besides: keep `host` an
/// internal name); there is no setting that turns this off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    /// The service's schema (`auth`, `metadata`, ...).
    pub schema: String,
    /// Owns the schema; runs migrations at start-up.
    pub owner_user: String,
    /// DML only; what the service works as. Must not be a superuser or BYPASSRLS.
    pub runtime_user: String,
    pub pool_size: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            host: "127.0.0.1".into(),
            port: 5432,
            name: "coffer".into(),
            schema: String::new(),
            owner_user: String::new(),
            runtime_user: String::new(),
            pool_size: 10,
        }
    }
}

/// What every mesh service's config holds, at the top level of its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The gRPC (mTLS) listen address.
    pub listen: SocketAddr,
    /// The admin listen address: `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// The mounted secrets directory (certificates, key rings, passwords).
    pub secrets_dir: PathBuf,
    /// Where the other services are: name → `host:port`.
    pub peers: BTreeMap<String, String>,
    /// The longest a call may run, in milliseconds.
    pub request_timeout_ms: u64,
    /// How long in-flight calls may take to finish after a shutdown signal, in milliseconds.
    pub shutdown_grace_ms: u64,
    pub telemetry: TelemetryConfig,
    /// How much work the server takes on at once; beyond it, callers are told to come back.
    pub limits: LoadLimits,
    /// The service's schema, for services that own one.
    pub database: Option<DatabaseConfig>,
}

/// Overload protection (`[limits]`): at most `max_in_flight` requests are handled at once; up to
/// `max_queued` more wait for a slot, each for at most `queue_deadline_ms`; the rest are refused at
/// once as unavailable with a time to retry (HTTP 503 + `Retry-After`, gRPC `UNAVAILABLE`). Work
/// that is refused costs little, so a flood does not take the capacity that admitted requests
/// need, and their latency stays bounded by the queue's deadline plus the in-flight work.
/// `max_connections` bounds open connections: at the bound, new ones wait in the kernel's backlog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadLimits {
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub queue_deadline_ms: u64,
    pub max_connections: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_in_flight: 64,
            max_queued: 256,
            queue_deadline_ms: 100,
            max_connections: 4096,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 7000)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            secrets_dir: PathBuf::from("/var/run/secrets/coffer"),
            peers: BTreeMap::new(),
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            telemetry: TelemetryConfig::default(),
            limits: LoadLimits::default(),
            database: None,
        }
    }
}

impl ServiceConfig {
    /// Returns the address of `peer`, or an error naming the missing key.
    pub fn peer(&self, peer: &str) -> Result<&str, ConfigError> {
        self.peers
            .get(peer)
            .map(String::as_str)
            .ok_or_else(|| ConfigError::Invalid(format!("missing key peers.{peer}")))
    }

    /// Returns the secrets directory as a [`Secrets`] reader.
    pub fn secrets(&self) -> Secrets {
        Secrets::new(&self.secrets_dir)
    }
}

/// Reads secrets from files in one directory.
#[derive(Debug, Clone)]
pub struct Secrets {
    dir: PathBuf,
}

impl Secrets {
    /// Reads from `dir`.
    pub fn new(dir: &Path) -> Self {
        Secrets {
            dir: dir.to_owned(),
        }
    }

    /// Returns the path of the secret `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn fail(&self, name: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Secret {
            path: self.path(name),
            reason: reason.into(),
        }
    }

    /// Returns the path of `name` after checking that the file exists (for secrets a library
    /// reads itself, such as certificates and key rings).
    pub fn require(&self, name: &str) -> Result<PathBuf, ConfigError> {
        let path = self.path(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.fail(name, "missing"))
        }
    }

    /// Reads a text secret; one trailing newline is dropped; it must not be empty.
    pub fn string(&self, name: &str) -> Result<SecretString, ConfigError> {
        let raw = std::fs::read(self.path(name)).map_err(|e| self.fail(name, e.to_string()))?;
        let text = String::from_utf8(raw).map_err(|_| self.fail(name, "not valid UTF-8"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() {
            return Err(self.fail(name, "empty"));
        }
        Ok(SecretString::from(text.to_owned()))
    }

    /// Reads a base64-encoded key of exactly `len` bytes.
    pub fn key(&self, name: &str, len: usize) -> Result<SecretBox<Vec<u8>>, ConfigError> {
        use secrecy::ExposeSecret as _;
        let text = self.string(name)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.expose_secret().trim())
            .map_err(|_| self.fail(name, "not base64"))?;
        if bytes.len() != len {
            return Err(self.fail(name, format!("must be {len} bytes, found {}", bytes.len())));
        }
        Ok(SecretBox::new(Box::new(bytes)))
    }
}
