//! Wiring: config → object-store credentials → token ring → mesh server and admin port.

use anyhow::Context as _;
use coffer_config::{SecretFile, SecretKind, ServiceConfig};
use coffer_mesh::ServiceApp;
use coffer_proto::v1::storage_signer_server::StorageSignerServer;

use crate::config::SignerConfig;
use crate::grpc::{SignerService, policy};
use crate::store::Store;

/// The object store's credentials: only storage-signer holds them.
pub const STORE_CREDENTIALS: SecretFile = SecretFile {
    kind: SecretKind::StoreCredentials,
    files: &["s3-access-key-id", "s3-secret-access-key"],
    purpose: "the object store's access key",
};

/// The services storage-signer calls: none (the network policies are checked against this list).
pub const PEERS: &[coffer_token::Service] = &[];

/// Every secret storage-signer reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[
    SecretFile::MESH_IDENTITY,
    SecretFile::AUDIENCE_RING,
    STORE_CREDENTIALS,
];

/// Builds the storage-signer: fails, naming the setting or file, if anything is missing.
pub async fn build(service: &ServiceConfig, config: &SignerConfig) -> anyhow::Result<ServiceApp> {
    coffer_config::Validate::validate(config)?;
    crate::metrics::register();
    let secrets = service.secrets();
    secrets.check(SECRETS)?;
    let [access_file, secret_file] = STORE_CREDENTIALS.files else {
        unreachable!("a key id and a secret key")
    };
    let access_key = {
        use secrecy::ExposeSecret as _;
        secrets.string(access_file)?.expose_secret().to_owned()
    };
    let secret_key = secrets.string(secret_file)?;
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
