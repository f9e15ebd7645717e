//! Starting a real auth service for other crates' tests and benchmarks (feature `testing`): its
//! own database and schema in a given cluster, the roles, the secrets directory, bound on
//! loopback. Never part of a production build.

use coffer_testkit::secrets::{Materials, provision};
use std::path::Path;

use coffer_config::{DatabaseConfig, ServiceConfig};
use coffer_mesh::RunningServer;
use coffer_testkit::{DevCa, Postgres};
use coffer_token::MasterKeyRing;

use crate::{AuthConfig, build};

pub const OWNER_PASSWORD: &str = "owner-pw";
pub const RUNTIME_PASSWORD: &str = "runtime-pw";

/// A running auth service, with the audit service it writes to.
pub struct TestAuth {
    pub server: RunningServer,
    /// The audit service auth appends to (started with auth's ring).
    pub audit: coffer_audit::testing::TestAudit,
    /// The token master ring it mints with.
    pub ring: MasterKeyRing,
    /// Its database in the cluster.
    pub database: String,
}

/// Starts auth in a fresh database of `pg`, with certificates from `ca` under `dir/auth`.
pub async fn start(
    pg: &Postgres,
    ca: &DevCa,
    dir: &Path,
    config: AuthConfig,
) -> anyhow::Result<TestAuth> {
    start_with_peers(pg, ca, dir, config, &[]).await
}

/// Like [`start`], with `peers` beside audit (metadata and scan, for the org purge).
pub async fn start_with_peers(
    pg: &Postgres,
    ca: &DevCa,
    dir: &Path,
    config: AuthConfig,
    peers: &[(&str, String)],
) -> anyhow::Result<TestAuth> {
    let database = pg
        .service_database("auth", OWNER_PASSWORD, RUNTIME_PASSWORD)
        .await?;
    let ring = MasterKeyRing::generate("k1");
    let audit = coffer_audit::testing::start(pg, ca, dir, &ring, Default::default()).await?;
    let secrets = provision(
        &dir.join("auth"),
        "auth",
        crate::SECRETS,
        &Materials {
            ca,
            ring: &ring,
            db: Some(coffer_testkit::secrets::DbSecrets {
                owner_password: OWNER_PASSWORD,
                runtime_password: RUNTIME_PASSWORD,
                ca_pem: pg.ca_pem(),
            }),
            s3: None,
            signing_seed: None,
        },
    )?;
    let service = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        peers: [("audit".to_owned(), audit.server.addr().to_string())]
            .into_iter()
            .chain(peers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
            .collect(),
        database: Some(DatabaseConfig {
            port: pg.port(),
            name: database.clone(),
            schema: "auth".into(),
            owner_user: "auth_owner".into(),
            runtime_user: "auth_runtime".into(),
            pool_size: 16,
            ..DatabaseConfig::default()
        }),
        ..ServiceConfig::default()
    };
    let server = build(&service, &config).await?.spawn();
    Ok(TestAuth {
        server,
        audit,
        ring,
        database,
    })
}
