//! Wiring: config → database → signing key → token ring → mesh server and admin port.

use anyhow::Context as _;
use coffer_auditlog::Signer;
use coffer_config::ServiceConfig;
use coffer_mesh::{ServiceApp, TokenVerifier};
use coffer_proto::v1::audit_server::AuditServer;
use coffer_token::VerifyOptions;

use crate::config::AuditConfig;
use crate::grpc::{AuditService, policy};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Migrates the schema, loads secrets, binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &AuditConfig) -> anyhow::Result<ServiceApp> {
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the audit schema")?;
    let signer = {
        use secrecy::ExposeSecret as _;
        Signer::from_text(
            &config.signing_key_id,
            secrets.string("audit-signing-key")?.expose_secret(),
        )
        .context("audit-signing-key")?
    };
    let verifier = TokenVerifier::from_file(
        &secrets.require("token-ring.toml")?,
        VerifyOptions::default(),
    )?;
    verifier.spawn_watcher(std::time::Duration::from_secs(1));
    let certs = coffer_mesh::app::certs(service)?;
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(verifier)
        .add_service(AuditServer::new(AuditService::new(
            pool,
            signer,
            config.clone(),
        )));
    ServiceApp::bind(server, service).await
}
