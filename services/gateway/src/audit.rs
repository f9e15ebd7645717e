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
use serde_json::json;

use crate::authn::Authed;
use crate::error::ApiError;
use crate::state::Shared;
use crate::wire::{name, rfc3339};
use coffer_kit::audit::Outcome;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    action: Option<String>,
    /// RFC 3339.
    since: Option<String>,
}

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
    let items: Vec<_> = res
        .items
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "at": rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "outcome": name(Outcome::from_wire(e.outcome).map(Outcome::as_str)),
                "request_id": e.request_id,
                "hash": e.hash,
            })
        })
        .collect();
    let next = res.page.unwrap_or_default().next_cursor;
    Ok(Json(json!({
        "items": items,
        "next_cursor": if next.is_empty() { serde_json::Value::Null } else { next.into() },
    }))
    .into_response())
}

pub async fn verify(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let v = authed
        .call(gw.audit.clone().verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    Ok(Json(json!({"ok": v.ok, "count": v.count, "head_hash": v.head_hash})).into_response())
}

/// The key checkpoints and exports are signed with, for `coffer audit verify --public-key`.
pub async fn public_key(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let k = authed
        .call(gw.audit.clone().public_key(pb::PublicKeyRequest {}))
        .await?
        .into_inner();
    Ok(Json(json!({"key_id": k.key_id, "public_key": k.public_key})).into_response())
}

/// Streams the NDJSON export as the audit service produces it.
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
