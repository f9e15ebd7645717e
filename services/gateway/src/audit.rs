//! The audit endpoints of API.md: list, verify and export the caller org's log (owners and
//! admins; API keys need `audit:read` — the audit service decides).

use axum::Json;
use axum::body::Body;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use coffer_proto::v1::{self as pb};
use serde::Deserialize;

use crate::api;
use crate::authn::Authed;
use crate::error::ApiError;
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    action: Option<String>,
    /// RFC 3339.
    since: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    responses((status = 200, description = "a page of events, newest first", body = api::AuditPage))
)]
pub async fn list(
    State(gw): Shared,
    authed: Authed,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|_| ApiError::invalid("the query string is malformed"))?;
    let since = q
        .since
        .map(|s| {
            coffer_kit::timestamp::parse_rfc3339(&s)
                .map(coffer_kit::timestamp::from_time)
                .ok_or_else(|| ApiError::invalid("since must be an RFC 3339 time"))
        })
        .transpose()?;
    let res = authed
        .call(gw.audit.clone().list(pb::ListRequest {
            page: Some(pb::PageRequest {
                cursor: q.cursor.unwrap_or_default(),
                limit: q.limit.unwrap_or(0),
            }),
            action: q.action.unwrap_or_default(),
            since,
        }))
        .await?
        .into_inner();
    let next = res.page.unwrap_or_default().next_cursor;
    Ok(Json(api::AuditPage {
        items: res.items.into_iter().map(api::AuditEvent::from).collect(),
        next_cursor: (!next.is_empty()).then_some(next),
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "the chain's state", body = api::AuditVerified))
)]
pub async fn verify(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let v = authed
        .call(gw.audit.clone().verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::AuditVerified {
        ok: v.ok,
        count: v.count,
        head_hash: v.head_hash,
    })
    .into_response())
}

/// The key checkpoints and exports are signed with, for `coffer audit verify --public-key`.
#[utoipa::path(
    get,
    path = "/v1/audit/public-key",
    tag = "audit",
    responses((status = 200, description = "the signing key", body = api::AuditPublicKey))
)]
pub async fn public_key(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let k = authed
        .call(gw.audit.clone().public_key(pb::PublicKeyRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::AuditPublicKey {
        key_id: k.key_id,
        public_key: k.public_key,
    })
    .into_response())
}

/// Streams the NDJSON export as the audit service produces it.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    tag = "audit",
    responses((status = 200, description = "events, checkpoints and a signed trailer", body = String, content_type = "application/x-ndjson"))
)]
pub async fn export(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let mut stream = authed
        .call(gw.audit.clone().export(pb::ExportRequest {}))
        .await?
        .into_inner();
    // The first chunk decides the status: an error before any byte is an API error.
    let first = authed.call(stream.message()).await?;
    let body =
        futures_util::stream::unfold((first, Some(stream)), |(pending, stream)| async move {
            if let Some(chunk) = pending {
                return Some((Ok::<_, std::io::Error>(chunk.ndjson), (None, stream)));
            }
            let mut stream = stream?;
            match stream.message().await {
                Ok(Some(chunk)) => Some((Ok(chunk.ndjson), (None, Some(stream)))),
                Ok(None) => None,
                Err(status) => Some((
                    Err(std::io::Error::other(format!(
                        "export interrupted: {}",
                        status.code()
                    ))),
                    (None, None),
                )),
            }
        });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
