//! The scan-only API of API.md (`/v1/scans`): create a request and its PUT-only upload URL,
//! submit it once uploaded, poll its result. Needs a session or an API key with `scans:write`
//! (the scan service decides). The caller's metadata passes through as JSON, at most 4 KB.
//! Also what the scan service keeps per org and per file: the org's scan settings (the NSFW
//! policy) and a file's latest scan report.

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

/// `DELETE /v1/scans/{id}`: the scan's verdict, hash and metadata are deleted (the audit keeps
/// that it happened); 404 for an id the caller's org does not have, 409 while it is scanned.
#[utoipa::path(
    delete,
    path = "/v1/scans/{id}",
    tag = "scans",
    params(("id" = String, Path)),
    responses((status = 204, description = "deleted"))
)]
pub async fn delete(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(gw.scan.clone().delete_scan(pb::ScanRef { scan_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsfwBody {
    policy: String,
    thresholds: api::NsfwThresholds,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    nsfw: NsfwBody,
}

/// `GET /v1/org/settings`: the org's scan settings (any member; the defaults until set).
#[utoipa::path(
    get,
    path = "/v1/org/settings",
    tag = "org",
    responses((status = 200, description = "the org's settings", body = api::OrgSettings))
)]
pub async fn get_settings(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(
            gw.scan
                .clone()
                .get_org_settings(pb::GetOrgSettingsRequest {}),
        )
        .await?
        .into_inner();
    Ok(Json(api::OrgSettings::from(res)).into_response())
}

/// `PUT /v1/org/settings`: owners and admins, from a browser session (the scan service decides).
#[utoipa::path(
    put,
    path = "/v1/org/settings",
    tag = "org",
    responses((status = 200, description = "the org's settings as stored", body = api::OrgSettings))
)]
pub async fn set_settings(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<SettingsBody>,
) -> Result<Response, ApiError> {
    let t = b.nsfw.thresholds;
    let res = authed
        .call(gw.scan.clone().set_org_settings(pb::OrgSettings {
            nsfw_policy: b.nsfw.policy,
            nsfw_thresholds: Some(pb::NsfwThresholds {
                porn: t.porn,
                hentai: t.hentai,
                sexy: t.sexy,
            }),
            nsfw_model: String::new(),
        }))
        .await?
        .into_inner();
    Ok(Json(api::OrgSettings::from(res)).into_response())
}

/// `GET /v1/files/{id}/scan`: the file's latest scan report (files:read).
#[utoipa::path(
    get,
    path = "/v1/files/{id}/scan",
    tag = "files",
    responses((status = 200, description = "the file's latest scan", body = api::FileScan))
)]
pub async fn file_scan(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // The file must exist for the caller: scan keeps the result of a purged file (until the org
    // is purged), which must not be readable.
    authed
        .call(gw.metadata.clone().get_file(pb::FileRef {
            file_id: id.clone(),
        }))
        .await?;
    let res = authed
        .call(
            gw.scan
                .clone()
                .get_file_scan(pb::FileScanRequest { file_id: id }),
        )
        .await?
        .into_inner();
    Ok(Json(api::FileScan::from(res)).into_response())
}
