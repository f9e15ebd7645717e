//! Wiring: config → object-store credentials → token ring → mesh server and admin port.

use anyhow::Context as _;
use coffer_config::ServiceConfig;
use coffer_mesh::ServiceApp;
use coffer_proto::v1::storage_signer_server::StorageSignerServer;

use crate::config::SignerConfig;
use crate::grpc::{SignerService, policy};
use crate::store::Store;

/// Builds the storage-signer: fails, naming the setting or file, if anything is missing.
pub async fn build(service: &ServiceConfig, config: &SignerConfig) -> anyhow::Result<ServiceApp> {
    coffer_config::Validate::validate(config)?;
    let secrets = service.secrets();
    let access_key = {
        use secrecy::ExposeSecret as _;
        secrets
            .string("s3-access-key-id")?
            .expose_secret()
            .to_owned()
    };
    let secret_key = secrets.string("s3-secret-access-key")?;
    let store = Store::new(config, &access_key, &secret_key)
        .context("configuring the object store client")?;
    let verifier = coffer_mesh::app::token_verifier(service)?;
    let certs = coffer_mesh::app::certs(service)?;
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(StorageSignerServer::new(SignerService::new(
            store,
            config.clone(),
        )));
    ServiceApp::bind(server, coffer_mesh::Jobs::new(), service).await
}
