//! rustls configurations for the mesh: TLS 1.3 only, client certificates required, one mesh CA,
//! identities from the URI SAN, and certificates that are re-read when their files change.
//!
//! The CA bundle is read once at start-up; rotating the CA itself needs a restart (a rolling one
//! with both CAs in the bundle keeps the mesh up).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::identity::{DNS_SUFFIX, ServiceName, identity_of};
use crate::watch::{Watched, spawn_poller};

/// Why TLS material could not be used. Messages name files, never their content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("certificate {path} does not carry a mesh identity: {reason}")]
    Identity { path: PathBuf, reason: String },
    #[error("tls configuration: {0}")]
    Config(String),
}

/// Where a member's certificate, key and the mesh CA live (mounted secret files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// The conventional layout of a secrets directory: `tls.crt`, `tls.key`, `ca.crt`.
    pub fn in_dir(dir: &Path) -> Self {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            ca: dir.join("ca.crt"),
        }
    }
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_err(path, e))?;
    }
    Ok(Arc::new(roots))
}

/// A certificate chain and its key, read and checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = read_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| file_err(key, e))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|_| file_err(key, "key does not match the certificate"))?;
    Ok(certified)
}

// === ServingCert ===

/// A server certificate outside the mesh (the gateway's public HTTPS one): any certificate and
/// key that match, re-read when the files change, so a renewal (cert-manager's, say) is served
/// without a restart. A half-written or mismatched pair keeps the previous one in service.
pub struct ServingCert {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    watched: Mutex<Watched>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ServingCert {
    /// Reads `cert` (a PEM chain) and `key`; fails if they do not match.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let watched = Watched::new(vec![cert.to_owned(), key.to_owned()]);
        let current = certified_key(cert, key)?;
        Ok(Arc::new(ServingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: ArcSwap::from_pointee(current),
            watched: Mutex::new(watched),
        }))
    }

    /// Re-reads the files if they changed; true when a new certificate was installed.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let Some(now) = watched.changed() else {
            return Ok(false);
        };
        self.current
            .store(Arc::new(certified_key(&self.cert, &self.key)?));
        watched.accept(now);
        Ok(true)
    }

    /// Polls the files every `every` and installs a changed certificate, until the store is
    /// dropped everywhere else.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        spawn_poller(every, move || {
            let Some(store) = weak.upgrade() else {
                return false;
            };
            match store.reload_if_changed() {
                Ok(true) => tracing::info!("serving certificate reloaded"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "serving certificate reload failed; keeping the previous one")
                }
            }
            true
        })
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

// === impl CertStore ===

/// This member's certificate and key, swapped atomically when the files change.
pub struct CertStore {
    files: TlsFiles,
    identity: ServiceName,
    current: ArcSwap<CertifiedKey>,
    watched: Mutex<Watched>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("identity", &self.identity)
            .field("cert", &self.files.cert)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Reads the certificate and key; fails if they do not match or carry no mesh identity.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let watched = Watched::new(vec![files.cert.clone(), files.key.clone()]);
        let (key, identity) = Self::read(&files)?;
        Ok(Arc::new(CertStore {
            files,
            identity,
            current: ArcSwap::from_pointee(key),
            watched: Mutex::new(watched),
        }))
    }

    fn read(files: &TlsFiles) -> Result<(CertifiedKey, ServiceName), TlsError> {
        let certified = certified_key(&files.cert, &files.key)?;
        let identity = identity_of(&certified.cert[0]).map_err(|e| TlsError::Identity {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?;
        if let Some(not_after) = crate::identity::not_after(&certified.cert[0]) {
            coffer_telemetry::metrics()
                .certificate_not_after
                .set(not_after);
        }
        Ok((certified, identity))
    }

    /// Returns the mesh identity this member presents.
    pub fn identity(&self) -> &ServiceName {
        &self.identity
    }

    /// Returns the files this store reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads the files if their size or modification time changed. A half-written or
    /// mismatched pair keeps the previous certificate in service and is retried on the next call.
    /// Returns true when a new certificate was installed.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let Some(now) = watched.changed() else {
            return Ok(false);
        };
        let (key, identity) = Self::read(&self.files)?;
        if identity != self.identity {
            return Err(TlsError::Identity {
                path: self.files.cert.clone(),
                reason: format!("identity changed from {} to {identity}", self.identity),
            });
        }
        self.current.store(Arc::new(key));
        watched.accept(now);
        Ok(true)
    }

    /// Polls the files every `every` and installs changed certificates, until the store is
    /// dropped everywhere else.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        spawn_poller(every, move || {
            let Some(store) = weak.upgrade() else {
                return false;
            };
            match store.reload_if_changed() {
                Ok(true) => tracing::info!(identity = %store.identity, "mesh certificate reloaded"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "mesh certificate reload failed; keeping the previous one")
                }
            }
            true
        })
    }

    /// Returns the certificate currently presented.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ResolvesClientCert for CertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

// === verifiers ===

/// Client verification: WebPKI path validation against the mesh CA, then a mesh identity.
#[derive(Debug)]
struct MeshClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for MeshClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        identity_of(end_entity)
            .map_err(|e| rustls::Error::General(format!("peer identity: {e}")))?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Server verification: WebPKI path validation against the mesh CA for the DNS name
/// `<service>.coffer.internal`, and the URI SAN must name that same service.
#[derive(Debug)]
struct MeshServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let expected = match server_name {
            ServerName::DnsName(dns) => dns.as_ref().strip_suffix(DNS_SUFFIX).map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| rustls::Error::General("server name is not a mesh name".into()))?;
        let identity = identity_of(end_entity)
            .map_err(|e| rustls::Error::General(format!("server identity: {e}")))?;
        if identity.as_str() != expected {
            return Err(rustls::Error::General(format!(
                "server identity {identity} is not {expected}"
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// === configs ===

const ALPN_H2: &[u8] = b"h2";

/// Builds the server side: TLS 1.3 only, a client certificate from the mesh CA with a mesh
/// identity is required, the certificate comes from `store`.
pub fn server_config(store: Arc<CertStore>) -> Result<ServerConfig, TlsError> {
    let roots = read_roots(&store.files.ca)?;
    let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(MeshClientVerifier { inner }))
        .with_cert_resolver(store);
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// Builds the client side: TLS 1.3 only, presents `store`'s certificate, and accepts a server
/// only if its certificate chains to the mesh CA and names the service dialled.
pub fn client_config(store: Arc<CertStore>) -> Result<ClientConfig, TlsError> {
    let roots = read_roots(&store.files.ca)?;
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(MeshServerVerifier { inner }))
        .with_client_cert_resolver(store);
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}
