//! The gateway's shared state, authentication and the account endpoints of API.md. Each handler: parse, authenticate (through auth), call
//! one RPC with the user token in the call context, map the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_errors::ErrorCode;
use coffer_mesh::{CallContext, MeshChannel};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use serde::Deserialize;
use serde_json::json;

use crate::body::JsonBody;
use crate::cookies::{COOKIE_NAME, CookieSigner};
use crate::error::{ApiError, request_id};

/// What every handler shares.
pub struct Gateway {
    pub auth: AuthClient<MeshChannel>,
    pub metadata: coffer_proto::v1::metadata_client::MetadataClient<MeshChannel>,
    pub audit: coffer_proto::v1::audit_client::AuditClient<MeshChannel>,
    pub scan: coffer_proto::v1::scan_client::ScanClient<MeshChannel>,
    pub cookies: CookieSigner,
    /// The base of share links (`https://vault.example.com`, no trailing slash).
    pub public_url: String,
    /// Open event streams per user, capped at `events_per_user`.
    pub streams: crate::events::Streams,
}

pub type Shared = State<Arc<Gateway>>;

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
            audiences: vec![
                "auth".into(),
                "gateway".into(),
                "metadata".into(),
                "storage-signer".into(),
                "audit".into(),
                "scan".into(),
            ],
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

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Owner) => "owner",
        Ok(pb::Role::Admin) => "admin",
        _ => "member",
    }
}

pub fn rfc3339(t: Option<prost_types::Timestamp>) -> serde_json::Value {
    t.as_ref()
        .and_then(coffer_kit::timestamp::to_time)
        .map(coffer_kit::timestamp::rfc3339)
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

// === handlers ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    org_name: String,
    email: String,
    password: String,
}

pub async fn signup(
    State(gw): Shared,
    JsonBody(b): JsonBody<SignupBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .signup(pb::SignupRequest {
            org_name: b.org_name,
            email: b.email,
            password: b.password,
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_id": res.user_id, "org_id": res.org_id})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
    totp_code: Option<String>,
}

pub async fn login(
    State(gw): Shared,
    axum::Extension(client): axum::Extension<crate::server::ClientAddr>,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .login(pb::LoginRequest {
            email: b.email,
            password: b.password,
            totp_code: b.totp_code.unwrap_or_default(),
            client_addr: client.0.ip().to_string(),
        })
        .await?
        .into_inner();
    let caller = res.caller.unwrap_or_default();
    let body = json!({
        "user_id": caller.user_id,
        "org_id": caller.org_id,
        "role": role_name(caller.role),
        "csrf_token": gw.cookies.csrf_token(&res.session_id),
    });
    Ok((
        [(header::SET_COOKIE, gw.cookies.set_cookie(&res.session_id))],
        Json(body),
    )
        .into_response())
}

pub async fn logout(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    if let Some(session_id) = &authed.session_id {
        authed
            .call(gw.auth.clone().logout(pb::LogoutRequest {
                session_id: session_id.clone(),
            }))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, CookieSigner::clear_cookie())],
    )
        .into_response())
}

pub async fn me(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let me = authed
        .call(gw.auth.clone().get_me(pb::GetMeRequest {}))
        .await?
        .into_inner();
    let csrf = authed
        .session_id
        .as_deref()
        .map(|s| gw.cookies.csrf_token(s));
    Ok(Json(json!({
        "user_id": me.user_id,
        "org_id": me.org_id,
        "email": me.email,
        "role": role_name(me.role),
        "totp_enabled": me.totp_enabled,
        "csrf_token": csrf,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyBody {
    name: String,
    scopes: Vec<String>,
}

pub async fn create_api_key(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ApiKeyBody>,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let res = authed
        .call(gw.auth.clone().create_api_key(pb::CreateApiKeyRequest {
            name: b.name,
            scopes: b.scopes,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": res.id, "key": res.key})),
    )
        .into_response())
}

pub async fn list_api_keys(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let res = authed
        .call(gw.auth.clone().list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    let items: Vec<_> = res
        .items
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id,
                "name": k.name,
                "scopes": k.scopes,
                "prefix": k.prefix,
                "created_at": rfc3339(k.created_at),
                "last_used_at": rfc3339(k.last_used_at),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub async fn revoke_api_key(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    authed
        .call(
            gw.auth
                .clone()
                .revoke_api_key(pb::RevokeApiKeyRequest { id }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    email: String,
    password: String,
    role: String,
}

pub async fn add_member(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
    JsonBody(b): JsonBody<MemberBody>,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let res = authed
        .call(gw.auth.clone().add_member(pb::AddMemberRequest {
            email: b.email,
            password: b.password,
            role: b.role,
        }))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json!({ "user_id": res.user_id }))).into_response())
}

pub async fn totp_enroll(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let res = authed
        .call(gw.auth.clone().totp_enroll(pb::TotpEnrollRequest {}))
        .await?
        .into_inner();
    Ok(Json(json!({"secret": res.secret, "otpauth_uri": res.otpauth_uri})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmBody {
    code: String,
}

pub async fn totp_confirm(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
    JsonBody(b): JsonBody<TotpConfirmBody>,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    authed
        .call(
            gw.auth
                .clone()
                .totp_confirm(pb::TotpConfirmRequest { code: b.code }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_org(
    State(gw): Shared,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authed = authenticate(&gw, &headers, &method).await?;
    let res = authed
        .call(
            gw.auth
                .clone()
                .request_org_deletion(pb::RequestOrgDeletionRequest {}),
        )
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "purge_after": rfc3339(res.purge_after) })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    email: String,
    password: String,
    totp_code: Option<String>,
}

pub async fn restore_org(
    State(gw): Shared,
    axum::Extension(client): axum::Extension<crate::server::ClientAddr>,
    JsonBody(b): JsonBody<RestoreBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .restore_org(pb::RestoreOrgRequest {
            email: b.email,
            password: b.password,
            totp_code: b.totp_code.unwrap_or_default(),
            client_addr: client.0.ip().to_string(),
        })
        .await?
        .into_inner();
    Ok(Json(json!({ "org_id": res.org_id })).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, "method not allowed")
}
