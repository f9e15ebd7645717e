//! Starting a real scan service for tests (feature `testing`): its own database in the given
//! cluster, roles, secrets and peers, on loopback; and [`ScanStack`], the metadata stack with a
//! scan service wired both ways.

use coffer_testkit::secrets::{Materials, provision};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use coffer_config::{DatabaseConfig, ServiceConfig};
use coffer_mesh::RunningServer;
use coffer_metadata::testing::Stack;
use coffer_testkit::{DevCa, Postgres};
use coffer_token::MasterKeyRing;

use crate::{ScanConfig, build};

pub const OWNER_PASSWORD: &str = "scan-owner-pw";
pub const RUNTIME_PASSWORD: &str = "scan-runtime-pw";

/// The addresses of the services scan calls.
#[derive(Debug, Clone)]
pub struct Peers {
    pub auth: String,
    pub signer: String,
    pub metadata: String,
    pub audit: String,
}

/// How to run a scan service against one database: in this process, or as a child process.
#[derive(Debug, Clone)]
pub struct ScanSetup {
    pub service: ServiceConfig,
    pub config: ScanConfig,
    pub database: String,
}

impl ScanSetup {
    /// Prepares the database (once per setup), roles and secrets under `dir/scan`.
    pub async fn prepare(
        pg: &Postgres,
        ca: &DevCa,
        dir: &Path,
        ring: &MasterKeyRing,
        peers: &Peers,
        listen: SocketAddr,
        mut config: ScanConfig,
    ) -> anyhow::Result<ScanSetup> {
        // Every test stack runs the NSFW engine (scripts/install-deps converts the model).
        if config.nsfw.model.is_none() {
            config.nsfw.model = Some(coffer_testkit::nsfw_model());
        }
        // The service runs in the test's process: its engine children are the built binary.
        if config.sandbox.program.is_none() {
            config.sandbox.program = Some(coffer_testkit::workspace_bin("coffer-scan"));
        }
        let database = pg
            .service_database("scan", OWNER_PASSWORD, RUNTIME_PASSWORD)
            .await?;
        let secrets = provision(
            &dir.join("scan"),
            "scan",
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
                ("auth".to_owned(), peers.auth.clone()),
                ("storage-signer".to_owned(), peers.signer.clone()),
                ("metadata".to_owned(), peers.metadata.clone()),
                ("audit".to_owned(), peers.audit.clone()),
            ]
            .into(),
            database: Some(DatabaseConfig {
                port: pg.port(),
                name: database.clone(),
                schema: "scan".into(),
                owner_user: "scan_owner".into(),
                runtime_user: "scan_runtime".into(),
                pool_size: 8,
                ..DatabaseConfig::default()
            }),
            ..ServiceConfig::default()
        };
        Ok(ScanSetup {
            service,
            config,
            database,
        })
    }

    /// Starts the service in this process.
    pub async fn start(&self) -> anyhow::Result<RunningServer> {
        Ok(build(&self.service, &self.config).await?.spawn())
    }

    /// Writes a config file for the `coffer-scan` binary with `config` instead of the setup's
    /// (and a listen port of its own), and returns its path.
    pub fn write_config(&self, path: &Path, config: &ScanConfig) -> anyhow::Result<PathBuf> {
        let mut config = config.clone();
        if config.nsfw.model.is_none() {
            config.nsfw.model = Some(coffer_testkit::nsfw_model());
        }
        let mut service = self.service.clone();
        service.listen = "127.0.0.1:0".parse()?;
        let mut table = toml::Table::try_from(&service)?;
        table.insert("scan".into(), toml::Value::try_from(&config)?);
        std::fs::write(path, toml::to_string(&table)?)?;
        Ok(path.to_owned())
    }
}

/// A signed-up user of a fresh org.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub org: uuid::Uuid,
    pub token: String,
}

impl TestUser {
    /// Runs `f` with this user's token as the call context.
    pub async fn call<F: Future>(&self, f: F) -> F::Output {
        coffer_mesh::CallContext {
            token: Some(std::sync::Arc::from(self.token.as_str())),
            request_id: "req-test".into(),
            deadline: None,
        }
        .scope(f)
        .await
    }
}

/// The metadata stack (Postgres, auth, audit, S3, storage-signer, metadata) plus a scan service
/// that metadata queues scans at and that sends verdicts back to metadata.
pub struct ScanStack {
    pub stack: Stack,
    pub setup: ScanSetup,
    pub scan: RunningServer,
}

impl ScanStack {
    pub async fn start(
        metadata: coffer_metadata::MetadataConfig,
        config: ScanConfig,
    ) -> anyhow::Result<ScanStack> {
        Self::start_full(metadata, Default::default(), config).await
    }

    /// Like [`ScanStack::start`], with auth configured by `auth`.
    pub async fn start_full(
        metadata: coffer_metadata::MetadataConfig,
        auth: coffer_metadata::testing::AuthConfig,
        config: ScanConfig,
    ) -> anyhow::Result<ScanStack> {
        // Metadata needs scan's address and scan needs metadata's: reserve scan's port first.
        let port = coffer_testkit::free_port()?;
        let listen: SocketAddr = ([127, 0, 0, 1], port).into();
        let stack = Stack::start_full(metadata, auth, Some(listen)).await?;
        let peers = Peers {
            auth: stack.auth.server.addr().to_string(),
            signer: stack.signer.addr().to_string(),
            metadata: stack.metadata.server.addr().to_string(),
            audit: stack.audit().server.addr().to_string(),
        };
        let setup = ScanSetup::prepare(
            stack.pg,
            &stack.ca,
            stack.dir.path(),
            stack.ring(),
            &peers,
            listen,
            config,
        )
        .await?;
        let scan = setup.start().await?;
        Ok(ScanStack { stack, setup, scan })
    }

    /// Signs a new org up through auth (as the gateway would) and returns its id and a user
    /// token for every service a request may reach. Scan workers mint service tokens for real
    /// orgs only, so tests use real ones.
    pub async fn user(&self) -> anyhow::Result<TestUser> {
        use coffer_proto::v1 as pb;
        let mut auth = coffer_proto::v1::auth_client::AuthClient::new(
            self.stack
                .mesh_as("gateway")?
                .channel("auth", &self.stack.auth.server.addr().to_string())?,
        );
        let email = format!("{}@example.test", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery staple";
        let signed = auth
            .signup(pb::SignupRequest {
                org_name: "scan test org".into(),
                email: email.clone(),
                password: password.into(),
            })
            .await?
            .into_inner();
        let session = auth
            .login(pb::LoginRequest {
                email,
                password: password.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .session_id;
        let token = auth
            .authenticate(pb::AuthenticateRequest {
                credential: Some(pb::authenticate_request::Credential::SessionId(session)),
                audiences: [
                    "auth",
                    "gateway",
                    "metadata",
                    "storage-signer",
                    "audit",
                    "scan",
                ]
                .map(String::from)
                .to_vec(),
                request_id: "req-test".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .token;
        Ok(TestUser {
            org: signed.org_id.parse()?,
            token,
        })
    }

    /// A scan client calling as `service`.
    pub fn scan_as(
        &self,
        service: &str,
    ) -> anyhow::Result<coffer_proto::v1::scan_client::ScanClient<coffer_mesh::MeshChannel>> {
        Ok(coffer_proto::v1::scan_client::ScanClient::new(
            self.stack
                .mesh_as(service)?
                .channel("scan", &self.scan.addr().to_string())?,
        ))
    }
}
