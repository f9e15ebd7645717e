//! The folder, file and share endpoints of API.md. Each handler: authenticate (through auth),
//! call one metadata RPC with the user token in the call context, answer in API.md's shapes.
//! File names pass through in bodies only; they are never logged.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_errors::ErrorCode;
use coffer_mesh::CallContext;
use coffer_proto::v1::{self as pb};
use serde::{Deserialize, Deserializer};

use crate::api;
use crate::authn::Authed;
use crate::body::JsonBody;
use crate::error::{ApiError, request_id};
use crate::state::{Gateway, Shared};

/// `null` → `Some(None)` (set to nothing), absent → `None` (leave as is).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|_| ApiError::invalid("the query string is malformed"))
}

fn metadata(
    gw: &Gateway,
) -> coffer_proto::v1::metadata_client::MetadataClient<coffer_mesh::MeshChannel> {
    gw.metadata.clone()
}

// === folders ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFolderBody {
    name: String,
    parent_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/folders",
    tag = "files",
    responses((status = 201, description = "the folder", body = api::Folder))
)]
pub async fn create_folder(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<CreateFolderBody>,
) -> Result<Response, ApiError> {
    let f = authed
        .call(metadata(&gw).create_folder(pb::CreateFolderRequest {
            name: b.name,
            parent_id: b.parent_id.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(api::Folder::from(f))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/folders/{id}/children",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "a page of the folder's children", body = api::Listing))
)]
pub async fn list_children(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let res = authed
        .call(metadata(&gw).list_children(pb::ListChildrenRequest {
            folder_id: id,
            cursor: q.cursor.unwrap_or_default(),
            limit: q.limit.unwrap_or(0),
        }))
        .await?
        .into_inner();
    Ok(Json(api::Listing::from(res)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/trash",
    tag = "files",
    responses((status = 200, description = "a page of the trash: the top-most trashed folders, then every trashed file", body = api::Listing))
)]
pub async fn list_trash(
    State(gw): Shared,
    authed: Authed,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let res = authed
        .call(metadata(&gw).list_trash(pb::ListChildrenRequest {
            folder_id: String::new(),
            cursor: q.cursor.unwrap_or_default(),
            limit: q.limit.unwrap_or(0),
        }))
        .await?
        .into_inner();
    Ok(Json(api::Listing::from(res)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFolderBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    parent_id: Option<Option<String>>,
}

#[utoipa::path(
    get,
    path = "/v1/folders/{id}",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the folder and its path from the top", body = api::FolderWithPath))
)]
pub async fn get_folder(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let f = authed
        .call(metadata(&gw).get_folder(pb::FolderRef { folder_id: id }))
        .await?
        .into_inner();
    Ok(Json(api::FolderWithPath::from(f)).into_response())
}

#[utoipa::path(
    patch,
    path = "/v1/folders/{id}",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the folder", body = api::Folder))
)]
pub async fn update_folder(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UpdateFolderBody>,
) -> Result<Response, ApiError> {
    let f = authed
        .call(metadata(&gw).update_folder(pb::UpdateFolderRequest {
            folder_id: id,
            name: b.name,
            parent_id: b.parent_id.map(Option::unwrap_or_default),
        }))
        .await?
        .into_inner();
    Ok(Json(api::Folder::from(f)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/folders/{id}",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 204, description = "in the trash, with its contents"))
)]
pub async fn trash_folder(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(metadata(&gw).trash_folder(pb::FolderRef { folder_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// === files ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFileBody {
    name: String,
    folder_id: Option<String>,
    size: u64,
    content_type: String,
    sha256: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/files",
    tag = "files",
    responses((status = 201, description = "the file and its upload", body = api::FileCreated))
)]
pub async fn create_file(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<CreateFileBody>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(metadata(&gw).create_file(pb::CreateFileRequest {
            name: b.name,
            folder_id: b.folder_id.unwrap_or_default(),
            size: b.size,
            content_type: b.content_type,
            sha256: b.sha256.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    let upload = match (res.upload, res.multipart) {
        (_, Some(plan)) => api::FileUpload::Multipart(plan.into()),
        (put, None) => api::FileUpload::Put(put.unwrap_or_default().into()),
    };
    Ok((
        StatusCode::CREATED,
        Json(api::FileCreated {
            file: api::File::from(res.file.unwrap_or_default()),
            upload,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartNumbers {
    numbers: Vec<u32>,
}

/// `POST /v1/files/{id}/parts` with `{numbers}`: presigned UploadPart PUTs (at most 100 a call).
#[utoipa::path(
    post,
    path = "/v1/files/{id}/parts",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the parts' upload URLs", body = api::PartUrls))
)]
pub async fn presign_parts(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<PartNumbers>,
) -> Result<Response, ApiError> {
    let urls = authed
        .call(
            metadata(&gw).presign_file_parts(pb::PresignFilePartsRequest {
                file_id: id,
                numbers: b.numbers,
            }),
        )
        .await?
        .into_inner();
    Ok(Json(api::PartUrls::from(urls)).into_response())
}

/// `GET /v1/files/{id}/parts`: what the store holds of a multipart upload (to resume).
#[utoipa::path(
    get,
    path = "/v1/files/{id}/parts",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the parts uploaded", body = api::StoredParts))
)]
pub async fn list_parts(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let parts = authed
        .call(metadata(&gw).list_uploaded_parts(pb::FileRef { file_id: id }))
        .await?
        .into_inner();
    Ok(Json(api::StoredParts::from(parts)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletedPartBody {
    number: u32,
    etag: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    #[serde(default)]
    parts: Vec<CompletedPartBody>,
}

/// `POST /v1/files/{id}/complete`: no body for a single PUT; `{parts: [{number, etag}]}` for a
/// multipart upload.
#[utoipa::path(
    post,
    path = "/v1/files/{id}/complete",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the file", body = api::File))
)]
pub async fn complete_upload(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    // No body, `null` or `{}`: a single PUT's complete, as before parts existed.
    body: crate::body::OptionalJson<Option<CompleteBody>>,
) -> Result<Response, ApiError> {
    let parts = body
        .0
        .flatten()
        .unwrap_or_default()
        .parts
        .into_iter()
        .map(|p| pb::UploadedFilePart {
            number: p.number,
            size: 0,
            etag: p.etag,
        })
        .collect();
    let f = authed
        .call(metadata(&gw).complete_upload(pb::CompleteUploadRequest { file_id: id, parts }))
        .await?
        .into_inner();
    Ok(Json(api::File::from(f)).into_response())
}

/// One file RPC taking a `FileRef`, answered with the file.
macro_rules! file_action {
    ($name:ident, $rpc:ident, $method:ident, $path:literal) => {
        #[utoipa::path(
                            $method,
                            path = $path,
                            tag = "files",
                            params(("id" = String, Path)),
                            responses((status = 200, description = "the file", body = api::File))
                        )]
        pub async fn $name(
            State(gw): Shared,
            authed: Authed,
            Path(id): Path<String>,
        ) -> Result<Response, ApiError> {
            let f = authed
                .call(metadata(&gw).$rpc(pb::FileRef { file_id: id }))
                .await?
                .into_inner();
            Ok(Json(api::File::from(f)).into_response())
        }
    };
}

file_action!(get_file, get_file, get, "/v1/files/{id}");
file_action!(restore_file, restore_file, post, "/v1/files/{id}/restore");
file_action!(release_file, release_file, post, "/v1/files/{id}/release");

#[utoipa::path(
    delete,
    path = "/v1/files/{id}",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 204, description = "in the trash"))
)]
pub async fn trash_file(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(metadata(&gw).trash_file(pb::FileRef { file_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/files/{id}/purge",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 204, description = "deleted for good"))
)]
pub async fn purge_file(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(metadata(&gw).purge_file(pb::FileRef { file_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/v1/files/{id}/download",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "a presigned GET", body = api::Download))
)]
pub async fn download(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let g = authed
        .call(metadata(&gw).authorize_download(pb::FileRef { file_id: id }))
        .await?
        .into_inner();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(api::Download {
            url: g.url,
            expires_at: api::time(g.expires_at),
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFileBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    folder_id: Option<Option<String>>,
}

#[utoipa::path(
    patch,
    path = "/v1/files/{id}",
    tag = "files",
    params(("id" = String, Path)),
    responses((status = 200, description = "the file", body = api::File))
)]
pub async fn update_file(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UpdateFileBody>,
) -> Result<Response, ApiError> {
    let f = authed
        .call(metadata(&gw).update_file(pb::UpdateFileRequest {
            file_id: id,
            name: b.name,
            folder_id: b.folder_id.map(Option::unwrap_or_default),
        }))
        .await?
        .into_inner();
    Ok(Json(api::File::from(f)).into_response())
}

// === shares ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    expires_in_seconds: u64,
    password: Option<String>,
    max_downloads: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/files/{id}/shares",
    tag = "shares",
    params(("id" = String, Path)),
    responses((status = 200, description = "the file's live shares (tokens are never shown again)", body = api::Shares))
)]
pub async fn list_shares(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let list = authed
        .call(metadata(&gw).list_shares(pb::FileRef { file_id: id }))
        .await?
        .into_inner();
    Ok(Json(api::Shares {
        items: list.items.into_iter().map(api::ShareInfo::from).collect(),
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/files/{id}/shares",
    tag = "shares",
    params(("id" = String, Path)),
    responses((status = 201, description = "the share", body = api::ShareCreated))
)]
pub async fn create_share(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ShareBody>,
) -> Result<Response, ApiError> {
    let s = authed
        .call(metadata(&gw).create_share(pb::CreateShareRequest {
            file_id: id,
            expires_in_seconds: b.expires_in_seconds,
            password: b.password.unwrap_or_default(),
            max_downloads: b.max_downloads.unwrap_or(0),
        }))
        .await?
        .into_inner();
    // Never from the request's Host, which the client chooses (config requires public_url).
    let url = format!("{}/s/{}", gw.public_url, s.token);
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(api::ShareCreated {
            id: s.id,
            url,
            token: s.token,
            expires_at: api::time(s.expires_at),
        }),
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/shares/{id}",
    tag = "shares",
    params(("id" = String, Path)),
    responses((status = 204, description = "revoked"))
)]
pub async fn revoke_share(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(metadata(&gw).revoke_share(pb::ShareRef { share_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemQuery {
    password: Option<String>,
}

/// The header that carries a share password (so it stays out of URLs and their logs).
const SHARE_PASSWORD_HEADER: &str = "x-share-password";

/// `GET /s/{token}`: a public link; no session, no key. The password, if the share has one, in
/// the `X-Share-Password` header (or, as before, `?password=`). 302 to a presigned GET, else 404.
/// A browser (it asks for HTML) gets a page instead, and its GET spends nothing: the page's
/// button, or its password form, POSTs to redeem; a HEAD spends nothing either. A link preview
/// that asks for HTML cannot use up a capped link.
#[utoipa::path(
    get,
    path = "/s/{token}",
    tag = "shares",
    params(("token" = String, Path)),
    responses((status = 302, description = "to a presigned GET"))
)]
pub async fn redeem_share(
    State(gw): State<Arc<Gateway>>,
    method: axum::http::Method,
    Path(token): Path<String>,
    headers: HeaderMap,
    q: Result<Query<RedeemQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    // A HEAD (a link checker's) only learns whether the link works: it spends nothing.
    if method == axum::http::Method::HEAD {
        return grant(&gw, token, String::new(), true)
            .await
            .map(|_| StatusCode::OK.into_response());
    }
    if crate::web::wants_html(&headers) {
        return Ok(match grant(&gw, token, String::new(), true).await {
            Ok(_) => gw.web.share_page(
                StatusCode::OK,
                "The file is ready: it was checked for malware before it could be shared.",
                crate::web::ShareForm::Button,
            ),
            Err(e) => share_error_page(&gw, e, false),
        });
    }
    let q = query(q)?;
    let header = headers
        .get(SHARE_PASSWORD_HEADER)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("x-share-password must be visible ASCII"))
        })
        .transpose()?;
    let password = header.or(q.password).unwrap_or_default();
    redeem(&gw, token, password, StatusCode::FOUND).await
}

/// `POST /s/{token}` with `{"password": "…"}`: the same, with the password in the body; 303 to
/// the presigned GET (the client follows it with a GET). The share page's form posts
/// `application/x-www-form-urlencoded` (`password`, or nothing) and gets a page when it fails.
#[utoipa::path(
    post,
    path = "/s/{token}",
    tag = "shares",
    params(("token" = String, Path)),
    responses((status = 303, description = "to a presigned GET"))
)]
pub async fn redeem_share_post(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<crate::web::SharePassword, ApiError>,
) -> Result<Response, ApiError> {
    let from_form = crate::web::is_form(&headers);
    let body = match body {
        Ok(body) => body,
        Err(e) if from_form => return Ok(share_error_page(&gw, e, true)),
        Err(e) => return Err(e),
    };
    let answer = redeem(&gw, token, body.password, StatusCode::SEE_OTHER).await;
    match answer {
        Err(e) if from_form => Ok(share_error_page(&gw, e, true)),
        answer => answer,
    }
}

/// A browser's page for a share link that did not lead to its bytes, saying why in words.
fn share_error_page(gw: &Gateway, error: ApiError, tried: bool) -> Response {
    let (status, message, form) = match error.code {
        ErrorCode::PermissionDenied if tried => (
            StatusCode::FORBIDDEN,
            "That password is not right. Try again.".to_owned(),
            crate::web::ShareForm::Password,
        ),
        ErrorCode::PermissionDenied => (
            StatusCode::OK,
            "This file is protected by a password. Enter it to download the file.".to_owned(),
            crate::web::ShareForm::Password,
        ),
        ErrorCode::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords. Try again in {} seconds.",
                error.retry_after_secs.unwrap_or(60)
            ),
            crate::web::ShareForm::None,
        ),
        ErrorCode::NotFound => (
            StatusCode::NOT_FOUND,
            "This link does not work: it has expired, was revoked or has been used up. \
             Ask the person who shared it for a new one."
                .to_owned(),
            crate::web::ShareForm::None,
        ),
        ErrorCode::InvalidArgument | ErrorCode::TooLarge => (
            StatusCode::BAD_REQUEST,
            "The form could not be read. Open the link again and retry.".to_owned(),
            crate::web::ShareForm::None,
        ),
        _ => (
            StatusCode::from_u16(error.code.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "The file cannot be downloaded just now. Try again in a minute.".to_owned(),
            crate::web::ShareForm::None,
        ),
    };
    let mut page = gw.web.share_page(status, &message, form);
    if let Some(secs) = error.retry_after_secs
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        page.headers_mut().insert(header::RETRY_AFTER, v);
    }
    page
}

/// Asks metadata for a share's download grant (or, `check_only`, whether the link works).
async fn grant(
    gw: &Gateway,
    token: String,
    password: String,
    check_only: bool,
) -> Result<pb::DownloadGrant, ApiError> {
    Ok(CallContext {
        token: None,
        request_id: request_id().into(),
        deadline: None,
    }
    .scope(metadata(gw).redeem_share(pb::RedeemShareRequest {
        token,
        password,
        check_only,
    }))
    .await?
    .into_inner())
}

async fn redeem(
    gw: &Gateway,
    token: String,
    password: String,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let grant = grant(gw, token, password, false).await?;
    let location = HeaderValue::from_str(&grant.url)
        .map_err(|_| ApiError::from(tonic::Status::internal("")))?;
    Ok((
        status,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}
