//! The public API's response bodies as types: each serialises to API.md's shape, and the OpenAPI
//! document (`/v1/openapi.json`, built by `openapi`) is generated from them with `utoipa`. A field
//! that may be unset is `null` when API.md lists it plainly, and absent when API.md marks it `?`.
//! None derives `Debug`: several hold the only copy of a key, a TOTP seed, a share token or a
//! presigned URL, and a body is never logged.

use std::collections::BTreeMap;

use coffer_kit::audit::Outcome;
use coffer_kit::vocab::{FileStatus, ScanState, Verdict};
use coffer_proto::v1::{self as pb};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::wire::{rfc3339, role_name};

/// A time the services always set, in RFC 3339.
pub fn time(t: Option<prost_types::Timestamp>) -> String {
    rfc3339(t).unwrap_or_default()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// `{user_id, org_id}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedUp {
    pub user_id: String,
    pub org_id: String,
}

/// `{user_id, org_id, role, csrf_token}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggedIn {
    pub user_id: String,
    pub org_id: String,
    pub role: String,
    pub csrf_token: String,
}

/// `{user_id, org_id, email, role, totp_enabled, csrf_token}`; `csrf_token` is null for an API key.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Me {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    pub totp_enabled: bool,
    #[schema(required = true)]
    pub csrf_token: Option<String>,
}

impl Me {
    pub fn new(me: pb::Me, csrf_token: Option<String>) -> Self {
        Me {
            user_id: me.user_id,
            org_id: me.org_id,
            email: me.email,
            role: role_name(me.role).to_owned(),
            totp_enabled: me.totp_enabled,
            csrf_token,
        }
    }
}

/// `{id, key}`: the key is shown only here.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreated {
    pub id: String,
    pub key: String,
}

/// One API key, without its secret.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub created_at: String,
    #[schema(required = true)]
    pub last_used_at: Option<String>,
}

impl From<pb::ApiKey> for ApiKey {
    fn from(k: pb::ApiKey) -> Self {
        ApiKey {
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            prefix: k.prefix,
            created_at: time(k.created_at),
            last_used_at: rfc3339(k.last_used_at),
        }
    }
}

/// `{items: [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeys {
    pub items: Vec<ApiKey>,
}

/// `{user_id}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAdded {
    pub user_id: String,
}

/// A member of the org: `{user_id, email, role, totp_enabled, created_at}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: &'static str,
    pub totp_enabled: bool,
    pub created_at: String,
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Member {
            user_id: m.user_id,
            email: m.email,
            role: crate::wire::role_name(m.role),
            totp_enabled: m.totp_enabled,
            created_at: time(m.created_at),
        }
    }
}

/// `{items: [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Members {
    pub items: Vec<Member>,
}

/// `{secret, otpauth_uri}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// `{purge_after}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgDeletion {
    pub purge_after: String,
}

/// `{org_id}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgRestored {
    pub org_id: String,
}

/// A folder: `{id, name, parent_id, created_at}` (`parent_id` null at the top).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub parent_id: Option<String>,
    pub created_at: String,
}

/// One step of a folder's path: `{id, name}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathEntry {
    pub id: String,
    pub name: String,
}

/// A folder with `path: [{id, name}, …]` from the top (itself last): breadcrumbs.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderWithPath {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub parent_id: Option<String>,
    pub created_at: String,
    pub path: Vec<PathEntry>,
}

impl From<pb::FolderWithPath> for FolderWithPath {
    fn from(f: pb::FolderWithPath) -> Self {
        let Folder {
            id,
            name,
            parent_id,
            created_at,
        } = Folder::from(f.folder.unwrap_or_default());
        FolderWithPath {
            id,
            name,
            parent_id,
            created_at,
            path: f
                .path
                .into_iter()
                .map(|p| PathEntry {
                    id: p.id,
                    name: p.name,
                })
                .collect(),
        }
    }
}

impl From<pb::ListChildrenResponse> for Listing {
    fn from(res: pb::ListChildrenResponse) -> Self {
        Listing {
            folders: res.folders.into_iter().map(Folder::from).collect(),
            files: res.files.into_iter().map(File::from).collect(),
            next_cursor: (!res.next_cursor.is_empty()).then_some(res.next_cursor),
        }
    }
}

impl From<pb::Folder> for Folder {
    fn from(f: pb::Folder) -> Self {
        Folder {
            id: f.id,
            name: f.name,
            parent_id: non_empty(f.parent_id),
            created_at: time(f.created_at),
        }
    }
}

/// A file: `{id, name, folder_id, size, content_type, sha256, status, verdict, created_at,
/// updated_at}`; `verdict` is null until scanned.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub folder_id: Option<String>,
    pub size: u64,
    pub content_type: String,
    #[schema(required = true)]
    pub sha256: Option<String>,
    /// `pending_upload`, `scanning`, `available`, `quarantined` or `trashed`.
    pub status: String,
    /// `clean`, `infected`, `suspicious`, `sensitive` or `failed`.
    #[schema(required = true)]
    pub verdict: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the trash's listing: when the trash's retention purges the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_at: Option<String>,
}

