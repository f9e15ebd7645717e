//! SQL for folders, files, shares and quotas. Every function takes a [`TenantTx`] and works on its
//! org's rows (the org comes from the transaction, never from a separate argument), except the two
//! lookups that find the org ([`find_share_by_token`], [`stale_uploads`]), which run on a plain
//! connection with a lookup capability. Nothing here logs a parameter: they hold names.

use coffer_db::TenantTx;
use coffer_kit::vocab::{FileStatus, Verdict};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::MetadataError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FolderRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub name: String,
    pub object_key: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: Option<String>,
    /// The upload/scan state (never `Trashed`: that is `trashed_at`).
    #[sqlx(try_from = "String")]
    pub state: FileStatus,
    pub verdict: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub trashed_at: Option<OffsetDateTime>,
    /// The uploaded object's ETag and version, from complete on.
    pub object_etag: Option<String>,
    pub object_version: Option<String>,
}

impl FileRow {
    /// API.md's status: `trashed` wins over the upload/scan state.
    pub fn status(&self) -> FileStatus {
        if self.trashed_at.is_some() {
            FileStatus::Trashed
        } else {
            self.state
        }
    }
}

/// The listing reads: a page of a folder's live children by name. Parameters: $1 the parent
/// (NULL for the root), $2 the cursor (the last id of the previous page, or NULL), $3 the page
/// size, $4 the org. Each names the org and the parent as plain conditions, so a page is one
/// range of the `*_listing` indexes (migration 0003) whatever the org or the table holds. A
/// test checks the pages they touch. They order by the parent too (one value, so the order is by
/// name): `IS NULL` is not an equality to the planner, and without it the root's page was a sort
/// of every file in the root.
pub mod sql {
    pub const ROOT_FOLDERS: &str = "SELECT id, parent_id, name, created_at FROM folders
         WHERE org_id = $4 AND parent_id IS NULL AND $1::uuid IS NULL AND trashed_at IS NULL
           AND ($2::uuid IS NULL OR (name, id) > (SELECT name, id FROM folders WHERE id = $2))
         ORDER BY parent_id, name, id LIMIT $3";
    pub const CHILD_FOLDERS: &str = "SELECT id, parent_id, name, created_at FROM folders
         WHERE org_id = $4 AND parent_id = $1 AND trashed_at IS NULL
           AND ($2::uuid IS NULL OR (name, id) > (SELECT name, id FROM folders WHERE id = $2))
         ORDER BY parent_id, name, id LIMIT $3";
    pub const ROOT_FILES: &str = "SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM files
         WHERE org_id = $4 AND folder_id IS NULL AND $1::uuid IS NULL AND trashed_at IS NULL
           AND ($2::uuid IS NULL OR (name, id) > (SELECT name, id FROM files WHERE id = $2))
         ORDER BY folder_id, name, id LIMIT $3";
    pub const CHILD_FILES: &str = "SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM files
         WHERE org_id = $4 AND folder_id = $1 AND trashed_at IS NULL
           AND ($2::uuid IS NULL OR (name, id) > (SELECT name, id FROM files WHERE id = $2))
         ORDER BY folder_id, name, id LIMIT $3";
    /// The trash: the top-most trashed folders (a trashed folder's trashed subfolders are in
    /// it) and every trashed file (each can be restored or purged on its own), by name. $1 is
    /// unused (always NULL), so the parameters are those of the listings above.
    pub const TRASHED_FOLDERS: &str =
        "SELECT f.id, f.parent_id, f.name, f.created_at FROM folders f
         WHERE f.org_id = $4 AND $1::uuid IS NULL AND f.trashed_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM folders p
                            WHERE p.org_id = $4 AND p.id = f.parent_id AND p.trashed_at IS NOT NULL)
           AND ($2::uuid IS NULL
                OR (f.name, f.id) > (SELECT name, id FROM folders WHERE org_id = $4 AND id = $2))
         ORDER BY f.name, f.id LIMIT $3";
    pub const TRASHED_FILES: &str = "SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM files
         WHERE org_id = $4 AND $1::uuid IS NULL AND trashed_at IS NOT NULL
           AND ($2::uuid IS NULL OR (name, id) > (SELECT name, id FROM files WHERE org_id = $4 AND id = $2))
         ORDER BY name, id LIMIT $3";
}

