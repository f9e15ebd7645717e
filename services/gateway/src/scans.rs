//! The scan-only API of API.md (`/v1/scans`): create a request and its PUT-only upload URL,
//! submit it once uploaded, poll its result. Needs a session or an API key with `scans:write`
//! (the scan service decides). The caller's metadata passes through as JSON, at most 4 KB.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_proto::v1::{self as pb};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authn::Authed;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::Shared;
use crate::wire::{name, rfc3339};
use coffer_kit::vocab::{ScanState, Verdict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScanBody {
    size: u64,
    #[serde(default)]
    metadata: Option<Value>,
}

fn status_json(s: pb::ScanStatus) -> Value {
    let metadata = if s.metadata_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&s.metadata_json).unwrap_or(Value::Null)
    };
    let mut out = json!({
        "scan_id": s.scan_id,
        "status": name(ScanState::from_wire(s.status).map(ScanState::as_str)),
        "engines": s.engines.into_iter().map(|e| {
            let mut v = json!({"engine": e.engine, "clean": e.clean});
            if !e.signature.is_empty() {
                v["signature"] = e.signature.into();
            }
            v
        }).collect::<Vec<_>>(),
        "metadata": metadata,
    });
    if let Some(verdict) = Verdict::from_wire(s.verdict) {
        out["verdict"] = verdict.as_str().into();
    }
    if !s.sha256.is_empty() {
        out["sha256"] = s.sha256.into();
    }
    if s.completed_at.is_some() {
        out["completed_at"] = rfc3339(s.completed_at);
    }
    out
}

pub async fn create(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<CreateScanBody>,
) -> Result<Response, ApiError> {
    let metadata_json = match b.metadata {
        None | Some(Value::Null) => String::new(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(ApiError::invalid("metadata must be a JSON object")),
    };
    let res = authed
        .call(gw.scan.clone().create_scan(pb::CreateScanRequest {
            size: b.size,
            metadata_json,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "scan_id": res.scan_id,
            "upload": crate::files::upload_json(res.upload.unwrap_or_default()),
        })),
    )
        .into_response())
}

pub async fn submit(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.scan.clone().submit_scan(pb::ScanRef { scan_id: id }))
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"scan_id": res.scan_id, "status": res.status})),
    )
        .into_response())
}

pub async fn get(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.scan.clone().get_scan(pb::ScanRef { scan_id: id }))
        .await?
        .into_inner();
    Ok(Json(status_json(res)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    url: String,
}

/// `PUT /v1/webhook`: owners and admins (the scan service decides); the secret is shown once.
pub async fn set_webhook(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<WebhookBody>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(
            gw.scan
                .clone()
                .set_webhook(pb::SetWebhookRequest { url: b.url }),
        )
        .await?
        .into_inner();
    Ok(Json(json!({"url": res.url, "secret": res.secret})).into_response())
}