impl From<pb::File> for File {
    fn from(f: pb::File) -> Self {
        File {
            id: f.id,
            name: f.name,
            folder_id: non_empty(f.folder_id),
            size: f.size,
            content_type: f.content_type,
            sha256: non_empty(f.sha256),
            status: FileStatus::from_wire(f.status)
                .map_or("", FileStatus::as_str)
                .to_owned(),
            verdict: Verdict::from_wire(f.verdict).map(|v| v.as_str().to_owned()),
            created_at: time(f.created_at),
            updated_at: time(f.updated_at),
            purge_at: rfc3339(f.purge_at),
        }
    }
}

/// `{folders, files, next_cursor}`; `next_cursor` is null on the last page.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub folders: Vec<Folder>,
    pub files: Vec<File>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A presigned request: `{url, method, headers, expires_at}`; send exactly these headers.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

impl From<pb::PresignedRequest> for Upload {
    fn from(u: pb::PresignedRequest) -> Self {
        Upload {
            url: u.url,
            method: u.method,
            headers: u.headers.into_iter().collect(),
            expires_at: time(u.expires_at),
        }
    }
}

/// `{method: "multipart", part_size, part_count, expires_at}`: upload the file in parts
/// (`POST /v1/files/{id}/parts`), then complete it with their etags.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultipartUpload {
    /// Always `multipart`.
    pub method: String,
    pub part_size: u64,
    pub part_count: u32,
    pub expires_at: String,
}

impl From<pb::MultipartPlan> for MultipartUpload {
    fn from(p: pb::MultipartPlan) -> Self {
        MultipartUpload {
            method: "multipart".into(),
            part_size: p.part_size,
            part_count: p.part_count,
            expires_at: time(p.expires_at),
        }
    }
}

/// One presigned PUT, or the plan of a multipart upload.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FileUpload {
    Put(Upload),
    Multipart(MultipartUpload),
}

/// `{file, upload}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCreated {
    pub file: File,
    pub upload: FileUpload,
}

/// `{number, url, headers, expires_at}`: a presigned UploadPart PUT (send exactly these headers).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartUrl {
    pub number: u32,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

/// `{parts: [{number, url, headers, expires_at}]}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartUrls {
    pub parts: Vec<PartUrl>,
}

impl From<pb::UploadPartUrls> for PartUrls {
    fn from(u: pb::UploadPartUrls) -> Self {
        PartUrls {
            parts: u
                .parts
                .into_iter()
                .map(|p| {
                    let r = p.request.unwrap_or_default();
                    PartUrl {
                        number: p.number,
                        url: r.url,
                        headers: r.headers.into_iter().collect(),
                        expires_at: time(r.expires_at),
                    }
                })
                .collect(),
        }
    }
}

/// `{number, size, etag}`: a part the store holds.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    pub etag: String,
}

/// `{parts: [{number, size, etag}]}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredParts {
    pub parts: Vec<StoredPart>,
}

impl From<pb::UploadedFileParts> for StoredParts {
    fn from(p: pb::UploadedFileParts) -> Self {
        StoredParts {
            parts: p
                .parts
                .into_iter()
                .map(|p| StoredPart {
                    number: p.number,
                    size: p.size,
                    etag: p.etag,
                })
                .collect(),
        }
    }
}

/// `{url, expires_at}`: a presigned GET.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Download {
    pub url: String,
    pub expires_at: String,
}

/// `{id, url, token, expires_at}`: the token is shown only here.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareCreated {
    pub id: String,
    pub url: String,
    pub token: String,
    pub expires_at: String,
}

/// One audit event.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub request_id: String,
    pub hash: String,
}

impl From<pb::AuditEvent> for AuditEvent {
    fn from(e: pb::AuditEvent) -> Self {
        AuditEvent {
            seq: e.seq,
            at: time(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: Outcome::from_wire(e.outcome)
                .map_or("", Outcome::as_str)
                .to_owned(),
            request_id: e.request_id,
            hash: e.hash,
        }
    }
}

/// `{items, next_cursor}`, newest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `{ok, count, head_hash}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditVerified {
    pub ok: bool,
    pub count: u64,
    pub head_hash: String,
}

/// `{key_id, public_key}` (Ed25519, base64).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditPublicKey {
    pub key_id: String,
    pub public_key: String,
}

/// `{url, secret}`: the secret is shown only here.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// A live share, without its token: `{id, expires_at, max_downloads, downloads, has_password,
/// created_at}` (`max_downloads` null when uncapped).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareInfo {
    pub id: String,
    pub expires_at: String,
    #[schema(required = true)]
    pub max_downloads: Option<u32>,
    pub downloads: u32,
    pub has_password: bool,
    pub created_at: String,
}

