//! Scan verdicts: the scan service records what a file's bytes were found to be; `clean` makes it
//! available, `nsfw` too unless the org's policy holds it, anything else quarantines it.

use coffer_kit::vocab::{FileStatus, Verdict as Found};
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::store::{self, FileRow, Trashed};
use crate::validate;

/// A verdict as the scan service sends it.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub org: &'a str,
    pub file: &'a str,
    /// `None`: unspecified on the wire.
    pub verdict: Option<coffer_kit::vocab::Verdict>,
    /// The object the verdict is about (its ETag at complete); empty: unnamed.
    pub etag: &'a str,
    /// A re-scan under a newer ruleset: the file may already have a verdict.
    pub rescan: bool,
    /// The SHA-256 of the bytes scanned; empty: none computed.
    pub sha256: &'a str,
    /// The org's policy quarantines this verdict (`nsfw` under `quarantine`).
    pub hold: bool,
}

/// Records a verdict on the file it names (in the trash too).
pub async fn record(core: &Core, v: Verdict<'_>) -> Result<FileRow, MetadataError> {
    let org = Uuid::try_parse(v.org)
        .map_err(|_| MetadataError::invalid("org_id", "org_id must be a UUID"))?;
    let id = validate::target(v.file)?;
    let verdict = v.verdict.ok_or_else(|| {
        MetadataError::invalid(
            "verdict",
            "verdict must be clean, nsfw, sensitive, suspicious, infected or failed",
        )
    })?;
    let computed = validate::sha256(v.sha256)?;
    let mut tx = core.tx(org).await?;
    let current = store::file_for_update(&mut tx, id).await?;
    // Complete queues the scan before its own `scanning` commits: a complete that failed after
    // queueing (the audit log away, the database gone) leaves the file `pending_upload` with a
    // job. Refusing as a conflict would end that job, and the complete's retry would then find it
    // done and not queue it again: the file would stay `scanning` for good. The scan waits.
    if current.state == FileStatus::PendingUpload {
        return Err(MetadataError::UploadIncomplete);
    }
    // The scan compares a declared SHA-256 itself; this is the second lock on the same door:
    // bytes other than declared never become `available` (by `clean`, or by `nsfw` unheld).
    // A re-scan that finds the same verdict leaves the file where it is (below): an available
    // file stays downloadable whatever `hold` says.
    let unchanged = v.rescan
        && current.state != FileStatus::Scanning
        && current.verdict.as_deref() == Some(verdict.as_str());
    let downloadable = FileStatus::after(verdict, v.hold) == FileStatus::Available
        || (unchanged && current.state == FileStatus::Available);
    let verdict = match (&current.sha256, &computed) {
        (Some(declared), Some(got)) if declared != got && downloadable => Found::Failed,
        // Fail closed: such a verdict on a file with a declared hash must say what it hashed
        // (a scan worker older than the check sends none; refused, it retries).
        (Some(_), None) if downloadable => {
            return Err(MetadataError::invalid(
                "sha256",
                "a verdict that leaves a file with a declared SHA-256 downloadable must carry the SHA-256 of the bytes scanned",
            ));
        }
        _ => verdict,
    };
    let to = FileStatus::after(verdict, v.hold);
    // A verdict that names its object must name the one the file was pinned to at complete.
    // (Only the scan service calls this; "" is a verdict that names none: a job queued before
    // objects were pinned, or the bench recording verdicts itself.)
    if let Some(pinned) = &current.object_etag
        && !v.etag.is_empty()
        && pinned != v.etag
    {
        return Err(MetadataError::Conflict(
            "the verdict is about another object than the file's",
        ));
    }
    // From `scanning`; or, for a re-scan under newer engines, from a decided state — unless the
    // re-scan found what the file was already found to be: then nothing moves, so an admin's
    // release stands, and so does the NSFW policy the verdict was first recorded under.
    let unchanged = unchanged && current.verdict.as_deref() == Some(verdict.as_str());
    let mut moved = None;
    let from_states: &[FileStatus] = if unchanged {
        &[]
    } else if v.rescan {
        &[
            FileStatus::Scanning,
            FileStatus::Available,
            FileStatus::Quarantined,
        ]
    } else {
        &[FileStatus::Scanning]
    };
    for from in from_states {
        // A verdict lands whether or not the file is in the trash: restoring it must bring
        // back what its bytes were last found to be, never an older verdict.
        moved = store::transition(&mut tx, id, *from, to, Some(verdict), Trashed::Include).await?;
        if moved.is_some() {
            break;
        }
    }
    let mut file = match moved {
        Some(f) => f,
        None => {
            // The same verdict twice is one verdict; anything else is a state conflict.
            if current.verdict.as_deref() != Some(verdict.as_str()) {
                return Err(MetadataError::Conflict("the file is not being scanned"));
            }
            current
        }
    };
    // What `coffer get` and other clients check the bytes they download against: the hash of
    // the bytes scanned, replacing a declared one that differed (the verdict then says `failed`;
    // should an admin release the file, its `sha256` is that of the bytes served).
    if let Some(sha) = &computed
        && file.sha256.as_deref() != Some(sha.as_str())
    {
        file = store::record_sha256(&mut tx, id, sha).await?;
    }
    tx.commit().await?;
    Ok(file)
}
