//! SQL of the scan schema. Tenant functions take a [`TenantTx`] and read the org from it; the
//! queue functions take a plain connection begun with a lookup capability
//! (`coffer.lookup_worker`, `coffer.lookup_upload_sweep`, `coffer.lookup_delivery`,
//! `coffer.lookup_retention`).

use std::time::Duration;

use coffer_db::TenantTx;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use coffer_kit::vocab::ScanState;

use crate::engines::Verdict;
use crate::scanner::Report;

/// What a job scans: a stored file (its verdict goes to metadata) or a scan-only request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    File,
    Scan,
}

impl Subject {
    /// The column form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subject::File => "file",
            Subject::Scan => "scan",
        }
    }
}

impl TryFrom<String> for Subject {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "file" => Ok(Subject::File),
            "scan" => Ok(Subject::Scan),
            _ => Err(format!("not a job subject: {s}")),
        }
    }
}

/// A job as a worker holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub org_id: Uuid,
    #[sqlx(try_from = "String")]
    pub subject: Subject,
    pub subject_id: Uuid,
    pub object_key: String,
    pub size: i64,
    pub content_type: String,
    pub extension: String,
    pub run_id: Uuid,
    pub attempts: i32,
    /// Tries that failed on a dependency (not counted in `attempts`).
    pub waits: i32,
    pub reason: String,
    pub queued_at: OffsetDateTime,
    /// The object to read, as found at complete ("" when unknown).
    pub object_etag: String,
    pub object_version: String,
    /// The SHA-256 the uploader declared ("" for none): the bytes must hash to it.
    pub declared_sha256: String,
}

/// What a new or re-queued job is about.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub subject: Subject,
    pub subject_id: Uuid,
    pub object_key: &'a str,
    pub size: i64,
    pub content_type: &'a str,
    pub extension: &'a str,
    /// The object to read (ETag, version id), as found by HEAD; "" when unknown.
    pub object_etag: &'a str,
    pub object_version: &'a str,
    /// The SHA-256 the uploader declared, lowercase hex; "" for none.
    pub declared_sha256: &'a str,
}

/// Queues a job, or queues a finished one again with a new run; a queued or running job is left
/// as it is. Returns the job's id.
pub async fn enqueue(tx: &mut TenantTx, job: &NewJob<'_>) -> Result<Uuid, sqlx::Error> {
    let queued: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, org_id, subject, subject_id, object_key, size, content_type,
                           extension, run_id, object_etag, object_version, declared_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $1, $10, $11, $12)
         ON CONFLICT (org_id, subject_id) DO UPDATE
            SET state = 'queued', run_id = $9, reason = 'upload', attempts = 0, run_after = now(),
                lease_owner = NULL, lease_until = NULL, last_error = NULL,
                size = EXCLUDED.size, content_type = EXCLUDED.content_type,
                extension = EXCLUDED.extension, object_etag = EXCLUDED.object_etag,
                object_version = EXCLUDED.object_version,
                declared_sha256 = EXCLUDED.declared_sha256, queued_at = now(), updated_at = now()
            WHERE jobs.state = 'done'
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(tx.org())
    .bind(job.subject.as_str())
    .bind(job.subject_id)
    .bind(job.object_key)
    .bind(job.size)
    .bind(job.content_type)
    .bind(job.extension)
    .bind(Uuid::new_v4())
    .bind(job.object_etag)
    .bind(job.object_version)
    .bind(job.declared_sha256)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = queued {
        return Ok(id);
    }
    // Already queued or running: that job will do.
    sqlx::query_scalar("SELECT id FROM jobs WHERE org_id = $1 AND subject_id = $2")
        .bind(tx.org())
        .bind(job.subject_id)
        .fetch_one(&mut **tx)
        .await
}

/// Claims the oldest ready job for `owner`, under a lease of `lease_secs`, counting the try.
pub async fn claim(
    tx: &mut PgConnection,
    owner: Uuid,
    lease_secs: u64,
) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1,
                lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= now()
                     ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, org_id, subject, subject_id, object_key, size, content_type, extension,
                   run_id, attempts, waits, reason, queued_at, object_etag, object_version,
                   declared_sha256",
    )
    .bind(owner)
    .bind(lease_secs as f64)
    .fetch_optional(tx)
    .await
}

