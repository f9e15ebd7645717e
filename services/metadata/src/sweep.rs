//! System work with no user behind it: the stale-upload sweep (a background job) and the org
//! purge (auth's, with a service token of the org).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::{files, store};

/// Removes files left in `pending_upload` for longer than the configured time: the object
/// (if the client put one), then the row, giving the bytes back to the quota. Returns how many
/// were removed. Files of an org auth no longer knows are left for the org purge.
pub async fn stale_uploads(core: &Core) -> Result<usize, MetadataError> {
    let before = OffsetDateTime::now_utc()
        - time::Duration::seconds(i64::try_from(core.config.stale_upload_secs).unwrap_or(i64::MAX));
    let mut tx = coffer_db::begin(&core.pool).await?;
    let stale = store::stale_uploads(&mut tx, before, 100).await?;
    tx.commit().await?;
    let mut removed = 0;
    for file in stale {
        let request_id = format!("sweep-{}", Uuid::new_v4().simple());
        // Under the file's lock (a complete of it waits, or has finished): an upload in parts
        // is aborted (its parts freed), any object removed, then the row.
        let swept = core
            .peers
            .as_service(file.org_id, request_id, async {
                let mut tx = core.tx(file.org_id).await?;
                let row = store::file_for_update(&mut tx, file.id).await?;
                if row.state != coffer_kit::vocab::FileStatus::PendingUpload {
                    return Ok(false);
                }
                files::abort_multipart(core, &mut tx, file.id).await?;
                core.peers.delete_object(&file.object_key).await?;
                let gone = store::delete_pending(&mut tx, file.id).await?;
                tx.commit().await?;
                Ok(gone)
            })
            .await;
        match swept {
            Ok(true) => removed += 1,
            Ok(false) | Err(MetadataError::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Deletes the objects of purged files whose delay is over (`object_delete_delay_secs`), each
/// acting for its org, and forgets them, a hundred at a time until none is due. An org that
/// cannot act (auth answers NotFound: disabled, or deleted and awaiting its purge, which deletes
/// every object of the org and these entries with it) has its entries put off by a day, neither
/// forgotten (its bytes would stay for good if the org came back) nor in the way of the others.
/// Returns how many were deleted.
pub async fn due_deletions(core: &Core) -> Result<usize, MetadataError> {
    const BATCH: usize = 100;
    // One replica sweeps at a time (the others skip this round): the lock lives as long as this
    // transaction, which holds one connection for the run.
    let mut lock = coffer_db::begin(&core.pool).await?;
    if !store::try_sweep_lock(&mut lock).await? {
        return Ok(0);
    }
    let mut deleted = 0;
    loop {
        let mut tx = coffer_db::begin(&core.pool).await?;
        let due = store::due_deletions(&mut tx, OffsetDateTime::now_utc(), BATCH as i64).await?;
        tx.commit().await?;
        let batch = due.len();
        for (org, key) in due {
            let request_id = format!("sweep-{}", Uuid::new_v4().simple());
            let done = core
                .peers
                .as_service(org, request_id, core.peers.delete_object(&key))
                .await;
            let mut tx = core.tx(org).await?;
            match done {
                Ok(()) => {
                    store::object_deleted(&mut tx, &key).await?;
                    deleted += 1;
                }
                Err(MetadataError::NotFound) => {
                    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
                    store::postpone_deletion(&mut tx, &key, later).await?;
                }
                // One entry failing (the store refusing it, say) does not hold up the others:
                // it is tried again in an hour.
                Err(error) => {
                    tracing::warn!(%error, "an object deletion failed; retrying in an hour");
                    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
                    store::postpone_deletion(&mut tx, &key, later).await?;
                }
            }
            tx.commit().await?;
        }
        if batch < BATCH {
            lock.commit().await?;
            return Ok(deleted);
        }
    }
}

/// Purges the files in the trash longer than `trash_retention_days`, each as its org (a service
/// token, so the purge is audited like a user's), a hundred at a time until none is left. An org
/// that cannot act is left for its own purge. Returns how many were purged.
pub async fn expired_trash(core: &Core) -> Result<usize, MetadataError> {
    const BATCH: usize = 100;
    let before = OffsetDateTime::now_utc()
        - time::Duration::days(i64::from(core.config.trash_retention_days));
    let mut purged = 0;
    loop {
        let mut tx = coffer_db::begin(&core.pool).await?;
        let due = store::expired_trash(&mut tx, before, BATCH as i64).await?;
        tx.commit().await?;
        let batch = due.len();
        let mut skipped = 0;
        for (org, id) in due {
            let request_id = format!("trash-{}", Uuid::new_v4().simple());
            match core
                .peers
                .as_service(
                    org,
                    request_id,
                    files::purge_in(core, org, id, Some(before)),
                )
                .await
            {
                Ok(true) => purged += 1,
                Ok(false) | Err(MetadataError::NotFound) => skipped += 1,
                Err(e) => return Err(e),
            }
        }
        // A batch that was all skipped would come back the same: stop until the next run.
        if batch < BATCH || skipped == batch {
            return Ok(purged);
        }
    }
}

/// How far an org purge got.
#[derive(Debug)]
pub struct Purged {
    /// Nothing of the org is left.
    pub done: bool,
    pub objects_deleted: u64,
}

/// Deletes the org's objects (all of them: rows or not, trashed or not, uploads never
/// completed), then, once none is left, every row of the org. Objects go first: the rows are
/// what an interrupted purge would need to find them again, and auth's credentials to delete
/// them outlive this (auth forgets the org only after every service is done).
pub async fn purge_org(core: &Core, org: Uuid) -> Result<Purged, MetadataError> {
    let page = core.peers.delete_prefix(format!("{org}/")).await?;
    let objects_deleted = u64::from(page.deleted);
    if page.more {
        return Ok(Purged {
            done: false,
            objects_deleted,
        });
    }
    // Uploads in parts still open: aborted, or their parts would stay in the store for good.
    let mut tx = core.tx(org).await?;
    let open = store::org_multiparts(&mut tx).await?;
    tx.commit().await?;
    for (key, upload_id) in open {
        core.peers.abort_multipart(&key, &upload_id).await?;
    }
    let mut tx = core.tx(org).await?;
    store::delete_org(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(%org, objects = page.deleted, "purged a deleted org's files and rows");
    Ok(Purged {
        done: true,
        objects_deleted,
    })
}
