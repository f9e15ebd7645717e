//! The scan-only API of API.md (`/v1/scans`): create a request and its PUT-only upload URL,
//! submit it once uploaded, poll its result. Needs a session or an API key with `scans:write`
//! (the scan service decides). The caller's metadata passes through as JSON, at most 4 KB.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_proto::v1::{self as pb};
use serde::Deserialize;
use serde_json::Value;

use crate::api;
use crate::authn::Authed;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::Shared;
use coffer_kit::vocab::ScanState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScanBody {
    size: u64,
    #[serde(default)]
    metadata: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/v1/scans",
    tag = "scans",
    responses((status = 201, description = "the scan and its upload", body = api::ScanCreated))
)]
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
        Json(api::ScanCreated {
            scan_id: res.scan_id,
            upload: api::Upload::from(res.upload.unwrap_or_default()),
        }),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/scans/{id}/submit",
    tag = "scans",
    params(("id" = String, Path)),
    responses((status = 202, description = "queued", body = api::ScanSubmitted))
)]
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
        Json(api::ScanSubmitted {
            status: ScanState::from_wire(res.status)
                .map_or("", ScanState::as_str)
                .to_owned(),
            scan_id: res.scan_id,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/scans/{id}",
    tag = "scans",
    params(("id" = String, Path)),
    responses((status = 200, description = "the scan", body = api::ScanStatus))
)]
pub async fn get(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.scan.clone().get_scan(pb::ScanRef { scan_id: id }))
        .await?
        .into_inner();
    Ok(Json(api::ScanStatus::from(res)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    url: String,
}

/// `PUT /v1/webhook`: owners and admins (the scan service decides); the secret is shown once.
#[utoipa::path(
    put,
    path = "/v1/webhook",
    tag = "scans",
    responses((status = 200, description = "the endpoint and its secret", body = api::Webhook))
)]
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
    Ok(Json(api::Webhook {
        url: res.url,
        secret: res.secret,
    })
    .into_response())
}

/// `GET /v1/webhook`: the endpoint and when it was set (owners and admins; never the secret).
#[utoipa::path(
    get,
    path = "/v1/webhook",
    tag = "scans",
    responses((status = 200, description = "the endpoint, without its secret", body = api::WebhookInfo))
)]
pub async fn get_webhook(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.scan.clone().get_webhook(pb::GetWebhookRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::WebhookInfo {
        url: res.url,
        created_at: crate::api::time(res.created_at),
    })
    .into_response())
}

/// `DELETE /v1/webhook`: removes the endpoint; deliveries not yet made are dropped.
#[utoipa::path(
    delete,
    path = "/v1/webhook",
    tag = "scans",
    responses((status = 204, description = "removed (or there was none)"))
)]
pub async fn delete_webhook(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    authed
        .call(gw.scan.clone().delete_webhook(pb::DeleteWebhookRequest {}))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
