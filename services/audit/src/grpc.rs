//! The Audit gRPC service. The org comes from the verified token, or, for a system event without
//! a token, from the request of a service on the allow-list; readers must be owners or admins
//! whose token carries `audit:read`.

use std::sync::Arc;

use coffer_auditlog::{Line, Signer, event_hash, genesis, hex};
use coffer_kit::audit::{Action, Outcome, Target};
use coffer_mesh::{Caller, Policy, PolicyError, Token, caller, peer};
use coffer_proto::v1::audit_server::Audit;
use coffer_proto::v1::{self as pb};
use coffer_token::{Scope, Service};
use sqlx::PgPool;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::appender::Appender;
use crate::config::AuditConfig;
use crate::error::AuditError;
use crate::store::{self, NewEvent};

const SERVICE: &str = "coffer.v1.Audit";

/// The services that act append (with a user token, or without one for their own system
/// events): auth, metadata and scan. The gateway and storage-signer never write the log, so a
/// compromised one cannot write into it either. Only the gateway reads.
pub fn policy() -> Result<Policy, PolicyError> {
    let writers = [Service::Auth, Service::Metadata, Service::Scan];
    let mut policy = Policy::new().rpc(SERVICE, "Append", &writers, Token::Optional)?;
    for m in ["List", "Verify", "Export", "PublicKey"] {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Required)?;
    }
    Ok(policy)
}

#[derive(Clone)]
pub struct AuditService {
    pool: PgPool,
    signer: Arc<Signer>,
    appender: Appender,
    config: AuditConfig,
}

impl AuditService {
    pub fn new(pool: PgPool, signer: Signer, config: AuditConfig) -> Self {
        let signer = Arc::new(signer);
        AuditService {
            appender: Appender::new(
                pool.clone(),
                signer.clone(),
                config.checkpoint_every,
                std::time::Duration::from_secs(config.checkpoint_interval_secs),
            ),
            pool,
            signer,
            config,
        }
    }
}

/// Microseconds since the Unix epoch: the time every event and checkpoint records.
pub(crate) use coffer_kit::timestamp::now_micros as now_us;

fn ts(us: i64) -> Option<prost_types::Timestamp> {
    Some(coffer_kit::timestamp::from_micros(us))
}

/// Targets are ids only (`file:<uuid>`, one of the kit's kinds), or empty: a name can never get
/// into the log.
fn check_target(t: &str) -> Result<(), AuditError> {
    if t.is_empty() || Target::parse(t).is_some() {
        return Ok(());
    }
    Err(AuditError::invalid(
        "target",
        format!(
            "target must be <kind>:<uuid> with kind one of {}",
            Target::kinds().join(", ")
        ),
    ))
}

/// Actions are the kit's vocabulary: one a producer could not write is refused here as well.
fn check_action(a: &str) -> Result<Action, AuditError> {
    Action::parse(a).ok_or_else(|| {
        AuditError::invalid("action", "action is not one of the audit log's actions")
    })
}

/// Readers: owners and admins whose token carries audit:read (an API key without it is refused).
fn reader<T>(req: &Request<T>) -> Result<Caller, Status> {
    let c = caller(req)?;
    if !c.role.is_admin() {
        return Err(AuditError::Forbidden("only owners and admins may read the audit log").into());
    }
    if !c.has_scope(Scope::AuditRead) {
        return Err(AuditError::Forbidden("this API key lacks the audit:read scope").into());
    }
    Ok(c.clone())
}

fn event_pb(r: &store::Row) -> pb::AuditEvent {
    pb::AuditEvent {
        seq: r.seq as u64,
        at: ts(r.at_us),
        actor: r.actor.clone(),
        action: r.action.clone(),
        target: r.target.clone(),
        outcome: Outcome::parse(&r.outcome).map_or(0, Outcome::to_wire),
        request_id: r.request_id.clone(),
        trace_id: r.trace_id.clone(),
        hash: hex(&r.hash),
    }
}

