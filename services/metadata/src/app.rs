//! Wiring: config → database → token ring → clients of storage-signer and auth → mesh server.

use anyhow::Context as _;
use coffer_config::ServiceConfig;
use coffer_mesh::{MeshClient, ServiceApp, TokenVerifier};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_server::MetadataServer;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_token::VerifyOptions;

use crate::config::MetadataConfig;
use crate::grpc::{MetadataService, policy};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Migrates the schema, loads secrets, binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &MetadataConfig) -> anyhow::Result<ServiceApp> {
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the metadata schema")?;
    let verifier = TokenVerifier::from_file(
        &secrets.require("token-ring.toml")?,
        VerifyOptions::default(),
    )?;
    verifier.spawn_watcher(std::time::Duration::from_secs(1));
    let certs = coffer_mesh::app::certs(service)?;
    let mesh = MeshClient::new(certs.clone())?;
    let signer =
        StorageSignerClient::new(mesh.channel("storage-signer", service.peer("storage-signer")?)?);
    let auth = AuthClient::new(mesh.channel("auth", service.peer("auth")?)?);
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(MetadataServer::new(MetadataService::new(
            pool,
            signer,
            auth,
            config.clone(),
        )));
    ServiceApp::bind(server, service).await
}
