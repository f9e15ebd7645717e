//! The public HTTPS edge: TLS 1.2/1.3, HTTP/1.1 and HTTP/2, a per-connection client address,
//! header-read timeouts, graceful shutdown, and the middleware every request passes:
//! request id → rate limit → body cap → handler → security headers (HSTS and friends).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::body::BodyLimit;
use crate::error::{ApiError, REQUEST_ID};

/// The TCP peer of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Per-request edge state.
pub struct Edge {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    body_limit: usize,
}

impl Edge {
    pub fn new(per_second: u32, burst: u32, body_limit: usize) -> Arc<Self> {
        let quota =
            Quota::per_second(std::num::NonZeroU32::new(per_second.max(1)).expect("non-zero"))
                .allow_burst(std::num::NonZeroU32::new(burst.max(1)).expect("non-zero"));
        let edge = Arc::new(Edge {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            body_limit,
        });
        // Forget idle clients so the table stays bounded.
        let weak = Arc::downgrade(&edge);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(edge) = weak.upgrade() else { return };
                edge.limiter.retain_recent();
            }
        });
        edge
    }
}

const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
];

/// The middleware every request passes.
pub async fn edge(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    // The route's template only: the path itself holds ids and share tokens.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let mut res = REQUEST_ID
        .scope(id.clone(), async {
            if let Some(ip) = client
                && let Err(not_until) = edge.limiter.check_key(&ip)
            {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response();
            }
            req.extensions_mut().insert(BodyLimit(edge.body_limit));
            next.run(req).await
        })
        .await;
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    coffer_telemetry::metrics().record_http(
        &route,
        method.as_str(),
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// Serves `router` over TLS on `listener` until `shutdown`, then lets open requests finish for up
/// to `grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req
            });
            let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc));
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the grace period");
    }
}
