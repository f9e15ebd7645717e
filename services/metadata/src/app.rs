//! Wiring: config → database → token ring → clients of storage-signer and auth → mesh server.

use anyhow::Context as _;
use coffer_config::{SecretFile, ServiceConfig};
use coffer_kit::audit::AuditLog;
use coffer_mesh::{Jobs, MeshClient, ServiceApp};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_server::MetadataServer;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_token::Service;

use crate::config::MetadataConfig;
use crate::deps::Core;
use crate::grpc::{MetadataService, policy};
use crate::peers::Peers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The services metadata calls (scan optional: without it, completed uploads wait in
/// `scanning`). The network policies are checked against this list and the callers' policies.
pub const PEERS: &[Service] = &[
    Service::StorageSigner,
    Service::Auth,
    Service::Audit,
    Service::Scan,
];

/// Every secret metadata reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[
    SecretFile::MESH_IDENTITY,
    SecretFile::AUDIENCE_RING,
    SecretFile::DATABASE_ROLES,
];

/// Migrates the schema, loads secrets, binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &MetadataConfig) -> anyhow::Result<ServiceApp> {
    service.secrets().check(SECRETS)?;
    coffer_config::Validate::validate(config)?;
    // Registered (every presign kind at zero) before the first scrape.
    crate::metrics::metrics();
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the metadata schema")?;
    let verifier = coffer_mesh::app::token_verifier(service)?;
    let certs = coffer_mesh::app::certs(service)?;
    let mesh = MeshClient::new(certs.clone())?;
    let peers = mesh.peers(PEERS, service);
    let signer = StorageSignerClient::new(peers.get(Service::StorageSigner)?);
    let auth = AuthClient::new(peers.get(Service::Auth)?);
    let audit = AuditLog::new(peers.get(Service::Audit)?);
    let scan = match peers.optional(Service::Scan)? {
        Some(channel) => Some(ScanClient::new(channel)),
        None => {
            tracing::warn!(
                "no scan peer configured: completed uploads wait in scanning for a verdict"
            );
            None
        }
    };
    let core = Core {
        pool,
        peers: Peers { signer, auth, scan },
        audit,
        config: config.clone(),
    };
    let mut jobs = Jobs::new();
    jobs.every(
        "database pool metrics",
        coffer_db::POOL_METRICS_EVERY,
        coffer_db::pool_metrics(core.pool.clone(), "runtime"),
    );
    let sweeper = core.clone();
    jobs.every(
        "stale-upload sweep",
        std::time::Duration::from_secs(config.sweep_interval_secs),
        move || {
            let sweeper = sweeper.clone();
            async move {
                let removed = crate::sweep::stale_uploads(&sweeper).await?;
                crate::metrics::metrics()
                    .sweep_removals
                    .inc_by(removed as u64);
                Ok::<_, crate::error::MetadataError>(removed)
            }
        },
    );
    let trash = core.clone();
    jobs.every(
        "trash retention",
        std::time::Duration::from_secs(config.sweep_interval_secs),
        move || {
            let trash = trash.clone();
            async move { crate::sweep::expired_trash(&trash).await }
        },
    );
    let deleter = core.clone();
    jobs.every(
        "object deletion sweep",
        std::time::Duration::from_secs(config.sweep_interval_secs),
        move || {
            let deleter = deleter.clone();
            async move {
                let deleted = crate::sweep::due_deletions(&deleter).await?;
                crate::metrics::metrics()
                    .deferred_deletions
                    .inc_by(deleted as u64);
                Ok::<_, crate::error::MetadataError>(deleted)
            }
        },
    );
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(MetadataServer::new(MetadataService::new(core)));
    ServiceApp::bind(server, jobs, service).await
}
