//! Files: an upload's life (create with a presigned PUT, complete once the object is checked,
//! then scanning), reading, renaming and moving, the trash, purging, downloads and the release of
//! a quarantined file.

use coffer_kit::audit::{Action, Target};
use coffer_kit::vocab::FileStatus;
use coffer_mesh::Caller;
use coffer_proto::v1::{self as pb};
use coffer_token::Role;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::store::{self, FileRow, Trashed};
use crate::validate;

/// What a client declares of a file it is about to upload.
#[derive(Debug)]
pub struct Declared<'a> {
    pub name: &'a str,
    pub folder: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub sha256: &'a str,
}

/// Why a file cannot be downloaded or shared, if it cannot.
pub fn check_downloadable(f: &FileRow) -> Result<(), MetadataError> {
    match f.status() {
        FileStatus::Available => Ok(()),
        FileStatus::Quarantined => Err(MetadataError::Quarantined),
        FileStatus::Trashed => Err(MetadataError::Conflict("the file is in the trash")),
        FileStatus::PendingUpload | FileStatus::Scanning => Err(MetadataError::NotReady),
    }
}

/// Why an uploaded object cannot become the file, if it cannot: its size or checksum differ
/// from the declared ones, the store reports no ETag to pin it by, or it carries response headers
/// its upload URL did not set (a `Content-Encoding: gzip` would have browsers decode it into bytes
/// the scanner never saw). Headers are named, never their values.
fn unacceptable(file: &FileRow, head: &pb::ObjectInfo) -> Option<String> {
    if head.size != file.size as u64 {
        return Some("the uploaded object's size differs from the declared size".into());
    }
    if let Some(want) = &file.sha256
        && !head.sha256.is_empty()
        && &head.sha256 != want
    {
        return Some("the uploaded object's SHA-256 differs from the declared one".into());
    }
    if !head.foreign_headers.is_empty() {
        return Some(format!(
            "the uploaded object carries headers its upload URL did not set: {}",
            head.foreign_headers.join(", ")
        ));
    }
    if head.content_type != file.content_type {
        return Some("the uploaded object's content type differs from the declared one".into());
    }
    if head.etag.is_empty() {
        return Some("the object store reported no ETag for the object".into());
    }
    None
}

/// How a new file's bytes go to the store.
pub enum Upload {
    /// One presigned PUT.
    Put(pb::PresignedRequest),
    /// In parts (a file above the multipart threshold).
    Multipart(pb::MultipartPlan),
}

