//! The queue's front door: metadata enqueues the scan of a completed upload, with the
//! uploader's token (the key must be the file's key in that org).

use coffer_mesh::Caller;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::ScanServiceError;
use crate::events;
use crate::store::{self, NewJob, Subject};

/// A completed upload to scan, as metadata describes it.
#[derive(Debug)]
pub struct Upload<'a> {
    pub file: &'a str,
    pub object_key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub extension: &'a str,
    pub etag: &'a str,
    pub version_id: &'a str,
    /// The SHA-256 the uploader declared, "" for none.
    pub sha256: &'a str,
}

pub fn parse_id(field: &'static str, s: &str) -> Result<Uuid, ScanServiceError> {
    Uuid::try_parse(s)
        .map_err(|_| ScanServiceError::invalid(field, format!("{field} must be a UUID")))
}

/// An extension the true-type check can use: lowercase ASCII letters and digits, at most 16.
fn sanitize_extension(e: &str) -> String {
    let e = e.to_ascii_lowercase();
    if e.len() <= 16
        && e.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        e
    } else {
        String::new()
    }
}

/// Queues the scan of a file (idempotent per file); returns the job's id.
pub async fn enqueue(core: &Core, c: &Caller, u: Upload<'_>) -> Result<Uuid, ScanServiceError> {
    let file = parse_id("file_id", u.file)?;
    if u.object_key != format!("{}/{file}", c.org_id) {
        return Err(ScanServiceError::Forbidden(
            "the object key is not the file's key in the caller's org",
        ));
    }
    let size = i64::try_from(u.size)
        .map_err(|_| ScanServiceError::invalid("size", "size is too large"))?;
    if u.content_type.len() > 255 {
        return Err(ScanServiceError::invalid(
            "content_type",
            "content_type is longer than 255 bytes",
        ));
    }
    let extension = sanitize_extension(u.extension);
    let sha256 = u.sha256.to_ascii_lowercase();
    if !(sha256.is_empty() || sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ScanServiceError::invalid(
            "sha256",
            "sha256 must be 64 hexadecimal digits",
        ));
    }
    // The ETag and version id come from metadata's HEAD; storage-signer checks them before it
    // signs anything with them, and the jobs table bounds their length.
    let mut tx = core.tx(c.org_id).await?;
    let id = store::enqueue(
        &mut tx,
        &NewJob {
            subject: Subject::File,
            subject_id: file,
            object_key: u.object_key,
            size,
            content_type: u.content_type,
            extension: &extension,
            object_etag: u.etag,
            object_version: u.version_id,
            declared_sha256: &sha256,
        },
    )
    .await?;
    events::wake_workers(&mut tx).await?;
    tx.commit().await?;
    core.wake_workers();
    Ok(id)
}