impl AuditService {
    async fn append(
        &self,
        who: Option<Caller>,
        service: String,
        req: pb::AppendRequest,
    ) -> Result<pb::AppendResponse, AuditError> {
        check_action(&req.action)?;
        check_target(&req.target)?;
        let outcome = Outcome::from_wire(req.outcome)
            .ok_or_else(|| AuditError::invalid("outcome", "outcome must be success or failure"))?;
        let (org_id, actor) = match &who {
            // A service token (nil user) acts for its service; a user token for its user, and
            // names the API key when the user acted through one.
            Some(c) if c.is_service() => (c.org_id, format!("service:{service}")),
            Some(c) => match c.credential.api_key_id() {
                Some(key) => (c.org_id, format!("user:{}/apikey:{key}", c.user_id)),
                None => (c.org_id, format!("user:{}", c.user_id)),
            },
            None => (
                Uuid::try_parse(&req.org_id).map_err(|_| {
                    AuditError::invalid("org_id", "a system event names its org_id")
                })?,
                format!("service:{service}"),
            ),
        };
        if who.is_some() && !req.org_id.is_empty() && req.org_id != org_id.to_string() {
            return Err(AuditError::Forbidden("an event belongs to the token's org"));
        }
        let context = coffer_mesh::CallContext::current();
        let request_id = context
            .as_ref()
            .map(|c| c.request_id.to_string())
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect();
        let trace_id = coffer_telemetry::current_trace_id().unwrap_or_default();
        let (seq, hash) = self
            .appender
            .append(NewEvent {
                org_id,
                at_us: now_us(),
                actor,
                action: req.action,
                target: req.target,
                outcome: outcome.as_str().to_owned(),
                request_id,
                trace_id,
            })
            .await?;
        Ok(pb::AppendResponse {
            seq,
            hash: hex(&hash),
        })
    }

    async fn list(&self, c: &Caller, req: pb::ListRequest) -> Result<pb::ListResponse, AuditError> {
        let page = req.page.unwrap_or_default();
        let before = match page.cursor.as_str() {
            "" => None,
            s => Some(s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                AuditError::invalid("cursor", "cursor is not one this service gave")
            })?),
        };
        let limit = match page.limit {
            0 => self.config.default_page,
            n => n.min(self.config.max_page),
        } as i64;
        let since = req
            .since
            .map(|t| t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1000));
        // A filter is one of the actions (never arbitrary text on to the query).
        let action = match req.action.as_str() {
            "" => None,
            a => Some(check_action(a)?.as_str()),
        };
        let mut tx = coffer_db::tenant_tx(&self.pool, c.org_id).await?;
        let rows = store::list(&mut tx, before, action, since, limit + 1).await?;
        tx.commit().await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        Ok(pb::ListResponse {
            items: rows.iter().map(event_pb).collect(),
            page: Some(pb::PageResponse {
                next_cursor: match (more, rows.last()) {
                    (true, Some(r)) => r.seq.to_string(),
                    _ => String::new(),
                },
            }),
        })
    }

    async fn verify(&self, org: Uuid) -> Result<pb::VerifyResponse, AuditError> {
        let mut tx = coffer_db::tenant_tx(&self.pool, org).await?;
        let mut prev = genesis(org);
        let mut count = 0u64;
        let mut ok = true;
        let mut after = 0i64;
        loop {
            let rows = store::events_after(&mut tx, after, 5000).await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                count += 1;
                let expected = event_hash(&prev, &r.event());
                if r.seq as u64 != count || r.prev_hash != prev || r.hash != expected {
                    ok = false;
                }
                prev = expected;
                after = r.seq;
            }
        }
        tx.commit().await?;
        if !ok {
            crate::metrics::metrics().verify_failures.inc();
        }
        Ok(pb::VerifyResponse {
            ok,
            count,
            head_hash: hex(&prev),
        })
    }
}

