//! The scan-only API: a client asks for a scan (a presigned PUT under `scans/<org>/`, within the
//! org's daily budget), submits it once the bytes are up, and reads its status and verdict.

use coffer_kit::audit::{Action, AuditRefused, Target};
use coffer_kit::vocab::ScanState;
use coffer_mesh::Caller;
use coffer_proto::v1::{self as pb};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::ScanServiceError;
use crate::events;
use crate::store::{self, NewJob, ResultRow, ScanRow, Subject};

/// Where a scan-only request's bytes go: apart from stored files, for the lifecycle rule.
pub fn scan_key(org: Uuid, id: Uuid) -> String {
    format!("scans/{org}/{id}")
}

/// Seconds until the next midnight UTC (when a daily budget starts again), at least 1.
fn secs_to_utc_midnight() -> u64 {
    let now = OffsetDateTime::now_utc();
    let since_midnight =
        u64::from(now.hour()) * 3600 + u64::from(now.minute()) * 60 + u64::from(now.second());
    (86_400 - since_midnight).max(1)
}

/// A scan id from the client: one that is not a UUID names nothing, the same answer as an
/// unknown one.
pub fn parse_scan_id(s: &str) -> Result<Uuid, ScanServiceError> {
    Uuid::try_parse(s).map_err(|_| ScanServiceError::NotFound)
}

/// Creates a scan-only request; returns its id and the presigned PUT for its bytes.
pub async fn create(
    core: &Core,
    c: &Caller,
    size: u64,
    metadata_json: &str,
) -> Result<(Uuid, pb::PresignedRequest), ScanServiceError> {
    let config = &core.config;
    if size > config.max_scan_bytes {
        return Err(ScanServiceError::TooLarge(format!(
            "size is above the largest scan accepted ({} bytes)",
            config.max_scan_bytes
        )));
    }
    let declared =
        i64::try_from(size).map_err(|_| ScanServiceError::invalid("size", "size is too large"))?;
    let metadata = if metadata_json.is_empty() {
        None
    } else {
        if metadata_json.len() > config.max_metadata_bytes {
            return Err(ScanServiceError::TooLarge(format!(
                "metadata is larger than {} bytes",
                config.max_metadata_bytes
            )));
        }
        let v: serde_json::Value = serde_json::from_str(metadata_json)
            .map_err(|_| ScanServiceError::invalid("metadata", "metadata must be a JSON object"))?;
        if !v.is_object() {
            return Err(ScanServiceError::invalid(
                "metadata",
                "metadata must be a JSON object",
            ));
        }
        // Postgres's jsonb cannot hold U+0000 in a key or a string.
        if holds_nul(&v) {
            return Err(ScanServiceError::invalid(
                "metadata",
                "metadata must not contain the character U+0000",
            ));
        }
        Some(v)
    };
    let id = Uuid::new_v4();
    // The user's token (audience storage-signer) goes with this call: the key is checked
    // against the caller's org there too. Signed first, so the usage row below is locked
    // for one short transaction, not across a call to another service.
    let upload = core
        .signer
        .presign_put(pb::PresignPutRequest {
            key: scan_key(c.org_id, id),
            size,
            content_type: "application/octet-stream".into(),
            sha256: String::new(),
            expires_in_seconds: config.scan_upload_expiry_secs,
        })
        .await?;
    let mut tx = core.tx(c.org_id).await?;
    let budget = i64::try_from(config.scan_only_bytes_per_day).unwrap_or(i64::MAX);
    if !store::charge_usage(&mut tx, declared, budget).await? {
        // The URL is dropped unseen: without the request's row its object is nobody's, and
        // the lifecycle rule takes anything put with it.
        return Err(ScanServiceError::OverBudget(
            "the org's scan-only bytes for today are used up; try again after midnight UTC",
            secs_to_utc_midnight(),
        ));
    }
    store::insert_scan(
        &mut tx,
        id,
        declared,
        metadata.as_ref(),
        config.scan_upload_expiry_secs,
    )
    .await?;
    tx.commit().await?;
    Ok((id, upload))
}

/// Whether a key or string anywhere in `v` holds U+0000.
fn holds_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A scan-only request and, once done, its result.
#[derive(Debug)]
pub struct Scan {
    pub row: ScanRow,
    pub result: Option<ResultRow>,
}

