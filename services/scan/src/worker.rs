//! Workers: claim a job under a lease, read the object through a presigned GET into a temporary
//! file no larger than declared, scan it, and conclude: the result is stored once per run, the
//! verdict goes to metadata (or the scan-only object is deleted), the audit log gets its event,
//! and the job is marked done together with its live event. A lease lost mid-scan (the reaper
//! gave the job to another worker) stops the scan; a crash leaves the lease to expire.
//! Logs carry job, org and subject ids, never names or bytes.

use std::sync::Arc;
use std::time::Duration;

use coffer_db::DbError;
use coffer_kit::audit::{Action, AuditLog, Outcome, Target};
use coffer_kit::vocab::{FileStatus, ScanState};
use coffer_mesh::{CallContext, Jobs, MeshChannel, Stop};
use coffer_proto::v1 as pb;
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use futures_util::StreamExt as _;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::ScanConfig;
use crate::engines::nsfw::{NsfwPolicy, NsfwSettings};
use crate::events;
use crate::scanner::{Declared, Engines};
use crate::store::{self, Job, ResultRow, Subject};

/// How long a scan-only request whose object could not be deleted waits before the next try.
const SWEEP_RETRY_SECS: u64 = 300;

/// Why a try did not conclude.
#[derive(Debug, thiserror::Error)]
pub enum TryError {
    #[error("the lease was lost")]
    LeaseLost,
    /// The engines failed on the file: the try counts toward `max_attempts`.
    #[error("{0}")]
    Failed(String),
    /// A dependency failed (a peer, the store, an unreachable clamd): the job waits, uncounted.
    #[error("{0}")]
    Retry(String),
    #[error(transparent)]
    Db(#[from] coffer_db::DbError),
}

impl From<sqlx::Error> for TryError {
    fn from(e: sqlx::Error) -> Self {
        TryError::Db(e.into())
    }
}

/// Why a scan produced no report.
#[derive(Debug)]
enum ScanFail {
    /// The store has no such object: the file was purged, or its object was lost.
    Gone,
    /// The engines failed on the file (or it is not what was declared); retried, and counted.
    Failed(String),
    /// A dependency failed: the store (unreachable, 5xx, cut mid-body), a peer, an unreachable
    /// clamd. Retried without counting the try: nothing was learnt about the file.
    Unavailable(String),
    /// The file makes the engines use more than they may: another try would too.
    Final(String),
}

impl From<String> for ScanFail {
    fn from(e: String) -> Self {
        ScanFail::Failed(e)
    }
}

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Workers {
    pub pool: PgPool,
    pub engines: Arc<Engines>,
    pub config: Arc<ScanConfig>,
    pub signer: StorageSignerClient<MeshChannel>,
    pub metadata: MetadataClient<MeshChannel>,
    pub auth: AuthClient<MeshChannel>,
    pub audit: AuditLog,
    pub http: reqwest::Client,
    /// Woken when a job is queued (here, or in another process through NOTIFY).
    pub wake: Arc<Notify>,
}

impl Workers {
    /// Starts the workers, the reaper, the scan-only upload sweep and the re-scan pacer among
    /// the service's background jobs.
    pub fn schedule(self, jobs: &mut Jobs) {
        for _ in 0..self.config.workers {
            let w = self.clone();
            jobs.spawn("scan worker", move |stop| w.run(Uuid::new_v4(), stop));
        }
        let every = Duration::from_secs;
        let pool = self.pool.clone();
        // The queue is read for the metrics as often as the reaper looks at it.
        jobs.every(
            "scan queue metrics",
            every(self.config.reaper_interval_secs),
            move || {
                let pool = pool.clone();
                // A reading is not work done: nothing to log.
                async move { refresh_gauges(&pool).await.map(|()| 0) }
            },
        );
        let w = self.clone();
        jobs.every(
            "scan reaper",
            every(self.config.reaper_interval_secs),
            move || {
                let w = w.clone();
                async move { w.reap().await }
            },
        );
        let w = self.clone();
        jobs.every(
            "scan-only upload sweep",
            every(self.config.upload_sweep_interval_secs),
            move || {
                let w = w.clone();
                async move { w.sweep_uploads().await }
            },
        );
        if self.config.rescan_per_minute > 0 {
            let started = time::OffsetDateTime::now_utc();
            jobs.every("re-scan pacer", Duration::from_secs(60), move || {
                let w = self.clone();
                async move { w.rescan(started).await }
            });
        }
    }

