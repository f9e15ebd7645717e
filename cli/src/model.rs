//! The gateway's answers as the client reads them (../shared/API.md). Only the fields the client
//! uses are named; the rest are kept for `--json` output where it prints what it received.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct File {
    pub id: String,
    pub name: String,
    pub folder_id: Option<String>,
    pub size: u64,
    pub content_type: String,
    pub sha256: Option<String>,
    pub status: String,
    pub verdict: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Folder {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Listing {
    pub folders: Vec<Folder>,
    pub files: Vec<File>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Me {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    pub totp_enabled: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoggedIn {
    pub csrf_token: String,
}

/// A presigned request: where to send the bytes and the headers it was signed with.
#[derive(Debug, Clone, Deserialize)]
pub struct Presigned {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `POST /v1/files`'s `upload`: one PUT, or a plan of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method")]
pub enum Upload {
    #[serde(rename = "PUT")]
    Put(Presigned),
    #[serde(rename = "multipart")]
    Multipart { part_size: u64, part_count: u32 },
}

#[derive(Debug, Deserialize)]
pub struct FileCreated {
    pub file: File,
    pub upload: Upload,
}

#[derive(Debug, Deserialize)]
pub struct PartUrl {
    pub number: u32,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct PartUrls {
    pub parts: Vec<PartUrl>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Deserialize)]
pub struct StoredParts {
    pub parts: Vec<StoredPart>,
}

#[derive(Debug, Deserialize)]
pub struct Download {
    pub url: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ShareCreated {
    pub id: String,
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
pub struct ScanCreated {
    pub scan_id: String,
    pub upload: Presigned,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EngineResult {
    pub engine: String,
    pub clean: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The NSFW engine's scores per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<std::collections::BTreeMap<String, f32>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScanStatus {
    pub scan_id: String,
    pub status: String,
    #[serde(default)]
    pub verdict: Option<String>,
    #[serde(default)]
    pub engines: Vec<EngineResult>,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditPublicKey {
    pub key_id: String,
    pub public_key: String,
}

/// The body of every error answer.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub request_id: String,
}
