//! The start-up every gRPC service shares: certificates from the secrets directory (watched for
//! rotation), a mesh server with the configured deadline and grace, the admin port, and running
//! until shutdown. A service's `App::build` adds its own parts between [`certs`] and
//! [`ServiceApp::bind`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use coffer_config::ServiceConfig;
use coffer_telemetry::{AdminServer, Readiness, serve_admin};

use crate::{
    BoundServer, CertStore, Jobs, MeshServer, Policy, RunningServer, TlsFiles, TokenVerifier,
};

/// Loads this service's mesh certificate and key and reloads them when the files change.
pub fn certs(service: &ServiceConfig) -> anyhow::Result<Arc<CertStore>> {
    let certs = CertStore::load(TlsFiles::in_dir(&service.secrets_dir))?;
    certs.spawn_watcher(Duration::from_secs(1));
    Ok(certs)
}

/// Loads this service's audience key ring (secret file `token-ring.toml`) and reloads it when the
/// file changes.
pub fn token_verifier(service: &ServiceConfig) -> anyhow::Result<TokenVerifier> {
    let verifier = TokenVerifier::from_file(
        &service
            .secrets()
            .require(coffer_config::SecretFile::AUDIENCE_RING.files[0])?,
        coffer_token::VerifyOptions::default(),
    )?;
    verifier.spawn_watcher(Duration::from_secs(1));
    Ok(verifier)
}

/// A mesh server for `service` with `policy`, its deadline and its drain grace.
pub fn server(service: &ServiceConfig, certs: Arc<CertStore>, policy: Policy) -> MeshServer {
    MeshServer::new(certs, policy)
        .request_timeout(Duration::from_millis(service.request_timeout_ms))
        .grace(Duration::from_millis(service.shutdown_grace_ms))
        .limits(service.limits.clone())
}

/// A built service: its mesh server bound, its admin port serving.
pub struct ServiceApp {
    server: BoundServer,
    admin: AdminServer,
    jobs: Jobs,
    grace: Duration,
}

impl std::fmt::Debug for ServiceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceApp")
            .field("grpc", &self.server.local_addr())
            .field("admin", &self.admin.addr)
            .finish()
    }
}

impl ServiceApp {
    /// Binds `server` on `service.listen` and the admin port on `service.admin_listen` (ready).
    /// The app owns `jobs`, the service's background work, and stops them when it stops.
    pub async fn bind(
        server: MeshServer,
        jobs: Jobs,
        service: &ServiceConfig,
    ) -> anyhow::Result<Self> {
        let server = server.bind(service.listen).await?;
        let readiness = Readiness::default();
        readiness.set(true);
        let admin = serve_admin(service.admin_listen, readiness).await?;
        Ok(ServiceApp {
            server,
            admin,
            jobs,
            grace: Duration::from_millis(service.shutdown_grace_ms),
        })
    }

    /// Returns the gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Returns the admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    /// Serves until `shutdown` resolves, then drains calls and stops the background jobs.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // Background work stops taking new work as soon as the shutdown starts, while calls drain.
        let stop_jobs = self.jobs.stopper();
        let served = self
            .server
            .serve(async move {
                shutdown.await;
                stop_jobs();
            })
            .await;
        self.jobs.shutdown(self.grace).await;
        self.admin.task.abort();
        Ok(served?)
    }

    /// Serves in the background of this process (tests); [`RunningServer::shutdown`] stops the
    /// background jobs too.
    pub fn spawn(self) -> RunningServer {
        self.server.spawn().with_jobs(self.jobs, self.grace)
    }
}

/// Everything a gRPC service's `main` does: load `--config` (with `COFFER_*` overrides, the
/// service's own `[section]`), start telemetry as `name`, build with `build`, serve until SIGTERM
/// or Ctrl-C, then drain. Arguments are `--config <file>` only.
pub async fn main<T, F, Fut>(name: &'static str, section: &str, build: F) -> anyhow::Result<()>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default + coffer_config::Validate,
    F: FnOnce(ServiceConfig, T) -> Fut,
    Fut: Future<Output = anyhow::Result<ServiceApp>>,
{
    use anyhow::Context as _;
    let mut args = std::env::args_os().skip(1);
    let config = match (args.next(), args.next(), args.next()) {
        (None, ..) => None,
        (Some(flag), Some(path), None) if flag == "--config" => {
            Some(std::path::PathBuf::from(path))
        }
        _ => anyhow::bail!("usage: coffer-{name} [--config <file>]"),
    };
    let (service, own) = coffer_config::load_service::<T>(config.as_deref(), section)?;
    let _telemetry = coffer_telemetry::init(name, &service.telemetry)?;
    let app = build(service, own)
        .await
        .with_context(|| format!("starting {name}"))?;
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "{name} serving");
    app.run(crate::shutdown_signal()).await
}
