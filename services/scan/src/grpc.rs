//! The Scan gRPC service: parse and check each request, run it in a tenant transaction, map the
//! answer. The org comes only from the verified token.

use std::sync::Arc;

use coffer_mesh::{Caller, MeshChannel, Policy, PolicyError, Token, caller};
use coffer_proto::v1::scan_server::Scan;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};
use coffer_token::{Role, Scope};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::config::ScanConfig;
use crate::error::ScanServiceError;
use crate::events::{self, Bus};
use crate::store::{self, NewJob};
use crate::webhook::{SecretBox, check_url, new_secret};

const SERVICE: &str = "coffer.v1.Scan";

/// EnqueueScan: metadata, with the uploader's token. The scan-only API and the event stream: the
/// gateway, for a session or an API key with the scope each needs. The org's webhook is org
/// management: a browser session only (`Token::Session`), never an API key.
pub fn policy() -> Result<Policy, PolicyError> {
    let mut policy = Policy::new().rpc(SERVICE, "EnqueueScan", &["metadata"], Token::Required)?;
    for m in ["CreateScan", "SubmitScan", "GetScan", "Subscribe"] {
        policy = policy.rpc(SERVICE, m, &["gateway"], Token::Required)?;
    }
    policy = policy.rpc(SERVICE, "SetWebhook", &["gateway"], Token::Session)?;
    // The org purge: auth, with a service token of the org (checked in the handler).
    policy = policy.rpc(SERVICE, "PurgeOrg", &["auth"], Token::Required)?;
    Ok(policy)
}

#[derive(Clone)]
pub struct ScanService {
    pool: PgPool,
    signer: StorageSignerClient<MeshChannel>,
    config: Arc<ScanConfig>,
    wake: Arc<Notify>,
    secrets: SecretBox,
    bus: Bus,
}

impl ScanService {
    pub fn new(
        pool: PgPool,
        signer: StorageSignerClient<MeshChannel>,
        config: Arc<ScanConfig>,
        wake: Arc<Notify>,
        secrets: SecretBox,
        bus: Bus,
    ) -> Self {
        ScanService {
            pool,
            signer,
            config,
            wake,
            secrets,
            bus,
        }
    }

    async fn set_webhook(
        &self,
        c: &Caller,
        req: pb::SetWebhookRequest,
    ) -> Result<pb::SetWebhookResponse, ScanServiceError> {
        if !matches!(c.role, Role::Owner | Role::Admin) {
            return Err(ScanServiceError::Forbidden(
                "only owners and admins set the webhook",
            ));
        }
        let url = check_url(req.url.trim(), self.config.webhook.allow_loopback_for_tests)
            .map_err(|e| ScanServiceError::invalid("url", e.to_string()))?;
        let secret = new_secret();
        let mut tx = self.tx(c.org_id).await?;
        store::set_webhook(
            &mut tx,
            c.org_id,
            url.as_str(),
            &self.secrets.seal(c.org_id, secret.as_bytes())?,
        )
        .await?;
        tx.commit().await?;
        Ok(pb::SetWebhookResponse {
            url: url.to_string(),
            secret,
        })
    }

