//! A mesh gRPC server: mTLS accept loop with peer identities, the layer stack, gRPC health and
//! reflection, per-call deadlines and graceful shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use coffer_config::LoadLimits;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::Connected;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;
use tower_service::Service;

use crate::admission::Admission;
use crate::context::PeerInfo;
use crate::identity::identity_of;
use crate::layers::{AdmissionLayer, AllowListLayer, ObserveLayer, RequestIdLayer, TokenLayer};
use crate::policy::{Policy, PolicyError};
use crate::tls::{CertStore, TlsError, server_config};
use crate::token::TokenVerifier;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

// === impl MeshStream ===

pin_project_lite::pin_project! {
    /// A TLS connection from a verified mesh peer. Writes are buffered until hyper flushes, so a
    /// response's frames go out as one TLS record and one syscall instead of one each.
    pub struct MeshStream {
        #[pin]
        inner: BufWriter<TlsStream<TcpStream>>,
        peer: PeerInfo,
        // One of the server's connection slots, freed when the connection closes.
        slot: tokio::sync::OwnedSemaphorePermit,
    }
}

impl Connected for MeshStream {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for MeshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl AsyncWrite for MeshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Option<MeshStream> {
    let remote_addr = tcp.peer_addr().ok();
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            coffer_telemetry::metrics().tls_handshake_failures.inc();
            tracing::debug!(%error, "mesh tls handshake failed");
            return None;
        }
        Err(_) => {
            coffer_telemetry::metrics().tls_handshake_failures.inc();
            tracing::debug!("mesh tls handshake timed out");
            return None;
        }
    };
    // The verifier already refused certificates without an identity; read it for the request.
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| identity_of(cert).ok())?;
    Some(MeshStream {
        inner: BufWriter::new(tls),
        peer: PeerInfo {
            identity,
            remote_addr,
        },
        slot,
    })
}

fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    max_connections: usize,
) -> (
    ReceiverStream<Result<MeshStream, io::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let task = tokio::spawn(async move {
        loop {
            // At the bound, new connections wait in the kernel's backlog until one closes.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            // Handshakes run beside the loop so that one slow client cannot stall others.
            tokio::spawn(async move {
                if let Some(stream) = handshake(acceptor, tcp, slot).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    (ReceiverStream::new(rx), task)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

// === impl MeshServer ===

/// Builds a mesh server: add services, then [`MeshServer::bind`].
pub struct MeshServer {
    store: Arc<CertStore>,
    policy: Policy,
    verifier: Option<TokenVerifier>,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    request_timeout: Duration,
    grace: Duration,
    limits: LoadLimits,
}

impl std::fmt::Debug for MeshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshServer")
            .field("identity", self.store.identity())
            .field("services", &self.service_names)
            .finish_non_exhaustive()
    }
}

impl MeshServer {
    /// Starts a server that presents `store`'s certificate and enforces `policy`.
    pub fn new(store: Arc<CertStore>, policy: Policy) -> Self {
        MeshServer {
            store,
            policy,
            verifier: None,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            request_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            limits: LoadLimits::default(),
        }
    }

    /// How many calls and connections the server takes on at once (see [`crate::admission`]).
    pub fn limits(mut self, limits: LoadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Verifies user tokens with `verifier` (without one, token-requiring RPCs are refused).
    pub fn token_verifier(mut self, verifier: TokenVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The longest any call may run; a shorter `grpc-timeout` from the caller wins.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long in-flight calls may take to finish after shutdown starts.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Adds a generated tonic service. Its RPCs must all have rules: checked at [`Self::bind`].
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(svc);
        self
    }

    /// Checks the policy, binds `addr` and returns the server ready to run.
    pub async fn bind(mut self, addr: SocketAddr) -> Result<BoundServer, ServeError> {
        for name in &self.service_names {
            self.policy.check_covers(descriptor_sets(), name)?;
        }
        for path in self.policy.paths() {
            coffer_telemetry::metrics().init_rpc(path);
        }
        let tls = server_config(self.store.clone())?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in &self.service_names {
            reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let mut reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for set in descriptor_sets() {
            reflection = reflection.register_encoded_file_descriptor_set(set);
        }
        let reflection = reflection
            .build_v1()
            .map_err(|e| ServeError::Reflection(e.to_string()))?;
        self.routes.add_service(health).add_service(reflection);

        Ok(BoundServer {
            local_addr,
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            routes: self.routes,
            policy: Arc::new(self.policy),
            verifier: self.verifier,
            reporter,
            service_names: self.service_names,
            request_timeout: self.request_timeout,
            grace: self.grace,
            limits: self.limits,
        })
    }
}

/// The descriptor sets of the services a server may carry: the wire contract, and with the
/// `testing` feature the test-only Echo.
fn descriptor_sets() -> &'static [&'static [u8]] {
    &[
        coffer_proto::FILE_DESCRIPTOR_SET,
        #[cfg(feature = "testing")]
        coffer_proto::testing::FILE_DESCRIPTOR_SET,
    ]
}

/// A bound server: its address is known; [`BoundServer::serve`] runs it.
pub struct BoundServer {
    local_addr: SocketAddr,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    routes: RoutesBuilder,
    policy: Arc<Policy>,
    verifier: Option<TokenVerifier>,
    reporter: tonic_health::server::HealthReporter,
    service_names: Vec<&'static str>,
    request_timeout: Duration,
    grace: Duration,
    limits: LoadLimits,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// Returns the address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops accepting, and lets
    /// in-flight calls finish within the grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let stack = ServiceBuilder::new()
            // Outermost: every response, refusals included, carries a request id.
            .layer(RequestIdLayer)
            // Spans and RED metrics see the refusals of the layers below.
            .layer(ObserveLayer)
            // Room for the call, before any work is spent on it.
            .layer(AdmissionLayer::new(Admission::new(&self.limits)))
            // Who may call, decided from the certificate before any token work.
            .layer(AllowListLayer::new(self.policy.clone()))
            // Who the user is; innermost so handlers always see a verified caller.
            .layer(TokenLayer::new(self.policy.clone(), self.verifier.clone()))
            .into_inner();
        let (incoming, accept_task) =
            accept_loop(self.listener, self.acceptor, self.limits.max_connections);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .layer(stack)
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result.map_err(ServeError::from),
            () = shutdown => {
                self.reporter.set_service_status("", ServingStatus::NotServing).await;
                for name in &self.service_names {
                    self.reporter.set_service_status(*name, ServingStatus::NotServing).await;
                }
                accept_task.abort();
                let _ = stop_tx.send(());
                match tokio::time::timeout(self.grace, &mut server).await {
                    Ok(result) => result.map_err(ServeError::from),
                    Err(_) => {
                        tracing::warn!(grace_ms = self.grace.as_millis() as u64, "calls still running after the grace period");
                        Ok(())
                    }
                }
            }
        };
        accept_task.abort();
        result
    }
}

// === impl RunningServer ===

/// A server running in the background of this process (tests, benchmarks, `coffer-dev`).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), ServeError>>>>,
    /// The service's background jobs, stopped after the server (aborted on drop).
    jobs: std::sync::Mutex<Option<(crate::Jobs, Duration)>>,
}

impl BoundServer {
    /// Runs the server on a background task until [`RunningServer::shutdown`] or drop.
    pub fn spawn(self) -> RunningServer {
        let addr = self.local_addr;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(async {
            let _ = stopped.await;
        }));
        RunningServer {
            addr,
            stop: std::sync::Mutex::new(Some(stop)),
            task: std::sync::Mutex::new(Some(task)),
            jobs: std::sync::Mutex::new(None),
        }
    }
}

impl RunningServer {
    /// Returns the address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Gives the server the service's background jobs to stop with it.
    pub fn with_jobs(self, jobs: crate::Jobs, grace: Duration) -> Self {
        *self.jobs.lock().unwrap_or_else(|e| e.into_inner()) = Some((jobs, grace));
        self
    }

    /// Starts a graceful shutdown and waits for it to finish, background jobs included (tests
    /// stop a peer this way while others still hold the fixture). A second call returns at once.
    pub async fn shutdown(&self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        if let Some((jobs, _)) = &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            jobs.stopper()();
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let served = match task {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(ServeError::Reflection(format!("server task: {e}")))),
            None => Ok(()),
        };
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((jobs, grace)) = jobs {
            jobs.shutdown(grace).await;
        }
        served
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self
            .stop
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = stop.send(());
        }
    }
}