/// Extends a held lease. False when the lease was lost (reaped, or the job finished elsewhere).
pub async fn heartbeat(
    tx: &mut PgConnection,
    job: Uuid,
    owner: Uuid,
    lease_secs: u64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(job)
    .bind(owner)
    .bind(lease_secs as f64)
    .execute(tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Returns jobs whose lease expired (their worker died or hung) to the queue. Returns how many.
pub async fn reap(tx: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                run_after = now(), last_error = 'lease expired', updated_at = now()
         WHERE state = 'running' AND lease_until < now()",
    )
    .execute(tx)
    .await?;
    Ok(r.rows_affected())
}

/// The unfinished jobs of every org by state, with the seconds the oldest of each has waited
/// since it was queued (worker capability).
pub async fn queue_depth(tx: &mut PgConnection) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT state, count(*), COALESCE(extract(epoch FROM now() - min(queued_at))::bigint, 0)
         FROM jobs WHERE state <> 'done' GROUP BY state",
    )
    .fetch_all(tx)
    .await
}

/// How long the oldest delivery still owed (not delivered, not given up) has waited, in seconds;
/// 0 when none is owed (delivery capability).
pub async fn oldest_undelivered_age(tx: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(extract(epoch FROM now() - min(created_at))::bigint, 0)
         FROM deliveries WHERE delivered_at IS NULL AND give_up_at > now()",
    )
    .fetch_one(tx)
    .await
}

