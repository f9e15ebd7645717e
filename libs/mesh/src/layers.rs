//! The server-side tower layers, each written once and stacked by [`crate::server`]:
//!
//! 1. [`RequestIdLayer`] — accepts a well-formed `x-request-id` or makes one, echoes it back;
//! 2. [`ObserveLayer`] — joins the caller's W3C trace context, opens the request span, records
//!    RED metrics (refusals by the layers below included);
//! 3. [`AdmissionLayer`] — refuses a call the server has no room for (`UNAVAILABLE` with a
//!    time to retry, see [`crate::admission`]); health checks and reflection are never refused;
//! 4. [`AllowListLayer`] — refuses a calling service that is not on the RPC's list
//!    (`PERMISSION_DENIED`) before any token work or handler runs;
//! 5. [`TokenLayer`] — verifies the user token where the RPC needs one (`UNAUTHENTICATED`),
//!    refuses a token that is not a browser session's where the RPC manages the account or org
//!    (`PERMISSION_DENIED`, `session_required`), puts the [`Caller`] in the request, and makes the
//!    [`CallContext`] current for outgoing calls.
//!
//! Nothing here logs a token, a header value other than the request id, or a message body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use coffer_token::Credential;

use crate::context::{CallContext, Caller, PeerInfo, RequestId, parse_grpc_timeout};
use crate::policy::{Decision, Policy, Token};
use crate::token::TokenVerifier;

/// The header carrying the request id between services.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn refuse(status: tonic::Status) -> Response<Body> {
    status.into_http()
}

fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// === impl RequestIdLayer ===

/// Gives every call a request id (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id: Arc<str> = match req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if valid_request_id(v) => v.into(),
            // The thread-local CSPRNG, not a getrandom syscall per request.
            _ => uuid::Uuid::from_u128(rand::random::<u128>())
                .simple()
                .to_string()
                .into(),
        };
        let header = HeaderValue::from_str(&id).expect("request ids are header-safe");
        req.headers_mut().insert(REQUEST_ID_HEADER, header.clone());
        req.extensions_mut().insert(RequestId(id));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            res.headers_mut().insert(REQUEST_ID_HEADER, header);
            Ok(res)
        })
    }
}

// === impl ObserveLayer ===

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Traces and measures every call (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ObserveService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ObserveService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ObserveService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let rpc: Arc<str> = req.uri().path().into();
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| "".into());
        let peer = req
            .extensions()
            .get::<PeerInfo>()
            .map(|p| p.identity.to_string())
            .unwrap_or_default();
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
        let span = tracing::info_span!(
            "grpc.server",
            otel.kind = "server",
            rpc = %rpc,
            peer = %peer,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(parent);
        if let Some(trace_id) = span.in_scope(coffer_telemetry::current_trace_id) {
            span.record("trace_id", trace_id);
        }
        let start = Instant::now();
        // Inner layers refuse (and log) inside `call`, before the future is first polled: enter
        // the span for the call too, so those lines carry the request's ids.
        let fut = span
            .in_scope(|| self.inner.call(req))
            .instrument(span.clone());
        Box::pin(async move {
            let res = fut.await?;
            // The recorder holds the span: it ends with the response, carrying its code.
            let mut recorder = Recorder {
                rpc,
                start,
                code: None,
                span,
            };
            // A trailers-only response (every refusal) carries its status in the headers.
            recorder.code = grpc_code(res.headers());
            Ok(res.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    recorder,
                })
            }))
        })
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

/// Records the call's metrics once, when the response body is done or dropped.
struct Recorder {
    rpc: Arc<str>,
    start: Instant,
    code: Option<tonic::Code>,
    span: tracing::Span,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // No status seen means the client went away before the end of the response.
        let code = self.code.unwrap_or(tonic::Code::Cancelled);
        let name = format!("{code:?}");
        let took = self.start.elapsed();
        self.span.in_scope(|| {
            coffer_telemetry::metrics().record_rpc(&self.rpc, &name, took.as_secs_f64());
        });
        self.span.record("rpc.grpc.status_code", code as i32);
        // The server's own failures mark the span (the collector keeps such traces); a refusal
        // of the caller's request is an answer, not an error of this service.
        if coffer_telemetry::SERVER_ERROR_CODES.contains(&name.as_str()) {
            self.span.record("otel.status_code", "ERROR");
        }
        self.span.in_scope(|| {
            tracing::debug!(code = %name, ms = took.as_millis() as u64, "rpc done");
        });
    }
}

pin_project_lite::pin_project! {
    struct ObservedBody<B> {
        #[pin]
        inner: B,
        recorder: Recorder,
    }
}