    /// Deletes the object of every scan-only request whose upload window (the URL's life and
    /// the grace after it) has closed, unless its scan is still to run: whatever an unsubmitted
    /// request's URL wrote, and whatever was put again after the post-scan delete (a URL that
    /// writes a key once can write it again once the key is gone). An unsubmitted request
    /// becomes `expired`. A request whose object cannot be deleted now (the store or auth away,
    /// an org being deleted) is tried again later; the org purge deletes a deleted org's objects.
    /// Returns how many objects were dealt with.
    pub async fn sweep_uploads(&self) -> Result<usize, DbError> {
        let due = {
            let mut tx =
                coffer_db::begin_with_setting(&self.pool, "coffer.lookup_upload_sweep", "1")
                    .await?;
            let due = store::due_uploads(&mut tx, self.config.scan_upload_grace_secs, 100).await?;
            tx.commit().await?;
            due
        };
        let mut swept = 0;
        for request in due {
            let mut tx = self.tenant_tx(request.org_id).await?;
            let status = store::expire_unsubmitted(&mut tx, request.id).await?;
            tx.commit().await?;
            if !matches!(status, Some(ScanState::Expired | ScanState::Done)) {
                continue; // submitted meanwhile: its scan reads the object, then deletes it
            }
            let deleted = match self.service_context(request.org_id).await {
                Ok(ctx) => {
                    let mut signer = self.signer.clone();
                    let key = crate::scans::scan_key(request.org_id, request.id);
                    ctx.scope(async move { signer.delete_object(pb::ObjectRef { key }).await })
                        .await
                        .map_err(|s| format!("deleting the object: {}", s.code()))
                }
                Err(e) => Err(e),
            };
            if let Err(error) = deleted {
                tracing::warn!(request = %request.id, org = %request.org_id, %error, "scan-only object not deleted yet; will retry");
                let mut tx = self.tenant_tx(request.org_id).await?;
                store::defer_sweep(&mut tx, request.id, SWEEP_RETRY_SECS).await?;
                tx.commit().await?;
                continue;
            }
            let mut tx = self.tenant_tx(request.org_id).await?;
            store::mark_swept(&mut tx, request.id).await?;
            tx.commit().await?;
            swept += 1;
        }
        Ok(swept)
    }

