use std::sync::Arc;

use coffer_auth::AuthConfig;
use coffer_mesh::{CallContext, CertStore, MeshChannel, MeshClient, RunningServer, TlsFiles};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_testkit::{DevCa, Postgres};
use coffer_token::{Audience, MasterKeyRing, Verifier, VerifyOptions};

pub const PASSWORD: &str = "correct horse battery staple 42";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub ring: MasterKeyRing,
    pub pg: &'static Postgres,
    pub db: String,
    pub server: RunningServer,
    /// The audit service auth writes to.
    pub audit: coffer_audit::testing::TestAudit,
    /// The gateway's client, made once: a fresh certificate per call would make each call slow
    /// enough to outlast a 1 s login lock.
    gateway: std::sync::OnceLock<AuthClient<MeshChannel>>,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(AuthConfig::default()).await
    }

    pub async fn start_with(config: AuthConfig) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let pg = Postgres::shared().await?;
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("auth test CA")?;
        let auth = coffer_auth::testing::start(pg, &ca, dir.path(), config).await?;
        Ok(Harness {
            dir,
            ca,
            ring: auth.ring,
            pg,
            db: auth.database,
            server: auth.server,
            audit: auth.audit,
            gateway: std::sync::OnceLock::new(),
        })
    }

    /// A client presenting a mesh certificate for `service`.
    pub fn client_as(&self, service: &str) -> anyhow::Result<AuthClient<MeshChannel>> {
        let dir = self
            .ca
            .write_service_dir(&self.dir.path().join(format!("as-{service}")), service)?;
        let client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&dir))?)?;
        Ok(AuthClient::new(
            client.channel("auth", &self.server.addr().to_string())?,
        ))
    }

    pub fn gateway(&self) -> anyhow::Result<AuthClient<MeshChannel>> {
        if let Some(client) = self.gateway.get() {
            return Ok(client.clone());
        }
        let client = self.client_as("gateway")?;
        Ok(self.gateway.get_or_init(|| client).clone())
    }

    pub fn verifier(&self, audience: Audience) -> Verifier {
        Verifier::new(
            &self.ring.derive_audience_ring(audience),
            VerifyOptions::default(),
        )
    }

    /// Signs up a new org with `email` and logs in; returns (org id, session id).
    pub async fn account(&self, email: &str) -> anyhow::Result<(String, String)> {
        let mut gw = self.gateway()?;
        let created = gw
            .signup(pb::SignupRequest {
                org_name: format!("org of {email}"),
                email: email.into(),
                password: PASSWORD.into(),
            })
            .await?
            .into_inner();
        let login = gw
            .login(pb::LoginRequest {
                email: email.into(),
                password: PASSWORD.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok((created.org_id, login.session_id))
    }

    /// Exchanges a credential for a token with the `auth` and `audit` tags (and `extra`).
    pub async fn token(
        &self,
        credential: Credential,
        extra: &[&str],
    ) -> Result<String, tonic::Status> {
        // As the gateway asks: auth's own tag and audit's (auth appends with the user's token).
        let mut audiences = vec!["auth".to_owned(), "audit".to_owned()];
        audiences.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut gw = self
            .gateway()
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        gw.authenticate(pb::AuthenticateRequest {
            credential: Some(credential),
            audiences,
            request_id: "req-test".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().token)
    }

    /// Runs `f` with `token` as the current call's user token (as the gateway does).
    pub async fn as_user<F: Future>(token: &str, f: F) -> F::Output {
        CallContext {
            token: Some(Arc::from(token)),
            request_id: "req-test".into(),
            deadline: None,
        }
        .scope(f)
        .await
    }
}

/// Returns the shared error code and field a status carries.
pub fn code(status: &tonic::Status) -> (coffer_errors::ErrorCode, String) {
    coffer_errors::from_status(status)
}