impl<B: HttpBody> HttpBody for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(code) = grpc_code(trailers)
        {
            this.recorder.code = Some(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// === impl AllowListLayer ===

/// Refuses callers not on an RPC's list (see the module docs).
#[derive(Debug, Clone)]
pub struct AllowListLayer {
    policy: Arc<Policy>,
}

impl AllowListLayer {
    pub fn new(policy: Arc<Policy>) -> Self {
        AllowListLayer { policy }
    }
}

impl<S> Layer<S> for AllowListLayer {
    type Service = AllowList<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AllowList {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AllowList<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S, B> Service<Request<B>> for AllowList<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path();
        let Some(peer) = req.extensions().get::<PeerInfo>() else {
            return Box::pin(async {
                Ok(refuse(tonic::Status::permission_denied("no mesh identity")))
            });
        };
        let allowed = match self.policy.decide(path) {
            Decision::Open => true,
            Decision::Rule(rule) => rule.allows(&peer.identity),
            Decision::Unknown => false,
        };
        if !allowed {
            coffer_telemetry::metrics().caller_denied(path, peer.identity.as_str());
            tracing::warn!(rpc = path, peer = %peer.identity, "caller not allowed");
            return Box::pin(async {
                Ok(refuse(tonic::Status::permission_denied(
                    "caller not allowed",
                )))
            });
        }
        Box::pin(self.inner.call(req))
    }
}

// === impl AdmissionLayer ===

/// Bounds the calls in flight (see the module docs and [`crate::admission`]).
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    admission: Arc<crate::admission::Admission>,
}

impl AdmissionLayer {
    pub fn new(admission: Arc<crate::admission::Admission>) -> Self {
        AdmissionLayer { admission }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admit {
            inner,
            admission: self.admission.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admit<S> {
    inner: S,
    admission: Arc<crate::admission::Admission>,
}

/// What a probe or an operator's tool calls: answered however full the server is.
fn never_shed(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl<S, B> Service<Request<B>> for Admit<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if never_shed(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        // The clone that was made ready is the one called (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let admission = self.admission.clone();
        Box::pin(async move {
            match admission.admit().await {
                Ok(slot) => {
                    let res = inner.call(req).await;
                    drop(slot);
                    res
                }
                Err(shed) => Ok(refuse(shed.status())),
            }
        })
    }
}

// === impl TokenLayer ===

/// Verifies user tokens and sets the call context (see the module docs).
#[derive(Debug, Clone)]
pub struct TokenLayer {
    policy: Arc<Policy>,
    verifier: Option<TokenVerifier>,
}

impl TokenLayer {
    /// With no verifier, every RPC whose rule requires a token is refused.
    pub fn new(policy: Arc<Policy>, verifier: Option<TokenVerifier>) -> Self {
        TokenLayer { policy, verifier }
    }
}

impl<S> Layer<S> for TokenLayer {
    type Service = TokenCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TokenCheck {
            inner,
            policy: self.policy.clone(),
            verifier: self.verifier.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenCheck<S> {
    inner: S,
    policy: Arc<Policy>,
    verifier: Option<TokenVerifier>,
}

impl<S, B> Service<Request<B>> for TokenCheck<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let raw: Option<Arc<str>> = req
            .headers()
            .get(coffer_token::METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .map(Into::into);
        let (required, session_only) = match self.policy.decide(req.uri().path()) {
            Decision::Rule(rule) => match rule.token() {
                Token::Required => (true, false),
                Token::Session => (true, true),
                Token::Optional => (raw.is_some(), false),
                Token::NotRequired => (false, false),
            },
            _ => (false, false),
        };
        if required {
            let verified = match (&self.verifier, &raw) {
                (Some(verifier), Some(token)) => verifier.verify(token),
                (_, None) => Err(coffer_token::TokenError::Malformed),
                (None, Some(_)) => Err(coffer_token::TokenError::UnknownKey),
            };
            match verified {
                Ok(claims) if session_only && claims.credential != Credential::Session => {
                    coffer_telemetry::metrics().token_rejected("session_required");
                    tracing::info!(
                        credential = claims.credential.kind(),
                        "management rpc refused: not a session"
                    );
                    return Box::pin(async {
                        Ok(refuse(coffer_errors::status(
                            coffer_errors::ErrorCode::SessionRequired,
                            "account and org management needs a browser session, not an API key",
                            "",
                        )))
                    });
                }
                Ok(claims) => {
                    req.extensions_mut().insert(Caller::from(claims));
                }
                Err(error) => {
                    let reason = if raw.is_none() {
                        "missing"
                    } else {
                        error.reason()
                    };
                    coffer_telemetry::metrics().token_rejected(reason);
                    tracing::info!(reason, "user token refused");
                    return Box::pin(async {
                        Ok(refuse(tonic::Status::unauthenticated("invalid user token")))
                    });
                }
            }
        }
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| "".into());
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .and_then(|d| Instant::now().checked_add(d));
        let context = CallContext {
            // Only a verified token is carried forward.
            token: if required { raw } else { None },
            request_id,
            deadline,
        };
        let fut = self.inner.call(req);
        Box::pin(context.scope(fut))
    }
}
