//! Who a request is: an API key (`Authorization: Bearer`) or a session cookie (with the CSRF
//! header on unsafe methods), exchanged through auth for a short-lived user token. Handlers take
//! [`Authed`] as an extractor; none calls `authenticate` itself.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use coffer_errors::ErrorCode;
use coffer_mesh::CallContext;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::Service;

use crate::cookies::COOKIE_NAME;
use crate::error::{ApiError, request_id};
use crate::state::Gateway;

/// An authenticated request: the user token for downstream calls.
pub struct Authed {
    pub token: String,
    /// Set for cookie sessions (CSRF tokens are bound to it).
    pub session_id: Option<String>,
    pub user_id: String,
    /// What the request authenticated with, for a later re-check (event streams).
    pub credential: Credential,
}

impl Authed {
    /// Runs a downstream call with this request's token and id as the call context.
    pub async fn call<F: Future>(&self, f: F) -> F::Output {
        CallContext {
            token: Some(self.token.as_str().into()),
            request_id: request_id().into(),
            deadline: None,
        }
        .scope(f)
        .await
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates a request by API key (`Authorization: Bearer`) or session cookie; with a cookie,
/// unsafe methods also need the CSRF header.
pub async fn authenticate(
    gw: &Gateway,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Authed, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .ok_or_else(ApiError::unauthenticated)
        })
        .transpose()?;
    let (credential, session_id) = match (bearer, cookie_value(headers)) {
        (Some(key), _) => (Credential::ApiKey(key.trim().to_owned()), None),
        (None, Some(cookie)) => {
            let session = gw
                .cookies
                .session_id(cookie)
                .ok_or_else(ApiError::unauthenticated)?;
            if is_unsafe(method) {
                let presented = headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !gw.cookies.csrf_ok(session, presented) {
                    return Err(ApiError::new(
                        ErrorCode::CsrfFailed,
                        "missing or invalid X-CSRF-Token",
                    ));
                }
            }
            (
                Credential::SessionId(session.to_owned()),
                Some(session.to_owned()),
            )
        }
        (None, None) => return Err(ApiError::unauthenticated()),
    };
    let res = exchange(gw, credential.clone(), false).await?;
    Ok(Authed {
        token: res.token,
        session_id,
        user_id: res.caller.map(|c| c.user_id).unwrap_or_default(),
        credential,
    })
}

/// Exchanges a credential for a user token with a tag for every service a request may reach;
/// a refused credential is 401. `recheck`: the credential is already in use (an event stream),
/// so this is not activity that keeps a session alive.
pub async fn exchange(
    gw: &Gateway,
    credential: Credential,
    recheck: bool,
) -> Result<pb::AuthenticateResponse, ApiError> {
    Ok(gw
        .auth
        .clone()
        .authenticate(pb::AuthenticateRequest {
            credential: Some(credential),
            // Every service this request may reach, each verifying only its own tag.
            audiences: Service::ALL.iter().map(|s| s.name().to_owned()).collect(),
            request_id: request_id(),
            recheck,
        })
        .await
        .map_err(|s| match coffer_errors::from_status(&s).0 {
            ErrorCode::Unauthenticated => ApiError::unauthenticated(),
            _ => ApiError::from(s),
        })?
        .into_inner())
}

impl FromRequestParts<Arc<Gateway>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, ApiError> {
        authenticate(gw, &parts.headers, &parts.method).await
    }
}