    /// Claims and processes jobs until the service stops; a job in hand may finish within the
    /// shutdown's grace (cut later, its lease runs out and the reaper queues it again).
    async fn run(self, owner: Uuid, mut stop: Stop) {
        let idle = Duration::from_millis(self.config.poll_interval_ms);
        while !stop.is_stopped() {
            let pause = match self.claim(owner).await {
                Ok(Some(job)) => {
                    self.process(owner, job).await;
                    continue;
                }
                Ok(None) => idle,
                Err(error) => {
                    tracing::warn!(?error, "claiming a scan job failed; will retry");
                    idle
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(pause, self.wake.notified()) => {}
                () = stop.stopped() => {}
            }
        }
    }

    async fn worker_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, DbError> {
        coffer_db::begin_with_setting(&self.pool, "coffer.lookup_worker", "1").await
    }

    async fn tenant_tx(&self, org: Uuid) -> Result<coffer_db::TenantTx, DbError> {
        coffer_db::tenant_tx(&self.pool, org).await
    }

    pub async fn claim(&self, owner: Uuid) -> Result<Option<Job>, DbError> {
        let mut tx = self.worker_tx().await?;
        let job = store::claim(&mut tx, owner, self.config.lease_secs).await?;
        tx.commit().await?;
        if job.is_some() {
            crate::metrics::metrics().claimed.inc();
        }
        Ok(job)
    }

    /// Runs one try of `job` and records what came of it.
    pub async fn process(&self, owner: Uuid, job: Job) {
        let started = std::time::Instant::now();
        let outcome = self.try_job(owner, &job).await;
        let m = crate::metrics::metrics();
        match outcome {
            Ok(verdict) => {
                m.tried("done");
                tracing::info!(
                    job = %job.id, org = %job.org_id, subject = %job.subject_id,
                    verdict, attempt = job.attempts,
                    ms = started.elapsed().as_millis() as u64, "scan job done"
                );
            }
            Err(TryError::LeaseLost) => {
                m.tried("lease_lost");
                tracing::warn!(job = %job.id, attempt = job.attempts, "scan job lease lost; left to its new holder");
            }
            Err(error) => {
                // Only the engines failing on the file spends a try; a dependency's failure is
                // a wait, backing off on the count of waits.
                let waiting = !matches!(error, TryError::Failed(_));
                let delay = if waiting {
                    m.tried("wait");
                    self.config.backoff(job.waits.saturating_add(1))
                } else {
                    m.tried("retry");
                    self.config.backoff(job.attempts)
                };
                tracing::warn!(
                    job = %job.id, attempt = job.attempts, waits = job.waits, waiting, ?error,
                    retry_in_secs = delay.as_secs(), "scan job try failed"
                );
                let message: String = error.to_string().chars().take(300).collect();
                let requeued = async {
                    let mut tx = self.worker_tx().await?;
                    store::retry_later(&mut tx, job.id, owner, delay, &message, waiting).await?;
                    tx.commit().await?;
                    Ok::<_, DbError>(())
                };
                if let Err(error) = requeued.await {
                    tracing::warn!(job = %job.id, ?error, "could not requeue; the lease will expire");
                }
            }
        }
    }

    async fn try_job(&self, owner: Uuid, job: &Job) -> Result<&'static str, TryError> {
        // A run already concluded once (its result is stored) is not scanned again.
        let stored = {
            let mut tx = self.tenant_tx(job.org_id).await?;
            let r = store::result(&mut tx, job.subject_id).await?;
            tx.commit().await?;
            r.filter(|r| r.run_id == job.run_id)
        };
        let result = match stored {
            Some(r) => r,
            None => {
                let waited = time::OffsetDateTime::now_utc() - job.queued_at;
                let waited_out = job.waits > 0
                    && waited.whole_seconds()
                        > i64::try_from(self.config.max_wait_secs).unwrap_or(i64::MAX);
                let report = if job.attempts > self.config.max_attempts
                    || waited_out
                    || u64::try_from(job.size).unwrap_or(u64::MAX) > self.config.max_file_bytes
                {
                    if waited_out {
                        tracing::warn!(job = %job.id, waits = job.waits, "waited on its dependencies past max_wait_secs: verdict failed");
                    }
                    store::failed_report(self.engines.current().0)
                } else {
                    let nsfw = self.nsfw_settings(job.org_id).await?;
                    match self.with_lease(owner, job, self.scan(job, nsfw)).await? {
                        Ok(report) => report,
                        Err(ScanFail::Gone) => {
                            if self.purged(job).await? {
                                return self.drop_purged(owner, job).await;
                            }
                            // The subject is still there but its object is not: retrying cannot
                            // bring it back.
                            tracing::warn!(job = %job.id, "the object is missing: verdict failed");
                            store::failed_report(self.engines.current().0)
                        }
                        Err(ScanFail::Failed(e)) if job.attempts >= self.config.max_attempts => {
                            tracing::warn!(job = %job.id, error = %e, "last try failed: verdict failed");
                            store::failed_report(self.engines.current().0)
                        }
                        Err(ScanFail::Final(e)) => {
                            tracing::warn!(job = %job.id, error = %e, "the file exceeds the engines' limits: verdict failed");
                            store::failed_report(self.engines.current().0)
                        }
                        Err(ScanFail::Failed(e)) => return Err(TryError::Failed(e)),
                        Err(ScanFail::Unavailable(e)) => return Err(TryError::Retry(e)),
                    }
                };
                let mut tx = self.tenant_tx(job.org_id).await?;
                let Some(r) = store::record_result(&mut tx, job, owner, &report).await? else {
                    return Err(TryError::LeaseLost);
                };
                tx.commit().await?;
                crate::metrics::metrics()
                    .verdicts
                    .get_or_create(&crate::metrics::VerdictLabel {
                        verdict: report.verdict.as_str(),
                    })
                    .inc();
                r
            }
        };
        self.conclude(owner, job, &result).await
    }