/// Creates a file in `pending_upload`, reserving its size in the quota, and the presigned PUT
/// its bytes go through — or, above the multipart threshold, the store's multipart upload.
pub async fn create(
    core: &Core,
    c: &Caller,
    d: Declared<'_>,
) -> Result<(FileRow, Upload), MetadataError> {
    let name = validate::name("name", d.name)?;
    let folder = validate::folder("folder_id", d.folder)?;
    let sha256 = validate::sha256(d.sha256)?;
    if d.size > core.config.max_file_bytes {
        return Err(MetadataError::TooLarge(format!(
            "size is above the largest file accepted ({} bytes)",
            core.config.max_file_bytes
        )));
    }
    if d.content_type.is_empty() {
        return Err(MetadataError::invalid(
            "content_type",
            "content_type is required",
        ));
    }
    // Checked before the row is written (the signer checks it again when it signs).
    if !coffer_kit::media_type::is_valid(d.content_type) {
        return Err(MetadataError::invalid(
            "content_type",
            coffer_kit::media_type::REQUIREMENT,
        ));
    }
    // A presigned part cannot sign the whole file's hash: for an upload in parts the scan
    // compares the declared SHA-256 with the bytes (other bytes end `failed`, never available).
    let size = d.size as i64;
    let mut tx = core.tx(c.org_id).await?;
    store::ensure_org(&mut tx, core.quota()).await?;
    if let Some(id) = folder
        && store::live_folder(&mut tx, id).await?.is_none()
    {
        return Err(MetadataError::invalid("folder_id", "no such folder"));
    }
    store::reserve_quota(&mut tx, size).await.inspect_err(|e| {
        if matches!(e, MetadataError::QuotaExceeded { .. }) {
            crate::metrics::metrics().quota_refusals.inc();
        }
    })?;
    let file = store::insert_file(
        &mut tx,
        &store::NewFile {
            id: Uuid::new_v4(),
            folder,
            name: &name,
            size,
            content_type: d.content_type,
            sha256: sha256.as_deref(),
            created_by: c.user_id,
        },
    )
    .await?;
    if let Some((part_size, part_count)) = core.config.multipart_plan(d.size) {
        let upload_id = core
            .peers
            .create_multipart(&file.object_key, d.content_type)
            .await?;
        let saved = async {
            store::insert_multipart(
                &mut tx,
                file.id,
                &store::Multipart {
                    upload_id: upload_id.clone(),
                    part_size: part_size as i64,
                    part_count: part_count as i32,
                    assembled: false,
                },
            )
            .await?;
            tx.commit().await.map_err(MetadataError::from)
        }
        .await;
        if let Err(e) = saved {
            // No row names the store's upload: abort it now (the bucket's lifecycle rule for
            // incomplete uploads would, a day later).
            let _ = core
                .peers
                .abort_multipart(&file.object_key, &upload_id)
                .await;
            return Err(e);
        }
        let expires_at = file.created_at
            + time::Duration::seconds(
                i64::try_from(core.config.stale_upload_secs).unwrap_or(i64::MAX / 2),
            );
        let plan = pb::MultipartPlan {
            part_size,
            part_count,
            expires_at: crate::wire::ts(expires_at),
        };
        return Ok((file, Upload::Multipart(plan)));
    }
    // Signed before the row is committed: a refusal leaves nothing behind.
    let upload = core
        .peers
        .presign_put(pb::PresignPutRequest {
            key: file.object_key.clone(),
            size: d.size,
            content_type: d.content_type.to_owned(),
            sha256: sha256.unwrap_or_default(),
            expires_in_seconds: 0,
        })
        .await?;
    tx.commit().await?;
    crate::metrics::presigned("upload");
    Ok((file, Upload::Put(upload)))
}

/// The parts a pending multipart file is cut into: its upload, and each asked part's exact size.
async fn pending_multipart(
    core: &Core,
    c: &Caller,
    id: uuid::Uuid,
) -> Result<(FileRow, store::Multipart), MetadataError> {
    let mut tx = core.tx(c.org_id).await?;
    let file = store::file(&mut tx, id).await?;
    let multipart = store::multipart_of(&mut tx, id).await?;
    tx.commit().await?;
    if file.status() != FileStatus::PendingUpload {
        return Err(MetadataError::Conflict(
            "the file's upload is already complete",
        ));
    }
    let multipart = multipart.ok_or(MetadataError::Conflict(
        "the file is uploaded with one PUT, not in parts",
    ))?;
    Ok((file, multipart))
}

/// Presigned UploadPart PUTs for the part `numbers` of a pending multipart file (at most 100).
pub async fn presign_parts(
    core: &Core,
    c: &Caller,
    id: &str,
    numbers: &[u32],
) -> Result<Vec<pb::UploadPartUrl>, MetadataError> {
    let id = validate::target(id)?;
    if numbers.is_empty() || numbers.len() > 100 {
        return Err(MetadataError::invalid(
            "numbers",
            "ask for 1 to 100 parts a call",
        ));
    }
    let (file, m) = pending_multipart(core, c, id).await?;
    let count = m.part_count as u32;
    let mut specs = Vec::with_capacity(numbers.len());
    for &n in numbers {
        if !(1..=count).contains(&n) {
            return Err(MetadataError::invalid(
                "numbers",
                format!("this file has parts 1 to {count}"),
            ));
        }
        let start = u64::from(n - 1) * m.part_size as u64;
        let size = (file.size as u64 - start).min(m.part_size as u64);
        specs.push(pb::PartSpec { number: n, size });
    }
    let signed = core
        .peers
        .presign_parts(&file.object_key, &m.upload_id, specs)
        .await?;
    crate::metrics::presigned("upload");
    Ok(signed
        .into_iter()
        .map(|p| pb::UploadPartUrl {
            number: p.number,
            request: p.request,
        })
        .collect())
}

