//! Starting a real gateway in tests and benchmarks (feature `testing`): a mesh certificate and a
//! public certificate for `localhost` from `ca`, a fresh cookie ring, loopback ports, and
//! `https://localhost:<port>` as the public URL unless the config names one.

use coffer_testkit::secrets::{Materials, provision};
use std::net::SocketAddr;
use std::path::Path;

use coffer_config::{LoadLimits, ServiceConfig};
use coffer_testkit::DevCa;
use coffer_token::MasterKeyRing;

use crate::{App, GatewayConfig};

/// A running gateway.
#[derive(Debug)]
pub struct TestGateway {
    /// `https://localhost:<port>`.
    pub base: String,
    pub admin: SocketAddr,
}

/// Starts a gateway under `dir/gateway` talking to auth, metadata, audit and scan at the given
/// addresses, with the default admission limits.
pub async fn start(
    ca: &DevCa,
    dir: &Path,
    auth: &str,
    metadata: &str,
    audit: &str,
    scan: &str,
    config: GatewayConfig,
) -> anyhow::Result<TestGateway> {
    let peers = Peers {
        auth,
        metadata,
        audit,
        scan,
    };
    start_limited(ca, dir, &peers, config, LoadLimits::default()).await
}

/// Where the gateway's peers listen.
#[derive(Debug, Clone, Copy)]
pub struct Peers<'a> {
    pub auth: &'a str,
    pub metadata: &'a str,
    pub audit: &'a str,
    pub scan: &'a str,
}

/// Like [`start`], with these admission limits (`[limits]`).
pub async fn start_limited(
    ca: &DevCa,
    dir: &Path,
    peers: &Peers<'_>,
    mut config: GatewayConfig,
    limits: LoadLimits,
) -> anyhow::Result<TestGateway> {
    let Peers {
        auth,
        metadata,
        audit,
        scan,
    } = *peers;
    // The gateway verifies no user token itself: no ring of the mesh's goes into its secrets.
    let unused = MasterKeyRing::generate("unused");
    let secrets = provision(
        &dir.join("gateway"),
        "gateway",
        crate::SECRETS,
        &Materials {
            ca,
            ring: &unused,
            db: None,
            s3: None,
            signing_seed: None,
        },
    )?;
    let service = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        peers: [
            ("auth".to_owned(), auth.to_owned()),
            ("metadata".to_owned(), metadata.to_owned()),
            ("audit".to_owned(), audit.to_owned()),
            ("scan".to_owned(), scan.to_owned()),
        ]
        .into(),
        limits,
        ..ServiceConfig::default()
    };
    // A fixed port, so the public URL can name it before the gateway starts.
    let port = coffer_testkit::free_port()?;
    config.public_listen = format!("127.0.0.1:{port}").parse()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("https://localhost:{port}"));
    }
    let app = App::build(&service, &config).await?;
    let gateway = TestGateway {
        base: format!("https://localhost:{}", app.public_addr().port()),
        admin: app.admin_addr(),
    };
    tokio::spawn(app.run(std::future::pending()));
    Ok(gateway)
}