    /// Whether the job's file was purged (metadata no longer knows it). Asked when its object is
    /// missing, by offering metadata the `failed` verdict: a file that still exists takes it.
    async fn purged(&self, job: &Job) -> Result<bool, TryError> {
        if job.subject != Subject::File {
            return Ok(false);
        }
        match self
            .send_verdict(job, crate::engines::Verdict::Failed, "", false)
            .await
        {
            Ok(_) => Ok(false),
            Err(s) => match coffer_errors::from_status(&s).0 {
                coffer_errors::ErrorCode::NotFound => Ok(true),
                // Decided otherwise meanwhile: the failed result below is only kept here.
                coffer_errors::ErrorCode::Conflict => Ok(false),
                _ => Err(TryError::Retry(format!(
                    "recording the verdict: {}",
                    s.code()
                ))),
            },
        }
    }

    /// Offers metadata the verdict on the job's file.
    async fn send_verdict(
        &self,
        job: &Job,
        verdict: crate::engines::Verdict,
        sha256: &str,
        hold: bool,
    ) -> Result<Option<FileStatus>, tonic::Status> {
        self.metadata
            .clone()
            .record_verdict(pb::RecordVerdictRequest {
                org_id: job.org_id.to_string(),
                file_id: job.subject_id.to_string(),
                verdict: verdict.to_wire(),
                rescan: job.reason == "rescan",
                etag: job.object_etag.clone(),
                sha256: sha256.to_owned(),
                hold,
            })
            .await
            .map(|r| FileStatus::from_wire(r.into_inner().status))
    }

    /// Ends the job of a purged file: no result, verdict, audit event or live event (there is
    /// no file left to have one), and no retries against an object that will not come back.
    async fn drop_purged(&self, owner: Uuid, job: &Job) -> Result<&'static str, TryError> {
        let mut tx = self.tenant_tx(job.org_id).await?;
        if !store::finish(&mut tx, job, owner).await? {
            return Err(TryError::LeaseLost);
        }
        tx.commit().await?;
        Ok("none: the file was purged")
    }

    /// Runs `fut` while renewing the lease; stops it if the lease is lost.
    async fn with_lease<T>(
        &self,
        owner: Uuid,
        job: &Job,
        fut: impl Future<Output = T>,
    ) -> Result<T, TryError> {
        let every = Duration::from_secs(self.config.lease_secs) / 3;
        let keep = async {
            loop {
                tokio::time::sleep(every).await;
                let held = async {
                    let mut tx = self.worker_tx().await?;
                    let held =
                        store::heartbeat(&mut tx, job.id, owner, self.config.lease_secs).await?;
                    tx.commit().await?;
                    Ok::<_, DbError>(held)
                };
                match held.await {
                    Ok(true) => {}
                    Ok(false) => return,
                    // The database is away: keep scanning; the lease may still hold.
                    Err(error) => tracing::warn!(job = %job.id, ?error, "lease heartbeat failed"),
                }
            }
        };
        tokio::select! {
            out = fut => Ok(out),
            () = keep => Err(TryError::LeaseLost),
        }
    }

    /// Downloads and scans the job's object.
    /// The org's NSFW policy and thresholds (the service's defaults when it never chose).
    async fn nsfw_settings(&self, org: Uuid) -> Result<NsfwSettings, DbError> {
        let mut tx = self.tenant_tx(org).await?;
        let set = store::nsfw_settings(&mut tx).await?;
        tx.commit().await?;
        Ok(set.unwrap_or_else(|| self.config.nsfw.defaults()))
    }

