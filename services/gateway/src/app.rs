//! Wiring: config → secrets → mesh client to auth → router → public TLS listener and admin port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Router};
use coffer_config::{SecretFile, SecretKind, ServiceConfig};
use coffer_mesh::{CertStore, Jobs, MeshClient, ServingCert, TlsFiles};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_telemetry::{AdminServer, Readiness, serve_admin};
use coffer_token::{MasterKeyRing, Service};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::account;
use crate::audit;
use crate::client_addr::TrustedProxies;
use crate::config::GatewayConfig;
use crate::cookies::CookieSigner;
use crate::edge::{self, RateLimit};
use crate::events;
use crate::files;
use crate::openapi;
use crate::scans;
use crate::server;
use crate::state::Gateway;
use crate::web;

/// A built gateway, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    admin: AdminServer,
    jobs: Jobs,
    proxies: Arc<TrustedProxies>,
    grace: Duration,
    max_connections: usize,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// The public HTTPS certificate and key.
pub const PUBLIC_TLS: SecretFile = SecretFile {
    kind: SecretKind::PublicTls,
    files: &["public-tls.crt", "public-tls.key"],
    purpose: "the public HTTPS certificate",
};
/// The key ring of session cookies and CSRF tokens.
pub const COOKIE_RING: SecretFile = SecretFile {
    kind: SecretKind::CookieRing,
    files: &["cookie-keys.toml"],
    purpose: "signs session cookies and CSRF tokens",
};

/// The services the gateway calls (the network policies are checked against this list).
pub const PEERS: &[Service] = &[
    Service::Auth,
    Service::Metadata,
    Service::Audit,
    Service::Scan,
];

/// Every secret the gateway reads, in its secrets directory.
pub const SECRETS: &[SecretFile] = &[SecretFile::MESH_IDENTITY, PUBLIC_TLS, COOKIE_RING];

