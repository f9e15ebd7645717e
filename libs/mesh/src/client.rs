//! Mesh clients: mTLS channels to named services, and an interceptor that forwards the current
//! call's user token, request id, remaining deadline and W3C trace context.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::context::CallContext;
use crate::identity::ServiceName;
use crate::layers::REQUEST_ID_HEADER;
use crate::tls::{CertStore, TlsError, client_config};

/// A channel to a mesh service that forwards the call context on every request.
pub type MeshChannel = InterceptedService<Channel, ContextInterceptor>;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid service name {0:?}")]
    ServiceName(String),
    #[error("invalid address {0:?}")]
    Address(String),
    #[error(transparent)]
    Config(#[from] coffer_config::ConfigError),
    #[error("{0} is not among this service's declared peers (its PEERS)")]
    Undeclared(&'static str),
}

/// The channels one service opens to the peers it declares.
pub struct Peers<'a> {
    client: &'a MeshClient,
    declared: &'static [coffer_token::Service],
    config: &'a coffer_config::ServiceConfig,
}

impl Peers<'_> {
    fn declared(&self, peer: coffer_token::Service) -> Result<(), ClientError> {
        if self.declared.contains(&peer) {
            Ok(())
        } else {
            Err(ClientError::Undeclared(peer.name()))
        }
    }

    /// A lazily connecting channel to `peer` (not declared, or no address configured: an error
    /// naming it).
    pub fn get(&self, peer: coffer_token::Service) -> Result<MeshChannel, ClientError> {
        self.declared(peer)?;
        self.client
            .channel(peer.name(), self.config.peer(peer.name())?)
    }

    /// As [`Peers::get`], for a peer the service can run without: `None` when no address is
    /// configured.
    pub fn optional(
        &self,
        peer: coffer_token::Service,
    ) -> Result<Option<MeshChannel>, ClientError> {
        self.declared(peer)?;
        match self.config.peers.get(peer.name()) {
            Some(addr) => Ok(Some(self.client.channel(peer.name(), addr)?)),
            None => Ok(None),
        }
    }
}

/// Opens channels to other members of the mesh with this member's certificate.
#[derive(Clone)]
pub struct MeshClient {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for MeshClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshClient").finish_non_exhaustive()
    }
}

impl MeshClient {
    /// Builds a client presenting `store`'s certificate (re-read as it rotates).
    pub fn new(store: Arc<CertStore>) -> Result<Self, ClientError> {
        Ok(MeshClient {
            tls: Arc::new(client_config(store)?),
            connect_timeout: Duration::from_secs(5),
        })
    }

    /// The peers a service may dial: only those it declares (`coffer_<service>::PEERS`, the
    /// list the network policies are checked against), at their addresses in `config.peers`.
    pub fn peers<'a>(
        &'a self,
        declared: &'static [coffer_token::Service],
        config: &'a coffer_config::ServiceConfig,
    ) -> Peers<'a> {
        Peers {
            client: self,
            declared,
            config,
        }
    }

    /// Returns a lazily connecting channel to `service` at `addr` (`host:port`). The server must
    /// present a mesh certificate naming `service`.
    pub fn channel(&self, service: &str, addr: &str) -> Result<MeshChannel, ClientError> {
        let name = ServiceName::new(service)
            .ok_or_else(|| ClientError::ServiceName(service.to_owned()))?;
        let server_name = ServerName::try_from(name.dns_name())
            .map_err(|_| ClientError::ServiceName(service.to_owned()))?;
        let connector = TlsConnector::from(self.tls.clone());
        let target = addr.to_owned();
        let connect = tower::service_fn(move |_uri: http::Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                // Coalesce a request's frames into one TLS record until hyper flushes.
                Ok::<_, io::Error>(TokioIo::new(tokio::io::BufWriter::new(tls)))
            }
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|_| ClientError::Address(addr.to_owned()))?
            .connect_timeout(self.connect_timeout)
            .connect_with_connector_lazy(connect);
        Ok(InterceptedService::new(channel, ContextInterceptor))
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Attaches the current [`CallContext`] and trace context to an outgoing request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextInterceptor;

impl Interceptor for ContextInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(ctx) = CallContext::current() {
            if let Some(token) = &ctx.token {
                let value = MetadataValue::try_from(&**token)
                    .map_err(|_| tonic::Status::internal("invalid token in call context"))?;
                req.metadata_mut().insert(coffer_token::METADATA_KEY, value);
            }
            if let Ok(value) = MetadataValue::try_from(&*ctx.request_id) {
                req.metadata_mut().insert(REQUEST_ID_HEADER, value);
            }
            if let Some(remaining) = ctx.remaining() {
                if remaining.is_zero() {
                    return Err(tonic::Status::deadline_exceeded("deadline exceeded"));
                }
                req.set_timeout(remaining);
            }
        }
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new()
            .inject_context(&cx, &mut MetadataInjector(req.metadata_mut()));
        Ok(req)
    }
}