    async fn scan(
        &self,
        job: &Job,
        nsfw: NsfwSettings,
    ) -> Result<crate::scanner::Report, ScanFail> {
        let dir = self
            .engines
            .job_dir()
            .map_err(|e| format!("creating the job's directory: {e}"))?;
        let object = dir.path().join(crate::sandbox::OBJECT);
        let started = std::time::Instant::now();
        let request = self.presign_get(job).await.map_err(ScanFail::Unavailable)?;
        let (stored_encoding, taken) = self.download(&request, &object, job.size as u64).await?;
        let downloaded = started.elapsed();
        let declared = Declared {
            content_type: job.content_type.clone(),
            extension: job.extension.clone(),
            stored_encoding,
            sha256: job.declared_sha256.clone(),
        };
        let report = self
            .engines
            .scan(dir.path(), &declared, nsfw, &taken)
            .await
            .map_err(|e| {
                let message = format!("scanning: {e}");
                if e.is_final() {
                    ScanFail::Final(message)
                } else if e.is_unavailable() {
                    ScanFail::Unavailable(message)
                } else {
                    ScanFail::Failed(message)
                }
            })?;
        tracing::info!(
            job = %job.id, bytes = job.size,
            download_ms = downloaded.as_millis() as u64,
            engines_ms = (started.elapsed() - downloaded).as_millis() as u64,
            "scanned"
        );
        Ok(report)
    }

    /// A service token of the job's org, for storage-signer.
    async fn service_context(&self, org: Uuid) -> Result<CallContext, String> {
        let request_id = format!("scan-{}", Uuid::new_v4());
        let token = self
            .auth
            .clone()
            .mint_service_token(pb::MintServiceTokenRequest {
                org_id: org.to_string(),
                audiences: vec![coffer_token::Service::StorageSigner.name().to_owned()],
                request_id: request_id.clone(),
            })
            .await
            .map_err(|s| format!("minting a service token: {}", s.code()))?
            .into_inner()
            .token;
        Ok(CallContext {
            token: Some(token.into()),
            request_id: request_id.into(),
            deadline: None,
        })
    }

    /// A GET of exactly the object the job was queued for: its version, and `If-Match` on its
    /// ETag signed in, so the store serves those bytes or none.
    async fn presign_get(&self, job: &Job) -> Result<pb::PresignedRequest, String> {
        let ctx = self.service_context(job.org_id).await?;
        let signer = self.signer.clone();
        let request = pb::PresignGetRequest {
            key: job.object_key.clone(),
            version_id: job.object_version.clone(),
            require_if_match: !job.object_etag.is_empty(),
            etag: job.object_etag.clone(),
            ..Default::default()
        };
        ctx.scope(async move {
            signer
                .clone()
                .presign_get(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("presigning the download: {}", s.code()))
        })
        .await
    }

