//! Wiring: config → database → signing key → token ring → mesh server and admin port.

use anyhow::Context as _;
use coffer_auditlog::Signer;
use coffer_config::{SecretFile, SecretKind, ServiceConfig};
use coffer_mesh::{Jobs, ServiceApp};
use coffer_proto::v1::audit_server::AuditServer;

use crate::config::AuditConfig;
use crate::grpc::{AuditService, policy};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The key that signs checkpoints and exports.
pub const SIGNING_KEY: SecretFile = SecretFile {
    kind: SecretKind::SigningKey,
    files: &["audit-signing-key"],
    purpose: "signs checkpoints and exports (Ed25519)",
};

/// The services audit calls: none (the network policies are checked against this list).
pub const PEERS: &[coffer_token::Service] = &[];

/// Every secret audit reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[
    SecretFile::MESH_IDENTITY,
    SecretFile::AUDIENCE_RING,
    SIGNING_KEY,
    SecretFile::DATABASE_ROLES,
];

/// Migrates the schema, loads secrets, binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &AuditConfig) -> anyhow::Result<ServiceApp> {
    service.secrets().check(SECRETS)?;
    coffer_config::Validate::validate(config)?;
    // Registered (and the append outcomes at zero) before the first scrape.
    crate::metrics::metrics();
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the audit schema")?;
    // The retention job alone works as the schema owner (see migration 0002).
    let owner = coffer_db::owner_pool(database, &secrets, 1)
        .await
        .context("opening the audit schema as its owner")?;
    let mut jobs = Jobs::new();
    jobs.every(
        "database pool metrics",
        coffer_db::POOL_METRICS_EVERY,
        coffer_db::pool_metrics(pool.clone(), "runtime"),
    );
    jobs.every(
        "database pool metrics (owner)",
        coffer_db::POOL_METRICS_EVERY,
        coffer_db::pool_metrics(owner.clone(), "owner"),
    );
    let retention_secs = config.retention_secs;
    // Removes purged orgs' logs once their retention time has passed.
    jobs.every(
        "audit retention",
        std::time::Duration::from_secs(config.retention_interval_secs),
        move || {
            let owner = owner.clone();
            async move {
                crate::retention::sweep(&owner, retention_secs, coffer_kit::timestamp::now_micros())
                    .await
            }
        },
    );
    let signer = {
        use secrecy::ExposeSecret as _;
        Signer::from_text(
            &config.signing_key_id,
            secrets.string(SIGNING_KEY.files[0])?.expose_secret(),
        )
        .context(SIGNING_KEY.files[0])?
    };
    let verifier = coffer_mesh::app::token_verifier(service)?;
    let certs = coffer_mesh::app::certs(service)?;
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(AuditServer::new(AuditService::new(
            pool,
            signer,
            config.clone(),
        )));
    ServiceApp::bind(server, jobs, service).await
}
