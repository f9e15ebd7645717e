//! Wiring: config → rules (a bad rule stops here) → database → token ring → peers → workers,
//! listener and retention → mesh server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use coffer_config::{SecretFile, SecretKind, ServiceConfig};
use coffer_kit::audit::AuditLog;
use coffer_mesh::{Jobs, MeshClient, ServiceApp};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_proto::v1::scan_server::ScanServer;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_token::Service;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::ScanConfig;
use crate::deps::Core;
use crate::engines::clamd::Clamd;
use crate::events::{self, Bus};
use crate::grpc::{ScanService, policy};
use crate::peers::Signer;
use crate::scanner::Engines;
use crate::store;
use crate::webhook::{SecretBox, Sender};
use crate::worker::Workers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The key that seals webhook secrets at rest.
pub const WEBHOOK_KEY: SecretFile = SecretFile {
    kind: SecretKind::ColumnKey,
    files: &["webhook-key"],
    purpose: "seals webhook secrets",
};

/// The services scan calls (the network policies are checked against this list).
pub const PEERS: &[Service] = &[
    Service::StorageSigner,
    Service::Metadata,
    Service::Auth,
    Service::Audit,
];

/// Every secret scan reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[
    SecretFile::MESH_IDENTITY,
    SecretFile::AUDIENCE_RING,
    WEBHOOK_KEY,
    SecretFile::DATABASE_ROLES,
];

/// Starts the engines a config asks for (the first engine host, and its first contained scan);
/// fails naming a rule that does not compile, a model file of another hash, or a kernel that
/// cannot contain the engines.
pub async fn engines(config: &ScanConfig) -> anyhow::Result<Engines> {
    let clamd = config
        .clamd
        .as_deref()
        .map(|a| Clamd::new(a, Duration::from_secs(config.clamd_timeout_secs)))
        .transpose()?;
    Engines::start(config, clamd).await
}

/// Removes scan-only requests and their results once they are older than the retention.
async fn expire_scans(
    pool: &sqlx::PgPool,
    retention_secs: u64,
) -> Result<usize, coffer_db::DbError> {
    let before = OffsetDateTime::now_utc()
        - time::Duration::seconds(i64::try_from(retention_secs).unwrap_or(i64::MAX));
    let mut tx = coffer_db::begin_with_setting(pool, "coffer.lookup_retention", "1").await?;
    let n = store::expire_scans(&mut tx, before).await?;
    tx.commit().await?;
    Ok(n as usize)
}

/// Compiles the rules, migrates the schema, loads secrets, starts the workers, binds both ports.
pub async fn build(service: &ServiceConfig, config: &ScanConfig) -> anyhow::Result<ServiceApp> {
    service.secrets().check(SECRETS)?;
    coffer_config::Validate::validate(config)?;
    let engines = Arc::new(engines(config).await?);
    let nsfw_model = engines.nsfw_version().map(str::to_owned);
    tracing::info!(
        ruleset = engines.ruleset_version(),
        clamd = config.clamd.is_some(),
        nsfw = engines.nsfw_version().unwrap_or("none"),
        "scan engines ready"
    );
    let mut jobs = Jobs::new();
    if let Some(clamd) = engines.clamd() {
        // Not fatal, and not waited on: clamd may start after us; jobs retry until it answers.
        let clamd = clamd.clone();
        jobs.spawn("clamd check", |_| async move {
            match clamd.version().await {
                Ok(v) => tracing::info!(version = %v, "clamd answers"),
                Err(error) => tracing::warn!(%error, "clamd does not answer yet"),
            }
        });
    }
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    // Registered (the queue states and verdicts at zero) before the first scrape.
    crate::metrics::metrics();
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the scan schema")?;
    jobs.every(
        "database pool metrics",
        coffer_db::POOL_METRICS_EVERY,
        coffer_db::pool_metrics(pool.clone(), "runtime"),
    );
    let verifier = coffer_mesh::app::token_verifier(service)?;
    let certs = coffer_mesh::app::certs(service)?;
    let mesh = MeshClient::new(certs.clone())?;
    let peers = mesh.peers(PEERS, service);
    let signer = StorageSignerClient::new(peers.get(Service::StorageSigner)?);
    let config = Arc::new(config.clone());
    let wake = Arc::new(Notify::new());
    let bus = Bus::default();
    events::schedule_listener(&mut jobs, pool.clone(), wake.clone(), bus.clone());
    Workers {
        pool: pool.clone(),
        engines,
        config: config.clone(),
        signer: signer.clone(),
        metadata: MetadataClient::new(peers.get(Service::Metadata)?),
        auth: AuthClient::new(peers.get(Service::Auth)?),
        audit: AuditLog::new(peers.get(Service::Audit)?),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the download client")?,
        wake: wake.clone(),
    }
    .schedule(&mut jobs);
    let (retention_pool, retention_secs) = (pool.clone(), config.scan_retention_secs);
    jobs.every(
        "scan-only retention",
        Duration::from_secs(config.retention_interval_secs),
        move || {
            let pool = retention_pool.clone();
            async move { expire_scans(&pool, retention_secs).await }
        },
    );
    let secrets_box = {
        use secrecy::ExposeSecret as _;
        SecretBox::new(secrets.key(WEBHOOK_KEY.files[0], 32)?.expose_secret())
            .context(WEBHOOK_KEY.files[0])?
    };
    Sender {
        pool: pool.clone(),
        secrets: secrets_box.clone(),
        config: config.webhook.clone(),
    }
    .schedule(&mut jobs);
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(ScanServer::new(ScanService::new(Core {
            pool,
            signer: Signer(signer),
            config,
            wake,
            secrets: secrets_box,
            bus,
            nsfw_model,
            audit: AuditLog::new(peers.get(Service::Audit)?),
        })));
    ServiceApp::bind(server, jobs, service).await
}
