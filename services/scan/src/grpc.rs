//! The Scan gRPC boundary: who may call each RPC, then per RPC parse → call the domain module
//! (`queue`, `scans`, `hooks`) → map. The org comes only from the verified token.

use coffer_kit::timestamp::from_time as ts;
use coffer_kit::vocab::Verdict;
use coffer_mesh::{Caller, Policy, PolicyError, Token, caller};
use coffer_proto::v1::scan_server::Scan;
use coffer_proto::v1::{self as pb};
use coffer_token::{Scope, Service};
use tonic::{Request, Response, Status};

use crate::deps::Core;
use crate::engines::nsfw::{NsfwSettings, Thresholds};
use crate::error::ScanServiceError;
use crate::{hooks, queue, scans, settings};

const SERVICE: &str = "coffer.v1.Scan";

/// EnqueueScan: metadata, with the uploader's token. The scan-only API and the event stream: the
/// gateway, for a session or an API key with the scope each needs. The org's webhook is org
/// management: a browser session only (`Token::Session`), never an API key.
pub fn policy() -> Result<Policy, PolicyError> {
    let mut policy = Policy::new().rpc(
        SERVICE,
        "EnqueueScan",
        &[Service::Metadata],
        Token::Required,
    )?;
    for m in [
        "CreateScan",
        "SubmitScan",
        "GetScan",
        "DeleteScan",
        "Subscribe",
        "GetFileScan",
    ] {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Required)?;
    }
    // The org's settings: any member reads them; changing them is org management (owners and
    // admins, checked in `settings`), from a browser session only.
    policy = policy.rpc(
        SERVICE,
        "GetOrgSettings",
        &[Service::Gateway],
        Token::Required,
    )?;
    for m in [
        "SetWebhook",
        "GetWebhook",
        "DeleteWebhook",
        "SetOrgSettings",
    ] {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Session)?;
    }
    // The org purge: auth, with a service token of the org (checked in the handler).
    policy = policy.rpc(SERVICE, "PurgeOrg", &[Service::Auth], Token::Required)?;
    Ok(policy)
}

/// The gRPC face of the service; all it holds is what the domain modules share.
#[derive(Clone)]
pub struct ScanService(Core);

impl ScanService {
    pub fn new(core: Core) -> Self {
        ScanService(core)
    }
}

/// The caller, who must hold `scope` (sessions hold every scope).
fn holding<T>(req: &Request<T>, scope: Scope, lacking: &'static str) -> Result<Caller, Status> {
    let c = caller(req)?;
    if !c.has_scope(scope) {
        return Err(ScanServiceError::Forbidden(lacking).into());
    }
    Ok(c.clone())
}

fn scanner<T>(req: &Request<T>) -> Result<Caller, Status> {
    holding(
        req,
        Scope::ScansWrite,
        "this API key lacks the scans:write scope",
    )
}