    async fn tx(
        &self,
        org: Uuid,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ScanServiceError> {
        Ok(coffer_db::tenant_tx(&self.pool, org).await?)
    }

    fn woke(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    async fn enqueue(
        &self,
        c: &Caller,
        req: pb::EnqueueScanRequest,
    ) -> Result<pb::EnqueueScanResponse, ScanServiceError> {
        let file = parse_id("file_id", &req.file_id)?;
        if req.object_key != format!("{}/{file}", c.org_id) {
            return Err(ScanServiceError::Forbidden(
                "the object key is not the file's key in the caller's org",
            ));
        }
        let size = i64::try_from(req.size)
            .map_err(|_| ScanServiceError::invalid("size", "size is too large"))?;
        if req.content_type.len() > 255 {
            return Err(ScanServiceError::invalid(
                "content_type",
                "content_type is longer than 255 bytes",
            ));
        }
        let extension = sanitize_extension(&req.extension);
        // The ETag and version id come from metadata's HEAD; storage-signer checks them before it
        // signs anything with them, and the jobs table bounds their length.
        let mut tx = self.tx(c.org_id).await?;
        let id = store::enqueue(
            &mut tx,
            &NewJob {
                org_id: c.org_id,
                subject: "file",
                subject_id: file,
                object_key: &req.object_key,
                size,
                content_type: &req.content_type,
                extension: &extension,
                object_etag: &req.etag,
                object_version: &req.version_id,
            },
        )
        .await?;
        events::wake_workers(&mut tx).await?;
        tx.commit().await?;
        self.woke();
        Ok(pb::EnqueueScanResponse {
            job_id: id.to_string(),
        })
    }

    async fn create(
        &self,
        c: &Caller,
        req: pb::CreateScanRequest,
    ) -> Result<pb::CreateScanResponse, ScanServiceError> {
        if req.size > self.config.max_scan_bytes {
            return Err(ScanServiceError::TooLarge(format!(
                "size is above the largest scan accepted ({} bytes)",
                self.config.max_scan_bytes
            )));
        }
        let size = i64::try_from(req.size)
            .map_err(|_| ScanServiceError::invalid("size", "size is too large"))?;
        let metadata = if req.metadata_json.is_empty() {
            None
        } else {
            if req.metadata_json.len() > self.config.max_metadata_bytes {
                return Err(ScanServiceError::TooLarge(format!(
                    "metadata is larger than {} bytes",
                    self.config.max_metadata_bytes
                )));
            }
            let v: serde_json::Value = serde_json::from_str(&req.metadata_json).map_err(|_| {
                ScanServiceError::invalid("metadata", "metadata must be a JSON object")
            })?;
            if !v.is_object() {
                return Err(ScanServiceError::invalid(
                    "metadata",
                    "metadata must be a JSON object",
                ));
            }
            Some(v)
        };
        let id = Uuid::new_v4();
        let key = scan_key(c.org_id, id);
        // The user's token (audience storage-signer) goes with this call: the key is checked
        // against the caller's org there too. Signed first, so the usage row below is locked
        // for one short transaction, not across a call to another service.
        let upload = self
            .signer
            .clone()
            .presign_put(pb::PresignPutRequest {
                key,
                size: req.size,
                content_type: "application/octet-stream".into(),
                sha256: String::new(),
                expires_in_seconds: self.config.scan_upload_expiry_secs,
            })
            .await?
            .into_inner();
        let mut tx = self.tx(c.org_id).await?;
        let budget = i64::try_from(self.config.scan_only_bytes_per_day).unwrap_or(i64::MAX);
        if !store::charge_usage(&mut tx, c.org_id, size, budget).await? {
            // The URL is dropped unseen: without the request's row its object is nobody's, and
            // the lifecycle rule takes anything put with it.
            return Err(ScanServiceError::OverBudget(
                "the org's scan-only bytes for today are used up; try again after midnight UTC",
                secs_to_utc_midnight(),
            ));
        }
        store::insert_scan(
            &mut tx,
            c.org_id,
            id,
            size,
            metadata.as_ref(),
            self.config.scan_upload_expiry_secs,
        )
        .await?;
        tx.commit().await?;
        Ok(pb::CreateScanResponse {
            scan_id: id.to_string(),
            upload: Some(upload),
        })
    }

    async fn submit(&self, c: &Caller, id: Uuid) -> Result<pb::ScanStatus, ScanServiceError> {
        let mut tx = self.tx(c.org_id).await?;
        let scan = store::scan(&mut tx, id, self.config.scan_upload_grace_secs)
            .await?
            .ok_or(ScanServiceError::NotFound)?;
        if scan.status == "expired" || (scan.status == "awaiting_upload" && !scan.uploadable) {
            return Err(ScanServiceError::Conflict(
                "the upload window of this scan has passed; create a new one",
            ));
        }
        if scan.status != "awaiting_upload" {
            // Submitting twice is one submission.
            tx.commit().await?;
            return self.status(c, id).await;
        }
        let key = scan_key(c.org_id, id);
        let head = self
            .signer
            .clone()
            .head_object(pb::ObjectRef { key: key.clone() })
            .await?
            .into_inner();
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
        if !store::set_scan_status(&mut tx, id, "awaiting_upload", "queued").await? {
            return Err(ScanServiceError::Conflict(
                "the scan is no longer awaiting its upload",
            ));
        }
        store::enqueue(
            &mut tx,
            &NewJob {
                org_id: c.org_id,
                subject: "scan",
                subject_id: id,
                object_key: &key,
                size: scan.size,
                content_type: "",
                extension: "",
                object_etag: &head.etag,
                object_version: &head.version_id,
            },
        )
        .await?;
        events::wake_workers(&mut tx).await?;
        tx.commit().await?;
        self.woke();
        self.status(c, id).await
    }

    async fn status(&self, c: &Caller, id: Uuid) -> Result<pb::ScanStatus, ScanServiceError> {
        let mut tx = self.tx(c.org_id).await?;
        let scan = store::scan(&mut tx, id, self.config.scan_upload_grace_secs)
            .await?
            .ok_or(ScanServiceError::NotFound)?;
        let result = if scan.status == "done" {
            store::result(&mut tx, c.org_id, id).await?
        } else {
            None
        };
        tx.commit().await?;
        let mut out = pb::ScanStatus {
            scan_id: scan.id.to_string(),
            status: scan.status,
            metadata_json: scan.metadata.map(|m| m.0.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        if let Some(r) = result {
            out.verdict = r.verdict;
            out.sha256 = r.sha256.unwrap_or_default();
            out.completed_at = Some(ts(r.completed_at));
            out.engines = r
                .engines
                .0
                .into_iter()
                .map(|e| pb::EngineResult {
                    engine: e.engine,
                    clean: e.clean,
                    signature: e.signature.unwrap_or_default(),
                })
                .collect();
        }
        Ok(out)
    }
}

impl ScanService {
    /// Deletes the org's scan-only objects, then, once none is left, every row of the org here.
    async fn purge_org(&self, org: Uuid) -> Result<pb::PurgeOrgResponse, ScanServiceError> {
        let page = self
            .signer
            .clone()
            .delete_prefix(pb::DeletePrefixRequest {
                prefix: format!("scans/{org}/"),
            })
            .await?
            .into_inner();
        if page.more {
            return Ok(pb::PurgeOrgResponse {
                done: false,
                objects_deleted: u64::from(page.deleted),
            });
        }
        let mut tx = self.tx(org).await?;
        store::delete_org(&mut tx, org).await?;
        tx.commit().await?;
        tracing::info!(%org, objects = page.deleted, "purged a deleted org's scans");
        Ok(pb::PurgeOrgResponse {
            done: true,
            objects_deleted: u64::from(page.deleted),
        })
    }
}

/// Seconds until the next midnight UTC (when a daily budget starts again), at least 1.
fn secs_to_utc_midnight() -> u64 {
    let now = OffsetDateTime::now_utc();
    let since_midnight =
        u64::from(now.hour()) * 3600 + u64::from(now.minute()) * 60 + u64::from(now.second());
    (86_400 - since_midnight).max(1)
}

/// Where a scan-only request's bytes go: apart from stored files, for the lifecycle rule.
pub fn scan_key(org: Uuid, id: Uuid) -> String {
    format!("scans/{org}/{id}")
}

use coffer_kit::timestamp::from_time as ts;

fn parse_id(field: &'static str, s: &str) -> Result<Uuid, ScanServiceError> {
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

/// The caller, who must hold `scans:write` (sessions hold every scope).
fn scanner_caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    let c = caller(req)?;
    if !c.has_scope(Scope::ScansWrite) {
        return Err(ScanServiceError::Forbidden("this API key lacks the scans:write scope").into());
    }
    Ok(c.clone())
}

type Res<T> = Result<Response<T>, Status>;

fn ok<T>(r: Result<T, ScanServiceError>) -> Res<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Scan for ScanService {
    async fn enqueue_scan(
        &self,
        request: Request<pb::EnqueueScanRequest>,
    ) -> Res<pb::EnqueueScanResponse> {
        let c = caller(&request)?.clone();
        ok(self.enqueue(&c, request.into_inner()).await)
    }

    async fn create_scan(
        &self,
        request: Request<pb::CreateScanRequest>,
    ) -> Res<pb::CreateScanResponse> {
        let c = scanner_caller(&request)?;
        ok(self.create(&c, request.into_inner()).await)
    }

    async fn submit_scan(&self, request: Request<pb::ScanRef>) -> Res<pb::ScanStatus> {
        let c = scanner_caller(&request)?;
        ok(async {
            // An id that is not a UUID names nothing: the same answer as an unknown one.
            let id = Uuid::try_parse(&request.get_ref().scan_id)
                .map_err(|_| ScanServiceError::NotFound)?;
            self.submit(&c, id).await
        }
        .await)
    }

    async fn set_webhook(
        &self,
        request: Request<pb::SetWebhookRequest>,
    ) -> Res<pb::SetWebhookResponse> {
        let c = caller(&request)?.clone();
        ok(self.set_webhook(&c, request.into_inner()).await)
    }

    type SubscribeStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Res<Self::SubscribeStream> {
        let c = caller(&request)?;
        // The stream shows the org's scan verdicts of files and scan-only requests.
        if !c.has_scope(Scope::FilesRead) {
            return Err(
                ScanServiceError::Forbidden("this API key lacks the files:read scope").into(),
            );
        }
        let org = c.org_id;
        let rx = self.bus.subscribe();
        let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    // Only the caller's org: the filter is here, not in the gateway.
                    Ok(e) if e.org == org => {
                        let event = pb::Event {
                            r#type: e.event.kind.clone(),
                            json: serde_json::to_string(&e.event).unwrap_or_default(),
                        };
                        return Some((Ok(event), rx));
                    }
                    Ok(_) => {}
                    // A slow reader misses events rather than holding the bus back.
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event stream lagged");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn purge_org(&self, request: Request<pb::PurgeOrgRequest>) -> Res<pb::PurgeOrgResponse> {
        let c = caller(&request)?;
        // Never a user's request, whatever its role: only the token auth mints for the purge.
        if !c.is_service() {
            return Err(ScanServiceError::Forbidden("only the org purge deletes an org").into());
        }
        ok(self.purge_org(c.org_id).await)
    }

    async fn get_scan(&self, request: Request<pb::ScanRef>) -> Res<pb::ScanStatus> {
        let c = scanner_caller(&request)?;
        ok(async {
            // An id that is not a UUID names nothing: the same answer as an unknown one.
            let id = Uuid::try_parse(&request.get_ref().scan_id)
                .map_err(|_| ScanServiceError::NotFound)?;
            self.status(&c, id).await
        }
        .await)
    }
}