/// The parts the store holds of a pending multipart file (a client resumes from them).
pub async fn uploaded_parts(
    core: &Core,
    c: &Caller,
    id: &str,
) -> Result<Vec<pb::UploadedFilePart>, MetadataError> {
    let id = validate::target(id)?;
    let (file, m) = pending_multipart(core, c, id).await?;
    let parts = core
        .peers
        .list_parts(&file.object_key, &m.upload_id)
        .await?;
    Ok(parts
        .into_iter()
        .map(|p| pb::UploadedFilePart {
            number: p.number,
            size: p.size,
            etag: p.etag,
        })
        .collect())
}

/// Completes an upload: the object must be exactly the declared one; it is pinned (ETag and
/// version) and queued for its scan, and the file becomes `scanning`.
pub async fn complete(
    core: &Core,
    c: &Caller,
    id: &str,
    parts: Vec<pb::UploadedFilePart>,
) -> Result<FileRow, MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    // Locked: two completes, or a complete and the sweep, the trash or a purge, take turns.
    let file = store::file_for_update(&mut tx, id).await?;
    if file.status() != FileStatus::PendingUpload {
        return Err(MetadataError::Conflict(
            "the file's upload is already complete",
        ));
    }
    // In parts: the store assembles the object from the parts named, once (that is committed at
    // once, so a complete that fails after it is retried without the store); then the object is
    // checked as a PUT's is.
    match store::multipart_of(&mut tx, id).await? {
        Some(m) if m.assembled => {}
        Some(m) => {
            // Every part, once, in order: the store would assemble any subset it is given.
            let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
            if !numbers.iter().copied().eq(1..=m.part_count as u32) {
                return Err(MetadataError::invalid(
                    "parts",
                    format!(
                        "complete with every part, 1 to {}, each once and in order (number and etag)",
                        m.part_count
                    ),
                ));
            }
            let mut named = Vec::with_capacity(parts.len());
            for p in parts {
                let etag = p.etag.trim_matches('"');
                if etag.is_empty()
                    || etag.len() > 128
                    || !etag.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
                {
                    return Err(MetadataError::invalid(
                        "parts",
                        "each part needs the etag the store answered its PUT with",
                    ));
                }
                named.push(pb::CompletedPart {
                    number: p.number,
                    etag: etag.to_owned(),
                });
            }
            core.peers
                .complete_multipart(&file.object_key, &m.upload_id, named)
                .await?;
            store::multipart_assembled(&mut tx, id).await?;
            tx.commit().await?;
            tx = core.tx(c.org_id).await?;
            store::file_for_update(&mut tx, id).await?;
        }
        None if !parts.is_empty() => {
            return Err(MetadataError::invalid(
                "parts",
                "this file was uploaded with one PUT: complete it without parts",
            ));
        }
        None => {}
    }
    let head = core.peers.head(&file.object_key).await?;
    if !head.exists {
        return Err(MetadataError::Conflict("the object has not been uploaded"));
    }
    if let Some(why) = unacceptable(&file, &head) {
        // The upload URL writes once: remove what it wrote, so the client can PUT again
        // (while the URL lives) instead of being stuck with an object nobody may use.
        core.peers.delete_object(&file.object_key).await?;
        return Err(MetadataError::BadObject(format!(
            "{why}; the object was removed: upload it again with exactly the headers given"
        )));
    }
    // The scan reads this object and every download URL is signed for it.
    store::set_object(
        &mut tx,
        id,
        &head.etag,
        (!head.version_id.is_empty()).then_some(head.version_id.as_str()),
    )
    .await?;
    let file = store::transition(
        &mut tx,
        id,
        FileStatus::PendingUpload,
        FileStatus::Scanning,
        None,
        Trashed::Skip,
    )
    .await?
    .ok_or(MetadataError::Conflict(
        "the file's upload is already complete",
    ))?;
    store::delete_multipart(&mut tx, id).await?;
    // The job is queued before the state change commits: if scan cannot take it, the file
    // stays `pending_upload` and complete may be retried (queuing is idempotent per file).
    // The audit event and the job go side by side; both must succeed.
    let queued = core.peers.enqueue_scan(pb::EnqueueScanRequest {
        file_id: id.to_string(),
        object_key: file.object_key.clone(),
        size: file.size as u64,
        content_type: file.content_type.clone(),
        extension: validate::extension(&file.name),
        etag: head.etag.clone(),
        version_id: head.version_id.clone(),
        sha256: file.sha256.clone().unwrap_or_default(),
    });
    let (logged, queued) = tokio::join!(core.audit(Action::FileUpload, Target::File(id)), queued);
    logged?;
    queued?;
    tx.commit().await?;
    Ok(file)
}

