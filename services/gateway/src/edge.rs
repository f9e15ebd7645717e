//! The middleware every request passes, one job per layer, applied in this order (outermost
//! first, see `app.rs`): request id and span → metrics → security headers → rate limit →
//! admission → body cap → handler.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tracing::Instrument as _;

use coffer_errors::ErrorCode;
use coffer_mesh::Admission;

use crate::body::BodyLimit;
use crate::client_addr::ClientAddr;
use crate::error::{ApiError, REQUEST_ID};

/// RED metrics of the public API, by route template (the path itself holds ids and share
/// tokens), method and status: every answer counts, refusals of the layers below included.
pub async fn metrics(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = route_of(&req);
    let method = method_name(req.method());
    let res = next.run(req).await;
    coffer_telemetry::metrics().record_http(
        &route,
        method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// The route template the request matched (`/v1/files/{id}`), or `unmatched`: never the path,
/// which holds ids and share tokens.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned()
}

/// The method as a label or span name: the standard ones as they are, anything else (a client
/// may send any token) as `_OTHER`, so the internet cannot mint series or span names.
pub fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// A fresh id per request: in scope for the handler (logs, downstream calls) and returned as
/// `X-Request-Id`; and the request's span, the root of its trace (every mesh call below joins it
/// through `traceparent`). A trace is never continued from a client's `traceparent`: the edge
/// does not let the internet choose trace ids or sampling.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let route = route_of(&req);
    let span = tracing::info_span!(
        "http.server",
        otel.kind = "server",
        otel.name = %format_args!("{} {route}", method_name(req.method())),
        http.request.method = method_name(req.method()),
        http.route = %route,
        request_id = %id,
        trace_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(trace_id) = span.in_scope(coffer_telemetry::current_trace_id) {
        span.record("trace_id", trace_id);
    }
    let started = std::time::Instant::now();
    let mut res = REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let status = res.status().as_u16();
    span.record("http.response.status_code", status);
    if res.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| {
        tracing::debug!(
            status,
            ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// What an answer gets unless its handler chose otherwise (the web app's pages and assets do):
/// no caching, and a policy that lets nothing run or load.
const DEFAULT_HEADERS: [(&str, &str); 2] = [
    ("cache-control", "no-store"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// HSTS, no sniffing, no referrer, no framing on every answer; no caching and nothing to run
/// unless the handler set its own.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for (name, value) in DEFAULT_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// Requests per second per client address, with a burst.
pub struct RateLimit(DefaultKeyedRateLimiter<IpAddr>);

impl RateLimit {
    /// `per_second` and `burst` are validated at load (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Arc<Self> {
        let one = std::num::NonZeroU32::MIN;
        let quota = Quota::per_second(std::num::NonZeroU32::new(per_second).unwrap_or(one))
            .allow_burst(std::num::NonZeroU32::new(burst).unwrap_or(one));
        Arc::new(RateLimit(DefaultKeyedRateLimiter::keyed(quota)))
    }

    /// Forgets idle clients so the table stays bounded (a background job).
    pub fn trim(&self) {
        self.0.retain_recent();
    }
}

/// 429 with `Retry-After` for a client over its rate.
pub async fn rate_limit(State(limit): State<Arc<RateLimit>>, req: Request, next: Next) -> Response {
    if let Some(ClientAddr(client)) = req.extensions().get::<ClientAddr>()
        && let Err(not_until) = limit.0.check_key(client)
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        crate::metrics::metrics().rate_limited.inc();
        return ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response();
    }
    next.run(req).await
}

/// 503 with `Retry-After` when the gateway has no room for the request (see
/// `coffer_mesh::admission`): `[limits]` bounds the requests in flight and the queue before them.
/// A refusal costs microseconds, so a flood cannot take the cores from admitted requests.
pub async fn admit(State(admission): State<Arc<Admission>>, req: Request, next: Next) -> Response {
    match admission.admit().await {
        Ok(slot) => {
            let res = next.run(req).await;
            drop(slot);
            res
        }
        Err(_) => ApiError {
            retry_after_secs: Some(coffer_mesh::admission::RETRY_AFTER_SECS.into()),
            ..ApiError::new(ErrorCode::Unavailable, "the service is busy; try again")
        }
        .into_response(),
    }
}

/// The largest body a handler reads (`JsonBody` enforces it).
pub async fn body_cap(State(limit): State<usize>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

/// The largest body of a multipart upload's completion: 10,000 parts of `{"number": …,
/// "etag": "…"}` (a 64-character ETag at most, as S3 gives them).
pub const COMPLETE_BODY_BYTES: usize = 1024 * 1024;

/// `complete`'s own cap, above the router's.
pub async fn complete_body_cap(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(BodyLimit(COMPLETE_BODY_BYTES));
    next.run(req).await
}
