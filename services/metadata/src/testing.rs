//! Starting a real metadata service for other crates' tests (feature `testing`): its own
//! database and schema in the given cluster, roles, secrets, peers, loopback.

use std::path::Path;

use coffer_config::{DatabaseConfig, ServiceConfig};
use coffer_mesh::RunningServer;
use coffer_testkit::{DevCa, Postgres};
use coffer_token::{Audience, MasterKeyRing};

use crate::{MetadataConfig, build};

pub const OWNER_PASSWORD: &str = "metadata-owner-pw";
pub const RUNTIME_PASSWORD: &str = "metadata-runtime-pw";

/// A running metadata service and where its data is.
pub struct TestMetadata {
    pub server: RunningServer,
    pub database: String,
}

/// Starts metadata in a fresh database of `pg`, talking to `auth` and `signer` (addresses).
pub async fn start(
    pg: &Postgres,
    ca: &DevCa,
    dir: &Path,
    ring: &MasterKeyRing,
    auth: &str,
    signer: &str,
    config: MetadataConfig,
) -> anyhow::Result<TestMetadata> {
    pg.ensure_role("metadata_owner", OWNER_PASSWORD).await?;
    pg.ensure_role("metadata_runtime", RUNTIME_PASSWORD).await?;
    let database = pg.create_database("metadata").await?;
    pg.execute_as_superuser(
        &database,
        "CREATE SCHEMA metadata AUTHORIZATION metadata_owner;
         GRANT USAGE ON SCHEMA metadata TO metadata_runtime;",
    )
    .await?;
    let secrets = ca.write_service_dir(&dir.join("metadata"), "metadata")?;
    std::fs::write(
        secrets.join("token-ring.toml"),
        ring.derive_audience_ring(Audience::Metadata).to_toml(),
    )?;
    std::fs::write(secrets.join("db-owner-password"), OWNER_PASSWORD)?;
    std::fs::write(secrets.join("db-runtime-password"), RUNTIME_PASSWORD)?;
    let service = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        peers: [
            ("auth".to_owned(), auth.to_owned()),
            ("storage-signer".to_owned(), signer.to_owned()),
        ]
        .into(),
        database: Some(DatabaseConfig {
            port: pg.port(),
            name: database.clone(),
            schema: "metadata".into(),
            owner_user: "metadata_owner".into(),
            runtime_user: "metadata_runtime".into(),
            pool_size: 16,
            ..DatabaseConfig::default()
        }),
        ..ServiceConfig::default()
    };
    let server = build(&service, &config).await?.spawn();
    Ok(TestMetadata { server, database })
}