fn status_pb(s: scans::Scan) -> pb::ScanStatus {
    let mut out = pb::ScanStatus {
        scan_id: s.row.id.to_string(),
        status: s.row.status.to_wire(),
        metadata_json: s.row.metadata.map(|m| m.0.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(r) = s.result {
        out.verdict = Verdict::parse(&r.verdict).map_or(0, Verdict::to_wire);
        out.sha256 = r.sha256.unwrap_or_default();
        out.completed_at = Some(ts(r.completed_at));
        out.engines = engines_pb(r.engines.0);
    }
    out
}

fn engines_pb(engines: Vec<crate::engines::EngineResult>) -> Vec<pb::EngineResult> {
    engines
        .into_iter()
        .map(|e| pb::EngineResult {
            engine: e.engine,
            clean: e.clean,
            signature: e.signature.unwrap_or_default(),
            scores: e.scores.unwrap_or_default().into_iter().collect(),
            unclassified: e.unclassified.unwrap_or_default().into_iter().collect(),
        })
        .collect()
}

type Res<T> = Result<Response<T>, Status>;

/// The answer, or the error mapped once (`ScanServiceError` → `Status`).
fn answer<T, U>(r: Result<T, ScanServiceError>, map: impl FnOnce(T) -> U) -> Res<U> {
    r.map(|t| Response::new(map(t))).map_err(Status::from)
}

#[tonic::async_trait]
impl Scan for ScanService {
    async fn enqueue_scan(
        &self,
        request: Request<pb::EnqueueScanRequest>,
    ) -> Res<pb::EnqueueScanResponse> {
        let c = caller(&request)?.clone();
        let r = request.get_ref();
        let upload = queue::Upload {
            file: &r.file_id,
            object_key: &r.object_key,
            size: r.size,
            content_type: &r.content_type,
            extension: &r.extension,
            etag: &r.etag,
            version_id: &r.version_id,
            sha256: &r.sha256,
        };
        answer(queue::enqueue(&self.0, &c, upload).await, |id| {
            pb::EnqueueScanResponse {
                job_id: id.to_string(),
            }
        })
    }

    async fn create_scan(
        &self,
        request: Request<pb::CreateScanRequest>,
    ) -> Res<pb::CreateScanResponse> {
        let c = scanner(&request)?;
        let r = request.get_ref();
        answer(
            scans::create(&self.0, &c, r.size, &r.metadata_json).await,
            |(id, upload)| pb::CreateScanResponse {
                scan_id: id.to_string(),
                upload: Some(upload),
            },
        )
    }

    async fn submit_scan(&self, request: Request<pb::ScanRef>) -> Res<pb::ScanStatus> {
        let c = scanner(&request)?;
        let id = scans::parse_scan_id(&request.get_ref().scan_id)?;
        answer(scans::submit(&self.0, &c, id).await, status_pb)
    }

    async fn get_scan(&self, request: Request<pb::ScanRef>) -> Res<pb::ScanStatus> {
        let c = scanner(&request)?;
        let id = scans::parse_scan_id(&request.get_ref().scan_id)?;
        answer(scans::status(&self.0, &c, id).await, status_pb)
    }

    async fn delete_scan(&self, request: Request<pb::ScanRef>) -> Res<pb::DeleteScanResponse> {
        let c = scanner(&request)?;
        let id = scans::parse_scan_id(&request.get_ref().scan_id)?;
        answer(scans::delete(&self.0, &c, id).await, |()| {
            pb::DeleteScanResponse {}
        })
    }

    async fn set_webhook(
        &self,
        request: Request<pb::SetWebhookRequest>,
    ) -> Res<pb::SetWebhookResponse> {
        let c = caller(&request)?.clone();
        answer(hooks::set(&self.0, &c, &request.get_ref().url).await, |e| {
            pb::SetWebhookResponse {
                url: e.url,
                secret: e.secret,
            }
        })
    }

    async fn get_webhook(&self, request: Request<pb::GetWebhookRequest>) -> Res<pb::WebhookInfo> {
        let c = caller(&request)?.clone();
        answer(hooks::get(&self.0, &c).await, |(url, at)| pb::WebhookInfo {
            url,
            created_at: Some(ts(at)),
        })
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Res<pb::DeleteWebhookResponse> {
        let c = caller(&request)?.clone();
        answer(hooks::delete(&self.0, &c).await, |()| {
            pb::DeleteWebhookResponse {}
        })
    }

    async fn get_file_scan(&self, request: Request<pb::FileScanRequest>) -> Res<pb::FileScan> {
        let c = holding(
            &request,
            Scope::FilesRead,
            "this API key lacks the files:read scope",
        )?;
        let id = uuid::Uuid::try_parse(&request.get_ref().file_id)
            .map_err(|_| ScanServiceError::invalid("file_id", "file_id must be a UUID"))?;
        answer(
            scans::file_result(&self.0, &c, id).await,
            |(r, versions)| pb::FileScan {
                file_id: id.to_string(),
                verdict: Verdict::parse(&r.verdict).map_or(0, Verdict::to_wire),
                sha256: r.sha256.unwrap_or_default(),
                completed_at: Some(ts(r.completed_at)),
                engines: engines_pb(r.engines.0),
                versions_json: versions.to_string(),
            },
        )
    }

    async fn get_org_settings(
        &self,
        request: Request<pb::GetOrgSettingsRequest>,
    ) -> Res<pb::OrgSettings> {
        let c = caller(&request)?.clone();
        let model = self.0.nsfw_model.clone();
        answer(settings::get(&self.0, &c).await, |s| settings_pb(s, model))
    }

    async fn set_org_settings(&self, request: Request<pb::OrgSettings>) -> Res<pb::OrgSettings> {
        let c = caller(&request)?.clone();
        let r = request.get_ref();
        let Some(t) = r.nsfw_thresholds else {
            return Err(ScanServiceError::invalid(
                "nsfw_thresholds",
                "nsfw_thresholds is required",
            )
            .into());
        };
        let thresholds = Thresholds {
            porn: t.porn,
            hentai: t.hentai,
            sexy: t.sexy,
        };
        let model = self.0.nsfw_model.clone();
        answer(
            settings::set(&self.0, &c, &r.nsfw_policy, thresholds).await,
            |s| settings_pb(s, model),
        )
    }

    type SubscribeStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Res<Self::SubscribeStream> {
        // The stream shows the org's scan verdicts of files and scan-only requests.
        let c = holding(
            &request,
            Scope::FilesRead,
            "this API key lacks the files:read scope",
        )?;
        let org = c.org_id;
        let rx = self.0.bus.subscribe();
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
        answer(scans::purge_org(&self.0, c.org_id).await, |p| {
            pb::PurgeOrgResponse {
                done: p.done,
                objects_deleted: p.objects_deleted,
            }
        })
    }
}

fn settings_pb(s: NsfwSettings, model: Option<String>) -> pb::OrgSettings {
    pb::OrgSettings {
        nsfw_policy: s.policy.as_str().to_owned(),
        nsfw_thresholds: Some(pb::NsfwThresholds {
            porn: s.thresholds.porn,
            hentai: s.thresholds.hentai,
            sexy: s.thresholds.sexy,
        }),
        nsfw_model: model.unwrap_or_default(),
    }
}