/// Builds the export's NDJSON in chunks: events, checkpoints, then the signed trailer. Reads in
/// one repeatable-read transaction, so the trailer describes exactly the lines above it.
async fn export(
    pool: PgPool,
    signer: Arc<Signer>,
    org: Uuid,
    out: tokio::sync::mpsc::Sender<Result<pb::ExportChunk, Status>>,
) -> Result<(), AuditError> {
    let tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let mut tx = coffer_db::TenantTx::adopt(tx, org, None).await?;
    let mut after = 0i64;
    let mut head = genesis(org);
    let mut count = 0u64;
    let send = |buf: String| {
        let out = out.clone();
        async move {
            out.send(Ok(pb::ExportChunk {
                ndjson: buf.into_bytes(),
            }))
            .await
            .map_err(|_| AuditError::Internal("the client went away".into()))
        }
    };
    loop {
        let rows = store::events_after(&mut tx, after, 1000).await?;
        if rows.is_empty() {
            break;
        }
        let mut buf = String::new();
        for r in &rows {
            let line = Line::Event(coffer_auditlog::EventLine {
                event: r.event(),
                prev_hash: hex(&r.prev_hash),
                hash: hex(&r.hash),
            });
            buf +=
                &serde_json::to_string(&line).map_err(|e| AuditError::Internal(e.to_string()))?;
            buf.push('\n');
            after = r.seq;
            count += 1;
            head = r
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| AuditError::Internal("a stored hash is not 32 bytes".into()))?;
        }
        send(buf).await?;
    }
    let checkpoints = store::checkpoints(&mut tx).await?;
    let mut buf = String::new();
    let mut last = 0u64;
    for c in &checkpoints {
        let line = Line::Checkpoint(coffer_auditlog::CheckpointLine {
            org_id: c.org_id,
            seq: c.seq as u64,
            hash: hex(&c.hash),
            at_us: c.at_us,
            prev_checkpoint_seq: c.prev_checkpoint_seq as u64,
            key_id: c.key_id.clone(),
            signature: c.signature.clone(),
        });
        buf += &serde_json::to_string(&line).map_err(|e| AuditError::Internal(e.to_string()))?;
        buf.push('\n');
        last = c.seq as u64;
    }
    tx.commit().await?;
    let trailer = signer.trailer(org, count, &head, checkpoints.len() as u64, last, now_us());
    buf += &serde_json::to_string(&Line::Export(trailer))
        .map_err(|e| AuditError::Internal(e.to_string()))?;
    buf.push('\n');
    send(buf).await
}

type Res<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Audit for AuditService {
    async fn append(&self, request: Request<pb::AppendRequest>) -> Res<pb::AppendResponse> {
        let who = caller(&request).ok().cloned();
        let service = peer(&request)
            .map(|p| p.identity.as_str().to_owned())
            .unwrap_or_default();
        Ok(Response::new(
            self.append(who, service, request.into_inner()).await?,
        ))
    }

    async fn list(&self, request: Request<pb::ListRequest>) -> Res<pb::ListResponse> {
        let c = reader(&request)?;
        Ok(Response::new(self.list(&c, request.into_inner()).await?))
    }

    async fn verify(&self, request: Request<pb::VerifyRequest>) -> Res<pb::VerifyResponse> {
        let c = reader(&request)?;
        Ok(Response::new(self.verify(c.org_id).await?))
    }

    type ExportStream = ReceiverStream<Result<pb::ExportChunk, Status>>;

    async fn export(&self, request: Request<pb::ExportRequest>) -> Res<Self::ExportStream> {
        let c = reader(&request)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (pool, signer) = (self.pool.clone(), self.signer.clone());
        tokio::spawn(async move {
            if let Err(e) = export(pool, signer, c.org_id, tx.clone()).await {
                let _ = tx.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn public_key(
        &self,
        request: Request<pb::PublicKeyRequest>,
    ) -> Res<pb::PublicKeyResponse> {
        reader(&request)?;
        Ok(Response::new(pb::PublicKeyResponse {
            key_id: self.signer.key_id().to_owned(),
            public_key: self.signer.public_key_text(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ids_only() {
        let id = Uuid::new_v4();
        assert!(check_target(&format!("file:{id}")).is_ok());
        assert!(check_target("").is_ok());
        for bad in [
            "file:report.pdf".to_owned(),
            format!("file:{id} extra"),
            format!("File:{id}"),
            format!(":{id}"),
            format!("file:{}", id.simple()),
            "Gehälter.xlsx".to_owned(),
        ] {
            assert!(check_target(&bad).is_err(), "{bad}");
        }
        assert_eq!(check_action("file.download").unwrap(), Action::FileDownload);
        for bad in [
            "file",
            "File.download",
            "file.down load",
            ".x",
            "x.",
            "file.nonsense",
        ] {
            assert!(check_action(bad).is_err(), "{bad}");
        }
    }

    /// Every action a producer can write (the kit's list) is taken, and nothing else is.
    #[test]
    fn the_check_is_the_producers_vocabulary() {
        for a in Action::ALL {
            assert_eq!(check_action(a.as_str()).unwrap(), *a);
        }
        for unknown in ["file.shred", "org.purged", "auth.logout", "scan.completed "] {
            assert!(check_action(unknown).is_err(), "{unknown}");
        }
    }
}