    /// Streams the object into `path`, refusing more than `size` bytes; returns the
    /// `Content-Encoding` the store holds it with ("" for none).
    async fn download(
        &self,
        request: &pb::PresignedRequest,
        path: &std::path::Path,
        size: u64,
    ) -> Result<(String, crate::scanner::Taken), ScanFail> {
        use sha2::Digest as _;
        let mut get = self.http.get(&request.url);
        for (name, value) in &request.headers {
            get = get.header(name, value);
        }
        let resp = get
            .send()
            .await
            .map_err(|e| ScanFail::Unavailable(format!("downloading: {}", e.without_url())))?;
        // Gone, or no longer the object the job was queued for: nothing here to scan.
        if matches!(
            resp.status(),
            reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::PRECONDITION_FAILED
        ) {
            return Err(ScanFail::Gone);
        }
        if resp.status().is_server_error() {
            return Err(ScanFail::Unavailable(format!(
                "downloading: the store answered {}",
                resp.status()
            )));
        }
        if !resp.status().is_success() {
            return Err(format!("downloading: the store answered {}", resp.status()).into());
        }
        let encoding = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(64)
                    .collect()
            })
            .unwrap_or_default();
        // Each write to a tokio file is a hop to the blocking pool: batch them by the MiB.
        let mut file = tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::fs::File::create(path)
                .await
                .map_err(|e| format!("writing the temporary file: {e}"))?,
        );
        let mut got: u64 = 0;
        let mut sha = sha2::Sha256::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ScanFail::Unavailable(format!("downloading: {}", e.without_url())))?;
            got += chunk.len() as u64;
            if got > size {
                return Err(ScanFail::Failed(
                    "the object is larger than declared".into(),
                ));
            }
            sha.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("writing the temporary file: {e}"))?;
        }
        file.flush()
            .await
            .map_err(|e| format!("writing the temporary file: {e}"))?;
        if got != size {
            return Err(format!("the object has {got} bytes, {size} declared").into());
        }
        let taken = crate::scanner::Taken {
            size: got,
            sha256: coffer_kit::hex::encode(&sha.finalize()),
        };
        Ok((encoding, taken))
    }

    /// Carries a stored result out: to metadata (or deletes a scan-only object), to the audit
    /// log, then marks the job done with its event. Every step is safe to repeat.
    async fn conclude(
        &self,
        owner: Uuid,
        job: &Job,
        result: &ResultRow,
    ) -> Result<&'static str, TryError> {
        let verdict = crate::engines::Verdict::parse(&result.verdict)
            .ok_or_else(|| TryError::Retry("stored verdict unknown".into()))?;
        let mut status = None;
        let (action, target) = match job.subject {
            Subject::File => {
                // The org's policy as it is now decides whether an `nsfw` verdict quarantines.
                let hold = verdict == crate::engines::Verdict::Nsfw
                    && self.nsfw_settings(job.org_id).await?.policy == NsfwPolicy::Quarantine;
                match self
                    .send_verdict(
                        job,
                        verdict,
                        result.sha256.as_deref().unwrap_or_default(),
                        hold,
                    )
                    .await
                {
                    // Where the file is now, as metadata says (a re-scan that found the same
                    // leaves a released file available).
                    // (A file in the trash says `trashed`: then what the verdict means.)
                    Ok(now) => status = now.filter(|s| *s != FileStatus::Trashed),
                    // Purged while it was scanned (its object outlives the row for the database's
                    // recovery window, so the scan found it): as for a purge found before, no
                    // result, audit event or live event stays of a file that no longer exists.
                    Err(s)
                        if coffer_errors::from_status(&s).0
                            == coffer_errors::ErrorCode::NotFound =>
                    {
                        // With the lease's check in one transaction: a worker that lost the job
                        // forgets nothing another one is concluding.
                        let mut tx = self.tenant_tx(job.org_id).await?;
                        if !store::finish(&mut tx, job, owner).await? {
                            return Err(TryError::LeaseLost);
                        }
                        store::forget_result(&mut tx, job.subject_id).await?;
                        tx.commit().await?;
                        return Ok("none: the file was purged");
                    }
                    // Already decided otherwise: the result stays here.
                    Err(s)
                        if coffer_errors::from_status(&s).0
                            == coffer_errors::ErrorCode::Conflict =>
                    {
                        tracing::info!(job = %job.id, code = ?s.code(), "metadata did not take the verdict: the file moved on");
                    }
                    Err(s) => {
                        return Err(TryError::Retry(format!(
                            "recording the verdict: {}",
                            s.code()
                        )));
                    }
                }
                // Metadata did not say (it took another verdict meanwhile): what this one means.
                let after = status.unwrap_or_else(|| FileStatus::after(verdict, hold));
                status = Some(after);
                let action = if after == FileStatus::Available {
                    Action::FileScanned
                } else {
                    Action::FileQuarantined
                };
                (action, Target::File(job.subject_id))
            }
            Subject::Scan => {
                // The scan-only object goes as soon as the verdict is stored.
                let ctx = self
                    .service_context(job.org_id)
                    .await
                    .map_err(TryError::Retry)?;
                let signer = self.signer.clone();
                let key = job.object_key.clone();
                ctx.scope(async move {
                    signer
                        .clone()
                        .delete_object(pb::ObjectRef { key })
                        .await
                        .map_err(|s| TryError::Retry(format!("deleting the object: {}", s.code())))
                })
                .await?;
                (Action::ScanCompleted, Target::Scan(job.subject_id))
            }
        };
        self.audit
            .record_system(job.org_id, action, target, Outcome::Success)
            .await
            .map_err(|refused| TryError::Retry(format!("auditing: {}", refused.0.code())))?;
        let mut tx = self.tenant_tx(job.org_id).await?;
        if !store::finish(&mut tx, job, owner).await? {
            return Err(TryError::LeaseLost);
        }
        if job.subject == Subject::Scan {
            let (from, to) = (ScanState::Queued, ScanState::Done);
            store::set_scan_status(&mut tx, job.subject_id, from, to).await?;
        }
        events::publish(
            &mut tx,
            job,
            result,
            status,
            self.config.webhook.retry_for_secs,
        )
        .await?;
        tx.commit().await?;
        Ok(verdict.as_str())
    }

    /// Returns jobs whose lease expired to the queue.
    async fn reap(&self) -> Result<usize, DbError> {
        let mut tx = self.worker_tx().await?;
        let n = store::reap(&mut tx).await?;
        tx.commit().await?;
        crate::metrics::metrics().reaped.inc_by(n);
        if n > 0 {
            tracing::warn!(
                jobs = n,
                "returned scan jobs with expired leases to the queue"
            );
            self.wake.notify_waiters();
        }
        Ok(n as usize)
    }

    /// Re-queues files scanned under other engine versions (rules, NSFW model, ClamAV's signature
    /// database) than the current ones, `rescan_per_minute` at a time: only results written
    /// before the current versions became current (this process's start, or clamd's last
    /// signature update), so two versions side by side never re-queue each other in a loop.
    async fn rescan(&self, started: time::OffsetDateTime) -> Result<usize, DbError> {
        if let Some(clamd) = self.engines.clamd() {
            match clamd.version().await {
                Ok(v) => self.engines.saw_clamav(&v),
                // Without clamd's version the current key is unknown: re-queue nothing now.
                Err(error) => {
                    tracing::warn!(%error, "clamd does not answer: re-scans wait");
                    return Ok(0);
                }
            }
        }
        let (versions, since) = self.engines.current();
        let key = versions.key();
        let mut tx = self.worker_tx().await?;
        let n = store::requeue_outdated(
            &mut tx,
            &key,
            versions.clamav_db(),
            since.max(started),
            i64::from(self.config.rescan_per_minute),
        )
        .await?;
        tx.commit().await?;
        if n > 0 {
            tracing::info!(
                jobs = n,
                versions = %key,
                clamav_db = ?versions.clamav_db(),
                "re-queued files scanned under other engine versions"
            );
            self.wake.notify_waiters();
        }
        Ok(n as usize)
    }
}

/// Reads the queue through the worker capability, and the deliveries still owed through the
/// delivery capability, and sets the gauges.
async fn refresh_gauges(pool: &sqlx::PgPool) -> Result<(), coffer_db::DbError> {
    let mut tx = coffer_db::begin_with_setting(pool, "coffer.lookup_worker", "1").await?;
    let depth = store::queue_depth(&mut tx).await?;
    tx.commit().await?;
    let m = crate::metrics::metrics();
    let mut oldest = 0;
    for state in ["queued", "running"] {
        let (count, age) = depth
            .iter()
            .find(|d| d.0 == state)
            .map_or((0, 0), |d| (d.1, d.2));
        m.jobs
            .get_or_create(&crate::metrics::State { state })
            .set(count);
        if state == "queued" {
            oldest = age;
        }
    }
    m.oldest_queued.set(oldest);
    let mut tx = coffer_db::begin_with_setting(pool, "coffer.lookup_delivery", "1").await?;
    let owed = store::oldest_undelivered_age(&mut tx).await?;
    tx.commit().await?;
    m.oldest_undelivered.set(owed);
    Ok(())
}