/// A file of the caller's org.
pub async fn get(core: &Core, c: &Caller, id: &str) -> Result<FileRow, MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    let file = store::file(&mut tx, id).await?;
    tx.commit().await?;
    Ok(file)
}

/// Renames a file (`name`) and/or moves it (`folder`: `Some("")` is the root).
pub async fn update(
    core: &Core,
    c: &Caller,
    id: &str,
    name: Option<&str>,
    folder: Option<&str>,
) -> Result<FileRow, MetadataError> {
    let id = validate::target(id)?;
    let name = name.map(|n| validate::name("name", n)).transpose()?;
    let folder = folder
        .map(|p| validate::folder("folder_id", p))
        .transpose()?;
    let mut tx = core.tx(c.org_id).await?;
    if let Some(Some(target)) = folder
        && store::live_folder(&mut tx, target).await?.is_none()
    {
        return Err(MetadataError::invalid("folder_id", "no such folder"));
    }
    let file = store::update_file(&mut tx, id, name.as_deref(), folder).await?;
    if name.is_some() {
        core.audit(Action::FileRename, Target::File(id)).await?;
    }
    if folder.is_some() {
        core.audit(Action::FileMove, Target::File(id)).await?;
    }
    tx.commit().await?;
    Ok(file)
}

/// Moves a file to the trash.
pub async fn trash(core: &Core, c: &Caller, id: &str) -> Result<FileRow, MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    abort_multipart(core, &mut tx, id).await?;
    let file = store::trash_file(&mut tx, id).await?;
    core.audit(Action::FileDelete, Target::File(id)).await?;
    tx.commit().await?;
    Ok(file)
}

/// Aborts the file's multipart upload, if it has one still open (its parts are freed), and
/// forgets it, in the caller's transaction.
pub async fn abort_multipart(
    core: &Core,
    tx: &mut coffer_db::TenantTx,
    id: uuid::Uuid,
) -> Result<(), MetadataError> {
    // The file's row first, then its upload's (the order complete takes them in).
    let file = store::file_for_update(tx, id).await?;
    if let Some(m) = store::multipart_of(tx, id).await? {
        if !m.assembled {
            core.peers
                .abort_multipart(&file.object_key, &m.upload_id)
                .await?;
        }
        store::delete_multipart(tx, id).await?;
    }
    Ok(())
}

