//! Wiring: config → database → key ring → the org purge job → mesh server and admin port.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use coffer_config::{SecretFile, SecretKind, ServiceConfig};
use coffer_kit::audit::AuditLog;
use coffer_mesh::{ServiceApp, TokenVerifier};
use coffer_proto::v1::auth_server::AuthServer;
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_token::{Audience, MasterKeyRing, Minter, Service, Verifier, VerifyOptions};

use crate::config::AuthConfig;
use crate::deps::Core;
use crate::grpc::{AuthService, policy};
use crate::passwords::Hasher;
use crate::purge::Purger;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Migrates the schema, loads secrets and binds both ports. Fails naming what is wrong.
/// The master token ring auth mints with.
pub const TOKEN_MASTER: SecretFile = SecretFile {
    kind: SecretKind::TokenMasterRing,
    files: &["token-master.toml"],
    purpose: "mints user and service tokens (the master ring)",
};
/// The key that seals TOTP seeds at rest.
pub const TOTP_KEY: SecretFile = SecretFile {
    kind: SecretKind::ColumnKey,
    files: &["totp-key"],
    purpose: "seals TOTP seeds",
};

/// The services auth calls: audit, and for the org purge metadata and scan (optional). The
/// network policies are checked against this list.
pub const PEERS: &[Service] = &[Service::Audit, Service::Metadata, Service::Scan];

/// Every secret auth reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[
    SecretFile::MESH_IDENTITY,
    TOKEN_MASTER,
    TOTP_KEY,
    SecretFile::DATABASE_ROLES,
];

pub async fn build(service: &ServiceConfig, config: &AuthConfig) -> anyhow::Result<ServiceApp> {
    service.secrets().check(SECRETS)?;
    coffer_config::Validate::validate(config)?;
    // Registered (every refusal reason and outcome at zero) before the first scrape.
    crate::metrics::metrics();
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the auth schema")?;
    let ring = MasterKeyRing::from_file(&secrets.require(TOKEN_MASTER.files[0])?)?;
    // Auth verifies its own tag on the tokens the gateway forwards back to it.
    let verifier = Verifier::new(
        &ring.derive_audience_ring(Audience::Auth),
        VerifyOptions::default(),
    );
    let hasher = Hasher::new(config.password_min_chars)?;
    let seeds = {
        use secrecy::ExposeSecret as _;
        coffer_kit::seal::Sealer::new(secrets.key(TOTP_KEY.files[0], 32)?.expose_secret())
            .context(TOTP_KEY.files[0])?
    };
    let certs = coffer_mesh::app::certs(service)?;
    let mesh = coffer_mesh::MeshClient::new(certs.clone())?;
    let peers = mesh.peers(PEERS, service);
    let audit = AuditLog::new(peers.get(Service::Audit)?);
    // The org purge reaches metadata and scan (optional peers: see `purge`).
    let optional = |peer: Service| peers.optional(peer);
    let minter = Arc::new(Minter::new(&ring));
    let mut jobs = coffer_mesh::Jobs::new();
    jobs.every(
        "database pool metrics",
        coffer_db::POOL_METRICS_EVERY,
        coffer_db::pool_metrics(pool.clone(), "runtime"),
    );
    let sessions = pool.clone();
    let idle_secs = config.session_idle_secs;
    jobs.every(
        "active sessions",
        coffer_db::POOL_METRICS_EVERY,
        move || {
            let pool = sessions.clone();
            async move { crate::metrics::refresh_sessions(&pool, idle_secs).await }
        },
    );
    Purger {
        pool: pool.clone(),
        audit: audit.clone(),
        metadata: optional(Service::Metadata)?.map(MetadataClient::new),
        scan: optional(Service::Scan)?.map(ScanClient::new),
        minter: minter.clone(),
        token_ttl_secs: config.token_ttl_secs,
    }
    .schedule(&mut jobs, Duration::from_secs(config.purge_interval_secs));
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(TokenVerifier::fixed(verifier))
        .add_service(AuthServer::new(AuthService::new(Core {
            pool,
            audit,
            hasher,
            minter,
            seeds,
            config: config.clone(),
        })));
    ServiceApp::bind(server, jobs, service).await
}