/// Puts a failed try back in the queue after `delay`, if the lease is still held.
pub async fn retry_later(
    tx: &mut PgConnection,
    job: Uuid,
    owner: Uuid,
    delay: std::time::Duration,
    error: &str,
    waiting: bool,
) -> Result<bool, sqlx::Error> {
    // A try that failed on a dependency gives its attempt back and counts as a wait.
    let r = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                run_after = now() + make_interval(secs => $3), last_error = $4, updated_at = now(),
                attempts = attempts - CASE WHEN $5 THEN 1 ELSE 0 END,
                waits = waits + CASE WHEN $5 THEN 1 ELSE 0 END
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(job)
    .bind(owner)
    .bind(delay.as_secs_f64())
    .bind(error)
    .bind(waiting)
    .execute(tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forgets the result stored for a subject that no longer exists (a file purged while it was
/// scanned).
pub async fn forget_result(tx: &mut TenantTx, subject_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM results WHERE org_id = $1 AND subject_id = $2")
        .bind(tx.org())
        .bind(subject_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks the job done if this worker still holds it for this run. False: someone else did.
pub async fn finish(tx: &mut TenantTx, job: &Job, owner: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL,
                last_error = NULL, updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND run_id = $3 AND state = 'running'",
    )
    .bind(job.id)
    .bind(owner)
    .bind(job.run_id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A stored result.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResultRow {
    pub run_id: Uuid,
    pub verdict: String,
    pub engines: sqlx::types::Json<Vec<crate::engines::EngineResult>>,
    pub sha256: Option<String>,
    pub ruleset_version: String,
    pub completed_at: OffsetDateTime,
}

/// Writes the run's result once, while `owner` still holds the job for this run (`None`
/// otherwise, with nothing written: a worker whose lease was taken back must not bring back a
/// result the subject's deletion removed meanwhile). A second write for the same run changes
/// nothing (the first verdict stands); a new run replaces the old result. Returns the stored
/// result.
pub async fn record_result(
    tx: &mut TenantTx,
    job: &Job,
    owner: Uuid,
    report: &Report,
) -> Result<Option<ResultRow>, sqlx::Error> {
    // The job's row is locked for share until this commits: a deletion or a reap waits for it.
    let held: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND lease_owner = $2 AND run_id = $3
           AND state = 'running' FOR SHARE",
    )
    .bind(job.id)
    .bind(owner)
    .bind(job.run_id)
    .fetch_optional(&mut **tx)
    .await?;
    if held.is_none() {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO results (org_id, subject_id, subject, run_id, verdict, engines, sha256, size,
                              detected_type, ruleset_version, versions, object_etag, clamav_db)
         VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9, $10, $11, $12, $13)
         ON CONFLICT (org_id, subject_id) DO UPDATE
            SET run_id = EXCLUDED.run_id, verdict = EXCLUDED.verdict, engines = EXCLUDED.engines,
                sha256 = EXCLUDED.sha256, size = EXCLUDED.size,
                detected_type = EXCLUDED.detected_type,
                ruleset_version = EXCLUDED.ruleset_version, versions = EXCLUDED.versions,
                object_etag = EXCLUDED.object_etag, clamav_db = EXCLUDED.clamav_db,
                completed_at = now()
            WHERE results.run_id <> EXCLUDED.run_id",
    )
    .bind(tx.org())
    .bind(job.subject_id)
    .bind(job.subject.as_str())
    .bind(job.run_id)
    .bind(report.verdict.as_str())
    .bind(sqlx::types::Json(&report.engines))
    .bind(&report.sha256)
    .bind(i64::try_from(report.size).unwrap_or(i64::MAX))
    .bind(report.detected_type)
    // The column keeps its name; it holds every engine's version (`Versions::key`).
    .bind(report.versions.key())
    .bind(sqlx::types::Json(&report.versions))
    // The read was pinned to this ETag: the store served these bytes or none.
    .bind(&job.object_etag)
    .bind(report.versions.clamav_db())
    .execute(&mut **tx)
    .await?;
    result(tx, job.subject_id)
        .await?
        .map(Some)
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn result(tx: &mut TenantTx, subject_id: Uuid) -> Result<Option<ResultRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT run_id, verdict, engines, sha256, ruleset_version, completed_at
         FROM results WHERE org_id = $1 AND subject_id = $2",
    )
    .bind(tx.org())
    .bind(subject_id)
    .fetch_optional(&mut **tx)
    .await
}

/// A file's result and its versions (`None` before its first verdict, or for another org's).
pub async fn file_result(
    tx: &mut TenantTx,
    file_id: Uuid,
) -> Result<Option<(ResultRow, serde_json::Value)>, sqlx::Error> {
    let Some(row) = result(tx, file_id).await? else {
        return Ok(None);
    };
    let versions: Option<(sqlx::types::Json<serde_json::Value>,)> = sqlx::query_as(
        "SELECT versions FROM results WHERE org_id = $1 AND subject_id = $2 AND subject = 'file'",
    )
    .bind(tx.org())
    .bind(file_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(versions.map(|v| (row, v.0.0)))
}

/// A failed verdict for a job no engine could finish, under the engines' current versions.
pub fn failed_report(versions: crate::scanner::Versions) -> Report {
    Report {
        verdict: Verdict::Failed,
        engines: Vec::new(),
        sha256: String::new(),
        size: 0,
        detected_type: "unknown",
        versions,
    }
}

/// Re-queues up to `limit` finished file jobs whose result came from other rules or another model
/// (another `Versions::key`), or from an older ClamAV database than `clamav_db` (or none), before
/// `before` (when the caller's versions became current). Results written after it are left alone, so two versions of the
/// service running side by side during a roll-out never re-queue each other's work in a loop.
pub async fn requeue_outdated(
    tx: &mut PgConnection,
    ruleset: &str,
    clamav_db: Option<i32>,
    before: OffsetDateTime,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs j SET state = 'queued', run_id = gen_random_uuid(), reason = 'rescan',
                attempts = 0,
                run_after = now(), queued_at = now(), updated_at = now()
         FROM (SELECT r.org_id, r.subject_id FROM results r
               JOIN jobs j2 ON j2.org_id = r.org_id AND j2.subject_id = r.subject_id
               WHERE r.subject = 'file' AND j2.state = 'done' AND r.completed_at < $3
                 AND (r.ruleset_version <> $1
                      OR ($4::integer IS NOT NULL
                          AND (r.clamav_db IS NULL OR r.clamav_db < $4::integer)))
               LIMIT $2) o
         WHERE j.org_id = o.org_id AND j.subject_id = o.subject_id AND j.state = 'done'",
    )
    .bind(ruleset)
    .bind(limit)
    .bind(before)
    .bind(clamav_db)
    .execute(tx)
    .await?;
    Ok(r.rows_affected())
}

// === scan-only requests ===

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScanRow {
    pub id: Uuid,
    pub size: i64,
    pub metadata: Option<sqlx::types::Json<serde_json::Value>>,
    #[sqlx(try_from = "String")]
    pub status: ScanState,
    pub completed_at: Option<OffsetDateTime>,
    /// Whether the upload window (the URL's life and the grace after it) is still open.
    pub uploadable: bool,
}

/// Counts `size` scan-only bytes against the org's budget for today (UTC); false, with nothing
/// counted, when they would pass `budget`.
pub async fn charge_usage(tx: &mut TenantTx, size: i64, budget: i64) -> Result<bool, sqlx::Error> {
    if size > budget {
        return Ok(false);
    }
    let counted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO usage (org_id, day, bytes) VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2)
         ON CONFLICT (org_id, day) DO UPDATE SET bytes = usage.bytes + EXCLUDED.bytes
            WHERE usage.bytes + EXCLUDED.bytes <= $3
         RETURNING bytes",
    )
    .bind(tx.org())
    .bind(size)
    .bind(budget)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(counted.is_some())
}

pub async fn insert_scan(
    tx: &mut TenantTx,
    id: Uuid,
    size: i64,
    metadata: Option<&serde_json::Value>,
    upload_secs: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scans (id, org_id, size, metadata, upload_expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(id)
    .bind(tx.org())
    .bind(size)
    .bind(metadata.map(sqlx::types::Json))
    .bind(f64::from(upload_secs))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn scan(
    tx: &mut TenantTx,
    id: Uuid,
    grace_secs: u64,
) -> Result<Option<ScanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, size, metadata, status, completed_at,
                upload_expires_at + make_interval(secs => $2) > now() AS uploadable
         FROM scans WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(grace_secs as f64)
    .fetch_optional(&mut **tx)
    .await
}

/// What deleting a scan-only request found.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanDeleted {
    Deleted,
    /// No live request of the org has this id (or it was deleted before).
    NotFound,
    /// Its scan is running now; nothing was changed.
    Running,
}

/// Deletes a scan-only request for its caller: its result (verdict, hash), its jobs, its webhook
/// deliveries and its metadata. The row stays, marked deleted and `expired` unless it was done,
/// so that the upload sweep still deletes its object once its URL can no longer write it, and
/// the retention removes it after that. A running scan is left alone (`Running`): the caller's
/// transaction is then to be rolled back.
pub async fn delete_scan(tx: &mut TenantTx, id: Uuid) -> Result<ScanDeleted, sqlx::Error> {
    let live: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM scans WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    if live.is_none() {
        return Ok(ScanDeleted::NotFound);
    }
    // A queued job goes; a worker that claimed it first keeps it (its row is locked or running).
    sqlx::query(
        "DELETE FROM jobs WHERE org_id = $1 AND subject = 'scan' AND subject_id = $2
           AND state <> 'running'",
    )
    .bind(tx.org())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let running: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE org_id = $1 AND subject = 'scan' AND subject_id = $2)",
    )
    .bind(tx.org())
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    if running {
        return Ok(ScanDeleted::Running);
    }
    for statement in [
        "DELETE FROM results WHERE org_id = $1 AND subject = 'scan' AND subject_id = $2",
        "DELETE FROM deliveries WHERE org_id = $1 AND event_type = 'scan.completed'
           AND payload -> 'data' ->> 'scan_id' = $2::text",
        "UPDATE scans SET metadata = NULL, deleted_at = now(),
                status = CASE status WHEN 'done' THEN 'done' ELSE 'expired' END
         WHERE org_id = $1 AND id = $2",
    ] {
        sqlx::query(statement)
            .bind(tx.org())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(ScanDeleted::Deleted)
}