/// What a listing lists: a folder's live children (the top level: `None`), or the trash.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Folder(Option<Uuid>),
    Trash,
}

/// Creates the org's rows on its first write, with the default quota.
pub async fn ensure_org(tx: &mut TenantTx, quota: i64) -> Result<(), MetadataError> {
    sqlx::query("INSERT INTO orgs (id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO quotas (org_id, limit_bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tx.org())
        .bind(quota)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Serialises folder moves within one org, so two concurrent moves cannot build a cycle.
pub async fn lock_tree(tx: &mut TenantTx) -> Result<(), MetadataError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// === folders ===

/// A live folder's ancestry from the top: (id, name), the folder itself last. Empty when the
/// folder is not a live one of the transaction's org.
pub async fn folder_path(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Vec<(Uuid, String)>, MetadataError> {
    Ok(sqlx::query_as(
        "WITH RECURSIVE up (id, name, parent_id, depth) AS (
             SELECT id, name, parent_id, 0 FROM folders
              WHERE org_id = $1 AND id = $2 AND trashed_at IS NULL
             UNION ALL
             SELECT f.id, f.name, f.parent_id, up.depth + 1 FROM folders f
               JOIN up ON f.id = up.parent_id
              WHERE f.org_id = $1 AND up.depth < 10000)
         SELECT id, name FROM up ORDER BY depth DESC",
    )
    .bind(tx.org())
    .bind(id)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn live_folder(tx: &mut TenantTx, id: Uuid) -> Result<Option<FolderRow>, MetadataError> {
    Ok(sqlx::query_as(
        "SELECT id, parent_id, name, created_at FROM folders WHERE id = $1 AND trashed_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Checks that `parent` is a live folder of this org (or the top level).
pub async fn require_parent(tx: &mut TenantTx, parent: Option<Uuid>) -> Result<(), MetadataError> {
    match parent {
        None => Ok(()),
        Some(id) => live_folder(tx, id)
            .await?
            .map(|_| ())
            .ok_or_else(|| MetadataError::invalid("parent_id", "no such folder")),
    }
}

pub async fn insert_folder(
    tx: &mut TenantTx,
    parent: Option<Uuid>,
    name: &str,
) -> Result<FolderRow, MetadataError> {
    Ok(sqlx::query_as(
        "INSERT INTO folders (id, org_id, parent_id, name) VALUES ($1, $2, $3, $4)
         RETURNING id, parent_id, name, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(tx.org())
    .bind(parent)
    .bind(name)
    .fetch_one(&mut **tx)
    .await?)
}

/// True if `candidate` is `folder` or lies below it.
pub async fn is_within(
    tx: &mut TenantTx,
    candidate: Uuid,
    folder: Uuid,
) -> Result<bool, MetadataError> {
    let (found,): (bool,) = sqlx::query_as(
        "WITH RECURSIVE up AS (
             SELECT id, parent_id, 0 AS depth FROM folders WHERE id = $1
             UNION ALL
             SELECT f.id, f.parent_id, up.depth + 1 FROM folders f JOIN up ON f.id = up.parent_id
             WHERE up.depth < 10000
         )
         SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)",
    )
    .bind(candidate)
    .bind(folder)
    .fetch_one(&mut **tx)
    .await?;
    Ok(found)
}

pub async fn update_folder(
    tx: &mut TenantTx,
    id: Uuid,
    name: Option<&str>,
    parent: Option<Option<Uuid>>,
) -> Result<FolderRow, MetadataError> {
    sqlx::query_as(
        "UPDATE folders SET name = COALESCE($2, name),
                            parent_id = CASE WHEN $3 THEN $4 ELSE parent_id END,
                            updated_at = now()
         WHERE id = $1 AND trashed_at IS NULL RETURNING id, parent_id, name, created_at",
    )
    .bind(id)
    .bind(name)
    .bind(parent.is_some())
    .bind(parent.flatten())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MetadataError::NotFound)
}

/// Trashes a live folder, every live folder below it and every live file in them.
pub async fn trash_folder(tx: &mut TenantTx, id: Uuid) -> Result<(), MetadataError> {
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "WITH RECURSIVE sub AS (
             SELECT id FROM folders WHERE id = $1 AND trashed_at IS NULL
             UNION
             SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id WHERE f.trashed_at IS NULL
         )
         UPDATE folders SET trashed_at = now(), updated_at = now()
         WHERE id IN (SELECT id FROM sub) RETURNING id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    if ids.is_empty() {
        return Err(MetadataError::NotFound);
    }
    let ids: Vec<Uuid> = ids.into_iter().map(|(id,)| id).collect();
    sqlx::query(
        "UPDATE files SET trashed_at = now(), updated_at = now()
         WHERE org_id = $1 AND folder_id = ANY($2) AND trashed_at IS NULL",
    )
    .bind(tx.org())
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn child_folders(
    tx: &mut TenantTx,
    place: Place,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<FolderRow>, MetadataError> {
    let (statement, parent) = match place {
        Place::Folder(Some(parent)) => (sql::CHILD_FOLDERS, Some(parent)),
        Place::Folder(None) => (sql::ROOT_FOLDERS, None),
        Place::Trash => (sql::TRASHED_FOLDERS, None),
    };
    Ok(sqlx::query_as(statement)
        .bind(parent)
        .bind(after)
        .bind(limit)
        .bind(tx.org())
        .fetch_all(&mut **tx)
        .await?)
}

pub async fn child_files(
    tx: &mut TenantTx,
    place: Place,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<FileRow>, MetadataError> {
    let (statement, folder) = match place {
        Place::Folder(Some(folder)) => (sql::CHILD_FILES, Some(folder)),
        Place::Folder(None) => (sql::ROOT_FILES, None),
        Place::Trash => (sql::TRASHED_FILES, None),
    };
    Ok(sqlx::query_as(statement)
        .bind(folder)
        .bind(after)
        .bind(limit)
        .bind(tx.org())
        .fetch_all(&mut **tx)
        .await?)
}

// === files ===

pub struct NewFile<'a> {
    pub id: Uuid,
    pub folder: Option<Uuid>,
    pub name: &'a str,
    pub size: i64,
    pub content_type: &'a str,
    pub sha256: Option<&'a str>,
    pub created_by: Uuid,
}

/// Counts `size` against the quota; `QuotaExceeded` (with the figures) if it does not fit.
pub async fn reserve_quota(tx: &mut TenantTx, size: i64) -> Result<(), MetadataError> {
    // Purged bytes still stored (kept for the recovery window) may take up to one more quota.
    let done = sqlx::query(
        "UPDATE quotas SET used_bytes = used_bytes + $2
         WHERE org_id = $1 AND used_bytes + $2 <= limit_bytes
           AND used_bytes + pending_delete_bytes + $2 - limit_bytes <= limit_bytes",
    )
    .bind(tx.org())
    .bind(size)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    // What counts as used: the live files, and purged bytes beyond the one extra quota they may
    // take (so used + asked > limit says why either way).
    let (used, limit): (i64, i64) = sqlx::query_as(
        "SELECT GREATEST(used_bytes, used_bytes + pending_delete_bytes - limit_bytes), limit_bytes
         FROM quotas WHERE org_id = $1",
    )
    .bind(tx.org())
    .fetch_one(&mut **tx)
    .await?;
    Err(MetadataError::QuotaExceeded {
        used,
        limit,
        asked: size as u64,
    })
}

pub async fn release_quota(tx: &mut TenantTx, size: i64) -> Result<(), MetadataError> {
    sqlx::query("UPDATE quotas SET used_bytes = GREATEST(used_bytes - $2, 0) WHERE org_id = $1")
        .bind(tx.org())
        .bind(size)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn insert_file(tx: &mut TenantTx, f: &NewFile<'_>) -> Result<FileRow, MetadataError> {
    Ok(sqlx::query_as("INSERT INTO files (id, org_id, folder_id, name, object_key, size, content_type, sha256,
                            state, created_by)
         VALUES ($1, $2, $3, $4, $2::text || '/' || $1::text, $5, $6, $7, 'pending_upload', $8)
         RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(f.id)
    .bind(tx.org())
    .bind(f.folder)
    .bind(f.name)
    .bind(f.size)
    .bind(f.content_type)
    .bind(f.sha256)
    .bind(f.created_by)
    .fetch_one(&mut **tx)
    .await?)
}

/// Any file of this org, trashed or not.
pub async fn file(tx: &mut TenantTx, id: Uuid) -> Result<FileRow, MetadataError> {
    sqlx::query_as("SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM files WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(MetadataError::NotFound)
}

/// [`file`] as a statement of its own, one round trip instead of three (`BEGIN` with the tenant,
/// the `SELECT`, `COMMIT`): the schema's `file_of` (migration 0010) sets `org` as the tenant for
/// the call and reads the row under the same row-level security. For a read that needs no
/// transaction around it (the download's).
pub async fn file_alone(pool: &PgPool, org: Uuid, id: Uuid) -> Result<FileRow, MetadataError> {
    let mut conn = coffer_db::connection(pool).await?;
    sqlx::query_as("SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM file_of($1, $2)")
        .bind(org)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(MetadataError::NotFound)
}

/// Like [`file`], locking the row until the transaction ends.
pub async fn file_for_update(tx: &mut TenantTx, id: Uuid) -> Result<FileRow, MetadataError> {
    sqlx::query_as("SELECT id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version FROM files WHERE id = $1 FOR UPDATE")
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MetadataError::NotFound)
}

/// Whether a state change applies to a file in the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trashed {
    /// Only a live file moves (a user's action).
    Skip,
    /// A trashed file moves too (a scan verdict: the file may come back out of the trash, and
    /// must come back with the verdict its bytes earned).
    Include,
}

/// Moves a file from `from` to `to` state; `None` if it was not in `from` (or is trashed and
/// `trashed` says to skip it).
pub async fn transition(
    tx: &mut TenantTx,
    id: Uuid,
    from: FileStatus,
    to: FileStatus,
    verdict: Option<Verdict>,
    trashed: Trashed,
) -> Result<Option<FileRow>, MetadataError> {
    Ok(sqlx::query_as("UPDATE files SET state = $3, verdict = COALESCE($4, verdict), updated_at = now()
         WHERE id = $1 AND state = $2 AND ($5 OR trashed_at IS NULL) RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(verdict.map(Verdict::as_str))
    .bind(trashed == Trashed::Include)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Records the SHA-256 of the bytes the scan read.
pub async fn record_sha256(
    tx: &mut TenantTx,
    id: Uuid,
    sha256: &str,
) -> Result<FileRow, MetadataError> {
    Ok(sqlx::query_as("UPDATE files SET sha256 = $2 WHERE id = $1
         RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(id)
    .bind(sha256)
    .fetch_one(&mut **tx)
    .await?)
}

/// Records the object an upload produced (what the scan and every download are pinned to).
pub async fn set_object(
    tx: &mut TenantTx,
    id: Uuid,
    etag: &str,
    version: Option<&str>,
) -> Result<(), MetadataError> {
    sqlx::query("UPDATE files SET object_etag = $2, object_version = $3 WHERE id = $1")
        .bind(id)
        .bind(etag)
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn update_file(
    tx: &mut TenantTx,
    id: Uuid,
    name: Option<&str>,
    folder: Option<Option<Uuid>>,
) -> Result<FileRow, MetadataError> {
    sqlx::query_as("UPDATE files SET name = COALESCE($2, name),
                          folder_id = CASE WHEN $3 THEN $4 ELSE folder_id END,
                          updated_at = now()
         WHERE id = $1 AND trashed_at IS NULL RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(id)
    .bind(name)
    .bind(folder.is_some())
    .bind(folder.flatten())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MetadataError::NotFound)
}

pub async fn trash_file(tx: &mut TenantTx, id: Uuid) -> Result<FileRow, MetadataError> {
    sqlx::query_as("UPDATE files SET trashed_at = now(), updated_at = now()
         WHERE id = $1 AND trashed_at IS NULL RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MetadataError::NotFound)
}

/// Takes a file out of the trash, into its folder if that is live, else to the top level.
pub async fn restore_file(tx: &mut TenantTx, id: Uuid) -> Result<FileRow, MetadataError> {
    sqlx::query_as("UPDATE files f SET trashed_at = NULL, updated_at = now(),
             folder_id = (SELECT d.id FROM folders d WHERE d.id = f.folder_id AND d.trashed_at IS NULL)
         WHERE f.id = $1 AND f.trashed_at IS NOT NULL RETURNING id, folder_id, name, object_key, size, content_type, sha256, state, verdict, created_at, updated_at, trashed_at, object_etag, object_version")
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MetadataError::Conflict("the file is not in the trash"))
}

/// Queues the object (of `size` bytes) of a purged file of the transaction's org for deletion
/// after `after`; its bytes count as pending deletion until then.
pub async fn queue_object_deletion(
    tx: &mut TenantTx,
    key: &str,
    size: i64,
    after: OffsetDateTime,
) -> Result<(), MetadataError> {
    let queued = sqlx::query(
        "INSERT INTO object_deletions (object_key, org_id, size, delete_after)
         VALUES ($1, $2, $3, $4) ON CONFLICT (object_key) DO NOTHING",
    )
    .bind(key)
    .bind(tx.org())
    .bind(size)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    if queued.rows_affected() == 1 {
        sqlx::query(
            "UPDATE quotas SET pending_delete_bytes = pending_delete_bytes + $2 WHERE org_id = $1",
        )
        .bind(tx.org())
        .bind(size)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Object deletions of any org due before `now` (at most `limit`, oldest first): the deletion
/// sweep's lookup (policy `deletions_due`).
pub async fn due_deletions(
    tx: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, MetadataError> {
    let now = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| MetadataError::Internal(format!("formatting a time: {e}")))?;
    coffer_db::set_local(tx, "coffer.lookup_deletions_due", &now).await?;
    Ok(sqlx::query_as(
        "SELECT org_id, object_key FROM object_deletions
         WHERE delete_after < $1::timestamptz ORDER BY delete_after LIMIT $2",
    )
    .bind(&now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Forgets a done object deletion of the transaction's org, and its pending bytes.
pub async fn object_deleted(tx: &mut TenantTx, key: &str) -> Result<(), MetadataError> {
    sqlx::query(
        "WITH gone AS (DELETE FROM object_deletions WHERE org_id = $1 AND object_key = $2
                       RETURNING size)
         UPDATE quotas SET pending_delete_bytes =
             GREATEST(pending_delete_bytes - (SELECT coalesce(sum(size), 0) FROM gone), 0)
         WHERE org_id = $1",
    )
    .bind(tx.org())
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the deletion sweep's lock for the transaction, unless another replica holds it.
pub async fn try_sweep_lock(tx: &mut PgConnection) -> Result<bool, MetadataError> {
    // A fixed key of its own (the other advisory locks here hash a name into theirs).
    const SWEEP_LOCK: i64 = 0x636f_6666_6572_0001;
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *tx)
        .await?)
}

/// Puts off an object deletion of the transaction's org until `after` (its org cannot act now:
/// disabled, or deleted and awaiting its purge, which takes every object of the org).
pub async fn postpone_deletion(
    tx: &mut TenantTx,
    key: &str,
    after: OffsetDateTime,
) -> Result<(), MetadataError> {
    sqlx::query(
        "UPDATE object_deletions SET delete_after = $3 WHERE org_id = $1 AND object_key = $2",
    )
    .bind(tx.org())
    .bind(key)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes a file's row and gives its bytes back to the quota; `NotFound` if another purge got
/// there first (so the quota is released exactly once).
pub async fn delete_file(tx: &mut TenantTx, id: Uuid) -> Result<(), MetadataError> {
    let size: Option<i64> = sqlx::query_scalar("DELETE FROM files WHERE id = $1 RETURNING size")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let size = size.ok_or(MetadataError::NotFound)?;
    release_quota(tx, size).await
}

// === shares ===

pub struct ShareRow {
    pub id: Uuid,
    pub expires_at: OffsetDateTime,
    pub max_downloads: Option<i32>,
    pub downloads: i32,
    pub has_password: bool,
    pub created_at: OffsetDateTime,
}

/// The live shares of a file of the transaction's org, oldest first.
pub async fn live_shares(tx: &mut TenantTx, file: Uuid) -> Result<Vec<ShareRow>, MetadataError> {
    let rows: Vec<(Uuid, OffsetDateTime, Option<i32>, i32, bool, OffsetDateTime)> = sqlx::query_as(
        "SELECT id, expires_at, max_downloads, downloads, password_hash IS NOT NULL, created_at
         FROM shares
         WHERE org_id = $1 AND file_id = $2 AND revoked_at IS NULL AND expires_at > now()
           AND (max_downloads IS NULL OR downloads < max_downloads)
         ORDER BY created_at, id",
    )
    .bind(tx.org())
    .bind(file)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, expires_at, max_downloads, downloads, has_password, created_at)| ShareRow {
                id,
                expires_at,
                max_downloads,
                downloads,
                has_password,
                created_at,
            },
        )
        .collect())
}

pub struct NewShare<'a> {
    pub file: Uuid,
    pub token_hash: &'a [u8],
    pub password_hash: Option<String>,
    pub max_downloads: Option<i32>,
    pub expires_in_secs: i64,
    pub created_by: Uuid,
}

pub async fn insert_share(
    tx: &mut TenantTx,
    s: &NewShare<'_>,
) -> Result<(Uuid, OffsetDateTime), MetadataError> {
    let id = Uuid::new_v4();
    let (expires_at,): (OffsetDateTime,) = sqlx::query_as(
        "INSERT INTO shares (id, org_id, file_id, token_hash, password_hash, max_downloads,
                             expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), $8)
         RETURNING expires_at",
    )
    .bind(id)
    .bind(tx.org())
    .bind(s.file)
    .bind(s.token_hash)
    .bind(&s.password_hash)
    .bind(s.max_downloads)
    .bind(s.expires_in_secs as f64)
    .bind(s.created_by)
    .fetch_one(&mut **tx)
    .await?;
    Ok((id, expires_at))
}

pub async fn revoke_share(tx: &mut TenantTx, id: Uuid) -> Result<(), MetadataError> {
    let done =
        sqlx::query("UPDATE shares SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(MetadataError::NotFound);
    }
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct LiveShare {
    pub id: Uuid,
    pub org_id: Uuid,
    pub file_id: Uuid,
    pub password_hash: Option<String>,
}

/// Finds a live share (not revoked, not expired, not used up) by its token hash, before the
/// tenant is known: the lookup capability shows this one row and nothing else.
pub async fn find_share_by_token(
    tx: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<LiveShare>, MetadataError> {
    coffer_db::set_local(
        tx,
        "coffer.lookup_share",
        &coffer_kit::hex::encode(token_hash),
    )
    .await?;
    Ok(sqlx::query_as(
        "SELECT id, org_id, file_id, password_hash FROM shares
         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
           AND (max_downloads IS NULL OR downloads < max_downloads)",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?)
}

/// What counting a share-password attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted: the attempts since the last right password, this one included.
    Counted(i32),
    /// The share is locked for this many more seconds: not counted, not to be hashed.
    Locked(u64),
}

/// Counts an attempt at a share's password before it is checked; from the `threshold`-th on, the
/// share is locked for 1 s doubling per further attempt, up to `max_lock_secs` (a right password
/// clears both, [`share_password_ok`]).
pub async fn count_password_attempt(
    tx: &mut TenantTx,
    id: Uuid,
    threshold: i64,
    max_lock_secs: u64,
) -> Result<Attempt, MetadataError> {
    let counted: Option<i32> = sqlx::query_scalar(
        "UPDATE shares SET password_failures = password_failures + 1,
             password_locked_until = CASE WHEN password_failures + 1 >= $3
                 THEN now() + make_interval(secs => LEAST($4::float8,
                          power(2::float8, (password_failures + 1 - $3)::float8)))
                 END
         WHERE id = $1 AND org_id = $2
           AND (password_locked_until IS NULL OR password_locked_until <= now())
         RETURNING password_failures",
    )
    .bind(id)
    .bind(tx.org())
    .bind(threshold)
    .bind(max_lock_secs as f64)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(n) = counted {
        return Ok(Attempt::Counted(n));
    }
    let left: Option<i64> = sqlx::query_scalar(
        "SELECT ceil(extract(epoch FROM password_locked_until - now()))::bigint
         FROM shares WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(tx.org())
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    Ok(Attempt::Locked(
        left.and_then(|s| u64::try_from(s).ok()).unwrap_or(1).max(1),
    ))
}

/// Forgets the attempts once the right password was given.
pub async fn share_password_ok(tx: &mut TenantTx, id: Uuid) -> Result<(), MetadataError> {
    sqlx::query(
        "UPDATE shares SET password_failures = 0, password_locked_until = NULL
         WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(tx.org())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts one download; false if the share was used up meanwhile.
pub async fn count_share_download(tx: &mut TenantTx, id: Uuid) -> Result<bool, MetadataError> {
    let done = sqlx::query(
        "UPDATE shares SET downloads = downloads + 1
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()
           AND (max_downloads IS NULL OR downloads < max_downloads)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes every row of the org here (its orgs row; quotas, folders, files and shares follow by
/// cascade, and are deleted by name too in case a row outlived its org row).
pub async fn delete_org(tx: &mut TenantTx) -> Result<(), MetadataError> {
    for statement in [
        "DELETE FROM shares WHERE org_id = $1",
        "DELETE FROM object_deletions WHERE org_id = $1",
        "DELETE FROM files WHERE org_id = $1",
        "DELETE FROM folders WHERE org_id = $1",
        "DELETE FROM quotas WHERE org_id = $1",
        "DELETE FROM orgs WHERE id = $1",
    ] {
        sqlx::query(statement)
            .bind(tx.org())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

// === the stale-upload sweep ===

#[derive(Debug, sqlx::FromRow)]
pub struct StaleUpload {
    pub org_id: Uuid,
    pub id: Uuid,
    pub object_key: String,
}

/// Files of any org still in `pending_upload` that were created before `before` (at most
/// `limit`), through the sweep's lookup capability.
pub async fn stale_uploads(
    tx: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<StaleUpload>, MetadataError> {
    let before = before
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| MetadataError::Internal(format!("formatting a time: {e}")))?;
    coffer_db::set_local(tx, "coffer.lookup_sweep_before", &before).await?;
    Ok(sqlx::query_as(
        "SELECT org_id, id, object_key FROM files
         WHERE state = 'pending_upload' AND created_at < $1::timestamptz
         ORDER BY created_at LIMIT $2",
    )
    .bind(&before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Files of any org in the trash since before `before` (at most `limit`, oldest first): the
/// trash retention's lookup (policy `trash_expired`).
pub async fn expired_trash(
    tx: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, MetadataError> {
    let before = before
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| MetadataError::Internal(format!("formatting a time: {e}")))?;
    coffer_db::set_local(tx, "coffer.lookup_trash_before", &before).await?;
    Ok(sqlx::query_as(
        "SELECT org_id, id FROM files
         WHERE trashed_at IS NOT NULL AND trashed_at < $1::timestamptz
         ORDER BY trashed_at LIMIT $2",
    )
    .bind(&before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Deletes a file that is still in `pending_upload`, giving its bytes back to the quota; false if
/// it was completed (or removed) meanwhile.
pub async fn delete_pending(tx: &mut TenantTx, id: Uuid) -> Result<bool, MetadataError> {
    let size: Option<i64> = sqlx::query_scalar(
        "DELETE FROM files WHERE id = $1 AND state = 'pending_upload' RETURNING size",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match size {
        Some(size) => release_quota(tx, size).await.map(|()| true),
        None => Ok(false),
    }
}

/// A pending file's multipart upload: the store's id, the part size and count.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Multipart {
    pub upload_id: String,
    pub part_size: i64,
    pub part_count: i32,
    /// The store has made the object from the parts.
    pub assembled: bool,
}

pub async fn insert_multipart(
    tx: &mut TenantTx,
    file: Uuid,
    m: &Multipart,
) -> Result<(), MetadataError> {
    sqlx::query(
        "INSERT INTO multipart_uploads (file_id, org_id, upload_id, part_size, part_count)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(file)
    .bind(tx.org())
    .bind(&m.upload_id)
    .bind(m.part_size)
    .bind(m.part_count)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The file's multipart upload, if it is uploaded in parts and not yet complete.
pub async fn multipart_of(
    tx: &mut TenantTx,
    file: Uuid,
) -> Result<Option<Multipart>, MetadataError> {
    Ok(sqlx::query_as(
        "SELECT upload_id, part_size, part_count, assembled FROM multipart_uploads
         WHERE file_id = $1 FOR UPDATE",
    )
    .bind(file)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Every open multipart upload of the transaction's org: (object key, upload id).
pub async fn org_multiparts(tx: &mut TenantTx) -> Result<Vec<(String, String)>, MetadataError> {
    Ok(sqlx::query_as(
        "SELECT f.object_key, m.upload_id FROM multipart_uploads m JOIN files f ON f.id = m.file_id",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The store made the object from the parts: a retried complete does not ask it again.
pub async fn multipart_assembled(tx: &mut TenantTx, file: Uuid) -> Result<(), MetadataError> {
    sqlx::query("UPDATE multipart_uploads SET assembled = true WHERE file_id = $1")
        .bind(file)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn delete_multipart(tx: &mut TenantTx, file: Uuid) -> Result<(), MetadataError> {
    sqlx::query("DELETE FROM multipart_uploads WHERE file_id = $1")
        .bind(file)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
