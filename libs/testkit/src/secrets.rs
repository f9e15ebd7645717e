//! A service's secrets directory, written from the service's own description of what it reads
//! (`coffer_<service>::SECRETS`, a list of `coffer_config::SecretFile`): the one way the tests and
//! `coffer-dev up` provision a service, so neither can drift from what the service needs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use coffer_config::{SecretFile, SecretKind};
use coffer_token::{Audience, MasterKeyRing};
use rand::RngCore as _;

use crate::ca::{CertSpec, DevCa, write_atomic};
use crate::s3::S3Credentials;

/// What the secrets are made from.
pub struct Materials<'a> {
    pub ca: &'a DevCa,
    /// Auth's master ring; audience rings derive from it.
    pub ring: &'a MasterKeyRing,
    /// The schema roles' passwords and the database's CA, for a service with a schema.
    pub db: Option<DbSecrets<'a>>,
    /// The object store's credentials, for storage-signer.
    pub s3: Option<&'a S3Credentials>,
    /// A fixed audit signing seed (base64), for tests that check signatures; else random.
    pub signing_seed: Option<&'a str>,
}

/// What a service with a schema reads to reach it.
#[derive(Debug, Clone, Copy)]
pub struct DbSecrets<'a> {
    pub owner_password: &'a str,
    pub runtime_password: &'a str,
    /// The CA the server's certificate chains to (PEM): `Postgres::ca_pem`.
    pub ca_pem: &'a str,
}

fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn write(dir: &Path, name: &str, value: &str, mode: u32) -> anyhow::Result<()> {
    let path = dir.join(name);
    write_atomic(&path, value.as_bytes(), mode)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes every secret of `spec` for `service` under `dir` (created if missing, files mode 0600
/// except certificates); returns `dir`.
pub fn provision(
    dir: &Path,
    service: &str,
    spec: &[SecretFile],
    m: &Materials<'_>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for secret in spec {
        let files = secret.files;
        match secret.kind {
            SecretKind::MeshIdentity => {
                m.ca.write_service_dir(dir, service)?;
            }
            SecretKind::TokenMasterRing => write(dir, files[0], &m.ring.to_toml(), 0o600)?,
            SecretKind::AudienceRing => {
                let audience = Audience::from_name(service)
                    .with_context(|| format!("{service} is no token audience"))?;
                let ring = m.ring.derive_audience_ring(audience).to_toml();
                write(dir, files[0], &ring, 0o600)?;
            }
            SecretKind::CookieRing => write(
                dir,
                files[0],
                &MasterKeyRing::generate("cookie-1").to_toml(),
                0o600,
            )?,
            SecretKind::ColumnKey => write(dir, files[0], &random_key(), 0o600)?,
            SecretKind::SigningKey => {
                let seed = m.signing_seed.map_or_else(random_key, str::to_owned);
                write(dir, files[0], &seed, 0o600)?;
            }
            SecretKind::DatabaseRoles => {
                let db = m
                    .db
                    .with_context(|| format!("{service} has a schema: give its role passwords"))?;
                write(dir, files[0], db.owner_password, 0o600)?;
                write(dir, files[1], db.runtime_password, 0o600)?;
                write(dir, files[2], db.ca_pem, 0o644)?;
            }
            SecretKind::StoreCredentials => {
                let s3 = m.s3.context("give the object store's credentials")?;
                write(dir, files[0], &s3.access_key, 0o600)?;
                write(dir, files[1], &s3.secret_key, 0o600)?;
            }
            SecretKind::PublicTls => {
                // For browsers and clients on this machine.
                let mut public = CertSpec::service(service);
                public.dns.push("localhost".into());
                public.ips.push("127.0.0.1".parse()?);
                let public = m.ca.issue_spec(&public)?;
                write(dir, files[0], &public.cert_pem, 0o644)?;
                write(dir, files[1], &public.key_pem, 0o600)?;
            }
        }
    }
    Ok(dir.to_owned())
}