/// The public HTTPS configuration: TLS 1.3 and 1.2, h2 and http/1.1, the certificate re-read
/// within a second of a renewal (no restart).
fn public_tls(service: &ServiceConfig) -> anyhow::Result<rustls::ServerConfig> {
    let secrets = service.secrets();
    let [cert_file, key_file] = PUBLIC_TLS.files else {
        unreachable!("a certificate and a key")
    };
    let cert = ServingCert::load(&secrets.require(cert_file)?, &secrets.require(key_file)?)?;
    cert.spawn_watcher(Duration::from_secs(1));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl App {
    pub async fn build(service: &ServiceConfig, config: &GatewayConfig) -> anyhow::Result<App> {
        coffer_config::Validate::validate(config)?;
        let public_url = config.public_url()?;
        let secrets = service.secrets();
        secrets.check(SECRETS)?;
        let cookie_ring = MasterKeyRing::from_file(&secrets.require(COOKIE_RING.files[0])?)?;
        let certs = CertStore::load(TlsFiles::in_dir(&service.secrets_dir))?;
        certs.spawn_watcher(Duration::from_secs(1));
        let mesh = MeshClient::new(certs)?;
        let peers = mesh.peers(PEERS, service);
        let auth_channel = peers.get(Service::Auth)?;
        let store_origin = config.store_origin()?;
        if store_origin.is_none() {
            tracing::warn!(
                "gateway.store_origin is not set: the web app cannot upload or download (its policy allows only the gateway)"
            );
        }
        let web = Arc::new(crate::web::Web::load(store_origin.as_deref())?);
        tracing::info!(build = web.build(), "web app loaded");
        let gateway = Arc::new(Gateway {
            auth: AuthClient::new(auth_channel.clone()),
            metadata: MetadataClient::new(peers.get(Service::Metadata)?),
            audit: coffer_proto::v1::audit_client::AuditClient::new(peers.get(Service::Audit)?),
            scan: coffer_proto::v1::scan_client::ScanClient::new(peers.get(Service::Scan)?),
            cookies: CookieSigner::new(&cookie_ring),
            public_url,
            streams: crate::streams::Streams::new(
                config.events_per_user,
                Duration::from_secs(config.events_keepalive_secs),
                Duration::from_secs(config.events_recheck_secs),
            ),
            web: web.clone(),
        });
        let streams = gateway.streams.clone();
        let limit = RateLimit::new(config.rate_per_second, config.rate_burst);
        openapi::init_edge_metrics();
        crate::metrics::metrics();
        let router = Router::new()
            .route("/v1/auth/signup", post(account::signup))
            .route("/v1/auth/login", post(account::login))
            .route("/v1/auth/logout", post(account::logout))
            .route("/v1/auth/password", post(account::change_password))
            .route("/v1/me", get(account::me))
            .route("/v1/auth/totp/enroll", post(account::totp_enroll))
            .route("/v1/auth/totp/confirm", post(account::totp_confirm))
            .route(
                "/v1/members",
                post(account::add_member).get(account::list_members),
            )
            .route("/v1/members/{user_id}", delete(account::remove_member))
            .route("/v1/org", delete(account::delete_org))
            .route("/v1/org/restore", post(account::restore_org))
            .route(
                "/v1/org/settings",
                get(scans::get_settings).put(scans::set_settings),
            )
            .route(
                "/v1/api-keys",
                post(account::create_api_key).get(account::list_api_keys),
            )
            .route("/v1/api-keys/{id}", delete(account::revoke_api_key))
            .route("/v1/folders", post(files::create_folder))
            .route("/v1/folders/{id}/children", get(files::list_children))
            .route("/v1/trash", get(files::list_trash))
            .route(
                "/v1/folders/{id}",
                get(files::get_folder)
                    .patch(files::update_folder)
                    .delete(files::trash_folder),
            )
            .route("/v1/files", post(files::create_file))
            .route(
                "/v1/files/{id}",
                get(files::get_file)
                    .patch(files::update_file)
                    .delete(files::trash_file),
            )
            .route(
                "/v1/files/{id}/complete",
                // Up to 10,000 parts' numbers and etags: a larger body than any other.
                post(files::complete_upload).layer(from_fn(edge::complete_body_cap)),
            )
            .route(
                "/v1/files/{id}/parts",
                post(files::presign_parts).get(files::list_parts),
            )
            .route("/v1/files/{id}/download", get(files::download))
            .route("/v1/files/{id}/scan", get(scans::file_scan))
            .route("/v1/files/{id}/restore", post(files::restore_file))
            .route("/v1/files/{id}/release", post(files::release_file))
            .route("/v1/files/{id}/purge", delete(files::purge_file))
            .route(
                "/v1/files/{id}/shares",
                post(files::create_share).get(files::list_shares),
            )
            .route("/v1/shares/{id}", delete(files::revoke_share))
            .route(
                "/s/{token}",
                get(files::redeem_share).post(files::redeem_share_post),
            )
            .route("/v1/audit", get(audit::list))
            .route("/v1/audit/verify", get(audit::verify))
            .route("/v1/audit/export", get(audit::export))
            .route("/v1/audit/public-key", get(audit::public_key))
            .route(
                "/v1/webhook",
                put(scans::set_webhook)
                    .get(scans::get_webhook)
                    .delete(scans::delete_webhook),
            )
            .route("/v1/events", get(events::stream))
            .route("/v1/scans", post(scans::create))
            .route("/v1/scans/{id}", get(scans::get).delete(scans::delete))
            .route("/v1/scans/{id}/submit", post(scans::submit))
            .route("/v1/openapi.json", get(openapi::document))
            .route("/", get(web::index).layer(Extension(web.clone())))
            .route(
                "/assets/{build}/{*path}",
                get(web::asset).layer(Extension(web)),
            )
            .fallback(account::not_found)
            .method_not_allowed_fallback(account::method_not_allowed)
            .with_state(gateway)
            .layer(
                ServiceBuilder::new()
                    // The request's span first: the metrics' exemplars name its trace.
                    .layer(from_fn(edge::request_id))
                    .layer(from_fn(edge::metrics))
                    .layer(from_fn(edge::security_headers))
                    .layer(from_fn_with_state(limit.clone(), edge::rate_limit))
                    .layer(from_fn_with_state(
                        coffer_mesh::Admission::new(&service.limits),
                        edge::admit,
                    ))
                    .layer(from_fn_with_state(config.max_body_bytes, edge::body_cap)),
            );

        // Ready only while auth answers health.
        let readiness = Readiness::default();
        let probe = readiness.clone();
        let mut jobs = Jobs::new();
        jobs.every(
            "rate-limit table trim",
            Duration::from_secs(60),
            move || {
                let limit = limit.clone();
                async move {
                    limit.trim();
                    Ok::<_, std::convert::Infallible>(0)
                }
            },
        );
        jobs.spawn("event streams closer", move |mut stop| async move {
            stop.stopped().await;
            streams.close_all();
        });
        jobs.spawn("readiness probe", move |mut stop| async move {
            let mut health = tonic_health::pb::health_client::HealthClient::new(auth_channel);
            while !stop.is_stopped() {
                let ok = health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok_and(|r| {
                        r.get_ref().status
                            == tonic_health::pb::health_check_response::ServingStatus::Serving
                                as i32
                    });
                probe.set(ok);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(if ok { 5 } else { 1 })) => {}
                    () = stop.stopped() => {}
                }
            }
        });
        let admin = serve_admin(service.admin_listen, readiness).await?;
        let listener = TcpListener::bind(config.public_listen)
            .await
            .with_context(|| format!("binding {}", config.public_listen))?;
        Ok(App {
            listener,
            tls: Arc::new(public_tls(service)?),
            router,
            admin,
            jobs,
            proxies: Arc::new(TrustedProxies::new(config.trusted_proxies.clone())),
            grace: Duration::from_millis(service.shutdown_grace_ms),
            max_connections: service.limits.max_connections,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let stop_jobs = self.jobs.stopper();
        let shutdown = async move {
            shutdown.await;
            stop_jobs();
        };
        server::serve(
            self.listener,
            self.tls,
            self.router,
            self.proxies,
            self.grace,
            self.max_connections,
            shutdown,
        )
        .await;
        self.jobs.shutdown(self.grace).await;
        self.admin.task.abort();
        Ok(())
    }
}