/// Brings a file back from the trash.
pub async fn restore(core: &Core, c: &Caller, id: &str) -> Result<FileRow, MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    let current = store::file(&mut tx, id).await?;
    // Trashing a pending upload in parts aborted it (its parts freed): nothing could complete it.
    if current.state == FileStatus::PendingUpload
        && u64::try_from(current.size)
            .ok()
            .and_then(|size| core.config.multipart_plan(size))
            .is_some()
    {
        return Err(MetadataError::Conflict(
            "an upload in parts that was deleted cannot be resumed; upload the file again",
        ));
    }
    let file = store::restore_file(&mut tx, id).await?;
    core.audit(Action::FileRestore, Target::File(id)).await?;
    tx.commit().await?;
    Ok(file)
}

/// Deletes a file for good: its row, giving its bytes back, and its object (every version) —
/// at once when `object_delete_delay_secs` is 0, else queued for the deletion sweep once no
/// point-in-time restore can bring the row back.
pub async fn purge(core: &Core, c: &Caller, id: &str) -> Result<(), MetadataError> {
    let id = validate::target(id)?;
    purge_in(core, c.org_id, id, None).await.map(|_| ())
}

/// Purges file `id` of `org` (audited as `file.purge` by whoever the call acts for: the user, or
/// the org's service token for the trash's retention). With `trashed_before`, only a file in the
/// trash since before then is purged (false otherwise: restored or trashed again meanwhile).
pub async fn purge_in(
    core: &Core,
    org: uuid::Uuid,
    id: uuid::Uuid,
    trashed_before: Option<time::OffsetDateTime>,
) -> Result<bool, MetadataError> {
    let mut tx = core.tx(org).await?;
    // Locked, so concurrent purges of one file wait for each other.
    let file = store::file_for_update(&mut tx, id).await?;
    if let Some(before) = trashed_before
        && file.trashed_at.is_none_or(|t| t >= before)
    {
        return Ok(false);
    }
    core.audit(Action::FilePurge, Target::File(id)).await?;
    abort_multipart(core, &mut tx, id).await?;
    let delay = core.config.object_delete_delay_secs;
    if delay == 0 {
        // The object first: if that fails the row stays, and purge can be retried.
        core.peers.delete_object(&file.object_key).await?;
    } else {
        let after = time::OffsetDateTime::now_utc()
            + time::Duration::seconds(i64::try_from(delay).unwrap_or(i64::MAX / 2));
        store::queue_object_deletion(&mut tx, &file.object_key, file.size, after).await?;
    }
    store::delete_file(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// A presigned GET of an available file, once its download is in the audit log.
pub async fn download(
    core: &Core,
    c: &Caller,
    id: &str,
) -> Result<pb::DownloadGrant, MetadataError> {
    let id = validate::target(id)?;
    let file = store::file_alone(&core.pool, c.org_id, id).await?;
    check_downloadable(&file)?;
    // No URL leaves before its download is in the log. Signing and logging run side by side
    // (one hop less of latency); if signing fails after the event was written, the log holds
    // a download that did not happen, never the reverse.
    let (grant, logged) = tokio::join!(
        core.peers.presign_get(&file, 0),
        core.audit(Action::FileDownload, Target::File(id))
    );
    logged?;
    crate::metrics::presigned("download");
    grant
}

/// Releases a quarantined file (owners and admins): it becomes available as it is.
pub async fn release(core: &Core, c: &Caller, id: &str) -> Result<FileRow, MetadataError> {
    if !matches!(c.role, Role::Owner | Role::Admin) {
        return Err(MetadataError::Forbidden(
            "only owners and admins release quarantined files",
        ));
    }
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    let current = store::file(&mut tx, id).await?;
    if current.status() != FileStatus::Quarantined {
        return Err(MetadataError::Conflict("the file is not quarantined"));
    }
    let (from, to) = (FileStatus::Quarantined, FileStatus::Available);
    let file = store::transition(&mut tx, id, from, to, None, Trashed::Skip)
        .await?
        .ok_or(MetadataError::Conflict("the file is not quarantined"))?;
    core.audit(Action::FileRelease, Target::File(id)).await?;
    tx.commit().await?;
    Ok(file)
}