/// Submits a request whose bytes are up: they must be exactly as declared; the scan is queued.
/// Submitting twice is one submission.
pub async fn submit(core: &Core, c: &Caller, id: Uuid) -> Result<Scan, ScanServiceError> {
    let mut tx = core.tx(c.org_id).await?;
    let scan = store::scan(&mut tx, id, core.config.scan_upload_grace_secs)
        .await?
        .ok_or(ScanServiceError::NotFound)?;
    if scan.status == ScanState::Expired
        || (scan.status == ScanState::AwaitingUpload && !scan.uploadable)
    {
        return Err(ScanServiceError::Conflict(
            "the upload window of this scan has passed; create a new one",
        ));
    }
    if scan.status != ScanState::AwaitingUpload {
        tx.commit().await?;
        return status(core, c, id).await;
    }
    let key = scan_key(c.org_id, id);
    let head = core.signer.head(&key).await?;
    if !head.exists {
        return Err(ScanServiceError::Conflict(
            "the object has not been uploaded",
        ));
    }
    if i64::try_from(head.size).ok() != Some(scan.size) {
        return Err(ScanServiceError::Conflict(
            "the uploaded object's size differs from the declared size",
        ));
    }
    // Headers the upload URL did not set could make a reader decode other bytes than were
    // scanned: refuse the upload (the verdict would be about bytes nobody reads).
    if !head.foreign_headers.is_empty() || head.etag.is_empty() {
        return Err(ScanServiceError::Conflict(
            "the uploaded object carries headers its upload URL did not set",
        ));
    }
    // Atomic against the upload sweep, which may expire the request meanwhile.
    if !store::set_scan_status(&mut tx, id, ScanState::AwaitingUpload, ScanState::Queued).await? {
        return Err(ScanServiceError::Conflict(
            "the scan is no longer awaiting its upload",
        ));
    }
    store::enqueue(
        &mut tx,
        &NewJob {
            subject: Subject::Scan,
            subject_id: id,
            object_key: &key,
            size: scan.size,
            content_type: "",
            extension: "",
            object_etag: &head.etag,
            object_version: &head.version_id,
            declared_sha256: "",
        },
    )
    .await?;
    events::wake_workers(&mut tx).await?;
    tx.commit().await?;
    core.wake_workers();
    status(core, c, id).await
}

/// A request's status, with its result once done.
pub async fn status(core: &Core, c: &Caller, id: Uuid) -> Result<Scan, ScanServiceError> {
    let mut tx = core.tx(c.org_id).await?;
    let row = store::scan(&mut tx, id, core.config.scan_upload_grace_secs)
        .await?
        .ok_or(ScanServiceError::NotFound)?;
    let result = if row.status == ScanState::Done {
        store::result(&mut tx, id).await?
    } else {
        None
    };
    tx.commit().await?;
    Ok(Scan { row, result })
}

/// Deletes a scan-only request's verdict, hash and metadata (`store::delete_scan`), audited
/// (`scan.delete`) before it is committed: the log keeps that it happened, and a deletion the log
/// cannot take does not happen. A running scan is a conflict: delete it once it is done.
pub async fn delete(core: &Core, c: &Caller, id: Uuid) -> Result<(), ScanServiceError> {
    let mut tx = core.tx(c.org_id).await?;
    match store::delete_scan(&mut tx, id).await? {
        store::ScanDeleted::NotFound => return Err(ScanServiceError::NotFound),
        store::ScanDeleted::Running => {
            return Err(ScanServiceError::Conflict(
                "the scan is running; delete it once it is done",
            ));
        }
        store::ScanDeleted::Deleted => {}
    }
    core.audit
        .record(Action::ScanDelete, Target::Scan(id))
        .await
        .map_err(|AuditRefused(s)| ScanServiceError::Downstream(s))?;
    tx.commit().await?;
    Ok(())
}

/// The latest result of one of the caller org's files, with the versions it was reached with.
pub async fn file_result(
    core: &Core,
    c: &Caller,
    id: Uuid,
) -> Result<(store::ResultRow, serde_json::Value), ScanServiceError> {
    let mut tx = core.tx(c.org_id).await?;
    let found = store::file_result(&mut tx, id).await?;
    tx.commit().await?;
    found.ok_or(ScanServiceError::NotFound)
}

/// How far an org purge got here.
#[derive(Debug)]
pub struct Purged {
    pub done: bool,
    pub objects_deleted: u64,
}

/// Deletes the org's scan-only objects, then, once none is left, every row of the org here.
pub async fn purge_org(core: &Core, org: Uuid) -> Result<Purged, ScanServiceError> {
    let page = core.signer.delete_prefix(format!("scans/{org}/")).await?;
    let objects_deleted = u64::from(page.deleted);
    if page.more {
        return Ok(Purged {
            done: false,
            objects_deleted,
        });
    }
    let mut tx = core.tx(org).await?;
    store::delete_org(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(%org, objects = page.deleted, "purged a deleted org's scans");
    Ok(Purged {
        done: true,
        objects_deleted,
    })
}