/// A scan-only request whose upload window has passed and whose object is still to delete.
#[derive(Debug, sqlx::FromRow)]
pub struct DueUpload {
    pub org_id: Uuid,
    pub id: Uuid,
}

/// Up to `limit` requests whose upload window closed more than `grace_secs` ago and whose object
/// was not swept yet, and not put off after a failed sweep (upload-sweep capability, across
/// orgs); queued ones wait for their scan.
pub async fn due_uploads(
    tx: &mut PgConnection,
    grace_secs: u64,
    limit: i64,
) -> Result<Vec<DueUpload>, sqlx::Error> {
    sqlx::query_as(
        "SELECT org_id, id FROM scans
         WHERE object_swept_at IS NULL AND status IN ('awaiting_upload', 'done', 'expired')
           AND upload_expires_at + make_interval(secs => $1) < now()
           AND (sweep_after IS NULL OR sweep_after <= now())
         ORDER BY upload_expires_at LIMIT $2",
    )
    .bind(grace_secs as f64)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// An unsubmitted request whose window closed becomes `expired` (it can no longer be submitted);
/// returns the request's status after that (a submission that got in first left it `queued`).
pub async fn expire_unsubmitted(
    tx: &mut TenantTx,
    id: Uuid,
) -> Result<Option<ScanState>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar(
        "UPDATE scans SET status = CASE status WHEN 'awaiting_upload' THEN 'expired' ELSE status END
         WHERE id = $1 RETURNING status",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    status
        .map(|s| ScanState::try_from(s).map_err(|e| sqlx::Error::Decode(e.into())))
        .transpose()
}

/// Puts a request's sweep off by `secs` after it failed, so it does not hold up the others.
pub async fn defer_sweep(tx: &mut TenantTx, id: Uuid, secs: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scans SET sweep_after = now() + make_interval(secs => $3)
         WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(tx.org())
    .bind(secs as f64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the request's object is gone for good.
pub async fn mark_swept(tx: &mut TenantTx, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scans SET object_swept_at = now()
         WHERE id = $1 AND status IN ('expired', 'done')",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn set_scan_status(
    tx: &mut TenantTx,
    id: Uuid,
    from: ScanState,
    to: ScanState,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE scans SET status = $3,
                completed_at = CASE WHEN $3 = 'done' THEN now() ELSE completed_at END
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes scan-only requests (with their results and jobs) older than `before` whose object
/// the upload sweep has deleted, across orgs (retention capability): a request whose object is
/// still to delete stays until it is. Webhook deliveries older than `before` go too, once
/// delivered or given up. Returns how many requests.
pub async fn expire_scans(
    tx: &mut PgConnection,
    before: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM results r USING scans s
         WHERE r.subject = 'scan' AND r.org_id = s.org_id AND r.subject_id = s.id
           AND s.created_at < $1 AND s.object_swept_at IS NOT NULL",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM jobs j USING scans s
         WHERE j.subject = 'scan' AND j.org_id = s.org_id AND j.subject_id = s.id
           AND s.created_at < $1 AND s.object_swept_at IS NOT NULL AND j.state <> 'running'",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    // Webhook events (verdicts and hashes) delivered or given up before then.
    sqlx::query(
        "DELETE FROM deliveries WHERE created_at < $1
           AND (delivered_at IS NOT NULL OR give_up_at < now())",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    let r = sqlx::query(
        "DELETE FROM scans s WHERE s.created_at < $1 AND s.object_swept_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.org_id = s.org_id AND j.subject_id = s.id)",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes every row of the org here: jobs, results, scan-only requests, the webhook, its
/// deliveries, the usage counts and the settings.
pub async fn delete_org(tx: &mut TenantTx) -> Result<(), sqlx::Error> {
    for statement in [
        "DELETE FROM org_settings WHERE org_id = $1",
        "DELETE FROM deliveries WHERE org_id = $1",
        "DELETE FROM webhooks WHERE org_id = $1",
        "DELETE FROM results WHERE org_id = $1",
        "DELETE FROM jobs WHERE org_id = $1",
        "DELETE FROM scans WHERE org_id = $1",
        "DELETE FROM usage WHERE org_id = $1",
    ] {
        sqlx::query(statement)
            .bind(tx.org())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

// === webhooks ===

pub async fn set_webhook(tx: &mut TenantTx, url: &str, sealed: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhooks (org_id, url, secret_sealed) VALUES ($1, $2, $3)
         ON CONFLICT (org_id) DO UPDATE
            SET url = EXCLUDED.url, secret_sealed = EXCLUDED.secret_sealed, updated_at = now()",
    )
    .bind(tx.org())
    .bind(url)
    .bind(sealed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The org's endpoint and when it was set.
pub async fn webhook_info(
    tx: &mut TenantTx,
) -> Result<Option<(String, time::OffsetDateTime)>, sqlx::Error> {
    sqlx::query_as("SELECT url, updated_at FROM webhooks WHERE org_id = $1")
        .bind(tx.org())
        .fetch_optional(&mut **tx)
        .await
}

/// Removes the org's endpoint and the deliveries not yet made to it.
pub async fn delete_webhook(tx: &mut TenantTx) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM deliveries WHERE org_id = $1 AND delivered_at IS NULL")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    let removed = sqlx::query("DELETE FROM webhooks WHERE org_id = $1")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    Ok(removed.rows_affected() > 0)
}

/// The org's endpoint and sealed secret.
pub async fn webhook(tx: &mut TenantTx) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT url, secret_sealed FROM webhooks")
        .fetch_optional(&mut **tx)
        .await
}

/// Puts an event in the org's outbox if it has an endpoint (tenant transaction).
pub async fn enqueue_delivery(
    tx: &mut TenantTx,
    event_type: &str,
    payload: &serde_json::Value,
    retry_for_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deliveries (id, org_id, event_type, payload, give_up_at)
         SELECT $1, $2, $3, $4, now() + make_interval(secs => $5) FROM webhooks WHERE org_id = $2",
    )
    .bind(Uuid::new_v4())
    .bind(tx.org())
    .bind(event_type)
    .bind(sqlx::types::Json(payload))
    .bind(retry_for_secs as f64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub org_id: Uuid,
    pub payload: sqlx::types::Json<serde_json::Value>,
    pub attempts: i32,
}

/// Takes the next due delivery (delivery capability), pushing its next try `hold_secs` ahead so
/// no other sender takes it while this one works.
pub async fn claim_delivery(
    tx: &mut PgConnection,
    hold_secs: u64,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE deliveries SET attempts = attempts + 1,
                next_at = now() + make_interval(secs => $1)
         WHERE id = (SELECT id FROM deliveries
                     WHERE delivered_at IS NULL AND next_at <= now() AND give_up_at > now()
                     ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, org_id, payload, attempts",
    )
    .bind(hold_secs as f64)
    .fetch_optional(tx)
    .await
}

/// Records a try: delivered, or the next try after `retry_in`.
pub async fn delivery_tried(
    tx: &mut TenantTx,
    id: Uuid,
    status: &str,
    delivered: bool,
    retry_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET last_status = $2,
                delivered_at = CASE WHEN $3 THEN now() END,
                next_at = now() + make_interval(secs => $4)
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(delivered)
    .bind(retry_in.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The org's NSFW settings, `None` when never set (the service's defaults apply).
pub async fn nsfw_settings(
    tx: &mut TenantTx,
) -> Result<Option<crate::engines::nsfw::NsfwSettings>, sqlx::Error> {
    let row: Option<(String, f32, f32, f32)> = sqlx::query_as(
        "SELECT nsfw_policy, nsfw_porn, nsfw_hentai, nsfw_sexy FROM org_settings WHERE org_id = $1",
    )
    .bind(tx.org())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.and_then(|(policy, porn, hentai, sexy)| {
        Some(crate::engines::nsfw::NsfwSettings {
            policy: crate::engines::nsfw::NsfwPolicy::parse(&policy)?,
            thresholds: crate::engines::nsfw::Thresholds { porn, hentai, sexy },
        })
    }))
}

pub async fn set_nsfw_settings(
    tx: &mut TenantTx,
    s: &crate::engines::nsfw::NsfwSettings,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_settings (org_id, nsfw_policy, nsfw_porn, nsfw_hentai, nsfw_sexy)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id) DO UPDATE
            SET nsfw_policy = EXCLUDED.nsfw_policy, nsfw_porn = EXCLUDED.nsfw_porn,
                nsfw_hentai = EXCLUDED.nsfw_hentai, nsfw_sexy = EXCLUDED.nsfw_sexy,
                updated_at = now()",
    )
    .bind(tx.org())
    .bind(s.policy.as_str())
    .bind(s.thresholds.porn)
    .bind(s.thresholds.hentai)
    .bind(s.thresholds.sexy)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
