//! A running echo server with the full stack, its CA, and helpers to call it as anyone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use coffer_mesh::echo::EchoService;
use coffer_mesh::{CertStore, MeshClient, MeshServer, RunningServer, TlsFiles, TokenVerifier};
use coffer_proto::testing::v1::echo_client::EchoClient;
use coffer_testkit::{DevCa, IssuedCert};
use coffer_token::{
    Audience, MasterKeyRing, Minter, Role, Scopes, Subject, Verifier, VerifyOptions,
};
use uuid::Uuid;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub ring: MasterKeyRing,
    pub echo: EchoService,
    pub server: RunningServer,
    pub server_dir: PathBuf,
}

impl Fixture {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(coffer_config::LoadLimits::default()).await
    }

    /// With these admission limits.
    pub async fn start_with(limits: coffer_config::LoadLimits) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("mesh test CA")?;
        let server_dir = ca.write_service_dir(&dir.path().join("echo"), "echo")?;
        let ring = MasterKeyRing::generate("k1");
        let verifier = Verifier::new(
            &ring.derive_audience_ring(Audience::Metadata),
            VerifyOptions::default(),
        );
        let echo = EchoService::default();
        let store = CertStore::load(TlsFiles::in_dir(&server_dir))?;
        store.spawn_watcher(std::time::Duration::from_millis(100));
        let server = MeshServer::new(store, EchoService::policy()?)
            .token_verifier(TokenVerifier::fixed(verifier))
            .limits(limits)
            .add_service(echo.clone().server())
            .bind("127.0.0.1:0".parse()?)
            .await?
            .spawn();
        Ok(Fixture {
            dir,
            ca,
            ring,
            echo,
            server,
            server_dir,
        })
    }

    pub fn addr(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn handler_calls(&self) -> usize {
        self.echo.calls.load(Ordering::SeqCst)
    }

    /// A mesh client presenting a valid certificate for `service`.
    pub fn client_as(&self, service: &str) -> anyhow::Result<EchoClient<coffer_mesh::MeshChannel>> {
        let dir = self
            .ca
            .write_service_dir(&self.dir.path().join(format!("client-{service}")), service)?;
        self.client_from_dir(&dir)
    }

    pub fn client_from_dir(
        &self,
        dir: &Path,
    ) -> anyhow::Result<EchoClient<coffer_mesh::MeshChannel>> {
        let store = CertStore::load(TlsFiles::in_dir(dir))?;
        let client = MeshClient::new(store)?;
        Ok(EchoClient::new(client.channel("echo", &self.addr())?))
    }

    pub fn subject() -> Subject {
        Subject {
            user_id: Uuid::from_u128(7),
            org_id: Uuid::from_u128(42),
            role: Role::Admin,
            scopes: Scopes::all(),
            credential: coffer_token::Credential::Session,
            request_id: "req-fixture".into(),
        }
    }

    pub fn token(&self, audiences: &[Audience], issued_at: i64, ttl: i64) -> String {
        Minter::new(&self.ring)
            .mint(&Self::subject(), audiences, issued_at, ttl)
            .unwrap()
    }

    pub fn valid_token(&self) -> String {
        self.token(&[Audience::Metadata], coffer_token::unix_now(), 60)
    }
}

/// Builds a raw rustls client config presenting `cert` (if any), trusting `ca_pem`, limited to
/// `versions`: for clients the mesh kit itself would never build.
pub fn raw_client_config(
    ca_pem: &str,
    cert: Option<&IssuedCert>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)?
    .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes())?],
            PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Opens a TLS connection to the echo server with `config` and makes one gRPC Ping over it.
/// Returns Ok only if the whole call succeeded.
pub async fn ping_with(config: rustls::ClientConfig, addr: &str) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let target = addr.to_owned();
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let config = config.clone();
        let target = target.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&target).await?;
            let name = rustls_pki_types::ServerName::try_from("echo.coffer.internal").unwrap();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect_with_connector(connector)
        .await?;
    EchoClient::new(channel)
        .ping(coffer_proto::testing::v1::EchoRequest {
            message: "hi".into(),
        })
        .await?;
    Ok(())
}

/// An Echo request carrying `token` as its user token.
pub fn with_token(
    token: &str,
    message: &str,
) -> tonic::Request<coffer_proto::testing::v1::EchoRequest> {
    let mut req = tonic::Request::new(coffer_proto::testing::v1::EchoRequest {
        message: message.into(),
    });
    req.metadata_mut()
        .insert(coffer_token::METADATA_KEY, token.parse().unwrap());
    req
}
