//! What a handler knows about the call it serves: the verified [`Caller`], the calling
//! [`PeerInfo`], and the [`CallContext`] that outgoing calls inherit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_token::{Claims, Credential, Role, Scope, Scopes};
use uuid::Uuid;

use crate::identity::ServiceName;

/// The mesh peer that opened the connection, from its verified client certificate.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub identity: ServiceName,
    pub remote_addr: Option<SocketAddr>,
}

/// The user a call acts for, from the verified token. The only source of a call's org id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub scopes: Scopes,
    /// A session, an API key (by id) or a service.
    pub credential: Credential,
    pub request_id: String,
}

impl Caller {
    /// Returns true if the caller holds `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Returns true for system work (a service token: the nil user, no scopes).
    pub fn is_service(&self) -> bool {
        self.credential == Credential::Service
    }
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Self {
        Caller {
            user_id: c.user_id,
            org_id: c.org_id,
            role: c.role,
            scopes: c.scopes,
            credential: c.credential,
            request_id: c.request_id,
        }
    }
}

/// The request id of a call, accepted from `x-request-id` or generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Returns the verified caller of a request; `UNAUTHENTICATED` if the RPC's policy did not require
/// a token (a handler that needs a caller on such an RPC is a policy bug, so it fails closed).
pub fn caller<T>(req: &tonic::Request<T>) -> Result<&Caller, tonic::Status> {
    req.extensions()
        .get::<Caller>()
        .ok_or_else(|| tonic::Status::unauthenticated("user token required"))
}

/// Returns the mesh peer of a request.
pub fn peer<T>(req: &tonic::Request<T>) -> Option<&PeerInfo> {
    req.extensions().get::<PeerInfo>()
}

/// What outgoing calls made while serving a request carry forward: the user token unchanged,
/// the request id, and the remaining deadline.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub token: Option<Arc<str>>,
    pub request_id: Arc<str>,
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    static CURRENT: CallContext;
}

impl CallContext {
    /// Returns the context of the request being served by this task, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with this context as the current one (the gateway does this per HTTP request).
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// Returns the time left before the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// Parses a `grpc-timeout` header value (`<digits><unit>`, at most 8 digits).
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("5s"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }
}
