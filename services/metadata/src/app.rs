//! Wiring: config → database → token ring → clients of storage-signer and auth → mesh server.

use anyhow::Context as _;
use coffer_config::ServiceConfig;
use coffer_mesh::{MeshClient, ServiceApp};
use coffer_proto::v1::audit_client::AuditClient;
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_server::MetadataServer;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;

use crate::config::MetadataConfig;
use crate::grpc::{MetadataService, policy};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Sweeps stale uploads every `every`, for as long as the process runs.
fn spawn_sweep(metadata: MetadataService, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match metadata.sweep_stale_uploads().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed stale uploads"),
                Err(error) => tracing::warn!(?error, "stale-upload sweep failed; will retry"),
            }
        }
    });
}

/// Migrates the schema, loads secrets, binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &MetadataConfig) -> anyhow::Result<ServiceApp> {
    config.validate()?;
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
    let signer =
        StorageSignerClient::new(mesh.channel("storage-signer", service.peer("storage-signer")?)?);
    let auth = AuthClient::new(mesh.channel("auth", service.peer("auth")?)?);
    let audit = AuditClient::new(mesh.channel("audit", service.peer("audit")?)?);
    let scan = match service.peers.get("scan") {
        Some(addr) => Some(ScanClient::new(mesh.channel("scan", addr)?)),
        None => {
            tracing::warn!(
                "no scan peer configured: completed uploads wait in scanning for a verdict"
            );
            None
        }
    };
    let metadata = MetadataService::new(pool, signer, auth, audit, scan, config.clone());
    spawn_sweep(
        metadata.clone(),
        std::time::Duration::from_secs(config.sweep_interval_secs.max(1)),
    );
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(MetadataServer::new(metadata));
    ServiceApp::bind(server, service).await
}
