//! Starting a real metadata service for other crates' tests (feature `testing`): its own
//! database and schema in the given cluster, roles, secrets, peers, loopback.

use coffer_testkit::secrets::{Materials, provision};
use std::path::Path;

use coffer_config::{DatabaseConfig, ServiceConfig};
use coffer_mesh::RunningServer;
use coffer_testkit::{DevCa, Postgres};
use coffer_token::MasterKeyRing;

use crate::{MetadataConfig, build};

/// Auth's config, for stacks that set it ([`Stack::start_full`]).
pub use coffer_auth::AuthConfig;

pub const OWNER_PASSWORD: &str = "metadata-owner-pw";
pub const RUNTIME_PASSWORD: &str = "metadata-runtime-pw";

/// A running metadata service and where its data is.
pub struct TestMetadata {
    pub server: RunningServer,
    pub database: String,
}

/// The addresses of the services metadata calls.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a> {
    pub auth: &'a str,
    pub signer: &'a str,
    pub audit: &'a str,
    /// None: no scan service; files wait in `scanning` until a test records a verdict.
    pub scan: Option<&'a str>,
}

/// Starts metadata in a fresh database of `pg`, listening on `listen`, talking to `peers`.
pub async fn start(
    pg: &Postgres,
    ca: &DevCa,
    dir: &Path,
    ring: &MasterKeyRing,
    listen: std::net::SocketAddr,
    peers: Peers<'_>,
    config: MetadataConfig,
) -> anyhow::Result<TestMetadata> {
    let database = pg
        .service_database("metadata", OWNER_PASSWORD, RUNTIME_PASSWORD)
        .await?;
    let secrets = provision(
        &dir.join("metadata"),
        "metadata",
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
            signing_seed: None,
        },
    )?;
    let service = ServiceConfig {
        listen,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        peers: [
            ("auth".to_owned(), peers.auth.to_owned()),
            ("storage-signer".to_owned(), peers.signer.to_owned()),
            ("audit".to_owned(), peers.audit.to_owned()),
        ]
        .into_iter()
        .chain(peers.scan.map(|a| ("scan".to_owned(), a.to_owned())))
        .collect(),
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

/// Everything metadata needs, running for real in this process: Postgres (the shared cluster),
/// auth, the embedded S3 server, storage-signer, audit and metadata, all over mTLS with one dev
/// CA.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub pg: &'static Postgres,
    pub s3: coffer_testkit::S3,
    pub auth: coffer_auth::testing::TestAuth,
    pub signer: RunningServer,
    pub metadata: TestMetadata,
}

/// The bucket the stack's objects live in.
pub const BUCKET: &str = "coffer";

impl Stack {
    /// A stack without a scan service: tests move files on with [`Stack::verdict`].
    pub async fn start(config: MetadataConfig) -> anyhow::Result<Self> {
        Self::start_with_scan(config, None).await
    }

    /// A stack whose metadata queues scans at `scan` (a scan service the caller starts there).
    pub async fn start_with_scan(
        config: MetadataConfig,
        scan: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        Self::start_full(config, Default::default(), scan).await
    }

    /// Like [`Stack::start_with_scan`], with auth configured by `auth`. Auth knows metadata
    /// (and scan) for the org purge: metadata's port is reserved before auth starts.
    pub async fn start_full(
        config: MetadataConfig,
        auth: AuthConfig,
        scan: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let pg = Postgres::shared().await?;
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("stack test CA")?;
        let listen: std::net::SocketAddr = ([127, 0, 0, 1], coffer_testkit::free_port()?).into();
        let mut auth_peers = vec![("metadata", listen.to_string())];
        if let Some(scan) = scan {
            auth_peers.push(("scan", scan.to_string()));
        }
        let auth =
            coffer_auth::testing::start_with_peers(pg, &ca, dir.path(), auth, &auth_peers).await?;
        let s3 = coffer_testkit::S3::start().await?;
        let signer = coffer_storage_signer::testing::start(
            &ca,
            dir.path(),
            &auth.ring,
            &s3,
            BUCKET,
            Default::default(),
        )
        .await?;
        let metadata = start(
            pg,
            &ca,
            dir.path(),
            &auth.ring,
            listen,
            Peers {
                auth: &auth.server.addr().to_string(),
                signer: &signer.addr().to_string(),
                audit: &auth.audit.server.addr().to_string(),
                scan: scan.map(|a| a.to_string()).as_deref(),
            },
            config,
        )
        .await?;
        Ok(Stack {
            dir,
            ca,
            pg,
            s3,
            auth,
            signer,
            metadata,
        })
    }

    /// The audit service every other service of the stack appends to (auth's).
    pub fn audit(&self) -> &coffer_audit::testing::TestAudit {
        &self.auth.audit
    }

    /// The token master ring auth mints with.
    pub fn ring(&self) -> &MasterKeyRing {
        &self.auth.ring
    }

    /// A mesh client presenting a certificate for `service` (written under the stack's dir).
    pub fn mesh_as(&self, service: &str) -> anyhow::Result<coffer_mesh::MeshClient> {
        let dir = self
            .ca
            .write_service_dir(&self.dir.path().join(format!("as-{service}")), service)?;
        Ok(coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
            coffer_mesh::TlsFiles::in_dir(&dir),
        )?)?)
    }

    /// A metadata client calling as `service`.
    pub fn metadata_as(
        &self,
        service: &str,
    ) -> anyhow::Result<coffer_proto::v1::metadata_client::MetadataClient<coffer_mesh::MeshChannel>>
    {
        Ok(coffer_proto::v1::metadata_client::MetadataClient::new(
            self.mesh_as(service)?
                .channel("metadata", &self.metadata.server.addr().to_string())?,
        ))
    }

    /// A storage-signer client calling as `service`.
    pub fn signer_as(
        &self,
        service: &str,
    ) -> anyhow::Result<
        coffer_proto::v1::storage_signer_client::StorageSignerClient<coffer_mesh::MeshChannel>,
    > {
        Ok(
            coffer_proto::v1::storage_signer_client::StorageSignerClient::new(
                self.mesh_as(service)?
                    .channel("storage-signer", &self.signer.addr().to_string())?,
            ),
        )
    }

    /// Records a scan verdict as the scan service does (for stacks without one).
    pub async fn verdict(&self, org: &str, file: &str, verdict: &str) -> anyhow::Result<()> {
        // As the scan of bytes that match the declared SHA-256 (when one was) says it.
        let declared: Option<String> = {
            use sqlx::Connection as _;
            let mut conn =
                sqlx::PgConnection::connect(&self.pg.superuser_url(&self.metadata.database))
                    .await?;
            sqlx::query_scalar("SELECT sha256 FROM metadata.files WHERE id = $1::uuid")
                .bind(file)
                .fetch_optional(&mut conn)
                .await?
                .flatten()
        };
        self.metadata_as("scan")?
            .record_verdict(coffer_proto::v1::RecordVerdictRequest {
                org_id: org.into(),
                file_id: file.into(),
                verdict: coffer_kit::vocab::Verdict::parse(verdict)
                    .map_or(0, coffer_kit::vocab::Verdict::to_wire),
                sha256: declared.unwrap_or_default(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }
}
