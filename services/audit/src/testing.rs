//! Starting a real audit service for other crates' tests (feature `testing`): its own database
//! and schema in the given cluster, roles, secrets (a fixed test signing key), loopback.

use coffer_testkit::secrets::{Materials, provision};
use std::path::Path;

use coffer_config::{DatabaseConfig, ServiceConfig};
use coffer_mesh::RunningServer;
use coffer_testkit::{DevCa, Postgres};
use coffer_token::MasterKeyRing;

use crate::{AuditConfig, build};

pub const OWNER_PASSWORD: &str = "audit-owner-pw";
pub const RUNTIME_PASSWORD: &str = "audit-runtime-pw";
/// The test signing seed (base64 of 32 bytes of 0x2a); its public key is what tests verify with.
pub const SIGNING_SEED: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// A running audit service and where its data is.
pub struct TestAudit {
    pub server: RunningServer,
    pub database: String,
}

pub async fn start(
    pg: &Postgres,
    ca: &DevCa,
    dir: &Path,
    ring: &MasterKeyRing,
    config: AuditConfig,
) -> anyhow::Result<TestAudit> {
    let database = pg
        .service_database("audit", OWNER_PASSWORD, RUNTIME_PASSWORD)
        .await?;
    let secrets = provision(
        &dir.join("audit"),
        "audit",
        crate::SECRETS,
        &Materials {
            ca,
            ring,
            db: Some(coffer_testkit::secrets::DbSecrets {
                owner_password: OWNER_PASSWORD,
                runtime_password: RUNTIME_PASSWORD,
                ca_pem: pg.ca_pem(),
            }),
            s3: None,
            signing_seed: Some(SIGNING_SEED),
        },
    )?;
    let service = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        database: Some(DatabaseConfig {
            port: pg.port(),
            name: database.clone(),
            schema: "audit".into(),
            owner_user: "audit_owner".into(),
            runtime_user: "audit_runtime".into(),
            pool_size: 16,
            ..DatabaseConfig::default()
        }),
        ..ServiceConfig::default()
    };
    let server = build(&service, &config).await?.spawn();
    Ok(TestAudit { server, database })
}