impl From<pb::ShareInfo> for ShareInfo {
    fn from(s: pb::ShareInfo) -> Self {
        ShareInfo {
            id: s.id,
            expires_at: time(s.expires_at),
            max_downloads: (s.max_downloads > 0).then_some(s.max_downloads),
            downloads: s.downloads,
            has_password: s.has_password,
            created_at: time(s.created_at),
        }
    }
}

/// `{items: [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shares {
    pub items: Vec<ShareInfo>,
}

/// `{url, created_at}`: the endpoint as set, never its secret.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInfo {
    pub url: String,
    pub created_at: String,
}

/// `{scan_id, upload}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanCreated {
    pub scan_id: String,
    pub upload: Upload,
}

/// `{scan_id, status}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanSubmitted {
    pub scan_id: String,
    /// `queued` or, when already scanned, `done`.
    pub status: String,
}

/// One engine's part of a verdict; the NSFW engine's also has its `scores` per class (of the
/// image most likely not safe for work) and the images it could not classify, by reason.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineResult {
    pub engine: String,
    pub clean: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<std::collections::BTreeMap<String, f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unclassified: Option<std::collections::BTreeMap<String, u32>>,
}

impl From<pb::EngineResult> for EngineResult {
    fn from(e: pb::EngineResult) -> Self {
        EngineResult {
            engine: e.engine,
            clean: e.clean,
            signature: non_empty(e.signature),
            scores: (!e.scores.is_empty()).then(|| e.scores.into_iter().collect()),
            unclassified: (!e.unclassified.is_empty())
                .then(|| e.unclassified.into_iter().collect()),
        }
    }
}

/// A file's latest scan: `{file_id, verdict, engines, sha256?, completed_at, versions}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileScan {
    pub file_id: String,
    pub verdict: String,
    pub engines: Vec<EngineResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub completed_at: String,
    /// `{ruleset, yara_x, clamav?, nsfw?}`: the rules and models the verdict was reached with.
    #[schema(value_type = Object)]
    pub versions: serde_json::Value,
}

impl From<pb::FileScan> for FileScan {
    fn from(s: pb::FileScan) -> Self {
        FileScan {
            file_id: s.file_id,
            verdict: Verdict::from_wire(s.verdict)
                .map_or("", Verdict::as_str)
                .to_owned(),
            engines: s.engines.into_iter().map(EngineResult::from).collect(),
            sha256: non_empty(s.sha256),
            completed_at: rfc3339(s.completed_at).unwrap_or_default(),
            versions: serde_json::from_str(&s.versions_json).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// `{porn, hentai, sexy}`: per class, the score (0..1] at or above which an image is `nsfw`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct NsfwThresholds {
    pub porn: f32,
    pub hentai: f32,
    pub sexy: f32,
}

/// The NSFW part of the org's settings. `model` (in answers only) names the model that
/// classifies, or is null when the service runs without one.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NsfwSettings {
    /// `off`, `flag` or `quarantine`.
    pub policy: String,
    pub thresholds: NsfwThresholds,
    #[schema(required = true)]
    pub model: Option<String>,
}

/// `{nsfw: {policy, thresholds, model}}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    pub nsfw: NsfwSettings,
}

impl From<pb::OrgSettings> for OrgSettings {
    fn from(s: pb::OrgSettings) -> Self {
        let t = s.nsfw_thresholds.unwrap_or_default();
        OrgSettings {
            nsfw: NsfwSettings {
                policy: s.nsfw_policy,
                thresholds: NsfwThresholds {
                    porn: t.porn,
                    hentai: t.hentai,
                    sexy: t.sexy,
                },
                model: non_empty(s.nsfw_model),
            },
        }
    }
}

/// `{scan_id, status, verdict?, engines, sha256?, completed_at?, metadata}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanStatus {
    pub scan_id: String,
    /// `awaiting_upload`, `queued`, `done` or `expired`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    pub engines: Vec<EngineResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The JSON object given at creation, or null.
    #[schema(required = true, value_type = Option<Object>)]
    pub metadata: serde_json::Value,
}

impl From<pb::ScanStatus> for ScanStatus {
    fn from(s: pb::ScanStatus) -> Self {
        ScanStatus {
            scan_id: s.scan_id,
            status: ScanState::from_wire(s.status)
                .map_or("", ScanState::as_str)
                .to_owned(),
            verdict: Verdict::from_wire(s.verdict).map(|v| v.as_str().to_owned()),
            engines: s.engines.into_iter().map(EngineResult::from).collect(),
            sha256: non_empty(s.sha256),
            completed_at: rfc3339(s.completed_at),
            metadata: if s.metadata_json.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&s.metadata_json).unwrap_or(serde_json::Value::Null)
            },
        }
    }
}

/// Every error: `{error: {code, message, request_id}}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Error {
    pub error: ErrorBody,
}

/// What went wrong; `code` is API.md's snake_case name, `request_id` finds it in the logs.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: String,
}
