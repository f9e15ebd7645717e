//! Wiring: config → database → key ring → mesh server and admin port.

use std::time::Duration;

use anyhow::Context as _;
use coffer_config::ServiceConfig;
use coffer_mesh::{ServiceApp, TokenVerifier};
use coffer_proto::v1::auth_server::AuthServer;
use coffer_token::{Audience, MasterKeyRing, Minter, Verifier, VerifyOptions};

use crate::config::AuthConfig;
use crate::grpc::{AuthService, policy};
use crate::passwords::Hasher;
use crate::totp::SeedCipher;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

type AuditClient = coffer_proto::v1::audit_client::AuditClient<coffer_mesh::MeshChannel>;

/// Purges orgs whose deletion window has passed, every `every`, for as long as the process runs.
/// Each purge is first appended to the org's audit log as `org.purge` (a system event of auth);
/// an org whose event the log did not take is left for the next run.
fn spawn_purge_job(pool: sqlx::PgPool, audit: AuditClient, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let due = match crate::store::due_orgs(&pool).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "org purge failed; will retry");
                    continue;
                }
            };
            for org in due {
                let appended = audit
                    .clone()
                    .append(coffer_proto::v1::AppendRequest {
                        action: "org.purge".into(),
                        target: format!("org:{org}"),
                        outcome: "success".into(),
                        org_id: org.to_string(),
                    })
                    .await;
                if let Err(status) = appended {
                    tracing::warn!(code = ?status.code(), "org purge not audited; will retry");
                    continue;
                }
                match crate::store::purge_org(&pool, org).await {
                    Ok(true) => tracing::info!(%org, "purged a deleted org"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "org purge failed; will retry"),
                }
            }
        }
    });
}

/// Migrates the schema, loads secrets and binds both ports. Fails naming what is wrong.
pub async fn build(service: &ServiceConfig, config: &AuthConfig) -> anyhow::Result<ServiceApp> {
    let secrets = service.secrets();
    let database = service
        .database
        .as_ref()
        .context("missing [database] section")?;
    let pool = coffer_db::open(database, &secrets, &MIGRATOR)
        .await
        .context("opening the auth schema")?;
    let ring = MasterKeyRing::from_file(&secrets.require("token-master.toml")?)?;
    // Auth verifies its own tag on the tokens the gateway forwards back to it.
    let verifier = Verifier::new(
        &ring.derive_audience_ring(Audience::Auth),
        VerifyOptions::default(),
    );
    let hasher = Hasher::new(config.password_min_chars)?;
    let seeds = {
        use secrecy::ExposeSecret as _;
        SeedCipher::new(secrets.key("totp-key", 32)?.expose_secret())?
    };
    let certs = coffer_mesh::app::certs(service)?;
    let audit = coffer_proto::v1::audit_client::AuditClient::new(
        coffer_mesh::MeshClient::new(certs.clone())?.channel("audit", service.peer("audit")?)?,
    );
    spawn_purge_job(
        pool.clone(),
        audit.clone(),
        Duration::from_secs(config.purge_interval_secs.max(1)),
    );
    let server = coffer_mesh::app::server(service, certs, policy()?)
        .token_verifier(TokenVerifier::fixed(verifier))
        .add_service(AuthServer::new(AuthService::new(
            pool,
            audit,
            hasher,
            Minter::new(&ring),
            seeds,
            config.clone(),
        )));
    ServiceApp::bind(server, service).await
}
